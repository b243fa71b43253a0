"""Which accounts a pass looks at: TARGET_ACCOUNTS synced into the database, user pks resolved cheaply."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from story_liker import health, planning
from story_liker.errors import BadResponse, NetworkError, StoryLikerError, TargetUnavailable
from story_liker.ig.types import Instagram, TrayEntry, UserRef
from story_liker.jobs.deps import Counts, Deps
from story_liker.models import Target
from story_liker.planning import read_cost, unavailable_skip

log = logging.getLogger(__name__)


def sync_targets(deps: Deps) -> list[Target]:
    """TARGET_ACCOUNTS (when set; `*` aside) is synced into the database; then the enabled targets are returned."""
    account, named = deps.settings.account(), deps.settings.named_targets
    if named is not None:
        everyone = deps.settings.follow_everyone
        added, disabled = deps.store.sync_targets(account, named, deps.clock(), everyone=everyone)
        if added or disabled:
            log.info("targets_synced", extra={"added": added, "disabled": disabled})
    return deps.store.targets(account)


def following(deps: Deps, ig: Instagram, max_pages: int, found: list[UserRef]) -> bool:
    """The own following list, one paced request per page, at most ``max_pages`` pages, each page's users added to
    ``found`` as it arrives (a failing later page keeps the earlier ones); returns whether it was read to its end
    (only then is a name missing from it known to be not followed)."""
    max_id: str | None = None
    for _ in range(max_pages):
        page, max_id = ig.following_page(max_id)
        found.extend(page)
        if not max_id:
            return True
    return False


def resolve_targets(
    deps: Deps, ig: Instagram, targets: Sequence[Target], known: dict[str, UserRef], counts: Counts
) -> list[Target]:
    """Give every target a user pk and a follow state, as cheaply as possible, storing each answer as it comes.

    ``known`` maps usernames to what this pass already learned for free (the reels tray: followed accounts).
    The own following list is walked once a day (one request per page of 200): it settles the follow state
    of every target (followed or not; "unknown" is never read as "followed") and most pks. A target whose pk is
    known is matched by its pk, so a rename is followed, not taken for an unfollow. What the tray and the walk
    taught is stored before the first lookup; each lookup's answer is stored as it arrives, so a pass cut short
    (a 5xx, a signal, a lost lease) keeps everything learned before it. The rest come from one lookup per
    remaining username, with the pause between targets before each; one that fails waits (planning.retry_at)
    while the others go on. Returns the targets the pass looks at: never the account itself.
    """
    now, settings, store = deps.clock(), deps.settings, deps.store
    by_name = dict(known)
    by_pk = _keyed(list(known.values()))
    account = store.account(settings.account())
    complete = walked = False
    failing = Failing(deps, "lookup")
    if settings.following_sync_max_pages and planning.walk_due(account, now):
        refs: list[UserRef] = []
        try:
            complete = following(deps, ig, settings.following_sync_max_pages, refs)
            walked = True
        except (BadResponse, NetworkError) as exc:  # tried again in an hour; the pass goes on, lookups fill gaps
            counts.errors += 1
            log.warning("following_skipped", extra={"reason": exc.message, "retry": "in an hour"})
            store.mark_following_failed(account.username, now)
            failing.in_row += isinstance(exc, NetworkError)  # one more network failure: Instagram out of reach?
        except BaseException:  # the pass ends here: what the pages before taught is kept all the same
            _store(
                deps,
                [(target, _learned(target, _named(refs) | by_name, _keyed(refs) | by_pk, False)) for target in targets],
            )
            raise
        by_name, by_pk = _named(refs) | by_name, _keyed(refs) | by_pk
    _store(deps, [(target, _learned(target, by_name, by_pk, complete)) for target in targets])
    if walked:
        store.mark_following_synced(account.username, now)
    looked_up = 0
    unresolved = [t for t in targets if t.user_pk is None and unavailable_skip(t, now, "lookup") is None]
    for index, target in enumerate(unresolved):
        assert target.id is not None
        if not deps.fits(read_cost(settings, first=not looked_up)):  # the rest are looked up first next pass
            log.info("lookups_stopped", extra={"reason": "the pass's time budget", "left": len(unresolved) - index})
            counts.deferred += len(unresolved) - index
            break
        if looked_up:
            deps.pause(settings.target_delay_min_seconds, settings.target_delay_max_seconds)
        looked_up += 1
        try:
            found = ig.lookup(target.username)
        except (TargetUnavailable, BadResponse, NetworkError) as exc:
            _store(deps, [(target, failing.failed(target, exc))])
            continue
        values: dict[str, Any] = {"user_pk": found.user_pk, "unavailable": None} | failing.ok(target)
        if found.followed is not None:
            values["followed"] = found.followed
        _store(deps, [(target, values)])
    own = account.user_pk or ig.user_pk
    mine = [t for t in targets if own is not None and t.user_pk == own]
    for target in mine:
        log.warning("target_is_own_account", extra={"target": target.username, "action": "skipped"})
    return [t for t in targets if t not in mine]


def targets_by_user(targets: Sequence[Target]) -> dict[int, Target]:
    """The targets by Instagram user; two rows naming one user (a rename added under its new name) are one, the
    first (the planners read it once, for that one: planning.Skip.SAME_USER)."""
    found: dict[int, Target] = {}
    for target in targets:
        if target.user_pk is not None:
            found.setdefault(target.user_pk, target)
    return found


def _named(refs: Sequence[UserRef]) -> dict[str, UserRef]:
    return {ref.username: ref for ref in refs}


def _keyed(refs: Sequence[UserRef]) -> dict[int, UserRef]:
    return {ref.user_pk: ref for ref in refs}


def _learned(target: Target, by_name: dict[str, UserRef], by_pk: dict[int, UserRef], complete: bool) -> dict[str, Any]:
    """What the tray and the following walk say of ``target``: its pk, follow state, a rename. A target with a pk
    is matched by it (a name may have changed hands); one without by its name."""
    values: dict[str, Any] = {}
    ref = by_pk.get(target.user_pk) if target.user_pk is not None else by_name.get(target.username)
    if ref is not None:
        if target.user_pk != ref.user_pk:
            values["user_pk"] = ref.user_pk
        if ref.followed is not None and target.followed is not ref.followed:
            values["followed"] = ref.followed
        current = None if ref.username == target.username else ref.username
        if current != target.current_name:
            values["current_name"] = current
            log.info("target_renamed", extra={"target": target.username, "now": ref.username})
    elif complete and target.followed is not False:
        values["followed"] = False  # not in the whole following list: not followed (any more)
    if values.get("followed") is False and target.managed_by == "tray":
        values["enabled"] = False  # found by TARGET_ACCOUNTS=*: no longer followed, no longer a target
    return values


def _store(deps: Deps, changes: Sequence[tuple[Target, dict[str, Any]]]) -> None:
    """Write what was learned about targets now, and keep the pass's own copies in step."""
    deps.store.update_targets({target.id: values for target, values in changes if target.id is not None and values})
    for target, values in changes:
        for name, value in values.items():
            setattr(target, name, value)


class Failing:
    """One target's failing request is that target's: recorded on it, retried later (planning.retry_at), and the
    pass goes on with the others. Each kind of request (``reading``: "lookup", "stories", "posts") backs off on its
    own: a profile that keeps failing waits longer each time though the target's stories read well. Only network
    failures of health.NETWORK_FAILURES_IN_ROW requests in a row end the pass: then Instagram itself is out of
    reach, and asking on would only repeat it."""

    def __init__(self, deps: Deps, reading: str) -> None:
        self.deps = deps
        self.reading = reading
        self.in_row = 0

    def ok(self, target: Target) -> dict[str, Any]:
        """The request went well: the values that end this kind's row of failures (none when there was none)."""
        self.in_row = 0
        return cleared(target, self.reading)

    def failed(self, target: Target, exc: StoryLikerError) -> dict[str, Any]:
        """The values to store for ``target`` after ``exc``; re-raises it when the network is out of reach."""
        now = self.deps.clock()
        if isinstance(exc, TargetUnavailable):  # a normal state, not an error: looked at again in a day
            self.in_row = 0
            if self.reading == "lookup" and exc.reason == "not_found":
                self.deps.counts.errors += 1  # but a name that never existed: likely a typo in the settings
            return unavailable(target, exc, now)
        self.deps.counts.errors += 1
        failures = target.failures + 1 if target.failing == self.reading else 1
        log.warning(
            "target_failed",
            extra={
                "target": target.username,
                "reading": self.reading,
                "reason": exc.message,
                "failures": failures,
                "retry": "backoff",
            },
        )
        values = {"last_error": exc.message[:200], "last_error_at": now, "failures": failures, "failing": self.reading}
        if isinstance(exc, NetworkError):
            self.in_row += 1
            if health.network_down(self.in_row):
                _store(self.deps, [(target, values)])
                raise exc
        else:
            self.in_row = 0
        return values


def cleared(target: Target, reading: str) -> dict[str, Any]:
    """A ``reading`` request of ``target`` went well: its row of failures ends (another kind's stays)."""
    if target.failing != reading:
        return {}
    return {"failures": 0, "failing": None, "last_error": None}


def unavailable(target: Target, exc: TargetUnavailable, now: datetime) -> dict[str, Any]:
    """A target Instagram says is private-not-followed or missing: a normal state, not an error, logged and
    returned as the target's values (planning.unavailable_skip leaves it alone for a day)."""
    state = "private" if exc.reason == "private" else "not_found"
    log.info("target_unavailable", extra={"target": target.username, "reason": state, "recheck": "daily"})
    return {"unavailable": state, "last_error": exc.message[:200], "last_error_at": now}


def adopt_from_tray(deps: Deps, tray: Sequence[TrayEntry]) -> list[Target]:
    """TARGET_ACCOUNTS=*: every followed account with stories in the tray is a target (no request beyond the
    tray). Returns the enabled targets, the adopted ones included."""
    settings, store = deps.settings, deps.store
    account = settings.account()
    added, back = store.adopt_targets(
        account, [(e.username, e.user_pk) for e in tray], settings.target_exclude, deps.clock()
    )
    if added or back:
        log.info("targets_adopted", extra={"added": added, "taken_back": back, "from": "tray"})
    return store.targets(account)
