"""Tell the person: one message per change of the account's health, an optional daily digest, via Apprise.

After each run the account's health is derived from the database (the account row: needs-human, cooldown,
session) and the exit code, and compared with the health last notified (table ``notify_state``). Only a change
is queued (table ``notification``, in the same transaction as the new state), so a run that exits 77 every hour
for a day sends one message. The queue is then delivered to every configured URL; a URL that failed gets the
message again at the next run, one that took it never twice.

What "took it" means (``Delivery``): the service answered 2xx (delivered), or the request went out whole and no
answer came in time: a read timeout, or the run's deadline while the answer was awaited (unconfirmed, logged as
``notification_unconfirmed``). A slow service, an Apprise API server fanning out, usually did take it: sending it
again would repeat it at every run for days. Only what surely did not get through is sent again, briefly within
the run and at the next run (``notification_failed``): a connection that could not be made (refused, unreachable,
not made before the deadline), an error answer (4xx, 5xx, however slow), or no answer to a retry after the
service had answered with an error in this run. Apprise only says yes or no, so each delivery thread watches its
own HTTP requests (``_watch_requests``); a plugin that does not use ``requests`` (SMTP) is never unconfirmed.

Nothing here changes the exit code (each step is isolated, see ``monitor.isolated``), holds a run up for more
than DEADLINE seconds (every URL is sent to from a daemon thread that is given up on after that), or prints a
URL (they carry tokens): a URL is named by its position and service (``#2 ntfy``), and Apprise's own log lines,
which quote URLs and answers, are dropped. Apprise is imported only when a message is actually sent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from story_liker.errors import NEEDS_HUMAN as NEEDS_HUMAN_EXIT
from story_liker.health import login_exhausted
from story_liker.hooks.guard import isolated, retried
from story_liker.logging import redact, register_secret
from story_liker.models import Account
from story_liker.settings import Settings
from story_liker.store import Store

log = logging.getLogger(__name__)


class State(StrEnum):
    """The account's health as the person is told of it (not an exit code: see errors)."""

    OK = "ok"
    NEEDS_HUMAN = "needs_human"
    SESSION_OUTDATED = "session_outdated"
    ACTION_BLOCKED = "action_blocked"
    LONG_COOLDOWN = "long_cooldown"


# the events of the messages besides a new State (each State is its own event)
RECOVERED = "recovered"
DIGEST = "digest"
TEST = "test"
# The commands whose clean exit says the account works: they talked to Instagram.
INSTAGRAM_COMMANDS = frozenset({"run-stories", "run-posts", "keepalive"})
DEADLINE = 5.0  # seconds a run waits for all its deliveries together
TEST_DEADLINE = 15.0  # `notify test`: a person waits for the answer
CONNECT_TIMEOUT = 5.0  # seconds each request Apprise sends may take to connect; not connected: failed, retried
# seconds it may wait for the answer once sent: longer than either deadline, which cuts a slow answer first
# (unconfirmed either way); the thread left behind then waits at most this long in a process that may go on
READ_TIMEOUT = 30.0
GIVE_UP_AFTER = timedelta(days=3)  # a message still not delivered by then is dropped (logged)
CLAIM = timedelta(minutes=2)  # a run delivering a message keeps other runs off it for this long


@dataclass(frozen=True)
class Health:
    """The account's health as far as the person is concerned; ``key`` tells two blocks apart (their end)."""

    state: str = State.OK
    key: str | None = None
    reason: str = ""

    @property
    def ident(self) -> tuple[str, str | None]:
        return self.state, self.key


def assess(
    account: Account,
    *,
    code: int,
    command: str,
    requests: int,
    now: datetime,
    long_cooldown: timedelta,
    previous: Health,
) -> Health | None:
    """The account's health after a run, or None when the run says nothing new about it (a held lock, a short
    cooldown, a run that did not reach Instagram): then whatever was notified last still holds."""
    if account.needs_human:
        reason = account.needs_human_reason or "a challenge or a 2FA prompt"
        return Health(State.SESSION_OUTDATED if "needs_upgrade" in reason else State.NEEDS_HUMAN, None, reason)
    if code == NEEDS_HUMAN_EXIT:  # needs a human without the flag: no session, and no password to log in with
        if login_exhausted(account.login_failures):
            return Health(State.NEEDS_HUMAN, None, f"{account.login_failures} login attempts failed in a row")
        if not account.has_session:
            return Health(State.NEEDS_HUMAN, None, "no live Instagram session, and no IG_PASSWORD for a login")
        return Health(State.NEEDS_HUMAN, None, "Instagram wants a person to look")
    until = account.cooldown_until
    if until is not None and until > now:
        key = until.isoformat(timespec="seconds")
        reason = str(account.cooldown_reason or "throttled")
        if reason == "feedback_required":
            return Health(State.ACTION_BLOCKED, key, reason)
        if previous.ident == (State.LONG_COOLDOWN, key):
            return previous
        if until - now > long_cooldown:
            return Health(State.LONG_COOLDOWN, key, reason)
        return None  # a short cooldown: routine
    if code == 0 and command in INSTAGRAM_COMMANDS and requests > 0:
        return Health(State.OK)
    return None


def _when(value: str | None, settings: Settings) -> str:
    if not value:
        return "?"
    return datetime.fromisoformat(value).astimezone(settings.zone).strftime("%Y-%m-%d %H:%M %Z")


def message(new: Health, previous: Health, settings: Settings, account: str, *, command: str) -> tuple[str, str, str]:
    """(event, title, body) of a change of health. Names no secret: our own words, the reasons we stored."""
    if new.state == State.NEEDS_HUMAN:
        return (
            State.NEEDS_HUMAN,
            f"story-liker: {account} needs you",
            f"{new.reason}.\nRuns exit 77 and send nothing to Instagram until you run `story-liker login`.",
        )
    if new.state == State.SESSION_OUTDATED:
        return (
            State.SESSION_OUTDATED,
            f"story-liker: the session of {account} is outdated",
            "Instagram rejects the app version of the stored session.\n"
            "Run `story-liker session upgrade`, then `story-liker keepalive`. Runs exit 77 until then.",
        )
    if new.state == State.ACTION_BLOCKED:
        return (
            State.ACTION_BLOCKED,
            f"story-liker: Instagram blocked likes for {account}",
            f"An action block (feedback_required): no likes until {_when(new.key, settings)}.\n"
            "Runs exit 75 without a request until then; nothing to do. Liking less "
            "(*_LIKES_PER_HOUR/_PER_DAY) makes the next one less likely.",
        )
    if new.state == State.LONG_COOLDOWN:
        return (
            State.LONG_COOLDOWN,
            f"story-liker: {account} is cooling down until {_when(new.key, settings)}",
            f"Instagram throttled the account ({new.reason}); runs exit 75 without a request until "
            f"{_when(new.key, settings)}. Nothing to do.",
        )
    wording: dict[str, str] = {
        State.NEEDS_HUMAN: "needing a human",
        State.SESSION_OUTDATED: "an outdated session",
        State.ACTION_BLOCKED: "an action block",
        State.LONG_COOLDOWN: "a long cooldown",
    }
    was = wording.get(previous.state, previous.state)
    return (
        RECOVERED,
        f"story-liker: {account} is running again",
        f"`{command}` went well after {was}.",
    )


def after_run(settings: Settings, store: Store, *, command: str, code: int, counts: dict[str, Any]) -> None:
    """At the end of a run: queue a change of health, the daily digest when due, then deliver what is queued.
    Each step on its own: a failing one is logged and the next still runs."""
    account = settings.ig_username
    if not account or not settings.notifications_on:
        return
    now = datetime.now(UTC)
    requests = int(counts.get("requests", 0) or 0)
    isolated(
        "notify_state_failed",
        lambda: record_change(settings, store, account, command=command, code=code, requests=requests, now=now),
    )
    if settings.notify_digest == "daily":
        isolated("notify_digest_failed", lambda: queue_digest(settings, store, account, now=now))
    isolated("notify_delivery_failed", lambda: deliver(settings, store, account, now=now))


def record_change(
    settings: Settings, store: Store, account: str, *, command: str, code: int, requests: int, now: datetime
) -> bool:
    """Compare the health after this run with the one last notified; queue a message only when it changed."""
    row = store.health_state(account)
    previous = Health(row.state, row.state_key) if row else Health()
    new = assess(
        store.account(account),
        code=code,
        command=command,
        requests=requests,
        now=now,
        long_cooldown=timedelta(hours=settings.notify_cooldown_hours),
        previous=previous,
    )
    if new is None or new.ident == previous.ident:
        return False
    event, title, body = message(new, previous, settings, account, command=command)
    moved = store.change_health(
        account, old=previous.ident, new=new.ident, now=now, message=(event, redact(title), redact(body))
    )
    if moved:
        log.info("notification_queued", extra={"notify_event": event, "was": previous.state})
    return moved


def queue_digest(settings: Settings, store: Store, account: str, *, now: datetime) -> bool:
    """NOTIFY_DIGEST=daily: at the first run of a day (in TIMEZONE), a summary since the last one."""
    from story_liker import report as reporting

    row = store.health_state(account)
    last = row.digest_at if row else None
    zone = settings.zone
    if last is not None and last.astimezone(zone).date() >= now.astimezone(zone).date():
        return False
    since = max(last or now - timedelta(days=1), now - timedelta(days=7))
    data = reporting.report_data(store, settings, account, window=reporting.Window(since, now))
    title = f"story-liker: {account} daily summary"
    queued = store.queue_digest(
        account, last=last, now=now, message=(DIGEST, title, redact(reporting.digest_text(data)))
    )
    if queued:
        log.info("notification_queued", extra={"notify_event": DIGEST})
    return queued


# --- delivery ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """One configured Apprise URL: named without its secrets, told apart by a fingerprint (a hash)."""

    label: str
    fingerprint: str
    plugin: Any


@dataclass(frozen=True)
class Delivery:
    label: str
    delivered: bool  # the service answered 2xx
    why: str = ""  # when not delivered: "refused", "no answer" (read timeout), "timed out" (deadline), an exception
    unconfirmed: bool = False  # not delivered, but the request went out and no answer came: counted as taken


def fingerprint(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def destinations(settings: Settings) -> tuple[list[Destination], list[str]]:
    """The URLs of NOTIFY_URLS (or NOTIFY_URLS_FILE) and NOTIFY_CONFIG as Apprise plugins, and a line for each
    entry Apprise could not use. Imports Apprise."""
    import apprise

    _mute_apprise()
    asset = apprise.AppriseAsset(async_mode=False)
    found: list[Destination] = []
    problems: list[str] = []
    for number, url in enumerate(settings.notify_url_list, start=1):
        register_secret(url)
        scheme = url.split("://", 1)[0].lower()
        plugin = apprise.Apprise.instantiate(url, asset=asset, suppress_exceptions=True)
        if not plugin:
            problems.append(f"#{number} ({scheme}://): not a URL Apprise can use")
            continue
        found.append(Destination(_label(number, plugin, scheme), fingerprint(url), _bounded(plugin)))
    if settings.notify_config is not None:
        config = apprise.AppriseConfig(asset=asset)
        config.add(str(settings.notify_config))
        plugins: list[Any] = list(config.services())
        if not plugins:
            problems.append(f"NOTIFY_CONFIG ({settings.notify_config}): no URL in it Apprise can use")
        for plugin in plugins:
            url = plugin.url()
            register_secret(url)
            number = len(found) + len(problems) + 1
            scheme = url.split("://", 1)[0].lower()
            found.append(
                Destination(_label(number, plugin, scheme) + " from NOTIFY_CONFIG", fingerprint(url), _bounded(plugin))
            )
    return found, problems


def _label(number: int, plugin: Any, scheme: str) -> str:
    return f"#{number} {getattr(plugin, 'service_name', None) or scheme} ({scheme}://)"


def _bounded(plugin: Any) -> Any:
    """Every request Apprise sends for this URL waits CONNECT_TIMEOUT to connect and READ_TIMEOUT for its
    answer, whatever the URL says (``cto``, ``rto``): what counts as taken depends on them (module docstring)."""
    for name, seconds in (("socket_connect_timeout", CONNECT_TIMEOUT), ("socket_read_timeout", READ_TIMEOUT)):
        if isinstance(getattr(plugin, name, None), int | float):
            setattr(plugin, name, seconds)
    return plugin


def _mute_apprise() -> None:
    """Apprise logs URLs, topics and the services' answers: none of its lines reach ours."""
    muted = logging.getLogger("apprise")
    muted.setLevel(logging.CRITICAL + 1)
    muted.propagate = False


class Undelivered(Exception):
    """Apprise said the service did not take the message, and it surely did not: retried."""


class Unanswered(Exception):
    """Apprise said no, but only because the answer did not come in time: the request went out. Never retried."""


@dataclass
class _Attempts:
    """What one URL's delivery got to in this run: written by its thread (and ``_watch_requests``), read by
    ``send`` at the deadline."""

    sent: bool = False  # the current HTTP request went out whole; its answer is awaited
    unanswered: bool = False  # an HTTP request of the current attempt went out and its read timed out
    refused: int = 0  # attempts the service refused or answered with an error


_WATCHED = threading.local()  # .attempts: the _Attempts of the delivery this thread runs, else unset/None


def send(jobs: Sequence[tuple[Destination, tuple[str, str, str]]], *, deadline: float) -> list[Delivery]:
    """Send each (destination, (event, title, body)) from its own daemon thread, all at once, with a short
    bounded retry of what surely failed; after ``deadline`` seconds whatever has not answered is left behind (a
    daemon thread never keeps the process alive): unconfirmed when its request went out, else not delivered."""
    _watch_requests()
    results: list[Delivery | None] = [None] * len(jobs)
    watched = [_Attempts() for _ in jobs]

    def one(index: int, destination: Destination, note: tuple[str, str, str]) -> None:
        attempts = _WATCHED.attempts = watched[index]
        try:
            retried(
                "notification",
                lambda: _notify_once(destination.plugin, note, attempts),
                on=lambda exc: isinstance(exc, Undelivered),
                window=max(0.0, min(deadline / 2, 3.0)),  # a quick retry only of what failed quickly
            )
            results[index] = Delivery(destination.label, True)
        except Unanswered:
            results[index] = Delivery(destination.label, False, "no answer", unconfirmed=not attempts.refused)
        except Undelivered:
            results[index] = Delivery(destination.label, False, "refused")
        except Exception as exc:  # an Apprise plugin that raised: this URL failed, the others go on
            results[index] = Delivery(destination.label, False, type(exc).__name__)
        finally:
            _WATCHED.attempts = None

    threads = [
        threading.Thread(target=one, args=(index, destination, note), name=f"notify-{index}", daemon=True)
        for index, (destination, note) in enumerate(jobs)
    ]
    for thread in threads:
        thread.start()
    end = time.monotonic() + deadline
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    return [
        result
        if result is not None
        else Delivery(destination.label, False, "timed out", unconfirmed=attempts.sent and not attempts.refused)
        for result, attempts, (destination, _) in zip(list(results), watched, jobs, strict=True)
    ]


def _notify_once(plugin: Any, note: tuple[str, str, str], attempts: _Attempts) -> None:
    event, title, body = note
    kind = {RECOVERED: "success", DIGEST: "info", TEST: "info"}.get(event, "failure")
    attempts.unanswered = False
    if plugin.notify(body=body, title=title, notify_type=kind):
        return
    if attempts.unanswered:
        raise Unanswered
    attempts.refused += 1
    raise Undelivered


_WATCHING: list[bool] = []
_WATCH_LOCK = threading.Lock()


def _watch_requests() -> None:
    """Let each delivery thread see what its HTTP requests got to, which Apprise (yes or no) does not say: sent
    (``_Attempts.sent``) and unanswered (a read timeout). Installed once per process, when a message is sent:
    requests' ``HTTPAdapter.send``, which every Apprise HTTP plugin goes through, wrapped so that in a delivery
    thread the request carries a urllib3 Timeout that marks the request sent when urllib3 asks it for the read
    timeout, which it does once the request is written, right before it waits for the answer. Outside a
    delivery thread the wrapper only passes the call on."""
    with _WATCH_LOCK:
        if _WATCHING:
            return
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.timeout import Timeout

        class SentTimeout(Timeout):
            def __init__(self, *, connect: Any, read: Any, attempts: _Attempts) -> None:  # Any: urllib3's sentinel too
                super().__init__(connect=connect, read=read)
                self.attempts = attempts

            def clone(self) -> Timeout:  # urllib3 clones it for each request
                return SentTimeout(connect=self._connect, read=self._read, attempts=self.attempts)

            @property
            def read_timeout(self) -> float | None:
                self.attempts.sent = True
                return super().read_timeout

        original = HTTPAdapter.send

        def send(adapter: HTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
            attempts: _Attempts | None = getattr(_WATCHED, "attempts", None)
            timeout = kwargs.get("timeout")
            if attempts is None or args or not (timeout is None or isinstance(timeout, tuple | int | float)):
                return original(adapter, request, *args, **kwargs)
            connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
            attempts.sent = False
            kwargs["timeout"] = SentTimeout(connect=connect, read=read, attempts=attempts)
            try:
                return original(adapter, request, **kwargs)
            except requests.ReadTimeout:
                attempts.unanswered = True
                raise

        HTTPAdapter.send = send  # type: ignore[method-assign,assignment]  # the one way in: Apprise makes its sessions
        _WATCHING.append(True)


def _combined(notes: Sequence[Any]) -> tuple[str, str, str]:
    """Several messages one URL still lacks go out as one: the latest's title, all bodies oldest first."""
    if len(notes) == 1:
        return notes[0].event, notes[0].title, notes[0].body
    latest = notes[-1]
    body = "\n\n".join(f"{n.title}\n{n.body}" for n in notes)
    return latest.event, f"{latest.title} (+{len(notes) - 1} earlier)", body


def deliver(settings: Settings, store: Store, account: str, *, now: datetime) -> list[Delivery]:
    """Send every queued message to each URL that has not taken it yet; a message every URL took is done."""
    dropped = store.give_up_notifications(account, before=now - GIVE_UP_AFTER, now=now)
    if dropped:
        log.warning("notifications_given_up", extra={"count": dropped, "after_days": GIVE_UP_AFTER.days})
    pending = store.pending_notifications(account, since=now - GIVE_UP_AFTER)
    if not pending:
        return []  # the usual case: Apprise is not even imported
    claimed = set(store.claim_notifications([n.id for n in pending if n.id is not None], now=now, until=now + CLAIM))
    pending = [n for n in pending if n.id in claimed]
    if not pending:
        return []
    configured, problems = destinations(settings)
    for problem in problems:
        log.warning("notify_url_unusable", extra={"url": problem})
    delivered = {n.id: set(json.loads(n.delivered_to or "[]")) for n in pending}
    jobs, owed = [], []
    for destination in configured:
        todo = [n for n in pending if destination.fingerprint not in delivered[n.id]]
        if todo:
            jobs.append((destination, _combined(todo)))
            owed.append(todo)
    outcomes = send(jobs, deadline=DEADLINE)
    for (destination, _), todo, outcome in zip(jobs, owed, outcomes, strict=True):
        fields = {"destination": destination.label, "messages": len(todo)}
        if outcome.delivered or outcome.unconfirmed:
            for n in todo:
                delivered[n.id].add(destination.fingerprint)
        if outcome.delivered:
            log.info("notification_sent", extra=fields)
        elif outcome.unconfirmed:  # sent, and the answer did not come in time: it may well have arrived
            log.warning("notification_unconfirmed", extra=fields | {"error": outcome.why, "retry": "never"})
        else:
            log.warning("notification_failed", extra=fields | {"error": outcome.why, "retry": "next run"})
    wanted = {d.fingerprint for d in configured}
    for n in pending:
        assert n.id is not None
        done = bool(wanted) and wanted <= delivered[n.id]
        store.notification_delivered(n.id, delivered_to=sorted(delivered[n.id]), done=done, now=now)
    return outcomes


def send_test(settings: Settings) -> tuple[list[Delivery], list[str]]:
    """`notify test`: one test message to every configured URL; which took it, and the entries Apprise cannot use."""
    configured, problems = destinations(settings)
    who = settings.ig_username or "this host"
    note = (
        TEST,
        "story-liker: test message",
        f"A test from story-liker for {who}: its notifications reach you here.",
    )
    return send([(d, note) for d in configured], deadline=TEST_DEADLINE), problems
