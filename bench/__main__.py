"""`make bench`: requests per pass against floor and a naive script, local overhead, SQL, cleanup, memory,
what a like's own connection costs on the production transport (bench/transport.py), the fault
simulation's whole matrix (bench/faults.py) and every command after a year of use (bench/year.py).

Everything runs against the local Instagram double (``tests/double/``) on loopback, with the real
``story-liker`` processes (through ``bench/sqlprobe.py``, which is the CLI's ``main`` plus a SQL
statement counter). Prints a table with PASS/MISS against the targets and writes bench/results.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import cleanup, faults, naive, simulate, transport, year
from bench.common import (
    NO_LIMITS,
    Population,
    Proc,
    base_env,
    breakdown,
    cli_command,
    cli_env,
    login,
    populate,
    probe_command,
    run_measured,
    table,
)
from bench.pacing import goals as pacing_goals
from bench.pacing import run_all as pacing_weeks

if TYPE_CHECKING:
    from tests.double import InstagramDouble

RESULTS = Path(__file__).with_name("results.json")
SIZES = (50, 500)
REELS_BATCH = 20
FOLLOWING_PAGE = 200
TIMELINE_PAGES = 2  # POST_TIMELINE_PAGES as shipped
SWEEP_SHARE = 8  # a steady post pass on a 3-hour timer reads 1/8 of the profiles (POST_RECHECK_HOURS=24)
STEADY_POST_GAP = timedelta(hours=3)  # the steady post pass comes this long after the first (see clock_moved)


@dataclass
class PassResult:
    kind: str  # stories | posts
    targets: int
    stories_per_target: int
    phase: str  # first | steady
    requests: int
    floor: int
    by_kind: dict[str, int]
    naive: int | None
    naive_by_kind: dict[str, int]
    likes: int
    items_seen: int
    self_reported_requests: int | None
    outcome: str
    wall_s: float
    cpu_s: float
    maxrss_mb: float
    statements: int | None
    sample: int = 0  # 0: the full scenario; 1, 2...: repeats of the story passes for the timings

    @property
    def ours_per_floor(self) -> float:
        return self.requests / self.floor if self.floor else math.inf

    @property
    def naive_per_ours(self) -> float | None:
        return self.naive / self.requests if self.naive is not None and self.requests else None


@dataclass
class Check:
    target: str
    measured: str
    ok: bool
    note: str = ""


@dataclass
class Bench:
    passes: list[PassResult] = field(default_factory=list)
    help_runs_s: list[float] = field(default_factory=list)
    cleanups: list[cleanup.CleanupResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def find(self, kind: str, targets: int, phase: str, stories_per_target: int = 3, sample: int = 0) -> PassResult:
        key = (kind, targets, phase, stories_per_target, sample)
        for r in self.passes:
            if (r.kind, r.targets, r.phase, r.stories_per_target, r.sample) == key:
                return r
        raise KeyError(key)

    def samples(self, targets: int, phase: str) -> list[PassResult]:
        """Every measured story pass of the standard population (3 stories per active target)."""
        return [
            r
            for r in self.passes
            if (r.kind, r.targets, r.phase, r.stories_per_target) == ("stories", targets, phase, 3)
        ]


# --- passes -----------------------------------------------------------------------------------------------


def story_floor(checked: int, with_likes: int, likes: int) -> int:
    """1 tray + ceil(targets to check / 20) reels (a first pass checks every target) + 1 seen per target
    with likes (as the app marks a reel seen while watching it) + 1 per like."""
    return 1 + math.ceil(checked / REELS_BATCH) + with_likes + likes


def post_floor(targets: int, likes: int, *, first: bool, pages: int = TIMELINE_PAGES) -> int:
    """The home feed's pages (POST_TIMELINE_PAGES) + on a first pass one profile read (the first of the new targets:
    the others' first reads are spread over POST_RECHECK_HOURS), on a steady pass (3 h later on a 3-hour timer) the
    sweep's share, ceil(targets / 8): the first reads due by then + 1 per like."""
    profiles = 1 if first else math.ceil(targets / SWEEP_SHARE)
    return pages + profiles + likes


def clock_moved(database: Path, by: timedelta) -> int:
    """The clock moved ``by``: every target's stored ``post_checked_at`` and ``added_at`` are moved back that far (a
    direct UPDATE on the bench's SQLite file, stored as naive UTC text the way SQLAlchemy writes it), so the next
    run-posts sees its last pass, and the targets' addition, that long ago. Returns the post checks moved."""
    queries = {  # fixed statements, one per column
        "post_checked_at": (
            "SELECT id, post_checked_at FROM target WHERE post_checked_at IS NOT NULL",
            "UPDATE target SET post_checked_at = ? WHERE id = ?",
        ),
        "added_at": (
            "SELECT id, added_at FROM target WHERE added_at IS NOT NULL",
            "UPDATE target SET added_at = ? WHERE id = ?",
        ),
    }
    moved: dict[str, int] = {}
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        for column, (select, update) in queries.items():
            earlier = [
                ((datetime.fromisoformat(at) - by).isoformat(sep=" ", timespec="microseconds"), target_id)
                for target_id, at in db.execute(select).fetchall()
            ]
            db.executemany(update, earlier)
            moved[column] = len(earlier)
    return moved["post_checked_at"]


def _measure_pass(
    double: InstagramDouble, env: dict[str, str], workdir: Path, command: str
) -> tuple[Proc, int, dict[str, int]]:
    double.reset_requests()
    proc = run_measured(probe_command(command), env, workdir, probe=True).check(command)
    return proc, double.count(), breakdown(double)


def _measure_naive(
    double: InstagramDouble, script: Callable[[InstagramDouble, Sequence[str]], naive.NaiveRun], names: list[str]
) -> tuple[int, dict[str, int], naive.NaiveRun]:
    double.reset_requests()
    run = script(double, names)
    return double.count(), breakdown(double), run


def scenario(
    bench: Bench,
    targets: int,
    workdir: Path,
    *,
    stories_per_target: int = 3,
    stories_liked: int = 1,
    posts: bool = True,
    compare: bool = True,
    sample: int = 0,
) -> None:
    """One double, one database: story pass twice, post pass twice, then (``compare``) the naive script
    twice each (after ours: it likes everything, whatever was liked before)."""
    from tests.double import InstagramDouble

    label = f"{targets} targets, {stories_per_target} stories" + (f", repeat {sample}" if sample else "")
    print(f"  {label}: ", end="", flush=True)
    with InstagramDouble() as double:
        population = populate(
            double,
            targets,
            stories_per_target=stories_per_target,
            stories_liked=stories_liked if stories_per_target else 0,
            posts_per_target=2 if posts else 0,
        )
        database = workdir / f"bench-{targets}-{stories_per_target}-{sample}.db"
        env = cli_env(double, f"sqlite:///{database}", target_accounts=",".join(population.names), **NO_LIMITS)
        login(double, env, workdir)
        kinds = [("stories", "run-stories", naive.like_stories)]
        if posts:
            kinds.append(("posts", "run-posts", naive.like_posts))
        runs: list[tuple[str, str, Proc, int, dict[str, int]]] = []
        for kind, command, _ in kinds:
            for phase in ("first", "steady"):
                print(f"{command} {phase}, ", end="", flush=True)
                if (kind, phase) == ("posts", "steady"):  # 3 h later on a 3-hour timer: the sweep takes its 1/8
                    moved = clock_moved(database, STEADY_POST_GAP)
                    read = runs[-1][4].get("feed", 0)  # the profiles the first post pass read
                    if moved != read:
                        bench.notes.append(f"{label}: the clock moved for {moved} targets' post checks, not {read}")
                runs.append((kind, phase, *_measure_pass(double, env, workdir, command)))
            missed = set(population.story_ids) - double.liked_story_ids
            if kind == "stories" and missed:
                bench.notes.append(f"{label}: {len(missed)} stories still not liked after two story passes")
        naive_runs: dict[tuple[str, str], tuple[int, dict[str, int], naive.NaiveRun]] = {}
        for kind, _, script in kinds if compare else []:
            for phase in ("first", "steady"):
                print(f"naive {kind} {phase}, ", end="", flush=True)
                naive_runs[(kind, phase)] = _measure_naive(double, script, population.names)
        print("done", flush=True)
    for kind, phase, proc, requests, by_kind in runs:
        result = _pass_result(
            kind, phase, population, stories_per_target, proc, requests, by_kind, naive_runs.get((kind, phase))
        )
        result.sample = sample
        bench.passes.append(result)
        _sanity(bench, label, result, population)
    for (kind, phase), (_, _, run) in naive_runs.items():
        if run.errors:
            bench.notes.append(f"{label}: the naive {kind} script failed on {run.errors} targets in its {phase} run")


def _sanity(bench: Bench, label: str, result: PassResult, population: Population) -> None:
    """What a pass should have done besides its request count; anything else becomes a note."""
    where = f"{label}, {result.kind} {result.phase}"
    if result.self_reported_requests != result.requests:
        bench.notes.append(
            f"{where}: run_finished says {result.self_reported_requests} requests, the double saw {result.requests}"
        )
    if result.kind == "stories":
        due = population.story_likes_needed if result.phase == "first" else 0
        if result.likes != due:
            bench.notes.append(f"{where}: liked {result.likes}, expected {due}")
    elif result.likes > population.post_likes_needed:  # the first pass likes what the home feed and its first profile
        # read show, the steady one what the profiles due by then show: the rest as the others come round
        bench.notes.append(f"{where}: liked {result.likes}, more than the {population.post_likes_needed} due")
    pages = result.by_kind.get("following", 0)
    if (result.kind, result.phase, result.stories_per_target, result.sample) == ("stories", "first", 3, 0):
        expected = math.ceil(result.targets / FOLLOWING_PAGE)
        lookups = result.by_kind.get("lookup", 0)
        state = "as expected" if (pages, lookups) == (expected, 0) else f"expected {expected} pages and 0 lookups"
        bench.notes.append(
            f"{where}: the following list ({result.targets} followed, {FOLLOWING_PAGE} per page) took {pages}"
            f" page requests and {lookups} username lookups ({state})"
        )
    elif pages and result.phase == "steady":
        bench.notes.append(f"{where}: walked the following list again ({pages} requests)")


def _pass_result(
    kind: str,
    phase: str,
    population: Population,
    stories_per_target: int,
    proc: Proc,
    requests: int,
    by_kind: dict[str, int],
    naive_run: tuple[int, dict[str, int], naive.NaiveRun] | None,
) -> PassResult:
    summary = proc.summary()
    first = phase == "first"
    if kind == "stories":
        likes_due = population.story_likes_needed if first else 0
        with_likes = population.with_stories if likes_due else 0
        floor = story_floor(len(population.names) if first else 0, with_likes, likes_due)
        seen = int(summary.get("stories_seen", 0))
    else:  # every like is one the profiles and home-feed pages read showed: the floor counts them as sent
        floor = post_floor(len(population.names), int(summary.get("liked", 0)), first=first)
        seen = int(summary.get("posts_seen", 0))
    return PassResult(
        kind=kind,
        targets=len(population.names),
        stories_per_target=stories_per_target,
        phase=phase,
        requests=requests,
        floor=floor,
        by_kind=by_kind,
        naive=naive_run[0] if naive_run else None,
        naive_by_kind=naive_run[1] if naive_run else {},
        likes=int(summary.get("liked", 0)),
        items_seen=seen,
        self_reported_requests=summary.get("requests"),
        outcome=str(summary.get("outcome", "?")),
        wall_s=proc.wall_s,
        cpu_s=proc.cpu_s,
        maxrss_mb=proc.peak_rss_mb if proc.peak_rss_mb is not None else proc.maxrss_mb,
        statements=proc.statements,
    )


def help_cold_start(runs: int = 9) -> list[float]:
    """Wall time of `story-liker --help` processes, one after the other (the page cache is warm)."""
    with tempfile.TemporaryDirectory(prefix="bench-help-") as scratch:
        return [
            run_measured(cli_command("--help"), base_env(), Path(scratch)).check("--help").wall_s for _ in range(runs)
        ]


# --- report -----------------------------------------------------------------------------------------------


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _kinds(by_kind: dict[str, int]) -> str:
    return " ".join(f"{kind}:{count}" for kind, count in by_kind.items()) or "-"


def _ms_per(seconds: float, items: int) -> float:
    return seconds / items * 1000 if items else math.nan


@dataclass
class Timing:
    """The repeated story-pass timings of one population size (first pass minus steady pass, per story)."""

    targets: int
    cpu_ms: list[float]  # per processed story, one value per repeat
    wall_ms: list[float]
    idle_wall_s: list[float]  # the steady (nothing new) pass
    peak_rss_mb: float

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_ms)

    @property
    def idle_median(self) -> float:
        return statistics.median(self.idle_wall_s)


def timing(bench: Bench, targets: int) -> Timing:
    """Per processed story: the first pass minus the steady pass of the same set-up (start-up, imports,
    schema check, tray, per-target bookkeeping are in both), over the stories the first pass saw."""
    firsts = sorted(bench.samples(targets, "first"), key=lambda r: r.sample)
    steadies = sorted(bench.samples(targets, "steady"), key=lambda r: r.sample)
    pairs = list(zip(firsts, steadies, strict=True))
    return Timing(
        targets,
        [_ms_per(f.cpu_s - s.cpu_s, f.items_seen) for f, s in pairs],
        [_ms_per(f.wall_s - s.wall_s, f.items_seen) for f, s in pairs],
        [s.wall_s for s in steadies],
        max(f.maxrss_mb for f in firsts),
    )


def _spread(values: Sequence[float], fmt: str = ".2f") -> str:
    return f"median {statistics.median(values):{fmt}} ({', '.join(f'{v:{fmt}}' for v in sorted(values))})"


def evaluate(bench: Bench, sims: simulate.Simulations | None = None) -> None:
    add = bench.checks.append
    for kind in ("stories", "posts"):
        for targets in SIZES:
            r = bench.find(kind, targets, "first")
            measured = f"{r.requests}/{r.floor} = {r.ours_per_floor:.3f}"
            add(Check(f"{kind} first pass, {targets} targets: ours <= 1.1 x floor", measured, r.ours_per_floor <= 1.1))
    steady = bench.find("stories", 50, "steady")
    add(Check("steady story pass, 50 followed targets: <= 2 requests", str(steady.requests), steady.requests <= 2))
    first = bench.find("stories", 50, "first")
    ratio = first.naive_per_ours or 0.0
    add(
        Check(
            "naive/ours >= 4, 50-target first story pass", f"{first.naive}/{first.requests} = {ratio:.2f}", ratio >= 4
        )
    )
    big = bench.find("stories", 500, "first")
    times = timing(bench, 500)
    cpu = times.cpu_median
    all_in = _ms_per(big.cpu_s, big.items_seen), _ms_per(big.wall_s, big.items_seen)
    total = "all-in, repeat 0: CPU {:.2f}, wall {:.2f} ms/story".format(*all_in)
    add(Check("local overhead <= 2 ms CPU per processed story (500 targets)", f"{cpu:.3f} ms", cpu <= 2.0, total))
    help_median = statistics.median(bench.help_runs_s)
    add(Check("story-liker --help cold start <= 0.25 s (median)", f"{help_median:.3f} s", help_median <= 0.25))
    for targets in SIZES:
        idle = timing(bench, targets).idle_median
        add(Check(f"nothing-to-do story pass, {targets} targets: <= 1 s wall", f"{idle:.3f} s", idle <= 1))
    for c in bench.cleanups:
        if c.backend == "sqlite":
            add(Check(f"story-liker cleanup of {c.rows:,} rows on SQLite <= 5 s", f"{c.cli_s:.2f} s", c.cli_s <= 5))
    rss = times.peak_rss_mb
    add(Check("peak RSS of a 500-target story pass <= 120 MB", f"{rss:.0f} MB", rss <= 120, "highest of the repeats"))
    if sims is not None:
        evaluate_posts_week(bench, sims.posts)


def evaluate_posts_week(bench: Bench, weeks: Sequence[simulate.PostWeekResult]) -> None:
    """The simulated post weeks (bench/simulate.py, section 7) against the posts' goals."""
    liked, eligible = sum(r.liked_in_time for r in weeks), sum(r.eligible for r in weeks)
    missed = [f"{r.targets}/{r.every_hours} h: {len(r.missed)}" for r in weeks if r.missed]
    non_target = sum(r.non_target_likes for r in weeks)
    note = ("aged out unliked " + ", ".join(missed) if missed else "4 weeks: 50/500 targets, 1/3 h") + (
        f"; {non_target} likes of non-targets" if non_target else "; no like of a non-target"
    )
    ok = liked == eligible and non_target == 0
    target = "posts week: every eligible post liked before it aged out"
    bench.checks.append(Check(target, f"{liked}/{eligible}", ok, note))
    for r in weeks:
        if (r.targets, r.every_hours) != (500, 3):
            continue
        reads = r.steady_reads
        median, high = statistics.median(reads), max(reads)
        goal = f"{TIMELINE_PAGES} + ceil(500/{SWEEP_SHARE})"
        bench.checks.append(
            Check(
                f"steady 3-hourly post pass, 500 targets: profile+timeline reads <= {goal}",
                f"median {median:g} (goal {r.goal_reads})",
                median <= r.goal_reads,
                f"max {high} (a pass after a gap of up to 3 h 20: the timer's 0-20 min); {len(reads)} passes",
            )
        )


def report(bench: Bench) -> str:
    main_passes = [r for r in bench.passes if r.stories_per_target == 3 and r.sample == 0]
    out = ["1. Instagram requests per pass, counted at the double (delays 0, like limits out of the way)"]
    rows: list[list[object]] = [
        [
            f"{r.kind} {r.phase}",
            r.targets,
            r.requests,
            r.floor,
            _ratio(r.ours_per_floor),
            r.naive,
            _ratio(r.naive_per_ours),
            r.likes,
            _kinds(r.by_kind),
        ]
        for r in main_passes
    ]
    headers = ["pass", "targets", "ours", "floor", "ours/floor", "naive", "naive/ours", "liked", "ours by endpoint"]
    out.append(table(headers, rows, "lrrrrrrrl"))
    out.append("  naive script by endpoint (it keeps no state: its second run sent the same again):")
    out.extend(
        f"    {r.kind:7} {r.targets:3} targets: {_kinds(r.naive_by_kind)}" for r in main_passes if r.phase == "first"
    )
    out.append(
        "  floor: stories 1 tray + ceil(targets to check / 20) reels + 1 seen per target with likes + 1 per like;"
    )
    out.extend(
        [
            f"         posts first: {TIMELINE_PAGES} home-feed pages (POST_TIMELINE_PAGES) + 1 profile (the first of"
            " the new targets: the others' first reads are spread over POST_RECHECK_HOURS=24) + 1 per like;",
            f"         posts steady, 3 h later on a 3-hour timer: {TIMELINE_PAGES} home-feed pages + ceil(targets /"
            f" {SWEEP_SHARE}) profiles",
            "         (the sweep's share of POST_RECHECK_HOURS=24: the first reads due by then) + 1 per like. The",
            "         clock moved 3 h: before that run every stored post_checked_at and added_at is moved back 3 h (an",
            "         UPDATE on the bench's SQLite file), nothing new posted. Likes of either: what the reads showed.",
            "         40% of the targets have 3 stories (1 liked before) and 2 recent posts (1 liked before).",
            "         A first pass also reads the own following list once. The naive script has no state: every run",
            "         looks up and reads every target and likes all it finds, the steady run the same as the first.",
        ]
    )

    out.append("")
    out.append("2. Local overhead of a story pass (delays 0, the double on loopback; fresh double and database each)")
    rows = []
    for targets in SIZES:
        firsts = sorted(bench.samples(targets, "first"), key=lambda r: r.sample)
        steadies = sorted(bench.samples(targets, "steady"), key=lambda r: r.sample)
        times = timing(bench, targets)
        for f, st, cpu, wall in zip(firsts, steadies, times.cpu_ms, times.wall_ms, strict=True):
            seconds = [f"{v:.3f}" for v in (f.wall_s, f.cpu_s, st.wall_s, st.cpu_s)]
            rows.append([targets, f.sample, f.items_seen, f.requests, *seconds, f"{cpu:.2f}", f"{wall:.2f}"])
    headers = ["targets", "repeat", "stories", "requests", "first wall s", "CPU s", "steady wall s", "CPU s"]
    out.append(table([*headers, "CPU ms/story", "wall ms/story"], rows, "rrrrrrrrrr"))
    out.append("  ms/story = (first pass - steady pass) / stories seen: start-up and per-target work cancel out.")
    for targets in SIZES:
        times = timing(bench, targets)
        out.append(
            f"  {targets} targets: CPU ms/story {_spread(times.cpu_ms)}; steady wall s {_spread(times.idle_wall_s)}"
        )
    out.append(f"  story-liker --help cold start: wall s {_spread(bench.help_runs_s, '.3f')}")
    out.append("")
    out.append("3. Database: SQL statements per CLI process (schema check and run record included; SQLite)")
    rows = []
    firsts = [r for r in bench.passes if r.sample == 0]
    for r in sorted(firsts, key=lambda r: (r.kind != "stories", r.stories_per_target, r.targets)):
        per_target = r.stories_per_target if r.kind == "stories" else 2
        rows.append([f"{r.kind} {r.phase}", r.targets, per_target, r.items_seen, r.likes, r.statements])
    out.append(table(["pass", "targets", "items/target", "items seen", "liked", "statements"], rows, "lrrrrr"))
    out.extend(_statement_model(bench))
    if bench.cleanups:
        rows = [
            [c.backend, f"{c.rows:,}", f"{c.deleted:,}", f"{c.cli_s:.2f}", f"{c.bare_delete_s:.2f}", f"{c.fill_s:.1f}"]
            for c in bench.cleanups
        ]
        headers = ["cleanup", "rows", "deleted", "story-liker cleanup s", "bare DELETE s", "bulk insert s"]
        out.append("")
        out.append(table(headers, rows, "lrrrrr"))

    out.append("")
    out.append("4. Memory: peak RSS of the story-liker process (VmHWM, reported by the process at exit)")
    rows = [[f"{r.kind} {r.phase}", r.targets, f"{r.maxrss_mb:.0f}"] for r in main_passes]
    out.append(table(["pass", "targets", "peak RSS MB"], rows, "lrr"))
    for targets in SIZES:
        peaks = [f"{r.maxrss_mb:.0f}" for r in sorted(bench.samples(targets, "first"), key=lambda r: r.sample)]
        out.append(f"  stories first, {targets} targets, every repeat: {', '.join(peaks)} MB")

    out.append("")
    out.append("Targets")
    rows = [["PASS" if c.ok else "MISS", c.target, c.measured, c.note] for c in bench.checks]
    out.append(table(["", "target", "measured", "note"], rows, "llrl"))
    if bench.notes:
        out.append("")
        out.append("Notes")
        out.extend(f"  - {note}" for note in bench.notes)
    return "\n".join(out)


def _statement_model(bench: Bench) -> list[str]:
    """Where the statements come from: per target (steady passes) and per like (1 vs 3 stories per target)."""
    small, large = SIZES
    steady = {n: bench.find("stories", n, "steady").statements or 0 for n in SIZES}
    per_target = (steady[large] - steady[small]) / (large - small)
    lines = [f"  steady story pass: {per_target:.2f} statements per extra target ({steady[small]} -> {steady[large]})"]
    for n in SIZES:
        one, three = bench.find("stories", n, "first", 1), bench.find("stories", n, "first", 3)
        per_like = ((three.statements or 0) - (one.statements or 0)) / max(three.likes - one.likes, 1)
        lines.append(
            f"  first story pass, {n} targets, 1 -> 3 stories per target: seen {one.items_seen} -> {three.items_seen},"
            f" liked {one.likes} -> {three.likes}, statements {one.statements} -> {three.statements}"
            f" ({per_like:.2f} per extra like)"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="story rows for the cleanup benchmark")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL cleanup rows")
    parser.add_argument("--repeats", type=int, default=3, help="story passes per size for the timings (>= 1)")
    parser.add_argument("--pg-url", default=cleanup.PG_URL, help="PostgreSQL server for the cleanup rows")
    parser.add_argument("--no-year", action="store_true", help="skip the year-of-use rows (bench/year.py)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    bench = Bench()
    with tempfile.TemporaryDirectory(prefix="story-liker-bench-") as scratch:
        workdir = Path(scratch)
        print("passes against the double:", flush=True)
        for targets in SIZES:
            scenario(bench, targets, workdir)
        for targets in SIZES:
            scenario(bench, targets, workdir, stories_per_target=1, stories_liked=0, posts=False, compare=False)
        for sample in range(1, args.repeats):
            for targets in SIZES:
                scenario(bench, targets, workdir, posts=False, compare=False, sample=sample)
        print("story-liker --help cold start", flush=True)
        bench.help_runs_s = help_cold_start()
        print(f"cleanup of {args.rows:,} rows: sqlite", flush=True)
        bench.cleanups.append(cleanup.sqlite(workdir, args.rows))
        why = "--no-postgres" if args.no_postgres else cleanup.postgres_reachable(args.pg_url)
        if why is None:
            print(f"cleanup of {args.rows:,} rows: postgresql", flush=True)
            bench.cleanups.append(cleanup.postgres(workdir, args.rows, args.pg_url))
        else:
            bench.notes.append(f"PostgreSQL cleanup rows skipped: {why}")
        print("in-process simulations: the planner over a week, coverage over a day, posts over a week", flush=True)
        sims = simulate.run_all(workdir)
        print("pacing weeks: stories and posts, 0.4.0's story like step and the current one", flush=True)
        paced = pacing_weeks(workdir)
        print("likes on the production transport (curl, HTTP/2, TLS) through the local TLS front", flush=True)
        like_costs = transport.measure(workdir)
        print("the fault simulation: every fault at every request of a story and a post pass", flush=True)
        fault_matrix = faults.measure()
        years: list[year.YearResult] = []
        if not args.no_year:
            print("a year of use: every command on a year's database beside a fresh one", flush=True)
            pg_url = "" if why is not None else args.pg_url
            years = year.measure(workdir, repeats=args.repeats, pg_url=pg_url)
    evaluate(bench, sims)
    for goal in (goal for result in years for goal in year.goals(result)):
        bench.checks.append(Check(goal.target, goal.measured, goal.ok, goal.note))
    bench.checks.append(
        Check(
            "fault simulation: 0 promises broken",
            f"{len(fault_matrix.violations)} in {fault_matrix.schedules} schedules",
            not fault_matrix.violations,
            "every fault at every request of a story and a post pass, then a day of runs",
        )
    )
    bench.checks += [Check(f"pacing week: {g.goal}", g.measured, g.ok, g.note) for g in pacing_goals(paced.results)]
    print()
    print(report(bench))
    print()
    print(sims.report())
    print()
    print(paced.report())
    print()
    print(transport.report(like_costs))
    print()
    print(faults.report(fault_matrix))
    for result in years:
        print()
        print(year.report(result))
    elapsed = time.perf_counter() - started
    results = _as_json(bench, elapsed) | {
        "simulations": sims.as_json(),
        "pacing": paced.as_json(),
        "like_connections": [asdict(cost) for cost in like_costs],
        "fault_simulation": {
            "schedules": fault_matrix.schedules,
            "faults": dict(fault_matrix.faults),
            "requests_per_pass": fault_matrix.indexes,
            "violations": fault_matrix.violations,
            "seconds": round(fault_matrix.seconds, 1),
        },
        "year": [asdict(result) for result in years],
    }
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\n(bench took {elapsed:.0f} s; results written to {RESULTS})")
    return 0


def _as_json(bench: Bench, elapsed: float) -> dict[str, Any]:
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "elapsed_s": round(elapsed, 1),
        "passes": [
            asdict(r) | {"ours_per_floor": r.ours_per_floor, "naive_per_ours": r.naive_per_ours} for r in bench.passes
        ],
        "help_runs_s": bench.help_runs_s,
        "cleanup": [asdict(c) for c in bench.cleanups],
        "checks": [asdict(c) for c in bench.checks],
        "notes": bench.notes,
    }


if __name__ == "__main__":
    sys.exit(main())
