"""Which accounts a pass looks at: TARGET_ACCOUNTS synced into the database, user pks resolved cheaply."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from story_liker.errors import BadResponse, TargetUnavailable
from story_liker.ig import Instagram, UserRef
from story_liker.jobs.deps import Counts, Deps
from story_liker.models import Target

log = logging.getLogger(__name__)


def sync_targets(deps: Deps) -> list[Target]:
    """TARGET_ACCOUNTS (when set) is synced into the database; then the enabled targets are returned."""
    account = deps.settings.account()
    if deps.settings.target_accounts is not None:
        added, disabled = deps.store.sync_targets(account, deps.settings.target_accounts, deps.clock())
        if added or disabled:
            log.info("targets_synced", extra={"added": added, "disabled": disabled})
    return deps.store.targets(account)


def following(deps: Deps, ig: Instagram, max_pages: int) -> list[UserRef]:
    """The own following list, one paced request per page, at most ``max_pages`` pages."""
    users: list[UserRef] = []
    max_id: str | None = None
    for _ in range(max_pages):
        page, max_id = ig.following_page(max_id)
        users.extend(page)
        if not max_id:
            break
    return users


def resolve_targets(
    deps: Deps, ig: Instagram, targets: Sequence[Target], known: dict[str, UserRef], counts: Counts
) -> dict[int, dict[str, Any]]:
    """Give every target a user pk, as cheaply as possible, and cache it in the database.

    ``known`` maps usernames to what this pass already learned for free (the reels tray). The rest
    come from one walk of the own following list (once), then one lookup per remaining username, with the
    pause between targets before each. Returns the target updates to store.
    """
    updates: dict[int, dict[str, Any]] = {}
    now = deps.clock()
    settings = deps.settings
    missing = [t for t in targets if t.user_pk is None and t.id is not None]
    if not missing:
        return updates
    refs = dict(known)
    unresolved = [t for t in missing if t.username not in refs]
    account = deps.store.account(settings.account())
    if unresolved and account.following_synced_at is None and settings.following_sync_max_pages:
        try:
            for followed in following(deps, ig, settings.following_sync_max_pages):
                refs.setdefault(followed.username, followed)
            deps.store.mark_following_synced(account.username, now)
        except BadResponse as exc:  # resolve one by one instead; walk the list again next pass
            counts.errors += 1
            log.warning("following_skipped", extra={"reason": exc.message})
    looked_up = 0
    for target in missing:
        assert target.id is not None
        ref: UserRef | None = refs.get(target.username)
        if ref is None:
            if target.last_error_at and now - target.last_error_at < timedelta(hours=24):
                continue  # a username that failed to resolve is retried once a day, not every pass
            if looked_up:
                deps.pause(settings.target_delay_min_seconds, settings.target_delay_max_seconds)
            looked_up += 1
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
