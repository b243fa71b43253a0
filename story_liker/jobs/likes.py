"""What a story and a post pass share: the lease-first preamble and the like step."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from story_liker import health, planning, ratelimit
from story_liker import limits as like_limits
from story_liker.errors import (
    BadResponse,
    DatabaseUnavailable,
    Gone,
    NeedsHuman,
    NetworkError,
    SessionExpired,
    Throttled,
    ThrottleKind,
)
from story_liker.ig.types import StoryItem
from story_liker.jobs.deps import Deps, Outcome, Report, outside_active_hours
from story_liker.jobs.lease import lease
from story_liker.jobs.maintenance import prune_expired
from story_liker.jobs.pacing import Paced
from story_liker.jobs.session import check_account, with_instagram
from story_liker.jobs.targets import sync_targets
from story_liker.models import STORY_LIKE, Target

log = logging.getLogger(__name__)


@dataclass
class Likes:
    """The like step of one pass: send, record at once, and what Instagram's answers mean for the account."""

    deps: Deps
    kind: str  # prefixes the log events: "story" or "post"
    dry_run: bool
    strikes: int  # throttles in a row before this pass (read under the lease)
    limit_kind: str = ""  # story_like / post_like: whose limits a like counts against, whose share a block halves
    aimd: float = 1.0  # the adaptive share in force for that kind
    limits: ratelimit.Limits | None = None  # the limits in force: their 10-minute window paces the likes
    recent: list[datetime] = field(default_factory=list)  # when the likes that count in the windows were sent
    rejected_in_row: int = 0
    window_closed: bool = False  # ACTIVE_HOURS ended, or the pass's time is up: no more likes
    sent: set[str] = field(default_factory=set)  # pks whose like this pass sent (or would have, dry): maybe acted on
    refused: set[str] = field(default_factory=set)  # pks Instagram refused this pass: tried again next pass
    unreleased: list[int] = field(default_factory=list)  # reservations whose release failed: tried at the end
    _reserved: dict[int, datetime] = field(default_factory=dict)  # this pass's reservations: when each was made
    last_sent: datetime | None = None  # when this pass last sent a like (the pause between likes counts from it)
    unseen: dict[int, list[tuple[StoryItem, datetime]]] = field(default_factory=dict)  # watched, not yet reported

    def may_go_on(self, *, budget: bool = True) -> bool:
        """False once the active hours ended or the pass's time budget has no room for another like: the pass stops
        liking (what it read stays read; what it did not like waits for the next pass). ``budget=False``: the like
        of a story already on screen, whose time was counted when it came; the active hours still hold."""
        settings = self.deps.settings
        if self.window_closed:
            return False
        if not planning.is_active(self.deps.clock(), settings.active_hours, settings.zone):
            self.window_closed = True
            log.info("active_hours_ended", extra={"kind": self.kind})
        elif budget and not self.dry_run and not self.deps.fits(planning.like_cost(settings, watched=self.watched)):
            self.window_closed = True
            log.info("pass_time_up", extra={"kind": self.kind, "budget_minutes": settings.pass_budget_minutes})
        return not self.window_closed

    def has_room(self) -> bool:
        """Whether one more like fits the 10-minute window now (no wait)."""
        if self.limits is None or self.dry_run:
            return True
        now = self.deps.clock()
        return ratelimit.burst_room_at(now, self.recent, self.limits) <= now

    def room(self, wanted: int = 1, *, partial: bool = False) -> bool:
        """Make room for ``wanted`` more likes in the 10-minute window (STORY/POST_LIKES_PER_10_MINUTES): at once
        when they fit, else by waiting for it while the pass's time budget allows; past that the pass stops liking
        and leaves the rest to the next pass (False). ``partial``: when the wait for all of them does not fit, the
        room there is now will do. A dry run sends no like and never waits."""
        if self.limits is None or self.dry_run:
            return not self.window_closed
        deps, now = self.deps, self.deps.clock()
        ready_at = ratelimit.burst_room_at(now, self.recent, self.limits, wanted)
        if ready_at <= now:
            return not self.window_closed
        if not self.may_go_on():
            return False
        wait = (ready_at - now).total_seconds()
        if not deps.fits(wait + planning.like_cost(deps.settings, watched=self.watched)):
            if partial and self.has_room():
                return True
            self.window_closed = True
            log.info(
                "burst_limit_reached",
                extra={"kind": self.kind, "per_10_minutes": self.limits.per_10_minutes, "next_slot": _iso(ready_at)},
            )
            return False
        log.info(
            "burst_wait",
            extra={"kind": self.kind, "seconds": round(wait, 1), "per_10_minutes": self.limits.per_10_minutes},
        )
        deps.wait_until(ready_at)
        return self.may_go_on()

    @property
    def watched(self) -> bool:
        """Whether an item is watched before its like (stories), which a like's time then includes."""
        return self.limit_kind == STORY_LIKE

    def pause(self, low: float, high: float) -> None:
        """A pause that stands in for liking (before a like, between the targets liked): a dry run sends no like,
        so it skips the wait and only checks that the run may go on; the requests keep their own pacing."""
        if self.dry_run:
            self.deps.checkpoint()
            return
        self.deps.pause(low, high)

    def one(
        self,
        pk: str,
        fields: dict[str, Any],
        *,
        ready: Callable[[], None],
        send: Callable[[], None],
        record: Callable[[bool], Any],
        on_screen: bool = False,
    ) -> bool:
        """One like of the item ``pk``; returns whether the item is handled (liked, or gone).

        The one place that makes sure a pass never sends two likes for one item, whatever gathered it twice.
        ``ready`` waits for the request's turn (Paced.ready); then the like counts against the limits before it
        is sent (Store.reserve_like), so one Instagram acted on always counts; a sure refusal takes it back, a lost
        answer leaves it (the next pass never sends that like again blindly). ``record(handled_only)`` files the
        item: as liked once Instagram confirmed it, as handled (not liked) when it is gone. A like Instagram did
        not confirm is tried again next pass; after health.BREAKER_THRESHOLD refusals in a row the pass stops with
        a cooldown. One Instagram confirmed but the database could not take is named in the log. ``on_screen``: the
        item is on screen for this like (a story), which the caller let begin only while the pass could go on."""
        deps, counts, kind = self.deps, self.deps.counts, self.kind
        if not self.may_go_on(budget=not on_screen):  # ``on_screen``: its time was counted when the item came
            return False
        if pk in self.sent:
            log.error(f"{kind}_like_repeated", extra=fields | {"outcome": "skipped", "reason": "liked in this pass"})
            return False
        if pk in self.refused:
            log.debug(f"{kind}_like_not_again", extra=fields | {"outcome": "skipped", "reason": "refused this pass"})
            return False
        if self.dry_run:
            self.sent.add(pk)
            counts.would_like += 1
            log.info(f"{kind}_would_like", extra=fields | {"outcome": "dry_run"})
            return True
        if not self.room():
            return False
        ready()
        store, account, at = deps.store, deps.settings.account(), deps.clock()
        reserved = store.reserve_like(account, self.limit_kind, pk, at)
        self.sent.add(pk)
        self.recent.append(at)
        self._reserved[reserved] = at
        self.last_sent = at
        try:
            send()
        except Gone as exc:
            self._release(reserved, pk)
            record(True)
            counts.gone += 1
            log.info(f"{kind}_gone", extra=fields | {"outcome": "gone", "reason": exc.message})
            return True
        except Throttled as exc:
            self._release(reserved, pk, refused=True)
            if exc.kind is ThrottleKind.FEEDBACK_REQUIRED and self.limit_kind:
                self._halve_limits()
            raise
        except NetworkError as exc:
            if exc.answered:  # Instagram answered an error: it did not act
                self._release(reserved, pk, refused=True)
            else:
                log.warning(f"{kind}_like_unconfirmed", extra=fields | {"outcome": "unconfirmed"})
            raise
        except BadResponse as exc:
            self._release(reserved, pk, refused=True)
            counts.errors += 1
            self.rejected_in_row += 1
            log.warning(f"{kind}_like_failed", extra=fields | {"outcome": "skipped", "reason": exc.message})
            if health.breaker_open(self.rejected_in_row):
                raise Throttled(
                    f"Instagram refused {self.rejected_in_row} likes in a row (last: {exc.message})",
                    kind=ThrottleKind.REJECTED,
                ) from None
            return False
        except NeedsHuman:  # Instagram answered with a challenge: no like
            self._release(reserved, pk, refused=True)
            raise
        except SessionExpired:  # the session died, not the like: the re-login's second run may send it
            self._release(reserved, pk)
            raise
        self.rejected_in_row = 0
        try:
            record(False)
        except DatabaseUnavailable:
            log.error(f"{kind}_like_not_recorded", extra=fields | {"outcome": "liked_not_recorded"})
            raise
        counts.liked += 1
        log.info(f"{kind}_liked", extra=fields | {"outcome": "liked"})
        if self.strikes:
            self.strikes = health.strikes_after(self.strikes, health.Event.LIKE_ACCEPTED)
            store.clear_cooldown_strikes(account)
        return True

    def _release(self, reserved: int, pk: str, *, refused: bool = False) -> None:
        """A like Instagram surely did not act on stops counting, and is no like this pass sent (``refused``: it
        is not tried again before the next pass). Should the database fail here, the release is tried again at the
        end of the pass (``release_pending``) and the error Instagram gave stays the one that ends the pass."""
        self.sent.discard(pk)
        if refused:
            self.refused.add(pk)
        at = self._reserved.pop(reserved, None)
        if at is not None:  # no longer one of the likes the windows count
            self.recent.remove(at)
        try:
            self.deps.store.release_like(reserved)
        except DatabaseUnavailable:
            self.unreleased.append(reserved)
            log.warning("like_not_released", extra={"kind": self.kind, "retry": "at the end of the pass"})

    def release_pending(self) -> None:
        """The releases that failed, once more: left over, each would count a like that was not, and read as one
        whose answer was lost (never sent again when Instagram does not say it is not liked)."""
        for reserved in list(self.unreleased):
            try:
                self.deps.store.release_like(reserved)
            except DatabaseUnavailable:
                log.warning("like_not_released", extra={"kind": self.kind, "retry": "none"})
                continue
            self.unreleased.remove(reserved)

    def _halve_limits(self) -> None:
        """An action block: the limits of this kind of like are halved (ratelimit.after_block). The block itself
        decides the pass: a database failure here is logged and the block goes on to its cooldown."""
        deps, factor = self.deps, ratelimit.after_block(self.aimd)
        try:
            deps.store.set_limit_state(deps.settings.account(), self.limit_kind, factor=factor, changed_at=deps.clock())
        except DatabaseUnavailable:
            log.warning("limits_not_reduced", extra={"kind": self.limit_kind, "reason": "database unavailable"})
            return
        log.warning("limits_reduced", extra={"kind": self.limit_kind, "share": round(factor, 3)})

    @property
    def attempted(self) -> set[str]:
        """The pks this pass sent or had refused: none is sent again in this pass."""
        return self.sent | self.refused


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


PassBody = Callable[[Deps, Paced, list[Target], int, Likes], Outcome]


def like_pass(deps: Deps, kind: str, body: PassBody, *, dry_run: bool, max_likes: int | None) -> Report:
    """What a story or post pass does before Instagram, all of it under the lease: the account's flags,
    the targets, the like budget. With no target or no budget left, Instagram is not contacted at all.
    ``body`` gets the targets, how many likes it may send and the like step, and returns the outcome.
    """
    account, settings = deps.settings.account(), deps.settings
    closed = outside_active_hours(deps)
    if closed is not None:
        return closed
    with lease(deps):
        prune_expired(deps, dry_run=dry_run)  # what expired, a bounded batch: no `cleanup` timer needed
        deps.start_budget(settings.pass_budget_minutes)
        state = deps.store.account(account)
        check_account(deps, state)
        targets = sync_targets(deps)
        deps.counts.targets = len(targets)
        if not targets and not (settings.follow_everyone and kind == STORY_LIKE):  # `*` reads the tray first
            log.info("nothing_to_do", extra={"reason": "no enabled targets: set TARGET_ACCOUNTS or `accounts add`"})
            return Report(Outcome.NOTHING_TO_DO, deps.counts)
        now = deps.clock()
        limits = like_limits.in_force(
            deps.store, settings, state, kind, like_limits.configured(settings, kind), now
        ).limits
        recent = deps.store.recent_actions(account, kind, now)
        allowed = ratelimit.budget(now, recent, limits).remaining
        if max_likes is not None:
            allowed = min(allowed, max_likes)
        if allowed == 0 and not dry_run:
            next_slot = ratelimit.next_slot(now, recent, limits)
            log.info("budget_used_up", extra={"next_slot": _iso(next_slot)})
            return Report(Outcome.BUDGET_USED_UP, deps.counts)
        aimd = like_limits.aimd(deps.store, account, kind, now)
        likes = Likes(deps, kind.removesuffix("_like"), dry_run, state.cooldown_strikes, kind, aimd, limits, recent)
        bodies = 0

        def run(ig: Paced) -> Outcome:
            """The pass. Should the session expire and the single re-login run it again, that second run starts
            from what the first one stored (its targets' check times and markers) and from what its likes left of
            the budget (they count from before they were sent): never a second allowance in one pass."""
            nonlocal bodies
            bodies += 1
            if bodies == 1:
                return body(deps, ig, targets, allowed, likes)
            now = deps.clock()
            left = ratelimit.budget(now, deps.store.recent_actions(account, kind, now), limits).remaining
            if dry_run:  # a dry run counts nothing in the database
                left = max(0, allowed - len(likes.sent))
            if max_likes is not None:
                left = min(left, max(0, max_likes - len(likes.sent)))
            return body(deps, ig, deps.store.targets(account), left, likes)

        try:
            outcome = with_instagram(deps, run)
        finally:
            likes.release_pending()
        return Report(outcome, deps.counts)
