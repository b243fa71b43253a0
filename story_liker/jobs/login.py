"""`login`: put a verified Instagram session into the database (password, settings file or sessionid)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from story_liker import health, vault
from story_liker.errors import (
    ConfigError,
    Interrupted,
    NeedsHuman,
    NoInput,
    StoryLikerError,
    UndecryptableSession,
    UsageError,
    is_password_rejected,
)
from story_liker.jobs.deps import Deps, Outcome, Report
from story_liker.jobs.lease import lease
from story_liker.jobs.session import connection_for, store_session

if TYPE_CHECKING:
    from story_liker.ig.types import Client, UserRef

log = logging.getLogger(__name__)


def read_settings_file(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the settings file {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"the settings file {path} is not JSON ({type(exc).__name__})") from None
    return vault.validate_settings(raw)


def login(
    deps: Deps,
    *,
    settings_file: Path | None,
    sessionid: str | None,
    password_prompt: Callable[[int], str] | None,
    code_prompt: Callable[[], str] | None,
    challenge_prompt: Callable[[str], str] | None,
    replace_undecryptable: bool = False,
) -> Report:
    """Log in once and store the session; the stored one is replaced only after Instagram accepted the new one.

    A person runs this, so no login backoff applies to its first try; a password they typed at the terminal
    (``password_prompt``, given the try's number) and Instagram rejected may be asked again as
    health.login_retry says. A success clears needs-human and the failed logins.
    """
    settings, store = deps.settings, deps.store
    account = settings.account()
    imported = read_settings_file(settings_file) if settings_file else None
    if sessionid is not None and (len(sessionid) < 30 or not sessionid[:1].isdigit()):
        raise UsageError("that sessionid does not look like an Instagram sessionid (digits first, 30+ characters)")
    key = settings.encryption_key
    counts = deps.counts
    with lease(deps, timedelta(minutes=15)):
        state = store.account(account)
        stored = None if imported else _stored(state.settings, state.settings_encrypted, key, replace_undecryptable)
        method = None
        user_pk: int | None = None  # the Instagram user the new session is, as Instagram answered
        try:
            conn = replace(connection_for(settings, account, imported or stored), challenge_prompt=challenge_prompt)
            typed = not imported and not sessionid and not conn.password
            if typed:
                if password_prompt is None:
                    raise ConfigError("IG_PASSWORD (or IG_PASSWORD_FILE) is not set and there is no terminal to ask")
                conn = replace(conn, password=password_prompt(1))
            ig = deps.connect(conn)
            if imported:
                who = ig.ping()  # one light request proves the imported session and says whose it is
                counts.requests = ig.requests_sent
                method = "settings_file"
                user_pk = own_session(account, who, claimed=ig.user_pk)
            else:
                if stored is None:  # a new device: stored before its first login attempt, never made twice
                    store_session(deps, ig.dump_settings(), login=False, has_session=False, user_pk=None)
                if sessionid:
                    who = ig.login_by_sessionid(sessionid)
                    counts.requests = ig.requests_sent
                    method = "sessionid"
                    user_pk = own_session(account, who, claimed=None)
                else:
                    method = "password"
                    device = conn.settings if conn.settings is not None else ig.dump_settings()
                    tries = _Tries(deps, state.login_failures, ig, typed=typed)
                    while not tries.one(code_prompt):
                        assert password_prompt is not None  # login_retry: only a typed password is asked again
                        retry = replace(conn, settings=device, password=password_prompt(tries.made + 1))
                        tries.ig = deps.connect(retry)  # the same device
                    ig = tries.ig
                    # IG_USERNAME itself was the login's name; the user pk it answered with (the authorization)
                    # may still be an account row's under another name: save_session refuses that
                    user_pk = ig.user_pk
            if not store_session(deps, ig.dump_settings(), login=True, has_session=True, user_pk=user_pk):
                raise ConfigError("another run took the lock while logging in: the new session was not stored")
            if imported:  # an existing account's session: its limits are in force at once
                store.set_warmup(account, None)
            elif stored is None or state.needs_human:  # a new device, or a human just cleared a problem
                store.set_warmup(account, deps.clock())
            log.info("login_succeeded", extra={"method": method, "user_pk": user_pk})
            return Report(Outcome.OK, counts, {"method": method})
        except NeedsHuman:
            if method != "password":  # a password login's failures are logged with their count (_Tries)
                log.warning("login_failed", extra={"reason": "needs a human"})
            raise


def own_session(account: str, who: UserRef, *, claimed: int | None) -> int:
    """The user pk of a session that is ``account``'s own, by Instagram's answer ``who`` (the user the session
    is); ``claimed``: the user pk the session's settings name (their ds_user_id). Anything else is refused with
    a ConfigError (78) before it is stored: a session stored under a second name would give one Instagram user
    the limits and the lease of two accounts. Usernames are compared as Instagram does, without case."""
    if who.username != account.lower():
        raise ConfigError(
            f"this session belongs to instagram user {who.username}, not {account}: nothing was stored "
            f"(to store it for {who.username}, run this with IG_USERNAME={who.username})"
        )
    if claimed is not None and claimed != who.user_pk:
        raise ConfigError(
            f"the session names instagram user pk {claimed}, but Instagram answered it as {who.username} "
            f"(pk {who.user_pk}): an edited settings file? nothing was stored"
        )
    return who.user_pk


class _Tries:
    """The password logins of one `login`: each one counted like any login (the attempt recorded before it is
    sent, a failure added to the failed logins) and another one only as health.login_retry allows."""

    def __init__(self, deps: Deps, failures: int, ig: Client, *, typed: bool) -> None:
        self.deps, self.failures, self.ig, self.typed = deps, failures, ig, typed
        self.made = 0

    def one(self, code_prompt: Callable[[], str] | None) -> bool:
        """One try with ``self.ig``: True when logged in, False when the password may be typed again; else the
        login's error."""
        deps, account = self.deps, self.deps.settings.account()
        deps.keep_lease()  # a person may take their time at a prompt: still this run's lock?
        self.made += 1
        deps.store.record_login_attempt(account, deps.clock())
        sent = deps.counts.requests
        try:
            if code_prompt is None:
                self.ig.relogin()
            else:
                self.ig.login_with_code(code_prompt)
            return True
        except (Interrupted, NoInput):  # the person left the 2FA prompt: no answer from Instagram to count
            raise
        except StoryLikerError as exc:
            self.failures += 1
            deps.store.set_login_failures(account, self.failures)
            failure = health.LoginFailure.PASSWORD_REJECTED if is_password_rejected(exc) else health.LoginFailure.OTHER
            again = health.login_retry(self.made, failure, typed=self.typed)
            log.warning(
                "login_failed",
                extra={"reason": exc.message, "failures": self.failures, "try": self.made, "asked_again": again},
            )
            if not again:
                raise
            return False
        finally:
            deps.counts.requests = sent + self.ig.requests_sent


def _stored(text: str | None, encrypted: bool, key: str | None, replace_undecryptable: bool) -> dict[str, Any] | None:
    """The stored settings (device and session) to log in with, or None for a new device."""
    if text is None:
        return None
    try:
        return vault.decode(text, encrypted, key)
    except UndecryptableSession as exc:
        if not replace_undecryptable:
            raise UndecryptableSession(
                f"{exc.message}; to replace it with a new login, run `story-liker login --replace-undecryptable` "
                "(the old device fingerprint is then lost: Instagram sees a new device)"
            ) from None
        log.warning(
            "undecryptable_session_replaced",
            extra={"reason": exc.message, "consequence": "the old device fingerprint is lost; a new device logs in"},
        )
        return None


def upgrade_session(deps: Deps) -> Report:
    """`session upgrade`: move the stored session to instagrapi's current app profile, keeping the device ids.
    No request is sent; a needs-human flag set because Instagram wanted a newer app is cleared."""
    from story_liker.ig.adapter import upgrade_app_profile

    settings, store = deps.settings, deps.store
    account, key = settings.account(), settings.encryption_key
    with lease(deps, timedelta(minutes=15)):
        state = store.account(account)
        if state.settings is None:
            raise ConfigError(f"no Instagram session stored for {account}: run `story-liker login`")
        upgraded, before, after = upgrade_app_profile(vault.decode(state.settings, state.settings_encrypted, key))
        store_session(deps, upgraded, login=False, has_session=state.has_session, user_pk=state.user_pk)
        if state.needs_human and "needs_upgrade" in (state.needs_human_reason or ""):
            store.clear_needs_human(account)
        log.info("session_upgraded", extra={"app_version_before": before, "app_version_after": after})
        return Report(Outcome.OK, deps.counts, {"before": before, "after": after})


def export_session(deps: Deps, path: Path) -> Report:
    """`session export`: the stored session as instagrapi settings JSON, in a new owner-only (0600) file, to
    carry it to another host (`session import` there). No request is sent."""
    import os

    settings, store = deps.settings, deps.store
    account = settings.account()
    state = store.account(account)
    if state.settings is None or not state.has_session:
        raise ConfigError(f"no Instagram session stored for {account}: nothing to export")
    data = vault.decode(state.settings, state.settings_encrypted, settings.encryption_key)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} exists: export into a new file") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(data, file)
    log.info("session_exported", extra={"path": str(path)})
    return Report(Outcome.OK, deps.counts)
