"""The store findings table (fwtools/formats/varstore/issues.py) is the only place a code and
its severity are declared, and docs/varstore-format.md shows exactly that table.

Run as a script to regenerate the table in the docs:
``python tests/formats/varstore/test_issue_table.py``.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Final

import pytest
from varstore_testlib import FIXTURES, REPO, fixture_names

from fwtools._base.severity import SEVERITIES
from fwtools.errors import ParseError
from fwtools.formats.varstore import issues as iss
from fwtools.formats.varstore.store import VariableStore

DOC: Final = REPO / "docs" / "varstore-format.md"
PACKAGE: Final = REPO / "fwtools" / "formats" / "varstore"
BEGIN: Final = (
    "<!-- findings table: generated from fwtools/formats/varstore/issues.py by "
    "tests/formats/varstore/test_issue_table.py; do not edit by hand -->"
)
END: Final = "<!-- end of findings table -->"
# The modules that report findings: every one goes through an IssueKind of the table.
EMITTERS: Final = ("parse.py", "records.py", "ftw.py", "store.py")


def render_table() -> str:
    rows = ["| code | severity | meaning |", "|---|---|---|"]
    rows += [
        f"| `{kind.code}` | {kind.severity} | {kind.description} |" for kind in iss.ISSUE_KINDS
    ]
    return "\n".join(rows)


def doc_with_table(text: str) -> str:
    """``text`` with the part between the markers replaced by the rendered table."""
    start = text.index(BEGIN) + len(BEGIN)
    stop = text.index(END)
    return text[:start] + "\n" + render_table() + "\n" + text[stop:]


def test_docs_show_the_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, f"{DOC}: the findings table markers are missing"
    assert text == doc_with_table(text), (
        f"{DOC} is out of date with issues.py; run python {Path(__file__).relative_to(REPO)}"
    )


def test_table_is_well_formed() -> None:
    codes = [kind.code for kind in iss.ISSUE_KINDS]
    assert len(codes) == len(set(codes)), "a code is declared twice"
    assert set(iss.BY_CODE) == set(codes)
    for kind in iss.ISSUE_KINDS:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", kind.code), kind.code
        assert kind.severity in SEVERITIES, kind
        assert kind.description.endswith(".") and "|" not in kind.description, kind
    # Every IssueKind defined in the module is in the table.
    defined = {
        value.code for value in vars(iss).values() if isinstance(value, iss.IssueKind)
    }
    assert defined == set(codes)
    assert set(codes) >= iss.FV_HEADER_BROKEN


def _kind_names_used(path: Path) -> set[str]:
    """The ``iss.NAME`` attributes a module references."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "iss"
    }


def test_emitters_use_the_table_only() -> None:
    """No module builds an Issue from literals, and every row of the table is reported by
    some module (no dead rows)."""
    used: set[str] = set()
    for name in EMITTERS:
        path = PACKAGE / name
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "Issue", f"{name}:{node.lineno}: Issue built directly"
            if isinstance(node, ast.keyword) and node.arg in ("code", "severity"):
                raise AssertionError(f"{name}:{node.value.lineno}: {node.arg}= given inline")
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in iss.BY_CODE, (
                    f"{name}:{node.lineno}: the code {node.value!r} spelt out, not "
                    "taken from issues.py"
                )
        used |= _kind_names_used(path)
    table_names = {
        name for name, value in vars(iss).items() if isinstance(value, iss.IssueKind)
    }
    assert table_names - used == set(), "rows of the table no module reports"


@pytest.mark.parametrize("name", fixture_names())
def test_fixture_findings_come_from_the_table(name: str) -> None:
    """What a parse reports has the code and severity of a table row."""
    try:
        store = VariableStore.parse((FIXTURES / name).read_bytes(), path=name)
    except ParseError:
        return
    for issue in store.check():
        kind = iss.kind_of(issue)
        assert issue.severity == kind.severity, issue
    for record in store.records:
        for issue in record.problems:
            assert iss.kind_of(issue).severity == issue.severity


def main() -> int:
    text = DOC.read_text(encoding="utf-8")
    updated = doc_with_table(text)
    if updated != text:
        DOC.write_text(updated, encoding="utf-8")
        print(f"updated {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
