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


def test_a_login_at_a_terminal_asks_again_only_after_a_rejected_typed_password_and_three_tries_at_most() -> None:
    rejected, other = health.LoginFailure.PASSWORD_REJECTED, health.LoginFailure.OTHER
    assert [health.login_retry(n, rejected, typed=True) for n in (1, 2, 3, 4)] == [True, True, False, False]
    assert not health.login_retry(1, other, typed=True)  # network, throttling, a challenge: no answer to retype
    assert not health.login_retry(1, rejected, typed=False)  # IG_PASSWORD would only be sent again
    assert health.LOGIN_PROMPT_TRIES == 3


@given(
    answers=st.lists(st.sampled_from(list(health.LoginFailure)), min_size=1, max_size=20),
    typed=st.booleans(),
    failures=st.integers(0, 50),
)
def test_the_tries_of_one_login_are_never_a_loop(
    answers: list[health.LoginFailure], typed: bool, failures: int
) -> None:
    """However Instagram answers and whatever the backoff says: at most 3 tries, a further try only after a
    rejected password that was typed, one try without a terminal."""
    tries = 0
    for answer in answers:  # each try fails with the next answer
        tries += 1
        failures += 1
        if not health.login_retry(tries, answer, typed=typed):
            break
    assert tries <= health.LOGIN_PROMPT_TRIES
    assert typed or tries == 1
    assert all(a is health.LoginFailure.PASSWORD_REJECTED for a in answers[: tries - 1])
    if tries < len(answers) and tries < health.LOGIN_PROMPT_TRIES:
        assert answers[tries - 1] is health.LoginFailure.OTHER or not typed
    assert health.login_gate(failures, NOW, NOW).allowed is (failures == 0)  # they all count for the runs' gate


def test_only_bad_password_is_a_rejected_password() -> None:
    from story_liker.errors import NeedsHuman, NetworkError, PasswordRejected, is_password_rejected

    assert is_password_rejected(PasswordRejected("login failed: BadPassword"))
    assert not is_password_rejected(NeedsHuman("login failed: BadPassword"))  # the class counts, never a message
    for other in ("login failed: BadCredentials", "login failed: ProxyAddressIsBlocked", "Instagram wants a human"):
        assert not is_password_rejected(NeedsHuman(other))
    assert not is_password_rejected(NetworkError("login failed: BadPassword"))
