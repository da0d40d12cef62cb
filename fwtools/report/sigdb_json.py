"""The fw-sigdb JSON documents: ``fwtools.fw-sigdb/1`` (show) and
``fwtools.fw-sigdb.verify/1`` (verify), described in docs/json-schema.md."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from fwtools._base import digest
from fwtools.report.envelope import document
from fwtools.report.pe_json import certificate_json

if TYPE_CHECKING:
    from fwtools.crypto.authvar import AuthVerifyResult
    from fwtools.crypto.sigdb_inputs import SigdbInput
    from fwtools.formats.efi.siglist import SignatureData, SignatureList

SHOW_SCHEMA: Final = "fwtools.fw-sigdb/1"
VERIFY_SCHEMA: Final = "fwtools.fw-sigdb.verify/1"


def _owner_fields(owner: uuid.UUID, cache: dict[uuid.UUID, tuple[str, str | None]]) -> tuple[
    str, str | None
]:
    # A dbx holds thousands of entries with a handful of owners: format each owner once.
    fields = cache.get(owner)
    if fields is None:
        from fwtools.formats.efi import guids

        fields = cache[owner] = (str(owner), guids.guid_name(owner))
    return fields


def entry_json(
    sl: SignatureList,
    entry: SignatureData,
    owners: dict[uuid.UUID, tuple[str, str | None]] | None = None,
) -> dict[str, Any]:
    """One entry of ``sl`` as JSON (``owners`` caches the owners' text across entries)."""
    return _entry_maker(sl)(entry, {} if owners is None else owners)


def _entry_maker(
    sl: SignatureList,
) -> Callable[[SignatureData, dict[uuid.UUID, tuple[str, str | None]]], dict[str, Any]]:
    """The function that turns one entry of ``sl`` into JSON: what depends on the list's
    type is decided once per list, not once per entry (a dbx has thousands)."""
    from fwtools.formats.efi.siglist import HASH_ALGORITHM, X509_HASH_TYPES

    algorithm = HASH_ALGORITHM.get(sl.signature_type)
    if sl.is_x509:
        from fwtools.crypto.x509info import certificate_info
        from fwtools.errors import FwError

        def x509(entry: SignatureData, owners: dict[uuid.UUID, tuple[str, str | None]]
                 ) -> dict[str, Any]:
            out = _entry_head(entry, owners)
            try:
                cert = certificate_info(entry.data)
            except FwError as exc:
                out["error"] = str(exc)
                out["sha256"] = _sha256(entry.data)
            else:
                out.update(certificate_json(cert))
            return out

        return x509
    if sl.signature_type in X509_HASH_TYPES:
        from fwtools._base.efitime import EfiTime
        from fwtools.errors import FwError

        def tbs(entry: SignatureData, owners: dict[uuid.UUID, tuple[str, str | None]]
                ) -> dict[str, Any]:
            out = _entry_head(entry, owners)
            size = len(entry.data) - EfiTime.SIZE
            out[f"tbs_{algorithm}"] = entry.data[:size].hex()
            try:
                out["time_of_revocation"] = str(EfiTime.from_bytes(entry.data, size))
            except FwError as exc:
                out["time_of_revocation"] = None
                out["error"] = str(exc)
            return out

        return tbs
    key = algorithm if algorithm is not None else "data"

    def plain(entry: SignatureData, owners: dict[uuid.UUID, tuple[str, str | None]]
              ) -> dict[str, Any]:
        owner, owner_name = _owner_fields(entry.owner, owners)
        return {"owner": owner, "owner_name": owner_name, "offset": entry.offset,
                key: entry.data.hex()}

    return plain


def _entry_head(entry: SignatureData, owners: dict[uuid.UUID, tuple[str, str | None]]
                ) -> dict[str, Any]:
    owner, owner_name = _owner_fields(entry.owner, owners)
    return {"owner": owner, "owner_name": owner_name, "offset": entry.offset}


def _sha256(data: bytes) -> str:
    return digest.sha256_hex(data)


def list_json(sl: SignatureList, role: str) -> dict[str, Any]:
    owners: dict[uuid.UUID, tuple[str, str | None]] = {}
    make = _entry_maker(sl)
    return {
        "type": sl.type_name,
        "type_guid": str(sl.signature_type),
        "role": role,
        "offset": sl.offset,
        "signature_size": sl.signature_size,
        "header_size": len(sl.header),
        "entries": [make(e, owners) for e in sl.entries],
    }


def input_json(item: SigdbInput) -> dict[str, Any]:
    out: dict[str, Any] = {
        "path": item.path,
        "error": None,
        "format": item.format,
        "lists": [list_json(sl, role) for role, db in item.databases for sl in db.lists],
        "auth": None,
    }
    out["entries"] = sum(len(sl["entries"]) for sl in out["lists"])
    if item.auth is not None:
        info = item.auth_info
        out["auth"] = {
            "timestamp": str(item.auth.timestamp),
            "timestamp_problems": item.auth.timestamp.auth_problems(),
            "payload_offset": item.auth.payload_offset,
            "payload_size": len(item.auth.payload),
            "pkcs7_size": len(item.auth.pkcs7),
            "form": info.form if info else None,
            "digest_algorithm": info.digest_algorithm if info else None,
            "signed_attributes": info.has_signed_attributes if info else None,
            "signers": [certificate_json(c) for c in info.signers] if info else [],
            "certificates": [certificate_json(c) for c in info.certificates] if info else [],
            "error": item.auth_error,
        }
    return out


def show_document(items: list[SigdbInput | tuple[str, str]]) -> dict[str, Any]:
    """``items`` are loaded inputs, or (path, error) for the ones that failed."""
    files = [
        {"path": item[0], "error": item[1]} if isinstance(item, tuple) else input_json(item)
        for item in items
    ]
    return document(SHOW_SCHEMA, files, {
        "files": len(files),
        "errors": sum(1 for f in files if f["error"]),
        "lists": sum(len(f.get("lists", ())) for f in files),
        "entries": sum(f.get("entries", 0) for f in files),
    })


def verify_json(path: str, result: AuthVerifyResult | None, error: str | None) -> dict[str, Any]:
    if result is None:
        return {"path": path, "error": error, "valid": False}
    return {
        "path": path,
        "error": None,
        "valid": result.valid,
        "reason": result.reason,
        "attributes": result.attributes,
        "signer": certificate_json(result.signer) if result.signer else None,
        "anchor": certificate_json(result.anchor) if result.anchor else None,
        "chain": [certificate_json(c) for c in result.chain],
    }


def verify_document(files: list[dict[str, Any]]) -> dict[str, Any]:
    return document(VERIFY_SCHEMA, files, {
        "files": len(files),
        "valid": sum(1 for f in files if f["valid"]),
        "invalid": sum(1 for f in files if not f["valid"] and not f["error"]),
        "errors": sum(1 for f in files if f["error"]),
    })
