"""The Instagram double, driven by the REAL instagrapi Client (no mocks inside instagrapi)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from instagrapi import Client
from instagrapi.exceptions import (
    BadPassword,
    ChallengeRequired,
    ClientConnectionError,
    ClientError,
    ClientJSONDecodeError,
    ClientLoginRequired,
    ClientNotFoundError,
    ClientThrottledError,
    FeedbackRequired,
    LoginRequired,
    MediaUnavailable,
    PleaseWaitFewMinutes,
    PrivateAccount,
    ProxyAddressIsBlocked,
    TwoFactorRequired,
    UserNotFound,
)

from story_liker.ig.transport import with_default_timeout
from tests.double import (
    FEEDBACK_REQUIRED_BODY,
    PLEASE_WAIT_BODY,
    InstagramDouble,
    new_client,
    point_client,
    totp_code,
)

PASSWORD = "correct-horse"
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CAA_LOGIN_PATHS = [
    "POST /graphql_www",
    "POST /api/v1/bloks/async_action/com.bloks.www.bloks.caa.login.process_client_data_and_redirect/",
    "POST /api/v1/attestation/create_android_keystore/",
    "POST /api/v1/bloks/async_action/com.bloks.www.caa.login.oauth.token.fetch.async/",
    "GET /api/v1/qe/sync/",
    "POST /api/v1/bloks/async_action/com.bloks.www.bloks.caa.login.async.send_login_request/",
    "POST /api/v1/feed/reels_tray/",
    "POST /api/v1/feed/timeline/",
]


@pytest.fixture
def ig() -> Iterator[InstagramDouble]:
    with InstagramDouble() as double:
        yield double


@pytest.fixture
def client(ig: InstagramDouble) -> Client:
    return new_client(ig)


def reels_media(client: Client, *user_pks: int) -> dict[str, Any]:
    data = client.with_default_data({"user_ids": [str(pk) for pk in user_pks], "source": "reel_feed_timeline"})
    result: dict[str, Any] = client.private_request("feed/reels_media/", data)
    return result


# ----------------------------------------------------------------------------- sessions & login


def test_settings_load_then_account_info(ig: InstagramDouble) -> None:
    settings = ig.settings()
    assert settings["authorization_data"]["sessionid"] == ig.sessionid
    assert settings["uuids"]["phone_id"] and settings["device_settings"]["app_version"]
    assert ig.sessionid.startswith(f"{ig.own_pk}%3A") and len(ig.sessionid) > 30
    assert ig.settings()["uuids"] == settings["uuids"]  # same device on every call

    client = new_client(ig)
    account = client.account_info()

    assert (account.username, int(account.pk)) == ("liker", ig.own_pk)
    assert client.request_timeout == 0  # set_settings restored 1 from the settings; point_client zeroed it
    assert ig.paths() == ["GET /api/v1/accounts/current_user/?edit=true"]
    rec = ig.requests[0]
    assert rec.host == "i.instagram.com"
    assert rec.headers["authorization"].startswith("Bearer IGT:2:")


def test_authenticated_responses_rotate_cookies(ig: InstagramDouble, client: Client) -> None:
    before = client.get_settings()["cookies"]["rur"]
    client.account_info()
    after = client.get_settings()["cookies"]["rur"]
    assert after != before
    assert "\\054".join(ig.rur.split(",")) in after

    ig.rotate_cookies = False
    client.account_info()
    assert client.get_settings()["cookies"]["rur"] == after


def test_unauthenticated_client_gets_login_required(ig: InstagramDouble) -> None:
    client = new_client(ig, logged_in=False)
    with pytest.raises(LoginRequired):
        client.account_info()
    assert ig.count() == 1


def test_login_by_sessionid(ig: InstagramDouble) -> None:
    client = new_client(ig, logged_in=False)

    assert client.login_by_sessionid(ig.sessionid)

    assert client.user_id == ig.own_pk and client.username == "liker"
    assert ig.paths() == [
        f"GET /api/v1/users/{ig.own_pk}/info/?is_prefetch=false&entry_point=self_profile"
        "&from_module=self_profile&is_app_start=False"
    ]
    assert client.account_info().username == "liker"


def test_login_by_stale_sessionid_is_client_login_required(ig: InstagramDouble) -> None:
    stale = ig.sessionid
    ig.expire_session()
    client = new_client(ig, logged_in=False)

    # instagrapi falls back from users/{pk}/info/ (LoginRequired) to info_stream and the web
    # GraphQL, which redirects to the login page: the error is ClientLoginRequired, a
    # different class from LoginRequired.
    with pytest.raises(ClientLoginRequired):
        client.login_by_sessionid(stale)
    assert [p.split("?")[0] for p in ig.paths()] == [
        f"GET /api/v1/users/{ig.own_pk}/info/",
        f"POST /api/v1/users/{ig.own_pk}/info_stream/",
        "POST /graphql/query/",
        "GET /accounts/login/",
    ]


def test_password_login_caa_mints_a_new_session(ig: InstagramDouble) -> None:
    old_client = new_client(ig)
    old_session = ig.sessionid
    ig.reset_requests()
    client = new_client(ig, logged_in=False)

    assert client.login("liker", PASSWORD)

    assert [p.split("?")[0] for p in ig.paths()] == CAA_LOGIN_PATHS
    assert ig.sessionid != old_session
    assert client.authorization_data["sessionid"] == ig.sessionid
    assert client.get_settings()["authorization_data"]["ds_user_id"] == str(ig.own_pk)
    assert client.account_info().username == "liker"
    with pytest.raises(LoginRequired):
        old_client.account_info()
    # A fresh client restored from the dumped settings is logged in without a login request.
    restored = Client(private_transport="requests", with_challenge_flow=False)
    restored.set_settings(client.get_settings())
    ig.reset_requests()
    assert point_client(restored, ig.url).account_info().username == "liker"
    assert ig.count() == 1


def test_wrong_password_is_bad_password(ig: InstagramDouble) -> None:
    session = ig.sessionid
    client = new_client(ig, logged_in=False)

    with pytest.raises(BadPassword):
        client.login("liker", "wrong")

    assert ig.sessionid == session
    # CAA says "fall back", the legacy endpoint says bad_password, instagrapi retries CAA once.
    assert ig.count("send_login_request") == 2
    assert ig.count("accounts/login/") == 1


def test_unknown_username_maps_to_proxy_blocked(ig: InstagramDouble) -> None:
    with pytest.raises(ProxyAddressIsBlocked):  # instagrapi's mapping of "The username you entered..."
        new_client(ig, logged_in=False).login("nobody", PASSWORD)


def test_totp_login_caa(ig: InstagramDouble) -> None:
    ig.totp_seed = SEED
    assert totp_code(SEED) == Client.totp_generate_code(SEED)

    with pytest.raises(TwoFactorRequired):
        new_client(ig, logged_in=False).login("liker", PASSWORD)
    with pytest.raises(TwoFactorRequired):
        new_client(ig, logged_in=False).login("liker", PASSWORD, verification_code="000000")
    ig.reset_requests()
    client = new_client(ig, logged_in=False)

    assert client.login("liker", PASSWORD, verification_code=Client.totp_generate_code(SEED))

    assert ig.count("two_step_verification.verify_code.async") == 1
    assert client.authorization_data["sessionid"] == ig.sessionid
    assert client.account_info().username == "liker"


def test_totp_login_legacy(ig: InstagramDouble) -> None:
    ig.totp_seed = SEED
    client = new_client(ig, logged_in=False)

    assert client.login_legacy("liker", PASSWORD, verification_code=Client.totp_generate_code(SEED))

    assert ig.count("accounts/login/") == 1 and ig.count("accounts/two_factor_login/") == 1
    assert client.account_info().username == "liker"


def test_legacy_login_and_bad_password(ig: InstagramDouble) -> None:
    client = new_client(ig, logged_in=False)
    assert client.login_legacy("liker", PASSWORD)
    assert client.authorization_data["sessionid"] == ig.sessionid
    with pytest.raises(BadPassword):
        new_client(ig, logged_in=False).login_legacy("liker", "nope")


def test_relogin_after_expired_session(ig: InstagramDouble, client: Client) -> None:
    ig.expire_session()
    with pytest.raises(LoginRequired) as info:
        client.account_info()
    assert info.value.code == 403 and getattr(info.value, "logout_reason", None) == 2

    # login() with a loaded session first checks it (account_info), then relogs in through CAA.
    ig.reset_requests()
    assert client.login("liker", PASSWORD)
    assert ig.paths()[0] == "GET /api/v1/accounts/current_user/?edit=true"
    assert ig.count("send_login_request") == 1
    assert client.account_info().username == "liker"

    ig.expire_session()
    assert client.login(relogin=True)  # username/password remembered from the previous call
    assert client.account_info().username == "liker"


def test_challenge_required(ig: InstagramDouble, client: Client) -> None:
    ig.require_challenge()
    with pytest.raises(ChallengeRequired):
        client.account_info()
    with pytest.raises(ChallengeRequired):
        new_client(ig, logged_in=False).login("liker", PASSWORD)
    ig.require_challenge(False)
    assert client.account_info().username == "liker"


# ------------------------------------------------------------------------------------- faults


def test_429_is_throttled_with_exactly_one_request(ig: InstagramDouble, client: Client) -> None:
    ig.fail("feed/reels_tray", status=429)
    with pytest.raises(ClientThrottledError) as info:
        client.get_reels_tray_feed()
    assert info.value.code == 429
    assert ig.count("feed/reels_tray") == 1  # no urllib3 / instagrapi retry
    assert client.get_reels_tray_feed()["status"] == "ok"  # times=1: the next one passes


def test_please_wait_and_feedback_required(ig: InstagramDouble, client: Client) -> None:
    alice = ig.add_user("alice")
    story = ig.add_story(alice)
    ig.fail("accounts/current_user", status=400, body=PLEASE_WAIT_BODY)
    ig.fail("send_story_like", status=400, body=FEEDBACK_REQUIRED_BODY)

    with pytest.raises(PleaseWaitFewMinutes):
        client.account_info()
    with pytest.raises(FeedbackRequired):
        client.story_like(story.id, mark_seen=False)
    assert not story.liked


def test_fail_after_and_times(ig: InstagramDouble, client: Client) -> None:
    ig.fail("current_user", status=500, times=2, after=1)
    client.account_info()
    for _ in range(2):
        with pytest.raises(ClientError) as info:
            client.account_info()
        assert info.value.code == 500
    client.account_info()
    assert ig.count("current_user") == 4


def test_connection_reset_and_malformed_json(ig: InstagramDouble, client: Client) -> None:
    ig.fault_reset("current_user")
    with pytest.raises(ClientConnectionError):
        client.account_info()
    assert ig.count("current_user") == 1

    ig.raw("current_user", '{"user": {"pk": 1, "userna')
    with pytest.raises(ClientJSONDecodeError):
        client.account_info()
    assert client.account_info().username == "liker"


def test_delay_with_default_timeout_raises_requests_timeout(ig: InstagramDouble, client: Client) -> None:
    with_default_timeout(client.private, 0.2)  # the inner wrapper (5 s) sees timeout already set
    ig.delay("current_user", 3)  # shorter than the 5 s default: only the 0.2 s timeout can raise
    with pytest.raises(requests.exceptions.Timeout):  # not wrapped by instagrapi
        client.account_info()
    assert ig.count("current_user") == 1  # it reached the double, which was still delaying its answer


def test_hold_keeps_a_request_unanswered_until_released(ig: InstagramDouble, client: Client) -> None:
    release = ig.hold("current_user")
    answered = threading.Event()

    def ask() -> None:
        client.account_info()
        answered.set()

    worker = threading.Thread(target=ask)
    worker.start()
    deadline = time.monotonic() + 30
    while ig.count("current_user") < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ig.count("current_user") == 1 and not answered.wait(0.5)  # reached the double, still unanswered
    release.set()
    worker.join(30)
    assert answered.is_set()


def test_unknown_endpoint_is_404_and_recorded(ig: InstagramDouble, client: Client) -> None:
    with pytest.raises(ClientNotFoundError):
        client.private_request("direct_v2/inbox/")
    assert ig.count("direct_v2/inbox/") == 1


def test_server_threads_are_gone_after_exit() -> None:
    baseline = threading.active_count()
    with InstagramDouble() as ig:
        client = new_client(ig)
        client.account_info()  # leaves a keep-alive connection open
        ig.delay("current_user", 30)
        with_default_timeout(client.private, 0.1)
        with pytest.raises(requests.exceptions.Timeout):
            client.account_info()  # a handler thread is now sleeping
    assert threading.active_count() == baseline


# --------------------------------------------------------------------------------- stories


def user_reels(tray: list[dict[str, Any]], ig: InstagramDouble) -> list[dict[str, Any]]:
    """The followed users' reels of a tray answer (not the own reel, no ad, no hashtag or location reel)."""
    return [
        reel
        for reel in tray
        if reel.get("reel_type") == "user_reel"
        and "ad_id" not in reel
        and "user" in reel
        and int(reel["user"]["pk"]) != ig.own_pk
    ]


def test_tray_reels_media_seen_like_round_trip(ig: InstagramDouble, client: Client) -> None:
    now = int(time.time())
    alice = ig.add_user("alice")
    bob = ig.add_user("bob", private=True)  # private but followed: visible
    carol = ig.add_user("carol", followed=False)  # public, not followed
    dave = ig.add_user("dave", private=True, followed=False)
    erin = ig.add_user("erin")  # only an expired story
    ig.add_user("frank")  # no stories
    a1 = ig.add_story(alice, taken_at=now - 600)
    a2 = ig.add_story(alice, taken_at=now - 300, liked=True)
    b1 = ig.add_story(bob, seen=True)
    c1 = ig.add_story(carol)
    ig.add_story(dave)
    ig.add_story(erin, taken_at=now - 25 * 3600)

    tray = user_reels(client.get_reels_tray_feed()["tray"], ig)
    assert [reel["user"]["username"] for reel in tray] == ["alice", "bob"]  # unseen first
    alice_reel = tray[0]
    assert (int(alice_reel["id"]), alice_reel["latest_reel_media"], alice_reel["seen"]) == (alice.pk, now - 300, 0)
    assert alice_reel["media_count"] == 2 and alice_reel["user"]["pk_id"] == str(alice.pk)
    assert tray[1]["seen"] == tray[1]["latest_reel_media"] == b1.taken_at

    reels = reels_media(client, alice.pk, bob.pk, carol.pk, dave.pk, erin.pk)["reels"]
    assert set(reels) == {str(alice.pk), str(bob.pk), str(carol.pk)}
    items = reels[str(alice.pk)]["items"]
    assert [item["id"] for item in items] == [a1.id, a2.id]
    assert [item["has_liked"] for item in items] == [False, True]
    assert str(items[0]["pk"]) == str(a1.pk) and items[0]["expiring_at"] == a1.taken_at + 86400
    assert ig.requests[-1].form["user_ids"] == [
        str(alice.pk),
        str(bob.pk),
        str(carol.pk),
        str(dave.pk),
        str(erin.pk),
    ]

    assert client.story_seen([a1.id, a2.id, c1.id])
    assert ig.seen_story_ids == {a1.id, a2.id, b1.id, c1.id}
    assert set(ig.requests[-1].form["reels"]) == {f"{s.id}_{s.user.pk}" for s in (a1, a2, c1)}
    seen = {int(reel["id"]): reel["seen"] for reel in user_reels(client.get_reels_tray_feed()["tray"], ig)}
    assert seen == {alice.pk: a2.taken_at, bob.pk: b1.taken_at}

    ig.reset_requests()
    assert client.story_like(a1.id, mark_seen=False)
    assert ig.paths() == ["POST /api/v1/story_interactions/send_story_like"]
    assert ig.requests[0].form["media_id"] == a1.id
    assert ig.liked_story_ids == {a1.id, a2.id} and a1.liked
    assert all(item["has_liked"] for item in reels_media(client, alice.pk)["reels"][str(alice.pk)]["items"])


# ------------------------------------------------------------------ real shapes (REAL_SHAPES.md) and tidy ones


def test_the_tray_has_other_entries_than_followed_users_reels(ig: InstagramDouble, client: Client) -> None:
    users = [ig.add_user(f"friend_{n}") for n in range(6)]
    for user in users:
        ig.add_story(user)
    answer = client.get_reels_tray_feed()
    tray = answer["tray"]
    assert tray[0]["user"]["username"] == ig.username and "items" in tray[0]  # the own reel first
    ad = tray[2]  # injected after the first reels, with a user of its own (the sponsor)
    assert "ad_id" in ad and ad["injected"]["label"] == "Sponsored" and ad["user"]["username"] == "brand.shop"
    assert all("injected" in item for item in ad["items"])
    hashtag = next(reel for reel in tray if reel["id"] == "tag:travel")
    assert hashtag["reel_type"] == "mas_reel" and "user" not in hashtag and hashtag["owner"]["name"] == "#travel"
    location = next(reel for reel in tray if str(reel["id"]).startswith("loc:"))
    assert location["reel_type"] == "mas_reel" and location["owner"]["type"] == 1
    assert [("items" in reel) for reel in tray] == [n < 4 for n in range(len(tray))]  # metadata beyond the first few
    assert [reel["ranked_position"] for reel in tray] == list(range(1, len(tray) + 1))
    assert {r["user"]["username"] for r in user_reels(tray, ig)} == {u.username for u in users}
    assert answer["suggestions"][0]["tray"][0]["user"]["username"] == "suggested.sam"  # not in the tray itself
    assert answer["broadcasts"][0]["broadcast_owner"]["username"] == "live.larry"
    assert answer["post_live"]["post_live_items"][0]["broadcasts"][0]["broadcast_status"] == "post_live"
    ids = [reel["id"] for reel in user_reels(tray, ig)]
    assert {type(i) for i in ids} == {int, str}  # numbers in some places, strings in others
    assert {type(r["user"]["pk"]) for r in user_reels(tray, ig)} == {int, str}
    assert all(isinstance(m, str) for r in user_reels(tray, ig) for m in r["media_ids"])


def test_the_tray_is_lossy_muted_and_dropped_users_never_appear() -> None:
    with InstagramDouble(tray_drop=0.2) as ig:
        client = new_client(ig)
        users = [ig.add_user(f"friend_{n:02d}") for n in range(10)]
        muted = ig.add_user("muted_mo", muted=True)
        for user in [*users, muted]:
            ig.add_story(user)
        dropped = ig.tray_dropped()
        assert len(dropped) == 3 and muted in dropped  # muted, and 20 % of the 10 others
        listed = {r["user"]["username"] for r in user_reels(client.get_reels_tray_feed()["tray"], ig)}
        assert listed == {u.username for u in users} - {u.username for u in dropped}
        assert ig.tray_dropped() == dropped  # always the same users
        reels = reels_media(client, *(u.pk for u in dropped))["reels"]
        assert set(reels) == {str(u.pk) for u in dropped}  # their stories are there all the same


def test_the_tray_answers_one_page(ig: InstagramDouble, client: Client) -> None:
    for n in range(60):
        ig.add_story(ig.add_user(f"friend_{n:02d}"))
    assert ig.requests == [] and len(client.get_reels_tray_feed()["tray"]) == 50  # instagrapi asks page_size 50
    assert ig.requests[-1].form["page_size"] == 50


def test_real_story_items(ig: InstagramDouble, client: Client) -> None:
    alice = ig.add_user("alice")
    besties = ig.add_story(alice, taken_at=time.time() - 900, close_friends=True)
    reshare = ig.add_story(alice, taken_at=time.time() - 600, reshare=True)
    parts = ig.add_segmented_video(alice, 3, taken_at=time.time() - 300)
    answer = reels_media(client, alice.pk)
    items = answer["reels"][str(alice.pk)]["items"]
    assert answer["reels_media"] == [answer["reels"][str(alice.pk)]]  # the same reels as a list too
    assert [item["id"] for item in items] == [s.id for s in [besties, reshare, *parts]]
    assert all(len(str(item["pk"])) == 19 and int(item["pk"]) > 2**53 for item in items)
    assert {type(item["pk"]) for item in items} == {int, str}
    assert all(set(item["user"]) == {"pk", "is_private"} for item in items)  # a minimal user
    assert items[0]["audience"] == "besties" and "audience" not in items[1]
    assert items[1]["story_feed_media"][0]["media_id"] == reshare.reshared
    groups = {item.get("segmented_video_group_id") for item in items[2:]}
    assert len(groups) == 1 and None not in groups and len({item["taken_at"] for item in items[2:]}) == 1
    assert [item["is_terminal_video_segment"] for item in items[2:]] == [False, False, True]
    reel = user_reels(client.get_reels_tray_feed()["tray"], ig)[0]
    assert reel["has_besties_media"] and reel["latest_besties_reel_media"] == float(besties.taken_at)
    assert isinstance(reel["latest_besties_reel_media"], float)


def test_a_reel_gone_between_the_tray_and_the_fetch(ig: InstagramDouble, client: Client) -> None:
    alice = ig.add_user("alice")
    ig.add_story(alice)
    ig.expire_on_fetch(alice)
    assert [r["user"]["username"] for r in user_reels(client.get_reels_tray_feed()["tray"], ig)] == ["alice"]
    assert reels_media(client, alice.pk)["reels"] == {}
    assert client.private_request(f"feed/user/{alice.pk}/story/")["reel"] is None


def test_a_broken_story_is_malformed_in_the_next_answers_only(ig: InstagramDouble, client: Client) -> None:
    alice = ig.add_user("alice")
    story = ig.add_story(alice)
    ig.break_story(story, times=1)
    client.get_reels_tray_feed()  # the tray's prefetched items do not count
    assert "taken_at" not in reels_media(client, alice.pk)["reels"][str(alice.pk)]["items"][0]
    assert reels_media(client, alice.pk)["reels"][str(alice.pk)]["items"][0]["taken_at"] == story.taken_at


def test_seen_requests_are_recorded_with_their_values(ig: InstagramDouble, client: Client) -> None:
    alice = ig.add_user("alice")
    first, second = ig.add_story(alice, taken_at=time.time() - 600), ig.add_story(alice, taken_at=time.time() - 60)
    assert client.story_seen([first.id, second.id])
    [request] = ig.seen_requests
    assert request.index == 0 and list(request.reels) == [f"{s.id}_{alice.pk}" for s in (first, second)]
    values = request.values()
    assert [media for media, _, _ in values] == [first.id, second.id]
    # instagrapi's media_seen sends "<random begin>_<now>", the same end for every story, not the story's
    # taken_at; the app (and dilame's story.service.ts) sends "<taken_at>_<seen_at>", rising story by story
    assert len({seen for _, _, seen in values}) == 1
    assert all(100 <= seen - begin <= 3000 and seen <= request.received_at for _, begin, seen in values)
    assert ig.seen_values() == values


def test_tidy_double_answers_the_way_the_code_would_like() -> None:
    with InstagramDouble(tidy=True) as ig:
        client = new_client(ig)
        ig.add_user("alice", followed=False)
        bob = ig.add_user("bob")
        ig.add_story(bob)
        answer = client.get_reels_tray_feed()
        assert [r["user"]["username"] for r in answer["tray"]] == ["bob"] and "items" not in answer["tray"][0]
        assert answer["broadcasts"] == [] and "suggestions" not in answer
        [item] = reels_media(client, bob.pk)["reels"][str(bob.pk)]["items"]
        assert isinstance(item["pk"], str) and item["user"]["username"] == "bob"
        assert client.private_request("users/alice/usernameinfo/")["user"]["friendship_status"]["following"] is False


def test_user_stories_v1_and_private_users(ig: InstagramDouble, client: Client) -> None:
    alice = ig.add_user("alice")
    dave = ig.add_user("dave", private=True, followed=False)
    story = ig.add_story(alice, media_type=2)
    stories = client.user_stories_v1(alice.pk)
    # instagrapi takes the story's user from the item, which real answers keep minimal: no username
    assert [(s.id, s.media_type, s.user.pk, s.user.username) for s in stories] == [(story.id, 2, str(alice.pk), None)]
    assert client.private_request(f"feed/user/{ig.add_user('nobody-posts').pk}/story/")["reel"] is None
    with pytest.raises(PrivateAccount):
        client.user_stories_v1(dave.pk)
    with pytest.raises(PrivateAccount):
        client.user_medias_v1(dave.pk, amount=5)


def test_story_like_default_marks_seen_with_three_requests(ig: InstagramDouble, client: Client) -> None:
    story = ig.add_story(ig.add_user("alice"))
    assert client.story_like(story.id)
    assert [p.split("?")[0] for p in ig.paths()] == [
        f"GET /api/v1/media/{story.pk}/info/",
        "POST /api/v2/media/seen/",
        "POST /api/v1/story_interactions/send_story_like",
    ]
    assert story.seen and story.liked


def test_story_like_unknown_or_expired_is_unavailable(ig: InstagramDouble, client: Client) -> None:
    old = ig.add_story(ig.add_user("alice"), taken_at=time.time() - 2 * 86400)
    with pytest.raises(MediaUnavailable):
        client.story_like(f"{old.pk + 1}_{old.user.pk}", mark_seen=False)
    with pytest.raises(MediaUnavailable):
        client.story_like(old.id, mark_seen=False)
    assert ig.liked_story_ids == set()


# ------------------------------------------------------------------------------- users & posts


def test_user_lookups(ig: InstagramDouble, client: Client) -> None:
    alice = ig.add_user("alice", followed=False)
    user = client.user_info_by_username_v1("alice")
    assert (int(user.pk), user.username, user.is_private) == (alice.pk, "alice", False)
    assert "friendship_status" not in client.last_json["user"]  # usernameinfo does not say whether you follow
    assert client.user_info_v1(alice.pk).username == "alice"
    with pytest.raises(UserNotFound):
        client.user_info_by_username_v1("ghost")
    with pytest.raises(UserNotFound):
        client.user_info_v1(123)


def test_following_paginates(ig: InstagramDouble, client: Client) -> None:
    followed = [ig.add_user(f"user{i}") for i in range(5)]
    ig.add_user("stranger", followed=False)

    page = client.private_request(f"friendships/{ig.own_pk}/following/", params={"count": 2})
    assert len(page["users"]) == 2 and page["next_max_id"] == "2" and page["big_list"] and page["page_size"] == 2
    assert all(isinstance(user["pk"], str) for user in page["users"])  # pks as strings
    last = client.private_request(f"friendships/{ig.own_pk}/following/", params={"count": 2, "max_id": "4"})
    assert len(last["users"]) == 1 and "next_max_id" not in last

    users = client.user_following_v1(str(ig.own_pk))
    assert {u.username for u in users} == {u.username for u in followed}


def test_feed_and_media_like(ig: InstagramDouble, client: Client) -> None:
    alice = ig.add_user("alice")
    now = int(time.time())
    photo = ig.add_post(alice, taken_at=now - 300)
    reel = ig.add_post(alice, taken_at=now - 200, media_type=2, product_type="clips")
    album = ig.add_post(alice, taken_at=now - 100, media_type=8, liked=True)

    medias = client.user_medias_v1(alice.pk, amount=2)
    assert [m.id for m in medias] == [album.id, reel.id]  # newest first, count respected
    assert ig.count(f"feed/user/{alice.pk}/") == 1 and ig.requests[-1].query["count"] == "2"
    assert medias[0].has_liked and len(medias[0].resources) == 2
    assert (medias[1].media_type, medias[1].product_type, medias[1].video_url is not None) == (
        2,
        "clips",
        True,
    )

    page = client.private_request(f"feed/user/{alice.pk}/", params={"count": 2})
    assert page["more_available"] and page["next_max_id"] == reel.id
    rest = client.private_request(f"feed/user/{alice.pk}/", params={"count": 2, "max_id": reel.id})
    assert [item["id"] for item in rest["items"]] == [photo.id] and not rest["more_available"]

    likes_before = photo.like_count
    ig.reset_requests()
    assert client.media_like(photo.id)
    assert ig.paths() == [f"POST /api/v1/media/{photo.id}/like/"]
    assert photo.id in ig.liked_media_ids and photo.like_count == likes_before + 1
    item = client.private_request(f"feed/user/{alice.pk}/", params={"count": 3})["items"][2]
    assert item["has_liked"] and item["like_count"] == likes_before + 1
    with pytest.raises(MediaUnavailable):
        client.media_like(f"{photo.pk + 5}_{alice.pk}")


def test_user_medias_v1_swallows_throttling(ig: InstagramDouble, client: Client) -> None:
    """instagrapi trap: user_medias_*_v1 catch every non-PrivateError and return []."""
    alice = ig.add_user("alice")
    ig.add_post(alice)
    ig.fail("feed/user/", status=429)
    assert client.user_medias_v1(alice.pk, amount=1) == []
    ig.fail("feed/user/", status=429)
    with pytest.raises(ClientThrottledError):
        client.private_request(f"feed/user/{alice.pk}/", params={"count": 1})


def test_feed_pinned_first_collabs_in_the_coauthors_feed(ig: InstagramDouble, client: Client) -> None:
    alice, bob = ig.add_user("alice"), ig.add_user("bob")
    now = int(time.time())
    pinned = ig.add_post(alice, taken_at=now - 90 * 86400, pinned=True)
    newest = ig.add_post(alice, taken_at=now - 60, media_type=2, product_type="clips")
    collab = ig.add_post(bob, taken_at=now - 120, media_type=8, coauthors=[alice])
    items = client.private_request(f"feed/user/{alice.pk}/", params={"count": 5})["items"]
    assert [item["id"] for item in items] == [pinned.id, newest.id, collab.id]  # pinned first, whatever its age
    assert items[0]["timeline_pinned_user_ids"] == [alice.pk] and items[1]["timeline_pinned_user_ids"] == []
    assert int(items[2]["user"]["pk"]) == bob.pk and items[2]["coauthor_producers"][0]["username"] == "alice"
    assert len(items[2]["carousel_media"]) == 2
    medias = client.user_medias_v1(alice.pk, amount=5)  # instagrapi parses all of it
    assert [m.id for m in medias] == [pinned.id, newest.id, collab.id]
    assert medias[2].user.username == "bob" and [u.username for u in medias[2].coauthor_producers] == ["alice"]


# ------------------------------------------------------------------------------- the home feed


def timeline(client: Client, max_id: str | None = None) -> dict[str, Any]:
    """One home-feed page as the adapter asks for it: unsigned form fields."""
    data = {"reason": "pagination" if max_id else "cold_start_fetch", "_uuid": client.uuid, "is_pull_to_refresh": "0"}
    if max_id:
        data["max_id"] = max_id
    result: dict[str, Any] = client.private_request("feed/timeline/", data, with_signature=False)
    return result


def kinds(answer: dict[str, Any]) -> list[str]:
    """What each entry of a home-feed page is: a post's id, "ad", "suggested:<id>" or the card's key."""
    found = []
    for entry in answer["feed_items"]:
        media = entry.get("media_or_ad")
        if media is None:
            found.append(next(iter(entry)))
        elif "injected" in media:
            found.append("ad")
        elif "explore" in media:
            found.append(f"suggested:{media['id']}")
        else:
            found.append(media["id"])
    return found


def test_home_feed_pages_with_the_real_extras(ig: InstagramDouble, client: Client) -> None:
    alice, bob, carol = ig.add_user("alice"), ig.add_user("bob"), ig.add_user("carol", followed=False)
    now = int(time.time())
    photo = ig.add_post(alice, taken_at=now - 100, liked=True)
    album = ig.add_post(bob, taken_at=now - 200, media_type=8)
    clip = ig.add_post(alice, taken_at=now - 300, media_type=2, product_type="clips")
    collab = ig.add_post(carol, taken_at=now - 400, coauthors=[bob])  # carol is not followed, bob is
    ig.add_post(carol, taken_at=now - 50)  # not followed: never in the home feed
    older = [ig.add_post(bob, taken_at=now - 500 - n) for n in range(3)]
    ig.timeline_page_size = 4
    suggested, reel = ig.extra_posts[1], ig.extra_posts[2]

    first = timeline(client)
    assert kinds(first) == [
        photo.id, "stories_netego", "ad", album.id, f"suggested:{suggested.id}", clip.id, "suggested_users",
        collab.id, "clips_netego",
    ]  # fmt: skip
    assert first["more_available"] is True and first["num_results"] == 9
    items = {
        entry["media_or_ad"]["id"]: entry["media_or_ad"] for entry in first["feed_items"] if "media_or_ad" in entry
    }
    assert items[photo.id]["has_liked"] is True and items[album.id]["carousel_media_count"] == 2
    assert items[clip.id]["product_type"] == "clips" and items[clip.id]["media_type"] == 2
    assert [u["pk"] for u in items[collab.id]["coauthor_producers"]] == [bob.pk]
    assert items[collab.id]["user"]["pk"] == carol.pk
    [ad] = [m for m in items.values() if "injected" in m]
    assert ad["ad_id"] == ad["injected"]["ad_id"] and ad["ad_action"] and ad["dr_ad_type"] == 1
    assert first["feed_items"][-1]["clips_netego"]["clips_items"][0]["media"]["id"] == reel.id

    second = timeline(client, first["next_max_id"])
    assert ig.requests[-1].form["max_id"] == first["next_max_id"]
    # every post is recent: after the last one, "You're all caught up", with no older posts to go on with
    assert kinds(second) == [older[0].id, older[1].id, "ad", older[2].id, "end_of_feed_demarcator"]
    assert second["next_max_id"] == "feed_recs_head_load" and second["more_available"] is True
    [group] = second["feed_items"][-1]["end_of_feed_demarcator"]["group_set"]["groups"]
    assert group["feed_items"] == [] and "next_max_id" not in group
    assert [p.id for p in ig.timeline_posts()] == [photo.id, album.id, clip.id, collab.id, *(p.id for p in older)]


def test_home_feed_caught_up_goes_on_in_past_posts(ig: InstagramDouble, client: Client) -> None:
    """Where the recent posts end: a demarcator whose past_posts group holds the next older posts and their cursor;
    the answer's own cursor (feed_recs_head_load) leads to suggested posts of accounts not followed, then no more."""
    alice = ig.add_user("alice")
    now = int(time.time())
    recent = [ig.add_post(alice, taken_at=now - 3600 * (n + 1)) for n in range(2)]
    old = [ig.add_post(alice, taken_at=now - 86400 * (n + 3)) for n in range(5)]
    ig.timeline_page_size, ig.timeline_extras = 3, False

    first = timeline(client)
    assert kinds(first) == [recent[0].id, recent[1].id, "end_of_feed_demarcator"]
    assert first["next_max_id"] == "feed_recs_head_load" and first["more_available"] is True
    demarcator = first["feed_items"][-1]["end_of_feed_demarcator"]
    [group] = demarcator["group_set"]["groups"]
    assert group["id"] == "past_posts" and [e["media_or_ad"]["id"] for e in group["feed_items"]] == [old[0].id]
    second = timeline(client, group["next_max_id"])
    assert kinds(second) == [p.id for p in old[1:4]] and second["more_available"] is True
    third = timeline(client, second["next_max_id"])
    assert kinds(third) == [old[4].id] and third["more_available"] is False

    recs = timeline(client, "feed_recs_head_load")
    assert kinds(recs) == [f"suggested:{p.id}" for p in ig.extra_posts[3:]] and recs["more_available"] is False
    assert timeline(client, "bm90IGEgY3Vyc29y")["feed_items"] == []  # a cursor the double never gave


def test_home_feed_is_lossy(ig: InstagramDouble, client: Client) -> None:
    users = [ig.add_user(name) for name in ("alice", "bob", "carol", "dave")]
    posts = {u.username: ig.add_post(u) for u in users}
    [dropped] = ig.timeline_dropped()  # a quarter of the followed users with posts, always the same one
    shown = [p.id for p in ig.timeline_posts()]
    assert posts[dropped.username].id not in shown and len(shown) == 3
    collab = ig.add_post(dropped, coauthors=[u for u in users if u is not dropped][:1])
    assert collab.id in [p.id for p in ig.timeline_posts()]  # a shown coauthor brings it
    quiet = next(u for u in users if u is not dropped)
    quiet.in_timeline = False
    assert quiet in ig.timeline_dropped() and posts[quiet.username].id not in [p.id for p in ig.timeline_posts()]
    ig.timeline_page_size, ig.timeline_recent_days = 20, math.inf
    assert [k for k in kinds(timeline(client)) if k in {p.id for p in ig.posts}] == [p.id for p in ig.timeline_posts()]
    ig.timeline_drop = 0.0
    assert ig.timeline_dropped() == [quiet]


def test_tidy_home_feed_is_posts_only_and_lossless() -> None:
    with InstagramDouble(tidy=True) as ig:
        client = new_client(ig)
        users = [ig.add_user(name) for name in ("alice", "bob", "carol", "dave")]
        now = int(time.time())
        posts = [ig.add_post(u, taken_at=now - 86400 * (n * 3 + 1)) for n, u in enumerate(users)]
        answer = timeline(client)
        assert kinds(answer) == [p.id for p in posts] and answer["more_available"] is False
        assert set(answer) == {"feed_items", "num_results", "more_available", "status"}


def test_home_feed_posts_and_ads_can_be_liked(ig: InstagramDouble, client: Client) -> None:
    alice = ig.add_user("alice")
    post = ig.add_post(alice)
    answer = timeline(client)
    ad = next(e["media_or_ad"] for e in answer["feed_items"] if "injected" in e.get("media_or_ad", {}))
    assert client.media_like(post.id) and client.media_like(ad["id"])
    assert ig.liked_media_ids == {post.id, ad["id"]}  # so a test sees it when code likes an ad
    assert ad["id"] in {p.id for p in ig.extra_posts}
    assert next(e for e in timeline(client)["feed_items"] if e.get("media_or_ad", {}).get("id") == post.id)[
        "media_or_ad"
    ]["has_liked"]


def test_instagrapi_get_timeline_feed_still_answered(ig: InstagramDouble, client: Client) -> None:
    """instagrapi's own request (the login flow sends it): one JSON string as the body, not form fields."""
    alice = ig.add_user("alice")
    post = ig.add_post(alice)
    answer = client.get_timeline_feed()
    assert post.id in kinds(answer) and ig.count("feed/timeline/") == 1
    assert ig.requests[-1].body.startswith(b"{") and ig.requests[-1].form["reason"] == "pull_to_refresh"
