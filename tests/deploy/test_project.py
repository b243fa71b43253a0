"""The project around the deploy files: the license expression, the how-to pages, the CI script and markers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.deploy.common import HOWTO, ROOT, run


def test_license_is_an_spdx_expression() -> None:
    """PEP 639: `license = "MIT"`; the `{ text = ... }` table is deprecated and setuptools warns on every build."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"


# ---------------------------------------------------------------------------- the how-to pages


def test_the_how_to_pages_cover_every_scheduler() -> None:
    """A how-to page for each scheduler and for the alerts, each with a heading that names it, each linked from
    the README."""
    readme = (ROOT / "README.md").read_text()
    for word in ("systemd", "cron", "Kubernetes", "Docker", "alert"):
        pages = [p for p in sorted(HOWTO.glob("*.md")) if any(word.lower() in h.lower() for h in headings(p))]
        assert pages, word
        assert any(f"docs/how-to/{p.name}" in readme for p in pages), word


def headings(page: Path) -> list[str]:
    return re.findall(r"^#{1,4} (.+)$", page.read_text(), re.M)


# ---------------------------------------------------------------------------- CI

CI_RUN = ROOT / ".ci" / "run"


def test_ci_script_fails_instead_of_skipping() -> None:
    text = CI_RUN.read_text()
    assert run(["bash", "-n", str(CI_RUN)]).returncode == 0
    assert "|| true" not in text and "will skip" not in text  # no error is swallowed
    assert re.search(r"^export CI=true$", text, re.M)  # a missing validator fails the deploy tests
    assert 'make test-pg PYTEST_ARGS="-m postgres"' in text and "-k postgres" not in text


def test_the_postgres_marker_selects_every_postgresql_case_and_nothing_else(tmp_path: Path) -> None:
    def collect(*extra: str, pg: bool) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
        if pg:  # collecting connects to nothing: any PostgreSQL URL will do
            env["TEST_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
        return run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *extra],
            cwd=ROOT,
            env=env,
            timeout=120,
        )

    selected = collect("-m", "postgres", pg=True)
    assert selected.returncode == 0, selected.stdout + selected.stderr
    ids = [line for line in selected.stdout.splitlines() if "::" in line]
    assert len(ids) >= 20, selected.stdout  # the store, lock and end-to-end cases

    def on_postgresql(test_id: str) -> bool:  # the database_url param: `[postgresql]`, `[x-postgresql-y]`
        params = test_id.partition("[")[2].removesuffix("]")
        return "postgresql" in params.split("-")

    assert all(on_postgresql(i) or "postgres" in i.split("::")[-1].partition("[")[0] for i in ids), ids
    every = collect(pg=True)
    on_pg = {line for line in every.stdout.splitlines() if "::" in line and on_postgresql(line)}
    assert on_pg
    assert on_pg <= set(ids)  # no PostgreSQL case escapes the marker
    without = collect("-m", "postgres", pg=False)  # no server: refused, not an empty green pass
    assert without.returncode == 4 and "TEST_DATABASE_URL" in without.stdout + without.stderr
