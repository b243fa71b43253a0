"""The story-liker CLI as `make demo` runs it: ``story_liker.cli.main``, exactly what the console script runs,
without the ``ig_api_url_set`` warning.

Every command of the demo talks to the local Instagram double through ``IG_API_URL``, so each would open with that
warning. It is right outside the demo (it says a command talks to something that is not Instagram) and stays
there; in the demo it would only repeat, before every step, what the demo says once at its start. Nothing else is
left out: the filter drops that one event, on the CLI's own logger, and every other line prints as it would.

It is run by path (``python bench/democli.py run-stories``), so it imports nothing from ``bench``.
"""

from __future__ import annotations

import logging
import sys

EVENT = "ig_api_url_set"


class DropEvent(logging.Filter):
    """Drops the log records of one event (the message of a story-liker log record is its event name)."""

    def __init__(self, event: str) -> None:
        super().__init__()
        self.event = event

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.event


def main() -> None:
    logging.getLogger("story_liker.cli").addFilter(DropEvent(EVENT))
    sys.argv[0] = "story-liker"
    from story_liker.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
