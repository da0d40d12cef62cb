"""The pe-inspect JSON document, schema ``fwtools.pe-inspect/1`` (docs/json-schema.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from fwtools.report.envelope import document
from fwtools.report.jsonable import to_jsonable

if TYPE_CHECKING:
    from fwtools.crypto.authenticode import AuthenticodeSignature
    from fwtools.crypto.x509info import CertificateInfo
    from fwtools.policy.pe_facts import FileResult, PeFacts

SCHEMA: Final = "fwtools.pe-inspect/1"


def certificate_json(cert: CertificateInfo, *, with_der: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "subject": cert.subject,
        "issuer": cert.issuer,
        "serial": cert.serial,
        "not_before": cert.not_before,
        "not_after": cert.not_after,
        "key_type": cert.key_type,
        "signature_algorithm": cert.signature_algorithm,
        "sha256": cert.sha256,
        "is_ca": cert.is_ca,
    }
    if with_der:
        out["der"] = cert.der.hex()
    return out


def signature_json(sig: AuthenticodeSignature) -> dict[str, Any]:
    return {
        "index": sig.index,
        "offset": sig.offset,
        "subject": sig.signer.subject if sig.signer else None,
        "issuer": sig.signer.issuer if sig.signer else sig.signer_issuer,
        "serial": sig.signer.serial if sig.signer else sig.signer_serial,
        "digest_algorithm": sig.digest_algorithm,
        "signed_digest": sig.signed_digest.hex() if sig.signed_digest else None,
        "computed_digest": sig.computed_digest.hex() if sig.computed_digest else None,
        "digest_matches": sig.digest_matches,
        "signature_valid": sig.signature_valid,
        "certificates": [certificate_json(c) for c in sig.certificates],
        "nested": [signature_json(n) for n in sig.nested],
        "error": sig.error,
    }


def sbat_rows(facts: PeFacts) -> list[dict[str, Any]]:
    for sect in facts.special:
        if sect.kind == "sbat" and sect.decoded is not None:
            return [
                {
                    "component": row.component,
                    "generation": row.generation,
                    "vendor": row.vendor_name,
                    "package": row.vendor_package_name,
                    "version": row.vendor_version,
                    "url": row.vendor_url,
                }
                for row in getattr(sect.decoded, "rows", sect.decoded)  # type: ignore[attr-defined]
            ]
    return []


def facts_json(facts: PeFacts) -> dict[str, Any]:
    img = facts.image
    embedded: dict[str, Any] = {}
    for name, inner in facts.embedded.items():
        embedded[name] = (
            {"path": f"{facts.path}[{name}]", "error": inner}
            if isinstance(inner, str)
            else facts_json(inner)
        )
    return {
        "path": facts.path,
        "error": None,
        "size": facts.size,
        "format": "pe32+" if img.is_pe32_plus else "pe32",
        "machine": img.machine_name,
        "machine_id": img.machine,
        "subsystem": img.subsystem_name,
        "subsystem_id": img.subsystem,
        "image_base": img.image_base,
        "entry_point": img.entry_point,
        "size_of_image": img.size_of_image,
        "size_of_headers": img.size_of_headers,
        "section_alignment": img.section_alignment,
        "file_alignment": img.file_alignment,
        "characteristics": img.characteristics,
        "characteristics_flags": img.characteristic_names,
        "dll_characteristics": img.dll_characteristics,
        "dll_characteristics_flags": img.dll_characteristic_names,
        "nx_compat": img.nx_compat,
        "relocations": img.has_relocations,
        "timestamp": img.timestamp,
        "linker_version": f"{img.major_linker_version}.{img.minor_linker_version}",
        "checksum": {"stored": img.checksum, "computed": facts.computed_checksum},
        "sections": [
            {
                "name": s.name,
                "virtual_address": s.virtual_address,
                "virtual_size": s.virtual_size,
                "raw_offset": s.raw_offset,
                "raw_size": s.raw_size,
                "characteristics": s.characteristics,
                "flags": s.characteristic_names,
                "read": s.read,
                "write": s.write,
                "execute": s.execute,
                "page_aligned": s.is_page_aligned(),
            }
            for s in img.sections
        ],
        "special_sections": [to_jsonable(s) for s in facts.special],
        "sbat": sbat_rows(facts),
        "kernel": to_jsonable(facts.kernel),
        "authenticode": {alg: d.hex() for alg, d in facts.digests.items()},
        "signatures": [signature_json(s) for s in facts.signatures],
        "verification": (
            None
            if facts.verification is None
            else {
                "status": facts.verification.status,
                "reason": facts.verification.reason,
                "signature_index": facts.verification.signature_index,
                "matched_entry": facts.verification.matched_entry,
                "chain": [certificate_json(c) for c in facts.verification.chain],
            }
        ),
        "embedded": embedded,
        "anomalies": list(img.anomalies),
        "findings": [to_jsonable(f) for f in facts.findings],
    }


def inspect_document(results: list[FileResult]) -> dict[str, Any]:
    files: list[dict[str, Any]] = []
    for r in results:
        if r.facts is None:
            files.append({"path": r.path, "error": r.error})
        else:
            files.append(facts_json(r.facts))
    errors = sum(1 for r in results if r.facts is None)
    findings = [f for r in results if r.facts for f in r.facts.findings]
    return document(SCHEMA, files, {
        "files": len(results),
        "errors": errors,
        "findings": {
            level: sum(1 for f in findings if f.severity == level)
            for level in ("error", "warning", "note")
        },
        "verification": {
            status: sum(
                1
                for r in results
                if r.facts and r.facts.verification and r.facts.verification.status == status
            )
            for status in ("trusted", "untrusted", "revoked")
        },
    })
