"""The fault simulation's whole matrix (tests/faultsim.py): every fault at every request of a story pass and a
post pass, each followed by the day of runs the shipped timers make, the promises checked after each.

``python -m bench.faults`` (and section 9 of ``make bench``); `make test` runs a sample of it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import bench.common  # noqa: F401  # puts the repository root on sys.path, for tests.faultsim
from bench.common import table
from tests import faultsim


def measure() -> faultsim.Matrix:
    return faultsim.run_matrix()


def report(matrix: faultsim.Matrix) -> str:
    passes = ", ".join(f"{name} pass {count} requests" for name, count in matrix.indexes.items())
    out = [
        "9. The fault simulation (tests/faultsim.py): every fault at every request of a pass, then the day after",
        f"   the faulted passes: {passes}; {len(faultsim.FAULTS)} faults (a like of something gone: at likes only)",
        "   each schedule: the faulted pass, then run-stories hourly / run-posts 3-hourly for 24 h, in-process",
    ]
    rows = [[kind, count] for kind, count in sorted(matrix.faults.items())]
    out.append(table(["fault", "schedules"], rows, "lr"))
    out.append(
        f"  {matrix.schedules} schedules (with the fault-free ones) in {matrix.seconds:.0f} s;"
        f" promises broken: {len(matrix.violations)}"
    )
    out += [f"    {line}" for line in matrix.violations[:20]]
    out.append(
        f"  promises: no item liked twice; the hourly limits; everything due liked before it expires (excused: a"
        f" cooldown or full limits at its last chance, a lost like Instagram does not say landed); nothing taught"
        f" asked again; at most {faultsim.FOLLOW_UP_BOUND} more requests than without the fault; one password login"
        f" a day; needs-human exactly when the rules say, told once; exit codes {sorted(faultsim.EXIT_CODES)};"
        " no secret"
    )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    matrix = measure()
    print(report(matrix))
    return 1 if matrix.violations else 0


if __name__ == "__main__":
    sys.exit(main())
