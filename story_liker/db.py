"""Engine factory (SQLite pragmas, owner-only files), schema check and Alembic migrations."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from story_liker.errors import ConfigError, DatabaseUnavailable, SchemaOutdated

# The Alembic head this code needs; tests assert it matches migrations/versions.
SCHEMA_REVISION = "0003"
MIGRATIONS = Path(__file__).with_name("migrations")


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def unavailable_as_69(engine: Engine) -> Iterator[None]:
    """A database that cannot be reached, read or written becomes DatabaseUnavailable (exit 69)."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
        raise DatabaseUnavailable(f"database unavailable ({safe_url(str(engine.url))}): {reason}") from None


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _prepare_sqlite_file(parsed.database)
        engine = sa.create_engine(url, connect_args={"timeout": 10})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: sa.Connection) -> None:
            # Take the write lock up front: a deferred transaction that later writes fails with
            # SQLITE_BUSY at once when another process wrote in between, busy_timeout or not.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, connect_args={"connect_timeout": 5}, pool_pre_ping=False)


def _prepare_sqlite_file(database: str | None) -> None:
    """Create the directory (0700) and the file (0600) before SQLite does with the umask's modes."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.is_dir():
        raise ConfigError(f"DATABASE_URL: {path} is a directory, not a SQLite database file")
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True)
        for suffix in ("", "-wal", "-shm"):
            file = path.with_name(path.name + suffix)
            if not file.exists():
                os.close(os.open(file, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise DatabaseUnavailable(f"cannot create the SQLite database {path}: {exc.strerror}") from None


def current_revision(engine: Engine) -> str | None:
    with unavailable_as_69(engine), engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def check_schema(engine: Engine, *, auto_migrate: bool) -> None:
    """Refuse to run on an old or missing schema; a brand-new database may be migrated on the spot."""
    revision = current_revision(engine)
    if revision == SCHEMA_REVISION:
        return
    if revision is None and auto_migrate:
        migrate(engine)
        return
    if revision is None:
        raise SchemaOutdated("the database has no schema yet: run `story-liker migrate`")
    if revision < SCHEMA_REVISION:
        raise SchemaOutdated(
            f"the database schema is at {revision}, this story-liker needs {SCHEMA_REVISION}: run `story-liker migrate`"
        )
    raise SchemaOutdated(
        f"the database schema {revision} is newer than this story-liker ({SCHEMA_REVISION}): upgrade story-liker"
    )


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Upgrade to head; idempotent. Returns (revision before, revision after)."""
    from alembic import command
    from alembic.config import Config

    before = current_revision(engine)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with unavailable_as_69(engine), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return before, current_revision(engine) or ""
