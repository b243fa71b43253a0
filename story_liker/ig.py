"""The Instagram seam: a small Protocol, plain value objects, pure parsers, and the instagrapi adapter.

This is the only module that imports instagrapi, and it does so lazily (it costs ~0.5 s and 50 MB).
The adapter owns pacing-free, retry-free requests: every call is exactly one HTTP request, with a
timeout, and instagrapi's many exceptions become a handful of ours. The parsers (``parse_*``) are pure
functions of the decoded JSON: they return well-typed values, skip and count malformed items, and raise
nothing but ``BadResponse``.
"""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

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
    has_liked: bool | None  # None: the answer did not say (only an explicit false proves a lost like did not land)

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

    def reels_tray(self) -> list[TrayEntry]: ...
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


# --- parsing raw JSON: a malformed item is skipped and counted, a malformed answer is BadResponse -------------

# A pk is a positive integer of at most 25 digits (media pks have 19 today), as a JSON number or a string of
# ASCII digits. Never a float: a 19-digit pk does not survive one.
_PK = re.compile(r"[1-9][0-9]{0,24}")
_SECONDS = re.compile(r"[0-9]{1,12}")
_USERNAME = re.compile(r"[a-z0-9._]{1,30}")  # Instagram's rule: letters, digits, periods, underscores; 30 at most
_MAX_ID = re.compile(r"[\x21-\x7e]{1,500}")  # an opaque cursor: printable ASCII, no spaces
# Timestamps after 2100 are garbage, not dates (and year 10000 would not even fit in a datetime).
MAX_TIMESTAMP = 4_102_444_800


class Malformed(ValueError):
    """One item of an answer cannot be used: it is skipped, logged and counted, the rest goes on."""


def _pk(value: Any) -> str:
    if isinstance(value, bool):
        raise Malformed(f"bad pk {value!r}")
    if isinstance(value, int):
        if not 0 < value < 10**25:
            raise Malformed("pk out of range")
        return str(value)
    if isinstance(value, str) and _PK.fullmatch(value):
        return value
    raise Malformed(f"bad pk {_short(value)}")


def _user_pk(value: Any) -> int:
    return int(_pk(value))


def _seconds(value: Any) -> int:
    """A Unix timestamp (int, finite float or digit string) between 1970 and 2100."""
    if isinstance(value, bool):
        raise Malformed(f"bad timestamp {value!r}")
    finite = isinstance(value, float) and math.isfinite(value)
    if not (isinstance(value, int) or finite or (isinstance(value, str) and _SECONDS.fullmatch(value))):
        raise Malformed(f"bad timestamp {_short(value)}")
    seconds = int(value)
    if not 0 < seconds <= MAX_TIMESTAMP:
        raise Malformed("timestamp out of range")
    return seconds


def _timestamp(value: Any) -> datetime:
    return datetime.fromtimestamp(_seconds(value), UTC)


def _username(value: Any) -> str:
    if isinstance(value, str) and _USERNAME.fullmatch(value.lower()):
        return value.lower()
    raise Malformed(f"bad username {_short(value)}")


def _short(value: Any) -> str:
    """A bounded description of a bad value for the logs (never a huge or nested dump)."""
    if isinstance(value, str):
        return repr(value[:40])
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number" if isinstance(value, int) and abs(value) >= 10**25 else repr(value)
    return type(value).__name__


def _object(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadResponse(f"{what}: the answer is not a JSON object")
    return raw


def _owner_pk(user: Any) -> int | None:
    """The pk of an embedded user object; None when there is none to check against."""
    if user is None:
        return None
    if not isinstance(user, dict):
        raise Malformed("user is not an object")
    pk = user.get("pk", user.get("pk_id"))
    return None if pk is None else _user_pk(pk)


def _media_ids(item: dict[str, Any], owner: int) -> str:
    """The media pk, checked against the item's ``id`` ("<pk>_<owner pk>") when both are there."""
    raw_id = item.get("id")
    parts: list[str] = []
    if raw_id is not None:
        if not isinstance(raw_id, str | int) or isinstance(raw_id, bool):
            raise Malformed(f"bad id {_short(raw_id)}")
        parts = str(raw_id).split("_") if isinstance(raw_id, str) else [_pk(raw_id)]
        if len(parts) > 2:
            raise Malformed(f"bad id {_short(raw_id)}")
    pk = _pk(item["pk"]) if item.get("pk") is not None else _pk(parts[0] if parts else None)
    if parts and _pk(parts[0]) != pk:
        raise Malformed("id and pk disagree")
    if len(parts) == 2 and _user_pk(parts[1]) != owner:
        raise Malformed("the id names another owner")
    return pk


def _has_liked(item: dict[str, Any]) -> bool | None:
    """``has_liked`` as Instagram said it; anything but a JSON boolean is "not said" (None), never "not liked"."""
    value = item.get("has_liked")
    return value if isinstance(value, bool) else None


def parse_story(item: Any, reel_pk: int) -> StoryItem:
    """One story item of the reel of ``reel_pk``; an item of anybody else is malformed, never the reel's."""
    if not isinstance(item, dict):
        raise Malformed("story item is not an object")
    owner = _owner_pk(item.get("user"))
    if owner is not None and owner != reel_pk:
        raise Malformed("story item of another user than its reel")
    pk = _media_ids(item, reel_pk)
    return StoryItem(pk, reel_pk, _timestamp(item.get("taken_at")), _has_liked(item))


def parse_post(item: Any, feed_pk: int) -> PostItem:
    """One item of a user's feed; a collab post keeps its own author (the ``user`` of the item)."""
    if not isinstance(item, dict):
        raise Malformed("feed item is not an object")
    owner = _owner_pk(item.get("user"))
    owner = feed_pk if owner is None else owner
    pk = _media_ids(item, owner)
    raw_type = item.get("media_type")
    if not isinstance(raw_type, int) or isinstance(raw_type, bool) or raw_type not in MEDIA_TYPES:
        raise Malformed(f"unknown media_type {_short(raw_type)}")
    media_type = "reel" if raw_type == 2 and item.get("product_type") == "clips" else MEDIA_TYPES[raw_type]
    taken_at, liked = _timestamp(item.get("taken_at")), _has_liked(item)
    coauthors = _coauthors(item.get("coauthor_producers"), owner)
    return PostItem(pk, owner, taken_at, media_type, liked, coauthors, _pinned(item, feed_pk))


def _pinned(item: dict[str, Any], feed_pk: int) -> bool:
    """Pinned to the top of ``feed_pk``'s feed (``timeline_pinned_user_ids``; garbage there reads as not pinned)."""
    pinned = item.get("timeline_pinned_user_ids")
    if not isinstance(pinned, list):
        return False
    return any(str(pk) == str(feed_pk) for pk in pinned if isinstance(pk, int | str) and not isinstance(pk, bool))


def _coauthors(raw: Any, author: int) -> tuple[int, ...]:
    """A collab post's other authors (``coauthor_producers``: user objects), in order, without the author. A list
    that names nobody usable makes the post malformed: it would be attributed to the wrong accounts."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise Malformed("coauthor_producers is not a list")
    found: list[int] = []
    for user in raw:
        pk = _owner_pk(user)
        if pk is None:
            raise Malformed("coauthor without a pk")
        if pk != author and pk not in found:
            found.append(pk)
    return tuple(found)


def _items(parse: Callable[[Any, int], Any], raw: Any, owner: int, what: str) -> tuple[list[Any], int]:
    if not isinstance(raw, list):
        log.warning("malformed_response", extra={"reason": f"{what}: items is not a list", "user_pk": owner})
        return [], 1
    good, bad = [], 0
    for item in raw:
        try:
            good.append(parse(item, owner))
        except Malformed as exc:
            bad += 1
            log.warning("malformed_item", extra={"reason": str(exc)[:200], "user_pk": owner})
    return unique(good), bad


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


def _not_a_user_reel(entry: dict[str, Any]) -> str | None:
    """What a tray entry is when it is a normal answer but no user's reel (None: a user's reel)."""
    if entry.get("injected") is not None or entry.get("ad_id") is not None:
        return "ad"
    reel_type = entry.get("reel_type")
    if isinstance(reel_type, str) and reel_type != "user_reel":
        return reel_type[:40]  # mas_reel (hashtag, location), suggested reels, ...
    if entry.get("user") is None:
        if entry.get("owner") is not None:
            return "owner_reel"  # hashtag or location reel
        if entry.get("broadcast_id") is not None or entry.get("broadcast_owner") is not None:
            return "live"
    return None


def _tray_entry(entry: Any) -> TrayEntry:
    if not isinstance(entry, dict):
        raise Malformed("tray entry is not an object")
    if entry.get("reel_type") is not None and not isinstance(entry.get("reel_type"), str):
        raise Malformed("bad reel_type")
    user = entry.get("user")
    if not isinstance(user, dict):
        raise Malformed("tray entry without a user")
    pk = _owner_pk(user)
    if pk is None:
        raise Malformed("tray entry without a user pk")
    return TrayEntry(pk, _username(user.get("username")), _seconds(entry.get("latest_reel_media")))


def parse_tray(raw: Any) -> tuple[list[TrayEntry], int]:
    """``feed/reels_tray/``: the users' reels, and how many entries were malformed."""
    tray = _object(raw, "reels_tray").get("tray")
    if not isinstance(tray, list):
        raise BadResponse("reels_tray: no tray list in the answer")
    entries, bad = [], 0
    for entry in tray:
        kind = _not_a_user_reel(entry) if isinstance(entry, dict) else None
        if kind is not None:
            log.debug("tray_entry_skipped", extra={"kind": kind})
            continue
        try:
            entries.append(_tray_entry(entry))
        except Malformed as exc:
            bad += 1
            log.warning("malformed_item", extra={"reason": f"tray entry: {exc}"[:200]})
    return entries, bad


def _reel_pk(key: Any, reel: dict[str, Any]) -> int:
    """The owner of a reel: its key, which the reel's own user (when given) must not contradict."""
    pk = _user_pk(key)
    owner = _owner_pk(reel.get("user"))
    if owner is not None and owner != pk:
        raise Malformed("reel of another user than its key")
    return pk


def _listed_reel_key(reel: Any) -> Any:
    if not isinstance(reel, dict):
        return None
    if reel.get("id") is not None:
        return reel["id"]
    user = reel.get("user")
    return user.get("pk") if isinstance(user, dict) else None


def parse_reels(raw: Any) -> tuple[dict[int, list[StoryItem]], int]:
    """``feed/reels_media/``: stories by owner pk. A user whose stories are gone is simply missing."""
    answer = _object(raw, "reels_media")
    reels = answer.get("reels")
    listed = answer.get("reels_media")
    if isinstance(reels, dict):
        pairs: list[tuple[Any, Any]] = list(reels.items())
    elif reels is None and isinstance(listed, list):  # the same reels as a list, keyed by their user
        pairs = [(_listed_reel_key(reel), reel) for reel in listed]
    else:
        raise BadResponse("reels_media: no reels object in the answer")
    found: dict[int, list[StoryItem]] = {}
    bad = 0
    for key, reel in pairs:
        try:
            if not isinstance(reel, dict):
                raise Malformed("reel is not an object")
            pk = _reel_pk(key, reel)
        except Malformed as exc:
            bad += 1
            log.warning("malformed_item", extra={"reason": f"reel: {exc}"[:200]})
            continue
        found[pk], skipped = _items(parse_story, reel.get("items"), pk, "reels_media")
        bad += skipped
    return found, bad


def parse_user_story(raw: Any, user_pk: int) -> tuple[list[StoryItem], int]:
    """``feed/user/{pk}/story/``: ``{"reel": null}`` when there is nothing."""
    reel = _object(raw, "user_stories").get("reel")
    if reel is None:
        return [], 0
    if not isinstance(reel, dict):
        raise BadResponse("user_stories: the reel is not an object")
    try:
        owner = _owner_pk(reel.get("user"))
    except Malformed:
        raise BadResponse("user_stories: the reel has a malformed user") from None
    if owner is not None and owner != user_pk:
        raise BadResponse("user_stories: the answer is another user's reel")
    return _items(parse_story, reel.get("items"), user_pk, "user_stories")


def parse_following(raw: Any) -> tuple[list[UserRef], str | None, int]:
    """``friendships/{pk}/following/``: one page of users and the next ``max_id`` (None: the last page)."""
    answer = _object(raw, "following")
    users = answer.get("users")
    if not isinstance(users, list):
        raise BadResponse("following: users is not a list")
    next_max_id = answer.get("next_max_id")
    if next_max_id is None or next_max_id == "":
        cursor = None
    elif isinstance(next_max_id, int) and not isinstance(next_max_id, bool) and 0 <= next_max_id < 10**25:
        cursor = str(next_max_id)
    elif isinstance(next_max_id, str) and _MAX_ID.fullmatch(next_max_id):
        cursor = next_max_id
    else:
        raise BadResponse("following: malformed next_max_id")
    refs, bad = [], 0
    for user in users:
        try:
            if not isinstance(user, dict):
                raise Malformed("user is not an object")
            pk = _owner_pk(user)
            if pk is None:
                raise Malformed("user without a pk")
            refs.append(UserRef(pk, _username(user.get("username")), followed=True))
        except Malformed as exc:
            bad += 1
            log.warning("malformed_item", extra={"reason": f"following: {exc}"[:200]})
    return refs, cursor, bad


def parse_user_info(raw: Any, username: str) -> UserRef:
    """``users/{name}/usernameinfo/``: it carries no friendship status, so ``followed`` is usually None."""
    user = _object(raw, "lookup").get("user")
    try:
        if not isinstance(user, dict):
            raise Malformed("no user")
        pk = _owner_pk(user)
        if pk is None:
            raise Malformed("no pk")
        name = _username(user.get("username"))
    except Malformed as exc:
        raise BadResponse(f"lookup of {username}: {exc}") from None
    if name != username.lower():
        raise BadResponse(f"lookup of {username}: the answer is about another user")
    status = user.get("friendship_status")
    following = status.get("following") if isinstance(status, dict) else None
    return UserRef(pk, name, following if isinstance(following, bool) else None)


def parse_current_user(raw: Any, what: str) -> UserRef:
    """The user a session is (``accounts/current_user/``, ``users/{pk}/info/``: ``{"user": {"pk", "username"}}``)."""
    user = _object(raw, what).get("user")
    try:
        if not isinstance(user, dict):
            raise Malformed("no user")
        pk = _owner_pk(user)
        if pk is None:
            raise Malformed("no pk")
        return UserRef(pk, _username(user.get("username")))
    except Malformed as exc:
        raise BadResponse(f"{what}: {exc}") from None


def parse_user_feed(raw: Any, user_pk: int) -> tuple[list[PostItem], str | None, int]:
    """``feed/user/{pk}/``: the newest posts (pinned ones first, whatever their age), the ``max_id`` of the next
    page (None: no more, or an unusable cursor, counted as malformed) and how many items were malformed."""
    answer = _object(raw, "user_posts")
    items = answer.get("items")
    if not isinstance(items, list):
        raise BadResponse("user_posts: items is not a list")
    posts, bad = _items(parse_post, items, user_pk, "user_posts")
    cursor = None
    if answer.get("more_available") is not False:
        try:
            cursor = _cursor(answer.get("next_max_id"))
        except Malformed as exc:
            bad += 1
            log.warning("malformed_item", extra={"reason": f"user_posts: {exc}"[:200], "user_pk": user_pk})
    return posts, cursor, bad


# What marks a home-feed media as an ad (dilame ``timeline.feed.response.ts``: ``injected``, ``ad_id``, ``ad_action``,
# ``dr_ad_type``, ``ad_link_type``, ``ad_metadata``, ``ad_header_style``; the PHP ``FeedItem``: ``ad4ad``,
# ``ad_link_type`` on the entry itself). Paid partnerships (``sponsor_tags``) are organic posts and stay.
_AD_MARKERS = (
    "injected",
    "ad_id",
    "ad_action",
    "dr_ad_type",
    "ad_link_type",
    "ad_metadata",
    "ad_header_style",
    "ad4ad",
)
_MEDIA_KEYS = ("pk", "id", "media_type", "taken_at")  # an entry of an ``items`` answer is the media itself
# At "You're all caught up" the answer's cursor leads into suggested posts, and the followed accounts' older posts
# go on in the demarcator's ``past_posts`` group, with a cursor of their own (Barinsta FeedService, Swiftagram).
_RECS_CURSOR = "feed_recs_head_load"
_CARDS = ("suggested_users", "stories_netego", "clips_netego", "bump", "explore_story", "end_of_feed_demarcator")


def _is_ad(item: dict[str, Any]) -> bool:
    return any(item.get(key) is not None for key in _AD_MARKERS)


def _cursor(value: Any) -> str | None:
    """An opaque ``next_max_id``: None when there is none, Malformed when it is unusable."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**25:
        return str(value)
    if isinstance(value, str) and _MAX_ID.fullmatch(value):
        return value
    raise Malformed(f"bad next_max_id {_short(value)}")


def _timeline_post(media: Any) -> PostItem:
    if not isinstance(media, dict):
        raise Malformed("media_or_ad is not an object")
    author = _owner_pk(media.get("user"))
    if author is None:
        raise Malformed("timeline post without an author")
    return parse_post(media, author)


def _card_kind(entry: dict[str, Any]) -> str:
    """What a home-feed entry that is no post is, for the logs: a known card, else its first key."""
    known = next((key for key in _CARDS if entry.get(key) is not None), None)
    return known or str(next(iter(entry), "empty"))[:40]


def _feed_entries(entries: list[Any], *, top: bool) -> tuple[list[PostItem], str | None, int]:
    """The organic posts among home-feed entries, the ``past_posts`` cursor of an end-of-feed demarcator among them
    (only at the top: a demarcator inside a demarcator is a card like any other) and how many were malformed."""
    posts: list[PostItem] = []
    past: str | None = None
    bad = 0
    for entry in entries:
        try:
            if not isinstance(entry, dict):
                raise Malformed("feed entry is not an object")
            media = entry.get("media_or_ad")
            card = any(entry.get(key) is not None for key in _CARDS)
            if media is None and not card and any(key in entry for key in _MEDIA_KEYS):
                media = entry
            if media is not None:
                if isinstance(media, dict) and (_is_ad(media) or _is_ad(entry)):
                    log.debug("timeline_entry_skipped", extra={"kind": "ad"})
                    continue
                posts.append(_timeline_post(media))
                continue
            if top and isinstance(entry.get("end_of_feed_demarcator"), dict):
                older, past, skipped = _past_posts(entry["end_of_feed_demarcator"])
                posts += older
                bad += skipped
                continue
            log.debug("timeline_entry_skipped", extra={"kind": _card_kind(entry)})
        except Malformed as exc:
            bad += 1
            log.warning("malformed_item", extra={"reason": f"timeline: {exc}"[:200]})
    return posts, past, bad


def _past_posts(demarcator: dict[str, Any]) -> tuple[list[PostItem], str | None, int]:
    """``end_of_feed_demarcator.group_set.groups[id="past_posts"]``: the first older posts, the cursor to the rest."""
    group_set = demarcator.get("group_set")
    groups = group_set.get("groups") if isinstance(group_set, dict) else None
    for group in groups if isinstance(groups, list) else []:
        if not isinstance(group, dict) or group.get("id") != "past_posts":
            continue
        items = group.get("feed_items")
        posts: list[PostItem] = []
        bad = 0
        if isinstance(items, list):
            posts, _, bad = _feed_entries(items, top=False)
        elif items is not None:
            bad += 1
            log.warning("malformed_item", extra={"reason": "timeline: past_posts feed_items is not a list"})
        try:
            return posts, _cursor(group.get("next_max_id")), bad
        except Malformed as exc:
            log.warning("malformed_item", extra={"reason": f"timeline: past_posts {exc}"[:200]})
            return posts, None, bad + 1
    return [], None, 0


def parse_timeline(raw: Any) -> tuple[list[PostItem], str | None, int]:
    """``feed/timeline/``: the organic posts of one page of the home feed (ads, suggested users, story and reel
    cards, end-of-feed markers left out; suggested posts of accounts not followed kept: they are posts), the
    ``max_id`` of the next page (None: no more) and how many items were malformed."""
    answer = _object(raw, "timeline")
    entries = answer.get("feed_items")
    if not isinstance(entries, list):
        entries = answer.get("items")  # older answers: a flat list of media
    if not isinstance(entries, list):
        raise BadResponse("timeline: no feed_items list in the answer")
    posts, past, bad = _feed_entries(entries, top=True)
    posts = unique(posts)
    cursor = None
    if answer.get("more_available") is not False:
        raw_cursor = answer.get("next_max_id")
        try:
            cursor = past if raw_cursor == _RECS_CURSOR else _cursor(raw_cursor)
        except Malformed as exc:
            bad += 1
            log.warning("malformed_response", extra={"reason": f"timeline: {exc}"[:200]})
    return posts, cursor, bad


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

        from story_liker.transport import FreshConnections, count_requests, redirect_to, with_default_timeout

        self.conn = conn
        self.requests_sent = 0
        self._malformed = 0
        self._started_ms = str(int(time.time() * 1000))  # the "app" starts with the run
        self._timeline_load = ""  # request_id of the home-feed load being paged (the first page makes a new one)
        self._timeline_seen: list[str] = []  # ids of the posts of that load's pages so far (``seen_posts``)
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
        if challenge_prompt is not None:
            client.challenge_code_handler = lambda username, choice=None: challenge_prompt(str(choice))
        for session in (client.private, client.public, client.graphql):
            if conn.api_url:
                redirect_to(session, conn.api_url)
            with_default_timeout(session, conn.timeout)
            count_requests(session, self._count)
        # Likes go out on a connection of their own: libcurl re-sends a request on a reused connection that dies
        # before the answer (story_liker.transport). Looked up per request: survives set_settings() and init().
        self._fresh_connection = FreshConnections(client.private)
        _one_request_per_call(client, resolve_challenges=challenge_prompt is not None)
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

    def reels_tray(self) -> list[TrayEntry]:
        with self._call("reels_tray"):
            raw = self.client.get_reels_tray_feed("cold_start")  # builds the app's body, one private_request
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
    # connection, closed after the answer, so libcurl cannot send it twice (story_liker.transport) ---

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
