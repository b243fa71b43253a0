"""The stored Instagram session: JSON, Fernet-encrypted when SESSION_ENCRYPTION_KEY is set.

Key rotation: set SESSION_ENCRYPTION_KEY to "new,old" (comma-separated, newest first); the session is
read with any of the keys and written back with the first one on the next successful command.
"""

from __future__ import annotations

import json
from typing import Any

from story_liker.errors import ConfigError, UndecryptableSession
from story_liker.logging import register_secret


def _fernet(key: str) -> Any:
    from cryptography.fernet import Fernet, MultiFernet

    try:
        return MultiFernet([Fernet(part.strip().encode()) for part in key.split(",") if part.strip()])
    except ValueError:
        raise ConfigError(
            "SESSION_ENCRYPTION_KEY: not a Fernet key (32 url-safe base64 bytes; make one with `story-liker keygen`)"
        ) from None


def encode(settings: dict[str, Any], key: str | None) -> tuple[str, bool]:
    register_settings_secrets(settings)
    text = json.dumps(settings, separators=(",", ":"), sort_keys=True)
    if not key:
        return text, False
    return _fernet(key).encrypt(text.encode()).decode(), True


def decode(text: str, encrypted: bool, key: str | None) -> dict[str, Any]:
    if encrypted:
        from cryptography.fernet import InvalidToken  # only then: an import a plain session's pass never pays

        if not key:
            raise UndecryptableSession("the stored session is encrypted: set SESSION_ENCRYPTION_KEY")
        try:
            text = _fernet(key).decrypt(text.encode()).decode()
        except InvalidToken:
            raise UndecryptableSession("SESSION_ENCRYPTION_KEY does not decrypt the stored session") from None
    try:
        settings = json.loads(text)
    except ValueError:
        settings = None
    if not isinstance(settings, dict):
        raise UndecryptableSession("the stored session is not readable JSON (corrupt)")
    register_settings_secrets(settings)
    return dict(settings)


def register_settings_secrets(settings: dict[str, Any]) -> None:
    """Teach the log redaction every cookie, token and key in an instagrapi settings dict."""
    public = ("ds_user_id", "should_use_header_over_cookies")  # the user pk is no secret
    for name, value in (settings.get("cookies") or {}).items():
        if name not in public:
            register_secret(str(value))
    for name, value in (settings.get("authorization_data") or {}).items():
        if name not in public:
            register_secret(str(value))
    for name in ("mid", "ig_u_rur", "ig_www_claim"):
        register_secret(settings.get(name))
    usdid = settings.get("usdid")
    if isinstance(usdid, dict):
        for value in usdid.values():
            if isinstance(value, str):
                register_secret(value)


def has_session(settings: dict[str, Any]) -> bool:
    """Do these instagrapi settings hold a session (a sessionid), not only a device?"""
    auth = settings.get("authorization_data") or {}
    cookies = settings.get("cookies") or {}
    return bool(
        (isinstance(auth, dict) and auth.get("sessionid")) or (isinstance(cookies, dict) and cookies.get("sessionid"))
    )


def validate_settings(settings: Any) -> dict[str, Any]:
    """An instagrapi settings dict must at least carry a device and a session to be worth importing."""
    if not isinstance(settings, dict):
        raise ConfigError("the settings file is not a JSON object (expected Client.dump_settings output)")
    if not isinstance(settings.get("uuids"), dict) or not settings["uuids"].get("uuid"):
        raise ConfigError("the settings file has no device uuids (expected Client.dump_settings output)")
    if not has_session(settings):
        raise ConfigError("the settings file holds no session (no sessionid in authorization_data or cookies)")
    return settings
