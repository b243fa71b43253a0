"""The instagrapi adapter: `Instagram` and `Login` on top of instagrapi's Client, one HTTP request per call.

The only module that imports instagrapi, and lazily (it costs ~0.5 s and 50 MB). Every call is exactly one HTTP
request with a timeout, instagrapi's own sleeps and retries taken out (``_one_request_per_call``), its many
exceptions turned into a handful of ours (``_call``), its answers read by the pure parsers (``ig.parse``).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from story_liker.errors import (
    BadResponse,
    Gone,
    NeedsHuman,
    NetworkError,
    PasswordRejected,
    SessionExpired,
    TargetUnavailable,
    Throttled,
    ThrottleKind,
)
from story_liker.ig.parse import (
    _object,
    parse_current_user,
    parse_following,
    parse_reels,
    parse_timeline,
    parse_tray,
    parse_user_feed,
    parse_user_info,
    parse_user_story,
)
from story_liker.ig.types import Connection, PostItem, StoryItem, TrayEntry, TrayReason, UserRef

log = logging.getLogger(__name__)


class Instagrapi:
    """`Instagram` on top of instagrapi's Client, one HTTP request per call."""

    def __init__(self, conn: Connection) -> None:
        from instagrapi import Client

        from story_liker.ig.transport import FreshConnections, count_requests, redirect_to, with_default_timeout

        self.conn = conn
        self.requests_sent = 0
        self._malformed = 0
        self._started_ms = str(int(time.time() * 1000))  # the "app" starts with the run
        self._timeline_load = ""  # request_id of the home-feed load being paged (the first page makes a new one)
        self._timeline_seen: list[str] = []  # ids of the posts of that load's pages so far (``seen_posts``)
        client = Client(
            proxy=conn.proxy,
            with_challenge_flow=conn.challenge_prompt is not None,
            private_transport="requests" if conn.api_url else "curl",
        )
        if conn.settings:
            client.set_settings(conn.settings)  # restores uuids and device: the fingerprint never rotates
            client.set_retry_config(private_transport="requests" if conn.api_url else "curl")  # not the saved one
        client.username = conn.username
        client.password = conn.password
        if (prompt := conn.challenge_prompt) is not None:
            client.challenge_code_handler = lambda username, choice=None: prompt(str(choice))
        for session in (client.private, client.public, client.graphql):
            if conn.api_url:
                redirect_to(session, conn.api_url)
            with_default_timeout(session, conn.timeout)
            count_requests(session, self._count)
        # Likes go out on a connection of their own: libcurl re-sends a request on a reused connection that dies
        # before the answer (story_liker.ig.transport). Looked up per request: survives set_settings() and init().
        self._fresh_connection = FreshConnections(client.private)
        _one_request_per_call(client, resolve_challenges=conn.challenge_prompt is not None)
        self.client = client

    def _count(self) -> None:
        self.requests_sent += 1

    def _skipped(self, count: int) -> None:
        self._malformed += count

    @property
    def malformed(self) -> int:
        return self._malformed

    @property
    def user_pk(self) -> int | None:
        pk = self.client.user_id
        return int(pk) if pk else None

    @contextmanager
    def _call(self, what: str, *, target: str | None = None) -> Iterator[None]:
        """Translate instagrapi and requests exceptions into ours."""
        import requests
        from instagrapi import exceptions as ex

        try:
            yield
        except (
            ex.ChallengeError,
            ex.TwoFactorRequired,
            ex.AccountSuspended,
            ex.CaptchaChallengeRequired,
        ) as exc:
            raise NeedsHuman(f"Instagram wants a human: {type(exc).__name__} on {what}") from None
        except ex.LoginRequired:
            raise SessionExpired(f"the Instagram session expired (login_required on {what})") from None
        except ex.FeedbackRequired as exc:
            raise Throttled(
                f"Instagram blocked the action (feedback_required on {what})",
                kind=ThrottleKind.FEEDBACK_REQUIRED,
                detail=str(getattr(exc, "message", "") or "")[:500] or None,
            ) from None
        except (ex.PleaseWaitFewMinutes, ex.ClientThrottledError, ex.RateLimitError, ex.SentryBlock) as exc:
            raise Throttled(
                f"Instagram throttled us ({type(exc).__name__} on {what})", kind=ThrottleKind.RATE_LIMIT
            ) from None
        except ex.MediaUnavailable:
            raise Gone(f"the media of {what} is gone (expired or deleted)") from None
        except (ex.UserNotFound, ex.ClientNotFoundError) as exc:
            if target is None:
                raise BadResponse(f"{type(exc).__name__} on {what}") from None
            raise TargetUnavailable(f"{target} not found", reason="not_found") from None
        except (ex.PrivateAccount, ex.InvalidTargetUser) as exc:
            if target is None:
                raise BadResponse(f"{type(exc).__name__} on {what}") from None
            raise TargetUnavailable(f"{target} is private and not followed", reason="private") from None
        except (ex.ClientConnectionError, ex.ClientRequestTimeout, ex.ClientIncompleteReadError) as exc:
            raise NetworkError(f"Instagram unreachable ({type(exc).__name__} on {what})") from None
        except requests.RequestException as exc:
            raise NetworkError(f"Instagram unreachable ({type(exc).__name__} on {what})") from None
        except ex.ClientJSONDecodeError:
            raise BadResponse(f"malformed JSON from {what}") from None
        except ex.BadPassword:
            raise PasswordRejected("login failed: BadPassword") from None
        except (
            ex.BadCredentials,
            ex.ReloginAttemptExceeded,
            ex.ProxyAddressIsBlocked,
            ex.ClientLoginRequired,
        ) as exc:
            raise NeedsHuman(f"login failed: {type(exc).__name__}") from None
        except ex.ClientNeedsUpgradeError:
            raise NeedsHuman(
                f"Instagram rejects the app version of the stored session (needs_upgrade on {what}): "
                "run `story-liker session upgrade`, then `story-liker keepalive`"
            ) from None
        except ex.ClientError as exc:
            status = getattr(exc, "code", None)
            if isinstance(status, int) and status >= 500:
                raise NetworkError(f"Instagram answered {status} on {what}", answered=True) from None
            raise BadResponse(f"{type(exc).__name__} on {what} (status {status})") from None
        except (KeyError, TypeError, ValueError, AttributeError, AssertionError, RecursionError) as exc:
            # ValueError also covers JSON with integers too long to decode, RecursionError JSON nested too deep.
            raise BadResponse(f"unexpected answer from {what}: {type(exc).__name__}") from None

    def _request(
        self,
        what: str,
        endpoint: str,
        data: Any = None,
        *,
        params: Any = None,
        target: str | None = None,
        headers: dict[str, str] | None = None,
        signed: bool = True,
    ) -> dict[str, Any]:
        with self._call(what, target=target):
            result = self.client.private_request(endpoint, data, params=params, headers=headers, with_signature=signed)
        return _object(result, what)

    # --- reads ---

    def reels_tray(self, reason: TrayReason) -> list[TrayEntry]:
        """instagrapi's ``get_reels_tray_feed`` builds the app's body with the ``reason`` given (its default is
        ``pull_to_refresh``); ``reel_tray_impressions`` is empty on a cold start, the own user's impression with the
        time otherwise. One private_request."""
        with self._call("reels_tray"):
            raw = self.client.get_reels_tray_feed(reason)
        entries, bad = parse_tray(raw)
        self._skipped(bad)
        own = self.user_pk  # the own reel comes first when the account has a story: never a followed account
        return [entry for entry in entries if entry.user_pk != own]

    def reels_media(self, user_pks: Sequence[int]) -> dict[int, list[StoryItem]]:
        data = self.client.with_default_data({"user_ids": [str(pk) for pk in user_pks], "source": "reel_feed_timeline"})
        found, bad = parse_reels(self._request("reels_media", "feed/reels_media/", data))
        self._skipped(bad)
        return found

    def user_stories(self, user_pk: int) -> list[StoryItem]:
        raw = self._request("user_stories", f"feed/user/{user_pk}/story/", target=str(user_pk))
        stories, bad = parse_user_story(raw, user_pk)
        self._skipped(bad)
        return stories

    def following_page(self, max_id: str | None) -> tuple[list[UserRef], str | None]:
        params = {"count": 200, "search_surface": "follow_list_page", "rank_token": self.client.rank_token}
        if max_id:
            params["max_id"] = max_id
        raw = self._request("following", f"friendships/{self.user_pk}/following/", params=params)
        users, next_max_id, bad = parse_following(raw)
        self._skipped(bad)
        return users, next_max_id

    def lookup(self, username: str) -> UserRef:
        raw = self._request("lookup", f"users/{username}/usernameinfo/", target=username)
        return parse_user_info(raw, username)

    def user_posts(self, user_pk: int, count: int, max_id: str | None = None) -> tuple[list[PostItem], str | None]:
        params: dict[str, Any] = {"count": count, "rank_token": self.client.rank_token, "ranked_content": "true"}
        if max_id:
            params["max_id"] = max_id
        raw = self._request("user_posts", f"feed/user/{user_pk}/", params=params, target=str(user_pk))
        posts, cursor, bad = parse_user_feed(raw, user_pk)
        self._skipped(bad)
        return posts, cursor

    def timeline_page(self, max_id: str | None) -> tuple[list[PostItem], str | None]:
        """``POST feed/timeline/``, one request: the fields of instagrapi's ``get_timeline_feed`` (its newest capture of
        the app), but sent the way the app, dilame's ``timeline.feed.ts`` and the PHP client send them: unsigned form
        fields (instagrapi sends one JSON string with a form content type). ``cold_start_fetch`` for the first page;
        ``pagination`` with ``max_id`` and the posts already shown (``seen_posts``) for the next, without the view
        telemetry instagrapi makes up (every post "viewed" 1 ms; the PHP client sends none when paginating). One
        ``request_id`` per load, not instagrapi's stored one that never changes; no random charging or sound state
        per request."""
        client = self.client
        if not max_id:
            self._timeline_load, self._timeline_seen = str(uuid.uuid4()), []
        now_ms = str(int(time.time() * 1000))
        data: dict[str, str] = {
            "app_start_time": self._started_ms,
            "has_camera_permission": "1",
            "client_recorded_request_time_ms": now_ms,
            "client_seen_store_media_list": "",
            "client_view_state_media_list": "[]",
            "device_timezone_name": str(client.timezone_name),
            "feed_reshare_info": "",
            "phone_id": client.phone_id,
            "reason": "pagination" if max_id else "cold_start_fetch",
            "battery_level": "100",
            "timezone_offset": str(client.timezone_offset),
            "device_id": client.uuid,
            "include_attribution_ui_data": "true",
            "push_disabled": "true" if client.push_disabled else "false",
            "request_id": self._timeline_load,
            "request_build_time": now_ms,
            "_uuid": client.uuid,
            "is_charging": "1",
            "is_dark_mode": "1",
            "will_sound_on": "0",
            "session_id": client.client_session_id,
            "bloks_versioning_id": client.bloks_versioning_id,
            "is_pull_to_refresh": "0",
        }
        signals = getattr(client, "_timeline_session_level_signals_json", None)
        if callable(signals):
            data["session_level_signals"] = str(signals())
        if max_id:
            data |= {
                "max_id": max_id,
                "organic_realtime_information": "[]",
                "pagination_source": "feed_recs",
                "triggered_by_visible_spinner": "false",
            }
            if self._timeline_seen:
                data["seen_posts"] = ",".join(self._timeline_seen)
        else:
            data["feed_view_info"] = "[]"
        headers = {"X-Ads-Opt-Out": "0", "X-DEVICE-ID": client.uuid, "X-CM-Bandwidth-KBPS": "-1.000"}
        headers["X-CM-Latency"] = "-1.000"
        if client.advertising_id:
            headers["X-Google-AD-ID"] = client.advertising_id
        raw = self._request("timeline", "feed/timeline/", data, headers=headers, signed=False)
        posts, next_max_id, bad = parse_timeline(raw)
        self._skipped(bad)
        self._timeline_seen = [*self._timeline_seen, *(post.id for post in posts)][-200:]
        return posts, next_max_id

    # --- writes: full "<pk>_<user pk>" ids, so instagrapi never looks a media up first. A like goes out on a new
    # connection, closed after the answer, so libcurl cannot send it twice (story_liker.ig.transport) ---

    def mark_seen(self, stories: Sequence[StoryItem], seen_at: Sequence[int]) -> None:
        """As the app (and dilame's story.service.ts) sends it: per story ``"<taken_at>_<seen_at>"``, seen_at
        rising as the viewer moves through the reel (instagrapi's media_seen sends a random start instead).

        It keeps the kept-alive connection, like the reads: a copy libcurl re-sends carries the same stories and
        the same times, so Instagram's state is what one request makes (they are seen, at those times); the cost
        is one uncounted request on a rare dropped connection, not a second action. A fresh connection would
        add a TLS handshake per target with likes."""
        reels = {
            f"{story.pk}_{story.user_pk}_{story.user_pk}": [f"{int(story.taken_at.timestamp())}_{int(at)}"]
            for story, at in zip(stories, seen_at, strict=True)
        }
        data = {
            "container_module": "feed_timeline",
            "live_vods_skipped": {},
            "nuxes_skipped": {},
            "nuxes": {},
            "reels": reels,
            "live_vods": {},
            "reel_media_skipped": {},
        }
        raw = self._request("mark_seen", "/v2/media/seen/?reel=1&live_vod=0", self.client.with_default_data(data))
        if raw.get("status") != "ok":
            raise BadResponse("mark_seen: not confirmed")

    def like_story(self, story: StoryItem) -> None:
        with self._call("like_story"), self._fresh_connection():
            ok = self.client.story_like(story.id, mark_seen=False)  # no seen request, no media/info lookup
        if not ok:
            raise BadResponse(f"like of story {story.pk} not confirmed")

    def like_post(self, post: PostItem) -> None:
        with self._call("like_post"), self._fresh_connection():
            ok = self.client.media_like(post.id)
        if not ok:
            raise BadResponse(f"like of post {post.pk} not confirmed")

    # --- session ---

    def ping(self) -> UserRef:
        return parse_current_user(self._request("keepalive", "accounts/current_user/?edit=true"), "keepalive")

    def relogin(self) -> None:
        if not self.conn.password:
            raise NeedsHuman("the session expired and no IG_PASSWORD is set: run `story-liker login`")
        code = totp_code(self.conn.totp_seed) if self.conn.totp_seed else ""
        with self._call("login"):
            fresh = not self.conn.settings
            ok = self.client.login(self.conn.username, self.conn.password, relogin=not fresh, verification_code=code)
        if not ok:
            raise NeedsHuman("Instagram did not accept the login")

    def login_by_sessionid(self, sessionid: str) -> UserRef:
        """One request (``users/{pk}/info/``), unlike instagrapi's, which falls back to two more endpoints.
        Returns the user the sessionid belongs to."""
        found = re.match(r"[0-9]+", sessionid)
        if found is None or len(sessionid) <= 30:
            raise NeedsHuman("that does not look like an Instagram sessionid")
        client, user_id = self.client, found.group()
        client.settings["cookies"] = {"sessionid": sessionid}
        client.init()
        client.request_timeout = 0  # init() restores the saved value: a sleep before every request
        client.authorization_data = {
            "ds_user_id": user_id,
            "sessionid": sessionid,
            "should_use_header_over_cookies": True,
        }
        params = {"is_prefetch": "false", "entry_point": "self_profile", "from_module": "self_profile"}
        try:
            raw = self._request("login_by_sessionid", f"users/{user_id}/info/", params=params | {"is_app_start": False})
        except SessionExpired:
            raise NeedsHuman("Instagram did not accept that sessionid (login_required)") from None
        who = parse_current_user(raw, "login_by_sessionid")
        if str(who.user_pk) != user_id:
            raise BadResponse("login_by_sessionid: the answer is about another user")
        client.username = who.username
        client.private.cookies.set("ds_user_id", str(who.user_pk))
        client.private.headers.update(client.base_headers)
        client.private.headers.update({"Authorization": client.authorization})
        return who

    def login_with_code(self, code_prompt: Callable[[], str]) -> None:
        """Interactive login: password, then a 2FA code from the TOTP seed or the person at the terminal."""
        from instagrapi.exceptions import TwoFactorRequired

        code = totp_code(self.conn.totp_seed) if self.conn.totp_seed else ""
        relogin = bool(self.conn.settings)
        with self._call("login"):
            try:
                self.client.login(self.conn.username, self.conn.password, relogin=relogin, verification_code=code)
            except TwoFactorRequired:
                code = code_prompt()
                self.client.login(self.conn.username, self.conn.password, relogin=True, verification_code=code)

    def dump_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = self.client.get_settings()
        return settings


def _one_request_per_call(client: Any, *, resolve_challenges: bool) -> None:
    """Take instagrapi's hidden sleeps, retries and repeated logins out of this client instance.

    Each trap is named with its place in instagrapi 3.2.2 (``instagrapi/mixins/...``):

    - ``private.py`` ``private_request``: after a 408 it sleeps 60 s and sends again, after a short read
      2 s and again; a ``handle_exception`` hook or the challenge flow send again; ``delay_range`` sleeps.
      Replaced on the instance by :func:`_one_shot` (every internal ``self.private_request`` call finds it).
    - ``private.py`` ``_send_private_request``: ``time.sleep(request_timeout)`` before every request;
      ``graphql.py`` ``private_graphql_www_request`` likewise. ``request_timeout`` is kept at 0 (the
      saved settings and ``init()`` bring the default 1 back).
    - ``request_timeout``/``session_retry_total``/public retries: zeroed with ``set_retry_config`` (the
      ``requests`` transport's urllib3 Retry resends 429/5xx with backoff; the curl one never retries).
    - ``auth.py`` ``login_legacy``: a rejected password (``BadPassword``) runs the whole CAA login again
      (``_try_caa_login``): one attempt sends the password three times. Disabled: the rejection stands.
    - ``auth.py`` ``login_legacy``: ``pre_login_flow`` answered 429 / please-wait is ignored and the
      password is sent anyway. Here it stops the login as Throttled.
    - Redirects are not followed on the private session (a followed redirect is a second request).
    """
    from instagrapi.exceptions import ClientThrottledError, PleaseWaitFewMinutes

    client.set_retry_config(
        request_timeout=0,
        session_retry_total=0,
        public_request_retries_count=1,  # attempts, not retries: 0 would skip the request
        public_request_retries_timeout=0,
    )
    client.delay_range = None
    client.handle_exception = None
    client.private.max_redirects = 0
    client.private_request = _one_shot(client, resolve_challenges=resolve_challenges)
    client._try_caa_login = lambda exc, verification_code="": False  # login_legacy then re-raises exc
    pre_login_flow = client.pre_login_flow

    def pre_login_flow_or_stop() -> Any:
        try:
            return pre_login_flow()
        except (PleaseWaitFewMinutes, ClientThrottledError) as exc:
            raise Throttled(
                f"Instagram throttled the login ({type(exc).__name__})", kind=ThrottleKind.RATE_LIMIT
            ) from None

    client.pre_login_flow = pre_login_flow_or_stop


def _one_shot(client: Any, *, resolve_challenges: bool) -> Callable[..., Any]:
    """``private_request`` as instagrapi's (same Authorization header handling), minus the second send.

    It calls ``_send_private_request`` exactly once and lets whatever it raised through. Only with
    ``resolve_challenges`` (the interactive ``login``, a person at the terminal) is a challenge resolved
    and the request then sent once more, as instagrapi does.
    """
    from instagrapi.exceptions import ChallengeRequired

    def private_request(
        endpoint: str,
        data: Any = None,
        params: Any = None,
        login: bool = False,
        with_signature: bool = True,
        headers: dict[str, str] | None = None,
        extra_sig: Any = None,
        domain: str | None = None,
    ) -> Any:
        headers = dict(headers or {})
        if client.authorization and "authorization" not in headers:
            headers["Authorization"] = client.authorization
        client.request_timeout = 0
        kwargs = {
            "data": data,
            "params": params,
            "login": login,
            "with_signature": with_signature,
            "headers": headers or None,
            "extra_sig": extra_sig,
            "domain": domain,
        }
        client.private_requests_count += 1
        try:
            return client._send_private_request(endpoint, **kwargs)
        except ChallengeRequired:
            if not resolve_challenges:
                raise
            client.challenge_resolve(client.last_json)
            if login and client.user_id:
                return client.last_json
            return client._send_private_request(endpoint, **kwargs)

    return private_request


def upgrade_app_profile(settings: dict[str, Any]) -> tuple[dict[str, Any], str | None, str | None]:
    """Move stored instagrapi settings to instagrapi's current app profile (app version, version code, Bloks
    id, user agent) and keep the device: uuids, phone id, android id, manufacturer and model stay. No request
    is sent. Returns the new settings and the app versions before and after."""
    from instagrapi import Client

    before = (settings.get("device_settings") or {}).get("app_version")
    client = Client(override_app_version=True)
    client.set_settings(settings)
    upgraded: dict[str, Any] = client.get_settings()
    return upgraded, before, (upgraded.get("device_settings") or {}).get("app_version")


def totp_code(seed: str) -> str:
    from instagrapi.mixins.totp import TOTPMixin

    return str(TOTPMixin.totp_generate_code(seed))
