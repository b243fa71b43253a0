"""Which accounts a pass looks at: TARGET_ACCOUNTS synced into the database, user pks resolved cheaply."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from story_liker.errors import BadResponse, TargetUnavailable
from story_liker.ig import Instagram, TrayEntry, UserRef
from story_liker.jobs.deps import Counts, Deps
from story_liker.models import Target
from story_liker.planning import FOLLOWING_REFRESH, is_due

log = logging.getLogger(__name__)


def sync_targets(deps: Deps) -> list[Target]:
    """TARGET_ACCOUNTS (when set; `*` aside) is synced into the database; then the enabled targets are returned."""
    account, named = deps.settings.account(), deps.settings.named_targets
    if named is not None:
        added, disabled = deps.store.sync_targets(account, named, deps.clock())
        if added or disabled:
            log.info("targets_synced", extra={"added": added, "disabled": disabled})
    return deps.store.targets(account)


def following(deps: Deps, ig: Instagram, max_pages: int) -> tuple[list[UserRef], bool]:
    """The own following list, one paced request per page, at most ``max_pages`` pages; and whether it was
    read to its end (only then is a name missing from it known to be not followed)."""
    users: list[UserRef] = []
    max_id: str | None = None
    for _ in range(max_pages):
        page, max_id = ig.following_page(max_id)
        users.extend(page)
        if not max_id:
            return users, True
    return users, False


def resolve_targets(
    deps: Deps, ig: Instagram, targets: Sequence[Target], known: dict[str, UserRef], counts: Counts
) -> None:
    """Give every target a user pk and a follow state, as cheaply as possible, and store what was learned.

    ``known`` maps usernames to what this pass already learned for free (the reels tray: followed accounts).
    The own following list is walked once a day (one request per page of 200): it settles the follow state
    of every target (followed or not; "unknown" is never read as "followed") and most pks. The rest come
    from one lookup per remaining username, with the pause between targets before each.
    """
    now, settings = deps.clock(), deps.settings
    updates: dict[int, dict[str, Any]] = {}
    refs = dict(known)
    account = deps.store.account(settings.account())
    complete = False
    if settings.following_sync_max_pages and is_due(account.following_synced_at, now, FOLLOWING_REFRESH):
        try:
            walked, complete = following(deps, ig, settings.following_sync_max_pages)
            for followed in walked:
                refs.setdefault(followed.username, followed)
            deps.store.mark_following_synced(account.username, now)
        except BadResponse as exc:  # try again next pass; lookups fill the gaps meanwhile
            counts.errors += 1
            log.warning("following_skipped", extra={"reason": exc.message})
    looked_up = 0
    for target in targets:
        assert target.id is not None
        ref: UserRef | None = refs.get(target.username)
        values: dict[str, Any] = {}
        if ref is not None:
            if target.user_pk != ref.user_pk:
                values["user_pk"] = ref.user_pk
            if ref.followed is not None and target.followed is not ref.followed:
                values["followed"] = ref.followed
        elif complete and target.followed is not False:
            values["followed"] = False  # not in the whole following list: not followed (any more)
        if values.get("followed") is False and target.managed_by == "tray":
            values["enabled"] = False  # found by TARGET_ACCOUNTS=*: no longer followed, no longer a target
        failed_lately = target.last_error_at is not None and now - target.last_error_at < timedelta(hours=24)
        if ref is None and target.user_pk is None and not failed_lately:  # a failed lookup is retried daily
            if looked_up:
                deps.pause(settings.target_delay_min_seconds, settings.target_delay_max_seconds)
            looked_up += 1
            try:
                found = ig.lookup(target.username)
            except (TargetUnavailable, BadResponse) as exc:
                counts.errors += 1
                log.warning("target_unavailable", extra={"target": target.username, "reason": exc.message})
                updates[target.id] = values | {"last_error": exc.message[:200], "last_error_at": now}
                continue
            values |= {"user_pk": found.user_pk, "last_error": None}
            if found.followed is not None:
                values["followed"] = found.followed
        if values:
            updates[target.id] = values
            target.user_pk = values.get("user_pk", target.user_pk)
            target.followed = values.get("followed", target.followed)
    deps.store.update_targets(updates)


def unavailable(target: Target, exc: TargetUnavailable, now: datetime) -> dict[str, Any]:
    """A target Instagram says is private-not-followed or missing: a normal state, not an error, logged and
    returned as the target's values (planning.unavailable_skip leaves it alone for a day)."""
    state = "private" if exc.reason == "private" else "not_found"
    log.info("target_unavailable", extra={"target": target.username, "reason": state, "recheck": "daily"})
    return {"unavailable": state, "last_error": exc.message[:200], "last_error_at": now}


def adopt_from_tray(deps: Deps, tray: Sequence[TrayEntry]) -> list[Target]:
    """TARGET_ACCOUNTS=*: every followed account with stories in the tray is a target (no request beyond the
    tray). Returns the enabled targets, the adopted ones included."""
    settings, store = deps.settings, deps.store
    account = settings.account()
    added = store.adopt_targets(account, [(e.username, e.user_pk) for e in tray], settings.target_exclude, deps.clock())
    if added:
        log.info("targets_adopted", extra={"added": added, "from": "tray"})
    return store.targets(account)
