"""One `run-stories` pass: tray, batched reels, one seen request, one request per like."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from story_liker import ratelimit
from story_liker.errors import BadResponse, TargetUnavailable
from story_liker.ig import Instagram, StoryItem, UserRef
from story_liker.jobs.deps import Deps, Outcome, Report
from story_liker.jobs.likes import Likes, like_pass
from story_liker.jobs.targets import resolve_targets
from story_liker.models import Target
from story_liker.store import STORY_LIKE, liked_stories

log = logging.getLogger(__name__)


def run_stories(deps: Deps, *, dry_run: bool, max_likes: int | None) -> Report:
    limits = ratelimit.Limits(deps.settings.story_likes_per_hour, deps.settings.story_likes_per_day)
    return like_pass(deps, STORY_LIKE, limits, _pass, dry_run=dry_run, max_likes=max_likes)


def _pass(deps: Deps, ig: Instagram, targets: list[Target], allowed: int, likes: Likes) -> Outcome:
    counts, dry_run = deps.counts, likes.dry_run
    store, account, now = deps.store, deps.settings.account(), deps.clock()
    try:
        tray = {entry.user_pk: entry for entry in ig.reels_tray()}
    except BadResponse as exc:  # without the tray only not-followed targets can be checked this pass
        counts.errors += 1
        log.warning("tray_skipped", extra={"reason": exc.message})
        tray = {}
    free = {e.username: UserRef(e.user_pk, e.username, followed=True) for e in tray.values()}
    updates = resolve_targets(deps, ig, targets, free, counts)
    store.update_targets(updates)
    updates = {}

    # Which targets have something new: followed ones from the tray, the others by asking each.
    by_pk = {t.user_pk: t for t in targets if t.user_pk is not None}
    fresh = [pk for pk, t in by_pk.items() if pk in tray and tray[pk].latest_reel_media > (t.story_marker or 0)]
    stories: dict[int, list[StoryItem]] = {}
    for start in range(0, len(fresh), deps.settings.reels_batch_size):
        batch = fresh[start : start + deps.settings.reels_batch_size]
        try:
            stories.update(ig.reels_media(batch))
        except BadResponse as exc:
            counts.errors += 1
            log.warning("reels_skipped", extra={"reason": exc.message, "user_pks": batch})
    per_user = [(pk, t) for pk, t in by_pk.items() if pk not in tray and t.followed is False]
    for index, (pk, target) in enumerate(per_user):
        if index:
            deps.pause(deps.settings.target_delay_min_seconds, deps.settings.target_delay_max_seconds)
        try:
            stories[pk] = ig.user_stories(pk)
        except (TargetUnavailable, BadResponse) as exc:
            counts.errors += 1
            log.warning("target_skipped", extra={"target": target.username, "reason": exc.message})
            assert target.id is not None
            updates[target.id] = {"last_error": exc.message[:200], "last_error_at": now}

    items = [s for pk in stories for s in stories[pk] if pk in by_pk]
    counts.stories_seen = len(items)
    recorded = store.liked_story_pks(account, [s.pk for s in items])
    liked_elsewhere = [s for s in items if s.has_liked and s.pk not in recorded]
    if liked_elsewhere and not dry_run:
        store.record_stories(account, liked_stories(liked_elsewhere), now, counted=False)
    counts.already_liked = len(recorded) + len(liked_elsewhere)
    todo = [s for s in items if not s.has_liked and s.pk not in recorded]
    todo.sort(key=lambda s: (by_pk[s.user_pk].username, s.taken_at))
    plan = todo[:allowed]
    counts.skipped = len(todo) - len(plan)
    if counts.skipped:
        log.info("budget_used_up", extra={"planned": len(plan), "left_for_later": counts.skipped})

    if plan and not dry_run:
        try:
            ig.mark_seen(plan)  # one batched seen request, so each like below is exactly one request
        except BadResponse as exc:  # the likes do not depend on it
            counts.errors += 1
            log.warning("seen_failed", extra={"reason": exc.message})
    planned: dict[int, list[StoryItem]] = defaultdict(list)
    for story in plan:
        planned[story.user_pk].append(story)
    left_over = {s.user_pk for s in todo[allowed:]}
    deps.progress.start(len(planned), "liking stories")
    try:
        for index, pk in enumerate(sorted(planned, key=lambda pk: by_pk[pk].username)):
            target = by_pk[pk]
            if index:
                deps.pause(deps.settings.target_delay_min_seconds, deps.settings.target_delay_max_seconds)
            deps.progress.advance(target.username)
            for story in planned[pk]:
                deps.pause(deps.settings.action_delay_min_seconds, deps.settings.action_delay_max_seconds)
                if not _like(deps, ig, likes, target, story):
                    left_over.add(pk)  # try this story again next pass
            deps.keep_lease()
        for pk, target in by_pk.items():
            assert target.id is not None
            values: dict[str, Any] = updates.setdefault(target.id, {})
            values["story_checked_at"] = now
            if pk in tray and pk not in left_over and not dry_run and pk in stories:
                values["story_marker"] = tray[pk].latest_reel_media
    finally:
        store.update_targets(updates)
        deps.progress.stop()
    if dry_run:
        return Outcome.DRY_RUN
    if counts.skipped:
        return Outcome.BUDGET_USED_UP
    return Outcome.OK if items else Outcome.NOTHING_NEW


def _like(deps: Deps, ig: Instagram, likes: Likes, target: Target, story: StoryItem) -> bool:
    return likes.one(
        {"target": target.username, "story_pk": story.pk},
        send=lambda: ig.like_story(story),
        record=lambda: deps.store.record_stories(
            deps.settings.account(), liked_stories([story]), deps.clock(), counted=True
        ),
    )
