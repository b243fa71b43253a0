"""`run-posts`, `cleanup`, `keepalive`, signals: end to end through the installed CLI."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from story_liker.db import make_engine
from story_liker.store import LikedPost, LikedStory, Store
from tests.conftest import finish, login, run_cli, start

HOUR = 3600


def test_run_posts_likes_exactly_the_eligible_posts_and_nothing_twice(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    now = int(time.time())
    alice, bob = ig.add_user("alice"), ig.add_user("bob")
    eligible = [
        ig.add_post(alice, taken_at=now - 1 * HOUR),  # photo
        ig.add_post(alice, taken_at=now - 2 * HOUR, media_type=8),  # album
        ig.add_post(bob, taken_at=now - 3 * HOUR, media_type=2, product_type="clips"),  # reel
    ]
    ig.add_post(alice, taken_at=now - 5 * 24 * HOUR)  # too old
    ig.add_post(bob, taken_at=now - 4 * HOUR, media_type=2)  # a video: not in POST_MEDIA_TYPES below
    already = ig.add_post(bob, taken_at=now - 5 * HOUR, liked=True)
    env |= {"TARGET_ACCOUNTS": "alice,bob", "POST_MEDIA_TYPES": "photo,album,reel"}
    login(ig, env, tmp_path)

    first = run_cli("run-posts", env=env, cwd=tmp_path)
    assert first.code == 0, first.output
    assert ig.liked_media_ids == {p.id for p in eligible} | {already.id}
    assert ig.count("/like/") == 3
    assert first.event("run_finished")["liked"] == 3

    ig.reset_requests()
    second = run_cli("run-posts", env=env, cwd=tmp_path)
    assert second.code == 0, second.output
    assert ig.count("/like/") == 0
    # steady state seconds later: the home feed (one page holds it all) and this pass's share of the sweep
    # (ceil(2 targets x a few seconds / 24 h) = 1 profile), nothing else
    assert ig.count("feed/timeline/") == 1 and ig.count("feed/user/") == 1 and ig.count() == 2

    newer = ig.add_post(alice, taken_at=now - 60)
    third = run_cli("run-posts", env=env, cwd=tmp_path)
    assert third.code == 0 and newer.id in ig.liked_media_ids and ig.count("/like/") == 1


def test_run_posts_budget_and_dry_run(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    alice = ig.add_user("alice")
    for n in range(4):
        ig.add_post(alice, taken_at=int(time.time()) - (n + 1) * HOUR)
    env |= {"TARGET_ACCOUNTS": "alice", "POST_LIKES_PER_HOUR": "3"}
    login(ig, env, tmp_path)
    dry = run_cli("run-posts", "--dry-run", env=env, cwd=tmp_path)
    assert dry.code == 0 and ig.count("/like/") == 0 and dry.event("run_finished")["would_like"] == 3
    first = run_cli("run-posts", env=env, cwd=tmp_path)
    assert first.code == 0 and ig.count("/like/") == 3
    assert first.event("run_finished")["outcome"] == "budget_used_up"


def test_run_posts_skips_private_and_missing_targets(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    alice = ig.add_user("alice")
    post = ig.add_post(alice, taken_at=int(time.time()) - HOUR)
    hidden = ig.add_user("hidden", private=True, followed=False)
    ig.add_post(hidden, taken_at=int(time.time()) - HOUR)
    env["TARGET_ACCOUNTS"] = "hidden,nobody_here,alice"
    login(ig, env, tmp_path)
    result = run_cli("run-posts", env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    assert ig.liked_media_ids == {post.id}
    # the missing name is an error (its lookup failed); a private account not followed is a normal state,
    # looked at again in a day, as in a story pass
    assert result.event("run_finished")["errors"] == 1
    hidden_events = [e for e in result.events() if e.get("event") == "target_unavailable" and e["target"] == "hidden"]
    assert [e["reason"] for e in hidden_events] == ["private"]


def _seed_records(url: str) -> None:
    store = Store(make_engine(url))
    now = datetime.now(UTC)
    store.record_stories(
        "liker",
        [
            LikedStory("old1", 1, now - timedelta(hours=30)),
            LikedStory("old2", 1, now - timedelta(hours=25)),
            LikedStory("fresh", 1, now - timedelta(hours=2)),
        ],
        now,
        counted=True,
    )
    store.record_posts("liker", [LikedPost("ancient", 1, "photo", now - timedelta(days=400))], now, counted=True)
    store.engine.dispose()


def test_cleanup_removes_only_old_story_records_and_never_a_post(env: dict[str, str], tmp_path: Path) -> None:
    assert run_cli("migrate", env=env, cwd=tmp_path).code == 0
    _seed_records(env["DATABASE_URL"])
    dry = run_cli("cleanup", "--dry-run", env=env, cwd=tmp_path)
    assert dry.code == 0 and "would delete 2" in dry.stderr
    short = run_cli("cleanup", "--older-than", "1", env=env, cwd=tmp_path)
    assert short.code == 78 and "--force" in short.error
    done = run_cli("cleanup", env=env, cwd=tmp_path)
    assert done.code == 0 and "deleted 2" in done.stderr
    assert done.event("run_finished")["deleted"] == 2
    store = Store(make_engine(env["DATABASE_URL"]))
    assert store.liked_story_pks("liker", ["old1", "old2", "fresh"]) == {"fresh"}
    assert store.liked_post_pks("liker", ["ancient"]) == {"ancient"}
    forced = run_cli("cleanup", "--older-than", "1", "--force", env=env, cwd=tmp_path)
    assert forced.code == 0 and "deleted 1" in forced.stderr
    store.engine.dispose()


def test_cleanup_needs_no_instagram_account(tmp_path: Path) -> None:
    """No session, no login, no request: only the name whose records it deletes (or --all-accounts)."""
    database = {"DATABASE_URL": f"sqlite:///{tmp_path}/c.db"}
    result = run_cli("cleanup", env=database | {"IG_USERNAME": "liker"}, cwd=tmp_path)
    assert result.code == 0, result.output
    assert "deleted 0" in result.stderr
    every = run_cli("cleanup", "--all-accounts", env=database, cwd=tmp_path)
    assert every.code == 0 and "deleted 0" in every.stderr, every.output


def _seed_accounts(url: str, rows: dict[str, int]) -> None:
    """``rows[account]`` story records of five days ago, one fresh one, and their limit rows: the old ones past
    both the story retention and the limit rows' keep (a day past POST_MAX_AGE_DAYS)."""
    store = Store(make_engine(url))
    now = datetime.now(UTC)
    for account, old in rows.items():
        stories = [LikedStory(f"{account}-{n}", 1, now - timedelta(days=5)) for n in range(old)]
        store.record_stories(account, stories, now - timedelta(days=5), counted=True)
        store.record_stories(account, [LikedStory(f"{account}-fresh", 1, now - timedelta(hours=1))], now, counted=True)
    store.engine.dispose()


def _left(url: str) -> dict[str, tuple[int, int]]:
    """(story records, limit rows) left per account."""
    import sqlalchemy as sa

    engine = make_engine(url)
    with engine.connect() as connection:
        stories: dict[str, int] = dict(
            connection.execute(sa.text("SELECT account, COUNT(*) FROM story GROUP BY account")).all()
        )
        actions: dict[str, int] = dict(
            connection.execute(sa.text("SELECT account, COUNT(*) FROM action GROUP BY account")).all()
        )
    engine.dispose()
    return {a: (int(stories.get(a, 0)), int(actions.get(a, 0))) for a in sorted(set(stories) | set(actions))}


def test_cleanup_of_one_account_leaves_the_other_accounts_records_alone(env: dict[str, str], tmp_path: Path) -> None:
    url = env["DATABASE_URL"]
    assert run_cli("migrate", env=env, cwd=tmp_path).code == 0
    _seed_accounts(url, {"acct_a": 2, "acct_b": 5})
    a = env | {"IG_USERNAME": "acct_a"}
    dry = run_cli("cleanup", "--dry-run", env=a, cwd=tmp_path)
    assert dry.code == 0 and "would delete 2 " in dry.stderr, dry.output
    done = run_cli("cleanup", env=a, cwd=tmp_path)
    assert done.code == 0 and "deleted 2 story records of acct_a" in done.stderr, done.output
    assert _left(url) == {"acct_a": (1, 1), "acct_b": (6, 6)}  # acct_b's 5 old records and limit rows stay

    nameless = {k: v for k, v in env.items() if k != "IG_USERNAME"}
    refused = run_cli("cleanup", env=nameless, cwd=tmp_path)
    assert refused.code == 78 and "--all-accounts" in refused.error, refused.output
    assert _left(url) == {"acct_a": (1, 1), "acct_b": (6, 6)}
    every = run_cli("cleanup", "--all-accounts", env=nameless, cwd=tmp_path)
    assert every.code == 0 and "deleted 5 story records of every account" in every.stderr, every.output
    # every account's old story records; the limit rows of IG_USERNAME only (none here): another account's guard
    # its lost likes for its own POST_MAX_AGE_DAYS, which this run does not know, and its own passes prune them
    assert _left(url) == {"acct_a": (1, 1), "acct_b": (1, 6)}


def test_two_accounts_cleaning_at_once_each_delete_only_their_own(env: dict[str, str], tmp_path: Path) -> None:
    url = env["DATABASE_URL"]
    assert run_cli("migrate", env=env, cwd=tmp_path).code == 0
    _seed_accounts(url, {"acct_a": 300, "acct_b": 200, "acct_c": 7})
    runs = [start(["cleanup"], env | {"IG_USERNAME": name}, tmp_path) for name in ("acct_a", "acct_b")]
    results = [finish(run) for run in runs]
    assert [r.code for r in results] == [0, 0], [r.output for r in results]
    assert [r.event("run_finished")["deleted"] for r in results] == [300, 200]
    assert _left(url) == {"acct_a": (1, 1), "acct_b": (1, 1), "acct_c": (8, 8)}


def test_keepalive_sends_one_request_and_stores_refreshed_cookies(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    login(ig, env, tmp_path)
    store = Store(make_engine(env["DATABASE_URL"]))
    before = store.account(ig.username).settings
    result = run_cli("keepalive", env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    assert ig.paths() == ["GET /api/v1/accounts/current_user/?edit=true"]
    after = store.account(ig.username)
    assert after.settings != before and after.last_keepalive_at is not None
    assert json.loads(after.settings or "{}")["cookies"]["rur"] != json.loads(before or "{}")["cookies"]["rur"]
    status = json.loads(run_cli("status", "--json", env=env, cwd=tmp_path).stdout)
    assert status["keepalive"]["last_success"] is not None
    store.engine.dispose()


def test_keepalive_relogs_once_on_login_required(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    env["IG_PASSWORD"] = ig.password
    login(ig, env, tmp_path)
    ig.expire_session()
    result = run_cli("keepalive", env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    assert result.event("relogin_succeeded")


def test_keepalive_respects_cooldown(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    login(ig, env, tmp_path)
    ig.fail("current_user", status=429)
    assert run_cli("keepalive", env=env, cwd=tmp_path).code == 75
    ig.reset_requests()
    assert run_cli("keepalive", env=env, cwd=tmp_path).code == 75
    assert ig.count() == 0


def _wait_for_likes(ig: Any, n: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while ig.count("send_story_like") < n:
        assert time.monotonic() < deadline, "the pass did not get going"
        time.sleep(0.05)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_in_a_slow_pass_ends_cleanly_with_every_confirmed_like_recorded(
    ig: Any, env: dict[str, str], tmp_path: Path, sig: int, code: int
) -> None:
    user = ig.add_user("alice")
    for _ in range(6):
        ig.add_story(user)
    env |= {"TARGET_ACCOUNTS": "alice", "ACTION_DELAY_MIN_SECONDS": "0.5", "ACTION_DELAY_MAX_SECONDS": "0.5"}
    login(ig, env, tmp_path)
    proc = start(["run-stories"], env, tmp_path)
    _wait_for_likes(ig, 2)
    proc.send_signal(sig)
    result = finish(proc, timeout=30)
    assert result.code == code, result.output
    assert "Traceback" not in result.output
    confirmed = len(ig.liked_story_ids)
    assert 2 <= confirmed < 6
    store = Store(make_engine(env["DATABASE_URL"]))
    recorded = store.liked_story_pks(ig.username, [s.id.split("_")[0] for s in ig.stories])
    assert len(recorded) == confirmed  # every like Instagram confirmed is in the database
    assert store.lock_holder(ig.username) is None  # the lock was released
    assert result.event("run_finished")["liked"] == confirmed
    store.engine.dispose()
    again = run_cli(
        "run-stories",
        env=env | {"ACTION_DELAY_MAX_SECONDS": "0", "ACTION_DELAY_MIN_SECONDS": "0"},
        cwd=tmp_path,
    )
    assert again.code == 0 and len(ig.liked_story_ids) == 6
    assert ig.count("send_story_like") == 6  # nothing was liked twice
