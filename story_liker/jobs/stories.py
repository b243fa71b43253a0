"""One `run-stories` pass: the tray, batched reels (with the targets the tray left out, those not followed among
them), own reads of the due targets not followed that a batch answer left out, then per target its reel watched,
one request per like while its story is on screen, and one seen request."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from story_liker import planning, ratelimit
from story_liker.errors import BadResponse, NetworkError, SessionExpired, TargetUnavailable
from story_liker.ig.types import Instagram, StoryItem, TrayEntry, TrayReason, UserRef, unique
from story_liker.jobs.deps import Counts, Deps, Outcome, Report, bookkeeping
from story_liker.jobs.likes import Likes, like_pass
from story_liker.jobs.pacing import Paced
from story_liker.jobs.targets import Failing, adopt_from_tray, cleared, resolve_targets, targets_by_user
from story_liker.models import STORY_LIKE, Target
from story_liker.store import liked_stories

log = logging.getLogger(__name__)


def run_stories(deps: Deps, *, dry_run: bool, max_likes: int | None) -> Report:
    return like_pass(deps, STORY_LIKE, _pass, dry_run=dry_run, max_likes=max_likes)


def _pass(deps: Deps, ig: Paced, targets: list[Target], allowed: int, likes: Likes) -> Outcome:
    counts, store, settings = deps.counts, deps.store, deps.settings
    account, now, dry_run = settings.account(), deps.clock(), likes.dry_run
    tray = _tray(ig, counts, planning.tray_reason(ig.last_request, now))
    if settings.follow_everyone:
        targets = adopt_from_tray(deps, list(tray.values()))
        counts.targets = len(targets)
    free = {e.username: UserRef(e.user_pk, e.username, followed=True) for e in tray.values()}
    targets = resolve_targets(deps, ig, targets, free, counts)
    by_pk = targets_by_user(targets)
    plan = planning.plan_story_reads(
        targets,
        {pk: entry.latest_reel_media for pk, entry in tray.items()},
        now,
        recheck=settings.story_recheck,
        batch_size=settings.reels_batch_size,
        horizon=planning.pass_horizon(targets, now, settings.story_recheck),
    )
    for target_id, why in plan.skipped.items():
        log.debug("target_not_checked", extra={"target_id": target_id, "reason": str(why)})
    reels, checked = _read(deps, ig, plan, by_pk, allowed)
    updates: dict[int, dict[str, Any]] = {}
    checked.update(plan.settled)

    items = unique([s for pk, found in reels.items() if pk in by_pk for s in found])
    counts.stories_seen = len(items)
    pks = [s.pk for s in items]
    recorded = store.liked_story_pks(account, pks)
    unconfirmed = store.unconfirmed_likes(account, STORY_LIKE, pks) - recorded
    lost = planning.lost_likes(items, unconfirmed)
    liked_elsewhere = [s for s in items if s.has_liked is True and s.pk not in recorded]
    if liked_elsewhere and not dry_run:  # ours when it was our like whose answer was lost; else found liked
        for ours in (True, False):
            group = [s for s in liked_elsewhere if (s.pk in unconfirmed) is ours]
            if group:
                store.record_stories(account, liked_stories(group, found=not ours), now, counted=False)
    counts.already_liked = len(recorded) + len(liked_elsewhere)
    handled = recorded | {s.pk for s in liked_elsewhere} | lost
    todo = [s for s in items if s.pk not in handled]
    todo, left_out = _leave_out(deps, todo, dry_run)
    handled |= {s.pk for s in left_out}
    chosen = planning.fair_share(todo, allowed, store.last_story_likes(account) if allowed < len(todo) else None)
    counts.skipped = len(todo) - len(chosen)
    if counts.skipped:
        log.info("budget_used_up", extra={"planned": len(chosen), "left_for_later": counts.skipped})
    try:
        handled |= _like_all(deps, ig, likes, by_pk, chosen, left_out)
        unsent = sum(1 for s in chosen if s.pk not in handled and s.pk not in likes.attempted)
        if unsent:  # the pass stopped liking (its time, the 10-minute window, the active hours): the next pass
            counts.skipped += unsent
            log.info("likes_left_for_later", extra={"left_for_later": unsent})
    finally:
        if not dry_run:  # a dry run leaves markers and check times alone: the next real pass does the same
            pending = {s.user_pk for s in items if s.pk not in handled}  # found, not liked: the limits, the time
            for pk in checked:
                target = by_pk[pk]
                assert target.id is not None
                values: dict[str, Any] = updates.setdefault(target.id, {})
                values |= {"unavailable": None} | cleared(target, "stories")
                if pk not in pending:  # one with stories left stays due: the next pass reads it again, tray or not
                    values["story_checked_at"] = now
                settled_at = tray[pk].latest_reel_media if pk in tray and pk not in reels else None
                marker = planning.new_marker(target.story_marker, reels.get(pk, []), handled, settled_at=settled_at)
                if marker != target.story_marker:
                    values["story_marker"] = marker
        bookkeeping(lambda: store.update_targets(updates))
    if dry_run:
        return Outcome.DRY_RUN
    if counts.skipped:
        return Outcome.BUDGET_USED_UP
    return Outcome.OK if items else Outcome.NOTHING_NEW


def _leave_out(deps: Deps, todo: list[StoryItem], dry_run: bool) -> tuple[list[StoryItem], list[StoryItem]]:
    """STORY_LIKE_PROBABILITY and STORY_MAX_PER_TARGET: stories left deliberately are recorded as skipped
    (never tried again, and the marker may pass them). Returns (to like, left out)."""
    settings, account = deps.settings, deps.settings.account()
    chance = [s for s in todo if planning.skipped_by_chance(account, s.pk, settings.story_like_probability)]
    kept, capped = planning.newest_per_target([s for s in todo if s not in chance], settings.story_max_per_target)
    left_out = chance + capped
    deps.counts.left_out += len(left_out)
    if left_out and not dry_run:
        deps.store.record_stories(account, liked_stories(left_out, skipped=True), deps.clock(), counted=False)
    return kept, left_out


def _tray(ig: Instagram, counts: Counts, reason: TrayReason) -> dict[int, TrayEntry]:
    try:
        return {entry.user_pk: entry for entry in ig.reels_tray(reason)}
    except BadResponse as exc:  # without the tray the due targets are still checked, in batches
        counts.errors += 1
        log.warning("tray_skipped", extra={"reason": exc.message})
        return {}


def _read(
    deps: Deps, ig: Instagram, plan: planning.ReadPlan, by_pk: dict[int, Target], allowed: int
) -> tuple[dict[int, list[StoryItem]], set[int]]:
    """Carry out the read plan. Returns the stories per user pk and the pks checked (a reel missing from a
    ``reels_media`` answer is checked: nothing there, unless its target is not followed: then only its own read
    tells no stories from private or gone, and only a due one gets it). A target whose own read fails is recorded
    as failing at once (jobs.targets.Failing) and the others go on. The own reads stop while the pass's time budget
    still holds the likes of what was found (up to ``allowed``): the unread ones, checked longest ago, go first
    next pass."""
    counts, settings = deps.counts, deps.settings
    reels: dict[int, list[StoryItem]] = {}
    checked: set[int] = set()
    answered: set[int] = set()  # the pks of the batches that were answered
    for batch in plan.batches:
        try:
            found = ig.reels_media(batch)
        except BadResponse as exc:
            counts.errors += 1
            log.warning("reels_skipped", extra={"reason": exc.message, "user_pks": batch})
            continue
        reels.update({pk: items for pk, items in found.items() if pk in batch})
        answered.update(batch)
        checked.update(pk for pk in batch if pk in found or pk not in plan.unproven)
    per_user = [pk for pk in plan.per_user if pk in answered and pk not in reels]
    failing = Failing(deps, "stories")
    for index, pk in enumerate(per_user):
        target = by_pk[pk]
        assert target.id is not None
        stories_found = sum(len(items) for items in reels.values())
        likes_after = planning.like_cost(settings, watched=True) * min(allowed, stories_found + 1)
        if not deps.fits(planning.read_cost(settings, first=not index) + likes_after):
            log.info("reads_stopped", extra={"reason": "the pass's time budget", "unread": len(per_user) - index})
            counts.deferred += len(per_user) - index
            break
        if index:
            deps.pause(settings.target_delay_min_seconds, settings.target_delay_max_seconds)
        try:
            reels[pk] = ig.user_stories(pk)
        except (TargetUnavailable, BadResponse, NetworkError) as exc:
            deps.store.update_targets({target.id: failing.failed(target, exc)})  # kept even if the pass ends early
            continue
        failing.ok(target)  # its row of failures ends with the check (the pass's bookkeeping writes it)
        checked.add(pk)
    return reels, checked


def _like_all(
    deps: Deps, ig: Paced, likes: Likes, by_pk: dict[int, Target], chosen: list[StoryItem], seen_too: list[StoryItem]
) -> set[str]:
    """Per target, as a viewer would: watch its reel, liking each chosen story while it is on screen, then one seen
    request for what was watched. ``seen_too``: stories left out by chance or by the cap, watched and not liked (a
    reel with none to like after those with likes); those the limits left for later are not watched. Before a reel
    the pass waits for room in the 10-minute window for its likes (the room there is, when the wait would not fit
    the pass's time), never inside a reel. Returns the pks handled (liked, or counted as such in a dry run)."""
    per_target: dict[int, list[StoryItem]] = {}
    for item in chosen:
        per_target.setdefault(item.user_pk, []).append(item)
    for item in seen_too:  # a reel with nothing to like is watched after those with likes
        per_target.setdefault(item.user_pk, [])
    settings = deps.settings
    done: set[str] = set()
    for pk in [pk for pk, watched in likes.unseen.items() if watched and pk in by_pk]:
        _seen(deps, ig, likes, by_pk[pk])  # a re-login's second run: what the first watched and could not report
    reels = [
        (pk, sorted(items + [s for s in seen_too if s.user_pk == pk], key=lambda s: (s.taken_at, s.pk)))
        for pk, items in per_target.items()
    ]
    to_like = {s.pk for s in chosen}
    deps.progress.start(len(per_target), "liking stories")
    opened: set[int] = set()
    try:
        index = 0
        while reels:
            pk, reel = reels.pop(0)
            target = by_pk[pk]
            if not likes.may_go_on():
                break
            if index:
                likes.pause(settings.target_delay_min_seconds, settings.target_delay_max_seconds)
            index += 1
            wanted = sum(1 for s in reel if s.pk in to_like)
            if wanted and not likes.room(wanted, partial=True):  # no room in the 10-minute window in time
                break
            if pk not in opened:
                opened.add(pk)
                deps.progress.advance(target.username)
            liked, rest = _watch(deps, ig, likes, target, reel, to_like)
            done |= liked
            if rest:  # the window filled inside the reel: come back to it once there is room, as the app resumes
                reels.append((pk, rest))
    finally:
        deps.progress.stop()
    return done


def _watch(
    deps: Deps, ig: Paced, likes: Likes, target: Target, reel: list[StoryItem], to_like: set[str]
) -> tuple[set[str], list[StoryItem]]:
    """Watch ``reel`` in order: each story for its watch time (planning.watch_seconds), a chosen one liked while on
    screen, a second at least after it came and a second at least before it goes. The pause between likes
    (ACTION_DELAY_*) still holds: a like it would come too early for waits, holding its story on screen (as the app
    pauses a story while it is held). Then the seen report, with the moment each watched story came on screen.
    Stops before a story to like that the 10-minute window has no room for now (returned, with what follows it:
    the pass comes back to it once there is room), or that the pass's time would not hold. Returns the pks handled
    and the rest of the reel the window cut off.

    What was watched is reported seen also when Instagram answers a like with an error (one try: the viewer saw
    it), and after a re-login by the pass's second run; a like with no answer (a timeout: Instagram may be out of
    reach), a block, a challenge, a signal or a lost lease send nothing more."""
    settings, rng, clock = deps.settings, deps.rng, deps.clock
    scale = settings.story_watch_percent / 100

    def later(moment: datetime, seconds: float) -> datetime:
        return moment + timedelta(seconds=seconds * scale)

    if likes.dry_run:  # no like and no seen request to time: what would be liked is said at once
        return {s.pk for s in reel if s.pk in to_like and _like(deps, ig, likes, target, s)}, []
    assert target.user_pk is not None
    watched = likes.unseen.setdefault(target.user_pk, [])  # what _seen reports, under the same key
    done: set[str] = set()
    rest: list[StoryItem] = []
    try:
        for index, story in enumerate(reel):
            liking = story.pk in to_like
            if liking and not likes.has_room():
                rest = reel[index:]
                break
            if not likes.may_go_on():
                break
            start = clock()
            watched.append((story, start))
            watch = planning.watch_seconds(story, rng)
            ends = later(start, watch)
            if liking:
                at = later(start, planning.like_offset(watch, rng))
                if likes.last_sent is not None:
                    gap = ratelimit.jitter(rng, settings.action_delay_min_seconds, settings.action_delay_max_seconds)
                    at = max(at, likes.last_sent + timedelta(seconds=gap))
                deps.wait_until(at)
                if _like(deps, ig, likes, target, story, on_screen=True):
                    done.add(story.pk)
                ends = max(ends, later(clock(), planning.HOLD_AFTER_LIKE_SECONDS))
            deps.wait_until(ends)
    except NetworkError as exc:
        if exc.answered:  # Instagram answered (a 5xx): the viewer saw what it watched, one try to say so
            _seen(deps, ig, likes, target, quietly=True)
        raise
    _seen(deps, ig, likes, target)
    return done, rest


def _seen(deps: Deps, ig: Paced, likes: Likes, target: Target, *, quietly: bool = False) -> None:
    """The seen report of one reel (what ``likes.unseen`` holds of it), sent as the viewer moves on, also when the
    pass's time or the limits end the watching inside it: what was watched was seen. ``quietly``: the pass is
    ending with a network error; a failure of this report too is logged, and that error stays the pass's."""
    assert target.user_pk is not None
    watched = likes.unseen.get(target.user_pk)
    if not watched:
        return
    stories, started = [s for s, _ in watched], [at for _, at in watched]
    try:
        ig.mark_seen(stories, planning.seen_stamps(stories, started, deps.clock()))
    except BadResponse as exc:  # the likes do not depend on it
        deps.counts.errors += 1
        log.warning("seen_failed", extra={"target": target.username, "reason": exc.message})
    except (NetworkError, SessionExpired) as exc:  # kept: after a re-login the pass's second run reports it
        if not quietly:
            raise
        log.warning("seen_failed", extra={"target": target.username, "reason": str(exc)})
        return
    del likes.unseen[target.user_pk]


def _like(deps: Deps, ig: Paced, likes: Likes, target: Target, story: StoryItem, *, on_screen: bool = False) -> bool:
    return likes.one(
        story.pk,
        {"target": target.username, "story_pk": story.pk},
        ready=ig.ready,
        send=lambda: ig.like_story(story),
        record=lambda handled_only: deps.store.record_stories(
            deps.settings.account(), liked_stories([story], skipped=handled_only), deps.clock(), counted=False
        ),
        on_screen=on_screen,
    )
