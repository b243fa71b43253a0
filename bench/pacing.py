"""The pacing bench: a week of story and post passes, 100 targets, hourly and 3-hourly timers, ACTIVE_HOURS, the
shipped limits and delays, run twice: with 0.4.0's story like step (bench/burst.py patched in) and with the code
as it is. What it prints is measured on what was sent to the fake Instagram (each request with the fake clock's
time, the seen reports' items and times, the answers' items), by the pure functions of bench/timeline.py.

Runnable alone: ``python -m bench.pacing`` (prints the table; ``--json FILE`` writes the figures).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from bench import burst, timeline
from bench.common import table
from bench.simulate import (
    ACTIVE_HOURS,
    POST_BACKLOG,
    SCHEDULER_LIMIT,
    SIM_START,
    TRAY_OMITS,
    WEEK_DAYS,
    LiveInstagram,
    PassLog,
    PostWorld,
    RecordingInstagram,
    World,
    default_delays,
    fresh_store,
    one_pass,
    quiet_and_isolated,
    start_at,
    week_world,
)
from story_liker import planning
from story_liker.ig.types import StoryItem, UserRef
from story_liker.jobs import stories as story_pass
from story_liker.jobs.posts import run_posts
from story_liker.jobs.stories import run_stories
from story_liker.settings import Settings, parse_active_hours
from tests.fake import FakeClock, Harness

PACINGS = ("0.4.0", "current")
KINDS = ("stories", "posts")
EVERY = (1, 3)  # hours between passes
NOT_FOLLOWED = 2  # of the story targets: public accounts you do not follow
VIDEO_SHARE = 0.35  # of the stories: videos (once StoryItem carries a duration)
VIDEO_SECONDS = (4.0, 30.0)  # a story video's duration, uniform
TEN_MINUTES = timedelta(minutes=10)
HOUR = timedelta(hours=1)
STORY_KINDS = ("reels_tray", "reels_media", "user_stories", "mark_seen", "like_story")
POST_KINDS = ("timeline_page", "user_posts", "like_post")


def _default(name: str) -> Any:
    return Settings.model_fields[name].default


def window_setting(kind: str) -> str:
    return f"{'story' if kind == 'stories' else 'post'}_likes_per_10_minutes"


def old_windows() -> dict[str, int]:
    """For 0.4.0's pacing: the 10-minute windows (where the settings have them) as wide as the hourly limits,
    so that they never bind: 0.4.0 had none."""
    out: dict[str, int] = {}
    for kind in ("story", "post"):
        name = f"{kind}_likes_per_10_minutes"
        if name in Settings.model_fields:
            out[name] = int(_default(f"{kind}_likes_per_hour"))
    return out


@contextlib.contextmanager
def pacing(name: str) -> Iterator[None]:
    """0.4.0: today's passes with 0.4.0's story like step; current: the code as it is."""
    with contextlib.ExitStack() as stack:
        if name == "0.4.0":
            if not hasattr(story_pass, "_like_all"):  # the kept step stands in for it: say so, not a bare patch error
                raise RuntimeError("story_liker.jobs.stories._like_all is gone: patch bench/burst.py in where it went")
            stack.enter_context(mock.patch.object(story_pass, "_like_all", burst.like_all))
        yield


@dataclass
class PacingResult:
    kind: str  # stories | posts
    every_hours: int
    pacing: str  # 0.4.0 | current
    targets: int
    passes: int  # that sent a request
    active_passes: int  # that started inside ACTIVE_HOURS (the others exit at once)
    tray_only_passes: int
    likes: int
    max_10_min: int
    max_hour: int
    limits: str  # the like limits in force: per 10 minutes (where the settings have it) / hour / day
    on_screen: timeline.OnScreen
    seen: timeline.SeenCheck
    pass_minutes: list[float]  # the passes that liked something
    watch_s: list[float]  # of those, the watch time of what each liked
    requests_per_day: dict[str, list[int]]  # by kind, UTC days 1-7
    tray_only_per_day: list[int]
    covered: int  # stories: targets checked within STORY_RECHECK_HOURS (active time) at every pass that read
    longest_unchecked_h: float  # the longest active time a target went unchecked (passes without budget read nothing)
    liked_in_time: int  # posts: eligible posts liked before they aged out
    eligible: int
    wall_s: float

    @property
    def on_screen_share(self) -> str:
        share = self.on_screen.share
        return "-" if share is None else f"{share:.1%}"

    @property
    def coverage(self) -> str:
        if self.kind == "stories":
            return f"{self.covered}/{self.targets} (longest {self.longest_unchecked_h:.1f} h)"
        return f"{self.liked_in_time}/{self.eligible}"


def _limits(settings: Settings, kind: str) -> str:
    prefix = "story" if kind == "stories" else "post"
    window = getattr(settings, f"{prefix}_likes_per_10_minutes", None)
    hour, day = getattr(settings, f"{prefix}_likes_per_hour"), getattr(settings, f"{prefix}_likes_per_day")
    return f"{'-' if window is None else window}/{hour}/{day}"


def with_videos(stories: Sequence[StoryItem], rng: random.Random) -> list[StoryItem]:
    """A share of the stories made videos, when StoryItem has a video_duration (else they stay as they are)."""
    if "video_duration" not in {f.name for f in fields(StoryItem)}:
        return list(stories)
    out: list[StoryItem] = []
    for item in stories:
        duration = round(rng.uniform(*VIDEO_SECONDS), 1) if rng.random() < VIDEO_SHARE else None
        changes: dict[str, Any] = {"video_duration": duration}  # a field StoryItem gains later: not checked here
        out.append(replace(item, **changes))
    return out


def story_week(every_hours: int, name: str, *, workdir: Path, seed: int) -> PacingResult:
    """100 targets (4 very busy, 16 busy, 80 quiet; NOT_FOLLOWED of them public and not followed, TRAY_OMITS of
    the followed ones never in the tray), a run-stories pass every ``every_hours`` + 0-20 min, the shipped
    limits and delays, ACTIVE_HOURS, an imported session."""
    started = time.perf_counter()
    rng = random.Random(seed)
    world = week_world(seed)
    stories = with_videos(world.stories, random.Random(seed + 1))
    pks = sorted(world.names)
    strangers = set(rng.sample(pks, NOT_FOLLOWED))
    omitted = frozenset(rng.sample(sorted(set(pks) - strangers), round(len(pks) * TRAY_OMITS))) | strangers
    store = fresh_store(workdir / f"pacing-stories-{every_hours}-{name}.db")
    overrides: dict[str, Any] = {"target_accounts": ",".join(world.names.values()), "timezone": "UTC"}
    overrides |= default_delays() | {"active_hours": ACTIVE_HOURS} | (old_windows() if name == "0.4.0" else {})
    h = Harness(store, FakeClock(SIM_START - timedelta(minutes=1)), overrides)
    h.store_session()
    view = World(world.names, stories, omitted=omitted)
    followed = [UserRef(pk, n, True) for pk, n in world.names.items() if pk not in strangers]
    users = {world.names[pk]: UserRef(pk, world.names[pk], False) for pk in strangers}
    ig = RecordingInstagram(h.clock, followed=followed, users=users, before=view.before)
    logs: list[PassLog] = []
    with pacing(name):
        for hour in range(0, WEEK_DAYS * 24, every_hours):
            start_at(h, rng, SIM_START + timedelta(hours=hour))
            logs.append(one_pass(h, ig, rng, run_stories))
    store.engine.dispose()
    return _result("stories", every_hours, name, pks, ig, logs, h.settings(), started)


def post_week(every_hours: int, name: str, *, workdir: Path, seed: int) -> PacingResult:
    """100 targets posting as in the posts week (bench/simulate.py), every one followed, a run-posts pass every
    ``every_hours`` + 0-20 min, the shipped limits and delays, ACTIVE_HOURS, the scheduler's 15-minute limit."""
    started = time.perf_counter()
    rng = random.Random(seed)
    end = SIM_START + timedelta(days=WEEK_DAYS)
    world = PostWorld(100, rng, SIM_START - POST_BACKLOG, WEEK_DAYS + POST_BACKLOG.days)
    store = fresh_store(workdir / f"pacing-posts-{every_hours}-{name}.db")
    overrides: dict[str, Any] = {"target_accounts": ",".join(world.names.values()), "timezone": "UTC"}
    overrides |= default_delays() | {"active_hours": ACTIVE_HOURS} | (old_windows() if name == "0.4.0" else {})
    h = Harness(store, FakeClock(SIM_START), overrides)
    h.store_session()
    ig = LiveInstagram(h.clock, followed=world.followed(), before=world.before, world=world)
    logs: list[PassLog] = []
    with pacing(name):
        for hour in range(0, WEEK_DAYS * 24, every_hours):
            start_at(h, rng, SIM_START + timedelta(hours=hour))
            if h.clock() >= end:
                break
            world.load = None
            logs.append(one_pass(h, ig, rng, run_posts, limit=SCHEDULER_LIMIT))
    store.engine.dispose()
    result = _result("posts", every_hours, name, sorted(world.names), ig, logs, h.settings(), started)
    likes = {str(c.arg): c.at for c in ig.calls if c.name == "like_post"}
    own = [(p.pk, p.taken_at) for p in world.target_posts() if p.taken_at >= SIM_START]
    max_age = timedelta(days=h.settings().post_max_age_days)
    result.liked_in_time, result.eligible = timeline.liked_in_time(likes, own, max_age, end)
    result.wall_s = time.perf_counter() - started
    return result


def _result(
    kind: str,
    every_hours: int,
    name: str,
    targets: Sequence[int],
    ig: RecordingInstagram,
    logs: Sequence[PassLog],
    settings: Settings,
    started: float,
) -> PacingResult:
    events = timeline.events_of(ig.calls)
    like_kind = "like_story" if kind == "stories" else "like_post"
    spans = [timeline.Span(p.started, p.ended) for p in logs if p.calls]
    figures = timeline.per_pass(events, spans, like_kind)
    liking = [f for f in figures if f.likes]
    likes = timeline.like_times(events, like_kind)
    end = SIM_START + timedelta(days=WEEK_DAYS)
    tray_only = [s.started for s, f in zip(spans, figures, strict=True) if f.tray_only]
    tray_days = timeline.per_day([timeline.Event(at, "tray only", None) for at in tray_only], SIM_START, WEEK_DAYS)
    result = PacingResult(
        kind=kind,
        every_hours=every_hours,
        pacing=name,
        targets=len(targets),
        passes=len(spans),
        active_passes=sum(1 for p in logs if planning.is_active(p.started, parse_active_hours(ACTIVE_HOURS), UTC)),
        tray_only_passes=len(tray_only),
        likes=len(likes),
        max_10_min=timeline.max_in_window(likes, TEN_MINUTES),
        max_hour=timeline.max_in_window(likes, HOUR),
        limits=_limits(settings, kind),
        on_screen=timeline.stories_on_screen(events) if kind == "stories" else timeline.posts_on_screen(events),
        seen=timeline.seen_faults(events),
        pass_minutes=[f.minutes for f in liking],
        watch_s=[f.watch_s for f in liking],
        requests_per_day=timeline.per_day(events, SIM_START, WEEK_DAYS),
        tray_only_per_day=tray_days.get("tray only", [0] * WEEK_DAYS),
        covered=0,
        longest_unchecked_h=0.0,
        liked_in_time=0,
        eligible=0,
        wall_s=0.0,
    )
    if kind == "stories" and spans:
        active = timeline.ActiveClock(SIM_START, WEEK_DAYS, parse_active_hours(ACTIVE_HOURS))
        missed = timeline.missed_rechecks(events, targets, spans, settings.story_recheck_hours, active)
        result.covered = sum(1 for n in missed.values() if not n)
        worst = timeline.longest_unchecked(events, targets, spans[0].started, end, active)
        result.longest_unchecked_h = max(worst.values())
    result.wall_s = time.perf_counter() - started
    return result


# --- the report ---------------------------------------------------------------------------------------------


def _med_max(values: Sequence[float], fmt: str = ".1f") -> str:
    return f"{statistics.median(values):{fmt}} / {max(values):{fmt}}" if values else "-"


def _ratio(r: PacingResult) -> str:
    ratios = [m * 60 / w for m, w in zip(r.pass_minutes, r.watch_s, strict=True) if w]
    return f"{min(ratios):.1f} / {statistics.median(ratios):.1f}" if ratios else "-"


@dataclass(frozen=True)
class Goal:
    ok: bool
    goal: str
    measured: str
    note: str = ""


def goals(results: Sequence[PacingResult], pacing_name: str = "current") -> list[Goal]:
    """The issue's goals, for one pacing's weeks (every timer): 100 % of the story likes on screen, no seen
    report inconsistent with the watching, no 10 minutes with more likes than the 10-minute limit, every target
    checked within STORY_RECHECK_HOURS, every eligible post liked in time."""
    mine = [r for r in results if r.pacing == pacing_name]
    stories = [r for r in mine if r.kind == "stories"]
    out: list[Goal] = []
    likes, shown = sum(r.on_screen.likes for r in stories), sum(r.on_screen.on_screen for r in stories)
    detail = "; ".join(f"{r.every_hours} h: {r.on_screen_share}" for r in stories)
    out.append(Goal(bool(likes) and shown == likes, "story likes sent while their item was on screen: 100 %",
                    f"{shown}/{likes}", detail))  # fmt: skip
    bad, reports = sum(r.seen.inconsistent for r in stories), sum(r.seen.reports for r in stories)
    out.append(Goal(bad == 0, "seen reports inconsistent with the watching: 0", f"{bad} of {reports}"))
    for kind in KINDS:
        weeks = [r for r in mine if r.kind == kind]
        limit = _default(window_setting(kind)) if window_setting(kind) in Settings.model_fields else None
        worst = max((r.max_10_min for r in weeks), default=0)
        measured = f"{worst} (limit {'none' if limit is None else limit})"
        note = "; ".join(f"{r.every_hours} h: {r.max_10_min} in 10 min, {r.max_hour} in an hour" for r in weeks)
        out.append(Goal(limit is not None and worst <= limit, f"{kind}: likes in any 10 minutes <= the 10-minute"
                        " limit", measured, note))  # fmt: skip
    covered, targets = sum(r.covered for r in stories), sum(r.targets for r in stories)
    out.append(Goal(covered == targets, "targets checked within STORY_RECHECK_HOURS at every pass: 100 %",
                    f"{covered}/{targets}", "1 h and 3 h timers"))  # fmt: skip
    posts = [r for r in mine if r.kind == "posts"]
    liked, eligible = sum(r.liked_in_time for r in posts), sum(r.eligible for r in posts)
    out.append(Goal(liked == eligible, "eligible posts liked before they aged out: 100 %", f"{liked}/{eligible}",
                    "1 h and 3 h timers"))  # fmt: skip
    return out


def report(results: Sequence[PacingResult]) -> list[str]:
    out = [
        "8. Pacing over a simulated week, for 0.4.0's story like step and the current one: in-process, fake clock,",
        f"   the Protocol fake, the real passes, store and limits on SQLite; 100 targets, ACTIVE_HOURS={ACTIVE_HOURS}"
        " UTC,",
        "   a pass every 1 or 3 h + 0-20 min, the shipped limits and delays; measured on the requests sent only",
    ]
    rows: list[list[object]] = []
    for r in results:
        misses = r.on_screen
        seen = f"{r.seen.inconsistent}/{r.seen.reports}" if r.kind == "stories" else "n/a"
        rows.append(
            [
                r.kind,
                f"{r.every_hours} h",
                r.pacing,
                r.limits,
                r.likes,
                r.max_10_min,
                r.max_hour,
                r.on_screen_share,
                f"{misses.early}/{misses.late}/{misses.never_shown}",
                seen,
                _med_max(r.pass_minutes),
                _med_max(r.watch_s, ".0f") if r.kind == "stories" else "n/a",
                _ratio(r) if r.kind == "stories" else "n/a",
                r.coverage,
            ]
        )
    headers = [
        "kind",
        "every",
        "pacing",
        "limits 10m/h/d",
        "likes",
        "max/10 min",
        "max/h",
        "on screen",
        "early/late/unshown",
        "seen reports bad",
        "pass min med/max",
        "watch s med/max",
        "pass/watch min/med",
        "checked in 6 h | liked in time",
    ]
    out.append(table(headers, rows, "llllrrrrrrrrrr"))
    out.append("")
    rows = []
    for r in results:
        kinds = STORY_KINDS if r.kind == "stories" else POST_KINDS
        other = sorted(k for k in r.requests_per_day if k not in kinds)
        total = [sum(day) for day in zip(*r.requests_per_day.values(), strict=True)]
        per_kind = [_med_max(r.requests_per_day.get(k, [0] * WEEK_DAYS), "g") for k in kinds]
        per_kind += [""] * (len(STORY_KINDS) - len(kinds))
        others = " ".join(f"{k}:{_med_max(r.requests_per_day[k], 'g')}" for k in other) or "-"
        rows.append(
            [
                r.kind,
                f"{r.every_hours} h",
                r.pacing,
                _med_max(total, "g"),
                *per_kind,
                f"{r.passes}/{r.active_passes} ({r.tray_only_passes})",
                _med_max(r.tray_only_per_day, "g"),
                others,
            ]
        )
    headers = ["kind", "every", "pacing", "requests/day med/max", "by kind med/max: 1", "2", "3", "4", "5"]
    headers += ["passes sent/active (tray only)", "tray-only/day", "other/day"]
    out.append(table(headers, rows, "lllrrrrrrrrl"))
    out.append(f"  by kind: stories 1-5 = {' '.join(STORY_KINDS)}; posts 1-3 = {' '.join(POST_KINDS)}; per UTC day 1-7")
    for r in results:
        faults = ", ".join(f"{why} {n}" for why, n in sorted(r.seen.faults.items())) or "none"
        if r.kind == "stories":
            out.append(
                f"  stories every {r.every_hours} h, {r.pacing}: {r.seen.reports} seen reports of {r.seen.items}"
                f" items; items with inconsistent times: {faults}"
            )
    out.append("")
    rows = [["PASS" if g.ok else "FAIL", g.goal, g.measured, g.note] for g in goals(results)]
    out.append("  Goals, current pacing:")
    out.append(table(["", "goal", "measured", "note"], rows, "llrl"))
    out += [
        "  Notes",
        "  - limits 10m/h/d: the like limits in force (STORY_/POST_LIKES_PER_10_MINUTES where the settings have",
        "    them, PER_HOUR, PER_DAY); 0.4.0 runs with the 10-minute windows as wide as the hourly ones (it had none).",
        "    0.4.0 = the current passes with bench/burst.py (0.4.0's story like step and seen times) patched in for",
        "    story_liker.jobs.stories._like_all; the post like step has no copy: it is the current one in both.",
        "  - max/10 min, max/h: the most accepted likes in any 10 minutes, any hour of the week (sliding).",
        "  - on screen, stories: a seen report's seen_at is when its item's watching began; it ends at the next item's",
        f"    seen_at in that report, the last item's after {timeline.PHOTO_WATCH:g} s (a photo) or its video's"
        f" duration capped at {timeline.VIDEO_WATCH_CAP:g} s",
        f"    (from the answer that brought it). A like of item k is on screen when start_k +"
        f" {timeline.MIN_ON_SCREEN:g} s <= like < end_k;",
        "    early: before that, late: after end_k, unshown: in no seen report.",
        "  - on screen, posts (no seen report exists for posts): the read sent last before the like (a profile",
        "    page or a home-feed page) showed the post, and the like came 1 s to"
        f" {timeline.POST_DWELL / timedelta(minutes=1):g} min after it; unshown: that page did",
        "    not show it (another page was read in between).",
        "  - seen reports bad: reports with an item whose seen_at is later than the report's sending, earlier than",
        "    its taken_at, not later than the item before it in the report, or earlier than the read (reels_media,",
        "    user_stories) that last brought the item before the report.",
        "  - pass min: a pass that liked something, from its start to its end (the fake clock: the pauses and",
        "    waits, requests take no time). watch s: the watch time of what the pass liked (as for on screen: a",
        f"    photo {timeline.PHOTO_WATCH:g} s, a video its duration capped); pass/watch: their ratio, lowest and"
        " median",
        "    (below 1: a pass that claims more watching than it took time).",
        "  - requests/day: every request of the UTC day, days 1-7 (day 1 holds the first pass, from a new",
        "    database). passes sent/active (tray only): the passes that sent a request, of the passes started in",
        "    the active hours (a pass with no like budget left sends nothing), and of those sent the ones that sent",
        "    only the tray. other: lookups, the daily following walk.",
        "  - checked in 6 h (stories): the targets that, at the start of every pass that sent a request, had been",
        f"    checked within STORY_RECHECK_HOURS ({_default('story_recheck_hours'):g}) of active time or were checked"
        " by that pass (a check: the tray",
        "    listed the target, or a reels_media / user_stories request asked for it). longest: the longest active",
        "    time any target went without a check, from the first pass to the end of the week: a pass with no",
        "    like budget left (the daily limit) exits without a request, so it checks nothing. liked in time",
        "    (posts): the targets' posts taken during the week whose POST_MAX_AGE_DAYS (3) ended before it did,",
        "    liked while younger (goal: all).",
        f"  - the story world: the week of section 5 (seeded); {NOT_FOLLOWED} targets public and not followed; the tray"
        f" never lists {TRAY_OMITS:.0%}",
        f"    of the followed ones; {VIDEO_SHARE:.0%} of the stories videos of"
        f" {VIDEO_SECONDS[0]:g}-{VIDEO_SECONDS[1]:g} s once StoryItem carries video_duration",
        "    (before that: all photos). The post world: section 7's, 100 targets, every one followed, a pass",
        "    stopped by SIGTERM at 15 min as the shipped timers do.",
    ]
    return out


# --- all of it ----------------------------------------------------------------------------------------------


@dataclass
class Pacing:
    results: list[PacingResult] = field(default_factory=list)
    wall_s: float = 0.0

    def report(self) -> str:
        times = ", ".join(f"{r.kind} {r.every_hours} h {r.pacing} {r.wall_s:.1f} s" for r in self.results)
        return "\n".join([*report(self.results), f"\n  (the pacing weeks took {self.wall_s:.1f} s: {times})"])

    def as_json(self) -> dict[str, Any]:
        return {"wall_s": round(self.wall_s, 1), "weeks": [asdict(r) for r in self.results]}


def run_all(workdir: Path | None = None, seed: int = 11) -> Pacing:
    started = time.perf_counter()
    result = Pacing()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="story-liker-pacing-")))
        here = workdir / "pacing"
        here.mkdir(exist_ok=True)
        with quiet_and_isolated(here):
            for every in EVERY:
                for name in PACINGS:
                    result.results.append(story_week(every, name, workdir=here, seed=seed + 1))
            for every in EVERY:
                for name in PACINGS:
                    result.results.append(post_week(every, name, workdir=here, seed=seed + 3 * 100 + every))
    result.wall_s = time.perf_counter() - started
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pacing", description=__doc__)
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
