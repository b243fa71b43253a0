"""`make sandbox` (bench/sandbox.py): the double stays up, the database stays, and the installed CLI works
against it with nothing but the lines the sandbox printed, also after a restart."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.demo import build_world
from tests.conftest import Result, run_process
from tests.double import InstagramDouble

ROOT = Path(__file__).resolve().parents[2]
BANNER = "NOT INSTAGRAM: a local double on 127.0.0.1:"


class Sandbox:
    """`python -m bench.sandbox` as a person starts it, from the repository, with a clean environment."""

    def __init__(self, *args: str) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.sandbox", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.shown: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_ready(self, timeout: float = 60) -> str:
        """Everything printed up to the 'Serving until' line."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail("the sandbox did not get ready:\n" + "\n".join(self.shown))
            if line is None:
                stderr = self.proc.stderr.read() if self.proc.stderr else ""
                pytest.fail(f"the sandbox exited {self.proc.wait()}:\n" + "\n".join(self.shown) + stderr)
            self.shown.append(line)
            if line.startswith("Serving until"):
                return "\n".join(self.shown)

    def stop(self, signum: int = signal.SIGINT, timeout: float = 10) -> int:
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def sandboxes() -> Iterator[list[Sandbox]]:
    started: list[Sandbox] = []
    yield started
    for sandbox in started:
        if sandbox.proc.poll() is None:
            sandbox.proc.kill()
            sandbox.proc.wait()


def start(sandboxes: list[Sandbox], directory: Path) -> tuple[Sandbox, str]:
    sandbox = Sandbox("--port", "0", "--dir", str(directory))
    sandboxes.append(sandbox)
    return sandbox, sandbox.wait_ready()


def sourced(env_file: Path) -> dict[str, str]:
    """The environment after `. sandbox/env` in a shell that held settings of a real setup."""
    real = {"HEALTHCHECK_URL": "https://hc-ping.com/real", "NOTIFY_URLS": "json://real.example", "DRY_RUN": "true"}
    shell = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")} | real
    script = f'. "{env_file}" && exec "{sys.executable}" -c "import json, os; print(json.dumps(dict(os.environ)))"'
    done = subprocess.run(["/bin/sh", "-c", script], env=shell, capture_output=True, text=True, check=True)
    env: dict[str, str] = json.loads(done.stdout)
    assert not set(real) & set(env), "the real setup's settings must not reach the double"
    return env


def liked(result: Result) -> int:
    assert result.code == 0, result.output
    return int(result.event("run_finished")["liked"])


def test_the_sandbox_serves_every_command_and_keeps_its_database_across_restarts(
    tmp_path: Path, sandboxes: list[Sandbox]
) -> None:
    world = InstagramDouble()  # never started: only to count what the sandbox's world holds
    stories, _ = build_world(world)
    directory = tmp_path / "sandbox"
    sandbox, shown = start(sandboxes, directory)

    port = int(shown.split(BANNER, 1)[1].split()[0])
    assert port > 0  # --port 0: the port it got, not 0
    env = sourced(directory / "env")
    assert env["IG_API_URL"] == f"http://127.0.0.1:{port}"
    assert env["DATABASE_URL"] == f"sqlite:///{directory / 'stories.db'}"
    assert {"IG_USERNAME", "TARGET_ACCOUNTS", "ACTION_DELAY_MIN_SECONDS"} <= set(env)
    for line in (directory / "env").read_text().splitlines():
        if line.startswith("export "):
            assert f"  {line}\n" in shown  # the lines to paste are the file's
    assert f". {directory / 'env'}" in shown and "history --target ada.lovelace" in shown

    first = run_process("run-stories", env=env, cwd=tmp_path)
    assert liked(first) == stories > 0
    assert "ada.lovelace" in {e.get("target") for e in first.events() if e["event"] == "story_liked"}
    status = run_process("status", "--json", env=env, cwd=tmp_path)
    assert status.code == 0, status.output
    assert json.loads(status.stdout)["session"]["stored"]
    assert run_process("report", env=env, cwd=tmp_path).code == 0
    history = run_process("history", "--target", "ada.lovelace", env=env, cwd=tmp_path)
    assert history.code == 0 and "ada.lovelace" in history.stdout, history.output
    doctor = run_process("doctor", "--online", env=env, cwd=tmp_path)
    assert doctor.code == 0, doctor.output
    export = run_process("session", "export", str(directory / "session.json"), env=env, cwd=tmp_path)
    assert export.code == 0 and (directory / "session.json").is_file(), export.output

    assert sandbox.stop(signal.SIGINT) == 0
    assert (directory / "stories.db").is_file()
    assert (directory / "double.json").stat().st_mode & 0o777 == 0o600  # holds the double's sessionid

    _, shown = start(sandboxes, directory)
    env = sourced(directory / "env")  # another port this time (--port 0): the file says which
    status = run_process("status", "--json", env=env, cwd=tmp_path)
    assert status.code == 0, status.output
    assert json.loads(status.stdout)["session"]["stored"]
    assert liked(run_process("run-stories", env=env, cwd=tmp_path)) == 0  # nothing liked twice
    assert run_process("doctor", "--online", env=env, cwd=tmp_path).code == 0  # the stored session still works


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sandbox = Sandbox("--port", str(port), "--dir", str(tmp_path / "sandbox"))
        code = sandbox.proc.wait(timeout=30)
    stderr = sandbox.proc.stderr.read() if sandbox.proc.stderr else ""
    assert code == 2
    assert stderr.count("\n") == 1 and f"127.0.0.1:{port}" in stderr and "--port" in stderr, stderr
    assert not (tmp_path / "sandbox" / "stories.db").exists()
