"""A deterministic fault simulation: every fault at every request of a pass, then the day of runs that follows.

A `World` is a small Instagram of its own, in-process: the targets of every kind a user has (followed and in the
tray, dropped from it, muted, public and not followed, private, missing, renamed during the day, one whose lookup
always fails, the account itself), stories and posts whose ``has_liked`` is true, false or not said, 19-digit ids
(beyond 2^53), a story listed twice, a collab post, new stories later in the day. `SimInstagram` answers the real
passes through the `Instagram` Protocol, one call = one request, and keeps what the server *did*: every like it
acted on, every login, every lookup answered.

A schedule is a pass with one fault at request ``k`` (or none: the baseline), then the runs the shipped timers
would make over the next day (run-stories hourly, run-posts every 3 h), on the real store (a fresh SQLite file),
the real jobs, an injected clock, sleeper and randomness. The faults: a 5xx, a timeout (Instagram never saw the
request), a connection dropped after Instagram acted, 429, ``feedback_required``, a challenge, ``login_required``
with the password accepted and refused, a session Instagram ends again before every run, three likes of things
deleted meanwhile, and three of our own side: SIGTERM before the
request, the lease lost before it, the database failing on its next write. Then the promises are checked
(`check`): no item liked twice by the server; the hourly limits hold; everything that should be liked is, before
it expires, unless a human is needed or a cooldown Instagram asked for covers it; nothing a request taught is
asked again; the schedule sends at most FOLLOW_UP_BOUND more requests in all than without the fault; at most one
password login a day; needs-human exactly when the rules say so, told once; exit codes only from the documented
set; no secret in any output.

`make test` runs a seeded sample (tests/unit/test_fault_simulation.py); `make bench` the whole matrix.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from story_liker.db import make_engine, migrate
from story_liker.errors import (
    Gone,
    NeedsHuman,
    NetworkError,
    PasswordRejected,
    SessionExpired,
    StoryLikerError,
    TargetUnavailable,
    Throttled,
    ThrottleKind,
)
from story_liker.hooks import notify
from story_liker.ig.types import PostItem, StoryItem, TrayEntry, TrayReason, UserRef
from story_liker.jobs.deps import Deps
from story_liker.jobs.lease import Lease
from story_liker.jobs.posts import run_posts
from story_liker.jobs.stories import run_stories
from story_liker.logging import configure, register_secret
from story_liker.models import Notification
from story_liker.settings import load
from story_liker.store import Store
from tests.fake import DEVICE, FakeClock

ME = "me.sim"
OWN_PK = 4242
PASSWORD = "SIMSECRET-password-hunter2"  # the simulation's own, checked never to be printed
SESSIONID = "4242%3ASIMSECRETsessionid0123456789"
START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
STORY_LIFE = timedelta(hours=24)
POST_MAX_AGE = timedelta(days=3)
EXIT_CODES = frozenset({0, 69, 75, 77, 78, 130, 143})  # README, "Exit codes"; 1 is a bug
LIMITS = {"story_like": 8, "post_like": 4}  # per hour: below what the first pass finds, so the limits matter
# Requests a schedule may send beyond the fault-free one: what a pass cut short did not finish, the next one reads
# again (the tray, a reels batch, the own reads of targets not followed, a seen report per target: 11 here), a
# re-login is one more, and likes moved later shift the hourly windows so that one more pass reads (4). What a
# request taught (a lookup, the following walk) must never be asked again: checked on its own.
FOLLOW_UP_BOUND = 16
SERVER_FAULTS = (
    "5xx",
    "timeout",
    "dropped",
    "429",
    "feedback_required",
    "challenge",
    "login_required_accepted",
    "login_required_refused",
    "expiring",
    "gone",
)
OWN_FAULTS = ("sigterm", "lease_lost", "db_write_fails")
FAULTS = SERVER_FAULTS + OWN_FAULTS
HUMAN_FAULTS = frozenset({"challenge", "login_required_refused", "expiring"})
LIKES = frozenset({"like_story", "like_post"})


# --- the world ----------------------------------------------------------------------------------------------


@dataclass
class User:
    pk: int
    name: str
    followed: bool = True
    in_tray: bool = True  # the tray is lossy: a followed user with stories may be missing from it (or muted)
    private: bool = False
    missing: bool = False  # the lookup answers not found
    broken: bool = False  # its lookup always answers a 5xx
    renamed_at: datetime | None = None  # from then on called ``name + ".new"``
    unfollowed: tuple[datetime, datetime] | None = None  # not followed from the first time until the second

    def name_at(self, now: datetime) -> str:
        return f"{self.name}.new" if self.renamed_at is not None and now >= self.renamed_at else self.name

    def followed_at(self, now: datetime) -> bool:
        return self.followed and not (self.unfollowed is not None and self.unfollowed[0] <= now < self.unfollowed[1])


@dataclass
class Media:
    pk: str
    user_pk: int
    taken_at: datetime
    shows_liked: bool  # whether the answers carry has_liked at all (a hostile but valid shape when not)
    post: bool = False
    coauthors: tuple[int, ...] = ()


class World:
    """Who posts what, and what Instagram did. Deterministic for a seed."""

    def __init__(self, seed: int = 7, *, unfollow: bool = False) -> None:
        """``unfollow``: bob is unfollowed after 2 h and followed again at 26 h (the `*` scenario's day and a half);
        elsewhere the follow states hold, so that a walk at another hour learns nothing other than the baseline's."""
        rng = random.Random(seed)
        self.users = [
            User(101, "alice"),
            User(
                102, "bob", unfollowed=(START + timedelta(hours=2), START + timedelta(hours=26)) if unfollow else None
            ),
            User(103, "carol", in_tray=False),  # followed, dropped from the tray
            User(104, "dave", in_tray=False),  # muted: never in the tray
            User(105, "erin", followed=False),  # public, not followed
            User(106, "frank", followed=False, private=True),
            User(107, "ghost", followed=False, missing=True),
            User(108, "hank", renamed_at=START + timedelta(hours=3)),
            User(109, "ivan", followed=False, broken=True),
            User(OWN_PK, ME, followed=False),  # the account itself, added as a target
        ]
        self.by_pk = {u.pk: u for u in self.users}
        self.media: list[Media] = []
        self.liked: set[str] = set()  # server-side: liked by the account
        self.gone: set[str] = set()  # deleted by their owners
        self.acted: Counter[str] = Counter()  # likes the server acted on, per item
        self.acted_at: list[tuple[str, datetime]] = []  # (story_like / post_like, when), every like acted on
        self.logins: list[datetime] = []
        self.answered_lookups: Counter[str] = Counter()
        self.walks: list[datetime] = []
        self.session_valid = True
        self.password_ok = True
        serial = iter(range(1, 10_000))

        def pk() -> str:
            return str(3_300_000_000_000_000_000 + next(serial) * 7919 + rng.randrange(7000))  # 19 digits

        for user in self.users:
            if user.missing or user.pk == 109:
                continue
            for hours in (9.5, 4.0, 1.0):  # stories now live
                self.media.append(Media(pk(), user.pk, START - timedelta(hours=hours), rng.random() < 0.7))
            self.media.append(Media(pk(), user.pk, START + timedelta(hours=6), True))  # posted later in the day
            self.media.append(Media(pk(), user.pk, START + timedelta(hours=28), True))  # and the next day
            self.media.append(Media(pk(), user.pk, START - timedelta(hours=30), True, post=True))
        already = next(m for m in self.media if m.user_pk == 101 and not m.post)
        self.liked.add(already.pk)  # liked in the app before
        self.duplicate = next(m for m in self.media if m.user_pk == 102 and not m.post)  # listed twice
        stranger = 555
        self.by_pk[stranger] = User(stranger, "stranger", followed=False)
        self.media.append(Media(pk(), stranger, START - timedelta(hours=5), True, post=True, coauthors=(102,)))

    # what a target list names (IG_USERNAME's own name among them; `accounts add` before the check)
    def target_names(self) -> list[str]:
        return [u.name for u in self.users if u.pk != OWN_PK]

    def stories_of(self, user_pk: int, now: datetime) -> list[Media]:
        return [
            m
            for m in self.media
            if m.user_pk == user_pk
            and not m.post
            and m.taken_at <= now < m.taken_at + STORY_LIFE
            and m.pk not in self.gone
        ]

    def posts_of(self, user_pk: int, now: datetime) -> list[Media]:
        own = [
            m
            for m in self.media
            if m.post and m.taken_at <= now and user_pk in (m.user_pk, *m.coauthors) and m.pk not in self.gone
        ]
        return sorted(own, key=lambda m: m.taken_at, reverse=True)

    def story_item(self, media: Media) -> StoryItem:
        return StoryItem(
            media.pk, media.user_pk, media.taken_at, (media.pk in self.liked) if media.shows_liked else None
        )

    def post_item(self, media: Media) -> PostItem:
        liked = (media.pk in self.liked) if media.shows_liked else None
        return PostItem(media.pk, media.user_pk, media.taken_at, "photo", liked, media.coauthors)

    def should_like(self, media: Media, targets: set[int]) -> bool:
        """A story or post of a target that the account can see and had not liked before."""
        user = self.by_pk[media.user_pk]
        owners = {media.user_pk, *media.coauthors} & targets
        if not owners or user.pk == OWN_PK or user.missing or media.pk in self.gone:
            return False
        visible = all(not self.by_pk[o].private or self.by_pk[o].followed for o in owners)
        return visible and not (user.private and not user.followed)


@dataclass(frozen=True)
class Fault:
    kind: str
    at: int  # the request index in its run
    run: int = 1  # which run of the schedule (1: the first pass)

    def __str__(self) -> str:
        return f"{self.kind}@{self.at}" + (f" in run {self.run}" if self.run != 1 else "")


@dataclass
class Request:
    index: int
    name: str
    arg: Any
    at: datetime
    run: int


class SimInstagram:
    """The `Instagram` Protocol against a World; each call is one request; ``fault`` hits request ``fault.at``."""

    def __init__(self, world: World, clock: FakeClock, sim: Sim, fault: Fault | None) -> None:
        self.world, self.clock, self.sim, self.fault = world, clock, sim, fault
        self.requests_sent = 0
        self.malformed = 0
        self.user_pk: int | None = OWN_PK

    def _request(self, name: str, arg: Any, act: Callable[[], Any] | None = None) -> None:
        world, now = self.world, self.clock()
        index = self.requests_sent
        self.requests_sent += 1
        self.sim.requests.append(Request(index, name, arg, now, self.sim.run))
        if name != "relogin" and not world.session_valid:
            raise SessionExpired("the Instagram session expired (login_required)")
        fault = self.fault.kind if self.fault is not None and self.fault.at == index else None
        if fault is not None and (fault != "gone" or name in LIKES):
            self.sim.fired.append(self.fault)  # type: ignore[arg-type]  # not None here
        if fault == "5xx":
            raise NetworkError(f"Instagram answered 500 on {name}", answered=True)
        if fault == "timeout":
            raise NetworkError(f"Instagram unreachable (timeout on {name})")
        if fault == "429":
            raise Throttled("throttled (429)", kind=ThrottleKind.RATE_LIMIT)
        if fault == "feedback_required":
            raise Throttled("feedback_required", kind=ThrottleKind.FEEDBACK_REQUIRED, detail="Try again later")
        if fault == "challenge":
            raise NeedsHuman(f"Instagram wants a human: ChallengeRequired on {name}")
        if fault in ("login_required_accepted", "login_required_refused"):
            world.session_valid = False
            world.password_ok = fault == "login_required_accepted"
            raise SessionExpired("the Instagram session expired (login_required)")
        if fault == "expiring":  # and from now on before every run: a session Instagram keeps ending
            world.session_valid = False
            self.sim.expiring = True
            raise SessionExpired("the Instagram session expired (login_required)")
        if fault == "gone" and name in LIKES:
            self.sim.gone_left = 3  # its owner deleted them: this like's item and the next two likes'
        if name in LIKES and self.sim.gone_left:
            self.sim.gone_left -= 1
            world.gone.add(str(arg))
            raise Gone(f"the media of {name} is gone")
        if act is not None:
            act()
        if fault == "dropped":
            raise NetworkError(f"Instagram unreachable (connection dropped on {name})")

    # reads
    def reels_tray(self, reason: TrayReason) -> list[TrayEntry]:
        self._request("reels_tray", None)
        now, world = self.clock(), self.world
        tray = []
        for user in world.users:
            live = world.stories_of(user.pk, now)
            if user.followed_at(now) and user.in_tray and live and user.pk != OWN_PK:
                tray.append(TrayEntry(user.pk, user.name_at(now), int(max(m.taken_at for m in live).timestamp())))
        return tray

    def reels_media(self, user_pks: Sequence[int]) -> dict[int, list[StoryItem]]:
        self._request("reels_media", list(user_pks))
        now, world = self.clock(), self.world
        found: dict[int, list[StoryItem]] = {}
        for pk in user_pks:
            user = world.by_pk.get(pk)
            if user is None or user.missing or (user.private and not user.followed_at(now)):
                continue  # Instagram leaves out a reel it will not show
            items = [world.story_item(m) for m in world.stories_of(pk, now)]
            if pk == world.duplicate.user_pk and items:
                items.append(items[0])  # one story listed twice
            if items:
                found[pk] = items
        return found

    def user_stories(self, user_pk: int) -> list[StoryItem]:
        self._request("user_stories", user_pk)
        user = self.world.by_pk.get(user_pk)
        if user is None or user.missing:
            raise TargetUnavailable(f"{user_pk} not found", reason="not_found")
        if user.private and not user.followed_at(self.clock()):
            raise TargetUnavailable(f"{user.name} is private and not followed", reason="private")
        return [self.world.story_item(m) for m in self.world.stories_of(user_pk, self.clock())]

    def following_page(self, max_id: str | None) -> tuple[list[UserRef], str | None]:
        self._request("following_page", max_id, lambda: self.world.walks.append(self.clock()))
        now = self.clock()
        return [UserRef(u.pk, u.name_at(now), True) for u in self.world.users if u.followed_at(now)], None

    def lookup(self, username: str) -> UserRef:
        self._request("lookup", username)
        now = self.clock()
        user = next((u for u in self.world.users if u.name_at(now) == username), None)
        if user is None or user.missing:
            raise TargetUnavailable(f"{username} not found", reason="not_found")
        if user.broken:
            raise NetworkError("Instagram answered 500 on lookup", answered=True)
        self.world.answered_lookups[username] += 1
        return UserRef(user.pk, username, None)  # usernameinfo says nothing of following

    def mark_seen(self, stories: Sequence[StoryItem], seen_at: Sequence[int]) -> None:
        self._request("mark_seen", [s.pk for s in stories])

    def like_story(self, story: StoryItem) -> None:
        self._like("like_story", story.pk)

    def _like(self, name: str, pk: str) -> None:
        world = self.world
        media = next(m for m in world.media if m.pk == pk)
        if not media.post and self.clock() >= media.taken_at + STORY_LIFE:
            self._request(name, pk)
            raise Gone("Media not found or unavailable")

        def act() -> None:
            world.acted[pk] += 1
            world.acted_at.append(("post_like" if media.post else "story_like", self.clock()))
            world.liked.add(pk)

        self._request(name, pk, act)

    def user_posts(self, user_pk: int, count: int, max_id: str | None = None) -> tuple[list[PostItem], str | None]:
        self._request("user_posts", user_pk if max_id is None else (user_pk, max_id))
        user = self.world.by_pk.get(user_pk)
        if user is None or user.missing:
            raise TargetUnavailable(f"{user_pk} not found", reason="not_found")
        if user.private and not user.followed_at(self.clock()):
            raise TargetUnavailable("private and not followed", reason="private")
        return [self.world.post_item(m) for m in self.world.posts_of(user_pk, self.clock())][:count], None

    def timeline_page(self, max_id: str | None) -> tuple[list[PostItem], str | None]:
        self._request("timeline_page", max_id)
        now, world = self.clock(), self.world
        followed = {u.pk for u in world.users if u.followed_at(now)}
        posts = [m for m in world.media if m.post and m.taken_at <= now and ({m.user_pk, *m.coauthors} & followed)]
        shown = [world.post_item(m) for m in sorted(posts, key=lambda m: m.pk)[::2]]  # ranked and lossy
        return (shown, None) if max_id is None else ([], None)

    def like_post(self, post: PostItem) -> None:
        self._like("like_post", post.pk)

    def ping(self) -> UserRef:
        self._request("ping", None)
        return UserRef(OWN_PK, ME)

    def login_by_sessionid(self, sessionid: str) -> UserRef:
        raise AssertionError("the simulation runs no `login`")  # a Client's Login side, never used here

    def login_with_code(self, code_prompt: Callable[[], str]) -> None:
        raise AssertionError("the simulation runs no `login`")

    def relogin(self) -> None:
        def login() -> None:
            self.world.logins.append(self.clock())
            if self.world.password_ok:
                self.world.session_valid = True

        self._request("relogin", None, login)
        if not self.world.password_ok:
            raise PasswordRejected("login failed: BadPassword")

    def dump_settings(self) -> dict[str, Any]:
        return {"uuids": dict(DEVICE), "authorization_data": {"ds_user_id": str(OWN_PK), "sessionid": SESSIONID}}


# --- one schedule ------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    command: str
    at: datetime
    code: int
    requests: int


@dataclass
class Sim:
    """The state of one schedule while it runs."""

    world: World
    store: Store
    clock: FakeClock
    requests: list[Request] = field(default_factory=list)
    runs: list[RunResult] = field(default_factory=list)
    run: int = 0
    cooldowns: list[tuple[datetime, datetime]] = field(default_factory=list)
    db_fail_armed: bool = False
    fired: list[Fault] = field(default_factory=list)  # the faults that happened (one past a run's end does not)
    expiring: bool = False  # the session is ended before every run from now on
    gone_left: int = 0  # likes still to be answered "gone" (a target deleted its stories)
    known_before_rename: set[int] = field(default_factory=set)  # target pks stored before a target's rename


@dataclass(frozen=True)
class Scenario:
    """Which pass the fault hits and what runs after it."""

    name: str
    command: str  # the faulted pass: run-stories or run-posts
    follow_ups: tuple[tuple[str, timedelta], ...]  # (command, offset from the faulted pass)
    everyone: bool = False  # TARGET_ACCOUNTS=*: the tray's accounts are the targets


def _day_of(command: str, every: int, hours: int = 24) -> tuple[tuple[str, timedelta], ...]:
    return tuple((command, timedelta(hours=h)) for h in range(every, hours + 1, every))


STORIES = Scenario("stories", "run-stories", _day_of("run-stories", 1))
POSTS = Scenario("posts", "run-posts", _day_of("run-posts", 3))
# a day and a half: bob, unfollowed after 2 h, is dropped by the next day's walk and followed again at 26 h
EVERYONE = Scenario("everyone", "run-stories", _day_of("run-stories", 1, 36), everyone=True)
SCENARIOS = (STORIES, POSTS, EVERYONE)


def _settings(store: Store, world: World, *, everyone: bool) -> Any:
    return load(
        ig_username=ME,
        ig_password=PASSWORD,
        database_url=store.engine.url.render_as_string(hide_password=False),
        target_accounts="*" if everyone else ",".join(world.target_names()),
        timezone="UTC",
        story_likes_per_hour=LIMITS["story_like"],
        post_likes_per_hour=LIMITS["post_like"],
        warmup_days=0,
        daily_limit_variation_percent=0,
        action_delay_min_seconds=3,
        action_delay_max_seconds=12,
        target_delay_min_seconds=5,
        target_delay_max_seconds=20,
        request_delay_min_seconds=1,
        request_delay_max_seconds=3,
    )


class _SimDeps(Deps):
    """Deps whose checkpoint (called before every request, and in every pause) injects our own side's faults
    right before request ``fault.at``: SIGTERM, the lease taken over, the database's next write failing."""

    sim: Sim
    fault: Fault | None
    ig: SimInstagram | None

    def checkpoint(self) -> None:
        fault, ig = self.fault, self.ig
        if fault is not None and ig is not None and ig.requests_sent == fault.at:
            self.fault = None  # once
            self.sim.fired.append(fault)
            if fault.kind == "sigterm":
                self.stop_signal.append(15)
                self.stop.set()
            elif fault.kind == "lease_lost" and self.lease is not None:
                with self.store.engine.begin() as connection:
                    connection.execute(sa.text("UPDATE run_lock SET run_id = 'intruder'"))
                assert isinstance(self.lease, Lease)
                self.lease.renewed_tick = float("-inf")  # the next keep() asks the database
            elif fault.kind == "db_write_fails":
                self.sim.db_fail_armed = True
        super().checkpoint()


def _fail_next_write(sim: Sim) -> Callable[..., None]:
    def listener(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if sim.db_fail_armed and statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            sim.db_fail_armed = False
            raise sa.exc.OperationalError(statement, {}, Exception("disk I/O error (simulated)"))

    return listener


def _one_run(sim: Sim, command: str, fault: Fault | None, seed: int, *, everyone: bool) -> RunResult:
    sim.run += 1
    if sim.expiring:
        sim.world.session_valid = False  # Instagram ended it again before this run
    settings = _settings(sim.store, sim.world, everyone=everyone)
    ig = SimInstagram(sim.world, sim.clock, sim, fault if fault is not None and fault.kind in SERVER_FAULTS else None)
    deps = _SimDeps(
        settings=settings,
        store=sim.store,
        run_id=f"sim{sim.run:04d}",
        command=command,
        connect=lambda _conn: ig,
        clock=sim.clock,
        rng=random.Random(seed * 1009 + sim.run),
        sleeper=sim.clock.sleep,
    )
    deps.sim, deps.fault, deps.ig = sim, fault if fault is not None and fault.kind in OWN_FAULTS else None, ig
    started = sim.clock()
    job = run_stories if command == "run-stories" else run_posts
    try:
        job(deps, dry_run=False, max_likes=None)
        code = 0
    except StoryLikerError as exc:
        code = exc.exit_code
    except Exception:  # a bug: the CLI exits 1 here; the check reports it with the traceback logged
        logging.getLogger("faultsim").exception("unexpected_error")
        code = 1
    sim.db_fail_armed = False
    account = sim.store.account(ME)
    if account.cooldown_until is not None and account.cooldown_until > sim.clock():
        sim.cooldowns.append((started, account.cooldown_until))
    with contextlib.suppress(StoryLikerError):  # what the run's notification step queues (its own clock)
        notify.record_change(
            settings, sim.store, ME, command=command, code=code, requests=ig.requests_sent, now=sim.clock()
        )
    renames = [u.renamed_at for u in sim.world.users if u.renamed_at is not None]
    if any(sim.clock() < at for at in renames):
        sim.known_before_rename = {t.user_pk for t in sim.store.targets(ME, enabled_only=False) if t.user_pk}
    result = RunResult(command, started, code, ig.requests_sent)
    sim.runs.append(result)
    return result


@dataclass
class Outcome:
    """What a schedule did, for the checks."""

    scenario: str
    faults: tuple[Fault, ...]  # the ones that happened
    world: World
    runs: list[RunResult]
    requests: list[Request]
    cooldowns: list[tuple[datetime, datetime]]
    needs_human: bool
    needs_human_notifications: int
    output: str
    end: datetime
    recorded_post_owners: set[int]
    known_before_rename: set[int]
    blocked: bool  # an action block (feedback_required) halved the limits
    everyone: bool
    final_targets: list[tuple[str, int | None, bool | None, bool]]  # username, user pk, followed, enabled

    @property
    def total_requests(self) -> int:
        """The faulted pass and the runs after it: what a pass left undone, a later one does."""
        return sum(r.requests for r in self.runs)


class Template:
    """A migrated SQLite file, copied for each schedule (migrating each time would cost more than the runs)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "template.db"
        engine = make_engine(f"sqlite:///{self.path}")
        migrate(engine)
        engine.dispose()
        self.count = 0

    def fresh(self) -> Store:
        self.count += 1
        path = self.directory / f"sim{self.count}.db"
        shutil.copy(self.path, path)
        return Store(make_engine(f"sqlite:///{path}"))


def run_schedule(
    template: Template, scenario: Scenario, faults: Fault | Sequence[Fault] | None, *, seed: int = 7
) -> Outcome:
    """One schedule: the scenario's pass and the runs after it, with ``faults`` (each in its own run)."""
    planned = [] if faults is None else [faults] if isinstance(faults, Fault) else list(faults)
    world = World(seed, unfollow=scenario.everyone)
    store = template.fresh()
    clock = FakeClock(START)
    sim = Sim(world, store, clock)
    sa.event.listen(store.engine, "before_cursor_execute", _fail_next_write(sim))
    store.save_session(
        ME,
        settings=_session_json(),
        encrypted=False,
        user_pk=OWN_PK,
        now=clock(),
        login=True,
    )
    store.add_target(ME, ME, clock())  # the account itself, added as a target before the name check
    output = io.StringIO()
    with _captured_logs(output):
        register_secret(PASSWORD)
        for number, (command, offset) in enumerate([(scenario.command, timedelta(0)), *scenario.follow_ups], 1):
            clock.now = max(clock.now, START + offset)
            _one_run(
                sim, command, next((f for f in planned if f.run == number), None), seed, everyone=scenario.everyone
            )
        account = store.account(ME)
        final = [(t.username, t.user_pk, t.followed, t.enabled) for t in store.targets(ME, enabled_only=False)]
        with store.engine.connect() as connection:
            notifications = connection.execute(
                sa.select(sa.func.count())
                .select_from(Notification)
                .where(sa.column("event") == notify.State.NEEDS_HUMAN)
            ).scalar_one()
            owners = {
                int(pk) for (pk,) in connection.execute(sa.text("SELECT target_user_pk FROM post WHERE skipped = 0"))
            }
    store.engine.dispose()
    return Outcome(
        scenario.name,
        tuple(sim.fired),
        world,
        sim.runs,
        sim.requests,
        sim.cooldowns,
        bool(account.needs_human),
        int(notifications),
        output.getvalue(),
        clock(),
        owners,
        sim.known_before_rename,
        any(f.kind == "feedback_required" for f in sim.fired) and bool(sim.cooldowns),
        scenario.everyone,
        final,
    )


def _session_json() -> str:
    import json

    return json.dumps(
        {"uuids": dict(DEVICE), "authorization_data": {"ds_user_id": str(OWN_PK), "sessionid": SESSIONID}}
    )


@contextlib.contextmanager
def _captured_logs(stream: io.StringIO) -> Iterator[None]:
    """Every log line of the runs, formatted as production formats them (JSON, redaction), into ``stream``."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure("DEBUG", "json")
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


# --- the promises ------------------------------------------------------------------------------------------


def check(outcome: Outcome, baseline: Outcome) -> list[str]:
    """The promises, over one schedule; each broken one is a line."""
    world, kinds = outcome.world, {f.kind for f in outcome.faults}
    broken: list[str] = []
    where = f"{outcome.scenario} {', '.join(map(str, outcome.faults)) or '(no fault)'}"

    twice = [pk for pk, n in world.acted.items() if n > 1]
    if twice:
        broken.append(f"{where}: liked twice by the server: {twice}")
    own = [m.pk for m in world.media if m.user_pk == OWN_PK and m.pk in world.acted]
    if own:
        broken.append(f"{where}: the account liked its own media: {own}")
    if outcome.cooldowns and not kinds & {"429", "feedback_required"}:
        broken.append(f"{where}: a cooldown though Instagram throttled nothing")

    for kind, per_hour in LIMITS.items():
        times = sorted(at for k, at in world.acted_at if k == kind)
        most = max((sum(1 for t in times if a <= t < a + timedelta(hours=1)) for a in times), default=0)
        if most > per_hour:
            broken.append(f"{where}: {most} {kind}s in an hour, the limit is {per_hour}")

    codes = [r.code for r in outcome.runs]
    if set(codes) - EXIT_CODES:
        broken.append(f"{where}: exit codes outside the documented set: {codes}")

    expired = sorted(r.at for r in _at_faults(outcome, ("login_required_accepted",)))
    keeps_expiring = any(b - a < timedelta(hours=24) for a, b in itertools.pairwise(expired))  # AUTO_LOGIN_MIN_HOURS
    # a session Instagram keeps ending needs a human once a later run finds it ended again within
    # AUTO_LOGIN_MIN_HOURS of the login that followed; ended in the schedule's last run, that login is all there is
    ended_again = any(f.kind == "expiring" and f.run < len(outcome.runs) for f in outcome.faults)
    human = bool(kinds & (HUMAN_FAULTS - {"expiring"})) or ended_again or keeps_expiring
    if outcome.needs_human != human:
        broken.append(f"{where}: needs-human is {outcome.needs_human}, the rules say {human}")
    if outcome.needs_human_notifications != (1 if human else 0):
        broken.append(f"{where}: {outcome.needs_human_notifications} needs-human notifications, expected {int(human)}")

    per_day = _most_in_a_day(sorted(world.logins))
    if per_day > 1:
        broken.append(f"{where}: {per_day} password logins within 24 h")

    again = 2 if "db_write_fails" in kinds else 1  # an answer the database lost
    lookups_again = [name for name, n in world.answered_lookups.items() if n > again]
    if lookups_again:
        broken.append(f"{where}: usernames looked up again after an answer: {lookups_again}")
    walks = sorted(outcome.runs[r.run - 1].at for r in outcome.requests if r.name == "following_page")  # by pass
    excused = _walk_cut(outcome) or "db_write_fails" in kinds  # an answer not kept
    if any(b - a < timedelta(hours=24) for a, b in itertools.pairwise(walks)) and not excused:
        broken.append(f"{where}: the following list walked twice within a day: {[w.isoformat() for w in walks]}")

    extra = outcome.total_requests - baseline.total_requests
    if extra > FOLLOW_UP_BOUND:
        broken.append(f"{where}: the pass and the runs after sent {extra} requests more than without the fault")

    if not outcome.needs_human:
        broken += [f"{where}: {line}" for line in _missed(outcome)]

    for name, pk, followed, _enabled in outcome.final_targets:
        user = world.by_pk.get(pk) if pk is not None else None
        steady = user is not None and all(user.followed_at(outcome.end - timedelta(hours=h)) for h in range(25))
        if steady and followed is False:  # followed all day long, and the day's walk saw it
            broken.append(f"{where}: {name} is followed but stored as not followed")

    blocked_lately = any(until > outcome.end - timedelta(hours=10) for _, until in outcome.cooldowns)
    if outcome.everyone and not blocked_lately:  # every account the tray shows is a target, taken back too
        enabled = {pk for _name, pk, _followed, on in outcome.final_targets if on}
        shown = [u for u in world.users if u.followed_at(outcome.end) and u.in_tray and u.pk != OWN_PK]
        for user in shown:
            if world.stories_of(user.pk, outcome.end) and user.pk not in enabled and not outcome.needs_human:
                broken.append(f"{where}: {user.name} is in the tray but no enabled target")

    if outcome.scenario == "posts":
        strangers = outcome.recorded_post_owners - {u.pk for u in world.users}
        if strangers:
            broken.append(f"{where}: post likes filed under non-targets {sorted(strangers)}")

    for secret in (PASSWORD, SESSIONID, "SIMSECRET"):
        if secret in outcome.output:
            broken.append(f"{where}: a secret reached the output")
            break
    return broken


def _walk_cut(outcome: Outcome) -> bool:
    """A walk whose pass ended before it was stored (a fault at its request) is walked again: that is its cost."""
    return any(r.name == "following_page" for r in _at_faults(outcome))


def _at_faults(outcome: Outcome, kinds: Sequence[str] | None = None) -> list[Request]:
    """The requests the faults (of ``kinds``) hit."""
    hit = {(f.run, f.at) for f in outcome.faults if kinds is None or f.kind in kinds}
    return [r for r in outcome.requests if (r.run, r.index) in hit]


def _most_in_a_day(times: list[datetime]) -> int:
    return max((sum(1 for t in times if a <= t < a + timedelta(hours=24)) for a in times), default=0)


def _limits_full(outcome: Outcome, kind: str, deadline: datetime) -> bool:
    """Before ``deadline`` the account liked as much as its hourly limit let the hourly runs (an action block halves
    it: ratelimit.after_block): a backlog the limits hold back is the rule, not a miss. Two hours, not one: a run
    on the hour finds the likes of the run an hour before still inside the sliding hour, so the runs like every
    other hour at worst."""
    limit = LIMITS[kind]
    if outcome.blocked:
        limit = max(1, limit // 2)
    since = deadline - timedelta(hours=2)
    return sum(1 for k, at in outcome.world.acted_at if k == kind and since <= at < deadline) >= limit


def _missed(outcome: Outcome) -> list[str]:
    """Stories that expired during the day without the like they should have had, and posts not liked by its end.
    Excused: one whose last chance a cooldown Instagram asked for covered, or the limits (full before it), and one
    whose like was lost on the way (a timeout, a dropped connection) while Instagram does not say whether it landed
    (never risk a second)."""
    world = outcome.world
    if outcome.everyone:  # the tray's accounts: followed ones it shows
        targets = {u.pk for u in world.users if u.followed and u.in_tray and u.pk != OWN_PK}
    else:
        targets = {u.pk for u in world.users if u.pk != OWN_PK}
    every = timedelta(hours=3 if outcome.scenario == "posts" else 1)  # the timer: the next chance after a cooldown
    lost = {r.arg for r in _at_faults(outcome, ("timeout", "dropped")) if r.name in LIKES}
    missed = []
    for media in world.media:
        if media.post != (outcome.scenario == "posts") or not world.should_like(media, targets):
            continue
        owner = world.by_pk[media.user_pk]
        life_end = media.taken_at + (POST_MAX_AGE if media.post else STORY_LIFE)
        if outcome.everyone and not (owner.followed_at(media.taken_at) and owner.followed_at(life_end)):
            continue  # `*` likes the tray's accounts: one unfollowed meanwhile is no target then
        if media.pk in world.liked or media.taken_at > outcome.end - every:  # liked, or posted after the last run
            continue
        if not media.post and media.taken_at + STORY_LIFE > outcome.end:
            continue  # still live when the day ends: a later run may like it yet
        deadline = min(outcome.end, media.taken_at + (POST_MAX_AGE if media.post else STORY_LIFE))
        if any(start <= deadline <= end + every for start, end in outcome.cooldowns):
            continue
        if _limits_full(outcome, "post_like" if media.post else "story_like", deadline):
            continue
        if media.pk in lost and not media.shows_liked:
            continue
        if owner.renamed_at is not None and owner.pk not in outcome.known_before_rename:
            continue  # renamed before its pk was learned: TARGET_ACCOUNTS names an account no longer there
        kind = "post" if media.post else "story"
        missed.append(f"{kind} {media.pk} of {world.by_pk[media.user_pk].name} never liked")
    return missed


# --- the matrix --------------------------------------------------------------------------------------------


@dataclass
class Matrix:
    schedules: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    indexes: dict[str, int] = field(default_factory=dict)  # per scenario: the fault-free pass's requests
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0


def schedules(baseline_requests: Sequence[Request]) -> list[Fault]:
    """Every fault at every request of the fault-free pass where it can happen (a gone answer: a like only)."""
    found = []
    for request in baseline_requests:
        for kind in FAULTS:
            if kind == "gone" and request.name not in LIKES:
                continue
            found.append(Fault(kind, request.index))
    return found


def run_matrix(
    scenarios: Sequence[Scenario] = SCENARIOS, *, sample: int | None = None, seed: int = 7, workdir: Path | None = None
) -> Matrix:
    """The whole matrix (``sample=None``) or a seeded sample of it; the fault-free schedule is checked too."""
    started = time.perf_counter()
    matrix = Matrix()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="story-liker-faults-")))
        template = Template(workdir)
        for scenario in scenarios:
            baseline = run_schedule(template, scenario, None, seed=seed)
            matrix.violations += check(baseline, baseline)
            first = [r for r in baseline.requests if r.run == 1]
            matrix.indexes[scenario.name] = len(first)
            faults = schedules(first)
            if sample is not None:
                faults = _sample(faults, sample, random.Random(seed))
            for fault in faults:
                outcome = run_schedule(template, scenario, fault, seed=seed)
                matrix.schedules += 1
                matrix.faults[fault.kind] += 1  # planned: one past a run's end may not happen
                matrix.violations += check(outcome, baseline)
            matrix.schedules += 1
    matrix.seconds = time.perf_counter() - started
    return matrix


def _sample(faults: list[Fault], size: int, rng: random.Random) -> list[Fault]:
    """Every fault kind at least once, the rest at random."""
    by_kind: dict[str, list[Fault]] = {}
    for fault in faults:
        by_kind.setdefault(fault.kind, []).append(fault)
    chosen = [rng.choice(items) for items in by_kind.values()]
    rest = [f for f in faults if f not in chosen]
    return chosen + rng.sample(rest, max(0, min(size - len(chosen), len(rest))))
