"""`doctor`: one preflight checklist, each item ok, a note, or a problem with the exit code it means.

Read-only but for `--online` (one light Instagram request through the normal session guard, under the run
lock): the database is opened read-only (it may be read-only: the checklist still runs), no schema is
created, no target synced, no notification or ping sent (URLs are only connected to).
Never prints a secret: names of variables, never their values; URLs by position and service.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from story_liker.errors import CONFIG, DB_UNAVAILABLE, NEEDS_HUMAN, OK, TRY_LATER, StoryLikerError

if TYPE_CHECKING:
    from collections.abc import Callable

    from story_liker.ig.types import Client, Connection
    from story_liker.settings import Settings
    from story_liker.store import Store

CONNECT_TIMEOUT = 3.0
PASS, NOTE, FAIL = "ok", "note", "problem"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok, note (worth knowing, not a problem), problem
    detail: str
    exit_code: int = OK  # what a problem means for a run (78, 69, 77, 75)


def ok(name: str, detail: str) -> Check:
    return Check(name, PASS, detail)


def note(name: str, detail: str) -> Check:
    return Check(name, NOTE, detail)


def problem(name: str, detail: str, code: int) -> Check:
    return Check(name, FAIL, detail, code)


def exit_code(checks: list[Check]) -> int:
    """0 when all is well, else the exit code of the first problem."""
    return next((c.exit_code for c in checks if c.status == FAIL), OK)


def as_json(checks: list[Check]) -> dict[str, Any]:
    return {"ok": exit_code(checks) == OK, "exit_code": exit_code(checks), "checks": [asdict(c) for c in checks]}


def as_text(checks: list[Check]) -> str:
    mark = {PASS: "ok  ", NOTE: "note", FAIL: "FAIL"}
    lines = [f"[{mark[c.status]}] {c.name:13} {c.detail}" for c in checks]
    code = exit_code(checks)
    lines.append("all is well" if code == OK else f"exit {code}: the first problem above")
    return "\n".join(lines)


def _sources(settings_names: list[str]) -> str:
    """Which file and which variables were read: names only, never values."""
    env_file = Path(".env")
    from_env = sorted(n for n in settings_names if os.environ.get(n, "").strip())
    from_file: list[str] = []
    readable = env_file.is_file()
    if readable:
        from dotenv import dotenv_values

        known = set(settings_names)
        try:
            from_file = sorted(n for n, v in dotenv_values(env_file).items() if n.upper() in known and v)
        except UnicodeDecodeError:  # settings.load said so already
            readable = False
    parts = [
        f".env: {env_file.resolve()} ({', '.join(from_file) or 'no setting'})"
        if readable
        else f".env: {env_file.resolve()} (not readable)"
        if env_file.exists()
        else "no .env",
        f"environment: {', '.join(from_env) or 'no setting'}",
    ]
    return "; ".join(parts)


def run(
    settings: Settings | None,
    error: StoryLikerError | None,
    *,
    online: bool,
    connect: Callable[[Connection], Client] | None = None,
) -> list[Check]:
    """Every check in order; a check the others need (settings, database) stops the list when it fails."""
    from story_liker.settings import Settings as Model

    names = sorted(name.upper() for name in Model.model_fields)
    sources = _sources(names)
    if settings is None:
        assert error is not None
        return [problem("settings", f"{error.message} (read: {sources})", error.exit_code)]
    checks = [ok("settings", f"valid (read: {sources})")]
    from story_liker.settings import misspelled_here

    for name, closest, where in misspelled_here():
        checks.append(problem("settings", f"{name} ({where}) is not a setting: did you mean {closest}?", CONFIG))
    if not settings.ig_username:
        checks.append(problem("account", "IG_USERNAME is not set: the Instagram account that likes", CONFIG))
        return checks
    account = settings.ig_username
    store, database = _database(settings, read_only=not online)
    checks.append(database)
    if store is None:
        if database.status == NOTE:  # no database yet: nothing stored, so no session either
            checks.append(problem("session", "none stored: run `story-liker login`", NEEDS_HUMAN))
            if not settings.named_targets and not settings.follow_everyone:
                checks.append(
                    problem("targets", "none: set TARGET_ACCOUNTS or `story-liker accounts add NAME`", CONFIG)
                )
            else:
                checks.append(
                    ok("targets", f"{len(settings.named_targets or [])} in TARGET_ACCOUNTS; none checked yet")
                )
        checks.extend(_endpoints(settings))
        return checks
    try:
        now = datetime.now(UTC)
        checks.extend(_account(settings, store, account, now))
        checks.append(_targets(settings, store, account, now))
        checks.append(_retention(settings, store, account, now))
        checks.extend(_endpoints(settings))
        if online:
            checks.append(_online(settings, store, connect))
    finally:
        store.engine.dispose()
    return checks


def _database(settings: Settings, *, read_only: bool) -> tuple[Store | None, Check]:
    from sqlalchemy.engine import make_url

    from story_liker.db import SCHEMA_REVISION, current_revision, make_engine
    from story_liker.logging import redact_database_url
    from story_liker.store import Store

    url = settings.database_url
    shown = redact_database_url(url)
    if settings.is_sqlite:
        path = make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:") and not Path(path).exists():
            return None, note("database", f"{shown}: no database yet; the first run creates it")
    try:
        engine = make_engine(url, read_only=read_only)
        revision = current_revision(engine)
    except StoryLikerError as exc:
        return None, problem("database", exc.message, exc.exit_code)
    if revision == SCHEMA_REVISION:
        return Store(engine), ok("database", f"{shown} reachable, schema {revision} (current)")
    if revision is None and settings.is_sqlite:
        return None, note("database", f"{shown}: no schema yet; the first run creates it")
    if revision is None:
        return None, problem("database", f"{shown}: no schema yet: run `story-liker migrate`", CONFIG)
    if revision < SCHEMA_REVISION:
        return None, problem(
            "database",
            f"{shown}: schema {revision}, this story-liker needs {SCHEMA_REVISION}: run `story-liker migrate`",
            CONFIG,
        )
    return None, problem(
        "database", f"{shown}: schema {revision} is newer than this story-liker ({SCHEMA_REVISION}): upgrade it", CONFIG
    )


def _ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "never"
    span = now - value
    if span < timedelta(hours=1):
        return f"{int(span.total_seconds() // 60)} min ago"
    if span < timedelta(days=2):
        return f"{span.total_seconds() / 3600:.0f} h ago"
    return f"{span.days} days ago"


def _account(settings: Settings, store: Store, account: str, now: datetime) -> list[Check]:
    from story_liker import limits as like_limits
    from story_liker import vault
    from story_liker.status import session_of

    state = store.account(account, create=False)
    reading = session_of(state, settings, now)
    checks: list[Check] = []
    if state.settings is None:
        checks.append(
            problem("session", reading.detail, NEEDS_HUMAN)
            if not reading.runs_alone
            else note("session", reading.detail)
        )
    else:
        try:
            stored = vault.decode(state.settings, state.settings_encrypted, settings.encryption_key)
        except StoryLikerError as exc:
            checks.append(problem("session", exc.message, exc.exit_code))
            stored = None
        if stored is not None:
            app = (stored.get("device_settings") or {}).get("app_version") or "?"
            current = _current_app_version(stored)
            version = f"app {app}" + (f" (instagrapi's current: {current})" if current and current != app else "")
            how = "encrypted" if state.settings_encrypted else "not encrypted (set SESSION_ENCRYPTION_KEY)"
            detail = f"stored {_ago(state.saved_at, now)}, {how}, {version}"
            if reading.state == "live":
                checks.append(ok("session", f"{reading.detail}, {detail}"))
            elif reading.runs_alone:
                checks.append(note("session", f"{reading.detail} ({detail})"))
            else:
                checks.append(problem("session", f"{reading.detail} ({detail})", NEEDS_HUMAN))
    if state.needs_human:
        reason = state.needs_human_reason or "?"
        fix = "`story-liker session upgrade`" if "needs_upgrade" in reason else "`story-liker login`"
        checks.append(problem("needs human", f"yes: {reason}; run {fix}", NEEDS_HUMAN))
    else:
        failures = f"; {state.login_failures} failed login(s) in a row" if state.login_failures else ""
        checks.append(ok("needs human", f"no{failures}"))
    if state.cooldown_until is not None and state.cooldown_until > now:
        checks.append(
            problem(
                "cooldown",
                f"until {state.cooldown_until.isoformat(timespec='seconds')} ({state.cooldown_reason}); "
                f"{state.cooldown_strikes} throttle(s) in a row",
                TRY_LATER,
            )
        )
    else:
        checks.append(ok("cooldown", f"none; {state.cooldown_strikes} throttle(s) in a row"))
    limits = []
    for kind, usage in like_limits.usage(store, settings, account, now).items():
        limits.append(
            f"{kind} {usage['last_10_minutes']}/{usage['effective_per_10_minutes']} last 10 min, "
            f"{usage['last_hour']}/{usage['effective_per_hour']} last hour, "
            f"{usage['last_day']}/{usage['effective_per_day']} last day"
            + (f" ({'; '.join(usage['why_different'])})" if usage.get("why_different") else "")
        )
    checks.append(ok("limits", "; ".join(limits)))
    holder = store.lock_holder(account)
    if holder is not None and holder.expires_at > now:
        checks.append(
            note(
                "lock",
                f"held by {holder.command} (run {holder.run_id}) "
                f"until {holder.expires_at.isoformat(timespec='seconds')}",
            )
        )
    else:
        checks.append(ok("lock", "free"))
    return checks


def _current_app_version(stored: dict[str, Any]) -> str | None:
    """instagrapi's current app profile (no request); None when it cannot tell."""
    try:
        from story_liker.ig.adapter import upgrade_app_profile

        return upgrade_app_profile(stored)[2]
    except Exception:  # only informative; a stored session instagrapi rejects is the session check's business
        return None


def _targets(settings: Settings, store: Store, account: str, now: datetime) -> Check:
    from story_liker.report import not_checked_because

    rows = store.targets(account, enabled_only=False)
    known = {t.username for t in rows}
    enabled = [t for t in rows if t.enabled]
    configured = settings.named_targets
    unsynced = [n for n in configured or [] if n not in known]  # added by the next run
    total = len(enabled) + len(unsynced)
    if total == 0 and not settings.follow_everyone:
        return problem("targets", "none: set TARGET_ACCOUNTS or `story-liker accounts add NAME`", CONFIG)
    never = sum(1 for t in enabled if t.story_checked_at is None) + len(unsynced)
    late = [t.username for t in enabled if t.story_checked_at is not None and not_checked_because(t, settings, now)]
    detail = (
        f"{total} enabled"
        + (" (and every followed account in the tray: TARGET_ACCOUNTS=*)" if settings.follow_everyone else "")
        + f"; {never} never checked"
        + (f"; not checked as due: {', '.join(late)}" if late else "")
    )
    return ok("targets", detail)


def _retention(settings: Settings, store: Store, account: str, now: datetime) -> Check:
    """What waits to be pruned (the like passes prune a batch each; `cleanup` all at once), and whether a SQLite
    file gives its free pages back."""
    from story_liker import retention

    waiting = retention.backlog(store, account, settings, now)
    vacuum = store.free_pages()
    old_file = vacuum is not None and vacuum[0] == 0
    if waiting >= retention.PRUNE_BACKLOG or old_file:
        why = []
        if waiting >= retention.PRUNE_BACKLOG:
            why.append(
                f"{waiting:,}+ expired records wait to be pruned (the like passes prune {retention.PRUNE_BATCH:,} of "
                "each kind a pass): `story-liker cleanup` prunes them at once"
            )
        if old_file:
            why.append("the SQLite file keeps the space of what was deleted: `story-liker cleanup` gives it back once")
        return note("retention", "; ".join(why))
    return ok("retention", f"{waiting:,} expired records wait to be pruned by the next passes")


def _reachable(host: str, port: int) -> str | None:
    """None when a TCP connection opens within CONNECT_TIMEOUT; else why not (the exception type)."""
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            return None
    except OSError as exc:
        return type(exc).__name__


def _endpoint_of(plugin: Any) -> tuple[str, int] | None:
    """Where an Apprise plugin sends to: its service's fixed URL, or the host of the URL it was given."""
    for fixed in (getattr(plugin, "notify_url", None), getattr(plugin, "cloud_notify_url", None)):
        if isinstance(fixed, str) and fixed.startswith(("http://", "https://")):
            if fixed is getattr(plugin, "cloud_notify_url", None) and str(getattr(plugin, "mode", "")) != "cloud":
                continue
            parts = urlsplit(fixed)
            if parts.hostname:
                return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    host = getattr(plugin, "smtp_host", None) or getattr(plugin, "host", None)
    if not isinstance(host, str) or not host:
        return None
    port = getattr(plugin, "port", None)
    if not isinstance(port, int):
        port = 443 if getattr(plugin, "secure", False) else 80
    return host, port


def _endpoints(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    if settings.notifications_on:
        checks.extend(_notifications(settings))
    else:
        checks.append(note("notifications", "none configured (NOTIFY_URLS, NOTIFY_CONFIG)"))
    for name, url in (("healthcheck", settings.healthcheck_url), ("pushgateway", settings.pushgateway_url)):
        if not url:
            continue
        parts = urlsplit(url.replace("{command}", "x"))
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        why = _reachable(host, port)
        where = f"{parts.scheme}://{host}:{port}"  # the host only: the path of a ping URL is its secret
        if why:
            checks.append(problem(name, f"{where} not reachable ({why})", DB_UNAVAILABLE))
        else:
            checks.append(ok(name, f"{where} reachable (not pinged)"))
    return checks


def _notifications(settings: Settings) -> list[Check]:
    from story_liker.hooks import notify

    try:
        found, unusable = notify.destinations(settings)
    except Exception as exc:  # an Apprise config file it cannot read
        return [problem("notifications", f"Apprise cannot load them ({type(exc).__name__})", CONFIG)]
    checks = [problem("notifications", entry, CONFIG) for entry in unusable]
    for target in found:
        endpoint = _endpoint_of(target.plugin)
        if endpoint is None:
            checks.append(note("notifications", f"{target.label}: valid; reachability not checked"))
            continue
        why = _reachable(*endpoint)
        if why:
            checks.append(problem("notifications", f"{target.label}: not reachable ({why})", DB_UNAVAILABLE))
        else:
            checks.append(ok("notifications", f"{target.label}: valid, reachable (nothing sent)"))
    if settings.notify_digest == "daily":
        checks.append(note("notifications", "a daily summary (NOTIFY_DIGEST=daily)"))
    return checks


def _online(settings: Settings, store: Store, connect: Callable[[Connection], Client] | None) -> Check:
    """One light authenticated request, as `keepalive` sends it: through the session guard, under the lease, with
    the client the passes get (``connect``: the adapter unless a test gives its fake)."""
    import uuid

    from story_liker.jobs.deps import Deps, database_clock
    from story_liker.jobs.lease import lease
    from story_liker.jobs.session import with_instagram
    from story_liker.logging import CONTEXT

    run_id = uuid.uuid4().hex[:12]
    CONTEXT.set({"run_id": run_id, "command": "doctor", "account": settings.ig_username or ""})
    try:
        deps = Deps(
            settings=settings,
            store=store,
            run_id=run_id,
            command="doctor",
            connect=connect or _adapter,
            clock=database_clock(store),
        )
        with lease(deps):
            with_instagram(deps, lambda ig: ig.ping())
    except StoryLikerError as exc:
        return problem("instagram", exc.message, exc.exit_code)
    return ok("instagram", f"one light request answered ({deps.counts.requests} request(s) sent)")


def _adapter(conn: Connection) -> Client:
    from story_liker.ig.adapter import Instagrapi

    return Instagrapi(conn)
