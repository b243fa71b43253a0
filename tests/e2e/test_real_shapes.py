"""The story passes end to end: the installed CLI, the real instagrapi, the double speaking the shapes real Instagram
answers with (REAL_SHAPES.md: the own reel, hashtag, location and ad reels and lives in the tray, metadata-only
entries, a lossy tray, mixed number/string ids, 19-digit pks, minimal item users, no friendship status in
``usernameinfo``, ``{"reel": null}``, "Not authorized to view user"). One test per defect of the issue; each
holds on the current code.

The CLI's clock cannot be moved, so "a day later" is made by moving the stored times back in the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from story_liker.db import make_engine
from story_liker.models import Target
from story_liker.store import Store
from tests.conftest import Result, login, run_cli
from tests.double import DUser, InstagramDouble

DAY = timedelta(days=1)


@contextmanager
def database(env: dict[str, str]) -> Iterator[Store]:
    store = Store(make_engine(env["DATABASE_URL"]))
    try:
        yield store
    finally:
        store.engine.dispose()


def targets(env: dict[str, str], ig: Any) -> dict[str, Target]:
    with database(env) as store:
        return {t.username: t for t in store.targets(ig.username, enabled_only=False)}


def move_back(env: dict[str, str], ig: Any, by: timedelta, *fields: str) -> None:
    """As if ``by`` had passed: the targets' stored times (``fields``) moved back."""
    with database(env) as store:
        updates = {}
        for target in store.targets(ig.username, enabled_only=False):
            assert target.id is not None
            values = {f: getattr(target, f) - by for f in fields if getattr(target, f) is not None}
            if values:
                updates[target.id] = values
        store.update_targets(updates)


def walk_is_due(env: dict[str, str], ig: Any) -> None:
    """As if a day had passed since the own following list was walked."""
    with database(env) as store:
        store.mark_following_synced(ig.username, datetime.now(UTC) - DAY - timedelta(minutes=1))


def story_reads(ig: InstagramDouble, user: DUser) -> int:
    return ig.count(f"feed/user/{user.pk}/story/")


def batched(ig: Any) -> list[str]:
    """Every user pk asked for in ``reels_media`` requests so far."""
    return [str(pk) for rec in ig.requests if rec.path.endswith("/feed/reels_media/") for pk in rec.form["user_ids"]]


def run(env: dict[str, str], tmp_path: Path) -> Result:
    result = run_cli("run-stories", env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    assert "Traceback" not in result.output
    return result


def summary(result: Result) -> dict[str, Any]:
    return result.event("run_finished")


# (1) ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("walk", ["following walked", "no following walk"])
def test_a_public_account_you_do_not_follow_gets_its_stories_liked(
    ig: Any, env: dict[str, str], tmp_path: Path, walk: str
) -> None:
    star = ig.add_user("public_star", followed=False)
    shown = [ig.add_story(star), ig.add_story(star)]
    friend = ig.add_user("friend")
    ig.add_story(friend)
    env["TARGET_ACCOUNTS"] = "public_star,friend"
    if walk == "no following walk":
        env["FOLLOWING_SYNC_MAX_PAGES"] = "0"  # the follow state stays unknown: usernameinfo does not say
    login(ig, env, tmp_path)

    result = run(env, tmp_path)

    assert {s.id for s in shown} <= ig.liked_story_ids and len(ig.liked_story_ids) == 3
    assert ig.count("public_star/usernameinfo/") == 1  # its pk; the answer has no friendship_status
    # not followed (or not known to be): in a reels_media batch, which answers for a public account as the app's
    # story viewer gets it; no read of its own
    assert str(star.pk) in batched(ig) and story_reads(ig, star) == 0
    assert summary(result)["errors"] == 0
    assert targets(env, ig)["public_star"].followed is (False if walk == "following walked" else None)


def test_a_nothing_new_pass_with_targets_you_do_not_follow_is_one_request(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    """Public with stories (in the batch answer), public with none now and private (both left out of it: their own
    read tells which): read on the first pass; the next pass, with nothing new, is the tray alone."""
    star = ig.add_user("public_star", followed=False)
    ig.add_story(star)
    quiet = ig.add_user("quiet_star", followed=False)
    secret = ig.add_user("secretive", private=True, followed=False)
    ig.add_story(secret)
    friend = ig.add_user("friend")
    ig.add_story(friend)
    env["TARGET_ACCOUNTS"] = "public_star,quiet_star,secretive,friend"
    login(ig, env, tmp_path)

    first = run(env, tmp_path)
    assert sorted(batched(ig)) == sorted(str(u.pk) for u in (star, quiet, secret, friend))
    assert [story_reads(ig, u) for u in (star, quiet, secret)] == [0, 1, 1]  # the two left out, read alone
    assert summary(first)["liked"] == 2 and summary(first)["errors"] == 0
    assert targets(env, ig)["secretive"].unavailable == "private"
    assert targets(env, ig)["quiet_star"].unavailable is None

    ig.reset_requests()
    second = run(env, tmp_path)
    assert ig.paths() == ["POST /api/v1/feed/reels_tray/"]
    assert summary(second)["requests"] == 1 and summary(second)["errors"] == 0


def test_a_target_you_do_not_follow_is_checked_again_when_due_in_one_batch(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    """Six hours on (STORY_RECHECK_HOURS), the due targets not followed make one batch; the public one that posted
    in between is in its answer and liked, the quiet one is left out and read alone; the private one waits for its
    daily recheck."""
    star, quiet = ig.add_user("public_star", followed=False), ig.add_user("quiet_star", followed=False)
    secret = ig.add_user("secretive", private=True, followed=False)
    env["TARGET_ACCOUNTS"] = "public_star,quiet_star,secretive"
    login(ig, env, tmp_path)
    run(env, tmp_path)
    new = ig.add_story(star)

    move_back(env, ig, timedelta(hours=6), "story_checked_at")
    ig.reset_requests()
    later = run(env, tmp_path)
    assert sorted(batched(ig)) == sorted(str(u.pk) for u in (star, quiet))
    assert [story_reads(ig, u) for u in (star, quiet, secret)] == [0, 1, 0]
    assert new.liked and summary(later)["requests"] == 1 + 1 + 1 + 2  # tray, batch, own read, seen, like


def last_contact_back(env: dict[str, str], ig: Any, by: timedelta) -> None:
    """As if the account's last run (the stored session's time) had been ``by`` ago."""
    import sqlalchemy as sa
    from sqlmodel import col

    from story_liker.models import Account

    with database(env) as store, store.engine.begin() as conn:
        at = datetime.now(UTC) - by
        conn.execute(sa.update(Account).where(col(Account.username) == ig.username).values(saved_at=at))


def test_the_tray_is_asked_cold_after_half_an_hour_and_refreshed_right_after_a_run(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    """The reason the app gives: ``cold_start`` when it would have been closed (no run for 30 min), then
    ``pull_to_refresh`` for a pass right after; each a nothing-new pass of one request with a target not followed."""
    friend, star = ig.add_user("friend"), ig.add_user("public_star", followed=False)
    ig.add_story(friend)
    ig.add_story(star)
    env["TARGET_ACCOUNTS"] = "friend,public_star"
    login(ig, env, tmp_path)
    run(env, tmp_path)

    last_contact_back(env, ig, timedelta(minutes=31))
    ig.reset_requests()
    cold = run(env, tmp_path)
    assert ig.tray_reasons() == ["cold_start"] and summary(cold)["requests"] == 1

    ig.reset_requests()
    warm = run(env, tmp_path)
    assert ig.tray_reasons() == ["pull_to_refresh"] and summary(warm)["requests"] == 1
    assert ig.paths() == ["POST /api/v1/feed/reels_tray/"]


# (2) ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("why", ["muted", "dropped by the tray"])
def test_a_followed_target_missing_from_the_tray_is_checked_on_its_first_pass(
    ig: Any, env: dict[str, str], tmp_path: Path, why: str
) -> None:
    quiet = ig.add_user("quiet_one", muted=why == "muted")
    quiet.in_tray = why != "dropped by the tray"
    stories = [ig.add_story(quiet), ig.add_story(quiet)]
    shown = ig.add_user("shown")
    ig.add_story(shown)
    env["TARGET_ACCOUNTS"] = "quiet_one,shown"
    login(ig, env, tmp_path)
    assert ig.tray_dropped() == [quiet]

    result = run(env, tmp_path)

    assert {s.id for s in stories} <= ig.liked_story_ids and len(ig.liked_story_ids) == 3
    assert str(quiet.pk) in batched(ig) and story_reads(ig, quiet) == 0  # followed: batched, not read alone
    assert targets(env, ig)["quiet_one"].followed is True
    assert summary(result)["errors"] == 0


def test_a_target_unfollowed_later_is_read_in_batches_after_the_daily_following_walk(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    bob = ig.add_user("bob")
    first_story = ig.add_story(bob)
    env["TARGET_ACCOUNTS"] = "bob"
    login(ig, env, tmp_path)
    run(env, tmp_path)
    assert first_story.liked and targets(env, ig)["bob"].followed is True

    bob.followed = False  # unfollowed in the app: out of the tray and out of the following list
    later = ig.add_story(bob)
    walk_is_due(env, ig)
    move_back(env, ig, timedelta(hours=6), "story_checked_at")  # due: out of the tray, checked on the interval
    ig.reset_requests()
    result = run(env, tmp_path)

    assert ig.count("/following/") == 1  # the daily walk: bob is in it no more
    assert targets(env, ig)["bob"].followed is False
    assert story_reads(ig, bob) == 0 and batched(ig) == [str(bob.pk)]  # public: the batch answers for him
    assert later.liked and summary(result)["errors"] == 0

    ig.reset_requests()
    run(env, tmp_path)  # and so on, when due, while not followed: nothing new now, so the tray alone
    assert ig.paths() == ["POST /api/v1/feed/reels_tray/"]


# (3) ---------------------------------------------------------------------------------------------------------


def test_a_reel_missing_from_reels_media_is_settled_and_the_next_pass_is_one_request(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    alice = ig.add_user("alice")
    ig.add_story(alice)
    ig.add_story(alice)
    ig.expire_on_fetch(alice)  # in the tray, gone by the time its reel is asked for
    env["TARGET_ACCOUNTS"] = "alice"
    login(ig, env, tmp_path)

    first = run(env, tmp_path)
    assert str(alice.pk) in batched(ig) and ig.liked_story_ids == set()
    assert summary(first)["errors"] == 0

    ig.reset_requests()
    second = run(env, tmp_path)  # the tray still says the same: nothing new
    assert ig.paths() == ["POST /api/v1/feed/reels_tray/"]
    assert summary(second)["requests"] == 1 and summary(second)["errors"] == 0


# (4) ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("accounts", ["alice,bob", "*"])
def test_the_trays_other_entries_are_never_liked_and_never_errors(
    ig: Any, env: dict[str, str], tmp_path: Path, accounts: str
) -> None:
    alice, bob = ig.add_user("alice"), ig.add_user("bob")
    mine = [ig.add_story(alice), ig.add_story(alice, close_friends=True), ig.add_story(bob)]
    bob.live = True  # live now as well: in the tray's broadcasts
    env["TARGET_ACCOUNTS"] = accounts
    login(ig, env, tmp_path)
    extras = {s.id for s in ig.extra_stories}  # the own reel, #travel, the ad, the suggested reel
    assert len(extras) >= 4

    result = run(env, tmp_path)

    assert ig.liked_story_ids == {s.id for s in mine}
    assert not extras & {media for media, _, _ in ig.seen_values()}
    assert summary(result)["errors"] == 0 and summary(result)["liked"] == 3
    assert [e for e in result.events() if e["event"] in ("malformed_item", "malformed_response")] == []
    assert sorted(targets(env, ig)) == ["alice", "bob"]  # `*` adopted no sponsor, hashtag, live or own account

    ig.reset_requests()
    again = run(env, tmp_path)
    assert summary(again)["errors"] == 0 and ig.paths() == ["POST /api/v1/feed/reels_tray/"]


# (5) ---------------------------------------------------------------------------------------------------------


def test_the_marker_never_passes_a_story_dropped_as_malformed(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    alice = ig.add_user("alice")
    now = datetime.now(UTC).timestamp()
    older = ig.add_story(alice, taken_at=now - 600)
    newest = ig.add_story(alice, taken_at=now - 60)
    ig.break_story(newest, times=1)  # the next reels answer carries it without taken_at
    env["TARGET_ACCOUNTS"] = "alice"
    login(ig, env, tmp_path)

    first = run(env, tmp_path)
    assert ig.liked_story_ids == {older.id}
    assert summary(first)["errors"] == 1 and first.event("malformed_item")
    assert targets(env, ig)["alice"].story_marker == older.taken_at  # not the tray's latest_reel_media

    second = run(env, tmp_path)  # it parses now: the tray is newer than the marker, so it is fetched and liked
    assert ig.liked_story_ids == {older.id, newest.id}
    assert summary(second)["liked"] == 1 and summary(second)["errors"] == 0
    assert targets(env, ig)["alice"].story_marker == newest.taken_at


# (6) ---------------------------------------------------------------------------------------------------------


def test_a_private_account_you_do_not_follow_costs_one_failing_request_a_day_and_no_error(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    secret = ig.add_user("secretive", private=True, followed=False)
    ig.add_story(secret)
    friend = ig.add_user("friend")
    ig.add_story(friend)
    env["TARGET_ACCOUNTS"] = "secretive,friend"
    login(ig, env, tmp_path)

    first = run(env, tmp_path)
    assert story_reads(ig, secret) == 1  # 400 "Not authorized to view user"
    assert summary(first)["errors"] == 0 and friend.pk in {s.user.pk for s in ig.stories if s.liked}
    assert targets(env, ig)["secretive"].unavailable == "private"

    for _ in range(2):  # the same day: not asked again
        ig.reset_requests()
        later = run(env, tmp_path)
        assert story_reads(ig, secret) == 0 and summary(later)["errors"] == 0

    move_back(env, ig, DAY, "last_error_at")
    ig.reset_requests()
    next_day = run(env, tmp_path)
    assert story_reads(ig, secret) == 1 and summary(next_day)["errors"] == 0
    assert ig.liked_story_ids.isdisjoint({s.id for s in ig.stories if s.user is secret})


# (7) ---------------------------------------------------------------------------------------------------------


def test_one_seen_request_per_target_after_its_likes_with_taken_at_and_a_rising_seen_at(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    """Through instagrapi and the double: each reel watched (a fifth of the real watch times, so a photo is on
    screen about a second), liked while watched, then one seen report with the moments the watching began."""
    now = int(datetime.now(UTC).timestamp())
    alice, bob, carol = ig.add_user("alice"), ig.add_user("bob"), ig.add_user("carol")
    alice_stories = [
        ig.add_story(alice, taken_at=now - 3000),
        ig.add_story(alice, taken_at=now - 2000, close_friends=True),
        *ig.add_segmented_video(alice, 3, taken_at=now - 1000),  # three items, the same second
        ig.add_story(alice, taken_at=now - 5, reshare=True),
    ]
    bob_stories = [ig.add_story(bob, taken_at=now - 500), ig.add_story(bob, taken_at=now - 400)]
    ig.add_story(carol, liked=True)  # nothing to like: no seen request for carol
    env |= {"TARGET_ACCOUNTS": "alice,bob,carol", "STORY_WATCH_PERCENT": "20"}
    login(ig, env, tmp_path)

    result = run(env, tmp_path)

    assert summary(result)["liked"] == len(alice_stories) + len(bob_stories)
    assert len(ig.seen_requests) == 2 == ig.count("media/seen")
    by_owner = {}
    for request in ig.seen_requests:
        owners = {key.split("_")[1] for key in request.reels}
        assert len(owners) == 1 and all(key.split("_")[2] == key.split("_")[1] for key in request.reels)
        by_owner[owners.pop()] = request
    assert set(by_owner) == {str(alice.pk), str(bob.pk)}
    for user, stories in ((alice, alice_stories), (bob, bob_stories)):
        request = by_owner[str(user.pk)]
        values = request.values()
        assert [media for media, _, _ in values] == [s.id for s in stories]  # the stories liked, oldest first
        assert [taken for _, taken, _ in values] == [s.taken_at for s in stories]  # each story's own taken_at
        seen = [at for _, _, at in values]
        assert all(taken <= at <= request.received_at for (_, taken, at) in values)
        assert seen == sorted(seen) and len(set(seen)) == len(seen)  # rising as the viewer moves through
        for story in stories:  # sent once that target's reel was watched and its stories liked
            like = ig.like_index(story.id)
            assert like is not None and like < request.index


# coverage ----------------------------------------------------------------------------------------------------


def test_every_target_is_checked_and_liked_when_the_tray_leaves_a_fifth_out(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    ig.tray_drop = 0.2
    users = [ig.add_user(f"friend_{n:02d}") for n in range(25)]
    for user in users:
        ig.add_story(user, taken_at=datetime.now(UTC).timestamp() - 3600)
    dropped = ig.tray_dropped()
    assert len(dropped) == 5
    env |= {
        "TARGET_ACCOUNTS": ",".join(u.username for u in users),
        "REELS_BATCH_SIZE": "5",  # the 20 in the tray fill whole batches: no free slot for the 5 left out
        "STORY_LIKES_PER_HOUR": "500",
        "STORY_LIKES_PER_DAY": "2000",
        "STORY_RECHECK_HOURS": "6",
    }
    login(ig, env, tmp_path)
    step = timedelta(hours=2)

    posted = datetime.now(UTC).timestamp() - 3000
    for round_ in range(5):
        for user in users:
            ig.add_story(user, taken_at=posted + round_ * 60)  # each round's stories a minute after the last
        result = run(env, tmp_path)
        assert summary(result)["errors"] == 0
        now = datetime.now(UTC)
        checked = {name: t.story_checked_at for name, t in targets(env, ig).items()}
        assert all(at is not None and now - at < timedelta(hours=6) for at in checked.values()), checked
        move_back(env, ig, step, "story_checked_at")  # two hours later
    move_back(env, ig, timedelta(hours=4), "story_checked_at")  # six hours after the last pass
    ig.reset_requests()
    run(env, tmp_path)
    assert {str(u.pk) for u in dropped} <= set(batched(ig))  # due again: checked, in the batches

    assert ig.liked_story_ids == {s.id for s in ig.stories}
    with database(env) as store:
        assert store.liked_story_pks(ig.username, [str(s.pk) for s in ig.stories]) == {str(s.pk) for s in ig.stories}


# posts -------------------------------------------------------------------------------------------------------


def test_a_real_posts_feed_pinned_first_a_carousel_and_a_clip(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    alice = ig.add_user("alice")
    now = int(datetime.now(UTC).timestamp())
    pinned = ig.add_post(alice, taken_at=now - 200 * 86400, pinned=True)  # first in the feed, far too old
    album = ig.add_post(alice, taken_at=now - 2 * 3600, media_type=8)
    clip = ig.add_post(alice, taken_at=now - 3 * 3600, media_type=2, product_type="clips")
    photo = ig.add_post(alice, taken_at=now - 4 * 3600)
    env["TARGET_ACCOUNTS"] = "alice"
    login(ig, env, tmp_path)

    result = run_cli("run-posts", env=env, cwd=tmp_path)

    assert result.code == 0, result.output
    assert ig.liked_media_ids == {album.id, clip.id, photo.id} and pinned.id not in ig.liked_media_ids
    assert summary(result)["errors"] == 0
    assert targets(env, ig)["alice"].post_marker == album.taken_at  # not the pinned post's age
    ig.reset_requests()
    again = run_cli("run-posts", env=env, cwd=tmp_path)
    assert again.code == 0 and summary(again)["liked"] == 0 and ig.count("/like/") == 0


def test_a_collab_post_in_a_targets_feed_by_an_account_that_is_no_target(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    alice, bob = ig.add_user("alice"), ig.add_user("bob")  # bob: followed, no target
    now = int(datetime.now(UTC).timestamp())
    own = [ig.add_post(alice, taken_at=now - 2 * 3600), ig.add_post(alice, taken_at=now - 3 * 3600)]
    collab = ig.add_post(bob, taken_at=now - 3600, coauthors=[alice])  # in alice's feed, authored by bob
    env["TARGET_ACCOUNTS"] = "alice"
    login(ig, env, tmp_path)

    result = run_cli("run-posts", env=env, cwd=tmp_path)

    assert result.code == 0, result.output
    assert {p.id for p in own} <= ig.liked_media_ids <= {collab.id, *(p.id for p in own)}
    assert summary(result)["errors"] == 0
    assert targets(env, ig)["alice"].post_marker is not None


def test_the_home_feed_first_then_the_sweep_likes_what_the_feed_left_out_and_never_an_ad(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    """Posts end to end: the real home feed (ads, suggested posts and users, story and reel cards, ranked
    and lossy) through the real instagrapi. The first pass reads it and the first of the four new targets'
    profiles (the others' first reads come at their own times over POST_RECHECK_HOURS: bob 6 h on, carol 12 h,
    dave 18 h); a pass three hours later reads the home feed and only its share of the profiles, and likes a new
    post the feed shows without opening that profile; a post the feed never shows is liked once its profile
    comes round."""
    names = ["alice", "bob", "carol", "dave"]
    users = {name: ig.add_user(name) for name in names}
    eve = ig.add_user("eve")  # followed, no target: her posts are in the home feed and never liked
    users["dave"].in_timeline = False  # the ranked feed never shows dave's posts
    ig.timeline_drop = 0.0
    now = int(datetime.now(UTC).timestamp())
    first_posts = [ig.add_post(user, taken_at=now - 5 * 3600) for user in users.values()]
    ig.add_post(eve, taken_at=now - 3600)
    env["TARGET_ACCOUNTS"] = ",".join(names)
    login(ig, env, tmp_path)

    first = run_cli("run-posts", env=env, cwd=tmp_path)
    assert first.code == 0, first.output
    assert ig.liked_media_ids == {p.id for p in first_posts[:3]}  # what the home feed showed
    assert ig.count("feed/user/") == 1 and ig.count("feed/timeline/") in (1, 2)  # alice's: the first of four

    ig.reset_requests()
    later = ("post_checked_at", "added_at")
    move_back(env, ig, timedelta(hours=3), *later)  # three hours later
    fresh = ig.add_post(users["carol"], taken_at=now - 600)  # shown by the home feed
    missed = ig.add_post(users["dave"], taken_at=now - 300)  # never in the home feed
    second = run_cli("run-posts", env=env, cwd=tmp_path)
    assert second.code == 0, second.output
    assert fresh.liked and not missed.liked
    profiles = [p.split(" ")[1].split("?")[0] for p in ig.paths() if "feed/user/" in p]
    assert profiles == [f"/api/v1/feed/user/{users['alice'].pk}/"]  # ceil(4 x 3 h / 24 h) = 1, the first in line
    assert ig.count("feed/timeline/") <= 2 and ig.count("/like/") == 1  # POST_TIMELINE_PAGES; each like once
    assert not ig.liked_media_ids & {p.id for p in ig.extra_posts}  # no ad, no suggested post
    assert not any(p.liked for p in ig.posts if p.user is eve)

    passes = 0
    while not missed.liked and passes < 8:  # at most a day of 3-hourly passes until dave's profile is read
        move_back(env, ig, timedelta(hours=3), *later)
        assert run_cli("run-posts", env=env, cwd=tmp_path).code == 0
        passes += 1
    assert missed.liked and first_posts[3].liked and passes == 5  # dave's first read, 18 h after he was added
    assert targets(env, ig)["dave"].post_marker == missed.taken_at
