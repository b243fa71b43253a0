"""What a like's own connection costs: connections and time per like on the production transport.

``python -m bench.transport`` (and section 8 of ``make bench``). In process: the real adapter (``Instagrapi`` without
``api_url``: instagrapi's curl_cffi transport, HTTP/2 over TLS 1.3) through ``tests/tls_front.py`` as its proxy to
the double, all on loopback. After one read (the connection is then kept alive), ``LIKES`` story likes in a row,
each way of sending them on a fresh adapter, ``ROUNDS`` times in turn:

- ``kept-alive``: instagrapi's own ``story_like`` on the adapter's client, what ``like_story`` sent before: every
  like on the one kept-alive connection, where libcurl may send it twice (``story_liker.ig.transport``).
- ``own connection``: ``like_story`` as shipped: ``CURLOPT_FRESH_CONNECT`` + ``CURLOPT_FORBID_REUSE``.
- ``fresh connect only``: ``CURLOPT_FRESH_CONNECT`` without ``FORBID_REUSE``, for comparison: the likes'
  connections stay in libcurl's pool.

Loopback has no round trip: a new connection here costs the TCP, proxy ``CONNECT`` and TLS 1.3 work on both ends,
not the two round trips (TCP, then TLS 1.3; one more for a proxy's ``CONNECT``) it adds on the way to Instagram.
Those are a fraction of a second, against the 3-12 s ``ACTION_DELAY`` between two likes.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bench.common  # noqa: F401  # puts the repository root on sys.path, for tests.double and tests.tls_front
from bench.common import table

if TYPE_CHECKING:
    from story_liker.ig.adapter import Instagrapi

LIKES = 20
ROUNDS = 3
HOST = "https://i.instagram.com/"
MODES = ("kept-alive", "own connection", "fresh connect only")


@dataclass
class LikeCost:
    mode: str
    likes: int = 0
    opened: int = 0  # connections the front accepted during the likes
    left_open: int = 0  # of those, still open after the likes (the front saw no close within 0.25 s)
    ms: list[float] = field(default_factory=list)  # one per like

    @property
    def per_like(self) -> float:
        return self.opened / self.likes if self.likes else 0.0


@contextmanager
def _fresh_connect_only(a: Instagrapi) -> Iterator[None]:
    from curl_cffi import CurlOpt

    curl = a.client.private.get_adapter(HOST).client
    curl.curl_options[CurlOpt.FRESH_CONNECT] = 1
    try:
        yield
    finally:
        curl.curl_options.pop(CurlOpt.FRESH_CONNECT, None)


def _liker(a: Instagrapi, mode: str) -> Callable[[Any], None]:
    def instagrapi_like(story: Any, around: Callable[[], AbstractContextManager[None]] = nullcontext) -> None:
        with around():
            assert a.client.story_like(story.id, mark_seen=False)

    if mode == "kept-alive":
        return instagrapi_like
    if mode == "own connection":
        return a.like_story
    return lambda story: instagrapi_like(story, lambda: _fresh_connect_only(a))


def _ended_within(conns: list[Any], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not all(conn.ended for conn in conns) and time.monotonic() < deadline:
        time.sleep(0.01)


def measure(workdir: Path, *, likes: int = LIKES, rounds: int = ROUNDS) -> list[LikeCost]:
    from story_liker.ig.adapter import Instagrapi
    from story_liker.ig.types import Connection
    from tests.double import InstagramDouble
    from tests.tls_front import TlsFront

    costs = {mode: LikeCost(mode) for mode in MODES}
    saved = os.environ.get("REQUESTS_CA_BUNDLE")
    with InstagramDouble() as double, TlsFront(double.url, workdir, max_connections=4 * likes) as front:
        os.environ["REQUESTS_CA_BUNDLE"] = str(front.ca_file)  # trusted as production trusts a CA: from the env
        settings = double.settings()  # half a second each: one session for every adapter
        try:
            for _ in range(rounds):
                for mode in MODES:
                    user = double.add_user(f"u{len(double.users)}")
                    for _ in range(likes):
                        double.add_story(user)
                    a = Instagrapi(Connection(double.username, settings, proxy=front.proxy_url, timeout=10))
                    stories = a.reels_media([user.pk])[user.pk]
                    before = len(front.connections)
                    like = _liker(a, mode)
                    cost = costs[mode]
                    for story in stories:
                        started = time.perf_counter()
                        like(story)
                        cost.ms.append((time.perf_counter() - started) * 1000)
                    cost.likes += len(stories)
                    opened = front.connections[before:]
                    _ended_within(opened, 0.25)
                    cost.opened += len(opened)
                    cost.left_open += sum(not conn.ended for conn in opened)
                    a.client.private.close()  # the kept-alive connection (and the pool) go with the adapter
        finally:
            if saved is None:
                os.environ.pop("REQUESTS_CA_BUNDLE", None)
            else:
                os.environ["REQUESTS_CA_BUNDLE"] = saved
    return list(costs.values())


def report(costs: list[LikeCost], *, likes: int = LIKES, rounds: int = ROUNDS) -> str:
    rows = [
        [
            c.mode,
            c.likes,
            c.opened,
            f"{c.per_like:.2f}",
            c.left_open,
            f"{statistics.median(c.ms):.1f}",
            f"{statistics.quantiles(c.ms, n=10)[-1]:.1f}",
            f"{statistics.fmean(c.ms):.1f}",
        ]
        for c in costs
    ]
    headers = ["like sent on", "likes", "connections opened", "per like", "left open", "median ms", "p90 ms", "mean ms"]
    base, ours = statistics.median(costs[0].ms), statistics.median(costs[1].ms)
    return "\n".join(
        [
            f"8. A like's own connection: {likes} story likes in a row after one read, {rounds} rounds, in process on"
            " loopback",
            "   (the real adapter on instagrapi's curl transport, HTTP/2 + TLS 1.3 through tests/tls_front.py)",
            table(headers, rows, "lrrrrrrr"),
            f"  own connection: +{ours - base:.1f} ms per like (median) against the kept-alive connection on loopback;"
            " to Instagram a new",
            "  connection adds two round trips (TCP, TLS 1.3; one more for a proxy's CONNECT), against the 3-12 s"
            " ACTION_DELAY between likes.",
            "  'left open': still open 0.25 s after the likes; libcurl's pool keeps at most 5 (fresh connect only).",
        ]
    )


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-transport-") as scratch:
        started = time.perf_counter()
        costs = measure(Path(scratch))
        print(report(costs))
        print(f"\n(took {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
