"""The account-health rules (health.py) as pure functions of history and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from story_liker import health
from story_liker.errors import ThrottleKind
from story_liker.health import Event

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LIMITS = {"base_minutes": 30, "feedback_hours": 12, "max_hours": 72}


def test_cooldowns_double_from_their_base_and_are_capped() -> None:
    waits = [health.cooldown(ThrottleKind.RATE_LIMIT, n, **LIMITS) for n in (1, 2, 3)]
    assert waits == [timedelta(minutes=30), timedelta(hours=1), timedelta(hours=2)]
    assert health.cooldown(ThrottleKind.RATE_LIMIT, 50, **LIMITS) == timedelta(hours=72)
    blocks = [health.cooldown(ThrottleKind.FEEDBACK_REQUIRED, n, **LIMITS) for n in (1, 2, 3, 4, 5)]
    assert blocks == [timedelta(hours=h) for h in (12, 24, 48, 72, 72)]
    assert health.cooldown(ThrottleKind.REJECTED, 1, **LIMITS) == timedelta(minutes=30)


@given(kind=st.sampled_from(list(ThrottleKind)), strikes=st.integers(1, 1000))
def test_a_cooldown_is_never_shorter_than_its_base_nor_longer_than_the_cap(kind: ThrottleKind, strikes: int) -> None:
    wait = health.cooldown(kind, strikes, **LIMITS)
    assert timedelta(minutes=30) <= wait <= timedelta(hours=72)


def test_only_an_accepted_like_ends_a_row_of_throttles() -> None:
    strikes = 0
    for _ in range(3):
        strikes = health.strikes_after(strikes, Event.THROTTLED)
    assert strikes == 3
    assert health.strikes_after(strikes, Event.LIKE_ACCEPTED) == 0
    assert {e.value for e in Event} == {"throttled", "like_accepted"}  # a read is no event: it changes nothing


def test_the_breaker_opens_at_the_third_refusal_in_a_row() -> None:
    assert [health.breaker_open(n) for n in range(5)] == [False, False, False, True, True]


def test_login_gate_backs_off_1_then_2_hours_and_gives_up_after_three() -> None:
    assert health.login_gate(0, None, NOW).allowed
    one = health.login_gate(1, NOW, NOW + timedelta(minutes=59))
    assert not one.allowed and not one.exhausted and one.next_attempt == NOW + timedelta(hours=1)
    assert health.login_gate(1, NOW, NOW + timedelta(hours=1)).allowed
    assert health.login_gate(2, NOW, NOW + timedelta(hours=1, minutes=59)).next_attempt == NOW + timedelta(hours=2)
    assert health.login_gate(2, NOW, NOW + timedelta(hours=2)).allowed
    three = health.login_gate(3, NOW, NOW + timedelta(days=30))
    assert not three.allowed and three.exhausted


@given(failures=st.integers(0, 50), after=st.integers(0, 10**7))
def test_login_gate_never_allows_more_than_three_failures_nor_an_attempt_inside_the_backoff(
    failures: int, after: int
) -> None:
    gate = health.login_gate(failures, NOW, NOW + timedelta(seconds=after))
    if failures >= health.LOGIN_MAX_FAILURES:
        assert gate.exhausted and not gate.allowed
    elif failures and after < health.login_backoff(failures).total_seconds():
        assert not gate.allowed and gate.next_attempt is not None and gate.next_attempt > NOW + timedelta(seconds=after)
    else:
        assert gate.allowed
