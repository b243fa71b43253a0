"""One `run-posts` pass: the first feed page of each target, likes for the eligible new posts."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from story_liker import ratelimit
from story_liker.errors import BadResponse, DatabaseUnavailable, TargetUnavailable
from story_liker.ig import Instagram, PostItem
from story_liker.jobs.common import Counts, Deps, Report, like_pass, resolve_targets
from story_liker.models import Target
from story_liker.store import POST_LIKE, liked_posts

log = logging.getLogger(__name__)


def run_posts(deps: Deps, *, dry_run: bool, max_likes: int | None) -> Report:
    limits = ratelimit.Limits(deps.settings.post_likes_per_hour, deps.settings.post_likes_per_day)
    return like_pass(deps, POST_LIKE, limits, _pass, dry_run=dry_run, max_likes=max_likes)


def _pass(deps: Deps, ig: Instagram, targets: list[Target], allowed: int, dry_run: bool) -> str:
    counts = deps.counts
    store, settings, account = deps.store, deps.settings, deps.settings.account()
    store.update_targets(resolve_targets(deps, ig, targets, {}, counts))
    now = deps.clock()
    oldest = now - timedelta(days=settings.post_max_age_days)
    deps.progress.start(len(targets), "checking posts")
    budget_hit = False
    for index, target in enumerate(t for t in targets if t.user_pk is not None):
        assert target.id is not None and target.user_pk is not None
        if index:
            deps.pause(settings.target_delay_min_seconds, settings.target_delay_max_seconds)
        deps.progress.advance(target.username)
        update: dict[str, Any] = {"post_checked_at": now}
        try:
            posts = ig.user_posts(target.user_pk, settings.post_feed_count)
        except (TargetUnavailable, BadResponse) as exc:
            counts.errors += 1
            log.warning("target_skipped", extra={"target": target.username, "reason": exc.message})
            store.update_targets({target.id: update | {"last_error": exc.message[:200], "last_error_at": now}})
            continue
        counts.posts_seen += len(posts)
        marker = target.post_marker or 0
        new = [p for p in posts if p.taken_at.timestamp() > marker]
        if not new:  # nothing newer than the last check: no second look at older items
            store.update_targets({target.id: update})
            continue
        eligible = [p for p in new if p.taken_at >= oldest and p.media_type in settings.post_media_types]
        recorded = store.liked_post_pks(account, [p.pk for p in eligible]) if eligible else set()
        liked_elsewhere = [p for p in eligible if p.has_liked and p.pk not in recorded]
        if liked_elsewhere and not dry_run:
            store.record_posts(account, liked_posts(liked_elsewhere), now, counted=False)
        counts.already_liked += len(recorded) + len(liked_elsewhere)
        todo = sorted((p for p in eligible if not p.has_liked and p.pk not in recorded), key=lambda p: p.taken_at)
        done = True
        for post in todo:
            if allowed <= 0:
                budget_hit, done = True, False
                counts.skipped += 1
                continue
            deps.pause(settings.action_delay_min_seconds, settings.action_delay_max_seconds)
            if _like(deps, ig, target, post, counts, dry_run):
                allowed -= 1
            else:
                done = False
        if done and not dry_run:
            update["post_marker"] = int(max(p.taken_at.timestamp() for p in new))
        store.update_targets({target.id: update | {"last_error": None}})
        deps.keep_lease()
    deps.progress.stop()
    if budget_hit:
        log.info("budget_used_up", extra={"left_for_later": counts.skipped})
    if dry_run:
        return "dry_run"
    return "budget_used_up" if budget_hit else "ok"


def _like(deps: Deps, ig: Instagram, target: Target, post: PostItem, counts: Counts, dry_run: bool) -> bool:
    fields = {"target": target.username, "media_pk": post.pk, "media_type": post.media_type}
    if dry_run:
        counts.would_like += 1
        log.info("post_would_like", extra=fields | {"outcome": "dry_run"})
        return True
    try:
        ig.like_post(post)
    except BadResponse as exc:
        counts.errors += 1
        log.warning("post_like_failed", extra=fields | {"outcome": "skipped", "reason": exc.message})
        return False
    try:
        deps.store.record_posts(deps.settings.account(), liked_posts([post]), deps.clock(), counted=True)
    except DatabaseUnavailable:
        # Instagram confirmed this like but it could not be recorded: say which, so nothing is lost silently.
        log.error("post_like_not_recorded", extra=fields | {"outcome": "liked_not_recorded"})
        raise
    counts.liked += 1
    log.info("post_liked", extra=fields | {"outcome": "liked"})
    return True
