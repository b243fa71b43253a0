"""Pure planning: which targets a story or post pass reads and how, where a target's marker moves, how long a
viewer watches a story and when it likes it, what the seen report says. Functions of (targets, what Instagram
said, now, settings, rng); nothing here sends, sleeps or reads the clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, TypeVar

from story_liker.ig.types import PostItem, StoryItem, TrayReason
from story_liker.ratelimit import unit_hash

if TYPE_CHECKING:  # the rows' type only: the planner needs no database (nor SQLModel) to decide
    from story_liker.models import Target

RECHECK_UNAVAILABLE = timedelta(days=1)  # a private (not followed) or missing account is looked at daily
RETRY_FIRST = timedelta(hours=1)  # a target whose lookup or read failed is tried again after this, doubling to a day
FOLLOWING_REFRESH = timedelta(days=1)  # the own following list is walked again after this
APP_CLOSED_AFTER = timedelta(minutes=30)  # no request for this long: the app would have been closed (tray_reason)


class Skip(StrEnum):
    """Why a target was not checked for stories this pass (shown by `status`)."""

    UNRESOLVED = "unresolved"  # no user pk yet (its lookup failed: retried as retry_at says)
    PRIVATE = "private_not_followed"  # rechecked daily
    NOT_FOUND = "not_found"  # rechecked daily
    FAILING = "failing"  # its last lookup or read failed: retried as retry_at says
    SAME_USER = "same_user"  # another target (listed first) is the same Instagram user: read once, for that one


@dataclass(frozen=True)
class ReadPlan:
    """How one story pass learns what is new. ``settled``: in the tray with nothing newer than the marker,
    checked without a request of its own."""

    batches: list[list[int]] = field(default_factory=list)  # feed/reels_media, user pks per request
    # targets not followed (or not known to be) in the batches: a batch answer without them proves nothing (no
    # stories, private, gone); of those, ``per_user`` (the due ones, oldest-checked first) get their own read then
    unproven: frozenset[int] = frozenset()
    per_user: list[int] = field(default_factory=list)  # feed/user/{pk}/story/, one request each if left out
    settled: list[int] = field(default_factory=list)
    skipped: dict[int, Skip] = field(default_factory=dict)  # keyed by target id

    @property
    def requests(self) -> int:
        """The batches; a due target not followed that a batch answer leaves out costs one more."""
        return len(self.batches)


def is_due(checked_at: datetime | None, now: datetime, interval: timedelta) -> bool:
    return checked_at is None or now - checked_at >= interval


class Walked(Protocol):
    """When the own following list was last walked, and when a walk last failed (the Account row)."""

    @property
    def following_synced_at(self) -> datetime | None: ...
    @property
    def following_failed_at(self) -> datetime | None: ...


def walk_due(account: Walked, now: datetime) -> bool:
    """The following list is walked once a day; a walk that failed is tried again after RETRY_FIRST, not by every
    pass (a list that keeps failing costs one request an hour, and the passes go on without it)."""
    if not is_due(account.following_synced_at, now, FOLLOWING_REFRESH):
        return False
    failed = account.following_failed_at
    return failed is None or not (timedelta(0) <= now - failed < RETRY_FIRST)


def retry_at(failures: int, last_error_at: datetime | None) -> datetime | None:
    """When a target whose lookups or reads failed ``failures`` times in a row may be asked again: an hour after
    the first failure, doubling with each, at most a day (None: nothing failing). One target's failure is that
    target's: the others go on, and it is not asked again every pass."""
    if not failures or last_error_at is None:
        return None
    return last_error_at + min(RETRY_FIRST * (1 << min(failures - 1, 10)), RECHECK_UNAVAILABLE)


def unavailable_skip(target: Target, now: datetime, reading: str | None = None) -> Skip | None:
    """A target that was private-not-followed or missing is left alone until its daily recheck; one whose last
    lookup, or last ``reading`` ("stories", "posts"), failed until its retry (retry_at). ``reading`` None: any."""
    if target.unavailable is not None and target.last_error_at and now - target.last_error_at < RECHECK_UNAVAILABLE:
        return Skip.PRIVATE if target.unavailable == "private" else Skip.NOT_FOUND
    if reading is not None and target.failing not in (reading, "lookup"):
        return None
    due = retry_at(target.failures, target.last_error_at)
    if due is not None and now < due:
        return Skip.FAILING
    return None


def tray_reason(last_request: datetime | None, now: datetime) -> TrayReason:
    """How the app would ask for the story tray now: ``cold_start`` when it would have been closed, that is when this
    account sent no request within APP_CLOSED_AFTER (or never, or the clock went back past it); ``pull_to_refresh``
    while it would still be open (a pass right after another, or after this run's login). Hourly timers start
    cold, as a person opening the app does."""
    if last_request is None or not timedelta(0) <= now - last_request < APP_CLOSED_AFTER:
        return "cold_start"
    return "pull_to_refresh"


def plan_story_reads(
    targets: Sequence[Target],
    tray: Mapping[int, int],
    now: datetime,
    *,
    recheck: timedelta,
    batch_size: int,
    horizon: timedelta = timedelta(0),
) -> ReadPlan:
    """Every enabled target is checked at least every ``recheck``, whatever the tray says.

    - In the tray with a ``latest_reel_media`` newer than the marker: fetched in a ``reels_media`` batch.
    - In the tray with nothing newer: settled for free.
    - Missing from the tray (it is lossy: first page only, users drop out, muted accounts never appear; and a
      target not followed, or whose follow state is unknown, is never in it): fetched in a batch once due (never
      checked, or not within ``recheck``); the free slots of the batches sent anyway take the next ones,
      oldest-checked first, so the due ones come in small waves. ``reels_media`` answers for public accounts one
      does not follow as for followed ones; a private one, one that is gone, or one with no story now is simply
      left out of the answer. So a due target not followed that an answer leaves out is read on its own
      (``per_user``: no stories, private or gone); a spare one left out stays unchecked until it is due.
    - Private-not-followed or missing accounts: rechecked daily.
    """
    fresh: list[int] = []
    due: list[Target] = []
    spare: list[Target] = []
    settled: list[int] = []
    skipped: dict[int, Skip] = {}
    planned: set[int] = set()
    for target in targets:
        assert target.id is not None
        pk = target.user_pk
        if pk is None:
            skipped[target.id] = Skip.UNRESOLVED
            continue
        if pk in planned:
            skipped[target.id] = Skip.SAME_USER
            continue
        planned.add(pk)
        if pk in tray:
            (fresh if tray[pk] > (target.story_marker or 0) else settled).append(pk)
            continue
        skip = unavailable_skip(target, now, "stories")
        if skip is not None:
            skipped[target.id] = skip
        else:
            # due now, or overdue before the next pass (``horizon``: about the time since the last one)
            (due if is_due(target.story_checked_at, now + horizon, recheck) else spare).append(target)
    never = now - timedelta(days=36500)
    due.sort(key=lambda t: t.story_checked_at or never)
    spare.sort(key=lambda t: t.story_checked_at or never)
    wanted = fresh + [t.user_pk for t in due if t.user_pk is not None]
    # the batches go out anyway: their free slots take the targets checked longest ago
    spare = spare[: -len(wanted) % batch_size] if wanted else []
    wanted += [t.user_pk for t in spare if t.user_pk is not None]
    batches = [wanted[i : i + batch_size] for i in range(0, len(wanted), batch_size)]
    unproven = frozenset(t.user_pk for t in (*due, *spare) if t.followed is not True and t.user_pk is not None)
    per_user = [t.user_pk for t in due if t.followed is not True and t.user_pk is not None]
    return ReadPlan(batches, unproven, per_user, settled, skipped)


@dataclass(frozen=True)
class PostPlan:
    """How one post pass learns what is new: the home feed for the followed targets (``timeline``), then the
    own feeds of ``sweep`` (one request each, in this order)."""

    timeline: bool = False
    sweep: list[int] = field(default_factory=list)  # user pks: not followed first, then oldest-checked
    skipped: dict[int, Skip] = field(default_factory=dict)  # keyed by target id


def plan_post_reads(targets: Sequence[Target], now: datetime, *, recheck: timedelta, timeline_pages: int) -> PostPlan:
    """The home feed shows the followed targets' new posts for one or two requests, but it is ranked and
    lossy; the sweep reads each target's own feed at least every ``recheck`` so nothing is missed for long
    (a post is liked while younger than POST_MAX_AGE_DAYS, which is longer than ``recheck``).

    - Not followed, or follow state unknown: never in the home feed, so its own feed every pass.
    - Followed, never read: its first read is due at its own time within ``recheck`` of when it was added
      (first_read_at), so a first pass with 500 new targets reads a few, not 500, and the rotation that follows is
      spread evenly from the start. A post taken after the target was added is read within ``recheck`` (plus the
      gap to the next pass) all the same.
    - Followed, read before: its share of the rotation. A pass reads ``ceil(n * gap / recheck)`` of the n followed
      targets (the first reads due now count towards it), oldest-checked first, where ``gap`` is the time since
      the last pass (the newest check time): with a 3-hour timer 1/8 of them, so each is read about every
      ``recheck``. Overdue ones are read whatever the share.
    - Unresolved, private-not-followed or missing: as for stories (retried daily).
    """
    followed: list[Target] = []
    others: list[Target] = []
    skipped: dict[int, Skip] = {}
    planned: set[int] = set()
    for target in targets:
        assert target.id is not None
        skip = Skip.UNRESOLVED if target.user_pk is None else unavailable_skip(target, now, "posts")
        if skip is None and target.user_pk in planned:
            skip = Skip.SAME_USER
        if target.user_pk is not None:
            planned.add(target.user_pk)
        if skip is not None:
            skipped[target.id] = skip
        elif target.followed is True:
            followed.append(target)
        else:
            others.append(target)
    never = now - timedelta(days=36500)
    # oldest-checked first, those not followed too: a pass out of time leaves the ones it read last time
    others.sort(key=lambda t: (t.post_checked_at or never, t.id or 0))
    due_first = first_read_at(followed, recheck)
    first = sorted(
        (t for t in followed if t.id in due_first and due_first[t.id] <= now), key=lambda t: due_first[t.id or 0]
    )
    rotation = sorted(
        (t for t in followed if t.post_checked_at is not None), key=lambda t: (t.post_checked_at, t.id or 0)
    )
    gap = since_last_pass([t.post_checked_at for t in targets], now)
    share = len(followed) if gap >= recheck else math.ceil(len(followed) * (gap / recheck))
    overdue = sum(1 for t in rotation if is_due(t.post_checked_at, now, recheck))
    sweep = [t.user_pk for t in others + first + rotation[: max(share - len(first), overdue)] if t.user_pk is not None]
    return PostPlan(timeline_pages > 0 and bool(followed), sweep, skipped)


def first_read_at(followed: Sequence[Target], recheck: timedelta) -> dict[int, datetime]:
    """When each followed target never read for posts is first due, by target id: the targets added together (the
    same ``added_at``: one TARGET_ACCOUNTS sync, one `accounts add`, one tray adoption) take evenly spaced times over
    ``recheck`` from then, in the order they were added (the k-th of n at ``added_at + recheck * k / n``: the first
    at once). Ranked among all of that group, read or not, so a target's time does not move as the others are read.
    A target without ``added_at`` (or whose time is past) is due now."""
    groups: dict[datetime | None, list[Target]] = {}
    for target in followed:
        groups.setdefault(target.added_at, []).append(target)
    at_once = datetime.min.replace(tzinfo=UTC)
    due: dict[int, datetime] = {}
    for added, group in groups.items():
        group.sort(key=lambda t: t.id or 0)
        for rank, target in enumerate(group):
            if target.post_checked_at is None and target.id is not None:
                due[target.id] = at_once if added is None else added + recheck * rank / len(group)
    return due


class Pauses(Protocol):
    """The delay settings a pass's time budget is planned with (Settings)."""

    @property
    def target_delay_max_seconds(self) -> float: ...
    @property
    def action_delay_max_seconds(self) -> float: ...
    @property
    def request_delay_max_seconds(self) -> float: ...


def read_cost(settings: Pauses, *, first: bool = False) -> float:
    """The longest a pass waits for one more target read: the pause between targets (none before the first) and
    the gap before the request."""
    return (0 if first else settings.target_delay_max_seconds) + settings.request_delay_max_seconds


def like_cost(settings: Pauses, *, watched: bool = False) -> float:
    """The longest a pass waits for one more like: the pause between likes and the gap before the request; a story
    (``watched``) is on screen at most VIDEO_WATCH_CAP_SECONDS, its like inside that time."""
    pause = settings.action_delay_max_seconds + settings.request_delay_max_seconds
    return max(pause, VIDEO_WATCH_CAP_SECONDS) + HOLD_AFTER_LIKE_SECONDS if watched else pause


PROFILE_PAGES = 5  # a profile read follows its feed at most this many pages (5 x POST_FEED_COUNT posts)


def more_posts_beyond(page: Sequence[PostItem], cursor: str | None, marker: int | None, oldest: datetime) -> bool:
    """Whether a page of a target's own feed may have cut off posts still to look at: there is a next page and
    even the oldest post on it that is not pinned (pinned ones come first whatever their age) is newer than the
    marker and still young enough to like. A busy account with pinned posts fills a first page quickly."""
    unpinned = [p.taken_at for p in page if not p.pinned]
    if cursor is None or not unpinned:
        return False
    last = min(unpinned)
    return last.timestamp() > (marker or 0) and last >= oldest


def new_marker(
    old: int | None, stories: Sequence[StoryItem], handled: Collection[str], *, settled_at: int | None = None
) -> int | None:
    """The newest ``taken_at`` up to which every story of the target was handled (liked, recorded as liked,
    or deliberately skipped), never past a story that was not. ``settled_at``: the tray's
    ``latest_reel_media`` for a reel Instagram had nothing for (expired or deleted since the tray)."""
    marker = old
    unhandled = [int(s.taken_at.timestamp()) for s in stories if s.pk not in handled]
    first_open = min(unhandled, default=None)  # stories taken in the same second move together or not at all
    for item in stories:
        stamp = int(item.taken_at.timestamp())
        if item.pk in handled and (first_open is None or stamp < first_open):
            marker = stamp if marker is None else max(marker, stamp)
    if settled_at is not None and not stories:
        marker = settled_at if marker is None else max(marker, settled_at)
    return marker


def lost_likes(items: Sequence[StoryItem | PostItem], unconfirmed: Collection[str]) -> set[str]:
    """Of the items whose like was sent but its answer lost (``unconfirmed``: Instagram may have acted), those
    never to be sent again: Instagram does not say whether they are liked (``has_liked`` missing). One it shows
    as liked is recorded like any liked elsewhere; one it shows as not liked is liked again (it did not land)."""
    return {item.pk for item in items if item.pk in unconfirmed and item.has_liked is None}


PHOTO_WATCH_SECONDS = (5.0, 7.0)  # a photo story is on screen about this long (the app shows one for 5 s)
WATCH_MIN_SECONDS = 3.0  # nothing is watched for less
VIDEO_WATCH_CAP_SECONDS = 20.0  # a longer video is watched this long, then skipped on (a tap), as people do
HOLD_AFTER_LIKE_SECONDS = 1.0  # an item liked stays on screen at least this long after the like


def watch_seconds(story: StoryItem, rng: random.Random) -> float:
    """How long a viewer watches ``story``: a photo about 5-7 s, a video its duration (capped), never under 3 s."""
    if story.video_duration is not None:
        return max(WATCH_MIN_SECONDS, min(story.video_duration, VIDEO_WATCH_CAP_SECONDS))
    return max(WATCH_MIN_SECONDS, rng.uniform(*PHOTO_WATCH_SECONDS))


def like_offset(watch: float, rng: random.Random) -> float:
    """When, after an item came on screen, a viewer likes it: after at least a second of it and at least a
    second before its watching ends (``watch`` is never under WATCH_MIN_SECONDS)."""
    return rng.uniform(1.0, max(1.0, watch - HOLD_AFTER_LIKE_SECONDS))


def seen_stamps(stories: Sequence[StoryItem], started: Sequence[datetime], now: datetime) -> list[int]:
    """The seen report's times (unix seconds) for ``stories`` watched in order, each from the moment its watching
    began (``started``): rising, none after ``now`` (when it is sent), none before its story was taken. Should
    Instagram's ``taken_at`` be ahead of our clock, it wins: by Instagram's clock that moment has passed."""
    stamps: list[int] = []
    for story, at in zip(stories, started, strict=True):
        stamp = min(int(at.timestamp()), int(now.timestamp()))
        stamps.append(max(stamp, int(story.taken_at.timestamp()), stamps[-1] if stamps else 0))
    return stamps


class Likeable(Protocol):
    @property
    def pk(self) -> str: ...
    @property
    def user_pk(self) -> int: ...
    @property
    def taken_at(self) -> datetime: ...


L = TypeVar("L", bound=Likeable)


def fair_share(todo: Sequence[L], allowed: int, last_liked: Mapping[int, datetime] | None = None) -> list[L]:
    """Share a short budget round-robin across the targets with something new: each round takes the
    oldest story (closest to expiry) of each target. Targets go in the order of their last like (never or
    longest ago first: fairness across passes, so a busy account cannot take a slot in every pass), then of
    their oldest story. Returns the chosen stories grouped by target (in that order, oldest first)."""
    last_liked = last_liked or {}
    queues: dict[int, list[L]] = {}
    for item in sorted(todo, key=lambda s: (s.taken_at, s.pk)):
        queues.setdefault(item.user_pk, []).append(item)
    never = datetime.min.replace(tzinfo=UTC)
    order = sorted(queues, key=lambda pk: (last_liked.get(pk, never), queues[pk][0].taken_at, pk))
    chosen: dict[int, list[L]] = {pk: [] for pk in order}
    left = max(0, allowed)
    depth = 0
    while left and any(len(q) > depth for q in queues.values()):
        for pk in order:
            if left and len(queues[pk]) > depth:
                chosen[pk].append(queues[pk][depth])
                left -= 1
        depth += 1
    return [item for items in chosen.values() for item in items]


# --- the human day: active hours, a deterministic share of skipped stories ---------------------------------


def is_active(now: datetime, ranges: Sequence[tuple[int, int]] | None, zone: tzinfo) -> bool:
    """Inside ACTIVE_HOURS (minutes after local midnight, [start, end), a range may wrap midnight)?

    ``now`` is a moment: it goes through UTC to the local clock, so a local time that never happens (02:30 on
    a spring DST change) is read as the moment it names (03:30), and one that happens twice is active twice."""
    if not ranges:
        return True
    local = now.astimezone(UTC).astimezone(zone)
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end if start < end else minute >= start or minute < end for start, end in ranges)


def next_window(now: datetime, ranges: Sequence[tuple[int, int]] | None, zone: tzinfo) -> datetime:
    """When the next active window opens (``now`` when inside one), to the minute, in UTC.

    Real minutes, counted in UTC and each read on the local clock: adding minutes to a local time would count
    wall-clock minutes, and name a time a spring DST change skips (02:00-03:00 on that day opens the next day)."""
    if is_active(now, ranges, zone):
        return now
    start = now.astimezone(UTC).replace(second=0, microsecond=0)
    for minutes in range(1, 2 * 24 * 60 + 1):  # a range that a DST change skips opens the day after
        candidate = start + timedelta(minutes=minutes)
        if is_active(candidate, ranges, zone):
            return candidate
    return now  # unreachable with a non-empty range


def skipped_by_chance(account: str, story_pk: str, probability: float) -> bool:
    """STORY_LIKE_PROBABILITY: a story is liked with this probability, decided by a hash of account and
    story, so reruns and dry runs agree and a skipped story is never retried."""
    return probability < 1 and unit_hash(account, story_pk) >= probability


def newest_per_target(todo: Sequence[L], cap: int | None) -> tuple[list[L], list[L]]:
    """STORY_MAX_PER_TARGET: keep the newest ``cap`` of each target; returns (kept, left out deliberately)."""
    if cap is None:
        return list(todo), []
    kept: list[L] = []
    dropped: list[L] = []
    per_target: dict[int, list[L]] = {}
    for item in todo:
        per_target.setdefault(item.user_pk, []).append(item)
    for items in per_target.values():
        items.sort(key=lambda s: (s.taken_at, s.pk))
        kept += items[-cap:]
        dropped += items[:-cap]
    return kept, dropped


def pass_horizon(targets: Sequence[Target], now: datetime, recheck: timedelta) -> timedelta:
    """How long until the next pass, guessed from the last one (the newest check time of any target: every
    pass checks at least the tray's targets), with a quarter more for the scheduler's random delay. A target
    that would be overdue by then is checked now, so the recheck interval holds between passes too."""
    return min(since_last_pass([t.story_checked_at for t in targets], now) * 1.25, recheck)


def since_last_pass(checked: Sequence[datetime | None], now: datetime) -> timedelta:
    """The time since the last pass, read off the targets' check times (every pass checks some): the newest
    one; zero when none was checked yet (or the clock went back)."""
    last = max((at for at in checked if at is not None), default=None)
    return timedelta(0) if last is None or last >= now else now - last
