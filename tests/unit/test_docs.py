"""The docs: the generated parts are what the code generates (cog), every page is reachable from the README, and
every relative link points at a file and heading that exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.rglob("*.md"))
COG_MARK = "[[[" + "cog"  # split, so that this file is no cog file itself


def cogged_files() -> list[Path]:
    """Every file with a cog block (docgen.py, which holds the code they call, aside)."""
    candidates = [README, *PAGES, *sorted((ROOT / "deploy").rglob("*")), ROOT / "ARCHITECTURE.md"]
    return [p for p in candidates if p.is_file() and p.suffix != ".py" and COG_MARK in p.read_text(errors="replace")]


def makefile_list(name: str) -> list[str]:
    """A `NAME = a b \\ c` variable of the Makefile, as a list of words."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    match = re.search(rf"^{name}\s*=(.*)$", text, re.M)
    assert match, f"{name} is not set in the Makefile"
    return match.group(1).split()


def test_the_generated_docs_are_what_the_code_generates() -> None:
    """`cog --check`, as `make check` runs it: a setting, command, exit code, outcome or metric added without its
    documentation (or a generated part edited by hand) fails here, with what `make docs` would change."""
    files = [str(p.relative_to(ROOT)) for p in cogged_files()]
    done = subprocess.run(
        [sys.executable, "-m", "cogapp", "-I", "docs", "--check", "--diff", "--verbosity=1", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"run `make docs`:\n{done.stdout}{done.stderr}"


def test_make_check_checks_every_file_with_a_cog_block() -> None:
    files = {str(p.relative_to(ROOT)) for p in cogged_files()}
    assert set(makefile_list("COGGED")) == files
    assert {"README.md", "deploy/story-liker.env.example", "docs/reference/commands.md"} <= files
    check = re.search(r"^check:.*?(?=^\S)", (ROOT / "Makefile").read_text(), re.M | re.S)
    assert check and "$(COG) --check" in check.group(0)


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(README.parent / target).resolve() for target, _ in links(README)}
    missing = [str(p.relative_to(ROOT)) for p in PAGES if p.resolve() not in linked]
    assert not missing, f"pages the README does not link to: {missing}"


def test_the_readme_is_a_front_door() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    for command in ("make run", "make test", "make demo"):
        assert f"\n{command}\n" in text, command
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert {"Quick start", "Commands", "Exit codes", "Documentation"} <= set(headings)


def test_the_readme_command_table_names_every_command() -> None:
    sys.path.insert(0, str(DOCS))
    try:
        import docgen
    finally:
        sys.path.remove(str(DOCS))
    section = README.read_text().split("## Commands", 1)[1].split("\n## ", 1)[0]
    cells = re.findall(r"^\| (.+?) \|", section, re.M)
    for command in docgen.command_names():
        first, _, rest = command.partition(" ")
        assert any(re.search(rf"`{first}\b", cell) and rest in cell for cell in cells), command


# ---------------------------------------------------------------------------------------------- links

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def links(page: Path) -> list[tuple[str, str]]:
    """(path, anchor) of every relative link of a Markdown page, outside code blocks."""
    found = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        found.append((path or page.name, anchor))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} (.+)$", FENCE.sub("", page.read_text()), re.M):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


LINKED_PAGES = [README, ROOT / "ARCHITECTURE.md", ROOT / "CHANGELOG.md", ROOT / "deploy" / "README.md", *PAGES]


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    if not page.exists():
        pytest.fail(f"{page.relative_to(ROOT)} is missing")
    for path, anchor in links(page):
        target = (page.parent / path).resolve()
        assert target.exists(), f"{page.relative_to(ROOT)}: {path} does not exist"
        assert ROOT in target.parents or target == ROOT, f"{page.relative_to(ROOT)}: {path} leaves the repository"
        if anchor:
            assert target.suffix == ".md", f"{page.relative_to(ROOT)}: #{anchor} on a file that is no page"
            assert anchor in anchors(target), f"{page.relative_to(ROOT)}: {path}#{anchor}: no such heading"
