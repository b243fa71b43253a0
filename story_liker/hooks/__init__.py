"""Everything after a run, none of which may change its exit code or hold it up: the metrics (``prometheus``), the
dead-man's-switch pings (``healthchecks``) and the notifications of the account's health (``notify``), each step
under the ``guard``. A command a scheduler runs is `monitored`, as borgmatic's ``Monitoring_hooks`` wraps a run:
the start ping on the way in, the rest on the way out."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from story_liker.errors import BUG, StoryLikerError
from story_liker.hooks import healthchecks, prometheus
from story_liker.hooks.guard import isolated

if TYPE_CHECKING:
    from story_liker.settings import Settings
    from story_liker.store import Store


@dataclass
class RunEnd:
    """How the run ended, as the command tells the hooks (filled in before the ``monitored`` block ends)."""

    code: int = BUG
    outcome: str = "bug"
    counts: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0
    store: Store | None = None  # None: the database was never usable; what it would tell is left out


@contextlib.contextmanager
def monitored(settings: Settings, *, command: str, run_id: str) -> Iterator[RunEnd]:
    """Ping the start; on the way out export the metrics, ping the end and notify, each on its own."""
    healthchecks.ping(settings, "start", command=command, run_id=run_id)
    end = RunEnd()
    try:
        yield end
    finally:
        after_run(settings, end, command=command, run_id=run_id)


def after_run(settings: Settings, end: RunEnd, *, command: str, run_id: str = "") -> None:
    """Metrics, the end ping and the notifications; what a failed database can no longer tell (last success,
    budget, cooldown, the account's health) is left out."""
    store = end.store
    state: dict[str, Any] = {"last_success": None, "budget": {}, "cooldown_until": None}
    if store is not None and (settings.metrics_textfile or settings.pushgateway_url):
        isolated("metrics_state_failed", lambda: state.update(_metrics_state(settings, store, command)))
    isolated(
        "metrics_failed",
        lambda: prometheus.export(
            settings, command=command, exit_code=end.code, duration=end.duration, counts=end.counts, **state
        ),
    )
    healthchecks.ping(
        settings,
        healthchecks.ping_suffix(end.code),
        command=command,
        run_id=run_id,
        body=healthchecks.summary(command, end.code, end.outcome, end.counts, end.duration),
    )
    if store is not None and settings.notifications_on:
        from story_liker.hooks import notify

        isolated(
            "notify_failed",
            lambda: notify.after_run(settings, store, command=command, code=end.code, counts=end.counts),
        )


def _metrics_state(settings: Settings, store: Store, command: str) -> dict[str, Any]:
    """What the metrics read of the database: the last success, the likes left, a cooldown's end."""
    from story_liker import limits

    account = settings.ig_username
    state: dict[str, Any] = {}
    with contextlib.suppress(StoryLikerError):  # the database failed: the run's own log line says so
        finished = store.last_success(account, command)
        state["last_success"] = finished.timestamp() if finished else None
        if account:
            now = datetime.now(UTC)
            state["budget"] = {
                kind: {
                    "10m": max(0, usage["effective_per_10_minutes"] - usage["last_10_minutes"]),
                    "hour": max(0, usage["effective_per_hour"] - usage["last_hour"]),
                    "day": max(0, usage["effective_per_day"] - usage["last_day"]),
                }
                for kind, usage in limits.usage(store, settings, account, now).items()
            }
            until = store.account(account).cooldown_until
            state["cooldown_until"] = until.timestamp() if until and until > now else None
    return state
