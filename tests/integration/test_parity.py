"""The fake and the adapter in step, as llm keeps its sync and async models in step.

The pass logic is tested against the in-process fake (``tests.fake.ScriptedInstagram``), the adapter against the
double; these tests hold the two together. Every method of the `Instagram` and `Login` Protocols is called on the fake
and on the real adapter (``Instagrapi`` pointed at a running ``InstagramDouble``) for the same world, and must give:

- the same values, types included (pks as str, user pks as int, ``has_liked`` as said, ``taken_at`` aware UTC) and
  the same None-ness of the cursors (their values are each side's own);
- the same exception, with the same ``answered``, ``kind`` or ``reason``, for the same fault.

The world is built in the double (``build_world``); ``fake_of`` derives the fake from it: what a test must give the
fake for it to be Instagram as the double plays it. A fault the fake does not make by itself is given to it
(``always``, ``fail_for``, ``lost``): the fault tests prove the adapter raises that same exception for the double's
fault, so a test that scripts the fake with it scripts something that happens.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

import pytest

from story_liker.errors import (
    Gone,
    NeedsHuman,
    NetworkError,
    PasswordRejected,
    SessionExpired,
    StoryLikerError,
    TargetUnavailable,
    Throttled,
    ThrottleKind,
)
from story_liker.ig.adapter import Instagrapi
from story_liker.ig.types import Client, Connection, Instagram, Login, PostItem, StoryItem, TrayEntry, UserRef
from tests.double import FEEDBACK_REQUIRED_BODY, DPost, DStory, DUser, InstagramDouble, totp_code
from tests.fake import ME, FakeClock, ScriptedInstagram

OWN_PK = 4242  # the fake's account (tests.fake): the double is the same account
UNKNOWN = 999  # no user has this pk
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
MEDIA_TYPES = {1: "photo", 2: "video", 8: "album"}
P = ParamSpec("P")
T = TypeVar("T")

# --- the world, in the double and in the fake -------------------------------------------------------------------


@dataclass
class World:
    ig: InstagramDouble
    alice: DUser  # public, followed: stories (one liked, one for close friends, one expired), posts of every kind
    bob: DUser  # public, followed: a long video in three parts, a collab with alice
    carol: DUser  # private, followed
    dave: DUser  # private, not followed: unavailable
    erin: DUser  # public, not followed: readable, in no tray, following list or home feed but for a collab
    frank: DUser  # followed and muted: never in the tray
    expired: DStory  # alice's story of yesterday: gone
    deleted: PostItem  # a post of alice's that is no longer there

    def story(self) -> StoryItem:
        """alice's oldest live story not liked yet, as both sides read it."""
        live = [s for s in self.ig.stories if s.user is self.alice and s.live and not s.liked]
        return story_item(min(live, key=lambda s: (s.taken_at, s.pk)))

    def post(self) -> PostItem:
        """alice's newest post not liked yet, as both sides read it."""
        posts = [p for p in self.ig.posts if p.user is self.alice and not p.liked]
        return post_item(max(posts, key=lambda p: (p.taken_at, p.pk)))


def build_world(ig: InstagramDouble) -> World:
    now = int(time.time())
    alice, bob, carol = ig.add_user("alice"), ig.add_user("bob"), ig.add_user("carol", private=True)
    dave = ig.add_user("dave", private=True, followed=False)
    erin, frank = ig.add_user("erin", followed=False), ig.add_user("frank", muted=True)
    ig.add_story(alice, taken_at=now - 3000, liked=True)
    ig.add_story(alice, taken_at=now - 2000, close_friends=True)
    ig.add_story(alice, taken_at=now - 1000, media_type=2, reshare=True)
    expired = ig.add_story(alice, taken_at=now - 25 * 3600)
    ig.add_segmented_video(bob, 3, taken_at=now - 600)
    for user, age in ((carol, 1500), (dave, 1600), (erin, 1700), (frank, 1800)):
        ig.add_story(user, taken_at=now - age)
    ig.add_post(alice, taken_at=now - 90 * 86400, pinned=True)
    ig.add_post(alice, taken_at=now - 3600, liked=True)
    ig.add_post(alice, taken_at=now - 7200, media_type=2, product_type="clips")
    ig.add_post(alice, taken_at=now - 10800, media_type=8)
    ig.add_post(alice, taken_at=now - 14400, media_type=2)
    ig.add_post(bob, taken_at=now - 5400, coauthors=[alice])
    ig.add_post(bob, taken_at=now - 9000, pinned=True)
    ig.add_post(erin, taken_at=now - 6000, coauthors=[alice])  # in the home feed: alice is followed
    for user, age in ((carol, 4000), (dave, 4100), (erin, 4200), (frank, 4300)):
        ig.add_post(user, taken_at=now - age)
    deleted = PostItem("3512004999999999999", alice.pk, datetime.fromtimestamp(now - 60, UTC), "photo", False)
    ig.timeline_drop, ig.timeline_page_size = 0.0, 3  # the home feed shows every followed user's posts
    return World(ig, alice, bob, carol, dave, erin, frank, expired, deleted)


def story_item(story: DStory) -> StoryItem:
    taken_at = datetime.fromtimestamp(story.taken_at, UTC)
    return StoryItem(str(story.pk), story.user.pk, taken_at, story.liked, story.video_duration)


def post_item(post: DPost, feed: DUser | None = None) -> PostItem:
    """A post as read from ``feed``'s own feed (pinned there, or not), or from the home feed (``feed`` None)."""
    kind = "reel" if post.media_type == 2 and post.product_type == "clips" else MEDIA_TYPES[post.media_type]
    coauthors = tuple(u.pk for u in post.coauthors if u is not post.user)
    pinned = post.pinned and feed is post.user
    return PostItem(
        str(post.pk), post.user.pk, datetime.fromtimestamp(post.taken_at, UTC), kind, post.liked, coauthors, pinned
    )


def viewable(user: DUser) -> bool:
    return not user.private or user.followed


def fake_of(world: World) -> ScriptedInstagram:
    """The fake holding the double's world, as a test gives it: the tray lists the followed users with live stories
    (muted ones never), a reel holds the live stories oldest first, a feed the user's posts and collabs (pinned first,
    then newest first), the home feed the followed users' posts and their collabs newest first, a page of the double's
    size; a lookup does not say whether the user is followed. What the fake does not make by itself is given as
    faults: a private account not followed, an unknown pk, a story no longer live, a post no longer there."""
    ig = world.ig
    live = {
        user.pk: sorted((s for s in ig.stories if s.user is user and s.live), key=lambda s: (s.taken_at, s.pk))
        for user in ig.users
    }
    feeds = {
        user.pk: [
            post_item(p, user)
            for p in sorted(
                (p for p in ig.posts if p.user is user or user in p.coauthors),
                key=lambda p: (not (p.pinned and p.user is user), -p.taken_at, -p.pk),
            )
        ]
        for user in ig.users
        if viewable(user)
    }
    home = sorted(
        (p for p in ig.posts if viewable(p.user) and any(u.followed for u in (p.user, *p.coauthors))),
        key=lambda p: (-p.taken_at, -p.pk),
    )
    size = ig.timeline_page_size
    fail_for: dict[tuple[str, Any], Exception] = {}
    for user in ig.users:
        if not viewable(user):
            for call in ("user_stories", "user_posts"):
                fail_for[call, user.pk] = TargetUnavailable(f"{user.pk} is private", reason="private")
    for call in ("user_stories", "user_posts"):
        fail_for[call, UNKNOWN] = TargetUnavailable(f"{UNKNOWN} not found", reason="not_found")
    for story in ig.stories:
        if not story.live:
            fail_for["like_story", str(story.pk)] = Gone(f"story {story.pk} is gone")
    fail_for["like_post", world.deleted.pk] = Gone(f"post {world.deleted.pk} is gone")
    return ScriptedInstagram(
        FakeClock(),
        tray=[
            TrayEntry(u.pk, u.username, live[u.pk][-1].taken_at)
            for u in ig.users
            if u.followed and not u.muted and live[u.pk]
        ],
        reels={u.pk: [story_item(s) for s in live[u.pk]] for u in ig.users if viewable(u) and live[u.pk]},
        users={u.username: UserRef(u.pk, u.username, None) for u in ig.users},
        posts=feeds,
        timeline=[[post_item(p) for p in home[n : n + size]] for n in range(0, len(home), size)],
        followed=[UserRef(u.pk, u.username, True) for u in ig.users if u.followed],
        fail_for=fail_for,
    )


def adapter_of(ig: InstagramDouble, *, timeout: float = 5, logged_in: bool = True, **conn: Any) -> Instagrapi:
    settings = ig.settings() if logged_in else None
    return Instagrapi(Connection(username=ig.username, settings=settings, api_url=ig.url, timeout=timeout, **conn))


@pytest.fixture(scope="module")
def shared() -> Iterator[World]:
    """One world for the calls that change nothing in it (the reads, and every call under a fault)."""
    with InstagramDouble(own_pk=OWN_PK, username=ME) as ig:
        yield build_world(ig)


@pytest.fixture
def world(shared: World) -> Iterator[World]:
    yield shared
    shared.ig.clear_faults()
    shared.ig.require_challenge(False)


@pytest.fixture
def fresh() -> Iterator[World]:
    """A world of its own, for the calls that change it (the writes, the logins)."""
    with InstagramDouble(own_pk=OWN_PK, username=ME) as ig:
        yield build_world(ig)


def typed(value: Any) -> Any:
    """``value`` with the type of every part spelled out: 1 and True, "1" and 1, or UTC and another zone at the same
    instant never compare equal (dataclass equality alone would let them)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = tuple((f.name, typed(getattr(value, f.name))) for f in dataclasses.fields(value))
        return type(value).__name__, fields
    if isinstance(value, datetime):
        return "datetime", value.isoformat()  # the offset included: "+00:00" for UTC, nothing when naive
    if isinstance(value, dict):
        return "dict", tuple(sorted((typed(k), typed(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return type(value).__name__, tuple(typed(v) for v in value)
    return type(value).__name__, value


def check_contract(value: Any) -> None:
    """What the Protocols promise of every value, whoever gives it."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is int, key
            check_contract(item)
    elif isinstance(value, list | tuple):
        for item in value:
            check_contract(item)
    elif isinstance(value, StoryItem | PostItem):
        assert type(value.pk) is str and value.pk.isdigit(), value
        assert type(value.user_pk) is int, value
        assert value.taken_at.tzinfo is not None and value.taken_at.utcoffset() == timedelta(0), value
        assert type(value.has_liked) is bool, value  # every answer of the double says it
        if isinstance(value, PostItem):
            assert value.media_type in ("photo", "video", "album", "reel") and type(value.pinned) is bool, value
            assert all(type(pk) is int for pk in value.coauthors), value
    elif isinstance(value, TrayEntry):
        assert (type(value.user_pk), type(value.username), type(value.latest_reel_media)) == (int, str, int), value
    elif isinstance(value, UserRef):
        assert type(value.user_pk) is int and type(value.username) is str, value
        assert value.followed is None or type(value.followed) is bool, value
    else:
        raise AssertionError(f"not a value of the Protocols: {value!r}")


def same(fake: Any, real: Any) -> None:
    check_contract(fake)
    check_contract(real)
    assert typed(fake) == typed(real)


def one_request(side: Client, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``call(*args, **kwargs)``, a method of ``side``, checking it sent exactly one request (the Protocols'
    promise)."""
    before = side.requests_sent
    result = call(*args, **kwargs)
    assert side.requests_sent - before == 1, type(side).__name__
    return result


# --- the Protocols themselves ------------------------------------------------------------------------------------


def protocol_members(protocol: type) -> dict[str, Any]:
    return {name: value for name, value in vars(protocol).items() if not name.startswith("_")}


MEMBERS = sorted({(p.__name__, name) for p in (Instagram, Login) for name in protocol_members(p)})


@pytest.fixture(scope="module")
def offline() -> Instagrapi:
    """An adapter that sends nothing (building one sends no request)."""
    return Instagrapi(Connection(username=ME, settings=None, api_url="http://127.0.0.1:9"))


@pytest.mark.parametrize(("protocol", "name"), MEMBERS)
def test_the_fake_implements_every_protocol_member_with_the_same_signature(
    offline: Instagrapi, protocol: str, name: str
) -> None:
    """The fake, and the adapter too: each method with the Protocol's signature (names, kinds, defaults,
    annotations), each property as a property or an attribute of its type."""
    declared = protocol_members({"Instagram": Instagram, "Login": Login}[protocol])[name]
    for side in (ScriptedInstagram(FakeClock()), offline):
        if isinstance(declared, property):  # a property, or a plain attribute of the same type
            expected = typing.get_type_hints(declared.fget)["return"]
            assert isinstance(getattr(side, name), expected), (type(side).__name__, name)
            continue
        implemented = inspect.getattr_static(type(side), name)
        assert inspect.isfunction(implemented), (type(side).__name__, name)
        assert inspect.signature(implemented) == inspect.signature(declared), type(side).__name__


def test_both_are_clients(offline: Instagrapi) -> None:
    """Structurally (mypy checks these assignments), and by their members."""
    fake: Client = ScriptedInstagram(FakeClock())
    real: Client = offline
    for side in (fake, real):
        assert all(hasattr(side, name) for _, name in MEMBERS), type(side).__name__


# --- the same values ---------------------------------------------------------------------------------------------


@pytest.fixture
def sides(world: World) -> tuple[ScriptedInstagram, Instagrapi]:
    return fake_of(world), adapter_of(world.ig)


def clients(sides: tuple[ScriptedInstagram, Instagrapi]) -> list[Client]:
    """The fake, then the adapter: each a Client (mypy checks it here)."""
    return [sides[0], sides[1]]


def test_the_tray(world: World, sides: tuple[ScriptedInstagram, Instagrapi]) -> None:
    """The followed users with live stories; not the own reel, the ads, the hashtags, nor a muted user's; in
    Instagram's order, which is no promise: compared by user."""
    for reason in ("cold_start", "pull_to_refresh"):
        got = [sorted(one_request(side, side.reels_tray, reason), key=lambda e: e.user_pk) for side in clients(sides)]
        same(*got)
        assert {e.user_pk for e in got[1]} == {world.alice.pk, world.bob.pk, world.carol.pk}
    fake = sides[0]  # the reason asked with, as each side records it: the fake's call, the double's request
    assert [c.arg for c in fake.calls] == ["cold_start", "pull_to_refresh"] == world.ig.tray_reasons()[-2:]


def test_the_reels(world: World, sides: tuple[ScriptedInstagram, Instagrapi]) -> None:
    """Every viewable user's live stories, oldest first; none of a private account not followed nor of nobody."""
    pks = [u.pk for u in world.ig.users] + [UNKNOWN]
    got = [one_request(side, side.reels_media, pks) for side in clients(sides)]
    same(*got)
    assert set(got[1]) == {u.pk for u in world.ig.users if u is not world.dave}
    assert [s.has_liked for s in got[1][world.alice.pk]] == [True, False, False]  # the expired one is not there


@pytest.mark.parametrize("name", ["alice", "bob", "carol", "erin", "frank"])
def test_a_users_stories(world: World, sides: tuple[ScriptedInstagram, Instagrapi], name: str) -> None:
    user = getattr(world, name)
    same(*(one_request(side, side.user_stories, user.pk) for side in clients(sides)))


def test_the_following_list(world: World, sides: tuple[ScriptedInstagram, Instagrapi]) -> None:
    """One page, every followed user (muted and private ones too) marked followed; no next page."""
    pages = [one_request(side, side.following_page, None) for side in clients(sides)]
    same(*(sorted(users, key=lambda u: u.user_pk) for users, _ in pages))
    assert [cursor for _, cursor in pages] == [None, None]


@pytest.mark.parametrize("name", ["alice", "bob", "carol", "dave", "erin", "frank"])
def test_a_lookup(world: World, sides: tuple[ScriptedInstagram, Instagrapi], name: str) -> None:
    """Private or not, followed or not: found, and whether it is followed not said (usernameinfo does not say)."""
    same(*(one_request(side, side.lookup, name) for side in clients(sides)))


@pytest.mark.parametrize("name", ["alice", "bob", "carol", "erin"])
def test_a_users_posts_page_by_page(world: World, sides: tuple[ScriptedInstagram, Instagrapi], name: str) -> None:
    """Pinned first, newest first, collabs in each author's feed; the same pages, a next page on both or on none."""
    user = getattr(world, name)
    cursors: list[str | None] = [None, None]
    pages = 0
    while True:
        got = [
            one_request(side, side.user_posts, user.pk, 2, cursor)
            for side, cursor in zip(clients(sides), cursors, strict=True)
        ]
        same(*(posts for posts, _ in got))
        cursors = [cursor for _, cursor in got]
        pages += 1
        assert (cursors[0] is None) == (cursors[1] is None), (pages, cursors)
        if cursors[1] is None:
            break
    assert pages == math.ceil(len(sides[0].posts[user.pk]) / 2)


def test_the_home_feed_page_by_page(world: World, sides: tuple[ScriptedInstagram, Instagrapi]) -> None:
    """A plain home feed (no ads, cards or caught-up marker): the same pages, a next page on both or on none."""
    world.ig.timeline_extras, world.ig.timeline_recent_days = False, math.inf
    try:
        cursors: list[str | None] = [None, None]
        pages = 0
        while True:
            got = [
                one_request(side, side.timeline_page, cursor)
                for side, cursor in zip(clients(sides), cursors, strict=True)
            ]
            same(*(posts for posts, _ in got))
            cursors = [cursor for _, cursor in got]
            pages += 1
            assert (cursors[0] is None) == (cursors[1] is None), (pages, cursors)
            if cursors[1] is None:
                break
        assert pages == len(sides[0].timeline) > 1
    finally:
        world.ig.timeline_extras, world.ig.timeline_recent_days = True, 2.0


def test_the_real_home_feed_walked_to_its_end(world: World, sides: tuple[ScriptedInstagram, Instagrapi]) -> None:
    """The home feed as the double plays it by default (ads and cards, suggested posts, "You're all caught up" and
    the older posts behind it): walked to the end, the followed users' posts are the fake's, in order."""
    followed = {u.pk for u in world.ig.users if u.followed}
    walked: list[list[PostItem]] = []
    for side in clients(sides):
        posts: list[PostItem] = []
        cursor: str | None = None
        for _ in range(20):
            page, cursor = one_request(side, side.timeline_page, cursor)
            posts += page
            if cursor is None:
                break
        assert cursor is None, "the home feed never ended"
        walked.append([p for p in posts if p.user_pk in followed or followed & set(p.coauthors)])
    same(*walked)


def test_the_home_feed_marks_no_post_pinned(world: World, sides: tuple[ScriptedInstagram, Instagrapi]) -> None:
    pinned = [p for p in world.ig.posts if p.pinned]
    assert pinned and all(any(u.followed for u in (p.user, *p.coauthors)) for p in pinned)  # in the home feed
    for side in clients(sides):
        posts: list[PostItem] = []
        cursor: str | None = None
        for _ in range(20):
            page, cursor = side.timeline_page(cursor)
            posts += page
            if cursor is None:
                break
        assert {str(p.pk) for p in pinned} <= {p.pk for p in posts}
        assert [p.pk for p in posts if p.pinned] == [], type(side).__name__


def test_the_session(world: World, sides: tuple[ScriptedInstagram, Instagrapi]) -> None:
    """The account's pk, who the session is (one request), and settings that carry the device and the session."""
    fake, real = sides
    assert (fake.user_pk, real.user_pk) == (OWN_PK, OWN_PK)
    same(*(one_request(side, side.ping) for side in clients(sides)))
    for settings in (fake.dump_settings(), real.dump_settings()):
        assert {"uuids", "device_settings", "authorization_data"} <= settings.keys()
        assert (
            settings["authorization_data"]["ds_user_id"] == str(OWN_PK) and settings["authorization_data"]["sessionid"]
        )
    assert fake.dump_settings()["uuids"].keys() <= real.dump_settings()["uuids"].keys()
    assert fake.malformed == real.malformed == 0


# --- the same changes ----------------------------------------------------------------------------------------------


def seen_in(world: World) -> list[str]:
    return sorted(str(s.pk) for s in world.ig.stories if s.seen)


def liked_in(world: World) -> list[str]:
    ig = world.ig
    media: list[DStory | DPost] = [*ig.stories, *ig.posts]
    return sorted(str(m.pk) for m in media if m.liked)


def test_seen_and_likes(fresh: World) -> None:
    """A seen request and a like of a story and of a post: nothing returned, one request each, and the same stories
    seen and the same media liked."""
    fake, real = fake_of(fresh), adapter_of(fresh.ig)
    story, post = fresh.story(), fresh.post()
    liked_before = liked_in(fresh)
    for side in (fake, real):
        assert one_request(side, side.mark_seen, [story], [int(time.time())]) is None
        assert one_request(side, side.like_story, story) is None
        assert one_request(side, side.like_post, post) is None
    assert fake.seen == seen_in(fresh) == [story.pk]
    assert sorted(fake.liked) == sorted(set(liked_in(fresh)) - set(liked_before)) == sorted([story.pk, post.pk])


# --- the same exceptions for the same faults ----------------------------------------------------------------------

# Each call of the Instagram Protocol that sends a request: the path of its request, and the call, the same on both.
CALLS: dict[str, tuple[str, Callable[[Instagram, World], object]]] = {
    "reels_tray": ("reels_tray", lambda side, w: side.reels_tray("cold_start")),
    "reels_media": ("reels_media", lambda side, w: side.reels_media([w.alice.pk])),
    "user_stories": ("/story/", lambda side, w: side.user_stories(w.alice.pk)),
    "following_page": ("/following/", lambda side, w: side.following_page(None)),
    "lookup": ("usernameinfo", lambda side, w: side.lookup("alice")),
    "mark_seen": ("media/seen", lambda side, w: side.mark_seen([w.story()], [int(time.time())])),
    "like_story": ("send_story_like", lambda side, w: side.like_story(w.story())),
    "user_posts": ("feed/user/", lambda side, w: side.user_posts(w.alice.pk, 5)),
    "timeline_page": ("feed/timeline/", lambda side, w: side.timeline_page(None)),
    "like_post": ("/like/", lambda side, w: side.like_post(w.post())),
    "ping": ("current_user", lambda side, w: side.ping()),
}


@dataclass(frozen=True)
class Fault:
    make: Callable[[InstagramDouble, str], object]  # the fault, in the double, on the requests to this path
    raised: StoryLikerError  # what the adapter raises for it, and so what a test gives the fake to raise
    timeout: float = 5  # the adapter's


FAULTS = {
    "5xx": Fault(lambda ig, path: ig.fail(path, status=503), NetworkError("answered 503", answered=True)),
    "500": Fault(lambda ig, path: ig.fail(path, status=500), NetworkError("answered 500", answered=True)),
    "dropped": Fault(lambda ig, path: ig.fault_close(path), NetworkError("closed, unanswered")),
    "reset": Fault(lambda ig, path: ig.fault_reset(path), NetworkError("reset, unanswered")),
    "timeout": Fault(lambda ig, path: ig.hold(path, timeout=2), NetworkError("timed out"), timeout=0.5),
    "429": Fault(lambda ig, path: ig.fail(path, status=429), Throttled("429", kind=ThrottleKind.RATE_LIMIT)),
    "feedback_required": Fault(
        lambda ig, path: ig.fail(path, status=400, body=FEEDBACK_REQUIRED_BODY),
        Throttled("feedback_required", kind=ThrottleKind.FEEDBACK_REQUIRED),
    ),
    "challenge": Fault(lambda ig, path: ig.require_challenge(), NeedsHuman("challenge_required")),
    "login_required": Fault(lambda ig, path: ig.expire_session(), SessionExpired("login_required")),
}


def same_error(fake: BaseException, real: BaseException) -> None:
    assert type(fake) is type(real), (fake, real)
    for attribute in ("answered", "kind", "reason"):
        assert getattr(fake, attribute, None) == getattr(real, attribute, None), (attribute, fake, real)


def raised(call: Callable[[], object]) -> StoryLikerError:
    with pytest.raises(StoryLikerError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("call", sorted(CALLS))
def test_the_same_exception_for_the_same_fault(world: World, call: str, fault: str) -> None:
    path, run = CALLS[call]
    fake, real = fake_of(world), adapter_of(world.ig, timeout=FAULTS[fault].timeout)
    fake.always[call] = FAULTS[fault].raised
    world.ig.reset_requests()
    FAULTS[fault].make(world.ig, path)
    same_error(raised(lambda: run(fake, world)), raised(lambda: run(real, world)))
    assert world.ig.count() == world.ig.count(path) == 1, world.ig.paths()  # one request, the one the fault was for


# Faults of the world itself, which the fake is given as it is given the world (``fake_of``): a private account not
# followed, a user who is not there, a story no longer live, a post no longer there.
WORLD_FAULTS: dict[str, tuple[Callable[[Instagram, World], object], StoryLikerError]] = {
    "stories of a private account": (
        lambda side, w: side.user_stories(w.dave.pk),
        TargetUnavailable("private", reason="private"),
    ),
    "stories of nobody": (lambda side, w: side.user_stories(UNKNOWN), TargetUnavailable("none", reason="not_found")),
    "posts of a private account": (
        lambda side, w: side.user_posts(w.dave.pk, 5),
        TargetUnavailable("private", reason="private"),
    ),
    "posts of nobody": (lambda side, w: side.user_posts(UNKNOWN, 5), TargetUnavailable("none", reason="not_found")),
    "lookup of nobody": (lambda side, w: side.lookup("nobody"), TargetUnavailable("none", reason="not_found")),
    "like of an expired story": (lambda side, w: side.like_story(story_item(w.expired)), Gone("expired")),
    "like of a deleted post": (lambda side, w: side.like_post(w.deleted), Gone("deleted")),
}


@pytest.mark.parametrize("case", sorted(WORLD_FAULTS))
def test_the_same_exception_for_the_same_world(world: World, case: str) -> None:
    run, expected = WORLD_FAULTS[case]
    fake, real = fake_of(world), adapter_of(world.ig)
    fake_error, real_error = raised(lambda: run(fake, world)), raised(lambda: run(real, world))
    same_error(fake_error, real_error)
    same_error(expected, real_error)
    assert fake.requests_sent == real.requests_sent == 1


@pytest.mark.parametrize("call", ["mark_seen", "like_story", "like_post"])
def test_a_write_whose_answer_is_lost_after_it_acted(fresh: World, call: str) -> None:
    """The connection drops after Instagram acted: the seen or the like is done, and the call raises NetworkError
    (not answered), on both (the fake's ``lost``); dropped before it acted, it is not done, on both."""
    path, run = CALLS[call]
    fake, real = fake_of(fresh), adapter_of(fresh.ig)
    target = fresh.post().pk if call == "like_post" else fresh.story().pk
    done = seen_in if call == "mark_seen" else liked_in
    fake.lost[call] = [NetworkError("the answer was lost")]
    fresh.ig.short_read(path)
    same_error(raised(lambda: run(fake, fresh)), raised(lambda: run(real, fresh)))
    assert (fake.seen if call == "mark_seen" else fake.liked) == [target]
    assert target in done(fresh)

    other, before = fake_of(fresh), (seen_in(fresh), liked_in(fresh))
    other.always[call] = NetworkError("dropped before it acted")
    fresh.ig.fault_close(path)
    same_error(raised(lambda: run(other, fresh)), raised(lambda: run(adapter_of(fresh.ig), fresh)))
    assert other.seen == other.liked == []
    assert (seen_in(fresh), liked_in(fresh)) == before


# --- the logins ---------------------------------------------------------------------------------------------------


def test_a_relogin_and_a_login_by_sessionid(fresh: World) -> None:
    """A fresh session: the same account, new settings; a sessionid: the user it belongs to."""
    ig = fresh.ig
    fake, real = fake_of(fresh), adapter_of(ig, password=ig.password)
    old = [side.dump_settings()["authorization_data"]["sessionid"] for side in (fake, real)]
    for side in (fake, real):
        assert side.relogin() is None
        assert side.user_pk == OWN_PK and side.requests_sent >= 1
    assert [side.dump_settings()["authorization_data"]["sessionid"] for side in (fake, real)] != old
    assert old[1] != real.dump_settings()["authorization_data"]["sessionid"]
    assert old[0] != fake.dump_settings()["authorization_data"]["sessionid"]
    sessionid = ig.settings()["authorization_data"]["sessionid"]
    fake, real = fake_of(fresh), adapter_of(ig, logged_in=False)
    same(*(one_request(side, side.login_by_sessionid, sessionid) for side in (fake, real)))
    assert fake.user_pk == real.user_pk == OWN_PK


def test_a_login_with_a_code() -> None:
    """Password and a two-factor code: logged in as the account on both."""
    with InstagramDouble(own_pk=OWN_PK, username=ME, totp_seed=SEED) as ig:
        fake = ScriptedInstagram(FakeClock(), sessionid=None)
        real = adapter_of(ig, logged_in=False, password=ig.password)
        for side in (fake, real):
            assert side.user_pk is None
            assert side.login_with_code(lambda: totp_code(SEED)) is None
            assert side.user_pk == OWN_PK and side.dump_settings()["authorization_data"]["sessionid"]


# Each login call under a fault: the double's fault (given the double, before the call), the adapter's connection,
# the call, and what the adapter raises (and the fake is given).
LOGIN_FAULTS: dict[str, tuple[Callable[[InstagramDouble], object], dict[str, Any], str, StoryLikerError]] = {
    "relogin, 5xx": (
        lambda ig: ig.fail("send_login_request", status=500),
        {},
        "relogin",
        NetworkError("5", answered=True),
    ),
    "relogin, dropped": (lambda ig: ig.fault_close("send_login_request"), {}, "relogin", NetworkError("dropped")),
    "relogin, 429": (
        lambda ig: ig.fail("send_login_request", status=429),
        {},
        "relogin",
        Throttled("429", kind=ThrottleKind.RATE_LIMIT),
    ),
    "relogin, challenge": (lambda ig: ig.require_challenge(), {}, "relogin", NeedsHuman("challenge")),
    "relogin, wrong password": (lambda ig: None, {"password": "wrong"}, "relogin", PasswordRejected("BadPassword")),
    "relogin, no password": (lambda ig: None, {"password": None}, "relogin", NeedsHuman("no IG_PASSWORD")),
    "sessionid, 5xx": (lambda ig: ig.fail("/info/", status=500), {}, "sessionid", NetworkError("5", answered=True)),
    "sessionid, 429": (
        lambda ig: ig.fail("/info/", status=429),
        {},
        "sessionid",
        Throttled("429", kind=ThrottleKind.RATE_LIMIT),
    ),
    "sessionid, challenge": (lambda ig: ig.require_challenge(), {}, "sessionid", NeedsHuman("challenge")),
    "sessionid, stale": (lambda ig: ig.expire_session(), {}, "sessionid", NeedsHuman("not accepted")),
    "code, wrong code": (lambda ig: None, {}, "code", NeedsHuman("TwoFactorRequired")),
    "code, wrong password": (lambda ig: None, {"password": "wrong"}, "code", PasswordRejected("BadPassword")),
    "code, challenge": (lambda ig: ig.require_challenge(), {}, "code", NeedsHuman("challenge")),
}
LOGIN_CALLS: dict[str, tuple[str, Callable[[Client, str], object]]] = {
    "relogin": ("relogin", lambda side, sessionid: side.relogin()),
    "sessionid": ("login_by_sessionid", lambda side, sessionid: side.login_by_sessionid(sessionid)),
    "code": ("login_with_code", lambda side, sessionid: side.login_with_code(lambda: "000000")),
}


@pytest.mark.parametrize("case", sorted(LOGIN_FAULTS))
def test_the_same_exception_for_the_same_fault_in_a_login(case: str) -> None:
    make, conn, call, expected = LOGIN_FAULTS[case]
    name, run = LOGIN_CALLS[call]
    with InstagramDouble(own_pk=OWN_PK, username=ME, totp_seed=SEED if call == "code" else None) as ig:
        sessionid = ig.settings()["authorization_data"]["sessionid"]
        real = adapter_of(ig, logged_in=call == "relogin", **({"password": ig.password} | conn))
        fake = ScriptedInstagram(FakeClock(), always={name: expected})
        make(ig)
        real_error = raised(lambda: run(real, sessionid))
        same_error(raised(lambda: run(fake, sessionid)), real_error)
        same_error(expected, real_error)
