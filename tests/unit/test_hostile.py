"""The second hostile review of the safety round, in-process: each test failed on the code it was found in."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import pytest

from story_liker.errors import (
    DatabaseUnavailable,
    NetworkError,
    SessionExpired,
    StoryLikerError,
    Throttled,
    ThrottleKind,
)
from story_liker.ig.types import PostItem, StoryItem, UserRef
from story_liker.jobs.deps import Outcome
from story_liker.jobs.posts import run_posts
from story_liker.jobs.stories import run_stories
from story_liker.store import Store
from tests.fake import ME, START, Harness, ScriptedInstagram, stored_id, story, tray_of

NAMES = {101: "alice", 102: "bob", 103: "carol"}


@pytest.fixture
def h(store: Store) -> Harness:
    harness = Harness(store, overrides={"target_accounts": ",".join(NAMES.values())})
    harness.store_session()
    return harness


def stories(h: Harness, ig: ScriptedInstagram, **kwargs: Any) -> Outcome:
    outcome = run_stories(h.deps(ig), dry_run=False, max_likes=kwargs.get("max_likes")).outcome
    assert isinstance(outcome, Outcome)
    return outcome


def followed_instagram(h: Harness, reels: dict[int, list[StoryItem]], **values: Any) -> ScriptedInstagram:
    followed = [UserRef(pk, name, True) for pk, name in NAMES.items()]
    return ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels, followed=followed, **values)


def post(user_pk: int, n: int, *, hours_ago: float = 1, **values: Any) -> PostItem:
    fields: dict[str, Any] = {"media_type": "photo", "has_liked": False} | values
    return PostItem(f"{user_pk}{n:04d}", user_pk, START - timedelta(hours=hours_ago), **fields)


# 1 ---------------------------------------------------------------------------------------------------------
def test_a_5xx_like_whose_release_failed_is_liked_later(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Instagram answered 503 to the like (it did not act); the database hiccuped on the release. The story was
    then taken for a 'lost like' forever (has_liked not said), its marker passed it: never liked. Now the release
    is tried again at the end of the pass."""
    one = StoryItem(story(101, 1, at=h.clock()).pk, 101, h.clock() - timedelta(hours=1), None)
    ig = followed_instagram(h, {101: [one]})
    ig.script["like_story"] = [NetworkError("Instagram answered 503 on like_story", answered=True)]
    original, hiccups = h.store.release_like, [DatabaseUnavailable("database unavailable (test)")]

    def release_hiccups(action_id: int) -> None:
        if hiccups:
            raise hiccups.pop()
        original(action_id)

    monkeypatch.setattr(h.store, "release_like", release_hiccups)
    with pytest.raises(NetworkError):
        stories(h, ig)
    monkeypatch.undo()
    for _ in range(3):
        h.clock.advance(hours=1)
        again = followed_instagram(h, {101: [one]})
        stories(h, again)
        if again.liked:
            break
    assert again.liked == [one.pk]


def test_a_like_whose_release_never_went_through_is_never_sent_blindly(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database down for the whole pass: the reservation stays, so the like reads as one whose answer was lost.
    When Instagram does not say whether the story is liked, it is left: the rule never risks a second like."""
    one = StoryItem(story(101, 1, at=h.clock()).pk, 101, h.clock() - timedelta(hours=1), None)
    ig = followed_instagram(h, {101: [one]})
    ig.script["like_story"] = [NetworkError("Instagram answered 503 on like_story", answered=True)]

    def release_fails(action_id: int) -> None:
        raise DatabaseUnavailable("database unavailable (test)")

    monkeypatch.setattr(h.store, "release_like", release_fails)
    with pytest.raises(NetworkError):
        stories(h, ig)
    monkeypatch.undo()
    h.clock.advance(hours=1)
    again = followed_instagram(h, {101: [one]})
    stories(h, again)
    assert again.liked == [] and again.names().count("like_story") == 0


# 2 ---------------------------------------------------------------------------------------------------------
def test_a_post_the_profile_shows_liked_is_not_liked_again_because_the_home_feed_said_not(h: Harness) -> None:
    """The same post in the home feed (has_liked false) and in alice's profile (has_liked true) in one pass: the
    home feed's copy wins, and a like goes out for a post Instagram just said is liked."""
    followed = [UserRef(pk, name, True) for pk, name in NAMES.items()]
    in_feed = post(101, 1)
    in_profile = PostItem(**{**in_feed.__dict__, "has_liked": True})
    ig = ScriptedInstagram(h.clock, followed=followed, timeline=[[in_feed]], posts={101: [in_profile]})
    run_posts(h.deps(ig), dry_run=False, max_likes=None)
    assert "user_posts" in ig.names()  # the profile was read in this pass
    assert ig.liked == [], ig.names()


# 3 ---------------------------------------------------------------------------------------------------------
def test_an_action_block_starts_a_cooldown_even_when_the_target_update_fails(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """feedback_required on a like, then the database refuses the pass's last write (update_targets in the
    finally): DatabaseUnavailable replaces Throttled, no cooldown is stored, and the next run likes at once into
    the action block."""
    ig = followed_instagram(h, {101: [story(101, n, at=h.clock()) for n in (1, 2)]})
    ig.script["like_story"] = [Throttled("feedback_required", kind=ThrottleKind.FEEDBACK_REQUIRED)]
    original = h.store.update_targets
    calls = {"n": 0}

    def fail_after_like(updates: dict[int, dict[str, Any]]) -> None:
        if "like_story" in ig.names():
            calls["n"] += 1
            if calls["n"] == 1:
                raise DatabaseUnavailable("database unavailable (test)")
        original(updates)

    monkeypatch.setattr(h.store, "update_targets", fail_after_like)
    with pytest.raises(Exception) as raised:
        stories(h, ig)
    monkeypatch.undo()
    h.clock.advance(minutes=15)  # the scheduler's next run (69 is retried)
    again = followed_instagram(h, {101: [story(101, n, at=h.clock()) for n in (1, 2)]})
    with contextlib.suppress(StoryLikerError):  # whatever the next run meets, it must not like into the block
        stories(h, again)
    assert again.liked == [], f"first run ended with {type(raised.value).__name__}; next run liked {again.liked}"


def test_an_action_block_starts_a_cooldown_even_when_the_share_cannot_be_stored(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Likes.one's Throttled branch writes the reduced share (set_limit_state) before re-raising: a database
    error there replaces the action block, so with_instagram never stores the cooldown."""
    ig = followed_instagram(h, {101: [story(101, n, at=h.clock()) for n in (1, 2)]})
    ig.script["like_story"] = [Throttled("feedback_required", kind=ThrottleKind.FEEDBACK_REQUIRED)]

    def fails(*args: Any, **kwargs: Any) -> None:
        raise DatabaseUnavailable("database unavailable (test)")

    monkeypatch.setattr(h.store, "set_limit_state", fails)
    with pytest.raises(Exception) as raised:
        stories(h, ig)
    monkeypatch.undo()
    assert isinstance(raised.value, Throttled), type(raised.value)
    assert h.store.account(ME).cooldown_until is not None


# 4 ---------------------------------------------------------------------------------------------------------
def test_the_story_whose_like_met_login_required_is_liked_after_the_relogin(h: Harness) -> None:
    h.overrides["ig_password"] = "hunter2-password"
    one, two = story(101, 1, at=h.clock()), story(102, 1, at=h.clock())
    ig = followed_instagram(h, {101: [one], 102: [two]})
    ig.script["like_story"] = [SessionExpired("login_required on like_story")]
    stories(h, ig)
    assert ig.names().count("relogin") == 1
    assert sorted(ig.liked) == sorted([one.pk, two.pk]), " ".join(ig.names())


# 5 ---------------------------------------------------------------------------------------------------------
def test_two_targets_that_are_one_user_are_read_once_per_pass(store: Store) -> None:
    """alice (resolved to user 101) renamed herself alicia; the person added the new name and kept the old one.
    Both rows carry user pk 101: every later pass reads her stories twice (and her profile twice)."""
    h = Harness(store, overrides={"target_accounts": "alice", "following_sync_max_pages": 0})
    h.store_session()
    reels = {101: [story(101, 1, at=h.clock())]}
    stories(h, ScriptedInstagram(h.clock, reels=reels, users={"alice": UserRef(101, "alice", False)}))
    h.overrides["target_accounts"] = "alice,alicia"  # the rename: the old name no longer resolves
    renamed = {"alicia": UserRef(101, "alicia", False)}
    h.clock.advance(hours=1)
    stories(h, ScriptedInstagram(h.clock, reels=reels, users=renamed))
    assert {t.username: t.user_pk for t in h.store.targets(ME)} == {"alice": 101, "alicia": 101}
    h.clock.advance(hours=7)  # due again (not followed: read on the recheck interval, in a batch)
    again = ScriptedInstagram(h.clock, reels=reels, users=renamed)
    stories(h, again)
    posts = ScriptedInstagram(h.clock, reels=reels, users=renamed, posts={101: [post(101, 1)]})
    run_posts(h.deps(posts), dry_run=False, max_likes=None)
    asked = [pk for c in again.calls if c.name == "reels_media" for pk in c.arg]
    assert asked + [c.arg for c in again.calls if c.name == "user_stories"] == [101], again.names()
    assert posts.names().count("user_posts") == 1, posts.names()


# 6 ---------------------------------------------------------------------------------------------------------
def test_a_profile_that_always_fails_is_backed_off_though_the_story_passes_succeed(h: Harness) -> None:
    """alice's own feed answers 500 every time; her stories (tray) read fine every hour. Each story pass clears
    the failures the post pass counted, so retry_at never doubles: her profile is asked at every post pass."""
    fault = NetworkError("Instagram answered 500 on user_posts", answered=True)
    reads = 0
    for hour in range(24):
        reels = {101: [story(101, hour, at=h.clock())]}
        stories(h, followed_instagram(h, reels))
        if hour % 3 == 0:
            ig = ScriptedInstagram(
                h.clock,
                followed=[UserRef(pk, name, True) for pk, name in NAMES.items()],
                fail_for={("user_posts", 101): fault},
            )
            run_posts(h.deps(ig), dry_run=False, max_likes=None)
            reads += [c.arg for c in ig.calls if c.name == "user_posts"].count(101)
        h.clock.advance(hours=1)
    # retry_at alone: read at 0 h (fail 1, +1 h), 3 h (fail 2, +2 h), 6 h (fail 3, +4 h), 12 h (fail 4, +8 h),
    # 21 h (fail 5): 5 reads in a day
    assert reads <= 5, reads


# 7 ---------------------------------------------------------------------------------------------------------
def test_target_exclude_naming_a_renamed_adopted_account_by_its_new_name_excludes_it(store: Store) -> None:
    """TARGET_ACCOUNTS=* adopted alice (user 101); she renamed herself alice.new, which is the name the person
    sees and puts in TARGET_EXCLUDE. adopt_targets skips the tray entry (its name is excluded) but disables only
    rows whose *stored* username is excluded: alice stays enabled and her stories keep being liked."""
    h = Harness(store, overrides={"target_accounts": "*"})
    h.store_session()
    reels = {pk: [story(pk, 1, at=h.clock())] for pk in NAMES}
    stories(h, followed_instagram(h, reels))
    h.clock.advance(hours=1)
    renamed = {**NAMES, 101: "alice.new"}
    h.overrides["target_exclude"] = "alice.new"
    fresh = {pk: [story(pk, 2, at=h.clock())] for pk in NAMES}
    ig = ScriptedInstagram(
        h.clock,
        tray=tray_of(fresh, renamed),
        reels=fresh,
        followed=[UserRef(pk, name, True) for pk, name in renamed.items()],
    )
    stories(h, ig)
    assert not any(pk.startswith("101") for pk in ig.liked), ig.liked
    assert 101 not in {t.user_pk for t in h.store.targets(ME)}


# 8 ---------------------------------------------------------------------------------------------------------
def test_a_following_walk_that_keeps_failing_does_not_stop_every_pass(h: Harness) -> None:
    """The daily following walk answers 500 (a page Instagram cannot serve). BadResponse there is skipped, but a
    NetworkError ends the pass before any read; the walk is still due next pass, so every hourly pass sends the
    tray and the walk, exits 75 and likes nothing, all day."""
    liked = walks = 0
    codes: list[str] = []
    for hour in range(6):
        reels = {pk: [story(pk, hour, at=h.clock())] for pk in NAMES}
        ig = followed_instagram(h, reels)
        ig.always["following_page"] = NetworkError("Instagram answered 500 on following", answered=True)
        try:
            codes.append(str(stories(h, ig)))
        except NetworkError:
            codes.append("75")
        liked += len(ig.liked)
        walks += ig.names().count("following_page")
        h.clock.advance(hours=1)
    assert liked == 18, (liked, walks, codes)


# 9 ---------------------------------------------------------------------------------------------------------
def test_switching_target_accounts_from_a_list_to_everyone_keeps_the_listed_accounts(h: Harness) -> None:
    """TARGET_ACCOUNTS=alice,bob,carol for a while, then `*`: sync_targets disables the env rows no longer named
    (named_targets is []), and adopt_targets never takes back a row it did not adopt itself, so the three accounts
    the person cared about most are the only followed accounts with stories that `*` never likes."""
    stories(h, followed_instagram(h, {pk: [story(pk, 1, at=h.clock())] for pk in NAMES}))
    h.overrides["target_accounts"] = "*"
    h.clock.advance(hours=1)
    fresh = {pk: [story(pk, 2, at=h.clock())] for pk in NAMES}
    ig = followed_instagram(h, fresh)
    stories(h, ig)
    assert sorted(ig.liked) == sorted(s.pk for items in fresh.values() for s in items), ig.liked


# 4b --------------------------------------------------------------------------------------------------------
def test_a_refused_post_like_does_not_take_the_slot_of_the_next_post(h: Harness) -> None:
    """Instagram refuses the first like (a 4xx, released: it does not count). The last round's fair share picks it
    again, Likes.one skips it as 'post_like_repeated' (logged as an ERROR), and the pass ends with one like of the
    two its limits allowed."""
    from story_liker.errors import BadResponse

    h.overrides |= {"post_likes_per_hour": 2, "post_timeline_pages": 0}
    followed = [UserRef(pk, name, True) for pk, name in NAMES.items()]
    three = [post(101, n, hours_ago=n) for n in (1, 2, 3)]
    ig = ScriptedInstagram(h.clock, followed=followed, posts={101: three})
    ig.script["like_post"] = [BadResponse("like of post not confirmed")]
    run_posts(h.deps(ig), dry_run=False, max_likes=None)
    assert len(ig.liked) == 2, (ig.liked, ig.names())


# 10 --------------------------------------------------------------------------------------------------------
def test_the_post_sweep_of_targets_not_followed_reaches_every_one_in_turn(store: Store) -> None:
    """120 public targets not followed, default delays: a post pass has time for about 60 profile reads. The
    stories' per-user reads go oldest-checked first; the post sweep puts the not-followed targets first in
    alphabetical order every pass, so the same 60 are read every 3 hours and the other 60 never are."""
    names = {6000 + n: f"user{n:03d}" for n in range(120)}
    delays = {
        "action_delay_min_seconds": 3,
        "action_delay_max_seconds": 12,
        "target_delay_min_seconds": 5,
        "target_delay_max_seconds": 20,
        "request_delay_min_seconds": 1,
        "request_delay_max_seconds": 3,
    }
    h = Harness(store, overrides={"target_accounts": ",".join(names.values()), "following_sync_max_pages": 0} | delays)
    h.store_session()
    from story_liker.jobs.targets import sync_targets

    sync_targets(h.deps(ScriptedInstagram(h.clock)))
    by_name = {name: pk for pk, name in names.items()}
    h.store.update_targets(
        {stored_id(t): {"user_pk": by_name[t.username], "followed": False} for t in h.store.targets(ME)}
    )
    for _ in range(8):  # a day of 3-hourly post passes
        ig = ScriptedInstagram(h.clock)
        run_posts(h.deps(ig), dry_run=False, max_likes=None)
        h.clock.advance(hours=3)
    unread = [t.username for t in h.store.targets(ME) if t.post_checked_at is None]
    assert unread == [], f"{len(unread)} of 120 never read in a day, from {unread[0]}"


# 11 --------------------------------------------------------------------------------------------------------
def test_everyone_adopts_a_followed_account_that_took_a_name_a_target_left(store: Store) -> None:
    """TARGET_ACCOUNTS=*: bob (user 102) renamed himself bobby; another followed user (999) took the name bob.
    adopt_targets matches the tray's (bob, 999) by name to the row of user 102 (its pk differs), so user 999 is
    never adopted, whatever the tray shows."""
    h = Harness(store, overrides={"target_accounts": "*"})
    h.store_session()
    stories(h, followed_instagram(h, {pk: [story(pk, 1, at=h.clock())] for pk in NAMES}))
    h.clock.advance(days=1, hours=1)
    names = {**NAMES, 102: "bobby", 999: "bob"}
    fresh = {pk: [story(pk, 2, at=h.clock())] for pk in names}
    ig = ScriptedInstagram(
        h.clock,
        tray=tray_of(fresh, names),
        reels=fresh,
        followed=[UserRef(pk, name, True) for pk, name in names.items()],
    )
    stories(h, ig)
    assert story(999, 2).pk in ig.liked, ig.liked
