"""Metrics (textfile, Pushgateway) and the dead-man's-switch ping never fail or hold up a pass."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from story_liker.monitor import textfile_path
from tests.conftest import login, run_cli

pytestmark = pytest.mark.slow

MAX_THREADS = 4  # handler threads per test server: a misbehaving client cannot pile up threads


class _Bounded(socketserver.ThreadingMixIn):
    """At most MAX_THREADS handler threads at once; further connections wait in the listen backlog."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.slots = threading.BoundedSemaphore(MAX_THREADS)
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.slots.acquire()
        try:
            super().process_request(request, client_address)  # type: ignore[misc]
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)  # type: ignore[misc]
        finally:
            self.slots.release()


class _BoundedHTTPServer(_Bounded, ThreadingHTTPServer):
    pass


class _BoundedTCPServer(_Bounded, socketserver.TCPServer):
    pass


class _Recorder(BaseHTTPRequestHandler):
    calls: list[tuple[str, str, bytes]]
    hold: threading.Event | None = None  # set: answer only once the test sets it (a gateway that hangs)

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.hold is not None:
            self.hold.wait(60)
        self.calls.append((self.command, self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _record

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[tuple[str, str, bytes]], type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"calls": [], "hold": None})
    server = _BoundedHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.calls, handler
    if handler.hold is not None:
        handler.hold.set()  # let a held handler finish before the server goes
    server.shutdown()
    server.server_close()


# What a broken or wrong Pushgateway (or anything else listening there) may answer; True: the push fails.
GARBAGE = {
    "not_http": (b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", True),
    "bad_status_line": (b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n", True),
    "200_with_a_junk_header": (b"HTTP/1.1 200 OK\r\nX-Junk: " + b"j" * 70_000 + b"\r\n\r\n", True),
    "200_with_too_many_headers": (b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 150 + b"\r\n", True),
    "200_with_a_junk_body": (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n\x00\xff{junk}", False),
    "500": (b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops", True),
    "closed_without_a_reply": (b"", True),
}


class _Garbage(socketserver.BaseRequestHandler):
    reply = b""

    def handle(self) -> None:
        self.request.settimeout(5)
        data = b""
        try:
            while b"\r\n\r\n" not in data and len(data) < 1 << 20:  # the request head (the body is not read)
                chunk = self.request.recv(65536)
                if not chunk:
                    break
                data += chunk
            self.request.sendall(self.reply)
            self.request.shutdown(socket.SHUT_WR)
        except OSError:
            pass


@pytest.fixture
def garbage(request: pytest.FixtureRequest) -> Iterator[str]:
    """A server that answers every request with the GARBAGE named by the test's parameter."""
    handler = type("Handler", (_Garbage,), {"reply": GARBAGE[request.param][0]})
    server = _BoundedTCPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_textfile_names_per_command(tmp_path: Path) -> None:
    assert textfile_path(tmp_path / "story_liker.prom", "run-stories").name == "story_liker_run_stories.prom"
    assert textfile_path(tmp_path / "sl-{command}.prom", "cleanup").name == "sl-cleanup.prom"


def test_textfile_metrics_after_a_pass(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    user = ig.add_user("alice")
    ig.add_story(user)
    env |= {"TARGET_ACCOUNTS": "alice", "METRICS_TEXTFILE": str(tmp_path / "prom" / "story_liker.prom")}
    login(ig, env, tmp_path)
    assert run_cli("run-stories", env=env, cwd=tmp_path).code == 0
    text = (tmp_path / "prom" / "story_liker_run_stories.prom").read_text()
    assert 'story_liker_last_exit_code{account="liker",command="run-stories"} 0.0' in text
    assert 'story_liker_last_run_likes{account="liker",command="run-stories",kind="story"} 1.0' in text
    assert (
        'story_liker_budget_remaining{account="liker",command="run-stories",kind="story_like",window="hour"} 19.0'
        in text
    )
    assert "story_liker_last_success_timestamp_seconds" in text
    assert ig.sessionid not in text and ig.password not in text
    ig.fail("reels_tray", status=429)
    assert run_cli("run-stories", env=env, cwd=tmp_path).code == 75
    failed = (tmp_path / "prom" / "story_liker_run_stories.prom").read_text()
    assert 'story_liker_last_exit_code{account="liker",command="run-stories"} 75.0' in failed
    assert "story_liker_last_success_timestamp_seconds" in failed  # the earlier success is still reported
    assert "story_liker_cooldown_until_timestamp_seconds" in failed
    assert not list((tmp_path / "prom").glob("*.prom.*"))  # no temporary file left behind


def test_pushgateway_and_healthcheck(recorder: Any, tmp_path: Path) -> None:
    url, calls, _ = recorder
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/m.db", "PUSHGATEWAY_URL": url, "HEALTHCHECK_URL": f"{url}/ping/abc"}
    assert run_cli("cleanup", env=env, cwd=tmp_path).code == 0
    paths = [(method, path) for method, path, _ in calls]
    assert ("GET", "/ping/abc/start") in paths and ("GET", "/ping/abc") in paths
    pushes = [(path, body) for method, path, body in calls if method == "PUT"]
    assert pushes and pushes[0][0].startswith("/metrics/job/story_liker")
    assert "command/cleanup" in pushes[0][0]
    assert b"story_liker_last_exit_code" in pushes[0][1]
    calls.clear()
    failing = run_cli("cleanup", "--older-than", "1", env=env, cwd=tmp_path)
    assert failing.code == 78
    assert ("GET", "/ping/abc/78") in [(m, p) for m, p, _ in calls]


def test_dead_or_hanging_monitoring_never_fails_or_holds_up_a_pass(recorder: Any, tmp_path: Path) -> None:
    url, calls, handler = recorder
    handler.hold = threading.Event()  # the healthcheck accepts and never answers until the run is over
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/m.db",
        "HEALTHCHECK_URL": url,
        "PUSHGATEWAY_URL": "http://127.0.0.1:1",  # nothing listens: refused
    }
    result = run_cli("cleanup", env=env, cwd=tmp_path, timeout=40)  # a run that waited for the answer would hang
    assert result.code == 0, result.output
    assert calls == []  # the run was over before the healthcheck answered anything: it gave up on its own
    failures = {e["event"]: e["error"] for e in result.events() if e["event"].endswith("_failed")}
    assert failures == {"healthcheck_failed": "ReadTimeout", "metrics_push_failed": "URLError"}


@pytest.mark.parametrize("garbage", list(GARBAGE), indirect=True)
def test_garbage_from_the_pushgateway_and_an_unwritable_textfile_leave_the_pass_and_the_ping_alone(
    recorder: Any, garbage: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url, calls, _ = recorder
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/m.db",
        "METRICS_TEXTFILE": str(blocker / "story_liker.prom"),  # its directory is a file: cannot be written
        "PUSHGATEWAY_URL": f"{garbage}/pg-s3cret-path",
        "HEALTHCHECK_URL": f"{url}/ping/hc-s3cret-uuid",
    }
    result = run_cli("cleanup", env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    paths = [(method, path) for method, path, _ in calls]
    assert paths == [("GET", "/ping/hc-s3cret-uuid/start"), ("GET", "/ping/hc-s3cret-uuid")]  # the success ping
    warnings = {e["event"]: e for e in result.events() if e["level"] == "warning"}
    assert warnings["metrics_write_failed"]["error"] == "FileExistsError"
    assert ("metrics_push_failed" in warnings) is GARBAGE[request.node.callspec.params["garbage"]][1], result.output
    assert "run_finished" in {e["event"] for e in result.events()}
    assert "s3cret" not in result.output  # neither URL (their paths are secrets) reaches a log line
    assert not {"unexpected_error", "monitoring_failed"} & {e["event"] for e in result.events()}


def test_the_metrics_textfile_is_readable_by_node_exporter_under_a_strict_umask(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    import os
    import stat

    env |= {"TARGET_ACCOUNTS": "alice", "METRICS_TEXTFILE": str(tmp_path / "prom" / "story_liker.prom")}
    login(ig, env, tmp_path)
    old = os.umask(0o077)  # as the systemd unit's UMask=0077; the child inherits it
    try:
        assert run_cli("run-stories", env=env, cwd=tmp_path).code == 0
    finally:
        os.umask(old)
    path = tmp_path / "prom" / "story_liker_run_stories.prom"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
