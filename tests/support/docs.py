"""Reading the project's own documentation (docs/) from tests.

The incident ids of docs/incidents.md are read from its "Wave 1" table:
the first cell of each row is the id, plain or as a link to its runbook section. A
missing document or an empty table is an error, never an empty list, so a test built on
them cannot pass by checking nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

_ID = r"[a-z0-9]+(?:-[a-z0-9]+)*"
# `| payments-errors |` or `| [payments-errors](../runbook.md#payments-errors) |`
_ROW_ID = re.compile(rf"^\|\s*(?:\[({_ID})\]\([^)]*\)|({_ID}))\s*\|", re.M)


def read(name: str) -> str:
    """The text of docs/<name>; fails loudly when the file is missing."""
    path = DOCS / name
    assert path.is_file(), f"{path.relative_to(REPO)} is missing: the repository documents itself in docs/"
    return path.read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The body of the `## <heading>...` section of a markdown text, up to the next `## `."""
    match = re.search(rf"^## {re.escape(heading)}.*$", text, re.M)
    assert match, f"no '## {heading}' section"
    rest = text[match.end() :]
    following = re.search(r"^## ", rest, re.M)
    return rest[: following.start()] if following else rest


def incident_ids(wave: int) -> list[str]:
    """The ids of the wave's table in docs/incidents.md, in their order."""
    body = section(read("incidents.md"), f"Wave {wave}")
    ids = [linked or plain for linked, plain in _ROW_ID.findall(body) if (linked or plain) != "id"]
    assert ids, f"no incident id found under '## Wave {wave}' in docs/incidents.md"
    return ids
