"""The bench's year of use: its history is written through the models' tables, so it follows the schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import year
from story_liker import report as reporting
from story_liker.db import make_engine, migrate
from story_liker.settings import load
from story_liker.store import Store
from tests.fake import ME, stored_id

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_a_few_days_of_history_are_what_the_year_promises_and_read_back(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'year.db'}")
    migrate(engine)
    store = Store(engine)
    store.sync_targets(ME, ["ann", "ben"], NOW - timedelta(days=5))
    store.update_targets({stored_id(t): {"user_pk": 100 + n} for n, t in enumerate(store.targets(ME))})
    year.build_year(engine, ME, now=NOW, days=4, cleanup_timer=False)
    counts = year.table_counts(engine)
    assert counts["story"] == 2 * 4 * year.STORIES_PER_DAY
    assert counts["post"] == 2 * 4 // year.POST_EVERY_DAYS
    assert counts["action"] == counts["story"] + counts["post"]
    assert counts["run"] == 4 * 24 * 2 and counts["notification"] == 4
    data = reporting.report_data(
        store, load(ig_username=ME, timezone="UTC"), ME, window=reporting.Window(NOW - timedelta(days=5), NOW)
    )
    assert (data["story_likes"], data["post_likes"], data["runs"]) == (counts["story"], counts["post"], counts["run"])
    assert store.last_story_likes(ME).keys() == {100, 101}
    engine.dispose()


def test_the_goals_pass_and_miss_on_the_figures() -> None:
    result = year.YearResult(
        rows=[
            year.Row("status", "no cleanup timer", 0.40, 0.50, 60),
            year.Row("report --since 365d", "no cleanup timer", 0.40, 0.60, 60),
            year.Row("run-stories", "no cleanup timer", 0.70, 0.58, 60),
        ],
        size_mb={"no cleanup timer": 24.0},
        floors_cpu_s={"import instagrapi, sqlmodel; Client()": 0.5},
    )
    found = {goal.target.split(":")[-1].split("<=")[0].strip(): goal.ok for goal in year.goals(result)}
    assert found == {
        "status": True,
        "report --since 365d": False,
        "file": True,
        "nothing-new run-stories (a year, sqlite)": True,
    }
    assert "PASS" in year.report(result) and "MISS" in year.report(result)
