"""Every Instagram request is paced and guarded, reads included.

``Paced`` wraps the adapter: before each call it leaves a small jittered gap after the previous request
(REQUEST_DELAY_MIN/MAX_SECONDS; a longer pause the job already took counts towards it), then stops on a
pending signal and checks the lease. The jobs add the longer, person-like pauses between targets and likes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from story_liker import ratelimit
from story_liker.ig.types import Instagram, PostItem, StoryItem, TrayEntry, TrayReason, UserRef
from story_liker.jobs.deps import Deps

T = TypeVar("T")


class Paced:
    """`Instagram`, with a gap before each request and the run's guards (signal, lease) checked first."""

    def __init__(self, ig: Instagram, deps: Deps, *, last_contact: datetime | None = None) -> None:
        self.ig = ig
        self.deps = deps
        self._last: datetime | None = None
        self._before = last_contact  # the account's last contact with Instagram before this run, as stored
        self._ready = False

    @property
    def last_request(self) -> datetime | None:
        """When this account last sent a request: this run's last one, else its last contact before the run."""
        return self._last or self._before

    def ready(self) -> None:
        """Wait out the gap after the previous request, then check the run may go on (no signal, the lease still
        ours). Every request does this first; a step that must act only once the next request surely goes out
        (the like step counts a like before it is sent) calls it itself, and the request then goes at once."""
        if self._ready:
            return
        deps, settings = self.deps, self.deps.settings
        if self._last is not None:
            gap = ratelimit.jitter(deps.rng, settings.request_delay_min_seconds, settings.request_delay_max_seconds)
            waited = (deps.clock() - self._last).total_seconds()
            deps.sleep(gap - waited)
        deps.checkpoint()
        deps.keep_lease()
        self._ready = True

    def _send(self, call: Callable[[], T]) -> T:
        self.ready()
        self._ready = False
        try:
            return call()
        finally:
            self._last = self.deps.clock()

    @property
    def requests_sent(self) -> int:
        return self.ig.requests_sent

    @property
    def malformed(self) -> int:
        return self.ig.malformed

    @property
    def user_pk(self) -> int | None:
        return self.ig.user_pk

    def reels_tray(self, reason: TrayReason) -> list[TrayEntry]:
        return self._send(lambda: self.ig.reels_tray(reason))

    def reels_media(self, user_pks: Sequence[int]) -> dict[int, list[StoryItem]]:
        return self._send(lambda: self.ig.reels_media(user_pks))

    def user_stories(self, user_pk: int) -> list[StoryItem]:
        return self._send(lambda: self.ig.user_stories(user_pk))

    def following_page(self, max_id: str | None) -> tuple[list[UserRef], str | None]:
        return self._send(lambda: self.ig.following_page(max_id))

    def lookup(self, username: str) -> UserRef:
        return self._send(lambda: self.ig.lookup(username))

    def mark_seen(self, stories: Sequence[StoryItem], seen_at: Sequence[int]) -> None:
        self._send(lambda: self.ig.mark_seen(stories, seen_at))

    def like_story(self, story: StoryItem) -> None:
        self._send(lambda: self.ig.like_story(story))

    def user_posts(self, user_pk: int, count: int, max_id: str | None = None) -> tuple[list[PostItem], str | None]:
        return self._send(lambda: self.ig.user_posts(user_pk, count, max_id))

    def timeline_page(self, max_id: str | None) -> tuple[list[PostItem], str | None]:
        return self._send(lambda: self.ig.timeline_page(max_id))

    def like_post(self, post: PostItem) -> None:
        self._send(lambda: self.ig.like_post(post))

    def ping(self) -> UserRef:
        return self._send(self.ig.ping)

    def relogin(self) -> None:
        self._send(self.ig.relogin)

    def dump_settings(self) -> dict[str, Any]:
        return self.ig.dump_settings()
