"""Domain exceptions. Each carries the exit code the scheduler sees; only cli.py turns them into exits."""

from __future__ import annotations

from enum import StrEnum

OK = 0
BUG = 1
USAGE = 2  # bad command-line usage: a value typed on the command line, or a prompt left unanswered (Ctrl-D)
DB_UNAVAILABLE = 69  # EX_UNAVAILABLE
TRY_LATER = 75  # EX_TEMPFAIL
NEEDS_HUMAN = 77  # EX_NOPERM
CONFIG = 78  # EX_CONFIG
SIGINT = 130
SIGTERM = 143


class StoryLikerError(Exception):
    """Base of every error that ends a command with a documented exit code."""

    exit_code = BUG

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def outcome(self) -> str:
        """The `outcome` of `run_finished` for this error: its class name in snake_case (`needs_human`,
        `locked`, `cooling_down`, `lease_lost`, `login_backoff`, `network_error`, `throttled`, ...)."""
        import re

        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()


class NoInput(StoryLikerError):
    """A person at a prompt gave no answer (Ctrl-D or an empty line)."""

    exit_code = USAGE


class UsageError(StoryLikerError):
    """A value given on the command line is wrong (a name, a duration, a file that must not exist yet): what the
    person typed, not the settings. 2, as click's own usage errors: fix the command, not the configuration."""

    exit_code = USAGE


class ConfigError(StoryLikerError):
    exit_code = CONFIG


class SchemaOutdated(ConfigError):
    pass


class DatabaseReadOnly(ConfigError):
    """The command writes to the database, and the database is read-only to this process (a read-only file,
    directory or mount; a PostgreSQL standby). It will not fix itself: 78, never retried."""


class DatabaseCorrupt(ConfigError):
    """The SQLite file is damaged or not a SQLite database at all (SQLITE_CORRUPT, SQLITE_NOTADB). Like a
    read-only database it will not fix itself, and a retry would only fail the same way: 78, for a person to
    restore a backup or move the file away (not 69, which a scheduler retries)."""


class UndecryptableSession(ConfigError):
    """The stored session cannot be read with the configured key (lost or rotated away) or is corrupt."""


class DatabaseUnavailable(StoryLikerError):
    exit_code = DB_UNAVAILABLE


class TryLater(StoryLikerError):
    exit_code = TRY_LATER


class Locked(TryLater):
    """Another run of the same Instagram account holds the lease."""


class LeaseLost(TryLater):
    """This run's lease expired and another run took it: stop before the next request."""


class LoginBackoff(TryLater):
    """A login failed recently; the next attempt is allowed only after a backoff."""


class CoolingDown(TryLater):
    """A persisted cooldown is still running; no request was sent."""


class NetworkError(TryLater):
    """Instagram could not be reached (connection refused, reset, timeout, 5xx).

    ``answered``: Instagram answered (a 5xx), so it did not act on the request. Otherwise (a timeout, a connection
    dropped before the answer) a write may have landed: a like sent that way is never sent again blindly."""

    def __init__(self, message: str, *, answered: bool = False) -> None:
        super().__init__(message)
        self.answered = answered


class ThrottleKind(StrEnum):
    """Why a cooldown started; each kind has its own first cooldown (see health.cooldown)."""

    RATE_LIMIT = "rate_limit"  # 429, please wait, rate_limit_error, sentry_block
    FEEDBACK_REQUIRED = "feedback_required"  # an action block
    REJECTED = "rejected"  # several likes in a row answered with a 4xx: the breaker opened


class Throttled(TryLater):
    """Instagram asked us to slow down (429, please wait, feedback_required, rate_limit_error)."""

    def __init__(self, message: str, *, kind: ThrottleKind, detail: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.detail = detail  # Instagram's own words (feedback_message), which may name the block's end


class NeedsHuman(StoryLikerError):
    exit_code = NEEDS_HUMAN


class PasswordRejected(NeedsHuman):
    """Instagram answered a password login with its definite "wrong password" (instagrapi's BadPassword). At a
    terminal `login` may ask for the password again (health.login_retry); anywhere else a human must look."""


def is_password_rejected(exc: StoryLikerError) -> bool:
    """Instagram said the password is wrong (the adapter raises PasswordRejected for instagrapi's BadPassword)."""
    return isinstance(exc, PasswordRejected)


class SessionExpired(StoryLikerError):
    """Instagram answered login_required. The job re-logs in once, else this becomes NeedsHuman."""

    exit_code = NEEDS_HUMAN


class TargetUnavailable(StoryLikerError):
    """A target does not exist or is private and not followed; recorded on the target, pass goes on."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # "not_found" or "private"


class BadResponse(StoryLikerError):
    """Instagram answered something we cannot use for one item or target; skipped, pass goes on.

    Should one escape a pass, Instagram is answering nonsense: try later.
    """

    exit_code = TRY_LATER


class Gone(BadResponse):
    """The story or post a like was meant for is no longer there (a story that expired since it was read, a deleted
    post: instagrapi's MediaUnavailable). Not a refusal of the account: recorded as handled, the pass goes on."""


class Interrupted(StoryLikerError):
    """SIGTERM or SIGINT: the pass stopped between two steps."""

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.exit_code = SIGINT if signum == signal.SIGINT else SIGTERM
