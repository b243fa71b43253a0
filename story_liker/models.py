"""SQLModel tables. Every row belongs to one own Instagram account, so several accounts share a database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out (SQLite stores naive values)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _bigint(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_type=sa.BigInteger, nullable=nullable)


class Account(SQLModel, table=True):
    """Our own Instagram account: its stored session and the flags that stop runs."""

    __table_args__ = (sa.Index("ux_account_user_pk", "user_pk", unique=True),)  # one row per Instagram user

    username: str = Field(primary_key=True, max_length=30)
    user_pk: int | None = _bigint()
    settings: str | None = Field(default=None, sa_type=sa.Text)  # instagrapi settings JSON (maybe encrypted)
    settings_encrypted: bool = False
    has_session: bool = False  # the settings hold a live session, not only the device stored before a login
    saved_at: datetime | None = _time()
    needs_human: bool = False
    needs_human_reason: str | None = None
    cooldown_until: datetime | None = _time()
    cooldown_reason: str | None = None
    cooldown_strikes: int = 0
    last_keepalive_at: datetime | None = _time()
    following_synced_at: datetime | None = _time()
    login_failures: int = 0  # failed password logins in a row (health.login_gate)
    login_attempt_at: datetime | None = _time()
    warmup_started_at: datetime | None = _time()  # a new device's limits rise from WARMUP_START_PERCENT
    auto_login_at: datetime | None = _time()  # the last unattended password login (health.login_gate's bound)
    following_failed_at: datetime | None = _time()  # the last walk of the following list that failed (retried later)


class Target(SQLModel, table=True):
    """An account whose stories and posts we like."""

    __table_args__ = (sa.UniqueConstraint("account", "username"),)

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=30, index=True)
    username: str = Field(max_length=30)
    user_pk: int | None = _bigint()
    followed: bool | None = None
    enabled: bool = True
    managed_by: str = "env"  # "env" (TARGET_ACCOUNTS) or "cli" (accounts add)
    added_at: datetime | None = _time()
    story_checked_at: datetime | None = _time()
    story_marker: int | None = _bigint()  # latest_reel_media fully handled
    post_checked_at: datetime | None = _time()
    post_marker: int | None = _bigint()  # taken_at of the newest post handled
    last_error: str | None = None
    last_error_at: datetime | None = _time()
    unavailable: str | None = Field(default=None, max_length=20)  # "private" (not followed) or "not_found"
    failures: int = 0  # lookups or reads of one kind (``failing``) that failed in a row (planning.retry_at)
    failing: str | None = Field(default=None, max_length=10)  # which: "lookup", "stories" or "posts"
    current_name: str | None = Field(default=None, max_length=30)  # the name Instagram shows now, after a rename


class Story(SQLModel, table=True):
    """A story we liked (or found liked). Stories expire after 24 h; the passes and cleanup delete old records."""

    __table_args__ = (
        sa.UniqueConstraint("account", "story_pk"),
        # the newest likes (history), a window of them (report: covering what it counts), a target's newest
        # (status, history --target)
        sa.Index("ix_story_account_liked", "account", "liked_at", "target_user_pk", "skipped", "found"),
        sa.Index("ix_story_account_target_liked", "account", "target_user_pk", "liked_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=30)
    story_pk: str = Field(max_length=40)
    target_user_pk: int = _bigint(nullable=False)
    taken_at: datetime = _time(nullable=False, index=True)
    liked_at: datetime = _time(nullable=False)
    skipped: bool = False  # left deliberately (STORY_LIKE_PROBABILITY, STORY_MAX_PER_TARGET): handled, not liked
    found: bool = False  # found already liked (in the app, or a like whose answer was lost): no like this tool sent


class Post(SQLModel, table=True):
    """A post (Beitrag) we liked (or found liked). Posts are permanent and never cleaned up."""

    __table_args__ = (
        sa.UniqueConstraint("account", "media_pk"),
        sa.Index("ix_post_account_liked", "account", "liked_at", "target_user_pk", "skipped", "found"),
        sa.Index("ix_post_account_target_liked", "account", "target_user_pk", "liked_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=30)
    media_pk: str = Field(max_length=40)
    target_user_pk: int = _bigint(nullable=False)
    media_type: str = Field(max_length=10)
    taken_at: datetime = _time(nullable=False)
    liked_at: datetime = _time(nullable=False)
    skipped: bool = False  # left deliberately (POST_MAX_PER_TARGET): handled, not liked
    found: bool = False  # found already liked: kept for bookkeeping, no like this tool sent


STORY_LIKE = "story_like"  # Action.kind of a story's like
POST_LIKE = "post_like"  # Action.kind of a post's like


class Action(SQLModel, table=True):
    """One like sent, for the sliding-window limits and the likes whose answer was lost (kept while the item may
    still be liked: jobs.maintenance.Keep). Written before the like goes out, so a like Instagram acted on always
    counts, however its answer ended; a like Instagram surely refused is deleted again."""

    __table_args__ = (
        sa.Index("ix_action_account_kind_at", "account", "kind", "at"),
        sa.Index("ix_action_at", "at"),  # the rows past their keep, pruned oldest first
    )

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=30)
    kind: str = Field(max_length=20)  # "story_like" or "post_like"
    at: datetime = _time(nullable=False)
    item_pk: str | None = Field(default=None, max_length=40)  # the story or post liked (None: rows before 0004)


class LimitState(SQLModel, table=True):
    """The adaptive share of one kind of like's limits (ratelimit.aimd_factor): halved by an action block."""

    __tablename__ = "limit_state"

    account: str = Field(primary_key=True, max_length=30)
    kind: str = Field(primary_key=True, max_length=20)
    factor: float = 1.0  # the share in force right after ``changed_at``
    changed_at: datetime = _time(nullable=False)


class Run(SQLModel, table=True):
    """One command invocation and what it did."""

    __table_args__ = (
        sa.Index("ix_run_account_started", "account", "started_at"),
        sa.Index("ix_run_account_command_finished", "account", "command", "finished_at"),  # the last success
    )

    id: str = Field(primary_key=True, max_length=32)
    account: str | None = Field(default=None, max_length=30)
    command: str = Field(max_length=20)
    started_at: datetime = _time(nullable=False)
    finished_at: datetime | None = _time()
    exit_code: int | None = None
    outcome: str | None = None
    counts: str | None = Field(default=None, sa_type=sa.Text)  # JSON object


class RunLock(SQLModel, table=True):
    """The lease that lets one run at a time act for an account; expires if its holder died."""

    __tablename__ = "run_lock"

    account: str = Field(primary_key=True, max_length=30)
    run_id: str = Field(max_length=32)
    command: str = Field(max_length=20)
    acquired_at: datetime = _time(nullable=False)
    expires_at: datetime = _time(nullable=False)


class HealthState(SQLModel, table=True):
    """The account's health as last told to the person (notify.py): changed, and notified, only when it changes."""

    __tablename__ = "notify_state"

    account: str = Field(primary_key=True, max_length=30)
    state: str = Field(default="ok", max_length=20)  # ok, needs_human, session_outdated, action_blocked, long_cooldown
    state_key: str | None = Field(default=None, max_length=40)  # which block or cooldown: its end
    changed_at: datetime | None = _time()
    digest_at: datetime | None = _time()  # NOTIFY_DIGEST=daily: when the last summary was queued


class Notification(SQLModel, table=True):
    """A message for the person, kept until every configured URL took it; the next runs retry the others."""

    __table_args__ = (sa.Index("ix_notification_account_done", "account", "done_at"),)

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=30)
    event: str = Field(max_length=20)
    title: str = Field(max_length=200)
    body: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = _time(nullable=False)
    delivered_to: str = Field(default="[]", sa_type=sa.Text)  # JSON list of URL fingerprints, never the URLs
    attempts: int = 0
    claimed_until: datetime | None = _time()  # a run delivering it now; another run leaves it alone until then
    done_at: datetime | None = _time()
