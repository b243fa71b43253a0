"""Optional monitoring: Prometheus metrics (textfile or Pushgateway), dead-man's-switch pings, notifications.

Nothing here may fail a pass or hold it up for more than a few seconds: each step (textfile, Pushgateway,
ping, notifications) runs on its own, and any error of one (a full disk, a garbage answer, a bug) is logged as
a warning with the exception type only, never its text (it may quote a URL with credentials), and dropped.
A ping, a push and a notification get a short bounded retry (stamina) of what may pass at once (a refused or
reset connection, a 5xx); a timeout is not retried, so a hanging service costs one timeout.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import time
import uuid
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


RETRY_WINDOW = 3.0  # seconds: no retry starts later than this after the first attempt
_STEP: contextvars.ContextVar[str] = contextvars.ContextVar("story_liker_retry_step", default="")


def run_uuid(run_id: str) -> str:
    """The run id as healthchecks.io wants it (`rid`: a UUID in canonical form): the run's own 12 hex digits
    are its last group, so a ping and the log lines of its run share them."""
    if re.fullmatch(r"[0-9a-f]{12}", run_id):
        return f"00000000-0000-4000-8000-{run_id}"
    return str(uuid.uuid5(uuid.NAMESPACE_OID, run_id))


def ping_suffix(code: int) -> str:
    """healthchecks.io's conventions: success is the plain URL, `/log` records a 75 (a cooldown, a held lock: a
    run that rightly did nothing) without counting it as a failure, `/<exit code>` is a failure."""
    return "" if code == 0 else "log" if code == 75 else str(code)


def ping(settings: Settings, suffix: str, *, command: str = "", run_id: str = "", body: str | None = None) -> None:
    """`<url>/start`, `<url>` (success), `<url>/log`, `<url>/<exit code>`; `?rid=` pairs start and end. With a
    body (the run summary) the ping is a POST, which healthchecks.io shows with the event."""
    if not settings.healthcheck_url:
        return
    import requests

    url = settings.healthcheck_url.replace("{command}", command) + (f"/{suffix}" if suffix else "")
    params = {"rid": run_uuid(run_id)} if run_id else None

    def send() -> None:
        if body is None:
            answer = requests.get(url, params=params, timeout=PING_TIMEOUT)
        else:
            answer = requests.post(url, params=params, data=body.encode(), timeout=PING_TIMEOUT)
        with contextlib.closing(answer):
            answer.raise_for_status()

    isolated("healthcheck_failed", lambda: retried("healthcheck", send, on=_transient_http))


def retried(step: str, call: Callable[[], T], *, on: Callable[[Exception], bool], window: float = RETRY_WINDOW) -> T:
    """``call`` with a short bounded retry (stamina: up to 3 attempts, none started after ``window`` seconds)
    of the errors ``on`` calls transient. Only for pings, pushes and notifications, never Instagram."""
    if window <= 0:
        return call()  # no time left for a second attempt
    import stamina

    _quiet_retries()
    token = _STEP.set(step)
    try:
        for attempt in stamina.retry_context(
            on=on, attempts=3, timeout=window, wait_initial=0.2, wait_max=1.0, wait_jitter=0.2
        ):
            with attempt:
                return call()
    finally:
        _STEP.reset(token)
    raise AssertionError("unreachable: stamina re-raises the last error")


_QUIET: list[bool] = []


def _quiet_retries() -> None:
    """stamina's own retry log lines carry the call's arguments and the error's text (URLs with tokens):
    ours name the step and the exception type only."""
    if _QUIET:
        return
    from stamina import instrumentation

    def log_retry(details: Any) -> None:
        log.info(
            "retry_scheduled",
            extra={
                "step": _STEP.get(),
                "retry": details.retry_num,
                "error": type(details.caused_by).__name__,
                "wait_s": round(details.wait_for, 2),
            },
        )

    instrumentation.set_on_retry_hooks([log_retry])
    _QUIET.append(True)


def _transient_http(exc: Exception) -> bool:
    """requests: a refused or reset connection or a 5xx/429 may pass at once; a timeout or a 4xx will not."""
    import requests

    if isinstance(exc, requests.Timeout):
        return False
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        return status >= 500 or status == 429
    return isinstance(exc, requests.ConnectionError)


def _transient_push(exc: Exception) -> bool:
    """urllib (prometheus_client's push): the same rule."""
    from urllib.error import HTTPError, URLError

    if isinstance(exc, HTTPError):
        return exc.code >= 500 or exc.code == 429
    reason = exc.reason if isinstance(exc, URLError) else exc
    return isinstance(reason, ConnectionRefusedError | ConnectionResetError | ConnectionAbortedError)


def summary(command: str, code: int, outcome: str, counts: dict[str, Any], duration: float) -> str:
    """The run summary a ping carries: what `run_finished` says, never a secret."""
    return json.dumps(
        {"command": command, "exit_code": code, "outcome": outcome, "duration_s": duration, **counts}, default=str
    )


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
    settings: Settings,
    store: Store | None,
    *,
    command: str,
    code: int,
    counts: dict[str, Any],
    duration: float,
    run_id: str = "",
    outcome: str = "",
) -> None:
    """Metrics, the dead-man's-switch ping and the notifications at the end of a run; what a failed database can
    no longer tell (last success, budget, cooldown, the account's health) is left out."""
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
    ping(
        settings,
        ping_suffix(code),
        command=command,
        run_id=run_id,
        body=summary(command, code, outcome, counts, duration),
    )
    if store is not None and settings.notifications_on:
        from story_liker import notify

        isolated(
            "notify_failed",
            lambda: notify.after_run(settings, store, command=command, code=code, counts=counts),
        )
