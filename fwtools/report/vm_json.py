"""``fw-check vm --json`` (schema ``fwtools.fw-check.vm/1``, docs/fw-check.md) and
``--sarif``: one machine's verdict as a document."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from fwtools import __version__

if TYPE_CHECKING:
    from fwtools.machine.vm import VmResult

SCHEMA: Final = "fwtools.fw-check.vm/1"



def _reason(r: VmResult) -> str:
    if r.verdict == "refused" and r.refusal is not None:
        return f"stage {r.refusal.stage} refused by {r.refusal.by}: {r.refusal.reason}"
    if r.replay is not None and r.replay.verdict != "boots":
        return r.replay.reason
    if r.stopped:
        return f"the chain found boots as far as it goes ({r.stopped})"
    return "every stage is allowed and the replay boots"


def firmware_section(r: VmResult) -> dict[str, Any]:
    fw, p = r.firmware, r.profile
    settings: dict[str, Any] = {}
    from fwtools.machine.firmware_id import PROFILE_SETTINGS

    for name in PROFILE_SETTINGS:
        settings[name] = {"value": getattr(p, name),
                          "basis": fw.settings_basis.get(name, fw.basis)}
    settings["nx_policy"]["hex"] = f"{p.nx_policy:#018x}"
    settings["secure_boot_support"] = {
        "value": fw.secure_boot_support,
        "basis": fw.settings_basis.get("secure_boot_support", fw.basis)
        if fw.secure_boot_support is not None else "unknown"}
    return {"source": fw.source, "kind": fw.kind, "identified": fw.build, "sha256": fw.sha256,
            "basis": fw.basis, "profile": p.name, "description": p.description,
            "arch": p.arch, "settings": settings, "notes": list(fw.notes)}


def vm_document(r: VmResult) -> dict[str, Any]:
    from fwtools.report.boot_json import faults_json

    stages = []
    for s in r.stages:
        d = s.decision
        stages.append({
            "index": s.index,
            "path": s.path,
            "found_by": s.how,
            "loaded_by": s.loaded_by,
            "family": s.family,
            "model": s.model,
            "allowed": None if d is None else d.allowed,
            "checked_by": None if d is None else d.by,
            "trust": None if d is None else d.reason,
            "authority": None if s.authority is None else s.authority.to_json(),
            "sbat": None if s.sbat is None else s.sbat.to_json(),
        })
    ref = r.refusal
    return {
        "schema": SCHEMA,
        "tool": {"name": "fwtools", "version": __version__},
        "verdict": r.verdict,
        "reason": _reason(r),
        "vars": r.vars,
        "disk": r.disk,
        "discovery": r.discovery,
        "firmware": firmware_section(r),
        "secure_boot": r.secure_boot.to_json(),
        "stages": stages,
        "chain_complete": r.stopped is None,
        "chain_stopped": r.stopped,
        "refusal": None if ref is None else {
            "stage": ref.stage, "by": ref.by, "reason": ref.reason, "message": ref.message,
            "revoked_by": None if ref.revoked is None else ref.revoked.to_json()},
        "faults": faults_json(r.replay) if r.replay is not None else [],
        "notes": list(r.notes),
    }


def vm_sarif(r: VmResult) -> dict[str, Any]:
    """SARIF 2.1.0: one result for a refusal, one per fault; the disk (or store) is the
    artifact."""
    from fwtools.report.sarif import INFO_URI, SARIF_SCHEMA

    rules = [
        {"id": "vm-refused", "name": "VmRefused",
         "shortDescription": {"text": "A boot stage is refused by firmware, shim or GRUB"}},
        {"id": "vm-faults", "name": "VmFaults",
         "shortDescription": {"text": "A boot stage faults under the firmware's W^X rules"}},
    ]
    artifact = {"uri": r.disk or r.vars}
    results: list[dict[str, Any]] = []
    if r.refusal is not None:
        ref = r.refusal
        where = (f" ({r.stages[ref.stage - 1].path})" if ref.stage <= len(r.stages) else "")
        results.append({"ruleId": "vm-refused", "ruleIndex": 0, "level": "error",
                        "message": {"text": f"stage {ref.stage}{where} refused by {ref.by}: "
                                            f"{ref.reason}"},
                        "locations": [{"physicalLocation": {"artifactLocation": artifact}}]})
    if r.replay is not None:
        for f in r.replay.faults:
            results.append({"ruleId": "vm-faults", "ruleIndex": 1, "level": "error",
                            "message": {"text": f"{f.stage}: {f.fault} at {f.address:#x} "
                                                f"({f.operation}): {f.explanation}"},
                            "locations": [{"physicalLocation": {"artifactLocation": artifact}}]})
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "fw-check vm", "version": __version__,
                            "informationUri": INFO_URI, "rules": rules}},
        "results": results}]}
