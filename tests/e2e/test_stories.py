"""`run-stories` end to end: the installed CLI process, the real instagrapi, the local Instagram double."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from story_liker.db import make_engine
from story_liker.store import Store
from tests.conftest import finish_with_cpu, login, run_cli, run_process, start


def follow_with_stories(ig: Any, names: list[str], per_user: int = 3, liked: int = 1) -> list[Any]:
    stories = []
    for name in names:
        user = ig.add_user(name)
        for n in range(per_user):
            stories.append(ig.add_story(user, liked=n < liked))
    return stories


def test_first_pass_likes_exactly_the_unliked_stories_and_second_pass_sends_one_request(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    stories = follow_with_stories(ig, ["alice", "bob"])
    ig.add_user("carol")  # followed, no stories
    env["TARGET_ACCOUNTS"] = "alice,@Bob,carol"
    login(ig, env, tmp_path)

    first = run_cli("run-stories", env=env, cwd=tmp_path)
    assert first.code == 0, first.output
    expected = {s.id for s in stories}  # 2 were liked before, 4 by us
    assert ig.liked_story_ids == expected
    assert ig.count("send_story_like") == 4
    assert ig.count("media/seen") == 2  # one per target with likes, before its likes
    assert ig.count("reels_media") == 1  # alice, bob and carol (never checked) in one batch
    summary = first.event("run_finished")
    assert (summary["liked"], summary["stories_seen"], summary["exit_code"]) == (4, 6, 0)
    assert summary["requests"] == ig.count()

    ig.reset_requests()
    second = run_cli("run-stories", env=env, cwd=tmp_path)
    assert second.code == 0, second.output
    assert ig.paths() == ["POST /api/v1/feed/reels_tray/"]
    assert second.event("run_finished")["liked"] == 0


def test_new_story_after_a_pass_is_liked_next_time(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    [old] = follow_with_stories(ig, ["alice"], per_user=1, liked=0)
    env["TARGET_ACCOUNTS"] = "alice"
    login(ig, env, tmp_path)
    assert run_cli("run-stories", env=env, cwd=tmp_path).code == 0
    new = ig.add_story(ig.users[0], taken_at=old.taken_at + 60)  # a minute after the first: newer, whenever we run
    result = run_cli("run-stories", env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    assert ig.liked_story_ids == {old.id, new.id}
    assert ig.count("send_story_like") == 2


def test_dry_run_sends_no_like_and_records_nothing(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    follow_with_stories(ig, ["alice"], per_user=2, liked=0)
    env["TARGET_ACCOUNTS"] = "alice"
    login(ig, env, tmp_path)
    result = run_cli("run-stories", "--dry-run", env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    assert ig.count("send_story_like") == 0 and ig.count("media/seen") == 0
    assert result.event("run_finished")["would_like"] == 2
    assert len([e for e in result.events() if e["event"] == "story_would_like"]) == 2
    real = run_cli("run-stories", env=env, cwd=tmp_path)  # nothing was recorded: the real pass likes both
    assert real.event("run_finished")["liked"] == 2


def test_max_likes_and_hourly_limit_stop_the_pass_with_exit_0(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    follow_with_stories(ig, ["alice", "bob"], per_user=3, liked=0)
    env |= {"TARGET_ACCOUNTS": "alice,bob", "STORY_LIKES_PER_HOUR": "4"}
    login(ig, env, tmp_path)
    first = run_cli("run-stories", "--max-likes", "2", env=env, cwd=tmp_path)
    assert first.code == 0 and len(ig.liked_story_ids) == 2, first.output
    second = run_cli("run-stories", env=env, cwd=tmp_path)
    assert second.code == 0 and len(ig.liked_story_ids) == 4
    assert second.event("run_finished")["outcome"] == "budget_used_up"
    ig.reset_requests()
    third = run_cli("run-stories", env=env, cwd=tmp_path)
    assert third.code == 0 and third.event("run_finished")["outcome"] == "budget_used_up"
    assert ig.count() == 0  # no budget: Instagram is not even asked


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (429, None, "rate_limit"),
        (400, {"message": "Please wait a few minutes before you try again.", "status": "fail"}, "rate_limit"),
        (
            400,
            {"message": "feedback_required", "feedback_message": "blocked", "spam": True, "status": "fail"},
            "feedback_required",
        ),
    ],
)
def test_throttling_stops_the_pass_persists_a_cooldown_and_the_next_run_sends_nothing(
    ig: Any, env: dict[str, str], tmp_path: Path, status: int, body: Any, reason: str
) -> None:
    follow_with_stories(ig, ["alice"], per_user=3, liked=0)
    env["TARGET_ACCOUNTS"] = "alice"
    login(ig, env, tmp_path)
    ig.fail("send_story_like", status=status, body=body, after=1)
    first = run_cli("run-stories", env=env, cwd=tmp_path)
    assert first.code == 75, first.output
    assert len(ig.liked_story_ids) == 1 and ig.count("send_story_like") == 2  # no retry of the throttled one
    assert first.event("cooldown_started")["reason"] == reason
    status_out = json.loads(run_cli("status", "--json", env=env, cwd=tmp_path).stdout)
    assert status_out["cooldown"]["active"] and status_out["cooldown"]["reason"] == reason
    assert status_out["limits"]["story_like"]["last_hour"] == 1  # the confirmed like was recorded

    ig.reset_requests()
    second = run_cli("run-stories", env=env, cwd=tmp_path)
    assert second.code == 75, second.output
    assert "cooling down" in second.error
    assert ig.count() == 0


@pytest.mark.parametrize("where", ["reels_tray", "reels_media", "media/seen", "following"])
def test_throttling_anywhere_in_the_pass_persists_a_cooldown(
    ig: Any, env: dict[str, str], tmp_path: Path, where: str
) -> None:
    follow_with_stories(ig, ["alice"], per_user=2, liked=0)
    ig.add_user("quiet")  # no stories: resolved through the following list
    env["TARGET_ACCOUNTS"] = "alice,quiet"
    login(ig, env, tmp_path)
    ig.fail(where, status=429)
    first = run_cli("run-stories", env=env, cwd=tmp_path)
    assert first.code == 75, first.output
    likes_before = 2 if where == "media/seen" else 0  # the seen report follows the reel's likes
    assert ig.count(where) == 1 and ig.count("send_story_like") == likes_before
    ig.reset_requests()
    assert run_cli("run-stories", env=env, cwd=tmp_path).code == 75
    assert ig.count() == 0


def test_challenge_sets_needs_human_until_login(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    follow_with_stories(ig, ["alice"], per_user=1, liked=0)
    env["TARGET_ACCOUNTS"] = "alice"
    login(ig, env, tmp_path)
    ig.require_challenge()
    first = run_cli("run-stories", env=env, cwd=tmp_path)
    assert first.code == 77, first.output
    ig.reset_requests()
    second = run_cli("run-stories", env=env, cwd=tmp_path)
    assert second.code == 77 and "needs a human" in second.error
    assert ig.count() == 0
    ig.require_challenge(False)
    login(ig, env, tmp_path)
    third = run_cli("run-stories", env=env, cwd=tmp_path)
    assert third.code == 0, third.output
    assert third.event("run_finished")["liked"] == 1


def _device(env: dict[str, str], username: str) -> tuple[Any, ...]:
    store = Store(make_engine(env["DATABASE_URL"]))
    settings = json.loads(store.account(username).settings or "{}")
    store.engine.dispose()
    return settings["uuids"], settings["device_settings"], settings["user_agent"], settings["authorization_data"]


def test_expired_session_is_relogged_once_with_the_password(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    follow_with_stories(ig, ["alice"], per_user=1, liked=0)
    env |= {"TARGET_ACCOUNTS": "alice", "IG_PASSWORD": ig.password}
    login(ig, env, tmp_path)
    uuids, device, agent, auth = _device(env, ig.username)
    ig.expire_session()
    result = run_cli("run-stories", env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    assert result.event("relogin_succeeded")
    assert ig.count("send_login_request") == 1  # one login, never a loop
    new_uuids, new_device, new_agent, new_auth = _device(env, ig.username)
    assert (new_uuids, new_device, new_agent) == (uuids, device, agent)  # the device fingerprint is kept
    assert new_auth["sessionid"] != auth["sessionid"]
    assert len(ig.liked_story_ids) == 1
    ig.reset_requests()
    again = run_cli("run-stories", env=env, cwd=tmp_path)  # the new session was stored
    assert again.code == 0 and ig.paths() == ["POST /api/v1/feed/reels_tray/"], again.output


def test_expired_session_without_password_needs_a_human(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    follow_with_stories(ig, ["alice"], per_user=1, liked=0)
    env["TARGET_ACCOUNTS"] = "alice"
    login(ig, env, tmp_path)
    ig.expire_session()
    result = run_cli("run-stories", env=env, cwd=tmp_path)
    assert result.code == 77, result.output
    assert ig.count() == 1  # the tray answered login_required; no login was attempted
    ig.reset_requests()
    assert run_cli("run-stories", env=env, cwd=tmp_path).code == 77
    assert ig.count() == 0


def test_wrong_password_on_relogin_needs_a_human_and_is_not_retried(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    follow_with_stories(ig, ["alice"], per_user=1, liked=0)
    env |= {"TARGET_ACCOUNTS": "alice", "IG_PASSWORD": "wrong-password"}
    login(ig, env, tmp_path)
    ig.expire_session()
    first = run_cli("run-stories", env=env, cwd=tmp_path)
    assert first.code == 77, first.output
    ig.reset_requests()
    assert run_cli("run-stories", env=env, cwd=tmp_path).code == 77
    assert ig.count() == 0


def test_a_held_lock_exits_75_without_contacting_instagram(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    follow_with_stories(ig, ["alice"], per_user=1, liked=0)
    env["TARGET_ACCOUNTS"] = "alice"
    login(ig, env, tmp_path)
    store = Store(make_engine(env["DATABASE_URL"]))
    assert store.acquire_lock(
        ig.username, run_id="other", command="run-posts", now=datetime.now(UTC), ttl=timedelta(minutes=5)
    )
    result, cpu = finish_with_cpu(start(["run-stories"], env, tmp_path))
    assert result.code == 75, result.output
    assert "another run holds the lock" in result.error
    assert ig.count() == 0
    # "Within a second" without timing a loaded machine: little CPU of its own (about 0.8 s here, nearly
    # all interpreter start and imports; 2 s leaves room for slower cores, not for a pass or a busy wait),
    # and it was over long before the holder's lease, with minutes still to run, could have ended
    assert cpu < 2.0
    holder = store.lock_holder(ig.username)
    assert holder is not None and holder.run_id == "other"
    assert datetime.fromisoformat(result.event("run_finished")["timestamp"]) < holder.expires_at - timedelta(minutes=4)
    store.engine.dispose()


def test_missing_and_private_targets_are_recorded_and_skipped(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    follow_with_stories(ig, ["alice"], per_user=1, liked=0)
    secret = ig.add_user("secretive", private=True, followed=False)
    ig.add_story(secret)
    public = ig.add_user("public_star", followed=False)
    star_story = ig.add_story(public)
    env["TARGET_ACCOUNTS"] = "alice,ghost_user,secretive,public_star"
    login(ig, env, tmp_path)
    result = run_cli("run-stories", env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    assert star_story.id in ig.liked_story_ids and len(ig.liked_story_ids) == 2
    status_out = json.loads(run_cli("status", "--json", env=env, cwd=tmp_path).stdout)
    errors = {t["username"]: t["last_error"] for t in status_out["targets"]}
    assert "not found" in errors["ghost_user"]
    assert "private" in errors["secretive"]
    assert errors["alice"] is None and errors["public_star"] is None


def test_malformed_reels_answer_is_skipped_without_traceback(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    follow_with_stories(ig, ["alice"], per_user=1, liked=0)
    env["TARGET_ACCOUNTS"] = "alice"
    login(ig, env, tmp_path)
    ig.raw("reels_media", '{"reels": {"1": {"items": [{"pk": "x"}]}, "status": "ok"')  # truncated JSON
    result = run_cli("run-stories", env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    assert "Traceback" not in result.output
    assert result.event("run_finished")["errors"] >= 1
    assert run_cli("run-stories", env=env, cwd=tmp_path).event("run_finished")["liked"] == 1  # retried next pass


def test_no_secret_reaches_the_output(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    """A real process's whole output (what a journal or a log collector keeps), a re-login at DEBUG included."""
    follow_with_stories(ig, ["alice"], per_user=2, liked=0)
    env |= {"TARGET_ACCOUNTS": "alice", "IG_PASSWORD": ig.password, "LOG_LEVEL": "DEBUG"}
    login(ig, env, tmp_path)
    ig.expire_session()
    outputs = [run_process("run-stories", env=env, cwd=tmp_path)]
    ig.fail("reels_tray", status=429)
    outputs.append(run_process("run-stories", env=env, cwd=tmp_path))
    outputs.append(run_process("status", env=env, cwd=tmp_path))
    outputs.append(run_process("status", "--json", env=env, cwd=tmp_path))
    text = "".join(r.output for r in outputs)
    settings = ig.settings()
    cookies = {k: v for k, v in settings["cookies"].items() if k != "ds_user_id"}  # the user pk is public
    secrets = [ig.password, ig.sessionid, *cookies.values(), ig.csrftoken]
    assert len(secrets) >= 5
    for secret in secrets:
        assert str(secret) not in text, f"secret leaked: {secret[:4]}..."
    assert outputs[0].code == 0 and outputs[1].code == 75


def test_unreachable_instagram_exits_75(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    follow_with_stories(ig, ["alice"], per_user=1, liked=0)
    env["TARGET_ACCOUNTS"] = "alice"
    login(ig, env, tmp_path)
    ig.stop()
    result = run_cli("run-stories", env=env, cwd=tmp_path)
    assert result.code == 75, result.output
    assert "unreachable" in result.error


def test_many_targets_request_economy(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    """The issue's figure: 50 targets, 20 with 3 stories of which 1 already liked."""
    names = [f"friend_{n:02d}" for n in range(50)]
    follow_with_stories(ig, names[:20], per_user=3, liked=1)
    for name in names[20:]:
        ig.add_user(name)
    env |= {"TARGET_ACCOUNTS": ",".join(names), "STORY_LIKES_PER_HOUR": "100", "STORY_LIKES_PER_DAY": "500"}
    login(ig, env, tmp_path)
    first = run_cli("run-stories", env=env, cwd=tmp_path)
    assert first.code == 0, first.output
    first_requests = ig.count()
    assert ig.count("send_story_like") == 40
    floor = 1 + 3 + 20 + 40  # tray + 50 first checks in batches of 20 + one seen per target with likes + likes
    ig.reset_requests()
    second = run_cli("run-stories", env=env, cwd=tmp_path)
    assert second.code == 0
    print(f"\n50 targets: first pass {first_requests} requests (floor {floor}), second pass {ig.count()}")
    assert first_requests <= floor + 1  # + one page of the following list, once, to resolve the 30 quiet targets
    assert ig.count() == 1
