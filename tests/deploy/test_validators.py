"""The rule every tool-backed deploy test follows: a missing validator skips here, fails under CI=true."""

from __future__ import annotations

import pytest

from tests.deploy.common import tool


def test_a_missing_validator_skips_here_but_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not-a-validator is not installed"):
        tool("not-a-validator", "apt-get install -y nothing")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="not-a-validator is not installed"):
        tool("not-a-validator", "apt-get install -y nothing")
