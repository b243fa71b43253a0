"""How long each kind of record is kept, and how much a like pass prunes: one reading for the passes, `cleanup`,
`status` and `doctor`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from story_liker.settings import Settings
from story_liker.store import Store

PRUNE_BATCH = 2000  # rows of each kind a like pass deletes at most: a short write, some 40 times a day's growth
PRUNE_PAGES = 2000  # free SQLite pages (4 KiB each) a like pass gives back at most
PRUNE_BACKLOG = 10 * PRUNE_BATCH  # expired rows from which on `status` (a problem) and `doctor` (a note) say so
STORY_LIFE = timedelta(hours=24)


@dataclass(frozen=True)
class Keep:
    """How long each kind of record is kept, from the settings. Nothing a pass or `report` still reads goes:
    story records for STORY_RETENTION_HOURS (a pass never goes below a story's 24 h: they say which were liked);
    action rows while they count against the limits (a day) and while the item they name may still be liked
    (its like's answer lost: never sent again blindly), a day past POST_MAX_AGE_DAYS; runs and delivered
    notifications for RUN_RETENTION_DAYS."""

    stories: timedelta
    actions: timedelta
    runs: timedelta

    @classmethod
    def of(cls, settings: Settings, *, stories_hours: float | None = None, floor: bool = True) -> Keep:
        stories = timedelta(hours=settings.story_retention_hours if stories_hours is None else stories_hours)
        if floor:
            stories = max(stories, STORY_LIFE)
        actions = max(timedelta(days=2), timedelta(days=settings.post_max_age_days) + timedelta(days=1))
        return cls(stories, actions, timedelta(days=settings.run_retention_days))

    def before(self, now: datetime) -> dict[str, datetime]:
        return {
            "stories_before": now - self.stories,
            "actions_before": now - self.actions,
            "runs_before": now - self.runs,
        }


def backlog(store: Store, account: str, settings: Settings, now: datetime) -> int:
    """How many expired rows wait for the passes to prune them (counted up to PRUNE_BACKLOG of each kind)."""
    return store.expired(account, cap=PRUNE_BACKLOG, **Keep.of(settings).before(now))
