"""The ``fw-pcr predict`` and ``fw-pcr diff`` documents (``fwtools.fw-pcr/1`` and
``fwtools.fw-pcr.diff/1``, docs/fw-pcr.md), the comparison with a real log, and their text
form (plain lines: no colour needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from fwtools.report.envelope import document

if TYPE_CHECKING:
    from fwtools.machine.events import PredictedEvent
    from fwtools.machine.measure import Divergence, PcrChange, Prediction

SCHEMA: Final = "fwtools.fw-pcr/1"
DIFF_SCHEMA: Final = "fwtools.fw-pcr.diff/1"


def _type_name(value: int) -> str:
    from fwtools.formats.tcg.eventtypes import event_type_name

    return event_type_name(value)


def event_json(e: PredictedEvent) -> dict[str, Any]:
    return {
        "pcr": e.pcr,
        "type": _type_name(e.event_type),
        "type_value": e.event_type,
        "description": e.description,
        "source": e.source,
        "digests": {bank: d.hex() for bank, d in e.digests.items()},
        "hashed": e.what,
        "hashed_data": None if e.hashed is None else e.hashed.hex(),
        "data": e.data.hex(),
    }


def divergence_json(d: Divergence | None, bank: str) -> dict[str, Any]:
    if d is None:
        return {"verdict": "match", "first_divergence": None}
    return {"verdict": "diverges", "first_divergence": {
        "position": d.position,
        "pcr": d.pcr,
        "logged_index": d.logged_index,
        "logged_type": None if d.logged_type is None else _type_name(d.logged_type),
        "logged_digest": None if d.logged_digest is None else d.logged_digest.hex(),
        "predicted": None if d.predicted is None else event_json(d.predicted),
        "bank": bank,
        "explanation": d.explanation,
    }}


def predict_document(vars_path: str, chain: list[str], p: Prediction,
                     pcrs: list[int] | None = None) -> dict[str, Any]:
    shown = [n for n in p.predicted if pcrs is None or n in pcrs]
    files = [{"path": vars_path, "role": "variable store", "error": None}]
    files += [{"path": path, "role": kind, "error": None} for path, kind in p.stages]
    doc = document(SCHEMA, files, {
        "predicted": shown,
        "not_predicted": sorted(n for n in p.not_predicted if pcrs is None or n in pcrs),
        "events": sum(1 for e in p.events if e.pcr in shown),
        "secure_boot": p.secure_boot,
    })
    doc["banks"] = {bank: {str(n): values[n].hex() for n in shown}
                    for bank, values in p.banks.items()}
    doc["events"] = [event_json(e) for e in p.events if e.pcr in shown]
    doc["not_predicted"] = {str(n): why for n, why in p.not_predicted.items()
                            if pcrs is None or n in pcrs}
    doc["chain"] = [{"path": path, "kind": kind} for path, kind in p.stages]
    doc["notes"] = list(p.notes)
    return doc


def diff_document(old_path: str, new_path: str, changes: list[PcrChange], bank: str,
                  old_chain: list[str] | None = None,
                  new_chain: list[str] | None = None) -> dict[str, Any]:
    files = [{"path": old_path, "role": "old variable store", "error": None},
             {"path": new_path, "role": "new variable store", "error": None}]
    changed = [c.pcr for c in changes if c.changed]
    doc = document(DIFF_SCHEMA, files, {"bank": bank, "changed": changed,
                                        "unchanged": [c.pcr for c in changes if not c.changed]})
    doc["chains"] = {"old": list(old_chain or []), "new": list(new_chain or old_chain or [])}
    doc["pcrs"] = [{
        "pcr": c.pcr,
        "changed": c.changed,
        "old": c.old.hex(),
        "new": c.new.hex(),
        "removed": [event_json(e) for e in c.removed],
        "added": [event_json(e) for e in c.added],
    } for c in changes]
    return doc


def predict_lines(doc: dict[str, Any], *, verbose: bool = False) -> list[str]:
    out = []
    chain = " -> ".join(f"{c['path']} ({c['kind']})" for c in doc["chain"]) or "(none)"
    sb = "on" if doc["summary"]["secure_boot"] else "off"
    out.append(f"{doc['files'][0]['path']}: Secure Boot {sb}; chain {chain}")
    for e in doc["events"]:
        out.append(f"  PCR{e['pcr']:<2} {e['type']:<34} {e['description']}  [{e['source']}]")
        if verbose:
            for bank, digest in e["digests"].items():
                out.append(f"         {bank:<7} {digest}")
            out.append(f"         hashed: {e['hashed']}")
    for bank, values in doc["banks"].items():
        out.append(bank)
        for pcr, value in values.items():
            out.append(f"  PCR{pcr:<2} {value}")
    if doc["not_predicted"]:
        out.append("not predicted:")
        for pcr, why in doc["not_predicted"].items():
            out.append(f"  PCR{pcr:<2} {why}")
    out.extend(f"note: {n}" for n in doc["notes"])
    comparison = doc.get("comparison")
    if comparison is not None:
        out.append(comparison_line(comparison))
    return out


def comparison_line(comparison: dict[str, Any]) -> str:
    first = comparison["first_divergence"]
    if first is None:
        return (f"{comparison['log']}: every logged event of the predicted PCRs is as "
                "predicted")
    return f"{comparison['log']}: first divergence at event {first['position']} of the " \
        f"predicted PCRs: {first['explanation']}"


def diff_lines(doc: dict[str, Any]) -> list[str]:
    out = []
    bank = doc["summary"]["bank"]
    for row in doc["pcrs"]:
        if not row["changed"]:
            continue
        out.append(f"PCR{row['pcr']} changes ({bank}): {row['old']} -> {row['new']}")
        for e in row["removed"]:
            out.append(f"  - {e['type']} {e['description']}")
        for e in row["added"]:
            out.append(f"  + {e['type']} {e['description']}")
    if not doc["summary"]["changed"]:
        out.append("no predicted PCR changes")
    if doc["summary"]["unchanged"]:
        out.append("unchanged: " + ", ".join(f"PCR{n}" for n in doc["summary"]["unchanged"]))
    return out
