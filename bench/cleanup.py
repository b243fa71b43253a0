"""`cleanup` of 1,000,000 story rows (half older than the retention) on SQLite and PostgreSQL.

Timed twice on identical data: the `story-liker cleanup` process (start-up, schema check, run record,
the DELETE) and the bare ``DELETE FROM story WHERE taken_at < cutoff`` with its commit.
The old rows come first in insertion order, like in a real table that grows with time.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import base_env, cli_command, run_measured

ACCOUNT = "liker"
RETENTION_HOURS = 24
# Only a server someone named: BENCH_DATABASE_URL, else TEST_DATABASE_URL; with neither the PostgreSQL rows skip.
PG_URL = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or ""


@dataclass
class CleanupResult:
    backend: str
    rows: int
    deleted: int
    fill_s: float
    cli_s: float
    bare_delete_s: float
    bare_deleted: int
    note: str = ""


def _cutoff() -> datetime:
    return datetime.now(UTC) - timedelta(hours=RETENTION_HOURS)


def _cli(database_url: str, workdir: Path, *args: str) -> Any:
    env = base_env() | {"DATABASE_URL": database_url, "LOG_FORMAT": "json", "IG_USERNAME": ACCOUNT}
    return run_measured(cli_command(*args), env, workdir, timeout=600)


def _deleted(proc: Any) -> int:
    return int(proc.summary().get("deleted", -1))


# --- SQLite -------------------------------------------------------------------------------------------

# SQLAlchemy's SQLite DATETIME text format ("YYYY-MM-DD HH:MM:SS.ffffff", UTC): strftime's %f has
# milliseconds, three zeros make the microseconds.
_SQLITE_FILL = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :rows - 1)
INSERT INTO story (account, story_pk, target_user_pk, taken_at, liked_at)
SELECT :account, CAST(3512004000000000017 + i AS TEXT), 31400000017 + i % 500, t, t
FROM (
    SELECT i, strftime('%Y-%m-%d %H:%M:%f', 'now',
                       CASE WHEN i < :rows / 2 THEN '-3 days' ELSE '-1 hours' END,
                       printf('-%d seconds', (:rows - i) % 3600)) || '000' AS t
    FROM n
)
"""


def sqlite(workdir: Path, rows: int) -> CleanupResult:
    path = workdir / "cleanup.db"
    url = f"sqlite:///{path}"
    _cli(url, workdir, "migrate").check("migrate (sqlite)")
    started = time.perf_counter()
    with sqlite3.connect(path) as db:
        db.execute(_SQLITE_FILL, {"rows": rows, "account": ACCOUNT})
        db.commit()
        db.execute("ANALYZE")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    fill = time.perf_counter() - started
    copy = workdir / "cleanup-bare.db"
    shutil.copyfile(path, copy)  # identical data for the bare DELETE

    cli = _cli(url, workdir, "cleanup").check("cleanup (sqlite)")
    cutoff = _cutoff().replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    db = sqlite3.connect(copy, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        started = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        bare_deleted = db.execute("DELETE FROM story WHERE taken_at < ?", (cutoff,)).rowcount
        db.execute("COMMIT")
        bare = time.perf_counter() - started
    finally:
        db.close()
    for file in workdir.glob("cleanup*"):
        file.unlink()
    return CleanupResult("sqlite", rows, _deleted(cli), fill, cli.wall_s, bare, bare_deleted)


# --- PostgreSQL ---------------------------------------------------------------------------------------

_PG_FILL = """
INSERT INTO story (account, story_pk, target_user_pk, taken_at, liked_at)
SELECT %(account)s, (3512004000000000017 + i)::text, 31400000017 + i %% 500, t, t
FROM (
    SELECT i, now() - CASE WHEN i < %(rows)s / 2 THEN interval '3 days' ELSE interval '1 hour' END
                   - ((%(rows)s - i) %% 3600) * interval '1 second' AS t
    FROM generate_series(0, %(rows)s - 1) AS i
) AS g
"""


def postgres_reachable(url: str = PG_URL) -> str | None:
    """None if the server answers, else why not (one line)."""
    if not url:
        return "no BENCH_DATABASE_URL or TEST_DATABASE_URL set"
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return None


def postgres(workdir: Path, rows: int, url: str = PG_URL) -> CleanupResult:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    scoped = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    admin = psycopg.connect(url, autocommit=True)
    try:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        _cli(scoped, workdir, "migrate").check("migrate (postgresql)")
        with psycopg.connect(scoped) as db:
            fill = _pg_fill(db, rows)
            cli = _cli(scoped, workdir, "cleanup").check("cleanup (postgresql)")
            db.execute("TRUNCATE story")
            db.commit()
            _pg_fill(db, rows)
            started = time.perf_counter()
            cursor = db.execute("DELETE FROM story WHERE taken_at < %s", (_cutoff(),))
            db.commit()
            bare = time.perf_counter() - started
            bare_deleted = cursor.rowcount
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()
    return CleanupResult("postgresql", rows, _deleted(cli), fill, cli.wall_s, bare, bare_deleted)


def _pg_fill(db: Any, rows: int) -> float:
    started = time.perf_counter()
    db.execute(_PG_FILL, {"rows": rows, "account": ACCOUNT})
    db.commit()
    db.execute("ANALYZE story")
    db.commit()
    return time.perf_counter() - started
