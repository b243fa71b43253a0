"""What a person at a terminal sees: log lines and the progress bar share the console."""

from __future__ import annotations

import io
import logging
import re

from rich.console import Console
from rich.progress import Progress

from story_liker import cli
from story_liker.logging import configure


def test_a_log_line_prints_above_the_progress_bar_not_onto_it() -> None:
    """`make demo` showed 'ada.lovelace ━━━╺━━ 1/1201:03:23 info story_liked …': the log handler wrote to the
    stdout it was made with, past the bar's own. It now writes to the stdout in place when the line is written."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    screen = io.StringIO()
    try:
        configure("INFO", "text")
        progress = cli._RichProgress()
        progress.bar = Progress(*progress.bar.columns, console=Console(file=screen, force_terminal=True, width=80))
        progress.start(12, "liking stories")
        progress.advance("ada.lovelace")
        progress.bar.refresh()  # the bar is on the screen (its refresh thread may not have drawn it yet)
        logging.getLogger("story_liker.jobs.likes").info("story_liked", extra={"target": "ada.lovelace"})
        progress.advance("bob")
        progress.stop()
    finally:
        root.handlers[:], root.level = saved
    shown = screen.getvalue()
    assert re.search(r"\x1b\[2K\d\d:\d\d:\d\d info +story_liked target=ada\.lovelace[^\n]*\n", shown), shown
    assert not re.search(r"\d+/12(\x1b\[0m)?\d\d:\d\d:\d\d", shown), shown  # never glued onto the bar's count
