"""The instagrapi adapter: one call = one HTTP request, no sleep inside instagrapi, parsers that never crash.

The end-to-end cases drive the REAL instagrapi (through ``story_liker.ig.adapter.Instagrapi``) against the local
double, in-process, so ``time.sleep`` can be recorded: no wall-clock threshold anywhere. The parsers are pure
functions of the decoded JSON and are fuzzed with hypothesis from realistic answers (REAL_SHAPES.md).
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from story_liker.errors import TRY_LATER, BadResponse, NeedsHuman, NetworkError, TargetUnavailable, Throttled
from story_liker.ig.adapter import Instagrapi
from story_liker.ig.parse import (
    MAX_TIMESTAMP,
    parse_following,
    parse_reels,
    parse_timeline,
    parse_tray,
    parse_user_feed,
    parse_user_info,
    parse_user_story,
)
from story_liker.ig.types import Connection, PostItem, StoryItem, TrayEntry, TrayReason, UserRef
from tests.double import InstagramDouble

NOW = 1_760_000_000
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture
def ig() -> Iterator[InstagramDouble]:
    with InstagramDouble() as double:
        yield double


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every ``time.sleep`` call in this process (instagrapi's included), recorded instead of slept."""
    calls: list[float] = []
    monkeypatch.setattr(time, "sleep", calls.append)
    return calls


def waited(sleeps: list[float]) -> list[float]:
    """The sleeps that wait (instagrapi calls ``time.sleep(request_timeout)`` with 0 before each request)."""
    return [s for s in sleeps if s]


def adapter(ig: InstagramDouble, *, logged_in: bool = True, **conn: Any) -> Instagrapi:
    settings = ig.settings() if logged_in else None
    return Instagrapi(Connection(username=ig.username, settings=settings, api_url=ig.url, timeout=5, **conn))


def alice_with_story(ig: InstagramDouble, a: Instagrapi) -> StoryItem:
    alice = ig.add_user("alice")
    ig.add_story(alice)
    [story] = a.reels_media([alice.pk])[alice.pk]
    ig.reset_requests()
    return story


# --- no hidden retries, no sleeps ----------------------------------------------------------------------------


def test_408_on_a_like_is_one_request_no_sleep_and_exit_75(ig: InstagramDouble, sleeps: list[float]) -> None:
    a = adapter(ig)
    story = alice_with_story(ig, a)
    before = a.requests_sent
    ig.fail("send_story_like", status=408)
    with pytest.raises(NetworkError) as caught:
        a.like_story(story)
    assert caught.value.exit_code == TRY_LATER
    assert ig.count("send_story_like") == 1  # instagrapi's own private_request sends it twice, 60 s apart
    assert waited(sleeps) == []
    assert a.requests_sent - before == 1
    assert ig.liked_story_ids == set()


def test_short_read_on_a_like_is_one_request(ig: InstagramDouble, sleeps: list[float]) -> None:
    a = adapter(ig)
    story = alice_with_story(ig, a)
    before = a.requests_sent
    ig.short_read("send_story_like")
    with pytest.raises(NetworkError, match="ClientIncompleteReadError"):
        a.like_story(story)
    assert ig.count("send_story_like") == 1  # the like went through; instagrapi would send it again after 2 s
    assert ig.liked_story_ids == {story.id}
    assert waited(sleeps) == []
    assert a.requests_sent - before == ig.count() == 1


CALLS: dict[str, tuple[str, Callable[[Instagrapi, InstagramDouble], Any]]] = {
    "reels_tray": ("reels_tray", lambda a, ig: a.reels_tray("cold_start")),
    "reels_media": ("reels_media", lambda a, ig: a.reels_media([ig.users[0].pk])),
    "user_stories": ("/story/", lambda a, ig: a.user_stories(ig.users[0].pk)),
    "following_page": ("/following/", lambda a, ig: a.following_page(None)),
    "lookup": ("usernameinfo", lambda a, ig: a.lookup("alice")),
    "user_posts": ("feed/user/", lambda a, ig: a.user_posts(ig.users[0].pk, 5)),
    "timeline_page": ("feed/timeline/", lambda a, ig: a.timeline_page(None)),
    "mark_seen": (
        "media/seen",
        lambda a, ig: a.mark_seen([StoryItem("3512004000000000017", 1, datetime.now(UTC), False)], [NOW]),
    ),
    "like_post": (
        "/like/",
        lambda a, ig: a.like_post(PostItem("3512004000000000017", 1, datetime.now(UTC), "photo", False)),
    ),
    "ping": ("current_user", lambda a, ig: a.ping()),
}


@pytest.mark.parametrize("fault", ["408", "short_read", "reset", "500", "429"])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_every_call_is_one_request_whatever_goes_wrong(
    ig: InstagramDouble, sleeps: list[float], call: str, fault: str
) -> None:
    ig.add_user("alice")
    a = adapter(ig)
    path, run = CALLS[call]
    if fault == "short_read":
        ig.short_read(path)
    elif fault == "reset":
        ig.fault_reset(path)
    else:
        ig.fail(path, status=int(fault))
    with pytest.raises(Throttled if fault == "429" else NetworkError):
        run(a, ig)
    assert ig.count() == ig.count(path) == 1, ig.paths()
    assert a.requests_sent == 1
    assert waited(sleeps) == []


def test_a_handle_exception_hook_never_sends_again(ig: InstagramDouble, sleeps: list[float]) -> None:
    a = adapter(ig)
    a.client.handle_exception = lambda client, exc: None  # instagrapi: "handled", so it sends the request again
    ig.fail("current_user", status=500)
    with pytest.raises(NetworkError):
        a.ping()
    assert ig.count("current_user") == 1


def test_a_challenge_is_never_resolved_without_a_person(
    ig: InstagramDouble, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_input(prompt: str = "") -> str:
        raise AssertionError("input() called")

    monkeypatch.setattr("builtins.input", no_input)
    a = adapter(ig)
    a.client.with_challenge_flow = True  # even so: only the interactive login resolves challenges
    ig.require_challenge()
    with pytest.raises(NeedsHuman):
        a.ping()
    assert ig.count() == 1 and waited(sleeps) == []


def test_delay_range_and_saved_request_timeout_never_sleep(ig: InstagramDouble, sleeps: list[float]) -> None:
    saved = ig.settings() | {"request_timeout": 3}
    a = Instagrapi(Connection(username=ig.username, settings=saved, api_url=ig.url))
    a.client.delay_range = [5, 9]
    a.ping()
    a.reels_tray("pull_to_refresh")
    assert waited(sleeps) == [] and ig.count() == 2
    assert a.dump_settings()["request_timeout"] == 0 and a.dump_settings()["session_retry_total"] == 0


# --- logins: several requests, each counted, none repeated ---------------------------------------------------


def test_requests_sent_counts_every_request_of_a_pass_and_a_login(ig: InstagramDouble, sleeps: list[float]) -> None:
    alice = ig.add_user("alice")
    story = ig.add_story(alice)
    ig.add_post(alice)
    a = adapter(ig, logged_in=False, password=ig.password)
    a.relogin()  # CAA: graphql_www, bloks, attestation, public qe/sync, login, then reels_tray and timeline
    assert a.requests_sent == ig.count() == 8, ig.paths()
    [entry] = a.reels_tray("pull_to_refresh")  # the app is open: the login's own flow just asked it cold
    stories = a.reels_media([entry.user_pk])[alice.pk]
    a.mark_seen(stories, [NOW])
    a.like_story(stories[0])
    [post], _ = a.user_posts(alice.pk, 3)
    a.like_post(post)
    a.lookup("alice")
    a.following_page(None)
    a.user_stories(alice.pk)
    a.ping()
    assert a.requests_sent == ig.count() == 8 + 10, ig.paths()
    assert ig.liked_story_ids == {story.id} and waited(sleeps) == []


def test_login_by_sessionid_is_one_request(ig: InstagramDouble, sleeps: list[float]) -> None:
    a = adapter(ig, logged_in=False)
    a.login_by_sessionid(ig.sessionid)
    assert a.user_pk == ig.own_pk and a.client.username == ig.username
    assert ig.paths() == [
        f"GET /api/v1/users/{ig.own_pk}/info/?is_prefetch=false&entry_point=self_profile"
        "&from_module=self_profile&is_app_start=False"
    ]
    a.ping()  # the session works
    assert a.requests_sent == ig.count() == 2


def test_login_by_stale_sessionid_is_one_request_and_needs_a_human(ig: InstagramDouble, sleeps: list[float]) -> None:
    stale = ig.sessionid
    ig.expire_session()
    a = adapter(ig, logged_in=False)
    with pytest.raises(NeedsHuman, match="sessionid"):
        a.login_by_sessionid(stale)
    assert ig.count() == 1  # instagrapi's own falls back to info_stream and the public web GraphQL: 4 requests
    assert waited(sleeps) == []


def test_a_rejected_password_is_not_sent_a_third_time(ig: InstagramDouble, sleeps: list[float]) -> None:
    a = adapter(ig, password="wrong")
    with pytest.raises(NeedsHuman, match="BadPassword"):
        a.relogin()
    # CAA rejects it and points to the legacy endpoint, which names the reason; instagrapi would then run
    # the whole CAA login once more (14 requests, the password sent three times).
    assert ig.count("send_login_request") == 1 and ig.count("accounts/login/") == 1
    assert a.requests_sent == ig.count() == 9


def test_a_throttled_pre_login_flow_stops_the_login(ig: InstagramDouble, sleeps: list[float]) -> None:
    a = adapter(ig, password="wrong")
    ig.fail("launcher/sync", status=429)
    with pytest.raises(Throttled):
        a.relogin()
    assert ig.count("accounts/login/") == 0  # instagrapi ignores that 429 and sends the password anyway


def test_totp_login_counts_every_step(sleeps: list[float]) -> None:
    with InstagramDouble(totp_seed=SEED) as ig:
        a = adapter(ig, password=ig.password, totp_seed=SEED)
        a.relogin()
        assert a.user_pk == ig.own_pk
        assert a.requests_sent == ig.count() and waited(sleeps) == []


# --- malformed answers end to end ----------------------------------------------------------------------------


def test_tray_with_non_finite_and_huge_numbers_and_non_user_reels(ig: InstagramDouble) -> None:
    alice = ig.add_user("alice")
    tray = [
        {"user": {"pk": alice.pk, "username": "alice"}, "latest_reel_media": NOW, "reel_type": "user_reel"},
        {"user": {"pk": "31400000018", "username": "bob"}, "latest_reel_media": float("inf")},
        {"user": {"pk": 31400000019, "username": "carol"}, "latest_reel_media": float("nan")},
        {"user": {"pk": 31400000020, "username": "dave"}, "latest_reel_media": 10**30},
        {"id": "tag:travel", "reel_type": "mas_reel", "owner": {"pk": "17841563", "name": "travel"}},
        {"id": 17841000001, "reel_type": "user_reel", "injected": {"ad_id": "1"}, "user": {"pk": 1, "username": "ad"}},
        "garbage",
    ]
    ig.raw("reels_tray", json.dumps({"tray": tray, "broadcasts": [], "status": "ok"}))  # NaN, Infinity on the wire
    a = adapter(ig)
    assert a.reels_tray("cold_start") == [TrayEntry(alice.pk, "alice", NOW)]
    assert a.malformed == 4  # bob, carol, dave and the string; the hashtag reel and the ad are normal answers


def test_a_reels_batch_answers_for_public_accounts_not_followed_and_leaves_out_the_rest(ig: InstagramDouble) -> None:
    """As Instagram answers (and the story pass relies on): a public account you don't follow with a story is in the
    answer; one with none now, a private one and a pk of nobody are simply missing, with no error and nothing
    malformed. Only the user's own story feed tells those three apart."""
    star, quiet = ig.add_user("star", followed=False), ig.add_user("quiet", followed=False)
    secret = ig.add_user("secret", private=True, followed=False)
    story = ig.add_story(star)
    ig.add_story(secret)
    a = adapter(ig)
    found = a.reels_media([star.pk, quiet.pk, secret.pk, 999])
    assert {pk: [s.pk for s in items] for pk, items in found.items()} == {star.pk: [str(story.pk)]}
    assert a.requests_sent == ig.count() == 1 and a.malformed == 0
    assert a.user_stories(quiet.pk) == []  # {"reel": null}: nothing now
    with pytest.raises(TargetUnavailable) as private:
        a.user_stories(secret.pk)
    assert private.value.reason == "private"


@pytest.mark.parametrize("reason", ["cold_start", "pull_to_refresh"])
def test_the_tray_is_asked_with_the_reason_given_as_the_app_asks_it(ig: InstagramDouble, reason: TrayReason) -> None:
    """The body instagrapi builds for the app: the reason, the tray session, a page of 50; on a cold start no
    impressions, on a refresh the own reel's. One request."""
    ig.add_story(ig.add_user("alice"))
    a = adapter(ig)
    assert [e.username for e in a.reels_tray(reason)] == ["alice"]
    assert ig.count() == 1 and ig.tray_reasons() == [reason]
    form = ig.requests[0].form
    assert form["page_size"] == 50 and form["tray_session_id"] and form["supported_capabilities_new"]
    impressions = form["reel_tray_impressions"]
    assert impressions == {} if reason == "cold_start" else list(impressions) == [str(ig.own_pk)]


def test_the_own_reel_and_the_trays_other_entries_are_no_followed_reels(ig: InstagramDouble) -> None:
    """The realistic tray: the own reel first, an injected ad with a user of its own, hashtag and location reels,
    lives and suggestions beside it. Only the followed users' reels come out, none of them malformed."""
    alice, bob = ig.add_user("alice"), ig.add_user("bob")
    ig.add_story(alice)
    ig.add_story(bob, close_friends=True)
    a = adapter(ig)
    assert sorted(e.username for e in a.reels_tray("cold_start")) == ["alice", "bob"]
    assert a.malformed == 0


def test_story_of_another_user_inside_a_reel_is_never_liked_as_the_owners(ig: InstagramDouble) -> None:
    alice, mallory = ig.add_user("alice"), ig.add_user("mallory")
    mine, theirs = ig.add_story(alice), ig.add_story(mallory)

    def item(story: Any, user_pk: int) -> dict[str, Any]:
        return {"pk": story.pk, "id": story.id, "taken_at": story.taken_at, "user": {"pk": user_pk}}

    items = [item(mine, alice.pk), item(theirs, mallory.pk), {**item(theirs, alice.pk), "id": theirs.id}]
    ig.raw("reels_media", json.dumps({"reels": {str(alice.pk): {"id": alice.pk, "items": items}}, "status": "ok"}))
    a = adapter(ig)
    assert a.reels_media([alice.pk]) == {
        alice.pk: [StoryItem(str(mine.pk), alice.pk, _dt(mine.taken_at), None)]
    }  # has_liked not given: not said
    assert a.malformed == 2


def test_following_with_users_not_a_list_is_bad_response(ig: InstagramDouble) -> None:
    ig.raw("/following/", '{"users": {"pk": 1}, "status": "ok"}')
    a = adapter(ig)
    with pytest.raises(BadResponse):
        a.following_page(None)
    assert ig.count() == 1


def test_following_pages_one_request_each(ig: InstagramDouble) -> None:
    names = [f"user_{n}" for n in range(230)]
    for name in names:
        ig.add_user(name)
    a = adapter(ig)
    first, cursor = a.following_page(None)
    assert len(first) == 200 and cursor is not None and ig.count() == 1
    rest, end = a.following_page(cursor)
    assert end is None and ig.count() == 2
    assert sorted(u.username for u in first + rest) == sorted(names)
    assert all(u.followed is True for u in first + rest)


def test_lookup_still_parses_usernameinfo(ig: InstagramDouble) -> None:
    alice = ig.add_user("Alice", private=True, followed=False)
    a = adapter(ig)
    assert a.lookup("alice") == UserRef(alice.pk, "alice", None)  # usernameinfo does not say: unknown
    ig.lookup_friendship = True  # an answer that does carry a friendship status is read
    assert a.lookup("alice") == UserRef(alice.pk, "alice", False)


# --- the home feed end to end ---------------------------------------------------------------------------------


def walk(a: Instagrapi, *, limit: int = 20) -> tuple[list[list[PostItem]], list[str | None]]:
    """Every page of the home feed, as the posts pass scrolls it: the posts of each page and the cursors followed."""
    pages: list[list[PostItem]] = []
    cursors: list[str | None] = [None]
    while len(pages) < limit:
        posts, cursor = a.timeline_page(cursors[-1])
        pages.append(posts)
        if cursor is None:
            return pages, cursors
        cursors.append(cursor)
    raise AssertionError("the home feed never ended")


def test_timeline_page_is_one_request_as_the_app_sends_it(ig: InstagramDouble, sleeps: list[float]) -> None:
    alice = ig.add_user("alice")
    now = int(time.time())
    for n in range(5):
        ig.add_post(alice, taken_at=now - 3600 * (n + 1))
    ig.timeline_page_size = 3
    a = adapter(ig)
    client = a.client
    first, cursor = a.timeline_page(None)
    assert ig.count() == a.requests_sent == 1 and waited(sleeps) == []
    rec = ig.requests[0]
    assert (rec.method, rec.path, rec.query) == ("POST", "/api/v1/feed/timeline/", {})
    # form fields as the app sends them (instagrapi's get_timeline_feed sends the same as one JSON string)
    assert rec.headers["content-type"].startswith("application/x-www-form-urlencoded") and rec.body[:1] != b"{"
    assert "signed_body" not in rec.form and rec.headers["authorization"].startswith("Bearer IGT:2:")
    form = rec.form
    assert (form["reason"], form["is_pull_to_refresh"], form["feed_view_info"]) == ("cold_start_fetch", "0", "[]")
    assert form["_uuid"] == form["device_id"] == client.uuid and form["phone_id"] == client.phone_id
    assert form["session_id"] == client.client_session_id and form["timezone_offset"] == str(client.timezone_offset)
    assert form["bloks_versioning_id"] == client.bloks_versioning_id and form["battery_level"] == "100"
    assert "max_id" not in form and "seen_posts" not in form
    assert (rec.headers["x-ads-opt-out"], rec.headers["x-device-id"]) == ("0", client.uuid)
    assert rec.headers["x-google-ad-id"] == client.advertising_id

    a.timeline_page(cursor)
    form2 = ig.requests[1].form
    assert (form2["reason"], form2["max_id"], form2["is_pull_to_refresh"]) == ("pagination", cursor, "0")
    assert form2["seen_posts"] == ",".join(p.id for p in first) and "feed_view_info" not in form2
    assert form2["request_id"] == form["request_id"]  # one load, paged
    a.timeline_page(None)  # a fresh load: a new request id, nothing seen yet
    assert ig.requests[2].form["request_id"] != form["request_id"] and "seen_posts" not in ig.requests[2].form
    assert ig.count() == a.requests_sent == 3 and waited(sleeps) == []


def test_a_real_home_feed_gives_only_the_organic_posts(ig: InstagramDouble) -> None:
    """Ads, the stories, suggested-users and reels cards and the end-of-feed demarcator are left out and not
    malformed; the followed users' posts (and a collab of theirs) come out right; a suggested post of an account
    not followed is a post (the pass keeps only its targets' posts anyway)."""
    alice, bob, carol = ig.add_user("alice"), ig.add_user("bob"), ig.add_user("carol", followed=False)
    ig.timeline_drop = 0.0
    now = int(time.time())
    photo = ig.add_post(alice, taken_at=now - 100, liked=True)
    album = ig.add_post(bob, taken_at=now - 200, media_type=8)
    clip = ig.add_post(alice, taken_at=now - 300, media_type=2, product_type="clips")
    igtv = ig.add_post(bob, taken_at=now - 400, media_type=2, product_type="igtv")
    collab = ig.add_post(carol, taken_at=now - 500, coauthors=[alice, bob])
    ig.add_post(carol, taken_at=now - 50)  # carol is not followed: not in the home feed
    a = adapter(ig)
    [posts], cursors = walk(a)
    answer = a.client.last_json
    markers = [next(iter(entry)) for entry in answer["feed_items"]]
    assert {"stories_netego", "suggested_users", "clips_netego", "end_of_feed_demarcator"} <= set(markers)
    assert any("injected" in entry.get("media_or_ad", {}) for entry in answer["feed_items"])  # the ad was there
    assert answer["next_max_id"] == "feed_recs_head_load" and cursors == [None]  # caught up, no older posts

    ad, suggested, reel = ig.extra_posts[:3]
    assert [p.pk for p in posts] == [str(p.pk) for p in (photo, album, suggested, clip, igtv, collab)]
    assert str(ad.pk) not in {p.pk for p in posts} and str(reel.pk) not in {p.pk for p in posts}
    by_pk = {p.pk: p for p in posts}
    assert by_pk[str(photo.pk)] == PostItem(str(photo.pk), alice.pk, _dt(photo.taken_at), "photo", True)
    assert (by_pk[str(album.pk)].user_pk, by_pk[str(album.pk)].media_type) == (bob.pk, "album")
    assert (by_pk[str(clip.pk)].media_type, by_pk[str(igtv.pk)].media_type) == ("reel", "video")
    assert by_pk[str(collab.pk)].user_pk == carol.pk and by_pk[str(collab.pk)].coauthors == (alice.pk, bob.pk)
    assert by_pk[str(suggested.pk)].user_pk == suggested.user.pk and by_pk[str(album.pk)].coauthors == ()
    assert all(not p.has_liked for p in posts if p.pk != str(photo.pk))
    assert a.malformed == 0
    a.like_post(by_pk[str(album.pk)])  # a post from the home feed is liked like any other: one request
    assert ig.liked_media_ids == {photo.id, album.id} and ig.count("/like/") == 1


def test_timeline_pages_through_the_caught_up_demarcator_into_past_posts(ig: InstagramDouble) -> None:
    """Paged by max_id to the end (None), one request a page; after "You're all caught up" the walk goes on with the
    followed users' older posts (the demarcator's past_posts cursor), never into the suggested posts."""
    users = [ig.add_user(name) for name in ("alice", "bob")]
    ig.timeline_drop, ig.timeline_page_size = 0.0, 3
    now = int(time.time())
    for n in range(7):
        ig.add_post(users[n % 2], taken_at=now - 3600 * (n + 1))
    for n in range(5):
        ig.add_post(users[n % 2], taken_at=now - 86400 * (n + 3), media_type=8)
    a = adapter(ig)
    pages, cursors = walk(a)
    assert len(pages) == ig.count("feed/timeline/") == a.requests_sent == len(cursors) == 4
    followed = {u.pk for u in users}
    got = [p.pk for page in pages for p in page if p.user_pk in followed]
    # all of them, newest first, none twice: the 8th and 9th only come in the third page's demarcator
    assert got == [str(p.pk) for p in ig.timeline_posts()]
    assert [p.pk for page in pages for p in page if p.user_pk not in followed] == [str(ig.extra_posts[1].pk)]
    assert all(rec.form.get("max_id") != "feed_recs_head_load" for rec in ig.requests)
    assert cursors[1:] == [rec.form["max_id"] for rec in ig.requests[1:]] and a.malformed == 0


def test_a_malformed_timeline_item_is_skipped_and_counted(ig: InstagramDouble) -> None:
    good = {"pk": 3512004000000000060, "taken_at": NOW, "media_type": 1, "user": _user(ALICE, "alice")}
    broken = {**good, "pk": 3512004000000000061, "taken_at": None}
    no_author = {key: value for key, value in good.items() if key != "user"} | {"pk": 3512004000000000062}
    bad_coauthors = {**good, "pk": 3512004000000000063, "coauthor_producers": [{"username": "who"}]}
    ad = {**good, "pk": 3512004000000000064, "injected": {"label": "Sponsored"}}
    feed_items = [{"media_or_ad": m} for m in (good, broken, no_author, bad_coauthors, ad)] + ["garbage"]
    answer = {"feed_items": feed_items, "more_available": True, "next_max_id": "two words", "status": "ok"}
    ig.raw("feed/timeline/", json.dumps(answer))
    a = adapter(ig)
    posts, cursor = a.timeline_page(None)
    assert [p.pk for p in posts] == ["3512004000000000060"] and cursor is None
    assert a.malformed == 5 and ig.count() == 1  # broken, no author, bad coauthors, the string, the cursor


@pytest.mark.parametrize(
    "body", ["[]", '"ok"', "null", '{"status": "ok"}', '{"feed_items": {"0": {}}, "status": "ok"}']
)
def test_a_timeline_answer_without_a_list_is_bad_response(ig: InstagramDouble, body: str) -> None:
    ig.raw("feed/timeline/", body)
    a = adapter(ig)
    with pytest.raises(BadResponse):
        a.timeline_page(None)
    assert ig.count() == a.requests_sent == 1 and a.malformed == 0


def test_a_profile_is_paged_with_max_id_and_its_pinned_posts_are_marked(ig: InstagramDouble) -> None:
    alice = ig.add_user("alice")
    now = int(datetime.now(UTC).timestamp())
    pinned = ig.add_post(alice, taken_at=now - 90 * 86400, pinned=True)
    newest = [ig.add_post(alice, taken_at=now - n * 3600) for n in range(1, 6)]
    a = adapter(ig)
    first, cursor = a.user_posts(alice.pk, 3)
    assert [p.pk for p in first] == [str(pinned.pk), str(newest[0].pk), str(newest[1].pk)]
    assert [p.pinned for p in first] == [True, False, False] and cursor is not None
    second, cursor = a.user_posts(alice.pk, 3, cursor)
    assert [p.pk for p in second] == [str(p.pk) for p in newest[2:5]] and cursor is None
    assert ig.count("feed/user/") == 2 and "max_id=" in ig.paths()[-1]


def test_collab_posts_in_a_users_feed_carry_their_coauthors(ig: InstagramDouble) -> None:
    alice, bob = ig.add_user("alice"), ig.add_user("bob")
    collab = ig.add_post(bob, coauthors=[alice])
    own = ig.add_post(alice, taken_at=collab.taken_at - 60)
    a = adapter(ig)
    posts, _ = a.user_posts(alice.pk, 5)
    assert [(p.pk, p.user_pk, p.coauthors) for p in posts] == [
        (str(collab.pk), bob.pk, (alice.pk,)),
        (str(own.pk), alice.pk, ()),
    ]


# --- parsers: realistic answers, then mutated ------------------------------------------------------------------


def _dt(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _user(pk: int | str, username: str) -> dict[str, Any]:
    return {"pk": pk, "pk_id": str(pk), "username": username, "full_name": username.title(), "is_private": False}


def _story(pk: int | str, user_pk: int | str, taken_at: int | float, **extra: Any) -> dict[str, Any]:
    return {
        "taken_at": taken_at,
        "pk": pk,
        "id": f"{pk}_{user_pk}",
        "media_type": 1,
        "user": {"pk": user_pk, "is_private": False},
        "has_liked": False,
        "expiring_at": int(taken_at) + 86400,
        "product_type": "story",
        **extra,
    }


ALICE, BOB = 31400000017, "5812700000000000000"  # a 19-digit pk, as a string
TRAY: dict[str, Any] = {
    "tray": [
        {
            "id": ALICE,
            "latest_reel_media": NOW,
            "expiring_at": NOW + 86400,
            "seen": 0,
            "reel_type": "user_reel",
            "ranked_position": 1,
            "user": _user(ALICE, "alice"),
            "items": [_story(3512004000000000017, ALICE, NOW)],
            "media_count": 1,
        },
        {"id": BOB, "latest_reel_media": NOW - 60, "seen": NOW - 60, "user": _user(BOB, "bob"), "media_count": 2},
        {"id": "tag:travel", "reel_type": "mas_reel", "owner": {"pk": "17841563", "type": 2, "name": "#travel"}},
        {"id": 17841000002, "reel_type": "user_reel", "ad_id": "238", "injected": {"label": "Sponsored"}},
    ],
    "broadcasts": [],
    "post_live": {"post_live_items": []},
    "story_ranking_token": "abc",
    "status": "ok",
}
REELS: dict[str, Any] = {
    "reels": {
        str(ALICE): {
            "id": ALICE,
            "latest_reel_media": NOW,
            "user": _user(ALICE, "alice"),
            "items": [
                _story(3512004000000000017, ALICE, NOW - 120, audience="besties"),
                _story("3512004000000000018", ALICE, NOW - 60.5, segmented_video_group_id="g1"),
            ],
        },
        BOB: {"id": BOB, "user": {"pk": BOB}, "items": [_story("3512004000000000019", BOB, NOW, has_liked=True)]},
    },
    "reels_media": [],
    "status": "ok",
}
USER_STORY: dict[str, Any] = {
    "broadcast": None,
    "reel": {"id": ALICE, "user": _user(ALICE, "alice"), "items": [_story(3512004000000000020, ALICE, NOW)]},
    "status": "ok",
}
FOLLOWING: dict[str, Any] = {
    "users": [_user(str(ALICE), "alice"), _user(BOB, "bob.b_")],
    "big_list": True,
    "page_size": 200,
    "next_max_id": "200",
    "status": "ok",
}
USERNAMEINFO: dict[str, Any] = {
    "user": {**_user(ALICE, "alice"), "media_count": 4, "follower_count": 100, "latest_reel_media": NOW},
    "status": "ok",
}
FEED: dict[str, Any] = {
    "items": [
        {
            "pk": 3512004000000000030,
            "id": f"3512004000000000030_{ALICE}",
            "taken_at": NOW - 864000,
            "media_type": 8,
            "carousel_media": [{"pk": 1, "media_type": 1}],
            "user": _user(ALICE, "alice"),
            "has_liked": False,
            "timeline_pinned_user_ids": [ALICE],
        },
        {"pk": "3512004000000000031", "taken_at": NOW, "media_type": 2, "product_type": "clips", "has_liked": True},
        {  # a collab post: authored by bob, in alice's feed
            "pk": 3512004000000000032,
            "id": f"3512004000000000032_{BOB}",
            "taken_at": NOW,
            "media_type": 1,
            "user": _user(BOB, "bob"),
            "coauthor_producers": [_user(ALICE, "alice")],
        },
    ],
    "num_results": 3,
    "more_available": False,
    "status": "ok",
}

CAROL = 31400000099  # not followed: a collab's author, a suggested post's


def _media(pk: int | str, user_pk: int | str, media_type: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "taken_at": NOW - 3600,
        "pk": pk,
        "id": f"{pk}_{user_pk}",
        "media_type": media_type,
        "code": "DA1x",
        "user": _user(user_pk, "someone"),
        "has_liked": False,
        "like_count": 3,
        "caption": None,
        "organic_tracking_token": "eyJ2ZXJzaW9uIjo1fQ==",
        **extra,
    }


# A home-feed page as dilame's timeline.feed.response.ts and the PHP FeedItem describe it, with the caught-up
# demarcator as Barinsta and Swiftagram read it: the answer's cursor leads to suggestions, past_posts goes on.
TIMELINE: dict[str, Any] = {
    "num_results": 10,
    "more_available": True,
    "auto_load_more_enabled": True,
    "is_direct_v2_enabled": True,
    "feed_items": [
        {"media_or_ad": _media(3512004000000000040, ALICE, has_liked=True)},
        {"stories_netego": {"tracking_token": "c3Rvcmllcw==", "hide_unit_if_seen": "False", "id": 17913}},
        {
            "media_or_ad": _media(
                3512004000000000041,
                17841000003,
                injected={"label": "Sponsored", "ad_id": "2385", "show_icon": True},
                ad_id="2385",
                ad_action="Shop Now",
                link="https://brand.example",
                dr_ad_type=1,
                ad_metadata=[{"value": "x", "type": 1}],
            )
        },
        {
            "media_or_ad": _media(
                "3512004000000000042", BOB, 8, carousel_media_count=2, carousel_media=[{"pk": 1, "media_type": 1}]
            )
        },
        {"suggested_users": {"type": 2, "suggestions": [{"user": _user(CAROL, "carol"), "algorithm": "chaining"}]}},
        {"media_or_ad": _media(3512004000000000043, ALICE, 2, product_type="clips", video_duration=14.2)},
        {
            "media_or_ad": _media(
                3512004000000000044, CAROL, coauthor_producers=[_user(ALICE, "alice"), _user(CAROL, "carol")]
            )
        },
        {"media_or_ad": _media(3512004000000000045, CAROL, 8, explore={"explanation": "Suggested for you"})},
        {"clips_netego": {"id": 17914, "clips_items": [{"media": _media(3512004000000000046, CAROL, 2)}]}},
        {
            "end_of_feed_demarcator": {
                "title": "You're all caught up",
                "pause": True,
                "group_set": {
                    "active_group_id": "past_posts",
                    "groups": [
                        {
                            "id": "past_posts",
                            "title": "Older posts",
                            "feed_items": [{"media_or_ad": _media(3512004000000000047, BOB, 2, product_type="igtv")}],
                            "next_max_id": "QVFEcGFzdF9wb3N0cw==",
                        }
                    ],
                },
            }
        },
    ],
    "next_max_id": "feed_recs_head_load",
    "pagination_info": {"source": None, "group_id": None},
    "status": "ok",
}
AD_MARKERS = ["injected", "ad_id", "ad_action", "dr_ad_type", "ad_link_type", "ad_metadata", "ad_header_style", "ad4ad"]

_PK = re.compile(r"[1-9][0-9]*")
_NAME = re.compile(r"[a-z0-9._]{1,30}")
KEYS = ["pk", "id", "user", "items", "tray", "reels", "reel", "users", "username", "taken_at", "latest_reel_media"]
KEYS += ["media_type", "has_liked", "next_max_id", "reel_type", "owner", "injected", "reels_media", "pk_id"]
KEYS += ["feed_items", "media_or_ad", "more_available", "coauthor_producers", "end_of_feed_demarcator", "ad_id"]
KEYS += ["group_set", "groups", "suggested_users", "explore"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**17, max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e300, -1.0, 0, 0.0, 2**53 + 1, MAX_TIMESTAMP + 1])
    | st.text(max_size=20)
    | st.sampled_from(["", "0", "-1", "1e400", "NaN", "Infinity", "12_34", "\u0661\u0662\u0663", "9" * 40, " 12", "a"])
)
garbage = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _mutate_at(value: Any, path: tuple[Any, ...], change: Callable[[Any], Any]) -> Any:
    if not path:
        return change(value)
    head, rest = path[0], path[1:]
    value[head] = _mutate_at(value[head], rest, change)
    return value


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """``base`` with one to five mutations: wrong types, missing or extra keys, huge, non-finite and string numbers."""
    data: Any = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 5))):
        path = draw(st.sampled_from(list(_paths(data))))
        op = draw(st.sampled_from(["replace", "delete", "add", "stringify", "floatify", "wrap", "bump"]))

        def change(node: Any, op: str = op) -> Any:
            if op == "replace":
                return draw(garbage)
            if op == "delete" and isinstance(node, dict) and node:
                node.pop(draw(st.sampled_from(sorted(node, key=str))))
                return node
            if op == "add" and isinstance(node, dict):
                node[draw(st.sampled_from(KEYS))] = draw(garbage)
                return node
            if op == "stringify" and not isinstance(node, dict | list):
                return str(node)
            if op == "floatify" and isinstance(node, int) and not isinstance(node, bool) and abs(node) < 10**300:
                return float(node)
            if op == "wrap":
                return [node]
            if op == "bump" and isinstance(node, int) and not isinstance(node, bool):
                return node * draw(st.sampled_from([-1, 10**6, 10**20])) + draw(st.integers(-2, 2))
            return node

        data = _mutate_at(data, path, change)
    return json.loads(json.dumps(data))  # what requests' response.json() gives: NaN/Infinity allowed


def _aware(value: Any) -> bool:
    return isinstance(value, datetime) and value.tzinfo is not None and 1970 <= value.year <= 2100


def check_story(story: Any, owner: int) -> None:
    assert isinstance(story, StoryItem)
    assert isinstance(story.pk, str) and _PK.fullmatch(story.pk)
    assert story.user_pk == owner and isinstance(story.user_pk, int)
    assert _aware(story.taken_at) and (story.has_liked is None or isinstance(story.has_liked, bool))


def check_post(post: Any) -> None:
    assert isinstance(post, PostItem)
    assert isinstance(post.pk, str) and _PK.fullmatch(post.pk)
    assert isinstance(post.user_pk, int) and not isinstance(post.user_pk, bool) and post.user_pk > 0
    assert _aware(post.taken_at) and (post.has_liked is None or isinstance(post.has_liked, bool))
    assert post.media_type in {"photo", "video", "album", "reel"}
    assert isinstance(post.pinned, bool)


def check_ref(ref: Any) -> None:
    assert isinstance(ref, UserRef)
    assert isinstance(ref.user_pk, int) and not isinstance(ref.user_pk, bool) and ref.user_pk > 0
    assert isinstance(ref.username, str) and _NAME.fullmatch(ref.username)
    assert ref.followed is None or isinstance(ref.followed, bool)


def check_malformed(count: Any) -> None:
    assert isinstance(count, int) and count >= 0


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_the_realistic_answers_parse_as_expected() -> None:
    entries, bad = parse_tray(TRAY)
    assert entries == [TrayEntry(ALICE, "alice", NOW), TrayEntry(int(BOB), "bob", NOW - 60)] and bad == 0
    reels, bad = parse_reels(REELS)
    assert bad == 0 and sorted(reels) == [ALICE, int(BOB)]
    assert [s.pk for s in reels[ALICE]] == ["3512004000000000017", "3512004000000000018"]
    assert reels[int(BOB)][0].has_liked is True and reels[ALICE][1].taken_at == _dt(NOW - 61)  # a float, truncated
    listed = parse_reels({"reels_media": list(REELS["reels"].values()), "status": "ok"})
    assert listed == (reels, 0)
    assert parse_user_story(USER_STORY, ALICE)[0][0].pk == "3512004000000000020"
    assert parse_user_story({"reel": None, "status": "ok"}, ALICE) == ([], 0)
    users, cursor, bad = parse_following(FOLLOWING)
    assert [u.username for u in users] == ["alice", "bob.b_"] and cursor == "200" and bad == 0
    assert parse_user_info(USERNAMEINFO, "Alice") == UserRef(ALICE, "alice", None)
    posts, cursor, bad = parse_user_feed(FEED, ALICE)
    assert [(p.media_type, p.user_pk) for p in posts] == [("album", ALICE), ("reel", ALICE), ("photo", int(BOB))]
    assert [p.coauthors for p in posts] == [(), (), (ALICE,)] and bad == 0
    assert [p.pinned for p in posts] == [True, False, False] and cursor is None  # more_available false
    paged = FEED | {"more_available": True, "next_max_id": "3512004000000000030_1"}
    assert parse_user_feed(paged, ALICE)[1] == "3512004000000000030_1"
    assert parse_user_feed(FEED | {"more_available": True, "next_max_id": "a b"}, ALICE)[1:] == (None, 1)
    posts, cursor, bad = parse_timeline(TIMELINE)
    assert [(p.pk[-2:], p.user_pk, p.media_type, p.has_liked, p.coauthors) for p in posts] == [
        ("40", ALICE, "photo", True, ()),
        ("42", int(BOB), "album", False, ()),
        ("43", ALICE, "reel", False, ()),
        ("44", CAROL, "photo", False, (ALICE,)),  # a collab: its author, and the other authors
        ("45", CAROL, "album", False, ()),  # a suggested post is a post
        ("47", int(BOB), "video", False, ()),  # in the demarcator's past_posts (IGTV)
    ]
    assert cursor == "QVFEcGFzdF9wb3N0cw==" and bad == 0  # past_posts' cursor, not the one into suggestions
    items = {**TIMELINE, "items": TIMELINE["feed_items"]}
    del items["feed_items"]
    assert parse_timeline(items) == (posts, cursor, 0)
    flat = [entry.get("media_or_ad", entry) for entry in TIMELINE["feed_items"]]  # older answers: media, unwrapped
    assert parse_timeline({"items": flat, "more_available": False, "next_max_id": "x"}) == (posts, None, 0)


@FUZZ
@given(mutated(TRAY))
def test_parse_tray_never_crashes(raw: Any) -> None:
    try:
        entries, bad = parse_tray(raw)
    except BadResponse:
        return
    check_malformed(bad)
    for entry in entries:
        assert isinstance(entry, TrayEntry)
        assert isinstance(entry.user_pk, int) and not isinstance(entry.user_pk, bool) and entry.user_pk > 0
        assert isinstance(entry.username, str) and _NAME.fullmatch(entry.username)
        assert isinstance(entry.latest_reel_media, int) and 0 < entry.latest_reel_media <= MAX_TIMESTAMP


@FUZZ
@given(mutated(REELS))
def test_parse_reels_never_crashes_nor_misattributes(raw: Any) -> None:
    try:
        reels, bad = parse_reels(raw)
    except BadResponse:
        return
    check_malformed(bad)
    for owner, stories in reels.items():
        assert isinstance(owner, int) and owner > 0
        assert len({story.pk for story in stories}) == len(stories)  # each item once: one item, one like
        for story in stories:
            check_story(story, owner)


@FUZZ
@given(mutated(USER_STORY))
def test_parse_user_story_never_crashes(raw: Any) -> None:
    try:
        stories, bad = parse_user_story(raw, ALICE)
    except BadResponse:
        return
    check_malformed(bad)
    for story in stories:
        check_story(story, ALICE)


@FUZZ
@given(mutated(FOLLOWING))
def test_parse_following_never_crashes(raw: Any) -> None:
    try:
        users, cursor, bad = parse_following(raw)
    except BadResponse:
        return
    check_malformed(bad)
    assert cursor is None or (isinstance(cursor, str) and cursor)
    for user in users:
        check_ref(user)
        assert user.followed is True


@FUZZ
@given(mutated(USERNAMEINFO))
def test_parse_user_info_never_crashes(raw: Any) -> None:
    try:
        ref = parse_user_info(raw, "alice")
    except BadResponse:
        return
    check_ref(ref)
    assert ref.username == "alice"


@FUZZ
@given(mutated(FEED))
def test_parse_user_feed_never_crashes(raw: Any) -> None:
    try:
        posts, cursor, bad = parse_user_feed(raw, ALICE)
    except BadResponse:
        return
    check_malformed(bad)
    assert cursor is None or (isinstance(cursor, str) and cursor.isprintable() and " " not in cursor)
    for post in posts:
        check_post(post)


def _pks_of_ads(value: Any) -> set[str]:
    """The media pks of every object in ``value`` that carries an ad marker (by ``pk`` or by its ``id``)."""
    found: set[str] = set()
    if isinstance(value, dict):
        if any(value.get(key) is not None for key in AD_MARKERS):
            found |= {str(value.get("pk")), str(value.get("id")).split("_")[0]}
            media = value.get("media_or_ad")
            if isinstance(media, dict):  # a marker on the entry makes its media an ad
                found |= {str(media.get("pk")), str(media.get("id")).split("_")[0]}
        for child in value.values():
            found |= _pks_of_ads(child)
    elif isinstance(value, list):
        for child in value:
            found |= _pks_of_ads(child)
    return found


@FUZZ
@given(mutated(TIMELINE))
def test_parse_timeline_never_crashes_nor_returns_an_ad(raw: Any) -> None:
    try:
        posts, cursor, bad = parse_timeline(raw)
    except BadResponse:
        return
    check_malformed(bad)
    assert cursor is None or (isinstance(cursor, str) and re.fullmatch(r"[\x21-\x7e]{1,500}", cursor))
    ads = _pks_of_ads(raw)
    for post in posts:
        check_post(post)
        assert post.pk not in ads
        assert all(isinstance(pk, int) and pk > 0 and pk != post.user_pk for pk in post.coauthors)


CARDS: dict[str, Any] = {
    "suggested_users": {"type": 2, "suggestions": [{"user": _user(CAROL, "carol")}]},
    "stories_netego": {"tracking_token": "t", "hide_unit_if_seen": "False", "id": 17913},
    "clips_netego": {"id": 1, "clips_items": [{"media": _media(3512004000000000199, CAROL, 2)}]},
    "end_of_feed_demarcator": {"title": "You're all caught up", "pause": True},
    "explore_story": {"media": _media(3512004000000000198, CAROL)},
    "bump": {"id": "bump"},
    "bloks_netego": {"id": 3},  # a card this code has never seen
}
AD_VALUES: dict[str, Any] = {
    "injected": {"label": "Sponsored", "ad_id": "1"},
    "ad_id": "23851",
    "ad_action": "Shop Now",
    "dr_ad_type": 1,
    "ad_link_type": 2,
    "ad_metadata": [{"value": "x", "type": 1}],
    "ad_header_style": 0,
    "ad4ad": {"title": "Ads"},
}


@st.composite
def home_feeds(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[str, int, str, bool, tuple[int, ...]]]]:
    """A home-feed answer made of organic posts, ads (any marker, on the media or its entry) and cards, wrapped
    (``feed_items`` of ``media_or_ad``) or not (older ``items``), and the organic posts it must give, in order."""
    key = draw(st.sampled_from(["feed_items", "items"]))
    entries: list[Any] = []
    expected = []
    for n in range(draw(st.integers(0, 10))):
        kind = draw(st.sampled_from(["post", "post", "ad", "card"]))
        if kind == "card":
            name = draw(st.sampled_from(sorted(CARDS)))
            entries.append({name: CARDS[name]})
            continue
        pk = 3512004000000000100 + n
        author = draw(st.sampled_from([ALICE, int(BOB), CAROL]))
        media_type = draw(st.sampled_from([1, 2, 8]))
        liked = draw(st.booleans())
        spelled: list[int | str] = [pk, str(pk)]
        media = _media(draw(st.sampled_from(spelled)), author, media_type, has_liked=liked)
        if media_type == 2 and draw(st.booleans()):
            media["product_type"] = "clips"
        wrapped = key == "feed_items" or draw(st.booleans())
        entry = {"media_or_ad": media} if wrapped else media
        if kind == "post":
            coauthors = draw(st.lists(st.sampled_from([ALICE, int(BOB), CAROL]), max_size=2, unique=True))
            if bool(coauthors) or draw(st.booleans()):
                media["coauthor_producers"] = [_user(c, "co") for c in coauthors]
            shown = "reel" if media.get("product_type") == "clips" else {1: "photo", 2: "video", 8: "album"}[media_type]
            expected.append((str(pk), author, shown, liked, tuple(c for c in coauthors if c != author)))
        else:
            for marker in draw(st.lists(st.sampled_from(AD_MARKERS), min_size=1, max_size=3, unique=True)):
                (entry if wrapped and draw(st.booleans()) else media)[marker] = AD_VALUES[marker]
        entries.append(entry)
    answer = {key: entries, "more_available": draw(st.booleans()), "next_max_id": "QVFE", "status": "ok"}
    return answer, expected


@FUZZ
@given(home_feeds())
def test_parse_timeline_gives_exactly_the_organic_posts(case: tuple[dict[str, Any], list[Any]]) -> None:
    answer, expected = case
    posts, cursor, bad = parse_timeline(json.loads(json.dumps(answer)))
    assert [(p.pk, p.user_pk, p.media_type, p.has_liked, p.coauthors) for p in posts] == expected
    assert bad == 0 and cursor == ("QVFE" if answer["more_available"] else None)


@FUZZ
@given(st.integers(0, 1), st.integers(1, 10**21).filter(lambda pk: pk != ALICE), st.booleans(), st.booleans())
def test_an_item_claiming_another_owner_is_skipped(index: int, other: int, in_user: bool, as_string: bool) -> None:
    raw = copy.deepcopy(REELS)
    item = raw["reels"][str(ALICE)]["items"][index]
    claimed: int | str = str(other) if as_string else other
    if in_user:
        item["user"]["pk"] = claimed
    else:
        item["id"] = f"{item['pk']}_{claimed}"
    reels, bad = parse_reels(json.loads(json.dumps(raw)))
    assert bad == 1 and len(reels[ALICE]) == 1
    assert reels[ALICE][0].pk != str(item["pk"])


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "1e400", "1" + "0" * 30, "4102444801", '"soon"'])
def test_non_finite_huge_and_wrong_numbers_on_the_wire_are_malformed_items(value: str) -> None:
    tray = json.dumps(TRAY).replace(f'"latest_reel_media": {NOW},', f'"latest_reel_media": {value},', 1)
    assert parse_tray(json.loads(tray)) == ([TrayEntry(int(BOB), "bob", NOW - 60)], 1)
    reels = json.dumps(REELS).replace(f'"taken_at": {NOW - 120},', f'"taken_at": {value},', 1)
    found, bad = parse_reels(json.loads(reels))
    assert bad == 1 and [s.pk for s in found[ALICE]] == ["3512004000000000018"]


def test_a_wrong_password_is_password_rejected_and_still_needs_a_human(ig: InstagramDouble) -> None:
    from story_liker.errors import NeedsHuman, PasswordRejected

    a = adapter(ig, logged_in=False, password="not-the-password")
    with pytest.raises(PasswordRejected, match="BadPassword") as caught:
        a.relogin()
    assert isinstance(caught.value, NeedsHuman) and caught.value.exit_code == 77
