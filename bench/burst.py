"""The story like step of release 0.4.0, kept as the comparator of the pacing bench (bench/pacing.py), as
bench/naive.py keeps the naive script: per target one seen report that claims the reel was watched in the
seconds before it was sent, then the likes, as fast as the action delays allow.

``like_all`` is ``story_liker.jobs.stories._like_all`` and ``seen_times`` is ``story_liker.planning.seen_times``
as they were in 0.4.0, word for word but for the names; the bench patches ``like_all`` in for
``stories._like_all`` to run the week with 0.4.0's pacing on today's passes.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from story_liker.errors import BadResponse
from story_liker.ig.types import StoryItem
from story_liker.store import liked_stories

if TYPE_CHECKING:
    from story_liker.jobs.deps import Deps
    from story_liker.jobs.likes import Likes
    from story_liker.jobs.pacing import Paced
    from story_liker.models import Target

log = logging.getLogger("story_liker.jobs.stories")  # the logger it had, so the bench quiets it the same way


def seen_times(stories: Sequence[StoryItem], now: datetime, rng: random.Random) -> list[int]:
    """When a viewer watching these stories in order saw each: a few seconds apart, rising, the last one now,
    none before its story was taken and none in the future (unix seconds, in the order given)."""
    if not stories:
        return []
    stamps = [0] * len(stories)
    at = int(now.timestamp())
    for index in range(len(stories) - 1, -1, -1):
        taken = int(stories[index].taken_at.timestamp())
        stamps[index] = max(min(at, int(now.timestamp())), taken)
        at = stamps[index] - rng.randint(3, 9)  # the story before was watched a few seconds earlier
    for index in range(1, len(stamps)):  # clamping to taken_at may break the order: keep it rising
        stamps[index] = max(stamps[index], stamps[index - 1])
    return stamps


def like_all(
    deps: Deps,
    ig: Paced,
    likes: Likes,
    by_pk: dict[int, Target],
    chosen: list[StoryItem],
    *_: Any,
    **__: Any,  # what a later _like_all takes beyond these: 0.4.0's step does not use it
) -> set[str]:
    """Per target, as a viewer would: one seen request for the stories about to be liked, then the likes.
    Returns the pks handled (liked, or counted as such in a dry run)."""
    per_target: dict[int, list[StoryItem]] = {}
    for item in chosen:
        per_target.setdefault(item.user_pk, []).append(item)
    settings, counts = deps.settings, deps.counts
    done: set[str] = set()
    deps.progress.start(len(per_target), "liking stories")
    try:
        for index, (pk, items) in enumerate(per_target.items()):
            target = by_pk[pk]
            if not likes.may_go_on():
                break
            if index:
                likes.pause(settings.target_delay_min_seconds, settings.target_delay_max_seconds)
            deps.progress.advance(target.username)
            if not likes.dry_run:
                try:
                    ig.mark_seen(items, seen_times(items, deps.clock(), deps.rng))
                except BadResponse as exc:  # the likes do not depend on it
                    counts.errors += 1
                    log.warning("seen_failed", extra={"target": target.username, "reason": exc.message})
            for item in items:
                if not likes.may_go_on():
                    break
                likes.pause(settings.action_delay_min_seconds, settings.action_delay_max_seconds)
                if _like(deps, ig, likes, target, item) and not likes.dry_run:
                    done.add(item.pk)
    finally:
        deps.progress.stop()
    return done


def _like(deps: Deps, ig: Paced, likes: Likes, target: Target, story: StoryItem) -> bool:
    return likes.one(
        story.pk,
        {"target": target.username, "story_pk": story.pk},
        ready=ig.ready,
        send=lambda: ig.like_story(story),
        record=lambda handled_only: deps.store.record_stories(
            deps.settings.account(), liked_stories([story], skipped=handled_only), deps.clock(), counted=False
        ),
    )
