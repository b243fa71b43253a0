"""A pass costs little more than its imports: it imports only what it uses, and the garbage collector does not walk
start-up's objects again and again."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from story_liker import cli
from story_liker.db import make_engine, migrate

ROOT = Path(__file__).resolve().parents[2]

PASS = """
import sys
from story_liker.db import make_engine
from story_liker.ig.types import UserRef
from story_liker.jobs.stories import run_stories
from story_liker.store import Store
from tests.fake import Harness, ScriptedInstagram

h = Harness(Store(make_engine(sys.argv[1])), overrides={"target_accounts": "alice"})
h.store_session()
ig = ScriptedInstagram(h.clock, followed=[UserRef(101, "alice", True)])
print(run_stories(h.deps(ig), dry_run=False, max_likes=None).outcome, ig.requests_sent > 0)
unused = ("sqlalchemy.dialects.postgresql", "psycopg", "cryptography", "alembic", "story_liker.ig.adapter")
print(sorted(name for name in unused if name in sys.modules))
"""


def test_a_story_pass_on_sqlite_imports_no_postgresql_no_crypto_and_no_adapter(tmp_path: Path) -> None:
    """PostgreSQL's dialect (Store's insert path took both), cryptography for a session that is not encrypted,
    Alembic (the schema is there) and the instagrapi adapter (the fake connects) stay out of the process."""
    url = f"sqlite:///{tmp_path / 'pass.db'}"
    engine = make_engine(url)
    migrate(engine)  # here: Alembic imports every dialect it knows
    engine.dispose()
    out = subprocess.run(
        [sys.executable, "-c", PASS, url], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.splitlines()
    assert out == ["nothing_new True", "[]"]


def test_start_up_is_frozen_and_the_collector_back_on_when_the_job_starts() -> None:
    assert gc.isenabled()
    cli._started_up()  # not held off (the tests' in-process runs): nothing changes
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    cli._start_up.append(True)
    try:
        cli._started_up()
        assert gc.isenabled() and gc.get_freeze_count() > 0 and not cli._start_up
    finally:
        gc.unfreeze()
        gc.enable()
