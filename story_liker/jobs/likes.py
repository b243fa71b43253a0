"""What a story and a post pass share: the lease-first preamble and the like step."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from story_liker import health, ratelimit
from story_liker.errors import BadResponse, DatabaseUnavailable, Throttled, ThrottleKind
from story_liker.ig import Instagram
from story_liker.jobs.deps import Deps, Outcome, Report
from story_liker.jobs.lease import lease
from story_liker.jobs.session import check_account, with_instagram
from story_liker.jobs.targets import sync_targets
from story_liker.models import Target

log = logging.getLogger(__name__)


@dataclass
class Likes:
    """The like step of one pass: send, record at once, and what Instagram's answers mean for the account."""

    deps: Deps
    kind: str  # prefixes the log events: "story" or "post"
    dry_run: bool
    strikes: int  # throttles in a row before this pass (read under the lease)
    rejected_in_row: int = 0

    def one(self, fields: dict[str, Any], *, send: Callable[[], None], record: Callable[[], Any]) -> bool:
        """One like. A like Instagram did not confirm is skipped (tried again next pass); after
        health.BREAKER_THRESHOLD refusals in a row the pass stops with a cooldown. One Instagram confirmed but
        the database could not take is named in the log before the error ends the run."""
        deps, counts, kind = self.deps, self.deps.counts, self.kind
        if self.dry_run:
            counts.would_like += 1
            log.info(f"{kind}_would_like", extra=fields | {"outcome": "dry_run"})
            return True
        try:
            send()
        except BadResponse as exc:
            counts.errors += 1
            self.rejected_in_row += 1
            log.warning(f"{kind}_like_failed", extra=fields | {"outcome": "skipped", "reason": exc.message})
            if health.breaker_open(self.rejected_in_row):
                raise Throttled(
                    f"Instagram refused {self.rejected_in_row} likes in a row (last: {exc.message})",
                    kind=ThrottleKind.REJECTED,
                ) from None
            return False
        self.rejected_in_row = 0
        try:
            record()
        except DatabaseUnavailable:
            log.error(f"{kind}_like_not_recorded", extra=fields | {"outcome": "liked_not_recorded"})
            raise
        counts.liked += 1
        log.info(f"{kind}_liked", extra=fields | {"outcome": "liked"})
        if self.strikes:
            self.strikes = health.strikes_after(self.strikes, health.Event.LIKE_ACCEPTED)
            deps.store.clear_cooldown_strikes(deps.settings.account())
        return True


PassBody = Callable[[Deps, Instagram, list[Target], int, Likes], Outcome]


def like_pass(
    deps: Deps, kind: str, limits: ratelimit.Limits, body: PassBody, *, dry_run: bool, max_likes: int | None
) -> Report:
    """What a story or post pass does before Instagram, all of it under the lease: the account's flags,
    the targets, the like budget. With no target or no budget left, Instagram is not contacted at all.
    ``body`` gets the targets, how many likes it may send and the like step, and returns the outcome.
    """
    account = deps.settings.account()
    with lease(deps):
        state = deps.store.account(account)
        check_account(deps, state)
        targets = sync_targets(deps)
        deps.counts.targets = len(targets)
        if not targets:
            log.info("nothing_to_do", extra={"reason": "no enabled targets: set TARGET_ACCOUNTS or `accounts add`"})
            return Report(Outcome.NOTHING_TO_DO, deps.counts)
        now = deps.clock()
        recent = deps.store.recent_actions(account, kind, now)
        allowed = ratelimit.budget(now, recent, limits).remaining
        if max_likes is not None:
            allowed = min(allowed, max_likes)
        if allowed == 0 and not dry_run:
            next_slot = ratelimit.next_slot(now, recent, limits)
            log.info("budget_used_up", extra={"next_slot": next_slot.isoformat(timespec="seconds")})
            return Report(Outcome.BUDGET_USED_UP, deps.counts)
        likes = Likes(deps, kind.removesuffix("_like"), dry_run, state.cooldown_strikes)
        outcome = with_instagram(deps, lambda ig: body(deps, ig, targets, allowed, likes))
        return Report(outcome, deps.counts)
