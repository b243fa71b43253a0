"""Store and lock cases; each runs on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from story_liker.db import SCHEMA_REVISION, check_schema, current_revision, make_engine, migrate
from story_liker.errors import SchemaOutdated
from story_liker.models import STORY_LIKE
from story_liker.store import LikedPost, LikedStory, Store

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)


def test_migrate_is_idempotent_and_matches_the_code(database_url: str) -> None:
    engine = make_engine(database_url)
    assert migrate(engine) == (None, SCHEMA_REVISION)
    assert migrate(engine) == (SCHEMA_REVISION, SCHEMA_REVISION)
    check_schema(engine, auto_migrate=False)
    engine.dispose()


def test_alembic_head_is_the_revision_the_code_expects() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from story_liker.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [SCHEMA_REVISION]


def test_missing_or_old_schema_is_refused(database_url: str) -> None:
    engine = make_engine(database_url)
    with pytest.raises(SchemaOutdated, match="run `story-liker migrate`"):
        check_schema(engine, auto_migrate=False)
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))
    with pytest.raises(SchemaOutdated, match="is at 0000"):
        check_schema(engine, auto_migrate=True)
    engine.dispose()


def test_new_database_is_migrated_automatically_when_allowed(database_url: str) -> None:
    engine = make_engine(database_url)
    check_schema(engine, auto_migrate=True)
    assert current_revision(engine) == SCHEMA_REVISION
    engine.dispose()


def test_sync_targets_adds_disables_and_never_deletes(store: Store) -> None:
    assert store.sync_targets("me", ["a", "b", "c"], NOW) == (3, 0)
    store.add_target("me", "manual", NOW)
    assert store.sync_targets("me", ["b", "c", "d"], NOW) == (1, 1)
    everyone = {t.username: t.enabled for t in store.targets("me", enabled_only=False)}
    assert everyone == {"a": False, "b": True, "c": True, "d": True, "manual": True}
    assert store.sync_targets("me", ["a", "b", "c", "d"], NOW) == (0, 0)
    assert {t.username for t in store.targets("me")} == {"a", "b", "c", "d", "manual"}
    assert store.targets("other") == []


def test_story_likes_are_recorded_once_and_counted(store: Store) -> None:
    story = LikedStory("111", 42, NOW - timedelta(hours=1))
    assert store.record_stories("me", [story], NOW, counted=True) == 1
    assert store.record_stories("me", [story], NOW, counted=False) == 0
    assert store.liked_story_pks("me", ["111", "222"]) == {"111"}
    assert store.liked_story_pks("other", ["111"]) == set()
    assert store.recent_actions("me", STORY_LIKE, NOW + timedelta(minutes=1)) == [NOW]
    assert store.recent_actions("me", STORY_LIKE, NOW + timedelta(days=1, seconds=1)) == []


def test_liked_lookup_handles_more_pks_than_one_in_list(store: Store) -> None:
    stories = [LikedStory(str(pk), 1, NOW) for pk in range(1200)]
    store.record_stories("me", stories, NOW, counted=False)
    assert len(store.liked_story_pks("me", [str(pk) for pk in range(0, 2400)])) == 1200


def test_cleanup_deletes_only_old_stories_and_never_posts(store: Store) -> None:
    store.record_stories("me", [LikedStory("old", 1, NOW - timedelta(hours=30))], NOW, counted=True)
    store.record_stories("me", [LikedStory("new", 1, NOW - timedelta(hours=2))], NOW, counted=True)
    store.record_posts("me", [LikedPost("post", 1, "photo", NOW - timedelta(days=30))], NOW, counted=True)
    cutoff = NOW - timedelta(hours=24)
    assert store.count_stories_before("me", cutoff) == 1
    assert store.delete_stories_before("me", cutoff, NOW) == 1
    assert store.liked_story_pks("me", ["old", "new"]) == {"new"}
    assert store.liked_post_pks("me", ["post"]) == {"post"}


def _kept(store: Store) -> dict[str, tuple[int, int]]:
    """(story records, limit rows) per account."""
    from sqlmodel import col

    from story_liker.models import Action, Story

    story, action = col(Story.account), col(Action.account)
    with store.engine.connect() as connection:
        stories = dict(connection.execute(sa.select(story, sa.func.count()).group_by(story)).all())
        actions = dict(connection.execute(sa.select(action, sa.func.count()).group_by(action)).all())
    return {a: (int(stories.get(a, 0)), int(actions.get(a, 0))) for a in sorted(set(stories) | set(actions))}


def _old_and_new(store: Store, account: str, old: int) -> None:
    then = NOW - timedelta(days=3)
    store.record_stories(account, [LikedStory(f"{account}{n}", 1, then) for n in range(old)], then, counted=True)
    store.record_stories(account, [LikedStory(f"{account}-new", 1, NOW - timedelta(hours=1))], NOW, counted=True)


def test_cleanup_is_per_account_and_every_account_only_when_asked(store: Store) -> None:
    """`IG_USERNAME=acct_a story-liker cleanup` deleted acct_b's records (and its limit rows) too."""
    _old_and_new(store, "acct_a", 2)
    _old_and_new(store, "acct_b", 5)
    cutoff = NOW - timedelta(hours=24)
    assert store.count_stories_before("acct_a", cutoff) == 2
    assert store.delete_stories_before("acct_a", cutoff, NOW) == 2
    assert _kept(store) == {"acct_a": (1, 1), "acct_b": (6, 6)}
    assert store.count_stories_before(None, cutoff) == 5  # None: every account (cleanup --all-accounts)
    assert store.delete_stories_before(None, cutoff, NOW) == 5
    assert _kept(store) == {"acct_a": (1, 1), "acct_b": (1, 1)}


def test_two_accounts_cleaning_at_once_delete_only_their_own(store: Store) -> None:
    import threading

    names = ["acct_a", "acct_b", "acct_c"]
    for number, name in enumerate(names):
        _old_and_new(store, name, 100 * (number + 1))
    start = threading.Barrier(2)
    deleted: dict[str, int] = {}

    def clean(name: str) -> None:
        start.wait()
        deleted[name] = store.delete_stories_before(name, NOW - timedelta(hours=24), NOW)

    threads = [threading.Thread(target=clean, args=(name,)) for name in names[:2]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert deleted == {"acct_a": 100, "acct_b": 200}
    assert _kept(store) == {"acct_a": (1, 1), "acct_b": (1, 1), "acct_c": (301, 301)}


def test_lock_is_exclusive_until_released(store: Store) -> None:
    assert store.acquire_lock("me", run_id="r1", command="run-stories", now=NOW, ttl=TTL)
    assert not store.acquire_lock("me", run_id="r2", command="run-posts", now=NOW, ttl=TTL)
    assert store.acquire_lock("other", run_id="r3", command="run-stories", now=NOW, ttl=TTL)
    store.release_lock("me", run_id="r2")  # not the holder: no effect
    assert not store.acquire_lock("me", run_id="r2", command="run-posts", now=NOW, ttl=TTL)
    store.release_lock("me", run_id="r1")
    assert store.acquire_lock("me", run_id="r2", command="run-posts", now=NOW, ttl=TTL)


def test_lease_of_a_crashed_run_expires(store: Store) -> None:
    assert store.acquire_lock("me", run_id="dead", command="run-stories", now=NOW, ttl=TTL)
    assert not store.acquire_lock(
        "me", run_id="r2", command="run-stories", now=NOW + TTL - timedelta(seconds=1), ttl=TTL
    )
    assert store.acquire_lock("me", run_id="r2", command="run-stories", now=NOW + TTL + timedelta(seconds=1), ttl=TTL)
    holder = store.lock_holder("me")
    assert holder is not None and holder.run_id == "r2"


def test_renewed_lease_outlives_the_first_ttl(store: Store) -> None:
    store.acquire_lock("me", run_id="r1", command="run-stories", now=NOW, ttl=TTL)
    assert store.renew_lock("me", run_id="r1", now=NOW + timedelta(minutes=10), ttl=TTL)
    assert not store.acquire_lock("me", run_id="r2", command="x", now=NOW + timedelta(minutes=20), ttl=TTL)
    assert not store.renew_lock("me", run_id="intruder", now=NOW, ttl=TTL)


def test_session_flags_and_cooldown_round_trip(store: Store) -> None:
    assert store.account("me").settings is None
    store.set_needs_human("me", "challenge")
    assert store.account("me").needs_human
    store.save_session("me", settings="{}", encrypted=False, user_pk=7, now=NOW, login=False)
    assert store.account("me").needs_human  # only a login clears the flag
    store.save_session("me", settings='{"a":1}', encrypted=False, user_pk=7, now=NOW, login=True)
    state = store.account("me")
    assert (state.needs_human, state.settings, state.user_pk, state.saved_at) == (False, '{"a":1}', 7, NOW)
    store.set_cooldown("me", until=NOW + TTL, reason="rate_limit", strikes=2)
    assert store.account("me").cooldown_until == NOW + TTL
    store.clear_cooldown_strikes("me")
    assert store.account("me").cooldown_strikes == 0


def test_runs_are_recorded_newest_first(store: Store) -> None:
    store.start_run("a", account="me", command="run-stories", now=NOW)
    store.start_run("b", account="me", command="run-posts", now=NOW + TTL)
    store.finish_run("a", exit_code=0, outcome="ok", counts={"liked": 3}, now=NOW + TTL)
    runs = store.last_runs("me")
    assert [r.id for r in runs] == ["b", "a"]
    assert runs[1].exit_code == 0 and runs[1].counts == '{"liked": 3}'


def test_the_last_runs_and_success_are_the_accounts_and_those_of_no_account(store: Store) -> None:
    """Each read walks ix_run_account_*: the account's runs and the ones run for no account (cleanup
    --all-accounts), merged newest first; another account's never."""
    for n in range(15):
        store.start_run(f"me{n}", account="me", command="run-stories", now=NOW + n * TTL)
        store.finish_run(f"me{n}", exit_code=0 if n < 12 else 75, outcome="ok", counts={}, now=NOW + n * TTL)
    store.start_run("all", account=None, command="cleanup", now=NOW + 13 * TTL + timedelta(seconds=1))
    store.finish_run("all", exit_code=0, outcome="ok", counts={}, now=NOW + 20 * TTL)
    store.start_run("other", account="other", command="run-stories", now=NOW + 30 * TTL)
    store.finish_run("other", exit_code=0, outcome="ok", counts={}, now=NOW + 30 * TTL)
    assert [r.id for r in store.last_runs("me", limit=4)] == ["me14", "all", "me13", "me12"]
    assert [r.id for r in store.last_runs(None, limit=2)] == ["other", "me14"]  # no account: every account's
    assert store.last_success("me", "run-stories") == NOW + 11 * TTL  # the 75s are no success
    assert store.last_success("me", "cleanup") == NOW + 20 * TTL  # one run for every account counts
    assert store.last_success(None, "run-stories") == NOW + 30 * TTL
    assert store.last_success("me", "run-posts") is None


def test_the_migrations_make_every_index_the_models_name(store: Store) -> None:
    """The schema Alembic builds has each index models.py declares (the reads count on them), on both
    databases."""
    from sqlmodel import SQLModel

    inspector = sa.inspect(store.engine)
    for table in SQLModel.metadata.sorted_tables:
        declared = {index.name for index in table.indexes}
        built = {index["name"] for index in inspector.get_indexes(table.name)}
        assert declared <= built, (table.name, declared - built)


def test_database_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "s.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    engine.dispose()


def test_the_env_sync_never_takes_over_a_target_added_with_accounts_add(store: Store) -> None:
    now = datetime.now(UTC)
    assert store.add_target("me", "alice", now)
    store.sync_targets("me", ["alice", "bob"], now)
    store.sync_targets("me", ["bob"], now)  # alice left TARGET_ACCOUNTS: she was the CLI's, she stays
    rows = {t.username: t for t in store.targets("me", enabled_only=False)}
    assert (rows["alice"].managed_by, rows["alice"].enabled) == ("cli", True)
    store.sync_targets("me", [], now)
    assert not {t.username: t for t in store.targets("me", enabled_only=False)}["bob"].enabled


def _save(store: Store, account: str, user_pk: int | None, settings: str = "{}") -> bool:
    return store.save_session(account, settings=settings, encrypted=False, user_pk=user_pk, now=NOW, login=True)


def test_one_instagram_user_is_one_account_row(store: Store) -> None:
    """A session of Instagram user 4242 is `a`'s: stored under `b` too, it would give one real account the
    limits and the lease of two. The unique index refuses it; the store says which row holds the user."""
    from story_liker.errors import ConfigError

    assert _save(store, "a", 4242, '{"a": 1}')
    with pytest.raises(ConfigError, match="Instagram user 4242 is the account 'a' in this database") as refused:
        _save(store, "b", 4242, '{"b": 1}')
    assert "'b'" in refused.value.message
    assert store.account("b", create=False).settings is None  # nothing stored, not even the row
    assert store.account("b", create=False).user_pk is None
    assert (store.account("a").settings, store.account("a").user_pk) == ('{"a": 1}', 4242)
    assert _save(store, "a", 4242, '{"a": 2}')  # the row that holds the user saves as before
    assert _save(store, "b", 4343)  # another user under another name
    assert _save(store, "b", None)  # a device without a session yet: no user to compare


def test_two_names_saving_one_instagram_user_at_once_one_is_refused(store: Store) -> None:
    """Two runs (two names, one session) saving at the same moment: one row gets the user, the other a clear
    refusal, never an IntegrityError (exit 1)."""
    import threading

    from story_liker.errors import ConfigError

    names = [f"n{i}" for i in range(6)]
    for name in names:
        store.account(name)
    start = threading.Barrier(len(names))
    outcomes: dict[str, str] = {}

    def save(name: str) -> None:
        start.wait()
        try:
            _save(store, name, 777)
            outcomes[name] = "saved"
        except ConfigError:
            outcomes[name] = "refused"
        except Exception as exc:  # what the test is about: nothing else may escape
            outcomes[name] = type(exc).__name__

    threads = [threading.Thread(target=save, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes.values()) == ["refused"] * (len(names) - 1) + ["saved"], outcomes
    holders = [name for name in names if store.account(name).user_pk == 777]
    assert [outcomes[name] for name in holders] == ["saved"]
