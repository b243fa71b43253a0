"""The HTTP plumbing: each request logged, the faults applied, routed to its handler behind the session check,
answered (cookies rotated); the route table; the web host."""

from __future__ import annotations

import json
import re
import socket
import struct
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from tests.double.answers import Answers
from tests.double.bodies import LOGIN_REQUIRED_BODY
from tests.double.faults import Faults
from tests.double.login import Login
from tests.double.server import Rec, _decode_body, _Handler, _Reply, _Route
from tests.double.timeline import Timeline


class Routing(Login, Faults, Answers, Timeline):
    """From a request to its reply: the faults first, then the route table."""

    def _handle(self, handler: _Handler) -> None:
        target = handler.path
        parts = urlsplit(target)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in handler.headers.items()}
        rec = Rec(
            method=handler.command,
            path=parts.path,
            query={k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
            form=_decode_body(body),
            host=headers.get("host", ""),
            headers=headers,
            target=target,
            body=body,
        )
        with self._lock:
            self.requests.append(rec)
            delay = self._take_rule(target, ("delay",))
            action = self._take_rule(target, ("fail", "raw", "reset", "close", "short"))
        if delay is not None and delay.release is not None:
            released = delay.release.wait(delay.seconds)
            if self._stop.is_set() or not released:
                handler.close_connection = True
                return
        elif delay is not None and self._stop.wait(delay.seconds):
            handler.close_connection = True
            return
        if action is not None and action.kind == "reset":
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # Closed here, not by the server's shutdown_request(), whose shutdown(SHUT_WR) would send a FIN first;
            # the descriptor goes when finish() closes the handler's files: an RST and nothing before it.
            handler.connection.close()
            handler.close_connection = True
            return
        if action is not None and action.kind == "close":
            handler.close_connection = True
            return
        if action is not None and action.kind != "short":
            reply = _Reply(action.status, raw=action.body)
        else:
            with self._lock:
                reply = self._route(rec)
        self._send(handler, reply, short=action is not None and action.kind == "short")

    def _send(self, handler: _Handler, reply: _Reply, *, short: bool = False) -> None:
        data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers:
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data[: len(data) // 2] if short else data)
            if short:
                handler.wfile.flush()
                handler.connection.shutdown(socket.SHUT_WR)
                handler.close_connection = True
        except OSError:  # the client gave up (timeout) or we are shutting down
            handler.close_connection = True

    def _route(self, rec: Rec) -> _Reply:
        if rec.host == "www.instagram.com":
            return self._www(rec)
        for method, pattern, func, needs_auth in self._routes:
            match = pattern.match(rec.path)
            if match is None or method != rec.method:
                continue
            if needs_auth:
                if not self._authenticated(rec):
                    return _Reply(403, dict(LOGIN_REQUIRED_BODY))
                if self.challenge_required:
                    return _Reply(400, self._challenge_body())
            reply = func(rec, match)
            if needs_auth and reply.status == 200 and self.rotate_cookies:
                self.rur = self._new_rur()
                reply.headers.append(("ig-set-ig-u-rur", self.rur))
                reply.headers.append(("Set-Cookie", self._cookie("rur", self._quoted_rur())))
            return reply
        return _Reply(
            404,
            {"message": f"Page not found (instagram double): {rec.method} {rec.path}", "status": "fail"},
        )

    def _build_routes(self) -> list[_Route]:
        v1 = "/api/v1/"
        raw_routes: list[tuple[str, str, Callable[[Rec, re.Match[str]], _Reply], bool]] = [
            # login machinery (no session needed)
            ("POST", r"/graphql_www$", self._graphql_www, False),
            ("GET", v1 + r"qe/sync/$", self._qe_sync, False),
            ("POST", v1 + r"qe/sync/$", self._qe_sync, False),
            ("POST", v1 + r"launcher/sync/$", self._launcher_sync, False),
            ("POST", v1 + r"attestation/create_android_keystore/$", self._attestation, False),
            ("POST", v1 + r"bloks/(async_action|apps)/([^/]+)/$", self._bloks, False),
            ("POST", v1 + r"accounts/login/$", self._accounts_login, False),
            ("POST", v1 + r"accounts/two_factor_login/$", self._two_factor_login, False),
            # authenticated API
            ("GET", v1 + r"accounts/current_user/$", self._current_user, True),
            ("POST", v1 + r"accounts/logout/$", self._logout, True),
            ("POST", v1 + r"feed/reels_tray/$", self._reels_tray, True),
            ("POST", v1 + r"feed/timeline/$", self._timeline, True),
            ("POST", v1 + r"feed/reels_media/$", self._reels_media, True),
            ("GET", v1 + r"feed/user/(\d+)/story/$", self._user_story, True),
            ("GET", v1 + r"feed/user/(\d+)/$", self._user_feed, True),
            ("GET", v1 + r"users/(\d+)/info/$", self._user_info, True),
            ("POST", v1 + r"users/(\d+)/info_stream/$", self._not_supported, True),
            ("GET", v1 + r"users/([^/]+)/usernameinfo/$", self._usernameinfo, True),
            ("GET", v1 + r"friendships/(\d+)/following/$", self._following, True),
            ("POST", r"/api/v2/media/seen/$", self._media_seen, True),
            ("POST", v1 + r"story_interactions/(send|unsend)_story_like/?$", self._story_like, True),
            ("POST", v1 + r"media/(\d+)(?:_\d+)?/(like|unlike)/$", self._media_like, True),
            ("GET", v1 + r"media/(\d+)(?:_\d+)?/info/$", self._media_info, True),
        ]
        return [(method, re.compile("^" + path), func, auth) for method, path, func, auth in raw_routes]

    def _www(self, rec: Rec) -> _Reply:
        """The public web host: only the logged-out behaviour (redirect to the login page)."""
        if rec.path.startswith("/accounts/login/"):
            html = b"<!DOCTYPE html><html><head><title>Login \xe2\x80\xa2 Instagram</title></head></html>"
            return _Reply(200, raw=html, content_type="text/html; charset=utf-8")
        if not self._authenticated(rec):
            location = f"https://www.instagram.com/accounts/login/?next={rec.path}"
            return _Reply(302, raw=b"", headers=[("Location", location)], content_type="text/html; charset=utf-8")
        return _Reply(404, {"message": f"Page not found (instagram double): {rec.method} {rec.path}", "status": "fail"})
