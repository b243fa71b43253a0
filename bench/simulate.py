"""In-process simulations for `make bench`: the like planner over a week, story coverage over a day and posts
over a week.

All drive the real passes (``story_liker.jobs.stories.run_stories``, ``story_liker.jobs.posts.run_posts``) with
the real planner, store and limits on SQLite in a temporary directory, against ``tests.fake.ScriptedInstagram``
(the Protocol fake) on a ``FakeClock``: every pause of a pass (the default ACTION/TARGET/REQUEST delays) advances
the fake clock, nothing sleeps. A `World` decides who posts what and when; before each read it rebuilds the
fake's tray and reels from the stories live at that moment (a story vanishes 24 h after it was taken). A
`PostWorld` does the same for posts: a profile's first page and a ranked, lossy home feed at that moment.

Runnable alone: ``python -m bench.simulate`` (prints the tables; ``--json FILE`` writes the figures).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import logging
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from unittest import mock

import bench.common  # noqa: F401  # puts the repository root on sys.path, for tests.fake
from bench.common import table
from story_liker import limits as like_limits
from story_liker import planning, ratelimit
from story_liker.db import make_engine, migrate
from story_liker.errors import StoryLikerError, Throttled, ThrottleKind
from story_liker.ig.types import PostItem, StoryItem, TrayEntry, UserRef
from story_liker.jobs.deps import Deps, Report
from story_liker.jobs.posts import run_posts
from story_liker.jobs.stories import run_stories
from story_liker.models import STORY_LIKE, Account
from story_liker.settings import Settings, parse_active_hours
from story_liker.store import Store
from tests.fake import ME, FakeClock, Harness, ScriptedInstagram

SIM_START = datetime(2026, 12, 1, tzinfo=UTC)  # a midnight (UTC): day 1 starts here
LIFE = timedelta(hours=24)  # a story vanishes this long after it was taken
NO_CHANCE = ("outside_active_hours", "cooling_down", "throttled")  # passes that could not like (by rule)
SCHEDULE_DELAY = 20 * 60  # every pass starts at the full hour plus a random 0-20 min (the shipped timers)
ACTIVE_HOURS = "08:00-23:00"
WEEK_DAYS = 7
BLOCK_DAY = 3  # the first like attempted on this day (1-based) is answered with feedback_required
WEEK_TARGETS = (("very busy", 4, 20.0), ("busy", 16, 3.0), ("quiet", 80, 0.9))  # kind, how many, stories a day
COVERAGE_SIZES = (50, 500)
COVERAGE_EVERY = (1, 3)  # hours between passes
COVERAGE_RATES = ((0.2, 0.4), (0.7, 0.35), (2.0, 0.25))  # stories a day, share of the targets
TRAY_OMITS = 0.2  # the share of the targets the tray never lists (when they have stories)
# When people post (UTC hour of the day), relative weights: little at night, most in the evening.
HOUR_WEIGHTS = (
    1,
    0.5,
    0.3,
    0.2,
    0.2,
    0.3,
    0.6,
    1,
    1.5,
    1.5,
    1.5,
    1.5,
    2,
    1.5,
    1.5,
    1.5,
    1.5,
    2,
    2.5,
    3,
    3,
    3,
    2.5,
    1.5,
)
BURST: tuple[tuple[int, float], ...] = ((1, 0.5), (2, 0.3), (3, 0.2))  # stories posted in one go, and how often
NO_LIMITS = {  # coverage: likes out of the way
    "story_likes_per_10_minutes": 1000,
    "story_likes_per_hour": 1000,
    "story_likes_per_day": 10000,
}
DELAYS = tuple(f"{kind}_delay_{end}_seconds" for kind in ("action", "target", "request") for end in ("min", "max"))
ENV_PREFIXES = ("IG_", "TARGET_", "STORY_", "POST_", "ACTION_", "REQUEST_", "ACTIVE_", "WARMUP_", "DAILY_", "LOG_")
ENV_NAMES = ("SESSION_ENCRYPTION_KEY", "DATABASE_URL", "DRY_RUN", "TIMEZONE", "FEEDBACK_COOLDOWN_HOURS")


# --- the world: who posts what, and what the fake Instagram shows at each moment ---------------------------


def _poisson(rng: random.Random, mean: float) -> int:
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product >= limit:
        count += 1
        product *= rng.random()
    return count


def post_stories(rng: random.Random, user_pk: int, per_day: float, start: datetime, days: int) -> list[StoryItem]:
    """Stories of one account: posting sessions (1-3 stories a few minutes apart) at ``per_day`` stories a day
    on average, mostly in the afternoon and evening."""
    mean_burst = sum(size * weight for size, weight in BURST)
    sizes = [size for size, _ in BURST]
    size_weights = [weight for _, weight in BURST]
    stories: list[StoryItem] = []
    for day in range(days):
        for _ in range(_poisson(rng, per_day / mean_burst)):
            hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
            at = start + timedelta(days=day, hours=hour, seconds=rng.randrange(3600))
            for _ in range(rng.choices(sizes, weights=size_weights)[0]):
                stories.append(StoryItem(f"{user_pk}{len(stories):05d}", user_pk, at, False))
                at += timedelta(seconds=rng.randint(20, 300))
    return stories


class World:
    """The accounts, their stories, and the fake's answers rebuilt from them before each read (the
    ``before`` hook of ScriptedInstagram). ``omitted``: accounts the tray never lists. ``frozen_at``: no story
    taken later is shown. ``block_from``: the first like sent at or after it gets feedback_required."""

    def __init__(self, names: dict[int, str], stories: Sequence[StoryItem], *, omitted: frozenset[int] = frozenset()):
        self.names = names
        self.stories = sorted(stories, key=lambda s: (s.taken_at, s.pk))
        self.taken = [s.taken_at for s in self.stories]
        self.by_pk = {s.pk: s for s in self.stories}
        self.omitted = omitted
        self.frozen_at: datetime | None = None
        self.block_from: datetime | None = None
        self.blocked_calls: list[int] = []  # indexes into ig.calls of the likes answered with the block
        self.trays: list[list[TrayEntry]] = []  # every tray served, in order

    def live(self, now: datetime) -> list[StoryItem]:
        newest = min(now, self.frozen_at) if self.frozen_at else now
        low = bisect.bisect_right(self.taken, now - LIFE)
        high = bisect.bisect_right(self.taken, newest)
        return self.stories[low:high]

    def followed(self) -> list[UserRef]:
        return [UserRef(pk, name, True) for pk, name in self.names.items()]

    def before(self, ig: ScriptedInstagram, name: str) -> None:
        now = ig.clock()
        if name in ("reels_tray", "reels_media", "user_stories"):
            liked = set(ig.liked)
            reels: dict[int, list[StoryItem]] = {}
            for item in self.live(now):
                reels.setdefault(item.user_pk, []).append(replace(item, has_liked=item.pk in liked))
            ig.reels = reels
            ig.tray = [
                TrayEntry(pk, self.names[pk], int(items[-1].taken_at.timestamp()))
                for pk, items in reels.items()
                if pk not in self.omitted
            ]
            if name == "reels_tray":
                self.trays.append(ig.tray)
        elif name == "like_story" and self.block_from and now >= self.block_from and not self.blocked_calls:
            self.blocked_calls.append(len(ig.calls))  # the call about to be logged
            block = Throttled("feedback_required", kind=ThrottleKind.FEEDBACK_REQUIRED, detail="feedback_required")
            ig.script.setdefault("like_story", []).append(block)


# --- running passes ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet_and_isolated(workdir: Path) -> Iterator[None]:
    """No setting from the developer's environment or .env, and no log line from the passes."""
    saved, cwd = dict(os.environ), Path.cwd()
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES) or name in ENV_NAMES:
            del os.environ[name]
    logger = logging.getLogger("story_liker")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    os.chdir(workdir)
    try:
        yield
    finally:
        os.chdir(cwd)
        logger.setLevel(level)
        os.environ.clear()
        os.environ.update(saved)


def fresh_store(path: Path) -> Store:
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    return Store(engine)


def default_delays() -> dict[str, float]:
    """The shipped pauses (the Harness sets them to 0); on the fake clock they cost no time."""
    return {name: float(Settings.model_fields[name].default) for name in DELAYS}


class Runner(Protocol):
    def __call__(self, deps: Deps, *, dry_run: bool, max_likes: int | None) -> Report: ...


@dataclass
class PassLog:
    started: datetime
    ended: datetime
    outcome: str
    first_call: int  # index into ig.calls
    calls: int
    deferred: int = 0  # reads the pass's time budget left for the next pass


def one_pass(
    h: Harness,
    ig: ScriptedInstagram,
    rng: random.Random,
    run: Runner = run_stories,
    *,
    limit: timedelta | None = None,
) -> PassLog:
    """One pass on the fake clock. ``limit``: the scheduler's (systemd TimeoutStartSec, cron's timeout): a pass
    still running then gets SIGTERM, as there, and stops at its next step."""
    first, started = len(ig.calls), h.clock()
    deps = h.deps(ig)
    deps.rng = random.Random(rng.getrandbits(64))
    if limit is not None:

        def sleep_then_maybe_stop(seconds: float) -> None:
            h.clock.sleep(seconds)
            if h.clock() - started >= limit and not deps.stop.is_set():
                deps.stop_signal.append(15)
                deps.stop.set()

        deps.sleeper = sleep_then_maybe_stop
    try:
        outcome = run(deps, dry_run=False, max_likes=None).outcome.value
    except StoryLikerError as exc:  # throttled, cooling_down, interrupted ...: the scheduler would see 75, 143
        outcome = exc.outcome
    return PassLog(started, h.clock(), outcome, first, len(ig.calls) - first, deps.counts.deferred)


def start_at(h: Harness, rng: random.Random, hour: datetime) -> None:
    """The timer fires at the hour plus a random delay; a pass still running delays the next one."""
    h.clock.now = max(h.clock.now, hour + timedelta(seconds=rng.uniform(0, SCHEDULE_DELAY)))


# --- 1. the like planner over a week ----------------------------------------------------------


@dataclass
class WeekWorld:
    names: dict[int, str]
    kinds: dict[int, str]
    stories: list[StoryItem]

    @property
    def per_day(self) -> float:
        return sum(1 for s in self.stories if s.taken_at >= SIM_START) / WEEK_DAYS


def week_world(seed: int) -> WeekWorld:
    """100 targets, a few very busy, many quiet, in random alphabetical places; stories from the day before
    the week (the first pass finds a full tray) to its end. Every target posts at least once before the last
    day, so that every one of them can be liked."""
    rng = random.Random(seed)
    kinds = [kind for kind, count, _ in WEEK_TARGETS for _ in range(count)]
    rng.shuffle(kinds)
    rates = {kind: per_day for kind, _, per_day in WEEK_TARGETS}
    names = {2000 + n: f"friend{n:02d}" for n in range(len(kinds))}
    by_pk = dict(zip(names, kinds, strict=True))
    stories: list[StoryItem] = []
    last_day = SIM_START + timedelta(days=WEEK_DAYS - 1)
    for pk, kind in by_pk.items():
        own = post_stories(rng, pk, rates[kind], SIM_START - timedelta(days=1), WEEK_DAYS + 1)
        if not any(SIM_START <= s.taken_at < last_day for s in own):
            at = SIM_START + timedelta(seconds=rng.randrange(int((last_day - SIM_START).total_seconds())))
            own.append(StoryItem(f"{pk}{len(own):05d}", pk, at, False))
        stories += own
    return WeekWorld(names, by_pk, stories)


def alphabetical(names: dict[int, str]) -> Any:
    """The naive ("old") selection: the budget goes to the stories sorted by (target username, taken_at)."""

    def select(todo: Sequence[Any], allowed: int, _last_liked: Any = None) -> list[Any]:
        return sorted(todo, key=lambda s: (names[s.user_pk], s.taken_at, s.pk))[: max(0, allowed)]

    return select


def configured_only(
    store: Store, settings: Settings, state: Account, kind: str, configured: ratelimit.Limits, now: datetime
) -> ratelimit.Effective:
    """The naive ("old") limits: the configured ones, never adapted."""
    return ratelimit.Effective(configured, ())


@dataclass
class LimitSample:
    at: str
    label: str
    per_hour: int
    per_day: int
    why: list[str]


@dataclass
class WeekResult:
    planner: str
    passes: int
    outcomes: dict[str, int]
    likes: int
    likes_per_target: dict[str, int]
    likes_by_kind: dict[str, int]
    targets_never_liked: list[str]
    stories_live: int  # taken before the week ended and live at some point of it
    expired_unliked: int
    expired_unliked_budget_left: int
    passes_with_budget_left: int  # passes that sent fewer likes than allowed (by choice, not by a rule)
    likes_outside_active_hours: int
    requests_outside_active_hours: int
    max_likes_10_min: int
    likes_per_day: list[int]
    requests_per_day: list[int]
    requests_by_kind: dict[str, int]
    limits: list[LimitSample]
    block_at: str | None
    cooldown_until: str | None
    wall_s: float

    @property
    def per_target(self) -> tuple[int, float, int]:
        counts = list(self.likes_per_target.values())
        return min(counts), statistics.median(counts), max(counts)


def planner_week(world: WeekWorld, *, new: bool, block: bool, workdir: Path, seed: int) -> WeekResult:
    started = time.perf_counter()
    label = ("new" if new else "old") + ("" if block else ", no block")
    rng = random.Random(seed)
    store = fresh_store(workdir / f"week-{'new' if new else 'old'}-{block}.db")
    overrides: dict[str, Any] = {"target_accounts": ",".join(world.names.values()), "timezone": "UTC"}
    overrides |= default_delays()
    if new:
        overrides["active_hours"] = ACTIVE_HOURS
    else:
        overrides["daily_limit_variation_percent"] = 0
    h = Harness(store, FakeClock(SIM_START - timedelta(minutes=1)), overrides)
    h.store_session()  # an imported session of an existing account: no warm-up
    view = World(world.names, world.stories)
    view.block_from = SIM_START + timedelta(days=BLOCK_DAY - 1) if block else None
    ig = ScriptedInstagram(h.clock, followed=view.followed(), before=view.before)
    settings = h.settings()
    configured = ratelimit.Limits(settings.story_likes_per_hour, settings.story_likes_per_day)
    end = SIM_START + timedelta(days=WEEK_DAYS)

    def in_force(at: datetime) -> ratelimit.Effective:
        return like_limits.in_force(store, settings, store.account(ME), STORY_LIKE, configured, at)

    passes: list[PassLog] = []
    samples: list[LimitSample] = []
    cooldowns: list[tuple[datetime, datetime]] = []
    left_over: list[datetime] = []  # when each pass that could have sent more likes than it did read the tray

    def accepted() -> list[datetime]:
        return [c.at for i, c in enumerate(ig.calls) if c.name == "like_story" and i not in view.blocked_calls]

    patches = contextlib.ExitStack()
    with patches:
        if not new:
            patches.enter_context(mock.patch.object(planning, "fair_share", alphabetical(world.names)))
            patches.enter_context(mock.patch.object(like_limits, "in_force", configured_only))
        sampled_days: set[int] = set()
        for hour in range(WEEK_DAYS * 24):
            start_at(h, rng, SIM_START + timedelta(hours=hour))
            now, day = h.clock(), hour // 24 + 1
            effective = in_force(now)
            if hour % 24 >= 12 and day not in sampled_days:
                sampled_days.add(day)
                samples.append(_sample(now, f"day {day} noon", effective))
            liked_before = accepted()
            allowed = ratelimit.budget(now, liked_before, effective.limits).remaining
            log = one_pass(h, ig, rng)
            passes.append(log)
            sent = len(accepted()) - len(liked_before)
            if log.outcome not in NO_CHANCE and log.calls and sent < allowed:
                left_over.append(ig.calls[log.first_call].at)
            if log.outcome == "throttled":
                state = store.account(ME)
                assert state.cooldown_until is not None
                cooldowns.append((log.ended, state.cooldown_until))
                samples.append(_sample(log.ended, "right after the block", in_force(log.ended)))
                samples.append(_sample(state.cooldown_until, "cooldown ends", in_force(state.cooldown_until)))
        h.clock.now = max(h.clock.now, end)
    samples.sort(key=lambda s: s.at)

    likes = [c for i, c in enumerate(ig.calls) if c.name == "like_story" and i not in view.blocked_calls]
    liked = {str(c.arg) for c in likes}
    per_target = Counter(view.by_pk[str(c.arg)].user_pk for c in likes)
    ranges = parse_active_hours(ACTIVE_HOURS)
    outside = [c for c in ig.calls if not planning.is_active(c.at, ranges, UTC)]
    expired = [s for s in world.stories if SIM_START < s.taken_at + LIFE <= end and s.pk not in liked]
    like_times = [c.at for c in likes]
    window = timedelta(minutes=10)
    max_10 = max((bisect.bisect_left(like_times, t + window) - i for i, t in enumerate(like_times)), default=0)
    blocked = [ig.calls[i].at for i in view.blocked_calls]
    store.engine.dispose()
    return WeekResult(
        planner=label,
        passes=len(passes),
        outcomes=dict(Counter(p.outcome for p in passes)),
        likes=len(likes),
        likes_per_target={world.names[pk]: per_target.get(pk, 0) for pk in world.names},
        likes_by_kind=dict(Counter(world.kinds[view.by_pk[str(c.arg)].user_pk] for c in likes)),
        targets_never_liked=sorted(world.names[pk] for pk in world.names if not per_target.get(pk)),
        stories_live=sum(1 for s in world.stories if s.taken_at < end and s.taken_at + LIFE > SIM_START),
        expired_unliked=len(expired),
        expired_unliked_budget_left=sum(
            1 for s in expired if any(s.taken_at <= at < s.taken_at + LIFE for at in left_over)
        ),
        passes_with_budget_left=len(left_over),
        likes_outside_active_hours=sum(1 for c in outside if c.name == "like_story"),
        requests_outside_active_hours=len(outside),
        max_likes_10_min=max_10,
        likes_per_day=_per_day([c.at for c in likes]),
        requests_per_day=_per_day([c.at for c in ig.calls]),
        requests_by_kind=dict(Counter(c.name for c in ig.calls).most_common()),
        limits=samples,
        block_at=blocked[0].isoformat(timespec="minutes") if blocked else None,
        cooldown_until=cooldowns[0][1].isoformat(timespec="minutes") if cooldowns else None,
        wall_s=time.perf_counter() - started,
    )


def _sample(at: datetime, label: str, effective: ratelimit.Effective) -> LimitSample:
    limits = effective.limits
    return LimitSample(
        at.isoformat(timespec="minutes"), label, limits.per_hour, limits.per_day, list(effective.reasons)
    )


def _per_day(times: Sequence[datetime]) -> list[int]:
    days = Counter(int((t - SIM_START) / timedelta(days=1)) for t in times)
    return [days.get(day, 0) for day in range(WEEK_DAYS)]


def _when(iso: str | None) -> str:
    """'day 3 08:07' for a time of the simulated week."""
    if iso is None:
        return "-"
    at = datetime.fromisoformat(iso)
    return f"day {math.floor((at - SIM_START) / timedelta(days=1)) + 1} {at:%H:%M}"


PLANNER_NAMES = {"old": "old (alphabetical)", "new": "new (fair)", "new, no block": "new, no block"}


def week_report(world: WeekWorld, results: Sequence[WeekResult], budget_per_day: int) -> list[str]:
    kinds = ", ".join(f"{count} {kind} (~{rate:g}/day)" for kind, count, rate in WEEK_TARGETS)
    out = [
        "5. The like planner over a simulated week: in-process, fake clock, the Protocol fake,",
        "   the real passes, planner, store and limits on SQLite; a run-stories pass every hour + 0-20 min",
        f"   100 targets: {kinds}; {world.per_day:.0f} stories a day"
        f" ({world.per_day / budget_per_day:.1f} x the daily budget of {budget_per_day}); a story vanishes 24 h"
        " after taken_at",
    ]
    rows = []
    for r in results:
        low, median, high = r.per_target
        per_day = sorted(r.requests_per_day)
        rows.append(
            [
                PLANNER_NAMES[r.planner],
                r.likes,
                f"{low} / {median:g} / {high}",
                len(r.targets_never_liked),
                " / ".join(str(r.likes_by_kind.get(kind, 0)) for kind, _, _ in WEEK_TARGETS),
                f"{r.expired_unliked} ({r.expired_unliked_budget_left})",
                r.likes_outside_active_hours,
                r.max_likes_10_min,
                f"{per_day[0]} / {statistics.median(per_day):g} / {per_day[-1]}",
            ]
        )
    headers = [
        "planner",
        "likes",
        "per target min/med/max",
        "never liked",
        "very busy/busy/quiet",
        "expired unliked (budget left)",
        "likes outside 08-23",
        "max likes/10 min",
        "requests/day min/med/max",
    ]
    out.append(table(headers, rows, "lrrrrrrrr"))
    out.append("")
    rows = []
    for day in range(WEEK_DAYS):
        row: list[object] = [day + 1]
        for r in results:
            noon = next(s for s in r.limits if s.label == f"day {day + 1} noon")
            row += [r.likes_per_day[day], r.requests_per_day[day], f"{noon.per_hour}/{noon.per_day}"]
        rows.append(row)
    headers = ["day"]
    for r in results:
        headers += [f"{r.planner}: likes", "requests", "limits h/d at noon"]
    out.append(table(headers, rows, "r" * len(headers)))
    for r in results:
        if r.block_at is None:
            continue
        events = [s for s in r.limits if "noon" not in s.label]
        after = "; ".join(f"{s.label} ({_when(s.at)}): {s.per_hour}/h {s.per_day}/day" for s in events)
        out.append(f"  {r.planner}: action block (feedback_required) on the like at {_when(r.block_at)}; {after}")
        why = next((s.why for s in r.limits if s.label == "right after the block"), [])
        if why:
            out.append(f"    why the limits differ then: {'; '.join(why)}")
    out.append("")
    new = next(r for r in results if r.planner == "new")
    clean = next(r for r in results if r.planner == "new, no block")

    def never(r: WeekResult) -> str:
        names = r.targets_never_liked
        return f"{r.planner}: {len(names)} never liked" + (f" ({', '.join(names[:6])})" if names else "")

    goals = [
        (
            not clean.targets_never_liked,
            f"new planner leaves no target unliked over the week when the budget allows one like per"
            f" target per day ({budget_per_day}/day, {len(world.names)} targets, no block)",
            f"{never(clean)}; {never(new)}",
        ),
        (
            new.likes_outside_active_hours == clean.likes_outside_active_hours == 0,
            f"new planner never likes outside ACTIVE_HOURS {ACTIVE_HOURS} UTC",
            "; ".join(
                f"{r.planner}: {r.likes_outside_active_hours} likes, {r.requests_outside_active_hours} requests"
                for r in (new, clean)
            ),
        ),
    ]
    out.append(table(["", "goal", "measured"], [["PASS" if ok else "FAIL", g, m] for ok, g, m in goals], "lll"))
    out.append("")
    out += [
        "  Notes",
        "  - old = a naive planner for comparison, emulated on the same passes: settings without ACTIVE_HOURS and with",
        "    DAILY_LIMIT_VARIATION_PERCENT=0; story_liker.planning.fair_share monkeypatched with an alphabetical",
        "    selector (stories sorted by (target username, taken_at), the first `allowed`), and",
        "    story_liker.limits.in_force with one that returns the configured limits (no AIMD, no",
        "    warm-up, no daily variation). new = the code as it is, with ACTIVE_HOURS=08:00-23:00, TIMEZONE=UTC.",
        "  - All: STORY_LIKES_PER_HOUR/DAY 20/100, the default delays (on the fake clock), an imported session",
        "    (no warm-up: that is for a new device), a tray that lists every target with live stories, the same",
        f"    stories (seeded). old and new: the first like attempted on day {BLOCK_DAY} is answered with",
        '    feedback_required (cooldown FEEDBACK_COOLDOWN_HOURS=12); "new, no block" is new without it, the',
        "    run in which the budget allows one like per target every day.",
        "  - very busy/busy/quiet: likes that went to each group. expired unliked: stories that vanished during",
        "    the week without a like; (budget left): of those, the ones live when a pass read the tray and then",
        "    sent fewer likes than the limits in force allowed at its start (passes outside the active hours,",
        "    in a cooldown or stopped by the block do not count). likes outside 08-23: accepted likes at a UTC",
        "    time outside 08:00-23:00. requests/day: every Instagram request of the UTC day.",
    ]
    for r in results:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items()))
        out.append(
            f"  - {r.planner}: {r.passes} passes ({outcomes}), {r.passes_with_budget_left} of them with likes left"
            f" over; requests {_kinds(r.requests_by_kind)}"
        )
    out.append(f"  - {results[0].stories_live} stories were live during the week")
    return out


# --- 2. coverage over a day -------------------------------------------------------------------


@dataclass
class CoverageResult:
    targets: int
    every_hours: int
    passes: int  # in the measured day
    min_share_checked: float  # of the enabled targets, checked within STORY_RECHECK_HOURS, at the worst hour
    worst_hour: str
    share_by_hour: list[float]  # 00:00 ... 23:00 of the measured day
    mean_share_checked: float
    oldest_check_h: float  # the longest time since a target's last check at any hour mark
    extra_reels_per_pass: float  # reels_media requests beyond ceil(tray-fresh targets / batch size), mean
    requests_per_pass: float
    by_kind_per_pass: dict[str, float]
    first_pass: int
    first_pass_by_kind: dict[str, int]
    nothing_new_pass: int
    nothing_new_by_kind: dict[str, int]
    nothing_new_outcome: str
    omitted_with_stories: float  # mean, at the passes: targets with stories the tray left out
    in_tray: float  # mean tray entries
    wall_s: float


def coverage_day(targets: int, every_hours: int, *, workdir: Path, seed: int) -> CoverageResult:
    """A warm-up day (the first pass, a nothing-new pass right after it), then the measured day: at every
    full hour the share of enabled targets whose story_checked_at (in the database) is within 6 h."""
    started = time.perf_counter()
    rng = random.Random(seed)
    names = {5000 + n: f"follow{n:03d}" for n in range(targets)}
    rates, weights = zip(*COVERAGE_RATES, strict=True)
    stories = [
        item
        for pk in names
        for item in post_stories(rng, pk, rng.choices(rates, weights=weights)[0], SIM_START - timedelta(days=1), 3)
    ]
    omitted = frozenset(rng.sample(sorted(names), round(targets * TRAY_OMITS)))
    store = fresh_store(workdir / f"coverage-{targets}-{every_hours}.db")
    overrides = {"target_accounts": ",".join(names.values()), "timezone": "UTC"} | NO_LIMITS | default_delays()
    h = Harness(store, FakeClock(SIM_START), overrides)
    h.store_session()
    settings = h.settings()
    recheck, batch = settings.story_recheck, settings.reels_batch_size
    world = World(names, stories, omitted=omitted)
    ig = ScriptedInstagram(h.clock, followed=world.followed(), before=world.before)

    def kinds(log: PassLog) -> dict[str, int]:
        return dict(Counter(c.name for c in ig.calls[log.first_call : log.first_call + log.calls]))

    start_at(h, rng, SIM_START)
    world.frozen_at = h.clock()  # nothing is posted between the first pass and the next
    first = one_pass(h, ig, rng)
    h.clock.advance(minutes=5)
    idle = one_pass(h, ig, rng)
    world.frozen_at = None

    day = SIM_START + timedelta(days=1)
    shares: list[tuple[float, datetime]] = []
    oldest = timedelta(0)
    measured: list[tuple[PassLog, int]] = []  # with the reels requests the tray-fresh targets alone need
    omitted_live: list[int] = []
    for hour in range(1, 48):
        mark = SIM_START + timedelta(hours=hour)
        if mark >= day:
            rows = store.targets(ME)
            checked = [t for t in rows if t.story_checked_at is not None and mark - t.story_checked_at <= recheck]
            shares.append((len(checked) / len(rows), mark))
            never = mark - SIM_START  # not checked at all: as old as the simulation
            oldest = max(oldest, *(mark - t.story_checked_at if t.story_checked_at else never for t in rows))
        if hour % every_hours:
            continue
        markers = {t.user_pk: t.story_marker or 0 for t in store.targets(ME)}
        start_at(h, rng, mark)
        log = one_pass(h, ig, rng)
        if mark >= day:
            fresh = sum(1 for e in world.trays[-1] if e.latest_reel_media > markers.get(e.user_pk, 0))
            measured.append((log, math.ceil(fresh / batch)))
            omitted_live.append(len({s.user_pk for s in world.live(log.started)} & omitted))
    store.engine.dispose()
    worst, worst_at = min(shares)
    by_kind: Counter[str] = Counter()
    for log, _ in measured:
        by_kind.update(kinds(log))
    trays = world.trays[-len(measured) :]
    return CoverageResult(
        targets=targets,
        every_hours=every_hours,
        passes=len(measured),
        min_share_checked=worst,
        worst_hour=f"{worst_at:%H:%M}",
        share_by_hour=[round(share, 4) for share, _ in shares],
        mean_share_checked=statistics.mean(s for s, _ in shares),
        oldest_check_h=oldest / timedelta(hours=1),
        extra_reels_per_pass=statistics.mean(kinds(log).get("reels_media", 0) - need for log, need in measured),
        requests_per_pass=statistics.mean(log.calls for log, _ in measured),
        by_kind_per_pass={k: v / len(measured) for k, v in sorted(by_kind.items())},
        first_pass=first.calls,
        first_pass_by_kind=kinds(first),
        nothing_new_pass=idle.calls,
        nothing_new_by_kind=kinds(idle),
        nothing_new_outcome=idle.outcome,
        omitted_with_stories=statistics.mean(omitted_live),
        in_tray=statistics.mean(len(t) for t in trays),
        wall_s=time.perf_counter() - started,
    )


def _kinds(by_kind: Mapping[str, float]) -> str:
    return " ".join(f"{k}:{v:.3g}" for k, v in by_kind.items()) or "-"


def coverage_report(results: Sequence[CoverageResult]) -> list[str]:
    out = [
        "6. Story coverage over a simulated day: in-process, fake clock, the Protocol fake, the real",
        f"   passes and store on SQLite; the tray never lists a fixed random {TRAY_OMITS:.0%} of the targets (when",
        "   they have stories); STORY_RECHECK_HOURS=6, REELS_BATCH_SIZE=20; passes at the hour + 0-20 min",
    ]
    rows = [
        [
            r.targets,
            f"{r.every_hours} h",
            r.passes,
            f"{r.min_share_checked:.1%} ({r.worst_hour})",
            f"{r.mean_share_checked:.1%}",
            f"{r.oldest_check_h:.1f} h",
            f"{r.extra_reels_per_pass:.2f}",
            f"{r.requests_per_pass:.1f}",
            r.first_pass,
            r.nothing_new_pass,
        ]
        for r in results
    ]
    headers = [
        "targets",
        "passes every",
        "passes",
        "checked within 6 h: min (at)",
        "mean",
        "oldest check",
        "extra reels/pass",
        "requests/pass",
        "first pass",
        "nothing-new pass",
    ]
    out.append(table(headers, rows, "rrrrrrrrrr"))
    for r in results:
        if r.every_hours == COVERAGE_EVERY[0]:
            out.append(f"  first pass, {r.targets} targets: {_kinds(r.first_pass_by_kind)};")
            out.append(f"    nothing-new pass right after it: {_kinds(r.nothing_new_by_kind)}")
    for r in results:
        shares = " ".join(f"{share:.0%}".removesuffix("%") for share in r.share_by_hour)
        out.append(f"  checked within 6 h, {r.targets} targets every {r.every_hours} h, 00:00-23:00 (%): {shares}")
    for r in results:
        out.append(
            f"  per pass, {r.targets} targets every {r.every_hours} h: {_kinds(r.by_kind_per_pass)}"
            f" (tray {r.in_tray:.0f} entries; {r.omitted_with_stories:.0f} targets with stories left out of it)"
        )
    out += [
        "  Notes",
        "  - checked within 6 h: at every full hour of the measured day (the second; the first is the warm-up),",
        "    the share of enabled targets whose story_checked_at in the database is at most 6 h old; min over the",
        "    24 hours, and the hour it happened. oldest check: the longest time since a target's last check at",
        "    any of those hours.",
        "  - extra reels/pass: reels_media requests of a pass minus ceil(tray targets with a story newer than",
        "    their marker / 20), the mean over the measured day's passes: what checking the targets the tray",
        "    left out (and the ones without stories) costs.",
        "  - first pass: a new database, every target unchecked; nothing-new pass: 5 min later, nothing posted",
        "    since. Likes out of the way (STORY_LIKES_PER_HOUR/DAY 1000/10000) so that every new story is liked",
        "    and the next pass has nothing new; the likes and seen requests are in the counts. The fake answers",
        "    the following list in one page (the real one: one request per 200 followed accounts).",
        "  - every target is followed; stories (seeded): "
        + ", ".join(f"{share:.0%} of the targets post ~{rate:g}/day" for rate, share in COVERAGE_RATES)
        + ".",
    ]
    return out


# --- 3. posts over a week ---------------------------------------------------------------------

SCHEDULER_LIMIT = timedelta(minutes=15)  # the shipped TimeoutStartSec, cron's `timeout 15m`: SIGTERM then
POST_SIZES = (50, 500)
POST_EVERY = (1, 3)  # hours between passes
POST_RATES: tuple[tuple[float, float], ...] = (
    (2.0, 0.05),
    (0.5, 0.25),
    (0.3, 0.35),
    (0.1, 0.35),
)  # posts a day, share of the targets
POST_TYPES: tuple[tuple[str, float], ...] = (
    ("photo", 0.45),
    ("album", 0.25),
    ("reel", 0.2),
    ("video", 0.1),
)  # media types, how often
PINNED_SHARE = 0.2  # of the targets keep 1-3 old posts pinned at the top of their profile
OTHERS_PER_TARGET = 0.5  # followed accounts that are not targets (~1 post a day each), per target
OTHERS_RATE = 1.0
FEED_WINDOW = timedelta(hours=36)  # the home feed ranks the followed accounts' posts of about this long
FEED_SHOWN = 0.6  # each of them is in one load of the home feed with this chance (drawn per load)
FEED_JITTER_H = 6.0  # the ranking: newest first, give or take this many hours (a normal spread)
FEED_PAGE = 8  # entries per page
FEED_PAGES = 10  # pages a load of the home feed holds (a pass reads POST_TIMELINE_PAGES of them)
FEED_SUGGESTED_EVERY = 5  # every 5th entry is a suggested post of an account nobody here follows
POST_NO_LIMITS = {  # likes out of the way: the week is about the sweep (the pacing week is about the limits)
    "post_likes_per_10_minutes": 1000,
    "post_likes_per_hour": 1000,
    "post_likes_per_day": 10000,
}
POST_BACKLOG = timedelta(days=3)  # the targets posted this long before the first pass too
DAY = timedelta(days=1)


def post_times(rng: random.Random, per_day: float, start: datetime, days: int) -> list[datetime]:
    """When one account posts: ``per_day`` posts a day on average, at hours weighted like HOUR_WEIGHTS."""
    times: list[datetime] = []
    for day in range(days):
        for _ in range(_poisson(rng, per_day)):
            hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
            times.append(start + timedelta(days=day, hours=hour, seconds=rng.randrange(3600)))
    return sorted(times)


class PostWorld:
    """The targets' posts, the followed non-targets' and strangers' posts, and what the fake Instagram shows of
    them at each moment: a profile's first page (pinned posts first, then the newest), and the home feed, built
    afresh at the first page of each pass (``new_load``): the followed accounts' posts of the last FEED_WINDOW,
    each shown with FEED_SHOWN chance, ranked newest-ish first, with suggested posts of strangers in between."""

    def __init__(self, targets: int, rng: random.Random, start: datetime, days: int) -> None:
        self.rng = rng
        self.names = {7000 + n: f"poster{n:03d}" for n in range(targets)}
        self.others = [70000 + n for n in range(round(targets * OTHERS_PER_TARGET))]  # followed, not targets
        rates, weights = zip(*POST_RATES, strict=True)
        types, type_weights = zip(*POST_TYPES, strict=True)
        self.rate: dict[int, float] = {}
        self.posts: dict[int, list[PostItem]] = {}  # by author, oldest first
        self.pinned: dict[int, list[PostItem]] = {}
        self.by_pk: dict[str, PostItem] = {}
        for pk in [*self.names, *self.others]:
            rate = rng.choices(rates, weights=weights)[0] if pk in self.names else OTHERS_RATE
            self.rate[pk] = rate
            own = [
                PostItem(f"{pk}{n:05d}", pk, at, rng.choices(types, weights=type_weights)[0], False)
                for n, at in enumerate(post_times(rng, rate, start, days))
            ]
            self.posts[pk] = own
            if pk in self.names and rng.random() < PINNED_SHARE:
                old = [start - timedelta(days=rng.uniform(20, 400)) for _ in range(rng.randint(1, 3))]
                self.pinned[pk] = [
                    PostItem(f"{pk}9{n:04d}", pk, at, "photo", False, pinned=True)
                    for n, at in enumerate(sorted(old, reverse=True))
                ]
            for post in [*own, *self.pinned.get(pk, [])]:
                self.by_pk[post.pk] = post
        self.taken = {pk: [p.taken_at for p in own] for pk, own in self.posts.items()}
        self.followed_posts = sorted((p for own in self.posts.values() for p in own), key=lambda p: p.taken_at)
        self.followed_taken = [p.taken_at for p in self.followed_posts]
        self.liked: set[str] = set()
        self._liked_seen = 0
        self.load: list[list[PostItem]] | None = None  # this pass's home feed, made at its first page
        self.suggested = 0

    def target_posts(self) -> list[PostItem]:
        return [p for pk in self.names for p in self.posts[pk]]

    def followed(self) -> list[UserRef]:
        names = self.names | {pk: f"other{pk}" for pk in self.others}
        return [UserRef(pk, name, True) for pk, name in names.items()]

    def _sync_liked(self, ig: ScriptedInstagram) -> None:
        self.liked.update(ig.liked[self._liked_seen :])
        self._liked_seen = len(ig.liked)

    def _shown(self, post: PostItem) -> PostItem:
        return replace(post, has_liked=post.pk in self.liked)

    def profile(self, ig: ScriptedInstagram, user_pk: int, count: int) -> list[PostItem]:
        """The first page of a profile's feed at this moment: pinned posts, then the newest, newest first."""
        self._sync_liked(ig)
        high = bisect.bisect_right(self.taken.get(user_pk, []), ig.clock())
        newest = self.posts.get(user_pk, [])[max(0, high - count) : high][::-1]
        return [self._shown(p) for p in [*self.pinned.get(user_pk, []), *newest]][:count]

    def home_feed(self, now: datetime) -> list[list[PostItem]]:
        low = bisect.bisect_left(self.followed_taken, now - FEED_WINDOW)
        high = bisect.bisect_right(self.followed_taken, now)
        shown = [p for p in self.followed_posts[low:high] if self.rng.random() < FEED_SHOWN]
        jitter = FEED_JITTER_H * 3600
        ranked = sorted(shown, key=lambda p: p.taken_at.timestamp() + self.rng.gauss(0, jitter), reverse=True)
        entries: list[PostItem] = []
        for post in ranked:
            if len(entries) % FEED_SUGGESTED_EVERY == FEED_SUGGESTED_EVERY - 1:
                entries.append(self._suggestion(now))
            entries.append(self._shown(post))
            if len(entries) >= FEED_PAGE * FEED_PAGES:
                break
        return [entries[i : i + FEED_PAGE] for i in range(0, len(entries), FEED_PAGE)]

    def _suggestion(self, now: datetime) -> PostItem:
        """A post of an account nobody here follows (a suggestion, a paid partnership): never to be liked."""
        self.suggested += 1
        author = 900000 + self.rng.randrange(5000)
        at = now - timedelta(hours=self.rng.uniform(1, 72))
        post = PostItem(f"9{self.suggested:08d}", author, at, "reel", False)
        self.by_pk[post.pk] = post
        return post

    def before(self, ig: ScriptedInstagram, name: str) -> None:
        if name == "timeline_page":
            if self.load is None:
                self._sync_liked(ig)
                self.load = self.home_feed(ig.clock())
            ig.timeline = self.load


@dataclass
class RecordingInstagram(ScriptedInstagram):
    """The Protocol fake that also keeps, on each request of its log (``calls``, each with the fake clock's time),
    what the request carried or brought back (``Call.items``): the stories of a seen report (with ``arg``, their
    (pk, seen_at), as sent), the tray's entries, the stories of a reels answer, the posts of a page. A request
    whose answer was lost keeps what it carried; one that failed keeps nothing. Arguments beyond the ones it
    needs go to the fake as they are (the Protocol may grow some)."""

    def _keep(self, first: int, items: Iterable[Any]) -> None:
        if len(self.calls) > first:
            self.calls[first].items = tuple(items)

    def reels_tray(self, *args: Any, **kwargs: Any) -> list[TrayEntry]:
        first = len(self.calls)
        tray = super().reels_tray(*args, **kwargs)
        self._keep(first, tray)
        return tray

    def reels_media(self, user_pks: Sequence[int], *args: Any, **kwargs: Any) -> dict[int, list[StoryItem]]:
        first = len(self.calls)
        found = super().reels_media(user_pks, *args, **kwargs)
        self._keep(first, (item for items in found.values() for item in items))
        return found

    def user_stories(self, user_pk: int, *args: Any, **kwargs: Any) -> list[StoryItem]:
        first = len(self.calls)
        found = super().user_stories(user_pk, *args, **kwargs)
        self._keep(first, found)
        return found

    def mark_seen(self, stories: Sequence[StoryItem], seen_at: Sequence[int], *args: Any, **kwargs: Any) -> None:
        first = len(self.calls)
        try:
            super().mark_seen(stories, seen_at, *args, **kwargs)
        finally:
            self._keep(first, stories)

    def user_posts(self, user_pk: int, count: int, max_id: str | None = None) -> tuple[list[PostItem], str | None]:
        first = len(self.calls)
        page, cursor = super().user_posts(user_pk, count, max_id)
        self._keep(first, page)
        return page, cursor

    def timeline_page(self, max_id: str | None, *args: Any, **kwargs: Any) -> tuple[list[PostItem], str | None]:
        first = len(self.calls)
        page, cursor = super().timeline_page(max_id, *args, **kwargs)
        self._keep(first, page)
        return page, cursor


@dataclass
class LiveInstagram(RecordingInstagram):
    """The Protocol fake with each profile read answered from the world at the moment of the request (the
    ``before`` hook does not know whose feed is asked for)."""

    world: PostWorld | None = None

    def user_posts(self, user_pk: int, count: int, max_id: str | None = None) -> tuple[list[PostItem], str | None]:
        assert self.world is not None
        if max_id is None:  # the feed as it is now, as deep as a pass may scroll it (the fake pages through it)
            self.posts[user_pk] = self.world.profile(self, user_pk, count * planning.PROFILE_PAGES + 1)
        return super().user_posts(user_pk, count, max_id)


@dataclass
class PostWeekResult:
    targets: int
    every_hours: int
    passes: int
    outcomes: dict[str, int]
    posts_per_day: float  # the targets', during the week
    requests_per_day: list[int]  # UTC days 1-7
    by_kind_per_day: dict[str, list[int]]  # timeline / profiles / likes / other
    eligible: int  # target posts taken during the week that aged out (POST_MAX_AGE_DAYS) before it ended
    liked_in_time: int  # of those, liked while younger than POST_MAX_AGE_DAYS
    missed: list[str]  # the ones that aged out unliked: "name taken_at (pinned n, ...)"
    young_at_end: int  # target posts taken in the last POST_MAX_AGE_DAYS of the week
    young_liked: int
    young_unliked_older_than_recheck: int  # of those not liked yet, the ones older than the recheck + a gap
    backlog: int  # target posts younger than POST_MAX_AGE_DAYS at the first pass
    backlog_liked: int
    worst_delay_h: float  # posting -> like, over the posts taken during the week
    median_delay_h: float
    via_timeline: int
    via_sweep: int
    steady_profile_reads: list[int]  # per pass from 24 h after the first pass on
    steady_timeline_reads: list[int]
    second_pass_profile_reads: int  # the pass right after the first (its gap: the first pass's length)
    goal_reads: int  # POST_TIMELINE_PAGES + ceil(n / 8)
    non_target_likes: int
    longest_unread_h: float  # the longest a target went without a profile read (to the end of the week)
    first_pass: int
    first_pass_by_kind: dict[str, int]
    first_pass_minutes: float
    pass_minutes: list[float]  # each pass, start to end on the fake clock (its pauses: the default delays)
    stopped_by_limit: int  # passes the scheduler's limit (SCHEDULER_LIMIT) stopped with SIGTERM
    deferred_reads: int  # profile reads the passes' time budget left for the next pass, over the week
    wall_s: float

    @property
    def steady_reads(self) -> list[int]:
        return [a + b for a, b in zip(self.steady_profile_reads, self.steady_timeline_reads, strict=True)]


POST_KINDS = {"timeline_page": "timeline", "user_posts": "profiles", "like_post": "likes"}


def posts_week(targets: int, every_hours: int, *, workdir: Path, seed: int) -> PostWeekResult:
    """A week of run-posts passes every ``every_hours`` (at the hour + 0-20 min) from the first one, on a new
    database, at midnight of day 1; the targets posted for POST_BACKLOG before it as well."""
    started = time.perf_counter()
    rng = random.Random(seed)
    end = SIM_START + timedelta(days=WEEK_DAYS)
    world = PostWorld(targets, rng, SIM_START - POST_BACKLOG, WEEK_DAYS + POST_BACKLOG.days)
    store = fresh_store(workdir / f"posts-{targets}-{every_hours}.db")
    overrides = {"target_accounts": ",".join(world.names.values()), "timezone": "UTC"}
    h = Harness(store, FakeClock(SIM_START), overrides | POST_NO_LIMITS | default_delays())
    h.store_session()
    settings = h.settings()
    max_age, recheck = timedelta(days=settings.post_max_age_days), settings.post_recheck
    ig = LiveInstagram(h.clock, followed=world.followed(), before=world.before, world=world)
    passes: list[PassLog] = []
    from_timeline: set[str] = set()
    for hour in range(0, WEEK_DAYS * 24, every_hours):
        start_at(h, rng, SIM_START + timedelta(hours=hour))
        if h.clock() >= end:
            break
        world.load = None
        log = one_pass(h, ig, rng, run_posts, limit=SCHEDULER_LIMIT)
        passes.append(log)
        calls = ig.calls[log.first_call : log.first_call + log.calls]
        pages: list[list[PostItem]] = world.load or []
        served = {
            p.pk
            for c in calls
            if c.name == "timeline_page" and int(c.arg or 0) < len(pages)
            for p in pages[int(c.arg or 0)]
        }
        from_timeline |= {str(c.arg) for c in calls if c.name == "like_post" and c.arg in served}
    h.clock.now = max(h.clock.now, end)
    store.engine.dispose()

    likes = [c for c in ig.calls if c.name == "like_post"]
    liked_at = {str(c.arg): c.at for c in likes}
    first_start = passes[0].started
    own = world.target_posts()
    eligible = [p for p in own if p.taken_at >= SIM_START and p.taken_at + max_age <= end]
    in_time = [p for p in eligible if p.pk in liked_at and liked_at[p.pk] < p.taken_at + max_age]
    young = [p for p in own if end - max_age < p.taken_at <= end]
    overdue = end - recheck - timedelta(hours=every_hours, seconds=SCHEDULE_DELAY)
    backlog = [p for p in own if first_start - max_age < p.taken_at <= first_start]
    delays = [
        (liked_at[p.pk] - p.taken_at) / timedelta(hours=1) for p in own if p.taken_at >= SIM_START and p.pk in liked_at
    ]
    reads: dict[int, list[datetime]] = {pk: [] for pk in world.names}
    for c in ig.calls:
        if c.name == "user_posts" and not isinstance(c.arg, tuple):  # a first page (a tuple: a later one)
            reads[int(c.arg)].append(c.at)
    unread = max(
        max(b - a for a, b in zip([first_start, *times], [*times, end], strict=True)) for times in reads.values()
    )
    kinds = [*POST_KINDS.values(), "other"]
    by_kind = {k: _per_day([c.at for c in ig.calls if POST_KINDS.get(c.name, "other") == k]) for k in kinds}
    steady = [ig.calls[p.first_call : p.first_call + p.calls] for p in passes if p.started >= first_start + DAY]
    second = ig.calls[passes[1].first_call : passes[1].first_call + passes[1].calls]
    first_calls = ig.calls[passes[0].first_call : passes[0].first_call + passes[0].calls]
    week_posts = sum(1 for p in own if SIM_START <= p.taken_at < end)
    return PostWeekResult(
        targets=targets,
        every_hours=every_hours,
        passes=len(passes),
        outcomes=dict(Counter(p.outcome for p in passes)),
        posts_per_day=week_posts / WEEK_DAYS,
        requests_per_day=_per_day([c.at for c in ig.calls]),
        by_kind_per_day=by_kind,
        eligible=len(eligible),
        liked_in_time=len(in_time),
        missed=[_missed(world, p, liked_at) for p in eligible if p not in in_time],
        young_at_end=len(young),
        young_liked=sum(1 for p in young if p.pk in liked_at),
        young_unliked_older_than_recheck=sum(1 for p in young if p.pk not in liked_at and p.taken_at < overdue),
        backlog=len(backlog),
        backlog_liked=sum(1 for p in backlog if p.pk in liked_at),
        worst_delay_h=max(delays, default=0.0),
        median_delay_h=statistics.median(delays) if delays else 0.0,
        via_timeline=len(from_timeline),
        via_sweep=len(likes) - len(from_timeline),
        steady_profile_reads=[sum(1 for c in calls if c.name == "user_posts") for calls in steady],
        steady_timeline_reads=[sum(1 for c in calls if c.name == "timeline_page") for calls in steady],
        second_pass_profile_reads=sum(1 for c in second if c.name == "user_posts"),
        goal_reads=settings.post_timeline_pages + math.ceil(targets / 8),
        non_target_likes=sum(1 for c in likes if world.by_pk[str(c.arg)].user_pk not in world.names),
        longest_unread_h=unread / timedelta(hours=1),
        first_pass=passes[0].calls,
        first_pass_by_kind=dict(Counter(c.name for c in first_calls)),
        first_pass_minutes=(passes[0].ended - passes[0].started) / timedelta(minutes=1),
        pass_minutes=[(p.ended - p.started) / timedelta(minutes=1) for p in passes],
        stopped_by_limit=sum(1 for p in passes if p.outcome == "interrupted"),
        deferred_reads=sum(p.deferred for p in passes),
        wall_s=time.perf_counter() - started,
    )


def _missed(world: PostWorld, post: PostItem, liked_at: Mapping[str, datetime]) -> str:
    author = post.user_pk
    when = _when(post.taken_at.isoformat())
    late = f", liked {_when(liked_at[post.pk].isoformat())}" if post.pk in liked_at else ""
    pinned = len(world.pinned.get(author, []))
    return f"{world.names[author]} (~{world.rate[author]:g}/day, {pinned} pinned) {post.media_type} of {when}{late}"


def _med_max(values: Sequence[float]) -> str:
    return f"{statistics.median(values):g} / {max(values):g}" if values else "-"


def posts_report(results: Sequence[PostWeekResult]) -> list[str]:
    pages = int(Settings.model_fields["post_timeline_pages"].default)
    out = [
        "7. Posts over a simulated week: in-process, fake clock, the Protocol fake, the real run-posts,",
        "   store and limits on SQLite; a pass every 1 or 3 h + 0-20 min from midnight of day 1 on a new database;",
        f"   POST_TIMELINE_PAGES={pages}, POST_RECHECK_HOURS=24, POST_MAX_AGE_DAYS=3, POST_FEED_COUNT=6, every target",
        "   followed; the home feed a ranked, lossy selection (see the notes)",
    ]
    rows: list[list[object]] = []
    for r in results:
        likes = r.via_timeline + r.via_sweep
        rows.append(
            [
                r.targets,
                f"{r.every_hours} h",
                r.passes,
                f"{r.posts_per_day:.0f}",
                f"{r.liked_in_time}/{r.eligible}",
                f"{r.median_delay_h:.1f} / {r.worst_delay_h:.1f} h",
                f"{r.via_timeline / likes:.0%} / {r.via_sweep / likes:.0%}" if likes else "-",
                f"{r.longest_unread_h:.1f} h",
                r.non_target_likes,
                f"{statistics.median(r.pass_minutes):.1f} / {max(r.pass_minutes):.1f}",
                f"{r.stopped_by_limit}",
                r.deferred_reads,
            ]
        )
    headers = [
        "targets",
        "passes every",
        "passes",
        "posts/day",
        "liked before aged out",
        "post->like med/worst",
        "likes via timeline/sweep",
        "longest unread",
        "non-target likes",
        f"pass min med/max (limit {SCHEDULER_LIMIT / timedelta(minutes=1):g})",
        "stopped by the limit",
        "reads deferred",
    ]
    out.append(table(headers, rows, "rrrrrrrrrrrr"))
    out.append("")
    rows = []
    for r in results:
        total = sorted(r.requests_per_day)
        split = " / ".join(f"{statistics.median(r.by_kind_per_day[k]):g}" for k in (*POST_KINDS.values(), "other"))
        rows.append(
            [
                r.targets,
                f"{r.every_hours} h",
                f"{statistics.median(total):g} / {total[-1]}",
                split,
                _med_max(r.steady_profile_reads),
                _med_max(r.steady_reads),
                r.goal_reads if r.every_hours == 3 else "",
            ]
        )
    headers = [
        "targets",
        "passes every",
        "requests/day med/max",
        "per day (med) timeline/profiles/likes/other",
        "steady pass: profile reads med/max",
        "+ timeline med/max",
        "goal",
    ]
    out.append(table(headers, rows, "rrrrrrr"))
    for r in results:
        if r.every_hours == POST_EVERY[0]:
            out.append(
                f"  first pass, {r.targets} targets: {r.first_pass} requests ({_kinds(r.first_pass_by_kind)}),"
                f" {r.first_pass_minutes:.0f} min with the default delays; liked {r.backlog_liked} of the"
                f" {r.backlog} posts younger than 3 days"
                + (
                    " (the others aged out before their profile's first read, spread over POST_RECHECK_HOURS, or were"
                    " past its first page)"
                    if r.backlog_liked < r.backlog
                    else ""
                )
            )
    for r in results:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items()))
        out.append(
            f"  {r.targets} targets every {r.every_hours} h: {r.passes} passes ({outcomes}); requests per day"
            f" {' '.join(map(str, r.requests_per_day))}; posted in the last 3 days: {r.young_liked}/{r.young_at_end}"
            f" liked so far ({r.young_unliked_older_than_recheck} unliked older than 24 h + a gap); the pass after"
            f" the first read {r.second_pass_profile_reads} profiles"
        )
        for line in r.missed[:5]:
            out.append(f"    aged out unliked: {line}")
        if len(r.missed) > 5:
            out.append(f"    ... and {len(r.missed) - 5} more")
    rates = ", ".join(f"{share:.0%} post ~{rate:g}/day" for rate, share in POST_RATES)
    types = ", ".join(f"{kind} {share:.0%}" for kind, share in POST_TYPES)
    out += [
        "  Notes",
        f"  - the targets (seeded): {rates}; posting hours weighted as for stories;",
        f"    {PINNED_SHARE:.0%} of them keep 1-3 old posts pinned at the top of their profile (they take places of",
        f"    its first page); media types {types} (every type eligible: POST_MEDIA_TYPES",
        f"    as shipped); {OTHERS_PER_TARGET:g} followed non-target per target, posting ~{OTHERS_RATE:g}/day.",
        "    Everybody posted for 3 days before the first pass too.",
        "  - the home feed, made afresh at the first page of each pass: the followed accounts' posts (targets and",
        f"    not) of the last {FEED_WINDOW / timedelta(hours=1):g} h, each in it with a {FEED_SHOWN:.0%} chance,",
        f"    ranked newest first give or take {FEED_JITTER_H:g} h (normal); every {FEED_SUGGESTED_EVERY}th entry a",
        f"    suggested post of an account nobody follows; {FEED_PAGE} entries a page. A profile read answers its",
        "    first page at that moment: pinned posts, then the newest, 6 in all.",
        "  - liked before aged out: the targets' posts taken during the week whose 3 days ended before it did,",
        "    liked while younger than 3 days (goal: all). post->like: from taken_at to the like, over every post",
        "    taken during the week that was liked. via timeline/sweep: the like's post was on a home-feed page",
        "    this pass read (run-posts logs it as via=timeline), else found in a profile. requests/day: UTC days",
        "    1-7 (day 1 holds the first pass); other = the daily following walk (one page in the fake).",
        "  - steady: the passes from 24 h after the first pass on (the one right after the first reads the share",
        "    of a gap as long as the first pass took; listed above). profile reads = user_posts requests;",
        "    +timeline adds the timeline_page requests; goal (3 h timer): POST_TIMELINE_PAGES + ceil(n / 8). The",
        "    timer's random 0-20 min makes a gap of 2 h 40 to 3 h 20 and a pass reads ceil(n x gap / 24 h)",
        "    profiles: the median is the 3-hour pass, the max one after a longer gap. longest unread: the longest",
        "    a target went without a profile read, from the first pass to the end of the week.",
        "  - the pass's time: from its start to its end on the fake clock (its pauses, the default delays; the",
        f"    requests themselves take no time here). A pass still running {SCHEDULER_LIMIT / timedelta(minutes=1):g}"
        " min after it started gets SIGTERM,",
        "    as the shipped systemd and cron limits do; PASS_BUDGET_MINUTES (12) plans each pass within them: the",
        "    reads it has no time for (reads deferred) come first in the next pass, and a profile whose new posts",
        "    were not all liked is not marked as checked.",
        "  - likes out of the way (POST_LIKES_PER_HOUR/DAY 1000/10000), the default delays on the fake clock;",
        "    non-target likes: likes of a post whose author is not a target (suggestions, followed non-targets).",
    ]
    return out


# --- both -------------------------------------------------------------------------------------------------


@dataclass
class Simulations:
    week_world: dict[str, Any]
    week: list[WeekResult]
    coverage: list[CoverageResult]
    posts: list[PostWeekResult]
    wall_s: float
    budget_per_day: int = 100
    lines: list[str] = field(default_factory=list)

    def report(self) -> str:
        return "\n".join(self.lines)

    def as_json(self) -> dict[str, Any]:
        week = [asdict(r) | {"per_target_min_median_max": r.per_target} for r in self.week]
        return {
            "wall_s": round(self.wall_s, 1),
            "planner_week": {"world": self.week_world, "planners": week},
            "coverage_day": [asdict(r) for r in self.coverage],
            "posts_week": [asdict(r) | {"steady_reads": r.steady_reads} for r in self.posts],
        }


def run_all(workdir: Path | None = None, seed: int = 11) -> Simulations:
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="story-liker-sim-")))
        sims = workdir / "simulate"
        sims.mkdir(exist_ok=True)
        with quiet_and_isolated(sims):
            world = week_world(seed)
            week = [
                planner_week(world, new=new, block=block, workdir=sims, seed=seed + 1)
                for new, block in ((False, True), (True, True), (True, False))
            ]
            coverage = [
                coverage_day(targets, every, workdir=sims, seed=seed + targets)
                for targets in COVERAGE_SIZES
                for every in COVERAGE_EVERY
            ]
            posts = [
                posts_week(targets, every, workdir=sims, seed=seed + 3 * targets + every)
                for targets in POST_SIZES
                for every in POST_EVERY
            ]
            budget = int(Settings.model_fields["story_likes_per_day"].default)
    elapsed = time.perf_counter() - started
    world_figures = {
        "targets": {kind: count for kind, count, _ in WEEK_TARGETS},
        "stories_per_day": {kind: rate for kind, _, rate in WEEK_TARGETS},
        "stories_taken_per_day": round(world.per_day, 1),
    }
    result = Simulations(world_figures, week, coverage, posts, elapsed, budget)
    result.lines = [*week_report(world, week, budget), "", *coverage_report(coverage), "", *posts_report(posts)]
    result.lines.append(f"\n  (simulations took {elapsed:.1f} s: " + ", ".join(
        [f"week {r.planner} {r.wall_s:.1f} s" for r in week]
        + [f"coverage {r.targets}/{r.every_hours} h {r.wall_s:.1f} s" for r in coverage]
        + [f"posts {r.targets}/{r.every_hours} h {r.wall_s:.1f} s" for r in posts]
    ) + ")")  # fmt: skip
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simulate", description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    result = run_all(seed=args.seed)
    print(result.report())
    if args.json:
        args.json.write_text(json.dumps(result.as_json(), indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
