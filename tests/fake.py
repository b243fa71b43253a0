"""In-process fakes for testing pass logic: a scripted `Instagram`, a clock that only moves when told, and
a Deps builder on the real store. The HTTP double (tests/double/) stays the adapter's contract suite."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from story_liker import settings as settings_module
from story_liker.errors import TargetUnavailable
from story_liker.ig.types import Connection, PostItem, StoryItem, TrayEntry, TrayReason, UserRef
from story_liker.jobs.deps import Deps
from story_liker.models import Target
from story_liker.store import Store

ME = "me"
START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DEVICE = {"uuid": "11111111-2222-3333-4444-555555555555", "phone_id": "p-1", "android_device_id": "android-1"}


class FakeClock:
    """Time moves only when a test (or the sleeper) moves it. Calling it reads the wall clock; ``monotonic``
    reads the seconds that passed, which a step of the wall clock does not change."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start
        self.elapsed = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.elapsed

    def advance(self, **delta: float) -> None:
        """Time passes: both clocks move."""
        self.now += timedelta(**delta)
        self.elapsed += timedelta(**delta).total_seconds()

    def step(self, **delta: float) -> None:
        """The wall clock is set (NTP, a person), or the host was suspended: the wall clock jumps, no time passes
        for the monotonic one."""
        self.now += timedelta(**delta)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)
        self.elapsed += seconds


@dataclass
class Call:
    """One request: its name, its argument, when it was sent (the clock's time), and ``items``: what it carried
    or what its answer held, where a fake keeps them (the bench's RecordingInstagram does)."""

    name: str
    arg: Any
    at: datetime
    items: tuple[Any, ...] = ()


@dataclass
class ScriptedInstagram:
    """Implements the `Instagram` Protocol with scripted answers and a log of every call (one call = one
    request, as the adapter promises). ``script[name]`` is a queue of answers for that method: an exception
    instance is raised, anything else ignored (the normal answer is given); ``always[name]`` is raised every
    time; ``fail_for[(name, arg)]`` every time that call is made with that argument. ``lost[name]`` is a queue of
    exceptions raised AFTER a write acted (``mark_seen``, ``like_story``, ``like_post``): the seen or the like is
    recorded, then the answer is lost, as when the connection drops after Instagram acted (the adapter raises
    NetworkError then too; tests/integration/test_parity.py). ``before`` runs before each call (tests use it to move
    the clock or let another run act)."""

    clock: FakeClock
    tray: list[TrayEntry] = field(default_factory=list)
    reels: dict[int, list[StoryItem]] = field(default_factory=dict)
    users: dict[str, UserRef] = field(default_factory=dict)
    posts: dict[int, list[PostItem]] = field(default_factory=dict)
    timeline: list[list[PostItem]] = field(default_factory=list)  # home feed pages
    followed: list[UserRef] = field(default_factory=list)
    script: dict[str, list[Any]] = field(default_factory=dict)
    always: dict[str, Exception] = field(default_factory=dict)
    fail_for: dict[tuple[str, Any], Exception] = field(default_factory=dict)  # (method, argument): raised every time
    before: Callable[[ScriptedInstagram, str], None] | None = None
    calls: list[Call] = field(default_factory=list)
    liked: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    device: dict[str, Any] = field(default_factory=lambda: dict(DEVICE))
    sessionid: str | None = "31234567890%3AabcdefSECRETsession"
    malformed: int = 0
    lost: dict[str, list[Exception]] = field(default_factory=dict)  # raised after a write acted: the answer lost

    @property
    def requests_sent(self) -> int:
        return len(self.calls)

    @property
    def user_pk(self) -> int | None:
        return 4242 if self.sessionid else None

    def names(self) -> list[str]:
        return [call.name for call in self.calls]

    def _call(self, name: str, arg: Any = None) -> None:
        if self.before is not None:
            self.before(self, name)
        self.calls.append(Call(name, arg, self.clock()))
        queue = self.script.get(name)
        if queue:
            answer = queue.pop(0)
            if isinstance(answer, Exception):
                raise answer
        if name in self.always:
            raise self.always[name]
        if isinstance(arg, str | int) and (name, arg) in self.fail_for:
            raise self.fail_for[name, arg]

    def _answer_lost(self, name: str) -> None:
        queue = self.lost.get(name)
        if queue:
            raise queue.pop(0)

    def reels_tray(self, reason: TrayReason) -> list[TrayEntry]:
        self._call("reels_tray", reason)  # the call's arg: the reason asked with
        return list(self.tray)

    def reels_media(self, user_pks: Sequence[int]) -> dict[int, list[StoryItem]]:
        """The reels of the users asked for that have stories; as Instagram does, it leaves out the ones with
        none, and the ones whose own story feed is scripted unreadable (``fail_for``: private, gone)."""
        self._call("reels_media", list(user_pks))
        unreadable = {
            arg
            for (name, arg), exc in self.fail_for.items()
            if name == "user_stories" and isinstance(exc, TargetUnavailable)
        }
        return {pk: list(self.reels[pk]) for pk in user_pks if self.reels.get(pk) and pk not in unreadable}

    def user_stories(self, user_pk: int) -> list[StoryItem]:
        self._call("user_stories", user_pk)
        return list(self.reels.get(user_pk, []))

    def following_page(self, max_id: str | None) -> tuple[list[UserRef], str | None]:
        self._call("following_page", max_id)
        return list(self.followed), None

    def lookup(self, username: str) -> UserRef:
        self._call("lookup", username)
        if username not in self.users:
            raise TargetUnavailable(f"{username} not found", reason="not_found")
        return self.users[username]

    def mark_seen(self, stories: Sequence[StoryItem], seen_at: Sequence[int]) -> None:
        self._call("mark_seen", list(zip([s.pk for s in stories], seen_at, strict=True)))
        self.seen.extend(s.pk for s in stories)
        self._answer_lost("mark_seen")

    def like_story(self, story: StoryItem) -> None:
        self._call("like_story", story.pk)
        self.liked.append(story.pk)
        self._answer_lost("like_story")

    def user_posts(self, user_pk: int, count: int, max_id: str | None = None) -> tuple[list[PostItem], str | None]:
        self._call("user_posts", user_pk if max_id is None else (user_pk, max_id))
        start = int(max_id or 0)
        feed = self.posts.get(user_pk, [])
        return list(feed[start : start + count]), str(start + count) if start + count < len(feed) else None

    def timeline_page(self, max_id: str | None) -> tuple[list[PostItem], str | None]:
        self._call("timeline_page", max_id)
        index = int(max_id or 0)
        page = list(self.timeline[index]) if index < len(self.timeline) else []
        return page, str(index + 1) if index + 1 < len(self.timeline) else None

    def like_post(self, post: PostItem) -> None:
        self._call("like_post", post.pk)
        self.liked.append(post.pk)
        self._answer_lost("like_post")

    def ping(self) -> UserRef:
        self._call("ping")
        return UserRef(4242, ME)

    def relogin(self) -> None:
        self._call("relogin")
        self.sessionid = "39999999999%3AfreshSECRETsession"

    def login_by_sessionid(self, sessionid: str) -> UserRef:
        self._call("login_by_sessionid")
        self.sessionid = sessionid
        return UserRef(4242, ME)

    def login_with_code(self, code_prompt: Callable[[], str]) -> None:
        self._call("login_with_code")
        self.sessionid = "39999999999%3AfreshSECRETsession"

    def dump_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {"uuids": dict(self.device), "device_settings": {"model": "fake"}}
        if self.sessionid:
            settings["authorization_data"] = {"ds_user_id": "4242", "sessionid": self.sessionid}
        return settings


def stored_id(target: Target) -> int:
    """The id of a target read from the store (every stored row has one; only a new, unsaved one has none)."""
    assert target.id is not None, target
    return target.id


def story(user_pk: int, n: int, *, at: datetime = START, has_liked: bool = False) -> StoryItem:
    return StoryItem(f"{user_pk}{n:03d}", user_pk, at - timedelta(hours=1, minutes=n), has_liked)


def tray_of(reels: dict[int, list[StoryItem]], names: dict[int, str]) -> list[TrayEntry]:
    return [
        TrayEntry(pk, names[pk], int(max(s.taken_at for s in items).timestamp()))
        for pk, items in reels.items()
        if items
    ]


def make_settings(store: Store, **overrides: Any) -> settings_module.Settings:
    values: dict[str, Any] = {
        "ig_username": ME,
        "database_url": store.engine.url.render_as_string(hide_password=False),
        "action_delay_min_seconds": 0,
        "action_delay_max_seconds": 0,
        "target_delay_min_seconds": 0,
        "target_delay_max_seconds": 0,
        "request_delay_min_seconds": 0,
        "request_delay_max_seconds": 0,
    }
    return settings_module.load(**(values | overrides))


@dataclass
class Harness:
    """One account on the real store, a fake clock, and a fresh Deps per run (as each CLI run gets)."""

    store: Store
    clock: FakeClock = field(default_factory=FakeClock)
    overrides: dict[str, Any] = field(default_factory=dict)
    connections: list[Connection] = field(default_factory=list)
    runs: int = 0

    def settings(self) -> settings_module.Settings:
        return make_settings(self.store, **self.overrides)

    def deps(self, ig: ScriptedInstagram, *, clock: Callable[[], datetime] | None = None) -> Deps:
        self.runs += 1

        def connect(conn: Connection) -> ScriptedInstagram:
            self.connections.append(conn)
            return ig

        return Deps(
            settings=self.settings(),
            store=self.store,
            run_id=f"run{self.runs:04d}",
            command="test",
            connect=connect,
            clock=clock or self.clock,
            monotonic=self.clock.monotonic,
            sleeper=self.clock.sleep,
        )

    def added_earlier(self, hours: float = 24) -> None:
        """TARGET_ACCOUNTS as if synced ``hours`` ago and never read since: with the default (POST_RECHECK_HOURS)
        every target's first profile read is due, so a first post pass reads them all (planning.first_read_at
        spreads the first reads of targets added now)."""
        names = [n.strip() for n in str(self.overrides.get("target_accounts", "")).split(",") if n.strip()]
        self.store.sync_targets(ME, [n for n in names if n != "*"], self.clock() - timedelta(hours=hours))

    def store_session(self, sessionid: str = "31234567890%3AabcdefSECRETsession") -> None:
        settings = {"uuids": dict(DEVICE), "authorization_data": {"ds_user_id": "4242", "sessionid": sessionid}}
        self.store.save_session(
            ME, settings=json.dumps(settings), encrypted=False, user_pk=4242, now=self.clock(), login=True
        )
