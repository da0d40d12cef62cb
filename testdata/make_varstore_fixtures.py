#!/usr/bin/env python3
"""Build the edk2 variable-store fixtures in testdata/varstore/.

The real stores (Debian's OVMF_VARS*.fd and AAVMF_VARS*.fd, bookworm and trixie) cover the
common case: formatted templates and stores written by EnrollDefaultKeys.efi, with records
in states 0x3F, 0x3C and 0x3D and a pristine FTW area. These cover what they lack: the
normal (non-authenticated) header format, records in transition (0x3E) with and without
their 0x3F successor, interrupted writes, a pending or completed fault-tolerant write, dirty
free space, and records strict firmware validators reject.

Written with ``struct`` from the edk2 headers (PiFirmwareVolume.h, VariableFormat.h,
SystemNvDataGuid.h, FaultTolerantWrite.h; docs/reference/formats.md §1), never with fwtools:
they are oracles for its parser. Every image uses one small geometry (no OVMF build has it;
the real layouts are over the 64 KiB fixture limit), laid out the way OVMF lays out its
flash, so a reader must find the regions from the headers:

=================  =========================================================================
0x0000 - 0x2000    FV header (FvLength 0x8000, 8 blocks of 0x1000, attributes 0x4FEFF),
                   variable store header at 0x48 (Size 0x1FB8), records from 0x64
0x2000 - 0x3000    event log (0xFF)
0x3000 - 0x4000    FTW working block (WriteQueueSize 0xFE0, CRC 0x642CAF2C)
0x4000 - 0x8000    FTW spare (0xFF)
=================  =========================================================================

Variables use the vendor GUID ``VENDOR`` (b6a4e3ad-2f45-4b0b-9d6c-7e0f0a1b2c3d) unless
noted; data is ASCII text so hexdumps read. MANIFEST.json describes each file.

Run: ``.venv/bin/python testdata/make_varstore_fixtures.py`` (``--check`` rebuilds in memory
and compares with the committed files instead of writing).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import uuid
import zlib
from pathlib import Path
from typing import Final

HERE: Final = Path(__file__).resolve().parent
OUT: Final = HERE / "varstore"
MAX_FIXTURE: Final = 64 * 1024

# -- the geometry --------------------------------------------------------------------------

TOTAL: Final = 0x8000
BLOCK: Final = 0x1000
STORE_REGION: Final = 0x2000  # FV header + variable store
FV_HEADER_LENGTH: Final = 0x48
STORE_SIZE: Final = STORE_REGION - FV_HEADER_LENGTH  # 0x1FB8
EVENT_LOG: Final = range(0x2000, 0x3000)
FTW_WORKING: Final = range(0x3000, 0x4000)
FTW_SPARE: Final = range(0x4000, 0x8000)
FIRST_RECORD: Final = FV_HEADER_LENGTH + 28  # 0x64, already 4-byte aligned

# -- GUIDs ---------------------------------------------------------------------------------

NV_DATA_FV: Final = uuid.UUID("fff12b8d-7696-4c8b-a985-2747075b4f50")
AUTH_STORE: Final = uuid.UUID("aaf32c78-947b-439a-a180-2e144ec37792")
NORMAL_STORE: Final = uuid.UUID("ddcf3616-3275-4164-98b6-fe85707ffe7d")
FTW_SIGNATURE: Final = uuid.UUID("9e58292b-7c68-497d-a0ce-6500fd9f1b95")
GLOBAL: Final = uuid.UUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
VENDOR: Final = uuid.UUID("b6a4e3ad-2f45-4b0b-9d6c-7e0f0a1b2c3d")
# CallerId of the FTW writes below: an arbitrary, fixed GUID (edk2 uses the caller's
# gEfiCallerIdGuid; the fact sheet measured FaultTolerantWriteSmm's FILE_GUID).
FTW_CALLER: Final = uuid.UUID("0f7b2a51-5c7e-4d8a-8f4b-6a2b3c4d5e6f")

# -- states and attributes -----------------------------------------------------------------

ADDED: Final = 0x3F
IN_TRANSITION: Final = 0x3E
DELETED: Final = 0x3D
REPLACED: Final = 0x3C
UNWRITTEN: Final = 0xFF
NV_BS_RT: Final = 0x07
NV_BS_RT_AT: Final = 0x27
STAMP: Final = struct.pack("<HBBBBBBIhBB", 2024, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0)

AUTH_HEADER: Final = struct.Struct("<HBBIQ16sIII16s")  # 60 bytes
NORMAL_HEADER: Final = struct.Struct("<HBBIII16s")  # 32 bytes


def fv_header() -> bytes:
    # ZeroVector, FileSystemGuid, FvLength, Signature, Attributes, HeaderLength, Checksum,
    # ExtHeaderOffset, Reserved, Revision; then the block map and its terminator.
    fields = (bytes(16), NV_DATA_FV.bytes_le, TOTAL, b"_FVH", 0x0004FEFF, FV_HEADER_LENGTH)
    header = bytearray(struct.pack("<16s16sQ4sIHHHBB", *fields, 0, 0, 0, 2))
    header += struct.pack("<IIII", TOTAL // BLOCK, BLOCK, 0, 0)
    checksum = (-sum(struct.unpack("<36H", header))) & 0xFFFF
    struct.pack_into("<H", header, 0x32, checksum)
    return bytes(header)


def store_header(authenticated: bool = True) -> bytes:
    guid = AUTH_STORE if authenticated else NORMAL_STORE
    return struct.pack("<16sIBBHI", guid.bytes_le, STORE_SIZE, 0x5A, 0xFE, 0, 0)


def ftw_header() -> bytes:
    queue = len(FTW_WORKING) - 32
    erased = struct.pack("<16sIB3sQ", FTW_SIGNATURE.bytes_le, 0xFFFFFFFF, 0xFF, b"\xff" * 3, queue)
    crc = zlib.crc32(erased)
    return struct.pack("<16sIB3sQ", FTW_SIGNATURE.bytes_le, crc, 0xFE, b"\xff" * 3, queue)


def ucs2(name: str, nul: bool = True) -> bytes:
    return name.encode("utf-16-le") + (b"\0\0" if nul else b"")


def record(
    name: str,
    data: bytes,
    *,
    state: int = ADDED,
    attributes: int = NV_BS_RT,
    guid: uuid.UUID = VENDOR,
    stamp: bytes = bytes(16),
    authenticated: bool = True,
    raw_name: bytes | None = None,
    name_size: int | None = None,
    data_size: int | None = None,
) -> bytes:
    """One record, padded with 0xFF to the next 4-byte boundary."""
    encoded = ucs2(name) if raw_name is None else raw_name
    nsize = len(encoded) if name_size is None else name_size
    dsize = len(data) if data_size is None else data_size
    if authenticated:
        header = AUTH_HEADER.pack(
            0x55AA, state, 0, attributes, 0, stamp, 0, nsize, dsize, guid.bytes_le
        )
    else:
        header = NORMAL_HEADER.pack(0x55AA, state, 0, attributes, nsize, dsize, guid.bytes_le)
    body = header + encoded + data
    return body + b"\xff" * (-len(body) % 4)


def store_region(records: bytes, authenticated: bool = True) -> bytes:
    head = fv_header() + store_header(authenticated) + records
    if len(head) > STORE_REGION:
        raise SystemExit("records do not fit the fixture store")
    return head + b"\xff" * (STORE_REGION - len(head))


def image(
    records: bytes,
    *,
    authenticated: bool = True,
    ftw_queue: bytes = b"",
    spare: bytes | None = None,
) -> bytes:
    out = bytearray(store_region(records, authenticated))
    out += b"\xff" * len(EVENT_LOG)
    working = ftw_header() + ftw_queue
    out += working + b"\xff" * (len(FTW_WORKING) - len(working))
    spare_bytes = b"\xff" * len(FTW_SPARE) if spare is None else spare
    out += spare_bytes + b"\xff" * (len(FTW_SPARE) - len(spare_bytes))
    if len(out) != TOTAL:
        raise SystemExit(f"image is {len(out):#x} bytes, expected {TOTAL:#x}")
    return bytes(out)


def ftw_write(header_bits: int, record_bits: int, lba: int, offset: int, length: int) -> bytes:
    """EFI_FAULT_TOLERANT_WRITE_HEADER (40 bytes) with one EFI_FAULT_TOLERANT_WRITE_RECORD
    (40 bytes, no private data); flag bits are 0 when set."""
    relative = (lba * BLOCK + offset) - FTW_SPARE.start  # target relative to the spare
    header = struct.pack("<B3x16s4xQQ", header_bits, FTW_CALLER.bytes_le, 1, 0)
    rec = struct.pack("<B7xQQQq", record_bits, lba, offset, length, relative)
    return header + rec


# -- the fixtures --------------------------------------------------------------------------


def fixtures() -> dict[str, tuple[bytes, str]]:
    out: dict[str, tuple[bytes, str]] = {}

    # Normal header format: 32-byte records under gEfiVariableGuid.
    normal = b"".join(
        (
            record("Timeout", b"\x05\x00", state=REPLACED, guid=GLOBAL, authenticated=False),
            record("Lang", b"eng\0", guid=GLOBAL, authenticated=False),
            record("Timeout", b"\x00\x00", guid=GLOBAL, authenticated=False),
            record("PlatformLang", b"en\0", state=DELETED, guid=GLOBAL, authenticated=False),
        )
    )
    out["normal-format.fd"] = (
        image(normal, authenticated=False),
        "normal (gEfiVariableGuid) format: Timeout 0x3c, Lang 0x3f, Timeout 0x3f, "
        "PlatformLang 0x3d; live Lang, Timeout=0000",
    )

    # In-transition records (State 0x3E).
    transition = b"".join(
        (
            record("Alpha", b"alpha-1", state=IN_TRANSITION),
            record("Beta", b"beta-1", state=IN_TRANSITION),
            record("Gamma", b"gamma-1", state=IN_TRANSITION),
            record("Delta", b"delta"),
            record("Alpha", b"alpha-2"),
            record("Gamma", b"gamma-2", state=IN_TRANSITION),
            record("AuthVar", b"signed", attributes=NV_BS_RT_AT, stamp=STAMP),
        )
    )
    out["in-transition.fd"] = (
        image(transition),
        "Alpha 0x3e then Alpha 0x3f (live: alpha-2), Beta 0x3e alone (live), Gamma 0x3e "
        "twice (live: the last, gamma-2), Delta 0x3f, AuthVar 0x27 stamped 2024-01-02T03:04:05",
    )

    # Interrupted writes.
    torn = b"".join(
        (
            record("One", b"one"),
            record("Two", b"two"),
            record("Three", b"three", state=UNWRITTEN),
        )
    )
    out["torn-tail.fd"] = (
        image(torn),
        "One, Two 0x3f, then Three written completely with State 0xff (never marked added)",
    )
    torn_header = record("One", b"one") + struct.pack("<HBB", 0x55AA, UNWRITTEN, 0)
    torn_header += struct.pack("<I", NV_BS_RT) + b"\xff" * (AUTH_HEADER.size - 8)
    out["torn-header.fd"] = (
        image(torn_header),
        "One 0x3f, then a record header with StartId, State 0xff and Attributes only "
        "(sizes 0xffffffff)",
    )

    # Fault-tolerant writes.
    one = record("One", b"one")
    newer = store_region(record("One", b"one-from-spare"))
    out["ftw-pending.fd"] = (
        image(one, ftw_queue=ftw_write(0xFC, 0xFD, 0, 0, STORE_REGION), spare=newer),
        "One 0x3f; FTW write allocated (header 0xfc) whose record is SpareComplete but not "
        "DestinationComplete (0xfd): the firmware would copy the spare (One=one-from-spare) "
        "over LBA 0, 0x2000 bytes",
    )
    out["ftw-completed.fd"] = (
        image(one, ftw_queue=ftw_write(0xF8, 0xF9, 0, 0, STORE_REGION)),
        "One 0x3f; FTW queue with one completed write (header 0xf8, record 0xf9), as a "
        "firmware reclaim leaves it",
    )

    # Free space that is not erased (the fact sheet's experiment: 64 zero bytes).
    dirty = record("One", b"one") + bytes(64)
    out["dirty-free-space.fd"] = (
        image(dirty),
        "One 0x3f, then 64 zero bytes where free space should be 0xff",
    )

    # Records strict validators reject.
    out["bad-name.fd"] = (
        image(record("Bad", b"bad", raw_name=ucs2("Bad", nul=False)) + record("Good", b"ok")),
        "a record at 0x64 whose 6-byte name has no NUL, then Good 0x3f",
    )
    out["bad-state.fd"] = (
        image(record("One", b"one") + record("Odd", b"odd", state=0x30)),
        "One 0x3f, then Odd with State 0x30 (not a valid state) at 0x90",
    )
    crossing = record("One", b"one") + record("Long", b"long", data_size=0x4000)
    out["crossing-end.fd"] = (
        image(crossing),
        "One 0x3f, then Long at 0x90 with DataSize 0x4000, past the end of the store",
    )
    return out


def manifest(files: dict[str, tuple[bytes, str]]) -> str:
    doc = {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "what": what}
        for name, (data, what) in sorted(files.items())
    }
    return json.dumps(doc, indent=2) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed files, write nothing"
    )
    args = parser.parse_args()
    files = fixtures()
    for name, (data, _what) in files.items():
        if len(data) >= MAX_FIXTURE:
            sys.exit(f"{name}: {len(data)} bytes is over the fixture limit")
    if args.check:
        stale = [
            name
            for name, (data, _what) in files.items()
            if not (OUT / name).is_file() or (OUT / name).read_bytes() != data
        ]
        if (OUT / "MANIFEST.json").read_text(encoding="utf-8") != manifest(files):
            stale.append("MANIFEST.json")
        if stale:
            sys.exit(f"out of date: {', '.join(stale)} (run {Path(__file__).name})")
        print(f"{len(files)} fixtures up to date")
        return
    OUT.mkdir(exist_ok=True)
    for name, (data, _what) in files.items():
        (OUT / name).write_bytes(data)
    (OUT / "MANIFEST.json").write_text(manifest(files), encoding="utf-8")
    print(f"wrote {len(files)} fixtures to {OUT}")


if __name__ == "__main__":
    main()
