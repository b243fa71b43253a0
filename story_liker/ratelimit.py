"""Pure rate-limit decisions: time, history, limits and randomness are arguments; nothing sleeps here."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

BURST = timedelta(minutes=10)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Limits:
    per_hour: int
    per_day: int
    per_10_minutes: int | None = None  # the burst window (None: none)


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


def burst_room_at(now: datetime, recent: Sequence[datetime], limits: Limits, wanted: int = 1) -> datetime:
    """The earliest time at which ``wanted`` more actions fit the 10-minute window (``now`` if they fit already;
    ``wanted`` is capped at the window's size). Without a burst window: ``now``. The hour and the day are
    ``budget``'s: a pass plans its likes by them and paces them by this."""
    window = limits.per_10_minutes
    if window is None or wanted <= 0:
        return now
    if window == 0:
        return datetime.max.replace(tzinfo=now.tzinfo)
    inside = sorted(at for at in recent if now - at < BURST)
    over = len(inside) + min(wanted, window) - window  # how many of those must leave the window first
    return now if over <= 0 else max(now, inside[over - 1] + BURST)


def jitter(rng: random.Random, low: float, high: float) -> float:
    """A pause drawn uniformly from [low, high] seconds."""
    return rng.uniform(low, high) if high > low else low


def unit_hash(*parts: object) -> float:
    """A stable number in [0, 1) for these values: the same on every host, run and dry run."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# --- effective limits: adaptive (AIMD), warm-up, a day that looks human ------------------------------------

AIMD_STEP = 0.1  # each clean day after a block gives back 10 % of the configured limits
AIMD_FLOOR = 0.05


def aimd_factor(base: float | None, changed_at: datetime | None, now: datetime) -> float:
    """The share of the configured limits in force: ``base`` right after the last block, +10 % per clean day
    since (a day without a block: any block resets ``changed_at``), up to 100 %."""
    if base is None or changed_at is None:
        return 1.0
    days = max(0, int((now - changed_at) / DAY))
    return min(1.0, base + AIMD_STEP * days)


def after_block(current: float) -> float:
    """Multiplicative decrease: an action block halves what is in force."""
    return max(AIMD_FLOOR, current / 2)


def warmup_factor(started_at: datetime | None, now: datetime, *, start_percent: float, days: float) -> float:
    """A new device starts at ``start_percent`` and rises linearly to 100 % over ``days`` (0: no warm-up)."""
    if started_at is None or days <= 0:
        return 1.0
    progress = (now - started_at) / timedelta(days=days)
    if progress >= 1:
        return 1.0
    start = start_percent / 100
    return start + (1 - start) * max(0.0, progress)


def day_factor(account: str, now: datetime, zone: tzinfo, spread_percent: float) -> float:
    """The daily limit varies a little from day to day, deterministic per account and local date."""
    day = now.astimezone(zone).date().isoformat()
    return 1 + spread_percent / 100 * (2 * unit_hash(account, day) - 1)


@dataclass(frozen=True)
class Effective:
    limits: Limits
    reasons: tuple[str, ...]  # why they differ from the configured ones


def effective_limits(configured: Limits, *, aimd: float = 1.0, warmup: float = 1.0, day: float = 1.0) -> Effective:
    """The limits in force: configured x adaptive share x warm-up (hour and day) x day variation (daily); the
    10-minute window as configured."""
    reasons = []
    if aimd < 1:
        reasons.append(f"reduced to {aimd:.0%} after an action block (+10 % per clean day)")
    if warmup < 1:
        reasons.append(f"warm-up of a new device: {warmup:.0%}")
    if day != 1:
        reasons.append(f"today's daily variation: {day:.0%}")

    def scaled(value: int, factor: float) -> int:
        return 0 if value == 0 else max(1, math.floor(value * factor))

    return Effective(
        Limits(
            scaled(configured.per_hour, aimd * warmup),
            scaled(configured.per_day, aimd * warmup * day),
            configured.per_10_minutes,  # a cap on bursts, not on volume: what the others scale
        ),
        tuple(reasons),
    )
