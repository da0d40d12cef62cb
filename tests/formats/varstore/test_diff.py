"""varstore/diff.py: variables compared by (VendorGuid, name)."""

from __future__ import annotations

import uuid

from fwtools._base.efitime import parse_time
from fwtools.formats.varstore.diff import VariableDiff, diff_variables
from fwtools.formats.varstore.model import Variable

A = uuid.UUID("11111111-2222-3333-4444-555555555555")
B = uuid.UUID("66666666-7777-8888-9999-000000000000")


def test_added_removed_changed_in_order() -> None:
    first = [Variable("Same", A, 7, b"x"), Variable("Gone", A, 7, b"x"),
             Variable("Data", A, 7, b"1"), Variable("Name", A, 7, b"x")]
    second = [Variable("New", B, 7, b"y"), Variable("Data", A, 3, b"2"),
              Variable("Same", A, 7, b"x"), Variable("Name", B, 7, b"x"),
              Variable("Stamp", A, 0x27, b"s", timestamp=parse_time("2024-01-01"))]
    assert diff_variables(first, second) == [
        VariableDiff(A, "Gone", "removed"),
        VariableDiff(A, "Data", "changed", ("attributes", "data")),
        VariableDiff(A, "Name", "removed"),
        VariableDiff(B, "New", "added"),
        VariableDiff(B, "Name", "added"),
        VariableDiff(A, "Stamp", "added"),
    ]


def test_only_the_value_counts() -> None:
    stamp = parse_time("2024-01-01")
    a = [Variable("T", A, 0x27, b"s", timestamp=stamp, state=0x3F, offset=100)]
    b = [Variable("T", A, 0x27, b"s", timestamp=stamp, state=0x3E, offset=900)]
    assert diff_variables(a, b) == []
    c = [Variable("T", A, 0x27, b"s", timestamp=parse_time("2025-01-01"))]
    assert diff_variables(a, c) == [VariableDiff(A, "T", "changed", ("timestamp",))]
