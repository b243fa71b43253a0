"""A SQLite database this process cannot write (a read-only mount, directory or file).

The commands that only read (status, report, history, accounts list, doctor) work on it and never write; every
other command stops before any request with one line and 78 (DatabaseReadOnly, a configuration problem).

Tests here run as root, whom file modes do not stop, so a database is made genuinely read-only in two ways:
a tmpfs remounted read-only (EROFS, as a read-only volume or systemd's ReadOnlyPaths= give it; root needs
CAP_SYS_ADMIN for the mount), and modes 0500/0400 with the CLI run as `nobody` through setpriv (EACCES, as for a
service user whose data directory another user owns). Without root, the modes alone do it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from story_liker.db import SCHEMA_REVISION, make_engine
from story_liker.store import Store
from tests.conftest import STORY_LIKER, Result, fresh_database_url, login, needs_postgres, run_cli

NOBODY = 65534
ROOT = os.geteuid() == 0
# as nobody, but able to read (and search) every file: the venv and pytest's tmp_path are root's, 0700
AS_NOBODY = [
    "setpriv",
    f"--reuid={NOBODY}",
    f"--regid={NOBODY}",
    "--clear-groups",
    "--inh-caps=+dac_read_search",
    "--ambient-caps=+dac_read_search",
]
READING = [
    ["status"],
    ["status", "--json"],
    ["report"],
    ["report", "--json"],
    ["history"],
    ["history", "--json"],
    ["accounts", "list"],
    ["doctor", "--json"],
]
WRITING = [
    ["run-stories"],
    ["run-posts"],
    ["keepalive"],
    ["cleanup"],
    ["migrate"],
    ["accounts", "add", "bob"],
    ["accounts", "enable", "alice"],
    ["session", "upgrade"],
    ["login", "--sessionid-file", "-"],
]


class ReadOnlyPlace:
    """A directory holding the test's SQLite database, which ``freeze`` makes read-only to the CLI."""

    def __init__(self, how: str, tmp_path: Path) -> None:
        self.how, self.directory = how, tmp_path / "ro"
        self.prefix: list[str] = []
        self.mounted = False
        self.outside: Path | None = None
        if how == "permissions" and ROOT:
            if shutil.which("setpriv") is None:
                pytest.skip("root ignores file modes, and setpriv (util-linux) is missing to run the CLI as nobody")
            # Not under tmp_path: access(2) ignores nobody's borrowed capability, and pytest's directories are
            # root's (0700), so SQLite would take the -wal beside the database for missing.
            self.outside = Path(tempfile.mkdtemp(prefix="story-liker-ro-"))
            self.outside.chmod(0o755)
            self.directory = self.outside / "ro"
        self.directory.mkdir()
        if how == "mount":
            if not ROOT:
                pytest.skip("a read-only tmpfs needs root (mount(8)); the permissions case covers this user")
            mounted = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(self.directory)],
                capture_output=True,
                text=True,
            )
            if mounted.returncode != 0:
                pytest.skip(f"cannot mount a tmpfs here (needs CAP_SYS_ADMIN): {mounted.stderr.strip()}")
            self.mounted = True

    @property
    def url(self) -> str:
        return f"sqlite:///{self.directory / 'stories.db'}"

    def freeze(self) -> None:
        if self.how == "mount":
            subprocess.run(["mount", "-o", "remount,ro", str(self.directory)], check=True, capture_output=True)
            return
        for path in [self.directory, *self.directory.iterdir()]:
            if ROOT:
                os.chown(path, NOBODY, NOBODY)
            path.chmod(0o500 if path.is_dir() else 0o400)
        if ROOT:
            self.prefix = AS_NOBODY

    def thaw(self) -> None:
        if self.mounted:
            if subprocess.run(["umount", str(self.directory)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(self.directory)], capture_output=True)
        elif self.directory.exists():
            self.directory.chmod(0o700)  # so that pytest can remove it
        if self.outside is not None:
            shutil.rmtree(self.outside, ignore_errors=True)

    def run(self, *args: str, env: dict[str, str], cwd: Path, stdin: str = "") -> Result:
        """The CLI as the freezing made the database read-only to it (as nobody for the permissions case)."""
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp"}
        proc = subprocess.run(
            [*self.prefix, STORY_LIKER, *args],
            env=base | env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
            input=stdin,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def fingerprint(self) -> dict[str, str]:
        """Every file of the directory and its content's hash: what a command that never writes leaves alone."""
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(self.directory.iterdir())}


@pytest.fixture(params=["mount", "permissions"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReadOnlyPlace]:
    found = ReadOnlyPlace(request.param, tmp_path)
    try:
        yield found
    finally:
        found.thaw()


def _env(ig: Any, url: str) -> dict[str, str]:
    delays = {f"{kind}_DELAY_{end}_SECONDS": "0" for kind in ("ACTION", "TARGET", "REQUEST") for end in ("MIN", "MAX")}
    return {
        "IG_USERNAME": ig.username,
        "IG_API_URL": ig.url,
        "DATABASE_URL": url,
        "TARGET_ACCOUNTS": "alice",
        "HTTP_TIMEOUT_SECONDS": "5",
        "TIMEZONE": "UTC",
    } | delays


@pytest.fixture
def lived_in(ig: Any, place: ReadOnlyPlace, tmp_path: Path) -> dict[str, Any]:
    """A database with a session, a target, a like and a run, then made read-only; what status said before."""
    ig.add_story(ig.add_user("alice"))
    env = _env(ig, place.url)
    login(ig, env, tmp_path)
    liked = run_cli("run-stories", env=env, cwd=tmp_path)
    assert liked.code == 0 and len(ig.liked_story_ids) == 1, liked.output
    before = run_cli("status", "--json", env=env, cwd=tmp_path)
    doctor = run_cli("doctor", "--json", env=env, cwd=tmp_path)
    assert before.code == 0, before.output
    place.freeze()
    ig.reset_requests()
    return {"env": env, "status": json.loads(before.stdout), "doctor": (doctor.code, json.loads(doctor.stdout))}


def _one_line(result: Result) -> str:
    assert result.error and "\n" not in result.error and "Traceback" not in result.output, result.output
    return result.error


def test_the_reading_commands_work_on_a_read_only_database(
    ig: Any, place: ReadOnlyPlace, lived_in: dict[str, Any], tmp_path: Path
) -> None:
    env, files = lived_in["env"], place.fingerprint()
    for args in READING:
        result = place.run(*args, env=env, cwd=tmp_path)
        if args[0] == "doctor":
            code, _ = lived_in["doctor"]
            assert (result.code, json.loads(result.stdout)["exit_code"]) == (code, code), result.output
            database = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "database")
            assert database["status"] == "ok", database
            continue
        assert result.code == 0, (args, result.output)
        assert "Traceback" not in result.output and "read-only" not in result.stderr, result.output
    status = json.loads(place.run("status", "--json", env=env, cwd=tmp_path).stdout)
    for key in ("session", "needs_human", "targets", "last_runs", "login"):
        assert status[key] == lived_in["status"][key], key  # the same answer as where it could write
    assert status["limits"]["story_like"]["last_day"] == 1
    assert "alice" in place.run("accounts", "list", env=env, cwd=tmp_path).stdout
    history = json.loads(place.run("history", "--json", env=env, cwd=tmp_path).stdout)
    assert [item["target"] for item in history] == ["alice"], history
    assert place.fingerprint() == files  # nothing written, nothing created
    assert ig.count() == 0


@pytest.mark.parametrize("args", WRITING, ids=lambda a: "-".join(a))
def test_a_writing_command_on_a_read_only_database_is_one_line_and_78(
    ig: Any, place: ReadOnlyPlace, lived_in: dict[str, Any], tmp_path: Path, args: list[str]
) -> None:
    result = place.run(*args, env=lived_in["env"], cwd=tmp_path, stdin=ig.sessionid)
    assert result.code == 78, result.output
    line = _one_line(result)
    assert "is read-only" in line and str(place.directory / "stories.db") in line, line
    assert "writable" in line and "status" in line  # what to do, and what still works
    assert ig.count() == 0  # refused before any request
    if args[0] in ("run-stories", "run-posts", "keepalive", "cleanup"):
        finished = [json.loads(x) for x in result.stdout.splitlines() if '"run_finished"' in x][-1]
        assert (finished["outcome"], finished["exit_code"]) == ("database_read_only", 78)


def test_doctor_online_on_a_read_only_database_says_so(
    ig: Any, place: ReadOnlyPlace, lived_in: dict[str, Any], tmp_path: Path
) -> None:
    """--online takes the run lock (a write): the database check says why it cannot, and no request goes out."""
    result = place.run("doctor", "--json", "--online", env=lived_in["env"], cwd=tmp_path)
    report = json.loads(result.stdout)
    assert result.code == 78 and report["exit_code"] == 78, result.output
    database = next(c for c in report["checks"] if c["name"] == "database")
    assert database["status"] == "problem" and "is read-only" in database["detail"]
    assert ig.count() == 0


def test_status_on_a_read_only_database_with_an_old_schema_still_asks_for_migrate(
    ig: Any, place: ReadOnlyPlace, tmp_path: Path
) -> None:
    env = _env(ig, place.url)
    assert run_cli("migrate", env=env, cwd=tmp_path).code == 0
    connection = sqlite3.connect(place.directory / "stories.db")
    with connection:
        connection.execute("UPDATE alembic_version SET version_num = '0000'")
    connection.close()
    place.freeze()
    for args in (["status"], ["status", "--json"], ["report"], ["accounts", "list"]):
        result = place.run(*args, env=env, cwd=tmp_path)
        assert result.code == 78, result.output
        assert _one_line(result).endswith(f"needs {SCHEMA_REVISION}: run `story-liker migrate`")
    migrate = place.run("migrate", env=env, cwd=tmp_path)
    assert migrate.code == 78 and "is read-only" in _one_line(migrate)


def test_a_read_only_database_with_changes_left_in_its_wal_is_read_with_them(ig: Any, tmp_path: Path) -> None:
    """A writer killed mid-run leaves a -wal holding committed changes; read-only, they are still seen."""
    place = ReadOnlyPlace("permissions", tmp_path)
    try:
        env = _env(ig, place.url)
        assert run_cli("accounts", "add", "alice", env=env, cwd=tmp_path).code == 0
        killed = subprocess.run(
            [
                sys.executable,
                "-c",
                "import os, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('PRAGMA journal_mode=WAL');"
                'c.execute("INSERT INTO target (account, username, enabled, managed_by, added_at) '
                "VALUES (?, 'zed', 1, 'cli', '2026-01-01 00:00:00')\", (sys.argv[2],)); c.commit(); os._exit(0)",
                str(place.directory / "stories.db"),
                ig.username,
            ],
            capture_output=True,
            text=True,
        )
        assert killed.returncode == 0, killed.stderr
        assert (place.directory / "stories.db-wal").stat().st_size > 0
        place.freeze()
        listing = place.run("accounts", "list", env=env, cwd=tmp_path)
        assert listing.code == 0, listing.output
        assert [line.split()[0] for line in listing.stdout.splitlines()] == ["alice", "zed"]
        added = place.run("accounts", "add", "bob", env=env, cwd=tmp_path)
        assert added.code == 78 and "is read-only (Permission denied)" in _one_line(added)
    finally:
        place.thaw()


def test_the_reading_commands_never_write_even_where_they_could(ig: Any, tmp_path: Path) -> None:
    """No account row yet (only a target): status used to insert one. Now the database file stays as it was."""
    env = _env(ig, f"sqlite:///{tmp_path / 'data' / 'stories.db'}")
    assert run_cli("accounts", "add", "alice", env=env, cwd=tmp_path).code == 0
    database = tmp_path / "data" / "stories.db"
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    for args in READING:
        result = run_cli(*args, env=env, cwd=tmp_path)
        assert result.code in (0, 77), (args, result.output)  # doctor: no session stored is 77
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before
    connection = sqlite3.connect(database)
    assert connection.execute("SELECT count(*) FROM account").fetchone() == (0,)
    connection.close()
    assert json.loads(run_cli("status", "--json", env=env, cwd=tmp_path).stdout)["session"]["stored"] is False


def test_a_new_or_empty_database_is_still_created_by_status(tmp_path: Path) -> None:
    """Nothing to read yet: status creates and migrates a SQLite database as before (an empty file too)."""
    (tmp_path / "data").mkdir(mode=0o700)
    (tmp_path / "data" / "stories.db").touch(mode=0o600)
    result = run_cli("status", "--json", env={"IG_USERNAME": "me"}, cwd=tmp_path)
    assert result.code == 0 and json.loads(result.stdout)["session"]["stored"] is False, result.output


def test_status_cannot_create_a_database_in_a_read_only_place(place: ReadOnlyPlace, tmp_path: Path) -> None:
    place.freeze()
    result = place.run("status", env={"IG_USERNAME": "me", "DATABASE_URL": place.url}, cwd=tmp_path)
    assert result.code == 78, result.output
    assert _one_line(result).startswith(f"cannot create the SQLite database {place.directory}")


def test_the_store_on_a_read_only_engine_reads_and_refuses_writes(store: Store) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    store.add_target("me", "alice", now)
    reader = Store(make_engine(str(store.engine.url.render_as_string(hide_password=False)), read_only=True))
    try:
        assert [t.username for t in reader.targets("me")] == ["alice"]
        missing = reader.account("me", create=False)
        assert missing.username == "me" and not missing.has_session and missing.login_failures == 0
        # a write on a read-only engine is a bug in a command that only reads: refused, and not mistaken for
        # the database's problem (no DatabaseReadOnly or DatabaseUnavailable: the command fails as a bug, 1)
        with pytest.raises(sa.exc.DBAPIError, match=r"read-only|readonly"):
            reader.account("me")  # the row is missing: inserting it is a write
        with pytest.raises(sa.exc.DBAPIError, match=r"read-only|readonly"):
            reader.add_target("me", "bob", now)
        assert [t.username for t in store.targets("me")] == ["alice"]
        assert store.account("me", create=False).username == "me"
    finally:
        reader.engine.dispose()


@pytest.mark.postgres
@needs_postgres
def test_postgres_read_only_is_78_for_a_writing_command_and_fine_for_status(ig: Any, tmp_path: Path) -> None:
    """A standby (or default_transaction_read_only): simulated with the option in the URL."""
    for url in fresh_database_url("postgresql", tmp_path):
        env = _env(ig, url)
        assert run_cli("migrate", env=env, cwd=tmp_path).code == 0
        login(ig, env, tmp_path)
        parsed = sa.engine.make_url(url)
        options = f"{parsed.query.get('options', '')} -c default_transaction_read_only=on".strip()
        standby = env | {
            "DATABASE_URL": parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)
        }
        for args in READING:
            result = run_cli(*args, env=standby, cwd=tmp_path)
            assert result.code in (0, 77) and "Traceback" not in result.output, (args, result.output)
        status = run_cli("status", "--json", env=standby, cwd=tmp_path)
        assert json.loads(status.stdout)["session"]["stored"], status.output
        for args in (["run-stories"], ["accounts", "add", "bob"], ["cleanup"]):
            result = run_cli(*args, env=standby, cwd=tmp_path)
            assert result.code == 78 and "is read-only (a standby" in _one_line(result), result.output
        assert ig.count() == 0
