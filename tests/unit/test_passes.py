"""Pass logic in-process: the real jobs, store (SQLite; PostgreSQL too when TEST_DATABASE_URL is set) and rules,
against a scripted Instagram with a fake clock and sleeper. Each test names the safety rule it holds."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from story_liker.errors import (
    BadResponse,
    ConfigError,
    CoolingDown,
    LeaseLost,
    Locked,
    LoginBackoff,
    NeedsHuman,
    NetworkError,
    SessionExpired,
    Throttled,
    ThrottleKind,
)
from story_liker.ig.types import UserRef
from story_liker.jobs.deps import Outcome, database_clock
from story_liker.jobs.maintenance import keepalive
from story_liker.jobs.posts import run_posts
from story_liker.jobs.stories import run_stories
from story_liker.models import STORY_LIKE, Action
from story_liker.store import Store
from tests.fake import DEVICE, ME, FakeClock, Harness, ScriptedInstagram, story, tray_of

NAMES = {101: "alice", 102: "bob", 103: "carol", 104: "dave"}


@pytest.fixture
def h(store: Store) -> Harness:
    harness = Harness(store, overrides={"target_accounts": ",".join(NAMES.values())})
    harness.store_session()
    return harness


def busy_instagram(h: Harness, per_target: int = 2) -> ScriptedInstagram:
    reels = {pk: [story(pk, n, at=h.clock()) for n in range(per_target)] for pk in NAMES}
    return ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)


def stories(h: Harness, ig: ScriptedInstagram, **kwargs: Any) -> Outcome:
    return run_stories(h.deps(ig), dry_run=kwargs.get("dry_run", False), max_likes=kwargs.get("max_likes")).outcome


# --- 1. the lease is the law ------------------------------------------------------------------------------


def test_a_run_that_lost_its_lease_sends_nothing_more_and_keeps_the_new_holders_session(h: Harness) -> None:
    h.overrides["lock_ttl_seconds"] = 5
    ig = busy_instagram(h)

    def stall_then_lose(fake: ScriptedInstagram, name: str) -> None:
        if name == "like_story" and fake.names().count("like_story") == 1:
            h.clock.advance(seconds=8)  # the second like stalls 8 s; the lease (5 s) runs out meanwhile
            assert h.store.acquire_lock(ME, run_id="other", command="run-stories", now=h.clock(), ttl=timedelta(60))
            h.store.save_session(ME, settings='{"other": 1}', encrypted=False, user_pk=1, now=h.clock(), login=False)

    ig.before = stall_then_lose
    with pytest.raises(LeaseLost):
        stories(h, ig)
    assert ig.names().count("like_story") == 2  # the like in flight went out; none after it (8 were planned)
    assert h.store.account(ME).settings == '{"other": 1}'  # the session of the run that took over stays
    assert len(h.store.liked_story_pks(ME, ig.liked)) == 2  # both likes sent are recorded: never liked twice
    holder = h.store.lock_holder(ME)
    assert holder is not None and holder.run_id == "other"


def test_a_run_renews_its_lease_as_it_goes(h: Harness) -> None:
    h.overrides |= {"lock_ttl_seconds": 30, "action_delay_min_seconds": 4, "action_delay_max_seconds": 4}
    ig = busy_instagram(h)  # 8 likes 4 s apart: 32 s, longer than the lease
    assert stories(h, ig) is Outcome.OK
    assert len(ig.liked) == 8


def lose_the_lease_in_the_first_like(h: Harness, ig: ScriptedInstagram, clocks: Callable[[], datetime]) -> None:
    """While the first like is in flight, ``clocks()`` moves this host's clocks and returns the true time, at which
    another run (on a host whose clock is right) finds the lease (30 s) run out and takes it."""
    h.overrides["lock_ttl_seconds"] = 30
    h.overrides["pass_budget_minutes"] = 240  # an hour's step must not end the pass by its time budget instead

    def before(fake: ScriptedInstagram, name: str) -> None:
        if name == "like_story" and "like_story" not in fake.names():
            now = clocks()
            assert h.store.acquire_lock(ME, run_id="other", command="run-stories", now=now, ttl=timedelta(60))

    ig.before = before


def test_a_wall_clock_set_back_an_hour_does_not_put_off_the_lease_check(h: Harness) -> None:
    """The check is skipped for a third of the TTL by the monotonic clock: by a wall clock set back an hour it was
    skipped for an hour, and this run went on liking beside the run that had taken over."""
    ig = busy_instagram(h)

    def set_back() -> datetime:
        h.clock.advance(seconds=40)  # the like stalls 40 s: the lease runs out
        now = h.clock()
        h.clock.step(hours=-1)
        return now

    lose_the_lease_in_the_first_like(h, ig, set_back)
    with pytest.raises(LeaseLost):
        stories(h, ig)
    assert ig.names().count("like_story") == 1  # checked before the next: nothing more went out (8 were planned)
    holder = h.store.lock_holder(ME)
    assert holder is not None and holder.run_id == "other"


def test_a_host_back_from_suspend_checks_its_lease_though_the_monotonic_clock_stood_still(h: Harness) -> None:
    """Linux's monotonic clock stops while the host is suspended; the wall clock does not, nor does the lease in
    the database. A third of the TTL by either clock sends the run to the database."""
    ig = busy_instagram(h)

    def suspend() -> datetime:
        h.clock.step(hours=1)
        return h.clock()

    lose_the_lease_in_the_first_like(h, ig, suspend)
    with pytest.raises(LeaseLost):
        stories(h, ig)
    assert ig.names().count("like_story") == 1


def test_everything_a_run_decides_is_read_under_the_lease(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    for name in ("acquire_lock", "account", "targets", "recent_actions", "sync_targets"):
        original = getattr(h.store, name)

        def recording(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            order.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(h.store, name, recording)
    stories(h, busy_instagram(h))
    assert order[0] == "acquire_lock", order


def test_a_held_lease_ends_the_run_before_any_read(h: Harness) -> None:
    assert h.store.acquire_lock(ME, run_id="other", command="run-posts", now=h.clock(), ttl=timedelta(minutes=15))
    ig = busy_instagram(h)
    with pytest.raises(Locked, match="run-posts"):
        stories(h, ig)
    assert ig.calls == []


# --- 3. one clock ---------------------------------------------------------------------------------------


def test_a_host_whose_clock_is_ahead_neither_steals_a_live_lease_nor_sees_a_fresh_budget(store: Store) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: one host, the local clock is the only clock")
    from story_liker.jobs.deps import utcnow

    h = Harness(store, clock=FakeClock(utcnow()), overrides={"target_accounts": "alice", "story_likes_per_hour": 5})
    h.store_session()
    real = database_clock(store)  # the database's time
    skewed = database_clock(store, local=lambda: utcnow() + timedelta(minutes=16))
    assert abs((skewed() - real()).total_seconds()) < 60  # corrected to the database's clock

    assert store.acquire_lock(ME, run_id="live", command="run-stories", now=real(), ttl=timedelta(minutes=15))
    reels = {101: [story(101, 1, at=real())]}
    ig = ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels)
    with pytest.raises(Locked):
        run_stories(h.deps(ig, clock=skewed), dry_run=False, max_likes=None)
    store.release_lock(ME, run_id="live")

    # five likes 50 minutes ago: inside the hour by the database's clock, not by the skewed one
    with store.engine.begin() as connection:
        connection.execute(
            Action.__table__.insert(),  # type: ignore[attr-defined]  # SQLModel declares no __table__
            [{"account": ME, "kind": STORY_LIKE, "at": real() - timedelta(minutes=50)} for _ in range(5)],
        )
    report = run_stories(h.deps(ig, clock=skewed), dry_run=False, max_likes=None)
    assert report.outcome is Outcome.BUDGET_USED_UP and ig.calls == []


# --- 4. the breaker on refused likes ----------------------------------------------------------------------


def test_three_refused_likes_in_a_row_stop_the_pass_with_a_cooldown(h: Harness) -> None:
    ig = busy_instagram(h)
    ig.always["like_story"] = BadResponse("ClientError on like_story (status 400)")
    with pytest.raises(Throttled) as raised:
        stories(h, ig)
    assert raised.value.kind is ThrottleKind.REJECTED and raised.value.exit_code == 75
    assert ig.names().count("like_story") == 3  # not the whole plan of 8
    state = h.store.account(ME)
    assert state.cooldown_reason == "rejected" and state.cooldown_until == h.clock() + timedelta(minutes=30)

    again = busy_instagram(h)
    with pytest.raises(CoolingDown):
        stories(h, again)
    assert again.calls == []
    h.clock.advance(minutes=31)
    assert stories(h, busy_instagram(h)) is Outcome.OK


def test_a_refusal_between_accepted_likes_does_not_open_the_breaker(h: Harness) -> None:
    ig = busy_instagram(h)
    refused = BadResponse("like of story not confirmed")
    ig.script["like_story"] = [refused, refused, None, refused, refused, None]
    assert stories(h, ig) is Outcome.OK
    assert ig.names().count("like_story") == 8


# --- 5. cooldowns escalate ------------------------------------------------------------------------------


def test_three_action_blocks_give_12_24_and_48_hours_even_with_good_reads_between(h: Harness) -> None:
    waits = []
    for _ in range(3):
        ig = busy_instagram(h)
        ig.always["like_story"] = Throttled("feedback_required", kind=ThrottleKind.FEEDBACK_REQUIRED)
        with pytest.raises(Throttled):
            stories(h, ig)
        until = h.store.account(ME).cooldown_until
        assert until is not None
        waits.append(until - h.clock())
        h.clock.now = until + timedelta(minutes=1)
        keepalive(h.deps(ScriptedInstagram(h.clock)))  # a read that succeeds
        nothing_new = ScriptedInstagram(h.clock)  # and a pass that finds nothing
        assert stories(h, nothing_new) is Outcome.NOTHING_NEW
    assert waits == [timedelta(hours=12), timedelta(hours=24), timedelta(hours=48)]
    assert h.store.account(ME).cooldown_strikes == 3


def test_only_an_accepted_like_resets_the_strikes(h: Harness) -> None:
    ig = busy_instagram(h)
    ig.always["like_story"] = Throttled("feedback_required", kind=ThrottleKind.FEEDBACK_REQUIRED)
    with pytest.raises(Throttled):
        stories(h, ig)
    h.clock.advance(hours=13)
    assert stories(h, busy_instagram(h)) is Outcome.OK
    assert h.store.account(ME).cooldown_strikes == 0


# --- 6. logins are never retried run after run --------------------------------------------------------------


def expiring(h: Harness, *, login_fails: Exception | None) -> ScriptedInstagram:
    ig = ScriptedInstagram(h.clock, script={"reels_tray": [SessionExpired("login_required on reels_tray")]})
    if login_fails is not None:
        ig.always["relogin"] = login_fails
    return ig


def test_a_failed_login_waits_1_then_2_hours_and_three_failures_need_a_human(h: Harness) -> None:
    h.overrides["ig_password"] = "hunter2-password"
    outage = NetworkError("Instagram answered 503 on login")

    first = expiring(h, login_fails=outage)
    with pytest.raises(NetworkError):
        stories(h, first)
    assert first.names() == ["reels_tray", "relogin"]
    assert h.store.account(ME).login_failures == 1

    for wait in (0, 59):  # within the first hour: no request at all
        h.clock.advance(minutes=wait)
        again = ScriptedInstagram(h.clock, always={"relogin": outage})
        with pytest.raises(LoginBackoff):
            stories(h, again)
        assert again.calls == []

    h.clock.advance(minutes=2)  # an hour after the attempt: one more
    second = ScriptedInstagram(h.clock, always={"relogin": outage})
    with pytest.raises(NetworkError):
        stories(h, second)
    assert second.names() == ["relogin"]  # the session is known dead: no read before the login

    h.clock.advance(minutes=119)
    with pytest.raises(LoginBackoff):
        stories(h, ScriptedInstagram(h.clock))
    h.clock.advance(minutes=2)
    third = ScriptedInstagram(h.clock, always={"relogin": outage})
    with pytest.raises(NeedsHuman):
        stories(h, third)
    assert third.names() == ["relogin"]
    assert h.store.account(ME).needs_human

    h.clock.advance(days=2)
    never = ScriptedInstagram(h.clock)
    with pytest.raises(NeedsHuman):
        stories(h, never)
    assert never.calls == []


def test_a_successful_login_clears_the_failures(h: Harness) -> None:
    h.overrides["ig_password"] = "hunter2-password"
    with pytest.raises(NetworkError):
        stories(h, expiring(h, login_fails=NetworkError("reset")))
    h.clock.advance(hours=2)
    assert stories(h, busy_instagram(h)) is Outcome.OK
    state = h.store.account(ME)
    assert state.login_failures == 0 and state.has_session


def test_the_device_is_stored_before_the_first_login_and_reused(store: Store) -> None:
    h = Harness(store, overrides={"target_accounts": "alice", "ig_password": "hunter2-password"})
    first_device = {"uuid": "first-device", "phone_id": "p-first"}
    ig = ScriptedInstagram(h.clock, device=dict(first_device), sessionid=None)
    ig.always["relogin"] = NetworkError("Instagram answered 502 on login")
    with pytest.raises(NetworkError):
        stories(h, ig)
    assert h.connections[-1].settings is None  # the very first run: no device yet
    saved = json.loads(h.store.account(ME).settings or "{}")
    assert saved["uuids"] == first_device and "authorization_data" not in saved
    assert not h.store.account(ME).has_session

    h.clock.advance(hours=2)
    stories(h, ScriptedInstagram(h.clock, device={"uuid": "would-be-new"}))
    assert h.connections[-1].settings is not None
    assert h.connections[-1].settings["uuids"] == first_device  # the same device logs in again


def test_no_password_and_no_session_needs_a_human_without_a_request(store: Store) -> None:
    h = Harness(store, overrides={"target_accounts": "alice"})
    ig = ScriptedInstagram(h.clock)
    with pytest.raises(NeedsHuman, match="story-liker login"):
        stories(h, ig)
    assert ig.calls == []


def test_a_session_another_account_row_holds_sends_nothing(h: Harness) -> None:
    """Before schema 0004 a session could be stored under a second name; 0004 left such twin rows without a
    user pk. The run of the twin learns the user from the stored session before any request and stops: the
    row `me` holds that Instagram user, and a second set of limits and a second lease would double its likes."""
    session = json.dumps({"uuids": dict(DEVICE), "authorization_data": {"ds_user_id": "4242", "sessionid": "x"}})
    h.store.save_session("twin", settings=session, encrypted=False, user_pk=None, now=h.clock(), login=True)
    h.overrides["ig_username"] = "twin"
    ig = busy_instagram(h)
    with pytest.raises(ConfigError, match="Instagram user 4242 is the account 'me'"):
        stories(h, ig)
    assert ig.calls == [] and ig.liked == []
    assert h.store.account("twin").user_pk is None and h.store.account(ME).user_pk == 4242
    h.overrides["ig_username"] = ME
    assert stories(h, busy_instagram(h)) is Outcome.OK  # the row that holds the user runs as before


# --- 8. every request is paced ----------------------------------------------------------------------------


def test_every_request_is_paced_and_per_target_reads_wait_the_target_delay(store: Store) -> None:
    names = [f"user{n}" for n in range(8)]
    h = Harness(
        store,
        overrides={
            "target_accounts": ",".join(names),
            "request_delay_min_seconds": 1,
            "request_delay_max_seconds": 3,
            "target_delay_min_seconds": 3,
            "target_delay_max_seconds": 3,
        },
    )
    h.store_session()
    users = {name: UserRef(500 + n, name, followed=False) for n, name in enumerate(names)}
    ig = ScriptedInstagram(h.clock, users=users, followed=[])  # no stories: each left out of the batch, read alone
    assert stories(h, ig, dry_run=True) is Outcome.DRY_RUN
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(ig.calls, ig.calls[1:], strict=False)]
    assert ig.names().count("lookup") == 8 and ig.names().count("user_stories") == 8
    assert min(gaps) >= 1, gaps
    per_target = [
        (b.at - a.at).total_seconds()
        for a, b in zip(ig.calls, ig.calls[1:], strict=False)
        if a.name == b.name and a.name in ("lookup", "user_stories")
    ]
    assert len(per_target) == 14 and min(per_target) >= 3


def test_post_pass_reads_are_paced_too(store: Store) -> None:
    h = Harness(
        store,
        overrides={"target_accounts": "alice,bob", "request_delay_min_seconds": 2, "request_delay_max_seconds": 2},
    )
    h.store_session()
    h.added_earlier()  # both first reads due
    ig = ScriptedInstagram(h.clock, followed=[UserRef(101, "alice", True), UserRef(102, "bob", True)])
    assert run_posts(h.deps(ig), dry_run=False, max_likes=None).outcome is Outcome.NOTHING_NEW
    assert ig.names() == ["following_page", "timeline_page", "user_posts", "user_posts"]
    assert [(b.at - a.at).total_seconds() for a, b in zip(ig.calls, ig.calls[1:], strict=False)] == [2, 2, 2]


# --- markers --------------------------------------------------------------------------------------------


def test_a_story_whose_like_failed_is_tried_again_next_pass(h: Harness) -> None:
    ig = busy_instagram(h, per_target=1)
    ig.script["like_story"] = [BadResponse("like of story not confirmed")]
    assert stories(h, ig) is Outcome.OK
    assert len(ig.liked) == 3
    again = busy_instagram(h, per_target=1)
    assert stories(h, again) is Outcome.OK
    assert len(again.liked) == 1 and again.liked[0] not in ig.liked


def test_a_dry_run_moves_no_marker(h: Harness) -> None:
    dry, ig, again = busy_instagram(h), busy_instagram(h), busy_instagram(h)  # the same stories each time
    assert stories(h, dry, dry_run=True) is Outcome.DRY_RUN
    assert stories(h, ig) is Outcome.OK and len(ig.liked) == 8
    assert stories(h, again) is Outcome.NOTHING_NEW


def test_the_device_of_a_stored_session_is_kept(h: Harness) -> None:
    stories(h, busy_instagram(h))
    assert json.loads(h.store.account(ME).settings or "{}")["uuids"] == DEVICE
