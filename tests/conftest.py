"""Shared fixtures: a fresh database per test (SQLite always, PostgreSQL too when TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from story_liker.db import make_engine, migrate
from story_liker.settings import normalise_database_url
from story_liker.store import Store

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's environment or .env: every setting comes from the test."""
    for name in list(os.environ):
        if name.startswith(("IG_", "TARGET_", "STORY_", "POST_", "ACTION_", "LOG_", "SESSION_", "DATABASE_")) or name in (
            "DRY_RUN",
            "METRICS_TEXTFILE",
            "PUSHGATEWAY_URL",
            "HEALTHCHECK_URL",
        ):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def fresh_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'stories.db'}"
        return
    assert PG_URL
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(normalise_database_url(PG_URL))
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    base = normalise_database_url(PG_URL)
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend under test."""
    yield from fresh_database_url(request.param, tmp_path)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    engine = make_engine(database_url)
    migrate(engine)
    yield Store(engine)
    engine.dispose()
