"""`make demo`: watch story-liker work against a local Instagram double, no network and no account.

Starts the project's Instagram double (``tests/double/``) with a few dozen followed accounts,
their stories and posts, then runs the real CLI on a throw-away SQLite database, step by step:
``migrate``, ``login --settings-file``, ``run-stories`` (twice), ``run-posts``, ``status``.
The CLI processes write to this terminal (text logs, a progress bar when it is a terminal); they run
``story_liker.cli.main`` through ``bench/democli.py``, which leaves out the one warning every command pointed at
the double logs (``ig_api_url_set``): the demo says that once, at the start.
Nothing is left behind: the double is stopped and the temporary directory removed, also on Ctrl-C.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from bench.common import breakdown, cli_env

if TYPE_CHECKING:
    from tests.double import InstagramDouble

NAMES = (
    "ada.lovelace",
    "alan_turing",
    "grace.hopper",
    "linus",
    "katherine.johnson",
    "ken_thompson",
    "dennis.ritchie",
    "barbara_liskov",
    "edsger.dijkstra",
    "donald.knuth",
    "margaret_hamilton",
    "tim.berners.lee",
    "radia_perlman",
    "john.mccarthy",
    "frances_allen",
    "leslie.lamport",
    "guido",
    "barbara.mcclintock",
    "rosalind_franklin",
    "marie.curie",
    "emmy.noether",
    "carl.sagan",
    "vera_rubin",
    "hedy.lamarr",
    "annie_easley",
    "claude.shannon",
    "sophie_wilson",
    "larry.tesler",
    "jean.bartik",
    "niklaus_wirth",
)
SETTINGS = {
    "log_format": "text",
    "action_delay_min_seconds": 0.05,
    "action_delay_max_seconds": 0.2,
    "target_delay_min_seconds": 0.1,
    "target_delay_max_seconds": 0.3,
    "request_delay_min_seconds": 0.05,
    "request_delay_max_seconds": 0.15,
    "story_watch_percent": 2,  # a photo story watched about 0.1 s: the order of a real pass, in a demo's time
    "story_likes_per_hour": 60,
    "story_likes_per_10_minutes": 60,
    "post_likes_per_hour": 60,
    "post_likes_per_10_minutes": 60,
    "http_timeout_seconds": 5,
}
HOUR = 3600
DEMO_CLI = Path(__file__).with_name("democli.py")


@dataclass(frozen=True)
class Step:
    title: str
    explanation: str
    args: tuple[str, ...]


class Stopped(Exception):
    """SIGINT or SIGTERM reached the demo: stop the step, clean up, exit 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):  # the clean-up that follows must not be interrupted
        signal.signal(sig, signal.SIG_IGN)
    raise Stopped(signum)


def _bold(text: str) -> str:
    return f"\033[1m{text}\033[0m" if sys.stdout.isatty() else text


def say(text: str = "") -> None:
    print(text, flush=True)


def build_world(double: InstagramDouble) -> tuple[int, int]:
    """30 followed accounts; 12 have 2-3 stories (the first one already liked), 10 have recent posts
    (one already liked) and one old post that is too old to like. Returns (stories to like, posts to like)."""
    now = int(time.time())
    stories = posts = 0
    for index, name in enumerate(NAMES):
        user = double.add_user(name)
        if index % 5 in (0, 2):
            count = 2 + index % 2
            for n in range(count):
                double.add_story(user, taken_at=now - 3 * HOUR + 600 * n, liked=n == 0)
            stories += count - 1
        if index % 3 == 0:
            double.add_post(user, taken_at=now - 2 * HOUR - index * 60, liked=index % 2 == 0)
            double.add_post(user, taken_at=now - 10 * 24 * HOUR)
            posts += index % 2 != 0
    return stories, posts


def steps(settings_file: Path) -> list[Step]:
    return [
        Step("story-liker migrate", "Create the schema in a fresh SQLite database (idempotent).", ("migrate",)),
        Step(
            "story-liker login --settings-file session.json",
            "Import an instagrapi session (what Client.dump_settings writes); one light request checks it.",
            ("login", "--settings-file", str(settings_file)),
        ),
        Step(
            "story-liker run-stories",
            "First pass: 1 reels-tray request, the following list once to find the targets without stories,\n"
            "  their reels in batches of 20, then per target with likes one 'seen' and exactly one request per like.",
            ("run-stories",),
        ),
        Step(
            "story-liker run-stories   (again)",
            "Nothing new since the last pass: a single reels-tray request, no like.",
            ("run-stories",),
        ),
        Step(
            "story-liker run-posts",
            "The home feed first (2 pages), then, on this first pass, every target's profile once; likes the\n"
            "  recent posts not liked yet (the 10-day-old ones are skipped).",
            ("run-posts",),
        ),
        Step("story-liker status", "Session, flags, like budget, targets and the last runs.", ("status",)),
    ]


def demo_command(*args: str) -> list[str]:
    """The CLI's own `main`, without the `ig_api_url_set` warning the demo has explained once (bench/democli.py)."""
    return [sys.executable, str(DEMO_CLI), *args]


def run_step(args: tuple[str, ...], env: dict[str, str], cwd: Path) -> int:
    """The CLI inherits this terminal. When the demo is stopped, the step gets the same signal (Ctrl-C on a
    terminal reaches it directly; it finishes the request in flight and exits) and is awaited."""
    proc = subprocess.Popen(demo_command(*args), env=env, cwd=cwd, stdin=subprocess.DEVNULL)
    try:
        return proc.wait()
    except Stopped as stop:
        _await(proc, stop.signum)
        raise


def _await(proc: subprocess.Popen[bytes], signum: int) -> None:
    """Pass the signal on and wait for the step to stop; kill it if it has not within a few seconds.

    Ctrl-C on a terminal has reached the step already (same process group): it gets 3 s to stop on
    its own first, since a second SIGINT would make it stop at once instead of after the request in flight.
    """
    steps = [lambda: proc.send_signal(signum), proc.kill]
    if signum == signal.SIGINT:
        steps.insert(0, lambda: None)
    for step in steps:
        step()
        try:
            proc.wait(timeout=3)
            return
        except subprocess.TimeoutExpired:
            continue


def demo() -> int:
    from tests.double import InstagramDouble

    say(_bold("story-liker demo") + " - a local Instagram double, a temporary SQLite database, the real CLI.")
    with tempfile.TemporaryDirectory(prefix="story-liker-demo-") as scratch, InstagramDouble() as double:
        workdir = Path(scratch)
        stories, posts = build_world(double)
        settings_file = workdir / "session.json"
        settings_file.write_text(json.dumps(double.settings()))
        env = cli_env(double, f"sqlite:///{workdir / 'stories.db'}", target_accounts=",".join(NAMES), **SETTINGS)
        say(f"The double listens on {double.url}: {len(NAMES)} followed targets, {stories} stories and")
        say(f"{posts} posts waiting for a like. Database and session file live in {workdir} until the end.")
        say(
            "IG_API_URL points every command at the double. Outside the demo each command then logs a warning,\n"
            "ig_api_url_set, which marks a run that does not talk to Instagram; the steps below leave it out."
        )
        for number, step in enumerate(steps(settings_file), 1):
            say()
            say(_bold(f"[{number}] {step.title}"))
            say(f"  {step.explanation}")
            double.reset_requests()
            code = run_step(step.args, env, workdir)
            seen = breakdown(double)
            total = sum(seen.values())
            detail = ", ".join(f"{kind} {count}" for kind, count in seen.items())
            say(
                f"  -> exit {code}; the double saw {total} request{'s' * (total != 1)}"
                + (f": {detail}" if detail else "")
            )
            if code != 0:
                say(f"story-liker {' '.join(step.args)} failed with exit code {code}: the demo stops here.")
                return 1
        say()
        say(
            f"Done: {len(double.liked_story_ids)} stories and {len(double.liked_media_ids)} posts are liked on the"
            " double (those liked before included). Stopping the double, removing the temporary directory."
        )
    return 0


def main() -> int:
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return demo()
    except Stopped as stop:
        print(f"\nstopped by {signal.Signals(stop.signum).name}; the double is stopped and the temp directory removed")
        return 128 + stop.signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
