"""The small passes: `cleanup` (no Instagram at all) and `keepalive` (one light request)."""

from __future__ import annotations

import logging
from datetime import timedelta

from story_liker.errors import ConfigError
from story_liker.jobs.deps import Deps, Outcome, Report, outside_active_hours
from story_liker.jobs.lease import lease
from story_liker.jobs.session import with_instagram

log = logging.getLogger(__name__)


def cleanup(
    deps: Deps, *, older_than_hours: float | None, dry_run: bool, force: bool, all_accounts: bool = False
) -> Report:
    """Delete the story records of IG_USERNAME taken before the retention window, in one indexed DELETE; with
    ``all_accounts`` those of every account in the database (the retention given here applies to all). Posts
    stay. Extra ``whose``: the account, or "every account"."""
    account = None if all_accounts else deps.settings.ig_username
    if account is None and not all_accounts:
        raise ConfigError(
            "IG_USERNAME is not set: cleanup deletes the old story records of that account only; "
            "`story-liker cleanup --all-accounts` deletes those of every account in the database"
        )
    whose = account or "every account"
    hours = deps.settings.story_retention_hours if older_than_hours is None else older_than_hours
    if hours <= 0:
        raise ConfigError("--older-than must be a positive number of hours")
    if hours < 24 and not force:
        raise ConfigError(f"a retention of {hours:g} h is below the 24 h a story lives: add --force if you mean it")
    now = deps.clock()
    cutoff = now - timedelta(hours=hours)
    counts = deps.counts
    extra = {"cutoff": cutoff.isoformat(timespec="seconds"), "whose": whose}
    if dry_run:
        counts.deleted = deps.store.count_stories_before(account, cutoff)
        log.info(
            "cleanup_would_delete", extra={"stories": counts.deleted, "cutoff": cutoff.isoformat(), "whose": whose}
        )
        return Report(Outcome.DRY_RUN, counts, extra)
    counts.deleted = deps.store.delete_stories_before(account, cutoff, now)
    log.info("cleanup_deleted", extra={"stories": counts.deleted, "cutoff": cutoff.isoformat(), "whose": whose})
    return Report(Outcome.OK, counts, extra)


def keepalive(deps: Deps) -> Report:
    """One authenticated request the app itself makes, then the refreshed cookies are saved."""
    counts = deps.counts
    closed = outside_active_hours(deps)
    if closed is not None:
        return closed
    with lease(deps):
        with_instagram(deps, lambda ig: ig.ping())
        deps.store.record_keepalive(deps.settings.account(), deps.clock())
    log.info("keepalive_ok")
    return Report(Outcome.OK, counts)
