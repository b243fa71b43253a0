"""The Instagram seam's values and Protocols: what a pass, a login and the planner know of Instagram.

Plain frozen values and two small Protocols; no parsing, no HTTP, no instagrapi. ``planning`` and the jobs import
only this; the adapter (``ig.adapter``) implements the Protocols with instagrapi, the tests with a fake.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

log = logging.getLogger(__name__)


# How the app asks for the story tray: ``cold_start`` as it opens, ``pull_to_refresh`` while it is open (the two
# values instagrapi and the other clients know)
TrayReason = Literal["cold_start", "pull_to_refresh"]


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
    has_liked: bool | None  # None: the answer did not say (only an explicit false proves a lost like did not land)
    video_duration: float | None = None  # seconds, for a video (None: a photo, or the answer did not say)

    @property
    def id(self) -> str:
        return f"{self.pk}_{self.user_pk}"


@dataclass(frozen=True)
class PostItem:
    pk: str
    user_pk: int
    taken_at: datetime
    media_type: str  # photo, video, album or reel
    has_liked: bool | None  # None: the answer did not say
    coauthors: tuple[int, ...] = ()  # a collab post's other authors (``coauthor_producers``), by user pk
    pinned: bool = False  # pinned to the top of the feed it was read from (whatever its age)

    @property
    def id(self) -> str:
        return f"{self.pk}_{self.user_pk}"


@dataclass(frozen=True)
class UserRef:
    user_pk: int
    username: str
    followed: bool | None = None


class Instagram(Protocol):
    """What a pass needs from Instagram. Each method is one request unless its docstring says otherwise."""

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far, every one counted (login steps and public ones included)."""
        ...

    @property
    def malformed(self) -> int:
        """Items skipped inside the adapter as malformed (answers that raise BadResponse are not counted)."""
        ...

    def reels_tray(self, reason: TrayReason) -> list[TrayEntry]:
        """The story tray, asked with the app's ``reason`` (planning.tray_reason)."""
        ...

    def reels_media(self, user_pks: Sequence[int]) -> dict[int, list[StoryItem]]: ...
    def user_stories(self, user_pk: int) -> list[StoryItem]: ...
    def following_page(self, max_id: str | None) -> tuple[list[UserRef], str | None]:
        """One page of the own account's following list and the ``max_id`` of the next (None: the last page)."""
        ...

    def lookup(self, username: str) -> UserRef: ...
    def mark_seen(self, stories: Sequence[StoryItem], seen_at: Sequence[int]) -> None:
        """One seen request for these stories, each watched at the matching unix time."""
        ...

    def like_story(self, story: StoryItem) -> None: ...
    def user_posts(self, user_pk: int, count: int, max_id: str | None = None) -> tuple[list[PostItem], str | None]:
        """One page of a user's own feed (pinned posts first on the first page) and the ``max_id`` of the next
        (None: no more)."""
        ...

    def timeline_page(self, max_id: str | None) -> tuple[list[PostItem], str | None]:
        """One page of the home feed (``feed/timeline/``): its organic posts (ads, suggested users, end-of-feed
        markers and other non-post entries left out, not counted as malformed) and the ``max_id`` of the next
        page (None: no more)."""
        ...

    def like_post(self, post: PostItem) -> None: ...
    def ping(self) -> UserRef:
        """One light authenticated read (``accounts/current_user/``): who the session is, as Instagram says."""
        ...

    def relogin(self) -> None:
        """A fresh password login (several requests); raises NeedsHuman on a challenge or 2FA."""
        ...

    def dump_settings(self) -> dict[str, Any]: ...
    @property
    def user_pk(self) -> int | None: ...


class Login(Protocol):
    """What `login` needs: one kind of login each, the light request that proves a session, and the result.
    The adapter implements it with instagrapi; the tests with a fake. Every method sends its own requests."""

    @property
    def requests_sent(self) -> int: ...
    @property
    def user_pk(self) -> int | None: ...
    def ping(self) -> UserRef: ...
    def relogin(self) -> None: ...
    def login_by_sessionid(self, sessionid: str) -> UserRef: ...
    def login_with_code(self, code_prompt: Callable[[], str]) -> None: ...
    def dump_settings(self) -> dict[str, Any]: ...


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
    # `login` at a terminal: asks the person for the code of a challenge (and resolves it); None: a challenge
    # needs a human (NeedsHuman), as for every unattended run
    challenge_prompt: Callable[[str], str] | None = field(default=None, compare=False)


class _HasPk(Protocol):
    @property
    def pk(self) -> str: ...


P = TypeVar("P", bound=_HasPk)


def unique(items: Sequence[P]) -> list[P]:
    """The items in order, each pk once (the first): an answer may list one item twice, and one item is one like."""
    seen: set[str] = set()
    kept: list[P] = []
    for item in items:
        if item.pk not in seen:
            seen.add(item.pk)
            kept.append(item)
    if len(kept) < len(items):
        log.debug("duplicate_items_dropped", extra={"dropped": len(items) - len(kept)})
    return kept


class Client(Instagram, Login, Protocol):
    """What a connection gives (``Deps.connect``): the passes use its `Instagram` side, `login` its `Login` side."""
