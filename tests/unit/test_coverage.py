"""Never miss a target: the read plan (pure), markers, seen, and whole story passes in-process."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from story_liker import planning
from story_liker.errors import BadResponse, TargetUnavailable
from story_liker.ig.types import StoryItem, TrayEntry, UserRef
from story_liker.jobs.deps import Outcome
from story_liker.jobs.stories import run_stories
from story_liker.models import Target
from story_liker.store import Store
from tests.fake import ME, Call, Harness, ScriptedInstagram, story

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SIX_HOURS = timedelta(hours=6)


def target(n: int, **values: Any) -> Target:
    return Target(id=n, account=ME, username=f"user{n}", user_pk=1000 + n, **values)


# --- the read plan ------------------------------------------------------------------------------------


def test_tray_targets_with_something_new_are_batched_the_others_settled_for_free() -> None:
    targets = [target(1, followed=True, story_marker=10), target(2, followed=True, story_marker=50)]
    plan = planning.plan_story_reads(targets, {1001: 20, 1002: 50}, NOW, recheck=SIX_HOURS, batch_size=20)
    assert plan.batches == [[1001]] and plan.settled == [1002] and plan.requests == 1


def test_followed_targets_missing_from_the_tray_are_checked_when_due_and_fill_free_slots() -> None:
    fresh = [target(n, followed=True) for n in range(1, 4)]  # in the tray, new stories
    due = target(10, followed=True, story_checked_at=NOW - timedelta(hours=7))
    never = target(11, followed=True)
    recent = [target(20 + n, followed=True, story_checked_at=NOW - timedelta(hours=n + 1)) for n in range(3)]
    tray = {t.user_pk: 1 for t in fresh if t.user_pk}
    plan = planning.plan_story_reads([*fresh, due, never, *recent], tray, NOW, recheck=SIX_HOURS, batch_size=6)
    # 3 fresh + 2 due = 5: one free slot, taken by the recent target checked longest ago
    assert plan.batches == [[1001, 1002, 1003, 1011, 1010, 1022]]


def test_spare_slots_cost_no_request_of_their_own() -> None:
    plan = planning.plan_story_reads(
        [target(1, followed=True, story_checked_at=NOW - timedelta(hours=1))], {}, NOW, recheck=SIX_HOURS, batch_size=20
    )
    assert plan.requests == 0


def test_unknown_follow_state_is_checked_like_not_followed() -> None:
    """Both never checked: due, in the batch, and read alone if its answer leaves them out."""
    plan = planning.plan_story_reads(
        [target(1, followed=None), target(2, followed=False)], {}, NOW, recheck=SIX_HOURS, batch_size=20
    )
    assert plan.batches == [[1001, 1002]] and plan.per_user == [1001, 1002]
    assert plan.unproven == {1001, 1002} and plan.requests == 1


def test_targets_not_followed_are_checked_on_the_recheck_interval_not_every_pass() -> None:
    """Checked an hour ago: not due, so no request of their own (a nothing-new pass is the tray alone)."""
    recent = [target(n, followed=False, story_checked_at=NOW - timedelta(hours=1)) for n in (1, 2)]
    plan = planning.plan_story_reads(recent, {}, NOW, recheck=SIX_HOURS, batch_size=20)
    assert plan.batches == [] and plan.per_user == [] and plan.requests == 0


def test_a_due_target_not_followed_makes_a_batch_and_spare_ones_ride_along_without_their_own_read() -> None:
    due = target(1, followed=False, story_checked_at=NOW - timedelta(hours=7))
    soon = target(2, followed=None, story_checked_at=NOW - timedelta(hours=3))
    later = target(3, followed=True, story_checked_at=NOW - timedelta(hours=2))
    plan = planning.plan_story_reads([later, soon, due], {}, NOW, recheck=SIX_HOURS, batch_size=20)
    assert plan.batches == [[1001, 1002, 1003]]  # the due one, then the spare ones, oldest-checked first
    assert plan.per_user == [1001] and plan.unproven == {1001, 1002}


def test_a_target_not_followed_in_the_tray_is_read_as_the_tray_says() -> None:
    """A follow state not known yet, but the tray lists it: nothing newer is settled, newer is batched (proven)."""
    targets = [target(1, followed=None, story_marker=10), target(2, followed=False, story_marker=50)]
    plan = planning.plan_story_reads(targets, {1001: 20, 1002: 50}, NOW, recheck=SIX_HOURS, batch_size=20)
    assert plan.batches == [[1001]] and plan.settled == [1002] and not plan.unproven and plan.per_user == []


def test_private_and_missing_accounts_wait_a_day() -> None:
    private = target(1, followed=False, unavailable="private", last_error_at=NOW - timedelta(hours=2))
    gone = target(2, followed=False, unavailable="not_found", last_error_at=NOW - timedelta(hours=23))
    back = target(3, followed=False, unavailable="private", last_error_at=NOW - timedelta(hours=25))
    plan = planning.plan_story_reads([private, gone, back], {}, NOW, recheck=SIX_HOURS, batch_size=20)
    assert plan.skipped == {1: planning.Skip.PRIVATE, 2: planning.Skip.NOT_FOUND}
    assert plan.batches == [[1003]] and plan.per_user == [1003]


@given(
    states=st.lists(
        st.tuples(
            st.sampled_from([True, False, None]),
            st.one_of(st.none(), st.integers(0, 48)),
            st.booleans(),
            st.integers(0, 30),
        ),
        max_size=60,
    ),
    batch_size=st.integers(1, 25),
)
def test_every_target_is_planned_exactly_once_and_batches_respect_their_size(
    states: list[tuple[bool | None, int | None, bool, int]], batch_size: int
) -> None:
    targets, tray = [], {}
    for n, (followed, hours_ago, in_tray, marker) in enumerate(states, start=1):
        checked = NOW - timedelta(hours=hours_ago) if hours_ago is not None else None
        targets.append(target(n, followed=followed, story_checked_at=checked, story_marker=marker))
        if in_tray:
            tray[1000 + n] = 15
    plan = planning.plan_story_reads(targets, tray, NOW, recheck=SIX_HOURS, batch_size=batch_size)
    batched = [pk for batch in plan.batches for pk in batch]
    assert all(len(batch) <= batch_size for batch in plan.batches)
    planned = batched + plan.settled
    assert len(planned) == len(set(planned))
    for t in targets:
        assert t.user_pk is not None
        due = t.user_pk in tray or planning.is_due(t.story_checked_at, NOW, SIX_HOURS)
        if due:
            assert t.user_pk in planned, t  # nothing due is ever left out
        # a batch answer without it proves nothing only for one not followed that the tray did not list
        unproven = t.user_pk in batched and t.followed is not True and t.user_pk not in tray
        assert (t.user_pk in plan.unproven) is unproven, t
        assert (t.user_pk in plan.per_user) is (unproven and due), t  # due ones get their own read if left out
    if plan.batches:  # only the last batch may have free slots, and only if nothing spare was left
        assert all(len(batch) == batch_size for batch in plan.batches[:-1])


# --- markers and seen ----------------------------------------------------------------------------------


def items(*minutes: int) -> list[StoryItem]:
    return [StoryItem(f"9{m:04d}", 7, NOW - timedelta(minutes=m), False) for m in minutes]


def test_the_marker_never_passes_a_story_that_was_not_handled() -> None:
    stories = items(30, 20, 10)
    stamp = {s.pk: int(s.taken_at.timestamp()) for s in stories}
    assert planning.new_marker(None, stories, {"90030", "90010"}) == stamp["90030"]
    assert planning.new_marker(None, stories, {"90030", "90020", "90010"}) == stamp["90010"]
    assert planning.new_marker(5, stories, set()) == 5


def test_stories_taken_in_the_same_second_move_the_marker_together() -> None:
    same = [StoryItem(pk, 7, NOW, False) for pk in ("1", "2", "3")]  # a segmented video
    assert planning.new_marker(None, same, {"1", "2"}) is None
    assert planning.new_marker(None, same, {"1", "2", "3"}) == int(NOW.timestamp())


def test_a_reel_instagram_had_nothing_for_is_settled_at_the_trays_value() -> None:
    assert planning.new_marker(100, [], set(), settled_at=250) == 250


@given(
    offsets=st.lists(st.tuples(st.integers(0, 86_400), st.integers(-90_000, 600)), min_size=1, max_size=30),
)
def test_seen_stamps_rise_never_precede_their_story_and_never_lie_ahead(offsets: list[tuple[int, int]]) -> None:
    """Whatever the watch starts (even out of order, before a story was taken or after the report is sent)."""
    stories = sorted(
        (StoryItem(str(n), 7, NOW - timedelta(seconds=o), False) for n, (o, _) in enumerate(offsets)),
        key=lambda s: s.taken_at,
    )
    started = [NOW + timedelta(seconds=late) for _, late in offsets]
    stamps = planning.seen_stamps(stories, started, NOW)
    now = int(NOW.timestamp())
    assert stamps == sorted(stamps) and stamps[-1] <= now
    assert all(at >= int(s.taken_at.timestamp()) for at, s in zip(stamps, stories, strict=True))


def test_seen_stamps_are_the_moments_the_watching_began() -> None:
    stories = [StoryItem(str(n), 7, NOW - timedelta(hours=2), False) for n in range(3)]
    started = [NOW - timedelta(seconds=s) for s in (20, 14, 6)]
    assert planning.seen_stamps(stories, started, NOW) == [int(at.timestamp()) for at in started]


@given(duration=st.one_of(st.none(), st.floats(0.01, 3000)), seed=st.integers())
def test_watch_times_and_like_moments(duration: float | None, seed: int) -> None:
    rng = random.Random(seed)
    story = StoryItem("1", 7, NOW, False, duration)
    watch = planning.watch_seconds(story, rng)
    if duration is None:
        assert 5 <= watch <= 7
    else:
        assert watch == max(3, min(duration, planning.VIDEO_WATCH_CAP_SECONDS))
    offset = planning.like_offset(watch, rng)
    assert 1 <= offset <= watch - planning.HOLD_AFTER_LIKE_SECONDS


def test_fair_share_goes_round_robin_oldest_first() -> None:
    busy = [StoryItem(f"a{n}", 1, NOW - timedelta(minutes=n), False) for n in range(10)]
    quiet = [StoryItem("z0", 26, NOW - timedelta(minutes=3), False)]
    chosen = planning.fair_share([*busy, *quiet], 3)
    assert [s.pk for s in chosen] == ["a9", "a8", "z0"]


# --- whole passes in-process ---------------------------------------------------------------------------


@pytest.fixture
def h(store: Store) -> Harness:
    harness = Harness(store, overrides={"target_accounts": "alice,bob,carol"})
    harness.store_session()
    return harness


def test_a_public_account_you_dont_follow_is_read_in_a_batch_on_the_recheck_interval(h: Harness) -> None:
    """usernameinfo carries no friendship status; the following list settles it. Not followed, it is never in the
    tray: checked in a batch when due (reels_media answers for a public account with stories), not every pass, and
    the passes between are the tray alone."""
    h.overrides["target_accounts"] = "alice,stranger"
    alice, stranger = UserRef(101, "alice", True), UserRef(900, "stranger", None)
    reels = {900: [story(900, 1, at=h.clock())]}
    checks, requests = [], []
    for hour in range(12):
        ig = ScriptedInstagram(h.clock, followed=[alice], users={"stranger": stranger}, reels=reels)
        run_stories(h.deps(ig), dry_run=False, max_likes=None)
        if hour == 0:
            assert ig.liked == ["900001"]
        if any(c.name == "reels_media" and 900 in c.arg for c in ig.calls):
            checks.append(h.clock())
        assert "user_stories" not in ig.names()  # in the batch answer: no read of its own
        requests.append(len(ig.calls) - ig.names().count("following_page") - ig.names().count("lookup"))
        h.clock.advance(hours=1)
    assert {t.username: t.followed for t in h.store.targets(ME)} == {"alice": True, "stranger": False}
    assert len(checks) >= 2 and max(b - a for a, b in itertools.pairwise(checks)) <= SIX_HOURS
    assert requests.count(1) >= 12 - len(checks) - 1 and max(requests[1:]) == 2  # tray; tray + batch when due


def test_a_public_account_you_dont_follow_with_no_story_now_is_read_alone_only_when_due(h: Harness) -> None:
    """Left out of the batch answer: no story, private or gone? Its own read says (here: nothing), once per
    recheck interval, not every pass."""
    h.overrides["target_accounts"] = "stranger"
    users = {"stranger": UserRef(900, "stranger", None)}
    own_reads = []
    for _ in range(12):
        ig = ScriptedInstagram(h.clock, followed=[], users=users)
        run_stories(h.deps(ig), dry_run=False, max_likes=None)
        if "user_stories" in ig.names():
            assert [n for n in ig.names() if n != "following_page" and n != "lookup"] == [
                "reels_tray",
                "reels_media",
                "user_stories",
            ]
            own_reads.append(h.clock())
        h.clock.advance(hours=1)
    # every 3 h here, not 6: the horizon (planning.pass_horizon) reads the time since the last pass off the check
    # times, and this lone target is the only one checked; with a tray target checked each pass it is 5 h
    assert 2 <= len(own_reads) <= 4 and max(b - a for a, b in itertools.pairwise(own_reads)) <= SIX_HOURS
    target = h.store.targets(ME)[0]
    assert target.unavailable is None and target.story_checked_at == own_reads[-1]


def test_a_spare_slot_that_comes_back_empty_leaves_a_target_not_followed_unchecked(h: Harness) -> None:
    """A batch goes out for carol; stranger, checked 2 h ago, rides along and is left out of the answer: that proves
    nothing (no story, private, gone), so no read of its own and no check: it stays due on its own interval."""
    h.overrides["target_accounts"] = "carol,stranger"
    users = {"stranger": UserRef(900, "stranger", None)}
    followed = [UserRef(103, "carol", True)]
    run_stories(h.deps(ScriptedInstagram(h.clock, followed=followed, users=users)), dry_run=False, max_likes=None)
    checked = {t.username: t.story_checked_at for t in h.store.targets(ME)}
    h.clock.advance(hours=2)
    h.store.update_targets(
        {t.id or 0: {"story_checked_at": None} for t in h.store.targets(ME) if t.username == "carol"}
    )
    ig = ScriptedInstagram(h.clock, followed=followed, users=users)
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    assert [c.arg for c in ig.calls if c.name == "reels_media"] == [[103, 900]] and "user_stories" not in ig.names()
    after = {t.username: t.story_checked_at for t in h.store.targets(ME)}
    assert after["stranger"] == checked["stranger"] and after["carol"] == h.clock()


def test_with_no_following_walk_an_unknown_target_is_still_checked(h: Harness) -> None:
    h.overrides |= {"target_accounts": "stranger", "following_sync_max_pages": 0}
    ig = ScriptedInstagram(
        h.clock, users={"stranger": UserRef(900, "stranger", None)}, reels={900: [story(900, 1, at=h.clock())]}
    )
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    assert ig.liked == ["900001"]


def test_a_followed_target_the_tray_leaves_out_is_checked_first_then_every_six_hours(h: Harness) -> None:
    followed = [UserRef(101, "alice", True), UserRef(102, "bob", True), UserRef(103, "carol", True)]
    checks: list[datetime] = []
    first = h.clock()
    for _ in range(24):  # a day of hourly passes; the tray never lists carol, who posts every hour
        started = h.clock()  # the pass takes time (it watches what it likes): its start is when it checked
        reels = {pk: [story(pk, 1, at=started)] for pk in (101, 102, 103)}
        tray = [TrayEntry(pk, name, int(started.timestamp())) for pk, name in ((101, "alice"), (102, "bob"))]
        ig = ScriptedInstagram(h.clock, tray=tray, reels=reels, followed=followed)
        run_stories(h.deps(ig), dry_run=False, max_likes=None)
        if any(c.name == "reels_media" and 103 in c.arg for c in ig.calls):
            checks.append(started)
        assert ig.names().count("reels_media") <= 1  # carol rides in the batch sent anyway
        h.clock.advance(hours=1)
    gaps = [b - a for a, b in itertools.pairwise(checks)]
    assert checks[0] == first and max(gaps) <= SIX_HOURS


def test_a_target_unfollowed_since_is_still_read_in_the_batches(h: Harness) -> None:
    """Out of the tray after the unfollow, it is due as any target the tray leaves out: a batch, not a read of its
    own (a public account with stories is in the answer)."""
    h.overrides["target_accounts"] = "alice"
    ig = ScriptedInstagram(h.clock, followed=[UserRef(101, "alice", True)])
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    h.clock.advance(hours=25)  # the daily walk no longer lists alice
    later = ScriptedInstagram(h.clock, followed=[], reels={101: [story(101, 1, at=h.clock())]})
    run_stories(h.deps(later), dry_run=False, max_likes=None)
    assert h.store.targets(ME)[0].followed is False
    assert later.liked == ["101001"] and "user_stories" not in later.names()
    assert [c.arg for c in later.calls if c.name == "reels_media"] == [[101]]


def test_a_reel_missing_from_reels_media_is_settled_and_the_next_pass_is_one_request(h: Harness) -> None:
    h.overrides["target_accounts"] = "alice"
    tray = [TrayEntry(101, "alice", int(h.clock().timestamp()))]
    ig = ScriptedInstagram(h.clock, tray=tray, reels={}, followed=[UserRef(101, "alice", True)])
    assert run_stories(h.deps(ig), dry_run=False, max_likes=None).outcome is Outcome.NOTHING_NEW
    h.clock.advance(minutes=30)
    again = ScriptedInstagram(h.clock, tray=tray, reels={})
    run_stories(h.deps(again), dry_run=False, max_likes=None)
    assert again.names() == ["reels_tray"]


def test_the_newest_story_dropped_as_malformed_keeps_the_reel_open(h: Harness) -> None:
    h.overrides["target_accounts"] = "alice"
    older, newest = story(101, 2, at=h.clock()), story(101, 1, at=h.clock())
    tray = [TrayEntry(101, "alice", int(newest.taken_at.timestamp()))]
    ig = ScriptedInstagram(h.clock, tray=tray, reels={101: [older]}, followed=[UserRef(101, "alice", True)])
    run_stories(h.deps(ig), dry_run=False, max_likes=None)  # the answer lacked the newest story
    again = ScriptedInstagram(h.clock, tray=tray, reels={101: [older, newest]})
    run_stories(h.deps(again), dry_run=False, max_likes=None)
    assert again.liked == [newest.pk]


def test_a_private_account_you_dont_follow_costs_one_request_a_day_and_no_error(h: Harness) -> None:
    h.overrides["target_accounts"] = "locked"
    users = {"locked": UserRef(777, "locked", None)}
    private = TargetUnavailable("locked is private and not followed", reason="private")
    for hours in range(0, 48, 3):
        ig = ScriptedInstagram(h.clock, users=users, followed=[], always={"user_stories": private})
        deps = h.deps(ig)
        run_stories(deps, dry_run=False, max_likes=None)
        assert deps.counts.errors == 0
        assert ig.names().count("user_stories") == (1 if hours in (0, 24) else 0), hours
        h.clock.advance(hours=3)
    assert h.store.targets(ME)[0].unavailable == "private"


def _on_screen(calls: list[Call]) -> list[tuple[Call, int, int]]:
    """Each like with the watching of its story as the seen report that followed it says: (like, from, to) in
    unix seconds; a story's watching ends where the next one's begins, the last one's when the report is sent."""
    found = []
    for index, seen in enumerate(calls):
        if seen.name != "mark_seen":
            continue
        stamps = dict(seen.arg)
        ends = [*[at for _, at in seen.arg][1:], int(seen.at.timestamp()) + 1]
        until = dict(zip(stamps, ends, strict=True))
        for like in calls[:index]:
            if like.name == "like_story" and like.arg in stamps:
                found.append((like, stamps[like.arg], until[like.arg]))
    return found


def test_a_reel_is_watched_each_like_sent_while_its_story_is_on_screen_then_one_seen_report(h: Harness) -> None:
    """As the viewer: a target's stories in order, a photo 5-7 s and a video its length (capped), each liked a
    second or more into it and a second or more before it ends; the pause between likes holds; the seen report,
    sent once the reel is watched, gives the moment each story came on screen."""
    h.overrides |= {"action_delay_min_seconds": 4, "action_delay_max_seconds": 9}
    now = h.clock()
    reels = {
        101: [story(101, n, at=now) for n in (3, 2, 1)],
        102: [replace(story(102, 2, at=now), video_duration=14.5), replace(story(102, 1, at=now), video_duration=95.0)],
    }
    tray = [TrayEntry(pk, name, int(now.timestamp())) for pk, name in ((101, "alice"), (102, "bob"))]
    ig = ScriptedInstagram(h.clock, tray=tray, reels=reels, followed=[UserRef(103, "carol", True)])
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    writes = [c for c in ig.calls if c.name in ("mark_seen", "like_story")]
    assert [c.name for c in writes] == [*["like_story"] * 3, "mark_seen", *["like_story"] * 2, "mark_seen"]
    seen = [c for c in writes if c.name == "mark_seen"]
    assert [pk for pk, _ in seen[0].arg] == ["101003", "101002", "101001"]  # oldest first, as the reel plays
    for report in seen:
        stamps = [at for _, at in report.arg]
        assert stamps == sorted(stamps) and stamps[-1] <= int(report.at.timestamp())
    watched = {pk: b - a for report in seen for (pk, a), (_, b) in pairwise([*report.arg, ("", 0)]) if pk and b}
    assert all(5 - 1 <= watched[pk] <= 7 + 1 + 9 for pk in ("101003", "101002"))  # a photo, or held for a like
    assert watched["102002"] >= 14  # the video's length (whole seconds)
    windows = _on_screen(writes)
    assert len(windows) == 5
    for like, begins, ends in windows:
        assert begins + 1 <= like.at.timestamp() < ends, (like, begins, ends)
    likes = [c.at for c in writes if c.name == "like_story"]
    assert all((b - a).total_seconds() >= 4 for a, b in pairwise(likes))
    last = seen[1]
    assert (last.at - likes[-1]).total_seconds() <= planning.VIDEO_WATCH_CAP_SECONDS + 1  # capped: 95 s is not


def test_a_short_budget_reaches_every_target_with_something_new(h: Harness) -> None:
    h.overrides |= {"target_accounts": "aaron,zoe", "story_likes_per_hour": 2}
    reels = {1: [story(1, n, at=h.clock()) for n in range(1, 9)], 26: [story(26, 1, at=h.clock())]}
    tray = [TrayEntry(1, "aaron", int(h.clock().timestamp())), TrayEntry(26, "zoe", int(h.clock().timestamp()))]
    ig = ScriptedInstagram(h.clock, tray=tray, reels=reels)
    assert run_stories(h.deps(ig), dry_run=False, max_likes=None).outcome is Outcome.BUDGET_USED_UP
    assert sorted(ig.liked) == sorted(["1008", "26001"])  # aaron's oldest and zoe's: not aaron's two oldest


def test_a_failed_batch_checks_nothing_and_counts_an_error(h: Harness) -> None:
    h.overrides["target_accounts"] = "alice"
    tray = [TrayEntry(101, "alice", int(h.clock().timestamp()))]
    ig = ScriptedInstagram(h.clock, tray=tray, always={"reels_media": BadResponse("no reels object")})
    deps = h.deps(ig)
    run_stories(deps, dry_run=False, max_likes=None)
    assert deps.counts.errors == 1 and h.store.targets(ME)[0].story_checked_at is None


def test_status_shows_when_each_target_was_checked_and_liked_and_flags_the_overdue(h: Harness) -> None:
    from story_liker.status import status_data, status_text

    h.overrides["target_accounts"] = "alice,locked,ghost"
    users = {"locked": UserRef(777, "locked", None)}
    reels = {101: [story(101, 1, at=h.clock())]}
    tray = [TrayEntry(101, "alice", int(h.clock().timestamp()))]
    ig = ScriptedInstagram(
        h.clock,
        tray=tray,
        reels=reels,
        users=users,
        followed=[UserRef(101, "alice", True)],
        always={"user_stories": TargetUnavailable("private", reason="private")},
    )
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    h.clock.advance(hours=7)
    data = status_data(h.deps(ScriptedInstagram(h.clock)))
    rows = {t["username"]: t for t in data["targets"]}
    assert rows["alice"]["stories_last_liked_at"] is not None and rows["alice"]["stories_overdue"]
    assert rows["locked"]["not_checked_because"] == "private_not_followed" and not rows["locked"]["stories_overdue"]
    assert rows["ghost"]["not_checked_because"] == "not_found"  # its lookup found no such user: rechecked daily
    text = status_text(data)
    assert (
        "1 target(s) not checked for stories within 6 h" in text and "private and not followed: rechecked daily" in text
    )


def test_status_text_is_for_people_relative_times_problems_first_long_lists_capped(h: Harness) -> None:
    from story_liker.status import status_data, status_text

    names = [f"user{n:03d}" for n in range(30)]
    h.overrides["target_accounts"] = ",".join(names)
    ig = ScriptedInstagram(h.clock, followed=[UserRef(1000 + n, name, True) for n, name in enumerate(names)])
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    h.clock.advance(minutes=29)
    text = status_text(status_data(h.deps(ScriptedInstagram(h.clock))))
    assert "(29 min ago)" in text and "problems     none" in text
    assert "... and 10 more (`status --json` lists all)" in text


def test_fair_share_remembers_earlier_passes() -> None:
    busy = [StoryItem(f"a{n}", 1, NOW - timedelta(hours=20 - n), False) for n in range(5)]
    quiet = [StoryItem("z0", 26, NOW - timedelta(hours=1), False)]
    assert [s.pk for s in planning.fair_share([*busy, *quiet], 1)] == ["a0"]  # no history: the oldest story
    liked_lately = {1: NOW - timedelta(minutes=50)}
    assert [s.pk for s in planning.fair_share([*busy, *quiet], 1, liked_lately)] == ["z0"]


def test_a_busy_target_does_not_take_a_slot_in_every_pass(h: Harness) -> None:
    h.overrides |= {"target_accounts": "busy,quiet1,quiet2,quiet3", "story_likes_per_hour": 1}
    names = {1: "busy", 2: "quiet1", 3: "quiet2", 4: "quiet3"}
    reels = {1: [story(1, n, at=h.clock()) for n in range(10, 30)]} | {
        pk: [story(pk, 1, at=h.clock())] for pk in (2, 3, 4)
    }
    liked: list[str] = []
    for _ in range(4):  # one like per hourly pass
        tray = [
            TrayEntry(pk, names[pk], int(max(s.taken_at for s in items).timestamp())) for pk, items in reels.items()
        ]
        ig = ScriptedInstagram(h.clock, tray=tray, reels=reels, followed=[])
        run_stories(h.deps(ig), dry_run=False, max_likes=None)
        liked += ig.liked
        h.clock.advance(hours=1)
    assert {pk[0] for pk in liked} == {"1", "2", "3", "4"}, liked  # every target within four passes


def test_the_recheck_interval_holds_between_passes_too(h: Harness) -> None:
    """Passes every 3 h 20 min: a target the tray never lists is never left unchecked for more than 6 h."""
    h.overrides["target_accounts"] = "alice,carol"
    followed = [UserRef(101, "alice", True), UserRef(103, "carol", True)]
    checks = []
    for _ in range(12):
        tray = [TrayEntry(101, "alice", 1)]
        ig = ScriptedInstagram(h.clock, tray=tray, reels={}, followed=followed)
        run_stories(h.deps(ig), dry_run=False, max_likes=None)
        if any(c.name == "reels_media" and 103 in c.arg for c in ig.calls):
            checks.append(h.clock())
        h.clock.advance(hours=3, minutes=20)
    assert max(b - a for a, b in itertools.pairwise(checks)) <= SIX_HOURS


# --- the tray as the app asks for it ---------------------------------------------------------------------------


def test_the_tray_reason_is_cold_start_after_half_an_hour_without_a_request() -> None:
    assert planning.tray_reason(None, NOW) == "cold_start"  # never: the app was never open
    assert planning.tray_reason(NOW - timedelta(minutes=29, seconds=59), NOW) == "pull_to_refresh"
    assert planning.tray_reason(NOW - planning.APP_CLOSED_AFTER, NOW) == "cold_start"
    assert planning.tray_reason(NOW, NOW) == "pull_to_refresh"
    assert planning.tray_reason(NOW + timedelta(minutes=5), NOW) == "cold_start"  # the clock went back: not known


def tray_reasons(ig: ScriptedInstagram) -> list[Any]:
    return [c.arg for c in ig.calls if c.name == "reels_tray"]


def test_a_pass_asks_the_tray_cold_after_a_while_and_refreshes_it_right_after_another(h: Harness) -> None:
    """The stored session's time (saved at the end of every run that talked to Instagram) is the account's last
    request before a run; an hourly timer starts cold, a pass a few minutes after another refreshes."""
    tray = [TrayEntry(101, "alice", 1)]
    reasons = []
    for minutes in (0, 45, 10, 29, 31):  # the session was stored (a login) right before the first
        h.clock.advance(minutes=minutes)
        ig = ScriptedInstagram(h.clock, tray=tray, followed=[UserRef(101, "alice", True)])
        run_stories(h.deps(ig), dry_run=False, max_likes=None)
        reasons += tray_reasons(ig)
    assert reasons == ["pull_to_refresh", "cold_start", "pull_to_refresh", "pull_to_refresh", "cold_start"]


def test_a_run_that_logs_in_first_refreshes_the_tray_the_login_opened(store: Store) -> None:
    """No stored session: the login's own requests come first (instagrapi's login flow asks the tray cold), so the
    pass's tray is a refresh; a session that expired mid-pass is logged in again and the pass's second tray too."""
    from story_liker.errors import SessionExpired

    h = Harness(store, overrides={"target_accounts": "alice", "ig_password": "pw"})
    ig = ScriptedInstagram(h.clock, tray=[TrayEntry(101, "alice", 1)], followed=[UserRef(101, "alice", True)])
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    assert ig.names()[:2] == ["relogin", "reels_tray"] and tray_reasons(ig) == ["pull_to_refresh"]

    h.clock.advance(hours=25)  # past AUTO_LOGIN_MIN_HOURS: a second unattended login is allowed
    expired = SessionExpired("login_required")
    again = ScriptedInstagram(h.clock, tray=[TrayEntry(101, "alice", 1)], script={"reels_tray": [expired]})
    run_stories(h.deps(again), dry_run=False, max_likes=None)
    assert tray_reasons(again) == ["cold_start", "pull_to_refresh"] and "relogin" in again.names()
