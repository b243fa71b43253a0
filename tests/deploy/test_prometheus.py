"""Prometheus: the alert rules, checked and unit-tested by promtool."""

from __future__ import annotations

import re

from tests.deploy.common import DEPLOY, run, tool, yaml

METRICS = {
    "story_liker_last_success_timestamp_seconds",
    "story_liker_last_run_duration_seconds",
    "story_liker_last_exit_code",
    "story_liker_likes_total",
    "story_liker_errors_total",
    "story_liker_requests_total",
    "story_liker_budget_remaining",
    "story_liker_cooldown_until_timestamp_seconds",
}


ALERTS = DEPLOY / "prometheus" / "alerts.yml"


def test_alert_rules_file() -> None:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    assert {"StoryLikerStoriesStale", "StoryLikerNeedsHuman", "StoryLikerConfigError"} <= names
    stale = next(r for r in rules if r["alert"] == "StoryLikerStoriesStale")
    assert stale["expr"] == ('time() - story_liker_last_success_timestamp_seconds{command="run-stories"} > 3 * 3600')
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"]
        used = set(re.findall(r"story_liker_[a-z_]+", rule["expr"]))
        assert used and used <= METRICS, used


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    promtool = tool("promtool", "apt-get install -y prometheus")
    checked = run([promtool, "check", "rules", str(ALERTS)])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run([promtool, "test", "rules", "alerts.test.yml"], cwd=ALERTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
