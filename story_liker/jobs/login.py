"""`login`: put a verified Instagram session into the database (password, settings file or sessionid)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from story_liker import vault
from story_liker.errors import ConfigError, NeedsHuman
from story_liker.jobs.common import Deps, Report, connection_for, lease

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
    password_prompt: Callable[[], str] | None,
    code_prompt: Callable[[], str] | None,
    challenge_prompt: Callable[[str], str] | None,
) -> Report:
    """One login attempt, never a loop. The stored session is replaced only after Instagram accepted the new one."""
    from story_liker.ig import Instagrapi

    settings, store = deps.settings, deps.store
    account = settings.account()
    imported = read_settings_file(settings_file) if settings_file else None
    if sessionid is not None and (len(sessionid) < 30 or not sessionid[:1].isdigit()):
        raise ConfigError("--sessionid does not look like an Instagram sessionid (digits first, 30+ characters)")
    state = store.account(account)
    key = settings.encryption_key
    stored = vault.decode(state.settings, state.settings_encrypted, key) if state.settings else None
    counts = deps.counts
    with lease(deps, timedelta(minutes=15)):
        try:
            conn = connection_for(settings, account, imported or stored)
            if not imported and not sessionid and not conn.password:
                if password_prompt is None:
                    raise ConfigError("IG_PASSWORD (or IG_PASSWORD_FILE) is not set and there is no terminal to ask")
                conn = replace(conn, password=password_prompt())
            ig = Instagrapi(conn, challenge_prompt=challenge_prompt)
            if imported:
                ig.ping()  # one light request proves the imported session
                method = "settings_file"
            elif sessionid:
                ig.login_by_sessionid(sessionid)
                method = "sessionid"
            else:
                if code_prompt is None:
                    ig.relogin()
                else:
                    ig.login_with_code(code_prompt)
                method = "password"
            counts.requests = ig.requests_sent
            text, encrypted = vault.encode(ig.dump_settings(), key)
            store.save_session(
                account, settings=text, encrypted=encrypted, user_pk=ig.user_pk, now=deps.clock(), login=True
            )
            log.info("login_succeeded", extra={"method": method, "user_pk": ig.user_pk})
            return Report("ok", counts, {"method": method})
        except NeedsHuman:
            log.warning("login_failed", extra={"reason": "needs a human"})
            raise
