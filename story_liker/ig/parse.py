"""Pure parsers of Instagram's answers: decoded JSON in, well-typed values out.

A malformed item is skipped, logged and counted; a malformed answer raises ``BadResponse``, and nothing else is
ever raised. Shapes follow real captures (README of the tests' double): ids as numbers or strings beyond 2^53,
minimal embedded users, ads and cards among the home feed's entries, items listed twice.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from story_liker.errors import BadResponse
from story_liker.ig.types import PostItem, StoryItem, TrayEntry, UserRef, unique

log = logging.getLogger(__name__)

MEDIA_TYPES = {1: "photo", 2: "video", 8: "album"}


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
    return StoryItem(pk, reel_pk, _timestamp(item.get("taken_at")), _has_liked(item), _video_duration(item))


def _video_duration(item: dict[str, Any]) -> float | None:
    """A video's ``video_duration`` in seconds; None for a photo or a value that is no positive finite number (the
    item stays likeable: how long it is watched falls back to a photo's time)."""
    value = item.get("video_duration")
    if item.get("media_type") != 2 or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 < value < 3600 else None


def parse_post(item: Any, feed_pk: int | None) -> PostItem:
    """One item of a user's feed (``feed_pk``; None: the home feed, which pins nothing); a collab post keeps its
    own author (the ``user`` of the item)."""
    if not isinstance(item, dict):
        raise Malformed("feed item is not an object")
    owner = _owner_pk(item.get("user"))
    if owner is None:
        if feed_pk is None:
            raise Malformed("timeline post without an author")
        owner = feed_pk
    pk = _media_ids(item, owner)
    raw_type = item.get("media_type")
    if not isinstance(raw_type, int) or isinstance(raw_type, bool) or raw_type not in MEDIA_TYPES:
        raise Malformed(f"unknown media_type {_short(raw_type)}")
    media_type = "reel" if raw_type == 2 and item.get("product_type") == "clips" else MEDIA_TYPES[raw_type]
    taken_at, liked = _timestamp(item.get("taken_at")), _has_liked(item)
    coauthors = _coauthors(item.get("coauthor_producers"), owner)
    pinned = feed_pk is not None and _pinned(item, feed_pk)  # an author's pin is for their profile, not the home feed
    return PostItem(pk, owner, taken_at, media_type, liked, coauthors, pinned)


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
    return parse_post(media, None)


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
