"""Hostile review of the watching and the 10-minute window (dafab32, 0408ad3): each test here names a defect found
on today's code and is marked xfail(strict) until it is fixed."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from story_liker import ratelimit
from story_liker.errors import SessionExpired
from story_liker.jobs.deps import Outcome
from story_liker.jobs.stories import run_stories
from story_liker.store import Store
from tests.fake import Harness, ScriptedInstagram, story, tray_of

NAMES = {100 + n: f"user{n}" for n in range(8)}


@pytest.fixture
def h(store: Store) -> Harness:
    harness = Harness(store, overrides={"target_accounts": ",".join(NAMES.values())})
    harness.store_session()
    return harness


def like_times(ig: ScriptedInstagram, name: str = "like_story") -> list[datetime]:
    return [c.at for c in ig.calls if c.name == name]


def busiest_10_minutes(times: Sequence[datetime]) -> int:
    ordered = sorted(times)
    return max((sum(1 for t in ordered if a <= t < a + ratelimit.BURST) for a in ordered), default=0)


def seen_reports(ig: ScriptedInstagram) -> list[list[tuple[str, int]]]:
    return [c.arg for c in ig.calls if c.name == "mark_seen"]


# --- 1. a wall clock set back during a wait: the pass runs an hour past its budget ------------------------------


def test_a_wall_clock_set_back_inside_a_wait_keeps_the_pass_within_its_budget(h: Harness) -> None:
    """Two reels (6 + 3 stories), 6 likes in any 10 minutes: the pass likes 6, waits for room, likes 3. NTP (or a
    person) sets the wall clock back an hour early in the wait. The waits before this change were durations
    (Deps.pause); wait_until loops until a wall time, which the step pushed an hour away."""
    h.overrides |= {"target_accounts": "user0,user1", "story_likes_per_hour": 40}
    reels = {100: [story(100, n, at=h.clock()) for n in range(6)], 101: [story(101, n, at=h.clock()) for n in range(3)]}
    ig = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    deps = h.deps(ig)
    sleep, stepped = h.clock.sleep, list[float]()

    def sleeper(seconds: float) -> None:
        sleep(seconds)
        if len(ig.liked) == 6 and "mark_seen" in ig.names() and seconds >= 30 and not stepped:  # in the burst wait
            stepped.append(h.clock.elapsed)
            h.clock.step(hours=-1)

    deps.sleeper = sleeper
    run_stories(deps, dry_run=False, max_likes=None)
    assert stepped
    budget = h.settings().pass_budget_minutes * 60
    assert h.clock.elapsed <= budget, f"the pass ran {h.clock.elapsed / 60:.0f} minutes (budget {budget / 60:.0f})"


# --- 2. a re-login inside a reel: stories liked and never reported seen -----------------------------------------


@pytest.mark.parametrize("where", ["like_story", "mark_seen"])
def test_a_relogin_inside_a_reel_leaves_no_story_liked_and_never_seen(h: Harness, where: str) -> None:
    """login_required on the reel's second like, or on its seen report: the single re-login runs the pass again,
    which finds the first run's likes recorded and watches only what is left; the seen report of the stories
    liked before the expiry is never sent (the fault simulation shows it too: login_required_accepted)."""
    h.overrides |= {"target_accounts": "user0", "ig_password": "hunter2-password"}
    reels = {100: [story(100, n, at=h.clock()) for n in range(3)]}
    ig = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    ig.script[where] = (
        [None, SessionExpired("login_required")] if where == "like_story" else [SessionExpired("login_required")]
    )
    assert run_stories(h.deps(ig), dry_run=False, max_likes=None).outcome is Outcome.OK
    assert ig.names().count("relogin") == 1 and len(ig.liked) == 3
    never_seen = set(ig.liked) - set(ig.seen)
    assert not never_seen, f"liked, never reported seen: {sorted(never_seen)}"


# --- 3. the window makes a reel wait in its middle -------------------------------------------------------------


def test_the_window_never_makes_a_reel_wait_between_two_of_its_stories(h: Harness) -> None:
    """One reel of 8 new stories, 6 likes in any 10 minutes, the default 12-minute pass: it likes 6, waits about
    ten minutes with the reel open, likes 2 more, then reports the reel seen in one request whose stamps span the
    wait."""
    h.overrides |= {"target_accounts": "user0", "story_likes_per_hour": 40}
    reels = {100: [story(100, n, at=h.clock()) for n in range(8)]}
    ig = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    assert busiest_10_minutes(like_times(ig)) <= 6
    for report in seen_reports(ig):
        stamps = [at for _, at in report]
        assert stamps[-1] - stamps[0] < 120, f"one reel watched over {(stamps[-1] - stamps[0]) / 60:.1f} minutes"


# --- 4. room for some likes, a reel that wants more: none is sent ------------------------------------------------


def test_free_room_in_the_window_is_used_when_a_reel_wants_more(h: Harness) -> None:
    """A pass 2 minutes ago liked 4 stories: 2 of 6 slots are free. The next pass (4 minutes of budget) finds one
    reel of 6 new stories: it likes none and says budget_used_up. With an empty window a reel of 8 gets 6
    (test_watching.test_a_reel_longer_than_the_window_is_watched_up_to_what_it_holds): a fuller window should give
    the 2 it holds, not 0."""
    h.overrides |= {"target_accounts": "user0,user1", "story_likes_per_hour": 40, "pass_budget_minutes": 4}
    first = {101: [story(101, n, at=h.clock()) for n in range(4)]}
    run_stories(
        h.deps(ScriptedInstagram(h.clock, tray=tray_of(first, NAMES), reels=first)), dry_run=False, max_likes=None
    )
    h.clock.advance(minutes=2)
    reels = {100: [story(100, n, at=h.clock()) for n in range(6)]}
    ig = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    assert len(ig.liked) == 2, ig.names()


# --- 5. a story watched for its like, its like not sent --------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 5, 7])
def test_a_story_watched_for_its_like_gets_it(h: Harness, seed: int) -> None:
    """15-second videos, a 1-minute pass: a story that starts with 30 s left passes may_go_on (21 s); its like
    comes 1-14 s in; with under 21 s left then, Likes.one says pass_time_up and the story goes unliked, yet it is
    in the seen report (the next pass likes a story the account saw an hour before)."""
    h.overrides |= {
        "target_accounts": "user0",
        "pass_budget_minutes": 1,
        "story_likes_per_10_minutes": 100,
        "story_likes_per_hour": 100,
    }
    reels = {100: [replace(story(100, n, at=h.clock()), video_duration=15.0) for n in range(12)]}
    ig = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    deps = h.deps(ig)
    deps.rng = random.Random(seed)
    run_stories(deps, dry_run=False, max_likes=None)
    assert set(ig.seen) <= set(ig.liked), f"watched for a like, not liked: {sorted(set(ig.seen) - set(ig.liked))}"


# --- 6. a story taken "in the future" ------------------------------------------------------------------------


def test_no_story_is_reported_seen_before_it_was_taken(h: Harness) -> None:
    h.overrides |= {"target_accounts": "user0"}
    now_story = story(100, 0, at=h.clock())
    ahead = replace(story(100, 1, at=h.clock()), taken_at=h.clock() + timedelta(minutes=30))  # our clock is behind
    reels = {100: [now_story, ahead]}
    ig = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    taken = {s.pk: int(s.taken_at.timestamp()) for s in reels[100]}
    early = [(pk, at) for report in seen_reports(ig) for pk, at in report if at < taken[pk]]
    assert not early, f"seen before taken: {early}"


# --- 7. a reel with nothing to like is never watched -----------------------------------------------------------


def test_stories_left_out_by_chance_are_watched_though_their_reel_has_no_like(h: Harness) -> None:
    from story_liker import planning
    from tests.fake import ME

    h.overrides |= {"target_accounts": "user0,user1", "story_like_probability": 0.5}
    out = next(s for s in (story(100, n, at=h.clock()) for n in range(50)) if planning.skipped_by_chance(ME, s.pk, 0.5))
    kept = next(
        s for s in (story(101, n, at=h.clock()) for n in range(50)) if not planning.skipped_by_chance(ME, s.pk, 0.5)
    )
    reels = {100: [out], 101: [kept]}
    ig = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    assert ig.liked == [kept.pk]
    assert out.pk in ig.seen  # left out, recorded as skipped, and its reel watched all the same


# --- 8. the reads spend the time the window's wait needs -------------------------------------------------------


def test_per_user_reads_leave_the_pass_the_time_its_window_needs(store: Store) -> None:
    """30 public targets the account does not follow (one per-user read each), one new story each, 20 likes an
    hour, the shipped pauses and window. Second hourly pass (the names are known): it reads every target
    (~6 minutes), likes 6, finds no time left for the window's wait and leaves 18 read stories for the next hour,
    which reads them all again."""
    from story_liker.ig.types import UserRef

    names = {200 + n: f"pub{n}" for n in range(30)}
    h = Harness(
        store,
        overrides={
            "target_accounts": ",".join(names.values()),
            "story_likes_per_hour": 20,
            "action_delay_min_seconds": 3,
            "action_delay_max_seconds": 12,
            "target_delay_min_seconds": 5,
            "target_delay_max_seconds": 20,
            "request_delay_min_seconds": 1,
            "request_delay_max_seconds": 3,
        },
    )
    h.store_session()
    reels = {pk: [story(pk, 0, at=h.clock() + timedelta(hours=1))] for pk in names}
    users = {n: UserRef(pk, n, False) for pk, n in names.items()}
    for hour in range(2):
        ig = ScriptedInstagram(h.clock, reels=reels, users=users)
        deps = h.deps(ig)
        deps.rng = random.Random(hour)
        run_stories(deps, dry_run=False, max_likes=None)
        h.clock.advance(hours=1)
    reads = sum(1 for c in ig.calls if c.name == "user_stories")
    assert len(ig.liked) > 6, f"{reads} reads, {len(ig.liked)} liked, {deps.counts.skipped} read and left"


# --- 9. a 5xx that ends the pass inside a reel: its likes are never reported seen -------------------------------


@pytest.mark.parametrize("answered", [True, False], ids=["5xx", "timeout"])
def test_a_network_error_inside_a_reel_leaves_no_like_unseen_for_good(h: Harness, answered: bool) -> None:
    """The fault simulation with one more check (every story the server saw liked was in some seen report) counts
    300 such (schedule, story) pairs over its 683 schedules, from every fault that ends a pass mid-reel: 5xx,
    timeouts and dropped answers as well as the 429s and signals the docs exempt."""
    from story_liker.errors import NetworkError, StoryLikerError

    h.overrides |= {"target_accounts": "user0"}
    reels = {100: [story(100, n, at=h.clock()) for n in range(3)]}
    ig = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    ig.script["like_story"] = [None, NetworkError("Instagram answered 500 on like_story", answered=answered)]
    with pytest.raises(StoryLikerError):
        run_stories(h.deps(ig), dry_run=False, max_likes=None)
    h.clock.advance(hours=1)
    later = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    run_stories(h.deps(later), dry_run=False, max_likes=None)
    liked, seen = set(ig.liked) | set(later.liked), set(ig.seen) | set(later.seen)
    if answered:
        assert liked <= seen, f"liked, never reported seen: {sorted(liked - seen)}"
        assert ig.names()[-2:] == ["like_story", "mark_seen"]  # one try, right after the answered error
    else:  # no answer: Instagram may be out of reach, nothing more is sent (the first like stays unreported)
        assert ig.names()[-1] == "like_story" and liked - seen == {ig.liked[0]}


# --- 10. the post sweep reads on after the window closed the pass's liking -------------------------------------


def test_the_post_sweep_stops_reading_once_the_window_ends_the_liking(store: Store) -> None:
    """20 followed targets whose feeds are swept (no timeline), 40 post likes an hour, 8 in any 10 minutes, a
    4-minute pass: 8 reads and likes, the 9th like meets a full window whose wait the pass cannot hold
    (burst_limit_reached), then 11 more profile reads whose posts no like can reach (the next pass reads them
    again). Every 3-hourly pass repeats it: 20 reads for 8 likes."""
    from story_liker.ig.types import PostItem, UserRef
    from story_liker.jobs.posts import run_posts

    names = {300 + n: f"p{n}" for n in range(20)}
    h = Harness(
        store,
        overrides={
            "target_accounts": ",".join(names.values()),
            "post_likes_per_hour": 40,
            "post_timeline_pages": 0,
            "pass_budget_minutes": 4,
            "target_delay_min_seconds": 5,
            "target_delay_max_seconds": 10,
        },
    )
    h.store_session()
    h.added_earlier()  # every first profile read due
    posts = {
        pk: [PostItem(f"{pk}{n:03d}", pk, h.clock() - timedelta(hours=n + 1), "photo", False) for n in range(2)]
        for pk in names
    }
    ig = ScriptedInstagram(h.clock, posts=posts, followed=[UserRef(pk, name, True) for pk, name in names.items()])
    assert run_posts(h.deps(ig), dry_run=False, max_likes=None).outcome is Outcome.BUDGET_USED_UP
    calls = ig.names()
    after_last_like = calls[len(calls) - 1 - calls[::-1].index("like_post") + 1 :]
    assert len(ig.liked) == 8
    assert after_last_like.count("user_posts") <= 1, f"{after_last_like.count('user_posts')} reads after the last like"
