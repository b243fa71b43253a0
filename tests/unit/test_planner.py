"""The like planner in-process: fairness, caps and chance, `*`, active hours, adaptive limits, warm-up, days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from story_liker import planning, ratelimit
from story_liker.errors import Throttled, ThrottleKind
from story_liker.health import block_end
from story_liker.ig.types import PostItem, StoryItem, TrayEntry, UserRef
from story_liker.jobs.deps import Outcome
from story_liker.jobs.maintenance import keepalive
from story_liker.jobs.posts import run_posts
from story_liker.jobs.stories import run_stories
from story_liker.models import STORY_LIKE
from story_liker.settings import parse_active_hours
from story_liker.status import status_data
from story_liker.store import Store
from tests.fake import ME, Harness, ScriptedInstagram, story

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def h(store: Store) -> Harness:
    harness = Harness(store, overrides={"target_accounts": "alice,bob"})
    harness.store_session()
    return harness


def tray_for(h: Harness, reels: dict[int, list[StoryItem]], names: dict[int, str]) -> list[TrayEntry]:
    """The tray as Instagram gives it: latest_reel_media is the newest story's taken_at."""
    return [TrayEntry(pk, names[pk], int(max(s.taken_at for s in items).timestamp())) for pk, items in reels.items()]


# --- caps and chance --------------------------------------------------------------------------------------


def test_the_cap_keeps_the_newest_n_and_records_the_rest_as_skipped(h: Harness) -> None:
    h.overrides["story_max_per_target"] = 2
    reels = {101: [story(101, n, at=h.clock()) for n in range(1, 6)]}  # n=1 newest
    ig = ScriptedInstagram(h.clock, tray=tray_for(h, reels, {101: "alice"}), reels=reels, followed=[])
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    assert sorted(ig.liked) == ["101001", "101002"]
    again = ScriptedInstagram(h.clock, tray=tray_for(h, reels, {101: "alice"}), reels=reels)
    assert run_stories(h.deps(again), dry_run=False, max_likes=None).outcome is Outcome.NOTHING_NEW
    assert again.liked == [] and again.names() == ["reels_tray"]  # the skipped ones are handled for good


def test_chance_skips_are_deterministic_recorded_and_never_retried(h: Harness) -> None:
    h.overrides["story_like_probability"] = 0.5
    reels = {101: [story(101, n, at=h.clock()) for n in range(1, 21)]}
    names = {101: "alice"}
    dry = ScriptedInstagram(h.clock, tray=tray_for(h, reels, names), reels=reels, followed=[])
    dry_deps = h.deps(dry)
    run_stories(dry_deps, dry_run=True, max_likes=None)
    real = ScriptedInstagram(h.clock, tray=tray_for(h, reels, names), reels=reels)
    deps = h.deps(real)
    run_stories(deps, dry_run=False, max_likes=None)
    expected = [s.pk for s in reels[101] if not planning.skipped_by_chance(ME, s.pk, 0.5)]
    assert 0 < len(real.liked) < 20 and sorted(real.liked) == sorted(expected)
    assert dry_deps.counts.would_like == len(real.liked) and deps.counts.left_out == 20 - len(real.liked)
    later = ScriptedInstagram(h.clock, tray=tray_for(h, reels, names), reels=reels)
    run_stories(h.deps(later), dry_run=False, max_likes=None)
    assert later.liked == []


def test_posts_share_a_short_budget_round_robin_and_respect_their_cap(h: Harness) -> None:
    h.overrides |= {"post_likes_per_hour": 3, "post_max_per_target": 4}
    h.added_earlier()  # both profiles' first reads due

    def post(user: int, n: int) -> PostItem:
        return PostItem(f"{user}{n:03d}", user, h.clock() - timedelta(hours=n), "photo", False)

    ig = ScriptedInstagram(
        h.clock,
        followed=[UserRef(101, "alice", True), UserRef(102, "bob", True)],
        posts={101: [post(101, n) for n in range(1, 7)], 102: [post(102, 1)]},
    )
    assert run_posts(h.deps(ig), dry_run=False, max_likes=None).outcome is Outcome.BUDGET_USED_UP
    assert "102001" in ig.liked and len(ig.liked) == 3  # bob is not starved by alice's six posts
    assert not {"101005", "101006"} & set(ig.liked)  # beyond alice's newest 4: left out


# --- everyone I follow --------------------------------------------------------------------------------


def test_everyone_in_the_tray_with_exclusions_and_extra_names_costs_no_extra_request(h: Harness) -> None:
    h.overrides |= {"target_accounts": "*,stranger", "target_exclude": "carol"}
    names = {101: "alice", 102: "bob", 103: "carol"}
    reels = {pk: [story(pk, 1, at=h.clock())] for pk in names} | {900: [story(900, 1, at=h.clock())]}
    ig = ScriptedInstagram(
        h.clock,
        tray=tray_for(h, {pk: reels[pk] for pk in names}, names),
        reels=reels,
        users={"stranger": UserRef(900, "stranger", None)},
        followed=[UserRef(pk, name, True) for pk, name in names.items()],
    )
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    assert sorted(ig.liked) == ["101001", "102001", "900001"]
    assert ig.names().count("reels_media") == 1 and "lookup" in ig.names()  # the explicit name is looked up
    rows = {t.username: t for t in h.store.targets(ME, enabled_only=False)}
    assert rows["alice"].managed_by == "tray" and rows["stranger"].managed_by == "env" and "carol" not in rows
    h.clock.advance(hours=25)  # the daily walk no longer lists bob: no longer followed, no longer a target
    later = ScriptedInstagram(h.clock, followed=[UserRef(101, "alice", True)], users=ig.users)
    run_stories(h.deps(later), dry_run=False, max_likes=None)
    assert not {t.username: t for t in h.store.targets(ME, enabled_only=False)}["bob"].enabled


def test_everyone_with_nothing_stored_yet_still_reads_the_tray(store: Store) -> None:
    h = Harness(store, overrides={"target_accounts": "*"})
    h.store_session()
    reels = {101: [story(101, 1, at=h.clock())]}
    ig = ScriptedInstagram(h.clock, tray=tray_for(h, reels, {101: "alice"}), reels=reels, followed=[])
    assert run_stories(h.deps(ig), dry_run=False, max_likes=None).outcome is Outcome.OK
    assert ig.liked == ["101001"]


# --- active hours --------------------------------------------------------------------------------------


def test_active_hours_parse_and_wrap_midnight() -> None:
    ranges = parse_active_hours("08:00-23:30, 23:45-01:00")

    def at(hh: int, mm: int) -> datetime:
        return datetime(2026, 11, 30, hh, mm, tzinfo=BERLIN)

    assert [planning.is_active(at(*t), ranges, BERLIN) for t in ((7, 59), (8, 0), (23, 40), (0, 30), (1, 0))] == [
        False,
        True,
        False,
        True,
        False,
    ]
    assert planning.next_window(at(3, 0), ranges, BERLIN) == at(8, 0).astimezone(UTC)
    with pytest.raises(ValueError):
        parse_active_hours("25:00-26:00")


def test_outside_active_hours_nothing_is_sent_and_the_next_window_is_named(h: Harness) -> None:
    h.overrides |= {"active_hours": "08:00-23:00", "timezone": "UTC"}
    h.clock.now = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    ig = ScriptedInstagram(h.clock)
    report = run_stories(h.deps(ig), dry_run=False, max_likes=None)
    assert report.outcome is Outcome.OUTSIDE_ACTIVE_HOURS and ig.calls == []
    assert report.extra["next_window"] == "2026-12-01T08:00:00+00:00"
    assert keepalive(h.deps(ig)).outcome is Outcome.OUTSIDE_ACTIVE_HOURS and ig.calls == []
    assert not status_data(h.deps(ig))["active_hours"]["active_now"]


def test_likes_stop_when_the_window_closes_mid_pass(h: Harness) -> None:
    h.overrides |= {
        "active_hours": "08:00-23:00",
        "timezone": "UTC",
        "action_delay_min_seconds": 60,
        "action_delay_max_seconds": 60,
    }
    h.clock.now = datetime(2026, 11, 30, 22, 57, tzinfo=UTC)
    reels = {101: [story(101, n, at=h.clock()) for n in range(1, 9)]}
    ig = ScriptedInstagram(h.clock, tray=tray_for(h, reels, {101: "alice"}), reels=reels, followed=[])
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    assert all(c.at < datetime(2026, 11, 30, 23, 0, tzinfo=UTC) for c in ig.calls if c.name == "like_story")
    assert 0 < len(ig.liked) < 8


# --- adaptive limits, warm-up, the day ---------------------------------------------------------------------


def test_an_action_block_halves_the_limits_and_each_clean_day_gives_back_ten_percent(h: Harness) -> None:
    h.overrides |= {"story_likes_per_hour": 20, "story_likes_per_day": 100, "daily_limit_variation_percent": 0}
    reels = {101: [story(101, 1, at=h.clock())]}
    ig = ScriptedInstagram(h.clock, tray=tray_for(h, reels, {101: "alice"}), reels=reels, followed=[])
    ig.always["like_story"] = Throttled("feedback_required", kind=ThrottleKind.FEEDBACK_REQUIRED)
    with pytest.raises(Throttled):
        run_stories(h.deps(ig), dry_run=False, max_likes=None)
    limits = status_data(h.deps(ig))["limits"][STORY_LIKE]
    assert (limits["effective_per_hour"], limits["effective_per_day"]) == (10, 50)
    assert "action block" in limits["why_different"][0]
    h.clock.advance(days=3)
    limits = status_data(h.deps(ig))["limits"][STORY_LIKE]
    assert (limits["effective_per_hour"], limits["effective_per_day"]) == (16, 80)
    h.clock.advance(days=10)
    assert status_data(h.deps(ig))["limits"][STORY_LIKE]["effective_per_day"] == 100


def test_a_block_that_names_its_end_cools_down_until_then(h: Harness) -> None:
    reels = {101: [story(101, 1, at=h.clock())]}
    ig = ScriptedInstagram(h.clock, tray=tray_for(h, reels, {101: "alice"}), reels=reels, followed=[])
    ig.always["like_story"] = Throttled(
        "feedback_required",
        kind=ThrottleKind.FEEDBACK_REQUIRED,
        detail="feedback_required: We restrict certain activity. You can try again after 2026-12-04.",
    )
    with pytest.raises(Throttled):
        run_stories(h.deps(ig), dry_run=False, max_likes=None)
    assert h.store.account(ME).cooldown_until == datetime(2026, 12, 5, tzinfo=UTC)  # later than 12 h


def test_block_end_parsing() -> None:
    assert block_end("try again after 2026-12-04", NOW) == datetime(2026, 12, 5, tzinfo=UTC)
    assert block_end("until December 4, 2026.", NOW) == datetime(2026, 12, 5, tzinfo=UTC)
    assert block_end("blocked for 48 hours", NOW) == NOW + timedelta(hours=48)
    assert block_end("We restrict certain activity to protect our community.", NOW) is None
    assert block_end("until 2019-01-01", NOW) is None and block_end("until 2099-01-01", NOW) is None


def test_a_new_device_warms_up_over_a_week_an_imported_session_does_not(store: Store) -> None:
    h = Harness(
        store,
        overrides={"target_accounts": "alice", "ig_password": "pw-of-the-test", "daily_limit_variation_percent": 0},
    )
    ig = ScriptedInstagram(h.clock, sessionid=None, followed=[])
    run_stories(h.deps(ig), dry_run=False, max_likes=None)  # the first run logs in on a new device

    def per_day() -> object:
        return status_data(h.deps(ig))["limits"][STORY_LIKE]["effective_per_day"]

    assert per_day() == 25
    h.clock.advance(days=3.5)
    assert per_day() == 62
    h.clock.advance(days=4)
    assert per_day() == 100


def test_warm_up_limits_what_a_pass_may_send(store: Store) -> None:
    h = Harness(store, overrides={"target_accounts": "alice", "story_likes_per_hour": 20})
    h.store_session()
    h.store.set_warmup(ME, h.clock())
    reels = {101: [story(101, n, at=h.clock()) for n in range(1, 11)]}
    ig = ScriptedInstagram(h.clock, tray=tray_for(h, reels, {101: "alice"}), reels=reels, followed=[])
    assert run_stories(h.deps(ig), dry_run=False, max_likes=None).outcome is Outcome.BUDGET_USED_UP
    assert len(ig.liked) == 5  # 25 % of 20 per hour


@given(day=st.integers(0, 3650), account=st.sampled_from(["me", "other", "x_y.z"]))
def test_the_daily_limit_varies_within_15_percent_and_the_same_for_a_day(day: int, account: str) -> None:
    at = NOW + timedelta(days=day)
    factor = ratelimit.day_factor(account, at, UTC, 15)
    assert 0.85 <= factor <= 1.15
    assert factor == ratelimit.day_factor(account, at + timedelta(hours=11, minutes=59) - timedelta(hours=12), UTC, 15)


def test_days_differ() -> None:
    factors = {round(ratelimit.day_factor(ME, NOW + timedelta(days=d), UTC, 15), 4) for d in range(30)}
    assert len(factors) > 20


# --- active hours across the DST changes: real minutes, read on the local clock ------------------------------

NEW_YORK, SYDNEY, LORD_HOWE = (
    ZoneInfo("America/New_York"),
    ZoneInfo("Australia/Sydney"),
    ZoneInfo("Australia/Lord_Howe"),
)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "hours", "now", "opens"),
    [
        # Berlin springs from 02:00 CET to 03:00 CEST on 29 March 2026: 02:00-03:00 does not happen that day
        (BERLIN, "02:00-03:00", utc(2026, 3, 29, 0, 30), utc(2026, 3, 30, 0, 0)),  # the next day's 02:00 CEST
        (BERLIN, "02:30-04:00", utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0)),  # 03:00 CEST, its first real minute
        (BERLIN, "01:00-02:30", utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 23, 0)),  # 03:00 CEST is past its end
        # ... and falls back from 03:00 CEST to 02:00 CET on 25 October: 02:00-03:00 happens twice
        (BERLIN, "02:00-03:00", utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 0, 0)),  # 02:00 CEST
        (BERLIN, "02:00-03:00", utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 1, 0)),  # 02:00 CET, the second time
        (BERLIN, "03:00-04:00", utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 2, 0)),  # 03:00 CET
        (NEW_YORK, "02:15-02:45", utc(2026, 3, 8, 6, 0), utc(2026, 3, 9, 6, 15)),  # 02:15 EDT on 9 March
        (NEW_YORK, "23:00-02:30", utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 3, 0)),  # wraps midnight; 23:00 EDT
        (SYDNEY, "02:00-02:30", utc(2026, 10, 3, 15, 30), utc(2026, 10, 4, 15, 0)),  # 02:00 AEDT on 5 October
        (SYDNEY, "02:00-02:30", utc(2026, 4, 4, 15, 45), utc(2026, 4, 4, 16, 0)),  # 02:00 AEST, the second time
        # Lord Howe moves by half an hour: 02:00-02:30 does not happen on 4 October 2026
        (LORD_HOWE, "02:00-02:30", utc(2026, 10, 3, 15, 0), utc(2026, 10, 4, 15, 0)),  # 02:00 +11 on 5 October
    ],
)
def test_the_next_window_is_a_moment_that_is_active(zone: ZoneInfo, hours: str, now: datetime, opens: datetime) -> None:
    ranges = parse_active_hours(hours)
    assert planning.next_window(now, ranges, zone) == opens
    assert planning.is_active(opens, ranges, zone)
    assert not planning.is_active(opens - timedelta(minutes=1), ranges, zone) or opens == now


def test_a_wall_time_that_never_happens_is_read_as_the_moment_it_names() -> None:
    """02:30 on Berlin's spring day, given as a local time, is 03:30 CEST (as datetime.astimezone reads it)."""
    assert not planning.is_active(datetime(2026, 3, 29, 2, 30, tzinfo=BERLIN), [(120, 180)], BERLIN)
    assert planning.is_active(datetime(2026, 3, 29, 2, 30, tzinfo=BERLIN), [(200, 240)], BERLIN)


ZONES = [BERLIN, NEW_YORK, SYDNEY, LORD_HOWE, ZoneInfo("UTC"), ZoneInfo("Asia/Kolkata"), ZoneInfo("America/St_Johns")]
CHANGES = [utc(2026, 3, 29, 1), utc(2026, 10, 25, 1), utc(2026, 3, 8, 7), utc(2026, 11, 1, 6), utc(2026, 4, 4, 16)]


@given(
    zone=st.sampled_from(ZONES),
    change=st.sampled_from(CHANGES),
    offset=st.integers(-36 * 3600, 36 * 3600),
    ranges=st.lists(
        st.tuples(st.integers(0, 24 * 60 - 1), st.integers(1, 24 * 60)).filter(lambda r: r[0] != r[1]),
        min_size=1,
        max_size=3,
    ),
)
def test_the_next_window_is_active_and_no_minute_before_it_is(
    zone: ZoneInfo, change: datetime, offset: int, ranges: list[tuple[int, int]]
) -> None:
    now = change + timedelta(seconds=offset)
    opens = planning.next_window(now, ranges, zone)
    assert now <= opens <= now + timedelta(days=2)
    assert planning.is_active(opens, ranges, zone)
    minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute < opens:
        assert not planning.is_active(minute, ranges, zone), minute
        minute += timedelta(minutes=1)
