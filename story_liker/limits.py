"""The like limits in force and their use: one reading of them for the passes, `status`, `doctor`, `report` and the
hooks' metrics. The rules themselves are pure (``ratelimit``); this gathers their inputs from the store."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from story_liker import ratelimit
from story_liker.models import POST_LIKE, STORY_LIKE

if TYPE_CHECKING:
    from story_liker.models import Account
    from story_liker.settings import Settings
    from story_liker.store import Store


def configured(settings: Settings, kind: str) -> ratelimit.Limits:
    """The limits STORY_LIKES_* / POST_LIKES_* set for ``kind``."""
    if kind == STORY_LIKE:
        return ratelimit.Limits(
            settings.story_likes_per_hour, settings.story_likes_per_day, settings.story_likes_per_10_minutes
        )
    return ratelimit.Limits(
        settings.post_likes_per_hour, settings.post_likes_per_day, settings.post_likes_per_10_minutes
    )


def aimd(store: Store, account: str, kind: str, now: datetime) -> float:
    """The adaptive share of ``kind``'s limits in force (ratelimit.aimd_factor)."""
    state = store.limit_state(account, kind)
    return ratelimit.aimd_factor(state.factor if state else None, state.changed_at if state else None, now)


def in_force(
    store: Store, settings: Settings, state: Account, kind: str, limits: ratelimit.Limits, now: datetime
) -> ratelimit.Effective:
    """``limits`` of ``kind`` as adapted to the account's history (ratelimit.effective_limits)."""
    return ratelimit.effective_limits(
        limits,
        aimd=aimd(store, state.username, kind, now),
        warmup=ratelimit.warmup_factor(
            state.warmup_started_at, now, start_percent=settings.warmup_start_percent, days=settings.warmup_days
        ),
        day=ratelimit.day_factor(state.username, now, settings.zone, settings.daily_limit_variation_percent),
    )


def usage(store: Store, settings: Settings, account: str, now: datetime) -> dict[str, dict[str, Any]]:
    """Likes sent in each sliding window against the limits in force, per kind of like; the configured limits
    beside the effective ones (adaptive, warm-up, daily variation) and why they differ. Reads only."""
    state = store.account(account, create=False)
    found = {}
    for kind in (STORY_LIKE, POST_LIKE):
        limits = configured(settings, kind)
        recent = store.recent_actions(account, kind, now)
        effective = in_force(store, settings, state, kind, limits, now)
        found[kind] = {
            "last_10_minutes": sum(1 for at in recent if now - at < ratelimit.BURST),
            "per_10_minutes": limits.per_10_minutes,
            "effective_per_10_minutes": effective.limits.per_10_minutes,
            "last_hour": sum(1 for at in recent if now - at < ratelimit.HOUR),
            "per_hour": limits.per_hour,
            "effective_per_hour": effective.limits.per_hour,
            "last_day": sum(1 for at in recent if now - at < ratelimit.DAY),
            "per_day": limits.per_day,
            "effective_per_day": effective.limits.per_day,
            "why_different": list(effective.reasons),
            "remaining": ratelimit.budget(now, recent, effective.limits).remaining,
        }
    return found
