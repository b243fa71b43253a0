"""`login` in-process: the job gets its client through the same seam as the passes (``Deps.connect``), so its
tries, the retry rule and the identity check run against the scripted fake, without a process or HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from story_liker.errors import ConfigError, NetworkError, PasswordRejected
from story_liker.ig.types import UserRef
from story_liker.jobs.login import login
from story_liker.store import Store
from tests.fake import DEVICE, ME, Harness, ScriptedInstagram


@pytest.fixture
def h(store: Store) -> Harness:
    return Harness(store)


def typed(*passwords: str) -> tuple[list[int], Callable[[int], str]]:
    asked: list[int] = []

    def prompt(attempt: int) -> str:
        asked.append(attempt)
        return passwords[attempt - 1]

    return asked, prompt


def test_a_typed_password_instagram_rejected_is_asked_again_and_each_try_counts(h: Harness) -> None:
    ig = ScriptedInstagram(h.clock, sessionid=None)
    ig.script["login_with_code"] = [PasswordRejected("login failed: BadPassword")] * 2
    asked, prompt = typed("wrong-1", "wrong-2", "right-3")
    report = login(
        h.deps(ig),
        settings_file=None,
        sessionid=None,
        password_prompt=prompt,
        code_prompt=lambda: "123456",
        challenge_prompt=None,
    )
    assert report.extra["method"] == "password"
    assert asked == [1, 2, 3] and ig.names().count("login_with_code") == 3
    account = h.store.account(ME)
    assert account.has_session and account.login_failures == 0  # a success clears the failures
    assert [c.password for c in h.connections][-1] == "right-3"
    assert len({json.dumps(c.settings, sort_keys=True) for c in h.connections[1:]}) == 1  # one device, every try


def test_a_network_failure_at_a_typed_login_is_not_asked_again(h: Harness) -> None:
    ig = ScriptedInstagram(h.clock, sessionid=None, always={"login_with_code": NetworkError("timeout")})
    asked, prompt = typed("one", "two")
    with pytest.raises(NetworkError):
        login(
            h.deps(ig),
            settings_file=None,
            sessionid=None,
            password_prompt=prompt,
            code_prompt=lambda: "123456",
            challenge_prompt=None,
        )
    assert asked == [1] and h.store.account(ME).login_failures == 1


def test_a_password_from_the_environment_is_never_sent_twice(h: Harness) -> None:
    h.overrides["ig_password"] = "from-the-environment"
    ig = ScriptedInstagram(h.clock, sessionid=None, always={"relogin": PasswordRejected("BadPassword")})
    with pytest.raises(PasswordRejected):
        login(
            h.deps(ig),
            settings_file=None,
            sessionid=None,
            password_prompt=None,
            code_prompt=None,
            challenge_prompt=None,
        )
    assert ig.names() == ["relogin"]


def test_a_settings_file_of_another_account_is_refused_and_nothing_is_stored(h: Harness, tmp_path: Path) -> None:
    path = tmp_path / "session.json"
    path.write_text(json.dumps({"uuids": dict(DEVICE), "authorization_data": {"ds_user_id": "4242", "sessionid": "x"}}))
    ig = ScriptedInstagram(h.clock)
    ig.ping = lambda: UserRef(4242, "someone_else")  # type: ignore[method-assign]  # a session of someone else
    with pytest.raises(ConfigError, match="belongs to instagram user someone_else"):
        login(
            h.deps(ig),
            settings_file=path,
            sessionid=None,
            password_prompt=None,
            code_prompt=None,
            challenge_prompt=None,
        )
    assert h.store.account(ME).settings is None
