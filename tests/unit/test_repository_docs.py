"""The repository explains itself: its documents are in docs/, and they keep up with the code.

- No file points at a document users do not get (a briefing outside the repository, a
  section number of one, an issue number).
- Every relative link in README.md and docs/*.md leads to a file (and heading) that exists.
- Every fault of the catalogue, every exported metric and every drilled incident is in
  the docs, so adding one without documenting it fails here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from chaos.drills.catalog import INCIDENTS
from services.common.faults.catalogue import CATALOGUE
from tests.support import docs
from tests.support.dashboards import EXPORTED_METRICS

REPO = Path(__file__).resolve().parents[2]
THIS_FILE = Path(__file__).resolve().relative_to(REPO).as_posix()

# What a reference to a document outside the repository looks like.
OUTSIDE_REFERENCES = {
    "a path into the briefing folder": re.compile(r"\.\./shared|/work/shared"),
    "a briefing document": re.compile(r"\b(?:DESIGN|INCIDENTS|STYLE|CONTAINERS)\.md\b"),
    "a section of the design briefing": re.compile(r"\bDESIGN\b|§\s*\d"),
    "the steering documents": re.compile(r"steering doc", re.I),
    "an issue number": re.compile(r"\bissues?\s*#?\d+", re.I),
}
# The CI machine's container tool is a program, not a document.
ALLOWED = {(".ci/run", "../shared/tools/container-engine")}

MARKDOWN = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def repository_files() -> list[str]:
    """Tracked files, and new ones not yet added (but not ignored ones)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=REPO,
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"cannot list the repository's files with git: {exc}")
    files = sorted({f for f in out.decode().split("\0") if f})
    assert files, "git ls-files listed nothing"
    return files


def test_nothing_refers_to_documents_users_do_not_have():
    found = []
    for name in repository_files():
        path = REPO / name
        if name == THIS_FILE or not path.is_file():
            continue  # this test names the patterns; a deleted file is not shipped
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            for what, pattern in OUTSIDE_REFERENCES.items():
                if pattern.search(line) and not any(name == f and ok in line for f, ok in ALLOWED):
                    found.append(f"{name}:{number}: {what}: {line.strip()[:120]}")
    assert not found, "files refer to documents users do not have; point at docs/ instead:\n" + "\n".join(found)


def slug(heading: str) -> str:
    """The anchor a markdown heading gets (GitHub's rule)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    found = {slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}
    found |= set(re.findall(r"<a id=\"([^\"]+)\"></a>", text))
    return found


def links(path: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", path.read_text(encoding="utf-8")))


def test_the_docs_exist_and_the_readme_links_them():
    readme_links = set(links(REPO / "README.md"))
    for name in ("architecture.md", "contracts.md", "incidents.md"):
        docs.read(name)
        assert f"docs/{name}" in readme_links, f"README.md does not link docs/{name}"


@pytest.mark.parametrize("document", MARKDOWN, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_lead_somewhere(document):
    broken = []
    for target in links(document):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        path = (document.parent / file_part).resolve() if file_part else document
        if not path.is_relative_to(REPO) or not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading or anchor #{anchor} in {path.relative_to(REPO)}")
    assert not broken, f"{document.relative_to(REPO)}: broken links:\n" + "\n".join(broken)


def test_every_fault_of_the_catalogue_is_documented():
    text = docs.section(docs.read("contracts.md"), "The chaos API")
    missing = [name for name in CATALOGUE if not re.search(rf"^\| `{name}` \|", text, re.M)]
    assert not missing, f"faults missing from the catalogue table of docs/contracts.md: {missing}"


def test_every_exported_metric_is_documented():
    text = docs.section(docs.read("contracts.md"), "Metrics")
    names = {re.sub(r"_(bucket|sum|count)$", "", m) for m in EXPORTED_METRICS}
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert not missing, f"metrics missing from docs/contracts.md: {missing}"


def test_the_incident_table_matches_the_drill_catalogue():
    documented = docs.incident_ids(1)
    assert len(documented) == len(set(documented)), "an incident is listed twice in docs/incidents.md"
    drilled = [inc.id for inc in INCIDENTS]
    assert set(documented) == set(drilled), (
        f"docs/incidents.md lacks {sorted(set(drilled) - set(documented))}; "
        f"lists undrilled {sorted(set(documented) - set(drilled))}"
    )
    text = docs.section(docs.read("incidents.md"), "Wave 1")
    for inc in INCIDENTS:
        if inc.alert:
            assert f"`{inc.alert}`" in text, f"{inc.id}: its alert {inc.alert} is not named in docs/incidents.md"
