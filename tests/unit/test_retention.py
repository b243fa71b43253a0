"""Retention that happens by itself: the like passes prune what expired, a bounded batch each, under the lease;
nothing a pass or `report` still needs goes, and a prune that fails loses nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from story_liker import retention
from story_liker.ig.types import PostItem, UserRef
from story_liker.jobs import maintenance
from story_liker.jobs.posts import run_posts
from story_liker.jobs.stories import run_stories
from story_liker.models import POST_LIKE, STORY_LIKE
from story_liker.store import LikedPost, LikedStory, Store
from tests.fake import ME, START, Harness, ScriptedInstagram

NAMES = {101: "alice", 102: "bob"}
OTHER = "someone_else"


@pytest.fixture
def h(store: Store) -> Harness:
    harness = Harness(store, overrides={"target_accounts": ",".join(NAMES.values())})
    harness.store_session()
    return harness


def followed(h: Harness) -> ScriptedInstagram:
    return ScriptedInstagram(h.clock, followed=[UserRef(pk, name, True) for pk, name in NAMES.items()])


def rows(store: Store, table: str, account: str = ME) -> int:
    with store.engine.connect() as connection:
        return int(
            connection.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE account = :a"),  # noqa: S608  # fixed names
                {"a": account},
            ).scalar_one()
        )


def history(store: Store, account: str, now: datetime, *, days: int) -> None:
    """``days`` of a story and an action row a day, a post every day, a run and a delivered digest a day."""
    for day in range(days):
        at = now - timedelta(days=day, hours=1)
        key = f"{account[:4]}{int(at.timestamp())}"
        store.record_stories(account, [LikedStory(f"s{key}", 101, at)], at, counted=True)
        store.record_posts(account, [LikedPost(f"p{key}", 101, "photo", at)], at, counted=False)
        store.start_run(key, account=account, command="run-stories", now=at)
        store.finish_run(key, exit_code=0, outcome="ok", counts={"requests": 1}, now=at)
        store.queue_digest(account, last=None if day == 0 else at + timedelta(days=1), now=at, message=("d", "t", "b"))
    with store.engine.begin() as connection:
        connection.execute(sa.text("UPDATE notification SET done_at = created_at"))


def test_a_story_pass_prunes_what_expired_and_keeps_what_is_needed(h: Harness) -> None:
    history(h.store, ME, START, days=200)
    history(h.store, OTHER, START, days=10)
    h.store.start_run("current", account=ME, command="run-stories", now=START)
    run_stories(h.deps(followed(h)), dry_run=False, max_likes=None)
    # stories older than a day, action rows older than POST_MAX_AGE_DAYS + 1, runs and delivered notifications
    # older than RUN_RETENTION_DAYS: gone; posts stay, and another account's rows too
    assert rows(h.store, "story") == 1
    assert rows(h.store, "action") == 4
    assert rows(h.store, "run") == 90 + 1
    assert rows(h.store, "notification") == 90
    assert rows(h.store, "post") == 200
    assert [rows(h.store, table, OTHER) for table in ("story", "action", "run", "post")] == [10, 10, 10, 10]
    assert h.store.last_runs(ME, limit=1)[0].id == "current"


def test_each_pass_prunes_a_bounded_batch_and_the_passes_catch_up(h: Harness, monkeypatch: Any) -> None:
    monkeypatch.setattr(maintenance, "PRUNE_BATCH", 30)
    history(h.store, ME, START, days=100)
    left = []
    for _ in range(4):
        run_posts(h.deps(followed(h)), dry_run=False, max_likes=None)
        left.append(rows(h.store, "story"))
    assert left == [70, 40, 10, 1]  # 30 of each kind a pass, the oldest first
    assert rows(h.store, "run") == 90


def test_a_dry_run_prunes_nothing(h: Harness) -> None:
    history(h.store, ME, START, days=5)
    run_stories(h.deps(followed(h)), dry_run=True, max_likes=None)
    assert rows(h.store, "story") == 5


def test_an_unconfirmed_post_like_is_kept_while_the_post_may_still_be_liked(h: Harness) -> None:
    """A post like whose answer was lost leaves its action row: the only thing that stops the next pass from
    sending it again blindly. It goes only a day after the post is too old to be liked at all."""
    post = PostItem("777", 101, START - timedelta(days=2, hours=20), "photo", has_liked=None)
    h.store.reserve_like(ME, POST_LIKE, post.pk, START - timedelta(days=2, hours=19))
    h.store.reserve_like(ME, STORY_LIKE, "gone-story", START - timedelta(days=2, hours=19))
    ig = ScriptedInstagram(
        h.clock,
        followed=[UserRef(pk, name, True) for pk, name in NAMES.items()],
        timeline=[[post]],
        posts={101: [post]},
    )
    run_posts(h.deps(ig), dry_run=False, max_likes=None)
    assert ig.liked == []  # not sent again: its action row is still there
    assert h.store.unconfirmed_likes(ME, POST_LIKE, [post.pk]) == {post.pk}
    h.clock.advance(days=2)
    # the hourly timer ran meanwhile: a pass prunes by the account's last known activity, never by a clock that
    # may be far ahead (a pass after days without a run prunes the rest on the passes that follow)
    h.store.start_run("an-hour-ago", account=ME, command="run-stories", now=h.clock() - timedelta(hours=1))
    run_stories(h.deps(followed(h)), dry_run=False, max_likes=None)
    assert h.store.unconfirmed_likes(ME, POST_LIKE, [post.pk]) == set()  # 4 days on: the post is past liking


def test_a_prune_that_fails_loses_nothing_and_the_pass_goes_on(h: Harness) -> None:
    """The database fails in the middle of the prune (the DELETE of the runs): that kind stays whole, the kinds
    pruned before it stay pruned, the pass goes on and the next one prunes the rest."""
    history(h.store, ME, START, days=120)
    failing = {"on": True}

    def fail(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if failing["on"] and statement.lstrip().upper().startswith("DELETE FROM RUN "):
            raise sa.exc.OperationalError(statement, {}, Exception("disk I/O error"))

    sa.event.listen(h.store.engine, "before_cursor_execute", fail)
    try:
        ig = followed(h)
        report = run_stories(h.deps(ig), dry_run=False, max_likes=None)
    finally:
        sa.event.remove(h.store.engine, "before_cursor_execute", fail)
    assert report.outcome == "nothing_new" and ig.requests_sent > 0
    assert (rows(h.store, "story"), rows(h.store, "run")) == (1, 120)  # runs untouched, stories pruned
    run_stories(h.deps(followed(h)), dry_run=False, max_likes=None)
    assert rows(h.store, "run") == 90


def test_the_report_and_the_digest_keep_what_they_read(h: Harness) -> None:
    """What `report` reads stays: posts for good, runs for RUN_RETENTION_DAYS (it says so), stories for
    STORY_RETENTION_HOURS."""
    from story_liker import report as reporting

    history(h.store, ME, START, days=120)
    run_stories(h.deps(followed(h)), dry_run=False, max_likes=None)
    window = reporting.Window(START - timedelta(days=365), START)
    data = reporting.report_data(h.store, h.settings(), ME, window=window)
    assert (data["post_likes"], data["runs"], data["story_likes"]) == (120, 90, 1)
    assert data["run_retention_days"] == 90
    assert "run records are kept 90 days" in reporting.report_text(data, bars=False)


def test_cleanup_prunes_everything_at_once_and_gives_the_file_back(h: Harness) -> None:
    from story_liker.jobs.deps import Counts

    history(h.store, ME, START, days=150)
    deps = h.deps(followed(h))
    deps.counts = Counts()
    report = maintenance.cleanup(deps, older_than_hours=None, dry_run=False, force=False)
    assert report.counts.deleted == 149
    assert (rows(h.store, "story"), rows(h.store, "run"), rows(h.store, "notification")) == (1, 90, 90)
    state = h.store.free_pages()
    if state is not None:  # SQLite: incremental auto-vacuum, and no page left free
        assert state[0] == 2 and state[1] == 0


def test_the_backlog_is_counted_up_to_a_bound(h: Harness, monkeypatch: Any) -> None:
    monkeypatch.setattr(retention, "PRUNE_BACKLOG", 25)
    history(h.store, ME, START, days=100)
    # stories, actions (each up to 25), runs 10, notifications 10
    assert retention.backlog(h.store, ME, h.settings(), START) == 25 + 25 + 10 + 10
    assert json.dumps(retention.backlog(h.store, OTHER, h.settings(), START)) == "0"


def test_status_and_doctor_say_when_much_waits_to_be_pruned(h: Harness, monkeypatch: Any) -> None:
    from story_liker import doctor
    from story_liker.status import status_data, status_text

    monkeypatch.setattr(retention, "PRUNE_BACKLOG", 20)
    history(h.store, ME, START, days=5)  # 4 expired stories and 1 action row: a few, for the next passes
    deps = h.deps(followed(h))
    assert status_data(deps)["prune_waiting"] == 5
    assert "wait to be pruned" not in status_text(status_data(deps))
    check = doctor._retention(h.settings(), h.store, ME, START)
    assert check.status == doctor.PASS and "5 expired records" in check.detail
    history(h.store, ME, START - timedelta(days=5), days=30)
    data = status_data(h.deps(followed(h)))
    assert data["prune_waiting"] >= 20
    assert "expired records wait to be pruned" in status_text(data) and "`story-liker cleanup`" in status_text(data)
    check = doctor._retention(h.settings(), h.store, ME, START)
    assert check.status == doctor.NOTE and "`story-liker cleanup` prunes them at once" in check.detail


def test_space_that_cannot_be_given_back_waits_and_fails_nothing(h: Harness, monkeypatch: Any) -> None:
    """The VACUUM or incremental vacuum after a prune cannot run (another process holds the file): what was deleted
    stays deleted, the pass and cleanup end as they would, and `migrate` still reports its schema."""
    from story_liker import db
    from story_liker.errors import DatabaseUnavailable
    from story_liker.jobs.deps import Counts

    def busy(*_: Any) -> int:
        raise DatabaseUnavailable("database unavailable: database is locked")

    history(h.store, ME, START, days=30)
    monkeypatch.setattr(h.store, "reclaim", busy)
    report = run_stories(h.deps(followed(h)), dry_run=False, max_likes=None)
    assert report.outcome == "nothing_new" and rows(h.store, "story") == 1
    deps = h.deps(followed(h))
    deps.counts = Counts()
    assert maintenance.cleanup(deps, older_than_hours=None, dry_run=False, force=False).outcome == "ok"
    monkeypatch.setattr(db, "reclaim", busy)
    assert db.migrate(h.store.engine)[1] == db.SCHEMA_REVISION
