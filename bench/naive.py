"""The usual hobby instagrapi script, as the baseline: look every target up, read, like everything.

It uses a real instagrapi ``Client`` pointed at the double the way ``story_liker/ig/adapter.py`` does, with
instagrapi's own defaults for everything the script itself calls (``story_like`` marks seen first).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.double import InstagramDouble


@dataclass
class NaiveRun:
    targets: int = 0
    items: int = 0
    likes: int = 0
    errors: int = 0


def client_for(double: InstagramDouble) -> Any:
    """``Client(private_transport="requests", with_challenge_flow=False)`` logged in to the double,
    set up exactly as the tests do (no pacing sleeps, no retries, one HTTP request per call)."""
    from tests.double import new_client

    return new_client(double, logged_in=True, timeout=10)


@contextmanager
def _quiet() -> Iterator[None]:
    """instagrapi logs every fallback with a traceback; the script's errors are counted instead."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)


def like_stories(double: InstagramDouble, usernames: Iterable[str]) -> NaiveRun:
    """Per target: user_id_from_username, user_stories, story_like (mark_seen=True) for each story.
    A Story has no has_liked field, so an already liked story is liked again."""
    client, run = client_for(double), NaiveRun()
    with _quiet():
        for name in usernames:
            run.targets += 1
            try:
                pk = client.user_id_from_username(name)
                for story in client.user_stories(pk):
                    run.items += 1
                    run.likes += bool(client.story_like(story.id))
            except Exception:  # the usual script: log and go on with the next target
                run.errors += 1
    return run


def like_posts(double: InstagramDouble, usernames: Iterable[str], count: int = 6) -> NaiveRun:
    """Per target: user_id_from_username, user_medias(pk, count), media_like for each media."""
    client, run = client_for(double), NaiveRun()
    with _quiet():
        for name in usernames:
            run.targets += 1
            try:
                pk = client.user_id_from_username(name)
                for media in client.user_medias(pk, count):
                    run.items += 1
                    run.likes += bool(client.media_like(media.id))
            except Exception:
                run.errors += 1
    return run
