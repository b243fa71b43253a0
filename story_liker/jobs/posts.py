"""One `run-posts` pass: the first feed page of each target, then likes for the eligible new posts, shared
fairly across the targets when the budget is short."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from story_liker import planning, ratelimit
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
    reachable = [t for t in targets if t.user_pk is not None]
    by_pk = {t.user_pk: t for t in reachable}
    updates: dict[int, dict[str, Any]] = {}  # written once at the end, also when the pass is cut short
    new: dict[int, list[PostItem]] = {}  # per target (feed owner) pk
    owner: dict[str, Target] = {}  # post pk -> the target whose feed showed it (a collab post has another author)
    try:
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
                updates[target.id] = {"post_checked_at": now, "last_error": None}
                new[target.user_pk] = [p for p in posts if p.taken_at.timestamp() > (target.post_marker or 0)]
                for post in new[target.user_pk]:
                    owner.setdefault(post.pk, target)
        finally:
            deps.progress.stop()
        todo = _todo(deps, new, now - timedelta(days=settings.post_max_age_days), dry_run)
        chosen = planning.fair_share(
            todo, allowed, store.last_post_likes(settings.account()) if allowed < len(todo) else None
        )
        counts.skipped = len(todo) - len(chosen)
        liked = _like_all(deps, ig, likes, owner, chosen)
        if not dry_run:
            left = {owner[p.pk].user_pk for p in todo if p.pk not in liked}
            for pk, posts in new.items():
                if posts and pk not in left:  # everything new of this target handled: move its marker
                    target = by_pk[pk]
                    assert target.id is not None
                    updates[target.id]["post_marker"] = int(max(p.taken_at.timestamp() for p in posts))
    finally:
        store.update_targets(updates)
    if counts.skipped:
        log.info("budget_used_up", extra={"left_for_later": counts.skipped})
    if dry_run:
        return Outcome.DRY_RUN
    return Outcome.BUDGET_USED_UP if counts.skipped else Outcome.OK


def _todo(deps: Deps, new: dict[int, list[PostItem]], oldest: datetime, dry_run: bool) -> list[PostItem]:
    """The eligible new posts not liked yet; those liked elsewhere are recorded, those beyond
    POST_MAX_PER_TARGET (the newest N are kept) recorded as skipped."""
    counts, settings, store = deps.counts, deps.settings, deps.store
    account, now = settings.account(), deps.clock()
    eligible = [
        p for posts in new.values() for p in posts if p.taken_at >= oldest and p.media_type in settings.post_media_types
    ]
    recorded = store.liked_post_pks(account, [p.pk for p in eligible]) if eligible else set()
    liked_elsewhere = [p for p in eligible if p.has_liked and p.pk not in recorded]
    counts.already_liked += len(recorded) + len(liked_elsewhere)
    todo, capped = planning.newest_per_target(
        [p for p in eligible if not p.has_liked and p.pk not in recorded], settings.post_max_per_target
    )
    counts.left_out += len(capped)
    if not dry_run:
        if liked_elsewhere:
            store.record_posts(account, liked_posts(liked_elsewhere), now, counted=False)
        if capped:
            store.record_posts(account, liked_posts(capped, skipped=True), now, counted=False)
    return todo


def _like_all(deps: Deps, ig: Instagram, likes: Likes, owner: dict[str, Target], chosen: list[PostItem]) -> set[str]:
    """The chosen posts, target after target (the pause between targets between them). Returns the pks liked."""
    settings = deps.settings
    done: set[str] = set()
    previous: int | None = None
    for post in chosen:
        if not likes.may_go_on():
            break
        if previous is not None and post.user_pk != previous:
            deps.pause(settings.target_delay_min_seconds, settings.target_delay_max_seconds)
        previous = post.user_pk
        deps.pause(settings.action_delay_min_seconds, settings.action_delay_max_seconds)
        target = owner[post.pk]
        if likes.one(
            {"target": target.username, "media_pk": post.pk, "media_type": post.media_type},
            send=lambda post=post: ig.like_post(post),  # type: ignore[misc]
            record=lambda post=post: deps.store.record_posts(  # type: ignore[misc]
                settings.account(), liked_posts([post]), deps.clock(), counted=True
            ),
        ):
            done.add(post.pk)
    return done
