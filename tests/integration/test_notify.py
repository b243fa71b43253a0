"""Notifications: one message per change of the account's health (never one per run), none carrying a secret,
never changing an exit code; delivered by the real Apprise to a local receiver (its `json://` scheme)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from story_liker.hooks import notify
from story_liker.hooks.notify import Health, State, assess
from story_liker.models import Account
from story_liker.settings import Settings, load
from story_liker.store import Store
from tests.conftest import Result, assert_no_secrets, login, run_cli, run_process
from tests.receiver import Receiver, free_port, receiver

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SIX_HOURS = timedelta(hours=6)


@pytest.fixture
def rec() -> Any:
    with receiver() as r:
        yield r


def json_url(r: Receiver, path: str = "notify") -> str:
    return f"json://127.0.0.1:{r.port}/{path}"


def settings_for(*urls: str, **extra: Any) -> Settings:
    return load(ig_username="liker", notify_urls=SecretStr(" ".join(urls)), timezone="UTC", **extra)


# --- the rule: what the account's health is after a run (pure) --------------------------------------------


def account(**fields: Any) -> Account:
    return Account(username="liker", has_session=True, **fields)


def health(row: Account, code: int = 0, command: str = "run-stories", requests: int = 3, **kw: Any) -> Health | None:
    return assess(
        row,
        code=code,
        command=command,
        requests=requests,
        now=NOW,
        long_cooldown=SIX_HOURS,
        previous=kw.get("previous", Health()),
    )


def test_each_event_is_told_apart() -> None:
    assert health(account(needs_human=True, needs_human_reason="challenge_required"), 77) == Health(
        State.NEEDS_HUMAN, None, "challenge_required"
    )
    outdated = health(account(needs_human=True, needs_human_reason="Instagram ... (needs_upgrade on ping)"), 77)
    assert outdated is not None and outdated.state == State.SESSION_OUTDATED
    no_password = health(Account(username="liker", has_session=False), 77)
    assert no_password is not None and no_password.state == State.NEEDS_HUMAN and "IG_PASSWORD" in no_password.reason
    exhausted = health(account(login_failures=3), 77)
    assert exhausted is not None and "3 login attempts" in exhausted.reason
    block_end = NOW + timedelta(hours=12)
    blocked = health(account(cooldown_until=block_end, cooldown_reason="feedback_required"), 75)
    assert blocked == Health(State.ACTION_BLOCKED, block_end.isoformat(timespec="seconds"), "feedback_required")
    long_end = NOW + timedelta(hours=8)
    assert health(account(cooldown_until=long_end, cooldown_reason="rate_limit"), 75) == Health(
        State.LONG_COOLDOWN, long_end.isoformat(timespec="seconds"), "rate_limit"
    )
    assert health(account(), 0) == Health(State.OK)


def test_routine_runs_say_nothing_new() -> None:
    short = account(cooldown_until=NOW + timedelta(minutes=30), cooldown_reason="rate_limit")
    assert health(short, 75) is None  # a short cooldown is routine
    assert health(account(), 75) is None  # a held lock, a login backoff, Instagram unreachable
    assert health(account(), 0, command="cleanup") is None  # did not talk to Instagram
    assert health(account(), 0, requests=0) is None  # outside active hours, nothing to do: proves nothing
    assert health(account(), 69) is None and health(account(), 1) is None


def test_a_long_cooldown_stays_one_state_while_it_runs_out() -> None:
    until = NOW + timedelta(hours=2)  # now shorter than NOTIFY_COOLDOWN_HOURS, but the same cooldown
    row = account(cooldown_until=until, cooldown_reason="rate_limit")
    previous = Health(State.LONG_COOLDOWN, until.isoformat(timespec="seconds"))
    assert health(row, 75, previous=previous) == previous


# --- state in the database: one message per change ------------------------------------------------------


def needs_human(store: Store, reason: str = "challenge_required") -> None:
    store.account("liker")
    store.set_needs_human("liker", reason)


def queued(store: Store) -> list[str]:
    return [n.event for n in store.pending_notifications("liker", since=NOW - timedelta(days=30))]


def after(store: Store, settings: Settings, code: int, *, command: str = "run-stories", requests: int = 2) -> bool:
    return notify.record_change(settings, store, "liker", command=command, code=code, requests=requests, now=NOW)


def test_one_message_per_change_none_per_repeated_run(store: Store) -> None:
    settings = settings_for("json://127.0.0.1:9/x")
    store.account("liker")
    assert not after(store, settings, 0)  # healthy from the start: nothing to say
    needs_human(store)
    assert after(store, settings, 77)
    for _ in range(24):  # a day of hourly runs that exit 77
        assert not after(store, settings, 77)
    store.clear_needs_human("liker")
    assert not after(store, settings, 0, command="cleanup")  # no Instagram: not yet a recovery
    assert after(store, settings, 0)
    assert not after(store, settings, 0)
    until = NOW + timedelta(hours=12)
    store.set_cooldown("liker", until=until, reason="feedback_required", strikes=1)
    assert after(store, settings, 75) and not after(store, settings, 75)
    store.set_cooldown("liker", until=until + timedelta(hours=24), reason="feedback_required", strikes=2)
    assert after(store, settings, 75)  # a new block (another end) is news
    assert queued(store) == [State.NEEDS_HUMAN, "recovered", State.ACTION_BLOCKED, State.ACTION_BLOCKED]
    state = store.health_state("liker")
    assert state is not None and state.state == State.ACTION_BLOCKED


def test_two_runs_that_saw_the_same_change_queue_it_once(store: Store) -> None:
    message = ("needs_human", "t", "b")
    first = store.change_health("liker", old=("ok", None), new=("needs_human", None), now=NOW, message=message)
    second = store.change_health("liker", old=("ok", None), new=("needs_human", None), now=NOW, message=message)
    assert first and not second
    assert queued(store) == ["needs_human"]


def test_the_daily_digest_at_most_once_a_day(store: Store) -> None:
    settings = settings_for("json://127.0.0.1:9/x", notify_digest="daily")
    store.sync_targets("liker", ["alice"], NOW)
    assert notify.queue_digest(settings, store, "liker", now=NOW)
    assert not notify.queue_digest(settings, store, "liker", now=NOW + timedelta(hours=11))  # the same day
    assert notify.queue_digest(settings, store, "liker", now=NOW + timedelta(hours=13))  # the next day (UTC)
    assert queued(store) == ["digest", "digest"]


# --- delivery through Apprise, to a local receiver -------------------------------------------------------


def test_delivered_end_to_end_through_apprise(store: Store, rec: Receiver) -> None:
    settings = settings_for(json_url(rec))
    needs_human(store)
    assert after(store, settings, 77)
    outcomes = notify.deliver(settings, store, "liker", now=NOW)
    assert [o.delivered for o in outcomes] == [True]
    [sent] = rec.messages()
    assert sent["title"] == "story-liker: liker needs you"
    assert "challenge_required" in sent["message"] and "story-liker login" in sent["message"]
    assert sent["type"] == "failure"
    assert queued(store) == []  # done
    assert notify.deliver(settings, store, "liker", now=NOW) == [] and len(rec.messages()) == 1


def test_a_failed_url_gets_it_next_run_and_a_url_that_took_it_never_twice(store: Store) -> None:
    with receiver() as good, receiver() as flaky:
        settings = settings_for(json_url(good), json_url(flaky))
        flaky.statuses.extend([500] * 10)  # more than one delivery's retries
        needs_human(store)
        after(store, settings, 77)
        first = notify.deliver(settings, store, "liker", now=NOW)
        assert [(o.delivered, o.why) for o in first] == [(True, ""), (False, "refused")]
        assert len(good.messages()) == 1 and flaky.messages() == []
        assert queued(store) == [State.NEEDS_HUMAN]  # kept for the next run
        flaky.statuses.clear()
        second = notify.deliver(settings, store, "liker", now=NOW + timedelta(hours=1))
        assert [o.label for o in second] == ["#2 JSON (json://)"]  # only the URL that lacked it
        assert len(good.messages()) == 1 and len(flaky.messages()) == 1
        assert queued(store) == []


def test_messages_a_url_lacks_go_out_as_one(store: Store, rec: Receiver) -> None:
    settings = settings_for(json_url(rec))
    needs_human(store)
    after(store, settings, 77)
    store.clear_needs_human("liker")
    after(store, settings, 0)
    notify.deliver(settings, store, "liker", now=NOW)
    [sent] = rec.messages()
    assert sent["title"] == "story-liker: liker is running again (+1 earlier)"
    assert sent["message"].index("needs you") < sent["message"].index("running again")


def test_undelivered_messages_are_given_up_after_three_days(store: Store) -> None:
    settings = settings_for(f"json://127.0.0.1:{free_port()}/x")
    needs_human(store)
    after(store, settings, 77)
    notify.deliver(settings, store, "liker", now=NOW)
    assert queued(store) == [State.NEEDS_HUMAN]
    assert notify.deliver(settings, store, "liker", now=NOW + timedelta(days=4)) == []
    assert queued(store) == []


def test_a_hanging_service_is_left_behind_at_the_deadline(rec: Receiver) -> None:
    rec.hold = threading.Event()  # accepts, never answers
    targets, problems = notify.destinations(settings_for(json_url(rec)))
    assert problems == []
    [outcome] = notify.send([(targets[0], ("test", "t", "b"))], deadline=0.2)
    assert rec.arrived.wait(10)  # it was sent
    assert (outcome.delivered, outcome.why) == (False, "timed out")


def test_a_slow_service_that_took_the_message_gets_it_once_over_several_runs(store: Store, rec: Receiver) -> None:
    """An Apprise API server fanning out answers 200 after 4 s; with a 3 s read timeout that counted as refused,
    and every run sent "needs you" again, for up to 3 days. With the production timeouts it is taken once."""
    rec.delay = 4.0
    settings = settings_for(json_url(rec))
    needs_human(store)
    after(store, settings, 77)
    outcomes = [notify.deliver(settings, store, "liker", now=NOW + timedelta(hours=run)) for run in range(3)]
    assert len(rec.received) == 1  # one request, whatever the runs after it did
    assert queued(store) == []  # done: taken (or, on a slow machine, sent and unanswered at the deadline)
    assert outcomes[1:] == [[], []]
    [first] = outcomes[0]
    assert first.delivered or first.unconfirmed


def test_the_timeouts_fit_real_services() -> None:
    """Every request Apprise sends: 5 s to connect, 30 s for the answer (longer than a run waits: the run's
    deadline, 5 s for all URLs together, is what cuts a slow answer); the URL's own cto/rto give way."""
    assert (notify.CONNECT_TIMEOUT, notify.READ_TIMEOUT, notify.DEADLINE) == (5.0, 30.0, 5.0)
    assert notify.READ_TIMEOUT > notify.TEST_DEADLINE > notify.DEADLINE
    targets, _ = notify.destinations(settings_for("json://127.0.0.1:9/a", "json://127.0.0.1:9/b?cto=1&rto=2"))
    assert [t.plugin.request_timeout for t in targets] == [(5.0, 30.0), (5.0, 30.0)]


def _fast(monkeypatch: pytest.MonkeyPatch, *, deadline: float = 5.0, read: float = 30.0) -> None:
    """Small timeouts, so the tests of slow services stay fast."""
    monkeypatch.setattr(notify, "DEADLINE", deadline)
    monkeypatch.setattr(notify, "READ_TIMEOUT", read)


def _deliveries(store: Store, settings: Settings, runs: int = 3) -> list[list[notify.Delivery]]:
    return [notify.deliver(settings, store, "liker", now=NOW + timedelta(hours=run)) for run in range(runs)]


@pytest.mark.parametrize(
    ("deadline", "read", "why"),
    [(5.0, 0.3, "no answer"), (0.6, 30.0, "timed out")],
    ids=["read-timeout", "run-deadline"],
)
def test_a_message_sent_but_not_answered_counts_as_delivered_unconfirmed(
    store: Store,
    rec: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    deadline: float,
    read: float,
    why: str,
) -> None:
    """The request went out whole and no answer came in time (a read timeout, or the run's deadline while
    waiting): the service may well have taken it, so it is never sent again; the log says it is unconfirmed."""
    import logging

    _fast(monkeypatch, deadline=deadline, read=read)
    rec.delay = 1.5
    settings = settings_for(json_url(rec))
    needs_human(store)
    after(store, settings, 77)
    with caplog.at_level(logging.INFO, logger="story_liker.notify"):
        first, *later = _deliveries(store, settings)
    assert [(o.delivered, o.unconfirmed, o.why) for o in first] == [(False, True, why)]
    assert later == [[], []] and queued(store) == []
    assert len(rec.received) == 1
    [unconfirmed] = [r for r in caplog.records if r.getMessage() == "notification_unconfirmed"]
    assert unconfirmed.__dict__["retry"] == "never" and unconfirmed.__dict__["destination"] == "#1 JSON (json://)"
    assert "notification_failed" not in [r.getMessage() for r in caplog.records]


def test_a_slow_error_answer_is_retried_next_run(store: Store, rec: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer, however slow, that says no (500) is a refusal: the next run sends the message again."""
    _fast(monkeypatch, deadline=3.0, read=2.0)
    rec.delay = 0.8
    rec.statuses.extend([500] * 10)
    settings = settings_for(json_url(rec))
    needs_human(store)
    after(store, settings, 77)
    [first] = notify.deliver(settings, store, "liker", now=NOW)
    assert (first.delivered, first.unconfirmed, first.why) == (False, False, "refused")
    assert queued(store) == [State.NEEDS_HUMAN]
    rec.statuses.clear()
    [second] = notify.deliver(settings, store, "liker", now=NOW + timedelta(hours=1))
    assert second.delivered and queued(store) == [] and len(rec.messages()) == 1


def test_no_answer_to_a_retry_after_an_error_answer_is_a_failure(
    store: Store, rec: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service said no (500) and then did not answer the retry in time: it has shown it fails, so the
    message is sent again next run rather than counted as taken."""
    _fast(monkeypatch, deadline=1.5)
    rec.statuses.append(500)
    rec.delays.extend([0.0, 3.0])
    settings = settings_for(json_url(rec))
    needs_human(store)
    after(store, settings, 77)
    [first] = notify.deliver(settings, store, "liker", now=NOW)
    assert len(rec.received) == 2  # the quick retry went out, and was not answered before the deadline
    assert (first.delivered, first.unconfirmed) == (False, False)
    assert queued(store) == [State.NEEDS_HUMAN]
    [second] = notify.deliver(settings, store, "liker", now=NOW + timedelta(hours=1))
    assert second.delivered and queued(store) == []


def test_a_connection_never_made_is_retried_next_run(
    store: Store, rec: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service whose connection cannot be made before the deadline (its listen queue full: the handshake is
    never answered) got nothing: not delivered, sent again at the next run, unlike a request that went out."""
    import socket

    _fast(monkeypatch, deadline=1.0)
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = [socket.socket() for _ in range(4)]
    for filler in fillers:
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))  # in progress: fills the queue, never accepted
    settings = settings_for(f"json://127.0.0.1:{port}/x")
    needs_human(store)
    after(store, settings, 77)
    try:
        [first] = notify.deliver(settings, store, "liker", now=NOW)
    finally:
        for sock in [*fillers, full]:
            sock.close()
    assert (first.delivered, first.unconfirmed) == (False, False)
    assert queued(store) == [State.NEEDS_HUMAN]


def test_apprise_is_imported_only_to_send(tmp_path: Path) -> None:
    """A pass with nothing to tell never imports Apprise."""
    import subprocess
    import sys

    code = (
        "import sys; from datetime import datetime, UTC;"
        "from story_liker.db import make_engine, migrate; from story_liker.store import Store;"
        "from story_liker.settings import load; from pydantic import SecretStr; from story_liker.hooks import notify;"
        f"e = make_engine('sqlite:///{tmp_path}/n.db'); migrate(e); s = Store(e);"
        "st = load(ig_username='liker', notify_urls=SecretStr('json://127.0.0.1:9/x'));"
        "notify.after_run(st, s, command='run-stories', code=0, counts={'requests': 1});"
        "print('apprise' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "False"


# --- the whole CLI against the Instagram double ----------------------------------------------------------


def stories(ig: Any, name: str = "alice", count: int = 1) -> None:
    user = ig.add_user(name)
    for _ in range(count):
        ig.add_story(user)


def texts(r: Receiver) -> Result:
    """What the receiver got, as a Result for assert_no_secrets."""
    return Result(0, r.text(), "")


@pytest.mark.slow
def test_a_challenge_is_told_once_then_the_recovery(
    ig: Any, env: dict[str, str], tmp_path: Path, rec: Receiver
) -> None:
    stories(ig)
    env |= {"TARGET_ACCOUNTS": "alice", "NOTIFY_URLS": json_url(rec), "IG_PASSWORD": ig.password}
    login(ig, env, tmp_path)
    ig.require_challenge()
    runs = [run_cli("run-stories", env=env, cwd=tmp_path) for _ in range(3)]
    assert [r.code for r in runs] == [77, 77, 77]  # the exit code is the pass's, whatever notifications do
    [told] = rec.messages()
    assert told["title"] == "story-liker: liker needs you"
    assert "story-liker login" in told["message"]
    ig.require_challenge(False)
    login(ig, env, tmp_path)
    good = run_cli("run-stories", env=env, cwd=tmp_path)
    assert good.code == 0, good.output
    assert [m["title"] for m in rec.messages()][1:] == ["story-liker: liker is running again"]
    assert run_cli("run-stories", env=env, cwd=tmp_path).code == 0
    assert len(rec.messages()) == 2  # no message per healthy run
    assert_no_secrets(ig, *runs, good, texts(rec))
    assert "sessionid" not in rec.text().lower()


@pytest.mark.slow
def test_an_action_block_is_told_once_with_its_end(ig: Any, env: dict[str, str], tmp_path: Path, rec: Receiver) -> None:
    stories(ig, count=2)
    env |= {"TARGET_ACCOUNTS": "alice", "NOTIFY_URLS": json_url(rec), "TIMEZONE": "UTC"}
    login(ig, env, tmp_path)
    blocked = {"message": "feedback_required", "feedback_message": "blocked for 3 days", "status": "fail"}
    ig.fail("send_story_like", status=400, body=blocked)
    first = run_cli("run-stories", env=env, cwd=tmp_path)
    assert first.code == 75
    until = datetime.fromisoformat(first.event("cooldown_started")["until"])
    [told] = rec.messages()
    assert told["title"] == "story-liker: Instagram blocked likes for liker"
    assert until.strftime("%Y-%m-%d %H:%M UTC") in told["message"]  # the cooldown's end, as Instagram named it
    assert run_cli("run-stories", env=env, cwd=tmp_path).code == 75
    assert len(rec.messages()) == 1
    assert_no_secrets(ig, first, texts(rec))


@pytest.mark.slow
@pytest.mark.parametrize(("base_minutes", "told"), [("600", True), ("30", False)])
def test_a_cooldown_is_told_only_when_longer_than_notify_cooldown_hours(
    ig: Any, env: dict[str, str], tmp_path: Path, rec: Receiver, base_minutes: str, told: bool
) -> None:
    stories(ig)
    env |= {"TARGET_ACCOUNTS": "alice", "NOTIFY_URLS": json_url(rec), "COOLDOWN_BASE_MINUTES": base_minutes}
    login(ig, env, tmp_path)
    ig.fail("reels_tray", status=429)
    assert run_cli("run-stories", env=env, cwd=tmp_path).code == 75
    assert run_cli("run-stories", env=env, cwd=tmp_path).code == 75
    titles = [m["title"] for m in rec.messages()]
    assert titles == (["story-liker: liker is cooling down until " + titles[0].rsplit("until ", 1)[1]] if told else [])


@pytest.mark.slow
def test_an_outdated_session_is_told_and_so_is_the_recovery(
    ig: Any, env: dict[str, str], tmp_path: Path, rec: Receiver
) -> None:
    env |= {"NOTIFY_URLS": json_url(rec)}
    login(ig, env, tmp_path)
    ig.fail("current_user", status=400, body={"message": "", "error_type": "needs_upgrade", "status": "fail"})
    assert run_cli("keepalive", env=env, cwd=tmp_path).code == 77
    assert run_cli("keepalive", env=env, cwd=tmp_path).code == 77
    [told] = rec.messages()
    assert "outdated" in told["title"] and "story-liker session upgrade" in told["message"]
    assert run_cli("session", "upgrade", env=env, cwd=tmp_path).code == 0
    assert run_cli("keepalive", env=env, cwd=tmp_path).code == 0
    assert [m["title"] for m in rec.messages()][1:] == ["story-liker: liker is running again"]


@pytest.mark.slow
def test_an_expired_session_without_a_password_needs_a_human(
    ig: Any, env: dict[str, str], tmp_path: Path, rec: Receiver
) -> None:
    stories(ig)
    env |= {"TARGET_ACCOUNTS": "alice", "NOTIFY_URLS": json_url(rec)}
    login(ig, env, tmp_path)
    ig.expire_session()
    assert [run_cli("run-stories", env=env, cwd=tmp_path).code for _ in range(2)] == [77, 77]
    [told] = rec.messages()
    assert told["title"] == "story-liker: liker needs you" and "IG_PASSWORD" in told["message"]


@pytest.mark.slow
def test_login_attempts_exhausted_are_told_once(ig: Any, env: dict[str, str], tmp_path: Path, rec: Receiver) -> None:
    from story_liker.db import make_engine

    stories(ig)
    env |= {"TARGET_ACCOUNTS": "alice", "NOTIFY_URLS": json_url(rec), "IG_PASSWORD": ig.password}
    login(ig, env, tmp_path)
    store = Store(make_engine(env["DATABASE_URL"]))
    store.set_login_failures(ig.username, 3)
    store.mark_session_dead(ig.username)
    store.engine.dispose()
    assert [run_cli("run-stories", env=env, cwd=tmp_path).code for _ in range(2)] == [77, 77]
    [told] = rec.messages()
    assert "3 login attempts failed in a row" in told["message"]


@pytest.mark.slow
def test_a_failed_delivery_never_changes_the_exit_code_and_is_retried_next_run(
    ig: Any, env: dict[str, str], tmp_path: Path, rec: Receiver
) -> None:
    env |= {"NOTIFY_URLS": json_url(rec)}
    rec.statuses.extend([500] * 10)
    first = run_cli("keepalive", env=env, cwd=tmp_path)  # no session stored: 77
    assert first.code == 77
    assert first.event("notification_failed")["destination"] == "#1 JSON (json://)"
    assert rec.messages() == []
    rec.statuses.clear()
    second = run_cli("keepalive", env=env, cwd=tmp_path)
    assert second.code == 77
    [told] = rec.messages()  # the same message, once
    assert told["title"] == "story-liker: liker needs you"
    assert second.event("notification_sent")["messages"] == 1
    dead = run_cli("keepalive", env=env | {"NOTIFY_URLS": f"json://127.0.0.1:{free_port()}/x"}, cwd=tmp_path)
    assert dead.code == 77  # nothing listening there: the same exit code
    assert not {"unexpected_error", "monitoring_failed", "notify_failed"} & {e["event"] for e in dead.events()}
    assert rec.url not in first.output + second.output and json_url(rec) not in first.output + second.output


@pytest.mark.slow
def test_the_daily_digest(ig: Any, env: dict[str, str], tmp_path: Path, rec: Receiver) -> None:
    stories(ig, count=2)
    ig.add_user("bob")
    env |= {"TARGET_ACCOUNTS": "alice,bob", "NOTIFY_URLS": json_url(rec), "NOTIFY_DIGEST": "daily"}
    login(ig, env, tmp_path)
    assert run_cli("run-stories", env=env, cwd=tmp_path).code == 0
    assert run_cli("run-stories", env=env, cwd=tmp_path).code == 0
    [digest] = rec.messages()  # at most one a day
    assert digest["title"] == "story-liker: liker daily summary" and digest["type"] == "info"
    assert "- alice: 2 stories, 0 posts" in digest["message"]  # the first run queued it, after its likes
    assert "Cooldowns started: 0" in digest["message"]


# --- `notify test` ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_notify_test_says_which_urls_took_it(rec: Receiver, tmp_path: Path) -> None:
    dead = f"json://127.0.0.1:{free_port()}/x"
    env = {"NOTIFY_URLS": f"{json_url(rec, 'tok3n-path')}, {dead}"}
    result = run_cli("notify", "test", env=env, cwd=tmp_path)
    assert result.stdout.splitlines() == ["#1 JSON (json://): delivered", "#2 JSON (json://): NOT delivered (refused)"]
    assert result.code == 69
    [sent] = rec.messages()
    assert sent["title"] == "story-liker: test message"
    assert "tok3n" not in result.output
    assert run_cli("notify", "test", env={"NOTIFY_URLS": json_url(rec)}, cwd=tmp_path).code == 0
    assert len(rec.messages()) == 2


def test_notify_test_says_a_message_went_out_unanswered(rec: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """A person testing a slow or hanging service learns the message went out and no answer came: not a
    delivery (69), and not a refusal either."""
    from typer.testing import CliRunner

    from story_liker.cli import app

    monkeypatch.setattr(notify, "TEST_DEADLINE", 0.5)
    rec.hold = threading.Event()
    monkeypatch.setenv("NOTIFY_URLS", json_url(rec))
    result = CliRunner().invoke(app, ["notify", "test"])
    assert result.exit_code == 69, result.output
    assert result.stdout.splitlines() == [
        "#1 JSON (json://): sent, but no answer in time (timed out): see whether it arrived"
    ]
    assert rec.arrived.is_set()


@pytest.mark.slow
def test_notify_test_from_a_secret_file_and_a_config_file(rec: Receiver, tmp_path: Path) -> None:
    (tmp_path / "urls").write_text(json_url(rec, "from-file") + "\n")
    config = tmp_path / "apprise.yml"
    config.write_text(f"urls:\n  - {json_url(rec, 'from-config')}\n")
    result = run_cli(
        "notify", "test", env={"NOTIFY_URLS_FILE": str(tmp_path / "urls"), "NOTIFY_CONFIG": str(config)}, cwd=tmp_path
    )
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == [
        "#1 JSON (json://): delivered",
        "#2 JSON (json://) from NOTIFY_CONFIG: delivered",
    ]
    assert sorted(c.path for c in rec.calls) == ["/from-config", "/from-file"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "no notification URL"),
        ({"NOTIFY_URLS": "nosuchscheme://x"}, "#1 (nosuchscheme://): not a URL Apprise can use"),
        ({"NOTIFY_URLS": "not a url"}, "NOTIFY_URLS: entry 1 is not an Apprise URL"),
        ({"NOTIFY_URLS_FILE": "/nonexistent/urls"}, "NOTIFY_URLS_FILE: cannot read"),
        ({"NOTIFY_CONFIG": "/nonexistent/apprise.yml"}, "NOTIFY_CONFIG: /nonexistent/apprise.yml is not"),
    ],
)
def test_notify_test_misconfigured_is_78(env: dict[str, str], says: str, tmp_path: Path) -> None:
    result = run_cli("notify", "test", env=env, cwd=tmp_path)
    assert result.code == 78 and says in result.output, result.output


def test_notify_urls_split_on_commas_and_blanks_but_not_inside_a_url() -> None:
    settings = load(notify_urls=SecretStr("ntfy://a, tgram://b/c\n mailto://u:p@h?to=x@y.z,w@y.z,json://h"))
    assert settings.notify_url_list == ["ntfy://a", "tgram://b/c", "mailto://u:p@h?to=x@y.z,w@y.z", "json://h"]
    assert "ntfy://a" not in repr(settings)  # a secret: never in a repr or a traceback


def test_deliveries_are_recorded_by_fingerprint_never_the_url(store: Store, rec: Receiver) -> None:
    settings = settings_for(json_url(rec, "s3cret-topic"))
    needs_human(store)
    after(store, settings, 77)
    notify.deliver(settings, store, "liker", now=NOW)
    with store.engine.connect() as connection:
        import sqlalchemy as sa

        dumped = json.dumps(
            [list(r) for r in connection.execute(sa.text("SELECT * FROM notification")).all()], default=str
        )
    assert "s3cret" not in dumped and notify.fingerprint(json_url(rec, "s3cret-topic")) in dumped


def test_help_imports_neither_apprise_nor_stamina() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from typer.testing import CliRunner; from story_liker.cli import app;"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output;"
        "print([m for m in ('apprise', 'stamina', 'requests') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_a_hanging_notification_service_does_not_hold_the_run(
    ig: Any, env: dict[str, str], tmp_path: Path, rec: Receiver
) -> None:
    rec.hold = threading.Event()  # accepts the message and never answers while the run lasts
    env |= {"NOTIFY_URLS": json_url(rec)}
    result = run_process("keepalive", env=env, cwd=tmp_path, timeout=50)  # no session: 77; a run that waited would hang
    assert result.code == 77
    assert rec.arrived.is_set() and rec.calls == []  # sent, and the run was over before any answer came
    # it went out, and whether the service took it is unknown: counted as taken, never sent again (a slow service
    # would otherwise get it at every run for 3 days)
    assert result.event("notification_unconfirmed")["retry"] == "never"
    assert "notification_failed" not in {e["event"] for e in result.events()}
    again = run_process("keepalive", env=env, cwd=tmp_path, timeout=50)
    assert again.code == 77 and len(rec.received) == 1
