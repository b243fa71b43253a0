"""The real-shape JSON builders: users, friendships, story items, reels and posts as Instagram answers them
(see the package docstring), and the lookups they share."""

from __future__ import annotations

import base64
import time

from tests.double.common import CDN, JSON, PROFILE_CDN, shortcode
from tests.double.state import DoubleState
from tests.double.world import DPost, DStory, DUser


class Shapes(DoubleState):
    """The JSON of the world's users and media, and finding them."""

    def _find_user(self, key: str) -> DUser | None:
        for user in [self.me, *self.users, *self._ambient.users]:
            if str(user.pk) == key or user.username.lower() == key.lower():
                return user
        return None

    def _can_view(self, user: DUser) -> bool:
        return user is self.me or not user.private or user.followed

    def _all_stories(self) -> list[DStory]:
        return [*self.stories, *self._ambient.stories]

    def _live_stories(self, user: DUser, groups: dict[int, list[DStory]] | None = None) -> list[DStory]:
        if groups is not None:
            return groups.get(id(user), [])
        stories = [s for s in self._all_stories() if s.user is user and s.live]
        return sorted(stories, key=lambda s: (s.taken_at, s.pk))

    def _live_groups(self) -> dict[int, list[DStory]]:
        """Live stories by ``id(user)``, oldest first: one pass for the batch endpoints."""
        groups: dict[int, list[DStory]] = {}
        now = time.time()
        for story in sorted(self._all_stories(), key=lambda s: (s.taken_at, s.pk)):
            if story.expiring_at > now:
                groups.setdefault(id(story.user), []).append(story)
        return groups

    def _mixed(self, value: int, as_string: bool) -> int | str:
        """Real answers carry ids as numbers in some places and strings in others; tidy answers: numbers."""
        return str(value) if as_string and not self.tidy else value

    @staticmethod
    def _profile_pic(user: DUser) -> str:
        return f"{PROFILE_CDN}/{user.pk}_{user.pk % 997}_n.jpg?stp=dst-jpg_s150x150"

    def _friendship(self, user: DUser) -> JSON:
        return {
            "following": user.followed,
            "followed_by": False,
            "blocking": False,
            "muting": user.muted,
            "is_private": user.private,
            "incoming_request": False,
            "outgoing_request": False,
            "is_bestie": False,
            "is_restricted": False,
            "is_feed_favorite": False,
        }

    def _user_short(self, user: DUser, *, pk_as_string: bool = False) -> JSON:
        return {
            "pk": self._mixed(user.pk, pk_as_string),
            "pk_id": str(user.pk),
            "id": str(user.pk),
            "strong_id__": str(user.pk),
            "username": user.username,
            "full_name": user.full_name,
            "is_private": user.private,
            "is_verified": False,
            "profile_pic_id": f"{3_000_000_000_000_000_000 + user.pk}_{user.pk}",
            "profile_pic_url": self._profile_pic(user),
            "has_anonymous_profile_picture": False,
            "account_badges": [],
            "fbid_v2": str(17_841_400_000_000_000 + user.pk),
        }

    def _reel_user(self, user: DUser) -> JSON:
        """The ``user`` of a tray entry or reel: a short user (a number pk for most, a string for some)."""
        return {**self._user_short(user, pk_as_string=user.pk % 3 == 0), "friendship_status": self._friendship(user)}

    def _user_full(self, user: DUser, *, friendship: bool = True) -> JSON:
        stories = self._live_stories(user) if self._can_view(user) else []
        full = {
            **self._user_short(user),
            "biography": "",
            "external_url": "",
            "bio_links": [],
            "media_count": sum(1 for p in self.posts if p.user is user),
            "follower_count": 100 + user.pk % 1000,
            "following_count": 50 + user.pk % 300,
            "is_business": False,
            "account_type": 1,
            "has_highlight_reels": False,
            "latest_reel_media": stories[-1].taken_at if stories else 0,
            "hd_profile_pic_url_info": {"url": self._profile_pic(user), "width": 320, "height": 320},
            "total_igtv_videos": 0,
            "has_videos": any(p.user is user and p.media_type == 2 for p in self.posts),
        }
        if friendship:
            full["friendship_status"] = self._friendship(user)
        return full

    def _account_json(self) -> JSON:
        return {
            **self._user_short(self.me),
            "biography": "",
            "external_url": "",
            "is_business": False,
            "birthday": None,
            "phone_number": "",
            "country_code": 1,
            "national_number": None,
            "gender": 3,
            "email": f"{self.username}@example.com",
            "has_anonymous_profile_picture": True,
        }

    @staticmethod
    def _image_versions(pk: int, width: int, height: int) -> JSON:
        return {
            "candidates": [
                {"width": width, "height": height, "url": f"{CDN}/{pk}_n.jpg?stp=dst-jpg_e35"},
                {"width": width // 2, "height": height // 2, "url": f"{CDN}/{pk}_n.jpg?stp=dst-jpg_s480x480"},
            ]
        }

    @staticmethod
    def _video_versions(pk: int, width: int, height: int) -> list[JSON]:
        return [{"type": 101, "width": width, "height": height, "url": f"{CDN}/{pk}_video.mp4", "id": str(pk)}]

    def _story_item(self, story: DStory, *, fetched: bool = True) -> JSON:
        """One story item. Real answers: the pk a string for some items and a number for others, the item's
        ``user`` minimal (``{pk, is_private}``), plus ``audience``, ``story_feed_media``, segment fields.
        ``fetched``: an answer that counts for :meth:`break_story` (not the tray's prefetched items)."""
        if self.tidy:
            user: JSON = {**self._user_short(story.user), "friendship_status": self._friendship(story.user)}
        else:
            user = {"pk": self._mixed(story.user.pk, story.pk % 4 == 1), "is_private": story.user.private}
        item: JSON = {
            "taken_at": story.taken_at,
            "pk": str(story.pk) if self.tidy or story.pk % 2 == 0 else story.pk,
            "id": story.id,
            "media_type": story.media_type,
            "code": shortcode(story.pk),
            "caption": None,
            "user": user,
            "image_versions2": self._image_versions(story.pk, 1080, 1920),
            "original_width": 1080,
            "original_height": 1920,
            "expiring_at": story.expiring_at,
            "has_liked": story.liked,
            "can_reply": True,
            "can_reshare": True,
            "can_send_custom_emojis": True,
            "is_reel_media": True,
            "product_type": "story",
            "organic_tracking_token": base64.b64encode(f"tt:{story.pk}".encode()).decode(),
            "story_is_saved_to_archive": False,
            "supports_reel_reactions": True,
        }
        if story.media_type == 2:
            item["video_versions"] = self._video_versions(story.pk, 720, 1280)
            item["video_duration"] = story.video_duration
            item["has_audio"] = True
        if story.audience:
            item["audience"] = story.audience
        if story.reshared:
            item["story_feed_media"] = [
                {
                    "x": 0.5,
                    "y": 0.5,
                    "z": 0,
                    "width": 0.8,
                    "height": 0.55,
                    "rotation": 0.0,
                    "is_pinned": 0,
                    "is_hidden": 0,
                    "is_sticker": 1,
                    "is_fb_sticker": 0,
                    "media_id": story.reshared,
                    "product_type": "feed",
                    "media_code": shortcode(int(story.reshared.split("_")[0])),
                }
            ]
        if story.segment_group:
            group = [s for s in self._all_stories() if s.segment_group == story.segment_group]
            item["segmented_video_group_id"] = story.segment_group
            item["is_terminal_video_segment"] = story is group[-1]
        if fetched and story.broken > 0:
            story.broken -= 1
            del item["taken_at"]
        return item

    def _seen_ts(self, stories: list[DStory]) -> int:
        return max((s.taken_at for s in stories if s.seen), default=0)

    def _reel(self, user: DUser, stories: list[DStory], *, items: bool = True, fetched: bool = True) -> JSON:
        reel: JSON = {
            "id": self._mixed(user.pk, user.pk % 2 == 0),
            "strong_id__": str(user.pk),
            "latest_reel_media": stories[-1].taken_at,
            "expiring_at": stories[-1].expiring_at,
            "seen": self._seen_ts(stories),
            "can_reply": True,
            "can_gif_quick_reply": True,
            "can_reshare": True,
            "reel_type": "user_reel",
            "is_sensitive_vertical_ad": False,
            "user": self._reel_user(user),
            "media_count": len(stories),
            "media_ids": [s.pk if self.tidy else str(s.pk) for s in stories],
        }
        if not self.tidy:
            besties = [s.taken_at for s in stories if s.audience == "besties"]
            reel |= {"prefetch_count": 0, "has_besties_media": bool(besties), "has_pride_media": False}
            if besties:
                reel["latest_besties_reel_media"] = float(max(besties))  # a float in real answers
        if items:
            reel["items"] = [self._story_item(s, fetched=fetched) for s in stories]
        return reel

    def _post_item(self, post: DPost) -> JSON:
        item: JSON = {
            "taken_at": post.taken_at,
            "pk": post.pk if self.tidy or post.pk % 2 else str(post.pk),
            "id": post.id,
            "media_type": post.media_type,
            "product_type": post.product_type if post.media_type != 8 else "carousel_container",
            "code": post.code,
            "user": self._user_short(post.user),
            "has_liked": post.liked,
            "like_count": post.like_count,
            "comment_count": 0,
            "caption": None,
            "caption_is_edited": False,
            "original_width": 1080,
            "original_height": 1350,
            "image_versions2": self._image_versions(post.pk, 1080, 1350),
            "organic_tracking_token": base64.b64encode(f"tt:{post.pk}".encode()).decode(),
            "can_viewer_reshare": True,
            "like_and_view_counts_disabled": False,
        }
        if not self.tidy:
            item["timeline_pinned_user_ids"] = [post.user.pk] if post.pinned else []
            item["clips_tab_pinned_user_ids"] = []
        if post.coauthors:
            item["coauthor_producers"] = [self._user_short(u) for u in post.coauthors]
        if post.media_type == 2:
            item["video_versions"] = self._video_versions(post.pk, 720, 1280)
            item["video_duration"] = 14.2
            item["has_audio"] = True
            item["play_count"] = 1000 + post.pk % 1000
        if post.media_type == 8:
            del item["image_versions2"]
            item["carousel_media_count"] = 2
            item["carousel_media"] = [
                {
                    "pk": post.pk + n,
                    "id": f"{post.pk + n}_{post.user.pk}",
                    "media_type": 1,
                    "carousel_parent_id": post.id,
                    "image_versions2": self._image_versions(post.pk + n, 1080, 1350),
                    "original_width": 1080,
                    "original_height": 1350,
                }
                for n in (1, 2)
            ]
        return item

    def _find_media(self, pk: str) -> DStory | DPost | None:
        medias: list[DStory | DPost] = [*self._all_stories(), *self.posts, *self._ambient.posts]
        for media in medias:
            if str(media.pk) == pk:
                return media
        return None
