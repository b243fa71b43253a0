"""The example settings file, deploy/story-liker.env.example: known keys, no secret, every setting shown."""

from __future__ import annotations

import re

import pytest

from story_liker.settings import Settings
from tests.deploy.common import DEPLOY, KNOWN_SETTINGS, SECRET_FILES, SECRET_SETTINGS

ENV_EXAMPLE = DEPLOY / "story-liker.env.example"


def env_example_lines() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(active KEY=value lines, commented-out `# KEY=value` lines) of the example environment file."""
    active, commented = [], []
    for raw in ENV_EXAMPLE.read_text().splitlines():
        line = raw.strip()
        if not line:
            continue
        match = re.fullmatch(r"#\s?([A-Z][A-Z0-9_]*)=(\S.*)", line)
        if match:
            commented.append((match.group(1), match.group(2)))
            continue
        if line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and value and value == value.strip(), line
        active.append((key, value))
    return active, commented


def test_environment_example_has_known_keys_and_no_secret() -> None:
    active, commented = env_example_lines()
    keys = [k for k, _ in active]
    assert {k for k, _ in active + commented} <= KNOWN_SETTINGS
    assert not {k for k, _ in active + commented} & SECRET_SETTINGS  # not even as an example to uncomment
    assert not set(keys) & (SECRET_FILES | {"DATABASE_URL"})  # each deployment sets those itself
    assert {"IG_USERNAME", "TARGET_ACCOUNTS"} <= set(keys)


def test_environment_example_shows_every_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every variable of Settings (NOTIFY_* included) is in the example: a line to set or uncomment, or, for a
    secret and the test-only IG_API_URL, named in a comment (a secret only ever as a file)."""
    active, commented = env_example_lines()
    shown = {k for k, _ in active + commented}
    named = set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", ENV_EXAMPLE.read_text()))
    assert named >= KNOWN_SETTINGS, sorted(KNOWN_SETTINGS - named)
    only_named = SECRET_SETTINGS | {
        "IG_PASSWORD_FILE",
        "IG_TOTP_SEED_FILE",
        "SESSION_ENCRYPTION_KEY_FILE",
        "IG_API_URL",
    }
    assert KNOWN_SETTINGS - only_named <= shown, sorted(KNOWN_SETTINGS - only_named - shown)
    assert {"NOTIFY_URLS_FILE", "NOTIFY_CONFIG", "NOTIFY_COOLDOWN_HOURS", "NOTIFY_DIGEST"} <= shown
    for name in KNOWN_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    # A commented line is the default, or an example where the default is "not set" (or, for these, where the
    # comment says what the default is); each is a valid value.
    examples = {"DRY_RUN", "NOTIFY_DIGEST", "DATABASE_URL"}
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]  # a pydantic-settings init option
    for key, value in commented:
        if key in ("NOTIFY_URLS_FILE", "NOTIFY_CONFIG"):  # files of the deployment, absent here
            continue
        with monkeypatch.context() as env:  # read as the app reads it: a string in the environment
            env.setenv(key, value)
            loaded = Settings(_env_file=None)  # type: ignore[call-arg]  # a pydantic-settings init option
        default = getattr(defaults, key.lower())
        if default in (None, []) or key in examples:
            assert getattr(loaded, key.lower()) != default, key
        else:
            assert getattr(loaded, key.lower()) == default, key
