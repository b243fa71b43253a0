"""Prometheus metrics of a run: a node_exporter textfile (METRICS_TEXTFILE) and/or a Pushgateway (PUSHGATEWAY_URL)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from story_liker.hooks.guard import isolated, retried

if TYPE_CHECKING:
    from story_liker.settings import Settings

TIMEOUT = 3.0  # seconds, the push


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
        isolated(
            "metrics_push_failed",
            lambda: retried("pushgateway", lambda: _push(url, registry, labels), on=_transient_push),
        )


def _write_textfile(path: Path, registry: Any) -> None:
    from prometheus_client import write_to_textfile

    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)  # written beside the target, then renamed: atomic
    path.chmod(0o644)  # node_exporter runs as another user; the metrics hold no secret (UMask=0077 gave 0600)


def _push(url: str, registry: Any, labels: dict[str, str]) -> None:
    from prometheus_client import push_to_gateway

    push_to_gateway(url, job="story_liker", registry=registry, grouping_key=labels, timeout=TIMEOUT)


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


def _transient_push(exc: Exception) -> bool:
    """urllib (prometheus_client's push): the same rule."""
    from urllib.error import HTTPError, URLError

    if isinstance(exc, HTTPError):
        return exc.code >= 500 or exc.code == 429
    reason = exc.reason if isinstance(exc, URLError) else exc
    return isinstance(reason, ConnectionRefusedError | ConnectionResetError | ConnectionAbortedError)
