from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from story_liker import ratelimit
from story_liker.ratelimit import Limits

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_budget_counts_both_windows() -> None:
    recent = [NOW - timedelta(minutes=10)] * 3 + [NOW - timedelta(hours=5)] * 4 + [NOW - timedelta(days=2)] * 50
    budget = ratelimit.budget(NOW, recent, Limits(per_hour=5, per_day=10))
    assert (budget.hour_left, budget.day_left, budget.remaining) == (2, 3, 2)


def test_budget_never_negative() -> None:
    assert ratelimit.budget(NOW, [NOW] * 30, Limits(5, 10)).remaining == 0


def test_next_slot_is_when_the_oldest_action_of_the_full_hour_expires() -> None:
    recent = [NOW - timedelta(minutes=50), NOW - timedelta(minutes=20)]
    assert ratelimit.next_slot(NOW, recent, Limits(2, 100)) == NOW + timedelta(minutes=10)
    assert ratelimit.next_slot(NOW, recent, Limits(3, 100)) == NOW


times = st.lists(st.integers(min_value=0, max_value=3 * 24 * 3600), max_size=300)
limits = st.builds(Limits, per_hour=st.integers(0, 50), per_day=st.integers(0, 300))


@given(history=times, limits=limits, attempts=st.integers(0, 400))
def test_spending_the_budget_never_exceeds_a_window(history: list[int], limits: Limits, attempts: int) -> None:
    """Whatever the history: spend what budget() allows now, then no window holds more than its limit."""
    recent = [NOW - timedelta(seconds=s) for s in history]
    allowed = min(attempts, ratelimit.budget(NOW, recent, limits).remaining)
    after = recent + [NOW] * allowed
    in_hour = sum(1 for at in after if NOW - at < ratelimit.HOUR)
    in_day = sum(1 for at in after if NOW - at < ratelimit.DAY)
    prior_hour = sum(1 for at in recent if NOW - at < ratelimit.HOUR)
    prior_day = sum(1 for at in recent if NOW - at < ratelimit.DAY)
    assert in_hour <= max(limits.per_hour, prior_hour)
    assert in_day <= max(limits.per_day, prior_day)
    if allowed:
        assert in_hour <= limits.per_hour and in_day <= limits.per_day


@given(history=times, limits=limits)
def test_next_slot_fits_one_more_action(history: list[int], limits: Limits) -> None:
    recent = [NOW - timedelta(seconds=s) for s in history]
    slot = ratelimit.next_slot(NOW, recent, limits)
    if limits.per_hour and limits.per_day:
        assert slot >= NOW
        assert ratelimit.budget(slot, recent, limits).remaining >= 1
        if slot > NOW:
            assert ratelimit.budget(slot - timedelta(seconds=1), recent, limits).remaining == 0


@given(low=st.floats(0, 100), span=st.floats(0, 100), seed=st.integers())
def test_jitter_stays_within_bounds(low: float, span: float, seed: int) -> None:
    value = ratelimit.jitter(random.Random(seed), low, low + span)
    assert low <= value <= low + span
