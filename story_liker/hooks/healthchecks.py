"""HEALTHCHECK_URL: the dead-man's-switch pings of a run (healthchecks.io's conventions), with the run summary."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from typing import TYPE_CHECKING, Any

from story_liker.errors import OK, TRY_LATER
from story_liker.hooks.guard import isolated, retried

if TYPE_CHECKING:
    from story_liker.settings import Settings

TIMEOUT = 3.0  # seconds, each ping


def run_uuid(run_id: str) -> str:
    """The run id as healthchecks.io wants it (`rid`: a UUID in canonical form): the run's own 12 hex digits
    are its last group, so a ping and the log lines of its run share them."""
    if re.fullmatch(r"[0-9a-f]{12}", run_id):
        return f"00000000-0000-4000-8000-{run_id}"
    return str(uuid.uuid5(uuid.NAMESPACE_OID, run_id))


def ping_suffix(code: int) -> str:
    """healthchecks.io's conventions: success is the plain URL, `/log` records a 75 (a cooldown, a held lock: a
    run that rightly did nothing) without counting it as a failure, `/<exit code>` is a failure."""
    return "" if code == OK else "log" if code == TRY_LATER else str(code)


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
            answer = requests.get(url, params=params, timeout=TIMEOUT)
        else:
            answer = requests.post(url, params=params, data=body.encode(), timeout=TIMEOUT)
        with contextlib.closing(answer):
            answer.raise_for_status()

    isolated("healthcheck_failed", lambda: retried("healthcheck", send, on=_transient_http))


def _transient_http(exc: Exception) -> bool:
    """requests: a refused or reset connection or a 5xx/429 may pass at once; a timeout or a 4xx will not."""
    import requests

    if isinstance(exc, requests.Timeout):
        return False
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        return status >= 500 or status == 429
    return isinstance(exc, requests.ConnectionError)


def summary(command: str, code: int, outcome: str, counts: dict[str, Any], duration: float) -> str:
    """The run summary a ping carries: what `run_finished` says, never a secret."""
    return json.dumps(
        {"command": command, "exit_code": code, "outcome": outcome, "duration_s": duration, **counts}, default=str
    )
