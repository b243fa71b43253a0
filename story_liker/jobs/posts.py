"""One `run-posts` pass: the first pages of the home feed for the followed targets, then the own feeds of this
pass's share of the rotating sweep (and of the targets not followed), then likes for the eligible new posts,
shared fairly across the targets when the budget is short."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from story_liker import planning
from story_liker.errors import BadResponse, NetworkError, TargetUnavailable
from story_liker.ig.types import Instagram, PostItem
from story_liker.jobs.deps import Deps, Outcome, Report, bookkeeping
from story_liker.jobs.likes import Likes, like_pass
from story_liker.jobs.pacing import Paced
from story_liker.jobs.targets import Failing, resolve_targets, targets_by_user
from story_liker.models import POST_LIKE, Target
from story_liker.store import liked_posts

log = logging.getLogger(__name__)


def run_posts(deps: Deps, *, dry_run: bool, max_likes: int | None) -> Report:
    return like_pass(deps, POST_LIKE, _pass, dry_run=dry_run, max_likes=max_likes)


@dataclass(frozen=True)
class Found:
    """A new post of a target. It is that target's for everything we decide and keep (the cap per target, the fair
    share, the history): a collab post by a stranger belongs to the target among its co-authors."""

    post: PostItem
    target: Target  # whose post it is for us: the feed's owner, or the target among a collab post's authors
    via: str  # "timeline" or "profile"

    @property
    def pk(self) -> str:
        return self.post.pk

    @property
    def user_pk(self) -> int:
        assert self.target.user_pk is not None
        return self.target.user_pk

    @property
    def taken_at(self) -> datetime:
        return self.post.taken_at

    @property
    def media_type(self) -> str:
        return self.post.media_type


def _pass(deps: Deps, ig: Paced, targets: list[Target], allowed: int, likes: Likes) -> Outcome:
    counts, settings, dry_run = deps.counts, deps.settings, likes.dry_run
    targets = resolve_targets(deps, ig, targets, {}, counts)
    now = deps.clock()
    by_pk = targets_by_user(targets)
    plan = planning.plan_post_reads(
        targets, now, recheck=settings.post_recheck, timeline_pages=settings.post_timeline_pages
    )
    for target_id, why in plan.skipped.items():
        log.debug("target_not_checked", extra={"target_id": target_id, "reason": str(why)})
    found: dict[str, Found] = {}  # by post pk: a post both in the home feed and a profile is one post
    likes_of = _Likes(deps, ig, likes, allowed, now - timedelta(days=settings.post_max_age_days))
    try:
        if plan.timeline:
            _timeline(deps, ig, by_pk, found)
        swept = set(plan.sweep)
        likes_of.first_round([f for f in found.values() if f.user_pk not in swept])  # the sweep may not reach them
        read = _sweep(deps, ig, plan.sweep, by_pk, found, likes_of)
        timeline = sum(f.via == "timeline" for f in found.values())
        log.info("posts_found", extra={"new": len(found), "from_timeline": timeline, "profiles": read})
        likes_of.last_round()
    finally:
        counts.skipped = likes_of.left_for_later()
        if not dry_run:  # a dry run leaves check times and markers alone: the next real pass does the same
            bookkeeping(lambda: deps.store.update_targets(likes_of.target_updates()))
    if counts.skipped:
        log.info("budget_used_up", extra={"left_for_later": counts.skipped})
    if dry_run:
        return Outcome.DRY_RUN
    if counts.skipped:
        return Outcome.BUDGET_USED_UP
    return Outcome.OK if likes_of.todo else Outcome.NOTHING_NEW  # nothing to like: the home feed shows old likes again


class _Likes:
    """The likes of a post pass, sent as the posts are found, before the pass reads more: a first round of one like
    per target (the home feed's targets that the sweep does not read this pass, then each profile as it is read,
    with what the home feed had of that target), then a last round sharing what the limits leave across what is
    still to like (planning.fair_share). A pass stopped early (its time budget, the like limits, a signal, the
    scheduler) has liked one post of each target it found something for, and marks as checked only the profiles
    whose new posts it handled: the others are read first next pass, not a day later."""

    def __init__(self, deps: Deps, ig: Paced, likes: Likes, allowed: int, oldest: datetime) -> None:
        self.deps, self.ig, self.likes, self.left, self.oldest = deps, ig, likes, allowed, oldest
        self.todo: dict[str, Found] = {}  # eligible and not liked yet when found, over the pass
        self.done: set[str] = set()  # handled by a like (liked, or gone)
        self.read: list[tuple[Target, list[PostItem]]] = []  # profiles read to their end, with their new posts
        self.updates: dict[int, dict[str, Any]] = {}  # what the reads taught (errors, unavailable)

    def first_round(self, new: list[Found]) -> None:
        todo = _todo(self.deps, [f for f in new if f.pk not in self.todo], self.oldest, self.likes.dry_run)
        self.todo |= {f.pk: f for f in todo}
        self._like(todo, min(self.left, len({f.user_pk for f in todo})))

    def last_round(self) -> None:
        tried = self.likes.attempted  # a post refused this pass is tried again next pass, not in its slot now
        self._like([f for f in self.todo.values() if f.pk not in self.done and f.pk not in tried], self.left)

    def _like(self, todo: list[Found], allowed: int) -> None:
        if not todo or allowed <= 0:
            return
        store, account = self.deps.store, self.deps.settings.account()
        chosen = planning.fair_share(todo, allowed, store.last_post_likes(account) if allowed < len(todo) else None)
        done = _like_all(self.deps, self.ig, self.likes, chosen)
        self.done |= done
        self.left -= len(done)

    def left_for_later(self) -> int:
        return sum(1 for pk in self.todo if pk not in self.done)

    def target_updates(self) -> dict[int, dict[str, Any]]:
        """Each profile read to its end is checked when none of its new posts is left to like, and its marker moves
        past them; one with posts left keeps both (read first next pass)."""
        updates = dict(self.updates)
        for target, new in self.read:
            assert target.id is not None
            values: dict[str, Any] = dict(updates.get(target.id, {}))
            if not any(p.pk in self.todo and p.pk not in self.done for p in new):
                values["post_checked_at"] = self.deps.clock()
                if new:
                    values["post_marker"] = int(max(p.taken_at.timestamp() for p in new))
            updates[target.id] = values
        return updates


def _keep(found: dict[str, Found], new: Found) -> None:
    """One post found twice (the home feed and a profile) is one post, the first found; but when any copy says it
    is liked already, it is: a like is never sent on the word of the copy that did not know."""
    kept = found.setdefault(new.pk, new)
    if new.post.has_liked is True and kept.post.has_liked is not True:
        found[new.pk] = replace(kept, post=new.post)


def _is_new(post: PostItem, target: Target) -> bool:
    return post.taken_at.timestamp() > (target.post_marker or 0)


def _timeline(deps: Deps, ig: Instagram, by_pk: dict[int, Target], found: dict[str, Found]) -> None:
    """Up to POST_TIMELINE_PAGES pages of the home feed, scrolled like a person; the new posts of targets (by
    author, or by a co-author of a collab post) are kept, everything else there is ignored."""
    settings, counts = deps.settings, deps.counts
    max_id: str | None = None
    for page in range(settings.post_timeline_pages):
        if page:
            deps.pause(settings.target_delay_min_seconds, settings.target_delay_max_seconds)
        try:
            posts, max_id = ig.timeline_page(max_id)
        except BadResponse as exc:  # the sweep still reads the due profiles
            counts.errors += 1
            log.warning("timeline_skipped", extra={"reason": exc.message, "page": page + 1})
            return
        counts.posts_seen += len(posts)
        for post in posts:
            target = next((by_pk[pk] for pk in (post.user_pk, *post.coauthors) if pk in by_pk), None)
            if target is not None and _is_new(post, target):
                _keep(found, Found(post, target, "timeline"))
        if not max_id:
            return


def _sweep(
    deps: Deps, ig: Paced, sweep: list[int], by_pk: dict[int, Target], found: dict[str, Found], likes_of: _Likes
) -> int:
    """The swept targets' own feeds, each one's new posts liked before the next is read, while the pass's time
    allows a read and a like (planning.read_cost, like_cost) and the limits leave a like. Returns how many
    profiles were read."""
    counts, settings = deps.counts, deps.settings
    failing = Failing(deps, "posts")
    read = 0
    deps.progress.start(len(sweep), "checking posts")
    try:
        for index, pk in enumerate(sweep):
            target = by_pk[pk]
            assert target.id is not None
            unread = len(sweep) - index
            if likes_of.left <= 0 and not likes_of.likes.dry_run:
                log.info("sweep_stopped", extra={"reason": "no like left in the limits", "unread": unread})
                break
            if likes_of.likes.window_closed:  # no like can follow (the 10-minute window, the time, active hours)
                log.info("sweep_stopped", extra={"reason": "the likes stopped", "unread": unread})
                counts.deferred += unread
                break
            if not deps.fits(planning.read_cost(settings, first=not index) + planning.like_cost(settings)):
                log.info("sweep_stopped", extra={"reason": "the pass's time budget", "unread": unread})
                counts.deferred += unread
                break
            if index:
                deps.pause(settings.target_delay_min_seconds, settings.target_delay_max_seconds)
            deps.progress.advance(target.username)
            try:
                posts, complete = _read_profile(deps, ig, target)
            except TargetUnavailable as exc:  # a normal state, not an error: looked at again in a day
                likes_of.updates[target.id] = {"post_checked_at": deps.clock()} | failing.failed(target, exc)
                continue
            except (BadResponse, NetworkError) as exc:  # that target's: it waits (planning.retry_at), others go on
                likes_of.updates[target.id] = failing.failed(target, exc)
                continue
            cleared_values = failing.ok(target)
            read += 1
            counts.posts_seen += len(posts)
            new = [p for p in posts if _is_new(p, target)]
            for post in new:
                _keep(found, Found(post, target, "profile"))
            likes_of.updates[target.id] = {"unavailable": None} | cleared_values
            if complete:  # else its marker and check time stay: the next read looks again at what this one missed
                likes_of.read.append((target, new))
            likes_of.first_round([f for f in found.values() if f.user_pk == pk])
    finally:
        deps.progress.stop()
    return read


def _read_profile(deps: Deps, ig: Instagram, target: Target) -> tuple[list[PostItem], bool]:
    """A target's own feed, the first page and, while that may have cut off new posts (a busy account, pinned
    posts on top), the next ones, at most PROFILE_PAGES, scrolled like a person. Returns the posts and whether
    everything new was reached (a failed later page keeps what came before it)."""
    settings = deps.settings
    assert target.user_pk is not None
    oldest = deps.clock() - timedelta(days=settings.post_max_age_days)
    page, cursor = ig.user_posts(target.user_pk, settings.post_feed_count)
    posts, pages = list(page), 1
    while planning.more_posts_beyond(page, cursor, target.post_marker, oldest):
        if pages == planning.PROFILE_PAGES:  # the marker passes the rest: a feed is not read deeper every pass
            log.info("posts_beyond_pages", extra={"target": target.username, "pages": pages})
            break
        deps.pause(settings.action_delay_min_seconds, settings.action_delay_max_seconds)
        try:
            page, cursor = ig.user_posts(target.user_pk, settings.post_feed_count, cursor)
        except BadResponse as exc:
            deps.counts.errors += 1
            log.warning("target_skipped", extra={"target": target.username, "reason": exc.message, "page": "next"})
            return posts, False
        pages += 1
        seen = {p.pk for p in posts}
        posts += [p for p in page if p.pk not in seen]
    return posts, True


def _todo(deps: Deps, new: list[Found], oldest: datetime, dry_run: bool) -> list[Found]:
    """The eligible new posts not liked yet; those liked elsewhere are recorded, those beyond
    POST_MAX_PER_TARGET (the newest N of each target are kept) recorded as skipped."""
    counts, settings, store = deps.counts, deps.settings, deps.store
    account, now = settings.account(), deps.clock()
    eligible = [f for f in new if f.taken_at >= oldest and f.media_type in settings.post_media_types]
    pks = [f.pk for f in eligible]
    recorded = store.liked_post_pks(account, pks) if eligible else set()
    unconfirmed = store.unconfirmed_likes(account, POST_LIKE, pks) - recorded if eligible else set()
    lost = planning.lost_likes([f.post for f in eligible], unconfirmed)
    liked_elsewhere = [f for f in eligible if f.post.has_liked is True and f.pk not in recorded]
    counts.already_liked += len(recorded) + len(liked_elsewhere)
    todo, capped = planning.newest_per_target(
        [f for f in eligible if f.post.has_liked is not True and f.pk not in recorded | lost],
        settings.post_max_per_target,
    )
    counts.left_out += len(capped)
    if not dry_run:
        for ours in (True, False):  # ours when it was our like whose answer was lost; else found liked
            group = [f for f in liked_elsewhere if (f.pk in unconfirmed) is ours]
            if group:
                store.record_posts(account, liked_posts(group, found=not ours), now, counted=False)
        if capped:
            store.record_posts(account, liked_posts(capped, skipped=True), now, counted=False)
    return todo


def _like_all(deps: Deps, ig: Paced, likes: Likes, chosen: list[Found]) -> set[str]:
    """The chosen posts, target after target (the pause between targets between them). Returns the pks handled
    (liked, or gone)."""
    settings = deps.settings
    done: set[str] = set()
    previous: int | None = None
    for found in chosen:
        if not likes.may_go_on():
            break
        if previous is not None and found.user_pk != previous:
            likes.pause(settings.target_delay_min_seconds, settings.target_delay_max_seconds)
        previous = found.user_pk
        likes.pause(settings.action_delay_min_seconds, settings.action_delay_max_seconds)
        post = found.post
        if likes.one(
            post.pk,
            {"target": found.target.username, "media_pk": post.pk, "media_type": post.media_type, "via": found.via},
            ready=ig.ready,
            send=lambda post=post: ig.like_post(post),  # type: ignore[misc]
            record=lambda handled_only, found=found: deps.store.record_posts(  # type: ignore[misc]
                settings.account(), liked_posts([found], skipped=handled_only), deps.clock(), counted=False
            ),
        ):
            done.add(post.pk)
    return done
