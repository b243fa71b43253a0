"""Optional monitoring: Prometheus metrics (textfile or Pushgateway) and a dead-man's-switch ping.

Nothing here may fail a pass or hold it up for more than a few seconds: each step (textfile, Pushgateway,
ping) runs on its own, and any error of one (a full disk, a garbage answer, a bug) is logged as a warning
with the exception type only, never its text (it may quote a URL with credentials), and dropped.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from story_liker.errors import Interrupted, StoryLikerError
from story_liker.settings import Settings

if TYPE_CHECKING:
    from story_liker.store import Store

log = logging.getLogger(__name__)
PING_TIMEOUT = 3.0
T = TypeVar("T")


def ping(settings: Settings, suffix: str) -> None:
    """healthchecks.io style: `<url>/start`, `<url>` on success, `<url>/<exit code>` on failure."""
    if not settings.healthcheck_url:
        return
    import requests

    url = settings.healthcheck_url + (f"/{suffix}" if suffix else "")
    isolated("healthcheck_failed", lambda: requests.get(url, timeout=PING_TIMEOUT).close())


def isolated(event: str, step: Callable[[], T], **fields: str) -> T | None:
    """Run one monitoring step; on any error log `event` (exception type only) and go on with None.

    A second SIGTERM/SIGINT (Interrupted) still stops at once: the person asked for that.
    """
    try:
        return step()
    except Interrupted:
        raise
    except Exception as exc:
        log.warning(event, extra={**fields, "error": type(exc).__name__})
        return None


def textfile_path(template: Path, command: str) -> Path:
    """One file per command, so a failing `cleanup` never overwrites the figures of `run-stories`."""
    slug = command.replace("-", "_")
    if "{command}" in template.name:
        return template.with_name(template.name.replace("{command}", slug))
    return template.with_name(f"{template.stem}_{slug}{template.suffix or '.prom'}")


def export(
    settings: Settings,
    *,
    command: str,
    exit_code: int,
    duration: float,
    counts: dict[str, Any],
    last_success: float | None,
    budget: dict[str, dict[str, int]],
    cooldown_until: float | None,
) -> None:
    if not settings.metrics_textfile and not settings.pushgateway_url:
        return
    registry = isolated(
        "metrics_failed",
        lambda: _registry(
            settings,
            command=command,
            exit_code=exit_code,
            duration=duration,
            counts=counts,
            last_success=last_success,
            budget=budget,
            cooldown_until=cooldown_until,
        ),
    )
    if registry is None:
        return
    labels = {"command": command, "account": settings.ig_username or ""}
    if settings.metrics_textfile:
        path = textfile_path(settings.metrics_textfile, command)
        isolated("metrics_write_failed", lambda: _write_textfile(path, registry), path=str(path))
    if settings.pushgateway_url:
        url = settings.pushgateway_url
        isolated("metrics_push_failed", lambda: _push(url, registry, labels))


def _write_textfile(path: Path, registry: Any) -> None:
    from prometheus_client import write_to_textfile

    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)  # written beside the target, then renamed: atomic
    path.chmod(0o644)  # node_exporter runs as another user; the metrics hold no secret (UMask=0077 gave 0600)


def _push(url: str, registry: Any, labels: dict[str, str]) -> None:
    from prometheus_client import push_to_gateway

    push_to_gateway(url, job="story_liker", registry=registry, grouping_key=labels, timeout=PING_TIMEOUT)


def _registry(
    settings: Settings,
    *,
    command: str,
    exit_code: int,
    duration: float,
    counts: dict[str, Any],
    last_success: float | None,
    budget: dict[str, dict[str, int]],
    cooldown_until: float | None,
) -> Any:
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    labels = {"command": command, "account": settings.ig_username or ""}

    def gauge(name: str, doc: str, value: float, **extra: str) -> None:
        metric = Gauge(name, doc, [*labels, *extra], registry=registry)
        metric.labels(**labels, **extra).set(value)

    gauge("story_liker_last_run_timestamp_seconds", "When the last run ended.", time.time())
    if last_success is not None:
        gauge("story_liker_last_success_timestamp_seconds", "When the last run that exited 0 ended.", last_success)
    gauge("story_liker_last_run_duration_seconds", "Wall time of the last run.", duration)
    gauge("story_liker_last_exit_code", "Exit code of the last run (see README).", exit_code)
    gauge("story_liker_last_run_likes", "Likes sent by the last run.", counts.get("liked", 0), kind=_kind(command))
    gauge(
        "story_liker_last_run_errors",
        "Items or targets skipped with an error in the last run.",
        counts.get("errors", 0),
    )
    gauge("story_liker_last_run_requests", "Instagram requests sent by the last run.", counts.get("requests", 0))
    likes_left = Gauge(
        "story_liker_budget_remaining",
        "Likes left in each sliding window.",
        [*labels, "kind", "window"],
        registry=registry,
    )
    for kind, windows in budget.items():
        for window, left in windows.items():
            likes_left.labels(**labels, kind=kind, window=window).set(left)
    gauge("story_liker_cooldown_until_timestamp_seconds", "End of the running cooldown (0: none).", cooldown_until or 0)
    return registry


def _kind(command: str) -> str:
    return {"run-stories": "story", "run-posts": "post"}.get(command, "none")


def after_run(
    settings: Settings, store: Store | None, *, command: str, code: int, counts: dict[str, Any], duration: float
) -> None:
    """Metrics and the dead-man's-switch ping at the end of a run; what a failed database can no longer
    tell (last success, budget, cooldown) is left out."""
    from story_liker.report import limits_usage

    state: dict[str, Any] = {"last_success": None, "budget": {}, "cooldown_until": None}
    account = settings.ig_username

    def read_state() -> None:
        assert store is not None
        with contextlib.suppress(StoryLikerError):  # the database failed: the run's own log line says so
            finished = store.last_success(account, command)
            state["last_success"] = finished.timestamp() if finished else None
            if account:
                now = datetime.now(UTC)
                state["budget"] = {
                    kind: {
                        "hour": max(0, usage["effective_per_hour"] - usage["last_hour"]),
                        "day": max(0, usage["effective_per_day"] - usage["last_day"]),
                    }
                    for kind, usage in limits_usage(store, settings, account, now).items()
                }
                until = store.account(account).cooldown_until
                state["cooldown_until"] = until.timestamp() if until and until > now else None

    if store is not None and (settings.metrics_textfile or settings.pushgateway_url):
        isolated("metrics_state_failed", read_state)
    isolated(
        "metrics_failed",
        lambda: export(settings, command=command, exit_code=code, duration=duration, counts=counts, **state),
    )
    ping(settings, "" if code == 0 else str(code))
