"""``fwtools.fw-vars.update/1``: the result of fw-vars update per store (docs/json-schema.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from fwtools import __version__
from fwtools.report.jsonable import to_jsonable

if TYPE_CHECKING:
    from fwtools.fleet.update import StoreUpdate

SCHEMA: Final = "fwtools.fw-vars.update/1"
STATUSES: Final = ("updated", "unchanged", "skipped", "refused", "error")


def update_document(results: Iterable[StoreUpdate]) -> dict[str, Any]:
    stores = [to_jsonable(r) for r in results]
    counts: Counter[str] = Counter(s["status"] for s in stores)
    return {
        "schema": SCHEMA,
        "tool": {"name": "fwtools", "version": __version__},
        "stores": stores,
        "summary": {
            "stores": len(stores),
            **{status: counts.get(status, 0) for status in STATUSES},
            "refused_writes": sum(len(s["refusals"]) for s in stores),
        },
    }
