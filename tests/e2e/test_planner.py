"""The planner end to end: `*` with exclusions and an extra name, and active hours, through the installed CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import login, run_cli
from tests.e2e.test_stories import follow_with_stories


def test_everyone_i_follow_with_an_exclusion_and_an_extra_public_account(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    follow_with_stories(ig, ["alice", "bob", "carol"], per_user=2, liked=0)
    stranger = ig.add_user("stranger", followed=False)
    ig.add_story(stranger)
    env |= {"TARGET_ACCOUNTS": "*,stranger", "TARGET_EXCLUDE": "carol"}
    login(ig, env, tmp_path)

    first = run_cli("run-stories", env=env, cwd=tmp_path)
    assert first.code == 0, first.output
    liked_by = {s.user.username for s in ig.stories if s.id in ig.liked_story_ids}
    assert liked_by == {"alice", "bob", "stranger"}
    assert first.event("targets_adopted")["added"] == 2
    listed = run_cli("accounts", "list", env=env, cwd=tmp_path).stdout
    assert "alice" in listed and "tray" in listed and "carol" not in listed
    ig.reset_requests()
    assert run_cli("run-stories", env=env, cwd=tmp_path).code == 0
    assert ig.count("send_story_like") == 0
    # nothing new: the tray alone, the stranger (not followed, read in the first pass's batch) not due yet
    assert ig.paths() == ["POST /api/v1/feed/reels_tray/"]


def test_outside_active_hours_a_run_exits_0_without_a_request(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    follow_with_stories(ig, ["alice"], per_user=1, liked=0)
    now = datetime.now(UTC)
    closed = f"{(now + timedelta(hours=2)):%H:00}-{(now + timedelta(hours=3)):%H:00}"  # a window that is not now
    env |= {"TARGET_ACCOUNTS": "alice", "ACTIVE_HOURS": closed, "TIMEZONE": "UTC"}
    login(ig, env, tmp_path)
    for command in ("run-stories", "run-posts", "keepalive"):
        result = run_cli(command, env=env, cwd=tmp_path)
        assert result.code == 0, result.output
        assert result.event("outside_active_hours")["next_window"]
    assert ig.count() == 0
    opened = run_cli("run-stories", env=env | {"ACTIVE_HOURS": "00:00-24:00"}, cwd=tmp_path)
    assert opened.code == 0 and ig.count("send_story_like") == 1
