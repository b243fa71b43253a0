"""The Typer app: thin commands that build dependencies, call one job and report.

This is the only module that exits; every domain error becomes its documented exit code here.
Heavy imports (instagrapi, SQLAlchemy, pydantic) happen inside commands so `--help` starts fast.
"""

from __future__ import annotations

import contextvars
import gc
import json
import logging
import signal
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO
from urllib.parse import urlsplit

import typer

from story_liker import __version__
from story_liker.errors import BUG, OK, TRY_LATER, Interrupted, StoryLikerError

if TYPE_CHECKING:
    from story_liker.hooks import RunEnd
    from story_liker.ig.types import Client, Connection
    from story_liker.jobs.deps import Deps, Report
    from story_liker.settings import Settings

log = logging.getLogger("story_liker.cli")

app = typer.Typer(
    name="story-liker",
    help="Like the new Instagram stories and posts of the accounts you care about, one safe pass at a time.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,  # plain help: rich's panels print a <bool> placeholder after every flag
    pretty_exceptions_enable=False,  # pretty tracebacks print local variables: passwords and cookies
    add_completion=False,
)
accounts_app = typer.Typer(
    help="Manage target accounts in the database (instead of TARGET_ACCOUNTS).", no_args_is_help=True
)
app.add_typer(accounts_app, name="accounts")
session_app = typer.Typer(help="The stored Instagram session.", no_args_is_help=True)
app.add_typer(session_app, name="session")

DryRun = Annotated[bool, typer.Option("--dry-run", help="Read and decide, but send no like or seen request.")]
MaxLikes = Annotated[int | None, typer.Option("--max-likes", min=0, help="Like at most N in this pass.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"story-liker {__version__}")
        raise typer.Exit(OK)


@app.callback()
def _main(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Each command does one pass and exits with a code your scheduler understands (see README)."""
    _ENV.set(ctx.obj if isinstance(ctx.obj, Env) else Env())  # a test's Env (CliRunner obj=), else the process's


# --- the runner every command goes through ---------------------------------------------------------------


@dataclass
class Env:
    """What a command takes from the process, with the real defaults: whether it installs the signal handlers,
    how it connects to Instagram, its clock, its standard input. Tests give their own through
    ``CliRunner().invoke(app, args, obj=Env(...))``, as httpie's give ``MockEnvironment``; the streams are the
    ones ``typer.echo`` and the log write to, which ``CliRunner`` captures."""

    signals: bool = True  # SIGTERM/SIGINT end a pass between two steps (restored after the command)
    connect: Callable[[Connection], Client] | None = None  # None: the instagrapi adapter
    clock: Callable[[], datetime] | None = None  # None: the database's (jobs.deps.database_clock)
    stdin: TextIO | None = field(default_factory=lambda: sys.stdin)  # None: closed (`<&-`)
    json_errors: bool = False  # `status --json`: errors are a JSON object on stdout too

    def connector(self) -> Callable[[Connection], Client]:
        if self.connect is not None:
            return self.connect
        from story_liker.ig.adapter import Instagrapi

        return Instagrapi

    @property
    def terminal(self) -> bool:
        """Is a person at the keyboard (standard input open and a terminal)?"""
        return self.stdin is not None and not self.stdin.closed and self.stdin.isatty()


_ENV: contextvars.ContextVar[Env | None] = contextvars.ContextVar("story_liker_env", default=None)


def _env() -> Env:
    """The command's Env: the one the root command was invoked with (``obj``), else the process's."""
    env = _ENV.get()
    if env is None:
        env = Env()
        _ENV.set(env)
    return env


@dataclass(frozen=True)
class Spec:
    """What a command is, as far as the runner is concerned."""

    name: str
    monitored: bool = False  # a scheduled pass: metrics, healthcheck pings and notifications after it
    prints: bool = False  # its result goes to stdout (status, report, history, accounts): warnings go to stderr
    record: bool = True  # a run record in the database
    account: bool = True  # needs IG_USERNAME before it touches the database
    read_only: bool = False  # only reads: the database is opened read-only (db.make_engine)
    log_level: str | None = None  # a quieter log for the reading commands


def _pass(name: str) -> Spec:
    """A pass a scheduler runs: monitored (metrics, healthcheck pings, notifications)."""
    return Spec(name, monitored=True)


def _reading(name: str) -> Spec:
    """A command that only reads and prints what it found: status, report, history."""
    return Spec(name, prints=True, record=False, read_only=True, log_level="WARNING")


class _Signals:
    """First SIGTERM/SIGINT: finish the request in flight, then stop. Second: stop at once."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.previous: list[tuple[int, Any]] = []

    def __call__(self, signum: int, _frame: Any) -> None:
        if self.deps.stop.is_set():
            raise Interrupted(signum)
        self.deps.stop_signal.append(signum)
        self.deps.stop.set()

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self.previous.append((signum, signal.signal(signum, self)))

    def restore(self) -> None:
        for signum, handler in self.previous:
            signal.signal(signum, handler)


def _fail(message: str, code: int) -> None:
    _say_error(message, code)
    raise typer.Exit(code)


def _say_error(message: str, code: int) -> None:
    """The error line on stderr (and `status --json`'s error object), redacted as the log lines are."""
    from story_liker.logging import redact

    message = redact(message)
    typer.echo(f"story-liker: {message}", err=True)
    if _env().json_errors:
        typer.echo(json.dumps({"error": message, "exit_code": code}))


def _load_settings(*, output_on_stdout: bool = False, **overrides: Any) -> Settings:
    """Every command that reads a setting comes through here: one ConfigError line and exit 78 on a bad one.

    `output_on_stdout`: the command prints its result on stdout (status, accounts), so the warnings given
    here go to stderr, where they cannot break `status --json | jq`.
    """
    from story_liker import settings as settings_module
    from story_liker.logging import CONTEXT, configure, register_secret

    try:
        # the environment is validated as it is, then the command's own overrides (status' quieter log level)
        # apply: a bad LOG_LEVEL is a 78 for `status` as for a run
        settings = settings_module.load().model_copy(update=overrides)
    except StoryLikerError as exc:
        _fail(exc.message, exc.exit_code)
        raise  # unreachable; for type checkers
    configure(settings.log_level, settings.log_style)
    if output_on_stdout:  # stdout is the command's result (`status --json | jq`): its log lines go to stderr
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(sys.stderr)
    for secret in (settings.ig_password, settings.ig_totp_seed, settings.session_encryption_key):
        if secret is not None:
            register_secret(secret.get_secret_value())
            for part in secret.get_secret_value().split(","):
                register_secret(part.strip())
    CONTEXT.set({"account": settings.ig_username or ""})
    for name, closest, where in settings_module.misspelled_here():  # read by no setting: a typo, most likely
        _warn(
            "unknown_setting", {"variable": name, "did_you_mean": closest, "set_in": where}, to_stderr=output_on_stdout
        )
    if settings.ig_api_url:
        _warn(
            "ig_api_url_set",
            {"host": urlsplit(settings.ig_api_url).hostname or ""},  # validated loopback; host only, never the URL
            to_stderr=output_on_stdout,
        )
    return settings


def _warn(event: str, fields: dict[str, Any], *, to_stderr: bool) -> None:
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    streams = [h.stream for h in handlers]
    if to_stderr:
        for handler in handlers:
            handler.setStream(sys.stderr)
    try:
        log.warning(event, extra=fields)
    finally:
        for handler, stream in zip(handlers, streams, strict=True):
            handler.setStream(stream)


def _execute(spec: Spec, job: Callable[[Deps], Report]) -> None:
    """Settings, logging, database, signals, run record, summary line, the hooks, exit code: once for all."""
    from story_liker.logging import CONTEXT

    env = _env()
    overrides = {"log_level": spec.log_level} if spec.log_level else {}
    settings = _load_settings(output_on_stdout=spec.prints, **overrides)
    run_id = uuid.uuid4().hex[:12]
    CONTEXT.set({"run_id": run_id, "command": spec.name, "account": settings.ig_username or ""})
    code = BUG
    end: RunEnd | None = None
    try:
        with _monitored(spec, settings, run_id) as end:
            code = _run(spec, job, settings, run_id, env, end)
    except Interrupted as exc:  # a second signal in the hooks: stop at once, as asked
        code = exc.exit_code
    finally:
        if end is not None and end.store is not None:
            end.store.engine.dispose()  # the files closed (and SQLite's WAL checkpointed) when the command ends
    raise typer.Exit(code)


def _monitored(spec: Spec, settings: Settings, run_id: str) -> AbstractContextManager[RunEnd]:
    from story_liker import hooks

    if not spec.monitored:
        return nullcontext(hooks.RunEnd())
    return hooks.monitored(settings, command=spec.name, run_id=run_id)


def _run(spec: Spec, job: Callable[[Deps], Report], settings: Settings, run_id: str, env: Env, end: RunEnd) -> int:
    """The command's job and its run record; ``end`` tells the hooks how it went. Returns the exit code."""
    started = time.monotonic()
    code, outcome, counts, extra = BUG, "bug", {}, {}
    # an error is said once: by the run_failed line of a JSON log, else (a person at a terminal, or a command
    # whose stdout is its result) by the one `story-liker: ...` line on stderr
    said_in_log = settings.log_style == "json" and not spec.prints
    store = None  # set once the schema is known to be right: only then is the database used after a failure
    deps: Deps | None = None
    signals: _Signals | None = None
    recorded = False
    try:
        if spec.account:
            settings.account()  # fail fast, before touching the database
        from story_liker.db import open_engine
        from story_liker.jobs.deps import Deps, database_clock
        from story_liker.store import Store

        store = Store(open_engine(settings.database_url, read_only=spec.read_only, auto_migrate=settings.is_sqlite))
        deps = Deps(
            settings=settings,
            store=store,
            run_id=run_id,
            command=spec.name,
            connect=env.connector(),
            clock=env.clock or database_clock(store),
        )
        if env.signals:
            signals = _Signals(deps)
            signals.install()
        deps.progress = _progress(settings)
        if spec.record:
            store.start_run(run_id, account=settings.ig_username, command=spec.name, now=deps.clock())
            recorded = True
        _started_up()
        report = job(deps)
        code, outcome, extra = OK, report.outcome, report.extra
    except StoryLikerError as exc:
        code, outcome = exc.exit_code, exc.outcome
        # a routine 75 (cooldown, lock held, login backoff, network) is a warning, not an error
        level = logging.WARNING if code == TRY_LATER else logging.ERROR
        log.log(level if said_in_log else logging.DEBUG, "run_failed", extra={"error": exc.message, "exit_code": code})
        if not said_in_log:
            _say_error(exc.message, code)
    except KeyboardInterrupt:
        code, outcome = Interrupted(signal.SIGINT).exit_code, "interrupted"
    except Exception as exc:
        log.exception("unexpected_error", extra={"error": type(exc).__name__})
        if not said_in_log:
            _say_error(f"unexpected error {type(exc).__name__} (a bug; the log has details)", BUG)
    finally:
        duration = round(time.monotonic() - started, 3)
        if deps is not None:
            counts = deps.counts.as_dict()
        if store is not None:
            extra = extra | {"sql_statements": store.statements}
        log.info(
            "run_finished",
            extra={"outcome": outcome, "exit_code": code, "duration_s": duration, **counts, **extra},
        )
        end.code, end.outcome, end.counts, end.duration, end.store = code, outcome, counts, duration, store
        try:  # after the pass nothing may change its exit code or skip a later step
            if recorded and store is not None:
                _finish_run(store, run_id, code, outcome, counts, duration)
        finally:
            if signals is not None:
                signals.restore()
    return code


_start_up: list[bool] = []  # main() holds the garbage collector off until the job starts


def _started_up() -> None:
    """The job starts: what start-up made is frozen (never walked again) and the collector back on. A no-op where
    main() did not hold it off (the tests' in-process runs)."""
    if _start_up:
        _start_up.clear()
        gc.freeze()
        gc.enable()


def _finish_run(store: Any, run_id: str, code: int, outcome: str, counts: dict[str, Any], duration: float) -> None:
    from story_liker.jobs.deps import utcnow

    try:
        store.finish_run(
            run_id, exit_code=code, outcome=outcome, counts=counts | {"duration_s": duration}, now=utcnow()
        )
    except Interrupted:
        raise
    except StoryLikerError:  # the database failed; the log line above tells the story
        pass
    except Exception as exc:  # a bug in the run record must not change the pass's exit code or skip monitoring
        log.warning("run_record_failed", extra={"error": type(exc).__name__})


def _progress(settings: Settings) -> Any:
    from story_liker.jobs.deps import NoProgress

    if settings.log_style != "text" or not sys.stdout.isatty():
        return NoProgress()
    return _RichProgress()


class _RichProgress:
    """A progress bar for the person watching a manual run (text logs on a terminal only)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), transient=True)
        self.task: Any = None

    def start(self, total: int, label: str) -> None:
        self.bar.start()
        self.task = self.bar.add_task(label, total=total)

    def advance(self, label: str) -> None:
        if self.task is not None:
            self.bar.update(self.task, advance=1, description=label)

    def stop(self) -> None:
        self.bar.stop()


# --- commands ---------------------------------------------------------------------------------------------


@app.command("run-stories")
def run_stories(dry_run: DryRun = False, max_likes: MaxLikes = None) -> None:
    """Like the new stories of the enabled targets (one pass)."""
    from story_liker.jobs.stories import run_stories as job

    _execute(
        Spec("run-stories", monitored=True),
        lambda d: job(d, dry_run=dry_run or d.settings.dry_run, max_likes=max_likes),
    )


@app.command("run-posts")
def run_posts(dry_run: DryRun = False, max_likes: MaxLikes = None) -> None:
    """Like the new posts of the enabled targets (one pass)."""
    from story_liker.jobs.posts import run_posts as job

    _execute(
        Spec("run-posts", monitored=True), lambda d: job(d, dry_run=dry_run or d.settings.dry_run, max_likes=max_likes)
    )


@app.command()
def cleanup(
    older_than: Annotated[
        float | None, typer.Option("--older-than", help="Hours (default STORY_RETENTION_HOURS).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count the story records that would be deleted; delete nothing.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Allow a retention below 24 h.")] = False,
    all_accounts: Annotated[
        bool,
        typer.Option(
            "--all-accounts",
            help="Delete the old story records of every account in the database, not only IG_USERNAME's "
            "(with this retention).",
        ),
    ] = False,
) -> None:
    """Delete IG_USERNAME's story records older than the retention, its action rows past their use, and its run
    records and delivered notifications older than RUN_RETENTION_DAYS, all at once, then give a SQLite file's free
    space back (posts are never deleted). The like passes prune the same a batch at a time: this is for a first
    large prune, or by hand. No Instagram request.

    Like every command it acts for IG_USERNAME only (several accounts may share the database, each with its own
    retention); without IG_USERNAME it exits 78 unless --all-accounts asks for every account."""
    from story_liker.jobs.maintenance import cleanup as job

    def run(d: Deps) -> Report:
        report = job(
            d,
            older_than_hours=older_than,
            dry_run=dry_run or d.settings.dry_run,
            force=force,
            all_accounts=all_accounts,
        )
        verb = "would delete" if report.outcome == "dry_run" else "deleted"
        typer.echo(
            f"{verb} {report.counts.deleted} story records of {report.extra['whose']} taken before "
            f"{report.extra['cutoff']}",
            err=True,
        )
        return report

    _execute(
        Spec("cleanup", monitored=True, account=False), run
    )  # the job says what to do without IG_USERNAME: --all-accounts


@app.command()
def keepalive(dry_run: DryRun = False) -> None:
    """One light authenticated request so the session does not expire; saves refreshed cookies.

    The request only reads, so --dry-run sends it too (it never likes or marks anything seen)."""
    from story_liker.jobs.maintenance import keepalive as job

    _execute(_pass("keepalive"), job)


@app.command()
def login(
    settings_file: Annotated[
        Path | None, typer.Option("--settings-file", help="Import an instagrapi settings JSON.")
    ] = None,
    sessionid_file: Annotated[
        Path | None,
        typer.Option("--sessionid-file", help="Log in with a browser sessionid read from this file ('-': stdin)."),
    ] = None,
    sessionid: Annotated[
        str | None,
        typer.Option("--sessionid", help="A browser sessionid on the command line (visible in ps: prefer the file)."),
    ] = None,
    replace_undecryptable: Annotated[
        bool,
        typer.Option(
            "--replace-undecryptable",
            help="Replace a stored session that SESSION_ENCRYPTION_KEY cannot decrypt (its device is lost).",
        ),
    ] = False,
) -> None:
    """Log in once (password with 2FA, a settings file, or a sessionid) and store the session."""
    from story_liker.jobs.login import login as job

    tty = _env().terminal

    def run(d: Deps) -> Report:
        if sessionid is not None:  # after the settings were found valid: an error stays one line
            typer.echo(
                "story-liker: warning: --sessionid puts the secret in ps and your shell history; "
                "use --sessionid-file FILE (or - for stdin)",
                err=True,
            )
        report = job(
            d,
            settings_file=settings_file,
            sessionid=sessionid if sessionid is not None else _read_sessionid(sessionid_file),
            password_prompt=_password_prompt if tty else None,
            code_prompt=(lambda: _ask("2FA code: ")) if tty else None,
            challenge_prompt=(lambda choice: _ask(f"Security code sent by {choice}: ")) if tty else None,
            replace_undecryptable=replace_undecryptable,
        )
        typer.echo(f"logged in as {d.settings.account()} ({report.extra['method']}); session stored", err=True)
        return report

    _execute(Spec("login"), run)


def _password_prompt(attempt: int) -> str:
    """The password, typed without echo; asked again (attempt 2, 3) only after Instagram rejected it."""
    from story_liker.health import LOGIN_PROMPT_TRIES

    again = f"Instagram rejected the password; try {attempt} of {LOGIN_PROMPT_TRIES}. " if attempt > 1 else ""
    return _ask(f"{again}Instagram password: ", secret=True, name="Instagram password")


def _ask(label: str, *, secret: bool = False, name: str | None = None) -> str:
    """A prompt a person can leave: Ctrl-C ends the command at once (130), Ctrl-D or nothing typed is 2.

    A secret answer is registered for redaction at once: no log line can carry it."""
    import getpass

    from story_liker.errors import NoInput
    from story_liker.logging import register_secret

    what = (name or label.strip(": ")).lower()

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # the pass handler would wait for input
    try:
        answer = getpass.getpass(label) if secret else input(label)
    except EOFError:
        sys.stderr.write("\n")
        raise NoInput(f"no {what} given") from None
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        raise Interrupted(signal.SIGINT) from None
    finally:
        signal.signal(signal.SIGINT, previous)
    if secret:
        register_secret(answer)
    if not answer.strip():
        raise NoInput(f"no {what} given")
    return answer.strip() if not secret else answer


def _read_sessionid(path: Path | None) -> str | None:
    from story_liker.errors import UsageError

    if path is None:
        return None
    try:
        stdin = _env().stdin
        if str(path) == "-" and stdin is None:
            raise UsageError("--sessionid-file -: standard input is closed")
        text = stdin.read() if str(path) == "-" and stdin is not None else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the sessionid from {path}: {type(exc).__name__}") from None
    return text.strip()


@session_app.command("export")
def session_export(
    path: Annotated[Path, typer.Argument(help="A new file (written 0600); it holds your session: a secret.")],
) -> None:
    """Write the stored session as instagrapi settings JSON (to move hosts). No request."""
    from story_liker.jobs.login import export_session

    def run(d: Deps) -> Report:
        report = export_session(d, path)
        typer.echo(
            f"session of {d.settings.account()} written to {path} (0600). It is as good as your password: "
            "copy it only to where you import it, then delete it",
            err=True,
        )
        return report

    _execute(Spec("session-export"), run)


@session_app.command("import")
def session_import(
    path: Annotated[Path, typer.Argument(help="instagrapi settings JSON (`session export`, Client.dump_settings).")],
) -> None:
    """Store a session exported elsewhere (a laptop, another host); checked with one light request."""
    from story_liker.jobs.login import login as job

    def run(d: Deps) -> Report:
        report = job(
            d, settings_file=path, sessionid=None, password_prompt=None, code_prompt=None, challenge_prompt=None
        )
        typer.echo(f"session of {d.settings.account()} imported and verified; delete {path} now", err=True)
        return report

    _execute(Spec("session-import"), run)


@session_app.command("upgrade")
def session_upgrade() -> None:
    """Move the stored session to instagrapi's current app version, keeping the device ids. No request."""
    from story_liker.jobs.login import upgrade_session

    def run(d: Deps) -> Report:
        report = upgrade_session(d)
        typer.echo(
            f"session of {d.settings.account()} moved from app {report.extra['before'] or '?'} "
            f"to {report.extra['after']}; device ids kept",
            err=True,
        )
        return report

    _execute(Spec("session-upgrade"), run)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (idempotent)."""
    from story_liker.db import make_engine
    from story_liker.db import migrate as upgrade

    settings = _load_settings()
    engine = None
    try:
        engine = make_engine(settings.database_url)  # no new_database warning: its line below names the database
        before, after = upgrade(engine)
    except StoryLikerError as exc:
        _fail(exc.message, exc.exit_code)
        raise  # unreachable; for type checkers
    finally:
        if engine is not None:
            engine.dispose()
    log.info("migrated", extra={"from": before, "to": after})
    from story_liker.status import database_shown

    typer.echo(
        f"schema at {after}"
        + (" (unchanged)" if before == after else f" (was {before or 'empty'})")
        + f": {database_shown(settings.database_url)}",
        err=True,
    )


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Session, flags, cooldown, limit usage, targets and last runs. Never prints a secret."""
    from story_liker.status import status_data, status_text

    _env().json_errors = as_json

    def run(d: Deps) -> Report:
        from story_liker.jobs.deps import Outcome, Report

        data = status_data(d)
        typer.echo(json.dumps(data, indent=2, default=str) if as_json else status_text(data))
        return Report(Outcome.OK, d.counts)

    _execute(_reading("status"), run)


@app.command()
def keygen() -> None:
    """Print a new SESSION_ENCRYPTION_KEY (Fernet)."""
    from cryptography.fernet import Fernet

    typer.echo(Fernet.generate_key().decode())


def _accounts(
    command: str, username: str | None, action: Callable[[Deps, str | None], str], *, read_only: bool = False
) -> None:
    from story_liker.settings import normalise_username

    def run(d: Deps) -> Report:
        from story_liker.jobs.deps import Outcome, Report

        name = None
        if username is not None:
            try:
                name = normalise_username(username)
            except ValueError as exc:
                from story_liker.errors import UsageError

                raise UsageError(str(exc)) from None
        typer.echo(action(d, name))
        return Report(Outcome.OK, d.counts)

    _execute(Spec(f"accounts-{command}", prints=True, record=False, read_only=read_only, log_level="WARNING"), run)


@accounts_app.command("list")
def accounts_list() -> None:
    """List the targets of IG_USERNAME."""

    def action(d: Deps, _: str | None) -> str:
        from story_liker.status import not_stored_yet

        rows = d.store.targets(d.settings.account(), enabled_only=False)
        lines = [
            f"{t.username:30} {'enabled ' if t.enabled else 'disabled'} {t.managed_by:3} pk={t.user_pk or '-'}"
            + (f"  error: {t.last_error}" if t.last_error else "")
            for t in rows
        ]
        lines += [
            f"{name:30} enabled  env not stored yet (TARGET_ACCOUNTS; the next run stores it)"
            for name in not_stored_yet(d.settings, rows)
        ]
        if d.settings.follow_everyone and not any(t.managed_by == "tray" for t in rows):
            lines.append("*  every account you follow: found by the next run (TARGET_ACCOUNTS=*)")
        return "\n".join(lines) or "no targets: set TARGET_ACCOUNTS or run `story-liker accounts add NAME`"

    _accounts("list", None, action, read_only=True)


@accounts_app.command("add")
def accounts_add(username: str) -> None:
    """Add a target."""

    def action(d: Deps, name: str | None) -> str:
        from story_liker.errors import UsageError

        if name == d.settings.account():
            raise UsageError(f"{name} is IG_USERNAME, the account that likes: it cannot be its own target")
        return (
            f"added {name}"
            if d.store.add_target(d.settings.account(), name or "", d.clock())
            else f"{name} is already a target"
        )

    _accounts("add", username, action)


def _not_overridden(d: Deps, name: str, command: str) -> None:
    """A name TARGET_ACCOUNTS lists is the environment's to manage: the next run's sync would undo a change
    made here, so say where to make it instead. A target found by `*` may be disabled (that sticks) but not
    removed (the tray would bring it back)."""
    from story_liker.errors import ConfigError

    named = d.settings.named_targets or []
    target = next((t for t in d.store.targets(d.settings.account(), enabled_only=False) if t.username == name), None)
    if target is None:
        return
    if name in named and command in ("disable", "remove"):
        raise ConfigError(f"{name} is listed in TARGET_ACCOUNTS: take it out there ({command} would be undone)")
    if target.managed_by == "tray" and command == "remove":
        raise ConfigError(
            f"{name} was found by TARGET_ACCOUNTS=*: `accounts disable {name}` or TARGET_EXCLUDE={name} keeps it out"
        )


def _toggle(command: str, username: str, enabled: bool) -> None:
    def action(d: Deps, name: str | None) -> str:
        from story_liker.errors import UsageError

        _not_overridden(d, name or "", command)
        if not d.store.set_target_enabled(d.settings.account(), name or "", enabled):
            raise UsageError(f"{name} is not a target")
        return f"{command}d {name}"

    _accounts(command, username, action)


@accounts_app.command("enable")
def accounts_enable(username: str) -> None:
    """Enable a target."""
    _toggle("enable", username, True)


@accounts_app.command("disable")
def accounts_disable(username: str) -> None:
    """Disable a target (its history stays)."""
    _toggle("disable", username, False)


@accounts_app.command("remove")
def accounts_remove(username: str) -> None:
    """Remove a target; the story and post records it earned stay."""

    def action(d: Deps, name: str | None) -> str:
        from story_liker.errors import UsageError

        _not_overridden(d, name or "", "remove")
        if not d.store.remove_target(d.settings.account(), name or ""):
            raise UsageError(f"{name} is not a target")
        return f"removed {name}"

    _accounts("remove", username, action)


# --- telling the person: notifications, doctor, report, history --------------------------------

notify_app = typer.Typer(help="Notifications (NOTIFY_URLS, NOTIFY_URLS_FILE, NOTIFY_CONFIG).", no_args_is_help=True)
app.add_typer(notify_app, name="notify")
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@notify_app.command("test")
def notify_test() -> None:
    """Send one test message to every configured notification URL and say which were delivered."""
    from story_liker.errors import CONFIG, DB_UNAVAILABLE
    from story_liker.hooks import notify

    settings = _load_settings(output_on_stdout=True, log_level="WARNING")
    if not settings.notifications_on:
        _fail("no notification URL is set: NOTIFY_URLS, NOTIFY_URLS_FILE or NOTIFY_CONFIG", CONFIG)
    outcomes, problems = notify.send_test(settings)
    for outcome in outcomes:
        if outcome.delivered:
            said = "delivered"
        elif outcome.unconfirmed:
            said = f"sent, but no answer in time ({outcome.why}): see whether it arrived"
        else:
            said = f"NOT delivered ({outcome.why})"
        typer.echo(f"{outcome.label}: {said}")
    for problem in problems:
        typer.echo(problem)
    delivered = bool(outcomes) and all(o.delivered for o in outcomes)
    raise typer.Exit(CONFIG if problems else OK if delivered else DB_UNAVAILABLE)


@app.command()
def doctor(
    as_json: AsJson = False,
    online: Annotated[
        bool, typer.Option("--online", help="Also send one light Instagram request (under the run lock).")
    ] = False,
) -> None:
    """One preflight checklist: settings, database, session, flags, cooldown, lock, targets, notifications.

    Exits 0 when all is well, else with the exit code of the first problem (78, 69, 77, 75)."""
    from story_liker import doctor as checks
    from story_liker import settings as settings_module

    settings: Settings | None = None
    error: StoryLikerError | None = None
    try:
        settings_module.load()
    except StoryLikerError as exc:
        error = exc
    else:
        settings = _load_settings(output_on_stdout=True, log_level="WARNING")
        for handler in logging.getLogger().handlers:  # stdout is the checklist's
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(sys.stderr)
    try:
        found = checks.run(settings, error, online=online, connect=_env().connect)
    except KeyboardInterrupt:
        raise typer.Exit(Interrupted(signal.SIGINT).exit_code) from None
    typer.echo(json.dumps(checks.as_json(found), indent=2) if as_json else checks.as_text(found))
    raise typer.Exit(checks.exit_code(found))


@app.command()
def report(
    since: Annotated[str, typer.Option("--since", help="How far back: 7d, 24h, 90m, 2w.")] = "7d",
    as_json: AsJson = False,
) -> None:
    """Likes per day and per target, cooldowns, targets never liked or not checked, requests per day."""
    from story_liker import report as reporting

    def run(d: Deps) -> Report:
        from story_liker.jobs.deps import Outcome, Report

        span, now = reporting.parse_since(since), d.clock()
        data = reporting.report_data(
            d.store, d.settings, d.settings.account(), window=reporting.Window(now - span, now)
        )
        if as_json:
            typer.echo(json.dumps(data, indent=2))
        elif sys.stdout.isatty():
            from rich.console import Console

            Console().print(reporting.report_rich(data))
        else:
            typer.echo(reporting.report_text(data, bars=False))
        return Report(Outcome.OK, d.counts)

    _execute(_reading("report"), run)


@app.command()
def history(
    target: Annotated[str | None, typer.Option("--target", help="Only this target's likes.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="At most N items.")] = 20,
    as_json: AsJson = False,
) -> None:
    """What was liked and when, newest first, with the Instagram link of each item."""
    from story_liker import report as reporting
    from story_liker.settings import normalise_username

    def run(d: Deps) -> Report:
        from story_liker.errors import UsageError
        from story_liker.jobs.deps import Outcome, Report

        try:
            name = normalise_username(target) if target is not None else None
        except ValueError as exc:
            raise UsageError(f"--target: {exc}") from None
        items = reporting.history_data(d.store, d.settings.account(), target=name, limit=limit)
        typer.echo(json.dumps(items, indent=2) if as_json else reporting.history_text(items))
        return Report(Outcome.OK, d.counts)

    _execute(_reading("history"), run)


def main() -> None:
    """The console script. The cyclic garbage collector is held off through start-up (imports and set-up make some
    10^5 objects that live as long as the process: the collector walked them again and again, a quarter of a
    nothing-new pass's CPU, and found nothing); the job runs with it on, over what start-up left frozen. The few
    commands that run no job (migrate, doctor, keygen) are short and end with it off."""
    gc.disable()
    _start_up.append(True)
    try:
        app()
    except SystemExit:
        raise
    except BaseException:  # pragma: no cover - last resort, never print locals
        sys.stderr.write("story-liker: unexpected error\n")
        sys.exit(BUG)
