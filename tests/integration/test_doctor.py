"""`doctor`: a healthy setup exits 0 (and sends nothing anywhere); each broken one exits with its problem's code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from story_liker.db import SCHEMA_REVISION, make_engine
from story_liker.store import Store
from tests.conftest import assert_no_secrets, login, run_cli
from tests.receiver import Receiver, free_port, receiver


@pytest.fixture
def rec() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


@pytest.fixture
def healthy(ig: Any, env: dict[str, str], tmp_path: Path, rec: Receiver) -> dict[str, str]:
    ig.add_user("alice")
    env |= {
        "TARGET_ACCOUNTS": "alice",
        "NOTIFY_URLS": f"json://127.0.0.1:{rec.port}/n0tify-secret",
        "HEALTHCHECK_URL": f"{rec.url}/ping/hc-secret",
    }
    login(ig, env, tmp_path)
    return env


def doctor(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("doctor", "--json", *args, env=env, cwd=cwd)
    return result.code, json.loads(result.stdout)


def problems(report: dict[str, Any]) -> list[tuple[str, int]]:
    return [(c["name"], c["exit_code"]) for c in report["checks"] if c["status"] == "problem"]


def detail(report: dict[str, Any], name: str) -> str:
    return " | ".join(c["detail"] for c in report["checks"] if c["name"] == name)


def with_store(env: dict[str, str]) -> Store:
    return Store(make_engine(env["DATABASE_URL"]))


def test_a_healthy_setup_exits_0_and_sends_nothing(
    ig: Any, healthy: dict[str, str], tmp_path: Path, rec: Receiver
) -> None:
    (tmp_path / ".env").write_text(f"IG_PASSWORD={ig.password}\nSTORY_LIKES_PER_HOUR=10\n")
    ig.reset_requests()
    code, report = doctor(healthy, tmp_path)
    assert code == 0 and report["ok"], report
    names = [c["name"] for c in report["checks"]]
    for name in ("settings", "database", "session", "needs human", "cooldown", "limits", "lock", "targets"):
        assert name in names
    assert "notifications" in names and "healthcheck" in names
    settings = detail(report, "settings")
    assert ".env" in settings and "IG_PASSWORD" in settings and "STORY_LIKES_PER_HOUR" in settings  # names only
    assert "IG_USERNAME" in settings and "DATABASE_URL" in settings
    assert f"schema {SCHEMA_REVISION} (current)" in detail(report, "database")
    assert "app " in detail(report, "session") and "stored" in detail(report, "session")
    assert "1 enabled; 1 never checked" in detail(report, "targets")
    assert "story_like 0/" in detail(report, "limits")
    assert "#1 JSON (json://): valid, reachable" in detail(report, "notifications")
    assert rec.calls == [] and ig.count() == 0  # no message, no ping, no Instagram request
    text = run_cli("doctor", env=healthy, cwd=tmp_path)
    assert text.code == 0 and text.stdout.rstrip().endswith("all is well")
    assert "secret" not in text.output and ig.password not in text.output
    assert_no_secrets(ig, text)


def test_online_sends_one_light_request_under_the_lock(ig: Any, healthy: dict[str, str], tmp_path: Path) -> None:
    ig.reset_requests()
    code, report = doctor(healthy, tmp_path, "--online")
    assert code == 0, report
    assert "one light request answered" in detail(report, "instagram")
    assert ig.count() == 1 and ig.count("current_user") == 1
    store = with_store(healthy)
    assert store.lock_holder(ig.username) is None  # released
    store.engine.dispose()


def test_online_with_the_lock_held_is_75_and_sends_nothing(ig: Any, healthy: dict[str, str], tmp_path: Path) -> None:
    store = with_store(healthy)
    now = datetime.now(UTC)
    assert store.acquire_lock(ig.username, run_id="other", command="run-stories", now=now, ttl=timedelta(minutes=5))
    store.engine.dispose()
    ig.reset_requests()
    code, report = doctor(healthy, tmp_path, "--online")
    assert code == 75 and problems(report) == [("instagram", 75)]
    assert "held by run-stories (run other)" in detail(report, "lock")
    assert ig.count() == 0


def test_online_with_a_challenge_is_77(ig: Any, healthy: dict[str, str], tmp_path: Path) -> None:
    ig.require_challenge()
    code, report = doctor(healthy, tmp_path, "--online")
    assert code == 77 and problems(report) == [("instagram", 77)]


@pytest.mark.parametrize(
    ("change", "first", "says"),
    [
        ({"STORY_LIKES_PER_HOUR": "lots"}, ("settings", 78), "STORY_LIKES_PER_HOUR"),
        ({"NOTIFY_URLS": "nosuchscheme://x"}, ("notifications", 78), "not a URL Apprise can use"),
        ({"NOTIFY_URLS": f"json://127.0.0.1:{free_port()}/x"}, ("notifications", 69), "not reachable"),
        ({"HEALTHCHECK_URL": f"http://127.0.0.1:{free_port()}/ping/x"}, ("healthcheck", 69), "not reachable"),
        ({"TARGET_ACCOUNTS": ""}, ("targets", 78), "none: set TARGET_ACCOUNTS"),
    ],
)
def test_a_broken_setting_is_its_exit_code(
    healthy: dict[str, str], tmp_path: Path, change: dict[str, str], first: tuple[str, int], says: str
) -> None:
    env = {k: v for k, v in (healthy | change).items() if v}
    code, report = doctor(env, tmp_path)
    assert code == first[1] and problems(report)[0] == first, report
    assert says in detail(report, first[0])


def test_an_undecryptable_session_is_78(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    env |= {"TARGET_ACCOUNTS": "alice", "SESSION_ENCRYPTION_KEY": Fernet.generate_key().decode()}
    login(ig, env, tmp_path)
    code, report = doctor(env | {"SESSION_ENCRYPTION_KEY": Fernet.generate_key().decode()}, tmp_path)
    assert code == 78 and problems(report) == [("session", 78)]
    assert "does not decrypt" in detail(report, "session")


def test_no_account_is_78(tmp_path: Path) -> None:
    code, report = doctor({"DATABASE_URL": f"sqlite:///{tmp_path}/d.db"}, tmp_path)
    assert code == 78 and problems(report) == [("account", 78)]


def test_no_database_yet_means_no_session(tmp_path: Path) -> None:
    env = {"IG_USERNAME": "liker", "TARGET_ACCOUNTS": "alice", "DATABASE_URL": f"sqlite:///{tmp_path}/db/d.db"}
    code, report = doctor(env, tmp_path)
    assert code == 77 and problems(report) == [("session", 77)]
    assert "the first run creates it" in detail(report, "database")
    assert not (tmp_path / "db").exists()  # doctor created nothing


def test_an_unreachable_database_is_69(tmp_path: Path) -> None:
    env = {"IG_USERNAME": "liker", "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"}
    code, report = doctor(env, tmp_path)
    assert code == 69 and problems(report) == [("database", 69)]


def test_an_old_schema_is_78(env: dict[str, str], tmp_path: Path) -> None:
    from story_liker.db import migrate

    engine = make_engine(env["DATABASE_URL"])
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0002'"))
    engine.dispose()
    code, report = doctor(env | {"TARGET_ACCOUNTS": "alice"}, tmp_path)
    assert code == 78 and problems(report) == [("database", 78)]
    assert "run `story-liker migrate`" in detail(report, "database")


def test_no_session_is_77(env: dict[str, str], tmp_path: Path) -> None:
    from story_liker.db import migrate

    engine = make_engine(env["DATABASE_URL"])
    migrate(engine)
    engine.dispose()
    code, report = doctor(env | {"TARGET_ACCOUNTS": "alice"}, tmp_path)
    assert code == 77 and problems(report) == [("session", 77)]


@pytest.mark.parametrize(
    ("flag", "first", "says"),
    [
        ("needs_human", ("needs human", 77), "challenge_required"),
        ("needs_upgrade", ("needs human", 77), "story-liker session upgrade"),
        ("cooldown", ("cooldown", 75), "feedback_required"),
        ("dead_session", ("session", 77), "no live session yet: run `story-liker login`"),
    ],
)
def test_a_flag_in_the_database_is_its_exit_code(
    ig: Any, healthy: dict[str, str], tmp_path: Path, flag: str, first: tuple[str, int], says: str
) -> None:
    store = with_store(healthy)
    if flag == "needs_human":
        store.set_needs_human(ig.username, "challenge_required")
    elif flag == "needs_upgrade":
        store.set_needs_human(ig.username, "Instagram rejects the app version (needs_upgrade on keepalive)")
    elif flag == "cooldown":
        until = datetime.now(UTC) + timedelta(hours=12)
        store.set_cooldown(ig.username, until=until, reason="feedback_required", strikes=1)
    else:
        store.mark_session_dead(ig.username)
    store.engine.dispose()
    code, report = doctor(healthy, tmp_path)
    assert code == first[1] and problems(report)[0] == first, report
    assert says in detail(report, first[0])


def test_a_dead_session_with_a_password_is_only_a_note(ig: Any, healthy: dict[str, str], tmp_path: Path) -> None:
    store = with_store(healthy)
    store.mark_session_dead(ig.username)
    store.engine.dispose()
    code, report = doctor(healthy | {"IG_PASSWORD": ig.password}, tmp_path)
    assert code == 0, report
    assert "the next run logs in once with IG_PASSWORD" in detail(report, "session")
