"""A local Instagram double: a threaded HTTP server speaking Instagram's private API.

The REAL instagrapi ``Client`` is pointed at it (nothing is mocked inside instagrapi), so the
tests exercise instagrapi's own request building, response parsing and exception mapping::

    with InstagramDouble() as ig:
        alice = ig.add_user("alice")
        story = ig.add_story(alice)
        client = new_client(ig)                      # logged in with ig.settings()
        client.story_like(story.id, mark_seen=False)
        assert ig.liked_story_ids == {story.id}
        assert ig.count("send_story_like") == 1

Real shapes by default, tidy ones on request
--------------------------------------------
The default answers follow the interfaces generated from captured answers
(dilame/instagram-private-api ``src/responses/*.ts`` and ``src/services/story.service.ts``;
marciopronin/instagram-private-test ``src/Response/{ReelsTrayFeedResponse,Model/StoryTray,Reel,Owner,
Injected,Broadcast,PostLive,PostLiveItem,TraySuggestions}.php``):

- tray (``feed/reels_tray/``): the own reel first; items on the first ``tray_items`` entries only, the
  rest metadata (``latest_reel_media``, ``seen``, ``expiring_at``, ``media_count``, ``media_ids`` as
  strings, ``ranked_position``, ``muted``, ``has_besties_media``, ``latest_besties_reel_media`` as a
  float); an injected ad reel (``ad_id``, ``injected``, a sponsor ``user``), a hashtag reel
  (``mas_reel``, ``id`` "tag:travel", an ``owner``, no ``user``) and a location reel; ``suggestions``
  with their own ``tray``; ``broadcasts`` and ``post_live.post_live_items``; at most ``page_size``
  entries; muted users never, ``tray_drop`` of the followed users with stories left out (lossy);
- ids: reel ``id`` and ``user.pk`` numbers for some users and strings for others, item pks 19 digits
  (beyond 2^53) as strings or numbers, following pks as strings;
- reels (``feed/reels_media/``, ``feed/user/{pk}/story/``): ``reels`` keyed by string pk plus the same
  reels as a ``reels_media`` list; minimal item users (``{pk, is_private}``); ``audience: "besties"``,
  ``story_feed_media``, ``segmented_video_group_id``; ``{"reel": null}`` when empty, 400 "Not authorized
  to view user" for a private account not followed; :meth:`InstagramDouble.expire_on_fetch` (listed in
  the tray, gone when fetched), :meth:`InstagramDouble.break_story` (the next answers carry it malformed);
- ``usernameinfo`` without ``friendship_status``; the following list with ``next_max_id``, ``big_list``,
  ``page_size``;
- posts (``feed/user/{pk}/``): pinned first whatever their age (``timeline_pinned_user_ids``), carousels,
  clips, collabs (``coauthor_producers``, in each coauthor's feed, authored by the poster);
- the home feed (``POST feed/timeline/``; dilame ``src/responses/timeline.feed.response.ts`` and
  ``src/feeds/timeline.feed.ts``, marciopronin ``src/Response/TimelineFeedResponse.php``,
  ``Model/FeedItem.php``, ``src/Request/Timeline.php``; the caught-up demarcator as masuvern/barinsta
  ``app/src/main/java/awais/instagrabber/webservices/FeedService.java`` and sbertix/Swiftagram read it):
  ``feed_items`` of ``{"media_or_ad": media}``, the shown followed users' posts (and collabs of theirs) newest
  first, ``timeline_page_size`` per page, ``next_max_id``/``more_available``; mixed in: a sponsored post on
  every page (``injected``, ``ad_id``, ``ad_action``, ``dr_ad_type``, ``ad_metadata``, ``link``...), and on the
  first a ``stories_netego`` card, a "Suggested for you" post of an account not followed (``explore``), a
  ``suggested_users`` card and a ``clips_netego`` card holding a reel (its inner shape a stand-in); where the
  posts of the last ``timeline_recent_days`` end, an ``end_of_feed_demarcator`` whose
  ``group_set.groups[id="past_posts"]`` carries the next older posts and the cursor to the rest, while the
  answer's own ``next_max_id`` is ``feed_recs_head_load`` (one page of suggested posts, then no more); lossy:
  ``timeline_drop`` of the followed users with posts and those ``in_timeline=False`` never appear
  (:meth:`InstagramDouble.timeline_dropped`, :meth:`InstagramDouble.timeline_posts`,
  :attr:`InstagramDouble.extra_posts`). It answers instagrapi's own ``get_timeline_feed`` (a JSON body) too;
- every seen request is kept in ``seen_requests`` (``reels`` as sent, its place in ``requests``).

``InstagramDouble(tidy=True)`` answers the way code would like it (no extras, no metadata-only entries,
one type per field, full users with a friendship status, ``usernameinfo`` with ``friendship_status``, a home
feed of posts only, lossless, without a demarcator); ``tray_items``, ``tray_extras``, ``tray_drop``,
``lookup_friendship``, ``timeline_page_size``, ``timeline_extras``, ``timeline_drop`` and
``timeline_recent_days`` switch single traits (also as attributes at run time).

Pointing a client at the double (what :func:`point_client` does)
------------------------------------------------------------------
``Client(private_transport="requests", with_challenge_flow=False)``, then, in this order:

1. ``client.set_settings(ig.settings())`` if the client should start logged in. ``set_settings``
   runs ``init()``, which calls ``set_retry_config(request_timeout=<saved value>, ...)``: the
   saved ``request_timeout`` (instagrapi's default is 1) comes back, so everything below must
   happen AFTER loading settings.
2. ``client.set_retry_config(request_timeout=0, session_retry_total=0,
   public_request_retries_count=1, public_request_retries_timeout=0)``:

   - ``request_timeout`` is ``time.sleep(request_timeout)`` before every private request that
     is not a login step (``mixins/private.py`` ``_send_private_request``), before every
     ``graphql_www`` request and before every public request. It is not an HTTP timeout.
   - ``session_retry_total`` feeds the urllib3 ``Retry`` of the ``requests`` adapter that
     instagrapi mounts on ``https://`` (statuses 429/500/502/503/504, backoff 2).
     ``set_retry_config`` re-mounts that adapter with the new values.
   - ``public_request_retries_count`` is the number of ATTEMPTS of ``public_request`` (0 means
     the loop never runs and it returns ``None``); ``public_request_retries_timeout`` is the
     sleep between them.
3. ``client.delay_range = None`` (the default; a range adds a random sleep per request).
4. ``redirect_to(client.private, url)``, ``redirect_to(client.public, url)`` and
   ``redirect_to(client.graphql, url)`` (``story_liker/ig/transport.py``). The public session
   matters even for private-API apps: ``password_encrypt`` fetches the login public key with
   ``client.public.get("https://i.instagram.com/api/v1/qe/sync/")``.
   The redirect adapter has ``max_retries=0`` and is mounted on the host prefixes, so it wins
   over instagrapi's retrying ``https://`` adapter: against the double no urllib3 retry can
   ever happen, whatever ``session_retry_total`` says. (So the double cannot catch an app
   that forgets to zero it; check ``client.session_retry_total`` directly for that.)
5. ``with_default_timeout(client.private, seconds)`` (and ``client.public``): instagrapi sets
   no HTTP timeout on private requests.

Then one instagrapi call = one HTTP request for: ``account_info``, ``user_info_v1``,
``user_info_by_username_v1``, ``user_stories_v1``, ``get_reels_tray_feed``,
``private_request("feed/reels_media/", ...)``, ``story_seen`` (with full ids),
``story_like(full_id, mark_seen=False)``, ``media_like(full_id)``,
``user_medias_paginated_v1``. ``story_like`` with the default ``mark_seen=True`` makes 3
(``media/{pk}/info/``, ``/api/v2/media/seen/``, the like).

Other instagrapi traps seen while building this (instagrapi 3.2.2):

- ``private_request`` itself retries once after ``ClientRequestTimeout`` (HTTP 408, after
  ``sleep(60)``) and after ``ClientIncompleteReadError`` (chunked-encoding error, after
  ``sleep(2)``); the double never produces either unless you ask ``fail(status=408)`` or
  ``short_read(...)``. (``story_liker.ig.adapter`` replaces ``private_request`` with a one-shot version.)
- ``user_medias_paginated_v1``/``user_medias_v1`` swallow every exception that is not a
  ``PrivateError`` (429 ``ClientThrottledError``, ``ClientConnectionError``,
  ``ClientJSONDecodeError``...) and return an empty list: use ``private_request`` for feeds.
- Public requests sleep 1 s if the previous public response is less than 1 s old.
- A 400 whose message contains "The username you entered" raises ``ProxyAddressIsBlocked``
  (that is what the double answers to an unknown username at ``accounts/login/``).

Login flows the double answers (see ``_login_*`` handlers and the test file):

- ``login_by_sessionid(ig.sessionid)``: ``GET users/{pk}/info/``.
- ``login(username, password)`` (CAA/Bloks): ``POST b.i /graphql_www`` (USDID registration,
  only for a device that never registered), ``bloks/async_action/...process_client_data_and_redirect/``
  (returns the ``aac``), ``attestation/create_android_keystore/``,
  ``bloks/async_action/com.bloks.www.caa.login.oauth.token.fetch.async/``, public
  ``GET qe/sync/`` (password key), ``bloks/async_action/...send_login_request/`` (returns the
  embedded login response with ``IG-Set-Authorization``), then ``login_flow()``:
  ``feed/reels_tray/`` and ``feed/timeline/``.
- TOTP (``totp_seed`` set): ``send_login_request`` answers a Bloks
  ``two_step_verification_context``; without ``verification_code`` instagrapi raises
  ``TwoFactorRequired``; with it: ``bloks/apps/...two_step_verification.entrypoint/``,
  ``.../method_picker/``, ``.../method_picker.navigation.async/``,
  ``.../verify_code.async/`` (login payload). A wrong code gets no login payload, which
  instagrapi turns into ``TwoFactorRequired``.
- Wrong password / unknown user: ``send_login_request`` answers a ``CAA_LOGIN_FALLBACK:``
  marker, instagrapi continues with ``login_legacy``: ``launcher/sync/``, ``qe/sync/``,
  ``accounts/login/`` -> 400 ``bad_password`` (``BadPassword``; instagrapi then re-runs the
  whole CAA flow once more before re-raising) or ``invalid_user``.
- ``login_legacy`` directly: ``accounts/login/`` (+ ``accounts/two_factor_login/`` for TOTP).
- Every successful login mints a NEW sessionid; the previous one stops working.

The package, part by part (``InstagramDouble`` is made of the mixins, each on ``state.DoubleState``):

- ``core``: ``InstagramDouble`` itself: its traits, starting and stopping, the state API, the requests log;
- ``world``: the world's data classes (``DUser``, ``DStory``, ``DPost``, ``SeenRequest``);
- ``shapes``: the real-shape JSON builders; ``extras``: the tray's and the home feed's other entries;
- ``login``: sessions and the login flows; ``answers``: the authenticated endpoints; ``timeline``: the home feed;
- ``faults``: the faults on request; ``routing``: from a request to its reply; ``server``: the HTTP server;
- ``bodies``: Instagram's error bodies; ``common``: shortcodes, TOTP codes, the password key;
- ``client``: :func:`point_client` and :func:`new_client`.
"""

from tests.double.bodies import (
    FEEDBACK_REQUIRED_BODY,
    LOGIN_REQUIRED_BODY,
    MEDIA_UNAVAILABLE_BODY,
    NOT_AUTHORIZED_BODY,
    PLEASE_WAIT_BODY,
    USER_NOT_FOUND_BODY,
)
from tests.double.client import new_client, point_client
from tests.double.common import CDN, JSON, PROFILE_CDN, SHORTCODE_ALPHABET, STORY_TTL, shortcode, totp_code
from tests.double.core import InstagramDouble
from tests.double.server import Rec
from tests.double.world import DPost, DStory, DUser, SeenRequest

__all__ = [
    "CDN",
    "FEEDBACK_REQUIRED_BODY",
    "JSON",
    "LOGIN_REQUIRED_BODY",
    "MEDIA_UNAVAILABLE_BODY",
    "NOT_AUTHORIZED_BODY",
    "PLEASE_WAIT_BODY",
    "PROFILE_CDN",
    "SHORTCODE_ALPHABET",
    "STORY_TTL",
    "USER_NOT_FOUND_BODY",
    "DPost",
    "DStory",
    "DUser",
    "InstagramDouble",
    "Rec",
    "SeenRequest",
    "new_client",
    "point_client",
    "shortcode",
    "totp_code",
]
