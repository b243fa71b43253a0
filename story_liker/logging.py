"""Logging config: JSON lines (python-json-logger) or plain text on stdout, with secrets redacted.

Context (run_id, command, account) rides in a ContextVar so every line of a run carries it.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

CONTEXT: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("story_liker_context", default={})  # noqa: B039  # never mutated, always replaced

# Values registered at runtime (password, sessionid, cookie values, TOTP seed, keys) are replaced
# wherever they appear; the patterns catch secrets we were never told about.
_SECRETS: set[str] = set()
_PATTERNS = [
    (
        re.compile(
            r"(?i)(sessionid|csrftoken|rur|mid|ig-u-rur|password|enc_password)(['\"]?\s*[:=]\s*['\"]?)[^'\";,\s&}]+"
        ),
        r"\1\2***",
    ),
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(Bearer\s+)?[A-Za-z0-9:+/=._-]{8,}"), r"\1\2***"),
    (re.compile(r"IGT:2:[A-Za-z0-9+/=]+"), "***"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/?#@:]*:)[^\s/?#@]+@"), r"\1***@"),  # scheme://user:password@
]
_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.-]*)(://|:)")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


def register_secret(value: str | None) -> None:
    """Never log this value again (ignored if too short to be a secret)."""
    if value and len(value) >= 6:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _secret_parameter(key: str, value: str) -> bool:
    """A query parameter of a database URL that is a secret (password, sslpassword, oauth_client_secret,
    scram_client_key) or may hold one (a value with an '@' or a password: libpq reads a whole connection
    string or URL given as dbname or service)."""
    return any(word in key.lower() for word in ("password", "secret", "scram")) or any(
        mark in value.lower() for mark in ("@", "password")
    )


def redact_database_url(url: str) -> str:
    """A database URL as it may be shown: scheme, user, host, port, database and query, the password and every
    query parameter that is or may hold a secret (libpq takes ``?password=``) as ***. One that cannot be read
    for certain, so that no one can say which part is the password, shows its scheme only."""
    from sqlalchemy.engine import make_url

    scheme = _SCHEME.match(url)
    name = scheme.group(1).lower() if scheme else ""
    if not scheme or (scheme.group(2) == ":" and not name.startswith(("postgres", "sqlite"))):
        name = "a"  # `name:...` may be anything (a password pasted alone); `name://` is a scheme
    unreadable = f"{name} URL (not shown: it cannot be read)"
    try:
        parsed = make_url(url.strip())
        port = parsed.port
    except Exception:  # ArgumentError, or ValueError from a port that is not a number
        return unreadable
    host = parsed.host or ""
    if "@" in host:  # an '@' of the password not written as %40: the password may run into the host
        return unreadable
    netloc = (f"{parsed.username}@" if parsed.username else "") + (f"[{host}]" if ":" in host else host)
    netloc += f":{port}" if port is not None else ""
    query = [
        f"{key}={'***' if _secret_parameter(key, value) else value}"
        for key, values in parsed.query.items()
        for value in ((values,) if isinstance(values, str) else values)
    ]
    database = f"/{parsed.database}" if parsed.database is not None else ""
    return f"{parsed.drivername}://{netloc}{database}" + (f"?{'&'.join(query)}" if query else "")


class _Context(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in CONTEXT.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


_THIRD_PARTY = ("instagrapi", "private_request", "public_request", "urllib3", "httpx", "alembic")


_PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[sdrifxXeEgGcoa]")


class _Muzzle(logging.Filter):
    """instagrapi logs whole responses and request bodies (logins included): keep only its message
    template, never the values, so no token it saw can reach a log line, whatever LOG_LEVEL says."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(("instagrapi", "private_request", "public_request")):
            template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
            record.msg = _PLACEHOLDER.sub("...", template).replace("%%", "%")  # the template, never the values
            record.args = ()
            record.exc_info = record.exc_text = None
        return True


class _Json(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        fields = dict(log_record)
        log_record.clear()
        log_record["timestamp"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        log_record["level"] = record.levelname.lower()
        log_record["event"] = fields.pop("message", record.getMessage())
        if record.name and not record.name.startswith("story_liker"):
            log_record["logger"] = record.name
        log_record.update(fields)


class _Text(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and k not in ("run_id", "account")}
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        line = f"{stamp} {record.levelname.lower():7} {record.getMessage()} {extra}".rstrip()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


class _Stdout(logging.StreamHandler):  # type: ignore[type-arg]  # a StreamHandler of any text stream
    """Writes to whatever ``sys.stdout`` is when a line is written, unless a command points it elsewhere: a
    progress bar on a terminal (rich's live display) puts its own stdout in place while it shows, and the log
    lines then print above the bar instead of onto it."""

    def __init__(self) -> None:
        self._fixed: Any = None
        super().__init__(sys.stdout)

    @property  # a property where logging keeps a plain attribute
    def stream(self) -> Any:
        return self._fixed if self._fixed is not None else sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        self._fixed = None if value is None or value is sys.stdout else value


def configure(level: str = "INFO", fmt: str = "json") -> None:
    handler = _Stdout()
    handler.addFilter(_Context())
    handler.addFilter(_Muzzle())
    handler.setFormatter(_Json(reserved_attrs=[*_STANDARD - {"message"}]) if fmt == "json" else _Text())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # instagrapi logs every URL at INFO and whole responses at DEBUG: warnings only, even when debugging.
    for noisy in _THIRD_PARTY:
        logging.getLogger(noisy).setLevel("WARNING")
