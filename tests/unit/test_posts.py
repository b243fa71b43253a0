"""Posts without opening every profile: the sweep schedule (pure) and whole post passes in-process, with the
home feed first and the rotating sweep for completeness."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from story_liker import planning
from story_liker.errors import BadResponse, ConfigError, TargetUnavailable
from story_liker.ig.types import PostItem, UserRef
from story_liker.jobs.deps import Outcome
from story_liker.jobs.posts import run_posts
from story_liker.models import Target
from story_liker.settings import load
from story_liker.store import Store
from tests.fake import ME, START, Harness, ScriptedInstagram

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def target(n: int, **values: Any) -> Target:
    return Target(id=n, account=ME, username=f"user{n}", user_pk=1000 + n, **values)


def plan(targets: list[Target], now: datetime = NOW, *, pages: int = 2) -> planning.PostPlan:
    return planning.plan_post_reads(targets, now, recheck=DAY, timeline_pages=pages)


# --- the sweep schedule -------------------------------------------------------------------------------


def test_targets_added_a_day_ago_and_never_read_are_all_read_at_once() -> None:
    """Their first reads' times (spread over the recheck from when they were added) are all past."""
    targets = [target(n, followed=True, added_at=NOW - DAY) for n in range(1, 51)]
    got = plan(targets)
    assert got.timeline and sorted(got.sweep) == [t.user_pk for t in targets]


def test_a_first_pass_of_new_targets_reads_the_first_of_them_not_all() -> None:
    """500 targets added now: the first at once, the others at their own times over the next 24 h."""
    targets = [target(n, followed=True, added_at=NOW) for n in range(1, 501)]
    assert plan(targets).sweep == [1001]
    later = plan(targets, NOW + timedelta(hours=3))  # 3 h on: the first 1/8 of them are due (63 of 500)
    assert later.sweep == [1000 + n for n in range(1, 64)]


def test_first_reads_are_spaced_evenly_per_group_added_together_and_never_move() -> None:
    four = [target(n, followed=True, added_at=NOW) for n in range(1, 5)]
    two = [target(n, followed=True, added_at=NOW + timedelta(hours=5)) for n in (8, 9)]  # an `accounts add` later
    four[1].post_checked_at = NOW + timedelta(hours=1)  # read already (its turn came early, or the timeline's pass)
    due = planning.first_read_at([*four, *two], DAY)
    hours = {n: (at - NOW) / timedelta(hours=1) for n, at in due.items()}
    assert hours == {1: 0, 3: 12, 4: 18, 8: 5, 9: 17}  # 2, read, keeps its place: the others do not move up
    assert planning.first_read_at([target(7, followed=True)], DAY)[7] <= NOW  # no added_at: due at once


def test_first_reads_due_count_towards_the_share_and_the_rest_of_the_share_rotates() -> None:
    """Half read a day ago (the rotation), half added 3 h ago: 3 h of a 24 h recheck is ceil(16 * 3 / 24) = 2
    reads; the new ones due (the first of 8 at once, the second at 3 h) take both, the rotation waits."""
    old = [
        target(n, followed=True, added_at=NOW - 2 * DAY, post_checked_at=NOW - DAY + timedelta(hours=4, minutes=n))
        for n in range(1, 9)
    ]
    new = [target(10 + n, followed=True, added_at=NOW - timedelta(hours=3)) for n in range(8)]
    old[0].post_checked_at = NOW - timedelta(hours=3)  # the last pass, 3 h ago
    assert plan([*old, *new]).sweep == [1010, 1011]


def test_a_steady_pass_reads_its_share_oldest_checked_first() -> None:
    """500 followed targets, the last pass 3 hours ago: 1/8 of them, ceil(500 / 8) = 63."""
    targets = [
        target(n, followed=True, post_checked_at=NOW - timedelta(hours=3) - timedelta(minutes=n % 500 * 2.5))
        for n in range(1, 501)
    ]
    got = plan(targets)
    assert len(got.sweep) == math.ceil(500 / 8)
    oldest = sorted(targets, key=lambda t: t.post_checked_at or NOW)[:63]
    assert got.sweep == [t.user_pk for t in oldest]


def test_overdue_and_never_checked_targets_are_read_whatever_the_share() -> None:
    recent = [target(n, followed=True, post_checked_at=NOW - timedelta(minutes=10)) for n in range(1, 41)]
    overdue = [target(50 + n, followed=True, post_checked_at=NOW - DAY - timedelta(minutes=n)) for n in range(3)]
    never = [target(60, followed=True)]
    got = plan([*recent, *overdue, *never])
    # the share of a 10-minute gap is ceil(44 * 10 / 1440) = 1, but 4 are overdue or never read
    assert got.sweep == [1060, 1052, 1051, 1050]


def test_targets_not_followed_are_read_every_pass_and_unknown_is_not_followed() -> None:
    recent = dict(post_checked_at=NOW - timedelta(minutes=5))
    got = plan([target(1, followed=False, **recent), target(2, followed=None, **recent)])
    assert got.sweep == [1001, 1002] and not got.timeline  # nobody followed: no home feed


def test_no_home_feed_when_it_is_turned_off() -> None:
    assert not plan([target(1, followed=True)], pages=0).timeline


def test_unresolved_private_and_missing_targets_wait_as_for_stories() -> None:
    unresolved = Target(id=1, account=ME, username="ghost", followed=True)
    private = target(2, followed=False, unavailable="private", last_error_at=NOW - timedelta(hours=2))
    back = target(3, followed=False, unavailable="not_found", last_error_at=NOW - timedelta(hours=25))
    got = plan([unresolved, private, back])
    assert got.skipped == {1: planning.Skip.UNRESOLVED, 2: planning.Skip.PRIVATE} and got.sweep == [1003]


@pytest.mark.parametrize(("targets", "hours"), [(50, 1), (500, 3), (500, 1), (37, 3)])
def test_over_a_week_every_profile_is_read_within_the_recheck_and_each_pass_reads_its_share(
    targets: int, hours: int
) -> None:
    """Simulated timer passes with a random delay of up to 10 minutes: no followed target goes longer than
    POST_RECHECK_HOURS plus one gap between reads, and a steady pass reads about n * gap / 24 h profiles."""
    rng = random.Random(targets * hours)
    state = [target(n, followed=True, added_at=NOW) for n in range(1, targets + 1)]
    by_pk = {t.user_pk: t for t in state}
    now, reads, worst = NOW, [], timedelta(0)
    for _ in range(7 * 24 // hours):
        got = plan(state, now)
        for pk in got.sweep:
            t = by_pk[pk]
            worst = max(worst, now - (t.post_checked_at or NOW))  # a first read: from when it was added
            t.post_checked_at = now
        reads.append(len(got.sweep))
        now += timedelta(hours=hours, minutes=rng.uniform(0, 10))
    assert reads[0] == 1  # the first of the new targets; the others at their times over the first day
    assert max(reads[: 24 // hours]) <= math.ceil(targets * (hours + 1 / 6) / 24) + 1, reads
    assert worst <= DAY + timedelta(hours=hours, minutes=10), worst
    steady = reads[24 // hours + 1 :]
    assert max(steady) <= math.ceil(targets * (hours + 1 / 6) / 24) + 1, steady
    for t in state:  # and nobody was forgotten
        assert t.post_checked_at is not None and now - t.post_checked_at <= DAY + timedelta(hours=hours, minutes=10)


# --- whole passes ---------------------------------------------------------------------------------------

ALICE, BOB, CAROL = 101, 102, 103
NAMES = {ALICE: "alice", BOB: "bob", CAROL: "carol"}


def post(user_pk: int, n: int, *, hours_ago: float = 1, **values: Any) -> PostItem:
    fields: dict[str, Any] = {"media_type": "photo", "has_liked": False} | values
    return PostItem(f"{user_pk}{n:04d}", user_pk, START - timedelta(hours=hours_ago), **fields)


@pytest.fixture
def h(store: Store) -> Harness:
    harness = Harness(store, overrides={"target_accounts": "alice,bob,carol"})
    harness.store_session()
    harness.added_earlier()  # a day ago: every first read due (the spread of new targets' first reads: own tests)
    return harness


def instagram(h: Harness, **values: Any) -> ScriptedInstagram:
    followed = [UserRef(pk, name, True) for pk, name in NAMES.items()]
    return ScriptedInstagram(h.clock, followed=followed, **values)


def posts(h: Harness, ig: ScriptedInstagram, *, dry_run: bool = False) -> Outcome:
    outcome = run_posts(h.deps(ig), dry_run=dry_run, max_likes=None).outcome
    assert isinstance(outcome, Outcome)
    return outcome


def steady(h: Harness) -> None:
    """A first pass with nothing new (every profile read once), then three hours pass."""
    assert posts(h, instagram(h)) is Outcome.NOTHING_NEW
    h.clock.advance(hours=3)


def test_the_home_feed_comes_first_and_the_sweep_reads_only_its_share(h: Harness) -> None:
    steady(h)
    new = post(ALICE, 1)
    ig = instagram(h, timeline=[[new, post(999, 1)], [post(BOB, 2, has_liked=True)]])
    assert posts(h, ig) is Outcome.OK
    assert ig.liked == [new.pk]  # the stranger's post (an ad or a suggestion) is never liked
    # the share of 3 targets after 3 hours: ceil(3 * 3 / 24) = 1 profile, the one read longest ago
    assert ig.names() == ["timeline_page", "timeline_page", "user_posts", "like_post"]


def test_at_most_post_timeline_pages_pages(h: Harness) -> None:
    h.overrides["post_timeline_pages"] = 1
    steady(h)
    ig = instagram(h, timeline=[[post(ALICE, 1)], [post(BOB, 2)]])
    posts(h, ig)
    assert ig.names().count("timeline_page") == 1 and ig.liked == [post(ALICE, 1).pk]


def test_the_first_pass_reads_the_home_feed_and_every_profile_and_likes_each_post_once(h: Harness) -> None:
    both = post(ALICE, 1)
    ig = instagram(h, timeline=[[both, post(CAROL, 3)]], posts={ALICE: [both, post(ALICE, 2, hours_ago=30)]})
    assert posts(h, ig) is Outcome.OK
    assert sorted(ig.liked) == sorted([both.pk, post(ALICE, 2).pk, post(CAROL, 3).pk])
    assert ig.names().count("user_posts") == 3 and ig.names().count("like_post") == 3


def test_a_post_liked_from_the_home_feed_is_not_liked_again_when_its_profile_comes_round(h: Harness) -> None:
    steady(h)
    new = post(CAROL, 1)
    ig = instagram(h, timeline=[[new]])
    posts(h, ig)
    assert ig.liked == [new.pk]
    for _ in range(8):  # a day of 3-hourly passes: every profile comes round, carol's too
        h.clock.advance(hours=3)
        again = instagram(h, posts={CAROL: [new]})
        posts(h, again)
        assert again.liked == []
    carol = next(t for t in h.store.targets(ME) if t.username == "carol")
    assert carol.post_marker == int(new.taken_at.timestamp())


def test_a_post_the_home_feed_missed_is_liked_by_the_sweep_within_a_day(h: Harness) -> None:
    steady(h)
    missed = post(BOB, 7, hours_ago=3)
    liked_at = None
    for n in range(9):
        ig = instagram(h, posts={BOB: [missed]})  # the ranked home feed never shows it
        posts(h, ig)
        if ig.liked:
            liked_at = n
            assert ig.liked == [missed.pk]
            break
        h.clock.advance(hours=3)
    assert liked_at is not None and liked_at <= 8


def test_a_collab_post_found_through_a_co_author_is_liked_once_for_that_target(h: Harness) -> None:
    steady(h)
    collab = post(555, 1, coauthors=(BOB,))  # authored by someone else, bob is a co-author
    ig = instagram(h, timeline=[[collab, collab]])
    posts(h, ig)
    assert ig.liked == [collab.pk]


def test_old_posts_of_the_home_feed_and_excluded_media_types_are_not_liked(h: Harness) -> None:
    h.overrides["post_media_types"] = "photo,album"
    steady(h)
    old = post(ALICE, 1, hours_ago=24 * 4)
    reel = post(BOB, 2, media_type="reel")
    ig = instagram(h, timeline=[[old, reel, post(CAROL, 3, media_type="album")]])
    posts(h, ig)
    assert ig.liked == [post(CAROL, 3).pk]


def test_a_failed_home_feed_does_not_stop_the_sweep(h: Harness) -> None:
    steady(h)
    ig = instagram(h, timeline=[[post(ALICE, 1)]], posts={ALICE: [post(ALICE, 1)]})
    ig.script["timeline_page"] = [BadResponse("timeline: the answer is not a JSON object")]
    report = run_posts(h.deps(ig), dry_run=False, max_likes=None)
    assert report.counts.errors == 1
    assert ig.names()[:2] == ["timeline_page", "user_posts"] and ig.names().count("timeline_page") == 1


def test_the_home_feed_does_not_move_markers_the_sweep_does(h: Harness) -> None:
    steady(h)
    seen_only_in_feed = post(CAROL, 1)
    posts(h, instagram(h, timeline=[[seen_only_in_feed]]))
    targets = {t.username: t for t in h.store.targets(ME)}
    swept = [t for t in targets.values() if t.post_checked_at == h.clock()]
    assert len(swept) == 1 and swept[0].username != "carol"  # carol's profile was not read this pass
    assert targets["carol"].post_marker is None


def test_a_dry_run_reads_but_changes_no_check_time(h: Harness) -> None:
    steady(h)
    before = {t.username: t.post_checked_at for t in h.store.targets(ME)}
    ig = instagram(h, timeline=[[post(ALICE, 1)]])
    assert posts(h, ig, dry_run=True) is Outcome.DRY_RUN and ig.liked == []
    assert {t.username: t.post_checked_at for t in h.store.targets(ME)} == before


def test_a_private_profile_is_not_an_error_and_waits_a_day(h: Harness) -> None:
    h.overrides["target_accounts"] = "alice"
    ig = ScriptedInstagram(h.clock, followed=[], users={"alice": UserRef(ALICE, "alice", False)})
    ig.script["user_posts"] = [TargetUnavailable("alice is private", reason="private")]
    report = run_posts(h.deps(ig), dry_run=False, max_likes=None)
    assert report.counts.errors == 0 and ig.names().count("user_posts") == 1
    h.clock.advance(hours=3)
    again = ScriptedInstagram(h.clock, followed=[], users={"alice": UserRef(ALICE, "alice", False)})
    run_posts(h.deps(again), dry_run=False, max_likes=None)
    assert "user_posts" not in again.names()


def test_a_short_budget_is_shared_across_targets_whichever_way_their_posts_came(h: Harness) -> None:
    h.overrides |= {"post_likes_per_hour": 2, "warmup_days": 0, "daily_limit_variation_percent": 0}
    steady(h)
    timeline = [post(ALICE, n, hours_ago=1 + n / 10) for n in range(3)]
    ig = instagram(h, timeline=[timeline], posts={BOB: [post(BOB, 9, hours_ago=2)], CAROL: [post(CAROL, 9)]})
    h.overrides["post_recheck_hours"] = 3  # every profile this pass
    assert posts(h, ig) is Outcome.BUDGET_USED_UP
    assert len({pk[:3] for pk in ig.liked}) == 2  # two targets, one like each, not two of alice's


def test_post_recheck_longer_than_the_post_age_limit_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="POST_RECHECK_HOURS"):
        load(ig_username=ME, post_recheck_hours=96, post_max_age_days=3)
    assert load(ig_username=ME, post_recheck_hours=72, post_max_age_days=3).post_recheck == timedelta(hours=72)


def test_status_shows_when_each_profile_was_read_and_liked_and_flags_the_late_ones(h: Harness) -> None:
    from story_liker import status

    steady(h)
    ig = instagram(h, timeline=[[post(BOB, 1)]])
    posts(h, ig)
    data = status.status_data(h.deps(ig))
    by_name = {t["username"]: t for t in data["targets"]}
    assert by_name["bob"]["posts_last_liked_at"] == h.clock().isoformat()
    assert by_name["alice"]["posts_checked_at"] == h.clock().isoformat()  # this pass's share of the sweep
    assert not any(t["posts_overdue"] for t in data["targets"])
    assert "posts read" in status.status_text(data)
    h.store.start_run("r1", account=ME, command="run-posts", now=h.clock())  # as the CLI records each run
    h.store.finish_run("r1", exit_code=0, outcome="ok", counts={}, now=h.clock())
    h.clock.advance(hours=28)  # the timer stopped: 31 h since the first pass read bob and carol, 28 h alice
    data = status.status_data(h.deps(ig))
    assert sorted(t["username"] for t in data["targets"] if t["posts_overdue"]) == ["bob", "carol"]
    assert "2 target(s) whose posts were not read within 30 h" in status.status_text(data)


def test_a_home_feed_showing_only_posts_liked_before_is_nothing_new(h: Harness) -> None:
    steady(h)
    new = post(ALICE, 1)
    assert posts(h, instagram(h, timeline=[[new]])) is Outcome.OK
    h.clock.advance(hours=3)
    again = instagram(h, timeline=[[new, post(BOB, 2, has_liked=True)]])
    assert posts(h, again) is Outcome.NOTHING_NEW and again.liked == []


# --- a busy profile: pinned posts on top, more new posts than a page holds -------------------------------


def test_a_page_may_hide_more_only_when_even_its_oldest_unpinned_post_is_new_and_young() -> None:
    oldest = START - timedelta(days=3)
    pinned = post(ALICE, 9, hours_ago=24 * 300, pinned=True)
    page = [pinned, post(ALICE, 1, hours_ago=2), post(ALICE, 2, hours_ago=5)]
    marker = int((START - timedelta(hours=10)).timestamp())
    assert planning.more_posts_beyond(page, "next", marker, oldest)
    assert not planning.more_posts_beyond(page, None, marker, oldest)  # no next page
    assert not planning.more_posts_beyond(page, "next", int((START - timedelta(hours=4)).timestamp()), oldest)
    assert not planning.more_posts_beyond(page, "next", None, START - timedelta(hours=3))  # the rest is too old
    assert not planning.more_posts_beyond([pinned], "next", marker, oldest)


def test_pinned_posts_and_a_busy_day_do_not_push_a_new_post_off_the_page(h: Harness) -> None:
    """Three pinned posts and four new ones, six to a page: the pass scrolls to the second page, likes all four
    and the marker passes them (before, the fourth was never seen and the marker skipped it for good)."""
    h.overrides |= {"target_accounts": "alice", "post_feed_count": 6}
    pinned = [post(ALICE, 90 + n, hours_ago=24 * (100 + n), pinned=True) for n in range(3)]
    new = [post(ALICE, n, hours_ago=1 + n) for n in range(4)]
    ig = ScriptedInstagram(h.clock, followed=[UserRef(ALICE, "alice", True)], posts={ALICE: [*pinned, *new]})
    assert posts(h, ig) is Outcome.OK
    assert sorted(ig.liked) == sorted(p.pk for p in new)
    assert [c.arg for c in ig.calls if c.name == "user_posts"] == [ALICE, (ALICE, "6")]
    [alice] = h.store.targets(ME)
    assert alice.post_marker == int(new[0].taken_at.timestamp())


def test_a_profile_is_scrolled_at_most_profile_pages_deep(h: Harness) -> None:
    h.overrides |= {"target_accounts": "alice", "post_feed_count": 2}
    many = [post(ALICE, n, hours_ago=1 + n) for n in range(20)]
    ig = ScriptedInstagram(h.clock, followed=[UserRef(ALICE, "alice", True)], posts={ALICE: many})
    posts(h, ig)
    assert ig.names().count("user_posts") == planning.PROFILE_PAGES
    assert len(ig.liked) == 2 * planning.PROFILE_PAGES


def test_a_failed_second_page_keeps_the_first_pages_likes_and_the_marker(h: Harness) -> None:
    h.overrides |= {"target_accounts": "alice", "post_feed_count": 2}
    many = [post(ALICE, n, hours_ago=1 + n) for n in range(4)]
    ig = ScriptedInstagram(h.clock, followed=[UserRef(ALICE, "alice", True)], posts={ALICE: many})
    ig.script["user_posts"] = [None, BadResponse("user_posts: items is not a list")]
    report = run_posts(h.deps(ig), dry_run=False, max_likes=None)
    assert report.counts.errors == 1 and sorted(ig.liked) == sorted(p.pk for p in many[:2])
    [alice] = h.store.targets(ME)
    assert alice.post_marker is None  # the next read looks again at what this one could not reach
    h.clock.advance(hours=25)
    again = ScriptedInstagram(h.clock, followed=[UserRef(ALICE, "alice", True)], posts={ALICE: many})
    posts(h, again)
    assert sorted(again.liked) == sorted(p.pk for p in many[2:])


def test_new_targets_profiles_are_read_over_the_recheck_and_every_post_is_liked_before_it_ages_out(
    store: Store,
) -> None:
    """Eight targets added now, none in the home feed, each posting every 6 h; a pass every 3 h for two days. The
    first pass reads one profile, not eight; every profile is first read within POST_RECHECK_HOURS (plus the gap
    to the next pass) of being added, and every post is liked within that of being taken: long before the
    three days of POST_MAX_AGE_DAYS."""
    names = {200 + n: f"new{n}" for n in range(8)}
    h = Harness(store, overrides={"target_accounts": ",".join(names.values())})
    h.store_session()
    start, gap = h.clock(), timedelta(hours=3)
    followed = [UserRef(pk, name, True) for pk, name in names.items()]
    feeds: dict[int, list[PostItem]] = {pk: [] for pk in names}
    first_read: dict[int, datetime] = {}
    taken: dict[str, datetime] = {}
    liked: dict[str, datetime] = {}
    for step in range(16):
        for pk in names:
            if step % 2 == pk % 2:
                new = PostItem(f"{pk}{step:04d}", pk, h.clock() - timedelta(minutes=10), "photo", False)
                feeds[pk].insert(0, new)
                taken[new.pk] = new.taken_at
        ig = ScriptedInstagram(h.clock, followed=followed, posts={pk: list(feed) for pk, feed in feeds.items()})
        run_posts(h.deps(ig), dry_run=False, max_likes=None)
        reads = [c for c in ig.calls if c.name == "user_posts"]
        if step == 0:
            assert len(reads) == 1, ig.names()
        for call in reads:
            first_read.setdefault(int(call.arg), call.at)
        liked |= {str(c.arg): c.at for c in ig.calls if c.name == "like_post"}
        h.clock.advance(hours=3)
    assert set(first_read) == set(names) and max(first_read.values()) - start <= DAY + gap
    per_pass = Counter(at.replace(minute=0, second=0, microsecond=0) for at in first_read.values())
    assert max(per_pass.values()) <= 2  # spread: a share of ceil(8 x 3 / 24) = 1 first read a pass, 2 at most
    late = h.clock() - DAY - gap  # taken earlier than this: its profile came round since
    assert all(pk in liked for pk, at in taken.items() if at < late)
    assert max(liked[pk] - taken[pk] for pk in liked) <= DAY + gap + timedelta(minutes=10)


def test_status_does_not_flag_a_new_targets_profile_waiting_for_its_first_read(store: Store) -> None:
    """Its first read is due within POST_RECHECK_HOURS of its addition: late a quarter after that, not at once."""
    from story_liker import status

    h = Harness(store, overrides={"target_accounts": "alice,bob,carol"})
    h.store_session()
    posts(h, instagram(h))  # reads alice's profile; bob's and carol's come 8 h and 16 h on
    h.store.start_run("r1", account=ME, command="run-posts", now=h.clock())  # as the CLI records each run
    h.store.finish_run("r1", exit_code=0, outcome="ok", counts={}, now=h.clock())
    data = status.status_data(h.deps(instagram(h)))
    assert [t["posts_checked_at"] is None for t in data["targets"]] == [False, True, True]
    assert not any(t["posts_overdue"] for t in data["targets"])
    h.clock.advance(hours=31)  # no pass since: every one late now, the never-read ones too
    data = status.status_data(h.deps(instagram(h)))
    assert all(t["posts_overdue"] for t in data["targets"])
    assert "3 target(s) whose posts were not read within 30 h" in status.status_text(data)
