"""`status`: what a person (or a monitor) wants to know about an account. Never a secret."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from story_liker import health, planning, retention
from story_liker import limits as like_limits
from story_liker.jobs.deps import Deps
from story_liker.models import Account, Target
from story_liker.settings import Settings


def _iso(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def not_stored_yet(settings: Settings, targets: list[Target]) -> list[str]:
    """The names TARGET_ACCOUNTS lists that the database has no target for yet: the next run stores them."""
    stored = {t.username for t in targets} | {t.current_name for t in targets if t.current_name}
    return [name for name in settings.named_targets or [] if name not in stored]


def database_shown(url: str) -> str:
    """Which database this is: a SQLite file's absolute path, else the URL without its password."""
    import os

    from sqlalchemy.engine import make_url

    from story_liker.logging import redact_database_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not parsed.database.startswith("file:"):
        return os.path.abspath(parsed.database)
    return redact_database_url(url)


def session_of(state: Account, settings: Settings, now: datetime) -> health.SessionReading:
    """The stored session as the next run will find it: the one reading `status` and `doctor` show."""
    gate = health.login_gate(
        state.login_failures,
        state.login_attempt_at,
        now,
        last_auto_login=state.auto_login_at,
        auto_login_every=timedelta(hours=settings.auto_login_min_hours),
    )
    return health.session_reading(
        stored=state.settings is not None, live=state.has_session, password=settings.ig_password is not None, gate=gate
    )


def status_data(deps: Deps) -> dict[str, Any]:
    settings, store = deps.settings, deps.store
    account = settings.account()
    now = deps.clock()
    state = store.account(account, create=False)
    limits = like_limits.usage(store, settings, account, now)
    targets = store.targets(account, enabled_only=False)
    liked = store.last_story_likes(account)
    posts_liked = store.last_post_likes(account)
    lock = store.lock_holder(account)
    cooling = state.cooldown_until is not None and state.cooldown_until > now
    reading = session_of(state, settings, now)
    return {
        "account": account,
        "database": database_shown(settings.database_url),
        "session": {
            "stored": state.has_session,  # a live session
            "state": reading.state,  # live, device (stored before a login that failed or never finished), none
            "detail": reading.detail,
            "runs_alone": reading.runs_alone,  # the next run needs no person for its session
            "encrypted": state.settings_encrypted,
            "saved_at": _iso(state.saved_at),
            "user_pk": state.user_pk,
        },
        "needs_human": {"flag": state.needs_human, "reason": state.needs_human_reason},
        "cooldown": {
            "active": cooling,
            "until": _iso(state.cooldown_until) if cooling else None,
            "reason": state.cooldown_reason if cooling else None,
            "strikes": state.cooldown_strikes,
        },
        "keepalive": {"last_success": _iso(state.last_keepalive_at)},
        "lock": (
            {"run_id": lock.run_id, "command": lock.command, "expires_at": _iso(lock.expires_at)}
            if lock and lock.expires_at > now
            else None
        ),
        "limits": limits,
        "login": {"failures": state.login_failures, "last_attempt_at": _iso(state.login_attempt_at)},
        "active_hours": {
            "ranges": [
                f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in settings.active_hours or []
            ],
            "timezone": str(settings.zone),
            "active_now": planning.is_active(now, settings.active_hours, settings.zone),
            "next_window": _iso(planning.next_window(now, settings.active_hours, settings.zone)),
        },
        "story_recheck_hours": settings.story_recheck_hours,
        "now": _iso(now),
        "configured_not_synced": not_stored_yet(settings, targets),  # in TARGET_ACCOUNTS, stored at the next run
        "post_recheck_hours": settings.post_recheck_hours,
        "posts_in_use": store.last_success(account, "run-posts") is not None,  # else no post flag is raised
        # expired records the like passes have still to prune (counted up to retention.PRUNE_BACKLOG of each kind)
        "prune_waiting": retention.backlog(store, account, settings, now),
        "targets": [
            _target(t, liked.get(t.user_pk or 0), posts_liked.get(t.user_pk or 0), settings, now) for t in targets
        ],
        "last_runs": [
            {
                "command": r.command,
                "started_at": _iso(r.started_at),
                "finished_at": _iso(r.finished_at),
                "exit_code": r.exit_code,
                "outcome": r.outcome,
                "counts": json.loads(r.counts) if r.counts else None,
            }
            for r in store.last_runs(account)
        ],
    }


# The sweep reads a profile about every POST_RECHECK_HOURS, give or take a pass: a quarter more is late.
POSTS_LATE = 1.25


def _target(
    t: Target, last_liked: datetime | None, post_liked: datetime | None, settings: Settings, now: datetime
) -> dict[str, Any]:
    """One target's coverage: when it was last checked and liked, and why it is not checked when it is not."""
    why = planning.unavailable_skip(t, now) or ("unresolved" if t.user_pk is None else None)
    overdue = t.enabled and why is None and planning.is_due(t.story_checked_at, now, settings.story_recheck)
    late = settings.post_recheck * POSTS_LATE
    # never read: its first read is due within POST_RECHECK_HOURS of its addition (planning.first_read_at)
    posts_overdue = t.enabled and why is None and planning.is_due(t.post_checked_at or t.added_at, now, late)
    return {
        "username": t.username,
        "renamed_to": t.current_name,  # the name Instagram shows now (matched by user id since it was learnt)
        "enabled": t.enabled,
        "managed_by": t.managed_by,
        "user_pk": t.user_pk,
        "followed": t.followed,
        "stories_checked_at": _iso(t.story_checked_at),
        "stories_last_liked_at": _iso(last_liked),
        "stories_overdue": overdue,  # not checked within STORY_RECHECK_HOURS (or never) although it should be
        "not_checked_because": str(why) if why else None,
        "posts_checked_at": _iso(t.post_checked_at),  # its own feed (the sweep); the home feed is not per target
        "posts_last_liked_at": _iso(post_liked),
        "posts_overdue": posts_overdue,  # own feed not read within POST_RECHECK_HOURS and a quarter (of its addition)
        "last_error": t.last_error,
        "last_error_at": _iso(t.last_error_at),
    }


TARGET_LINES = 20  # status lists this many targets (the ones needing attention first); --json has all


def _when(iso: str | None, now: datetime) -> str:
    """`2026-12-01T10:00:00+00:00` -> `2026-12-01 10:00 (3 h ago)` / `(in 29 min)`."""
    if iso is None:
        return "never"
    at = datetime.fromisoformat(iso)
    seconds = (at - now).total_seconds()
    size = abs(seconds)
    span = (
        f"{size:.0f} s" if size < 90 else f"{size / 60:.0f} min" if size < 5400 else
        f"{size / 3600:.0f} h" if size < 129600 else f"{size / 86400:.0f} days"
    )  # fmt: skip
    return f"{at:%Y-%m-%d %H:%M} ({'in ' + span if seconds > 0 else span + ' ago'})"


def _problems(data: dict[str, Any]) -> list[str]:
    found = []
    if not data["session"]["runs_alone"]:
        found.append(f"session {data['session']['detail']} (runs exit 77 until then)")
    if data["needs_human"]["flag"]:
        found.append(f"needs a human: {data['needs_human']['reason']}")
    if data["login"]["failures"]:
        found.append(f"{data['login']['failures']} failed login(s) in a row (3 need a human)")
    overdue = sum(t["stories_overdue"] for t in data["targets"])
    if overdue:
        found.append(f"{overdue} target(s) not checked for stories within {data['story_recheck_hours']:g} h (or never)")
    if data.get("prune_waiting", 0) >= retention.PRUNE_BACKLOG:
        found.append(
            f"{data['prune_waiting']:,}+ expired records wait to be pruned (the like passes prune "
            f"{retention.PRUNE_BATCH:,} of each kind a pass): `story-liker cleanup` prunes them at once"
        )
    late = sum(t["posts_overdue"] for t in data["targets"])
    if late and data["posts_in_use"]:
        hours = data["post_recheck_hours"] * POSTS_LATE
        found.append(f"{late} target(s) whose posts were not read within {hours:g} h (or never)")
    return found


def status_text(data: dict[str, Any]) -> str:
    session = data["session"]
    now = datetime.fromisoformat(data["now"])
    lines = [
        f"database     {data['database']}",
        f"account      {data['account']} (pk {session['user_pk'] or '? (known after the first login)'})",
        "session      "
        + (
            f"stored {_when(session['saved_at'], now)}, "
            + ("encrypted" if session["encrypted"] else "unencrypted (set SESSION_ENCRYPTION_KEY)")
            if session["stored"]
            else session["detail"]
        ),
        "needs human  " + (f"YES: {data['needs_human']['reason']}" if data["needs_human"]["flag"] else "no"),
        "cooldown     "
        + (
            f"until {_when(data['cooldown']['until'], now)} ({data['cooldown']['reason']})"
            if data["cooldown"]["active"]
            else "none"
        ),
        f"keepalive    {_when(data['keepalive']['last_success'], now)}",
        "lock         "
        + (
            f"held by {data['lock']['command']} until {_when(data['lock']['expires_at'], now)}"
            if data["lock"]
            else "free"
        ),
    ]
    problems = _problems(data)
    lines.append("problems     " + ("none" if not problems else problems[0]))
    lines += [f"             {p}" for p in problems[1:]]
    hours = data["active_hours"]
    if hours["ranges"]:
        state = "now" if hours["active_now"] else f"not now; next window {_when(hours['next_window'], now)}"
        lines.append(f"active hours {', '.join(hours['ranges'])} {hours['timezone']} ({state})")
    for kind, usage in data["limits"].items():
        why = "; ".join(usage["why_different"])  # on the line it explains: a limit that is not the configured one
        lines.append(
            f"{kind:12} {usage['last_10_minutes']}/{usage['effective_per_10_minutes']} last 10 min, "
            f"{usage['last_hour']}/{usage['effective_per_hour']} last hour, "
            f"{usage['last_day']}/{usage['effective_per_day']} last day, {usage['remaining']} left now"
            + (
                f" (configured {usage['per_10_minutes']}/10 min, {usage['per_hour']}/h, {usage['per_day']}/day; {why})"
                if why
                else ""
            )
        )
    targets = data["targets"]
    lines.append(f"targets      {sum(t['enabled'] for t in targets)} enabled of {len(targets)}")
    if data["configured_not_synced"]:
        lines.append(f"  in TARGET_ACCOUNTS, stored at the next run: {', '.join(data['configured_not_synced'])}")
    attention = sorted(
        targets,
        key=lambda t: (not t["stories_overdue"], not t["posts_overdue"], not t["not_checked_because"], t["username"]),
    )
    for t in attention[:TARGET_LINES]:
        state = "" if t["enabled"] else " (disabled)"
        flag = " OVERDUE" if t["stories_overdue"] else ""
        posts = f" posts read {_when(t['posts_checked_at'], now)}" if t["posts_checked_at"] else ""
        why = {
            "private_not_followed": "  private and not followed: rechecked daily",
            "not_found": "  not found: rechecked daily",
            "unresolved": "  no user id yet: looked up by the next pass",
            "failing": "  its last lookup or read failed: tried again later (1 h, doubling, daily at most)",
            "same_user": "  the same Instagram user as another target: read once, for that one",
        }.get(t["not_checked_because"] or "", "")
        if t["renamed_to"]:
            state += f" (now @{t['renamed_to']})"
        error = f"  error: {t['last_error']}" if t["last_error"] and not why else ""
        lines.append(
            f"  {t['username']:30}{state} pk={t['user_pk'] or '-'} checked {_when(t['stories_checked_at'], now)}"
            f" liked {_when(t['stories_last_liked_at'], now)}{flag}{posts}{why}{error}"
        )
    if len(targets) > TARGET_LINES:
        lines.append(f"  ... and {len(targets) - TARGET_LINES} more (`status --json` lists all)")
    if any(t["user_pk"] is None for t in targets):
        lines.append("  (pk=-: the user id is not known yet; the next pass looks it up)")
    lines.append("last runs")
    for r in data["last_runs"]:
        counts = r["counts"] or {}
        if r["finished_at"] is None:
            lines.append(f"  {_when(r['started_at'], now)} {r['command']:12} running since {r['started_at']}")
            continue
        lines.append(
            f"  {_when(r['started_at'], now)} {r['command']:12} exit {r['exit_code']} {r['outcome']} "
            f"liked={counts.get('liked', 0)} requests={counts.get('requests', 0)}"
        )
    return "\n".join(lines)
