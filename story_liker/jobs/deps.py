"""What every job is given (Deps) and returns (Report); the one clock and the one sleeper."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from story_liker import ratelimit
from story_liker.errors import DatabaseUnavailable, Interrupted
from story_liker.ig.types import Client, Connection
from story_liker.settings import Settings
from story_liker.store import Store

log = logging.getLogger(__name__)

WAIT_STEP_SECONDS = 60.0  # a long wait checks the signal and the lease at least this often


class Outcome(StrEnum):
    """How a command that exited 0 ended (the `outcome` of `run_finished`; errors carry their own)."""

    OK = "ok"  # liked something, or did what it was asked
    NOTHING_NEW = "nothing_new"  # looked, found nothing to like
    NOTHING_TO_DO = "nothing_to_do"  # no enabled target: Instagram was not contacted
    BUDGET_USED_UP = "budget_used_up"  # the limits left some likes for a later pass
    DRY_RUN = "dry_run"
    OUTSIDE_ACTIVE_HOURS = "outside_active_hours"  # ACTIVE_HOURS: no request was sent


class Held(Protocol):
    """The run's lease while it holds it (jobs.lease.Lease): checked before every request."""

    def keep(self) -> None:
        """Renew it when due; raise LeaseLost once another run took it."""
        ...


class Progress(Protocol):
    def start(self, total: int, label: str) -> None: ...
    def advance(self, label: str) -> None: ...
    def stop(self) -> None: ...


class NoProgress:
    def start(self, total: int, label: str) -> None: ...
    def advance(self, label: str) -> None: ...
    def stop(self) -> None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


def database_clock(store: Store, local: Callable[[], datetime] = utcnow) -> Callable[[], datetime]:
    """One clock for every host that shares a database: on PostgreSQL the local clock corrected by its offset
    to the database's, measured once per run; on SQLite the local clock (the only one)."""
    server = store.server_time()
    if server is None:
        return local
    offset = server - local()
    return lambda: local() + offset


@dataclass
class Counts:
    targets: int = 0
    stories_seen: int = 0
    posts_seen: int = 0
    liked: int = 0
    would_like: int = 0
    already_liked: int = 0
    skipped: int = 0  # left for a later pass (the like limits, or the pass's time budget)
    deferred: int = 0  # reads left for a later pass: the pass's time budget (PASS_BUDGET_MINUTES) was spent
    left_out: int = 0  # left deliberately (STORY_LIKE_PROBABILITY, *_MAX_PER_TARGET)
    errors: int = 0
    gone: int = 0  # a like's story or post was gone by then (expired, deleted): handled, not liked
    requests: int = 0
    deleted: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class Deps:
    """Everything a job touches. Tests swap the clock, the sleeper, the randomness and Instagram, never the store."""

    settings: Settings
    store: Store
    run_id: str
    command: str
    connect: Callable[[Connection], Client]  # the only way to Instagram: the adapter, or a test's fake
    clock: Callable[[], datetime] = utcnow
    monotonic: Callable[[], float] = time.monotonic  # for jobs.lease: never jumps when the wall clock is set
    rng: random.Random = field(default_factory=random.Random)
    stop: threading.Event = field(default_factory=threading.Event)
    stop_signal: list[int] = field(default_factory=list)
    progress: Progress = field(default_factory=NoProgress)
    counts: Counts = field(default_factory=Counts)
    sleeper: Callable[[float], None] | None = None  # None: wait on `stop`, so a signal ends a pause at once
    lease: Held | None = None  # set while the run holds the account's lease (jobs.lease)
    deadline: datetime | None = None  # the end of the pass's time budget (PASS_BUDGET_MINUTES), once it started
    deadline_tick: float | None = None  # the same end by ``monotonic``: a wall clock set back does not stretch it

    def checkpoint(self) -> None:
        """Called between two steps: a pending SIGTERM/SIGINT ends the pass here."""
        if self.stop.is_set():
            raise Interrupted(self.stop_signal[0] if self.stop_signal else 15)

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.sleeper is not None:
            self.sleeper(seconds)
        else:
            self.stop.wait(seconds)

    def fits(self, seconds: float) -> bool:
        """Is there time left in the pass's budget for ``seconds`` more (its pauses at their longest)?"""
        if self.deadline_tick is not None and self.monotonic() + seconds > self.deadline_tick:
            return False
        return self.deadline is None or self.clock() + timedelta(seconds=seconds) <= self.deadline

    def start_budget(self, minutes: float) -> None:
        """The pass's time budget starts now: it ends when either clock says it has passed."""
        self.deadline = self.clock() + timedelta(minutes=minutes)
        self.deadline_tick = self.monotonic() + minutes * 60

    def keep_lease(self) -> None:
        if self.lease is not None:
            self.lease.keep()

    def wait_until(self, moment: datetime) -> None:
        """Wait until ``moment`` (as the wall clock says now), a while at a time, making sure between them that the
        run may go on (no signal, the lease kept: a wait may be longer than a third of the lease, each while is not).
        It ends when either clock says it is over: a wall clock set back meanwhile does not make it longer."""
        ends = self.monotonic() + (moment - self.clock()).total_seconds()
        while (left := min(ends - self.monotonic(), (moment - self.clock()).total_seconds())) > 0:
            self.sleep(min(left, WAIT_STEP_SECONDS, self.settings.lock_ttl_seconds / 3))
            self.checkpoint()
            self.keep_lease()

    def pause(self, low: float, high: float) -> None:
        """Sleep a jittered while, then make sure the run may go on (no signal, the lease still ours)."""
        self.sleep(ratelimit.jitter(self.rng, low, high))
        self.checkpoint()
        self.keep_lease()


@dataclass
class Report:
    outcome: Outcome
    counts: Counts
    extra: dict[str, Any] = field(default_factory=dict)


def outside_active_hours(deps: Deps) -> Report | None:
    """ACTIVE_HOURS: outside them a command that talks to Instagram ends at once with exit 0 and no request,
    naming when the next window opens; inside them None."""
    from story_liker import planning

    settings, now = deps.settings, deps.clock()
    if planning.is_active(now, settings.active_hours, settings.zone):
        return None
    opens = planning.next_window(now, settings.active_hours, settings.zone)
    log.info("outside_active_hours", extra={"next_window": opens.isoformat(timespec="minutes")})
    return Report(Outcome.OUTSIDE_ACTIVE_HOURS, deps.counts, {"next_window": opens.isoformat()})


def bookkeeping(write: Callable[[], None]) -> None:
    """A write a pass makes in its ``finally`` (what it learned of its targets). When the pass is already ending
    with an error (a throttle, a signal, a lost lease), a database failure here is logged, not raised: the error
    that ended the pass decides what follows (its cooldown, its exit code), not the bookkeeping after it."""
    import sys

    ending = sys.exc_info()[1]
    if ending is None:
        write()
        return
    try:
        write()
    except DatabaseUnavailable:
        log.warning("bookkeeping_not_written", extra={"ending": type(ending).__name__})
