"""The safety core end to end: faults the installed CLI meets through the real instagrapi and the double."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.conftest import finish, login, run_cli, start
from tests.e2e.test_stories import follow_with_stories

# a 400 that is no throttle and says nothing of the media being gone ("has been deleted" is gone, not refused)
REFUSED = {"message": "Sorry, there was a problem with your request.", "status": "fail"}


def wait_for(condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)


def test_a_run_whose_lease_ran_out_during_a_stalled_like_stops_and_the_next_run_likes_the_rest(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    follow_with_stories(ig, ["alice", "bob"], per_user=4, liked=0)
    env |= {"TARGET_ACCOUNTS": "alice,bob", "LOCK_TTL_SECONDS": "5", "HTTP_TIMEOUT_SECONDS": "150"}
    login(ig, env, tmp_path)
    # the first like stalls, longer than the 5 s lease: unanswered until the second run is done, however long
    # a loaded machine takes to start it (a fixed stall raced the second run's start-up)
    release = ig.hold("send_story_like", times=1, timeout=120)

    stalled = start(["run-stories"], env, tmp_path)
    wait_for(lambda: ig.count("send_story_like") >= 1)
    time.sleep(6)  # the stalled run's lease (renewed just before its like) has expired by now
    second = run_cli("run-stories", env=env, cwd=tmp_path)
    assert second.code == 0, second.output
    release.set()
    first = finish(stalled)

    assert first.code == 75, first.output
    assert first.event("lease_lost")
    assert first.event("session_not_saved")
    assert ig.count("send_story_like") <= 9  # 8 stories: the second run's likes and the one in flight, not 16
    assert first.event("run_finished")["liked"] == 1


def test_three_refused_likes_stop_the_pass_and_the_next_run_sends_nothing(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    follow_with_stories(ig, ["alice", "bob"], per_user=4, liked=0)
    env["TARGET_ACCOUNTS"] = "alice,bob"
    login(ig, env, tmp_path)
    ig.fail("send_story_like", status=400, body=REFUSED, times=None)

    first = run_cli("run-stories", env=env, cwd=tmp_path)
    assert first.code == 75, first.output
    assert ig.count("send_story_like") == 3  # not the whole plan of 8
    assert first.event("cooldown_started")["reason"] == "rejected"

    ig.reset_requests()
    again = run_cli("run-stories", env=env, cwd=tmp_path)
    assert again.code == 75 and "cooling down" in again.error
    assert ig.count() == 0


def test_likes_of_stories_gone_since_the_read_are_not_refusals(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    """'Media not found or unavailable' and 'has been deleted' (instagrapi's MediaUnavailable) mean the story is
    gone, not that Instagram refused the account: no breaker, no cooldown, and the other target's story is liked."""
    follow_with_stories(ig, ["alice", "bob"], per_user=2, liked=0)
    env["TARGET_ACCOUNTS"] = "alice,bob"
    login(ig, env, tmp_path)
    gone = {"message": "Sorry, this media has been deleted", "status": "fail"}
    ig.fail("send_story_like", status=400, body=gone, times=3)
    first = run_cli("run-stories", env=env, cwd=tmp_path)
    assert first.code == 0, first.output
    assert ig.count("send_story_like") == 4 and len(ig.liked_story_ids) == 1
    assert [e["event"] for e in first.events()].count("story_gone") == 3
    assert first.event("run_finished")["gone"] == 3
    ig.reset_requests()
    again = run_cli("run-stories", env=env, cwd=tmp_path)
    assert again.code == 0 and ig.count("send_story_like") == 0  # handled: never tried again


def test_a_story_listed_twice_in_one_reels_media_answer_gets_one_like(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    """Found black-box: an answer whose items repeat one story sent two like requests for it."""
    [one] = follow_with_stories(ig, ["alice"], per_user=1, liked=0)
    env["TARGET_ACCOUNTS"] = "alice"
    login(ig, env, tmp_path)
    item = ig._story_item(one)  # the double's own real-shaped item, twice in one answer
    reel = {"id": one.user.pk, "user": {"pk": one.user.pk}, "items": [item, dict(item)]}
    ig.raw("reels_media", json.dumps({"reels": {str(one.user.pk): reel}, "status": "ok"}))
    result = run_cli("run-stories", env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    assert ig.count("send_story_like") == 1


def test_a_failed_relogin_is_not_tried_again_by_the_next_run(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    follow_with_stories(ig, ["alice"], per_user=1, liked=0)
    env |= {"TARGET_ACCOUNTS": "alice", "IG_PASSWORD": ig.password}
    login(ig, env, tmp_path)
    ig.expire_session()
    ig.fail("accounts/login", status=503, times=None)
    ig.fail("bloks/", status=503, times=None)

    first = run_cli("run-stories", env=env, cwd=tmp_path)
    assert first.code == 75, first.output
    assert first.event("login_failed")["failures"] == 1
    ig.reset_requests()
    for _ in range(3):
        again = run_cli("run-stories", env=env, cwd=tmp_path)
        assert again.code == 75 and "next attempt is allowed after" in again.error, again.output
    assert ig.count() == 0  # neither a read nor a login: the session is known dead, the backoff runs


def test_an_outdated_app_version_needs_a_human_and_session_upgrade_keeps_the_device(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    import json

    from story_liker.db import make_engine
    from story_liker.store import Store

    settings = ig.settings()
    settings["device_settings"] |= {"app_version": "269.0.0.18.75", "version_code": "314665256"}
    (tmp_path / "old.json").write_text(json.dumps(settings))
    assert run_cli("login", "--settings-file", str(tmp_path / "old.json"), env=env, cwd=tmp_path).code == 0
    ig.fail("current_user", status=400, body={"message": "", "error_type": "needs_upgrade", "status": "fail"})

    outdated = run_cli("keepalive", env=env, cwd=tmp_path)
    assert outdated.code == 77 and "story-liker session upgrade" in outdated.error, outdated.output
    ig.reset_requests()
    upgraded = run_cli("session", "upgrade", env=env, cwd=tmp_path)
    assert upgraded.code == 0, upgraded.output
    assert ig.count() == 0  # no request
    store = Store(make_engine(env["DATABASE_URL"]))
    stored = json.loads(store.account(ig.username).settings or "{}")
    assert stored["uuids"] == settings["uuids"]
    assert stored["device_settings"]["model"] == settings["device_settings"]["model"]
    assert stored["device_settings"]["app_version"] != "269.0.0.18.75"
    assert not store.account(ig.username).needs_human
    assert run_cli("keepalive", env=env, cwd=tmp_path).code == 0
    store.engine.dispose()


def test_a_session_moves_hosts_by_export_and_import(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    import stat

    from tests.conftest import assert_no_secrets

    login(ig, env, tmp_path)
    exported = tmp_path / "exported.json"
    out = run_cli("session", "export", str(exported), env=env, cwd=tmp_path)
    assert out.code == 0 and "delete it" in out.stderr, out.output
    assert stat.S_IMODE(exported.stat().st_mode) == 0o600
    again = run_cli("session", "export", str(exported), env=env, cwd=tmp_path)
    assert again.code == 2 and "exists" in again.error  # never overwrites a file; a path typed: usage

    other_host = env | {"DATABASE_URL": f"sqlite:///{tmp_path / 'other' / 'stories.db'}"}
    ig.reset_requests()
    imported = run_cli("session", "import", str(exported), env=other_host, cwd=tmp_path)
    assert imported.code == 0, imported.output
    assert ig.count() == 1  # one light request proves it
    assert run_cli("keepalive", env=other_host, cwd=tmp_path).code == 0
    assert_no_secrets(ig, out, again, imported)


# --- one Instagram user, one account row -------------------------------------------------------------------


def _session_row(env: dict[str, str], account: str) -> tuple[bool, int | None]:
    """(has a live session stored, user pk) of an account row; (False, None) when there is no row."""
    import sqlalchemy as sa

    from story_liker.db import make_engine

    engine = make_engine(env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            row = connection.execute(
                sa.text("SELECT has_session, user_pk FROM account WHERE username = :u"), {"u": account}
            ).first()
    finally:
        engine.dispose()
    return (False, None) if row is None else (bool(row[0]), row[1])


def test_a_session_of_another_account_is_refused_under_a_second_name(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    """The double is Instagram user `liker`; its session stored as `someone_else` would give one real account
    the limits and the lease of two."""
    import json

    session = tmp_path / "session.json"
    session.write_text(json.dumps(ig.settings()))
    (tmp_path / "sessionid").write_text(ig.sessionid)
    other = env | {"IG_USERNAME": "someone_else"}
    for args in (
        ["session", "import", str(session)],
        ["login", "--settings-file", str(session)],
        ["login", "--sessionid-file", str(tmp_path / "sessionid")],
    ):
        refused = run_cli(*args, env=other, cwd=tmp_path)
        assert refused.code == 78, (args, refused.output)
        assert "belongs to instagram user liker, not someone_else" in refused.error, refused.output
        assert _session_row(env, "someone_else") == (False, None)
    assert _session_row(env, "liker") == (False, None)
    assert run_cli("session", "import", str(session), env=env, cwd=tmp_path).code == 0  # the right name: stored
    assert _session_row(env, "liker") == (True, ig.own_pk)


def test_a_second_name_for_the_same_instagram_user_is_refused(ig: Any, env: dict[str, str], tmp_path: Path) -> None:
    """Instagram user `liker` (its pk) is the account row `liker`; after a rename on Instagram it answers as
    `liker_renamed`, and a session stored under that name would be a second row for the same user."""
    import json

    login(ig, env, tmp_path)
    ig.username = ig.me.username = "liker_renamed"
    session = tmp_path / "renamed.json"
    session.write_text(json.dumps(ig.settings()))
    renamed = env | {"IG_USERNAME": "liker_renamed", "IG_PASSWORD": ig.password}
    for args in (["session", "import", str(session)], ["login"]):  # a settings file; a password login
        refused = run_cli(*args, env=renamed, cwd=tmp_path)
        assert refused.code == 78, (args, refused.output)
        assert "account 'liker'" in refused.error and "Traceback" not in refused.output, refused.output
        assert _session_row(env, "liker_renamed") == (False, None)
    assert _session_row(env, "liker") == (True, ig.own_pk)


def test_whose_session_it_is_goes_by_instagrams_answer_not_the_file_or_the_case(
    ig: Any, env: dict[str, str], tmp_path: Path
) -> None:
    """Usernames are one name in any case on Instagram; the user pk a settings file claims (ds_user_id) must be
    the user Instagram answers for, or an edited file could put another user's pk on this row."""
    import json

    ig.me.username = "Liker"  # Instagram answers with its own spelling
    forged = ig.settings()
    forged["authorization_data"]["ds_user_id"] = forged["cookies"]["ds_user_id"] = "31400000017"
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    refused = run_cli("session", "import", str(tmp_path / "forged.json"), env=env, cwd=tmp_path)
    assert refused.code == 78 and "names instagram user pk 31400000017" in refused.error, refused.output
    assert _session_row(env, "liker") == (False, None)

    (tmp_path / "session.json").write_text(json.dumps(ig.settings()))
    upper = env | {"IG_USERNAME": "@LIKER"}
    imported = run_cli("session", "import", str(tmp_path / "session.json"), env=upper, cwd=tmp_path)
    assert imported.code == 0, imported.output
    assert _session_row(env, "liker") == (True, ig.own_pk)
