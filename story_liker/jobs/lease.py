"""The lease is the law: one run at a time acts for an account, and a run that lost its lease stops.

A run takes the lease before it reads anything it decides on (flags, cooldown, strikes, budget, session),
renews it as it goes, and checks it before every Instagram request: once another run has taken it over,
this run sends nothing more and never saves its session over the new holder's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from story_liker.errors import LeaseLost, Locked
from story_liker.jobs.deps import Deps

log = logging.getLogger(__name__)


@dataclass
class Lease:
    deps: Deps
    account: str
    ttl: timedelta
    renewed_at: datetime  # by deps.clock(): what the database holds
    renewed_tick: float  # by deps.monotonic(), at the same moment

    def keep(self) -> None:
        """Push the lease forward once a third of it has passed (cheap to call before every request).

        Within a third of the TTL of the last renewal nobody else can hold it; past that the renewal
        itself tells: it updates only a row that still names this run.

        "Within" by both clocks. The monotonic one, because a wall clock set back (NTP, a person) would
        otherwise stretch the third by the size of the step: an hour back, an hour without a check, long after
        the lease ran out and another run took it. The wall clock too: the monotonic one stands still while the
        host is suspended (Linux ``CLOCK_MONOTONIC``), and the expiry in the database is a wall time, which a
        wall clock set forward reaches early. Either one says a third passed, or the wall clock went back: the
        database decides.
        """
        now, tick = self.deps.clock(), self.deps.monotonic()
        third = self.ttl / 3
        if tick - self.renewed_tick < third.total_seconds() and timedelta(0) <= now - self.renewed_at < third:
            return
        store, run_id = self.deps.store, self.deps.run_id
        if not store.renew_lock(self.account, run_id=run_id, now=now, ttl=self.ttl):
            holder = store.lock_holder(self.account)
            log.error(
                "lease_lost",
                extra={
                    "renewed_at": self.renewed_at.isoformat(timespec="seconds"),
                    "holder": holder.run_id if holder else None,
                },
            )
            raise LeaseLost(
                f"the run lock for {self.account} expired and "
                + (f"run {holder.run_id} ({holder.command}) took it" if holder else "was taken")
                + ": stopped before the next request"
            )
        self.renewed_at, self.renewed_tick = now, tick


@contextmanager
def lease(deps: Deps, ttl: timedelta | None = None) -> Iterator[Lease]:
    """Hold the account's run lock for the block, or raise Locked (75) naming who holds it."""
    account, store, now = deps.settings.account(), deps.store, deps.clock()
    ttl = ttl or timedelta(seconds=deps.settings.lock_ttl_seconds)
    if not store.acquire_lock(account, run_id=deps.run_id, command=deps.command, now=now, ttl=ttl):
        holder = store.lock_holder(account)
        detail = f" by {holder.command} (run {holder.run_id}) until {holder.expires_at:%H:%M:%S}Z" if holder else ""
        raise Locked(f"another run holds the lock for {account}{detail}")
    held = Lease(deps, account, ttl, now, deps.monotonic())
    deps.lease = held
    try:
        yield held
    finally:
        deps.lease = None
        store.release_lock(account, run_id=deps.run_id)
