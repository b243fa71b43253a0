"""The bench's post rows: the clock move before the steady CLI pass, and the simulated week's world."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from bench.__main__ import clock_moved, post_floor
from bench.simulate import FEED_PAGE, SIM_START, LiveInstagram, PostWorld, fresh_store, posts_week, quiet_and_isolated
from tests.fake import ME, FakeClock


def test_the_clock_moves_every_stored_post_check_back_and_leaves_the_rest(tmp_path: Path) -> None:
    database = tmp_path / "bench.db"
    store = fresh_store(database)
    store.sync_targets(ME, ["ann", "ben", "cat"], SIM_START)
    by_name = {t.username: t for t in store.targets(ME)}
    checked = SIM_START + timedelta(minutes=7, microseconds=123456)
    marked = SIM_START + timedelta(hours=1)
    checks = {"post_checked_at": checked, "story_checked_at": marked}
    store.update_targets({by_name[name].id or 0: dict(checks) for name in ("ann", "ben")})
    assert clock_moved(database, timedelta(hours=3)) == 2
    after = {t.username: t for t in store.targets(ME)}
    assert after["ann"].post_checked_at == after["ben"].post_checked_at == checked - timedelta(hours=3)
    assert after["cat"].post_checked_at is None and after["ann"].story_checked_at == marked
    # added 3 h earlier as well: the first profile reads due by then are due (their times count from it)
    assert {t.added_at for t in after.values()} == {SIM_START - timedelta(hours=3)}
    store.engine.dispose()


def test_post_floor_first_and_three_hours_later() -> None:
    assert post_floor(50, 20, first=True) == 2 + 1 + 20  # the first of the new targets' profiles, not all 50
    assert post_floor(500, 0, first=False) == 2 + 63
    assert post_floor(50, 0, first=False, pages=1) == 1 + 7


def test_a_profile_shows_pinned_posts_then_the_newest_and_nothing_from_the_future() -> None:
    clock = FakeClock(SIM_START)
    world = PostWorld(40, random.Random(3), SIM_START - timedelta(days=3), 6)
    ig = LiveInstagram(clock, world=world)
    for pk in world.names:
        page, _ = ig.user_posts(pk, 6)
        pinned = world.pinned.get(pk, [])
        assert page[: len(pinned)] == pinned[:6]
        rest = page[len(pinned) :]
        assert all(p.taken_at <= clock() for p in rest)
        assert [p.taken_at for p in rest] == sorted((p.taken_at for p in rest), reverse=True)
        older = [p for p in world.posts[pk] if p.taken_at <= clock() and p not in rest]
        assert not rest or all(p.taken_at <= rest[-1].taken_at for p in older)


def test_the_home_feed_is_recent_followed_posts_and_suggestions_in_pages() -> None:
    world = PostWorld(100, random.Random(5), SIM_START - timedelta(days=3), 6)
    pages = world.home_feed(SIM_START)
    entries = [p for page in pages for p in page]
    assert all(len(page) == FEED_PAGE for page in pages[:-1])
    followed = set(world.names) | set(world.others)
    organic = [p for p in entries if p.user_pk in followed]
    assert organic and all(SIM_START - timedelta(hours=36) <= p.taken_at <= SIM_START for p in organic)
    assert any(p.user_pk not in followed for p in entries)  # suggestions, never to be liked


def test_a_short_posts_week_likes_no_stranger_and_spreads_the_first_profile_reads(tmp_path: Path) -> None:
    """The first pass reads the first of the 16 new targets' profiles, not all 16 (their first reads are spread over
    POST_RECHECK_HOURS); every profile is still read within it, and every eligible post liked in time."""
    with quiet_and_isolated(tmp_path):
        result = posts_week(16, 3, workdir=tmp_path, seed=7)
    assert result.non_target_likes == 0
    assert result.first_pass_by_kind.get("user_posts") == 1
    assert result.second_pass_profile_reads <= 3  # its share, ceil(16 x 3 h 20 / 24 h), the due first reads in it
    assert result.longest_unread_h <= 24 + 3 + 1 / 3 + 0.5
    assert max(result.steady_profile_reads) <= 3  # ceil(16 x 3 h 20 / 24 h)
    assert result.liked_in_time == result.eligible and not result.missed
