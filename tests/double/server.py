"""The HTTP side: one request as received (``Rec``), a reply, the route table's type, the threaded server and
its handler, and the body decoding (signed_body, JSON, url-encoded)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from tests.double.common import JSON

if TYPE_CHECKING:
    from tests.double.core import InstagramDouble


@dataclass(frozen=True)
class Rec:
    """One request as the double received it.

    ``form`` is the decoded ``signed_body`` JSON when present, else the JSON body (instagrapi's own
    ``get_timeline_feed`` sends raw JSON), else the url-encoded fields (single values). ``headers`` has lower-cased
    names. ``target`` is the raw request target (path and query), ``body`` the raw body.
    """

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, Any]
    host: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    target: str = ""
    body: bytes = field(default=b"", repr=False)


@dataclass
class _Reply:
    status: int
    body: JSON | None = None
    raw: bytes | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json; charset=utf-8"


_Route = tuple[str, "re.Pattern[str]", Callable[[Rec, "re.Match[str]"], _Reply], bool]


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins every handler thread

    def __init__(self, double: InstagramDouble) -> None:
        self.double = double
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like Instagram; every reply has Content-Length
    timeout = 30  # backstop for idle keep-alive connections
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body are separate writes: without this, Nagle + delayed ACK add ~40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.double._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.double._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        self.server.double._handle(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch


def _decode_body(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    text = body.decode("utf-8", "replace")
    if text.lstrip().startswith("{"):
        try:
            decoded = json.loads(text)
            return decoded if isinstance(decoded, dict) else {}
        except ValueError:
            pass
    fields = {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
    signed = fields.get("signed_body")
    if signed is not None:
        try:
            decoded = json.loads(signed.split(".", 1)[1])
            return decoded if isinstance(decoded, dict) else {}
        except (IndexError, ValueError):
            return {"signed_body": signed}
    return fields
