"""What the benchmark and the demo share: the double, the CLI as a measured subprocess, a population."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `tests.double` lives next to bench/, not in the installed package
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from tests.double import InstagramDouble

STORY_LIKER = Path(sys.executable).with_name("story-liker")
SQL_PROBE = Path(__file__).with_name("sqlprobe.py")
PROBE_ENV = "BENCH_PROBE_FILE"
HOUR = 3600


def cli_command(*args: str) -> list[str]:
    """The installed console script, or the module when the venv has no script (same code either way)."""
    if STORY_LIKER.exists():
        return [str(STORY_LIKER), *args]
    return [sys.executable, "-m", "story_liker", *args]


def probe_command(*args: str) -> list[str]:
    """The same CLI `main()`, in a wrapper that reports its SQL statements and peak RSS (bench/sqlprobe.py)."""
    return [sys.executable, str(SQL_PROBE), *args]


def base_env() -> dict[str, str]:
    """Nothing of the developer's environment (IG_*, DATABASE_URL, ...) leaks into a run."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}  # noqa: S108
    for name in ("LANG", "LC_ALL", "TERM", "COLUMNS", "NO_COLOR"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


NO_LIMITS = {  # a pass in a process's own time, about its requests: no limit, pause, watching or window binds
    "story_likes_per_10_minutes": 1000,
    "story_likes_per_hour": 1000,
    "story_likes_per_day": 10000,
    "post_likes_per_10_minutes": 1000,
    "post_likes_per_hour": 1000,
    "post_likes_per_day": 10000,
    "story_watch_percent": 0,
    "action_delay_min_seconds": 0,
    "action_delay_max_seconds": 0,
    "target_delay_min_seconds": 0,
    "target_delay_max_seconds": 0,
    "request_delay_min_seconds": 0,
    "request_delay_max_seconds": 0,
    "log_format": "json",
}


def cli_env(double: InstagramDouble, database_url: str, **settings: object) -> dict[str, str]:
    """Settings for a CLI run against the double; keyword arguments are upper-cased variable names."""
    env = base_env() | {
        "IG_USERNAME": double.username,
        "IG_API_URL": double.url,
        "DATABASE_URL": database_url,
        "HTTP_TIMEOUT_SECONDS": "10",
    }
    env |= {name.upper(): str(value) for name, value in settings.items()}
    return env


@dataclass
class Proc:
    """One finished subprocess. CPU times are its own (os.wait4); ``maxrss_mb`` is wait4's ru_maxrss, which
    includes the spawning process's peak (see bench/sqlprobe.py); ``peak_rss_mb`` comes from the probe."""

    args: list[str]
    code: int
    wall_s: float
    user_s: float
    sys_s: float
    maxrss_mb: float
    stdout: str
    stderr: str
    statements: int | None = None
    peak_rss_mb: float | None = None

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    def events(self) -> list[dict[str, Any]]:
        found = []
        for line in self.stdout.splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found

    def summary(self) -> dict[str, Any]:
        """The `run_finished` line of a JSON-logging run ({} if there is none)."""
        found = [e for e in self.events() if e.get("event") == "run_finished"]
        return found[-1] if found else {}

    def check(self, what: str) -> Proc:
        if self.code != 0:
            raise RuntimeError(f"{what} exited {self.code}:\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}")
        return self


def run_measured(
    args: Sequence[str], env: dict[str, str], cwd: Path, *, timeout: float = 300, probe: bool = False
) -> Proc:
    """Run a process with stdout/stderr in files and return its wall time and own rusage (os.wait4);
    with ``probe`` (a ``probe_command``), also what it reported about itself."""
    env = dict(env)
    with tempfile.TemporaryDirectory(prefix="bench-proc-") as scratch:
        out_path, err_path, probe_path = (Path(scratch) / name for name in ("out", "err", "probe.json"))
        if probe:
            env[PROBE_ENV] = str(probe_path)
        with out_path.open("wb") as out, err_path.open("wb") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
            watchdog = threading.Timer(timeout, proc.kill)
            watchdog.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                watchdog.cancel()
            wall = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait for it again
        reported = json.loads(probe_path.read_text()) if probe and probe_path.exists() else {}
        return Proc(
            list(args),
            proc.returncode,
            wall,
            usage.ru_utime,
            usage.ru_stime,
            usage.ru_maxrss / 1024,  # KiB on Linux
            out_path.read_text(errors="replace"),
            err_path.read_text(errors="replace"),
            reported.get("statements"),
            reported["vm_hwm_kb"] / 1024 if reported.get("vm_hwm_kb") else None,
        )


# --- a population of targets on the double --------------------------------------------------------------


@dataclass
class Population:
    names: list[str]
    with_stories: int = 0
    stories: int = 0
    stories_liked_before: int = 0
    with_posts: int = 0
    posts: int = 0
    posts_liked_before: int = 0
    story_ids: list[str] = field(default_factory=list)

    @property
    def story_likes_needed(self) -> int:
        return self.stories - self.stories_liked_before

    @property
    def post_likes_needed(self) -> int:
        return self.posts - self.posts_liked_before


def populate(
    double: InstagramDouble,
    targets: int,
    *,
    share: float = 0.4,
    stories_per_target: int = 3,
    stories_liked: int = 1,
    posts_per_target: int = 2,
    posts_liked: int = 1,
    extra_users: int = 0,
) -> Population:
    """``targets`` followed users named target_NNN; ``share`` of them have stories and recent posts,
    the first ``stories_liked``/``posts_liked`` of which are already liked. ``extra_users`` are
    followed accounts that are not targets (they only lengthen the following list)."""
    now = int(time.time())
    population = Population([f"target_{i:03d}" for i in range(targets)])
    active = round(targets * share)
    step = targets / active if active else 0.0
    chosen = {int(k * step) for k in range(active)}  # spread evenly: 40% = 2 of every 5
    for index, name in enumerate(population.names):
        user = double.add_user(name)
        if index not in chosen:
            continue
        if stories_per_target:
            population.with_stories += 1
        for n in range(stories_per_target):
            taken = now - HOUR + 60 * n
            story = double.add_story(user, taken_at=taken, liked=n < stories_liked)
            population.story_ids.append(story.id)
            population.stories += 1
            population.stories_liked_before += n < stories_liked
        if posts_per_target:
            population.with_posts += 1
        for n in range(posts_per_target):
            double.add_post(user, taken_at=now - (n + 1) * HOUR, liked=n < posts_liked)
            population.posts += 1
            population.posts_liked_before += n < posts_liked
    for index in range(extra_users):
        double.add_user(f"other_{index:04d}")
    return population


def login(double: InstagramDouble, env: dict[str, str], workdir: Path) -> None:
    """Import the double's session the way a user would (`login --settings-file`)."""
    settings_file = workdir / "session.json"
    settings_file.write_text(json.dumps(double.settings()))
    run_measured(cli_command("login", "--settings-file", str(settings_file)), env, workdir).check("login")
    settings_file.unlink()
    double.reset_requests()


# --- what the double saw ----------------------------------------------------------------------------------

_KINDS = (
    ("feed/reels_tray/", "tray"),
    ("feed/timeline/", "timeline"),
    ("accounts/current_user/", "current_user"),
    ("feed/reels_media/", "reels"),
    ("/media/seen/", "seen"),
    ("send_story_like", "story_like"),
    ("friendships/", "following"),
    ("/usernameinfo/", "lookup"),
    ("/story/", "user_story"),
    ("/like/", "media_like"),
    ("/info/", "media_info"),
    ("feed/user/", "feed"),
)


def kind_of(path: str) -> str:
    for needle, kind in _KINDS:
        if needle in path:
            return kind
    return path


def breakdown(double: InstagramDouble) -> dict[str, int]:
    """Requests the double received since the last reset, by kind, most frequent first."""
    paths = [line.split(" ", 1)[-1].split("?", 1)[0] for line in double.paths()]
    return dict(Counter(kind_of(path) for path in paths).most_common())


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str) -> str:
    """A plain text table; ``align`` has one "l" or "r" per column."""
    cells = [list(headers), *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align, strict=True)]
        return ("  " + "  ".join(parts)).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *(line(row) for row in cells[1:])])
