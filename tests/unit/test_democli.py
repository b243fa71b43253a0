"""bench/democli.py: the CLI as `make demo` runs it leaves out the `ig_api_url_set` warning, and nothing else."""

from __future__ import annotations

import contextlib
import inspect
import io
import logging

from bench.democli import EVENT, DropEvent
from story_liker import cli
from story_liker.logging import configure


def test_the_demo_cli_leaves_out_the_api_url_warning_and_nothing_else() -> None:
    assert f'"{EVENT}"' in inspect.getsource(cli._load_settings)  # the event the CLI logs, by that name
    root, logger = logging.getLogger(), logging.getLogger("story_liker.cli")
    saved = root.handlers[:], root.level
    drop = DropEvent(EVENT)
    screen = io.StringIO()
    try:
        with contextlib.redirect_stdout(screen):
            configure("INFO", "text")
            logger.addFilter(drop)
            logger.warning(EVENT, extra={"host": "127.0.0.1"})
            logger.warning("lock_taken_over", extra={"holder": "x"})
            logging.getLogger("story_liker.jobs.likes").info("story_liked", extra={"target": "ada.lovelace"})
    finally:
        logger.removeFilter(drop)
        root.handlers[:], root.level = saved
    shown = screen.getvalue()
    assert EVENT not in shown
    assert "lock_taken_over holder=x" in shown and "story_liked target=ada.lovelace" in shown
