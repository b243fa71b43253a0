"""One `run-posts` pass: the first feed page of each target, likes for the eligible new posts."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from story_liker import ratelimit
from story_liker.errors import BadResponse, TargetUnavailable
from story_liker.ig import Instagram, PostItem
from story_liker.jobs.deps import Deps, Outcome, Report
from story_liker.jobs.likes import Likes, like_pass
from story_liker.jobs.targets import resolve_targets
from story_liker.models import Target
from story_liker.store import POST_LIKE, liked_posts

log = logging.getLogger(__name__)


def run_posts(deps: Deps, *, dry_run: bool, max_likes: int | None) -> Report:
    limits = ratelimit.Limits(deps.settings.post_likes_per_hour, deps.settings.post_likes_per_day)
    return like_pass(deps, POST_LIKE, limits, _pass, dry_run=dry_run, max_likes=max_likes)


def _pass(deps: Deps, ig: Instagram, targets: list[Target], allowed: int, likes: Likes) -> Outcome:
    counts, store, settings, dry_run = deps.counts, deps.store, deps.settings, likes.dry_run
    resolve_targets(deps, ig, targets, {}, counts)
    now = deps.clock()
    oldest = now - timedelta(days=settings.post_max_age_days)
    reachable = [t for t in targets if t.user_pk is not None]
    updates: dict[int, dict[str, Any]] = {}  # written once at the end, also when the pass is cut short
    deps.progress.start(len(reachable), "checking posts")
    try:
        for index, target in enumerate(reachable):
            assert target.id is not None and target.user_pk is not None
            if index:
                deps.pause(settings.target_delay_min_seconds, settings.target_delay_max_seconds)
            deps.progress.advance(target.username)
            try:
                posts = ig.user_posts(target.user_pk, settings.post_feed_count)
            except (TargetUnavailable, BadResponse) as exc:
                counts.errors += 1
                log.warning("target_skipped", extra={"target": target.username, "reason": exc.message})
                updates[target.id] = {"post_checked_at": now, "last_error": exc.message[:200], "last_error_at": now}
                continue
            counts.posts_seen += len(posts)
            allowed, marker = _like_new_posts(deps, ig, likes, target, posts, oldest, allowed)
            updates[target.id] = {"post_checked_at": now, "last_error": None}
            if marker is not None:
                updates[target.id]["post_marker"] = marker
    finally:
        store.update_targets(updates)
        deps.progress.stop()
    if counts.skipped:
        log.info("budget_used_up", extra={"left_for_later": counts.skipped})
    if dry_run:
        return Outcome.DRY_RUN
    return Outcome.BUDGET_USED_UP if counts.skipped else Outcome.OK


def _like_new_posts(
    deps: Deps, ig: Instagram, likes: Likes, target: Target, posts: list[PostItem], oldest: datetime, allowed: int
) -> tuple[int, int | None]:
    """Like the eligible posts newer than the target's marker. Returns the budget left and the new
    marker (None: keep the old one, something is left for a later pass)."""
    counts, settings, account, now, dry_run = (
        deps.counts,
        deps.settings,
        deps.settings.account(),
        deps.clock(),
        likes.dry_run,
    )
    new = [p for p in posts if p.taken_at.timestamp() > (target.post_marker or 0)]
    if not new:  # nothing newer than the last check: no second look at older items
        return allowed, None
    eligible = [p for p in new if p.taken_at >= oldest and p.media_type in settings.post_media_types]
    recorded = deps.store.liked_post_pks(account, [p.pk for p in eligible]) if eligible else set()
    liked_elsewhere = [p for p in eligible if p.has_liked and p.pk not in recorded]
    if liked_elsewhere and not dry_run:
        deps.store.record_posts(account, liked_posts(liked_elsewhere), now, counted=False)
    counts.already_liked += len(recorded) + len(liked_elsewhere)
    todo = sorted((p for p in eligible if not p.has_liked and p.pk not in recorded), key=lambda p: p.taken_at)
    done = True
    for post in todo:
        if allowed <= 0:
            done = False
            counts.skipped += 1
            continue
        deps.pause(settings.action_delay_min_seconds, settings.action_delay_max_seconds)
        if _like(deps, ig, likes, target, post):
            allowed -= 1
        else:
            done = False
    marker = int(max(p.taken_at.timestamp() for p in new)) if done and not dry_run else None
    return allowed, marker


def _like(deps: Deps, ig: Instagram, likes: Likes, target: Target, post: PostItem) -> bool:
    return likes.one(
        {"target": target.username, "media_pk": post.pk, "media_type": post.media_type},
        send=lambda: ig.like_post(post),
        record=lambda: deps.store.record_posts(
            deps.settings.account(), liked_posts([post]), deps.clock(), counted=True
        ),
    )
