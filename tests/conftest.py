"""Shared fixtures: a fresh database per test (SQLite always, PostgreSQL too when TEST_DATABASE_URL is set)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from story_liker.db import make_engine, migrate
from story_liker.settings import normalise_database_url
from story_liker.store import Store

PG_URL = os.environ.get("TEST_DATABASE_URL")
# The PostgreSQL cases carry the `postgres` marker: CI's second pass selects them with `-m postgres`.
BACKENDS = [pytest.param("sqlite", id="sqlite")] + (
    [pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres)] if PG_URL else []
)
needs_postgres = pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL (PostgreSQL)")


def pytest_configure(config: pytest.Config) -> None:
    """`-m postgres` without a server would select nothing and pass: refuse it instead."""
    if (config.option.markexpr or "").strip() == "postgres" and not PG_URL:
        raise pytest.UsageError(
            "-m postgres runs the PostgreSQL cases: set TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test"
        )


SLOW = ("e2e", "deploy")  # the directories whose tests are `slow` (`make test-fast` leaves them out)


# tryfirst: pytest-xdist's worker reads the xdist_group markers in its own hook of the same name, which, registered
# after this conftest, would otherwise run first and see none.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The kind of a test is its directory: tests/unit (pure modules, the fake), tests/integration (the store on
    both databases, the adapter against the double, the hooks against a receiver), tests/e2e (the CLI end to end,
    processes where the process is the point) and tests/deploy (the deploy files with their own tools); the last
    two are `slow`. Under pytest-xdist (`make test`: -n auto --dist loadgroup) the tests sharing the module's nested
    systemd run on one worker, so it boots once; the others spread over the workers."""
    for item in items:
        if Path(item.path).parent.name in SLOW:
            item.add_marker(pytest.mark.slow)
        if "nested_systemd" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("nested_systemd"))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's environment or .env: every setting comes from the test."""
    for name in list(os.environ):
        if name.startswith(
            (
                "IG_",
                "TARGET_",
                "STORY_",
                "POST_",
                "ACTION_",
                "REQUEST_",
                "ACTIVE_",
                "WARMUP_",
                "DAILY_",
                "NOTIFY_",
                "LOG_",
                "SESSION_",
                "DATABASE_",
            )
        ) or name in (
            "DRY_RUN",
            "METRICS_TEXTFILE",
            "PUSHGATEWAY_URL",
            "HEALTHCHECK_URL",
            "TIMEZONE",
        ):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def fresh_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'stories.db'}"
        return
    assert PG_URL
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(normalise_database_url(PG_URL))
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    base = normalise_database_url(PG_URL)
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend under test."""
    yield from fresh_database_url(request.param, tmp_path)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    engine = make_engine(database_url)
    migrate(engine)
    yield Store(engine)
    engine.dispose()


STORY_LIKER = str(Path(sys.executable).with_name("story-liker"))


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def error(self) -> str:
        """The command's error, said exactly once: the run_failed line of a JSON log on stdout, or one
        `story-liker: ...` line on stderr (a terminal's text log, a command whose stdout is its result,
        an error before logging starts). "" when it said none."""
        said = [
            line.removeprefix("story-liker: ")
            for line in self.stderr.splitlines()
            if line.startswith("story-liker: ") and not line.startswith("story-liker: warning:")
        ]
        for line in self.stdout.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") in ("run_failed", "unexpected_error"):
                said.append(str(record.get("error", "")))
        assert len(said) <= 1, f"the error is said {len(said)} times:\n{self.output}"
        return said[0] if said else ""

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines of stdout, parsed (every stdout line must be one)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def event(self, name: str) -> dict[str, Any]:
        found = [e for e in self.events() if e.get("event") == name]
        assert found, f"no {name!r} event in:\n{self.output}"
        return found[-1]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Result:
    """Run `story-liker` in this process (typer's CliRunner, as llm and doc2dash test theirs) with exactly the given
    environment and working directory, as a process would see them; no signal handlers are installed (the
    runner's Env). A test where the process is the point (signals, kill -9, a terminal, two runs at once, the
    installed entry point, something that may hang) uses `run_process`."""
    from typer.testing import CliRunner

    from story_liker.cli import Env, app

    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    os.environ.clear()
    os.environ.update(base | (env or {}))
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), obj=Env(signals=False), input="")
    finally:
        root.handlers[:], root.level = saved_handlers, saved_level
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a crash the CLI did not turn into an exit code: a bug, shown with its traceback
    return Result(result.exit_code, result.stdout, result.stderr)


def run_process(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60) -> Result:
    """Run the installed `story-liker` as a separate process with exactly the given environment."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    proc = subprocess.run(
        [STORY_LIKER, *args],
        env=base | (env or {}),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def start(args: list[str], env: dict[str, str], cwd: Path, **kwargs: Any) -> subprocess.Popen[str]:
    """Start the installed `story-liker` in the background (for signals, kills and races)."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.Popen(
        [STORY_LIKER, *args],
        env=base | env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        **kwargs,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> Result:
    stdout, stderr = proc.communicate(timeout=timeout)
    return Result(proc.returncode, stdout, stderr)


def finish_with_cpu(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[Result, float]:
    """Wait for ``proc`` and return its result and the CPU seconds it used itself (user + system).

    CPU time, unlike wall time, does not grow when a loaded machine makes the process wait for a core.
    A process still running after ``timeout`` is killed (its result then says -9).
    """
    import threading

    assert proc.stdout is not None and proc.stderr is not None
    out: dict[str, str] = {}
    streams = {"stdout": proc.stdout, "stderr": proc.stderr}
    readers = [threading.Thread(target=lambda n=n, s=s: out.__setitem__(n, s.read())) for n, s in streams.items()]
    for reader in readers:
        reader.start()
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
    for reader in readers:
        reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Result(proc.returncode, out["stdout"], out["stderr"]), usage.ru_utime + usage.ru_stime


class Terminal:
    """The installed `story-liker` on a pseudo-terminal, as a person at a shell runs it."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        import pty

        self.screen = b""
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            os.chdir(cwd)
            child_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", "TERM": "xterm"} | env
            os.execve(STORY_LIKER, [STORY_LIKER, *args], child_env)  # noqa: S606  # our own CLI, no shell

    def read_until(self, needle: bytes, timeout: float = 30) -> None:
        import select
        import time

        deadline = time.monotonic() + timeout
        while needle not in self.screen:
            assert time.monotonic() < deadline, self.screen.decode(errors="replace")
            if select.select([self.fd], [], [], 0.2)[0]:
                try:
                    self.screen += os.read(self.fd, 65536)
                except OSError:  # the child closed the terminal
                    return

    def type_secret(self, text: str) -> None:
        """Type once the prompt has turned echo off (as a person would: after the prompt appeared)."""
        import termios
        import time

        deadline = time.monotonic() + 10
        while termios.tcgetattr(self.fd)[3] & termios.ECHO:
            assert time.monotonic() < deadline, "the prompt never turned echo off"
            time.sleep(0.01)
        os.write(self.fd, text.encode() + b"\n")

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode() + b"\n")

    def wait(self) -> int:
        self._drain()
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.screen += chunk


@pytest.fixture
def ig() -> Iterator[Any]:
    """A fresh local Instagram double, stopped after the test."""
    from tests.double import InstagramDouble

    with InstagramDouble() as double:
        yield double


@pytest.fixture
def env(ig: Any, database_url: str) -> dict[str, str]:
    """Settings for a CLI run against the double: no delays, no watching, no 10-minute window (the pacing is tested
    in-process, on a fake clock), JSON logs, a fresh database.

    PostgreSQL gets its schema the way a user gives it (`migrate`); SQLite creates its own on first run.
    """
    if not database_url.startswith("sqlite"):
        engine = make_engine(database_url)
        migrate(engine)
        engine.dispose()
    return {
        "IG_USERNAME": ig.username,
        "IG_API_URL": ig.url,
        "DATABASE_URL": database_url,
        "ACTION_DELAY_MIN_SECONDS": "0",
        "ACTION_DELAY_MAX_SECONDS": "0",
        "TARGET_DELAY_MIN_SECONDS": "0",
        "TARGET_DELAY_MAX_SECONDS": "0",
        "REQUEST_DELAY_MIN_SECONDS": "0",
        "REQUEST_DELAY_MAX_SECONDS": "0",
        "STORY_WATCH_PERCENT": "0",
        "STORY_LIKES_PER_10_MINUTES": "1000",
        "POST_LIKES_PER_10_MINUTES": "1000",
        "HTTP_TIMEOUT_SECONDS": "5",
    }


def login(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    """Store a session for the double's account the way a user would: import a settings file."""
    settings_file = tmp_path / "session.json"
    settings_file.write_text(json.dumps(ig.settings()))
    result = run_cli("login", "--settings-file", str(settings_file), env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    ig.reset_requests()


def secrets_of(ig: Any) -> list[str]:
    """Every secret of the double's account that must never be printed (the user pk is public)."""
    settings = ig.settings()
    cookies = [str(v) for k, v in settings["cookies"].items() if k != "ds_user_id"]
    found = [ig.password, ig.sessionid, *cookies, ig.csrftoken]
    if ig.totp_seed:
        found.append(ig.totp_seed)
    return [s for s in found if s]


def assert_no_secrets(ig: Any, *results: Result, also: tuple[str, ...] = ()) -> None:
    text = "".join(r.output for r in results)
    for secret in [*secrets_of(ig), *also]:
        assert secret not in text, f"a secret ({secret[:3]}...) reached the output"
