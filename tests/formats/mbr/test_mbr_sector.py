"""Sector 0 parsing, boot-code identification and injection on synthetic sectors."""

from __future__ import annotations

import struct

import pytest

from fwtools.errors import TruncatedError, UsageError
from fwtools.formats.mbr import (
    BYEBYEBIOS,
    DEFAULT_MESSAGE,
    EMPTY,
    FILESYSTEM,
    GRUB,
    SYSLINUX,
    UNKNOWN,
    WINDOWS,
    build_boot_code,
    encode_message,
    identify_boot_code,
    inject,
    max_message_length,
    parse_sector,
    read_stub_message,
    stub_code,
)
from fwtools.formats.mbr import layout as L


def record(flag: int, typ: int, lba: int, size: int) -> bytes:
    return L.PARTITION_RECORD.pack(flag, b"\x00\x02\x00", typ, b"\xff\xff\xff", lba, size)


def sector(code: bytes = b"", sig: int = 0, records: tuple[bytes, ...] = (), aa: bool = True
           ) -> bytes:
    table = b"".join(records).ljust(64, b"\x00")
    return (code.ljust(440, b"\x00") + struct.pack("<I", sig) + b"\x00\x00" + table
            + (b"\x55\xaa" if aa else b"\x00\x00"))


PROTECTIVE = record(0, 0xEE, 1, 131071)


def test_layout_constants() -> None:
    assert L.BOOT_CODE_SIZE == L.DISK_SIGNATURE_OFFSET == 440
    assert L.PARTITION_TABLE_OFFSET + 4 * L.PARTITION_RECORD_SIZE == L.BOOT_SIGNATURE_OFFSET
    assert L.PARTITION_RECORD.size == 16


def test_parse_protective() -> None:
    mbr = parse_sector(sector(sig=0x12345678, records=(PROTECTIVE,)))
    assert mbr.has_boot_signature
    assert mbr.disk_signature == 0x12345678
    assert mbr.scheme == "gpt"
    assert mbr.boot_code_kind == EMPTY
    (p,) = mbr.used_partitions
    assert (p.os_type, p.start_lba, p.size_lba, p.protective) == (0xEE, 1, 131071, True)
    assert mbr.to_json()["disk_signature"] == "12345678"


def test_schemes() -> None:
    assert parse_sector(sector(records=(PROTECTIVE, record(0x80, 0x0C, 2048, 100)))).scheme \
        == "hybrid"
    assert parse_sector(sector(records=(record(0x80, 0x83, 2048, 100),))).scheme == "mbr"
    assert parse_sector(sector()).scheme == "none"
    assert parse_sector(sector(records=(PROTECTIVE,), aa=False)).scheme == "none"


def test_truncated() -> None:
    with pytest.raises(TruncatedError):
        parse_sector(b"\x00" * 511)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (b"", EMPTY),
        (b"\xeb\x63\x90" + b"\x00" * 0x170 + b"GRUB \x00Geom\x00Hard Disk\x00Read\x00 Error",
         GRUB),
        (bytes.fromhex("33c0fa8ed88ed0bc007c89e606578ec0fbfcbf0006b90001f3a5ea1f06"), SYSLINUX),
        (b"\x33\xc0\x8e\xd0" + b"\x90" * 300 + b"Invalid partition table\x00"
         b"Error loading operating system\x00Missing operating system", WINDOWS),
        (b"\xfa\xeb\xfe", UNKNOWN),
    ],
)
def test_identify(code: bytes, kind: str) -> None:
    assert identify_boot_code(sector(code, records=(PROTECTIVE,))) == kind


def test_identify_fat_boot_sector() -> None:
    fat = bytearray(sector(b"\xeb\x3c\x90MSWIN4.1"))
    fat[54:62] = b"FAT16   "
    assert identify_boot_code(bytes(fat)) == FILESYSTEM


def test_stub_round_trip() -> None:
    code = build_boot_code("Hello\nworld")
    assert len(code) == 440
    assert code.startswith(stub_code())
    assert read_stub_message(code) == "Hello\r\nworld"
    assert identify_boot_code(code) == BYEBYEBIOS
    assert read_stub_message(b"\x00" * 440) is None


def test_default_message() -> None:
    assert DEFAULT_MESSAGE.startswith("This disk image needs UEFI.")
    assert read_stub_message(build_boot_code()) == DEFAULT_MESSAGE


def test_message_checks() -> None:
    assert encode_message("a\r\nb\rc\n") == b"a\r\nb\r\nc\r\n"
    with pytest.raises(UsageError, match="printable ASCII"):
        encode_message("caf\u00e9")
    with pytest.raises(UsageError, match="printable ASCII"):
        encode_message("tab\there")
    limit = max_message_length()
    assert limit == 440 - len(stub_code()) - 1
    assert len(encode_message("x" * limit)) == limit
    with pytest.raises(UsageError, match=f"at most {limit} fit"):
        encode_message("x" * (limit + 1))
    # CRLF conversion counts: each newline costs two bytes.
    with pytest.raises(UsageError, match=f"is {limit + 1} bytes"):
        encode_message("x" * (limit - 1) + "\n")


@pytest.mark.parametrize(
    "records",
    [(PROTECTIVE,), (PROTECTIVE, record(0x80, 0x0C, 2048, 100)), (record(0x80, 0x83, 63, 9),)],
)
def test_inject_keeps_440_to_511(records: tuple[bytes, ...]) -> None:
    before = sector(b"\x00" * 440, sig=0xDEADBEEF, records=records)
    before = before[:444] + b"\x5a\x5a" + before[446:]  # reserved word kept as well
    after = inject(before, build_boot_code())
    assert after[440:] == before[440:]
    assert after[:440] == build_boot_code()


def test_inject_without_signature_writes_empty_mbr() -> None:
    garbage = bytes(range(256)) * 2
    after = inject(garbage, build_boot_code())
    mbr = parse_sector(after)
    assert mbr.has_boot_signature and mbr.scheme == "none" and mbr.disk_signature == 0
    assert after[440:510] == b"\x00" * 70
    assert mbr.boot_code_kind == BYEBYEBIOS


def test_inject_rejects_bad_code_size() -> None:
    with pytest.raises(UsageError):
        inject(sector(), b"\x00" * 439)
