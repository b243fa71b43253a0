"""`make sandbox`: the demo's world on a local Instagram double that stays up, and a database that stays.

NOT INSTAGRAM. Starts the project's Instagram double (``tests/double/``) with the world of ``make demo``
(``bench/demo.py``: 30 followed accounts, their stories and posts) on a fixed local port, keeps a directory
(``./sandbox/`` by default) with a SQLite database holding an imported session of the double, writes the
settings that point the CLI at it to ``sandbox/env`` and prints them with commands to try. It serves until
Ctrl-C, SIGTERM or SIGHUP (exit 0) and keeps the directory: the next start reuses the database, and the session in
it still works, because the double is given back its session id and the likes it had received.

    python -m bench.sandbox [--port 8765] [--dir sandbox] [--reset]

The double listens on an ephemeral port of its own; the sandbox relays the fixed port to it, so the printed
``IG_API_URL`` stays valid across restarts.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import select
import shlex
import shutil
import signal
import socket
import socketserver
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from bench.common import STORY_LIKER, base_env, cli_command, cli_env, login, run_measured
from bench.demo import NAMES, SETTINGS, build_world

if TYPE_CHECKING:
    from tests.double import InstagramDouble

HOST = "127.0.0.1"
DEFAULT_PORT = 8765
STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, a service manager, the terminal closed
USAGE = 2  # as the CLI: a wrong value on the command line (here: a port in use, a directory in use)
DATABASE = "stories.db"
ENV_FILE = "env"
STATE_FILE = "double.json"  # what the double must remember across restarts: its session id and its likes
LOCK_FILE = ".lock"
EXPORT_FILE = "session.json"  # where the example `session export` writes
# every file the sandbox (or its example commands) makes; `--reset` removes these and nothing else
OWN_FILES = (
    *(DATABASE + suffix for suffix in ("", "-wal", "-shm", "-journal")),
    ENV_FILE,
    STATE_FILE,
    EXPORT_FILE,
    LOCK_FILE,
)


class SandboxError(Exception):
    """One line for the person who started the sandbox, and exit 2."""


def _bold(text: str) -> str:
    return f"\033[1m{text}\033[0m" if sys.stdout.isatty() else text


def say(text: str = "") -> None:
    print(text, flush=True)


# --- the fixed port: a relay to the double's own ephemeral one ---------------------------------------------


class _Relay(socketserver.ThreadingTCPServer):
    allow_reuse_address = True  # a restart right after a stop: the old connections' TIME_WAIT must not block it
    daemon_threads = False
    block_on_close = True  # server_close() joins the pipes (each ends within POLL seconds of `closing`)

    def __init__(self, port: int) -> None:
        self.upstream: tuple[str, int] = (HOST, 0)
        self.closing = threading.Event()
        super().__init__((HOST, port), _Pipe)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Pipe(socketserver.BaseRequestHandler):
    """One client connection, byte for byte to a connection of its own to the double, both ways."""

    POLL = 0.2
    server: _Relay

    def handle(self) -> None:
        client: socket.socket = self.request
        try:
            upstream = socket.create_connection(self.server.upstream, timeout=10)
        except OSError:
            return
        with upstream:
            upstream.settimeout(None)
            for sock in (client, upstream):  # as the double does: no Nagle + delayed-ACK stalls
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            other = {client: upstream, upstream: client}
            with contextlib.suppress(OSError):
                while not self.server.closing.is_set():
                    ready, _, _ = select.select(list(other), [], [], self.POLL)
                    for sock in ready:
                        data = sock.recv(65536)
                        if not data:
                            return
                        other[sock].sendall(data)


def bind(port: int) -> _Relay:
    try:
        return _Relay(port)
    except OSError as exc:
        raise SandboxError(
            f"cannot listen on {HOST}:{port} ({exc.strerror or exc}): is a sandbox running already? "
            "Stop it, or pick another port with --port"
        ) from None


# --- the directory ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def claimed(directory: Path) -> Iterator[None]:
    """One sandbox per directory: a second one would rewrite the env file of the first."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = (directory / LOCK_FILE).open("w")
    except OSError as exc:
        raise SandboxError(f"--dir {shown(directory)}: {exc.strerror or exc}") from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SandboxError(
                f"{shown(directory)} is in use by another sandbox; stop it, or pick another --dir"
            ) from None
        yield


def reset(directory: Path) -> None:
    """Remove the sandbox's own files, and never anything else, whatever --dir names."""
    for name in OWN_FILES:
        if name != LOCK_FILE:  # held by this process now
            (directory / name).unlink(missing_ok=True)


def load_state(directory: Path) -> dict[str, Any]:
    try:
        state = json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def save_state(directory: Path, double: InstagramDouble) -> None:
    state = {
        "sessionid": double.sessionid,
        "liked_story_ids": sorted(double.liked_story_ids),
        "liked_media_ids": sorted(double.liked_media_ids),
    }
    write_atomically(directory / STATE_FILE, json.dumps(state, indent=1) + "\n")


def write_atomically(path: Path, text: str) -> None:
    """Owner-only (0600): the state holds the double's sessionid, which is no secret of anyone's, but a file
    shaped like a session is kept like one, as the habit to copy."""
    scratch = path.with_name(path.name + ".new")
    with open(os.open(scratch, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600), "w") as file:
        file.write(text)
    scratch.replace(path)


def sandbox_env(double: InstagramDouble, url: str, database: Path) -> dict[str, str]:
    """What `. sandbox/env` sets: `cli_env`'s variables pointing at the double (through the relay's fixed port),
    the demo's targets and short delays; text or JSON logs left to the CLI's own choice (text at a terminal)."""
    settings = {name: value for name, value in SETTINGS.items() if name != "log_format"}
    env = cli_env(double, f"sqlite:///{database}", target_accounts=",".join(NAMES), **settings)
    first = {"IG_API_URL": url, "IG_USERNAME": env["IG_USERNAME"], "DATABASE_URL": env["DATABASE_URL"]}
    developer = base_env()
    return first | {name: value for name, value in env.items() if name not in developer and name not in first}


def others(env: dict[str, str]) -> list[str]:
    """The story-liker settings the sandbox does not set: `. sandbox/env` unsets them, so that none the shell holds
    (a real NOTIFY_URLS, HEALTHCHECK_URL, METRICS_TEXTFILE, IG_PASSWORD...) applies to the double."""
    from story_liker.settings import Settings

    return sorted(name.upper() for name in Settings.model_fields if name.upper() not in env)


def env_lines(env: dict[str, str]) -> list[str]:
    return [f"export {name}={shlex.quote(value)}" for name, value in env.items()]


def env_file(env: dict[str, str]) -> str:
    unset = textwrap.wrap(" ".join(others(env)), 100, initial_indent="unset ", subsequent_indent="      ")
    return (
        "\n".join(
            [
                "# story-liker sandbox: NOT Instagram, a local double (python -m bench.sandbox)",
                "# the other story-liker settings: none of a real setup in this shell applies to the double",
                " \\\n".join(unset),
                "# the double, its database, its targets, short delays",
                *env_lines(env),
            ]
        )
        + "\n"
    )


def shown(path: Path) -> str:
    """``path`` as a person would type it from here: relative to the working directory when it is inside it."""
    try:
        relative = path.relative_to(Path.cwd())
    except ValueError:
        return str(path)
    return str(relative) if relative.parts else "."


def story_liker_command() -> str:
    """`story-liker` when the shell finds this one, else its path."""
    on_path = shutil.which("story-liker")
    if STORY_LIKER.exists() and not (on_path and Path(on_path).resolve() == STORY_LIKER.resolve()):
        return shown(STORY_LIKER.absolute())
    return "story-liker"


# --- the sandbox ------------------------------------------------------------------------------------------


class _Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    for sig in STOPS:  # the clean-up that follows must not be interrupted
        signal.signal(sig, signal.SIG_IGN)
    raise _Stop(signum)


def prepare(double: InstagramDouble, directory: Path, env: dict[str, str]) -> bool:
    """`migrate` every time (the code may be newer than the database). A new database gets the double's session
    (`login --settings-file`); a kept one keeps its own, and the double is given back that session's id and the
    likes it had received. Returns whether the database is new."""
    full = base_env() | env
    fresh = not (directory / DATABASE).exists()
    run_measured(cli_command("migrate"), full, directory).check("story-liker migrate")
    state = {} if fresh else load_state(directory)
    if state.get("sessionid"):
        double.sessionid = str(state["sessionid"])
        double.liked_story_ids |= set(state.get("liked_story_ids", ()))
        double.liked_media_ids |= set(state.get("liked_media_ids", ()))
        return False
    with tempfile.TemporaryDirectory(prefix="story-liker-sandbox-") as scratch:
        login(double, full, Path(scratch))  # the settings file, a session, lives and dies there
    save_state(directory, double)
    return True


def announce(port: int, directory: Path, env: dict[str, str], stories: int, posts: int, fresh: bool) -> None:
    cli = story_liker_command()
    database = directory / DATABASE
    say(_bold(f"NOT INSTAGRAM: a local double on {HOST}:{port}"))
    say(
        f"  {len(NAMES)} made-up accounts you follow ({', '.join(NAMES[:3])}, ...), {stories} stories and {posts}"
        " posts to like at first; no network, no account."
    )
    say(
        f"  Database {shown(database)}: "
        + ("new, with the double's session imported." if fresh else "kept from the last time, with its session.")
    )
    say()
    if Path(".env").exists():
        say(
            _bold("Careful: ./.env exists, and story-liker reads it too.")
            + f" A setting {shown(directory / ENV_FILE)} does not set (NOTIFY_URLS,\n"
            "  HEALTHCHECK_URL, METRICS_TEXTFILE, IG_PASSWORD, ...) would come from it: run the commands where there"
            " is no .env."
        )
    say()
    say("Point story-liker at it: in another shell in this directory, run")
    say()
    say(f"  . {shown(directory / ENV_FILE)}")
    say()
    say("which unsets every other story-liker setting (none of a real setup applies here) and sets")
    say()
    for line in env_lines(env):
        say(f"  {line}")
    say()
    say("and try")
    say()
    for args in (
        "run-stories",
        "run-posts",
        "status",
        "report",
        "history --target ada.lovelace",
        "doctor --online",
        f"session export {shown(directory / EXPORT_FILE)}",
    ):
        say(f"  {cli} {args}")
    say()
    say("Each command logs a warning, ig_api_url_set: it talks to this double, not to Instagram.")
    say(f"Serving until Ctrl-C or SIGTERM; {shown(directory)} stays (a restart reuses it, --reset starts over).")


def serve(port: int, directory: Path, *, wipe: bool) -> int:
    from tests.double import InstagramDouble

    relay = bind(port)
    relay_thread = threading.Thread(target=relay.serve_forever, kwargs={"poll_interval": 0.1}, name="relay")
    try:
        with claimed(directory), InstagramDouble() as double:
            if wipe:
                reset(directory)
            stories, posts = build_world(double)
            relay.upstream = (HOST, int(double.url.rsplit(":", 1)[1]))
            relay_thread.start()
            env = sandbox_env(double, f"http://{HOST}:{relay.port}", (directory / DATABASE).absolute())
            fresh = prepare(double, directory, env)
            write_atomically(directory / ENV_FILE, env_file(env))
            announce(relay.port, directory, env, stories, posts, fresh)
            try:
                threading.Event().wait()  # until a signal
            except _Stop as stop:
                save_state(directory, double)  # the likes it received, its session id if a login made a new one
                with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
                    say(f"\n{signal.Signals(stop.signum).name}: the double stops; {shown(directory)} stays.")
    finally:
        relay.closing.set()
        if relay_thread.is_alive():
            relay.shutdown()
        relay.server_close()
    return 0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sandbox",
        description="NOT INSTAGRAM: a local Instagram double with made-up accounts, and a database to try "
        "every story-liker command on. Serves until Ctrl-C or SIGTERM (exit 0), keeping the directory.",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"local port (default {DEFAULT_PORT}, so the env lines stay valid across restarts; 0: any free one)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("sandbox"),
        help="the directory kept between runs: database, env file, the double's state (default ./sandbox)",
    )
    parser.add_argument("--reset", action="store_true", help="start over: remove the sandbox's files first")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port}: not a port")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    previous = {sig: signal.signal(sig, _on_signal) for sig in STOPS}
    try:
        return serve(args.port, args.dir.absolute(), wipe=args.reset)
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return USAGE
    except _Stop:  # stopped while starting up: nothing to keep serving
        return 0
    except RuntimeError as exc:  # a setup step of the CLI failed: its output says why
        print(f"sandbox: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
