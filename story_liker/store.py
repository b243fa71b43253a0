"""The one place that builds queries. Each public method is one transaction."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from story_liker.db import free_pages, reclaim, unavailable_as_69
from story_liker.errors import ConfigError
from story_liker.models import (
    POST_LIKE,
    STORY_LIKE,
    Account,
    Action,
    HealthState,
    LimitState,
    Notification,
    Post,
    Run,
    RunLock,
    Story,
    Target,
)

_IN_CHUNK = 500  # keeps IN lists well under SQLite's variable limit
T = TypeVar("T")


@dataclass(frozen=True)
class Segment:
    """A span of time [start, end) in which the account's time zone has one UTC offset (seconds)."""

    start: datetime
    end: datetime
    offset: int


@dataclass(frozen=True)
class Pruned:
    """The rows one prune deleted, per kind."""

    stories: int = 0
    actions: int = 0
    runs: int = 0
    notifications: int = 0

    @property
    def total(self) -> int:
        return self.stories + self.actions + self.runs + self.notifications


@dataclass(frozen=True)
class RunDay:
    """One local day's runs: how many, the requests they sent, how many started a cooldown or waited in one."""

    runs: int = 0
    requests: int = 0
    throttled: int = 0
    waited: int = 0


@dataclass(frozen=True)
class LikedStory:
    story_pk: str
    target_user_pk: int
    taken_at: datetime
    skipped: bool = False
    found: bool = False  # found already liked: bookkeeping, not a like this tool sent


@dataclass(frozen=True)
class LikedPost:
    media_pk: str
    target_user_pk: int
    media_type: str
    taken_at: datetime
    skipped: bool = False
    found: bool = False


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements = 0  # SQL statements executed, for the benchmark
        self._cache: dict[type[SQLModel], Any] = {}
        sa.event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_: Any) -> None:
        self.statements += 1

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with (
            unavailable_as_69(self.engine),
            Session(self.engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    def _insert_ignore(
        self, executor: Session | sa.Connection, model: type[SQLModel], rows: list[dict[str, Any]]
    ) -> int:
        """The one insert path: INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL, with a cached
        statement per table (compiling an INSERT costs more than a like's HTTP request). Returns rows inserted."""
        if not rows:
            return 0
        statement = self._cache.get(model)
        if statement is None:
            # the dialect in use only: PostgreSQL's module costs a SQLite run some 50 ms of start-up
            table = model.__table__  # type: ignore[attr-defined]
            key = next(iter(table.primary_key.columns))
            if self.engine.dialect.name == "postgresql":
                from sqlalchemy.dialects import postgresql

                insert: Any = postgresql.insert(table)
            else:
                from sqlalchemy.dialects import sqlite

                insert = sqlite.insert(table)
            # RETURNING counts what was inserted on both backends (psycopg's rowcount can be -1 here).
            statement = insert.on_conflict_do_nothing().returning(key)
            self._cache[model] = statement
        return len(executor.execute(statement, rows).all())

    def server_time(self) -> datetime | None:
        """The database's clock on PostgreSQL, where several hosts share leases and limit windows; None on
        SQLite, where the local clock is the only one."""
        if self.engine.dialect.name != "postgresql":
            return None
        with unavailable_as_69(self.engine), self.engine.connect() as connection:
            value = connection.execute(sa.text("SELECT statement_timestamp()")).scalar_one()
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    # --- the own account: session, flags, cooldown ---------------------------------------------

    def account(self, username: str, *, create: bool = True) -> Account:
        """The own account's row, inserted when missing. ``create=False`` (the commands that only read, on a
        database that may be read-only): never writes; a missing row is an unsaved one with the defaults."""
        with self._tx() as session:
            found = session.get(Account, username)
            if found is None and not create:
                return Account(username=username)
            if found is None:
                self._insert_ignore(session, Account, [{"username": username}])
                found = session.get(Account, username)
            assert found is not None
            return found

    def save_session(
        self,
        username: str,
        *,
        settings: str,
        encrypted: bool,
        user_pk: int | None,
        now: datetime,
        login: bool,
        has_session: bool = True,
        run_id: str | None = None,
    ) -> bool:
        """Store the client's settings: a live session, or (``has_session=False``) only the device made before
        a first login. A successful login also clears the needs-human flag and the failed logins.

        With ``run_id`` the write happens only while that run holds the account's lease, in the same statement:
        a run that lost its lease never overwrites the session of the run that took it. Returns whether it wrote.
        """
        values: dict[str, Any] = {
            "settings": settings,
            "settings_encrypted": encrypted,
            "saved_at": now,
            "has_session": has_session,
        }
        if user_pk:
            values["user_pk"] = user_pk
        if login:
            values |= {"needs_human": False, "needs_human_reason": None, "login_failures": 0}
        with self._one_row_per_user(username, user_pk), self._tx() as session:
            self._insert_ignore(session, Account, [{"username": username}])
            update = sa.update(Account).where(col(Account.username) == username)
            if run_id is not None:
                update = update.where(self._holds_lease(username, run_id))
            result = session.execute(update.values(**values))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def claim_user_pk(self, username: str, user_pk: int) -> None:
        """Record which Instagram user the account's stored session is, before a run sends anything with it: a
        session another account row already holds is refused here (ConfigError), not after its likes."""
        with self._one_row_per_user(username, user_pk), self._tx() as session:
            session.execute(sa.update(Account).where(col(Account.username) == username).values(user_pk=user_pk))

    @contextmanager
    def _one_row_per_user(self, username: str, user_pk: int | None) -> Iterator[None]:
        """One Instagram user is one account row (the unique index ux_account_user_pk): each row has its own
        limits and lease, so a second name for the same user would double them. A write the index refuses
        becomes a ConfigError naming the row that holds the user; the whole transaction was rolled back."""
        try:
            yield
        except sa.exc.IntegrityError:
            holder = self._account_of_user(user_pk, other_than=username) if user_pk else None
            if holder is None:
                raise
            raise ConfigError(
                f"Instagram user {user_pk} is the account {holder!r} in this database: its session is not "
                f"stored under {username!r} too (one Instagram user, one account: two names would give it two "
                f"sets of limits and two leases). Use IG_USERNAME={holder}; if the session stored as {holder!r} is not "
                f"that account's own, log {holder!r} in with its own first"
            ) from None

    def _account_of_user(self, user_pk: int, *, other_than: str) -> str | None:
        with self._tx() as session:
            return session.exec(
                select(Account.username).where(col(Account.user_pk) == user_pk, col(Account.username) != other_than)
            ).first()

    @staticmethod
    def _holds_lease(account: str, run_id: str) -> Any:
        return sa.exists().where(col(RunLock.account) == account, col(RunLock.run_id) == run_id)

    def mark_session_dead(self, username: str) -> None:
        """Instagram answered login_required: the next runs need a login, without first asking Instagram."""
        with self._tx() as session:
            session.execute(sa.update(Account).where(col(Account.username) == username).values(has_session=False))

    def record_login_attempt(self, username: str, now: datetime) -> None:
        """Written before the login request goes out, so a crash in the middle still counts as an attempt."""
        with self._tx() as session:
            session.execute(sa.update(Account).where(col(Account.username) == username).values(login_attempt_at=now))

    def record_auto_login(self, username: str, now: datetime) -> None:
        """A run logged in with the password on its own and Instagram accepted it (health.login_gate's bound)."""
        with self._tx() as session:
            session.execute(sa.update(Account).where(col(Account.username) == username).values(auto_login_at=now))

    def set_login_failures(self, username: str, failures: int) -> None:
        with self._tx() as session:
            session.execute(sa.update(Account).where(col(Account.username) == username).values(login_failures=failures))

    def set_needs_human(self, username: str, reason: str) -> None:
        with self._tx() as session:
            session.execute(
                sa.update(Account)
                .where(col(Account.username) == username)
                .values(needs_human=True, needs_human_reason=reason)
            )

    def clear_needs_human(self, username: str) -> None:
        with self._tx() as session:
            session.execute(
                sa.update(Account)
                .where(col(Account.username) == username)
                .values(needs_human=False, needs_human_reason=None)
            )

    def set_warmup(self, username: str, started_at: datetime | None) -> None:
        with self._tx() as session:
            session.execute(
                sa.update(Account).where(col(Account.username) == username).values(warmup_started_at=started_at)
            )

    def limit_state(self, account: str, kind: str) -> LimitState | None:
        with self._tx() as session:
            return session.get(LimitState, (account, kind))

    def set_limit_state(self, account: str, kind: str, *, factor: float, changed_at: datetime) -> None:
        with self._tx() as session:
            self._insert_ignore(
                session, LimitState, [{"account": account, "kind": kind, "factor": factor, "changed_at": changed_at}]
            )
            session.execute(
                sa.update(LimitState)
                .where(col(LimitState.account) == account, col(LimitState.kind) == kind)
                .values(factor=factor, changed_at=changed_at)
            )

    def set_cooldown(self, username: str, *, until: datetime, reason: str, strikes: int) -> None:
        with self._tx() as session:
            session.execute(
                sa.update(Account)
                .where(col(Account.username) == username)
                .values(cooldown_until=until, cooldown_reason=reason, cooldown_strikes=strikes)
            )

    def clear_cooldown_strikes(self, username: str) -> None:
        with self._tx() as session:
            session.execute(
                sa.update(Account)
                .where(col(Account.username) == username, col(Account.cooldown_strikes) != 0)
                .values(cooldown_strikes=0)
            )

    def mark_following_failed(self, username: str, now: datetime) -> None:
        with self._tx() as session:
            session.execute(sa.update(Account).where(col(Account.username) == username).values(following_failed_at=now))

    def mark_following_synced(self, username: str, now: datetime) -> None:
        with self._tx() as session:
            session.execute(sa.update(Account).where(col(Account.username) == username).values(following_synced_at=now))

    def record_keepalive(self, username: str, now: datetime) -> None:
        with self._tx() as session:
            session.execute(sa.update(Account).where(col(Account.username) == username).values(last_keepalive_at=now))

    # --- targets ------------------------------------------------------------------------------------

    def sync_targets(
        self, account: str, usernames: Sequence[str], now: datetime, *, everyone: bool = False
    ) -> tuple[int, int]:
        """Make TARGET_ACCOUNTS the truth for env-managed targets: add new, enable listed, disable the rest.

        Targets added with `accounts add` are left alone; nothing is deleted. With ``everyone`` (`*` in the list)
        an env-managed target the list no longer names is the tray's to manage (``managed_by`` "tray": a target
        while you follow it), not disabled; without it a target `*` had adopted leaves with `*`. Returns
        (added, disabled)."""
        wanted = set(usernames)
        with self._tx() as session:
            rows = session.exec(select(Target).where(col(Target.account) == account)).all()
            known = {row.username: row for row in rows}
            added = self._insert_ignore(
                session,
                Target,
                [
                    {
                        "account": account,
                        "username": name,
                        "enabled": True,
                        "managed_by": "env",
                        "added_at": now,
                    }
                    for name in usernames
                    if name not in known
                ],
            )
            # listed: enabled; a name added with `accounts add` stays the CLI's, so leaving the list never
            # disables it; one found by `*` becomes the environment's
            enable = [r.id for r in rows if r.username in wanted and not r.enabled]
            take_over = [r.id for r in rows if r.username in wanted and r.managed_by == "tray"]
            if enable:
                session.execute(sa.update(Target).where(col(Target.id).in_(enable)).values(enabled=True))
            if take_over:
                session.execute(sa.update(Target).where(col(Target.id).in_(take_over)).values(managed_by="env"))
            leaving = [r for r in rows if r.username not in wanted and r.managed_by in ("env", "tray")]
            if everyone:  # the tray decides for the names the list gave up, and keeps its own
                to_tray = [r.id for r in leaving if r.managed_by == "env"]
                if to_tray:
                    session.execute(sa.update(Target).where(col(Target.id).in_(to_tray)).values(managed_by="tray"))
                return added, 0
            disable = [r.id for r in leaving if r.enabled]
            if disable:
                session.execute(sa.update(Target).where(col(Target.id).in_(disable)).values(enabled=False))
            return added, len(disable)

    def adopt_targets(
        self, account: str, found: Sequence[tuple[str, int]], exclude: Sequence[str], now: datetime
    ) -> tuple[int, int]:
        """TARGET_ACCOUNTS=*: the followed accounts the tray showed become targets (``managed_by`` "tray"), those
        in TARGET_EXCLUDE are left out (and disabled if they were adopted before). One the tray adopted before and
        that was disabled since (unfollowed, then followed again; taken out of TARGET_EXCLUDE) is taken back; one a
        person disabled (`accounts disable` makes it theirs) stays out. A target is matched by its user pk first,
        so a renamed account is not adopted twice. Returns (added, taken back)."""
        excluded = set(exclude)
        with self._tx() as session:
            rows = session.exec(select(Target).where(col(Target.account) == account)).all()
            by_pk = {row.user_pk: row for row in rows if row.user_pk is not None}
            by_name = {row.username: row for row in rows}
            self._follow_tray_renames(session, found, by_pk, by_name)
            new: list[dict[str, Any]] = []
            back: list[int] = []
            for name, pk in found:
                row = by_pk.get(pk)
                if row is None and name in by_name and by_name[name].user_pk in (None, pk):
                    row = by_name[name]  # a name not resolved yet, or the same user
                if {name, *([row.username, row.current_name] if row else [])} & excluded:
                    continue
                if row is None and name not in by_name:
                    new.append(
                        {
                            "account": account,
                            "username": name,
                            "user_pk": pk,
                            "followed": True,
                            "enabled": True,
                            "managed_by": "tray",
                            "added_at": now,
                        }
                    )
                    by_pk[pk] = by_name[name] = Target(account=account, username=name, user_pk=pk)  # listed twice
                elif row is not None and row.id is not None and row.managed_by == "tray" and not row.enabled:
                    back.append(row.id)
            added = self._insert_ignore(session, Target, new)
            if back:
                again = sorted(set(back))
                session.execute(sa.update(Target).where(col(Target.id).in_(again)).values(enabled=True, followed=True))
            if excluded:
                names = sorted(excluded)
                session.execute(
                    sa.update(Target)
                    .where(
                        col(Target.account) == account,
                        col(Target.managed_by) == "tray",
                        sa.or_(col(Target.username).in_(names), col(Target.current_name).in_(names)),
                    )
                    .values(enabled=False)
                )
            return added, len(set(back))

    @staticmethod
    def _follow_tray_renames(
        session: Session, found: Sequence[tuple[str, int]], by_pk: dict[int, Target], by_name: dict[str, Target]
    ) -> int:
        """A target `*` adopted is named as the tray names it now: its row takes the new name, which frees the old
        one for whoever takes it on Instagram (a name named in TARGET_ACCOUNTS keeps its row's, see current_name).
        Returns how many rows were renamed."""
        renamed = 0
        for name, pk in found:
            row = by_pk.get(pk)
            if row is None or row.id is None or row.managed_by != "tray" or row.username == name or name in by_name:
                continue
            old = row.username
            update = sa.update(Target).where(col(Target.id) == row.id).values(username=name, current_name=None)
            session.execute(update.execution_options(synchronize_session=False))
            by_name.pop(old, None)
            row.username, row.current_name = name, None
            by_name[name] = row
            renamed += 1
        return renamed

    def targets(self, account: str, *, enabled_only: bool = True) -> list[Target]:
        with self._tx() as session:
            query = select(Target).where(col(Target.account) == account)
            if enabled_only:
                query = query.where(col(Target.enabled))
            return list(session.exec(query.order_by(col(Target.username))).all())

    def add_target(self, account: str, username: str, now: datetime) -> bool:
        with self._tx() as session:
            return bool(
                self._insert_ignore(
                    session,
                    Target,
                    [{"account": account, "username": username, "managed_by": "cli", "added_at": now}],
                )
            )

    def set_target_enabled(self, account: str, username: str, enabled: bool) -> bool:
        """A person enables or disables a target. One TARGET_ACCOUNTS=* adopted becomes theirs when they disable it
        ("cli"), so the tray never takes it back."""
        values: dict[str, Any] = {"enabled": enabled}
        if not enabled:
            values["managed_by"] = sa.case((col(Target.managed_by) == "tray", "cli"), else_=col(Target.managed_by))
        with self._tx() as session:
            result = session.execute(
                sa.update(Target)
                .where(col(Target.account) == account, col(Target.username) == username)
                .values(**values)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def remove_target(self, account: str, username: str) -> bool:
        """Forget a target; the story and post records it earned stay (they are keyed by user pk)."""
        with self._tx() as session:
            result = session.execute(
                sa.delete(Target).where(col(Target.account) == account, col(Target.username) == username)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def update_targets(self, updates: dict[int, dict[str, Any]]) -> None:
        """Write what a pass learned about several targets (pk, follow state, markers, errors) at once:
        one executemany per set of columns, not one UPDATE per target."""
        if not updates:
            return
        rows = sorted(({"id": target_id, **values} for target_id, values in updates.items()), key=sorted)
        with self._tx() as session:
            session.execute(sa.update(Target), rows)

    # --- likes ----------------------------------------------------------------------------------------

    def liked_story_pks(self, account: str, pks: Sequence[str]) -> set[str]:
        return self._liked(col(Story.story_pk), col(Story.account), account, pks)

    def liked_post_pks(self, account: str, pks: Sequence[str]) -> set[str]:
        return self._liked(col(Post.media_pk), col(Post.account), account, pks)

    def record_stories(self, account: str, stories: Sequence[LikedStory], now: datetime, *, counted: bool) -> int:
        """Record stories as liked; ``counted`` ones (we sent the like) also count against the limits."""
        return self._record(Story, STORY_LIKE, account, [asdict(s) for s in stories], now, counted=counted)

    def record_posts(self, account: str, posts: Sequence[LikedPost], now: datetime, *, counted: bool) -> int:
        """Record posts as liked; ``counted`` ones (we sent the like) also count against the limits."""
        return self._record(Post, POST_LIKE, account, [asdict(p) for p in posts], now, counted=counted)

    def _liked(self, pk_column: Any, account_column: Any, account: str, pks: Sequence[str]) -> set[str]:
        """Which of ``pks`` are recorded as liked: one query per 500 pks, never one per item."""
        found: set[str] = set()
        with self._tx() as session:
            for chunk in _chunks(list(pks)):
                found.update(
                    session.exec(select(pk_column).where(account_column == account, pk_column.in_(chunk))).all()
                )
        return found

    def _record(
        self,
        model: type[SQLModel],
        kind: str,
        account: str,
        rows: list[dict[str, Any]],
        now: datetime,
        *,
        counted: bool,
    ) -> int:
        """The likes and their limit rows in one transaction, on a plain connection (the hot path: one like,
        right after Instagram confirmed it)."""

        def write(connection: sa.Connection) -> int:
            inserted = self._insert_ignore(
                connection, model, [row | {"account": account, "liked_at": now} for row in rows]
            )
            if counted:
                self._insert_ignore(connection, Action, [{"account": account, "kind": kind, "at": now} for _ in rows])
            return inserted

        return self._write(write)

    def _write(self, work: Callable[[sa.Connection], T]) -> T:
        """One write transaction, sent once more on a fresh connection when the database dropped ours (a restart,
        a failover, a killed backend): the pass goes on when the server is back at once. Our own write only,
        never an Instagram request; a second failure is DatabaseUnavailable (69)."""
        with unavailable_as_69(self.engine):
            for attempt in (1, 2):
                try:
                    with self.engine.begin() as connection:
                        return work(connection)
                except sa.exc.DBAPIError as exc:
                    if attempt == 2 or not exc.connection_invalidated:
                        raise
        raise AssertionError("unreachable")

    def reserve_like(self, account: str, kind: str, item_pk: str, now: datetime) -> int:
        """Count a like against the limits before it is sent, so one Instagram acted on always counts, however its
        answer or its recording ends. Returns the row to release (``release_like``) when Instagram surely refused."""
        table = Action.__table__  # type: ignore[attr-defined]
        statement = sa.insert(table).returning(table.c.id)
        row = {"account": account, "kind": kind, "at": now, "item_pk": item_pk}
        return int(self._write(lambda connection: connection.execute(statement, row).scalar_one()))

    def release_like(self, action_id: int) -> None:
        """Instagram refused the like (or never got it): it does not count against the limits."""
        self._write(lambda connection: connection.execute(sa.delete(Action).where(col(Action.id) == action_id)))

    def unconfirmed_likes(self, account: str, kind: str, pks: Sequence[str]) -> set[str]:
        """Which of ``pks`` had a like sent whose answer was lost (a row in ``action`` that names them): Instagram
        may have acted on it. The caller subtracts the ones recorded as liked."""
        found: set[str] = set()
        with self._tx() as session:
            for chunk in _chunks(list(pks)):
                found.update(
                    str(pk)
                    for pk in session.exec(
                        select(Action.item_pk).where(
                            col(Action.account) == account, col(Action.kind) == kind, col(Action.item_pk).in_(chunk)
                        )
                    ).all()
                )
        return found

    def last_story_likes(self, account: str) -> dict[int, datetime]:
        """When each target (by user pk) last had a story recorded as liked."""
        return self._last_likes(Story, account)

    def last_post_likes(self, account: str) -> dict[int, datetime]:
        """When each target (by user pk) last had a post recorded as liked (a collab is filed under its target)."""
        return self._last_likes(Post, account)

    def _last_likes(self, model: type[Story] | type[Post], account: str) -> dict[int, datetime]:
        """The newest like of each of the account's targets: one look-up in ix_*_account_target_liked per target,
        never a read of every like the table kept (posts are kept for good). Likes of a user pk no target has are
        no target's."""
        newest = (
            sa.select(col(model.liked_at))
            .where(
                col(model.account) == account,
                col(model.target_user_pk) == col(Target.user_pk),
                col(model.skipped).is_(False),
                col(model.found).is_(False),
            )
            .order_by(col(model.liked_at).desc())
            .limit(1)
            .correlate(Target)
            .scalar_subquery()
        )
        with self._tx() as session:
            rows = session.execute(
                sa.select(col(Target.user_pk), newest)
                .where(col(Target.account) == account, col(Target.user_pk).is_not(None))
                .distinct()
            ).all()
        return {int(pk): at for pk, at in rows if at is not None}

    def recent_actions(self, account: str, kind: str, now: datetime) -> list[datetime]:
        with self._tx() as session:
            return list(
                session.exec(
                    select(Action.at).where(
                        col(Action.account) == account,
                        col(Action.kind) == kind,
                        col(Action.at) > now - timedelta(days=1),
                    )
                ).all()
            )

    # --- cleanup ----------------------------------------------------------------------------------------

    def count_stories_before(self, account: str | None, cutoff: datetime) -> int:
        """The story records of ``account`` (None: of every account, `cleanup --all-accounts`) taken before
        ``cutoff``."""
        with self._tx() as session:
            query = select(sa.func.count()).select_from(Story).where(col(Story.taken_at) < cutoff)
            if account is not None:
                query = query.where(col(Story.account) == account)
            return int(session.exec(query).one())

    def delete_stories_before(self, account: str | None, cutoff: datetime, now: datetime) -> int:
        """The old story records of ``account`` (None: of every account) and its limit rows older than two days,
        at once; posts are never touched, nor another account's rows."""
        return self.prune(account, stories_before=cutoff, actions_before=now - timedelta(days=2)).stories

    def prune(
        self,
        account: str | None,
        *,
        stories_before: datetime | None = None,
        actions_before: datetime | None = None,
        runs_before: datetime | None = None,
        limit: int | None = None,
    ) -> Pruned:
        """Delete what expired, of ``account`` (None: of every account): story records taken before
        ``stories_before``, action rows before ``actions_before``, run records started and notifications done
        (delivered or given up) before ``runs_before``; a kind without its time is left alone. ``limit``: at most
        that many rows of each kind, the oldest (a pass's share: a short write); None: all at once.

        Each kind is one indexed DELETE in its own transaction: one that fails deletes nothing, and the others
        stand. Posts are never deleted, nor a notification still to be delivered."""
        found: dict[str, int] = {}
        for kind, key, age, where in self._expired(account, stories_before, actions_before, runs_before):
            statement = sa.delete(key.table).where(*where)
            if limit is not None:
                oldest = sa.select(key).where(*where).order_by(age).limit(limit).scalar_subquery()
                statement = sa.delete(key.table).where(key.in_(oldest))
            found[kind] = self._write(partial(_deleted, statement))
        return Pruned(**found)

    def expired(
        self,
        account: str | None,
        *,
        stories_before: datetime,
        actions_before: datetime,
        runs_before: datetime,
        cap: int,
    ) -> int:
        """How many rows ``prune`` would delete with these times, each kind counted up to ``cap`` only (a bounded
        read, for `status` and `doctor`)."""
        total = 0
        with self._tx() as session:
            for _kind, key, _age, where in self._expired(account, stories_before, actions_before, runs_before):
                some = sa.select(key).where(*where).limit(cap).subquery()
                total += int(session.execute(sa.select(sa.func.count()).select_from(some)).scalar_one())
        return total

    @staticmethod
    def _expired(
        account: str | None,
        stories_before: datetime | None,
        actions_before: datetime | None,
        runs_before: datetime | None,
    ) -> list[tuple[str, Any, Any, list[Any]]]:
        """(kind, primary key, age column, conditions) of each kind of row past its time."""
        kinds: list[tuple[str, Any, Any, list[Any]]] = []

        def add(kind: str, model: Any, age: Any, before: datetime | None, *more: Any) -> None:
            if before is None:
                return
            owner = [col(model.account) == account] if account is not None else []
            kinds.append((kind, col(model.id), col(age), [col(age) < before, *more, *owner]))

        add("stories", Story, Story.taken_at, stories_before)
        add("actions", Action, Action.at, actions_before)
        newer = sa.orm.aliased(Run)
        add(  # a command's last success stays, however old: status, doctor and the metrics read it
            "runs",
            Run,
            Run.started_at,
            runs_before,
            sa.not_(
                sa.and_(
                    col(Run.exit_code) == 0,
                    col(Run.finished_at).is_not(None),
                    ~sa.exists().where(
                        col(newer.command) == col(Run.command),
                        sa.or_(
                            col(newer.account) == col(Run.account),
                            sa.and_(col(newer.account).is_(None), col(Run.account).is_(None)),
                        ),
                        col(newer.exit_code) == 0,
                        col(newer.finished_at) > col(Run.finished_at),
                    ),
                )
            ),
        )
        add("notifications", Notification, Notification.done_at, runs_before, col(Notification.done_at).is_not(None))
        return kinds

    def last_activity(self, account: str, run_id: str) -> datetime | None:
        """The newest moment ``account`` is known to have acted before this run (``run_id``): its newest like or
        the start of its newest other run (None: neither). Two indexed reads."""
        with self._tx() as session:
            found = [
                session.exec(
                    select(Run.started_at)
                    .where(col(Run.account) == account, col(Run.id) != run_id)
                    .order_by(col(Run.started_at).desc())
                    .limit(1)
                ).first(),
                session.exec(
                    select(Action.at).where(col(Action.account) == account).order_by(col(Action.at).desc()).limit(1)
                ).first(),
            ]
        return max((at for at in found if at is not None), default=None)

    def free_pages(self) -> tuple[int, int, int] | None:
        """SQLite: (auto_vacuum mode, free pages, all pages) of the file; None on PostgreSQL (db.free_pages)."""
        return free_pages(self.engine)

    def reclaim(self, pages: int | None) -> int:
        """SQLite: give up to ``pages`` free pages (None: all) back to the file system (db.reclaim)."""
        return reclaim(self.engine, pages)

    # --- runs ------------------------------------------------------------------------------------------

    def start_run(self, run_id: str, *, account: str | None, command: str, now: datetime) -> None:
        with self._tx() as session:
            session.add(Run(id=run_id, account=account, command=command, started_at=now))

    def finish_run(self, run_id: str, *, exit_code: int, outcome: str, counts: dict[str, Any], now: datetime) -> None:
        with self._tx() as session:
            session.execute(
                sa.update(Run)
                .where(col(Run.id) == run_id)
                .values(finished_at=now, exit_code=exit_code, outcome=outcome, counts=json.dumps(counts))
            )

    def last_runs(self, account: str | None, limit: int = 10) -> list[Run]:
        """The newest ``limit`` runs of ``account`` and of the commands run for no account (``cleanup
        --all-accounts``), each of the two a walk down ix_run_account_started, never a read of every run; with no
        ``account``, those of every account."""
        with self._tx() as session:
            queries = [select(Run)] if not account else [select(Run).where(self._owned_by(o)) for o in (account, None)]
            found = [
                run
                for query in queries
                for run in session.exec(query.order_by(col(Run.started_at).desc()).limit(limit)).all()
            ]
        return sorted(found, key=lambda run: run.started_at, reverse=True)[:limit]

    @staticmethod
    def _owned_by(account: str | None) -> Any:
        return col(Run.account).is_(None) if account is None else col(Run.account) == account

    def last_success(self, account: str | None, command: str) -> datetime | None:
        """When the last run of ``command`` that exited 0 ended: of ``account`` or of no account, each the newest
        in ix_run_account_command_finished; with no ``account``, of every account."""
        with self._tx() as session:
            success = (col(Run.command) == command, col(Run.exit_code) == 0, col(Run.finished_at).is_not(None))
            owners = [sa.true()] if not account else [self._owned_by(o) for o in (account, None)]
            found = [
                session.exec(
                    select(Run.finished_at).where(owner, *success).order_by(col(Run.finished_at).desc()).limit(1)
                ).first()
                for owner in owners
            ]
            return max((at for at in found if at is not None), default=None)

    # --- the run lock (a lease row per account) ----------------------------------------------------------

    def acquire_lock(self, account: str, *, run_id: str, command: str, now: datetime, ttl: timedelta) -> bool:
        values = {"run_id": run_id, "command": command, "acquired_at": now, "expires_at": now + ttl}
        with self._tx() as session:
            taken = session.execute(
                sa.update(RunLock)
                .where(col(RunLock.account) == account, col(RunLock.expires_at) < now)
                .values(**values)
            )
            if taken.rowcount:  # type: ignore[attr-defined]
                return True
            return bool(self._insert_ignore(session, RunLock, [{"account": account, **values}]))

    def renew_lock(self, account: str, *, run_id: str, now: datetime, ttl: timedelta) -> bool:
        with self._tx() as session:
            result = session.execute(
                sa.update(RunLock)
                .where(col(RunLock.account) == account, col(RunLock.run_id) == run_id)
                .values(expires_at=now + ttl)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def release_lock(self, account: str, *, run_id: str) -> None:
        with self._tx() as session:
            session.execute(sa.delete(RunLock).where(col(RunLock.account) == account, col(RunLock.run_id) == run_id))

    def lock_holder(self, account: str) -> RunLock | None:
        with self._tx() as session:
            return session.get(RunLock, account)

    # --- notifications, report and history -----------------------------------------------------

    def health_state(self, account: str) -> HealthState | None:
        with self._tx() as session:
            return session.get(HealthState, account)

    def change_health(
        self,
        account: str,
        *,
        old: tuple[str, str | None],
        new: tuple[str, str | None],
        now: datetime,
        message: tuple[str, str, str] | None,
    ) -> bool:
        """Move the account's notified health from ``old`` to ``new`` (state, key) and queue ``message`` (event,
        title, body) in the same transaction. Only one of two runs that saw the same change moves it: the other
        finds the state moved already and queues nothing. Returns whether this call moved it."""
        with self._tx() as session:
            self._insert_ignore(session, HealthState, [{"account": account, "state": "ok", "state_key": None}])
            key = col(HealthState.state_key)
            moved = session.execute(
                sa.update(HealthState)
                .where(
                    col(HealthState.account) == account,
                    col(HealthState.state) == old[0],
                    key.is_(None) if old[1] is None else key == old[1],
                )
                .values(state=new[0], state_key=new[1], changed_at=now)
            )
            if not moved.rowcount:  # type: ignore[attr-defined]
                return False
            if message is not None:
                self._queue(session, account, message, now)
            return True

    def queue_digest(
        self, account: str, *, last: datetime | None, now: datetime, message: tuple[str, str, str]
    ) -> bool:
        """Queue the daily summary unless another run queued one since ``last`` (the digest_at it read)."""
        with self._tx() as session:
            self._insert_ignore(session, HealthState, [{"account": account, "state": "ok", "state_key": None}])
            at = col(HealthState.digest_at)
            moved = session.execute(
                sa.update(HealthState)
                .where(col(HealthState.account) == account, at.is_(None) if last is None else at == last)
                .values(digest_at=now)
            )
            if not moved.rowcount:  # type: ignore[attr-defined]
                return False
            self._queue(session, account, message, now)
            return True

    @staticmethod
    def _queue(session: Session, account: str, message: tuple[str, str, str], now: datetime) -> None:
        event, title, body = message
        session.add(Notification(account=account, event=event, title=title[:200], body=body, created_at=now))

    def pending_notifications(self, account: str, *, since: datetime) -> list[Notification]:
        """Messages not yet delivered to every URL, oldest first; older than ``since`` ones are given up."""
        with self._tx() as session:
            return list(
                session.exec(
                    select(Notification)
                    .where(
                        col(Notification.account) == account,
                        col(Notification.done_at).is_(None),
                        col(Notification.created_at) >= since,
                    )
                    .order_by(col(Notification.id))
                ).all()
            )

    def give_up_notifications(self, account: str, *, before: datetime, now: datetime) -> int:
        with self._tx() as session:
            result = session.execute(
                sa.update(Notification)
                .where(
                    col(Notification.account) == account,
                    col(Notification.done_at).is_(None),
                    col(Notification.created_at) < before,
                )
                .values(done_at=now)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def claim_notifications(self, ids: Sequence[int], *, now: datetime, until: datetime) -> list[int]:
        """Take the messages for delivery by this run (another run delivering them leaves them alone)."""
        claimed = []
        with self._tx() as session:
            for notification_id in ids:
                result = session.execute(
                    sa.update(Notification)
                    .where(
                        col(Notification.id) == notification_id,
                        col(Notification.done_at).is_(None),
                        sa.or_(col(Notification.claimed_until).is_(None), col(Notification.claimed_until) < now),
                    )
                    .values(claimed_until=until, attempts=col(Notification.attempts) + 1)
                )
                if result.rowcount:  # type: ignore[attr-defined]
                    claimed.append(notification_id)
        return claimed

    def notification_delivered(
        self, notification_id: int, *, delivered_to: Sequence[str], done: bool, now: datetime
    ) -> None:
        with self._tx() as session:
            session.execute(
                sa.update(Notification)
                .where(col(Notification.id) == notification_id)
                .values(
                    delivered_to=json.dumps(sorted(set(delivered_to))),
                    claimed_until=None,
                    done_at=now if done else None,
                )
            )

    @staticmethod
    def _like_columns() -> list[tuple[str, Any, Any, Any, Any, Any, Any, Any]]:
        """(kind, pk, target user pk, liked_at, taken_at, account, sent, found) of the story and the post table:
        ``sent`` selects the likes this tool sent (not skipped, not found already liked), ``found`` the ones it
        found liked (kept for bookkeeping: never counted as its likes)."""

        def columns(kind: str, table: type[Story] | type[Post], pk: Any) -> tuple[Any, ...]:
            kept = col(table.skipped).is_(False)
            return (
                kind,
                col(pk),
                col(table.target_user_pk),
                col(table.liked_at),
                col(table.taken_at),
                col(table.account),
                sa.and_(kept, col(table.found).is_(False)),
                sa.and_(kept, col(table.found).is_(True)),
            )

        return [columns("story", Story, Story.story_pk), columns("post", Post, Post.media_pk)]

    def likes_per_day(self, account: str, segments: Sequence[Segment]) -> Counter[tuple[str, str]]:
        """(kind "story"/"post", local day "YYYY-MM-DD") -> likes this tool sent, over ``segments`` of one UTC offset
        each (report.segments: a day's boundaries in the account's time zone). Counted by the database, grouped by
        the local day, over a range of ix_*_account_liked: never every like in Python."""
        counts: Counter[tuple[str, str]] = Counter()
        with self._tx() as session:
            for kind, _pk, _user, liked, _taken, owner, sent, _found in self._like_columns():
                for segment in segments:
                    day = self._local_day(liked, segment.offset)
                    rows = session.execute(
                        sa.select(day, sa.func.count())
                        .where(owner == account, sent, liked >= segment.start, liked < segment.end)
                        .group_by(day)
                    ).all()
                    for value, n in rows:
                        counts[(kind, str(value)[:10])] += int(n)
        return counts

    def likes_per_target(self, account: str, since: datetime, until: datetime) -> Counter[tuple[str, int]]:
        """(kind, target user pk) -> likes this tool sent in [since, until), counted by the database."""
        counts: Counter[tuple[str, int]] = Counter()
        with self._tx() as session:
            for kind, _pk, user, liked, _taken, owner, sent, _found in self._like_columns():
                rows = session.execute(
                    sa.select(user, sa.func.count())
                    .where(owner == account, sent, liked >= since, liked < until)
                    .group_by(user)
                ).all()
                counts.update({(kind, int(pk)): int(n) for pk, n in rows})
        return counts

    def runs_per_day(self, account: str, segments: Sequence[Segment]) -> dict[str, RunDay]:
        """Local day -> the runs of ``account`` (and of no account) started in it, the requests they sent and how
        many started or waited in a cooldown, over ``segments`` as in likes_per_day: grouped by the database."""
        requests = self._json_int(col(Run.counts), "requests")
        outcome = sa.func.lower(sa.func.replace(sa.func.coalesce(col(Run.outcome), ""), "_", ""))
        days: dict[str, RunDay] = {}
        with self._tx() as session:
            for segment in segments:
                day = self._local_day(col(Run.started_at), segment.offset)
                rows = session.execute(
                    sa.select(
                        day,
                        sa.func.count(),
                        sa.func.coalesce(sa.func.sum(requests), 0),
                        sa.func.sum(sa.case((outcome == "throttled", 1), else_=0)),
                        sa.func.sum(sa.case((outcome == "coolingdown", 1), else_=0)),
                    )
                    .where(self._of_account(account), col(Run.started_at) >= segment.start)
                    .where(col(Run.started_at) < segment.end)
                    .group_by(day)
                ).all()
                for value, runs, sent, throttled, waited in rows:
                    key = str(value)[:10]
                    before = days.get(key, RunDay())
                    days[key] = RunDay(
                        before.runs + int(runs),
                        before.requests + int(sent or 0),
                        before.throttled + int(throttled or 0),
                        before.waited + int(waited or 0),
                    )
        return days

    def throttled_runs(self, account: str, since: datetime, until: datetime) -> list[tuple[datetime, str]]:
        """(started_at, command) of the runs that started a cooldown in [since, until), oldest first."""
        outcome = sa.func.lower(sa.func.replace(sa.func.coalesce(col(Run.outcome), ""), "_", ""))
        with self._tx() as session:
            rows = session.exec(
                select(Run.started_at, Run.command)
                .where(self._of_account(account), col(Run.started_at) >= since, col(Run.started_at) < until)
                .where(outcome == "throttled")
                .order_by(col(Run.started_at))
            ).all()
            return [(at, command) for at, command in rows]

    @staticmethod
    def _of_account(account: str) -> Any:
        return sa.or_(col(Run.account) == account, col(Run.account).is_(None))

    def _local_day(self, column: Any, offset: int) -> Any:
        """The day of ``column`` (a UTC time) at ``offset`` seconds from UTC, as the database computes it. The
        offset is written into the statement (an int of ours): a GROUP BY must repeat the select's expression."""
        seconds = int(offset)
        if self.engine.dialect.name == "postgresql":
            return sa.cast(sa.func.timezone("UTC", column) + sa.text(f"interval '{seconds} seconds'"), sa.Date)
        # whole seconds first: SQLite's date() rounds a time to the millisecond (23:59:59.9996 would be midnight)
        return sa.func.date(sa.func.substr(column, 1, 19), sa.literal_column(f"'{seconds:+d} seconds'"))

    def _json_int(self, column: Any, key: str) -> Any:
        """The integer ``key`` of a JSON object stored as text (NULL when it is missing)."""
        if self.engine.dialect.name == "postgresql":
            return sa.cast(sa.func.json_extract_path_text(sa.cast(column, sa.JSON), key), sa.Numeric)
        return sa.func.json_extract(column, f"$.{key}")

    def found_liked_between(self, account: str, since: datetime, until: datetime) -> dict[str, int]:
        """How many stories and posts were found already liked (not by this tool) in [since, until), per kind."""
        counts: dict[str, int] = {}
        with self._tx() as session:
            for kind, _pk, _user, liked, _taken, owner, _sent, found in self._like_columns():
                counts[kind] = int(
                    session.execute(
                        sa.select(sa.func.count()).where(owner == account, found, liked >= since, liked < until)
                    ).scalar_one()
                )
        return counts

    def liked_history(
        self, account: str, *, target_user_pk: int | None, limit: int
    ) -> list[tuple[str, str, int, datetime, datetime]]:
        """The newest ``limit`` likes this tool sent (kind, pk, target user pk, liked_at, taken_at), newest first."""
        found: list[tuple[str, str, int, datetime, datetime]] = []
        with self._tx() as session:
            for kind, pk, user, liked, taken, owner, sent, _found in self._like_columns():
                query = sa.select(pk, user, liked, taken).where(owner == account, sent)
                if target_user_pk is not None:
                    query = query.where(user == target_user_pk)
                rows = session.execute(query.order_by(liked.desc(), pk.desc()).limit(limit)).all()
                found.extend((kind, str(p), int(u), at, t) for p, u, at, t in rows)
        found.sort(key=lambda row: (row[3], row[1]), reverse=True)
        return found[:limit]

    def liked_target_pks(self, account: str) -> set[int]:
        """The user pks of the targets this tool liked at least once (stories within their retention)."""
        return set(self.last_story_likes(account)) | set(self.last_post_likes(account))


def _deleted(statement: Any, connection: sa.Connection) -> int:
    return int(connection.execute(statement).rowcount or 0)


def liked_stories(items: Iterable[Any], *, skipped: bool = False, found: bool = False) -> list[LikedStory]:
    return [LikedStory(i.pk, i.user_pk, i.taken_at, skipped, found) for i in items]


def liked_posts(items: Iterable[Any], *, skipped: bool = False, found: bool = False) -> list[LikedPost]:
    return [LikedPost(i.pk, i.user_pk, i.media_type, i.taken_at, skipped, found) for i in items]
