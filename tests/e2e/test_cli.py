"""The CLI's contract without Instagram: help, version, exit codes for bad input, accounts, login errors."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from story_liker.db import SCHEMA_REVISION, make_engine
from story_liker.store import Store
from tests.conftest import Terminal, fresh_database_url, login, needs_postgres, run_cli, run_process


def test_help_and_version_work_with_an_empty_environment(tmp_path: Path) -> None:
    """The installed entry point, as a process."""
    result = run_process("--help", cwd=tmp_path)
    assert result.code == 0 and "run-stories" in result.stdout
    version = run_process("--version", cwd=tmp_path)
    assert version.code == 0 and version.stdout.startswith("story-liker ")
    assert not (tmp_path / "data").exists()  # --help touches no database


def test_help_does_not_import_instagrapi_or_the_database() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from story_liker.cli import app;"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output;"
        "heavy = ('instagrapi', 'sqlalchemy', 'sqlmodel', 'alembic', 'pydantic_settings');"
        "heavy = [m for m in heavy if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_python_dash_m_works(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "story_liker", "--version"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0 and "story-liker" in result.stdout


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    assert run_cli("like-everything", cwd=tmp_path).code == 2


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "IG_USERNAME"),
        ({"IG_USERNAME": "me", "STORY_LIKES_PER_HOUR": "-5"}, "STORY_LIKES_PER_HOUR"),
        (
            {"IG_USERNAME": "me", "ACTION_DELAY_MIN_SECONDS": "10", "ACTION_DELAY_MAX_SECONDS": "1"},
            "ACTION_DELAY",
        ),
        ({"IG_USERNAME": "me", "DATABASE_URL": "mongodb://x"}, "DATABASE_URL"),
        ({"IG_USERNAME": "me", "IG_PROXY": "::nope::"}, "IG_PROXY"),
        ({"IG_USERNAME": "me", "IG_PASSWORD_FILE": "/does/not/exist"}, "IG_PASSWORD_FILE"),
        ({"IG_USERNAME": "me", "TARGET_ACCOUNTS": "good, bad name"}, "TARGET_ACCOUNTS"),
        ({"IG_USERNAME": "not a username"}, "IG_USERNAME"),
    ],
)
def test_bad_configuration_exits_78_with_one_line(tmp_path: Path, env: dict[str, str], needle: str) -> None:
    result = run_cli("run-stories", env=env, cwd=tmp_path)
    assert result.code == 78, result.output
    assert needle in result.error and "\n" not in result.error  # said once, on one line
    assert "Traceback" not in result.output


NOT_LOOPBACK = ("http://example.com", "http://10.0.0.1:8080", "http://127.0.0.1.evil.com")


@pytest.mark.parametrize("command", [["run-stories"], ["status"]])
@pytest.mark.parametrize("url", NOT_LOOPBACK)
def test_api_url_outside_loopback_exits_78(tmp_path: Path, url: str, command: list[str]) -> None:
    """IG_API_URL sends the session (and the password, on a re-login) past IG_PROXY: this machine only."""
    result = run_cli(*command, env={"IG_USERNAME": "me", "IG_API_URL": url}, cwd=tmp_path)
    assert result.code == 78, result.output
    assert result.stderr.startswith("story-liker: IG_API_URL: only a loopback address")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "data").exists()  # refused before the database is even opened


@pytest.mark.parametrize(
    "command",
    [
        ["run-posts"],
        ["keepalive"],
        ["login", "--sessionid", "x" * 40],
        ["cleanup"],
        ["migrate"],
        ["accounts", "list"],
        ["accounts", "add", "alice"],
    ],
)
def test_api_url_outside_loopback_exits_78_for_every_command_that_reads_settings(
    tmp_path: Path, command: list[str]
) -> None:
    result = run_cli(*command, env={"IG_USERNAME": "me", "IG_API_URL": "http://10.0.0.1:8080"}, cwd=tmp_path)
    assert result.code == 78, result.output
    assert "IG_API_URL" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_keygen_reads_no_setting(tmp_path: Path) -> None:
    """keygen is how a broken SESSION_ENCRYPTION_KEY gets fixed: it must not need valid settings."""
    result = run_cli("keygen", env={"IG_API_URL": "http://example.com", "SESSION_ENCRYPTION_KEY": "x"}, cwd=tmp_path)
    assert result.code == 0 and len(result.stdout.strip()) == 44


def test_api_url_on_loopback_is_used_and_logged_as_a_warning(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    ig.add_story(ig.add_user("alice"))
    env["TARGET_ACCOUNTS"] = "alice"
    login(ig, env, tmp_path)
    result = run_cli("run-stories", env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    assert len(ig.liked_story_ids) == 1  # the requests went to the double
    warning = result.event("ig_api_url_set")
    assert warning["level"] == "warning" and warning["host"] == "127.0.0.1"
    assert ig.url not in result.output  # the host only, never the URL (which may carry credentials)
    # status and accounts print their result on stdout: the warning goes to stderr, the JSON stays clean
    status = run_cli("status", "--json", env=env, cwd=tmp_path)
    assert status.code == 0, status.output
    assert json.loads(status.stdout)["session"]["stored"]
    assert [json.loads(line)["event"] for line in status.stderr.splitlines()] == ["ig_api_url_set"]
    listing = run_cli("accounts", "list", env=env, cwd=tmp_path)
    assert listing.stdout.split()[0] == "alice" and "ig_api_url_set" in listing.stderr


def test_unreachable_database_exits_69(tmp_path: Path) -> None:
    env = {"IG_USERNAME": "me", "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}
    result = run_cli("run-stories", env=env, cwd=tmp_path)
    assert result.code == 69, result.output
    assert "database unavailable" in result.error and "Traceback" not in result.output
    migrate = run_cli("migrate", env=env, cwd=tmp_path)
    assert migrate.code == 69 and "database unavailable" in migrate.error


PASSWORD = "S3cretPW"
URLS_WITH_A_PASSWORD = [
    pytest.param(f"postgresql:/bob:{PASSWORD}@host/db", id="malformed"),
    pytest.param(f"postgresql://bob@127.0.0.1:1/db?password={PASSWORD}", id="libpq-query"),
    pytest.param(f"postgresql://bob:{PASSWORD}@127.0.0.1:1/db", id="userinfo"),
    pytest.param(f"postgresql://bob@127.0.0.1:1/db?PASSWORD={PASSWORD}", id="libpq-query-upper-case"),
    pytest.param(f"postgresql://bob:{PASSWORD[:4]}@{PASSWORD[4:]}@127.0.0.1:1/db", id="unencoded-at"),
    pytest.param(f"postgresql://bob@127.0.0.1:1/db?dbname=postgresql://bob:{PASSWORD}@h/db", id="uri-as-dbname"),
    pytest.param(f"postgresql://bob@127.0.0.1:1/db?oauth_client_secret={PASSWORD}", id="other-secret"),
]


@pytest.mark.parametrize("url", URLS_WITH_A_PASSWORD)
def test_the_database_password_is_never_printed(tmp_path: Path, url: str) -> None:
    env = {"IG_USERNAME": "me", "DATABASE_URL": url, "LOG_FORMAT": "json"}
    for args in (["run-stories"], ["status", "--json"], ["doctor"], ["doctor", "--json"], ["migrate"]):
        result = run_cli(*args, env=env, cwd=tmp_path)
        assert result.code in (69, 78), (args, result.output)
        assert PASSWORD not in result.output and PASSWORD[4:] not in result.output, (args, result.output)
        assert "Traceback" not in result.output
    status = run_cli("status", "--json", env=env, cwd=tmp_path)
    assert json.loads(status.stdout.splitlines()[-1])["exit_code"] == status.code  # after the run_failed line


@pytest.mark.postgres
@needs_postgres
def test_doctor_and_migrate_on_a_reachable_postgresql_do_not_print_a_password_given_as_a_query_parameter(
    tmp_path: Path,
) -> None:
    for url in fresh_database_url("postgresql", tmp_path):
        env = {"IG_USERNAME": "me", "DATABASE_URL": f"{url}&password={PASSWORD}", "LOG_FORMAT": "json"}
        for args, code in ((["doctor"], 78), (["migrate"], 0), (["doctor", "--json"], 77), (["status", "--json"], 0)):
            result = run_cli(*args, env=env, cwd=tmp_path)
            assert result.code == code and PASSWORD not in result.output, (args, result.output)
        shown = run_cli("doctor", env=env, cwd=tmp_path).stdout
        assert "reachable, schema" in shown and "password=***" in shown, shown


def test_unwritable_sqlite_location_exits_69(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_cli(
        "run-stories",
        env={"IG_USERNAME": "me", "DATABASE_URL": f"sqlite:///{blocker}/db.sqlite"},
        cwd=tmp_path,
    )
    assert result.code == 69, result.output


EVERY_DATABASE_COMMAND = [
    ["run-stories"],
    ["status"],
    ["status", "--json"],
    ["report"],
    ["history"],
    ["doctor"],
    ["migrate"],
    ["accounts", "list"],
]


@pytest.mark.parametrize("damage", ["random-bytes", "truncated"])
def test_a_corrupt_sqlite_file_is_one_line_naming_it_and_78_for_every_command(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "stories.db"
    env = {"IG_USERNAME": "me", "DATABASE_URL": f"sqlite:///{path}", "TARGET_ACCOUNTS": "alice"}
    if damage == "random-bytes":
        path.write_bytes(random.Random(7).randbytes(64 * 1024))
    else:
        assert run_cli("migrate", env=env, cwd=tmp_path).code == 0
        whole = path.read_bytes()
        assert len(whole) > 8 * 4096  # checkpointed into the file itself
        path.write_bytes(whole[: len(whole) // 3])
    for args in EVERY_DATABASE_COMMAND:
        result = run_cli(*args, env=env, cwd=tmp_path)
        assert result.code == 78, (args, result.output)
        assert "Traceback" not in result.output and "a bug" not in result.output, (args, result.output)
        assert f"{path} is not a SQLite database" in result.output, (args, result.output)
        if args[0] == "doctor":
            assert re.search(r"\[FAIL\] database +the database file \S+ is not a SQLite", result.stdout), result.stdout
        else:
            assert "corrupt" in result.error, (args, result.output)


def test_old_schema_is_refused_with_78_until_migrate(env: dict[str, str], tmp_path: Path) -> None:
    assert run_cli("migrate", env=env, cwd=tmp_path).code == 0
    engine = make_engine(env["DATABASE_URL"])
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))
    result = run_cli("run-stories", env=env, cwd=tmp_path)
    assert result.code == 78 and "story-liker migrate" in result.error
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": SCHEMA_REVISION})
    again = run_cli("migrate", env=env, cwd=tmp_path)
    assert again.code == 0 and "unchanged" in again.stderr
    engine.dispose()


def test_new_sqlite_database_is_created_on_first_run(tmp_path: Path) -> None:
    result = run_cli("status", env={"IG_USERNAME": "me"}, cwd=tmp_path)
    assert result.code == 0, result.output
    assert (tmp_path / "data" / "stories.db").stat().st_mode & 0o777 == 0o600
    assert "session      none" in result.stdout


def test_no_stored_session_and_no_password_exits_77_without_a_request(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    env["TARGET_ACCOUNTS"] = "alice"
    result = run_cli("run-stories", env=env, cwd=tmp_path)
    assert result.code == 77 and "story-liker login" in result.error
    assert ig.count() == 0


def test_accounts_commands_manage_targets(env: dict[str, str], tmp_path: Path) -> None:
    assert run_cli("accounts", "add", "@Alice", env=env, cwd=tmp_path).stdout.strip() == "added alice"
    assert "already" in run_cli("accounts", "add", "alice", env=env, cwd=tmp_path).stdout
    assert run_cli("accounts", "add", "https://instagram.com/bob/", env=env, cwd=tmp_path).code == 0
    assert run_cli("accounts", "disable", "bob", env=env, cwd=tmp_path).code == 0
    listing = run_cli("accounts", "list", env=env, cwd=tmp_path).stdout
    assert "alice" in listing and "disabled" in listing
    assert run_cli("accounts", "remove", "alice", env=env, cwd=tmp_path).code == 0
    missing = run_cli("accounts", "enable", "alice", env=env, cwd=tmp_path)  # command-line values: usage, 2
    assert missing.code == 2 and "not a target" in missing.error
    bad = run_cli("accounts", "add", "no way!", env=env, cwd=tmp_path)
    assert bad.code == 2 and "not an Instagram username" in bad.error
    assert run_cli("accounts", "remove", "nobody", env=env, cwd=tmp_path).code == 2
    assert run_cli("accounts", "enable", "bob", env=env, cwd=tmp_path).code == 0


def test_the_account_itself_is_refused_as_a_target(tmp_path: Path) -> None:
    env = {"IG_USERNAME": "Me.Myself", "DATABASE_URL": f"sqlite:///{tmp_path / 'stories.db'}"}
    added = run_cli("accounts", "add", "@me.myself", env=env, cwd=tmp_path)
    assert added.code == 2 and "added" not in added.stdout, added.output  # a name typed on the command line
    assert added.error == "me.myself is IG_USERNAME, the account that likes: it cannot be its own target"
    assert run_cli("accounts", "list", env=env, cwd=tmp_path).stdout.startswith("no targets: ")
    listed = env | {"TARGET_ACCOUNTS": "alice, https://instagram.com/me.myself/"}
    for args in (["run-stories"], ["status"], ["accounts", "list"]):
        result = run_cli(*args, env=listed, cwd=tmp_path)
        assert result.code == 78, result.output
        assert result.stderr.splitlines() == [
            "story-liker: TARGET_ACCOUNTS lists me.myself, which is IG_USERNAME (the account that likes): take it out"
        ]


def test_login_with_sessionid(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("login", "--sessionid", ig.sessionid, env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    assert ig.sessionid not in result.output
    assert run_cli("keepalive", env=env, cwd=tmp_path).code == 0


def test_interactive_password_login_from_env_without_a_terminal(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    env["IG_PASSWORD"] = ig.password
    result = run_cli("login", env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    status = json.loads(run_cli("status", "--json", env=env, cwd=tmp_path).stdout)
    assert status["session"]["stored"] and not status["needs_human"]["flag"]


def test_login_with_a_challenge_and_no_terminal_exits_77(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    env["IG_PASSWORD"] = ig.password
    ig.require_challenge()
    result = run_cli("login", env=env, cwd=tmp_path)
    assert result.code == 77, result.output


@pytest.mark.parametrize(
    "content",
    ["{not json", '["a list"]', '{"uuids": {}}', '{"uuids": {"uuid": "x"}, "cookies": {}}', "\x00\xff"],
)
def test_corrupt_settings_file_leaves_the_stored_session_untouched(
    ig: Any, env: dict[str, str], tmp_path: Path, content: str
) -> None:
    login(ig, env, tmp_path)
    store = Store(make_engine(env["DATABASE_URL"]))
    before = store.account(ig.username).settings
    bad = tmp_path / "bad.json"
    bad.write_text(content, errors="surrogateescape")
    result = run_cli("login", "--settings-file", str(bad), env=env, cwd=tmp_path)
    assert result.code == 78, result.output
    assert result.error and "\n" not in result.error
    assert store.account(ig.username).settings == before
    missing = run_cli("login", "--settings-file", str(tmp_path / "nope.json"), env=env, cwd=tmp_path)
    assert missing.code == 78
    store.engine.dispose()


def test_foreign_session_rejected_by_instagram_leaves_the_stored_session_untouched(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    login(ig, env, tmp_path)
    store = Store(make_engine(env["DATABASE_URL"]))
    before = store.account(ig.username).settings
    foreign = ig.settings()
    foreign["authorization_data"]["sessionid"] = foreign["cookies"]["sessionid"] = "999999%3Aforeign%3A" + "x" * 30
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(foreign))
    result = run_cli("login", "--settings-file", str(path), env=env, cwd=tmp_path)
    assert result.code != 0, result.output
    assert store.account(ig.username).settings == before
    store.engine.dispose()


def test_interactive_login_on_a_terminal_asks_for_password_and_2fa_code(env: dict[str, str], tmp_path: Path) -> None:
    from tests.double import InstagramDouble, totp_code

    seed = "JBSWY3DPEHPK3PXP"
    with InstagramDouble(totp_seed=seed) as double:
        # on a terminal, with no IG_PASSWORD and no TOTP seed: both are asked for
        terminal = Terminal(["login"], {"IG_USERNAME": double.username, "IG_API_URL": double.url} | _db(env), tmp_path)
        terminal.read_until(b"Instagram password")
        terminal.type_secret(double.password)
        terminal.read_until(b"2FA code")
        terminal.type(totp_code(seed))
        terminal.read_until(b"session stored")
        assert terminal.wait() == 0, terminal.screen.decode(errors="replace")
        assert double.password.encode() not in terminal.screen  # typed without echo
        status = run_cli("status", "--json", env=env | {"IG_USERNAME": double.username}, cwd=tmp_path)
        assert json.loads(status.stdout)["session"]["stored"]


def test_a_manual_run_on_a_terminal_shows_progress(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    for name in ("alice", "bob", "carol"):
        ig.add_story(ig.add_user(name))
    env |= {"TARGET_ACCOUNTS": "alice,bob,carol", "ACTION_DELAY_MIN_SECONDS": "0.3", "ACTION_DELAY_MAX_SECONDS": "0.3"}
    login(ig, env, tmp_path)
    terminal = Terminal(["run-stories"], env | {"LOG_FORMAT": "text"}, tmp_path)
    code = terminal.wait()
    screen = terminal.screen.decode(errors="replace")
    assert code == 0, screen
    assert re.search(r"[0-3]/3", screen), screen  # the rich progress bar (targets liked of 3) was drawn
    assert "story_liked target=alice" in screen  # text log lines, not JSON
    assert len(ig.liked_story_ids) == 3


def _db(env: dict[str, str]) -> dict[str, str]:
    return {"DATABASE_URL": env["DATABASE_URL"]}


@pytest.mark.postgres
@needs_postgres
def test_postgres_without_schema_exits_78_and_asks_for_migrate(tmp_path: Path) -> None:
    for url in fresh_database_url("postgresql", tmp_path):
        for command in ("run-stories", "cleanup", "status"):
            result = run_cli(command, env={"IG_USERNAME": "me", "DATABASE_URL": url}, cwd=tmp_path)
            assert result.code == 78, result.output
            assert result.error == "the database has no schema yet: run `story-liker migrate`"
        assert run_cli("migrate", env={"DATABASE_URL": url}, cwd=tmp_path).code == 0
        assert run_cli("cleanup", "--all-accounts", env={"DATABASE_URL": url}, cwd=tmp_path).code == 0


def test_dash_h_is_help_everywhere(tmp_path: Path) -> None:
    for args in (["-h"], ["run-stories", "-h"], ["accounts", "-h"], ["session", "upgrade", "-h"]):
        result = run_cli(*args, cwd=tmp_path)
        assert result.code == 0 and "Usage:" in result.stdout, (args, result.output)


def test_a_routine_75_is_logged_as_a_warning(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    env["TARGET_ACCOUNTS"] = "alice"
    login(ig, env, tmp_path)
    store = Store(make_engine(env["DATABASE_URL"]))
    assert store.acquire_lock(ig.username, run_id="x", command="run-posts", now=datetime.now(UTC), ttl=timedelta(60))
    result = run_cli("run-stories", env=env, cwd=tmp_path)
    assert result.code == 75 and result.event("run_failed")["level"] == "warning"
    store.engine.dispose()


@pytest.mark.parametrize(("key", "code", "says"), [(b"\x04", 2, "no instagram password given"), (b"\x03", 130, "")])
def test_ctrl_d_and_ctrl_c_at_the_password_prompt_end_at_once_without_a_traceback(
    env: dict[str, str], tmp_path: Path, key: bytes, code: int, says: str
) -> None:
    import os
    import termios
    import time

    from tests.double import InstagramDouble

    with InstagramDouble() as double:
        terminal = Terminal(["login"], {"IG_USERNAME": double.username, "IG_API_URL": double.url} | _db(env), tmp_path)
        terminal.read_until(b"Instagram password")
        deadline = time.monotonic() + 10
        while termios.tcgetattr(terminal.fd)[3] & termios.ECHO:  # the prompt is reading, echo off
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.write(terminal.fd, key)
        assert terminal.wait() == code, terminal.screen.decode(errors="replace")
        screen = terminal.screen.decode(errors="replace")
        assert "Traceback" not in screen and says in screen.lower()
        assert double.count() == 0


def _login_on_a_terminal(double: Any, env: dict[str, str], tmp_path: Path, **extra: str) -> Terminal:
    return Terminal(["login"], {"IG_USERNAME": double.username, "IG_API_URL": double.url} | _db(env) | extra, tmp_path)


def _login_state(env: dict[str, str], username: str) -> Any:
    store = Store(make_engine(env["DATABASE_URL"]))
    try:
        return store.account(username, create=False)
    finally:
        store.engine.dispose()


WRONG = ("wrong-horse-1", "wrong-horse-2", "wrong-horse-3")


def test_a_wrong_password_on_a_terminal_is_asked_again_and_the_right_one_logs_in(
    env: dict[str, str], tmp_path: Path
) -> None:
    from tests.double import InstagramDouble

    with InstagramDouble() as double:
        terminal = _login_on_a_terminal(double, env, tmp_path)
        terminal.read_until(b"Instagram password")
        terminal.type_secret(WRONG[0])
        terminal.read_until(b"Instagram rejected the password; try 2 of 3. Instagram password: ")
        terminal.type_secret(double.password)
        terminal.read_until(b"session stored")
        code = terminal.wait()
        screen = terminal.screen.decode(errors="replace")
        assert code == 0, screen
        assert double.count("send_login_request") == 2  # two logins: the wrong password, then the right one
        assert double.count("accounts/login") == 1  # Instagram's "wrong password" comes from there
        assert "try 3 of 3" not in screen and "Traceback" not in screen
        for secret in (WRONG[0], double.password, double.sessionid):
            assert secret not in screen  # typed without echo, never logged
        state = _login_state(env, double.username)
        assert state.has_session and state.login_failures == 0 and not state.needs_human  # the success cleared it


def test_three_wrong_passwords_on_a_terminal_give_up_with_the_error_and_count_for_the_runs(
    env: dict[str, str], tmp_path: Path
) -> None:
    from tests.double import InstagramDouble

    with InstagramDouble() as double:
        terminal = _login_on_a_terminal(double, env, tmp_path)
        terminal.read_until(b"Instagram password")
        terminal.type_secret(WRONG[0])
        for attempt, wrong in ((2, WRONG[1]), (3, WRONG[2])):
            terminal.read_until(f"try {attempt} of 3. Instagram password: ".encode())
            terminal.type_secret(wrong)
        code = terminal.wait()
        screen = terminal.screen.decode(errors="replace")
        assert code == 77, screen
        errors = [line for line in screen.splitlines() if line.startswith("story-liker:")]
        assert errors == ["story-liker: login failed: BadPassword"], screen  # the one line, as for one try
        assert double.count("send_login_request") == 3 and double.count("accounts/login") == 3  # never a 4th
        assert "try 4" not in screen and "Traceback" not in screen
        database = Path(env["DATABASE_URL"].removeprefix("sqlite:///"))
        for secret in WRONG:
            assert secret not in screen
            assert not database.is_file() or secret.encode() not in database.read_bytes()
        state = _login_state(env, double.username)
        assert state.login_failures == 3 and not state.has_session and state.login_attempt_at is not None
        # the tries count like any login: an unattended run with IG_PASSWORD now needs a human, no request sent
        double.reset_requests()
        run = run_cli(
            "run-stories",
            env={"IG_USERNAME": double.username, "IG_API_URL": double.url, "IG_PASSWORD": double.password}
            | _db(env)
            | {"TARGET_ACCOUNTS": "alice"},
            cwd=tmp_path,
        )
        assert run.code == 77 and "3 login attempts failed in a row" in run.error, run.output
        assert double.count() == 0


def test_ctrl_c_at_the_second_password_prompt_ends_with_130(env: dict[str, str], tmp_path: Path) -> None:
    import os
    import termios
    import time

    from tests.double import InstagramDouble

    with InstagramDouble() as double:
        terminal = _login_on_a_terminal(double, env, tmp_path)
        terminal.read_until(b"Instagram password")
        terminal.type_secret(WRONG[0])
        terminal.read_until(b"try 2 of 3. Instagram password: ")
        deadline = time.monotonic() + 10
        while termios.tcgetattr(terminal.fd)[3] & termios.ECHO:  # the prompt is reading, echo off
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.write(terminal.fd, b"\x03")
        code = terminal.wait()
        screen = terminal.screen.decode(errors="replace")
        assert code == 130, screen
        assert "Traceback" not in screen and WRONG[0] not in screen
        assert double.count("send_login_request") == 1  # only the first, rejected, try
        assert _login_state(env, double.username).login_failures == 1


def test_a_password_from_the_environment_is_never_asked_again(env: dict[str, str], tmp_path: Path) -> None:
    """IG_PASSWORD (or its file) is the configuration's: sent again it would only be rejected again, terminal
    or not."""
    from tests.double import InstagramDouble

    with InstagramDouble() as double:
        plain = {"IG_USERNAME": double.username, "IG_API_URL": double.url, "IG_PASSWORD": WRONG[0]} | _db(env)
        result = run_cli("login", env=plain, cwd=tmp_path)
        assert result.code == 77 and result.error == "login failed: BadPassword"
        assert double.count("send_login_request") == 1
        terminal = _login_on_a_terminal(double, env, tmp_path, IG_PASSWORD=WRONG[0])
        code = terminal.wait()
        assert code == 77 and b"Instagram password" not in terminal.screen, terminal.screen
        assert double.count("send_login_request") == 2  # one more, not three
        assert _login_state(env, double.username).login_failures == 2


def test_a_network_failure_at_a_typed_login_is_not_asked_again(env: dict[str, str], tmp_path: Path) -> None:
    """Not Instagram's answer about the password: trying again at once would only repeat it."""
    from tests.double import InstagramDouble

    with InstagramDouble() as double:
        double.fail("bloks/", status=503, times=None)
        double.fail("accounts/login", status=503, times=None)
        terminal = _login_on_a_terminal(double, env, tmp_path)
        terminal.read_until(b"Instagram password")
        terminal.type_secret(double.password)
        code = terminal.wait()
        screen = terminal.screen.decode(errors="replace")
        assert code == 75, screen
        assert "try 2 of 3" not in screen and double.password not in screen
        assert _login_state(env, double.username).login_failures == 1


def test_login_reads_the_sessionid_from_a_file_and_warns_about_the_flag(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    secret_file = tmp_path / "sessionid"
    secret_file.write_text(ig.sessionid + "\n")
    from_file = run_cli("login", "--sessionid-file", str(secret_file), env=env, cwd=tmp_path)
    assert from_file.code == 0, from_file.output
    assert "warning" not in from_file.stderr and ig.sessionid not in from_file.output
    flag = run_cli("login", "--sessionid", ig.sessionid, env=env, cwd=tmp_path)
    assert flag.code == 0 and "--sessionid-file" in flag.stderr


def test_help_shows_no_bool_placeholders_and_cleanup_has_its_own_dry_run_text(tmp_path: Path) -> None:
    for args in (["-h"], ["run-stories", "-h"], ["cleanup", "-h"], ["login", "-h"], ["accounts", "list", "-h"]):
        result = run_cli(*args, cwd=tmp_path, env={"COLUMNS": "120"})
        assert result.code == 0 and "<bool>" not in result.stdout, result.stdout
    cleanup = " ".join(run_cli("cleanup", "-h", cwd=tmp_path).stdout.split())
    assert "delete nothing" in cleanup and "like or seen" not in cleanup


def test_without_a_username_the_error_says_how_to_set_it(tmp_path: Path) -> None:
    result = run_cli("run-stories", cwd=tmp_path)
    assert result.code == 78 and ".env" in result.error and "story-liker login" in result.error


def test_on_a_terminal_logs_are_text_and_an_error_is_printed_once(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    env["TARGET_ACCOUNTS"] = "alice"
    login(ig, env, tmp_path)
    store = Store(make_engine(env["DATABASE_URL"]))
    assert store.acquire_lock(ig.username, run_id="x", command="run-posts", now=datetime.now(UTC), ttl=timedelta(60))
    terminal = Terminal(["run-stories"], env, tmp_path)
    assert terminal.wait() == 75
    screen = terminal.screen.decode(errors="replace")
    assert '{"timestamp"' not in screen and "run_finished" in screen  # text lines, not JSON
    assert screen.count("another run holds the lock") == 1, screen
    store.engine.dispose()


def test_instagrapi_log_lines_keep_their_template_without_placeholders(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from story_liker.logging import configure

    configure("INFO", "json")
    logging.getLogger("instagrapi").warning("Status %s: %d bytes, %(name)s", 408, 5)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["event"] == "Status ...: ... bytes, ..." and "408" not in json.dumps(line)


def test_accounts_disable_and_remove_refuse_a_name_target_accounts_lists(env: dict[str, str], tmp_path: Path) -> None:
    env |= {"IG_USERNAME": "me", "TARGET_ACCOUNTS": "alice"}
    assert run_cli("accounts", "add", "alice", env=env, cwd=tmp_path).code == 0
    for command in ("disable", "remove"):
        result = run_cli("accounts", command, "alice", env=env, cwd=tmp_path)
        assert result.code == 78 and "TARGET_ACCOUNTS" in result.error, result.output
    free = env | {"TARGET_ACCOUNTS": "bob"}
    assert run_cli("accounts", "disable", "alice", env=free, cwd=tmp_path).code == 0


def test_status_json_on_a_configuration_error_is_a_json_object(tmp_path: Path) -> None:
    result = run_cli("status", "--json", env={"IG_USERNAME": "me", "LOG_LEVEL": "LOUD"}, cwd=tmp_path)
    assert result.code == 78
    assert json.loads(result.stdout) == {"error": result.stderr.strip().removeprefix("story-liker: "), "exit_code": 78}


def test_status_says_no_session_is_a_problem_and_lists_configured_targets(tmp_path: Path) -> None:
    result = run_cli("status", env={"IG_USERNAME": "me", "TARGET_ACCOUNTS": "alice,bob"}, cwd=tmp_path)
    assert result.code == 0
    assert (
        "problems     session none stored: run `story-liker login`" in result.stdout and "alice, bob" in result.stdout
    )


def test_redaction_hides_the_password_of_any_url_with_credentials() -> None:
    from story_liker.logging import redact

    line = "proxy socks5://bob:S3cretPW@10.0.0.1:1080 refused; see https://example.com/a@b"
    assert redact(line) == "proxy socks5://bob:***@10.0.0.1:1080 refused; see https://example.com/a@b"
