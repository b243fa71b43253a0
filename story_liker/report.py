"""`report`, `history` and the daily digest: what was liked, when, for whom, and what it cost. Never a secret.

Likes come from the story and post records (the passes and `cleanup` delete story records after
STORY_RETENTION_HOURS, so story figures reach back that far at most; post records stay); requests, runs and
cooldowns from the run records (kept RUN_RETENTION_DAYS); days are days in TIMEZONE. The database counts and
groups them (Store.likes_per_day, runs_per_day): a year of history is never loaded row by row.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from story_liker import planning
from story_liker.errors import UsageError
from story_liker.models import Target
from story_liker.settings import Settings
from story_liker.store import Segment, Store

SHORTCODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw]?)\s*$", re.IGNORECASE)
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
MAX_SINCE = timedelta(days=366)


def parse_since(text: str) -> timedelta:
    """`7d`, `24h`, `90m`, `2w`; a bare number is days."""
    match = _SINCE.match(text)
    if not match:
        raise UsageError(f"--since {text!r}: expected a duration like 7d, 24h, 90m or 2w")
    span = float(match.group(1)) * _UNITS[(match.group(2) or "d").lower()]
    if span <= timedelta(0) or span > MAX_SINCE:
        raise UsageError(f"--since {text!r}: between one minute and {MAX_SINCE.days} days")
    return span


def shortcode(pk: int) -> str:
    """Instagram's shortcode (the `code` in /p/<code>/) of a media pk: the pk in base 64."""
    chars = []
    while pk:
        pk, rest = divmod(pk, 64)
        chars.append(SHORTCODE_ALPHABET[rest])
    return "".join(reversed(chars)) or "A"


def link(kind: str, pk: str, username: str | None) -> str | None:
    """The Instagram link of a liked item (a story's needs its owner's username)."""
    media = pk.split("_", 1)[0]
    if kind == "story":
        return f"https://www.instagram.com/stories/{username}/{media}/" if username else None
    return f"https://www.instagram.com/p/{shortcode(int(media))}/" if media.isdigit() else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def _throttled(outcome: str | None) -> bool:
    """The run started a cooldown (`throttled`; older records: `Throttled`)."""
    return (outcome or "").replace("_", "").lower() == "throttled"


def _waited(outcome: str | None) -> bool:
    """The run found a cooldown running and sent nothing."""
    return (outcome or "").replace("_", "").lower() == "coolingdown"


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


def segments(window: Window, zone: tzinfo) -> list[Segment]:
    """The window cut where the zone's UTC offset changes (daylight saving time, a zone's new rules): within each
    piece a time's local day is its UTC time plus one fixed offset, which the database adds as it groups by day."""

    def offset(at: datetime) -> int:
        delta = at.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    pieces, start = [], window.start
    while start < window.end:
        here, low = offset(start), start
        high = min(low + timedelta(days=1), window.end)
        while high < window.end and offset(high) == here:  # a day at a time to the next change, or the end
            low, high = high, min(high + timedelta(days=1), window.end)
        if offset(high) == here:  # no change before the end (``high`` is the end)
            pieces.append(Segment(start, window.end, here))
            break
        while high - low > timedelta(microseconds=1):  # the first instant of the new offset
            middle = low + (high - low) / 2
            low, high = (middle, high) if offset(middle) == here else (low, middle)
        pieces.append(Segment(start, high, here))
        start = high
    return pieces


def report_data(store: Store, settings: Settings, account: str, *, window: Window) -> dict[str, Any]:
    """Likes per day and per target, cooldowns, the targets never liked or not checked, requests per day."""
    zone = settings.zone
    targets = store.targets(account, enabled_only=False)
    names = {t.user_pk: t.username for t in targets if t.user_pk}
    first, last = window.start.astimezone(zone).date(), window.end.astimezone(zone).date()
    days: dict[date, dict[str, Any]] = {}
    day = first
    while day <= last:
        days[day] = {
            "date": day.isoformat(),
            "story_likes": 0,
            "post_likes": 0,
            "requests": 0,
            "runs": 0,
            "cooldowns_started": 0,
        }
        day += timedelta(days=1)
    per_target: dict[str, Counter[str]] = {}
    pieces = segments(window, zone)
    for (kind, day_text), n in store.likes_per_day(account, pieces).items():
        entry = days.get(date.fromisoformat(day_text))
        if entry is not None:
            entry[f"{kind}_likes"] += n
    for (kind, user), n in sorted(store.likes_per_target(account, window.start, window.end).items()):
        per_target.setdefault(names.get(user, str(user)), Counter())[f"{kind}_likes"] += n
    waited = 0
    for day_text, runs in store.runs_per_day(account, pieces).items():
        entry = days.get(date.fromisoformat(day_text))
        if entry is not None:
            entry["runs"] += runs.runs
            entry["requests"] += runs.requests
            entry["cooldowns_started"] += runs.throttled
        waited += runs.waited
    blocks = [
        {"at": _iso(at), "command": command} for at, command in store.throttled_runs(account, window.start, window.end)
    ]
    for t in targets:
        if t.enabled:
            per_target.setdefault(t.username, Counter())
    liked_ever = store.liked_target_pks(account)
    enabled = [t for t in targets if t.enabled]
    state = store.account(account, create=False)
    cooling = state.cooldown_until is not None and state.cooldown_until > window.end
    return {
        "account": account,
        "since": _iso(window.start),
        "until": _iso(window.end),
        "timezone": str(zone),
        "story_likes": sum(d["story_likes"] for d in days.values()),  # likes this tool sent
        "post_likes": sum(d["post_likes"] for d in days.values()),
        "found_already_liked": store.found_liked_between(account, window.start, window.end),  # not counted above
        "requests": sum(d["requests"] for d in days.values()),
        "runs": sum(d["runs"] for d in days.values()),
        "per_day": list(days.values()),
        "per_target": [
            {"username": name, "story_likes": c["story_likes"], "post_likes": c["post_likes"]}
            for name, c in sorted(per_target.items(), key=lambda item: (-sum(item[1].values()), item[0]))
        ],
        "cooldowns": {
            "started": blocks,
            "runs_that_waited": waited,
            "now": ({"until": _iso(state.cooldown_until), "reason": state.cooldown_reason} if cooling else None),
        },
        "never_liked": [t.username for t in enabled if t.user_pk is None or t.user_pk not in liked_ever],
        "not_checked": [
            {"username": t.username, "why": why, "stories_checked_at": _iso(t.story_checked_at)}
            for t in enabled
            if (why := not_checked_because(t, settings, window.end))
        ],
        "story_retention_hours": settings.story_retention_hours,
        "run_retention_days": settings.run_retention_days,
    }


def not_checked_because(t: Target, settings: Settings, now: datetime) -> str | None:
    """Why an enabled target's stories were not checked as often as STORY_RECHECK_HOURS wants (None: they were)."""
    if t.user_pk is None:
        return "no user id yet"
    skip = planning.unavailable_skip(t, now)
    if skip is not None:
        return "private and not followed" if skip == planning.Skip.PRIVATE else "not found"
    if t.story_checked_at is None:
        return "never checked"
    if planning.is_due(t.story_checked_at, now, settings.story_recheck):
        return f"not checked within {settings.story_recheck_hours:g} h"
    return None


def report_text(data: dict[str, Any], *, bars: bool) -> str:
    """The report for a person; ``bars``: a compact bar chart of likes per day (a terminal)."""
    days = data["per_day"]
    widest = max((d["story_likes"] + d["post_likes"] for d in days), default=0)
    lines = [
        f"{data['account']}: {data['story_likes']} story likes, {data['post_likes']} post likes, "
        f"{data['requests']} requests in {data['runs']} runs since {data['since']}",
        _found_line(data),
    ]
    lines.append("likes per day (stories + posts), requests")
    for d in days:
        total = d["story_likes"] + d["post_likes"]
        bar = ""
        if bars:
            bar = ("█" * round(30 * total / widest) if widest else "").ljust(30) + " "
        cooldowns = f", {d['cooldowns_started']} cooldown(s) started" if d["cooldowns_started"] else ""
        lines.append(
            f"  {d['date']}  {bar}{total:4} ({d['story_likes']} + {d['post_likes']})"
            f"  {d['requests']} requests{cooldowns}"
        )
    lines.append("per target (stories, posts)")
    for t in data["per_target"]:
        lines.append(f"  {t['username']:30} {t['story_likes']:5} {t['post_likes']:5}")
    cooldowns = data["cooldowns"]
    lines.append(
        f"cooldowns    {len(cooldowns['started'])} started, {cooldowns['runs_that_waited']} runs waited in one"
        + (f"; running until {cooldowns['now']['until']} ({cooldowns['now']['reason']})" if cooldowns["now"] else "")
    )
    lines.append("never liked  " + (", ".join(data["never_liked"]) or "none"))
    lines.append("not checked  " + (", ".join(f"{t['username']} ({t['why']})" for t in data["not_checked"]) or "none"))
    if data["story_likes"] or days:
        lines.append(
            f"(story records are kept {data['story_retention_hours']:g} h: story likes before that are not counted)"
        )
    if window_days(data) > data["run_retention_days"]:
        lines.append(
            f"(run records are kept {data['run_retention_days']:g} days: runs and requests before that are not counted)"
        )
    return "\n".join(lines)


def window_days(data: dict[str, Any]) -> float:
    """How many days the report's window spans."""
    span = datetime.fromisoformat(data["until"]) - datetime.fromisoformat(data["since"])
    return span / timedelta(days=1)


def report_rich(data: dict[str, Any]) -> Any:
    """The same report as a rich renderable, for a terminal: a bar chart of likes per day."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    days = data["per_day"]
    widest = max((d["story_likes"] + d["post_likes"] for d in days), default=0)
    chart = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    for column, justify in (("day", "left"), ("likes", "left"), ("stories", "right"), ("posts", "right")):
        chart.add_column(column, justify=justify)  # type: ignore[arg-type]
    chart.add_column("requests", justify="right")
    for d in days:
        stories, posts = d["story_likes"], d["post_likes"]
        width = 30
        bar = Text()
        if widest:
            bar.append("█" * round(width * stories / widest), style="magenta")
            bar.append("█" * round(width * posts / widest), style="cyan")
        bar.append(f" {stories + posts}")
        chart.add_row(d["date"], bar, str(stories), str(posts), str(d["requests"]))
    rest = report_text(data, bars=False).splitlines()
    per_target_at = rest.index("per target (stories, posts)")
    return Group(Text(rest[0], style="bold"), Text(rest[1]), chart, Text("\n".join(rest[per_target_at:])))


def history_data(store: Store, account: str, *, target: str | None, limit: int) -> list[dict[str, Any]]:
    """What was liked and when, newest first, with the Instagram link of each item."""
    targets = store.targets(account, enabled_only=False)
    names = {t.user_pk: t.username for t in targets if t.user_pk}
    user_pk = None
    if target is not None:
        found = next((t for t in targets if t.username == target), None)
        if found is None:
            raise UsageError(f"{target} is not a target")
        if found.user_pk is None:
            return []
        user_pk = found.user_pk
    rows = store.liked_history(account, target_user_pk=user_pk, limit=limit)
    return [
        {
            "kind": kind,
            "target": names.get(user, str(user)),
            "liked_at": _iso(liked_at),
            "taken_at": _iso(taken_at),
            "pk": pk,
            "url": link(kind, pk, names.get(user)),
        }
        for kind, pk, user, liked_at, taken_at in rows
    ]


def history_text(items: list[dict[str, Any]]) -> str:
    if not items:
        return "nothing liked yet"
    return "\n".join(
        f"{i['liked_at']}  {i['kind']:5} {i['target']:30} {i['url'] or '(pk ' + i['pk'] + ')'}" for i in items
    )


def _found_line(data: dict[str, Any]) -> str:
    found = data["found_already_liked"]
    return (
        f"found already liked (in the app, not counted as likes): {found.get('story', 0)} stories, "
        f"{found.get('post', 0)} posts"
    )


def digest_text(data: dict[str, Any]) -> str:
    """The daily summary: likes per target, cooldowns, targets not checked."""
    lines = [
        f"Since {data['since']}: {data['story_likes']} story likes, {data['post_likes']} post likes "
        f"({_found_line(data)})."
    ]
    liked = [t for t in data["per_target"] if t["story_likes"] or t["post_likes"]]
    for t in liked:
        lines.append(f"- {t['username']}: {t['story_likes']} stories, {t['post_likes']} posts")
    cooldowns = data["cooldowns"]
    lines.append(
        f"Cooldowns started: {len(cooldowns['started'])}; runs that waited in one: {cooldowns['runs_that_waited']}."
    )
    if cooldowns["now"]:
        lines.append(f"A cooldown runs until {cooldowns['now']['until']} ({cooldowns['now']['reason']}).")
    if data["not_checked"]:
        lines.append("Not checked: " + ", ".join(f"{t['username']} ({t['why']})" for t in data["not_checked"]))
    lines.append(f"Requests to Instagram: {data['requests']} in {data['runs']} runs.")
    return "\n".join(lines)
