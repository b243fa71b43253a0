"""Pure decisions about the account's health: cooldowns and strikes, the like breaker, login backoff.

Each safety rule lives here once, as a function of history and time, like the rate limits in
``ratelimit.py``. Nothing here sleeps, reads the clock or touches the database; the jobs gather the
inputs and carry out the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from story_liker.errors import ThrottleKind

BREAKER_THRESHOLD = 3  # likes answered with a 4xx in a row before a pass stops
LOGIN_MAX_FAILURES = 3  # failed logins in a row before a human must look
LOGIN_BACKOFF = timedelta(hours=1)  # wait after the first failed login; doubles with each failure
AUTO_LOGIN_EVERY = timedelta(hours=24)  # at most one password login a run makes on its own (AUTO_LOGIN_MIN_HOURS)
LOGIN_PROMPT_TRIES = 3  # passwords a person may type in one `story-liker login` at a terminal
NETWORK_FAILURES_IN_ROW = 2  # targets' requests failing on the network in a row before a pass stops (75)


class Event(StrEnum):
    """What happened to the account, as far as strikes are concerned."""

    THROTTLED = "throttled"  # a cooldown started
    LIKE_ACCEPTED = "like_accepted"  # Instagram confirmed a like: the account is writing again


def strikes_after(strikes: int, event: Event) -> int:
    """Throttles in a row. Only an accepted like ends a row: a read that succeeds proves nothing about
    an action block, so keepalives and nothing-new passes leave the strikes as they are."""
    return strikes + 1 if event is Event.THROTTLED else 0


def cooldown(
    kind: ThrottleKind, strikes: int, *, base_minutes: float, feedback_hours: float, max_hours: float
) -> timedelta:
    """Exponential backoff: the n-th throttle in a row waits 2^(n-1) times the base, up to the cap.

    ``feedback_required`` (an action block) starts from its own, much longer base: 12 h, 24 h, 48 h, ...
    """
    base = (
        timedelta(hours=feedback_hours) if kind is ThrottleKind.FEEDBACK_REQUIRED else timedelta(minutes=base_minutes)
    )
    exponent = max(0, min(strikes, 30) - 1)
    return min(base * (1 << exponent), timedelta(hours=max_hours))


def breaker_open(rejected_in_row: int) -> bool:
    """Instagram refused this many likes in a row (not throttling): stop before the next one."""
    return rejected_in_row >= BREAKER_THRESHOLD


def network_down(failures_in_row: int) -> bool:
    """Requests for different targets failed on the network (a timeout, a reset, a 5xx) this many times in a row:
    Instagram is out of reach, not one target broken. The pass stops and the scheduler tries later."""
    return failures_in_row >= NETWORK_FAILURES_IN_ROW


@dataclass(frozen=True)
class LoginGate:
    """May a run try a password login now?"""

    allowed: bool
    exhausted: bool = False  # too many failures: a human must look (needs-human, exit 77)
    next_attempt: datetime | None = None  # when the backoff ends (not allowed before)
    keeps_expiring: datetime | None = None  # the automatic login the session died again after: a human must look


def login_backoff(failures: int) -> timedelta:
    """1 h after the first failed login, 2 h after the second, ..."""
    return LOGIN_BACKOFF * (1 << max(0, min(failures, 20) - 1))


def login_exhausted(failures: int) -> bool:
    return failures >= LOGIN_MAX_FAILURES


def login_gate(
    failures: int,
    last_attempt_at: datetime | None,
    now: datetime,
    *,
    last_auto_login: datetime | None = None,
    auto_login_every: timedelta = AUTO_LOGIN_EVERY,
) -> LoginGate:
    """Never a loop of logins: after a failure the next attempt waits, after three a human decides; and after a
    password login a run made on its own succeeded, no run makes another one within ``auto_login_every``
    (AUTO_LOGIN_MIN_HOURS): a session Instagram ends again that soon keeps expiring, and a login in every run is
    what a bot does. A human decides then (needs-human, told once).

    This gates the unattended runs (their one login with IG_PASSWORD); ``last_auto_login`` is the last one that
    succeeded. `story-liker login` is a human deciding: its first try always goes (it is how a backoff, three
    failures or an expiring session end), its further tries only as login_retry allows. Either way every try
    counts: its attempt is recorded before it is sent, a failure adds to ``failures``, a success clears them."""
    if login_exhausted(failures):
        return LoginGate(allowed=False, exhausted=True)
    if last_auto_login is not None and timedelta(0) <= now - last_auto_login < auto_login_every:
        return LoginGate(allowed=False, exhausted=True, keeps_expiring=last_auto_login)
    if failures == 0 or last_attempt_at is None:
        return LoginGate(allowed=True)
    next_attempt = last_attempt_at + login_backoff(failures)
    if now < next_attempt:
        return LoginGate(allowed=False, next_attempt=next_attempt)
    return LoginGate(allowed=True)


@dataclass(frozen=True)
class SessionReading:
    """What the stored session means for the next run: one reading for `status` and `doctor`."""

    state: str  # "live"; "device" (a device stored, no live session: a login failed or never finished); "none"
    detail: str  # what it means and what to do, in words
    runs_alone: bool  # the next run goes on without a person (a live session, or a password it may log in with)


def session_reading(*, stored: bool, live: bool, password: bool, gate: LoginGate) -> SessionReading:
    if live:
        return SessionReading("live", "a live session", True)
    what = "a device stored, no live session yet" if stored else "none stored"
    if password and (gate.allowed or gate.next_attempt is not None):
        when = f"after {gate.next_attempt.isoformat(timespec='minutes')}" if gate.next_attempt else "once"
        return SessionReading(
            "device" if stored else "none", f"{what}: the next run logs in {when} with IG_PASSWORD", True
        )
    return SessionReading("device" if stored else "none", f"{what}: run `story-liker login`", False)


class LoginFailure(StrEnum):
    """How a password login failed, as far as trying again at once is concerned."""

    PASSWORD_REJECTED = "password_rejected"  # noqa: S105  # a name, no password: Instagram said "wrong password"
    OTHER = "other"  # anything else: network, 5xx, throttling, a challenge, 2FA, an answer we cannot use


def login_retry(tries: int, failure: LoginFailure, *, typed: bool) -> bool:
    """`story-liker login` after its ``tries``-th password login failed: ask for the password and try again now?

    Only when the password was typed at a terminal (one from IG_PASSWORD or its file would only be sent
    again) and Instagram rejected it: a definite answer about what was typed, which another password can
    change. A network failure, throttling or a challenge is no such answer, and trying again at once would
    repeat it: that login ends with its error, and the next one waits as login_gate says. At most
    LOGIN_PROMPT_TRIES tries in all, however the backoff stands: each is one a person typed, not a loop."""
    return typed and failure is LoginFailure.PASSWORD_REJECTED and tries < LOGIN_PROMPT_TRIES


_MONTHS = {m: n for n, m in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"), start=1)}  # fmt: skip


def block_end(text: str | None, now: datetime) -> datetime | None:
    """The end of an action block when Instagram's message names one ("try again after 2026-12-05", "until
    December 5, 2026", "in 3 days", "for 24 hours"); a named day counts as over at its end (UTC). None when
    the message names no end, or one in the past or absurdly far (more than a year) ahead."""
    if not text:
        return None
    lowered = text.lower()
    day: datetime | None = None
    if match := re.search(r"\b(\d{4})-(\d{2})-(\d{2})\b", lowered):
        year, month, date = (int(g) for g in match.groups())
        day = _day(year, month, date)
    elif match := re.search(r"\b(" + "|".join(_MONTHS) + r")\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b", lowered):
        day = _day(int(match.group(3)), _MONTHS[match.group(1)], int(match.group(2)))
    elif match := re.search(r"\b(\d{1,2})\s+(" + "|".join(_MONTHS) + r"),?\s+(\d{4})\b", lowered):
        day = _day(int(match.group(3)), _MONTHS[match.group(2)], int(match.group(1)))
    elif match := re.search(r"\b(?:in|for)\s+(\d{1,3})\s+(hour|day)s?\b", lowered):
        amount = int(match.group(1))
        end = now + (timedelta(hours=amount) if match.group(2) == "hour" else timedelta(days=amount))
        return end if end <= now + timedelta(days=366) else None
    if day is None:
        return None
    end = day + timedelta(days=1)
    return end if now < end <= now + timedelta(days=366) else None


def _day(year: int, month: int, date: int) -> datetime | None:
    try:
        return datetime(year, month, date, tzinfo=UTC)
    except ValueError:
        return None
