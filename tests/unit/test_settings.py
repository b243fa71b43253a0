from __future__ import annotations

from pathlib import Path

import pytest

from story_liker.errors import ConfigError
from story_liker.settings import DEFAULT_DATABASE_URL, load, normalise_username
from story_liker.store import Store
from tests.conftest import run_cli, run_process


def test_defaults_are_conservative() -> None:
    settings = load()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.story_likes_per_hour <= 30 and settings.story_likes_per_day <= 150
    assert settings.action_delay_min_seconds >= 1 and settings.target_accounts is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice", "alice"),
        (" @Alice ", "alice"),
        ("https://www.instagram.com/bob.smith/", "bob.smith"),
        ("instagram.com/carol_1?igsh=abc", "carol_1"),
    ],
)
def test_usernames_are_normalised(raw: str, expected: str) -> None:
    assert normalise_username(raw) == expected


@pytest.mark.parametrize("raw", ["a b", "x" * 31, "bad!name", "", "..dots", "trailing.", "https://example.com/x"])
def test_invalid_usernames_are_rejected(raw: str) -> None:
    with pytest.raises(ValueError, match="not an Instagram username"):
        normalise_username(raw)


def test_target_list_is_cleaned_and_deduplicated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARGET_ACCOUNTS", " alice, @Bob ,alice,, https://instagram.com/carol/ ")
    assert load().target_accounts == ["alice", "bob", "carol"]


@pytest.mark.parametrize("blank", [" ", ",", " , ", "\t", ",,,", " ,\t, "])
def test_a_blank_looking_target_list_means_unset(monkeypatch: pytest.MonkeyPatch, blank: str) -> None:
    monkeypatch.setenv("TARGET_ACCOUNTS", blank)
    settings = load()
    assert settings.target_accounts is None and settings.named_targets is None


def test_a_blank_looking_target_list_disables_no_one(store: Store) -> None:
    from story_liker.jobs.targets import sync_targets
    from tests.fake import Harness, ScriptedInstagram

    harness = Harness(store, overrides={"target_accounts": "alice,bob"})
    assert [t.username for t in sync_targets(harness.deps(ScriptedInstagram(harness.clock)))] == ["alice", "bob"]
    harness.overrides["target_accounts"] = " , "
    assert [t.username for t in sync_targets(harness.deps(ScriptedInstagram(harness.clock)))] == ["alice", "bob"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STORY_LIKES_PER_HOUR": "-1"}, "STORY_LIKES_PER_HOUR"),
        ({"STORY_LIKES_PER_DAY": "lots"}, "STORY_LIKES_PER_DAY"),
        ({"ACTION_DELAY_MIN_SECONDS": "9", "ACTION_DELAY_MAX_SECONDS": "3"}, "ACTION_DELAY_MIN_SECONDS"),
        ({"TARGET_DELAY_MIN_SECONDS": "9", "TARGET_DELAY_MAX_SECONDS": "3"}, "TARGET_DELAY_MIN_SECONDS"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"IG_PROXY": "not a url"}, "IG_PROXY"),
        ({"IG_PROXY": "http://host:99999"}, "IG_PROXY"),
        ({"TARGET_ACCOUNTS": "ok,not ok"}, "TARGET_ACCOUNTS"),
        ({"IG_USERNAME": "me@example.com"}, "IG_USERNAME"),
        ({"IG_PASSWORD_FILE": "/nonexistent/pw"}, "IG_PASSWORD_FILE"),
        ({"IG_TOTP_SEED": "not-base32!"}, "IG_TOTP_SEED"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"POST_MEDIA_TYPES": "photo,story"}, "POST_MEDIA_TYPES"),
        ({"DRY_RUN": "perhaps"}, "DRY_RUN"),
    ],
)
def test_bad_settings_give_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load()
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_password_file_is_read_and_stripped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2-but-longer\n")
    monkeypatch.setenv("IG_PASSWORD_FILE", str(secret))
    settings = load()
    assert settings.ig_password is not None
    assert settings.ig_password.get_secret_value() == "hunter2-but-longer"
    assert "hunter2" not in repr(settings)


def test_unreadable_password_file_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("x")
    secret.chmod(0)
    monkeypatch.setenv("IG_PASSWORD_FILE", str(secret))
    import os

    if os.geteuid() == 0:  # root reads anything: use a directory instead, which nobody can read as a file
        monkeypatch.setenv("IG_PASSWORD_FILE", str(tmp_path))
    with pytest.raises(ConfigError, match="IG_PASSWORD_FILE: cannot read"):
        load()


def test_postgres_urls_use_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db:5432/stories")
    assert load().database_url == "postgresql+psycopg://u:p@db:5432/stories"


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("IG_USERNAME=From_Env_File\nSTORY_LIKES_PER_HOUR=7\n")
    settings = load()
    assert (settings.ig_username, settings.story_likes_per_hour) == ("from_env_file", 7)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "http://10.0.0.1:8080",
        "http://127.0.0.1.evil.com",
        "http://localhost.evil.com",
        "http://127.0.0.1@evil.com",  # userinfo: the host is evil.com
        "http://127.0.0.1\\@evil.com",
        "http://0.0.0.0:8080",
        "http://127.1",  # resolvers read it as 127.0.0.1, but it is not written as an address
        "https://i.instagram.com",
        "socks5://127.0.0.1:1080",  # a proxy URL, not an API base
        "http://127.0.0.1:8080/?next=http://evil.com",
    ],
)
def test_api_url_outside_loopback_is_a_config_error(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("IG_API_URL", url)
    with pytest.raises(ConfigError) as caught:
        load()
    assert caught.value.message.startswith("IG_API_URL: ")
    assert "\n" not in caught.value.message and "evil" not in caught.value.message  # the value is not echoed


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.9.8.7", "http://127.9.8.7"),
        ("HTTP://LocalHost:9/", "http://localhost:9"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("https://127.0.0.1:4443/base/", "https://127.0.0.1:4443/base"),
    ],
)
def test_api_url_on_loopback_is_accepted(monkeypatch: pytest.MonkeyPatch, url: str, kept: str) -> None:
    monkeypatch.setenv("IG_API_URL", url)
    assert load().ig_api_url == kept  # rebuilt from the checked parts: what is used is what was checked


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("postgresql://u@db.example:99999/x", "port 99999"),
        ("postgresql://u@db.example:12ab/x", "not a database URL"),
        ("postgresql://u@db.example/x?sslmode=maybe", "sslmode"),
        ("postgresql://u@db.example/x?PASSWORD=pw", "'PASSWORD' is not a PostgreSQL connection parameter"),
        ("postgresql://u@db.example/x?sslmod=require", "'sslmod' is not a PostgreSQL connection parameter"),
        ("postgresql://u:p@ss@db.example/x", "write an '@' in the user name or password as %40"),
    ],
)
def test_database_urls_that_cannot_work_are_configuration_errors(url: str, says: str, tmp_path: Path) -> None:
    for command in ("status", "run-stories"):
        result = run_cli(command, env={"IG_USERNAME": "me", "DATABASE_URL": url}, cwd=tmp_path)
        assert result.code == 78 and says in result.error, result.output
        assert "Traceback" not in result.output


def test_a_sqlite_path_that_is_a_directory_is_78_and_leaves_nothing_behind(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    result = run_cli("run-stories", env={"IG_USERNAME": "me", "DATABASE_URL": "sqlite:///data"}, cwd=tmp_path)
    assert result.code == 78 and "is a directory" in result.error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_bad_log_level_is_78_for_status_too(tmp_path: Path) -> None:
    for command in ("status", "run-stories"):
        result = run_cli(command, env={"IG_USERNAME": "me", "LOG_LEVEL": "LOUD"}, cwd=tmp_path)
        assert result.code == 78 and "LOG_LEVEL" in result.error, (command, result.output)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://bob:S3cretPW@db:5432/x", "postgresql+psycopg://bob@db:5432/x"),
        ("postgresql+psycopg://bob@db/x?password=S3cretPW", "postgresql+psycopg://bob@db/x?password=***"),
        (
            "postgresql+psycopg://bob@db/x?PASSWORD=S3cretPW&sslmode=require",
            "postgresql+psycopg://bob@db/x?PASSWORD=***&sslmode=require",
        ),
        ("postgresql+psycopg://bob@db/x?sslpassword=S3cretPW", "postgresql+psycopg://bob@db/x?sslpassword=***"),
        (
            "postgresql+psycopg://bob@db/x?oauth_client_secret=S3cretPW",
            "postgresql+psycopg://bob@db/x?oauth_client_secret=***",
        ),
        (
            "postgresql+psycopg://bob@db/x?dbname=host%3Dh%20password%3DS3cretPW",
            "postgresql+psycopg://bob@db/x?dbname=***",
        ),
        ("postgresql+psycopg://bob@db/x?service=S3cret@PW", "postgresql+psycopg://bob@db/x?service=***"),
        ("postgresql+psycopg://bob:S3cret%40PW@db/x", "postgresql+psycopg://bob@db/x"),
        ("postgresql+psycopg://bob:S3cret/PW@db/x", "postgresql+psycopg://bob@db/x"),
        ("postgresql+psycopg://bob:S3cretPW@[::1]:5432/x", "postgresql+psycopg://bob@[::1]:5432/x"),
        ("postgresql+psycopg://bob:S3cret@PW@db/x", "postgresql+psycopg URL (not shown: it cannot be read)"),
        ("postgresql:/bob:S3cretPW@db/x", "postgresql URL (not shown: it cannot be read)"),
        ("S3cretPW:x", "a URL (not shown: it cannot be read)"),
        ("postgresql+psycopg://bob:S3cretPW@db:abc/x", "postgresql+psycopg URL (not shown: it cannot be read)"),
        ("sqlite:///data/stories.db", "sqlite:///data/stories.db"),
    ],
)
def test_a_database_url_is_shown_without_its_password(url: str, shown: str) -> None:
    from story_liker.logging import redact_database_url

    assert redact_database_url(url) == shown
    assert "S3cret" not in shown and "PW@" not in shown


@pytest.mark.parametrize(
    "url", ["postgresql:/bob:S3cretPW@host/db", "bob:S3cretPW@host", "S3cretPW", "my sql://bob:S3cretPW@host/db"]
)
def test_a_database_url_that_is_not_one_is_not_echoed(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigError) as caught:
        load()
    assert caught.value.message.startswith("DATABASE_URL: ") and "S3cret" not in caught.value.message


SECRET_FILES = ["IG_PASSWORD_FILE", "IG_TOTP_SEED_FILE", "SESSION_ENCRYPTION_KEY_FILE", "NOTIFY_URLS_FILE"]


def _secret_file(kind: str, tmp_path: Path) -> tuple[str, str]:
    """A path of the given kind and what the error line must say about it."""
    import os

    if kind == "fifo":  # opening it would wait for a writer, reading it for the writer to finish
        os.mkfifo(tmp_path / "fifo")
        return str(tmp_path / "fifo"), "is not a regular file"
    if kind == "device":  # never ends
        return "/dev/zero", "is not a regular file"
    if kind == "directory":
        return str(tmp_path), "is not a regular file"
    if kind == "not-utf8":
        (tmp_path / "latin1").write_bytes("Passwört-123\n".encode("latin-1"))
        return str(tmp_path / "latin1"), "is not UTF-8 text"
    assert kind == "too-big"
    (tmp_path / "big").write_bytes(b"A" * (64 * 1024 + 1))
    return str(tmp_path / "big"), "is larger than 64 KiB"


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "not-utf8", "too-big"])
@pytest.mark.parametrize("variable", SECRET_FILES)
def test_a_secret_file_that_is_no_small_text_file_is_one_line_naming_the_variable(
    tmp_path: Path, variable: str, kind: str
) -> None:
    path, says = _secret_file(kind, tmp_path)
    result = run_process("status", env={"IG_USERNAME": "me", variable: path}, cwd=tmp_path, timeout=30)
    assert result.code == 78, result.output
    assert result.stderr.startswith(f"story-liker: {variable}: ") and says in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Passw" not in result.output


@pytest.mark.parametrize("url", ["http://host:99999/x", "http://host:abc/", "https://host:0/", "http://[::1]:70000/"])
@pytest.mark.parametrize("variable", ["HEALTHCHECK_URL", "PUSHGATEWAY_URL"])
def test_a_bad_port_in_a_monitoring_url_is_78_naming_the_variable(tmp_path: Path, variable: str, url: str) -> None:
    env = {"IG_USERNAME": "me", variable: url}
    for args in (["doctor"], ["run-stories"]):
        result = run_cli(*args, env=env, cwd=tmp_path)
        assert result.code == 78, (args, result.output)
        assert f"{variable}: the port is not a number between 1 and 65535" in result.output, (args, result.output)
        assert "unexpected error" not in result.output


def test_a_secret_file_saved_with_a_byte_order_mark_reads_without_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "pw").write_bytes("\ufeffhunter2-but-longer\r\n".encode())
    monkeypatch.setenv("IG_PASSWORD_FILE", str(tmp_path / "pw"))
    password = load().ig_password
    assert password is not None and password.get_secret_value() == "hunter2-but-longer"


@pytest.mark.parametrize("kind", ["fifo", "not-utf8"])
def test_a_dotenv_that_is_no_text_file_is_one_line_for_every_command(tmp_path: Path, kind: str) -> None:
    import os

    if kind == "fifo":
        os.mkfifo(tmp_path / ".env")
    else:
        (tmp_path / ".env").write_bytes("IG_USERNAME=me\nIG_PASSWORD=Passwört-123\n".encode("latin-1"))
    for args in (["status"], ["doctor"], ["run-stories"]):
        result = run_process(*args, env={}, cwd=tmp_path, timeout=30)
        assert result.code == 78, (args, result.output)
        assert ".env" in result.output and "unexpected" not in result.output and "Passw" not in result.output
