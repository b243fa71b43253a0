"""Faults on request: errors, raw bodies, resets, closes, short reads, delays and holds by path, an expired
session, a challenge."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http import HTTPStatus

from tests.double.bodies import _DEFAULT_ERROR_BODIES
from tests.double.common import JSON
from tests.double.state import DoubleState


@dataclass
class _Rule:
    pattern: str
    kind: str  # "fail" | "raw" | "reset" | "close" | "delay" | "short"
    times: int | None  # None: forever
    after: int = 0
    status: int = 200
    body: bytes = b""
    seconds: float = 0.0
    release: threading.Event | None = None  # "delay" until this is set (at most ``seconds``)


class Faults(DoubleState):
    """What a test can make go wrong, and the rules that do it."""

    def fail(
        self,
        path_contains: str,
        *,
        status: int = 429,
        body: JSON | None = None,
        times: int | None = 1,
        after: int = 0,
    ) -> None:
        """Answer the next ``times`` matching requests (after letting ``after`` through) with
        ``status`` and ``body`` (default: an Instagram-like error JSON). ``times=None``: forever."""
        payload = body if body is not None else _DEFAULT_ERROR_BODIES.get(status, self._status_body(status))
        self._add_rule(_Rule(path_contains, "fail", times, after, status, json.dumps(payload).encode()))

    def fault_reset(self, path_contains: str, *, times: int | None = 1, after: int = 0) -> None:
        """Reset the connection (TCP RST) of matching requests, read completely, without sending any response."""
        self._add_rule(_Rule(path_contains, "reset", times, after))

    def fault_close(self, path_contains: str, *, times: int | None = 1, after: int = 0) -> None:
        """Close the connection cleanly (TCP FIN) after reading matching requests completely, without any response:
        a server that went away between the request and its answer. Like ``fault_reset``, nothing is done."""
        self._add_rule(_Rule(path_contains, "close", times, after))

    def short_read(self, path_contains: str, *, times: int | None = 1, after: int = 0) -> None:
        """Handle matching requests as usual (a like is done), but cut the answer's body in half and close the
        connection: the client sees fewer bytes than ``Content-Length`` (``requests``: ChunkedEncodingError)."""
        self._add_rule(_Rule(path_contains, "short", times, after))

    def delay(self, path_contains: str, seconds: float, *, times: int | None = None) -> None:
        """Sleep ``seconds`` before answering matching requests (forever unless ``times``)."""
        self._add_rule(_Rule(path_contains, "delay", times, seconds=seconds))

    def hold(self, path_contains: str, *, times: int | None = 1, timeout: float = 120) -> threading.Event:
        """Hold matching requests unanswered until the returned event is set (at most ``timeout`` seconds, then
        the connection is closed unanswered): a stall that ends when the test says so, not after a guess."""
        release = threading.Event()
        self._add_rule(_Rule(path_contains, "delay", times, seconds=timeout, release=release))
        return release

    def raw(self, path_contains: str, text: str, *, status: int = 200, times: int | None = 1) -> None:
        """Answer matching requests with this raw body (``application/json`` content type)."""
        self._add_rule(_Rule(path_contains, "raw", times, 0, status, text.encode()))

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    def expire_session(self) -> None:
        """The current session stops working: authed requests get 403 ``login_required``."""
        with self._lock:
            self.session_expired = True

    def require_challenge(self, required: bool = True) -> None:
        """Login and authed requests get 400 ``challenge_required`` (``False`` lifts it)."""
        with self._lock:
            self.challenge_required = required

    @staticmethod
    def _status_body(status: int) -> JSON:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        return {"message": phrase, "status": "fail"}

    def _add_rule(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def _take_rule(self, target: str, kinds: tuple[str, ...]) -> _Rule | None:
        chosen = None
        for rule in self._rules:
            if rule.kind not in kinds or rule.pattern not in target or rule.times == 0:
                continue
            if rule.after > 0:
                rule.after -= 1
                continue
            if chosen is None:
                chosen = rule
                if rule.times is not None:
                    rule.times -= 1
        return chosen
