"""What every Instagram pass shares: dependencies, counters, the session guard, target resolution."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from story_liker import ratelimit, vault
from story_liker.errors import (
    BadResponse,
    CoolingDown,
    DatabaseUnavailable,
    Interrupted,
    Locked,
    NeedsHuman,
    SessionExpired,
    TargetUnavailable,
    Throttled,
)
from story_liker.ig import Connection, Instagram, UserRef
from story_liker.models import Account, Target
from story_liker.settings import Settings
from story_liker.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


class Progress(Protocol):
    def start(self, total: int, label: str) -> None: ...
    def advance(self, label: str) -> None: ...
    def stop(self) -> None: ...


class NoProgress:
    def start(self, total: int, label: str) -> None: ...
    def advance(self, label: str) -> None: ...
    def stop(self) -> None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Counts:
    targets: int = 0
    stories_seen: int = 0
    posts_seen: int = 0
    liked: int = 0
    would_like: int = 0
    already_liked: int = 0
    skipped: int = 0
    errors: int = 0
    requests: int = 0
    deleted: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class Deps:
    """Everything a job touches. Tests swap the clock, the sleeper and the randomness, never the store."""

    settings: Settings
    store: Store
    run_id: str
    command: str
    connect: Callable[[Connection], Instagram]
    clock: Callable[[], datetime] = utcnow
    rng: random.Random = field(default_factory=random.Random)
    stop: threading.Event = field(default_factory=threading.Event)
    stop_signal: list[int] = field(default_factory=list)
    progress: Progress = field(default_factory=NoProgress)
    counts: Counts = field(default_factory=Counts)
    lease_renewed_at: datetime | None = None

    def checkpoint(self) -> None:
        """Called between two steps: a pending SIGTERM/SIGINT ends the pass here."""
        if self.stop.is_set():
            raise Interrupted(self.stop_signal[0] if self.stop_signal else 15)

    def keep_lease(self) -> None:
        """Push the run's lease forward once a third of it has passed (cheap to call often)."""
        now = self.clock()
        ttl = timedelta(seconds=self.settings.lock_ttl_seconds)
        if self.lease_renewed_at is None or now - self.lease_renewed_at >= ttl / 3:
            self.store.renew_lock(self.settings.account(), run_id=self.run_id, now=now, ttl=ttl)
            self.lease_renewed_at = now

    def pause(self, low: float, high: float) -> None:
        """Sleep a jittered while, waking at once on SIGTERM/SIGINT."""
        seconds = ratelimit.jitter(self.rng, low, high)
        if seconds > 0:
            self.stop.wait(seconds)
        self.checkpoint()
        self.keep_lease()


@dataclass
class Report:
    outcome: str  # ok, nothing_to_do, budget_used_up, dry_run, ...
    counts: Counts
    extra: dict[str, Any] = field(default_factory=dict)


PassBody = Callable[[Deps, Instagram, list[Target], int, bool], str]


def like_pass(
    deps: Deps, kind: str, limits: ratelimit.Limits, body: PassBody, *, dry_run: bool, max_likes: int | None
) -> Report:
    """What a story or post pass does before Instagram: sync targets, check the like budget.

    With no target or no budget left, Instagram is not contacted at all. ``body`` gets the targets and
    how many likes it may send, and returns the outcome.
    """
    account = deps.settings.account()
    targets = sync_targets(deps)
    deps.counts.targets = len(targets)
    if not targets:
        log.info("nothing_to_do", extra={"reason": "no enabled targets: set TARGET_ACCOUNTS or `accounts add`"})
        return Report("nothing_to_do", deps.counts)
    now = deps.clock()
    recent = deps.store.recent_actions(account, kind, now)
    allowed = ratelimit.budget(now, recent, limits).remaining
    if max_likes is not None:
        allowed = min(allowed, max_likes)
    if allowed == 0 and not dry_run:
        next_slot = ratelimit.next_slot(now, recent, limits)
        log.info("budget_used_up", extra={"next_slot": next_slot.isoformat(timespec="seconds")})
        return Report("budget_used_up", deps.counts)
    outcome = with_instagram(deps, lambda ig: body(deps, ig, targets, allowed, dry_run))
    return Report(outcome, deps.counts)


def with_instagram(deps: Deps, body: Callable[[Instagram], T]) -> T:
    """Run ``body`` under the account's flags, lock and session; the only place that handles
    cooldowns, the single re-login and saving refreshed cookies.
    """
    settings, store = deps.settings, deps.store
    account = settings.account()
    state = store.account(account)
    now = deps.clock()
    if state.needs_human:
        raise NeedsHuman(
            f"account {account} needs a human ({state.needs_human_reason}): run `story-liker login`; "
            "no request was sent"
        )
    if state.cooldown_until and state.cooldown_until > now:
        raise CoolingDown(
            f"cooling down until {state.cooldown_until.isoformat(timespec='seconds')} "
            f"({state.cooldown_reason}); no request was sent"
        )
    if state.settings is None and settings.ig_password is None:
        raise NeedsHuman(f"no Instagram session stored for {account}: run `story-liker login`")
    with lease(deps, timedelta(seconds=settings.lock_ttl_seconds)):
        return _with_session(deps, state, body)


@contextmanager
def lease(deps: Deps, ttl: timedelta) -> Iterator[None]:
    """Hold the account's run lock for the block, or raise Locked (75) naming who holds it."""
    account, store, now = deps.settings.account(), deps.store, deps.clock()
    if not store.acquire_lock(account, run_id=deps.run_id, command=deps.command, now=now, ttl=ttl):
        holder = store.lock_holder(account)
        detail = f" by {holder.command} (run {holder.run_id}) until {holder.expires_at:%H:%M:%S}Z" if holder else ""
        raise Locked(f"another run holds the lock for {account}{detail}")
    deps.lease_renewed_at = now
    try:
        yield
    finally:
        store.release_lock(account, run_id=deps.run_id)


def _with_session(deps: Deps, state: Account, body: Callable[[Instagram], T]) -> T:
    """``body`` with a connected session: the single re-login, cooldowns, needs-human, saved cookies."""
    settings, store, counts = deps.settings, deps.store, deps.counts
    account = settings.account()
    ig: Instagram | None = None
    logged_in = False
    key = settings.encryption_key
    try:
        stored = vault.decode(state.settings, state.settings_encrypted, key) if state.settings else None
        ig = deps.connect(connection_for(settings, account, stored))
        if stored is None:
            log.info("login_started", extra={"reason": "no stored session"})
            ig.relogin()
            logged_in = True
        try:
            result = body(ig)
        except SessionExpired:
            if logged_in:
                raise  # a session fresh from a login expired at once: never log in twice in one run
            log.warning("session_expired", extra={"action": "one re-login"})
            ig.relogin()
            logged_in = True
            _save(deps, ig, key, login=True)
            log.info("relogin_succeeded")
            result = body(ig)
        store.clear_cooldown_strikes(account)
        return result
    except SessionExpired as exc:
        store.set_needs_human(account, "session expired again right after a re-login")
        raise NeedsHuman(exc.message) from None
    except NeedsHuman as exc:
        store.set_needs_human(account, exc.message[:200])
        raise
    except Throttled as exc:
        strikes = state.cooldown_strikes + 1
        wait = ratelimit.cooldown(
            exc.kind,
            strikes,
            base_minutes=settings.cooldown_base_minutes,
            feedback_hours=settings.feedback_cooldown_hours,
            max_hours=settings.cooldown_max_hours,
        )
        until = deps.clock() + wait
        store.set_cooldown(account, until=until, reason=exc.kind, strikes=strikes)
        log.warning(
            "cooldown_started",
            extra={"reason": exc.kind, "until": until.isoformat(timespec="seconds"), "strikes": strikes},
        )
        raise
    finally:
        if ig is not None:
            counts.requests = ig.requests_sent
            counts.errors += ig.malformed
            _save(deps, ig, key, login=logged_in)


def connection_for(settings: Settings, account: str, stored: dict[str, Any] | None) -> Connection:
    return Connection(
        username=account,
        settings=stored,
        password=settings.ig_password.get_secret_value() if settings.ig_password else None,
        totp_seed=settings.ig_totp_seed.get_secret_value() if settings.ig_totp_seed else None,
        proxy=settings.ig_proxy,
        api_url=settings.ig_api_url,
        timeout=settings.http_timeout_seconds,
    )


def _save(deps: Deps, ig: Instagram, key: str | None, *, login: bool) -> None:
    """Store the refreshed cookies; a pass that never reached a session has nothing to save."""
    settings = ig.dump_settings()
    if not (settings.get("authorization_data") or {}).get("sessionid") and not (settings.get("cookies") or {}).get(
        "sessionid"
    ):
        return
    text, encrypted = vault.encode(settings, key)
    deps.store.save_session(
        deps.settings.account(),
        settings=text,
        encrypted=encrypted,
        user_pk=ig.user_pk,
        now=deps.clock(),
        login=login,
    )


def like_one(
    deps: Deps, kind: str, fields: dict[str, Any], *, send: Callable[[], None], record: Callable[[], Any], dry_run: bool
) -> bool:
    """One like: send it, then record it at once, so a crash loses at most the like in flight.

    A like Instagram did not confirm is skipped (tried again next pass); one it confirmed but the database
    could not take is named in the log before the error ends the run. ``kind`` prefixes the log events.
    """
    counts = deps.counts
    if dry_run:
        counts.would_like += 1
        log.info(f"{kind}_would_like", extra=fields | {"outcome": "dry_run"})
        return True
    try:
        send()
    except BadResponse as exc:
        counts.errors += 1
        log.warning(f"{kind}_like_failed", extra=fields | {"outcome": "skipped", "reason": exc.message})
        return False
    try:
        record()
    except DatabaseUnavailable:
        log.error(f"{kind}_like_not_recorded", extra=fields | {"outcome": "liked_not_recorded"})
        raise
    counts.liked += 1
    log.info(f"{kind}_liked", extra=fields | {"outcome": "liked"})
    return True


def sync_targets(deps: Deps) -> list[Target]:
    """TARGET_ACCOUNTS (when set) is synced into the database; then the enabled targets are returned."""
    account = deps.settings.account()
    if deps.settings.target_accounts is not None:
        added, disabled = deps.store.sync_targets(account, deps.settings.target_accounts, deps.clock())
        if added or disabled:
            log.info("targets_synced", extra={"added": added, "disabled": disabled})
    return deps.store.targets(account)


def resolve_targets(
    deps: Deps, ig: Instagram, targets: Sequence[Target], known: dict[str, UserRef], counts: Counts
) -> dict[int, dict[str, Any]]:
    """Give every target a user pk, as cheaply as possible, and cache it in the database.

    ``known`` maps usernames to what this pass already learned for free (the reels tray). The rest
    come from one walk of the own following list (once), then one lookup per remaining username.
    Returns the target updates to store.
    """
    updates: dict[int, dict[str, Any]] = {}
    now = deps.clock()
    missing = [t for t in targets if t.user_pk is None and t.id is not None]
    if not missing:
        return updates
    refs = dict(known)
    unresolved = [t for t in missing if t.username not in refs]
    account = deps.store.account(deps.settings.account())
    if unresolved and account.following_synced_at is None and deps.settings.following_sync_max_pages:
        try:
            for followed in ig.following(deps.settings.following_sync_max_pages):
                refs.setdefault(followed.username, followed)
            deps.store.mark_following_synced(account.username, now)
        except BadResponse as exc:  # resolve one by one instead; walk the list again next pass
            counts.errors += 1
            log.warning("following_skipped", extra={"reason": exc.message})
    for target in missing:
        assert target.id is not None
        ref: UserRef | None = refs.get(target.username)
        if ref is None:
            if target.last_error_at and now - target.last_error_at < timedelta(hours=24):
                continue  # a username that failed to resolve is retried once a day, not every pass
            deps.checkpoint()
            try:
                ref = ig.lookup(target.username)
            except (TargetUnavailable, BadResponse) as exc:
                counts.errors += 1
                log.warning("target_unavailable", extra={"target": target.username, "reason": exc.message})
                updates[target.id] = {"last_error": exc.message[:200], "last_error_at": now}
                continue
        updates[target.id] = {"user_pk": ref.user_pk, "followed": ref.followed, "last_error": None}
        target.user_pk, target.followed = ref.user_pk, ref.followed
    return updates
