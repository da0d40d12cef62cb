"""The ``fw-pcr log`` JSON document, ``fwtools.fw-pcr.log/1`` (docs/fw-pcr.md), and the
one-line description of each event that the text view prints too."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Final

from fwtools.report.envelope import document

if TYPE_CHECKING:
    from fwtools.formats.efi.loadoption import LoadOption
    from fwtools.formats.tcg.decode import Decoded, SignatureEntry
    from fwtools.formats.tcg.log import Event, EventLog, SpecIdEvent
    from fwtools.formats.tcg.replay import PcrComparison, Replay

LOG_SCHEMA: Final = "fwtools.fw-pcr.log/1"


def _guid_name(guid: uuid.UUID) -> str | None:
    from fwtools.formats.efi import guids

    return guids.guid_name(guid)


def _alg_name(alg: int) -> str:
    from fwtools.formats.tcg.layout import ALGORITHMS

    known = ALGORITHMS.get(alg)
    return known[0] if known else f"alg_{alg:04x}"


def spec_id_json(spec: SpecIdEvent) -> dict[str, Any]:
    return {
        "platform_class": spec.platform_class,
        "spec_version": f"{spec.spec_version_major}.{spec.spec_version_minor}",
        "spec_errata": spec.spec_errata,
        "uintn_size": spec.uintn_size,
        "algorithms": [{"id": alg, "name": _alg_name(alg), "digest_size": size}
                       for alg, size in spec.algorithms],
        "vendor_info": spec.vendor_info.hex(),
    }


def _signature_entry_json(entry: SignatureEntry) -> dict[str, Any]:
    from fwtools.crypto.x509info import certificate_info
    from fwtools.errors import FwError
    from fwtools.report.pe_json import certificate_json

    out: dict[str, Any] = {"owner": str(entry.owner), "owner_name": _guid_name(entry.owner)}
    if entry.data[:1] == b"\x30":
        try:
            out["certificate"] = certificate_json(certificate_info(entry.data))
            return out
        except FwError as exc:
            out["certificate_error"] = str(exc)
    out["data"] = entry.data.hex()
    return out


def _load_option_json(option: LoadOption) -> dict[str, Any]:
    return {
        "description": option.description,
        "attributes": option.attributes,
        "active": option.active,
        "file_path": option.file_path_text,
        "optional_data": option.optional_data.hex(),
    }


def _variable_value_json(name: str, value: object) -> Any:
    from fwtools.formats.efi.loadoption import LoadOption
    from fwtools.formats.efi.siglist import SignatureList

    if isinstance(value, LoadOption):
        return _load_option_json(value)
    if isinstance(value, list) and all(isinstance(v, SignatureList) for v in value):
        from fwtools.report.sigdb_json import list_json

        return [list_json(sl, name) for sl in value]
    return value  # int, list[int], str or None


def decoded_json(decoded: Decoded) -> dict[str, Any]:
    """The decoded event data as JSON, with a ``kind`` naming its shape."""
    from fwtools.formats.disk.layout import GPT_TYPE_NAMES
    from fwtools.formats.tcg import decode as D

    d = decoded
    if isinstance(d, D.TextData):
        return {"kind": "text", "text": d.text, "encoding": d.encoding,
                "terminated": d.terminated, "source": d.source}
    if isinstance(d, D.SeparatorData):
        return {"kind": "separator", "value": d.value, "error": d.error}
    if isinstance(d, D.SpecIdData):
        return {"kind": "spec_id", **spec_id_json(d.spec_id)}
    if isinstance(d, D.StartupLocalityData):
        return {"kind": "startup_locality", "locality": d.locality}
    if isinstance(d, D.NoActionData):
        return {"kind": "no_action", "signature": d.signature, "data": d.data.hex()}
    if isinstance(d, D.TaggedData):
        return {"kind": "tagged", "tag": d.tag, "tag_name": d.tag_name, "text": d.text,
                "data": d.data.hex()}
    if isinstance(d, D.VariableData):
        return {"kind": "variable", "guid": str(d.guid), "guid_name": d.guid_name,
                "name": d.name, "data_size": len(d.data),
                "value": _variable_value_json(d.name, d.value), "value_error": d.value_error}
    if isinstance(d, D.AuthorityData):
        return {"kind": "authority", "guid": str(d.guid), "guid_name": _guid_name(d.guid),
                "name": d.name, "data_size": len(d.data),
                "entry": None if d.entry is None else _signature_entry_json(d.entry),
                "text": d.text}
    if isinstance(d, D.ImageLoadData):
        return {"kind": "image", "location": d.location, "length": d.length,
                "link_time_address": d.link_time_address, "device_path": d.device_path,
                "device_path_error": d.device_path_error}
    if isinstance(d, D.GptData):
        return {"kind": "gpt", "disk_guid": str(d.disk_guid), "revision": d.revision,
                "my_lba": d.my_lba, "alternate_lba": d.alternate_lba,
                "first_usable_lba": d.first_usable_lba, "last_usable_lba": d.last_usable_lba,
                "partition_entry_lba": d.partition_entry_lba,
                "number_of_partition_entries": d.number_of_partition_entries,
                "size_of_partition_entry": d.size_of_partition_entry,
                "partitions": [{"index": p.position, "type_guid": str(p.type_guid),
                                "type_name": GPT_TYPE_NAMES.get(p.type_guid),
                                "unique_guid": str(p.unique_guid),
                                "starting_lba": p.starting_lba, "ending_lba": p.ending_lba,
                                "attributes": p.attributes, "name": p.name}
                               for p in d.partitions]}
    if isinstance(d, D.BlobData):
        return {"kind": "blob", "base": d.base, "length": d.length,
                "description": d.description}
    if isinstance(d, D.HandoffTablesData):
        return {"kind": "handoff_tables", "description": d.description, "tables": [
            {"guid": str(g), "guid_name": _guid_name(g), "address": a} for g, a in d.tables]}
    return {"kind": "raw"}


def describe(decoded: dict[str, Any]) -> str:
    """One line about an event, from its decoded JSON."""
    kind = decoded["kind"]
    if kind == "text":
        return repr(decoded["text"]) if decoded["text"] or not decoded["terminated"] else "''"
    if kind == "separator":
        return "error separator (FFFFFFFF)" if decoded["error"] else f"{decoded['value']:08x}"
    if kind == "spec_id":
        algs = ", ".join(a["name"] for a in decoded["algorithms"])
        return f"Spec ID Event03 v{decoded['spec_version']}: {algs}"
    if kind == "startup_locality":
        return f"StartupLocality {decoded['locality']}"
    if kind == "no_action":
        return f"{decoded['signature']}"
    if kind == "tagged":
        what = decoded["text"] if decoded["text"] is not None else decoded["data"][:32]
        return f"tag {decoded['tag']:#010x} {what!r}"
    if kind == "variable":
        return f"{decoded['name']} = {_value_text(decoded)}"
    if kind == "authority":
        entry = decoded["entry"]
        if entry is None:
            shown = decoded["text"] if decoded["text"] is not None else "(raw)"
            return f"{decoded['name']}: {shown!r}"
        cert = entry.get("certificate")
        who = cert["subject"] if cert else entry.get("data", "")[:32]
        return f"{decoded['name']}: {who} (owner {entry['owner_name'] or entry['owner']})"
    if kind == "image":
        path = decoded["device_path"] or "(no device path)"
        return f"{path}  {decoded['length']} bytes at {decoded['location']:#x}"
    if kind == "gpt":
        parts = ", ".join(f"{p['index'] + 1}:{p['type_name'] or p['type_guid']}"
                          f" {p['unique_guid']}" for p in decoded["partitions"])
        return f"disk {decoded['disk_guid']}: {parts}"
    if kind == "blob":
        desc = f"{decoded['description']} " if decoded["description"] else ""
        return f"{desc}{decoded['length']:#x} bytes at {decoded['base']:#x}"
    if kind == "handoff_tables":
        return ", ".join(t["guid_name"] or t["guid"] for t in decoded["tables"])
    return "(not decoded)"


def _value_text(decoded: dict[str, Any]) -> str:
    value = decoded["value"]
    if decoded["value_error"]:
        return f"({decoded['data_size']} bytes, {decoded['value_error']})"
    if value is None:
        return f"({decoded['data_size']} bytes)"
    if isinstance(value, dict):  # a load option
        return f"{value['description']!r} {value['file_path']}"
    if isinstance(value, list) and value and isinstance(value[0], dict):  # signature lists
        n = sum(len(sl["entries"]) for sl in value)
        subjects = [e["subject"] for sl in value for e in sl["entries"] if "subject" in e]
        shown = "; ".join(subjects[:3]) + ("; ..." if len(subjects) > 3 else "")
        return f"{len(value)} lists, {n} entries" + (f": {shown}" if shown else "")
    if isinstance(value, list):
        if decoded["name"] in ("BootOrder", "DriverOrder"):
            return ",".join(f"{v:04X}" for v in value) or "(empty)"
        return "(empty)" if not value else str(value)
    return repr(value)


def event_json(event: Event) -> dict[str, Any]:
    from fwtools.errors import FwError
    from fwtools.formats.tcg.check import data_digest_status
    from fwtools.formats.tcg.decode import decode_event

    out: dict[str, Any] = {
        "index": event.index,
        "offset": event.offset,
        "pcr": event.pcr,
        "type": event.type_name,
        "type_value": event.event_type,
        "digests": {_alg_name(alg): digest.hex() for alg, digest in event.digests.items()},
        "data_offset": event.data_offset,
        "data_size": event.data_size,
        "data": event.data.hex(),
    }
    try:
        decoded_event = decode_event(event)
    except FwError as exc:
        out.update(decoded=None, decode_error=str(exc), description="(undecodable)",
                   data_digest=data_digest_status(event, None))
    else:
        decoded = decoded_json(decoded_event)
        out.update(decoded=decoded, decode_error=None, description=describe(decoded),
                   data_digest=data_digest_status(event, decoded_event))
    return out


def comparison_json(rows: list[PcrComparison]) -> list[dict[str, Any]]:
    return [{"bank": r.bank, "pcr": r.pcr,
             "replayed": r.replayed.hex() if r.replayed is not None else None,
             "measured": r.measured.hex() if r.measured is not None else None,
             "status": r.status} for r in rows]


def log_document(path: str, log: EventLog, result: Replay, pcrs_path: str | None = None,
                 comparison: list[PcrComparison] | None = None) -> dict[str, Any]:
    files = [{"path": path, "role": "event log", "error": None}]
    if pcrs_path is not None:
        files.append({"path": pcrs_path, "role": "measured PCRs", "error": None})
    rows = comparison_json(comparison) if comparison is not None else None
    counts = {s: sum(1 for r in rows or () if r["status"] == s)
              for s in ("match", "mismatch", "not-measured", "not-logged")}
    events = [event_json(e) for e in log.events]
    doc = document(LOG_SCHEMA, files, {
        "events": len(log.events),
        "data_digest_mismatches": sum(1 for e in events if e["data_digest"] == "mismatch"),
        "pcrs": sorted(result.extended),
        "banks": list(result.banks),
        "matches": counts["match"] if rows is not None else None,
        "mismatches": counts["mismatch"] if rows is not None else None,
        "not_measured": counts["not-measured"] if rows is not None else None,
        "not_logged": counts["not-logged"] if rows is not None else None,
        "verdict": None if rows is None else ("mismatch" if counts["mismatch"] else "match"),
    })
    doc["log"] = {
        "path": path,
        "format": log.format,
        "size": len(log.buffer),
        "spec_id": None if log.spec_id is None else spec_id_json(log.spec_id),
        "startup_locality": result.startup_locality,
        "events": events,
    }
    doc["replay"] = {
        "banks": {bank: {str(pcr): value.hex() for pcr, value in values.items()}
                  for bank, values in result.banks.items()},
        "events_per_pcr": {str(pcr): n for pcr, n in result.extended.items()},
        "unavailable": list(result.unavailable),
        "incomplete": list(result.incomplete),
    }
    doc["comparison"] = None if rows is None else {"path": pcrs_path, "pcrs": rows}
    return doc
