"""A TLS + HTTP/2 front for the Instagram double, reached the way production reaches Instagram: through a proxy.

Production talks to ``https://i.instagram.com`` with instagrapi's curl_cffi transport: TLS 1.3, ALPN ``h2``
only, HTTP/2. The other tests use ``IG_API_URL``, which switches to plain ``requests`` over HTTP/1.1. This
front lets the CLI keep its production transport and still land on the double::

    CLI (curl_cffi) --CONNECT i.instagram.com:443--> TlsFront (127.0.0.1) --HTTP/1.1--> InstagramDouble
                    <--- TLS 1.3, cert by a test CA, ALPN h2 --->

- Run the CLI with ``IG_PROXY=front.proxy_url`` (production's own proxy setting) and
  ``REQUESTS_CA_BUNDLE=front.ca_file``: instagrapi's sessions keep ``trust_env=True``, so ``requests``
  resolves that variable to ``verify=<file>`` and the curl adapter hands it to libcurl as ``CAINFO``.
- The front answers ``CONNECT`` only for the Instagram hosts on port 443 and never connects anywhere but the
  double: nothing can leak to the real Instagram. It then terminates TLS itself (a certificate for
  ``i.instagram.com``, ``b.i.instagram.com`` and ``www.instagram.com`` signed by a ``trustme`` CA) and speaks
  HTTP/2 with the ``h2`` library (``http/1.1`` clients, such as instagrapi's public ``requests`` session, get
  their bytes piped to the double unchanged).
- Every HTTP/2 request is forwarded to the double on a fresh HTTP/1.1 connection with ``Host`` set from
  ``:authority`` and an ``X-Test-Front: h2 <TLS version> <SNI>`` header, so the double's own request log
  (``ig.requests``) shows which requests came over HTTP/2 and TLS; ``front.records`` has the same seen from
  the front.
- Faults stay the double's: ``ig.delay(...)`` makes the forwarded request wait (the client's timeout has to
  fire), ``ig.fault_reset(...)`` resets the upstream connection, which the front turns into a TCP reset of
  the client's connection (``SO_LINGER`` 0), what a client sees when Instagram's edge drops it, and
  ``ig.fault_close(...)`` closes it cleanly, which the front turns into a plain close (TCP FIN, no HTTP/2
  ``GOAWAY``, no TLS ``close_notify``): a server that went away between reading the request and answering.
  Both read the request completely first. On HTTP/1.1 the pipe passes the double's close or reset through.

Bounded: at most ``max_connections`` client connections (more get ``503`` to their ``CONNECT``) and at most
``MAX_STREAMS`` concurrent streams on each; ``stop()`` cuts every socket and joins every thread.
"""

from __future__ import annotations

import contextlib
import http.client
import queue
import select
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import trustme

from story_liker.ig.transport import INSTAGRAM_HOSTS

MARKER = "x-test-front"
MAX_STREAMS = 32
# Connection-specific headers (RFC 9113 8.2.2) and the ones http.client sets itself.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "host"}


@dataclass(frozen=True)
class FrontRec:
    """One request as the front received it from the client."""

    protocol: str  # "h2" for HTTP/2 requests (http/1.1 connections are piped and not parsed)
    tls_version: str
    sni: str
    connect: str  # the CONNECT target, "host:port"
    method: str
    authority: str
    path: str


@dataclass
class FrontConn:
    """One client connection: its CONNECT target and what TLS negotiated."""

    connect: str
    sni: str = ""
    alpn: str | None = None
    tls_version: str = ""
    reset: bool = False  # the front reset it (the double reset the forwarded request)
    closed: bool = False  # the front closed it unanswered, no RST (the double closed the forwarded request cleanly)
    error: str = ""  # how the connection ended when that was an error (a TLS alert from the client, ...)
    ended: bool = False  # closed (by either side); False while it is open


_Answer = tuple[int, list[tuple[str, str]], bytes]  # status, headers, body
_Dropped = Literal["reset", "closed"]  # how the double dropped a forwarded request, unanswered


@dataclass
class _Stream:
    headers: list[tuple[str, str]]
    body: bytearray = field(default_factory=bytearray)
    closed: bool = False


class TlsFront:
    """CONNECT proxy + TLS/HTTP2 server in front of an ``InstagramDouble``; see the module docstring."""

    def __init__(self, upstream_url: str, directory: Path, *, max_connections: int = 16) -> None:
        parts = urlsplit(upstream_url)
        assert parts.hostname in ("127.0.0.1", "localhost", "::1"), "the front only forwards to a local double"
        self.upstream = (parts.hostname, parts.port or 80)
        self.ca = trustme.CA()
        self.ca_file = directory / "test-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self._server_cert = self.ca.issue_cert(*INSTAGRAM_HOSTS)
        self.records: list[FrontRec] = []
        self.connections: list[FrontConn] = []
        self.refused: list[str] = []  # CONNECT targets refused (not an Instagram host, or too many connections)
        self.proxy_url = ""
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> TlsFront:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> TlsFront:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.proxy_url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._acceptor = threading.Thread(target=self._accept_loop, name="tls-front-accept")
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut every client and upstream socket, join every thread."""
        if self._listener is None:
            return
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        if self._acceptor is not None:
            self._acceptor.join()
        for _ in range(50):
            with self._lock:
                sockets, threads = list(self._sockets), list(self._threads)
            if not threads:
                break
            for sock in sockets:
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's: no TLS close_notify
            for thread in threads:
                thread.join(timeout=0.2)
        else:
            raise AssertionError(f"tls front threads did not stop: {[t.name for t in threads]}")
        self._listener = None

    def _spawn(self, target: Any, *args: Any, name: str) -> bool:
        def run() -> None:
            try:
                target(*args)
            finally:
                with self._lock:
                    self._threads.discard(thread)

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            if self._stopping.is_set():
                return False
            self._threads.add(thread)
        thread.start()
        return True

    def _track(self, sock: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)

    # ------------------------------------------------------------------ queries

    def reset(self) -> None:
        """Forget the requests, connections and refusals seen so far."""
        with self._lock:
            self.records.clear()
            self.connections.clear()
            self.refused.clear()

    def protocols(self) -> set[tuple[str, str]]:
        """``(protocol, TLS version)`` of every request the front saw."""
        with self._lock:
            return {(rec.protocol, rec.tls_version) for rec in self.records}

    # ------------------------------------------------------------------ CONNECT

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                with contextlib.suppress(OSError):
                    client.sendall(b"HTTP/1.1 503 Too many connections\r\nContent-Length: 0\r\n\r\n")
                client.close()
                with self._lock:
                    self.refused.append("(too many connections)")
                continue
            self._track(client, add=True)
            if not self._spawn(self._serve_client, client, name="tls-front-conn"):
                self._track(client, add=False)
                client.close()
                self._slots.release()

    def _serve_client(self, client: socket.socket) -> None:
        sock: socket.socket = client
        conn: FrontConn | None = None
        try:
            client.settimeout(10)
            # The CONNECT answer and the TLS handshake are small writes in a row: without this, Nagle + delayed ACK
            # add ~40 ms to every new connection (as on the double's side).
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            target = self._read_connect(client)
            if target is None:
                return
            conn = FrontConn(target)
            with self._lock:
                self.connections.append(conn)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            tls = self._tls_context(conn).wrap_socket(client, server_side=True)
            sock = tls
            self._track(tls, add=True)
            conn.alpn = tls.selected_alpn_protocol()
            conn.tls_version = tls.version() or ""
            tls.settimeout(None)  # idle keep-alive connections wait; stop() shuts them down
            if conn.alpn == "h2":
                _H2Connection(self, tls, conn).serve()
            else:
                self._pipe(tls, conn)
        except OSError as exc:  # ssl.SSLError too: the client went away, refused the certificate, or stop() cut it
            if conn is not None:
                conn.error = str(exc) or type(exc).__name__
        finally:
            if conn is not None and conn.reset:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # wrap_socket() moved the descriptor into ``tls``: one close for both
            if conn is not None:
                conn.ended = True
            self._track(sock, add=False)
            self._track(client, add=False)
            self._slots.release()

    def _read_connect(self, client: socket.socket) -> str | None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk or len(head) > 16384:
                return None
            head += chunk
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, _, rest = request_line.partition(" ")
        target = rest.rsplit(" ", 1)[0]
        host, _, port = target.rpartition(":")
        if method != "CONNECT" or host not in INSTAGRAM_HOSTS or port != "443":
            with self._lock:
                self.refused.append(request_line)
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return None
        return target

    def _tls_context(self, conn: FrontConn) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_cert.configure_cert(context)
        context.set_alpn_protocols(["h2", "http/1.1"])

        def on_sni(sslobj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
            conn.sni = name or ""

        context.sni_callback = on_sni
        return context

    # ------------------------------------------------------------------ http/1.1 (not the private transport)

    def _pipe(self, tls: ssl.SSLSocket, conn: FrontConn) -> None:
        """Bytes both ways until either side closes (one thread: the TLS socket is not shared); the double's close
        or reset of its side is passed on to the client as the same."""
        upstream = socket.create_connection(self.upstream, timeout=10)
        upstream.settimeout(None)
        self._track(upstream, add=True)
        try:
            while True:
                readable = [tls] if tls.pending() else select.select([tls, upstream], [], [])[0]
                for source in readable:
                    try:
                        chunk = source.recv(65536)
                    except ConnectionResetError:
                        if source is tls:
                            raise
                        conn.reset = True
                        return
                    if not chunk:
                        conn.closed = source is upstream
                        return
                    (upstream if source is tls else tls).sendall(chunk)
        finally:
            self._track(upstream, add=False)
            upstream.close()

    # ------------------------------------------------------------------ forwarding

    def _forward(self, conn: FrontConn, stream: _Stream) -> _Answer | _Dropped:
        """Send one HTTP/2 request to the double; how the double dropped it if it did not answer."""
        pseudo = {name: value for name, value in stream.headers if name.startswith(":")}
        cookies = [value for name, value in stream.headers if name == "cookie"]
        headers = [
            (name, value)
            for name, value in stream.headers
            if not name.startswith(":") and name not in _HOP_BY_HOP and name not in ("cookie", "content-length")
        ]
        authority = pseudo.get(":authority", "")
        headers.append(("Host", authority))
        if cookies:
            headers.append(("Cookie", "; ".join(cookies)))  # RFC 9113 8.2.3: split cookies are joined again
        headers.append((MARKER, f"h2 {conn.tls_version} {conn.sni}"))
        with self._lock:
            self.records.append(
                FrontRec(
                    "h2",
                    conn.tls_version,
                    conn.sni,
                    conn.connect,
                    pseudo.get(":method", ""),
                    authority,
                    pseudo[":path"],
                )
            )
        upstream = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            upstream.connect()
            assert upstream.sock is not None
            self._track(upstream.sock, add=True)
            upstream.putrequest(
                pseudo.get(":method", "GET"), pseudo[":path"], skip_host=True, skip_accept_encoding=True
            )
            for name, value in headers:
                upstream.putheader(name, value)
            body = bytes(stream.body)
            if body or pseudo.get(":method") in ("POST", "PUT", "PATCH"):
                upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body or None)
            response = upstream.getresponse()
            data = response.read()
            return response.status, response.getheaders(), data
        except http.client.RemoteDisconnected:  # closed cleanly before any byte of an answer
            return "closed"
        except (OSError, http.client.HTTPException):
            return "reset"
        finally:
            if upstream.sock is not None:
                self._track(upstream.sock, add=False)
            upstream.close()


class _H2Connection:
    """Server side of one HTTP/2 connection.

    One thread (this one) owns the TLS socket and the ``H2Connection``: an ``SSLSocket`` must not be read and
    written from two threads at once. Each complete request goes to a forwarding thread, which hands its answer
    back through ``answers`` and wakes this thread through a socketpair.
    """

    def __init__(self, front: TlsFront, tls: ssl.SSLSocket, conn: FrontConn) -> None:
        self.front = front
        self.tls = tls
        self.conn = conn
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8", validate_inbound_headers=True)
        )
        self.streams: dict[int, _Stream] = {}
        self.pending: dict[int, bytes] = {}  # response bytes waiting for flow-control window
        self.answers: queue.SimpleQueue[tuple[int, _Stream, _Answer | _Dropped]] = queue.SimpleQueue()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_lock = threading.Lock()  # no send() on wake_w while (or after) it is closed

    def serve(self) -> None:
        try:
            self._serve()
        finally:
            self.wake_r.close()
            with self.wake_lock:
                self.wake_w.close()

    def _serve(self) -> None:
        self.h2.local_settings = h2.settings.Settings(
            client=False, initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS}
        )
        self.h2.initiate_connection()
        self._flush()
        while True:
            readable = [self.tls] if self.tls.pending() else select.select([self.tls, self.wake_r], [], [])[0]
            if self.wake_r in readable:
                self.wake_r.recv(4096)
                dropped = self._send_answers()
                if dropped is not None:
                    # "reset": _serve_client closes the socket with SO_LINGER 0, a TCP RST; "closed": a plain close
                    self.conn.reset, self.conn.closed = dropped == "reset", dropped == "closed"
                    return
            if self.tls in readable:
                data = self.tls.recv(65536)
                if not data:
                    return
                try:
                    events = self.h2.receive_data(data)
                except h2.exceptions.ProtocolError:
                    self._flush()
                    return
                for stream_id, stream in self._handle(events):
                    self.front._spawn(self._forward, stream_id, stream, name="tls-front-stream")
            self._flush()

    def _handle(self, events: list[h2.events.Event]) -> list[tuple[int, _Stream]]:
        ready = []
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                headers = [(str(name), str(value)) for name, value in event.headers or []]
                self.streams[event.stream_id] = _Stream(headers)
            elif isinstance(event, h2.events.DataReceived):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.body += event.data or b""
                self.h2.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    ready.append((event.stream_id, stream))
            elif isinstance(event, h2.events.StreamReset):
                stream = self.streams.pop(event.stream_id, None)
                if stream is not None:
                    stream.closed = True  # the client gave up on it (its timeout): its answer is dropped
                self.pending.pop(event.stream_id, None)
            # WindowUpdated: _flush() sends what the new window allows; ConnectionTerminated: recv() ends on EOF
        return ready

    def _forward(self, stream_id: int, stream: _Stream) -> None:
        """A forwarding thread: one request to the double, the answer back to the connection's thread."""
        self.answers.put((stream_id, stream, self.front._forward(self.conn, stream)))
        with self.wake_lock, contextlib.suppress(OSError):
            self.wake_w.send(b"x")

    def _send_answers(self) -> _Dropped | None:
        """Start the answers that are back from the double; how it dropped a request if it did."""
        while True:
            try:
                stream_id, stream, answer = self.answers.get_nowait()
            except queue.Empty:
                return None
            self.streams.pop(stream_id, None)
            if isinstance(answer, str):
                return answer
            if stream.closed:
                continue
            status, upstream_headers, body = answer
            headers = [(":status", str(status))] + [
                (name.lower(), value) for name, value in upstream_headers if name.lower() not in _HOP_BY_HOP
            ]
            try:
                self.h2.send_headers(stream_id, headers, end_stream=not body)
            except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
                continue
            if body:
                self.pending[stream_id] = body

    def _flush(self) -> None:
        """Send queued response bodies as far as flow control allows, then every pending frame."""
        for stream_id, body in list(self.pending.items()):
            try:
                window = min(self.h2.local_flow_control_window(stream_id), len(body))
                sent = 0
                while sent < window:
                    size = min(window - sent, self.h2.max_outbound_frame_size)
                    self.h2.send_data(stream_id, body[sent : sent + size])
                    sent += size
                if sent < len(body):
                    self.pending[stream_id] = body[sent:]
                else:
                    self.h2.end_stream(stream_id)
                    del self.pending[stream_id]
            except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
                self.pending.pop(stream_id, None)
        data = self.h2.data_to_send()
        if data:
            self.tls.sendall(data)
