"""Pure rate-limit decisions: time, history, limits and randomness are arguments; nothing sleeps here."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Limits:
    per_hour: int
    per_day: int


@dataclass(frozen=True)
class Budget:
    """How many actions may be sent now, per window and in all."""

    hour_left: int
    day_left: int

    @property
    def remaining(self) -> int:
        return max(0, min(self.hour_left, self.day_left))


def budget(now: datetime, recent: Sequence[datetime], limits: Limits) -> Budget:
    """Sliding windows: the actions of the last hour and of the last day count against the limits."""
    last_hour = sum(1 for at in recent if now - at < HOUR)
    last_day = sum(1 for at in recent if now - at < DAY)
    return Budget(max(0, limits.per_hour - last_hour), max(0, limits.per_day - last_day))


def next_slot(now: datetime, recent: Sequence[datetime], limits: Limits) -> datetime:
    """The earliest time at which one more action fits both windows (``now`` if it fits already)."""
    times = sorted(at for at in recent if now - at < DAY)
    candidates = [now]
    hour = [at for at in times if now - at < HOUR]
    if limits.per_hour == 0 or limits.per_day == 0:
        return datetime.max.replace(tzinfo=now.tzinfo)
    if len(hour) >= limits.per_hour:
        candidates.append(hour[len(hour) - limits.per_hour] + HOUR)
    if len(times) >= limits.per_day:
        candidates.append(times[len(times) - limits.per_day] + DAY)
    return max(candidates)


def jitter(rng: random.Random, low: float, high: float) -> float:
    """A pause drawn uniformly from [low, high] seconds."""
    return rng.uniform(low, high) if high > low else low
