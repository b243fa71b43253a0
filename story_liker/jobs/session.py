"""The session guard: the account's flags, the stored session, the single re-login and what Instagram's
answers do to the account's health (cooldowns, strikes, needs-human, login backoff).

Everything here runs under the lease (jobs.lease); the rules themselves are in health.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from story_liker import health, vault
from story_liker.errors import (
    CoolingDown,
    LoginBackoff,
    NeedsHuman,
    SessionExpired,
    StoryLikerError,
    Throttled,
)
from story_liker.ig.types import Connection, Instagram
from story_liker.jobs.deps import Deps
from story_liker.jobs.pacing import Paced
from story_liker.models import Account
from story_liker.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


def check_account(deps: Deps, state: Account) -> None:
    """Refuse to go on (no request sent) while a human is needed or a cooldown runs."""
    account, now = state.username, deps.clock()
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


def with_instagram(deps: Deps, body: Callable[[Paced], T]) -> T:
    """Run ``body`` with a connected, paced session. The caller holds the lease.

    The only place that logs in (at most once per run, and only when health.login_gate allows it), turns
    throttling into a persisted cooldown, sets needs-human, and saves the refreshed session.
    """
    settings, store, counts = deps.settings, deps.store, deps.counts
    account = settings.account()
    state = store.account(account)
    check_account(deps, state)
    key = settings.encryption_key
    stored = vault.decode(state.settings, state.settings_encrypted, key) if state.settings else None
    needs_login = not state.has_session
    if needs_login:
        _gate(deps, state, "no stored session")
    raw = deps.connect(connection_for(settings, account, stored))
    if stored is not None and raw.user_pk is not None and raw.user_pk != state.user_pk:
        # the session's Instagram user, learnt before any request: another account row holding it is a 78 here
        # (a session stored under two names before 0004), not after this run doubled its likes
        store.claim_user_pk(account, raw.user_pk)
    ig = Paced(raw, deps, last_contact=state.saved_at)  # stored at the end of every run that talked to Instagram
    logged_in = False
    alive = not needs_login  # the session is worth saving: stored and not found dead, or fresh from a login
    try:
        if stored is None:
            keep_session(deps, ig, login=False, has_session=False)  # the device exists before its first login
        if needs_login:
            _login(deps, ig, state, "no stored session", new_device=stored is None)
            logged_in = alive = True
        try:
            return body(ig)
        except SessionExpired:
            if logged_in:
                raise  # a session fresh from a login expired at once: never log in twice in one run
            log.warning("session_expired", extra={"action": "one re-login"})
            store.mark_session_dead(account)
            alive = False
            _gate(deps, state, "the session expired")
            _login(deps, ig, state, "the session expired", new_device=False)
            logged_in = alive = True
            return body(ig)
    except SessionExpired as exc:
        store.set_needs_human(account, "session expired again right after a login")
        raise NeedsHuman(exc.message) from None
    except NeedsHuman as exc:
        store.set_needs_human(account, exc.message[:200])
        raise
    except Throttled as exc:
        strikes = health.strikes_after(state.cooldown_strikes, health.Event.THROTTLED)
        wait = health.cooldown(
            exc.kind,
            strikes,
            base_minutes=settings.cooldown_base_minutes,
            feedback_hours=settings.feedback_cooldown_hours,
            max_hours=settings.cooldown_max_hours,
        )
        until = deps.clock() + wait
        named = health.block_end(exc.detail, deps.clock())  # Instagram said when the block ends: not before
        if named is not None and named > until:
            until = named
        store.set_cooldown(account, until=until, reason=exc.kind, strikes=strikes)
        log.warning(
            "cooldown_started",
            extra={"reason": str(exc.kind), "until": until.isoformat(timespec="seconds"), "strikes": strikes},
        )
        raise
    finally:
        counts.requests = ig.requests_sent
        counts.errors += ig.malformed
        if alive:  # a login saved (and cleared the flags) at once; this stores the refreshed cookies
            keep_session(deps, ig, login=False)


def _gate(deps: Deps, state: Account, why: str) -> None:
    """May this run log in? Raises NeedsHuman (77) or LoginBackoff (75) before any request when not."""
    if deps.settings.ig_password is None:
        if state.settings is None:
            raise NeedsHuman(f"no Instagram session stored for {state.username}: run `story-liker login`")
        raise NeedsHuman(f"{why} and no IG_PASSWORD is set: run `story-liker login`")
    gate = health.login_gate(
        state.login_failures,
        state.login_attempt_at,
        deps.clock(),
        last_auto_login=state.auto_login_at,
        auto_login_every=timedelta(hours=deps.settings.auto_login_min_hours),
    )
    if gate.keeps_expiring is not None:
        reason = (
            f"the session keeps expiring: {why} within {deps.settings.auto_login_min_hours:g} h of the automatic "
            f"login at {gate.keeps_expiring.isoformat(timespec='minutes')} (AUTO_LOGIN_MIN_HOURS)"
        )
        deps.store.set_needs_human(state.username, reason[:200])
        raise NeedsHuman(f"{reason}: run `story-liker login` yourself; no request was sent")
    if gate.exhausted:
        reason = f"{state.login_failures} login attempts failed in a row"
        deps.store.set_needs_human(state.username, reason)
        raise NeedsHuman(f"{reason}: run `story-liker login` yourself; no request was sent")
    if not gate.allowed:
        assert gate.next_attempt is not None
        raise LoginBackoff(
            f"{why}; the last login failed, the next attempt is allowed after "
            f"{gate.next_attempt.isoformat(timespec='seconds')}; no request was sent"
        )


def _login(deps: Deps, ig: Instagram, state: Account, why: str, *, new_device: bool) -> None:
    """One password login. The attempt is recorded first; a failure counts towards the backoff. A new device's
    limits start low and warm up (WARMUP_*)."""
    store, account = deps.store, state.username
    log.info("login_started", extra={"reason": why})
    store.record_login_attempt(account, deps.clock())
    try:
        ig.relogin()
    except StoryLikerError as exc:
        failures = state.login_failures + 1
        store.set_login_failures(account, failures)
        log.warning("login_failed", extra={"reason": exc.message, "failures": failures})
        if health.login_exhausted(failures) and not isinstance(exc, NeedsHuman):
            raise NeedsHuman(f"{failures} login attempts failed in a row (last: {exc.message})") from None
        raise
    keep_session(deps, ig, login=True)
    store.record_auto_login(account, deps.clock())
    if new_device:
        store.set_warmup(account, deps.clock())
    log.info("relogin_succeeded" if state.has_session else "login_succeeded")


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


def keep_session(deps: Deps, ig: Instagram, *, login: bool, has_session: bool = True) -> None:
    """Store the client's refreshed session while this run holds the lease. A client without a session (a login
    that failed) has nothing new to keep beyond the device, which was stored before the attempt."""
    session = ig.dump_settings()
    if has_session and not vault.has_session(session):
        return
    saved = store_session(deps, session, login=login, has_session=has_session, user_pk=ig.user_pk)
    if not saved:
        log.warning("session_not_saved", extra={"reason": "this run no longer holds the lease"})


def store_session(deps: Deps, session: dict[str, Any], *, login: bool, has_session: bool, user_pk: int | None) -> bool:
    """The one way a session (instagrapi's dump: device, cookies, tokens) reaches the database: encrypted when a
    key is set, and only while this run holds the account's lease. Returns whether it was written."""
    text, encrypted = vault.encode(session, deps.settings.encryption_key)
    return deps.store.save_session(
        deps.settings.account(),
        settings=text,
        encrypted=encrypted,
        user_pk=user_pk,
        now=deps.clock(),
        login=login,
        has_session=has_session,
        run_id=deps.run_id,
    )
