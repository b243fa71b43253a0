"""Engine factory (SQLite pragmas, owner-only files, read-only opening), schema check and Alembic migrations."""

from __future__ import annotations

import errno
import logging
import os
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from story_liker.errors import ConfigError, DatabaseCorrupt, DatabaseReadOnly, DatabaseUnavailable, SchemaOutdated
from story_liker.logging import redact_database_url

# The Alembic head this code needs; tests assert it matches migrations/versions.
SCHEMA_REVISION = "0005"
MIGRATIONS = Path(__file__).with_name("migrations")
READ_ONLY_COMMANDS = "status, report, history, accounts list and doctor"  # the commands that never write
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)
_SQLITE_READONLY, _SQLITE_CANTOPEN = 8, 14  # primary result codes (the low byte of an extended one)
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
_MIGRATION_LOCK = int.from_bytes(b"stlk", "big")  # the first key of the PostgreSQL advisory lock of `migrate`
_READ_ONLY_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


@contextmanager
def unavailable_as_69(engine: Engine) -> Iterator[None]:
    """A database that cannot be reached, read or written becomes DatabaseUnavailable (exit 69); one that is
    read-only to this process, when the command writes, DatabaseReadOnly, and a SQLite file that is damaged or
    no database at all DatabaseCorrupt (both 78: they will not fix themselves).

    A write refused on a read-only engine (make_engine) stays what it is: a bug in a command that only reads."""
    try:
        yield
    except sa.exc.DatabaseError as exc:
        orig = getattr(exc, "orig", exc)
        if _corrupt(engine, orig):
            raise _corrupt_error(engine, orig) from None
        if not isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.InternalError):
            raise
        if engine in _READ_ONLY_ENGINES:
            if _write_refused(engine, orig):
                raise
        elif _write_refused(engine, orig) or _cannot_open_read_only(engine, orig):
            raise _read_only_error(engine) from None
        if isinstance(exc, sa.exc.InternalError):
            raise
        reason = str(orig).strip().splitlines()[0][:200]
        raise DatabaseUnavailable(f"database unavailable ({_shown(engine)}): {reason}") from None


def _shown(engine: Engine) -> str:
    """The engine's URL as it may be shown (str(engine.url) hides a password in the user part, not libpq's
    ``?password=``)."""
    return redact_database_url(engine.url.render_as_string(hide_password=False))


def _corrupt(engine: Engine, orig: Any) -> bool:
    """SQLite says the file is damaged (SQLITE_CORRUPT) or not a database at all (SQLITE_NOTADB)."""
    code = getattr(orig, "sqlite_errorcode", None)
    return (
        engine.dialect.name == "sqlite" and isinstance(code, int) and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    )


def _corrupt_error(engine: Engine, orig: Any) -> DatabaseCorrupt:
    path = _sqlite_file(engine.url.database)
    reason = str(orig).strip().splitlines()[0][:200]
    return DatabaseCorrupt(
        f"the database file {path or _shown(engine)} is not a SQLite database (corrupt, truncated or another kind "
        f"of file; SQLite says: {reason}): restore it from a backup, or move it away to start afresh (no history, "
        "limits or session)"
    )


def _write_refused(engine: Engine, orig: Any) -> bool:
    """The driver says the database is read-only (SQLITE_READONLY; PostgreSQL's read_only_sql_transaction)."""
    if engine.dialect.name == "postgresql":
        return getattr(orig, "sqlstate", None) == "25006"
    code = getattr(orig, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == _SQLITE_READONLY


def _cannot_open_read_only(engine: Engine, orig: Any) -> bool:
    """SQLite could not open an existing database that this process may not write (its -wal or -shm file)."""
    code = getattr(orig, "sqlite_errorcode", None)
    path = _sqlite_file(engine.url.database) if engine.dialect.name == "sqlite" else None
    if not isinstance(code, int) or code & 0xFF != _SQLITE_CANTOPEN or path is None:
        return False
    return path.exists() and not _writable(path)


def _read_only_error(engine: Engine) -> DatabaseReadOnly:
    path = _sqlite_file(engine.url.database) if engine.dialect.name == "sqlite" else None
    if path is None:
        return DatabaseReadOnly(
            f"the database {_shown(engine)} is read-only (a standby, or default_transaction_read_only "
            f"is on): this command writes to it; only {READ_ONLY_COMMANDS} work read-only"
        )
    return _read_only(path, _why_not_writable(path))


def _read_only(path: Path, why: str) -> DatabaseReadOnly:
    return DatabaseReadOnly(
        f"the SQLite database {path} is read-only ({why}): this command writes to it; make the file and its "
        f"directory writable by this user, or set DATABASE_URL (only {READ_ONLY_COMMANDS} work read-only)"
    )


def _writable(path: Path) -> bool:
    """The file can be written, and so can its directory (where SQLite makes and removes its -wal and -shm
    files) or else those two files, made beforehand."""

    def can(file: Path) -> bool:
        return os.access(file, os.W_OK, effective_ids=os.access in os.supports_effective_ids)

    companions = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    return can(path) and (can(path.parent) or all(f.exists() and can(f) for f in companions))


def _why_not_writable(path: Path) -> str:
    try:
        if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            return os.strerror(errno.EROFS)
    except OSError:
        pass
    return os.strerror(errno.EACCES)


log = logging.getLogger(__name__)


def _sqlite_file(database: str | None) -> Path | None:
    """The file of a SQLite database given as a path; None for :memory: and file: URIs."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def make_engine(url: str, *, read_only: bool = False, announce_new: bool = False) -> Engine:
    """The engine for DATABASE_URL. ``read_only``: a connection that cannot write, so a command that only reads
    works where the database cannot be written (a read-only directory, mount or file) and never writes by
    mistake: SQLite opened with mode=ro, PostgreSQL with read-only transactions. A SQLite database that does
    not exist yet is created either way (there is nothing to read)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed.database)
        if read_only and path is not None and path.is_file():
            return _read_only_sqlite(url, path)
        if path is not None and path.is_file() and not _writable(path):
            raise _read_only(path, _why_not_writable(path))  # every command that writes, before it starts
        _prepare_sqlite_file(parsed.database, announce_new=announce_new)
        engine = sa.create_engine(url, connect_args={"timeout": 10})
        # BEGIN IMMEDIATE takes the write lock up front: a deferred transaction that later writes fails with
        # SQLITE_BUSY at once when another process wrote in between, busy_timeout or not.
        # auto_vacuum first: it takes effect only in a file with no table yet (an older file gets it from the VACUUM
        # of `migrate` or `cleanup`, Store.reclaim); then the free pages of what was pruned go back to the disk
        _sqlite_connections(
            engine,
            (
                "auto_vacuum=INCREMENTAL",
                "journal_mode=WAL",
                "synchronous=NORMAL",
                "busy_timeout=10000",
                "foreign_keys=ON",
            ),
            begin="BEGIN IMMEDIATE",
        )
        return engine
    connect_args: dict[str, Any] = {"connect_timeout": 5}
    if read_only:  # added to the URL's own options (a search_path, say), which connect_args would replace
        given = parsed.query.get("options")
        given = " ".join(given) if isinstance(given, tuple) else given
        connect_args["options"] = f"{given or ''} -c default_transaction_read_only=on".strip()
    # pre-ping: a pooled connection the server dropped meanwhile (a restart, a failover) is replaced at checkout
    engine = sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)
    if read_only:
        _READ_ONLY_ENGINES.add(engine)
    return engine


def _read_only_sqlite(url: str, path: Path) -> Engine:
    import sqlite3

    location = quote(os.path.abspath(path))

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(f"file:{location}?mode=ro", uri=True, timeout=10, check_same_thread=False)
        try:
            connection.execute("PRAGMA schema_version")  # opens the file and its -shm (connect itself is lazy)
            return connection
        except sqlite3.OperationalError:
            connection.close()
            wal = path.with_name(path.name + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise  # changes not yet in the file itself: reading it alone would show an older state
            # A WAL database whose directory this process cannot write: SQLite cannot make the -shm file it
            # reads through. With no -wal beside it, every change is in the file itself, and a writer would
            # need that directory first: read the file as it is.
            return sqlite3.connect(
                f"file:{location}?mode=ro&immutable=1", uri=True, timeout=10, check_same_thread=False
            )

    engine = sa.create_engine(url, creator=connect)
    # a plain BEGIN: a read transaction, one consistent snapshot, no write lock
    _sqlite_connections(engine, ("query_only=ON", "busy_timeout=10000"), begin="BEGIN")
    _READ_ONLY_ENGINES.add(engine)
    return engine


def _sqlite_connections(engine: Engine, pragmas: Sequence[str], *, begin: str) -> None:
    """Every new SQLite connection of ``engine`` gets ``pragmas``; every transaction starts with ``begin``
    (pysqlite's own implicit transactions are turned off: we issue BEGIN ourselves)."""

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql(begin)


def _prepare_sqlite_file(database: str | None, *, announce_new: bool) -> None:
    """Create the directory (0700) and the file (0600) before SQLite does with the umask's modes; a new file is
    a `new_database` warning naming it (``announce_new``), unless the command says where it is itself."""
    path = _sqlite_file(database)
    if path is None:
        return
    if path.is_dir():
        raise ConfigError(f"DATABASE_URL: {path} is a directory, not a SQLite database file")
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True)
        if (
            announce_new and not path.exists()
        ):  # run from another directory, a relative DATABASE_URL finds none: say where it went
            log.warning(
                "new_database",
                extra={
                    "path": os.path.abspath(path),
                    "hint": "none was there: if yours is elsewhere, run from its directory or set DATABASE_URL",
                },
            )
        for suffix in ("", "-wal", "-shm"):
            file = path.with_name(path.name + suffix)
            if not file.exists():
                os.close(os.open(file, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError as exc:
        if exc.errno in _NOT_WRITABLE and path.exists():
            raise _read_only(path, exc.strerror or "not writable") from None
        if exc.errno in _NOT_WRITABLE:
            raise DatabaseReadOnly(
                f"cannot create the SQLite database {path}: {exc.strerror}; make its directory writable by this "
                "user, or set DATABASE_URL"
            ) from None
        raise DatabaseUnavailable(f"cannot create the SQLite database {path}: {exc.strerror}") from None


def open_engine(url: str, *, read_only: bool, auto_migrate: bool) -> Engine:
    """The engine a command works with, its schema checked (check_schema). ``read_only``: see make_engine; a
    SQLite database with no schema yet is still migrated on the spot, as for any command (it is written then)."""
    engine = make_engine(url, read_only=read_only, announce_new=True)  # a command: say where a new file went
    try:
        if read_only and auto_migrate and current_revision(engine) is None:
            engine.dispose()
            engine = make_engine(url)
        check_schema(engine, auto_migrate=auto_migrate)
    except BaseException:
        engine.dispose()
        raise
    return engine


def current_revision(engine: Engine) -> str | None:
    with unavailable_as_69(engine), engine.connect() as connection:
        return _revision(connection)


def _revision(connection: sa.Connection) -> str | None:
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
    """Upgrade to head; idempotent. Returns (revision before, revision after).

    One migration at a time: several `migrate` (or first runs) at once would each see an empty schema and
    create the same tables. The transaction holds the database's write lock from its start on SQLite (BEGIN
    IMMEDIATE), an advisory lock per schema on PostgreSQL (released at commit); whoever waited reads the
    revision only then, and finds the schema at head."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with unavailable_as_69(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key, hashtext(coalesce(current_schema(), '')))"),
                {"key": _MIGRATION_LOCK},
            )
        before = _revision(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    try:  # SQLite: a file from before auto-vacuum gets it, and its free pages go back
        reclaim(engine, None)
    except DatabaseUnavailable as exc:  # the schema is done; the space waits for the next migrate or cleanup
        log.warning("space_not_reclaimed", extra={"error": exc.message, "retry": "cleanup"})
    return before, current_revision(engine) or ""


def free_pages(engine: Engine) -> tuple[int, int, int] | None:
    """SQLite: (auto_vacuum mode: 0 none, 1 full, 2 incremental; free pages; all pages); None elsewhere."""
    if engine.dialect.name != "sqlite":
        return None
    import sqlite3

    with unavailable_as_69(engine), engine.connect() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        try:  # the driver's own connection: its errors are sqlite3's, which unavailable_as_69 does not see
            mode, free, pages = (
                int(raw.execute(f"PRAGMA {name}").fetchone()[0])
                for name in ("auto_vacuum", "freelist_count", "page_count")
            )
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"database unavailable ({_shown(engine)}): {exc}") from None
    return mode, free, pages


def reclaim(engine: Engine, pages: int | None) -> int:
    """SQLite: give up to ``pages`` free pages (None: all) back to the file system from the end of the file, by
    incremental auto-vacuum (a short write); returns how many. A file made before auto-vacuum was on (mode 0)
    gets it by a VACUUM, only when asked for all (`migrate`, `cleanup`): that rewrites the whole file, which a
    pass never waits for. Nothing on PostgreSQL (its autovacuum makes the space reusable)."""
    state = free_pages(engine)
    if state is None:
        return 0
    mode, free, _pages = state
    if (mode == 2 and not free) or (mode != 2 and pages is not None):
        return 0
    import sqlite3

    with unavailable_as_69(engine), engine.connect() as connection:
        raw = connection.connection.driver_connection  # no BEGIN: VACUUM cannot run in a transaction
        assert raw is not None
        try:
            if mode == 2:
                # executescript steps the pragma to its end (sqlite3_exec): execute() frees one page per call
                raw.executescript("PRAGMA incremental_vacuum" + (f"({int(pages)})" if pages is not None else "") + ";")
            else:
                raw.execute("PRAGMA auto_vacuum = INCREMENTAL")
                raw.execute("VACUUM")
            after = int(raw.execute("PRAGMA freelist_count").fetchone()[0])
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"database unavailable ({_shown(engine)}): {exc}") from None
    if free > after:
        log.info("space_reclaimed", extra={"pages": free - after, "vacuum": mode != 2})
    return free - after
