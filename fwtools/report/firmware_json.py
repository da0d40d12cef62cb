"""fw-check firmware --json: one ``fwtools.fw-check.firmware/1`` document (docs/firmware.md).

The text view (:mod:`fwtools.report.text_firmware`) renders the same document, so both show
the same facts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from fwtools.report.envelope import document

if TYPE_CHECKING:
    from fwtools.formats.pi.facts import Fact
    from fwtools.formats.pi.image import FirmwareImage, Module
    from fwtools.formats.pi.volume import FirmwareVolume
    from fwtools.policy.firmware_audit import ModuleReport
    from fwtools.policy.profiles import Profile

SCHEMA: Final = "fwtools.fw-check.firmware/1"


def volume_json(fv: FirmwareVolume, index: int, parent: int | None) -> dict[str, Any]:
    return {
        "index": index,
        "parent": parent,
        "depth": fv.depth,
        "offset": fv.absolute_offset,
        "location": fv.where(),
        "size": fv.length,
        "guid": str(fv.name) if fv.name else None,
        "name": fv.display_name if fv.name else None,
        "file_system": fv.file_system,
        "file_system_guid": str(fv.file_system_guid),
        "attributes": fv.attributes,
        "erase_polarity": fv.erase_polarity,
        "header_length": fv.header_length,
        "header_checksum_ok": fv.header_checksum_ok,
        "block_map": [[b.num_blocks, b.length] for b in fv.block_map],
        "ext_entries": [{"type": e.type_name, "size": e.size} for e in fv.ext_entries],
        "used_size": fv.used_size,
        "files": len(fv.files),
        "free_space_offset": fv.free_space_offset,
        "sha256": fv.sha256,
        "anomalies": list(fv.anomalies),
    }


def volumes_json(image: FirmwareImage) -> list[dict[str, Any]]:
    """Every volume, parents before children, with the index of the parent."""
    out: list[dict[str, Any]] = []

    def visit(fv: FirmwareVolume, parent: int | None) -> None:
        index = len(out)
        out.append(volume_json(fv, index, parent))
        for f in fv.files:
            for s in f.walk_sections():
                if s.volume is not None:
                    visit(s.volume, index)

    for top in image.volumes:
        visit(top, None)
    return out


def module_json(m: Module, label: str) -> dict[str, Any]:
    pe, te = m.pe, m.te
    out: dict[str, Any] = {
        "label": label,
        "name": m.name,
        "guid": str(m.guid),
        "type": m.file_type,
        "format": m.image_format,
        "volume": "/".join(m.volume_path),
        "location": m.where,
        "offset": m.section.origin.absolute(m.section.offset + m.section.data_offset),
        "size": len(m.image_bytes),
        "version": m.version,
        "machine": None, "machine_id": m.machine,
        "subsystem": None, "section_alignment": None, "nx_compat": None,
        "wx_sections": list(m.wx_sections),
        "error": m.image_error,
    }
    if pe is not None:
        out.update(machine=pe.machine_name, subsystem=pe.subsystem, pe32_plus=pe.is_pe32_plus,
                   section_alignment=pe.section_alignment, nx_compat=pe.nx_compat)
    elif te is not None:
        out.update(machine=te.machine_name, subsystem=te.subsystem)
    return out


def fact_json(f: Fact) -> dict[str, Any]:
    return {"name": f.name, "value": f.value, "basis": f.basis}


def firmware_document(
    image: FirmwareImage, audit: list[ModuleReport], profile: Profile,
    summary: dict[str, Any], facts: list[Fact], drivers: dict[str, bool],
    version_sections: dict[str, int], variable_store: dict[str, Any] | None,
) -> dict[str, Any]:
    from fwtools.report.check_json import result_json

    modules = []
    results = []
    for rep in audit:
        entry = module_json(rep.module, rep.report.path)
        entry["checked"] = rep.report.checked
        entry["skipped"] = rep.report.skipped
        entry["findings"] = len(rep.report.results)
        modules.append(entry)
        for r in rep.report.results:
            results.append({**result_json(r), "guid": str(rep.module.guid)})
    files = [{"path": image.path, "error": None, "container": image.container,
              "size": len(image.data)}]
    doc = document(SCHEMA, files, summary)
    doc["firmware"] = {
        "path": image.path,
        "container": image.container,
        "size": len(image.data),
        "volumes": volumes_json(image),
        "variable_store": variable_store,
        "facts": [fact_json(f) for f in facts],
        "drivers": drivers,
        "version_sections": version_sections,
        "problems": image.problems(),
    }
    doc["modules"] = modules
    doc["profile"] = {"name": profile.name, "source": profile.source,
                      "rules": [c.id for c in profile.active]}
    doc["results"] = results
    return doc


def module_summary(audit: list[ModuleReport]) -> dict[str, int]:
    """Counts of the modules' image facts (the audit's numbers at a glance)."""
    pe = [r.module.pe for r in audit if r.module.pe is not None]
    return {
        "modules": len(audit),
        "pe": len(pe),
        "te": sum(1 for r in audit if r.module.te is not None),
        "unparsed": sum(1 for r in audit if r.module.image_error),
        "page_aligned": sum(1 for p in pe if p.section_alignment % 4096 == 0),
        "nx_compat": sum(1 for p in pe if p.nx_compat),
        "wx": sum(1 for r in audit if r.module.wx_sections),
    }
