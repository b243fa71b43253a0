"""The tray's other entries (the own reel, hashtag, location and ad reels, suggestions, lives) and the home
feed's (a sponsored post, suggested posts, a reel card); which followed users the tray shows."""

from __future__ import annotations

import base64
import hashlib
import itertools
import time

from tests.double.common import CDN, JSON, PROFILE_CDN, STORY_TTL
from tests.double.shapes import Shapes
from tests.double.world import DPost, DStory, DUser, _Ambient


class Extras(Shapes):
    """What a real tray and home feed hold besides the followed users' reels and posts."""

    def _make_ambient(self) -> _Ambient:
        """What a real tray holds besides the followed users' reels (REAL_SHAPES.md, "The tray"): the own reel,
        hashtag and location reels, an injected ad, suggested reels, a live broadcast and a post-live item; and
        what the home feed holds besides the followed users' posts: a sponsored post, suggested posts, a reel in a
        reels card. Their users are not in ``users`` (never followed, never targets); their stories and posts can
        be liked through the double like any other, so a test sees it if the code ever does."""
        pks = itertools.count(71_900_000_011, 1_000_033)

        def someone(name: str) -> DUser:
            return DUser(next(pks), name, followed=False, full_name=name.replace(".", " ").title())

        hikers, sponsor, suggested, streamer, replay = (
            someone("wander.jo"),
            someone("brand.shop"),
            someone("suggested.sam"),
            someone("live.larry"),
            someone("replay.rita"),
        )
        streamer.live = True
        ambient = _Ambient(users=[hikers, sponsor, suggested, streamer, replay])
        now = int(time.time())

        def story(user: DUser, age: int) -> DStory:
            made = DStory(next(self._media_pks), user, now - age, self)
            ambient.stories.append(made)
            return made

        ambient.own = [story(self.me, 7200)]
        ambient.hashtag = [story(hikers, 900), story(hikers, 300)]
        ambient.ad = [story(sponsor, 60)]
        ambient.suggested = [story(suggested, 1200)]

        post_pks = itertools.count(3_498_100_000_000_000_023, 1_000_000_009)  # apart from the test's media pks

        def post(user: DUser, age: int, media_type: int = 1, product_type: str = "feed") -> DPost:
            made = DPost(next(post_pks), user, now - age, self, media_type, product_type, like_count=40)
            ambient.posts.append(made)
            return made

        ambient.ad_post = post(sponsor, 3 * 86400)
        ambient.suggested_post = post(suggested, 5 * 3600, 8)
        ambient.reel_card = post(hikers, 2 * 3600, 2, "clips")
        ambient.recs = [post(suggested, 9 * 3600), post(replay, 30 * 3600, 2, "clips")]
        return ambient

    def _broadcast(self, user: DUser, status: str) -> JSON:
        started = int(time.time()) - 600
        return {
            "id": str(17_900_000_000_000_000 + user.pk),
            "broadcast_status": status,
            "broadcast_owner": self._user_short(user),
            "cobroadcasters": [],
            "published_time": started,
            "media_id": f"{3_400_000_000_000_000_000 + user.pk}_{user.pk}",
            "dash_playback_url": f"https://instagram.fxyz1-1.fna.fbcdn.net/hvideo-ash/{user.pk}.mpd",
            "cover_frame_url": f"{CDN}/{user.pk}_cover.jpg",
            "viewer_count": 12,
            "organic_tracking_token": base64.b64encode(f"live:{user.pk}".encode()).decode(),
            "can_reply": False,
            "can_reshare": True,
            "muted": False,
            "ranked_position": 1,
            "seen_ranked_position": 1,
            "expire_at": started + STORY_TTL,
            "last_seen_broadcast_ts": 0,
            "hide_from_feed_unit": False,
        }

    def _extra_entries(self, groups: dict[int, list[DStory]]) -> tuple[list[JSON], list[JSON], JSON]:
        """The hashtag, location and ad entries of the tray; the suggestions; the lives (broadcasts, post_live)."""
        ambient = self._ambient
        hashtag = self._live_stories(ambient.hashtag[0].user, groups)
        entries: list[JSON] = []
        if hashtag:
            entries.append(
                {
                    "id": "tag:travel",
                    "latest_reel_media": hashtag[-1].taken_at,
                    "expiring_at": hashtag[-1].expiring_at,
                    "seen": 0,
                    "can_reply": False,
                    "can_reshare": True,
                    "reel_type": "mas_reel",
                    "owner": {
                        "type": 2,
                        "pk": "17841563119107000",
                        "name": "#travel",
                        "profile_pic_url": f"{PROFILE_CDN}/travel.jpg",
                        "profile_pic_username": ambient.hashtag[0].user.username,
                    },
                    "title": "#travel",
                    "items": [self._story_item(s, fetched=False) for s in hashtag],
                    "media_count": len(hashtag),
                    "media_ids": [str(s.pk) for s in hashtag],
                    "unique_integer_reel_id": "17841563119107000",
                }
            )
            entries.append(
                {
                    "id": "loc:213385402",
                    "latest_reel_media": hashtag[0].taken_at,
                    "expiring_at": hashtag[0].expiring_at,
                    "seen": 0,
                    "can_reply": False,
                    "can_reshare": True,
                    "reel_type": "mas_reel",
                    "owner": {
                        "type": 1,
                        "pk": "213385402",
                        "name": "Berlin, Germany",
                        "short_name": "Berlin",
                        "lat": 52.5167,
                        "lng": 13.3833,
                        "profile_pic_url": f"{PROFILE_CDN}/berlin.jpg",
                    },
                    "location": {"pk": 213385402, "name": "Berlin, Germany", "lat": 52.5167, "lng": 13.3833},
                    "media_count": 1,
                    "media_ids": [str(hashtag[0].pk)],
                }
            )
        ad = self._live_stories(ambient.ad[0].user, groups)
        if ad:
            sponsor = ambient.ad[0].user
            injected = {
                "label": "Sponsored",
                "show_icon": True,
                "hide_label": "Hide Ad",
                "is_demo": False,
                "view_tags": [],
                "is_holdout": False,
                "tracking_token": base64.b64encode(f"ad:{sponsor.pk}".encode()).decode(),
                "show_ad_choices": False,
                "ad_title": sponsor.full_name,
                "ad_id": "23851093840410563",
                "direct_share": False,
            }
            ad_reel = self._reel(sponsor, ad, fetched=False)
            for item in ad_reel["items"]:
                item["injected"] = injected
            entries.append({**ad_reel, "id": sponsor.pk, "ad_id": "23851093840410563", "injected": injected})
        suggested = self._live_stories(ambient.suggested[0].user, groups)
        suggestions = []
        if suggested:
            suggestions.append(
                {
                    "tray": [self._reel(ambient.suggested[0].user, suggested, items=False)],
                    "tray_title": "Suggested for you",
                    "banner_title": "Suggested reels",
                    "banner_subtitle": "",
                    "suggestion_type": "suggested_reels",
                }
            )
        lives: JSON = {
            "broadcasts": [self._broadcast(u, "active") for u in [*self._ambient.users, *self.users] if u.live],
            "post_live": {
                "post_live_items": [
                    {
                        "pk": f"post_live_{ambient.users[-1].pk}",
                        "user": self._user_short(ambient.users[-1]),
                        "broadcasts": [self._broadcast(ambient.users[-1], "post_live")],
                        "peak_viewer_count": 31,
                        "last_seen_broadcast_ts": 0,
                        "can_reply": False,
                        "ranked_position": 1,
                        "seen_ranked_position": 1,
                        "muted": False,
                        "can_reshare": True,
                    }
                ]
            },
        }
        return entries, suggestions, lives

    def _tray_candidates(self, groups: dict[int, list[DStory]]) -> list[DUser]:
        """The followed users with live stories (what a lossless tray would list)."""
        return [u for u in self.users if u.followed and self._live_stories(u, groups)]

    def _tray_users(self, groups: dict[int, list[DStory]]) -> list[DUser]:
        """The candidates the tray actually lists: muted ones never, those ``in_tray=False`` never, and the
        share ``tray_drop`` of the others left out (always the same ones: ranked by a hash of their pk)."""
        shown = [u for u in self._tray_candidates(groups) if u.in_tray and not u.muted]
        drop = round(len(shown) * self.tray_drop)
        if drop <= 0:
            return shown
        ranked = sorted(shown, key=lambda u: hashlib.sha256(f"tray:{u.pk}".encode()).digest())
        dropped = set(map(id, ranked[:drop]))
        return [u for u in shown if id(u) not in dropped]
