"""What the double holds, declared once for the parts (mixins) that make up ``InstagramDouble``: each part reads and
writes this state; ``InstagramDouble.__init__`` sets it."""

from __future__ import annotations

import itertools
import socket
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.double.common import JSON
    from tests.double.faults import _Rule
    from tests.double.server import Rec, _Route, _Server
    from tests.double.world import DPost, DStory, DUser, SeenRequest, _Ambient


class DoubleState:
    """The attributes of ``InstagramDouble`` (see its ``__init__`` for what each trait does)."""

    username: str
    password: str
    own_pk: int
    totp_seed: str | None
    rotate_cookies: bool
    tidy: bool
    tray_items: int
    tray_extras: bool
    tray_drop: float
    lookup_friendship: bool
    timeline_page_size: int
    timeline_extras: bool
    timeline_drop: float
    timeline_recent_days: float
    url: str
    requests: list[Rec]
    seen_requests: list[SeenRequest]
    liked_story_ids: set[str]
    liked_media_ids: set[str]
    seen_story_ids: set[str]
    users: list[DUser]
    stories: list[DStory]
    posts: list[DPost]
    me: DUser
    mid: str
    www_claim: str
    csrftoken: str
    rur: str
    sessionid: str
    session_expired: bool
    challenge_required: bool
    _lock: threading.RLock
    _rules: list[_Rule]
    _user_pks: itertools.count[int]
    _media_pks: itertools.count[int]
    _pending_2fa: set[str]
    _key_id: int
    _device: JSON | None
    _stop: threading.Event
    _conns: set[socket.socket]
    _server: _Server | None
    _thread: threading.Thread | None
    _routes: list[_Route]
    _ambient: _Ambient
