"""cron: the schedule parser the deploy tests use (cron and the Kubernetes CronJobs), and the crontab's lines."""

from __future__ import annotations

import fcntl
import json
import re
import time
from pathlib import Path

import pytest

from tests.deploy.common import APP, COMMANDS, DEPLOY, check_cron_schedule, run, tool


def test_cron_field_parser_rejects_bad_schedules() -> None:
    assert check_cron_schedule("0 * * * *")[1] == set(range(24))
    assert check_cron_schedule("40 */3 * * *")[1] == {0, 3, 6, 9, 12, 15, 18, 21}
    for bad in ("60 * * * *", "* 24 * * *", "* * 0 * *", "*/0 * * * *", "a * * * *", "* * * *"):
        with pytest.raises((ValueError, AssertionError)):
            check_cron_schedule(bad)


# ---------------------------------------------------------------------------- the crontab

CRONTAB = DEPLOY / "cron" / "story-liker.crontab"


def cron_jobs() -> list[tuple[str, str]]:
    jobs = []
    for line in CRONTAB.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if re.fullmatch(r"[A-Z_]+=.*", line):  # an environment line
            continue
        fields = line.split(None, 5)
        assert len(fields) == 6, f"not a job line: {line!r}"
        jobs.append((" ".join(fields[:5]), fields[5]))
    return jobs


def test_crontab_jobs_cannot_overlap_and_are_bounded() -> None:
    jobs = cron_jobs()
    seen = []
    for schedule, command in jobs:
        check_cron_schedule(schedule)
        assert "%" not in command, "cron turns % into a newline"
        match = re.search(
            r"flock -n -E 75 /run/lock/story-liker\.lock timeout (?:-k \d+s )?(\d+)m " + re.escape(APP) + r" (\S+)",
            command,
        )
        assert match, command
        assert 0 < int(match.group(1)) <= 30
        seen.append(match.group(2))
        assert command.count("flock") == 1 and command.count("timeout") == 1
        assert ">> /var/log/story-liker/" in command and command.endswith("2>&1")
        syntax = run(["sh", "-n", "-c", command])
        assert syntax.returncode == 0, syntax.stderr
    assert sorted(seen) == sorted(COMMANDS)
    text = CRONTAB.read_text()
    assert re.search(r"^IG_PASSWORD_FILE=/etc/story-liker/credentials/ig_password$", text, re.M)
    assert not re.search(r"^(IG_PASSWORD|IG_TOTP_SEED|SESSION_ENCRYPTION_KEY)=", text, re.M)


def runnable_job(tmp_path: Path, app_body: str, limit: str = "15m") -> tuple[str, Path, Path]:
    """The run-stories line, pointed at a fake app and files in tmp_path."""
    for name in ("flock", "timeout", "shuf"):
        tool(name, "apt-get install -y util-linux coreutils")
    command = next(c for _, c in cron_jobs() if c.endswith(f"{APP} run-stories >> /var/log/story-liker/cron.log 2>&1"))
    app = tmp_path / "story-liker"
    app.write_text(f"#!/bin/sh\n{app_body}\n")
    app.chmod(0o755)
    lock, log = tmp_path / "story-liker.lock", tmp_path / "cron.log"
    command = re.sub(r"shuf -n1 -i0-\d+", "shuf -n1 -i0-0", command)
    command = command.replace("cd /var/lib/story-liker", f"cd {tmp_path}")
    command = command.replace("/run/lock/story-liker.lock", str(lock)).replace(APP, str(app))
    command = command.replace("/var/log/story-liker/cron.log", str(log))
    command = command.replace("-k 30s 15m", f"-k 1s {limit}")
    return command, lock, log


def test_crontab_line_logs_and_succeeds(tmp_path: Path) -> None:
    command, _, log = runnable_job(tmp_path, 'echo "{\\"msg\\": \\"ran $1 in $(pwd)\\"}"')
    result = run(["sh", "-c", command], timeout=20)
    assert result.returncode == 0, result.stderr
    assert json.loads(log.read_text()) == {"msg": f"ran run-stories in {tmp_path}"}


def test_crontab_line_exits_75_while_another_run_holds_the_lock(tmp_path: Path) -> None:
    command, lock, log = runnable_job(tmp_path, "echo started")
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        began = time.monotonic()
        result = run(["sh", "-c", command], timeout=20)
    assert result.returncode == 75
    assert time.monotonic() - began < 5  # -n: no waiting for the lock
    assert not log.exists() or "started" not in log.read_text()


def test_crontab_line_stops_a_run_past_its_limit(tmp_path: Path) -> None:
    command, _, _ = runnable_job(tmp_path, "exec sleep 30", limit="1s")
    began = time.monotonic()
    result = run(["sh", "-c", command], timeout=20)
    assert result.returncode == 124  # timeout's code for "stopped at the limit"
    assert time.monotonic() - began < 10
