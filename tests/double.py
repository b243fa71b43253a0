"""A local Instagram double: a threaded HTTP server speaking Instagram's private API.

The REAL instagrapi ``Client`` is pointed at it (nothing is mocked inside instagrapi), so the
tests exercise instagrapi's own request building, response parsing and exception mapping::

    with InstagramDouble() as ig:
        alice = ig.add_user("alice")
        story = ig.add_story(alice)
        client = new_client(ig)                      # logged in with ig.settings()
        client.story_like(story.id, mark_seen=False)
        assert ig.liked_story_ids == {story.id}
        assert ig.count("send_story_like") == 1

Real shapes by default, tidy ones on request
--------------------------------------------
The default answers follow the interfaces generated from captured answers
(dilame/instagram-private-api ``src/responses/*.ts`` and ``src/services/story.service.ts``;
marciopronin/instagram-private-test ``src/Response/{ReelsTrayFeedResponse,Model/StoryTray,Reel,Owner,
Injected,Broadcast,PostLive,PostLiveItem,TraySuggestions}.php``):

- tray (``feed/reels_tray/``): the own reel first; items on the first ``tray_items`` entries only, the
  rest metadata (``latest_reel_media``, ``seen``, ``expiring_at``, ``media_count``, ``media_ids`` as
  strings, ``ranked_position``, ``muted``, ``has_besties_media``, ``latest_besties_reel_media`` as a
  float); an injected ad reel (``ad_id``, ``injected``, a sponsor ``user``), a hashtag reel
  (``mas_reel``, ``id`` "tag:travel", an ``owner``, no ``user``) and a location reel; ``suggestions``
  with their own ``tray``; ``broadcasts`` and ``post_live.post_live_items``; at most ``page_size``
  entries; muted users never, ``tray_drop`` of the followed users with stories left out (lossy);
- ids: reel ``id`` and ``user.pk`` numbers for some users and strings for others, item pks 19 digits
  (beyond 2^53) as strings or numbers, following pks as strings;
- reels (``feed/reels_media/``, ``feed/user/{pk}/story/``): ``reels`` keyed by string pk plus the same
  reels as a ``reels_media`` list; minimal item users (``{pk, is_private}``); ``audience: "besties"``,
  ``story_feed_media``, ``segmented_video_group_id``; ``{"reel": null}`` when empty, 400 "Not authorized
  to view user" for a private account not followed; :meth:`InstagramDouble.expire_on_fetch` (listed in
  the tray, gone when fetched), :meth:`InstagramDouble.break_story` (the next answers carry it malformed);
- ``usernameinfo`` without ``friendship_status``; the following list with ``next_max_id``, ``big_list``,
  ``page_size``;
- posts (``feed/user/{pk}/``): pinned first whatever their age (``timeline_pinned_user_ids``), carousels,
  clips, collabs (``coauthor_producers``, in each coauthor's feed, authored by the poster);
- the home feed (``POST feed/timeline/``; dilame ``src/responses/timeline.feed.response.ts`` and
  ``src/feeds/timeline.feed.ts``, marciopronin ``src/Response/TimelineFeedResponse.php``,
  ``Model/FeedItem.php``, ``src/Request/Timeline.php``; the caught-up demarcator as masuvern/barinsta
  ``app/src/main/java/awais/instagrabber/webservices/FeedService.java`` and sbertix/Swiftagram read it):
  ``feed_items`` of ``{"media_or_ad": media}``, the shown followed users' posts (and collabs of theirs) newest
  first, ``timeline_page_size`` per page, ``next_max_id``/``more_available``; mixed in: a sponsored post on
  every page (``injected``, ``ad_id``, ``ad_action``, ``dr_ad_type``, ``ad_metadata``, ``link``...), and on the
  first a ``stories_netego`` card, a "Suggested for you" post of an account not followed (``explore``), a
  ``suggested_users`` card and a ``clips_netego`` card holding a reel (its inner shape a stand-in); where the
  posts of the last ``timeline_recent_days`` end, an ``end_of_feed_demarcator`` whose
  ``group_set.groups[id="past_posts"]`` carries the next older posts and the cursor to the rest, while the
  answer's own ``next_max_id`` is ``feed_recs_head_load`` (one page of suggested posts, then no more); lossy:
  ``timeline_drop`` of the followed users with posts and those ``in_timeline=False`` never appear
  (:meth:`InstagramDouble.timeline_dropped`, :meth:`InstagramDouble.timeline_posts`,
  :attr:`InstagramDouble.extra_posts`). It answers instagrapi's own ``get_timeline_feed`` (a JSON body) too;
- every seen request is kept in ``seen_requests`` (``reels`` as sent, its place in ``requests``).

``InstagramDouble(tidy=True)`` answers the way code would like it (no extras, no metadata-only entries,
one type per field, full users with a friendship status, ``usernameinfo`` with ``friendship_status``, a home
feed of posts only, lossless, without a demarcator); ``tray_items``, ``tray_extras``, ``tray_drop``,
``lookup_friendship``, ``timeline_page_size``, ``timeline_extras``, ``timeline_drop`` and
``timeline_recent_days`` switch single traits (also as attributes at run time).

Pointing a client at the double (what :func:`point_client` does)
------------------------------------------------------------------
``Client(private_transport="requests", with_challenge_flow=False)``, then, in this order:

1. ``client.set_settings(ig.settings())`` if the client should start logged in. ``set_settings``
   runs ``init()``, which calls ``set_retry_config(request_timeout=<saved value>, ...)``: the
   saved ``request_timeout`` (instagrapi's default is 1) comes back, so everything below must
   happen AFTER loading settings.
2. ``client.set_retry_config(request_timeout=0, session_retry_total=0,
   public_request_retries_count=1, public_request_retries_timeout=0)``:

   - ``request_timeout`` is ``time.sleep(request_timeout)`` before every private request that
     is not a login step (``mixins/private.py`` ``_send_private_request``), before every
     ``graphql_www`` request and before every public request. It is not an HTTP timeout.
   - ``session_retry_total`` feeds the urllib3 ``Retry`` of the ``requests`` adapter that
     instagrapi mounts on ``https://`` (statuses 429/500/502/503/504, backoff 2).
     ``set_retry_config`` re-mounts that adapter with the new values.
   - ``public_request_retries_count`` is the number of ATTEMPTS of ``public_request`` (0 means
     the loop never runs and it returns ``None``); ``public_request_retries_timeout`` is the
     sleep between them.
3. ``client.delay_range = None`` (the default; a range adds a random sleep per request).
4. ``redirect_to(client.private, url)``, ``redirect_to(client.public, url)`` and
   ``redirect_to(client.graphql, url)`` (``story_liker/ig/transport.py``). The public session
   matters even for private-API apps: ``password_encrypt`` fetches the login public key with
   ``client.public.get("https://i.instagram.com/api/v1/qe/sync/")``.
   The redirect adapter has ``max_retries=0`` and is mounted on the host prefixes, so it wins
   over instagrapi's retrying ``https://`` adapter: against the double no urllib3 retry can
   ever happen, whatever ``session_retry_total`` says. (So the double cannot catch an app
   that forgets to zero it; check ``client.session_retry_total`` directly for that.)
5. ``with_default_timeout(client.private, seconds)`` (and ``client.public``): instagrapi sets
   no HTTP timeout on private requests.

Then one instagrapi call = one HTTP request for: ``account_info``, ``user_info_v1``,
``user_info_by_username_v1``, ``user_stories_v1``, ``get_reels_tray_feed``,
``private_request("feed/reels_media/", ...)``, ``story_seen`` (with full ids),
``story_like(full_id, mark_seen=False)``, ``media_like(full_id)``,
``user_medias_paginated_v1``. ``story_like`` with the default ``mark_seen=True`` makes 3
(``media/{pk}/info/``, ``/api/v2/media/seen/``, the like).

Other instagrapi traps seen while building this (instagrapi 3.2.2):

- ``private_request`` itself retries once after ``ClientRequestTimeout`` (HTTP 408, after
  ``sleep(60)``) and after ``ClientIncompleteReadError`` (chunked-encoding error, after
  ``sleep(2)``); the double never produces either unless you ask ``fail(status=408)`` or
  ``short_read(...)``. (``story_liker.ig.adapter`` replaces ``private_request`` with a one-shot version.)
- ``user_medias_paginated_v1``/``user_medias_v1`` swallow every exception that is not a
  ``PrivateError`` (429 ``ClientThrottledError``, ``ClientConnectionError``,
  ``ClientJSONDecodeError``...) and return an empty list: use ``private_request`` for feeds.
- Public requests sleep 1 s if the previous public response is less than 1 s old.
- A 400 whose message contains "The username you entered" raises ``ProxyAddressIsBlocked``
  (that is what the double answers to an unknown username at ``accounts/login/``).

Login flows the double answers (see ``_login_*`` handlers and the test file):

- ``login_by_sessionid(ig.sessionid)``: ``GET users/{pk}/info/``.
- ``login(username, password)`` (CAA/Bloks): ``POST b.i /graphql_www`` (USDID registration,
  only for a device that never registered), ``bloks/async_action/...process_client_data_and_redirect/``
  (returns the ``aac``), ``attestation/create_android_keystore/``,
  ``bloks/async_action/com.bloks.www.caa.login.oauth.token.fetch.async/``, public
  ``GET qe/sync/`` (password key), ``bloks/async_action/...send_login_request/`` (returns the
  embedded login response with ``IG-Set-Authorization``), then ``login_flow()``:
  ``feed/reels_tray/`` and ``feed/timeline/``.
- TOTP (``totp_seed`` set): ``send_login_request`` answers a Bloks
  ``two_step_verification_context``; without ``verification_code`` instagrapi raises
  ``TwoFactorRequired``; with it: ``bloks/apps/...two_step_verification.entrypoint/``,
  ``.../method_picker/``, ``.../method_picker.navigation.async/``,
  ``.../verify_code.async/`` (login payload). A wrong code gets no login payload, which
  instagrapi turns into ``TwoFactorRequired``.
- Wrong password / unknown user: ``send_login_request`` answers a ``CAA_LOGIN_FALLBACK:``
  marker, instagrapi continues with ``login_legacy``: ``launcher/sync/``, ``qe/sync/``,
  ``accounts/login/`` -> 400 ``bad_password`` (``BadPassword``; instagrapi then re-runs the
  whole CAA flow once more before re-raising) or ``invalid_user``.
- ``login_legacy`` directly: ``accounts/login/`` (+ ``accounts/two_factor_login/`` for TOTP).
- Every successful login mints a NEW sessionid; the previous one stops working.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import itertools
import json
import math
import re
import secrets
import socket
import string
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from instagrapi import Client

JSON = dict[str, Any]

STORY_TTL = 24 * 3600
CDN = "https://scontent-iad3-1.cdninstagram.com/v/t51.2885-15"
PROFILE_CDN = "https://scontent-iad3-1.cdninstagram.com/v/t51.2885-19"
SHORTCODE_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"

# Ready-made error bodies for ``fail(..., body=...)``.
PLEASE_WAIT_BODY: JSON = {"message": "Please wait a few minutes before you try again.", "status": "fail"}
FEEDBACK_REQUIRED_BODY: JSON = {
    "message": "feedback_required",
    "spam": True,
    "feedback_title": "Try Again Later",
    "feedback_message": (
        "We restrict certain activity to protect our community. Tell us if you think we made a mistake."
    ),
    "feedback_url": "repute/report_problem/scraping/",
    "feedback_appeal_label": "Tell us",
    "feedback_ignore_label": "OK",
    "feedback_action": "report_problem",
    "status": "fail",
}
LOGIN_REQUIRED_BODY: JSON = {
    "message": "login_required",
    "error_title": "You've Been Logged Out",
    "error_body": "Please log back in.",
    "logout_reason": 2,
    "status": "fail",
}
NOT_AUTHORIZED_BODY: JSON = {"message": "Not authorized to view user", "status": "fail"}
USER_NOT_FOUND_BODY: JSON = {"message": "User not found", "status": "fail"}
MEDIA_UNAVAILABLE_BODY: JSON = {"message": "Media not found or unavailable", "status": "fail"}

_DEFAULT_ERROR_BODIES: dict[int, JSON] = {
    400: {"message": "Sorry, there was a problem with your request.", "status": "fail"},
    401: {"message": "Unauthorized", "status": "fail"},
    403: {"message": "Forbidden", "status": "fail"},
    404: {"message": "Page not found", "status": "fail"},
    408: {"message": "Request Timeout", "status": "fail"},
    429: {"message": "Too many requests", "status": "fail"},
    500: {"message": "Oops, an error occurred.", "status": "fail"},
    502: {"message": "Bad Gateway", "status": "fail"},
    503: {"message": "Service Unavailable", "status": "fail"},
}

_rsa_lock = threading.Lock()
_rsa_key: Any = None  # Cryptodome RSA key, generated once per process on the first password login


def _password_key() -> Any:
    global _rsa_key
    with _rsa_lock:
        if _rsa_key is None:
            from Cryptodome.PublicKey import RSA

            _rsa_key = RSA.generate(1024)  # noqa: S505  # test-only key; Instagram uses 2048, 1024 is faster
        return _rsa_key


def shortcode(pk: int) -> str:
    """Instagram's media shortcode (``code``) for a media pk."""
    chars = []
    while pk:
        pk, rem = divmod(pk, 64)
        chars.append(SHORTCODE_ALPHABET[rem])
    return "".join(reversed(chars)) or "A"


def totp_code(seed: str, at: float | None = None) -> str:
    """RFC 6238 code (SHA1, 6 digits, 30 s): the same as instagrapi's ``totp_generate_code(seed)``."""
    counter = int((time.time() if at is None else at) // 30)
    padded = seed + "=" * (-len(seed) % 8)
    digest = hmac.new(base64.b32decode(padded, casefold=True), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 1_000_000).zfill(6)


def _rand(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _ts(value: int | float | datetime | None, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(value)


# --------------------------------------------------------------------------------------- model


@dataclass(eq=False)
class DUser:
    pk: int
    username: str
    private: bool = False
    followed: bool = True
    full_name: str = ""
    muted: bool = False  # followed, but muted: never in the tray (its stories can still be fetched)
    in_tray: bool = True  # False: the tray leaves this user out (it is lossy), whatever else is true
    in_timeline: bool = True  # False: the home feed never shows this user's posts (it is ranked and lossy)
    gone_on_fetch: bool = False  # listed in the tray, but its reel is gone when fetched (expired in between)
    live: bool = False  # broadcasting now: in the tray's ``broadcasts``


@dataclass(eq=False)
class DStory:
    pk: int
    user: DUser
    taken_at: int
    owner: InstagramDouble = field(repr=False)
    media_type: int = 1
    audience: str | None = None  # "besties": close friends only
    reshared: str | None = None  # the media id of the feed post this story reshares (``story_feed_media``)
    segment_group: str | None = None  # one part of a long video split into several items
    broken: int = 0  # the next N answers carrying this item carry it malformed (no ``taken_at``)

    @property
    def id(self) -> str:
        return f"{self.pk}_{self.user.pk}"

    @property
    def expiring_at(self) -> int:
        return self.taken_at + STORY_TTL

    @property
    def live(self) -> bool:
        return self.expiring_at > time.time()

    @property
    def liked(self) -> bool:
        return self.id in self.owner.liked_story_ids

    @property
    def seen(self) -> bool:
        return self.id in self.owner.seen_story_ids


@dataclass(eq=False)
class DPost:
    pk: int
    user: DUser
    taken_at: int
    owner: InstagramDouble = field(repr=False)
    media_type: int = 1
    product_type: str = "feed"
    like_count: int = 0
    pinned: bool = False  # pinned by its author: first in the author's feed, whatever its age
    coauthors: tuple[DUser, ...] = ()  # a collab post: also in each coauthor's feed, authored by ``user``

    @property
    def id(self) -> str:
        return f"{self.pk}_{self.user.pk}"

    @property
    def code(self) -> str:
        return shortcode(self.pk)

    @property
    def liked(self) -> bool:
        return self.id in self.owner.liked_media_ids


@dataclass(frozen=True)
class SeenRequest:
    """One ``/api/v2/media/seen/`` request: ``reels`` as sent (``{"<pk>_<owner>_<source>": ["<taken>_<seen>"]}``,
    in the order sent), where it is in ``InstagramDouble.requests``, and the double's clock when it came."""

    index: int
    reels: dict[str, list[str]]
    received_at: float

    def values(self) -> list[tuple[str, int, int]]:
        """``(media id "<pk>_<owner>", taken_at, seen_at)`` per story, in the order sent; unparsable ones left out."""
        found = []
        for key, stamps in self.reels.items():
            parts = str(key).split("_")
            for stamp in stamps if isinstance(stamps, list) else [stamps]:
                taken, _, seen = str(stamp).partition("_")
                if len(parts) >= 2 and taken.isdigit() and seen.isdigit():
                    found.append((f"{parts[0]}_{parts[1]}", int(taken), int(seen)))
        return found


@dataclass(frozen=True)
class Rec:
    """One request as the double received it.

    ``form`` is the decoded ``signed_body`` JSON when present, else the JSON body (instagrapi's own
    ``get_timeline_feed`` sends raw JSON), else the url-encoded fields (single values). ``headers`` has lower-cased
    names. ``target`` is the raw request target (path and query), ``body`` the raw body.
    """

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, Any]
    host: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    target: str = ""
    body: bytes = field(default=b"", repr=False)


@dataclass
class _Rule:
    pattern: str
    kind: str  # "fail" | "raw" | "reset" | "close" | "delay" | "short"
    times: int | None  # None: forever
    after: int = 0
    status: int = 200
    body: bytes = b""
    seconds: float = 0.0
    release: threading.Event | None = None  # "delay" until this is set (at most ``seconds``)


@dataclass
class _Reply:
    status: int
    body: JSON | None = None
    raw: bytes | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json; charset=utf-8"


_Route = tuple[str, "re.Pattern[str]", Callable[[Rec, "re.Match[str]"], _Reply], bool]


# -------------------------------------------------------------------------------------- server


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins every handler thread

    def __init__(self, double: InstagramDouble) -> None:
        self.double = double
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like Instagram; every reply has Content-Length
    timeout = 30  # backstop for idle keep-alive connections
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body are separate writes: without this, Nagle + delayed ACK add ~40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.double._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.double._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        self.server.double._handle(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch


# -------------------------------------------------------------------------------------- double


class InstagramDouble:
    """Instagram private API double. Use as a context manager; see the module docstring."""

    def __init__(
        self,
        *,
        username: str = "liker",
        password: str = "correct-horse",  # noqa: S107  # the double's fixture password
        own_pk: int = 57_283_910_446,
        totp_seed: str | None = None,
        rotate_cookies: bool = True,
        tidy: bool = False,
        tray_items: int | None = None,
        tray_extras: bool | None = None,
        tray_drop: float = 0.0,
        lookup_friendship: bool | None = None,
        timeline_page_size: int = 8,
        timeline_extras: bool | None = None,
        timeline_drop: float | None = None,
        timeline_recent_days: float | None = None,
    ) -> None:
        """``tidy=True``: the answers the code would like (no extras, consistent types, full users everywhere,
        a friendship status in ``usernameinfo``). By default the answers follow REAL_SHAPES.md; each trait
        can also be set on its own:

        - ``tray_items``: how many leading tray entries carry ``items`` (4; tidy 0), the rest metadata only;
        - ``tray_extras``: the tray also holds the own reel, a hashtag and a location reel (``mas_reel``), an
          injected ad reel, suggested reels (``suggestions``), a live broadcast and a post-live item (True);
        - ``tray_drop``: the share of the followed users with stories that the tray leaves out (0.0; the
          same users every time, see :meth:`tray_dropped`);
        - ``lookup_friendship``: ``usernameinfo`` carries ``friendship_status`` (False; tidy True);
        - ``timeline_page_size``: the followed users' posts per home-feed page (8);
        - ``timeline_extras``: the home feed also holds ads, a suggested-users card, story and reel cards and
          suggested posts of accounts not followed (True; tidy False);
        - ``timeline_drop``: the share of the followed users with posts that the home feed leaves out (0.25; tidy
          0.0; the same users every time, see :meth:`timeline_dropped`);
        - ``timeline_recent_days``: posts older than this come after the "You're all caught up" demarcator, inside
          its ``past_posts`` group and the pages after it, while the answer's own cursor leads to suggested posts
          (2.0; tidy ``math.inf``: no demarcator).
        """
        self.username = username
        self.password = password
        self.own_pk = own_pk
        self.totp_seed = totp_seed
        self.rotate_cookies = rotate_cookies
        self.tidy = tidy
        self.tray_items = tray_items if tray_items is not None else (0 if tidy else 4)
        self.tray_extras = tray_extras if tray_extras is not None else not tidy
        self.tray_drop = tray_drop
        self.lookup_friendship = lookup_friendship if lookup_friendship is not None else tidy
        self.timeline_page_size = timeline_page_size
        self.timeline_extras = timeline_extras if timeline_extras is not None else not tidy
        self.timeline_drop = timeline_drop if timeline_drop is not None else (0.0 if tidy else 0.25)
        if timeline_recent_days is None:
            timeline_recent_days = math.inf if tidy else 2.0
        self.timeline_recent_days = timeline_recent_days
        self.url = ""
        self.requests: list[Rec] = []
        self.seen_requests: list[SeenRequest] = []
        self.liked_story_ids: set[str] = set()
        self.liked_media_ids: set[str] = set()
        self.seen_story_ids: set[str] = set()
        self.users: list[DUser] = []
        self.stories: list[DStory] = []
        self.posts: list[DPost] = []
        self.me = DUser(own_pk, username, private=False, followed=False, full_name="Story Liker")
        self.mid = _rand(4) + "AABAAF" + _rand(18, string.ascii_letters + string.digits + "-_")
        self.www_claim = "hmac.AR" + _rand(46, string.ascii_letters + string.digits + "-_")
        self.csrftoken = _rand(32)
        self.rur = self._new_rur()
        self.sessionid = ""
        self.session_expired = False
        self.challenge_required = False
        self._lock = threading.RLock()
        self._rules: list[_Rule] = []
        self._user_pks = itertools.count(31_400_000_017, 1_000_003)
        self._media_pks = itertools.count(3_512_004_000_000_000_017, 1_000_000_007)
        self._pending_2fa: set[str] = set()
        self._key_id = 41
        self._device: JSON | None = None
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._routes: list[_Route] = self._build_routes()
        self._new_session()
        self._ambient = self._make_ambient()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> InstagramDouble:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> InstagramDouble:
        self._stop.clear()
        self._server = _Server(self)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="instagram-double"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut keep-alive connections and join every server thread."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stop.set()  # wakes handlers sleeping in delay()
        with self._lock:
            for rule in self._rules:
                if rule.release is not None:
                    rule.release.set()  # and those held by hold()
        server.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    # ------------------------------------------------------------------ state API

    def add_user(
        self,
        username: str,
        *,
        pk: int | None = None,
        private: bool = False,
        followed: bool = True,
        muted: bool = False,
    ) -> DUser:
        with self._lock:
            user = DUser(
                pk=pk if pk is not None else next(self._user_pks),
                username=username,
                private=private,
                followed=followed,
                full_name=username.replace("_", " ").replace(".", " ").title(),
                muted=muted,
            )
            self.users.append(user)
            return user

    def add_story(
        self,
        user: DUser,
        *,
        taken_at: int | float | datetime | None = None,
        liked: bool = False,
        seen: bool = False,
        media_type: int = 1,
        close_friends: bool = False,
        reshare: bool = False,
    ) -> DStory:
        """A story; ``taken_at`` defaults to one minute ago (stories live 24 h). ``close_friends``: for the
        owner's close friends (``audience: "besties"``); ``reshare``: a feed post reshared (``story_feed_media``)."""
        with self._lock:
            story = DStory(
                pk=next(self._media_pks),
                user=user,
                taken_at=_ts(taken_at, int(time.time()) - 60),
                owner=self,
                media_type=media_type,
                audience="besties" if close_friends else None,
            )
            if reshare:
                story.reshared = f"{next(self._media_pks)}_{next(self._user_pks)}"
            self.stories.append(story)
            if liked:
                self.liked_story_ids.add(story.id)
            if seen:
                self.seen_story_ids.add(story.id)
            return story

    def add_segmented_video(
        self, user: DUser, parts: int = 3, *, taken_at: int | float | datetime | None = None, same_second: bool = True
    ) -> list[DStory]:
        """A long video as the app posts it: ``parts`` video items sharing a ``segmented_video_group_id``, each
        with its own pk, all taken in the same second (or one second apart)."""
        start = _ts(taken_at, int(time.time()) - 60)
        group = str(uuid.UUID(int=secrets.randbits(128)))
        stories = []
        for n in range(parts):
            story = self.add_story(user, taken_at=start if same_second else start + n, media_type=2)
            story.segment_group = group
            stories.append(story)
        return stories

    def add_post(
        self,
        user: DUser,
        *,
        taken_at: int | float | datetime | None = None,
        media_type: int = 1,
        product_type: str = "feed",
        liked: bool = False,
        pinned: bool = False,
        coauthors: tuple[DUser, ...] | list[DUser] = (),
    ) -> DPost:
        """A post: media_type 1 photo, 2 video (product_type "clips" = reel), 8 album. ``pinned``: first in
        ``user``'s feed whatever its age; ``coauthors``: a collab post, in their feeds too, authored by ``user``."""
        with self._lock:
            post = DPost(
                pk=next(self._media_pks),
                user=user,
                taken_at=_ts(taken_at, int(time.time()) - 3600),
                owner=self,
                media_type=media_type,
                product_type=product_type,
                like_count=7 + len(self.posts) % 5,
                pinned=pinned,
                coauthors=tuple(coauthors),
            )
            self.posts.append(post)
            if liked:
                self.liked_media_ids.add(post.id)
                post.like_count += 1
            return post

    def break_story(self, story: DStory, times: int = 1) -> None:
        """The next ``times`` answers carrying this story's item (reels_media, user story, media info) carry
        it malformed: without ``taken_at``."""
        with self._lock:
            story.broken = times

    def expire_on_fetch(self, user: DUser, gone: bool = True) -> None:
        """The tray still lists ``user``'s reel, but ``reels_media`` leaves it out and the user's story feed
        answers ``{"reel": null}``: the stories expired or were deleted between the tray and the fetch."""
        with self._lock:
            user.gone_on_fetch = gone

    def tray_dropped(self) -> list[DUser]:
        """The followed users with stories that the tray leaves out right now (``tray_drop``, ``in_tray``, muted)."""
        with self._lock:
            groups = self._live_groups()
            return [u for u in self._tray_candidates(groups) if u not in self._tray_users(groups)]

    def timeline_dropped(self) -> list[DUser]:
        """The followed users with posts whose posts the home feed leaves out right now (``timeline_drop``,
        ``in_timeline``). A collab post still shows when one of its other authors is shown."""
        with self._lock:
            shown = self._timeline_users()
            return [u for u in self._timeline_candidates() if u not in shown]

    def timeline_posts(self) -> list[DPost]:
        """The followed users' posts the home feed shows, in its order (newest first), whatever the page size: what
        a walk of all its pages yields besides the extras (ads, cards, suggested posts: :attr:`extra_posts`)."""
        with self._lock:
            return self._timeline_order()

    @property
    def extra_posts(self) -> list[DPost]:
        """The home feed's posts that are no followed user's: the ads, the suggested posts (in the feed and after the
        end-of-feed demarcator), the reel in the reels card. Never to be liked; the double likes them like any other
        post, so a test sees it if the code ever does."""
        with self._lock:
            return list(self._ambient.posts)

    @property
    def extra_stories(self) -> list[DStory]:
        """The stories of the tray's other entries (the own reel, the hashtag reel, the ad, the suggested reel):
        no target's, never to be liked."""
        with self._lock:
            return list(self._ambient.stories)

    def seen_values(self) -> list[tuple[str, int, int]]:
        """Every ``(media id, taken_at, seen_at)`` sent in seen requests, in order."""
        with self._lock:
            return [value for request in self.seen_requests for value in request.values()]

    def like_index(self, media_id: str) -> int | None:
        """Where the (first) like request of this story or post is in ``requests`` (None: never sent)."""
        with self._lock:
            for index, rec in enumerate(self.requests):
                if "story_like" in rec.path and str(rec.form.get("media_id", "")) == media_id:
                    return index
                if rec.path.endswith("/like/") and f"/media/{media_id}/" in rec.path:
                    return index
            return None

    def settings(self) -> JSON:
        """Complete instagrapi settings (``Client.get_settings()`` shape) logged in to this double.

        Built from a real ``Client().get_settings()`` (device, uuids, user agent stay the same
        across calls) plus ``authorization_data``/cookies for the current session. If the
        session was expired, a new one is minted first. Retry/pacing fields keep instagrapi's
        defaults (``request_timeout`` 1, ``session_retry_total`` 3) like a real saved session:
        override them after loading.
        """
        from instagrapi import Client

        with self._lock:
            if self.session_expired or not self.sessionid:
                self._new_session()
            sessionid = self.sessionid
            if self._device is None:
                self._device = Client(private_transport="requests", with_challenge_flow=False).get_settings()
            result = copy.deepcopy(self._device)
        result.update(
            {
                "authorization_data": {
                    "ds_user_id": str(self.own_pk),
                    "sessionid": sessionid,
                    "should_use_header_over_cookies": True,
                },
                "cookies": {
                    "csrftoken": self.csrftoken,
                    "ds_user_id": str(self.own_pk),
                    "mid": self.mid,
                    "rur": self.rur.replace(",", "\\054").join('""'),
                    "sessionid": sessionid,
                },
                "mid": self.mid,
                "ig_u_rur": self.rur,
                "ig_www_claim": self.www_claim,
                "last_login": time.time(),
            }
        )
        return result

    # ------------------------------------------------------------------ requests log

    def count(self, path_contains: str = "") -> int:
        with self._lock:
            return sum(1 for rec in self.requests if path_contains in rec.target)

    def paths(self) -> list[str]:
        """``"METHOD target"`` of every request so far (handy in assertion messages)."""
        with self._lock:
            return [f"{rec.method} {rec.target}" for rec in self.requests]

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()
            self.seen_requests.clear()

    # ------------------------------------------------------------------ faults

    def fail(
        self,
        path_contains: str,
        *,
        status: int = 429,
        body: JSON | None = None,
        times: int | None = 1,
        after: int = 0,
    ) -> None:
        """Answer the next ``times`` matching requests (after letting ``after`` through) with
        ``status`` and ``body`` (default: an Instagram-like error JSON). ``times=None``: forever."""
        payload = body if body is not None else _DEFAULT_ERROR_BODIES.get(status, self._status_body(status))
        self._add_rule(_Rule(path_contains, "fail", times, after, status, json.dumps(payload).encode()))

    def fault_reset(self, path_contains: str, *, times: int | None = 1, after: int = 0) -> None:
        """Reset the connection (TCP RST) of matching requests, read completely, without sending any response."""
        self._add_rule(_Rule(path_contains, "reset", times, after))

    def fault_close(self, path_contains: str, *, times: int | None = 1, after: int = 0) -> None:
        """Close the connection cleanly (TCP FIN) after reading matching requests completely, without any response:
        a server that went away between the request and its answer. Like ``fault_reset``, nothing is done."""
        self._add_rule(_Rule(path_contains, "close", times, after))

    def short_read(self, path_contains: str, *, times: int | None = 1, after: int = 0) -> None:
        """Handle matching requests as usual (a like is done), but cut the answer's body in half and close the
        connection: the client sees fewer bytes than ``Content-Length`` (``requests``: ChunkedEncodingError)."""
        self._add_rule(_Rule(path_contains, "short", times, after))

    def delay(self, path_contains: str, seconds: float, *, times: int | None = None) -> None:
        """Sleep ``seconds`` before answering matching requests (forever unless ``times``)."""
        self._add_rule(_Rule(path_contains, "delay", times, seconds=seconds))

    def hold(self, path_contains: str, *, times: int | None = 1, timeout: float = 120) -> threading.Event:
        """Hold matching requests unanswered until the returned event is set (at most ``timeout`` seconds, then
        the connection is closed unanswered): a stall that ends when the test says so, not after a guess."""
        release = threading.Event()
        self._add_rule(_Rule(path_contains, "delay", times, seconds=timeout, release=release))
        return release

    def raw(self, path_contains: str, text: str, *, status: int = 200, times: int | None = 1) -> None:
        """Answer matching requests with this raw body (``application/json`` content type)."""
        self._add_rule(_Rule(path_contains, "raw", times, 0, status, text.encode()))

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    def expire_session(self) -> None:
        """The current session stops working: authed requests get 403 ``login_required``."""
        with self._lock:
            self.session_expired = True

    def require_challenge(self, required: bool = True) -> None:
        """Login and authed requests get 400 ``challenge_required`` (``False`` lifts it)."""
        with self._lock:
            self.challenge_required = required

    @staticmethod
    def _status_body(status: int) -> JSON:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        return {"message": phrase, "status": "fail"}

    def _add_rule(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def _take_rule(self, target: str, kinds: tuple[str, ...]) -> _Rule | None:
        chosen = None
        for rule in self._rules:
            if rule.kind not in kinds or rule.pattern not in target or rule.times == 0:
                continue
            if rule.after > 0:
                rule.after -= 1
                continue
            if chosen is None:
                chosen = rule
                if rule.times is not None:
                    rule.times -= 1
        return chosen

    # ------------------------------------------------------------------ HTTP plumbing

    def _handle(self, handler: _Handler) -> None:
        target = handler.path
        parts = urlsplit(target)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in handler.headers.items()}
        rec = Rec(
            method=handler.command,
            path=parts.path,
            query={k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
            form=_decode_body(body),
            host=headers.get("host", ""),
            headers=headers,
            target=target,
            body=body,
        )
        with self._lock:
            self.requests.append(rec)
            delay = self._take_rule(target, ("delay",))
            action = self._take_rule(target, ("fail", "raw", "reset", "close", "short"))
        if delay is not None and delay.release is not None:
            released = delay.release.wait(delay.seconds)
            if self._stop.is_set() or not released:
                handler.close_connection = True
                return
        elif delay is not None and self._stop.wait(delay.seconds):
            handler.close_connection = True
            return
        if action is not None and action.kind == "reset":
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # Closed here, not by the server's shutdown_request(), whose shutdown(SHUT_WR) would send a FIN first;
            # the descriptor goes when finish() closes the handler's files: an RST and nothing before it.
            handler.connection.close()
            handler.close_connection = True
            return
        if action is not None and action.kind == "close":
            handler.close_connection = True
            return
        if action is not None and action.kind != "short":
            reply = _Reply(action.status, raw=action.body)
        else:
            with self._lock:
                reply = self._route(rec)
        self._send(handler, reply, short=action is not None and action.kind == "short")

    def _send(self, handler: _Handler, reply: _Reply, *, short: bool = False) -> None:
        data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers:
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data[: len(data) // 2] if short else data)
            if short:
                handler.wfile.flush()
                handler.connection.shutdown(socket.SHUT_WR)
                handler.close_connection = True
        except OSError:  # the client gave up (timeout) or we are shutting down
            handler.close_connection = True

    def _route(self, rec: Rec) -> _Reply:
        if rec.host == "www.instagram.com":
            return self._www(rec)
        for method, pattern, func, needs_auth in self._routes:
            match = pattern.match(rec.path)
            if match is None or method != rec.method:
                continue
            if needs_auth:
                if not self._authenticated(rec):
                    return _Reply(403, dict(LOGIN_REQUIRED_BODY))
                if self.challenge_required:
                    return _Reply(400, self._challenge_body())
            reply = func(rec, match)
            if needs_auth and reply.status == 200 and self.rotate_cookies:
                self.rur = self._new_rur()
                reply.headers.append(("ig-set-ig-u-rur", self.rur))
                reply.headers.append(("Set-Cookie", self._cookie("rur", self._quoted_rur())))
            return reply
        return _Reply(
            404,
            {"message": f"Page not found (instagram double): {rec.method} {rec.path}", "status": "fail"},
        )

    def _build_routes(self) -> list[_Route]:
        v1 = "/api/v1/"
        raw_routes: list[tuple[str, str, Callable[[Rec, re.Match[str]], _Reply], bool]] = [
            # login machinery (no session needed)
            ("POST", r"/graphql_www$", self._graphql_www, False),
            ("GET", v1 + r"qe/sync/$", self._qe_sync, False),
            ("POST", v1 + r"qe/sync/$", self._qe_sync, False),
            ("POST", v1 + r"launcher/sync/$", self._launcher_sync, False),
            ("POST", v1 + r"attestation/create_android_keystore/$", self._attestation, False),
            ("POST", v1 + r"bloks/(async_action|apps)/([^/]+)/$", self._bloks, False),
            ("POST", v1 + r"accounts/login/$", self._accounts_login, False),
            ("POST", v1 + r"accounts/two_factor_login/$", self._two_factor_login, False),
            # authenticated API
            ("GET", v1 + r"accounts/current_user/$", self._current_user, True),
            ("POST", v1 + r"accounts/logout/$", self._logout, True),
            ("POST", v1 + r"feed/reels_tray/$", self._reels_tray, True),
            ("POST", v1 + r"feed/timeline/$", self._timeline, True),
            ("POST", v1 + r"feed/reels_media/$", self._reels_media, True),
            ("GET", v1 + r"feed/user/(\d+)/story/$", self._user_story, True),
            ("GET", v1 + r"feed/user/(\d+)/$", self._user_feed, True),
            ("GET", v1 + r"users/(\d+)/info/$", self._user_info, True),
            ("POST", v1 + r"users/(\d+)/info_stream/$", self._not_supported, True),
            ("GET", v1 + r"users/([^/]+)/usernameinfo/$", self._usernameinfo, True),
            ("GET", v1 + r"friendships/(\d+)/following/$", self._following, True),
            ("POST", r"/api/v2/media/seen/$", self._media_seen, True),
            ("POST", v1 + r"story_interactions/(send|unsend)_story_like/?$", self._story_like, True),
            ("POST", v1 + r"media/(\d+)(?:_\d+)?/(like|unlike)/$", self._media_like, True),
            ("GET", v1 + r"media/(\d+)(?:_\d+)?/info/$", self._media_info, True),
        ]
        return [(method, re.compile("^" + path), func, auth) for method, path, func, auth in raw_routes]

    def _www(self, rec: Rec) -> _Reply:
        """The public web host: only the logged-out behaviour (redirect to the login page)."""
        if rec.path.startswith("/accounts/login/"):
            html = b"<!DOCTYPE html><html><head><title>Login \xe2\x80\xa2 Instagram</title></head></html>"
            return _Reply(200, raw=html, content_type="text/html; charset=utf-8")
        if not self._authenticated(rec):
            location = f"https://www.instagram.com/accounts/login/?next={rec.path}"
            return _Reply(302, raw=b"", headers=[("Location", location)], content_type="text/html; charset=utf-8")
        return _Reply(404, {"message": f"Page not found (instagram double): {rec.method} {rec.path}", "status": "fail"})

    # ------------------------------------------------------------------ sessions & auth

    def _new_session(self) -> str:
        self.sessionid = (
            f"{self.own_pk}%3A{_rand(14)}%3A{secrets.randbelow(30) + 1}%3A"
            f"AY{_rand(40, string.ascii_letters + string.digits + '-_')}"
        )
        self.session_expired = False
        return self.sessionid

    def _new_rur(self) -> str:
        return f"RVA,{self.own_pk},{int(time.time()) + 31_536_000}:01f7{secrets.token_hex(34)}"

    def _quoted_rur(self) -> str:
        return '"' + self.rur.replace(",", "\\054") + '"'

    def _bearer(self, sessionid: str) -> str:
        payload = json.dumps({"ds_user_id": str(self.own_pk), "sessionid": sessionid}, separators=(",", ":"))
        return "Bearer IGT:2:" + base64.b64encode(payload.encode()).decode()

    @staticmethod
    def _cookie(name: str, value: str, max_age: int = 31_536_000) -> str:
        return f"{name}={value}; Domain=.instagram.com; Max-Age={max_age}; Path=/; Secure; HttpOnly"

    def _authenticated(self, rec: Rec) -> bool:
        """Bearer token if the request has one, else the ``sessionid`` cookie."""
        sessionid = None
        authorization = rec.headers.get("authorization", "")
        if authorization:
            try:
                token = authorization.rsplit(":", 1)[-1]
                sessionid = json.loads(base64.b64decode(token)).get("sessionid")
            except (ValueError, AttributeError):
                return False
        else:
            for part in rec.headers.get("cookie", "").split(";"):
                name, _, value = part.strip().partition("=")
                if name == "sessionid":
                    sessionid = value
        return bool(sessionid) and sessionid == self.sessionid and not self.session_expired

    def _challenge_body(self) -> JSON:
        path = f"/challenge/{self.own_pk}/{_rand(10)}/"
        return {
            "message": "challenge_required",
            "challenge": {
                "url": f"https://i.instagram.com{path}",
                "api_path": path,
                "hide_webview_header": True,
                "lock": True,
                "logout": False,
                "native_flow": True,
                "flow_render_type": 0,
            },
            "status": "fail",
            "error_type": "checkpoint_challenge_required",
        }

    def _password_ok(self, enc_password: str) -> bool:
        """Decrypt instagrapi's ``#PWD_INSTAGRAM:4:<ts>:<b64>`` (or plain ``:0:``) and compare."""
        parts = enc_password.split(":", 3)
        if len(parts) != 4 or parts[0] != "#PWD_INSTAGRAM":
            return False
        version, timestamp, payload = parts[1], parts[2], parts[3]
        if version == "0":
            return hmac.compare_digest(payload, self.password)
        try:
            from Cryptodome.Cipher import AES, PKCS1_v1_5

            blob = base64.b64decode(payload)
            iv, size = blob[2:14], int.from_bytes(blob[14:16], "little")
            rsa_part, tag, data = blob[16 : 16 + size], blob[16 + size : 32 + size], blob[32 + size :]
            session_key = PKCS1_v1_5.new(_password_key()).decrypt(rsa_part, None)
            if session_key is None:
                return False
            cipher = AES.new(session_key, AES.MODE_GCM, iv)
            cipher.update(timestamp.encode())
            plain = cipher.decrypt_and_verify(data, tag).decode()
        except (ValueError, KeyError, IndexError):
            return False
        return hmac.compare_digest(plain, self.password)

    def _code_ok(self, code: Any) -> bool:
        if not self.totp_seed:
            return False
        now = time.time()
        return any(str(code).strip() == totp_code(self.totp_seed, now + 30 * drift) for drift in (-1, 0, 1))

    def _login_headers(self, sessionid: str) -> dict[str, str]:
        return {
            "IG-Set-Authorization": self._bearer(sessionid),
            "ig-set-ig-u-rur": self.rur,
            "IG-Set-X-MID": self.mid,
            "x-ig-set-www-claim": self.www_claim,
            "IG-Set-Password-Encryption-Key-Id": str(self._key_id),
        }

    def _login_cookies(self) -> list[str]:
        return [
            self._cookie("csrftoken", self.csrftoken),
            self._cookie("ds_user_id", str(self.own_pk), 7_776_000),
            self._cookie("mid", self.mid),
            self._cookie("rur", self._quoted_rur()),
        ]

    def _logged_in_user(self) -> JSON:
        return {"logged_in_user": self._account_json(), "session_flush_nonce": None, "status": "ok"}

    # ------------------------------------------------------------------ login endpoints

    def _graphql_www(self, rec: Rec, match: re.Match[str]) -> _Reply:
        name = str(rec.form.get("fb_api_req_friendly_name", ""))
        if name != "IGUSDIDRegistrationMutation":
            return _Reply(404, {"message": f"Unknown graphql_www query {name!r}", "status": "fail"})
        return _Reply(200, {"data": {"xdt_usdid_registration": {"success": True}}, "extensions": {"is_final": True}})

    def _qe_sync(self, rec: Rec, match: re.Match[str]) -> _Reply:
        pem = _password_key().publickey().export_key(format="PEM")
        return _Reply(
            200,
            {"experiments": [], "status": "ok"},
            headers=[
                ("ig-set-password-encryption-key-id", str(self._key_id)),
                ("ig-set-password-encryption-pub-key", base64.b64encode(pem).decode()),
                ("ig-set-x-mid", self.mid),
            ],
        )

    def _launcher_sync(self, rec: Rec, match: re.Match[str]) -> _Reply:
        return _Reply(200, {"configs": {}, "status": "ok"})

    def _attestation(self, rec: Rec, match: re.Match[str]) -> _Reply:
        return _Reply(
            200,
            {
                "challenge_nonce": base64.b64encode(secrets.token_bytes(24)).decode(),
                "key_nonce": base64.b64encode(secrets.token_bytes(24)).decode(),
                "status": "ok",
            },
        )

    @staticmethod
    def _bloks_reply(action: str = "", data: list[JSON] | None = None, **extra: Any) -> _Reply:
        payload = {"tree": {"bk.components.Flexbox": {}}, "data": data or [], "action": action}
        return _Reply(200, {"layout": {"bloks_payload": payload}, **extra, "status": "ok"})

    def _bloks(self, rec: Rec, match: re.Match[str]) -> _Reply:
        name = match.group(2)
        try:
            params = json.loads(rec.form.get("params") or "{}")
        except ValueError:
            params = {}
        cip = params.get("client_input_params") or {}
        server = params.get("server_params") or {}
        if name == "com.bloks.www.bloks.caa.login.process_client_data_and_redirect":
            aac = json.dumps({"aac": _rand(32), "aac_init_timestamp": int(time.time())})
            node = {
                "id": _rand(6),
                "type": "gs",
                "data": {"key": "CAA_ACCOUNT_ACCESS_CONTEXT:aac", "initial": aac},
            }
            return self._bloks_reply(data=[node])
        if name == "com.bloks.www.caa.login.oauth.token.fetch.async":
            return self._bloks_reply()
        if name == "com.bloks.www.bloks.caa.login.async.send_login_request":
            return self._caa_send_login(cip)
        if name in (
            "com.bloks.www.two_step_verification.entrypoint",
            "com.bloks.www.two_step_verification.method_picker",
            "com.bloks.www.two_step_verification.method_picker.navigation.async",
        ):
            if server.get("two_step_verification_context") not in self._pending_2fa:
                return _Reply(400, {"message": "Invalid two-step verification context", "status": "fail"})
            return self._bloks_reply()
        if name == "com.bloks.www.two_step_verification.verify_code.async":
            context = server.get("two_step_verification_context")
            if context not in self._pending_2fa or not self._code_ok(cip.get("code")):
                return self._bloks_reply('(bk.action.core.TakeLast, (bk.action.caa.ShowError, "Invalid code"))')
            self._pending_2fa.discard(context)
            return self._caa_success()
        return _Reply(404, {"message": f"Unknown bloks app {name!r}", "status": "fail"})

    def _caa_send_login(self, cip: JSON) -> _Reply:
        user_ok = str(cip.get("contact_point", "")).lower() == self.username.lower()
        if not (user_ok and self._password_ok(str(cip.get("password", "")))):
            # Instagram routes failed CAA logins back to the legacy endpoint, which carries the reason.
            node = {"id": _rand(6), "type": "gs", "data": {"key": "CAA_LOGIN_FALLBACK:legacy", "initial": 1}}
            return self._bloks_reply('(bk.action.caa.login.Fallback, "accounts/login/")', data=[node])
        if self.challenge_required:
            return _Reply(400, self._challenge_body())
        if self.totp_seed:
            context = base64.b64encode(secrets.token_bytes(48)).decode()
            self._pending_2fa.add(context)
            app = '"com.bloks.www.two_step_verification.entrypoint"'
            action = (
                f"(bk.action.core.TakeLast, (bk.action.bloks.OpenScreen, {app}, "
                '(f4i (dkc "server_params") (dkc (f4i (dkc "two_step_verification_context" "flow_source") '
                f'(dkc {json.dumps(context)} "two_factor_login"))))))'
            )
            return self._bloks_reply(action, totp_two_factor_on=True, sms_two_factor_on=False)
        return self._caa_success()

    def _caa_success(self) -> _Reply:
        sessionid = self._new_session()
        embedded = {
            "login_response": json.dumps(self._logged_in_user()),
            "headers": json.dumps(self._login_headers(sessionid)),
            "cookies": "\r\n".join(f"Set-Cookie: {cookie}" for cookie in self._login_cookies()),
        }
        literal = json.dumps(json.dumps(embedded))  # a Bloks string literal holding the JSON object
        action = f"(bk.action.core.TakeLast, (bk.action.caa.HandleLoginResponse, {literal}))"
        return self._bloks_reply(action)

    def _legacy_success(self) -> _Reply:
        sessionid = self._new_session()
        headers = [
            ("ig-set-authorization", self._bearer(sessionid)),
            ("ig-set-ig-u-rur", self.rur),
            ("ig-set-x-mid", self.mid),
            ("x-ig-set-www-claim", self.www_claim),
        ]
        headers += [("Set-Cookie", cookie) for cookie in self._login_cookies()]
        return _Reply(200, self._logged_in_user(), headers=headers)

    def _accounts_login(self, rec: Rec, match: re.Match[str]) -> _Reply:
        if str(rec.form.get("username", "")).lower() != self.username.lower():
            return _Reply(
                400,
                {
                    "message": (
                        "The username you entered doesn't appear to belong to an account. "
                        "Please check your username and try again."
                    ),
                    "invalid_credentials": True,
                    "error_title": "Incorrect Username",
                    "error_type": "invalid_user",
                    "status": "fail",
                },
            )
        if not self._password_ok(str(rec.form.get("enc_password", ""))):
            return _Reply(
                400,
                {
                    "message": "The password you entered is incorrect. Please try again.",
                    "invalid_credentials": True,
                    "error_title": f"Incorrect password for {self.username}",
                    "buttons": [{"title": "Try Again", "action": "dismiss"}],
                    "error_type": "bad_password",
                    "status": "fail",
                },
            )
        if self.challenge_required:
            return _Reply(400, self._challenge_body())
        if self.totp_seed:
            identifier = _rand(36)
            self._pending_2fa.add(identifier)
            return _Reply(
                400,
                {
                    "message": "",
                    "two_factor_required": True,
                    "two_factor_info": {
                        "pk": self.own_pk,
                        "username": self.username,
                        "two_factor_identifier": identifier,
                        "totp_two_factor_on": True,
                        "sms_two_factor_on": False,
                        "whatsapp_two_factor_on": False,
                        "obfuscated_phone_number": "",
                    },
                    "error_type": "two_factor_required",
                    "status": "fail",
                },
            )
        return self._legacy_success()

    def _two_factor_login(self, rec: Rec, match: re.Match[str]) -> _Reply:
        identifier = rec.form.get("two_factor_identifier")
        if identifier not in self._pending_2fa or not self._code_ok(rec.form.get("verification_code")):
            return _Reply(
                400,
                {
                    "message": "Please check the security code and try again.",
                    "error_type": "sms_code_validation_code_invalid",
                    "status": "fail",
                },
            )
        self._pending_2fa.discard(identifier)
        if self.challenge_required:
            return _Reply(400, self._challenge_body())
        return self._legacy_success()

    # ------------------------------------------------------------------ JSON shapes

    def _find_user(self, key: str) -> DUser | None:
        for user in [self.me, *self.users, *self._ambient.users]:
            if str(user.pk) == key or user.username.lower() == key.lower():
                return user
        return None

    def _can_view(self, user: DUser) -> bool:
        return user is self.me or not user.private or user.followed

    def _all_stories(self) -> list[DStory]:
        return [*self.stories, *self._ambient.stories]

    def _live_stories(self, user: DUser, groups: dict[int, list[DStory]] | None = None) -> list[DStory]:
        if groups is not None:
            return groups.get(id(user), [])
        stories = [s for s in self._all_stories() if s.user is user and s.live]
        return sorted(stories, key=lambda s: (s.taken_at, s.pk))

    def _live_groups(self) -> dict[int, list[DStory]]:
        """Live stories by ``id(user)``, oldest first: one pass for the batch endpoints."""
        groups: dict[int, list[DStory]] = {}
        now = time.time()
        for story in sorted(self._all_stories(), key=lambda s: (s.taken_at, s.pk)):
            if story.expiring_at > now:
                groups.setdefault(id(story.user), []).append(story)
        return groups

    def _mixed(self, value: int, as_string: bool) -> int | str:
        """Real answers carry ids as numbers in some places and strings in others; tidy answers: numbers."""
        return str(value) if as_string and not self.tidy else value

    @staticmethod
    def _profile_pic(user: DUser) -> str:
        return f"{PROFILE_CDN}/{user.pk}_{user.pk % 997}_n.jpg?stp=dst-jpg_s150x150"

    def _friendship(self, user: DUser) -> JSON:
        return {
            "following": user.followed,
            "followed_by": False,
            "blocking": False,
            "muting": user.muted,
            "is_private": user.private,
            "incoming_request": False,
            "outgoing_request": False,
            "is_bestie": False,
            "is_restricted": False,
            "is_feed_favorite": False,
        }

    def _user_short(self, user: DUser, *, pk_as_string: bool = False) -> JSON:
        return {
            "pk": self._mixed(user.pk, pk_as_string),
            "pk_id": str(user.pk),
            "id": str(user.pk),
            "strong_id__": str(user.pk),
            "username": user.username,
            "full_name": user.full_name,
            "is_private": user.private,
            "is_verified": False,
            "profile_pic_id": f"{3_000_000_000_000_000_000 + user.pk}_{user.pk}",
            "profile_pic_url": self._profile_pic(user),
            "has_anonymous_profile_picture": False,
            "account_badges": [],
            "fbid_v2": str(17_841_400_000_000_000 + user.pk),
        }

    def _reel_user(self, user: DUser) -> JSON:
        """The ``user`` of a tray entry or reel: a short user (a number pk for most, a string for some)."""
        return {**self._user_short(user, pk_as_string=user.pk % 3 == 0), "friendship_status": self._friendship(user)}

    def _user_full(self, user: DUser, *, friendship: bool = True) -> JSON:
        stories = self._live_stories(user) if self._can_view(user) else []
        full = {
            **self._user_short(user),
            "biography": "",
            "external_url": "",
            "bio_links": [],
            "media_count": sum(1 for p in self.posts if p.user is user),
            "follower_count": 100 + user.pk % 1000,
            "following_count": 50 + user.pk % 300,
            "is_business": False,
            "account_type": 1,
            "has_highlight_reels": False,
            "latest_reel_media": stories[-1].taken_at if stories else 0,
            "hd_profile_pic_url_info": {"url": self._profile_pic(user), "width": 320, "height": 320},
            "total_igtv_videos": 0,
            "has_videos": any(p.user is user and p.media_type == 2 for p in self.posts),
        }
        if friendship:
            full["friendship_status"] = self._friendship(user)
        return full

    def _account_json(self) -> JSON:
        return {
            **self._user_short(self.me),
            "biography": "",
            "external_url": "",
            "is_business": False,
            "birthday": None,
            "phone_number": "",
            "country_code": 1,
            "national_number": None,
            "gender": 3,
            "email": f"{self.username}@example.com",
            "has_anonymous_profile_picture": True,
        }

    @staticmethod
    def _image_versions(pk: int, width: int, height: int) -> JSON:
        return {
            "candidates": [
                {"width": width, "height": height, "url": f"{CDN}/{pk}_n.jpg?stp=dst-jpg_e35"},
                {"width": width // 2, "height": height // 2, "url": f"{CDN}/{pk}_n.jpg?stp=dst-jpg_s480x480"},
            ]
        }

    @staticmethod
    def _video_versions(pk: int, width: int, height: int) -> list[JSON]:
        return [{"type": 101, "width": width, "height": height, "url": f"{CDN}/{pk}_video.mp4", "id": str(pk)}]

    def _story_item(self, story: DStory, *, fetched: bool = True) -> JSON:
        """One story item. Real answers: the pk a string for some items and a number for others, the item's
        ``user`` minimal (``{pk, is_private}``), plus ``audience``, ``story_feed_media``, segment fields.
        ``fetched``: an answer that counts for :meth:`break_story` (not the tray's prefetched items)."""
        if self.tidy:
            user: JSON = {**self._user_short(story.user), "friendship_status": self._friendship(story.user)}
        else:
            user = {"pk": self._mixed(story.user.pk, story.pk % 4 == 1), "is_private": story.user.private}
        item: JSON = {
            "taken_at": story.taken_at,
            "pk": str(story.pk) if self.tidy or story.pk % 2 == 0 else story.pk,
            "id": story.id,
            "media_type": story.media_type,
            "code": shortcode(story.pk),
            "caption": None,
            "user": user,
            "image_versions2": self._image_versions(story.pk, 1080, 1920),
            "original_width": 1080,
            "original_height": 1920,
            "expiring_at": story.expiring_at,
            "has_liked": story.liked,
            "can_reply": True,
            "can_reshare": True,
            "can_send_custom_emojis": True,
            "is_reel_media": True,
            "product_type": "story",
            "organic_tracking_token": base64.b64encode(f"tt:{story.pk}".encode()).decode(),
            "story_is_saved_to_archive": False,
            "supports_reel_reactions": True,
        }
        if story.media_type == 2:
            item["video_versions"] = self._video_versions(story.pk, 720, 1280)
            item["video_duration"] = 15.0 if story.segment_group else 9.5
            item["has_audio"] = True
        if story.audience:
            item["audience"] = story.audience
        if story.reshared:
            item["story_feed_media"] = [
                {
                    "x": 0.5,
                    "y": 0.5,
                    "z": 0,
                    "width": 0.8,
                    "height": 0.55,
                    "rotation": 0.0,
                    "is_pinned": 0,
                    "is_hidden": 0,
                    "is_sticker": 1,
                    "is_fb_sticker": 0,
                    "media_id": story.reshared,
                    "product_type": "feed",
                    "media_code": shortcode(int(story.reshared.split("_")[0])),
                }
            ]
        if story.segment_group:
            group = [s for s in self._all_stories() if s.segment_group == story.segment_group]
            item["segmented_video_group_id"] = story.segment_group
            item["is_terminal_video_segment"] = story is group[-1]
        if fetched and story.broken > 0:
            story.broken -= 1
            del item["taken_at"]
        return item

    def _seen_ts(self, stories: list[DStory]) -> int:
        return max((s.taken_at for s in stories if s.seen), default=0)

    def _reel(self, user: DUser, stories: list[DStory], *, items: bool = True, fetched: bool = True) -> JSON:
        reel: JSON = {
            "id": self._mixed(user.pk, user.pk % 2 == 0),
            "strong_id__": str(user.pk),
            "latest_reel_media": stories[-1].taken_at,
            "expiring_at": stories[-1].expiring_at,
            "seen": self._seen_ts(stories),
            "can_reply": True,
            "can_gif_quick_reply": True,
            "can_reshare": True,
            "reel_type": "user_reel",
            "is_sensitive_vertical_ad": False,
            "user": self._reel_user(user),
            "media_count": len(stories),
            "media_ids": [s.pk if self.tidy else str(s.pk) for s in stories],
        }
        if not self.tidy:
            besties = [s.taken_at for s in stories if s.audience == "besties"]
            reel |= {"prefetch_count": 0, "has_besties_media": bool(besties), "has_pride_media": False}
            if besties:
                reel["latest_besties_reel_media"] = float(max(besties))  # a float in real answers
        if items:
            reel["items"] = [self._story_item(s, fetched=fetched) for s in stories]
        return reel

    def _post_item(self, post: DPost) -> JSON:
        item: JSON = {
            "taken_at": post.taken_at,
            "pk": post.pk if self.tidy or post.pk % 2 else str(post.pk),
            "id": post.id,
            "media_type": post.media_type,
            "product_type": post.product_type if post.media_type != 8 else "carousel_container",
            "code": post.code,
            "user": self._user_short(post.user),
            "has_liked": post.liked,
            "like_count": post.like_count,
            "comment_count": 0,
            "caption": None,
            "caption_is_edited": False,
            "original_width": 1080,
            "original_height": 1350,
            "image_versions2": self._image_versions(post.pk, 1080, 1350),
            "organic_tracking_token": base64.b64encode(f"tt:{post.pk}".encode()).decode(),
            "can_viewer_reshare": True,
            "like_and_view_counts_disabled": False,
        }
        if not self.tidy:
            item["timeline_pinned_user_ids"] = [post.user.pk] if post.pinned else []
            item["clips_tab_pinned_user_ids"] = []
        if post.coauthors:
            item["coauthor_producers"] = [self._user_short(u) for u in post.coauthors]
        if post.media_type == 2:
            item["video_versions"] = self._video_versions(post.pk, 720, 1280)
            item["video_duration"] = 14.2
            item["has_audio"] = True
            item["play_count"] = 1000 + post.pk % 1000
        if post.media_type == 8:
            del item["image_versions2"]
            item["carousel_media_count"] = 2
            item["carousel_media"] = [
                {
                    "pk": post.pk + n,
                    "id": f"{post.pk + n}_{post.user.pk}",
                    "media_type": 1,
                    "carousel_parent_id": post.id,
                    "image_versions2": self._image_versions(post.pk + n, 1080, 1350),
                    "original_width": 1080,
                    "original_height": 1350,
                }
                for n in (1, 2)
            ]
        return item

    def _find_media(self, pk: str) -> DStory | DPost | None:
        medias: list[DStory | DPost] = [*self._all_stories(), *self.posts, *self._ambient.posts]
        for media in medias:
            if str(media.pk) == pk:
                return media
        return None

    # ------------------------------------------------------------------ the tray's other entries

    def _make_ambient(self) -> _Ambient:
        """What a real tray holds besides the followed users' reels (REAL_SHAPES.md, "The tray"): the own reel,
        hashtag and location reels, an injected ad, suggested reels, a live broadcast and a post-live item; and
        what the home feed holds besides the followed users' posts: a sponsored post, suggested posts, a reel in a
        reels card. Their users are not in ``users`` (never followed, never targets); their stories and posts can
        be liked through the double like any other, so a test sees it if the code ever does."""
        pks = itertools.count(71_900_000_011, 1_000_033)

        def someone(name: str) -> DUser:
            return DUser(next(pks), name, followed=False, full_name=name.replace(".", " ").title())

        hikers, sponsor, suggested, streamer, replay = (
            someone("wander.jo"),
            someone("brand.shop"),
            someone("suggested.sam"),
            someone("live.larry"),
            someone("replay.rita"),
        )
        streamer.live = True
        ambient = _Ambient(users=[hikers, sponsor, suggested, streamer, replay])
        now = int(time.time())

        def story(user: DUser, age: int) -> DStory:
            made = DStory(next(self._media_pks), user, now - age, self)
            ambient.stories.append(made)
            return made

        ambient.own = [story(self.me, 7200)]
        ambient.hashtag = [story(hikers, 900), story(hikers, 300)]
        ambient.ad = [story(sponsor, 60)]
        ambient.suggested = [story(suggested, 1200)]

        post_pks = itertools.count(3_498_100_000_000_000_023, 1_000_000_009)  # apart from the test's media pks

        def post(user: DUser, age: int, media_type: int = 1, product_type: str = "feed") -> DPost:
            made = DPost(next(post_pks), user, now - age, self, media_type, product_type, like_count=40)
            ambient.posts.append(made)
            return made

        ambient.ad_post = post(sponsor, 3 * 86400)
        ambient.suggested_post = post(suggested, 5 * 3600, 8)
        ambient.reel_card = post(hikers, 2 * 3600, 2, "clips")
        ambient.recs = [post(suggested, 9 * 3600), post(replay, 30 * 3600, 2, "clips")]
        return ambient

    def _broadcast(self, user: DUser, status: str) -> JSON:
        started = int(time.time()) - 600
        return {
            "id": str(17_900_000_000_000_000 + user.pk),
            "broadcast_status": status,
            "broadcast_owner": self._user_short(user),
            "cobroadcasters": [],
            "published_time": started,
            "media_id": f"{3_400_000_000_000_000_000 + user.pk}_{user.pk}",
            "dash_playback_url": f"https://instagram.fxyz1-1.fna.fbcdn.net/hvideo-ash/{user.pk}.mpd",
            "cover_frame_url": f"{CDN}/{user.pk}_cover.jpg",
            "viewer_count": 12,
            "organic_tracking_token": base64.b64encode(f"live:{user.pk}".encode()).decode(),
            "can_reply": False,
            "can_reshare": True,
            "muted": False,
            "ranked_position": 1,
            "seen_ranked_position": 1,
            "expire_at": started + STORY_TTL,
            "last_seen_broadcast_ts": 0,
            "hide_from_feed_unit": False,
        }

    def _extra_entries(self, groups: dict[int, list[DStory]]) -> tuple[list[JSON], list[JSON], JSON]:
        """The hashtag, location and ad entries of the tray; the suggestions; the lives (broadcasts, post_live)."""
        ambient = self._ambient
        hashtag = self._live_stories(ambient.hashtag[0].user, groups)
        entries: list[JSON] = []
        if hashtag:
            entries.append(
                {
                    "id": "tag:travel",
                    "latest_reel_media": hashtag[-1].taken_at,
                    "expiring_at": hashtag[-1].expiring_at,
                    "seen": 0,
                    "can_reply": False,
                    "can_reshare": True,
                    "reel_type": "mas_reel",
                    "owner": {
                        "type": 2,
                        "pk": "17841563119107000",
                        "name": "#travel",
                        "profile_pic_url": f"{PROFILE_CDN}/travel.jpg",
                        "profile_pic_username": ambient.hashtag[0].user.username,
                    },
                    "title": "#travel",
                    "items": [self._story_item(s, fetched=False) for s in hashtag],
                    "media_count": len(hashtag),
                    "media_ids": [str(s.pk) for s in hashtag],
                    "unique_integer_reel_id": "17841563119107000",
                }
            )
            entries.append(
                {
                    "id": "loc:213385402",
                    "latest_reel_media": hashtag[0].taken_at,
                    "expiring_at": hashtag[0].expiring_at,
                    "seen": 0,
                    "can_reply": False,
                    "can_reshare": True,
                    "reel_type": "mas_reel",
                    "owner": {
                        "type": 1,
                        "pk": "213385402",
                        "name": "Berlin, Germany",
                        "short_name": "Berlin",
                        "lat": 52.5167,
                        "lng": 13.3833,
                        "profile_pic_url": f"{PROFILE_CDN}/berlin.jpg",
                    },
                    "location": {"pk": 213385402, "name": "Berlin, Germany", "lat": 52.5167, "lng": 13.3833},
                    "media_count": 1,
                    "media_ids": [str(hashtag[0].pk)],
                }
            )
        ad = self._live_stories(ambient.ad[0].user, groups)
        if ad:
            sponsor = ambient.ad[0].user
            injected = {
                "label": "Sponsored",
                "show_icon": True,
                "hide_label": "Hide Ad",
                "is_demo": False,
                "view_tags": [],
                "is_holdout": False,
                "tracking_token": base64.b64encode(f"ad:{sponsor.pk}".encode()).decode(),
                "show_ad_choices": False,
                "ad_title": sponsor.full_name,
                "ad_id": "23851093840410563",
                "direct_share": False,
            }
            ad_reel = self._reel(sponsor, ad, fetched=False)
            for item in ad_reel["items"]:
                item["injected"] = injected
            entries.append({**ad_reel, "id": sponsor.pk, "ad_id": "23851093840410563", "injected": injected})
        suggested = self._live_stories(ambient.suggested[0].user, groups)
        suggestions = []
        if suggested:
            suggestions.append(
                {
                    "tray": [self._reel(ambient.suggested[0].user, suggested, items=False)],
                    "tray_title": "Suggested for you",
                    "banner_title": "Suggested reels",
                    "banner_subtitle": "",
                    "suggestion_type": "suggested_reels",
                }
            )
        lives: JSON = {
            "broadcasts": [self._broadcast(u, "active") for u in [*self._ambient.users, *self.users] if u.live],
            "post_live": {
                "post_live_items": [
                    {
                        "pk": f"post_live_{ambient.users[-1].pk}",
                        "user": self._user_short(ambient.users[-1]),
                        "broadcasts": [self._broadcast(ambient.users[-1], "post_live")],
                        "peak_viewer_count": 31,
                        "last_seen_broadcast_ts": 0,
                        "can_reply": False,
                        "ranked_position": 1,
                        "seen_ranked_position": 1,
                        "muted": False,
                        "can_reshare": True,
                    }
                ]
            },
        }
        return entries, suggestions, lives

    def _tray_candidates(self, groups: dict[int, list[DStory]]) -> list[DUser]:
        """The followed users with live stories (what a lossless tray would list)."""
        return [u for u in self.users if u.followed and self._live_stories(u, groups)]

    def _tray_users(self, groups: dict[int, list[DStory]]) -> list[DUser]:
        """The candidates the tray actually lists: muted ones never, those ``in_tray=False`` never, and the
        share ``tray_drop`` of the others left out (always the same ones: ranked by a hash of their pk)."""
        shown = [u for u in self._tray_candidates(groups) if u.in_tray and not u.muted]
        drop = round(len(shown) * self.tray_drop)
        if drop <= 0:
            return shown
        ranked = sorted(shown, key=lambda u: hashlib.sha256(f"tray:{u.pk}".encode()).digest())
        dropped = set(map(id, ranked[:drop]))
        return [u for u in shown if id(u) not in dropped]

    # ------------------------------------------------------------------ authed endpoints

    def _not_supported(self, rec: Rec, match: re.Match[str]) -> _Reply:
        """Authed endpoints instagrapi only reaches as a fallback: 403 without a session, else 404."""
        return _Reply(404, {"message": f"Not supported by the double: {rec.path}", "status": "fail"})

    def _current_user(self, rec: Rec, match: re.Match[str]) -> _Reply:
        return _Reply(200, {"user": self._account_json(), "status": "ok"})

    def _logout(self, rec: Rec, match: re.Match[str]) -> _Reply:
        self.session_expired = True
        return _Reply(200, {"status": "ok"})

    def _reels_tray(self, rec: Rec, match: re.Match[str]) -> _Reply:
        """The tray as the app gets it: the own reel first, unseen reels before seen ones, an ad and hashtag
        reels mixed in, only the first ``tray_items`` entries with items, at most ``page_size`` entries."""
        groups = self._live_groups()
        reels = [self._reel(user, self._live_stories(user, groups), items=False) for user in self._tray_users(groups)]
        # unseen reels first, newest first (Instagram ranks; this is a stable approximation)
        reels.sort(key=lambda r: (r["seen"] >= r["latest_reel_media"], -r["latest_reel_media"]))
        body: JSON = {"story_ranking_token": _rand(24), "broadcasts": [], "sticker_version": 0}
        if self.tray_extras:
            entries, suggestions, lives = self._extra_entries(groups)
            hashtag_and_location, ad = entries[:2], entries[2:]
            reels[1:1] = ad  # injected near the front
            reels[4:4] = hashtag_and_location[:1]
            reels += hashtag_and_location[1:]
            own = self._live_stories(self.me, groups)
            if own:
                reels.insert(0, self._reel(self.me, own, items=False))
            body |= {"suggestions": suggestions, **lives}
        try:
            page_size = int(rec.form.get("page_size") or 50)
        except (TypeError, ValueError):
            page_size = 50
        if not self.tidy:
            reels = reels[: max(page_size, 1)]
        for position, reel in enumerate(reels):
            reel["ranked_position"] = reel["seen_ranked_position"] = position + 1
            if position < self.tray_items and "items" not in reel:
                user = self._find_user(str(reel.get("strong_id__", "")))
                if user is not None:
                    reel["items"] = [self._story_item(s, fetched=False) for s in self._live_stories(user, groups)]
            elif position >= self.tray_items:
                reel.pop("items", None)
        body |= {
            "tray": reels,
            "face_filter_nux_version": 0,
            "has_new_nux_story": False,
            "stories_viewer_gestures_nux_eligible": False,
            "status": "ok",
        }
        if self.tidy:
            body = {k: body[k] for k in ("tray", "story_ranking_token", "broadcasts", "sticker_version")} | {
                "face_filter_nux_version": 0,
                "has_new_nux_story": False,
                "status": "ok",
            }
        return _Reply(200, body)

    def _reels_media(self, rec: Rec, match: re.Match[str]) -> _Reply:
        raw = rec.form.get("user_ids", [])
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raw = raw.split(",")
        if not isinstance(raw, list):
            raw = [raw]
        reels: dict[str, JSON] = {}
        groups = self._live_groups()
        for key in (str(value).strip() for value in raw):
            user = self._find_user(key) if key.isdigit() else None
            if user is None or not self._can_view(user) or user.gone_on_fetch:
                continue
            stories = self._live_stories(user, groups)
            if stories:
                reels[str(user.pk)] = self._reel(user, stories)
        return _Reply(200, {"reels": reels, "reels_media": list(reels.values()), "status": "ok"})

    def _user_story(self, rec: Rec, match: re.Match[str]) -> _Reply:
        user = self._find_user(match.group(1))
        if user is None:
            return _Reply(404, dict(USER_NOT_FOUND_BODY))
        if not self._can_view(user):
            return _Reply(400, dict(NOT_AUTHORIZED_BODY))
        stories = [] if user.gone_on_fetch else self._live_stories(user)
        reel = self._reel(user, stories) if stories else None
        broadcast = self._broadcast(user, "active") if user.live else None
        return _Reply(200, {"broadcast": broadcast, "reel": reel, "status": "ok"})

    def _feed_posts(self, user: DUser) -> list[DPost]:
        """A user's feed: their own posts and the collabs they are a coauthor of; pinned ones first."""
        posts = [p for p in self.posts if p.user is user or user in p.coauthors]
        if self.tidy:
            return sorted(posts, key=lambda p: (-p.taken_at, -p.pk))
        return sorted(posts, key=lambda p: (not (p.pinned and p.user is user), -p.taken_at, -p.pk))

    def _user_feed(self, rec: Rec, match: re.Match[str]) -> _Reply:
        user = self._find_user(match.group(1))
        if user is None:
            return _Reply(404, dict(USER_NOT_FOUND_BODY))
        if not self._can_view(user):
            return _Reply(400, dict(NOT_AUTHORIZED_BODY))
        posts = self._feed_posts(user)
        try:
            count = int(rec.query.get("count") or 0)
        except ValueError:
            count = 0
        page_size = count if count > 0 else 12
        start = 0
        max_id = rec.query.get("max_id", "")
        if max_id:
            ids = [p.id for p in posts]
            start = ids.index(max_id) + 1 if max_id in ids else len(posts)
        page = posts[start : start + page_size]
        more = start + page_size < len(posts)
        body: JSON = {
            "items": [self._post_item(p) for p in page],
            "num_results": len(page),
            "more_available": more,
            "auto_load_more_enabled": True,
            "status": "ok",
        }
        if more and page:
            body["next_max_id"] = page[-1].id
        return _Reply(200, body)

    # ------------------------------------------------------------------ the home feed

    def _timeline_candidates(self) -> list[DUser]:
        """The followed users with posts (their own or collabs): what a lossless home feed would show."""
        authors = {id(a) for p in self.posts for a in (p.user, *p.coauthors)}
        return [u for u in self.users if u.followed and id(u) in authors]

    def _timeline_users(self) -> list[DUser]:
        """The candidates the home feed shows: not those ``in_timeline=False``, and the share ``timeline_drop`` of the
        others left out (always the same ones: ranked by a hash of their pk)."""
        shown = [u for u in self._timeline_candidates() if u.in_timeline]
        drop = round(len(shown) * self.timeline_drop)
        if drop <= 0:
            return shown
        ranked = sorted(shown, key=lambda u: hashlib.sha256(f"timeline:{u.pk}".encode()).digest())
        dropped = set(map(id, ranked[:drop]))
        return [u for u in shown if id(u) not in dropped]

    def _timeline_order(self) -> list[DPost]:
        shown = set(map(id, self._timeline_users()))
        posts = [
            p for p in self.posts if self._can_view(p.user) and any(id(a) in shown for a in (p.user, *p.coauthors))
        ]
        return sorted(posts, key=lambda p: (-p.taken_at, -p.pk))

    @staticmethod
    def _timeline_cursor(offset: int) -> str:
        return "QVFE" + base64.urlsafe_b64encode(f"timeline:{offset}".encode()).decode()

    @staticmethod
    def _timeline_offset(cursor: str) -> int | None:
        try:
            kind, _, offset = base64.urlsafe_b64decode(cursor.removeprefix("QVFE")).decode().partition(":")
            return int(offset) if kind == "timeline" else None
        except ValueError:
            return None

    def _feed_media(self, post: DPost) -> JSON:
        return {"media_or_ad": self._post_item(post)}

    def _ad_entry(self, page: int) -> JSON:
        """A sponsored post as real answers carry it (dilame ``timeline.feed.response.ts``: ``injected``, ``ad_id``,
        ``ad_action``, ``link``, ``ad_metadata``, ``dr_ad_type``, ``android_links``...)."""
        ad = self._ambient.ad_post
        assert ad is not None
        ad_id = f"2385109384041{page:04d}"
        item = self._post_item(ad)
        item |= {
            "injected": {
                "label": "Sponsored",
                "show_icon": True,
                "hide_label": "Hide ad",
                "invalidation": None,
                "is_demo": False,
                "view_tags": [],
                "is_holdout": False,
                "tracking_token": base64.b64encode(f"ad:{ad_id}".encode()).decode(),
                "show_ad_choices": False,
                "ad_title": ad.user.full_name,
                "about_ad_params": "",
                "direct_share": True,
                "ad_id": ad_id,
                "display_viewability_eligible": False,
                "lead_gen_form_id": 0,
                "is_leadgen_native_eligible": False,
                "hide_reasons_v2": [{"text": "It's not relevant", "reason": "not_relevant"}],
                "hide_flow_type": 1,
                "cookies": [],
            },
            "collapse_comments": True,
            "ad_metadata": [{"value": "ad", "type": 1}],
            "link": "https://brand.example/shop",
            "link_text": "Shop Now",
            "ad_action": "Shop Now",
            "link_hint_text": "brand.example",
            "ad_link_type": 2,
            "ad_header_style": 0,
            "dr_ad_type": 1,
            "android_links": [{"linkType": 1, "webUri": "https://brand.example/shop", "callToActionTitle": "Shop Now"}],
            "ad_id": ad_id,
        }
        return {"media_or_ad": item}

    def _suggested_entry(self, post: DPost) -> JSON:
        """A post of an account not followed, recommended ("Suggested for you")."""
        item = self._post_item(post)
        item["explore"] = {
            "explanation": "Suggested for you",
            "actor_id": str(post.user.pk),
            "source_token": base64.b64encode(f"explore:{post.pk}".encode()).decode(),
        }
        return {"media_or_ad": item}

    def _timeline_cards(self) -> list[tuple[int, JSON]]:
        """The first page's other entries and where they go: the stories card, a suggested post, the suggested-users
        card (a friendship suggestion with a user of its own) and a reels card (a reel of someone not followed)."""
        ambient = self._ambient
        assert ambient.suggested_post is not None and ambient.reel_card is not None
        someone = ambient.users[2]
        stories: JSON = {
            "stories_netego": {
                "tracking_token": base64.b64encode(b"stories_netego").decode(),
                "hide_unit_if_seen": "False",
                "id": 17_913_000_000_000_001,
            }
        }
        suggested_users: JSON = {
            "suggested_users": {
                "type": 2,
                "suggestions": [
                    {
                        "user": self._user_short(someone),
                        "algorithm": "chaining_refill_algorithm",
                        "social_context": "Suggested for you",
                        "icon": "",
                        "caption": "",
                        "media_ids": [],
                        "thumbnail_urls": [],
                        "large_urls": [],
                        "media_infos": [],
                        "value": 1.0,
                        "is_new_suggestion": False,
                        "uuid": str(uuid.UUID(int=someone.pk)),
                    }
                ],
                "landing_site_type": "suggested_user",
                "title": "Suggested for you",
                "view_all_text": "See all",
                "landing_site_title": "Discover people",
                "netego_type": "suggested_users",
                "id": 17_913_000_000_000_002,
                "tracking_token": base64.b64encode(b"suggested_users").decode(),
            }
        }
        reels: JSON = {  # a stand-in for the reels unit: its media inside the card, never a post of the feed
            "clips_netego": {
                "id": 17_913_000_000_000_003,
                "title": "Suggested reels",
                "netego_type": "clips",
                "clips_items": [{"media": self._post_item(ambient.reel_card)}],
                "tracking_token": base64.b64encode(b"clips_netego").decode(),
            }
        }
        return [(1, stories), (3, self._suggested_entry(ambient.suggested_post)), (5, suggested_users), (7, reels)]

    def _demarcator(self, older: list[DPost], cursor: str | None) -> JSON:
        """ "You're all caught up": the followed users' older posts go on in the ``past_posts`` group, with a cursor of
        their own; the answer's ``next_max_id`` is then ``feed_recs_head_load`` (suggested posts)."""
        group: JSON = {
            "id": "past_posts",
            "title": "Older posts",
            "show_group_text": "View older posts",
            "feed_items": [self._feed_media(p) for p in older],
        }
        if cursor is not None:
            group["next_max_id"] = cursor
        return {
            "end_of_feed_demarcator": {
                "id": "end_of_feed_demarcator",
                "title": "You're all caught up",
                "subtitle": f"You've seen all new posts from the past {self.timeline_recent_days:g} days.",
                "pause": True,
                "group_set": {"id": "feed_group_set", "active_group_id": "past_posts", "groups": [group]},
            }
        }

    def _timeline(self, rec: Rec, match: re.Match[str]) -> _Reply:
        """The home feed: the shown followed users' posts newest first, ``timeline_page_size`` of them per page, with
        ads and cards mixed in, the end-of-feed demarcator where the recent posts end, ``next_max_id`` /
        ``more_available``. Also answers instagrapi's own login-flow request (a JSON body)."""
        posts = self._timeline_order()
        size = max(self.timeline_page_size, 1)
        max_id = str(rec.form.get("max_id") or "")
        entries: list[JSON] = []
        cursor: str | None = None
        start = self._timeline_offset(max_id) if max_id else 0
        if max_id == "feed_recs_head_load":  # past the demarcator, into recommendations: no followed user's posts
            entries = [self._suggested_entry(p) for p in self._ambient.recs]
            more = False
            page = -1
        elif start is None:  # a cursor this double never gave
            return _Reply(200, {"num_results": 0, "more_available": False, "feed_items": [], "status": "ok"})
        else:
            page = start // size
            end = min(start + size, len(posts))
            cutoff = time.time() - self.timeline_recent_days * 86400
            recent = next((n for n, p in enumerate(posts) if p.taken_at < cutoff), len(posts))
            caught_up = start <= recent and (recent < end or recent == end == len(posts))  # the recent ones end here
            if math.isfinite(self.timeline_recent_days) and caught_up:
                past = self._timeline_cursor(end) if end < len(posts) else None
                entries = [self._feed_media(p) for p in posts[start:recent]]
                entries.append(self._demarcator(posts[recent:end], past))
                cursor, more = "feed_recs_head_load", True
            else:
                entries = [self._feed_media(p) for p in posts[start:end]]
                more = end < len(posts)
                cursor = self._timeline_cursor(end) if more else None
        if self.timeline_extras:
            if page == 0:
                for at, card in self._timeline_cards():
                    entries.insert(min(at, len(entries)), card)
            entries.insert(min(2, len(entries)), self._ad_entry(page + 1))
        body: JSON = {"num_results": len(entries), "more_available": more, "feed_items": entries}
        if cursor is not None:
            body["next_max_id"] = cursor
        if not self.tidy:
            body |= {
                "auto_load_more_enabled": True,
                "is_direct_v2_enabled": True,
                "pagination_info": {"source": None, "group_id": None},
                "view_state_version": str(uuid.UUID(int=secrets.randbits(128))),
                "client_feed_changelist_applied": False,
                "feed_pill_text": "New posts",
                "client_session_id": str(rec.form.get("session_id") or ""),
                "client_gap_enforcer_matrix": [{"list": [1, 2, 3]}],
                "request_id": str(rec.form.get("request_id") or ""),
                "preload_distance": 6,
            }
        body["status"] = "ok"
        return _Reply(200, body)

    def _user_info(self, rec: Rec, match: re.Match[str]) -> _Reply:
        user = self._find_user(match.group(1))
        if user is None:
            return _Reply(404, dict(USER_NOT_FOUND_BODY))
        return _Reply(200, {"user": self._user_full(user), "status": "ok"})

    def _usernameinfo(self, rec: Rec, match: re.Match[str]) -> _Reply:
        """Real answers carry no ``friendship_status``: they do not say whether you follow the user."""
        user = self._find_user(match.group(1))
        if user is None or match.group(1).isdigit():
            return _Reply(404, dict(USER_NOT_FOUND_BODY))
        return _Reply(200, {"user": self._user_full(user, friendship=self.lookup_friendship), "status": "ok"})

    def _following(self, rec: Rec, match: re.Match[str]) -> _Reply:
        followed = [u for u in reversed(self.users) if u.followed] if int(match.group(1)) == self.own_pk else []
        try:
            count = int(rec.query.get("count") or 200)
            start = int(rec.query.get("max_id") or 0)
        except ValueError:
            return _Reply(400, {"message": "Invalid parameters", "status": "fail"})
        count = count if count > 0 else 200
        page = followed[start : start + count]
        more = start + count < len(followed)
        body: JSON = {
            "users": [self._user_short(u, pk_as_string=True) for u in page],
            "big_list": more,
            "page_size": count,
            "has_more": more,
            "should_limit_list_of_followers": False,
            "status": "ok",
        }
        if more:
            body["next_max_id"] = str(start + count)
        return _Reply(200, body)

    def _media_seen(self, rec: Rec, match: re.Match[str]) -> _Reply:
        reels = rec.form.get("reels") or {}
        if isinstance(reels, str):
            try:
                reels = json.loads(reels)
            except ValueError:
                reels = {}
        reels = reels if isinstance(reels, dict) else {}
        self.seen_requests.append(SeenRequest(len(self.requests) - 1, copy.deepcopy(reels), time.time()))
        for key in reels:
            parts = str(key).split("_")
            if len(parts) >= 2:
                story = self._find_media(parts[0])
                if isinstance(story, DStory) and str(story.user.pk) == parts[1]:
                    self.seen_story_ids.add(story.id)
        return _Reply(200, {"status": "ok"})

    def _story_like(self, rec: Rec, match: re.Match[str]) -> _Reply:
        media_id = str(rec.form.get("media_id", ""))
        story = self._find_media(media_id.split("_")[0])
        if not isinstance(story, DStory) or story.id != media_id or not story.live or not self._can_view(story.user):
            return _Reply(400, dict(MEDIA_UNAVAILABLE_BODY))
        if match.group(1) == "send":
            self.liked_story_ids.add(story.id)
        else:
            self.liked_story_ids.discard(story.id)
        return _Reply(200, {"status": "ok"})

    def _media_like(self, rec: Rec, match: re.Match[str]) -> _Reply:
        post = self._find_media(match.group(1))
        if not isinstance(post, DPost) or not self._can_view(post.user):
            return _Reply(400, dict(MEDIA_UNAVAILABLE_BODY))
        if match.group(2) == "like" and not post.liked:
            self.liked_media_ids.add(post.id)
            post.like_count += 1
        elif match.group(2) == "unlike" and post.liked:
            self.liked_media_ids.discard(post.id)
            post.like_count -= 1
        return _Reply(200, {"status": "ok"})

    def _media_info(self, rec: Rec, match: re.Match[str]) -> _Reply:
        media = self._find_media(match.group(1))
        if media is None or not self._can_view(media.user) or (isinstance(media, DStory) and not media.live):
            return _Reply(400, dict(MEDIA_UNAVAILABLE_BODY))
        item = self._story_item(media) if isinstance(media, DStory) else self._post_item(media)
        return _Reply(200, {"items": [item], "num_results": 1, "more_available": False, "status": "ok"})


@dataclass
class _Ambient:
    """The tray's and the home feed's entries that are no followed user's (see ``InstagramDouble._make_ambient``)."""

    users: list[DUser]
    stories: list[DStory] = field(default_factory=list)
    own: list[DStory] = field(default_factory=list)
    hashtag: list[DStory] = field(default_factory=list)
    ad: list[DStory] = field(default_factory=list)
    suggested: list[DStory] = field(default_factory=list)
    posts: list[DPost] = field(default_factory=list)  # every post below
    ad_post: DPost | None = None  # the sponsored post injected in every home-feed page
    suggested_post: DPost | None = None  # "Suggested for you" among the first page's posts
    reel_card: DPost | None = None  # the reel inside the first page's reels card
    recs: list[DPost] = field(default_factory=list)  # the suggested posts after the end-of-feed demarcator


def _decode_body(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    text = body.decode("utf-8", "replace")
    if text.lstrip().startswith("{"):
        try:
            decoded = json.loads(text)
            return decoded if isinstance(decoded, dict) else {}
        except ValueError:
            pass
    fields = {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
    signed = fields.get("signed_body")
    if signed is not None:
        try:
            decoded = json.loads(signed.split(".", 1)[1])
            return decoded if isinstance(decoded, dict) else {}
        except (IndexError, ValueError):
            return {"signed_body": signed}
    return fields


# ------------------------------------------------------------------------------ client helpers


def point_client(client: Client, base_url: str, *, timeout: float | None = 5.0) -> Client:
    """Make a real instagrapi client talk to the double: no pacing sleeps, no retries, one
    HTTP request per call, a default HTTP timeout. Call AFTER ``set_settings``/``load_settings``."""
    from story_liker.ig.transport import redirect_to, with_default_timeout

    client.set_retry_config(
        request_timeout=0,
        session_retry_total=0,
        public_request_retries_count=1,
        public_request_retries_timeout=0,
    )
    client.delay_range = None
    for session in (client.private, client.public, client.graphql):
        redirect_to(session, base_url)
    if timeout is not None:
        with_default_timeout(client.private, timeout)
        with_default_timeout(client.public, timeout)
    return client


def new_client(ig: InstagramDouble, *, logged_in: bool = True, timeout: float | None = 5.0) -> Client:
    """A ``Client(private_transport="requests", with_challenge_flow=False)`` pointed at ``ig``,
    loaded with ``ig.settings()`` when ``logged_in``."""
    from instagrapi import Client

    client = Client(private_transport="requests", with_challenge_flow=False)
    if logged_in:
        client.set_settings(ig.settings())
    return point_client(client, ig.url, timeout=timeout)
