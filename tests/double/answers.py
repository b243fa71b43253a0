"""The authenticated endpoints' answers: the account, the tray, reels, a user's story and feed, user info,
the following list, seen, story and post likes, media info."""

from __future__ import annotations

import copy
import json
import re
import time

from tests.double.bodies import MEDIA_UNAVAILABLE_BODY, NOT_AUTHORIZED_BODY, USER_NOT_FOUND_BODY
from tests.double.common import JSON, _rand
from tests.double.extras import Extras
from tests.double.server import Rec, _Reply
from tests.double.world import DPost, DStory, DUser, SeenRequest


class Answers(Extras):
    """One handler per authenticated endpoint (the home feed's is in ``timeline``)."""

    def _not_supported(self, rec: Rec, match: re.Match[str]) -> _Reply:
        """Authed endpoints instagrapi only reaches as a fallback: 403 without a session, else 404."""
        return _Reply(404, {"message": f"Not supported by the double: {rec.path}", "status": "fail"})

    def _current_user(self, rec: Rec, match: re.Match[str]) -> _Reply:
        return _Reply(200, {"user": self._account_json(), "status": "ok"})

    def _logout(self, rec: Rec, match: re.Match[str]) -> _Reply:
        self.session_expired = True
        return _Reply(200, {"status": "ok"})

    def _reels_tray(self, rec: Rec, match: re.Match[str]) -> _Reply:
        """The tray as the app gets it: the own reel first, unseen reels before seen ones, an ad and hashtag
        reels mixed in, only the first ``tray_items`` entries with items, at most ``page_size`` entries."""
        groups = self._live_groups()
        reels = [self._reel(user, self._live_stories(user, groups), items=False) for user in self._tray_users(groups)]
        # unseen reels first, newest first (Instagram ranks; this is a stable approximation)
        reels.sort(key=lambda r: (r["seen"] >= r["latest_reel_media"], -r["latest_reel_media"]))
        body: JSON = {"story_ranking_token": _rand(24), "broadcasts": [], "sticker_version": 0}
        if self.tray_extras:
            entries, suggestions, lives = self._extra_entries(groups)
            hashtag_and_location, ad = entries[:2], entries[2:]
            reels[1:1] = ad  # injected near the front
            reels[4:4] = hashtag_and_location[:1]
            reels += hashtag_and_location[1:]
            own = self._live_stories(self.me, groups)
            if own:
                reels.insert(0, self._reel(self.me, own, items=False))
            body |= {"suggestions": suggestions, **lives}
        try:
            page_size = int(rec.form.get("page_size") or 50)
        except (TypeError, ValueError):
            page_size = 50
        if not self.tidy:
            reels = reels[: max(page_size, 1)]
        for position, reel in enumerate(reels):
            reel["ranked_position"] = reel["seen_ranked_position"] = position + 1
            if position < self.tray_items and "items" not in reel:
                user = self._find_user(str(reel.get("strong_id__", "")))
                if user is not None:
                    reel["items"] = [self._story_item(s, fetched=False) for s in self._live_stories(user, groups)]
            elif position >= self.tray_items:
                reel.pop("items", None)
        body |= {
            "tray": reels,
            "face_filter_nux_version": 0,
            "has_new_nux_story": False,
            "stories_viewer_gestures_nux_eligible": False,
            "status": "ok",
        }
        if self.tidy:
            body = {k: body[k] for k in ("tray", "story_ranking_token", "broadcasts", "sticker_version")} | {
                "face_filter_nux_version": 0,
                "has_new_nux_story": False,
                "status": "ok",
            }
        return _Reply(200, body)

    def _reels_media(self, rec: Rec, match: re.Match[str]) -> _Reply:
        raw = rec.form.get("user_ids", [])
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raw = raw.split(",")
        if not isinstance(raw, list):
            raw = [raw]
        reels: dict[str, JSON] = {}
        groups = self._live_groups()
        for key in (str(value).strip() for value in raw):
            user = self._find_user(key) if key.isdigit() else None
            if user is None or not self._can_view(user) or user.gone_on_fetch:
                continue
            stories = self._live_stories(user, groups)
            if stories:
                reels[str(user.pk)] = self._reel(user, stories)
        return _Reply(200, {"reels": reels, "reels_media": list(reels.values()), "status": "ok"})

    def _user_story(self, rec: Rec, match: re.Match[str]) -> _Reply:
        user = self._find_user(match.group(1))
        if user is None:
            return _Reply(404, dict(USER_NOT_FOUND_BODY))
        if not self._can_view(user):
            return _Reply(400, dict(NOT_AUTHORIZED_BODY))
        stories = [] if user.gone_on_fetch else self._live_stories(user)
        reel = self._reel(user, stories) if stories else None
        broadcast = self._broadcast(user, "active") if user.live else None
        return _Reply(200, {"broadcast": broadcast, "reel": reel, "status": "ok"})

    def _feed_posts(self, user: DUser) -> list[DPost]:
        """A user's feed: their own posts and the collabs they are a coauthor of; pinned ones first."""
        posts = [p for p in self.posts if p.user is user or user in p.coauthors]
        if self.tidy:
            return sorted(posts, key=lambda p: (-p.taken_at, -p.pk))
        return sorted(posts, key=lambda p: (not (p.pinned and p.user is user), -p.taken_at, -p.pk))

    def _user_feed(self, rec: Rec, match: re.Match[str]) -> _Reply:
        user = self._find_user(match.group(1))
        if user is None:
            return _Reply(404, dict(USER_NOT_FOUND_BODY))
        if not self._can_view(user):
            return _Reply(400, dict(NOT_AUTHORIZED_BODY))
        posts = self._feed_posts(user)
        try:
            count = int(rec.query.get("count") or 0)
        except ValueError:
            count = 0
        page_size = count if count > 0 else 12
        start = 0
        max_id = rec.query.get("max_id", "")
        if max_id:
            ids = [p.id for p in posts]
            start = ids.index(max_id) + 1 if max_id in ids else len(posts)
        page = posts[start : start + page_size]
        more = start + page_size < len(posts)
        body: JSON = {
            "items": [self._post_item(p) for p in page],
            "num_results": len(page),
            "more_available": more,
            "auto_load_more_enabled": True,
            "status": "ok",
        }
        if more and page:
            body["next_max_id"] = page[-1].id
        return _Reply(200, body)

    def _user_info(self, rec: Rec, match: re.Match[str]) -> _Reply:
        user = self._find_user(match.group(1))
        if user is None:
            return _Reply(404, dict(USER_NOT_FOUND_BODY))
        return _Reply(200, {"user": self._user_full(user), "status": "ok"})

    def _usernameinfo(self, rec: Rec, match: re.Match[str]) -> _Reply:
        """Real answers carry no ``friendship_status``: they do not say whether you follow the user."""
        user = self._find_user(match.group(1))
        if user is None or match.group(1).isdigit():
            return _Reply(404, dict(USER_NOT_FOUND_BODY))
        return _Reply(200, {"user": self._user_full(user, friendship=self.lookup_friendship), "status": "ok"})

    def _following(self, rec: Rec, match: re.Match[str]) -> _Reply:
        followed = [u for u in reversed(self.users) if u.followed] if int(match.group(1)) == self.own_pk else []
        try:
            count = int(rec.query.get("count") or 200)
            start = int(rec.query.get("max_id") or 0)
        except ValueError:
            return _Reply(400, {"message": "Invalid parameters", "status": "fail"})
        count = count if count > 0 else 200
        page = followed[start : start + count]
        more = start + count < len(followed)
        body: JSON = {
            "users": [self._user_short(u, pk_as_string=True) for u in page],
            "big_list": more,
            "page_size": count,
            "has_more": more,
            "should_limit_list_of_followers": False,
            "status": "ok",
        }
        if more:
            body["next_max_id"] = str(start + count)
        return _Reply(200, body)

    def _media_seen(self, rec: Rec, match: re.Match[str]) -> _Reply:
        reels = rec.form.get("reels") or {}
        if isinstance(reels, str):
            try:
                reels = json.loads(reels)
            except ValueError:
                reels = {}
        reels = reels if isinstance(reels, dict) else {}
        self.seen_requests.append(SeenRequest(len(self.requests) - 1, copy.deepcopy(reels), time.time()))
        for key in reels:
            parts = str(key).split("_")
            if len(parts) >= 2:
                story = self._find_media(parts[0])
                if isinstance(story, DStory) and str(story.user.pk) == parts[1]:
                    self.seen_story_ids.add(story.id)
        return _Reply(200, {"status": "ok"})

    def _story_like(self, rec: Rec, match: re.Match[str]) -> _Reply:
        media_id = str(rec.form.get("media_id", ""))
        story = self._find_media(media_id.split("_")[0])
        if not isinstance(story, DStory) or story.id != media_id or not story.live or not self._can_view(story.user):
            return _Reply(400, dict(MEDIA_UNAVAILABLE_BODY))
        if match.group(1) == "send":
            self.liked_story_ids.add(story.id)
        else:
            self.liked_story_ids.discard(story.id)
        return _Reply(200, {"status": "ok"})

    def _media_like(self, rec: Rec, match: re.Match[str]) -> _Reply:
        post = self._find_media(match.group(1))
        if not isinstance(post, DPost) or not self._can_view(post.user):
            return _Reply(400, dict(MEDIA_UNAVAILABLE_BODY))
        if match.group(2) == "like" and not post.liked:
            self.liked_media_ids.add(post.id)
            post.like_count += 1
        elif match.group(2) == "unlike" and post.liked:
            self.liked_media_ids.discard(post.id)
            post.like_count -= 1
        return _Reply(200, {"status": "ok"})

    def _media_info(self, rec: Rec, match: re.Match[str]) -> _Reply:
        media = self._find_media(match.group(1))
        if media is None or not self._can_view(media.user) or (isinstance(media, DStory) and not media.live):
            return _Reply(400, dict(MEDIA_UNAVAILABLE_BODY))
        item = self._story_item(media) if isinstance(media, DStory) else self._post_item(media)
        return _Reply(200, {"items": [item], "num_results": 1, "more_available": False, "status": "ok"})
