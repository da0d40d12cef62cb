"""``fw-check boot-chain --json``: the replay as one document (schema
``fwtools.fw-check.boot-chain/1``, docs/boot-chain.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from fwtools import __version__

if TYPE_CHECKING:
    from fwtools.uefi.profile import FirmwareProfile
    from fwtools.uefi.replay import Replay

SCHEMA: Final = "fwtools.fw-check.boot-chain/1"


def firmware_json(p: FirmwareProfile) -> dict[str, Any]:
    from fwtools.uefi.memtypes import nx_types

    return {
        "name": p.name,
        "description": p.description,
        "path": p.path,
        "flavour": p.flavour,
        "arch": p.arch,
        "edk2_release": p.edk2_release,
        "nx_policy": p.nx_policy,
        "nx_policy_hex": f"{p.nx_policy:#018x}",
        "nx_types": nx_types(p.nx_policy),
        "image_protection": p.image_protection,
        "memory_attribute_protocol": p.memory_attribute_protocol,
        "stack_nx": p.stack_nx,
        "stack_guard": p.stack_guard,
        "null_detection": p.null_detection,
        "debug_clear_memory": p.debug_clear_memory,
        "la57": p.la57,
        "memory_mib": p.memory_mib,
        "mu": None if p.mu is None else {
            "block_images_without_nx": p.mu.block_images_without_nx,
            "free_memory_read_protected": p.mu.free_memory_read_protected,
        },
        "sources": list(p.sources),
    }


def boot_chain_document(r: Replay) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "tool": {"name": "fwtools", "version": __version__},
        "verdict": r.verdict,
        "reason": r.reason,
        "arch": r.arch,
        "secure_boot": r.secure_boot,
        "firmware": firmware_json(r.firmware),
        # the protocol as the replay had it (firmware.memory_attribute_protocol is the
        # profile's setting, which an edk2 release without the protocol cannot honour)
        "memory_attribute_protocol": {"at_boot": r.memory_attribute_protocol,
                                      "at_end": r.memory_attribute_protocol_at_end},
        "stages": [
            {
                "index": s.index,
                "name": s.name,
                "path": s.path,
                "model": s.model,
                "model_overridden": s.overridden,
                "model_basis": s.model_basis,
                "model_unidentified": list(s.unidentified),
                "model_verified": s.model_verified,
                "family": s.family,
                "version": s.version,
                "identified_by": s.identified_by,
                "description": s.description,
            }
            for s in r.stages
        ],
        "events": [
            {
                "index": i,
                "stage": e.stage,
                "operation": e.operation,
                "start": e.start,
                "end": e.end,
                "size": e.size,
                "memory_type": e.memory_type,
                "permissions": e.permissions,
                "status": e.status,
                "detail": e.detail,
            }
            for i, e in enumerate(r.events)
        ],
        "stop": None if r.stop is None else {
            "code": r.stop.code,
            "stage": r.stop.stage,
            "stage_index": r.stop.stage_index,
        },
        "faults": faults_json(r),
    }


def faults_json(r: Replay) -> list[dict[str, Any]]:
    """The replay's faults as ``fw-check boot-chain --json`` lists them."""
    return [
        {
            "stage": f.stage,
            "stage_index": f.stage_index,
            "operation": f.operation,
            "address": f.address,
            "address_hex": f"{f.address:#x}",
            "access": f.access,
            "memory_type": f.memory_type,
            "attributes": f.attributes,
            "fault": f.fault,
            "code": f.code,
            "code_hex": f"{f.code:#x}",
            "explanation": f.explanation,
            "fix": f.fix,
            "changed_by": f.changed_by,
        }
        for f in r.faults
    ]
