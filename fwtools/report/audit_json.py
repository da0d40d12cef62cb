"""fw-vars audit --json: the ``fwtools.fw-vars.audit/1`` document (docs/json-schema.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from fwtools import __version__
from fwtools.report.jsonable import to_jsonable

if TYPE_CHECKING:
    from fwtools.fleet.audit import StoreAudit

SCHEMA: Final = "fwtools.fw-vars.audit/1"


def store_json(audit: StoreAudit) -> dict[str, Any]:
    """One entry of ``stores[]``: the fields the schema names, in its order, then extras."""
    plain = to_jsonable(audit)
    out: dict[str, Any] = {key: plain[key] for key in (
        "path", "vm", "format", "error", "secure_boot", "pk", "kek", "db", "trusts", "dbx",
        "sbat_level", "findings", "update_paths")}
    out["layout"] = plain["layout"]
    out["running"] = plain["running"]
    out["template"] = plain["template"]
    out["loader"] = plain["loader"]
    out["db_hashes"] = plain["db_hashes"]
    if audit.pcrs is not None:  # -v: what the recommended update does to PCR 7
        out["pcrs"] = plain["pcrs"]
    if audit.error is not None:
        out["trusts"] = None
    return out


def audit_document(audits: Iterable[StoreAudit], fail_on: str) -> dict[str, Any]:
    stores = [store_json(a) for a in audits]
    severities: Counter[str] = Counter(
        f["severity"] for s in stores for f in s["findings"])
    return {
        "schema": SCHEMA,
        "tool": {"name": "fwtools", "version": __version__},
        "stores": stores,
        "summary": {
            "stores": len(stores),
            "errors": sum(1 for s in stores if s["error"] is not None),
            "findings": {level: severities.get(level, 0) for level in ("error", "warning",
                                                                       "note")},
            "fail_on": fail_on,
        },
    }
