"""Inputs that claim huge sizes, built from the small fixtures in testdata/ (issue 8).

Each builder returns bytes; tests/reliability/test_resource_bounds.py feeds them to the
parsers and commands and measures peak memory.
"""

from __future__ import annotations

import struct
from pathlib import Path

from fwtools.formats.qcow2 import layout as QL

TD = Path(__file__).resolve().parents[2] / "testdata"
QCOW2 = TD / "qcow2/v3-4k-zero.qcow2"
SAMPLE_PE = TD / "sample/hello-nx.efi"
SIGNED_PE = TD / "sample/hello-nx.signed.efi"
STORE = TD / "varstore/normal-format.fd"
ESL = TD / "sigdb/hashes.esl"
AUTH = TD / "sigdb/db-fwtools-ci.auth"

_QOFF = {name: off for name, off in zip(
    [n for n, _ in QL.HEADER_V2_FIELDS + QL.HEADER_V3_FIELDS],
    [struct.calcsize(">" + "".join(c for _, c in (QL.HEADER_V2_FIELDS + QL.HEADER_V3_FIELDS)[:i]))
     for i in range(len(QL.HEADER_V2_FIELDS + QL.HEADER_V3_FIELDS))],
    strict=True,
)}


def qcow2_with(**fields: int) -> bytes:
    """The small qcow2 fixture with header fields overwritten (big-endian, own width)."""
    data = bytearray(QCOW2.read_bytes())
    codes = dict(QL.HEADER_V2_FIELDS + QL.HEADER_V3_FIELDS)
    for name, value in fields.items():
        struct.pack_into(">" + codes[name], data, _QOFF[name], value)
    return bytes(data)


def _pe_offsets(data: bytes) -> tuple[int, int, int]:
    """(COFF header, optional header, first section header) offsets."""
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    coff = pe + 4
    opt = coff + 20
    size_opt = struct.unpack_from("<H", data, coff + 16)[0]
    return coff, opt, opt + size_opt


def pe_with(*, sections: int | None = None, size_of_image: int | None = None,
            raw_size: int | None = None, virtual_size: int | None = None,
            security_size: int | None = None, base: Path = SAMPLE_PE, pad: int = 0) -> bytes:
    """``base`` with header fields overwritten and ``pad`` zero bytes appended (so that a
    claimed section table lies inside the file)."""
    data = bytearray(base.read_bytes()) + bytes(pad)
    coff, opt, table = _pe_offsets(bytes(data))
    if sections is not None:
        struct.pack_into("<H", data, coff + 2, sections)
    if size_of_image is not None:
        struct.pack_into("<I", data, opt + 56, size_of_image)  # SizeOfImage (PE32 and PE32+)
    if virtual_size is not None:
        struct.pack_into("<I", data, table + 8, virtual_size)  # section 0 VirtualSize
    if raw_size is not None:
        struct.pack_into("<I", data, table + 16, raw_size)  # section 0 SizeOfRawData
    if security_size is not None:
        magic = struct.unpack_from("<H", data, opt)[0]
        dirs = opt + (96 if magic == 0x10B else 112)
        struct.pack_into("<I", data, dirs + 4 * 8 + 4, security_size)  # SECURITY.Size
    return bytes(data)


def esl_with(*, list_size: int | None = None, header_size: int | None = None,
             sig_size: int | None = None) -> bytes:
    data = bytearray(ESL.read_bytes())
    if list_size is not None:
        struct.pack_into("<I", data, 16, list_size)
    if header_size is not None:
        struct.pack_into("<I", data, 20, header_size)
    if sig_size is not None:
        struct.pack_into("<I", data, 24, sig_size)
    return bytes(data)


def esl_many_entries(total: int) -> bytes:
    """One list of ``total`` bytes of 48-byte SHA-256 entries (16-byte owner + hash)."""
    count = (total - 28) // 48
    sha256 = bytes.fromhex("2616c4c1c4e5aa4c9f45e2f3bbe3a3a21ab55ed8b57e7f0b0a4e2ddfd7ec4a1e")
    # EFI_CERT_SHA256_GUID c1c41626-504c-4092-aca9-41f936934328
    guid = bytes.fromhex("2616c4c14c509240aca941f936934328")
    body = b"".join(struct.pack("<16s", i.to_bytes(16, "little")) + (i * 7).to_bytes(32, "little")
                    for i in range(count))
    assert sha256  # the type GUID is what matters
    return guid + struct.pack("<III", 28 + len(body), 0, 48) + body


def store_with_variable_sizes(*, name_size: int | None = None,
                              data_size: int | None = None) -> bytes:
    """The normal-format store with the first variable's NameSize/DataSize overwritten."""
    data = bytearray(STORE.read_bytes())
    pos = data.find(b"\xaa\x55\x3f")  # StartId + VAR_ADDED state
    assert pos > 0
    if name_size is not None:
        struct.pack_into("<I", data, pos + 8, name_size)
    if data_size is not None:
        struct.pack_into("<I", data, pos + 12, data_size)
    return bytes(data)


def auth_with(*, dw_length: int) -> bytes:
    data = bytearray(AUTH.read_bytes())
    struct.pack_into("<I", data, 16, dw_length)  # after the 16-byte EFI_TIME
    return bytes(data)


def huge_sbat(rows: int) -> bytes:
    lines = [b"sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md"]
    lines += [b"c%d,1,Vendor,pkg,1.0,https://example.invalid/" % i for i in range(rows)]
    return b"\n".join(lines) + b"\n"


# -- TCG event logs (TCG PC Client PFP 1.06 §10.2; fwtools/formats/tcg/layout.py) ------------

TCG_LOG = TD / "tcg" / "ovmf-d12-kernel.eventlog.bin"


def tcg_with(*, event_size: int | None = None, digest_count: int | None = None,
             algorithms: int | None = None) -> bytes:
    """The real kernel log with one size field of its second record (the first
    TCG_PCR_EVENT2) or of its Spec ID event overwritten."""
    data = bytearray(TCG_LOG.read_bytes())
    (spec_size,) = struct.unpack_from("<I", data, 28)
    first = 32 + spec_size  # TCG_PCR_EVENT2[1]: 4 digests of 20, 32, 48, 64 bytes
    if digest_count is not None:
        struct.pack_into("<I", data, first + 8, digest_count)
    if event_size is not None:
        struct.pack_into("<I", data, first + 12 + 4 * 2 + 20 + 32 + 48 + 64, event_size)
    if algorithms is not None:
        struct.pack_into("<I", data, 32 + 24, algorithms)
    return bytes(data)


def tcg_many_records(size: int) -> bytes:
    """A crypto-agile log (SHA-1, SHA-256) of ``size`` bytes of 16-byte records with no
    digests: the most records a byte can make."""
    spec = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, 2)
    spec += struct.pack("<HHHH", 0x4, 20, 0xB, 32) + b"\0"
    head = struct.pack("<II20sI", 0, 3, bytes(20), len(spec)) + spec
    return head + struct.pack("<IIII", 4, 0xD, 0, 0) * (size // 16)
