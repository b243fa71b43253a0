"""A small, bounded local HTTP receiver for the tests: it records every request and answers as told.

At most MAX_THREADS handler threads at once (a misbehaving client cannot pile up threads); `hold` keeps every
answer back until the test sets it (a service that hangs); `delay` (or `delays`, one per request) answers that many
seconds late (a slow service); `statuses` scripts the next answers' status codes.
"""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_THREADS = 4


class Bounded(socketserver.ThreadingMixIn):
    """At most MAX_THREADS handler threads at once; further connections wait in the listen backlog."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.slots = threading.BoundedSemaphore(MAX_THREADS)
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class BoundedHTTPServer(Bounded, ThreadingHTTPServer):
    pass


class BoundedTCPServer(Bounded, socketserver.TCPServer):
    pass


@dataclass
class Call:
    method: str
    path: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    calls: list[Call] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # the next answers' status codes (then 200)
    hold: threading.Event | None = None
    delay: float = 0.0  # seconds each answer comes late
    delays: list[float] = field(default_factory=list)  # the next answers' delays (then ``delay``)
    arrived: threading.Event = field(default_factory=threading.Event)  # set by every request, held or not
    received: list[Call] = field(default_factory=list)  # every request that arrived, whatever it was answered

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def messages(self) -> list[dict[str, Any]]:
        """The Apprise `json://` messages that were answered 2xx (title, message, type)."""
        found = []
        for call in self.calls:
            if call.method == "POST" and call.body.startswith(b"{"):
                message = call.json()
                if isinstance(message, dict) and "title" in message:
                    found.append(message)
        return found

    def text(self) -> str:
        return "".join(c.path + c.body.decode(errors="replace") for c in self.calls)


@contextmanager
def receiver(port: int = 0) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 (``port``, or a free one), stopped at the end; a held answer is let go first."""
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            rec = state["r"]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            rec.received.append(Call(self.command, self.path, body))
            rec.arrived.set()
            if rec.hold is not None:
                rec.hold.wait(60)
            late = rec.delays.pop(0) if rec.delays else rec.delay
            if late:
                time.sleep(late)
            status = rec.statuses.pop(0) if rec.statuses else 200
            if 200 <= status < 300:
                rec.calls.append(Call(self.command, self.path, body))
            payload = b"OK"
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_HEAD = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = BoundedHTTPServer(("127.0.0.1", port), Handler)
    state["r"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        if state["r"].hold is not None:
            state["r"].hold.set()
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A port nothing listens on (bound once, then closed): connections to it are refused."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
