"""The home feed (``POST feed/timeline/``): the followed users' posts newest first, pages and cursors, the
ads and cards mixed in, the end-of-feed demarcator, the suggested posts after it."""

from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
import time
import uuid

from tests.double.common import JSON
from tests.double.server import Rec, _Reply
from tests.double.shapes import Shapes
from tests.double.world import DPost, DUser


class Timeline(Shapes):
    """Which posts the home feed shows, in which order, and its answers page by page."""

    def _timeline_candidates(self) -> list[DUser]:
        """The followed users with posts (their own or collabs): what a lossless home feed would show."""
        authors = {id(a) for p in self.posts for a in (p.user, *p.coauthors)}
        return [u for u in self.users if u.followed and id(u) in authors]

    def _timeline_users(self) -> list[DUser]:
        """The candidates the home feed shows: not those ``in_timeline=False``, and the share ``timeline_drop`` of the
        others left out (always the same ones: ranked by a hash of their pk)."""
        shown = [u for u in self._timeline_candidates() if u.in_timeline]
        drop = round(len(shown) * self.timeline_drop)
        if drop <= 0:
            return shown
        ranked = sorted(shown, key=lambda u: hashlib.sha256(f"timeline:{u.pk}".encode()).digest())
        dropped = set(map(id, ranked[:drop]))
        return [u for u in shown if id(u) not in dropped]

    def _timeline_order(self) -> list[DPost]:
        shown = set(map(id, self._timeline_users()))
        posts = [
            p for p in self.posts if self._can_view(p.user) and any(id(a) in shown for a in (p.user, *p.coauthors))
        ]
        return sorted(posts, key=lambda p: (-p.taken_at, -p.pk))

    @staticmethod
    def _timeline_cursor(offset: int) -> str:
        return "QVFE" + base64.urlsafe_b64encode(f"timeline:{offset}".encode()).decode()

    @staticmethod
    def _timeline_offset(cursor: str) -> int | None:
        try:
            kind, _, offset = base64.urlsafe_b64decode(cursor.removeprefix("QVFE")).decode().partition(":")
            return int(offset) if kind == "timeline" else None
        except ValueError:
            return None

    def _feed_media(self, post: DPost) -> JSON:
        return {"media_or_ad": self._post_item(post)}

    def _ad_entry(self, page: int) -> JSON:
        """A sponsored post as real answers carry it (dilame ``timeline.feed.response.ts``: ``injected``, ``ad_id``,
        ``ad_action``, ``link``, ``ad_metadata``, ``dr_ad_type``, ``android_links``...)."""
        ad = self._ambient.ad_post
        assert ad is not None
        ad_id = f"2385109384041{page:04d}"
        item = self._post_item(ad)
        item |= {
            "injected": {
                "label": "Sponsored",
                "show_icon": True,
                "hide_label": "Hide ad",
                "invalidation": None,
                "is_demo": False,
                "view_tags": [],
                "is_holdout": False,
                "tracking_token": base64.b64encode(f"ad:{ad_id}".encode()).decode(),
                "show_ad_choices": False,
                "ad_title": ad.user.full_name,
                "about_ad_params": "",
                "direct_share": True,
                "ad_id": ad_id,
                "display_viewability_eligible": False,
                "lead_gen_form_id": 0,
                "is_leadgen_native_eligible": False,
                "hide_reasons_v2": [{"text": "It's not relevant", "reason": "not_relevant"}],
                "hide_flow_type": 1,
                "cookies": [],
            },
            "collapse_comments": True,
            "ad_metadata": [{"value": "ad", "type": 1}],
            "link": "https://brand.example/shop",
            "link_text": "Shop Now",
            "ad_action": "Shop Now",
            "link_hint_text": "brand.example",
            "ad_link_type": 2,
            "ad_header_style": 0,
            "dr_ad_type": 1,
            "android_links": [{"linkType": 1, "webUri": "https://brand.example/shop", "callToActionTitle": "Shop Now"}],
            "ad_id": ad_id,
        }
        return {"media_or_ad": item}

    def _suggested_entry(self, post: DPost) -> JSON:
        """A post of an account not followed, recommended ("Suggested for you")."""
        item = self._post_item(post)
        item["explore"] = {
            "explanation": "Suggested for you",
            "actor_id": str(post.user.pk),
            "source_token": base64.b64encode(f"explore:{post.pk}".encode()).decode(),
        }
        return {"media_or_ad": item}

    def _timeline_cards(self) -> list[tuple[int, JSON]]:
        """The first page's other entries and where they go: the stories card, a suggested post, the suggested-users
        card (a friendship suggestion with a user of its own) and a reels card (a reel of someone not followed)."""
        ambient = self._ambient
        assert ambient.suggested_post is not None and ambient.reel_card is not None
        someone = ambient.users[2]
        stories: JSON = {
            "stories_netego": {
                "tracking_token": base64.b64encode(b"stories_netego").decode(),
                "hide_unit_if_seen": "False",
                "id": 17_913_000_000_000_001,
            }
        }
        suggested_users: JSON = {
            "suggested_users": {
                "type": 2,
                "suggestions": [
                    {
                        "user": self._user_short(someone),
                        "algorithm": "chaining_refill_algorithm",
                        "social_context": "Suggested for you",
                        "icon": "",
                        "caption": "",
                        "media_ids": [],
                        "thumbnail_urls": [],
                        "large_urls": [],
                        "media_infos": [],
                        "value": 1.0,
                        "is_new_suggestion": False,
                        "uuid": str(uuid.UUID(int=someone.pk)),
                    }
                ],
                "landing_site_type": "suggested_user",
                "title": "Suggested for you",
                "view_all_text": "See all",
                "landing_site_title": "Discover people",
                "netego_type": "suggested_users",
                "id": 17_913_000_000_000_002,
                "tracking_token": base64.b64encode(b"suggested_users").decode(),
            }
        }
        reels: JSON = {  # a stand-in for the reels unit: its media inside the card, never a post of the feed
            "clips_netego": {
                "id": 17_913_000_000_000_003,
                "title": "Suggested reels",
                "netego_type": "clips",
                "clips_items": [{"media": self._post_item(ambient.reel_card)}],
                "tracking_token": base64.b64encode(b"clips_netego").decode(),
            }
        }
        return [(1, stories), (3, self._suggested_entry(ambient.suggested_post)), (5, suggested_users), (7, reels)]

    def _demarcator(self, older: list[DPost], cursor: str | None) -> JSON:
        """ "You're all caught up": the followed users' older posts go on in the ``past_posts`` group, with a cursor of
        their own; the answer's ``next_max_id`` is then ``feed_recs_head_load`` (suggested posts)."""
        group: JSON = {
            "id": "past_posts",
            "title": "Older posts",
            "show_group_text": "View older posts",
            "feed_items": [self._feed_media(p) for p in older],
        }
        if cursor is not None:
            group["next_max_id"] = cursor
        return {
            "end_of_feed_demarcator": {
                "id": "end_of_feed_demarcator",
                "title": "You're all caught up",
                "subtitle": f"You've seen all new posts from the past {self.timeline_recent_days:g} days.",
                "pause": True,
                "group_set": {"id": "feed_group_set", "active_group_id": "past_posts", "groups": [group]},
            }
        }

    def _timeline(self, rec: Rec, match: re.Match[str]) -> _Reply:
        """The home feed: the shown followed users' posts newest first, ``timeline_page_size`` of them per page, with
        ads and cards mixed in, the end-of-feed demarcator where the recent posts end, ``next_max_id`` /
        ``more_available``. Also answers instagrapi's own login-flow request (a JSON body)."""
        posts = self._timeline_order()
        size = max(self.timeline_page_size, 1)
        max_id = str(rec.form.get("max_id") or "")
        entries: list[JSON] = []
        cursor: str | None = None
        start = self._timeline_offset(max_id) if max_id else 0
        if max_id == "feed_recs_head_load":  # past the demarcator, into recommendations: no followed user's posts
            entries = [self._suggested_entry(p) for p in self._ambient.recs]
            more = False
            page = -1
        elif start is None:  # a cursor this double never gave
            return _Reply(200, {"num_results": 0, "more_available": False, "feed_items": [], "status": "ok"})
        else:
            page = start // size
            end = min(start + size, len(posts))
            cutoff = time.time() - self.timeline_recent_days * 86400
            recent = next((n for n, p in enumerate(posts) if p.taken_at < cutoff), len(posts))
            caught_up = start <= recent and (recent < end or recent == end == len(posts))  # the recent ones end here
            if math.isfinite(self.timeline_recent_days) and caught_up:
                past = self._timeline_cursor(end) if end < len(posts) else None
                entries = [self._feed_media(p) for p in posts[start:recent]]
                entries.append(self._demarcator(posts[recent:end], past))
                cursor, more = "feed_recs_head_load", True
            else:
                entries = [self._feed_media(p) for p in posts[start:end]]
                more = end < len(posts)
                cursor = self._timeline_cursor(end) if more else None
        if self.timeline_extras:
            if page == 0:
                for at, card in self._timeline_cards():
                    entries.insert(min(at, len(entries)), card)
            entries.insert(min(2, len(entries)), self._ad_entry(page + 1))
        body: JSON = {"num_results": len(entries), "more_available": more, "feed_items": entries}
        if cursor is not None:
            body["next_max_id"] = cursor
        if not self.tidy:
            body |= {
                "auto_load_more_enabled": True,
                "is_direct_v2_enabled": True,
                "pagination_info": {"source": None, "group_id": None},
                "view_state_version": str(uuid.UUID(int=secrets.randbits(128))),
                "client_feed_changelist_applied": False,
                "feed_pill_text": "New posts",
                "client_session_id": str(rec.form.get("session_id") or ""),
                "client_gap_enforcer_matrix": [{"list": [1, 2, 3]}],
                "request_id": str(rec.form.get("request_id") or ""),
                "preload_distance": 6,
            }
        body["status"] = "ok"
        return _Reply(200, body)
