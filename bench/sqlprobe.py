"""Run the story-liker CLI (``story_liker.cli.main``, exactly what the console script runs) and, when it
exits, write what it measured about itself to the JSON file named by $BENCH_PROBE_FILE:

- ``statements``: SQL statements sent, the same thing ``Store.statements`` counts (SQLAlchemy
  ``before_cursor_execute``) but for every engine of the process, schema check and run record included;
- ``vm_hwm_kb``: peak resident set size of this process (``VmHWM``). ``ru_maxrss`` from wait4 is not
  usable for that: on exec, Linux carries the high-water mark of the spawning process's memory over
  into the child's, so a child of a big benchmark process "peaks" at least at the benchmark's size.

It is run by path (``python bench/sqlprobe.py run-stories``), so it imports nothing from ``bench``.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path
from typing import Any


def peak_rss_kb() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def main() -> None:
    import sqlalchemy as sa
    from sqlalchemy.engine import Engine

    count = [0]

    def counted(*_: Any) -> None:
        count[0] += 1

    sa.event.listen(Engine, "before_cursor_execute", counted)
    target = os.environ.get("BENCH_PROBE_FILE")
    if target:
        atexit.register(
            lambda: Path(target).write_text(json.dumps({"statements": count[0], "vm_hwm_kb": peak_rss_kb()}))
        )
    sys.argv[0] = "story-liker"
    from story_liker.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
