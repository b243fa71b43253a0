"""The double itself: its settings and state, starting and stopping the server, the state API a test builds
its world with, and the requests log."""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import secrets
import socket
import string
import threading
import time
import uuid
from datetime import datetime
from types import TracebackType

from tests.double.common import JSON, _rand, _ts
from tests.double.faults import _Rule
from tests.double.routing import Routing
from tests.double.server import Rec, _Route, _Server
from tests.double.world import DPost, DStory, DUser, SeenRequest


class InstagramDouble(Routing):
    """Instagram private API double. Use as a context manager; see the package docstring."""

    def __init__(
        self,
        *,
        username: str = "liker",
        password: str = "correct-horse",  # noqa: S107  # the double's fixture password
        own_pk: int = 57_283_910_446,
        totp_seed: str | None = None,
        rotate_cookies: bool = True,
        tidy: bool = False,
        tray_items: int | None = None,
        tray_extras: bool | None = None,
        tray_drop: float = 0.0,
        lookup_friendship: bool | None = None,
        timeline_page_size: int = 8,
        timeline_extras: bool | None = None,
        timeline_drop: float | None = None,
        timeline_recent_days: float | None = None,
    ) -> None:
        """``tidy=True``: the answers the code would like (no extras, consistent types, full users everywhere,
        a friendship status in ``usernameinfo``). By default the answers follow REAL_SHAPES.md; each trait
        can also be set on its own:

        - ``tray_items``: how many leading tray entries carry ``items`` (4; tidy 0), the rest metadata only;
        - ``tray_extras``: the tray also holds the own reel, a hashtag and a location reel (``mas_reel``), an
          injected ad reel, suggested reels (``suggestions``), a live broadcast and a post-live item (True);
        - ``tray_drop``: the share of the followed users with stories that the tray leaves out (0.0; the
          same users every time, see :meth:`tray_dropped`);
        - ``lookup_friendship``: ``usernameinfo`` carries ``friendship_status`` (False; tidy True);
        - ``timeline_page_size``: the followed users' posts per home-feed page (8);
        - ``timeline_extras``: the home feed also holds ads, a suggested-users card, story and reel cards and
          suggested posts of accounts not followed (True; tidy False);
        - ``timeline_drop``: the share of the followed users with posts that the home feed leaves out (0.25; tidy
          0.0; the same users every time, see :meth:`timeline_dropped`);
        - ``timeline_recent_days``: posts older than this come after the "You're all caught up" demarcator, inside
          its ``past_posts`` group and the pages after it, while the answer's own cursor leads to suggested posts
          (2.0; tidy ``math.inf``: no demarcator).
        """
        self.username = username
        self.password = password
        self.own_pk = own_pk
        self.totp_seed = totp_seed
        self.rotate_cookies = rotate_cookies
        self.tidy = tidy
        self.tray_items = tray_items if tray_items is not None else (0 if tidy else 4)
        self.tray_extras = tray_extras if tray_extras is not None else not tidy
        self.tray_drop = tray_drop
        self.lookup_friendship = lookup_friendship if lookup_friendship is not None else tidy
        self.timeline_page_size = timeline_page_size
        self.timeline_extras = timeline_extras if timeline_extras is not None else not tidy
        self.timeline_drop = timeline_drop if timeline_drop is not None else (0.0 if tidy else 0.25)
        if timeline_recent_days is None:
            timeline_recent_days = math.inf if tidy else 2.0
        self.timeline_recent_days = timeline_recent_days
        self.url = ""
        self.requests: list[Rec] = []
        self.seen_requests: list[SeenRequest] = []
        self.liked_story_ids: set[str] = set()
        self.liked_media_ids: set[str] = set()
        self.seen_story_ids: set[str] = set()
        self.users: list[DUser] = []
        self.stories: list[DStory] = []
        self.posts: list[DPost] = []
        self.me = DUser(own_pk, username, private=False, followed=False, full_name="Story Liker")
        self.mid = _rand(4) + "AABAAF" + _rand(18, string.ascii_letters + string.digits + "-_")
        self.www_claim = "hmac.AR" + _rand(46, string.ascii_letters + string.digits + "-_")
        self.csrftoken = _rand(32)
        self.rur = self._new_rur()
        self.sessionid = ""
        self.session_expired = False
        self.challenge_required = False
        self._lock = threading.RLock()
        self._rules: list[_Rule] = []
        self._user_pks = itertools.count(31_400_000_017, 1_000_003)
        self._media_pks = itertools.count(3_512_004_000_000_000_017, 1_000_000_007)
        self._pending_2fa: set[str] = set()
        self._key_id = 41
        self._device: JSON | None = None
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._routes: list[_Route] = self._build_routes()
        self._new_session()
        self._ambient = self._make_ambient()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> InstagramDouble:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> InstagramDouble:
        self._stop.clear()
        self._server = _Server(self)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="instagram-double"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut keep-alive connections and join every server thread."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stop.set()  # wakes handlers sleeping in delay()
        with self._lock:
            for rule in self._rules:
                if rule.release is not None:
                    rule.release.set()  # and those held by hold()
        server.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    # ------------------------------------------------------------------ state API

    def add_user(
        self,
        username: str,
        *,
        pk: int | None = None,
        private: bool = False,
        followed: bool = True,
        muted: bool = False,
    ) -> DUser:
        with self._lock:
            user = DUser(
                pk=pk if pk is not None else next(self._user_pks),
                username=username,
                private=private,
                followed=followed,
                full_name=username.replace("_", " ").replace(".", " ").title(),
                muted=muted,
            )
            self.users.append(user)
            return user

    def add_story(
        self,
        user: DUser,
        *,
        taken_at: int | float | datetime | None = None,
        liked: bool = False,
        seen: bool = False,
        media_type: int = 1,
        close_friends: bool = False,
        reshare: bool = False,
    ) -> DStory:
        """A story; ``taken_at`` defaults to one minute ago (stories live 24 h). ``close_friends``: for the
        owner's close friends (``audience: "besties"``); ``reshare``: a feed post reshared (``story_feed_media``)."""
        with self._lock:
            story = DStory(
                pk=next(self._media_pks),
                user=user,
                taken_at=_ts(taken_at, int(time.time()) - 60),
                owner=self,
                media_type=media_type,
                audience="besties" if close_friends else None,
            )
            if reshare:
                story.reshared = f"{next(self._media_pks)}_{next(self._user_pks)}"
            self.stories.append(story)
            if liked:
                self.liked_story_ids.add(story.id)
            if seen:
                self.seen_story_ids.add(story.id)
            return story

    def add_segmented_video(
        self, user: DUser, parts: int = 3, *, taken_at: int | float | datetime | None = None, same_second: bool = True
    ) -> list[DStory]:
        """A long video as the app posts it: ``parts`` video items sharing a ``segmented_video_group_id``, each
        with its own pk, all taken in the same second (or one second apart)."""
        start = _ts(taken_at, int(time.time()) - 60)
        group = str(uuid.UUID(int=secrets.randbits(128)))
        stories = []
        for n in range(parts):
            story = self.add_story(user, taken_at=start if same_second else start + n, media_type=2)
            story.segment_group = group
            stories.append(story)
        return stories

    def add_post(
        self,
        user: DUser,
        *,
        taken_at: int | float | datetime | None = None,
        media_type: int = 1,
        product_type: str = "feed",
        liked: bool = False,
        pinned: bool = False,
        coauthors: tuple[DUser, ...] | list[DUser] = (),
    ) -> DPost:
        """A post: media_type 1 photo, 2 video (product_type "clips" = reel), 8 album. ``pinned``: first in
        ``user``'s feed whatever its age; ``coauthors``: a collab post, in their feeds too, authored by ``user``."""
        with self._lock:
            post = DPost(
                pk=next(self._media_pks),
                user=user,
                taken_at=_ts(taken_at, int(time.time()) - 3600),
                owner=self,
                media_type=media_type,
                product_type=product_type,
                like_count=7 + len(self.posts) % 5,
                pinned=pinned,
                coauthors=tuple(coauthors),
            )
            self.posts.append(post)
            if liked:
                self.liked_media_ids.add(post.id)
                post.like_count += 1
            return post

    def break_story(self, story: DStory, times: int = 1) -> None:
        """The next ``times`` answers carrying this story's item (reels_media, user story, media info) carry
        it malformed: without ``taken_at``."""
        with self._lock:
            story.broken = times

    def expire_on_fetch(self, user: DUser, gone: bool = True) -> None:
        """The tray still lists ``user``'s reel, but ``reels_media`` leaves it out and the user's story feed
        answers ``{"reel": null}``: the stories expired or were deleted between the tray and the fetch."""
        with self._lock:
            user.gone_on_fetch = gone

    def tray_dropped(self) -> list[DUser]:
        """The followed users with stories that the tray leaves out right now (``tray_drop``, ``in_tray``, muted)."""
        with self._lock:
            groups = self._live_groups()
            return [u for u in self._tray_candidates(groups) if u not in self._tray_users(groups)]

    def timeline_dropped(self) -> list[DUser]:
        """The followed users with posts whose posts the home feed leaves out right now (``timeline_drop``,
        ``in_timeline``). A collab post still shows when one of its other authors is shown."""
        with self._lock:
            shown = self._timeline_users()
            return [u for u in self._timeline_candidates() if u not in shown]

    def timeline_posts(self) -> list[DPost]:
        """The followed users' posts the home feed shows, in its order (newest first), whatever the page size: what
        a walk of all its pages yields besides the extras (ads, cards, suggested posts: :attr:`extra_posts`)."""
        with self._lock:
            return self._timeline_order()

    @property
    def extra_posts(self) -> list[DPost]:
        """The home feed's posts that are no followed user's: the ads, the suggested posts (in the feed and after the
        end-of-feed demarcator), the reel in the reels card. Never to be liked; the double likes them like any other
        post, so a test sees it if the code ever does."""
        with self._lock:
            return list(self._ambient.posts)

    @property
    def extra_stories(self) -> list[DStory]:
        """The stories of the tray's other entries (the own reel, the hashtag reel, the ad, the suggested reel):
        no target's, never to be liked."""
        with self._lock:
            return list(self._ambient.stories)

    def seen_values(self) -> list[tuple[str, int, int]]:
        """Every ``(media id, taken_at, seen_at)`` sent in seen requests, in order."""
        with self._lock:
            return [value for request in self.seen_requests for value in request.values()]

    def like_index(self, media_id: str) -> int | None:
        """Where the (first) like request of this story or post is in ``requests`` (None: never sent)."""
        with self._lock:
            for index, rec in enumerate(self.requests):
                if "story_like" in rec.path and str(rec.form.get("media_id", "")) == media_id:
                    return index
                if rec.path.endswith("/like/") and f"/media/{media_id}/" in rec.path:
                    return index
            return None

    def settings(self) -> JSON:
        """Complete instagrapi settings (``Client.get_settings()`` shape) logged in to this double.

        Built from a real ``Client().get_settings()`` (device, uuids, user agent stay the same
        across calls) plus ``authorization_data``/cookies for the current session. If the
        session was expired, a new one is minted first. Retry/pacing fields keep instagrapi's
        defaults (``request_timeout`` 1, ``session_retry_total`` 3) like a real saved session:
        override them after loading.
        """
        from instagrapi import Client

        with self._lock:
            if self.session_expired or not self.sessionid:
                self._new_session()
            sessionid = self.sessionid
            if self._device is None:
                self._device = Client(private_transport="requests", with_challenge_flow=False).get_settings()
            result = copy.deepcopy(self._device)
        result.update(
            {
                "authorization_data": {
                    "ds_user_id": str(self.own_pk),
                    "sessionid": sessionid,
                    "should_use_header_over_cookies": True,
                },
                "cookies": {
                    "csrftoken": self.csrftoken,
                    "ds_user_id": str(self.own_pk),
                    "mid": self.mid,
                    "rur": self.rur.replace(",", "\\054").join('""'),
                    "sessionid": sessionid,
                },
                "mid": self.mid,
                "ig_u_rur": self.rur,
                "ig_www_claim": self.www_claim,
                "last_login": time.time(),
            }
        )
        return result

    # ------------------------------------------------------------------ requests log

    def count(self, path_contains: str = "") -> int:
        with self._lock:
            return sum(1 for rec in self.requests if path_contains in rec.target)

    def tray_reasons(self) -> list[str | None]:
        """The ``reason`` of every story-tray request so far, in order (``cold_start``, ``pull_to_refresh``)."""
        with self._lock:
            return [rec.form.get("reason") for rec in self.requests if rec.path.endswith("/feed/reels_tray/")]

    def paths(self) -> list[str]:
        """``"METHOD target"`` of every request so far (handy in assertion messages)."""
        with self._lock:
            return [f"{rec.method} {rec.target}" for rec in self.requests]

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()
            self.seen_requests.clear()
