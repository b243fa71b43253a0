"""`make demo` (bench/demo.py), whole: every step exits 0, and the steps do not open with the `ig_api_url_set`
warning the demo explains once at its start."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_and_explains_the_api_url_warning_once_instead_of_before_every_step() -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.demo"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    intro, _, steps = output.partition("\n[1] ")
    assert "ig_api_url_set" in intro  # said once, before the steps
    assert "ig_api_url_set" not in steps, steps
    assert len(re.findall(r"^  -> exit 0;", steps, re.M)) == 6, steps
    assert "story_liked" in steps and "post_liked" in steps  # the other log lines are all there
