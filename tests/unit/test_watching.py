"""Looking like a person: reels watched before their likes, and no bursts (the 10-minute window). In-process, the
real jobs and store against a scripted Instagram; the fake clock moves only by the pass's own waits."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from story_liker import ratelimit
from story_liker.errors import Interrupted
from story_liker.ig.types import PostItem, UserRef
from story_liker.jobs.deps import Outcome
from story_liker.jobs.posts import run_posts
from story_liker.jobs.stories import run_stories
from story_liker.ratelimit import Limits
from story_liker.status import status_data, status_text
from story_liker.store import Store
from tests.fake import ME, START, Call, Harness, ScriptedInstagram, story, tray_of

NAMES = {100 + n: f"user{n}" for n in range(8)}
NOW = datetime(2026, 3, 1, 12, tzinfo=START.tzinfo)


@pytest.fixture
def h(store: Store) -> Harness:
    harness = Harness(store, overrides={"target_accounts": ",".join(NAMES.values())})
    harness.store_session()
    return harness


def busiest_10_minutes(times: Sequence[datetime]) -> int:
    ordered = sorted(times)
    return max((sum(1 for t in ordered if a <= t < a + ratelimit.BURST) for a in ordered), default=0)


def like_times(ig: ScriptedInstagram, name: str = "like_story") -> list[datetime]:
    return [c.at for c in ig.calls if c.name == name]


def reels_of(h: Harness, per_target: int, targets: int = 8) -> dict[int, list[Any]]:
    return {pk: [story(pk, n, at=h.clock()) for n in range(per_target)] for pk in list(NAMES)[:targets]}


# --- the window, pure ----------------------------------------------------------------------------------------


def test_room_is_when_enough_likes_have_left_the_window() -> None:
    limits = Limits(100, 1000, 3)
    recent = [NOW - timedelta(minutes=m) for m in (9, 5, 1)]
    assert ratelimit.burst_room_at(NOW, recent, limits) == NOW + timedelta(minutes=1)
    assert ratelimit.burst_room_at(NOW, recent, limits, 2) == NOW + timedelta(minutes=5)
    assert ratelimit.burst_room_at(NOW, recent, limits, 9) == NOW + timedelta(minutes=9)  # at most the window
    assert ratelimit.burst_room_at(NOW, recent[:2], limits) == NOW
    assert ratelimit.burst_room_at(NOW, recent, Limits(100, 1000)) == NOW  # no window: no wait


@given(
    history=st.lists(st.integers(0, 1200), max_size=30),
    window=st.integers(1, 10),
    wanted=st.integers(1, 12),
)
def test_room_fits_exactly_then(history: list[int], window: int, wanted: int) -> None:
    """At the moment named, ``wanted`` (at most the window) more fit; a second before, they did not."""
    recent = [NOW - timedelta(seconds=s) for s in history]
    at = ratelimit.burst_room_at(NOW, recent, Limits(1000, 10000, window), wanted)

    def inside(moment: datetime) -> int:
        return sum(1 for t in recent if moment - t < ratelimit.BURST)

    assert at >= NOW
    assert inside(at) + min(wanted, window) <= window
    if at > NOW:
        assert inside(at - timedelta(seconds=1)) + min(wanted, window) > window


def test_the_window_is_a_cap_on_bursts_the_warm_up_does_not_scale() -> None:
    effective = ratelimit.effective_limits(Limits(20, 100, 6), aimd=0.5, warmup=0.25)
    assert effective.limits == Limits(2, 12, 6)


# --- stories ---------------------------------------------------------------------------------------------------


def test_no_ten_minutes_hold_more_likes_than_the_window_and_the_pass_waits_for_room(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """20 new stories, 20 likes an hour allowed, 6 in any 10 minutes: the pass likes 6, waits between two reels,
    likes on, and leaves what its time cannot hold to the next pass, which likes it."""
    h.overrides |= {"story_likes_per_hour": 40}
    reels = reels_of(h, 3, targets=7)
    ig = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    deps = h.deps(ig)
    caplog.set_level(logging.INFO)
    assert run_stories(deps, dry_run=False, max_likes=None).outcome is Outcome.BUDGET_USED_UP
    times = like_times(ig)
    assert busiest_10_minutes(times) == 6
    assert 6 < len(times) <= 12  # it waited for room (12 minutes of pass: two windows' worth, at most)
    assert deps.counts.skipped == 21 - len(times)
    waits = [r.__dict__ for r in caplog.records if r.msg == "burst_wait"]
    assert waits and all(0 <= e["seconds"] <= 600 for e in waits)
    assert any(r.msg == "burst_limit_reached" for r in caplog.records)
    # a wait falls between two reels: no reel's likes are split by one
    for seen in (c for c in ig.calls if c.name == "mark_seen"):
        mine = [c.at for c in ig.calls if c.name == "like_story" and c.arg in dict(seen.arg)]
        assert (max(mine) - min(mine)).total_seconds() < 120

    h.clock.advance(minutes=50)
    again = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    run_stories(h.deps(again), dry_run=False, max_likes=None)
    assert busiest_10_minutes(times + like_times(again)) <= 6
    assert not set(ig.liked) & set(again.liked)


def test_a_reel_longer_than_the_window_is_watched_up_to_what_it_holds(h: Harness) -> None:
    """8 new stories of one target, 6 likes in any 10 minutes, a pass too short to wait: 6 watched and liked,
    the 2 newest neither watched nor liked (the next pass does)."""
    h.overrides |= {"target_accounts": "user0", "pass_budget_minutes": 3}
    reels = {100: [story(100, n, at=h.clock()) for n in range(8)]}
    ig = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    assert run_stories(h.deps(ig), dry_run=False, max_likes=None).outcome is Outcome.BUDGET_USED_UP
    oldest_first = [s.pk for s in sorted(reels[100], key=lambda s: s.taken_at)]
    assert ig.liked == oldest_first[:6]
    assert ig.seen == oldest_first[:6]
    h.clock.advance(minutes=11)
    again = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    run_stories(h.deps(again), dry_run=False, max_likes=None)
    assert again.liked == oldest_first[6:]


def test_a_dry_run_never_waits_for_the_window(h: Harness) -> None:
    reels = reels_of(h, 3)
    ig = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    started = h.clock()
    deps = h.deps(ig)
    assert run_stories(deps, dry_run=True, max_likes=None).outcome is Outcome.DRY_RUN
    assert deps.counts.would_like == 20  # the hourly limit, not the window
    assert h.clock() - started < timedelta(seconds=1)
    assert ig.names().count("mark_seen") == 0


def test_a_long_wait_keeps_the_lease_and_a_signal_ends_it(h: Harness) -> None:
    """A wait for room is longer than a third of the lease: it is renewed as the wait goes, so another run
    cannot take it; a SIGTERM during the wait ends the pass before its next request."""
    h.overrides |= {"story_likes_per_hour": 40, "lock_ttl_seconds": 60}
    reels = reels_of(h, 3)
    ig = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    deps = h.deps(ig)
    attempts: list[bool] = []
    sleep = h.clock.sleep

    def sleeper(seconds: float) -> None:
        sleep(seconds)
        if len(ig.liked) == 6 and len(attempts) < 5:  # inside the wait for room
            attempts.append(h.store.acquire_lock(ME, run_id="other", command="run-posts", now=h.clock(), ttl=deps_ttl))
            if len(attempts) == 5:
                deps.stop.set()
                deps.stop_signal.append(15)

    deps_ttl = timedelta(seconds=60)
    deps.sleeper = sleeper
    with pytest.raises(Interrupted):
        run_stories(deps, dry_run=False, max_likes=None)
    assert attempts == [False] * 5
    assert len(ig.liked) == 6 and ig.calls[-1].name == "mark_seen"  # nothing sent after the signal
    assert h.store.acquire_lock(ME, run_id="next", command="run-stories", now=h.clock(), ttl=deps_ttl)


def test_status_and_doctor_show_the_window(h: Harness) -> None:
    reels = reels_of(h, 1, targets=4)
    ig = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    data = status_data(h.deps(ScriptedInstagram(h.clock)))
    usage = data["limits"]["story_like"]
    assert (usage["last_10_minutes"], usage["effective_per_10_minutes"]) == (4, 6)
    assert "4/6 last 10 min, 4/20 last hour" in status_text(data)


# --- posts -----------------------------------------------------------------------------------------------------


def test_post_likes_keep_their_own_window(h: Harness) -> None:
    h.overrides |= {"post_likes_per_hour": 40, "post_timeline_pages": 0}
    h.added_earlier()  # every first profile read due: all 16 posts found in this pass
    posts = {
        pk: [PostItem(f"{pk}{n:03d}", pk, h.clock() - timedelta(hours=n + 1), "photo", False) for n in range(2)]
        for pk in NAMES
    }
    followed = [UserRef(pk, name, True) for pk, name in NAMES.items()]
    ig = ScriptedInstagram(h.clock, posts=posts, followed=followed)
    outcome = run_posts(h.deps(ig), dry_run=False, max_likes=None).outcome
    times = like_times(ig, "like_post")
    assert busiest_10_minutes(times) == 8
    assert len(times) > 8 and (outcome is Outcome.OK or outcome is Outcome.BUDGET_USED_UP)


def test_a_refused_like_leaves_the_window(h: Harness) -> None:
    """Instagram refused it: like the limits, the window does not count it."""
    from story_liker.errors import BadResponse

    h.overrides |= {"target_accounts": "user0", "story_likes_per_10_minutes": 2, "pass_budget_minutes": 2}
    reels = {100: [story(100, n, at=h.clock()) for n in range(3)]}
    ig = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    ig.script["like_story"] = [BadResponse("like of story not confirmed")]
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    assert ig.names().count("like_story") == 3 and len(ig.liked) == 2  # the refused one was sent, then 2 liked


def _on_screen(calls: list[Call]) -> bool:
    stamps = {pk: at for c in calls if c.name == "mark_seen" for pk, at in c.arg}
    return all(c.at.timestamp() >= stamps[c.arg] + 1 for c in calls if c.name == "like_story")


def test_the_likes_after_a_wait_are_on_screen_too(h: Harness) -> None:
    h.overrides |= {"story_likes_per_hour": 40}
    reels = reels_of(h, 3)
    ig = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    assert _on_screen(ig.calls)


def test_watch_percent_scales_the_watching_not_the_order(h: Harness) -> None:
    """STORY_WATCH_PERCENT (a demo, a test double): the same order, the watching shortened; at 0 no time passes."""
    h.overrides |= {"story_watch_percent": 0, "story_likes_per_10_minutes": 1000}
    reels = reels_of(h, 3)
    ig = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    started = h.clock()
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    assert h.clock() == started and len(ig.liked) == 20
    writes = [c.name for c in ig.calls if c.name in ("like_story", "mark_seen")]
    assert writes[:4] == ["like_story", "like_story", "like_story", "mark_seen"]


def test_a_target_not_followed_with_stories_left_for_later_is_read_again_next_pass(h: Harness) -> None:
    """The tray never shows it: its found-but-unliked stories keep it due, so the next pass reads it (in a batch)
    instead of six hours later, when the stories may have expired unliked."""
    h.overrides |= {"target_accounts": "user0,user1", "story_likes_per_hour": 1}
    users = {name: UserRef(pk, name, False) for pk, name in NAMES.items()}
    reels = {pk: [story(pk, 1, at=h.clock())] for pk in (100, 101)}
    ig = ScriptedInstagram(h.clock, users=users, reels=reels)
    assert run_stories(h.deps(ig), dry_run=False, max_likes=None).outcome is Outcome.BUDGET_USED_UP
    assert len(ig.liked) == 1
    h.clock.advance(hours=1)
    again = ScriptedInstagram(h.clock, users=users, reels=reels)
    assert run_stories(h.deps(again), dry_run=False, max_likes=None).outcome is Outcome.OK
    assert again.liked and set(again.liked) | set(ig.liked) == {"100001", "101001"}
    h.clock.advance(hours=1)
    quiet = ScriptedInstagram(h.clock, users=users, reels=reels)
    run_stories(h.deps(quiet), dry_run=False, max_likes=None)
    assert quiet.names() == ["reels_tray"]  # nothing left: both checked, the nothing-new pass is the tray
