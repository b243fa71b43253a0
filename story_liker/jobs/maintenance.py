"""The small passes: `cleanup` (no Instagram at all) and `keepalive` (one light request); the retention the like
passes apply on their way in."""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from datetime import datetime, timedelta

from story_liker.errors import ConfigError, DatabaseUnavailable
from story_liker.jobs.deps import Deps, Outcome, Report, outside_active_hours
from story_liker.jobs.lease import lease
from story_liker.jobs.session import with_instagram
from story_liker.retention import PRUNE_BATCH, PRUNE_PAGES, Keep
from story_liker.store import Pruned, Store

log = logging.getLogger(__name__)

PRUNE_CLOCK_SLACK = timedelta(hours=2)  # a pass prunes by at most this past the account's last known activity


def prune_store(
    store: Store, account: str | None, now: datetime, keep: Keep, *, limit: int | None, actions: bool = True
) -> Pruned:
    """Delete what ``keep`` says has expired (``limit`` rows of each kind at most; ``actions=False``: no action
    rows) and give SQLite's free pages back (PRUNE_PAGES at most with a ``limit``; all of them, VACUUM if need be,
    without)."""
    before = keep.before(now)
    if not actions:
        del before["actions_before"]
    pruned = store.prune(account, limit=limit, **before)
    if pruned.total or limit is None:
        try:
            store.reclaim(PRUNE_PAGES if limit is not None else None)
        except DatabaseUnavailable as exc:  # what was deleted stays deleted; the space waits for the next prune
            log.warning("space_not_reclaimed", extra={"error": exc.message, "retry": "next prune"})
    return pruned


def prune_expired(deps: Deps, *, dry_run: bool) -> None:
    """The like passes' own retention, under the lease: a bounded batch of what expired, so a database whose user
    never scheduled `cleanup` stays small. A failure is logged and the pass goes on: each kind is its own
    transaction, so nothing is lost that had not expired, and the next pass tries again. A dry run deletes
    nothing."""
    if dry_run:
        return
    settings, account = deps.settings, deps.settings.account()
    try:
        now = deps.clock()
        previous = deps.store.last_activity(account, deps.run_id)
        if previous is not None and now - previous > PRUNE_CLOCK_SLACK:
            # a wall clock far ahead (or the first run in days): prune by the last known activity, never by a
            # moment that may not have come yet -- what a pass needs to not like twice stays; the rest goes later
            now = previous + PRUNE_CLOCK_SLACK
        pruned = prune_store(deps.store, account, now, Keep.of(settings), limit=PRUNE_BATCH)
    except DatabaseUnavailable as exc:
        log.warning("prune_failed", extra={"error": exc.message, "retry": "next pass"})
        return
    if pruned.total:
        log.info("pruned", extra=asdict(pruned))


def cleanup(
    deps: Deps, *, older_than_hours: float | None, dry_run: bool, force: bool, all_accounts: bool = False
) -> Report:
    """Delete the story records of IG_USERNAME taken before the retention window, the action rows past their
    use, the run records and delivered notifications past RUN_RETENTION_DAYS, all at once (the passes prune a
    batch each), and give SQLite's free pages back; with ``all_accounts`` those of every account in the database
    (the retention given here applies to all), but the action rows of IG_USERNAME only. Posts stay. Extra
    ``whose``: the account, or "every account"."""
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
    keep = Keep.of(deps.settings, stories_hours=hours, floor=False)
    cutoff = now - keep.stories
    counts = deps.counts
    extra = {"cutoff": cutoff.isoformat(timespec="seconds"), "whose": whose}
    if dry_run:
        counts.deleted = deps.store.count_stories_before(account, cutoff)
        log.info(
            "cleanup_would_delete", extra={"stories": counts.deleted, "cutoff": cutoff.isoformat(), "whose": whose}
        )
        return Report(Outcome.DRY_RUN, counts, extra)
    if account is None:  # every account's, but the action rows of IG_USERNAME's only: the others' guard their
        # lost likes for their own POST_MAX_AGE_DAYS, which this run does not know (their passes prune them)
        before = keep.before(now)
        pruned = prune_store(deps.store, None, now, keep, limit=None, actions=False)
        if deps.settings.ig_username:
            own = deps.store.prune(deps.settings.ig_username, actions_before=before["actions_before"])
            pruned = replace(pruned, actions=own.actions)
    else:
        pruned = prune_store(deps.store, account, now, keep, limit=None)
    counts.deleted = pruned.stories
    log.info(
        "cleanup_deleted",
        extra={"stories": pruned.stories, "cutoff": cutoff.isoformat(), "whose": whose}
        | {"actions": pruned.actions, "runs": pruned.runs, "notifications": pruned.notifications},
    )
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
