"""The production transport end to end: instagrapi's curl_cffi HTTP/2 over TLS, through a proxy, to the double.

Every other CLI test sets ``IG_API_URL``, which switches instagrapi to plain ``requests`` over HTTP/1.1. These
tests set no ``IG_API_URL``: the CLI runs exactly as in production (``Client(private_transport="curl")``) with
``IG_PROXY`` pointing at :class:`tests.tls_front.TlsFront` and ``REQUESTS_CA_BUNDLE`` at its test CA; the
front answers ``CONNECT i.instagram.com:443`` with TLS 1.3 + HTTP/2 and forwards to the double. Each test
checks that the requests really arrived over HTTP/2 and TLS 1.3.

That check is what found that a settings file chose the transport: instagrapi saves ``private_transport`` in
its settings and ``set_settings()`` restores it, and the double's settings (like any file written by a
``requests``-transport client) say ``"requests"``, so production silently ran on HTTP/1.1 until
``Instagrapi.__init__`` set its own transport again after loading them.

The in-process cases at the end drive the real adapter (``Instagrapi`` without ``api_url``: instagrapi's curl
transport) through the same front, to pin what libcurl does when a connection dies under a like: it sends the
like again on a fresh connection when the dead one was reused, so likes get a connection of their own
(``story_liker.ig.transport``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from curl_cffi import CurlHttpVersion
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from story_liker.errors import NetworkError
from story_liker.ig.adapter import Instagrapi
from story_liker.ig.transport import FreshConnections, RedirectAdapter
from story_liker.ig.types import Connection, PostItem, StoryItem
from tests.conftest import login, run_cli, run_process
from tests.tls_front import MARKER, FrontConn, TlsFront

H2_TLS13 = "h2 TLSv1.3 i.instagram.com"  # what the front writes into MARKER for the private API host


@pytest.fixture
def front(ig: Any, tmp_path: Path) -> Iterator[TlsFront]:
    with TlsFront(ig.url, tmp_path) as tls_front:
        yield tls_front


@pytest.fixture
def curl_env(env: dict[str, str], front: TlsFront) -> dict[str, str]:
    """The CLI's environment as in production (no IG_API_URL), with the proxy and the CA of the front."""
    production = {name: value for name, value in env.items() if name != "IG_API_URL"}
    return production | {"IG_PROXY": front.proxy_url, "REQUESTS_CA_BUNDLE": str(front.ca_file)}


def stories_for(ig: Any, name: str, n: int, liked: int = 0) -> list[Any]:
    user = ig.add_user(name)
    return [ig.add_story(user, liked=i < liked) for i in range(n)]


def login_through_front(ig: Any, front: TlsFront, env: dict[str, str], tmp_path: Path) -> None:
    """Import the double's settings file (one keep-alive request, over the front too), then forget the requests."""
    login(ig, env, tmp_path)
    front.reset()


def assert_all_over_h2_tls(ig: Any, front: TlsFront) -> None:
    """Every request the double saw came through the front as HTTP/2 over TLS 1.3 to i.instagram.com."""
    assert ig.requests, "the double saw no request"
    markers = Counter(rec.headers.get(MARKER) for rec in ig.requests)
    assert markers == {H2_TLS13: len(ig.requests)}, markers
    assert front.protocols() == {("h2", "TLSv1.3")}
    assert {conn.connect for conn in front.connections} == {"i.instagram.com:443"}
    assert {conn.alpn for conn in front.connections} == {"h2"}
    assert front.refused == []


def test_run_stories_reads_over_one_http2_tls_connection_and_likes_over_their_own(
    ig: Any, front: TlsFront, curl_env: dict[str, str], tmp_path: Path
) -> None:
    stories = stories_for(ig, "alice", 3, liked=1) + stories_for(ig, "bob", 3, liked=1)
    ig.add_user("carol")  # followed, no stories: resolved through the following list
    curl_env["TARGET_ACCOUNTS"] = "alice,@Bob,carol"
    login_through_front(ig, front, curl_env, tmp_path)

    first = run_cli("run-stories", env=curl_env, cwd=tmp_path)
    assert first.code == 0, first.output
    assert ig.liked_story_ids == {s.id for s in stories}
    assert Counter(path.split("?")[0] for path in ig.paths()) == {
        "POST /api/v1/feed/reels_tray/": 1,
        "POST /api/v1/feed/reels_media/": 1,
        f"GET /api/v1/friendships/{ig.own_pk}/following/": 1,
        "POST /api/v2/media/seen/": 2,  # one per target with likes, before its likes
        "POST /api/v1/story_interactions/send_story_like": 4,
    }, ig.paths()
    summary = first.event("run_finished")
    assert (summary["liked"], summary["stories_seen"], summary["exit_code"]) == (4, 6, 0)
    assert summary["requests"] == ig.count() == 9
    assert_all_over_h2_tls(ig, front)
    assert len(front.connections) == 1 + 4  # reads and seen on one kept-alive connection, each like on its own

    ig.reset_requests()
    front.reset()
    second = run_cli("run-stories", env=curl_env, cwd=tmp_path)
    assert second.code == 0, second.output
    assert ig.paths() == ["POST /api/v1/feed/reels_tray/"]
    assert second.event("run_finished")["liked"] == 0
    assert_all_over_h2_tls(ig, front)


def test_an_untrusted_certificate_sends_nothing_and_exits_75(
    ig: Any, front: TlsFront, curl_env: dict[str, str], tmp_path: Path
) -> None:
    """Certificates are verified: without the test CA the TLS handshake fails and no request leaves."""
    stories_for(ig, "alice", 1)
    curl_env["TARGET_ACCOUNTS"] = "alice"
    login_through_front(ig, front, curl_env, tmp_path)
    del curl_env["REQUESTS_CA_BUNDLE"]
    result = run_cli("run-stories", env=curl_env, cwd=tmp_path)
    assert result.code == 75, result.output
    assert "Traceback" not in result.output and "unreachable" in result.error
    assert ig.count() == 0 and front.records == []
    assert len(front.connections) == 1  # a TLS connection that the client dropped before any HTTP/2 request


@pytest.mark.parametrize(("where", "before", "connections"), [("reels_tray", 0, 1), ("send_story_like", 3, 2)])
def test_http_timeout_applies_to_the_curl_transport(
    ig: Any, front: TlsFront, curl_env: dict[str, str], tmp_path: Path, where: str, before: int, connections: int
) -> None:
    """A silent server: HTTP_TIMEOUT_SECONDS ends the request (curl sends it once), the pass exits 75.

    ``before``: requests of the pass sent before the stalled one (tray, reels_media, following; the seen report
    follows the reel's likes), on the kept-alive connection; the stalled like went out on a connection of its own.
    """
    stories_for(ig, "alice", 2)
    ig.add_user("quiet")
    curl_env |= {"TARGET_ACCOUNTS": "alice,quiet", "HTTP_TIMEOUT_SECONDS": "1"}
    login_through_front(ig, front, curl_env, tmp_path)
    ig.delay(where, 30, times=1)  # far past the timeout; stopping the double wakes it
    result = run_process("run-stories", env=curl_env, cwd=tmp_path, timeout=90)
    assert result.code == 75, result.output
    assert "Traceback" not in result.output and "unreachable" in result.error
    assert ig.count(where) == 1  # not sent again, neither by curl nor by us
    assert ig.count() == before + 1, ig.paths()
    assert result.event("run_finished")["requests"] == ig.count()
    assert ig.liked_story_ids == set()
    assert_all_over_h2_tls(ig, front)
    assert len(front.connections) == connections


def test_connection_reset_on_the_first_request_exits_75_after_one_request(
    ig: Any, front: TlsFront, curl_env: dict[str, str], tmp_path: Path
) -> None:
    stories_for(ig, "alice", 2)
    curl_env["TARGET_ACCOUNTS"] = "alice"
    login_through_front(ig, front, curl_env, tmp_path)
    ig.fault_reset("reels_tray", times=None)
    result = run_cli("run-stories", env=curl_env, cwd=tmp_path)
    assert result.code == 75, result.output
    assert "Traceback" not in result.output and "unreachable" in result.error
    assert ig.paths() == ["POST /api/v1/feed/reels_tray/"]  # a fresh connection: libcurl does not resend
    assert result.event("run_finished")["requests"] == 1
    assert_all_over_h2_tls(ig, front)
    assert [conn.reset for conn in front.connections] == [True]


def test_a_like_whose_connection_dies_reaches_instagram_once_and_the_pass_exits_75(
    ig: Any, front: TlsFront, curl_env: dict[str, str], tmp_path: Path
) -> None:
    """libcurl re-sends a request whose REUSED connection died before any answer byte (``Curl_retry_request``,
    "Connection died, retrying a fresh connect"), POSTs included; when the copy was answered, nobody learnt that
    the like reached Instagram twice (this test used to pin exactly that: two like requests, exit 0). Likes now go
    out on a connection of their own, which libcurl never re-sends on: the like reaches the double once, the
    adapter raises NetworkError, and the pass stops as for any network error, that like unknown."""
    stories = stories_for(ig, "alice", 2)
    curl_env["TARGET_ACCOUNTS"] = "alice"
    login_through_front(ig, front, curl_env, tmp_path)
    ig.fault_reset("send_story_like", times=1)  # the first like only: a copy on a new connection would be answered
    dropped = run_cli("run-stories", env=curl_env, cwd=tmp_path)
    assert dropped.code == 75, dropped.output
    assert "Traceback" not in dropped.output and "unreachable" in dropped.error
    assert ig.count("send_story_like") == 1
    assert dropped.event("run_finished")["requests"] == ig.count()
    assert [conn.reset for conn in front.connections] == [False, True]  # the reads' connection, the like's own
    assert ig.liked_story_ids == set()
    assert_all_over_h2_tls(ig, front)

    ig.reset_requests()
    front.reset()
    again = run_cli("run-stories", env=curl_env, cwd=tmp_path)
    assert again.code == 0, again.output
    assert ig.liked_story_ids == {s.id for s in stories}
    assert ig.count("send_story_like") == 2
    assert again.event("run_finished")["requests"] == ig.count()
    assert_all_over_h2_tls(ig, front)


# --- in-process: the real adapter on the production transport, a connection dying under a write ----------------

LIKE_PATH = {"story": "send_story_like", "post": "/like/"}  # the like endpoints, as the double's request log has them
PROTOCOLS = ["h2", "http/1.1"]
DROPS = ["fault_reset", "fault_close"]  # the double reads the like completely, then RST / FIN, no answer


@pytest.fixture
def production(ig: Any, front: TlsFront, monkeypatch: pytest.MonkeyPatch) -> Instagrapi:
    """The real adapter as production builds it (no ``api_url``: instagrapi's curl transport, loaded settings that
    name ``"requests"``), through the front as its proxy, trusting the front's CA as curl does from the env."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(front.ca_file))
    return Instagrapi(Connection(username=ig.username, settings=ig.settings(), proxy=front.proxy_url, timeout=5))


def speak(a: Instagrapi, protocol: str) -> None:
    """instagrapi's curl transport offers only ``h2`` (ALPN) and rejects any other answer. For HTTP/1.1 its curl
    session's ``http_version`` and that check move to 1.1; every other option stays as instagrapi sets it."""
    if protocol == "http/1.1":
        adapter = a.client.private.get_adapter("https://i.instagram.com/")
        adapter.client.http_version = CurlHttpVersion.V1_1
        adapter._http2 = CurlHttpVersion.V1_1


class Item:
    """A story or a post of a new user, read once through ``a``: one request, so the connection is kept alive."""

    def __init__(self, ig: Any, a: Instagrapi, kind: str) -> None:
        self.a, self.kind = a, kind
        self.user = ig.add_user(f"user{len(ig.users)}")
        self.item: StoryItem | PostItem
        if kind == "story":
            ig.add_story(self.user)
            [self.item] = a.reels_media([self.user.pk])[self.user.pk]
        else:
            ig.add_post(self.user)
            [self.item], _ = a.user_posts(self.user.pk, 3)

    def read(self) -> None:
        if self.kind == "story":
            self.a.reels_media([self.user.pk])
        else:
            self.a.user_posts(self.user.pk, 3)

    def like(self) -> None:
        """The adapter's like."""
        if isinstance(self.item, StoryItem):
            self.a.like_story(self.item)
        else:
            self.a.like_post(self.item)

    def instagrapi_like(self) -> bool:
        """instagrapi's own call on the same client: what the adapter's like sent before it had its own connection."""
        if self.kind == "story":
            return bool(self.a.client.story_like(self.item.id, mark_seen=False))
        return bool(self.a.client.media_like(self.item.id))


def dropped_as(conn: FrontConn, drop: str) -> bool:
    return (conn.reset, conn.closed) == (drop == "fault_reset", drop == "fault_close")


def wait_ended(conns: list[FrontConn]) -> bool:
    """Whether these connections all end within a few seconds (the front notices a client's close on its own)."""
    deadline = time.monotonic() + 5
    while not all(conn.ended for conn in conns):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.parametrize("drop", DROPS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("kind", ["story", "post"])
def test_libcurl_sends_a_like_again_when_its_reused_connection_dies(
    ig: Any, front: TlsFront, production: Instagrapi, kind: str, protocol: str, drop: str
) -> None:
    """What the adapter guards against, pinned on instagrapi's own like call on the production client (the call the
    adapter made before it gave likes their own connection): the like goes out on the connection the read kept
    alive, the double reads it and drops the connection unanswered, and libcurl sends it again on a new one,
    which the double answers. One call, two likes at Instagram, one request counted, no error anywhere."""
    speak(production, protocol)
    item = Item(ig, production, kind)
    getattr(ig, drop)(LIKE_PATH[kind], times=1)
    assert item.instagrapi_like() is True
    assert ig.count(LIKE_PATH[kind]) == 2
    assert production.requests_sent == 2 == ig.count() - 1  # the read and one like: libcurl's copy is not counted
    reused, fresh = front.connections
    assert dropped_as(reused, drop) and dropped_as(fresh, "neither")
    assert {reused.alpn, fresh.alpn} == {protocol}
    assert item.item.id in ig.liked_story_ids | ig.liked_media_ids


@pytest.mark.parametrize("drop", DROPS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("kind", ["story", "post"])
def test_a_like_whose_connection_dies_is_sent_once_and_is_a_network_error(
    ig: Any, front: TlsFront, production: Instagrapi, kind: str, protocol: str, drop: str
) -> None:
    """The same drop through the adapter: the like had a connection of its own, libcurl does not send it again, and
    the adapter raises NetworkError (the pass stops, the like unknown). Reads keep their connection."""
    speak(production, protocol)
    item = Item(ig, production, kind)
    getattr(ig, drop)(LIKE_PATH[kind], times=1)
    with pytest.raises(NetworkError):
        item.like()
    assert ig.count(LIKE_PATH[kind]) == 1
    assert production.requests_sent == 2 == ig.count()
    kept, own = front.connections
    assert dropped_as(kept, "neither") and dropped_as(own, drop)
    assert {kept.alpn, own.alpn} == {protocol}
    assert item.item.id not in ig.liked_story_ids | ig.liked_media_ids

    item.read()
    item.like()
    assert item.item.id in ig.liked_story_ids | ig.liked_media_ids
    assert len(front.connections) == 3  # the read on the kept-alive one again, the like on a third
    assert production.requests_sent == 4 == ig.count()
    assert wait_ended(front.connections[1:]) and not kept.ended


def test_likes_get_their_own_connection_after_set_settings_mounts_a_new_transport(
    ig: Any, front: TlsFront, production: Instagrapi
) -> None:
    """``set_settings()`` (also ``init()``, which ``login_by_sessionid`` calls) mounts the saved ``private_transport``:
    a new adapter. The fresh-connection options are set on whatever adapter is mounted when the like goes out."""
    client = production.client
    before = client.private.get_adapter("https://i.instagram.com/")
    client.set_settings(ig.settings())  # says "requests": a urllib3 adapter is mounted
    client.set_retry_config(private_transport="curl")  # and a new curl adapter again
    after = client.private.get_adapter("https://i.instagram.com/")
    assert after is not before and type(after) is type(before)
    item = Item(ig, production, "story")
    ig.fault_close(LIKE_PATH["story"], times=1)
    with pytest.raises(NetworkError):
        item.like()
    assert ig.count(LIKE_PATH["story"]) == 1
    assert [conn.closed for conn in front.connections] == [False, True]


def test_mark_seen_keeps_the_kept_alive_connection_and_likes_close_theirs(
    ig: Any, front: TlsFront, production: Instagrapi
) -> None:
    """A target's seen goes out on the reads' connection (a copy of it would change nothing: same stories, same
    times; see ``Instagrapi.mark_seen``); each like opens its own connection and closes it after the answer."""
    user = ig.add_user("alice")
    stories = [ig.add_story(user) for _ in range(3)]
    items = production.reels_media([user.pk])[user.pk]
    production.mark_seen(items, [int(time.time())] * len(items))
    for item in items:
        production.like_story(item)
    production.reels_media([user.pk])
    assert ig.liked_story_ids == {story.id for story in stories}
    assert production.requests_sent == ig.count() == 1 + 1 + 3 + 1
    assert len(front.connections) == 1 + 3
    assert wait_ended(front.connections[1:]) and not front.connections[0].ended


class Elsewhere(HTTPAdapter):
    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        raise AssertionError("sent")


def retrying() -> RedirectAdapter:
    adapter = RedirectAdapter("http://127.0.0.1:9")  # nothing leaves the machine, even if it were sent
    adapter.max_retries = Retry(3)
    return adapter


@pytest.mark.parametrize("adapter", [Elsewhere(), retrying()], ids=["unknown", "urllib3-retries"])
def test_a_write_through_a_transport_that_may_send_it_again_is_refused(adapter: HTTPAdapter) -> None:
    """Trusted with a write: curl's adapter (fresh-connection options set) and urllib3's when its Retry allows none
    (instagrapi's default Retry re-sends POSTs). Anything else is refused before a byte is sent."""
    session = requests.Session()
    session.mount("https://", adapter)
    fresh = FreshConnections(session)
    with fresh(), pytest.raises(RuntimeError, match=type(adapter).__name__):
        session.post("https://i.instagram.com/api/v1/media/1_2/like/")
