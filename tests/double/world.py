"""The double's world: its users, stories and posts, the tray's and the home feed's entries that are no
followed user's, and the seen requests it was sent."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tests.double.common import STORY_TTL, shortcode

if TYPE_CHECKING:
    from tests.double.state import DoubleState


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
    owner: DoubleState = field(repr=False)  # the double: whether it is liked, seen
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
    def video_duration(self) -> float | None:
        """A video's length in seconds (a segment of a long one is 15 s); None for a photo."""
        if self.media_type != 2:
            return None
        return 15.0 if self.segment_group else 9.5

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
    owner: DoubleState = field(repr=False)  # the double: whether it is liked, seen
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
