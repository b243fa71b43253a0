"""What a pass's requests say about its timing, from what was sent to Instagram only: pure functions of a list of
events (when a request was sent, its kind, its body), for the pacing bench (bench/pacing.py).

The bodies:
- a read (``reels_tray``, ``reels_media``, ``user_stories``, ``user_posts``, ``timeline_page``): a `Read`, the
  users it asked about (the tray: the users it listed) and the items its answer held;
- a seen report (``mark_seen``): the `Seen` items in the order sent, each with its ``taken_at`` and ``seen_at``
  (unix seconds, as the request carries them);
- a like (``like_story``, ``like_post``): the item's pk;
- anything else: None.

On screen, for a story: a seen report says when the watching of each of its items began (``seen_at``); an item's
watching ends when the next item's in that report begins, and the last item's after its watch time: the video's
duration up to VIDEO_WATCH_CAP when the answer that brought the item gave one, else PHOTO_WATCH (the top of a
photo's 5-7 s). A like of item k is on screen when start_k + 1 s <= like < end_k, in some report that has the item.

On screen, for a post: there is no seen report for posts, so the page is the evidence: the read sent last before
the like (a profile page or a home-feed page) showed the post, and the like came at least 1 s and at most
POST_DWELL after that read: the viewer is still on the page that shows it.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

PHOTO_WATCH = 7.0  # seconds a photo is watched at most (the viewer's 5-7 s)
VIDEO_WATCH_CAP = 60.0  # a video is watched for its duration, up to this (a story video is at most 60 s)
MIN_ON_SCREEN = 1.0  # a like comes after at least this much of its item
POST_DWELL = timedelta(minutes=2)  # a post like this long after the page that showed it: the viewer moved on
READS = ("reels_tray", "reels_media", "user_stories", "user_posts", "timeline_page")
STORY_READS = ("reels_media", "user_stories")
LIKES = ("like_story", "like_post")


class Item(NamedTuple):
    """An item an answer held."""

    pk: str
    taken_at: int  # unix seconds
    video_duration: float | None = None  # seconds; None: a photo (or the answer did not say)


class Read(NamedTuple):
    users: tuple[int, ...]  # the user pks asked about (the tray: listed)
    items: tuple[Item, ...] = ()


class Seen(NamedTuple):
    """One item of a seen report, as sent."""

    pk: str
    taken_at: int  # unix seconds
    seen_at: int


class Event(NamedTuple):
    at: datetime
    kind: str
    body: Any


def watch_time(video_duration: float | None) -> float:
    """How long a viewer watches an item: a video its duration (capped), a photo PHOTO_WATCH."""
    if video_duration is None or video_duration <= 0:
        return PHOTO_WATCH
    return min(float(video_duration), VIDEO_WATCH_CAP)


def events_of(calls: Iterable[Any]) -> list[Event]:
    """The fake's request log (tests.fake.Call: name, arg, at, items) as events."""

    def item(x: Any) -> Item:
        duration = getattr(x, "video_duration", None)
        return Item(str(x.pk), int(x.taken_at.timestamp()), float(duration) if duration else None)

    events: list[Event] = []
    for call in calls:
        body: Any = None
        if call.name == "mark_seen":
            body = tuple(
                Seen(str(s.pk), int(s.taken_at.timestamp()), int(at))
                for s, (_, at) in zip(call.items, call.arg, strict=True)
            )
        elif call.name in LIKES:
            body = str(call.arg)
        elif call.name == "reels_tray":
            body = Read(tuple(e.user_pk for e in call.items))
        elif call.name == "reels_media":
            body = Read(tuple(call.arg), tuple(map(item, call.items)))
        elif call.name in ("user_stories", "user_posts"):
            user = call.arg[0] if isinstance(call.arg, tuple) else call.arg
            body = Read((int(user),), tuple(map(item, call.items)))
        elif call.name == "timeline_page":
            body = Read((), tuple(map(item, call.items)))
        events.append(Event(call.at, call.name, body))
    return events


# --- bursts -------------------------------------------------------------------------------------------------


def max_in_window(times: Sequence[datetime], window: timedelta) -> int:
    """The most of these moments in any half-open window [t, t + window)."""
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, t + window) - i for i, t in enumerate(ordered)), default=0)


def like_times(events: Iterable[Event], kind: str) -> list[datetime]:
    return [e.at for e in events if e.kind == kind]


# --- on screen ----------------------------------------------------------------------------------------------


@dataclass
class OnScreen:
    likes: int = 0
    on_screen: int = 0
    never_shown: int = 0  # a story in no seen report; a post the page read last before the like did not show
    early: int = 0  # before MIN_ON_SCREEN of it
    late: int = 0  # after its watching ended (a post: after POST_DWELL)

    @property
    def share(self) -> float | None:
        return self.on_screen / self.likes if self.likes else None


def durations(events: Iterable[Event]) -> dict[str, float | None]:
    """Each item's video duration as the latest answer that held it gave it."""
    found: dict[str, float | None] = {}
    for e in events:
        if e.kind in READS and e.kind != "reels_tray":
            for x in e.body.items:
                found[x.pk] = x.video_duration
    return found


def watching(events: Sequence[Event]) -> dict[str, list[tuple[float, float]]]:
    """Per story pk, the watching [start, end) (unix seconds) each seen report that had it claims."""
    known = durations(events)
    spans: dict[str, list[tuple[float, float]]] = {}
    for e in events:
        if e.kind != "mark_seen":
            continue
        report: tuple[Seen, ...] = e.body
        for k, seen in enumerate(report):
            end = report[k + 1].seen_at if k + 1 < len(report) else seen.seen_at + watch_time(known.get(seen.pk))
            spans.setdefault(seen.pk, []).append((float(seen.seen_at), float(end)))
    return spans


def stories_on_screen(events: Sequence[Event]) -> OnScreen:
    """Story likes sent while their item was on screen, by the seen reports (see the module's docstring)."""
    spans = watching(events)
    result = OnScreen()
    for e in events:
        if e.kind != "like_story":
            continue
        result.likes += 1
        at, claimed = e.at.timestamp(), spans.get(e.body, [])
        if not claimed:
            result.never_shown += 1
        elif any(start + MIN_ON_SCREEN <= at < end for start, end in claimed):
            result.on_screen += 1
        elif any(at < start + MIN_ON_SCREEN for start, _ in claimed):
            result.early += 1
        else:
            result.late += 1
    return result


def posts_on_screen(events: Sequence[Event], dwell: timedelta = POST_DWELL) -> OnScreen:
    """Post likes sent while the page read last before them showed the post (see the module's docstring)."""
    result = OnScreen()
    page: Event | None = None
    for e in events:
        if e.kind in ("user_posts", "timeline_page"):
            page = e
        if e.kind != "like_post":
            continue
        result.likes += 1
        if page is None or e.body not in {x.pk for x in page.body.items}:
            result.never_shown += 1
        elif e.at - page.at < timedelta(seconds=MIN_ON_SCREEN):
            result.early += 1
        elif e.at - page.at > dwell:
            result.late += 1
        else:
            result.on_screen += 1
    return result


# --- seen reports -------------------------------------------------------------------------------------------

FUTURE = "seen_at in the future when sent"
BEFORE_TAKEN = "seen_at before taken_at"
NOT_RISING = "seen_at not rising"
BEFORE_FETCH = "seen before its reel was fetched"


@dataclass
class SeenCheck:
    reports: int = 0
    items: int = 0
    inconsistent: int = 0  # reports with at least one of the faults
    faults: dict[str, int] = field(default_factory=dict)  # items, per fault


def seen_faults(events: Sequence[Event]) -> SeenCheck:
    """Seen reports whose times no watching could give: an item's seen_at after the moment the report was sent,
    before the item's taken_at, not after the item before it in the report (each is watched for 3 s or more), or
    before the read that last brought the item, sent before the report (none such: never fetched)."""
    fetched: dict[str, datetime] = {}
    check = SeenCheck()
    for e in events:
        if e.kind in STORY_READS:
            for x in e.body.items:
                fetched[x.pk] = e.at
        if e.kind != "mark_seen":
            continue
        report: tuple[Seen, ...] = e.body
        check.reports += 1
        check.items += len(report)
        faults: Counter[str] = Counter()
        sent = e.at.timestamp()
        for k, seen in enumerate(report):
            if seen.seen_at > sent:
                faults[FUTURE] += 1
            if seen.seen_at < seen.taken_at:
                faults[BEFORE_TAKEN] += 1
            if k and seen.seen_at <= report[k - 1].seen_at:
                faults[NOT_RISING] += 1
            got = fetched.get(seen.pk)
            if got is None or seen.seen_at < int(got.timestamp()):
                faults[BEFORE_FETCH] += 1
        for why, n in faults.items():
            check.faults[why] = check.faults.get(why, 0) + n
        check.inconsistent += bool(faults)
    return check


# --- passes -------------------------------------------------------------------------------------------------


class Span(NamedTuple):
    started: datetime
    ended: datetime


@dataclass(frozen=True)
class PassFigures:
    minutes: float  # start to end
    requests: int
    likes: int
    watch_s: float  # the watch time (watch_time) of what it liked
    tray_only: bool = False  # its one request was the tray


def per_pass(events: Sequence[Event], passes: Sequence[Span], like_kind: str) -> list[PassFigures]:
    """Each pass's length, requests, likes and the watch time of what it liked (items of the answers its reads
    or earlier ones brought; a post: PHOTO_WATCH)."""
    known = durations(events)
    times = [e.at for e in events]
    figures: list[PassFigures] = []
    for span in passes:
        low, high = bisect.bisect_left(times, span.started), bisect.bisect_right(times, span.ended)
        mine = events[low:high]
        liked = [e.body for e in mine if e.kind == like_kind]
        watch = sum(watch_time(known.get(pk)) for pk in liked)
        minutes = (span.ended - span.started) / timedelta(minutes=1)
        only_tray = [e.kind for e in mine] == ["reels_tray"]
        figures.append(PassFigures(minutes, len(mine), len(liked), watch, only_tray))
    return figures


def per_day(events: Iterable[Event], start: datetime, days: int) -> dict[str, list[int]]:
    """Requests per kind per day from ``start`` (days 0 .. days - 1; later ones left out)."""
    counts: dict[str, list[int]] = {}
    for e in events:
        day = int((e.at - start) / timedelta(days=1))
        if 0 <= day < days:
            counts.setdefault(e.kind, [0] * days)[day] += 1
    return counts


# --- coverage -----------------------------------------------------------------------------------------------


class ActiveClock:
    """Seconds of active time (inside ``ranges``: minutes after UTC midnight, [start, end), a range may wrap)
    since ``start``, at a minute's resolution: the bench's ACTIVE_HOURS are UTC."""

    def __init__(self, start: datetime, days: int, ranges: Sequence[tuple[int, int]] | None) -> None:
        self.start = start.astimezone(UTC)
        self.active = [_active(start + timedelta(minutes=m), ranges) for m in range(days * 1440 + 1)]
        self.before = [0]
        for on in self.active:
            self.before.append(self.before[-1] + on)

    def __call__(self, at: datetime) -> float:
        offset = (at - self.start).total_seconds()
        minute = min(max(int(offset // 60), 0), len(self.active) - 1)
        inside = min(max(offset - minute * 60, 0.0), 60.0)
        return self.before[minute] * 60.0 + (inside if self.active[minute] else 0.0)


def _active(at: datetime, ranges: Sequence[tuple[int, int]] | None) -> bool:
    if not ranges:
        return True
    minute = at.hour * 60 + at.minute
    return any(a <= minute < b if a < b else minute >= a or minute < b for a, b in ranges)


def checked_at(events: Iterable[Event]) -> dict[int, list[datetime]]:
    """When each user's stories were checked: the tray listed it (its newest story's time is known), or a reels
    read asked for it."""
    found: dict[int, list[datetime]] = {}
    for e in events:
        if e.kind in ("reels_tray", *STORY_READS):
            for user in e.body.users:
                found.setdefault(user, []).append(e.at)
    return found


def longest_unchecked(
    events: Iterable[Event], users: Iterable[int], start: datetime, end: datetime, active: Callable[[datetime], float]
) -> dict[int, float]:
    """Per user, the longest active time (hours) from ``start`` to ``end`` without a check of its stories."""
    checks = checked_at(events)
    worst: dict[int, float] = {}
    for user in users:
        times = [start, *sorted(t for t in checks.get(user, []) if start <= t <= end), end]
        worst[user] = max(active(b) - active(a) for a, b in itertools.pairwise(times)) / 3600
    return worst


def missed_rechecks(
    events: Iterable[Event],
    users: Iterable[int],
    passes: Sequence[Span],
    recheck_h: float,
    active: Callable[[datetime], float],
) -> dict[int, int]:
    """Per user, the passes at whose start its last check was older than ``recheck_h`` hours of active time
    and that did not check it either: what the planner owes at every pass that contacted Instagram (a pass with
    no like budget sends nothing and owes nothing)."""
    checks = checked_at(events)
    missed: dict[int, int] = {}
    for user in users:
        times = sorted(checks.get(user, []))
        missed[user] = 0
        for span in passes:
            before = bisect.bisect_left(times, span.started)
            during = bisect.bisect_right(times, span.ended) > before
            fresh = before and active(span.started) - active(times[before - 1]) <= recheck_h * 3600
            if before and not fresh and not during:
                missed[user] += 1
    return missed


def liked_in_time(
    likes: Mapping[str, datetime], posts: Iterable[tuple[str, datetime]], max_age: timedelta, end: datetime
) -> tuple[int, int]:
    """(liked while younger than ``max_age``, eligible): the posts whose age limit passed before ``end``."""
    eligible = [(pk, taken) for pk, taken in posts if taken + max_age <= end]
    return sum(1 for pk, taken in eligible if pk in likes and likes[pk] < taken + max_age), len(eligible)
