"""The guard every hook runs under: a step that fails is logged (its exception type only) and dropped, a step
that may pass at once gets a short bounded retry. Nothing a hook does may fail a pass or hold it up.

A leaf: it imports nothing of ours but the errors (a second SIGTERM/SIGINT still stops at once).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from story_liker.errors import Interrupted

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_WINDOW = 3.0  # seconds: no retry starts later than this after the first attempt
_STEP: contextvars.ContextVar[str] = contextvars.ContextVar("story_liker_retry_step", default="")


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
