"""What cog writes into the reference pages and the example env file, from the code itself.

`make docs` runs `cog -r` on the generated files and `make check` runs `cog --check` on them (tests/unit/test_docs.py
too): a setting, a command, an exit code, an outcome or a metric added without its documentation fails there.
Each function writes through `cog.out`, so it runs inside a cog block:

    <!-- [[[cog
    import docgen
    docgen.commands()
    ]]] -->
    ...what it printed...
    <!-- [[[end]]] -->

The words come from where the thing is defined: a setting's meaning from its `Field(description=...)`, a command's
from its `--help`, a metric's from its HELP line. What is written here is only what the code does not say: how
settings are grouped, and what each exit code and outcome asks of the scheduler and the person.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _out(text: str) -> None:
    import cog  # cogapp's module, which exists only while cog runs a block

    cog.out(text)


# --------------------------------------------------------------------------------------------- commands

HELP_WIDTH = 100


def _commands(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    """(path, command) for the app and every command under it, in the order `--help` lists them. Typer's
    commands are click's, from the copy of click Typer ships: told apart by what they do, not by class."""
    yield path, command
    if hasattr(command, "list_commands"):
        context = command.context_class(command, info_name=" ".join(["story-liker", *path]))
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            if sub is not None and not sub.hidden:
                yield from _commands(sub, [*path, name])


def commands() -> None:
    """`--help` of the app, every command and every subcommand, as a person at a terminal sees it."""
    import typer
    from typer.testing import CliRunner

    from story_liker.cli import app

    runner = CliRunner()
    for path, _command in _commands(typer.main.get_command(app), []):
        result = runner.invoke(
            app, [*path, "--help"], prog_name="story-liker", terminal_width=HELP_WIDTH, catch_exceptions=False
        )
        if result.exit_code != 0:
            raise RuntimeError(f"story-liker {' '.join(path)} --help exited {result.exit_code}: {result.output}")
        title = " ".join(["story-liker", *path])
        _out(f"\n## {title}\n\n```\n{result.output.rstrip()}\n```\n")
    _out("\n")


def command_names() -> list[str]:
    """Every command and subcommand, like `run-stories` and `accounts add` (for the tests)."""
    import typer

    from story_liker.cli import app

    return [" ".join(path) for path, _ in _commands(typer.main.get_command(app), []) if path]


# --------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Shown:
    """How a setting appears in deploy/story-liker.env.example.

    set: an active `KEY=value` line; default: its default, commented out; examples: commented-out examples (where
    the default is "not set", or where the description says what it is); named: only named in a comment (a secret,
    which never goes in that file, and the tests' IG_API_URL).
    """

    how: str  # set | default | examples | named
    values: tuple[str, ...] = ()


def set_(value: str) -> Shown:
    return Shown("set", (value,))


DEFAULT = Shown("default")
NAMED = Shown("named")


def examples(*values: str) -> Shown:
    return Shown("examples", values)


@dataclass(frozen=True)
class Section:
    title: str
    settings: dict[str, Shown]
    note: str = ""  # in the reference, and in the env file unless env_note says it there
    env_note: str = ""
    extra: list[str] = field(default_factory=list)  # further env-file lines


SECTIONS = [
    Section(
        "The account and its targets",
        {
            "IG_USERNAME": set_("your.account"),
            "TARGET_ACCOUNTS": set_("friend.one,friend.two"),
            "TARGET_EXCLUDE": examples("someone.else"),
        },
    ),
    Section(
        "Secrets",
        {
            "IG_PASSWORD": NAMED,
            "IG_PASSWORD_FILE": NAMED,
            "IG_TOTP_SEED": NAMED,
            "IG_TOTP_SEED_FILE": NAMED,
            "SESSION_ENCRYPTION_KEY": NAMED,
            "SESSION_ENCRYPTION_KEY_FILE": NAMED,
        },
        note="A secret is best read from a file, through its `*_FILE` variable: a regular file of UTF-8 text, at "
        "most 64 KiB, its surrounding blanks stripped. The shipped deployments hand them over as systemd "
        "credentials, Kubernetes Secrets or Compose secrets.",
        env_note="Never write a secret in this file: each is a file, passed with its *_FILE variable, which each "
        "deployment sets for you (systemd: the drop-ins in deploy/systemd/optional/). The variables themselves "
        "are the same values inline, for a shell or a test, not for here.",
    ),
    Section(
        "Like limits",
        {
            "STORY_LIKES_PER_10_MINUTES": set_("6"),
            "STORY_LIKES_PER_HOUR": set_("20"),
            "STORY_LIKES_PER_DAY": set_("100"),
            "POST_LIKES_PER_10_MINUTES": set_("8"),
            "POST_LIKES_PER_HOUR": set_("15"),
            "POST_LIKES_PER_DAY": set_("80"),
        },
        note="Three rolling windows each: 10 minutes against bursts, an hour, a day. Field reports tie action "
        'blocks and "automated behaviour" challenges to bursts (a challenge after 16 likes in a row, blocks at '
        "about 60 likes an hour); 6 story and 5 post likes in any 10 minutes stay far below both. A pass that "
        "meets the 10-minute window waits for room between two reels (or posts) while PASS_BUDGET_MINUTES "
        "allows, else leaves the rest to the next pass: an hourly timer likes up to about 12 stories a pass.",
    ),
    Section(
        "Pauses",
        {
            "STORY_WATCH_PERCENT": DEFAULT,
            "ACTION_DELAY_MIN_SECONDS": set_("3"),
            "ACTION_DELAY_MAX_SECONDS": set_("12"),
            "TARGET_DELAY_MIN_SECONDS": set_("5"),
            "TARGET_DELAY_MAX_SECONDS": set_("20"),
            "REQUEST_DELAY_MIN_SECONDS": DEFAULT,
            "REQUEST_DELAY_MAX_SECONDS": DEFAULT,
        },
    ),
    Section(
        "Stories",
        {
            "STORY_RECHECK_HOURS": DEFAULT,
            "REELS_BATCH_SIZE": DEFAULT,
            "FOLLOWING_SYNC_MAX_PAGES": DEFAULT,
            "STORY_RETENTION_HOURS": set_("24"),
        },
    ),
    Section(
        "Posts",
        {
            "POST_MAX_AGE_DAYS": set_("3"),
            "POST_MEDIA_TYPES": DEFAULT,
            "POST_FEED_COUNT": DEFAULT,
            "POST_TIMELINE_PAGES": DEFAULT,
            "POST_RECHECK_HOURS": DEFAULT,
        },
    ),
    Section(
        "The planner",
        {
            "STORY_MAX_PER_TARGET": examples("3"),
            "POST_MAX_PER_TARGET": examples("2"),
            "STORY_LIKE_PROBABILITY": DEFAULT,
            "ACTIVE_HOURS": examples("08:00-23:30"),
            "TIMEZONE": examples("Europe/Berlin"),
            "WARMUP_START_PERCENT": DEFAULT,
            "WARMUP_DAYS": DEFAULT,
            "DAILY_LIMIT_VARIATION_PERCENT": DEFAULT,
        },
    ),
    Section(
        "Timeouts and backoff",
        {
            "HTTP_TIMEOUT_SECONDS": DEFAULT,
            "LOCK_TTL_SECONDS": DEFAULT,
            "PASS_BUDGET_MINUTES": DEFAULT,
            "AUTO_LOGIN_MIN_HOURS": DEFAULT,
            "COOLDOWN_BASE_MINUTES": DEFAULT,
            "FEEDBACK_COOLDOWN_HOURS": DEFAULT,
            "COOLDOWN_MAX_HOURS": DEFAULT,
        },
    ),
    Section(
        "The database",
        {
            "DATABASE_URL": examples(
                "sqlite:////var/lib/story-liker/stories.db",
                "postgresql://story_liker@db.example.internal:5432/story_liker",
            ),
            "RUN_RETENTION_DAYS": DEFAULT,
        },
        note="A PostgreSQL password belongs in a pgpass file named by `PGPASSFILE` (libpq's own variable), not in "
        "the URL.",
        env_note="systemd and the container image already point it at /var/lib/story-liker/stories.db; set it for "
        "cron, or for PostgreSQL. A PostgreSQL password does not belong here: put it in a pgpass file named by "
        "PGPASSFILE (systemd: a credential, optional/pgpass.conf).",
    ),
    Section(
        "Instagram connection",
        {"IG_PROXY": examples("socks5://user:pass@proxy.example.internal:1080"), "IG_API_URL": NAMED},
    ),
    Section(
        "Logs and dry runs",
        {"LOG_LEVEL": set_("INFO"), "LOG_FORMAT": set_("json"), "DRY_RUN": examples("true")},
    ),
    Section(
        "Monitoring",
        {
            "METRICS_TEXTFILE": examples("/var/lib/prometheus/node-exporter/story_liker.prom"),
            "PUSHGATEWAY_URL": examples("http://pushgateway.example.internal:9091"),
            "HEALTHCHECK_URL": examples("https://hc-ping.com/your-uuid"),
        },
        note="See [Monitor and get told](../how-to/monitor-and-get-told.md) and [Metrics](metrics.md).",
        env_note="How to use them: docs/how-to/monitor-and-get-told.md.",
    ),
    Section(
        "Notifications",
        {
            "NOTIFY_URLS": NAMED,
            "NOTIFY_URLS_FILE": examples("/run/secrets/notify_urls"),
            "NOTIFY_CONFIG": examples("/etc/story-liker/apprise.yml"),
            "NOTIFY_COOLDOWN_HOURS": DEFAULT,
            "NOTIFY_DIGEST": examples("daily"),
        },
        note="One message per change of the account's health (needs a human, session outdated, action blocked, a "
        "long cooldown, recovered), never one per run: see "
        "[Monitor and get told](../how-to/monitor-and-get-told.md#notifications).",
        env_note="One message per change of the account's health (needs a human, session outdated, action blocked, "
        "a long cooldown, recovered), never one per run. systemd: the URLs in "
        "/etc/story-liker/credentials/notify_urls with optional/notify-urls.conf.",
    ),
]


def _fields() -> dict[str, Any]:
    from story_liker.settings import Settings

    fields = {name.upper(): info for name, info in Settings.model_fields.items()}
    placed = [name for section in SECTIONS for name in section.settings]
    twice = sorted({name for name in placed if placed.count(name) > 1})
    missing = sorted(set(fields) - set(placed))
    unknown = sorted(set(placed) - set(fields))
    if twice or missing or unknown:
        raise RuntimeError(
            f"docs/docgen.py SECTIONS: place every setting once (missing {missing}, unknown {unknown}, twice {twice})"
        )
    undescribed = sorted(name for name, info in fields.items() if not info.description)
    if undescribed:
        raise RuntimeError(f"settings without Field(description=...) in story_liker/settings.py: {undescribed}")
    return fields


def env_value(value: Any) -> str:
    """A default as it is written in the environment (and loads back as the same value)."""
    from story_liker.settings import MEDIA_TYPES

    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, frozenset | set | list | tuple):
        order = {name: n for n, name in enumerate(MEDIA_TYPES)}
        return ",".join(sorted((str(v) for v in value), key=lambda v: (order.get(v, len(order)), v)))
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def configuration() -> None:
    """One table per section: variable, default, description."""
    fields = _fields()
    for section in SECTIONS:
        _out(f"\n## {section.title}\n\n")
        if section.note:
            _out(f"{section.note}\n\n")
        _out("| variable | default | description |\n| --- | --- | --- |\n")
        for name in section.settings:
            info = fields[name]
            default = env_value(info.get_default())
            shown = f"`{default}`" if default else "—"
            _out(f"| `{name}` | {shown} | {_cell(info.description)} |\n")
    _out("\n")


ENV_HEADER = """\
story-liker settings: KEY=value lines, no quotes needed, no secrets.
Copy to /etc/story-liker/story-liker.env (systemd, cron: link it as
/var/lib/story-liker/.env) or to deploy/docker/story-liker.env (Compose).
A commented line shows the default, or an example (where there is no
default, or where the comment above it says what the default is).
Every setting is described in docs/reference/configuration.md.
Generated from the settings' own descriptions (make docs): edit those."""

ENV_WIDTH = 79
_ENV_SETTING = re.compile(r"#\s?([A-Z][A-Z0-9_]*)=(\S.*)")  # what tests/deploy/ reads as a setting


def _comment(text: str) -> list[str]:
    plain = text.replace("`", "")
    lines = textwrap.wrap(plain, ENV_WIDTH - 2, break_long_words=False, break_on_hyphens=False)
    out = [f"# {line}" for line in lines]
    for line in out:
        if _ENV_SETTING.fullmatch(line):  # it would read as a commented-out setting
            raise RuntimeError(f"an env-file comment line reads as a setting; reword it: {line!r}")
    return out


def env_example() -> None:
    """deploy/story-liker.env.example: every setting, with its description, grouped as in the reference."""
    fields = _fields()
    lines = [f"# {line}" if line else "#" for line in ENV_HEADER.splitlines()]
    for section in SECTIONS:
        lines += ["", f"# ---- {section.title} " + "-" * (ENV_WIDTH - 8 - len(section.title))]
        note = section.env_note or section.note
        if note:
            lines += _comment(re.sub(r"\[([^]]+)\]\([^)]+\)", r"\1", note))  # a link: its text only
        for name, shown in section.settings.items():
            description = fields[name].description
            if shown.how == "named":
                lines += _comment(f"{name}: {description}")
                continue
            lines += _comment(description)
            if shown.how == "set":
                lines.append(f"{name}={shown.values[0]}")
            elif shown.how == "default":
                lines.append(f"# {name}={env_value(fields[name].get_default())}")
            else:
                lines += [f"# {name}={value}" for value in shown.values]
    _out("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------- exit codes

# What each exit code (a constant of story_liker/errors.py) means, and what the scheduler should do about it.
EXIT_CODES = {
    "OK": ("ok — also nothing new, nothing to do, the like budget used up, outside `ACTIVE_HOURS`", "nothing"),
    "BUG": ("a bug (the log has the traceback)", "alert"),
    "USAGE": (
        "bad command-line usage: a wrong value on the command line (a name, a duration, a file that exists), or a "
        "prompt got no answer (Ctrl-D)",
        "fix the unit or crontab",
    ),
    "DB_UNAVAILABLE": (
        "the database is unavailable (`doctor`, `notify test`: also a notification or healthcheck service unreachable)",
        "retry later; alert if it persists",
    ),
    "TRY_LATER": (
        "try later: a cooldown is running, another run holds the lock (or took it over: `lease_lost`), a login "
        "backoff, Instagram unreachable or throttling",
        "treat as success (`SuccessExitStatus=75`)",
    ),
    "NEEDS_HUMAN": (
        "needs a human: a challenge, 2FA, an expired session without a password, 3 failed logins in a row, a "
        "session that keeps expiring (`AUTO_LOGIN_MIN_HOURS`); `login`: a wrong password (at a terminal, after the "
        "third try)",
        "never retry; run `story-liker login`",
    ),
    "CONFIG": (
        "a configuration error (the message names the variable); also a database the command must write but may "
        "not (`database_read_only`: a read-only file, directory or mount, a PostgreSQL standby), a schema older "
        "than the code (`schema_outdated`) and a SQLite file that is corrupt or no database at all "
        "(`database_corrupt`)",
        "never retry; fix the setting or the permissions, run `migrate`, restore the file",
    ),
    "SIGINT": ("stopped by SIGINT (Ctrl-C) after finishing the request in flight", "nothing"),
    "SIGTERM": ("stopped by SIGTERM after finishing the request in flight", "nothing"),
}


def _exit_constants() -> dict[str, int]:
    from story_liker import errors

    constants = {name: value for name, value in vars(errors).items() if name.isupper() and isinstance(value, int)}
    if set(constants) != set(EXIT_CODES):
        raise RuntimeError(
            f"docs/docgen.py EXIT_CODES: describe every exit code of story_liker/errors.py (missing "
            f"{sorted(set(constants) - set(EXIT_CODES))}, gone {sorted(set(EXIT_CODES) - set(constants))})"
        )
    return constants


def exit_codes() -> None:
    """The exit code table, from the constants of story_liker/errors.py."""
    constants = _exit_constants()
    _out("| code | meaning | what the scheduler should do |\n|---|---|---|\n")
    for name, code in sorted(constants.items(), key=lambda item: item[1]):
        meaning, action = EXIT_CODES[name]
        _out(f"| {code} | {_cell(meaning)} | {_cell(action)} |\n")


# The `outcome` of `run_finished`: the ones of a command that exited 0 (jobs' Outcome), the errors' (their class
# name in snake_case), and the two the CLI sets itself. Each needs its words here.
OUTCOMES = {
    "ok": "liked something, or did what it was asked",
    "nothing_new": "looked, and found nothing to like",
    "nothing_to_do": "no enabled target: Instagram was not contacted",
    "budget_used_up": "the like limits are used up (at the start of a pass: no request was sent) or left the rest "
    "for a later pass",
    "dry_run": "read and decided, sent no like (`--dry-run`, `DRY_RUN`)",
    "outside_active_hours": "outside `ACTIVE_HOURS`: no request was sent",
    "no_input": "a prompt got no answer (Ctrl-D or an empty line)",
    "usage_error": "a wrong value on the command line (a name, a duration, a file that exists already)",
    "config_error": "a setting is wrong or missing (the message names it)",
    "schema_outdated": "the schema is older than the code: run `story-liker migrate`",
    "database_read_only": "the command writes, and the database is read-only to it",
    "database_corrupt": "the SQLite file is damaged or no database at all: restore it",
    "undecryptable_session": "no `SESSION_ENCRYPTION_KEY` decrypts the stored session "
    "(`login --replace-undecryptable`)",
    "database_unavailable": "the database cannot be reached",
    "locked": "another run of this account holds the lease",
    "lease_lost": "this run's lease expired and another run took it: it stopped",
    "login_backoff": "a login failed recently; the next one waits (1 h, then 2 h)",
    "cooling_down": "a cooldown is running: no request was sent",
    "network_error": "Instagram could not be reached (refused, reset, timeout, 5xx)",
    "throttled": "Instagram asked to slow down (429, `feedback_required`, ...): a cooldown started",
    "bad_response": "Instagram answered something the pass could not go on without",
    "needs_human": "a challenge, a 2FA prompt, no password for a re-login, 3 failed logins, a session that keeps "
    "expiring, an outdated session: run `story-liker login` (or `session upgrade`)",
    "password_rejected": "Instagram rejected the password: run `story-liker login`",
    "session_expired": "Instagram ended the session where no re-login could follow: run `story-liker login`",
    "interrupted": "stopped by SIGINT or SIGTERM",
    "bug": "a bug: the log has the traceback",
}
# Errors that never end a run: a pass records them on the item or target and goes on.
HANDLED_IN_A_PASS = {"TargetUnavailable", "Gone"}
# Bases no code raises as such.
BASES = {"StoryLikerError", "TryLater"}


def _error_outcomes() -> list[tuple[str, int]]:
    from story_liker import errors

    found: list[tuple[str, int]] = []
    pending: list[type[errors.StoryLikerError]] = [errors.StoryLikerError]
    while pending:
        cls = pending.pop(0)
        pending += cls.__subclasses__()
        if cls.__name__ in BASES | HANDLED_IN_A_PASS or cls is errors.Interrupted:
            continue
        found.append((cls.__new__(cls).outcome, cls.exit_code))
    return found


def outcomes() -> None:
    """The `outcome` vocabulary of `run_finished`, with each one's exit code."""
    from story_liker import errors
    from story_liker.jobs.deps import Outcome

    rows = [(str(outcome), errors.OK) for outcome in Outcome]
    rows += _error_outcomes()
    rows += [("interrupted", errors.SIGINT), ("interrupted", errors.SIGTERM), ("bug", errors.BUG)]
    names = {name for name, _ in rows}
    if names != set(OUTCOMES):
        raise RuntimeError(
            f"docs/docgen.py OUTCOMES: describe every outcome (missing {sorted(names - set(OUTCOMES))}, gone "
            f"{sorted(set(OUTCOMES) - names)})"
        )
    order = [errors.OK, errors.TRY_LATER, errors.NEEDS_HUMAN, errors.CONFIG, errors.DB_UNAVAILABLE, errors.USAGE]
    codes: dict[str, list[int]] = {}
    for name, code in rows:
        codes.setdefault(name, []).append(code)

    def rank(name: str) -> tuple[int, int]:
        code = codes[name][0]
        return (order.index(code) if code in order else len(order), code)

    _out("| outcome | exit | meaning |\n|---|---|---|\n")
    for name in sorted(codes, key=rank):  # stable: within a code, the order the code defines them
        exits = " / ".join(str(code) for code in sorted(set(codes[name])))
        _out(f"| `{name}` | {exits} | {_cell(OUTCOMES[name])} |\n")


# --------------------------------------------------------------------------------------------- metrics


def metrics() -> None:
    """The metrics a run exports, read from the textfile a real `story-liker cleanup` writes (SQLite, no
    Instagram): name, labels and the HELP text the code gives each."""
    with tempfile.TemporaryDirectory(prefix="story-liker-docs-") as scratch:
        work = Path(scratch)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": scratch,
            "IG_USERNAME": "docs.example",
            "DATABASE_URL": f"sqlite:///{work / 'stories.db'}",
            "METRICS_TEXTFILE": str(work / "story_liker.prom"),
            "LOG_FORMAT": "json",
        }
        done = subprocess.run(
            [sys.executable, "-m", "story_liker", "cleanup"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"story-liker cleanup exited {done.returncode}: {done.stderr}")
        (textfile,) = work.glob("*.prom")
        text = textfile.read_text()
    helps = dict(re.findall(r"^# HELP (\S+) (.*)$", text, re.M))
    labels: dict[str, list[str]] = {}
    for name, inside in re.findall(r"^([a-z_]+)\{([^}]*)\}", text, re.M):
        for key in re.findall(r'(\w+)="', inside):
            if key not in labels.setdefault(name, []):
                labels[name].append(key)
    _out("| metric | labels | meaning |\n| --- | --- | --- |\n")
    for name, help_text in helps.items():
        _out(f"| `{name}` | {', '.join(f'`{k}`' for k in labels.get(name, []))} | {_cell(help_text)} |\n")


def alerts() -> None:
    """The alerting rules of deploy/prometheus/alerts.yml: name, expression, how long, severity, summary."""
    import yaml

    rules_file = Path(__file__).resolve().parents[1] / "deploy" / "prometheus" / "alerts.yml"
    groups = yaml.safe_load(rules_file.read_text())["groups"]
    _out("| alert | fires when | for | severity | summary |\n| --- | --- | --- | --- | --- |\n")
    for group in groups:
        for rule in group["rules"]:
            summary = re.sub(r"\{\{ *\$(?:labels\.)?(\w+) *\}\}", r"{\1}", rule["annotations"]["summary"])
            _out(
                f"| `{rule['alert']}` | `{_cell(rule['expr'])}` | {rule.get('for', 'at once')} "
                f"| {rule['labels']['severity']} | {_cell(summary)} |\n"
            )
