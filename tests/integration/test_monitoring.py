"""Metrics (textfile, Pushgateway) and the dead-man's-switch ping never fail or hold up a pass."""

from __future__ import annotations

import json
import re
import socket
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from story_liker.hooks.healthchecks import ping_suffix, run_uuid
from story_liker.hooks.prometheus import textfile_path
from tests.conftest import login, run_cli, run_process
from tests.receiver import BoundedHTTPServer as _BoundedHTTPServer
from tests.receiver import BoundedTCPServer as _BoundedTCPServer


class _Recorder(BaseHTTPRequestHandler):
    calls: list[tuple[str, str, bytes]]
    hold: threading.Event | None = None  # set: answer only once the test sets it (a gateway that hangs)
    statuses: list[int]  # the status codes of the next answers (then 200); a failed one is not recorded

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.hold is not None:
            self.hold.wait(60)
        status = self.statuses.pop(0) if self.statuses else 200
        if status != 200:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.calls.append((self.command, self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _record

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[tuple[str, str, bytes]], type[_Recorder]]]:
    class Handler(_Recorder):  # a class of its own for each test: nothing recorded, held or to answer yet
        pass

    Handler.calls, Handler.hold, Handler.statuses = [], None, []
    handler = Handler
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


def _pings(calls: list[tuple[str, str, bytes]]) -> list[tuple[str, str, str, bytes]]:
    """(method, path, rid, body) of every healthcheck ping."""
    found = []
    for method, path, body in calls:
        if path.startswith("/ping/"):
            bare, _, query = path.partition("?")
            rid = dict(part.split("=", 1) for part in query.split("&") if part).get("rid", "")
            found.append((method, bare, rid, body))
    return found


def test_pushgateway_and_healthcheck(recorder: Any, tmp_path: Path) -> None:
    url, calls, _ = recorder
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/m.db", "PUSHGATEWAY_URL": url, "HEALTHCHECK_URL": f"{url}/ping/abc"}
    ok = run_cli("cleanup", "--all-accounts", env=env, cwd=tmp_path)
    assert ok.code == 0
    pings = _pings(calls)
    assert [(m, p) for m, p, _, _ in pings] == [("GET", "/ping/abc/start"), ("POST", "/ping/abc")]
    run_id = ok.event("run_finished")["run_id"]
    assert {rid for _, _, rid, _ in pings} == {run_uuid(run_id)}  # start and end pair up, by this run's id
    summary = json.loads(pings[1][3])  # success carries the run summary
    assert summary["command"] == "cleanup" and summary["exit_code"] == 0 and "requests" in summary
    pushes = [(path, body) for method, path, body in calls if method == "PUT"]
    assert pushes and pushes[0][0].startswith("/metrics/job/story_liker")
    assert "command/cleanup" in pushes[0][0]
    assert b"story_liker_last_exit_code" in pushes[0][1]
    calls.clear()
    failing = run_cli("cleanup", "--all-accounts", "--older-than", "1", env=env, cwd=tmp_path)
    assert failing.code == 78
    assert [(m, p) for m, p, _, _ in _pings(calls)] == [("GET", "/ping/abc/start"), ("POST", "/ping/abc/78")]


def test_run_ids_are_canonical_uuids_ending_in_the_run_id() -> None:
    rid = run_uuid("44f79cc086c8")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", rid)
    assert rid.endswith("-44f79cc086c8")
    import uuid

    assert str(uuid.UUID(rid)) == rid  # the canonical text form healthchecks.io insists on
    assert run_uuid("not-hex") != run_uuid("other") and str(uuid.UUID(run_uuid("not-hex"))) == run_uuid("not-hex")


@pytest.mark.parametrize(("code", "suffix"), [(0, ""), (75, "log"), (77, "77"), (78, "78"), (69, "69"), (1, "1")])
def test_every_exit_code_has_its_ping(code: int, suffix: str) -> None:
    assert ping_suffix(code) == suffix


def test_a_75_is_logged_not_failed_and_a_77_fails(recorder: Any, ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    url, calls, _ = recorder
    user = ig.add_user("alice")
    ig.add_story(user)
    env |= {"TARGET_ACCOUNTS": "alice", "HEALTHCHECK_URL": f"{url}/ping/{{command}}"}
    no_session = run_cli("keepalive", env=env, cwd=tmp_path)
    assert no_session.code == 77
    assert [(m, p) for m, p, _, _ in _pings(calls)] == [
        ("GET", "/ping/keepalive/start"),
        ("POST", "/ping/keepalive/77"),
    ]
    calls.clear()
    login(ig, env, tmp_path)
    ig.fail("reels_tray", status=429)
    throttled = run_cli("run-stories", env=env, cwd=tmp_path)
    assert throttled.code == 75
    assert [(m, p) for m, p, _, _ in _pings(calls)] == [
        ("GET", "/ping/run-stories/start"),
        ("POST", "/ping/run-stories/log"),  # {command}: one check per command
    ]
    assert json.loads(_pings(calls)[1][3])["outcome"] == "throttled"


def test_a_ping_answered_5xx_is_retried_briefly(recorder: Any, tmp_path: Path) -> None:
    url, calls, handler = recorder
    handler.statuses.extend([503, 502])  # the first two attempts of the start ping fail, the third goes through
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/m.db", "HEALTHCHECK_URL": f"{url}/ping/abc"}
    result = run_cli("cleanup", "--all-accounts", env=env, cwd=tmp_path)
    assert result.code == 0
    assert [(m, p) for m, p, _, _ in _pings(calls)] == [("GET", "/ping/abc/start"), ("POST", "/ping/abc")]
    retries = [e for e in result.events() if e["event"] == "retry_scheduled"]
    assert [(e["step"], e["error"]) for e in retries] == [("healthcheck", "HTTPError")] * 2
    assert "healthcheck_failed" not in {e["event"] for e in result.events()}


def test_a_ping_that_keeps_failing_gives_up_after_three_attempts(recorder: Any, tmp_path: Path) -> None:
    url, calls, handler = recorder
    handler.statuses.extend([500] * 3)
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/m.db", "HEALTHCHECK_URL": f"{url}/ping/abc"}
    result = run_cli("cleanup", "--all-accounts", env=env, cwd=tmp_path)
    assert result.code == 0  # a failed ping never fails a run
    assert [e["error"] for e in result.events() if e["event"] == "healthcheck_failed"] == ["HTTPError"]
    assert [(m, p) for m, p, _, _ in _pings(calls)] == [("POST", "/ping/abc")]  # the end ping is its own


def test_dead_or_hanging_monitoring_never_fails_or_holds_up_a_pass(recorder: Any, tmp_path: Path) -> None:
    url, calls, handler = recorder
    handler.hold = threading.Event()  # the healthcheck accepts and never answers until the run is over
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/m.db",
        "HEALTHCHECK_URL": url,
        "PUSHGATEWAY_URL": "http://127.0.0.1:1",  # nothing listens: refused
    }
    result = run_process(
        "cleanup", "--all-accounts", env=env, cwd=tmp_path, timeout=40
    )  # a run that waited for the answer would hang
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
    result = run_cli("cleanup", "--all-accounts", env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    paths = [(method, path) for method, path, _, _ in _pings(calls)]
    assert paths == [("GET", "/ping/hc-s3cret-uuid/start"), ("POST", "/ping/hc-s3cret-uuid")]  # the success ping
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
