"""Comparing two sets of variables, keyed by (VendorGuid, name) as the firmware keys them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from fwtools.formats.varstore.model import Variable

DiffStatus = Literal["added", "removed", "changed"]
# What "changed" compares, in this order (the record's state and offset are not the value).
COMPARED_FIELDS: Final = ("attributes", "data", "timestamp")


@dataclass(frozen=True)
class VariableDiff:
    """One variable that differs: ``added`` (only in the second set), ``removed`` (only in
    the first) or ``changed`` with the fields of :data:`COMPARED_FIELDS` that differ."""

    guid: uuid.UUID
    name: str
    status: DiffStatus
    changed: tuple[str, ...] = ()


def diff_variables(first: Iterable[Variable], second: Iterable[Variable]) -> list[VariableDiff]:
    """What differs from ``first`` to ``second``: the variables of ``first`` in its order
    (changed or removed), then those only in ``second`` in its order. Equal variables are
    left out, so an empty list means the two sets hold the same variables."""
    a = {v.key: v for v in first}
    b = {v.key: v for v in second}
    out: list[VariableDiff] = []
    for key in [*a, *(k for k in b if k not in a)]:
        va, vb = a.get(key), b.get(key)
        if va is not None and vb is not None:
            changes = tuple(f for f in COMPARED_FIELDS if getattr(va, f) != getattr(vb, f))
            if changes:
                out.append(VariableDiff(key[0], key[1], "changed", changes))
        else:
            out.append(VariableDiff(key[0], key[1], "removed" if vb is None else "added"))
    return out


__all__ = ["COMPARED_FIELDS", "DiffStatus", "VariableDiff", "diff_variables"]
