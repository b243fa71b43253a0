"""A year of use: what every command costs on a database that has seen one, as a ratio to a fresh one.

The shape of a year: 300 targets, each with 3 stories and half a post a day, liked by hourly story and post
passes; every like a story or post record and an action row, every pass a run record, every day a digest
notification (delivered). The history is written day by day through the models' own tables (SQLAlchemy Core
inserts of ``story_liker.models``, so it follows the schema), and between the days whatever keeps the database
small runs as it would in that year: the passes' own pruning after each of the day's 48 simulated passes
(``jobs.maintenance.prune_store`` with a pass's bound) and, in the variant "with the cleanup timer", the daily
`cleanup` too. On PostgreSQL each database is a schema of its own, and the pruned tables get a VACUUM a day (what
autovacuum does; the year is written in minutes, which leave it no time).

The fresh database and the two year databases start from the same state: 300 followed users on the local
Instagram double (nothing new for them), logged in, one story and one post pass done. The commands then run as
real `story-liker` processes (bench/sqlprobe.py: CPU from wait4, peak RSS from the process itself), the fresh
database's beside the year's; each is the median of ``repeats`` runs.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import NO_LIMITS, Proc, cli_env, login, populate, probe_command, run_measured, table

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from tests.double import InstagramDouble

TARGETS = 300
DAYS = 365
STORIES_PER_DAY = 3
POST_EVERY_DAYS = 2  # half a post a day
PASSES_PER_HOUR = 1  # an hourly story pass and an hourly post pass
READS: list[tuple[str, ...]] = [
    ("status",),
    ("status", "--json"),
    ("report", "--since", "7d"),
    ("report", "--since", "365d"),
    ("history", "--limit", "50"),
    ("history", "--target", "target_000"),
]
PASSES: list[tuple[str, ...]] = [("run-stories",), ("run-posts",)]
READ_RATIO, READ_RSS_MB, PASS_FLOOR_RATIO, YEAR_MB = 1.3, 120.0, 1.2, 25.0


@dataclass
class Row:
    command: str
    variant: str  # "no cleanup timer" | "cleanup timer"
    fresh_cpu_s: float
    year_cpu_s: float
    year_rss_mb: float

    @property
    def ratio(self) -> float:
        return self.year_cpu_s / self.fresh_cpu_s if self.fresh_cpu_s else float("inf")


@dataclass
class YearResult:
    backend: str = "sqlite"
    rows: list[Row] = field(default_factory=list)
    size_mb: dict[str, float] = field(default_factory=dict)  # variant -> file size after the year
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # variant -> rows per table
    build_s: dict[str, float] = field(default_factory=dict)
    floors_cpu_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --- the year's history -----------------------------------------------------------------------------------


def _day_rows(
    account: str, user_pks: Sequence[int], day: datetime, serial: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """One day's story records, post records and action rows (likes an hour after the item appeared)."""
    stories, posts, actions = [], [], []
    for index, user in enumerate(user_pks):
        for n in range(STORIES_PER_DAY):
            taken = day + timedelta(hours=8 + 4 * n, minutes=index % 60)
            liked = taken + timedelta(minutes=30)
            pk = f"{3_400_000_000_000_000_000 + serial * 10_000 + index * 10 + n}_{user}"
            stories.append(
                {"account": account, "story_pk": pk, "target_user_pk": user, "taken_at": taken, "liked_at": liked}
            )
            actions.append({"account": account, "kind": "story_like", "at": liked, "item_pk": pk})
        if (serial + index) % POST_EVERY_DAYS == 0:
            taken = day + timedelta(hours=12, minutes=index % 60)
            liked = taken + timedelta(minutes=45)
            pk = str(3_500_000_000_000_000_000 + serial * 10_000 + index)
            posts.append(
                {
                    "account": account,
                    "media_pk": pk,
                    "target_user_pk": user,
                    "media_type": "photo",
                    "taken_at": taken,
                    "liked_at": liked,
                }
            )
            actions.append({"account": account, "kind": "post_like", "at": liked, "item_pk": pk})
    return stories, posts, actions


def _run_rows(account: str, day: datetime, serial: int, targets: int, liked: int) -> list[dict[str, Any]]:
    """The day's hourly story and post passes, each with the counts a real run records."""
    runs = []
    for hour in range(24):
        for offset, command in ((0, "run-stories"), (20, "run-posts")):
            started = day + timedelta(hours=hour, minutes=offset)
            counts = {
                "targets": targets,
                "stories_seen": 3 * liked // 24 if command == "run-stories" else 0,
                "posts_seen": liked // 48 if command == "run-posts" else 0,
                "liked": liked // 48,
                "would_like": 0,
                "already_liked": 0,
                "skipped": 0,
                "deferred": 0,
                "left_out": 0,
                "errors": 0,
                "gone": 0,
                "requests": 12 + liked // 48,
                "deleted": 0,
                "duration_s": 41.5,
            }
            runs.append(
                {
                    "id": f"{serial:04d}{hour:02d}{offset:02d}{command[4]}".ljust(12, "0"),
                    "account": account,
                    "command": command,
                    "started_at": started,
                    "finished_at": started + timedelta(seconds=42),
                    "exit_code": 0,
                    "outcome": "ok",
                    "counts": json.dumps(counts),
                }
            )
    return runs


def _digest(account: str, names: Sequence[str], at: datetime) -> dict[str, Any]:
    body = "\n".join(f"- {name}: {STORIES_PER_DAY} stories, 1 posts" for name in names)
    return {
        "account": account,
        "event": "digest",
        "title": f"story-liker: daily summary for {account}",
        "body": f"Since yesterday: {len(names) * STORIES_PER_DAY} story likes.\n{body}\nRequests: 600 in 48 runs.",
        "created_at": at,
        "delivered_to": json.dumps(["a1b2c3d4"]),
        "attempts": 1,
        "done_at": at + timedelta(seconds=2),
    }


def build_year(
    engine: Engine,
    account: str,
    *,
    now: datetime,
    days: int = DAYS,
    cleanup_timer: bool,
    pass_prune: Callable[[Any, str, datetime], Any] | None = None,
    daily_cleanup: Callable[[Any, str, datetime], Any] | None = None,
    daily: Callable[[], Any] | None = None,
) -> None:
    """Write ``days`` of history ending at ``now`` into the database of ``engine`` (its targets' user pks as
    the likes' owners). After each simulated pass ``pass_prune(store, account, at)`` (what a pass prunes), with
    ``cleanup_timer`` once a day ``daily_cleanup(store, account, at)`` (what `cleanup` does), and once a day
    ``daily()`` (PostgreSQL: what autovacuum does in a day, which the year's minutes leave it no time for)."""
    import sqlalchemy as sa

    from story_liker.models import Action, Notification, Post, Run, Story, Target
    from story_liker.store import Store

    store = Store(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(Target.__table__.c.user_pk, Target.__table__.c.username)  # type: ignore[attr-defined]
            .where(Target.__table__.c.account == account)  # type: ignore[attr-defined]
            .order_by(Target.__table__.c.username)  # type: ignore[attr-defined]
        ).all()
    user_pks = [int(pk) for pk, _ in rows if pk is not None]
    names = [str(name) for _, name in rows]
    start = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    for serial in range(days):
        day = start + timedelta(days=serial)
        stories, posts, actions = _day_rows(account, user_pks, day, serial)
        stories = [r for r in stories if r["liked_at"] < now]
        posts = [r for r in posts if r["liked_at"] < now]
        actions = [r for r in actions if r["at"] < now]
        runs = [r for r in _run_rows(account, day, serial, len(user_pks), len(actions)) if r["started_at"] < now]
        with engine.begin() as connection:
            for model, values in (
                (Story, stories),
                (Post, posts),
                (Action, actions),
                (Run, runs),
                (Notification, [_digest(account, names, day + timedelta(hours=9))]),
            ):
                if values:
                    connection.execute(sa.insert(model.__table__), values)  # type: ignore[union-attr]  # SQLModel tables have one
        if pass_prune is not None:
            for hour in range(24):
                for _ in range(2 * PASSES_PER_HOUR):
                    pass_prune(store, account, min(day + timedelta(hours=hour, minutes=30), now))
        if cleanup_timer and daily_cleanup is not None:
            daily_cleanup(store, account, min(day + timedelta(hours=23, minutes=45), now))
        if daily is not None:
            daily()


def _keep() -> Any:
    """The default retention (story_liker.retention.Keep), or None before there was one."""
    try:
        from story_liker import retention
        from story_liker.settings import load
    except ImportError:  # a story-liker from before the passes pruned
        return None
    return retention.Keep.of(load(ig_username="bench"))


def _pass_prune() -> Callable[[Any, str, datetime], Any] | None:
    """What a like pass prunes on its way in (None: passes do not prune)."""
    keep = _keep()
    if keep is None:
        return None
    from story_liker import retention
    from story_liker.jobs.maintenance import prune_store

    return lambda store, account, at: prune_store(store, account, at, keep, limit=retention.PRUNE_BATCH)


def _daily_cleanup() -> Callable[[Any, str, datetime], Any]:
    """What the daily `cleanup` timer does (default retention)."""
    keep = _keep()
    if keep is None:
        return lambda store, account, at: store.delete_stories_before(account, at - timedelta(hours=24), at)
    from story_liker.jobs.maintenance import prune_store

    return lambda store, account, at: prune_store(store, account, at, keep, limit=None)


def table_counts(engine: Engine) -> dict[str, int]:
    import sqlalchemy as sa

    with engine.connect() as connection:
        return {
            name: int(connection.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one())  # noqa: S608
            for name in ("story", "post", "action", "run", "notification")
        }


def sqlite_size_mb(path: Path) -> float:
    """The database file's size once its WAL is checkpointed into it."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6


# --- the measured commands ----------------------------------------------------------------------------------


def _cpu(proc: Proc) -> float:
    return proc.cpu_s


def _rss(proc: Proc) -> float:
    return proc.peak_rss_mb if proc.peak_rss_mb is not None else proc.maxrss_mb


def _measure(args: Sequence[str], env: dict[str, str], workdir: Path, repeats: int) -> tuple[float, float]:
    """Median CPU seconds and highest peak RSS of ``repeats`` runs of the CLI."""
    procs = [run_measured(probe_command(*args), env, workdir, probe=True) for _ in range(repeats)]
    for proc in procs:
        if proc.code != 0:
            raise RuntimeError(f"{' '.join(args)} exited {proc.code}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return statistics.median(_cpu(p) for p in procs), max(_rss(p) for p in procs)


FLOORS = {
    "import instagrapi; Client()": "import instagrapi; instagrapi.Client()",
    "import instagrapi, sqlmodel; Client()": "import instagrapi, sqlmodel; instagrapi.Client()",
}


def floor_cpu(code: str, repeats: int) -> float:
    """Median CPU seconds of a Python process that only runs ``code``."""
    samples = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bench-floor-") as scratch:
            proc = run_measured([sys.executable, "-c", code], {"PATH": "/usr/bin:/bin"}, Path(scratch))
            if proc.code != 0:
                raise RuntimeError(f"{code!r} exited {proc.code}: {proc.stderr[-1000:]}")
            samples.append(proc.cpu_s)
    return statistics.median(samples)


def _prepare(double: InstagramDouble, env: dict[str, str], workdir: Path) -> None:
    """A fresh database as the commands find it: logged in, one story and one post pass done (nothing new after
    them for the 300 followed targets)."""
    login(double, env, workdir)
    for command in ("run-stories", "run-posts"):
        run_measured(probe_command(command), env, workdir, probe=True).check(f"{command} on a fresh database")


@contextlib.contextmanager
def _engine(url: str) -> Iterator[Engine]:
    from story_liker.db import make_engine

    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def _build(
    result: YearResult,
    variant: str,
    url: str,
    account: str,
    now: datetime,
    days: int,
    daily: Callable[[], Any] | None = None,
) -> None:
    print(f"  {result.backend}: building a year ({variant})", flush=True)
    started = time.perf_counter()
    with _engine(url) as engine:
        build_year(
            engine,
            account,
            now=now,
            days=days,
            cleanup_timer=variant == "cleanup timer",
            pass_prune=_pass_prune(),
            daily_cleanup=_daily_cleanup(),
            daily=daily,
        )
        result.counts[variant] = table_counts(engine)
    result.build_s[variant] = time.perf_counter() - started


def _commands(
    result: YearResult, workdir: Path, repeats: int, fresh: dict[str, str], years: dict[str, dict[str, str]]
) -> None:
    """Every command on the fresh database and on each year's, side by side (``fresh`` and ``years``: the
    environments, DATABASE_URL, of each); the reads first, then the passes, cleanup last."""
    for args in [*READS, *PASSES, ("cleanup",)]:
        label = " ".join(args)
        print(f"  {result.backend}: {label}", flush=True)
        for variant, year_env in years.items():
            # cleanup is measured once, on the database as the year left it (measured last); a nothing-new pass
            # changes nothing that the next one would do differently, so its repeats run on the same database
            times = 1 if args[0] == "cleanup" else repeats
            fresh_cpu, _ = _measure(args, fresh, workdir, times)
            year_cpu, year_rss = _measure(args, year_env, workdir, times)
            result.rows.append(Row(label, variant, fresh_cpu, year_cpu, year_rss))


VARIANTS = ("no cleanup timer", "cleanup timer")


def _sqlite(
    double: InstagramDouble, env: dict[str, str], workdir: Path, now: datetime, repeats: int, days: int
) -> YearResult:
    result = YearResult("sqlite")
    fresh = workdir / "fresh.db"
    _prepare(double, env | {"DATABASE_URL": f"sqlite:///{fresh}"}, workdir)
    sqlite_size_mb(fresh)  # its WAL in the file: the copies below are of the whole database
    result.size_mb["fresh"] = sqlite_size_mb(fresh)
    sources: dict[str, Path] = {}
    for variant in VARIANTS:
        path = workdir / f"year-{variant.replace(' ', '-')}.db"
        shutil.copyfile(fresh, path)
        _build(result, variant, f"sqlite:///{path}", double.username, now, days)
        result.size_mb[variant] = sqlite_size_mb(path)
        sources[variant] = path

    fresh_copy = workdir / "fresh-run.db"
    years: dict[str, dict[str, str]] = {}
    for variant, source in sources.items():
        copy = workdir / f"run-{variant.replace(' ', '-')}.db"
        for target, origin in ((copy, source), (fresh_copy, fresh)):
            for suffix in ("-wal", "-shm"):
                Path(str(target) + suffix).unlink(missing_ok=True)
            shutil.copyfile(origin, target)
        years[variant] = env | {"DATABASE_URL": f"sqlite:///{copy}"}
    _commands(result, workdir, repeats, env | {"DATABASE_URL": f"sqlite:///{fresh_copy}"}, years)
    return result


def _postgres(
    double: InstagramDouble, env: dict[str, str], workdir: Path, now: datetime, repeats: int, days: int, url: str
) -> YearResult:
    """The same on PostgreSQL: one schema per database (fresh, and each year), each prepared the same way."""
    import uuid

    import psycopg

    result = YearResult("postgresql")
    tag = uuid.uuid4().hex[:8]
    schemas = {name: f"bench_year_{tag}_{n}" for n, name in enumerate(("fresh", *VARIANTS))}
    admin = psycopg.connect(url, autocommit=True)
    try:
        urls = {}
        for name, schema in schemas.items():
            admin.execute(f'CREATE SCHEMA "{schema}"')
            urls[name] = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
            scoped = env | {"DATABASE_URL": urls[name]}
            run_measured(probe_command("migrate"), scoped, workdir).check(f"migrate ({name})")
            _prepare(double, scoped, workdir)
        for variant in VARIANTS:

            def autovacuum(schema: str = schemas[variant]) -> None:
                """A day's autovacuum of the tables the passes prune: their space is reused, not grown."""
                for table in ("story", "action", "run", "notification"):
                    admin.execute(f'VACUUM "{schema}"."{table}"')

            _build(result, variant, urls[variant], double.username, now, days, autovacuum)
        for schema in schemas.values():  # the statistics autovacuum keeps, for the planner
            tables = admin.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)).fetchall()
            for (table,) in tables:
                admin.execute(f'VACUUM (ANALYZE) "{schema}"."{table}"')
        for name, schema in schemas.items():
            size = admin.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
                (schema,),
            ).fetchone()
            result.size_mb[name] = int(size[0] if size else 0) / 1e6
        _commands(
            result,
            workdir,
            repeats,
            env | {"DATABASE_URL": urls["fresh"]},
            {variant: env | {"DATABASE_URL": urls[variant]} for variant in VARIANTS},
        )
    finally:
        for schema in schemas.values():
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()
    return result


def measure(workdir: Path, *, repeats: int = 3, days: int = DAYS, pg_url: str = "") -> list[YearResult]:
    """The year's rows on SQLite, and on PostgreSQL when ``pg_url`` names a server; the import floors."""
    from tests.double import InstagramDouble

    now = datetime.now(UTC)
    with InstagramDouble() as double:
        population = populate(double, TARGETS, share=0)
        env = cli_env(double, "", target_accounts=",".join(population.names), **NO_LIMITS)
        results = [_sqlite(double, env, workdir, now, repeats, days)]
        if pg_url:
            results.append(_postgres(double, env, workdir, now, repeats, days, pg_url))
    print("  import floors", flush=True)
    floors = {label: floor_cpu(code, repeats) for label, code in FLOORS.items()}
    for result in results:
        result.floors_cpu_s = floors
    return results


# --- the rows ------------------------------------------------------------------------------------------------


@dataclass
class Goal:
    target: str
    measured: str
    ok: bool
    note: str = ""


def goals(result: YearResult) -> list[Goal]:
    found = []
    for row in result.rows:
        if row.command.split()[0] in ("status", "report", "history"):
            ok = row.ratio <= READ_RATIO and row.year_rss_mb <= READ_RSS_MB
            found.append(
                Goal(
                    f"year ({result.backend}, {row.variant}): {row.command} <= {READ_RATIO} x fresh,"
                    f" <= {READ_RSS_MB:g} MiB",
                    f"{row.ratio:.2f} x, {row.year_rss_mb:.0f} MiB",
                    ok,
                )
            )
    size = result.size_mb.get("no cleanup timer")
    if size is not None and result.backend == "sqlite":
        found.append(Goal(f"year with no cleanup timer: file <= {YEAR_MB:g} MB", f"{size:.1f} MB", size <= YEAR_MB))
    floor = result.floors_cpu_s.get("import instagrapi, sqlmodel; Client()")
    for row in result.rows:
        if row.command in ("run-stories", "run-posts") and row.variant == "no cleanup timer" and floor:
            ratio = row.year_cpu_s / floor
            found.append(
                Goal(
                    f"nothing-new {row.command} (a year, {result.backend}) <= {PASS_FLOOR_RATIO} x the"
                    " instagrapi+sqlmodel floor",
                    f"{row.year_cpu_s:.2f}/{floor:.2f} s = {ratio:.2f}",
                    ratio <= PASS_FLOOR_RATIO,
                )
            )
    return found


def report(result: YearResult) -> str:
    out = [
        f"A year of use ({TARGETS} targets, {STORIES_PER_DAY} stories and 1/{POST_EVERY_DAYS} post a day each, hourly"
        f" story and post passes; {result.backend}): CPU s, the year's database beside a fresh one"
    ]
    rows = [
        [r.command, r.variant, f"{r.fresh_cpu_s:.2f}", f"{r.year_cpu_s:.2f}", f"{r.ratio:.2f}", f"{r.year_rss_mb:.0f}"]
        for r in result.rows
    ]
    out.append(table(["command", "year", "fresh CPU s", "year CPU s", "ratio", "peak RSS MiB"], rows, "llrrrr"))
    what = "file" if result.backend == "sqlite" else "tables (pg_total_relation_size; a VACUUM a day)"
    for variant, size in result.size_mb.items():
        if variant not in result.counts:
            out.append(f"  {what}, {variant} database: {size:.1f} MB")
            continue
        counts = ", ".join(f"{name} {n:,}" for name, n in result.counts[variant].items())
        built = result.build_s.get(variant, 0.0)
        out.append(f"  {what} after the year, {variant}: {size:.1f} MB ({counts}; built in {built:.0f} s)")
    for label, cpu in result.floors_cpu_s.items():
        out.append(f"  floor `{label}`: {cpu:.2f} s CPU")
    out.append("")
    rows = [["PASS" if g.ok else "MISS", g.target, g.measured, g.note] for g in goals(result)]
    out.append(table(["", "goal", "measured", "note"], rows, "llrl"))
    out.extend(f"  - {note}" for note in result.notes)
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from bench.cleanup import PG_URL, postgres_reachable

    parser = argparse.ArgumentParser(prog="python -m bench.year", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL server for the same rows (none: SQLite only)")
    args = parser.parse_args(argv)
    why = postgres_reachable(args.pg_url) if args.pg_url else "no --pg-url"
    with tempfile.TemporaryDirectory(prefix="story-liker-year-") as scratch:
        results = measure(Path(scratch), repeats=args.repeats, days=args.days, pg_url="" if why else args.pg_url)
    for result in results:
        print(report(result))
        print()
    if why:
        print(f"(PostgreSQL rows skipped: {why})")
    return 0 if all(goal.ok for result in results for goal in goals(result)) else 1


if __name__ == "__main__":
    sys.exit(main())
