"""A test-only reader of edk2 authenticated variable stores, to pull PK/KEK/db/dbx out of the
corpus OVMF/AAVMF images (docs: docs/reference/formats.md §1; the real reader is
fwtools.formats.varstore,
a later issue).

Layout (MdePkg PiFirmwareVolume.h, MdeModulePkg VariableFormat.h): FV header (signature
``_FVH`` at 0x28, HeaderLength u16 at 0x30), then the 28-byte variable-store header (the
gEfiAuthenticatedVariableGuid signature, Size u32, Format 0x5A, State 0xFE), then 4-byte
aligned records: StartId 0x55AA, State, Reserved, Attributes u32, MonotonicCount u64,
TimeStamp (16), PubKeyIndex u32, NameSize u32, DataSize u32, VendorGuid, name (UCS-2 with
NUL), data. A record is live with State 0x3F, or 0x3E when no 0x3F record of the same name
and GUID exists (VariableParsing.c:FindVariableEx).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from pathlib import Path

FV_SIGNATURE = b"_FVH"
AUTH_VARIABLE_GUID = uuid.UUID("aaf32c78-947b-439a-a180-2e144ec37792")
STORE_HEADER = struct.Struct("<16sIBB")
RECORD = struct.Struct("<HBBIQ16sIII16s")
VAR_ADDED = 0x3F
VAR_IN_DELETED_TRANSITION_ADDED = 0x3E


@dataclass(frozen=True)
class Variable:
    name: str
    guid: uuid.UUID
    attributes: int
    timestamp: bytes
    data: bytes
    data_offset: int
    state: int


def read_store(path: Path, limit: int = 1 << 20) -> bytes:
    with path.open("rb") as f:
        return f.read(limit)


def walk(image: bytes) -> list[Variable]:
    """Every live variable of the store at the start of ``image``, in store order."""
    if image[0x28:0x2C] != FV_SIGNATURE:
        raise ValueError("no firmware volume header")
    (header_length,) = struct.unpack_from("<H", image, 0x30)
    sig, size, fmt, state = STORE_HEADER.unpack_from(image, header_length)
    if uuid.UUID(bytes_le=sig) != AUTH_VARIABLE_GUID or fmt != 0x5A or state != 0xFE:
        raise ValueError("not an authenticated variable store")
    end = header_length + size
    pos = (header_length + 28 + 3) & ~3
    records: list[Variable] = []
    while pos + RECORD.size <= end:
        (start_id, rstate, _res, attrs, _mc, stamp, _pki, name_size, data_size, guid) = (
            RECORD.unpack_from(image, pos)
        )
        if start_id != 0x55AA:
            break
        name_at = pos + RECORD.size
        data_at = name_at + name_size
        name = image[name_at:data_at].decode("utf-16-le").rstrip("\0")
        records.append(
            Variable(
                name,
                uuid.UUID(bytes_le=guid),
                attrs,
                stamp,
                image[data_at : data_at + data_size],
                data_at,
                rstate,
            )
        )
        pos = (data_at + data_size + 3) & ~3
    added = {(v.name, v.guid) for v in records if v.state == VAR_ADDED}
    return [
        v
        for v in records
        if v.state == VAR_ADDED
        or (v.state == VAR_IN_DELETED_TRANSITION_ADDED and (v.name, v.guid) not in added)
    ]


def variables(path: Path) -> dict[str, Variable]:
    """The live variables by name (the Secure Boot ones have unique names)."""
    return {v.name: v for v in walk(read_store(path))}
