"""Hostile review of the automatic retention (y22, f867303): what a prune may take that a pass, `status` or
another account still needs. Each test FAILS on f867303 and is marked xfail(strict=True): the suite stays green
until the defect is fixed, then the marker must go."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from story_liker import status as status_module
from story_liker.ig.types import PostItem, UserRef
from story_liker.jobs import maintenance
from story_liker.jobs.deps import Counts
from story_liker.jobs.posts import run_posts
from story_liker.jobs.stories import run_stories
from story_liker.models import POST_LIKE
from story_liker.store import Store
from tests.fake import ME, START, Harness, ScriptedInstagram, story, tray_of

NAMES = {101: "alice"}
OTHER = "someone_else"


@pytest.fixture
def h(store: Store) -> Harness:
    harness = Harness(store, overrides={"target_accounts": ",".join(NAMES.values())})
    harness.store_session()
    return harness


def followed(h: Harness, **more: Any) -> ScriptedInstagram:
    return ScriptedInstagram(h.clock, followed=[UserRef(pk, name, True) for pk, name in NAMES.items()], **more)


def test_cleanup_all_accounts_keeps_another_accounts_unconfirmed_post_like(h: Harness) -> None:
    """ME likes posts up to 14 days old; a like's answer was lost 6 days ago (the post is 7 days old: likeable
    for 7 more days). OTHER, whose POST_MAX_AGE_DAYS is the default 3, runs `cleanup --all-accounts` (its doc:
    "the retention given here applies to all"). ME's action row -- the only thing that stops a blind re-send --
    must survive: it is not a retention preference but a double-like guard."""
    h.overrides["post_max_age_days"] = 14
    post = PostItem("888", 101, START - timedelta(days=7), "photo", has_liked=None)
    h.store.reserve_like(ME, POST_LIKE, post.pk, START - timedelta(days=6))

    cleaner = Harness(h.store, clock=h.clock, overrides={"ig_username": OTHER})
    deps = cleaner.deps(followed(cleaner))
    deps.counts = Counts()
    maintenance.cleanup(deps, older_than_hours=None, dry_run=False, force=False, all_accounts=True)

    ig = followed(h, timeline=[[post]], posts={101: [post]})
    run_posts(h.deps(ig), dry_run=False, max_likes=None)
    assert ig.liked == []  # sent once already (answer lost): never again blindly
    assert h.store.unconfirmed_likes(ME, POST_LIKE, [post.pk]) == {post.pk}


def test_a_clock_days_ahead_does_not_make_a_live_story_liked_twice(h: Harness) -> None:
    """A story is liked; the host's clock then jumps 5 days ahead (an RTC-less board booting, a wrong NTP
    answer) for one pass, and is set right. The story still lives (Instagram's 24 h) and its answer does not say
    has_liked: the story record and the action row were the only guard, and both went in that one pass."""
    s = story(101, 1)  # taken 61 min before START
    reels = {101: [s]}
    ig = followed(h, tray=tray_of(reels, NAMES), reels=reels)
    run_stories(h.deps(ig), dry_run=False, max_likes=None)
    assert len(ig.liked) == 1

    h.clock.step(days=5)  # the wrong clock: one pass, Instagram shows nothing new
    run_stories(h.deps(followed(h)), dry_run=False, max_likes=None)
    h.clock.step(days=-5)
    h.clock.advance(hours=1)  # set right: the story (taken 2 h ago) lives on, has_liked not said
    newer = story_unsaid(story(101, 0, at=h.clock() + timedelta(hours=1)))  # alice adds a story: her reel is read
    reels = {101: [story_unsaid(s), newer]}
    ig2 = followed(h, tray=tray_of(reels, NAMES), reels=reels)
    run_stories(h.deps(ig2), dry_run=False, max_likes=None)
    assert s.pk not in ig2.liked  # NEVER a double like (the new story is liked, the old one not again)


def story_unsaid(s: Any) -> Any:
    """The same story, its answer not saying has_liked."""
    from dataclasses import replace

    return replace(s, has_liked=None)


def test_status_still_flags_late_posts_after_the_runs_are_pruned(h: Harness) -> None:
    """run-posts was in use and last succeeded 2 days ago (its timer died, or it fails since); the stories pass
    goes on. With RUN_RETENTION_DAYS=1 (allowed), the stories pass prunes that success: `status` then believes
    posts were never in use and raises no late-posts problem -- the very moment it should."""
    h.overrides["run_retention_days"] = 1
    long_ago = START - timedelta(days=2)
    h.store.start_run("posts-ok", account=ME, command="run-posts", now=long_ago)
    h.store.finish_run("posts-ok", exit_code=0, outcome="ok", counts={"requests": 3}, now=long_ago)
    h.added_earlier(hours=72)
    h.store.update_targets({t.id: {"user_pk": 101} for t in h.store.targets(ME) if t.id is not None})
    with h.store.engine.begin() as connection:
        connection.execute(sa.text("UPDATE target SET post_checked_at = :at"), {"at": long_ago})

    before = status_module.status_data(h.deps(followed(h)))
    assert before["posts_in_use"] is True
    late_before = [p for p in status_module._problems(before) if "post" in p.lower() and "prune" not in p]
    assert late_before, status_module._problems(before)

    run_stories(h.deps(followed(h)), dry_run=False, max_likes=None)  # prunes runs older than a day
    after = status_module.status_data(h.deps(followed(h)))
    late_after = [p for p in status_module._problems(after) if "post" in p.lower() and "prune" not in p]
    assert json.dumps(late_after) == json.dumps(late_before)


def test_the_last_success_metric_outlives_the_pruned_runs(h: Harness) -> None:
    """run-posts last exited 0 two days ago and fails since; with RUN_RETENTION_DAYS=1 a stories pass prunes
    that run. The gauge story_liker_last_success_timestamp_seconds{command="run-posts"} must still say two days
    ago (an alert `time() - gauge > 1d` keeps firing), not vanish (the alert resolves)."""
    from story_liker import hooks

    h.overrides["run_retention_days"] = 1
    long_ago = START - timedelta(days=2)
    h.store.start_run("posts-ok", account=ME, command="run-posts", now=long_ago)
    h.store.finish_run("posts-ok", exit_code=0, outcome="ok", counts={"requests": 3}, now=long_ago)
    before = hooks._metrics_state(h.settings(), h.store, "run-posts")["last_success"]
    assert before == long_ago.timestamp()

    run_stories(h.deps(followed(h)), dry_run=False, max_likes=None)
    assert hooks._metrics_state(h.settings(), h.store, "run-posts")["last_success"] == before


def test_a_like_at_the_end_of_a_local_day_is_counted_on_that_day(store: Store) -> None:
    """A like (and a run) at 23:59:59.9996 in St. John's (UTC-3:30) belongs to that local day, as the old
    report (liked_at.astimezone(zone).date()) and PostgreSQL say; SQLite's date() rounds it to midnight."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from story_liker import report as reporting
    from story_liker.store import LikedStory
    from tests.fake import make_settings

    zone = "America/St_Johns"
    at = datetime(2026, 11, 3, 23, 59, 59, 999600, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    store.record_stories(ME, [LikedStory("s1", 101, at)], at, counted=False)
    store.start_run("r1", account=ME, command="run-stories", now=at)
    store.finish_run("r1", exit_code=0, outcome="ok", counts={"requests": 4}, now=at)
    settings = make_settings(store, timezone=zone, story_retention_hours=1000)
    window = reporting.Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC))
    data = reporting.report_data(store, settings, ME, window=window)
    per_day = {d["date"]: (d["story_likes"], d["runs"], d["requests"]) for d in data["per_day"] if d["runs"]}
    assert per_day == {"2026-11-03": (1, 1, 4)}


class _PragmaFails:
    """A sqlite3 connection whose ``PRAGMA freelist_count`` fails while ``on``, as a read does when the file
    cannot be read for a moment (a lock held past busy_timeout where WAL is not in force, an I/O error)."""

    on = False


def _failing_factory() -> Any:
    import sqlite3

    class Connection(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> Any:
            if _PragmaFails.on and "freelist_count" in sql:
                raise sqlite3.OperationalError("disk I/O error")
            return super().execute(sql, *args)

    return Connection


def test_a_prune_whose_free_page_count_fails_lets_the_pass_go_on(h: Harness) -> None:
    """The prune deleted what expired; reading the free-page count then fails. What was deleted stays deleted
    and the pass goes on (maintenance.prune_expired's promise), or at worst a clear exit 69 -- never a raw
    sqlite3.OperationalError out of the pass (exit 70, a bug)."""
    from story_liker.db import make_engine, migrate
    from story_liker.store import LikedStory

    if h.store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL has no free pages to read")
    engine = make_engine(h.store.engine.url.render_as_string(hide_password=False))
    sa.event.listen(engine, "do_connect", lambda _d, _r, _a, cparams: cparams.update(factory=_failing_factory()))
    migrate(engine)
    h.store = Store(engine)
    h.store_session()
    old = START - timedelta(days=3)
    h.store.record_stories(ME, [LikedStory("old", 101, old)], old, counted=False)
    _PragmaFails.on = True
    try:
        report = run_stories(h.deps(followed(h)), dry_run=False, max_likes=None)
    finally:
        _PragmaFails.on = False
        engine.dispose()
    assert report.outcome == "nothing_new"
