"""The Instagram seam: a small Protocol, plain value objects, and the instagrapi adapter.

This is the only module that imports instagrapi, and it does so lazily (it costs ~0.5 s and 50 MB).
The adapter owns pacing-free, retry-free requests: every call is exactly one HTTP request, with a
timeout, and instagrapi's many exceptions become a handful of ours.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from story_liker.errors import (
    BadResponse,
    NeedsHuman,
    NetworkError,
    SessionExpired,
    TargetUnavailable,
    Throttled,
    ThrottleKind,
)

log = logging.getLogger(__name__)

MEDIA_TYPES = {1: "photo", 2: "video", 8: "album"}


@dataclass(frozen=True)
class TrayEntry:
    user_pk: int
    username: str
    latest_reel_media: int


@dataclass(frozen=True)
class StoryItem:
    pk: str
    user_pk: int
    taken_at: datetime
    has_liked: bool

    @property
    def id(self) -> str:
        return f"{self.pk}_{self.user_pk}"


@dataclass(frozen=True)
class PostItem:
    pk: str
    user_pk: int
    taken_at: datetime
    media_type: str  # photo, video, album or reel
    has_liked: bool

    @property
    def id(self) -> str:
        return f"{self.pk}_{self.user_pk}"


@dataclass(frozen=True)
class UserRef:
    user_pk: int
    username: str
    followed: bool | None = None
    private: bool = False


class Instagram(Protocol):
    """What a pass needs from Instagram. Each method is one request unless its docstring says otherwise."""

    requests_sent: int

    @property
    def malformed(self) -> int:
        """Items skipped inside the adapter as malformed (answers that raise BadResponse are not counted)."""
        ...

    def reels_tray(self) -> list[TrayEntry]: ...
    def reels_media(self, user_pks: Sequence[int]) -> dict[int, list[StoryItem]]: ...
    def user_stories(self, user_pk: int) -> list[StoryItem]: ...
    def following(self, max_pages: int) -> list[UserRef]:
        """One request per page of the own account's following list."""
        ...

    def lookup(self, username: str) -> UserRef: ...
    def mark_seen(self, stories: Sequence[StoryItem]) -> None: ...
    def like_story(self, story: StoryItem) -> None: ...
    def user_posts(self, user_pk: int, count: int) -> list[PostItem]: ...
    def like_post(self, post: PostItem) -> None: ...
    def ping(self) -> None: ...
    def relogin(self) -> None:
        """A fresh password login (several requests); raises NeedsHuman on a challenge or 2FA."""
        ...

    def dump_settings(self) -> dict[str, Any]: ...
    @property
    def user_pk(self) -> int | None: ...


# --- parsing raw JSON: a malformed item is skipped, never a traceback ------------------------------------


def _timestamp(value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"bad timestamp {value!r}")
    return datetime.fromtimestamp(int(value), UTC)


def _pk(value: Any) -> str:
    text = str(value)
    if isinstance(value, bool) or not text.isdigit():
        raise ValueError(f"bad pk {value!r}")
    return text


def _user_pk(item: dict[str, Any], fallback: int | None) -> int:
    user = item.get("user")
    if isinstance(user, dict) and user.get("pk") is not None:
        return int(_pk(user["pk"]))
    if fallback is None:
        raise ValueError("item without user")
    return fallback


def parse_story(item: Any, user_pk: int | None = None) -> StoryItem:
    if not isinstance(item, dict):
        raise ValueError("story item is not an object")
    pk = _pk(item.get("pk") or str(item.get("id", "")).split("_")[0])
    return StoryItem(pk, _user_pk(item, user_pk), _timestamp(item.get("taken_at")), item.get("has_liked") is True)


def parse_post(item: Any, user_pk: int | None = None) -> PostItem:
    if not isinstance(item, dict):
        raise ValueError("feed item is not an object")
    pk = _pk(item.get("pk") or str(item.get("id", "")).split("_")[0])
    raw_type = item.get("media_type")
    if raw_type not in MEDIA_TYPES:
        raise ValueError(f"unknown media_type {raw_type!r}")
    media_type = "reel" if raw_type == 2 and item.get("product_type") == "clips" else MEDIA_TYPES[raw_type]
    return PostItem(
        pk,
        _user_pk(item, user_pk),
        _timestamp(item.get("taken_at")),
        media_type,
        item.get("has_liked") is True,
    )


def _items(parse: Callable[[Any, int | None], Any], raw: Any, user_pk: int | None, counter: list[int]) -> list[Any]:
    if not isinstance(raw, list):
        counter[0] += 1
        log.warning("malformed_response", extra={"reason": "items is not a list", "user_pk": user_pk})
        return []
    good = []
    for item in raw:
        try:
            good.append(parse(item, user_pk))
        except (ValueError, TypeError, KeyError) as exc:
            counter[0] += 1
            log.warning("malformed_item", extra={"reason": str(exc)[:200], "user_pk": user_pk})
    return good


# --- the adapter ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """What the adapter needs to build a client; no request is sent to build one."""

    username: str
    settings: dict[str, Any] | None
    password: str | None = None
    totp_seed: str | None = None
    proxy: str | None = None
    api_url: str | None = None  # a local Instagram double instead of instagram.com
    timeout: float = 20.0


class Instagrapi:
    """`Instagram` on top of instagrapi's Client, one HTTP request per call."""

    def __init__(self, conn: Connection, *, challenge_prompt: Callable[[str], str] | None = None) -> None:
        from instagrapi import Client

        from story_liker.transport import redirect_to, with_default_timeout

        self.conn = conn
        self.requests_sent = 0
        self._malformed = [0]
        client = Client(
            proxy=conn.proxy,
            with_challenge_flow=challenge_prompt is not None,
            private_transport="requests" if conn.api_url else "curl",
        )
        if conn.settings:
            client.set_settings(conn.settings)  # restores uuids and device: the fingerprint never rotates
            client.set_retry_config(private_transport="requests" if conn.api_url else "curl")  # not the saved one
        client.username = conn.username
        client.password = conn.password
        self._no_instagrapi_pacing(client)
        if challenge_prompt is not None:
            client.challenge_code_handler = lambda username, choice=None: challenge_prompt(str(choice))
        for session in (client.private, client.public, getattr(client, "graphql", None)):
            if session is None:
                continue
            if conn.api_url:
                redirect_to(session, conn.api_url)
            with_default_timeout(session, conn.timeout)
        send = client._send_private_request

        def counted_send(*args: Any, **kwargs: Any) -> Any:
            self.requests_sent += 1
            return send(*args, **kwargs)

        client._send_private_request = counted_send
        self.client = client

    @staticmethod
    def _no_instagrapi_pacing(client: Any) -> None:
        """We own pacing and backoff: no saved sleep before each request, no retries of 429/5xx."""
        client.request_timeout = 0
        client.delay_range = None
        client.set_retry_config(
            request_timeout=0,
            session_retry_total=0,
            public_request_retries_count=1,  # attempts, not retries: 0 would skip the request
            public_request_retries_timeout=0,
        )

    @property
    def malformed(self) -> int:
        return self._malformed[0]

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
        except ex.FeedbackRequired:
            raise Throttled(
                f"Instagram blocked the action (feedback_required on {what})", kind=ThrottleKind.FEEDBACK_REQUIRED
            ) from None
        except (ex.PleaseWaitFewMinutes, ex.ClientThrottledError, ex.RateLimitError, ex.SentryBlock) as exc:
            raise Throttled(
                f"Instagram throttled us ({type(exc).__name__} on {what})", kind=ThrottleKind.RATE_LIMIT
            ) from None
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
        except (
            ex.BadPassword,
            ex.BadCredentials,
            ex.ReloginAttemptExceeded,
            ex.ProxyAddressIsBlocked,
            ex.ClientLoginRequired,
        ) as exc:
            raise NeedsHuman(f"login failed: {type(exc).__name__}") from None
        except ex.ClientError as exc:
            status = getattr(exc, "code", None)
            if isinstance(status, int) and status >= 500:
                raise NetworkError(f"Instagram answered {status} on {what}") from None
            raise BadResponse(f"{type(exc).__name__} on {what} (status {status})") from None
        except (KeyError, TypeError, ValueError, AttributeError, AssertionError) as exc:
            raise BadResponse(f"unexpected answer from {what}: {type(exc).__name__}") from None

    def _request(
        self, what: str, endpoint: str, data: Any = None, *, params: Any = None, target: str | None = None
    ) -> dict[str, Any]:
        with self._call(what, target=target):
            result = self.client.private_request(endpoint, data, params=params)
        if not isinstance(result, dict):
            raise BadResponse(f"{what}: answer is not a JSON object")
        return result

    # --- reads ---

    def reels_tray(self) -> list[TrayEntry]:
        with self._call("reels_tray"):
            raw = self.client.get_reels_tray_feed("cold_start")
        tray = raw.get("tray") if isinstance(raw, dict) else None
        if not isinstance(tray, list):
            raise BadResponse("reels_tray: no tray list in the answer")
        entries = []
        for reel in tray:
            try:
                user = reel["user"]
                entries.append(
                    TrayEntry(int(_pk(user["pk"])), str(user["username"]).lower(), int(reel["latest_reel_media"]))
                )
            except (KeyError, TypeError, ValueError):
                self._malformed[0] += 1
                log.warning("malformed_item", extra={"reason": "tray entry without user or latest_reel_media"})
        return entries

    def reels_media(self, user_pks: Sequence[int]) -> dict[int, list[StoryItem]]:
        data = self.client.with_default_data({"user_ids": [str(pk) for pk in user_pks], "source": "reel_feed_timeline"})
        raw = self._request("reels_media", "feed/reels_media/", data)
        reels = raw.get("reels")
        if not isinstance(reels, dict):
            raise BadResponse("reels_media: no reels object in the answer")
        found: dict[int, list[StoryItem]] = {}
        for key, reel in reels.items():
            try:
                user_pk = int(_pk(key))
            except ValueError:
                self._malformed[0] += 1
                continue
            items = reel.get("items") if isinstance(reel, dict) else None
            found[user_pk] = _items(parse_story, items, user_pk, self._malformed)
        return found

    def user_stories(self, user_pk: int) -> list[StoryItem]:
        raw = self._request("user_stories", f"feed/user/{user_pk}/story/", target=str(user_pk))
        reel = raw.get("reel")
        if reel is None:
            return []
        return _items(parse_story, reel.get("items") if isinstance(reel, dict) else None, user_pk, self._malformed)

    def following(self, max_pages: int) -> list[UserRef]:
        own = self.user_pk
        users: list[UserRef] = []
        max_id = ""
        for _ in range(max_pages):
            params = {
                "count": 200,
                "search_surface": "follow_list_page",
                "rank_token": self.client.rank_token,
            }
            if max_id:
                params["max_id"] = max_id
            raw = self._request("following", f"friendships/{own}/following/", params=params)
            for user in raw.get("users") or []:
                try:
                    users.append(UserRef(int(_pk(user["pk"])), str(user["username"]).lower(), followed=True))
                except (KeyError, TypeError, ValueError):
                    self._malformed[0] += 1
            max_id = str(raw.get("next_max_id") or "")
            if not max_id:
                break
        return users

    def lookup(self, username: str) -> UserRef:
        raw = self._request("lookup", f"users/{username}/usernameinfo/", target=username)
        try:
            user = raw["user"]
            status = user.get("friendship_status")
            followed = status.get("following") if isinstance(status, dict) else None
            return UserRef(
                int(_pk(user["pk"])), str(user["username"]).lower(), followed, user.get("is_private") is True
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise BadResponse(f"lookup of {username}: no user in the answer") from None

    def user_posts(self, user_pk: int, count: int) -> list[PostItem]:
        params = {"count": count, "rank_token": self.client.rank_token, "ranked_content": "true"}
        raw = self._request("user_posts", f"feed/user/{user_pk}/", params=params, target=str(user_pk))
        return _items(parse_post, raw.get("items"), user_pk, self._malformed)

    # --- writes ---

    def mark_seen(self, stories: Sequence[StoryItem]) -> None:
        with self._call("mark_seen"):
            self.client.media_seen([story.id for story in stories])

    def like_story(self, story: StoryItem) -> None:
        with self._call("like_story"):
            ok = self.client.story_like(story.id, mark_seen=False)  # full id: no media/info lookup
        if not ok:
            raise BadResponse(f"like of story {story.pk} not confirmed")

    def like_post(self, post: PostItem) -> None:
        with self._call("like_post"):
            ok = self.client.media_like(post.id)
        if not ok:
            raise BadResponse(f"like of post {post.pk} not confirmed")

    # --- session ---

    def ping(self) -> None:
        self._request("keepalive", "accounts/current_user/?edit=true")

    def relogin(self) -> None:
        if not self.conn.password:
            raise NeedsHuman("the session expired and no IG_PASSWORD is set: run `story-liker login`")
        code = totp_code(self.conn.totp_seed) if self.conn.totp_seed else ""
        with self._call("login"):
            fresh = not self.conn.settings
            ok = self.client.login(self.conn.username, self.conn.password, relogin=not fresh, verification_code=code)
        self._no_instagrapi_pacing(self.client)  # login() may re-init from settings
        if not ok:
            raise NeedsHuman("Instagram did not accept the login")

    def login_by_sessionid(self, sessionid: str) -> None:
        with self._call("login_by_sessionid"):
            self.client.login_by_sessionid(sessionid)

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
        self._no_instagrapi_pacing(self.client)

    def dump_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = self.client.get_settings()
        return settings


def totp_code(seed: str) -> str:
    from instagrapi.mixins.totp import TOTPMixin

    return str(TOTPMixin.totp_generate_code(seed))
