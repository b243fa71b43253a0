"""What a newcomer meets in the first hour: a closed stdin, a misspelled setting, another directory's database,
targets not stored yet, a failed first login, an error said once, a limit that says why it differs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from story_liker.db import SCHEMA_REVISION
from story_liker.settings import misspelled
from story_liker.status import status_text
from tests.conftest import STORY_LIKER, Result, run_cli

# --- login with stdin closed -------------------------------------------------------------------------------


def _closed_stdin(*args: str, env: dict[str, str], cwd: Path) -> Result:
    """`story-liker ARGS <&-`: the process starts with no file descriptor 0 at all (sys.stdin is None)."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    proc = subprocess.run(
        [STORY_LIKER, *args],
        env=base | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        preexec_fn=lambda: os.close(0),
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def test_login_with_stdin_closed_is_the_no_terminal_error_not_a_crash(tmp_path: Path) -> None:
    env = {"IG_USERNAME": "bob", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = _closed_stdin("login", env=env, cwd=tmp_path)
    assert result.code == 78, result.output
    assert result.error == "IG_PASSWORD (or IG_PASSWORD_FILE) is not set and there is no terminal to ask"
    assert "unexpected" not in result.output and "Traceback" not in result.output
    from_stdin = _closed_stdin("login", "--sessionid-file", "-", env=env, cwd=tmp_path)
    assert from_stdin.code == 2 and from_stdin.error == "--sessionid-file -: standard input is closed"


def test_a_bad_sessionid_from_a_file_or_stdin_names_no_flag_it_did_not_use(tmp_path: Path) -> None:
    env = {"IG_USERNAME": "bob", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    (tmp_path / "sid").write_text("abc\n")
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    piped = subprocess.run(
        [STORY_LIKER, "login", "--sessionid-file", "-"],
        env=base | env,
        cwd=tmp_path,
        input="abc\n",
        capture_output=True,
        text=True,
        timeout=60,
    )  # `echo abc | story-liker login --sessionid-file -`
    for result in (
        run_cli("login", "--sessionid-file", str(tmp_path / "sid"), env=env, cwd=tmp_path),
        Result(piped.returncode, piped.stdout, piped.stderr),
    ):
        assert result.code == 2, result.output
        assert result.error.startswith("that sessionid does not look like an Instagram sessionid"), result.error
        assert "--sessionid" not in result.output


# --- a misspelled setting ----------------------------------------------------------------------------------


def test_a_name_shaped_like_a_setting_names_the_closest_one() -> None:
    assert misspelled(["TARGET_ACOUNTS", "IG_USER", "NOTIFY_URL", "TAGRET_ACCOUNTS", "story_like_per_hour"]) == [
        ("IG_USER", "IG_USERNAME"),
        ("NOTIFY_URL", "NOTIFY_URLS"),
        ("TAGRET_ACCOUNTS", "TARGET_ACCOUNTS"),
        ("TARGET_ACOUNTS", "TARGET_ACCOUNTS"),
        ("story_like_per_hour", "STORY_LIKES_PER_HOUR"),
    ]
    assert misspelled(["DATABASE_URL_FILE"]) == [("DATABASE_URL_FILE", "DATABASE_URL")]  # no such setting


def test_the_usual_variables_of_a_machine_are_no_misspelled_setting() -> None:
    usual = [
        *("PATH", "HOME", "TERM", "LANG", "TZ", "USER", "SHELL", "PWD", "HOSTNAME", "LC_ALL", "NO_COLOR", "CI"),
        *("INVOCATION_ID", "JOURNAL_STREAM", "CREDENTIALS_DIRECTORY", "SYSTEMD_EXEC_PID", "VIRTUAL_ENV"),
        *("KUBERNETES_PORT", "KUBERNETES_SERVICE_HOST", "STORY_LIKER_SERVICE_HOST", "STORY_LIKER_SERVICE_PORT"),
        *("STORY_LIKER_PORT", "STORY_LIKER_PORT_8080_TCP_ADDR", "STORY_LIKER_SERVICE_PORT_HTTP"),
        *("TEST_DATABASE_URL", "PIP_INDEX_URL", "HTTP_PROXY", "HTTPS_PROXY", "SSL_CERT_FILE", "PYTHONPATH"),
        *("TARGET_ACCOUNTS", "target_accounts", "IG_PASSWORD_FILE", "LOG_LEVEL"),  # settings themselves
    ]
    assert misspelled(usual) == []


def test_a_misspelled_setting_is_a_warning_and_a_doctor_problem_never_its_value(tmp_path: Path) -> None:
    env = {"IG_USERNAME": "bob", "TARGET_ACOUNTS": "alice,bob2", "IG_PASWORD": "hunter2-secret"}
    status = run_cli("status", env=env, cwd=tmp_path)
    assert status.code == 0, status.output
    warnings = {
        e["variable"]: e for e in map(json.loads, status.stderr.splitlines()) if e["event"] == "unknown_setting"
    }
    assert warnings["TARGET_ACOUNTS"]["did_you_mean"] == "TARGET_ACCOUNTS"
    assert warnings["IG_PASWORD"]["did_you_mean"] == "IG_PASSWORD"
    assert "hunter2-secret" not in status.output and "alice" not in status.stderr
    (tmp_path / ".env").write_text("STORY_LIKES_PER_HOURS=5\n")
    doctor = run_cli("doctor", env={"IG_USERNAME": "bob"}, cwd=tmp_path)
    assert doctor.code == 78, doctor.output
    assert "[FAIL] settings      STORY_LIKES_PER_HOURS (.env) is not a setting: did you mean STORY_LIKES_PER_HOUR?" in (
        doctor.stdout
    )


# --- which database ----------------------------------------------------------------------------------------


def test_status_names_its_database_and_a_new_one_from_another_directory_says_so(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    env = {"IG_USERNAME": "bob"}  # the default, relative DATABASE_URL
    first = run_cli("status", env=env, cwd=home)
    new = [json.loads(line) for line in first.stderr.splitlines()]
    assert [e["event"] for e in new] == ["new_database"] and new[0]["path"] == str(home / "data" / "stories.db")
    again = run_cli("status", env=env, cwd=home)
    assert again.stderr == "" and f"database     {home / 'data' / 'stories.db'}" in again.stdout
    other = run_cli("status", "--json", env=env, cwd=elsewhere)
    assert json.loads(other.stdout)["database"] == str(elsewhere / "data" / "stories.db")
    assert json.loads(other.stderr)["path"] == str(elsewhere / "data" / "stories.db")


def test_migrate_names_the_database_it_made_in_its_own_line(tmp_path: Path) -> None:
    made = run_cli("migrate", env={}, cwd=tmp_path)
    assert made.code == 0, made.output
    assert made.stderr == f"schema at {SCHEMA_REVISION} (was empty): {tmp_path / 'data' / 'stories.db'}\n"
    assert "new_database" not in made.output  # said once, by migrate's own line


def test_status_shows_a_postgres_database_without_its_password() -> None:
    from story_liker.status import database_shown

    shown = database_shown("postgresql+psycopg://liker:s3cret@db.example:5432/stories")
    assert "s3cret" not in shown and "db.example" in shown and "stories" in shown


# --- targets before the first run --------------------------------------------------------------------------


def test_accounts_list_shows_target_accounts_before_the_first_run(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    from tests.conftest import login

    ig.add_user("alice")
    env["TARGET_ACCOUNTS"] = "alice,bob_two"
    before = run_cli("accounts", "list", env=env, cwd=tmp_path)
    assert before.code == 0, before.output
    assert [line.split()[0] for line in before.stdout.splitlines()] == ["alice", "bob_two"]
    assert all("not stored yet" in line for line in before.stdout.splitlines())
    login(ig, env, tmp_path)
    assert run_cli("run-stories", env=env, cwd=tmp_path).code == 0
    after = run_cli("accounts", "list", env=env, cwd=tmp_path)
    assert "not stored yet" not in after.stdout and after.stdout.split()[0] == "alice", after.stdout
    fresh = env | {"TARGET_ACCOUNTS": "*", "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    assert "every account you follow" in run_cli("accounts", "list", env=fresh, cwd=tmp_path).stdout


# --- status and doctor after a failed first login ----------------------------------------------------------


def _session_lines(ig: Any, env: dict[str, str], tmp_path: Path) -> tuple[str, str]:
    status = run_cli("status", env=env, cwd=tmp_path)
    doctor = run_cli("doctor", env=env, cwd=tmp_path)
    session = next(line for line in status.stdout.splitlines() if line.startswith("session "))
    check = next(line for line in doctor.stdout.splitlines() if line[7:].startswith("session "))
    return session.split(None, 1)[1], check


def test_status_and_doctor_read_a_failed_first_login_the_same_way(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    failed = run_cli("login", env=env | {"IG_PASSWORD": "wrong-horse"}, cwd=tmp_path)
    assert failed.code == 77, failed.output
    session, check = _session_lines(ig, env, tmp_path)  # no IG_PASSWORD: a person must log in
    assert session == "a device stored, no live session yet: run `story-liker login`"
    assert check.startswith("[FAIL]") and session in check
    with_password = env | {"IG_PASSWORD": "wrong-horse"}
    session, check = _session_lines(ig, with_password, tmp_path)  # the backoff of the failed login, then one try
    assert session.startswith("a device stored, no live session yet: the next run logs in after ")
    assert session.endswith(" with IG_PASSWORD") and check.startswith("[note]") and session in check
    status = json.loads(run_cli("status", "--json", env=with_password, cwd=tmp_path).stdout)["session"]
    assert (status["state"], status["stored"], status["runs_alone"]) == ("device", False, True)


# --- an error is said once ---------------------------------------------------------------------------------


def test_an_error_is_said_once_per_command(tmp_path: Path) -> None:
    unset = run_cli("run-stories", env={}, cwd=tmp_path)  # a pass, JSON logs: the run_failed line only
    assert unset.code == 78 and unset.stderr == ""
    assert [e["event"] for e in unset.events() if e["level"] == "error"] == ["run_failed"]
    status = run_cli("status", env={}, cwd=tmp_path)  # stdout is the result: nothing there, one stderr line
    assert status.code == 78 and status.stdout == ""
    assert status.stderr.splitlines() == [f"story-liker: {status.error}"]
    as_json = run_cli("status", "--json", env={}, cwd=tmp_path)
    assert json.loads(as_json.stdout) == {"error": as_json.error, "exit_code": 78}
    bad = run_cli("report", "--since", "yesterday", env={"IG_USERNAME": "bob"}, cwd=tmp_path)
    assert bad.code == 2 and bad.stdout == "" and bad.error.startswith("--since 'yesterday': "), bad.output


# --- a limit that differs from the configured one ----------------------------------------------------------


@pytest.mark.parametrize("why", [["warming up: day 2 of 7"], ["AIMD: halved after a throttle", "daily variation"]])
def test_a_limit_other_than_the_configured_one_says_why_on_its_line(why: list[str]) -> None:
    usage = {
        "last_10_minutes": 1,
        "effective_per_10_minutes": 6,
        "per_10_minutes": 6,
        "last_hour": 1,
        "effective_per_hour": 9,
        "last_day": 3,
        "effective_per_day": 130,
        "remaining": 6,
        "per_hour": 20,
        "per_day": 100,
        "why_different": why,
    }
    data = _status_data(limits={"story likes": usage})
    line = next(line for line in status_text(data).splitlines() if line.startswith("story likes"))
    assert line.endswith(f"(configured 6/10 min, 20/h, 100/day; {'; '.join(why)})"), line
    assert "1/6 last 10 min, 1/9 last hour, 3/130 last day" in line


def _status_data(**changes: Any) -> dict[str, Any]:
    """status_data's shape with nothing going on (the keys status_text reads)."""
    data: dict[str, Any] = {
        "account": "bob",
        "database": "/srv/data/stories.db",
        "session": {"stored": True, "state": "live", "detail": "a live session", "runs_alone": True}
        | {"encrypted": True, "saved_at": "2026-12-05T00:00:00+00:00", "user_pk": 1},
        "needs_human": {"flag": False, "reason": None},
        "cooldown": {"active": False, "until": None, "reason": None, "strikes": 0},
        "keepalive": {"last_success": None},
        "lock": None,
        "limits": {},
        "login": {"failures": 0, "last_attempt_at": None},
        "active_hours": {"ranges": [], "timezone": "UTC", "active_now": True, "next_window": None},
        "story_recheck_hours": 6,
        "now": "2026-12-05T06:00:00+00:00",
        "configured_not_synced": [],
        "post_recheck_hours": 24,
        "posts_in_use": False,
        "prune_waiting": 0,
        "targets": [],
        "last_runs": [],
    }
    return data | changes
