"""The corners the hostile reviews found, in-process: duplicates in an answer, likes whose answer was lost or whose
item was gone, collab posts, lookups cut short, one failing target, the session that keeps expiring, the tray taking
accounts back, renames. Each test failed on the code before its fix."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from story_liker.errors import (
    DatabaseUnavailable,
    Gone,
    NetworkError,
)
from story_liker.ig import parse as ig_module
from story_liker.ig.types import PostItem, StoryItem, UserRef
from story_liker.jobs.deps import Outcome
from story_liker.jobs.posts import run_posts
from story_liker.jobs.stories import run_stories
from story_liker.models import POST_LIKE, STORY_LIKE
from story_liker.store import Store
from tests.fake import ME, START, Harness, ScriptedInstagram, story, tray_of

NAMES = {101: "alice", 102: "bob", 103: "carol"}


@pytest.fixture
def h(store: Store) -> Harness:
    harness = Harness(store, overrides={"target_accounts": ",".join(NAMES.values())})
    harness.store_session()
    return harness


def stories(h: Harness, ig: ScriptedInstagram, **kwargs: Any) -> Outcome:
    outcome = run_stories(h.deps(ig), dry_run=False, max_likes=kwargs.get("max_likes")).outcome
    assert isinstance(outcome, Outcome)
    return outcome


def followed_instagram(h: Harness, reels: dict[int, list[StoryItem]], **values: Any) -> ScriptedInstagram:
    followed = [UserRef(pk, name, True) for pk, name in NAMES.items()]
    return ScriptedInstagram(h.clock, tray=tray_of(reels, NAMES), reels=reels, followed=followed, **values)


def used(h: Harness, kind: str = STORY_LIKE) -> int:
    """Likes counted against the limits in the last hour."""
    return sum(1 for at in h.store.recent_actions(ME, kind, h.clock()) if h.clock() - at < timedelta(hours=1))


# --- one item, one like ----------------------------------------------------------------------------------


def test_a_story_listed_twice_in_one_answer_is_liked_once(h: Harness) -> None:
    twice = story(101, 1, at=h.clock())
    ig = followed_instagram(h, {101: [twice, twice, story(101, 2, at=h.clock())]})
    assert stories(h, ig) is Outcome.OK
    assert sorted(ig.liked) == sorted([twice.pk, story(101, 2).pk])
    assert used(h) == 2


def test_the_parsers_keep_each_item_once() -> None:
    item = {"pk": "3300000000000000001", "id": "3300000000000000001_101", "taken_at": 1764500000, "has_liked": False}
    found, bad = ig_module.parse_reels({"reels": {"101": {"items": [item, dict(item), item]}}})
    assert [s.pk for s in found[101]] == ["3300000000000000001"] and bad == 0
    post = item | {"media_type": 1, "user": {"pk": 101}}
    feed, _, _ = ig_module.parse_user_feed({"items": [post, post], "more_available": False}, 101)
    assert len(feed) == 1
    timeline, _, _ = ig_module.parse_timeline({"feed_items": [{"media_or_ad": post}, {"media_or_ad": post}]})
    assert len(timeline) == 1


def test_the_like_step_never_sends_two_likes_for_one_pk_in_a_pass(h: Harness) -> None:
    """Whatever gathers an item twice (two reels naming one story), the like step sends its like once."""
    one = story(101, 1, at=h.clock())
    ig = followed_instagram(h, {101: [one], 102: [StoryItem(one.pk, 102, one.taken_at, False)]})
    stories(h, ig)
    assert ig.liked.count(one.pk) == 1


def test_has_liked_is_true_false_or_not_said() -> None:
    base = {"pk": "3300000000000000001", "taken_at": 1764500000}
    said = [ig_module.parse_story(base | extra, 101).has_liked for extra in ({"has_liked": True}, {"has_liked": False})]
    assert said == [True, False]
    assert ig_module.parse_story(base, 101).has_liked is None
    assert ig_module.parse_story(base | {"has_liked": "false"}, 101).has_liked is None


# --- a like whose item is gone, or whose answer was lost -------------------------------------------------


def test_stories_that_expired_before_their_like_are_gone_not_a_refusal(h: Harness) -> None:
    """Three likes answered 'media unavailable' used to open the breaker: exit 75, a cooldown with a strike, and
    the next target's fresh stories not liked. A like of something gone is recorded as handled and the pass goes on."""
    old = [story(101, n, at=h.clock()) for n in range(1, 4)]
    fresh = story(102, 1, at=h.clock())
    ig = followed_instagram(h, {101: old, 102: [fresh]})
    ig.script["like_story"] = [Gone("gone"), Gone("gone"), Gone("gone")]
    assert stories(h, ig) is Outcome.OK
    assert fresh.pk in ig.liked
    account = h.store.account(ME)
    assert account.cooldown_until is None and account.cooldown_strikes == 0
    assert used(h) == 1  # only the like that landed counts
    h.clock.advance(hours=1)
    again = followed_instagram(h, {101: old, 102: [fresh]})
    stories(h, again)
    assert again.liked == []  # the gone ones are handled: never tried again


def test_a_like_instagram_confirmed_counts_against_the_limits_even_when_the_database_fails_to_record_it(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.overrides["story_likes_per_hour"] = 3
    reels = {101: [story(101, n, at=h.clock()) for n in range(1, 6)]}
    original = h.store.record_stories

    def fail_the_first_liked(account: str, rows: Any, now: Any, *, counted: bool) -> int:
        if not rows[0].skipped and not getattr(fail_the_first_liked, "done", False):
            fail_the_first_liked.done = True  # type: ignore[attr-defined]  # a mark on the function: it fails once
            raise DatabaseUnavailable("database unavailable (test): the connection was terminated")
        return original(account, rows, now, counted=counted)

    monkeypatch.setattr(h.store, "record_stories", fail_the_first_liked)
    ig = followed_instagram(h, reels)
    with pytest.raises(DatabaseUnavailable):
        stories(h, ig)
    assert len(ig.liked) == 1 and used(h) == 1
    monkeypatch.setattr(h.store, "record_stories", original)
    h.clock.advance(minutes=5)
    shown = {101: [StoryItem(s.pk, s.user_pk, s.taken_at, s.pk in ig.liked) for s in reels[101]]}
    again = followed_instagram(h, shown)
    stories(h, again)
    assert len(again.liked) == 2  # 3 in the hour with the one that was not recorded, never 4
    assert used(h) == 3


def test_a_like_whose_answer_was_lost_is_never_sent_again_blindly(h: Harness) -> None:
    first, second, third = (
        StoryItem(s.pk, 101, s.taken_at, None) for s in (story(101, n, at=h.clock()) for n in (1, 2, 3))
    )
    ig = followed_instagram(h, {101: [first, second, third]})  # has_liked not said: each pass loses another
    ig.script["like_story"] = [NetworkError("timeout"), NetworkError("timeout"), NetworkError("timeout")]
    for _ in range(3):  # each pass loses one like's answer and stops (75)
        with pytest.raises(NetworkError):
            stories(h, ig)
        h.clock.advance(minutes=10)
    assert ig.liked == [] and ig.names().count("like_story") == 3 and used(h) == 3  # each counts: it may have landed
    shown = {
        101: [
            StoryItem(first.pk, 101, first.taken_at, None),  # Instagram does not say: never risk a second like
            StoryItem(second.pk, 101, second.taken_at, True),  # it landed: recorded as liked, not sent again
            StoryItem(third.pk, 101, third.taken_at, False),  # it did not land: liked now
        ]
    }
    again = followed_instagram(h, shown)
    assert stories(h, again) is Outcome.OK
    assert again.liked == [third.pk]
    assert h.store.liked_story_pks(ME, [second.pk]) == {second.pk}


def test_a_like_instagram_answered_with_a_5xx_does_not_count_and_is_sent_again(h: Harness) -> None:
    one = story(101, 1, at=h.clock())
    ig = followed_instagram(h, {101: [one]})
    ig.script["like_story"] = [NetworkError("Instagram answered 502", answered=True)]
    with pytest.raises(NetworkError):
        stories(h, ig)
    assert used(h) == 0
    h.clock.advance(minutes=10)
    again = followed_instagram(h, {101: [one]})
    stories(h, again)
    assert again.liked == [one.pk]


# --- collab posts belong to the target -------------------------------------------------------------------


def post(user_pk: int, n: int, *, hours_ago: float = 1, **values: Any) -> PostItem:
    fields: dict[str, Any] = {"media_type": "photo", "has_liked": False} | values
    return PostItem(f"{user_pk}{n:04d}", user_pk, START - timedelta(hours=hours_ago), **fields)


def test_collab_likes_are_filed_under_the_target_and_its_cap_holds(h: Harness) -> None:
    h.overrides["post_max_per_target"] = 1
    followed = [UserRef(pk, name, True) for pk, name in NAMES.items()]
    collabs = [post(700 + n, n, hours_ago=n, coauthors=(102,)) for n in range(1, 5)]  # bob with four strangers
    ig = ScriptedInstagram(h.clock, followed=followed, timeline=[collabs])
    run_posts(h.deps(ig), dry_run=False, max_likes=None)
    assert ig.liked == [collabs[0].pk]  # the newest of bob's, once: POST_MAX_PER_TARGET holds for bob
    history = h.store.liked_history(ME, target_user_pk=102, limit=10)
    assert [row[1] for row in history] == [collabs[0].pk]
    assert h.store.last_post_likes(ME).keys() == {102}
    assert used(h, POST_LIKE) == 1


def test_a_post_like_whose_answer_was_lost_is_not_sent_again_when_instagram_does_not_say(h: Harness) -> None:
    followed = [UserRef(pk, name, True) for pk, name in NAMES.items()]
    new = post(101, 1)
    ig = ScriptedInstagram(h.clock, followed=followed, timeline=[[new]])
    ig.script["like_post"] = [NetworkError("reset")]
    with pytest.raises(NetworkError):
        run_posts(h.deps(ig), dry_run=False, max_likes=None)
    h.clock.advance(hours=1)
    again = ScriptedInstagram(h.clock, followed=followed, timeline=[[PostItem(**{**new.__dict__, "has_liked": None})]])
    run_posts(h.deps(again), dry_run=False, max_likes=None)
    assert again.liked == []


# --- what a lookup learned is kept; one failing target is that target's ----------------------------------


def unresolved_harness(store: Store, count: int) -> tuple[Harness, list[str]]:
    names = [f"user{n:02d}" for n in range(1, count + 1)]
    harness = Harness(store, overrides={"target_accounts": ",".join(names), "following_sync_max_pages": 0})
    harness.store_session()
    return harness, names


def lookups(ig: ScriptedInstagram) -> list[str]:
    return [call.arg for call in ig.calls if call.name == "lookup"]


def test_a_5xx_at_lookup_10_of_12_keeps_the_nine_learned_and_carries_on(store: Store) -> None:
    h, names = unresolved_harness(store, 12)
    users = {name: UserRef(2000 + n, name, False) for n, name in enumerate(names)}
    ig = ScriptedInstagram(h.clock, users=users)
    ig.script["lookup"] = [None] * 9 + [NetworkError("Instagram answered 503 on lookup", answered=True)]
    assert stories(h, ig) in (Outcome.NOTHING_NEW, Outcome.OK)
    resolved = {t.username for t in h.store.targets(ME) if t.user_pk is not None}
    assert resolved == set(names) - {names[9]}  # the other 11 learned and kept
    failing = next(t for t in h.store.targets(ME) if t.username == names[9])
    assert failing.failures == 1 and failing.last_error_at == h.clock()
    h.clock.advance(minutes=30)
    again = ScriptedInstagram(h.clock, users=users)
    stories(h, again)
    assert lookups(again) == []  # nothing learned is asked again; the failing one waits for its backoff
    h.clock.advance(minutes=31)
    later = ScriptedInstagram(h.clock, users=users)
    stories(h, later)
    assert lookups(later) == [names[9]]


def test_a_signal_during_lookups_keeps_every_answer_before_it(store: Store) -> None:
    h, names = unresolved_harness(store, 6)
    users = {name: UserRef(2000 + n, name, False) for n, name in enumerate(names)}
    ig = ScriptedInstagram(h.clock, users=users)
    deps = h.deps(ig)

    def stop_after_three(fake: ScriptedInstagram, name: str) -> None:
        if name == "lookup" and len(lookups(fake)) == 3:
            deps.stop.set()  # SIGTERM arrives while the third lookup is in flight

    ig.before = stop_after_three
    from story_liker.errors import Interrupted

    with pytest.raises(Interrupted):
        run_stories(deps, dry_run=False, max_likes=None)
    assert sorted(t.username for t in h.store.targets(ME) if t.user_pk is not None) == names[:4]


def test_a_failed_lookup_after_the_following_walk_keeps_the_walks_ids(store: Store) -> None:
    names = [f"user{n:02d}" for n in range(1, 41)]
    h = Harness(store, overrides={"target_accounts": ",".join([*names, "stranger"])})
    h.store_session()
    followed = [UserRef(3000 + n, name, True) for n, name in enumerate(names)]
    ig = ScriptedInstagram(h.clock, followed=followed, always={"lookup": NetworkError("timeout")})
    stories(h, ig)
    assert sum(t.user_pk is not None for t in h.store.targets(ME)) == 40
    h.clock.advance(hours=2)
    again = ScriptedInstagram(h.clock, followed=followed, users={"stranger": UserRef(9, "stranger", False)})
    stories(h, again)
    assert again.names().count("following_page") == 0 and lookups(again) == ["stranger"]  # 1 lookup, not 41


def test_one_target_whose_lookup_always_fails_does_not_starve_the_others(store: Store) -> None:
    h = Harness(store, overrides={"target_accounts": "alice,bob,broken", "following_sync_max_pages": 0})
    h.store_session()
    liked = lookups_of_broken = 0
    for hour in range(5):
        reels = {1: [story(1, hour, at=h.clock())], 2: [story(2, hour, at=h.clock())]}
        users = {"alice": UserRef(1, "alice", False), "bob": UserRef(2, "bob", False)}
        fault = NetworkError("Instagram answered 500 on lookup", answered=True)
        # in the tray with something new every hour: read every pass (a target not followed the tray does not
        # list is read only when due)
        tray = tray_of(reels, {1: "alice", 2: "bob"})
        ig = ScriptedInstagram(h.clock, tray=tray, reels=reels, users=users, fail_for={("lookup", "broken"): fault})
        stories(h, ig)
        liked += len(ig.liked)
        lookups_of_broken += lookups(ig).count("broken")
        h.clock.advance(hours=1)
    assert liked == 10  # 0 of 10 before: the failing lookup ended every pass before any read
    assert lookups_of_broken == 3  # hours 0, 1 (1 h later) and 3 (2 h later): backed off, not every pass


def test_two_network_failures_in_a_row_mean_instagram_is_out_of_reach(store: Store) -> None:
    h, _ = unresolved_harness(store, 5)
    ig = ScriptedInstagram(h.clock, always={"lookup": NetworkError("timeout")})
    with pytest.raises(NetworkError):
        stories(h, ig)
    assert len(lookups(ig)) == 2  # not all five
    assert sum(t.failures for t in h.store.targets(ME)) == 2


# --- a session that keeps expiring needs a human, not a login in every run -------------------------------


def test_a_session_that_keeps_expiring_gets_one_password_login_a_day_then_a_human(h: Harness) -> None:
    from story_liker.errors import NeedsHuman, SessionExpired

    h.overrides["ig_password"] = "hunter2-password"
    logins = 0
    outcomes: list[str] = []
    for _ in range(24):  # Instagram ends the session before every hourly run and accepts the password each time
        ig = followed_instagram(h, {101: [story(101, 1, at=h.clock())]})
        ig.script["reels_tray"] = [SessionExpired("login_required")]
        try:
            outcomes.append(str(stories(h, ig)))
        except NeedsHuman as exc:
            outcomes.append(exc.message)
        logins += ig.names().count("relogin")
        h.clock.advance(hours=1)
    assert logins == 1  # 24 before
    assert "the session keeps expiring" in outcomes[1] and "AUTO_LOGIN_MIN_HOURS" in outcomes[1]
    account = h.store.account(ME)
    assert account.needs_human and "keeps expiring" in (account.needs_human_reason or "")
    assert all("needs a human" in outcome for outcome in outcomes[2:])  # no request at all, until `login`


def test_the_automatic_login_bound_survives_restarts_and_allows_one_after_a_day(h: Harness) -> None:
    from story_liker.errors import SessionExpired

    h.overrides |= {"ig_password": "hunter2-password", "auto_login_min_hours": 6}
    for hours in (0, 7, 14):  # each expiry more than AUTO_LOGIN_MIN_HOURS after the last automatic login
        ig = followed_instagram(h, {101: [story(101, hours, at=h.clock())]})
        ig.script["reels_tray"] = [SessionExpired("login_required")]
        assert stories(h, ig) is Outcome.OK
        assert ig.names().count("relogin") == 1
        h.clock.advance(hours=7)


# --- the tray takes accounts back; renames; the account itself -------------------------------------------


def test_everyone_followed_takes_back_an_account_followed_again_and_one_no_longer_excluded(store: Store) -> None:
    h = Harness(store, overrides={"target_accounts": "*", "target_exclude": "carol"})
    h.store_session()
    stories(h, followed_instagram(h, {pk: [story(pk, 1, at=h.clock())] for pk in NAMES}))
    assert {t.username for t in h.store.targets(ME)} == {"alice", "bob"}  # carol: excluded
    h.clock.advance(days=1, hours=1)  # bob unfollowed: gone from the tray and from the following list
    ig = followed_instagram(h, {101: [story(101, 2, at=h.clock())]})
    ig.followed = [UserRef(pk, name, True) for pk, name in NAMES.items() if name != "bob"]
    stories(h, ig)
    assert {t.username for t in h.store.targets(ME)} == {"alice"}
    h.clock.advance(days=1, hours=1)  # bob followed again; carol taken out of TARGET_EXCLUDE
    h.overrides["target_exclude"] = None
    new = {pk: [story(pk, 3, at=h.clock())] for pk in NAMES}
    again = followed_instagram(h, new)
    stories(h, again)
    assert {t.username for t in h.store.targets(ME)} == {"alice", "bob", "carol"}
    assert sorted(again.liked) == sorted(s.pk for items in new.values() for s in items)


def test_a_tray_account_a_person_disabled_stays_disabled(store: Store) -> None:
    h = Harness(store, overrides={"target_accounts": "*"})
    h.store_session()
    reels = {pk: [story(pk, 1, at=h.clock())] for pk in NAMES}
    stories(h, followed_instagram(h, reels))
    assert h.store.set_target_enabled(ME, "bob", False)  # `accounts disable bob`
    h.clock.advance(hours=1)
    again = followed_instagram(h, {pk: [story(pk, 2, at=h.clock())] for pk in NAMES})
    stories(h, again)
    assert "bob" not in {t.username for t in h.store.targets(ME)}
    assert not any(pk.startswith("102") for pk in again.liked)


def test_a_renamed_target_stays_followed_and_is_not_adopted_twice(store: Store) -> None:
    h = Harness(store, overrides={"target_accounts": "*"})
    h.store_session()
    reels = {pk: [story(pk, 1, at=h.clock())] for pk in NAMES}
    stories(h, followed_instagram(h, reels))
    h.clock.advance(days=1, hours=1)
    renamed = {**NAMES, 101: "alice.new"}
    fresh = {pk: [story(pk, 2, at=h.clock())] for pk in NAMES}
    ig = ScriptedInstagram(
        h.clock,
        tray=tray_of(fresh, renamed),
        reels=fresh,
        followed=[UserRef(pk, name, True) for pk, name in renamed.items()],
    )
    stories(h, ig)
    rows = h.store.targets(ME, enabled_only=False)
    alice = [t for t in rows if t.user_pk == 101]  # one row; a tray target takes the tray's new name
    assert len(alice) == 1 and alice[0].followed is True and alice[0].username == "alice.new"
    batches = [call.arg for call in ig.calls if call.name == "reels_media"]
    assert all(len(batch) == len(set(batch)) for batch in batches)
    h.clock.advance(hours=1)
    steady = ScriptedInstagram(h.clock, tray=tray_of(fresh, renamed), reels=fresh)
    stories(h, steady)
    assert steady.names() == ["reels_tray"]  # a steady pass stays one request


def test_a_renamed_target_named_in_target_accounts_keeps_its_follow_state(h: Harness) -> None:
    stories(h, followed_instagram(h, {101: [story(101, 1, at=h.clock())]}))
    h.clock.advance(days=1, hours=1)
    ig = ScriptedInstagram(
        h.clock, followed=[UserRef(101, "alice.new", True), UserRef(102, "bob", True), UserRef(103, "carol", True)]
    )
    stories(h, ig)
    alice = next(t for t in h.store.targets(ME) if t.username == "alice")
    assert alice.followed is True and alice.current_name == "alice.new" and alice.enabled


def test_the_account_itself_is_never_a_target(h: Harness) -> None:
    assert h.store.add_target(ME, "me.again", h.clock())  # added before the name check, or renamed into it
    own = story(4242, 1, at=h.clock())  # the fake's own user pk
    ig = followed_instagram(h, {101: [story(101, 1, at=h.clock())]})
    ig.reels[4242] = [own]
    ig.users = {"me.again": UserRef(4242, "me.again", None)}
    stories(h, ig)
    assert own.pk not in ig.liked and story(101, 1).pk in ig.liked


# --- the post pass fits its scheduler's limit -----------------------------------------------------------


def many_followed(store: Store, count: int, **overrides: Any) -> tuple[Harness, dict[int, str]]:
    names = {5000 + n: f"user{n:03d}" for n in range(count)}
    delays = {
        "action_delay_min_seconds": 3,
        "action_delay_max_seconds": 12,
        "target_delay_min_seconds": 5,
        "target_delay_max_seconds": 20,
        "request_delay_min_seconds": 1,
        "request_delay_max_seconds": 3,
    }
    harness = Harness(store, overrides={"target_accounts": ",".join(names.values())} | delays | overrides)
    harness.store_session()
    harness.added_earlier()  # a day ago: every first profile read is due, as these tests want
    return harness, names


def test_a_post_pass_plans_within_its_time_budget_and_defers_the_rest(store: Store) -> None:
    """500 followed targets on the 3-hourly timer with the default delays needed 16-25 min of pauses per pass;
    systemd's and cron's 15 min stopped it. Now a pass ends within PASS_BUDGET_MINUTES (12) and the profiles it had
    no time for are read first next pass."""
    h, names = many_followed(store, 500)
    followed = [UserRef(pk, name, True) for pk, name in names.items()]
    for _ in range(3):  # the first passes: every profile is new, far more than fit
        started = h.clock()
        ig = ScriptedInstagram(h.clock, followed=followed)
        deps = h.deps(ig)
        run_posts(deps, dry_run=False, max_likes=None)
        assert h.clock() - started <= timedelta(minutes=12)
        assert deps.counts.deferred > 0  # reads left for the next pass, not squeezed in
        h.clock.advance(hours=3)
    never = [t for t in h.store.targets(ME) if t.post_checked_at is None]
    ig = ScriptedInstagram(h.clock, followed=followed)
    run_posts(h.deps(ig), dry_run=False, max_likes=None)
    first_read = next(c.arg for c in ig.calls if c.name == "user_posts")
    assert first_read in {t.user_pk for t in never}  # never-read profiles first


def test_a_profiles_new_posts_are_liked_before_the_next_profile_is_read(store: Store) -> None:
    h, names = many_followed(store, 3, post_timeline_pages=0)
    pks = list(names)
    followed = [UserRef(pk, name, True) for pk, name in names.items()]
    ig = ScriptedInstagram(h.clock, followed=followed, posts={pk: [post(pk, 1)] for pk in pks})
    run_posts(h.deps(ig), dry_run=False, max_likes=None)
    order = [c.name for c in ig.calls if c.name in ("user_posts", "like_post")]
    assert order == ["user_posts", "like_post"] * 3


def test_a_pass_stopped_after_reading_a_profile_leaves_it_unchecked_and_reads_it_first_next_time(
    store: Store,
) -> None:
    """Stopped by the scheduler after the sweep had read a profile, the pass used to mark it checked: its new posts
    waited a day, and aged out. Now a profile is checked only once its new posts are handled."""
    h, names = many_followed(store, 3, post_timeline_pages=0)
    followed = [UserRef(pk, name, True) for pk, name in names.items()]
    steady = ScriptedInstagram(h.clock, followed=followed)
    run_posts(h.deps(steady), dry_run=False, max_likes=None)  # every profile read once, nothing new
    h.clock.advance(hours=24, minutes=5)  # all three due again
    new = {pk: [post(pk, 2, hours_ago=0.5)] for pk in names}
    ig = ScriptedInstagram(h.clock, followed=followed, posts=new)
    deps = h.deps(ig)

    def sigterm_during_the_first_read(fake: ScriptedInstagram, name: str) -> None:
        if name == "user_posts":  # the read completes; the pause before the like ends the pass
            deps.stop_signal.append(15)
            deps.stop.set()

    ig.before = sigterm_during_the_first_read
    from story_liker.errors import Interrupted

    with pytest.raises(Interrupted):
        run_posts(deps, dry_run=False, max_likes=None)
    assert [name for name in ig.names() if name != "following_page"] == ["user_posts"]
    read_pk = next(c.arg for c in ig.calls if c.name == "user_posts")
    target = next(t for t in h.store.targets(ME) if t.user_pk == read_pk)
    assert target.post_checked_at is not None and target.post_checked_at < h.clock() - timedelta(hours=24)
    h.clock.advance(minutes=50)
    again = ScriptedInstagram(h.clock, followed=followed, posts=new)
    run_posts(h.deps(again), dry_run=False, max_likes=None)
    assert sorted(again.liked) == sorted(p.pk for posts in new.values() for p in posts)


def test_a_story_pass_with_many_targets_not_followed_ends_within_its_time_budget(store: Store) -> None:
    """200 public targets not followed: 200 lookups and 200 reads of their own (14.5 s each at the default
    delays) took 41 min, far past the scheduler's 15. Now each pass ends within PASS_BUDGET_MINUTES, likes what it
    found, and the next one goes on where it stopped: every target is read in turn, none starved. (Their stories
    are read in reels_media batches now; the lookups are what takes the passes' time.)"""
    h, names = many_followed(store, 200, following_sync_max_pages=0)
    users = {name: UserRef(pk, name, False) for pk, name in names.items()}
    reels = {pk: [story(pk, 1, at=h.clock() + timedelta(hours=6))] for pk in names}
    liked: list[int] = []
    asked: set[int] = set()
    for _ in range(9):
        ig = ScriptedInstagram(h.clock, users=users, reels=reels)
        first = h.clock()
        deps = h.deps(ig)
        run_stories(deps, dry_run=False, max_likes=None)
        assert h.clock() - first <= timedelta(minutes=12, seconds=30)  # the last request's gap at most past it
        liked.append(len(ig.liked))
        asked |= {pk for c in ig.calls if c.name == "reels_media" for pk in c.arg}
        h.clock.advance(minutes=45)
    assert asked == set(names)  # every one read in turn
    # a target whose stories wait for the limits stays due (read again next pass, tray or not): it is not checked
    waiting = [t for t in h.store.targets(ME) if t.story_checked_at is None]
    assert len(waiting) == 200 - sum(liked)
    # once the lookups are done (4 passes), the batches read them all at once and the likes go on as the limits
    # allow, every pass: the 10-minute window (6) lets a pass of 12 minutes like about 10-12
    assert liked[:3] == [0, 0, 0] and all(liked[3:])
    assert sum(liked) >= 50


# --- PostgreSQL dropping the run's connections mid-pass --------------------------------------------------


def test_postgresql_dropping_the_connections_while_a_like_is_in_flight_keeps_the_pass_going(
    database_url: str,
) -> None:
    """With the first like in flight the run's backends were terminated: the run logged story_like_not_recorded
    and exited 69 though the server was back at once, and the like was later filed as 'liked elsewhere', never
    counted (4 likes in an hour with a limit of 3). Now the pooled connection is replaced and the pass goes on."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL: terminating the run's backends")
    import uuid

    import sqlalchemy as sa

    from story_liker.db import make_engine, migrate

    name = f"sl_drop_{uuid.uuid4().hex[:8]}"  # only this test's backends are terminated
    engine = make_engine(f"{database_url}&application_name={name}")
    migrate(engine)
    h = Harness(Store(engine), overrides={"target_accounts": ",".join(NAMES.values()), "story_likes_per_hour": 3})
    h.store_session()
    ig = followed_instagram(h, {101: [story(101, n, at=h.clock()) for n in range(1, 6)]})
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")

    def terminate_during_the_first_like(fake: ScriptedInstagram, name_: str) -> None:
        if name_ == "like_story" and "like_story" not in fake.names():
            with admin.connect() as connection:
                killed = connection.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :n"
                    ),
                    {"n": name},
                ).scalar_one()
            assert killed >= 1

    ig.before = terminate_during_the_first_like
    try:
        assert stories(h, ig) is Outcome.BUDGET_USED_UP
        assert len(ig.liked) == 3 and used(h) == 3
    finally:
        admin.dispose()
        engine.dispose()


def test_a_dry_run_keeps_the_request_pacing_and_skips_the_pauses_that_stand_in_for_liking(h: Harness) -> None:
    """22.8 s for 4 requests and 18 would-likes with 0.5-1 s delays: a dry run waited the full like delays."""
    h.overrides |= {"action_delay_min_seconds": 5, "action_delay_max_seconds": 5}
    h.overrides |= {"target_delay_min_seconds": 7, "target_delay_max_seconds": 7}
    h.overrides |= {"request_delay_min_seconds": 1, "request_delay_max_seconds": 1}
    reels = {pk: [story(pk, n, at=h.clock()) for n in range(3)] for pk in NAMES}
    ig = followed_instagram(h, reels)
    run_stories(h.deps(ig), dry_run=True, max_likes=None)
    assert ig.liked == [] and sum(h.clock.sleeps) <= len(ig.calls)  # the gaps between requests, nothing more
