"""Metrics (textfile, Pushgateway) and the dead-man's-switch ping never fail or hold up a pass."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from story_liker.monitor import textfile_path
from tests.conftest import login, run_cli

pytestmark = pytest.mark.slow


class _Recorder(BaseHTTPRequestHandler):
    calls: list[tuple[str, str, bytes]]
    delay = 0.0

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        time.sleep(self.delay)
        self.calls.append((self.command, self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _record

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[tuple[str, str, bytes]], type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"calls": [], "delay": 0.0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.calls, handler
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


def test_dead_or_slow_monitoring_never_fails_a_pass(recorder: Any, tmp_path: Path) -> None:
    url, _, handler = recorder
    handler.delay = 10  # slower than the ping timeout
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/m.db",
        "HEALTHCHECK_URL": url,
        "PUSHGATEWAY_URL": "http://127.0.0.1:1",
    }
    started = time.monotonic()
    result = run_cli("cleanup", env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    assert time.monotonic() - started < 12  # two pings of at most 3 s each, plus start-up
    assert "healthcheck_failed" in result.stdout and "metrics_push_failed" in result.stdout
