"""12-factor settings from the environment and `.env`. No module-level instance: build with load()."""

from __future__ import annotations

import base64
import contextlib
import difflib
import ipaddress
import re
from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from story_liker.errors import ConfigError

USERNAME_RE = re.compile(r"^[a-z0-9._]{1,30}$")
MEDIA_TYPES = ("photo", "video", "album", "reel")
DEFAULT_DATABASE_URL = "sqlite:///data/stories.db"


def normalise_username(raw: str) -> str:
    """`@Name`, `instagram.com/name/` and ` name ` all become `name`; anything else invalid raises."""
    name = raw.strip()
    match = re.match(r"^(?:https?://)?(?:www\.)?instagram\.com/([^/?#]+)/?(?:[?#].*)?$", name, re.IGNORECASE)
    if match:
        name = match.group(1)
    name = name.removeprefix("@").lower()
    if not USERNAME_RE.fullmatch(name) or name.startswith(".") or name.endswith(".") or ".." in name:
        raise ValueError(f"{raw.strip()!r} is not an Instagram username (letters, digits, '.', '_', max 30)")
    return name


SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def normalise_database_url(url: str) -> str:
    """`postgres://` and `postgresql://` become psycopg URLs; an in-memory SQLite database (which would throw
    limits and cooldowns away at every exit), a bad port or an unknown sslmode is refused."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    elif scheme != "sqlite":
        # never the value itself: it may hold a password (errors are printed and logged)
        named = f"unsupported scheme {scheme!r}" if re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme) else "not a URL"
        raise ValueError(f"{named}: use sqlite:///path or postgresql://user@host/db")
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018  # make_url checks the port's digits, not its range
    except (ArgumentError, ValueError):
        raise ValueError("not a database URL (check the host, port and quoting)") from None
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ValueError(f"the port {parsed.port} is not between 1 and 65535")
    if scheme == "sqlite":
        if parsed.database in (None, "", ":memory:") or "mode=memory" in url:
            raise ValueError(
                "an in-memory SQLite database forgets limits, cooldowns and the session at every exit: "
                "use sqlite:///path/to/stories.db"
            )
        return url
    if "@" in (parsed.host or ""):  # SQLAlchemy ends the password at the first '@': the rest became the host
        raise ValueError("write an '@' in the user name or password as %40")
    sslmode = parsed.query.get("sslmode")
    if sslmode is not None and sslmode not in SSL_MODES:
        raise ValueError(f"sslmode={sslmode!r} is not one of {', '.join(SSL_MODES)}")
    from psycopg.pq import Conninfo

    # libpq would refuse them at connect time, with an error that is no database problem (exit 1, "a bug")
    _, options = parsed.get_dialect()().create_connect_args(parsed)
    known = {option.keyword.decode() for option in Conninfo.get_defaults()}
    unknown = sorted(name for name in options if name not in known)
    if unknown:
        raise ValueError(
            f"{', '.join(repr(name) for name in unknown)} is not a PostgreSQL connection parameter "
            "(libpq's are lower case, like password and sslmode)"
        )
    return url


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1, written as such: no name that merely starts like one, no DNS."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_port(parts: SplitResult) -> int | None:
    """The port of a URL, checked with the rest of it (urlsplit checks it only when asked, and a request sent to
    it would fail with a ValueError); None when the URL names none."""
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("the port is not a number between 1 and 65535")
    return port


def loopback_api_url(raw: str) -> str:
    """IG_API_URL, rebuilt from its checked parts: `http(s)://<loopback host>[:port][/path]`, nothing else.

    It redirects every Instagram request (session cookies, and the password on a re-login) past IG_PROXY,
    so it may only point at this machine: the local Instagram double of the tests and the demo.
    """
    parts = urlsplit(raw.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ValueError("expected a URL like http://127.0.0.1:port (a local Instagram double)")
    if "@" in parts.netloc or "\\" in raw or parts.query or parts.fragment or not is_loopback_host(host):
        raise ValueError(
            "only a loopback address (127.0.0.0/8, ::1, localhost) is allowed: it sends every Instagram "
            "request, session included, to that host instead of Instagram"
        )
    port = url_port(parts)
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{netloc}{f':{port}' if port is not None else ''}{parts.path.rstrip('/')}"


EVERYONE = "*"
SECRET_FILE_MAX_BYTES = 64 * 1024


def read_secret_file(variable: str, path: Path) -> SecretStr:
    """The stripped text of a `*_FILE` secret (IG_PASSWORD_FILE, ...). Only a regular file, read at most 64 KiB
    far: a FIFO would wait for a writer and a device like /dev/zero never ends. Every problem is a ValueError
    naming ``variable`` and the path, never a byte of the content."""
    import os
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)  # O_NONBLOCK: a FIFO opens at once
    except OSError as exc:
        raise ValueError(f"{variable}: cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError(f"{variable}: cannot read {path}: it is not a regular file (a directory, FIFO or device)")
    with os.fdopen(fd, "rb") as file:
        try:
            data = file.read(SECRET_FILE_MAX_BYTES + 1)
        except OSError as exc:
            raise ValueError(f"{variable}: cannot read {path}: {exc.strerror}") from None
    if len(data) > SECRET_FILE_MAX_BYTES:
        raise ValueError(f"{variable}: {path} is larger than {SECRET_FILE_MAX_BYTES // 1024} KiB: not a secret file")
    try:
        text = data.decode("utf-8-sig").strip()  # -sig: without the byte order mark some editors write first
    except UnicodeDecodeError:
        raise ValueError(f"{variable}: {path} is not UTF-8 text") from None
    if not text:
        raise ValueError(f"{variable}: {path} is empty")
    return SecretStr(text)


def parse_active_hours(text: str) -> list[tuple[int, int]]:
    """`08:00-23:30` or `07:00-09:00, 18:00-01:00` (a range may wrap midnight) -> minutes after midnight."""
    ranges: list[tuple[int, int]] = []
    for part in _comma_list(text):
        match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", part)
        if not match:
            raise ValueError(f"{part!r} is not a range like 08:00-23:30")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or (h1 == 24 and m1) or (h2 == 24 and m2):
            raise ValueError(f"{part!r}: hours are 00-24, minutes 00-59")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if start == end:
            raise ValueError(f"{part!r} is empty (use 00:00-24:00 for the whole day)")
        ranges.append((start, end))
    if not ranges:
        raise ValueError("expected ranges like 08:00-23:30, comma-separated")
    return ranges


def _comma_list(value: object) -> list[str]:
    """`a, b,,c` (or a list) -> ["a", "b", "c"]."""
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    return [str(item).strip() for item in items if str(item).strip()]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", env_ignore_empty=True, extra="ignore")

    ig_username: str | None = Field(
        None,
        description="The Instagram account that likes (`name`, `@name` or a profile URL). Sessions, limits, targets "
        "and leases are kept per account: every command that acts for one needs it.",
    )
    ig_password: SecretStr | None = Field(
        None,
        description="The password, for `login` and the one unattended re-login when the session expired. A secret: "
        "prefer `IG_PASSWORD_FILE`.",
    )
    ig_password_file: Path | None = Field(
        None, description="A file holding `IG_PASSWORD` (a systemd credential, a mounted Kubernetes Secret)."
    )
    ig_totp_seed: SecretStr | None = Field(
        None,
        description="The base32 seed of the account's 2FA app, so that the unattended re-login can answer the "
        "2FA prompt. A secret: prefer `IG_TOTP_SEED_FILE`.",
    )
    ig_totp_seed_file: Path | None = Field(None, description="A file holding `IG_TOTP_SEED`.")
    ig_proxy: str | None = Field(
        None,
        description="A proxy for all Instagram traffic (`http://`, `https://`, `socks5://`, `socks5h://`); one "
        "stable proxy per account.",
    )
    ig_api_url: str | None = Field(
        None,
        description="For the tests, `make demo` and `make sandbox` only: sends every Instagram request to a local "
        "Instagram double. Loopback addresses only; never set it.",
    )
    session_encryption_key: SecretStr | None = Field(
        None,
        description="Fernet key(s), comma-separated, newest first, that encrypt the stored session "
        "(`story-liker keygen` makes one); unset: the session is stored as plain JSON. A secret: prefer "
        "`SESSION_ENCRYPTION_KEY_FILE`.",
    )
    session_encryption_key_file: Path | None = Field(None, description="A file holding `SESSION_ENCRYPTION_KEY`.")

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="`sqlite:///path` (relative to the working directory; `sqlite:////abs/path`) or "
        "`postgresql://user@host:5432/db` (psycopg 3; the password in a pgpass file, or %-encoded).",
    )
    target_accounts: Annotated[list[str] | None, NoDecode] = Field(
        None,
        description="The accounts whose stories and posts are liked: comma-separated names, `@names` or profile "
        "URLs; `*` takes every followed account the story tray shows. Synced into the database on every run; "
        "unset or blank: the targets in the database (`accounts add`) as they are.",
    )

    story_likes_per_hour: int = Field(
        20, ge=0, le=1000, description="At most this many story likes in any rolling hour."
    )
    story_likes_per_day: int = Field(
        100, ge=0, le=10000, description="At most this many story likes in any rolling 24 hours."
    )
    story_likes_per_10_minutes: int = Field(
        6,
        ge=1,
        le=1000,
        description="At most this many story likes in any rolling 10 minutes: no bursts. A pass that meets it waits "
        "for room between two reels while its PASS_BUDGET_MINUTES allow, else leaves the rest to the next pass.",
    )
    post_likes_per_hour: int = Field(15, ge=0, le=1000, description="At most this many post likes in any rolling hour.")
    post_likes_per_10_minutes: int = Field(
        8,
        ge=1,
        le=1000,
        description="At most this many post likes in any rolling 10 minutes, met as for stories.",
    )
    post_likes_per_day: int = Field(
        80, ge=0, le=10000, description="At most this many post likes in any rolling 24 hours."
    )
    action_delay_min_seconds: float = Field(
        3.0,
        ge=0,
        le=3600,
        description="The shortest random pause between two likes, in seconds (a story's like also waits for its "
        "moment on screen).",
    )
    action_delay_max_seconds: float = Field(
        12.0, ge=0, le=3600, description="The longest random pause between two likes, in seconds."
    )
    target_delay_min_seconds: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="The shortest random pause between two targets and between per-target reads (lookups, story and "
        "profile reads), in seconds.",
    )
    target_delay_max_seconds: float = Field(
        20.0, ge=0, le=3600, description="The longest random pause between targets and per-target reads, in seconds."
    )
    story_watch_percent: float = Field(
        100.0,
        ge=0,
        le=100,
        description="How much of each story's watch time a pass spends watching it (100: a photo 5-7 s, a video its "
        "length, the like inside it); lower it only for a demo or a test double.",
    )
    request_delay_min_seconds: float = Field(
        1.0,
        ge=0,
        le=3600,
        description="The shortest random gap between any two Instagram requests, in seconds (a longer pause counts "
        "towards it).",
    )
    request_delay_max_seconds: float = Field(
        3.0, ge=0, le=3600, description="The longest random gap between any two Instagram requests, in seconds."
    )

    story_retention_hours: float = Field(
        24.0,
        gt=0,
        description="The account's story records older than this are deleted: a few at a time by every like pass "
        "(never below 24 h there), all at once by `cleanup` (posts are kept).",
    )
    run_retention_days: float = Field(
        90.0,
        ge=1,
        description="Run records and delivered notifications older than this are deleted, by the like passes and "
        "`cleanup`; `report` counts runs and requests this far back.",
    )
    post_max_age_days: float = Field(3.0, gt=0, description="Only posts younger than this are liked.")
    post_media_types: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(MEDIA_TYPES),
        description="Which kinds of post are liked: a comma-separated subset of photo, video, album, reel.",
    )
    post_feed_count: int = Field(
        6,
        ge=1,
        le=50,
        description="Posts per page of a target's profile; a busy profile is read on while even its oldest post on "
        "the page is new (5 pages at most).",
    )
    reels_batch_size: int = Field(20, ge=1, le=50, description="User ids per `reels_media` request.")
    story_recheck_hours: float = Field(
        6.0,
        gt=0,
        le=24,
        description="Every enabled target is checked for new stories at least this often, whatever the story tray "
        "says.",
    )
    post_timeline_pages: int = Field(
        2,
        ge=0,
        le=10,
        description="Pages of the home feed a post pass reads before the profiles (0: none, the sweep alone).",
    )
    post_recheck_hours: float = Field(
        24.0,
        gt=0,
        le=168,
        description="Every target's own profile is read for posts at least this often; no longer than "
        "`POST_MAX_AGE_DAYS`, so that what the home feed missed is found before it ages out.",
    )
    target_exclude: Annotated[list[str], NoDecode] = Field(
        [], description="Comma-separated names `TARGET_ACCOUNTS=*` leaves out (it applies to `*` only)."
    )
    story_max_per_target: int | None = Field(
        None, ge=1, le=1000, description="Like at most the newest N stories of a target per pass (unset: no cap)."
    )
    post_max_per_target: int | None = Field(
        None, ge=1, le=1000, description="Like at most the newest N posts of a target per pass (unset: no cap)."
    )
    story_like_probability: float = Field(
        1.0,
        ge=0,
        le=1,
        description="The share of stories liked (0 to 1); which ones is decided by a hash of account and story, so "
        "reruns agree. The rest are recorded as skipped.",
    )
    active_hours: Annotated[list[tuple[int, int]] | None, NoDecode] = Field(
        None,
        description="When runs may act, like `08:00-23:30` or `07:00-09:00,18:00-01:00` (a range may wrap "
        "midnight); outside them runs exit 0 without a request. Unset: always.",
    )
    timezone: str | None = Field(
        None,
        description="The IANA zone (like `Europe/Berlin`) of `ACTIVE_HOURS` and of the day for the daily limit "
        "and the digest. Unset: the machine's zone.",
    )
    warmup_start_percent: float = Field(
        25.0, gt=0, le=100, description="A new device's limits start at this share of the configured ones."
    )
    warmup_days: float = Field(
        7.0, ge=0, le=365, description="Days over which a new device's limits rise linearly to 100 % (0: no warm-up)."
    )
    daily_limit_variation_percent: float = Field(
        15.0,
        ge=0,
        le=50,
        description="The daily limits vary by up to this much from day to day (the same for an account and a date "
        "on every host).",
    )
    following_sync_max_pages: int = Field(
        10,
        ge=0,
        le=100,
        description="Pages of your following list walked once a day, to learn the targets' user ids and follow "
        "state without a lookup each (0: no walk).",
    )

    auto_login_min_hours: float = Field(
        24.0,
        ge=1,
        le=720,
        description="After an unattended password login, a session that expires again within this many hours "
        "needs a human (exit 77, told once) instead of another login.",
    )
    pass_budget_minutes: float = Field(
        12.0,
        ge=1,
        le=240,
        description="A pass plans its reads and likes within this time (its pauses at their longest) and leaves the "
        "rest, first, to the next pass; keep it a few minutes under the scheduler's limit (the shipped ones: 15).",
    )
    http_timeout_seconds: float = Field(20.0, gt=0, le=300, description="The timeout of every Instagram request.")
    lock_ttl_seconds: int = Field(
        900,
        ge=5,
        le=86400,
        description="A run's lease on its account, in seconds: renewed while the run works, so a crashed run's "
        "lease expires after this.",
    )
    cooldown_base_minutes: float = Field(
        30.0, gt=0, description="The first cooldown after throttling; it doubles with each throttle in a row."
    )
    feedback_cooldown_hours: float = Field(
        12.0,
        gt=0,
        description="The first cooldown after an action block (`feedback_required`); it doubles with each one in a "
        "row.",
    )
    cooldown_max_hours: float = Field(72.0, gt=0, description="The longest any cooldown lasts.")

    dry_run: bool = Field(
        False, description="Every pass reads and decides but sends no like or seen request, as with `--dry-run`."
    )
    metrics_textfile: Path | None = Field(
        None,
        description="Write Prometheus metrics for node_exporter's textfile collector, one file per command "
        "(`_run_stories` added to the name, or put `{command}` where it goes).",
    )
    pushgateway_url: str | None = Field(
        None, description="Push the same metrics to a Prometheus Pushgateway, grouped by command and account."
    )
    healthcheck_url: str | None = Field(
        None,
        description="A dead man's switch (healthchecks.io or alike), pinged at a run's start and end: `/start`, "
        "success, `/log` for 75, `/<exit code>`. `{command}` in it is replaced: one check per command.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="DEBUG, INFO, WARNING or ERROR."
    )
    log_format: Literal["json", "text"] | None = Field(
        None,
        description="`json` (one JSON object per line) or `text`. Unset: text on a terminal, JSON lines otherwise.",
    )
    notify_urls: SecretStr | None = Field(
        None,
        description="Apprise URLs (comma- or space-separated) that are told when the account needs you. They carry "
        "tokens: prefer `NOTIFY_URLS_FILE`.",
    )
    notify_urls_file: Path | None = Field(None, description="A file holding `NOTIFY_URLS`.")
    notify_config: Path | None = Field(
        None, description="An Apprise configuration file (TEXT or YAML), instead of or beside `NOTIFY_URLS`."
    )
    notify_cooldown_hours: float = Field(
        6.0,
        gt=0,
        le=1000,
        description="A cooldown longer than this is worth a message (an action block always is).",
    )
    notify_digest: Literal["off", "daily"] = Field(
        "off",
        description="`daily`: one summary a day at the first run of the day (likes per target, cooldowns, targets "
        "not checked, requests).",
    )

    @field_validator("notify_digest", mode="before")
    @classmethod
    def _digest(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _notify(self) -> Settings:
        """NOTIFY_URLS_FILE read like the other secret files; every URL `scheme://...` (never echoed: a token)."""
        if self.notify_urls is None and self.notify_urls_file is not None:
            self.notify_urls = read_secret_file("NOTIFY_URLS_FILE", self.notify_urls_file)
        for number, url in enumerate(self.notify_url_list, start=1):
            if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://\S", url):
                raise ValueError(
                    f"NOTIFY_URLS: entry {number} is not an Apprise URL (like ntfy://topic or tgram://token/chat_id)"
                )
        if self.notify_config is not None and not Path(self.notify_config).is_file():
            raise ValueError(f"NOTIFY_CONFIG: {self.notify_config} is not a readable file")
        return self

    @property
    def notify_url_list(self) -> list[str]:
        return split_notify_urls(self.notify_urls.get_secret_value()) if self.notify_urls else []

    @property
    def notifications_on(self) -> bool:
        return bool(self.notify_url_list or self.notify_config)

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _case_insensitive(cls, value: object, info: object) -> object:
        if not isinstance(value, str):
            return value
        return value.upper() if getattr(info, "field_name", "") == "log_level" else value.lower()

    @field_validator("ig_username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        return None if value is None else normalise_username(value)

    @field_validator("target_accounts", mode="before")
    @classmethod
    def _targets(cls, value: object) -> list[str] | None:
        """Usernames, and `*` for every followed account the tray shows. A value with no name in it (` `, `,`,
        ` , `) is unset, as an empty one is: an empty list would disable every target the list ever named."""
        items = [] if value is None else _comma_list(value)
        if not items:
            return None
        names: list[str] = []
        for item in items:
            name = EVERYONE if item == EVERYONE else normalise_username(item)
            if name not in names:
                names.append(name)
        return names

    @field_validator("target_exclude", mode="before")
    @classmethod
    def _exclude(cls, value: object) -> list[str]:
        return sorted({normalise_username(item) for item in _comma_list(value or [])})

    @field_validator("active_hours", mode="before")
    @classmethod
    def _active_hours(cls, value: object) -> list[tuple[int, int]] | None:
        if value is None or (isinstance(value, list) and all(isinstance(v, tuple) for v in value)):
            return value
        return parse_active_hours(str(value))

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value.strip()!r} is not an IANA time zone (like Europe/Berlin or UTC)") from None
        return value.strip()

    @field_validator("post_media_types", mode="before")
    @classmethod
    def _media_types(cls, value: object) -> frozenset[str]:
        types = frozenset(item.lower() for item in _comma_list(value))
        unknown = types - set(MEDIA_TYPES)
        if unknown or not types:
            raise ValueError(f"use a comma-separated subset of {', '.join(MEDIA_TYPES)}")
        return types

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalise_database_url(value.strip())

    @field_validator("pushgateway_url", "healthcheck_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL")
        url_port(parts)
        return value.strip().rstrip("/")

    @field_validator("ig_api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        return None if value is None else loopback_api_url(value)

    @field_validator("ig_proxy")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https", "socks5", "socks5h") or not parts.hostname:
            raise ValueError("expected a URL like http://host:port or socks5://user:pass@host:port")
        url_port(parts)
        return value.strip()

    @model_validator(mode="after")
    def _not_itself(self) -> Settings:
        """The account that likes is no target of its own: it would look itself up and like its own stories."""
        if self.ig_username and self.ig_username in (self.target_accounts or []):
            raise ValueError(
                f"TARGET_ACCOUNTS lists {self.ig_username}, which is IG_USERNAME (the account that likes): take it out"
            )
        return self

    @model_validator(mode="after")
    def _files_and_ranges(self) -> Settings:
        for secret, path in (
            ("ig_password", "ig_password_file"),
            ("ig_totp_seed", "ig_totp_seed_file"),
            ("session_encryption_key", "session_encryption_key_file"),
        ):
            file = getattr(self, path)
            if file is not None and getattr(self, secret) is None:
                setattr(self, secret, read_secret_file(path.upper(), file))
        for kind in ("action", "target", "request"):
            low, high = getattr(self, f"{kind}_delay_min_seconds"), getattr(self, f"{kind}_delay_max_seconds")
            if low > high:
                raise ValueError(
                    f"{kind.upper()}_DELAY_MIN_SECONDS ({low}) is greater than "
                    f"{kind.upper()}_DELAY_MAX_SECONDS ({high})"
                )
        if self.post_recheck_hours > self.post_max_age_days * 24:
            raise ValueError(
                f"POST_RECHECK_HOURS ({self.post_recheck_hours:g}) is longer than POST_MAX_AGE_DAYS "
                f"({self.post_max_age_days:g} days): a post the home feed missed would age out before its "
                "profile is read"
            )
        if self.session_encryption_key is not None:
            for part in self.session_encryption_key.get_secret_value().split(","):
                try:
                    valid = len(base64.urlsafe_b64decode(part.strip().encode())) == 32
                except ValueError:
                    valid = False
                if not valid:
                    raise ValueError(
                        "SESSION_ENCRYPTION_KEY: not a Fernet key "
                        "(32 url-safe base64 bytes; `story-liker keygen` makes one)"
                    )
        if self.ig_totp_seed is not None:
            seed = self.ig_totp_seed.get_secret_value().replace(" ", "").upper()
            if not re.fullmatch(r"[A-Z2-7]+=*", seed):
                raise ValueError("IG_TOTP_SEED: not a base32 TOTP seed")
            self.ig_totp_seed = SecretStr(seed)
        return self

    @property
    def encryption_key(self) -> str | None:
        """SESSION_ENCRYPTION_KEY as text ("new,old" for rotation), or None: store the session unencrypted."""
        return self.session_encryption_key.get_secret_value() if self.session_encryption_key else None

    @property
    def log_style(self) -> Literal["json", "text"]:
        """LOG_FORMAT, or text for a person at a terminal and JSON lines for a journal or a collector."""
        if self.log_format is not None:
            return self.log_format
        import sys

        return "text" if sys.stdout.isatty() else "json"

    @property
    def follow_everyone(self) -> bool:
        """TARGET_ACCOUNTS contains `*`: every followed account with stories in the tray is a target."""
        return EVERYONE in (self.target_accounts or [])

    @property
    def named_targets(self) -> list[str] | None:
        """TARGET_ACCOUNTS without `*` (None: not set)."""
        return None if self.target_accounts is None else [n for n in self.target_accounts if n != EVERYONE]

    @property
    def zone(self) -> tzinfo:
        """TIMEZONE, or the machine's local zone."""
        if self.timezone:
            from zoneinfo import ZoneInfo

            return ZoneInfo(self.timezone)
        local = datetime.now().astimezone().tzinfo
        assert local is not None
        return local

    @property
    def story_recheck(self) -> timedelta:
        return timedelta(hours=self.story_recheck_hours)

    @property
    def post_recheck(self) -> timedelta:
        return timedelta(hours=self.post_recheck_hours)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def account(self) -> str:
        """The Instagram account this run acts for; every Instagram command needs it."""
        if not self.ig_username:
            raise ConfigError(
                "IG_USERNAME is not set: the Instagram account that likes. Put IG_USERNAME=you in a .env file here "
                "(or the environment; README, 'Quick start'), then run `story-liker login`"
            )
        return self.ig_username


def load(**overrides: object) -> Settings:
    """Read the environment and `.env`; any problem becomes one ConfigError line naming the variable (or .env)."""
    dotenv = Path(".env")
    if dotenv.exists() and not (dotenv.is_file() or dotenv.is_dir()):  # a FIFO would wait for a writer
        raise ConfigError(f".env: {dotenv.resolve()} is not a regular file")
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None
    except UnicodeDecodeError:
        raise ConfigError(f".env: {dotenv.resolve()} is not UTF-8 text") from None


# Kubernetes gives a pod a variable for every service (a service named story-liker: STORY_LIKER_SERVICE_HOST, ...)
_SERVICE_LINK = re.compile(r"_SERVICE_(HOST|PORT)(_\w+)?$|_PORT(_\d+_(TCP|UDP|SCTP)(_\w+)?)?$")


def misspelled(names: Iterable[str]) -> list[tuple[str, str]]:
    """Variables (of the environment or `.env`) shaped like a setting that no setting reads, each with the
    closest real name: `TARGET_ACOUNTS` -> `TARGET_ACCOUNTS`. A setting's shape is its first word and a close
    spelling (`IG_USER`, `NOTIFY_URL`), or a very close spelling under another first word (`TAGRET_ACCOUNTS`);
    the usual variables of a shell, systemd, Docker or Kubernetes are far from every setting."""
    known = sorted(name.upper() for name in Settings.model_fields)
    families = {name.split("_", 1)[0] for name in known}
    found = []
    for raw in names:
        name = raw.upper()
        if name in known or not re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+", name) or _SERVICE_LINK.search(name):
            continue
        cutoff = 0.75 if name.split("_", 1)[0] in families else 0.9
        closest = difflib.get_close_matches(name, known, n=1, cutoff=cutoff)  # quick bounds first: ms, not 100
        if closest:
            found.append((raw, closest[0]))
    return sorted(set(found))


def misspelled_here() -> list[tuple[str, str, str]]:
    """`misspelled` over this process's environment and `.env`: (name, closest setting, where it was set)."""
    import os

    found = [(name, closest, "environment") for name, closest in misspelled(os.environ)]
    dotenv = Path(".env")
    if dotenv.is_file():
        from dotenv import dotenv_values

        with contextlib.suppress(OSError, UnicodeDecodeError):  # load() says what is wrong with the file
            found += [(name, closest, ".env") for name, closest in misspelled(dotenv_values(dotenv))]
    return found


def describe(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    name = str(error["loc"][0]).upper() if error["loc"] else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    if (
        message.startswith(tuple(f"{n}" for n in ("IG_PASSWORD_FILE:", "IG_TOTP_SEED", "SESSION_ENCRYPTION_KEY")))
        or not name
    ):
        return message
    if message.startswith(name):
        return message
    return f"{name}: {message}"


def split_notify_urls(text: str) -> list[str]:
    """Apprise URLs separated by commas or blanks; a comma inside a URL (`mailto://...?to=a@x,b@y`) stays,
    since a new URL starts only where a `scheme://` follows the separator."""
    parts = re.split(r"[\s,]+(?=[A-Za-z][A-Za-z0-9+.-]*://)", text.strip())
    return [part.strip(" \t\r\n,") for part in parts if part.strip(" \t\r\n,")]
