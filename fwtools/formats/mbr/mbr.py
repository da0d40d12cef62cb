"""Sector 0: parse and describe it, recognise its boot code, build and inject the stub.

Pure bytes in, objects or bytes out (no file access except the stub's own bytes, which ship
as package data in ``fwtools/data/mbr/stub.bin``, assembled from ``stub.asm``).

- :func:`parse_sector` reads a 512-byte sector 0 into a :class:`Mbr`;
- :func:`identify_boot_code` says what the boot code area holds (:data:`BOOT_CODE_KINDS`);
- :func:`encode_message` checks and CRLF-converts a message, :func:`build_boot_code` puts
  the stub and the message into the 440-byte boot code area;
- :func:`inject` returns the new sector: only bytes 0..439 change when the sector has a
  0x55AA signature; otherwise it is a valid empty MBR (zeros, the stub, 0x55AA).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final

from fwtools.errors import ParseError, TruncatedError, UsageError
from fwtools.formats.mbr import layout as L

DEFAULT_MESSAGE: Final = (
    "This disk image needs UEFI.\r\n"
    "It cannot boot with a legacy BIOS: switch the firmware to UEFI mode\r\n"
    "(in a virtual machine: use OVMF, e.g. virt-install --boot uefi).\r\n"
)

# What identify_boot_code can answer.
EMPTY: Final = "empty"  # all zeros (sgdisk, sfdisk, systemd-repart, mkosi ...)
BYEBYEBIOS: Final = "byebyebios"  # our stub, message readable
GRUB: Final = "grub"  # GRUB's boot.img (or GRUB legacy stage1)
SYSLINUX: Final = "syslinux"  # syslinux/extlinux mbr.bin, gptmbr.bin, isohybrid MBRs
WINDOWS: Final = "windows"  # the Windows (and MS-DOS) MBR
LILO: Final = "lilo"
FILESYSTEM: Final = "filesystem"  # a FAT/NTFS/exFAT boot sector: no MBR at all
UNKNOWN: Final = "unknown"
BOOT_CODE_KINDS: Final = (EMPTY, BYEBYEBIOS, GRUB, SYSLINUX, WINDOWS, LILO, FILESYSTEM, UNKNOWN)
# Kinds that may be replaced without --force.
REPLACEABLE: Final = frozenset({EMPTY, BYEBYEBIOS})

KIND_DESCRIPTIONS: Final[dict[str, str]] = {
    EMPTY: "no boot code (all zeros)",
    BYEBYEBIOS: "the byebyebios stub",
    GRUB: "GRUB's boot.img",
    SYSLINUX: "a syslinux/extlinux MBR",
    WINDOWS: "the Windows MBR",
    LILO: "LILO",
    FILESYSTEM: "a filesystem boot sector (FAT/NTFS/exFAT), not an MBR",
    UNKNOWN: "unknown boot code",
}

# syslinux mbr.bin/gptmbr.bin/altmbr.bin all start with this prologue (relocate to 0x600).
_SYSLINUX_PROLOGUE: Final = bytes.fromhex(
    "33c0fa8ed88ed0bc007c89e606578ec0fbfcbf0006b90001f3a5ea"
)
_WINDOWS_STRINGS: Final = (
    b"Invalid partition table",
    b"Error loading operating system",
    b"Missing operating system",
)
_FS_OEM_STRINGS: Final = (b"NTFS    ", b"EXFAT   ")


class MbrError(ParseError):
    """Sector 0 cannot be read as an MBR."""


@cache
def stub_code() -> bytes:
    """The assembled stub (``fwtools/data/mbr/stub.bin``); the message follows it."""
    return (resources.files("fwtools") / "data" / "mbr" / "stub.bin").read_bytes()


def max_message_length() -> int:
    """Bytes of message (after CRLF conversion) that fit: 440 - stub - the final NUL."""
    return L.BOOT_CODE_SIZE - len(stub_code()) - 1


@dataclass(frozen=True)
class PartitionRecord:
    index: int  # 0..3
    boot_indicator: int
    start_chs: bytes
    os_type: int
    end_chs: bytes
    start_lba: int
    size_lba: int

    @property
    def empty(self) -> bool:
        return self.os_type == L.TYPE_EMPTY and self.size_lba == 0 and self.start_lba == 0

    @property
    def protective(self) -> bool:
        """A GPT protective record as edk2 and Linux accept it: type 0xEE at LBA 1."""
        return (
            self.os_type == L.TYPE_GPT_PROTECTIVE
            and self.start_lba == L.GPT_PROTECTIVE_START_LBA
        )

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "active": self.boot_indicator == L.BOOT_INDICATOR_ACTIVE,
            "type": self.os_type,
            "start_lba": self.start_lba,
            "size_lba": self.size_lba,
        }


@dataclass(frozen=True)
class Mbr:
    """A parsed sector 0."""

    sector: bytes  # the 512 bytes
    boot_code: bytes  # bytes 0..439
    disk_signature: int
    partitions: tuple[PartitionRecord, ...]  # always 4 (meaningful only with 0x55AA)
    has_boot_signature: bool

    @property
    def used_partitions(self) -> tuple[PartitionRecord, ...]:
        return tuple(p for p in self.partitions if not p.empty)

    @property
    def scheme(self) -> str:
        """``none`` (no 0x55AA or no records), ``gpt`` (protective MBR only), ``hybrid``
        (0xEE plus MBR records) or ``mbr``."""
        used = self.used_partitions
        if not self.has_boot_signature or not used:
            return "none"
        if any(p.protective for p in used):
            return "gpt" if len(used) == 1 else "hybrid"
        return "mbr"

    @property
    def boot_code_kind(self) -> str:
        return identify_boot_code(self.sector)

    @property
    def stub_message(self) -> str | None:
        """The message of our stub, when the boot code is our stub."""
        return read_stub_message(self.boot_code)

    def to_json(self) -> dict[str, object]:
        return {
            "boot_code": self.boot_code_kind,
            "boot_code_description": KIND_DESCRIPTIONS[self.boot_code_kind],
            "stub_message": self.stub_message,
            "disk_signature": f"{self.disk_signature:08x}",
            "boot_signature": self.has_boot_signature,
            "scheme": self.scheme,
            "partitions": [p.to_json() for p in self.used_partitions],
        }


def parse_sector(data: bytes) -> Mbr:
    """Parse the first 512 bytes of ``data``; shorter input is a :class:`TruncatedError`."""
    if len(data) < L.SECTOR_SIZE:
        raise TruncatedError(
            f"sector 0 needs {L.SECTOR_SIZE} bytes, the input has {len(data)}",
            structure="MBR",
            offset=len(data),
        )
    sector = bytes(data[: L.SECTOR_SIZE])
    records = []
    for i in range(L.PARTITION_RECORDS):
        off = L.PARTITION_TABLE_OFFSET + i * L.PARTITION_RECORD_SIZE
        flag, schs, typ, echs, lba, size = L.PARTITION_RECORD.unpack_from(sector, off)
        records.append(PartitionRecord(i, flag, schs, typ, echs, lba, size))
    (disk_signature,) = L.DISK_SIGNATURE.unpack_from(sector, L.DISK_SIGNATURE_OFFSET)
    return Mbr(
        sector=sector,
        boot_code=sector[: L.BOOT_CODE_SIZE],
        disk_signature=disk_signature,
        partitions=tuple(records),
        has_boot_signature=sector[L.BOOT_SIGNATURE_OFFSET :] == L.BOOT_SIGNATURE,
    )


def read_stub_message(boot_code: bytes) -> str | None:
    """The message after our stub in a boot code area, or ``None`` when it is not ours."""
    stub = stub_code()
    if not boot_code.startswith(stub):
        return None
    rest = boot_code[len(stub) : L.BOOT_CODE_SIZE]
    end = rest.find(b"\x00")
    text = rest if end < 0 else rest[:end]
    return text.decode("ascii", errors="replace")


def _is_filesystem_boot_sector(sector: bytes) -> bool:
    if sector[3:11] in _FS_OEM_STRINGS:
        return True
    # FAT12/16 "FAT" at 54, FAT32 "FAT32" at 82, with a jump instruction at 0.
    jump = sector[0] == 0xEB or sector[0] == 0xE9
    return jump and (sector[54:57] == b"FAT" or sector[82:87] == b"FAT32")


def identify_boot_code(sector: bytes) -> str:
    """What the boot code area of ``sector`` (at least 440 bytes) holds: one of
    :data:`BOOT_CODE_KINDS`."""
    code = bytes(sector[: L.BOOT_CODE_SIZE])
    if not any(code):
        return EMPTY
    if code.startswith(stub_code()):
        return BYEBYEBIOS
    if len(sector) >= L.SECTOR_SIZE and _is_filesystem_boot_sector(bytes(sector)):
        return FILESYSTEM
    if b"GRUB" in code:
        return GRUB
    if code.startswith(_SYSLINUX_PROLOGUE) or b"isolinux" in code or b"SYSLINUX" in code:
        return SYSLINUX
    if any(s in code for s in _WINDOWS_STRINGS):
        return WINDOWS
    if b"LILO" in code:
        return LILO
    return UNKNOWN


def encode_message(text: str) -> bytes:
    """The message as the stub prints it: line ends made CRLF, printable ASCII only, and
    short enough to fit after the stub (:func:`max_message_length`)."""
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    for pos, ch in enumerate(normalized):
        if ch != "\n" and not (" " <= ch <= "~"):
            raise UsageError(
                f"the message may hold printable ASCII only; character {pos} is {ch!r}"
            )
    data = normalized.replace("\n", "\r\n").encode("ascii")
    limit = max_message_length()
    if len(data) > limit:
        raise UsageError(
            f"the message is {len(data)} bytes after CRLF conversion; at most {limit} fit "
            f"({L.BOOT_CODE_SIZE} bytes of boot code area - {len(stub_code())} of stub - 1 NUL)"
        )
    return data


def build_boot_code(message: str = DEFAULT_MESSAGE) -> bytes:
    """The 440-byte boot code area: the stub, the message, a NUL, zeros."""
    code = stub_code() + encode_message(message) + b"\x00"
    return code.ljust(L.BOOT_CODE_SIZE, b"\x00")


def inject(sector: bytes, boot_code: bytes) -> bytes:
    """Sector 0 with ``boot_code`` (440 bytes) in place of its boot code.

    With a 0x55AA signature only bytes 0..439 change: the disk signature, the reserved word,
    the partition table and the signature are kept byte for byte. Without one the sector
    holds no partition table, and the result is a valid empty MBR (no partitions, disk
    signature 0, 0x55AA).
    """
    if len(boot_code) != L.BOOT_CODE_SIZE:
        raise UsageError(f"boot code must be {L.BOOT_CODE_SIZE} bytes, not {len(boot_code)}")
    mbr = parse_sector(sector)
    if mbr.has_boot_signature:
        return boot_code + mbr.sector[L.BOOT_CODE_SIZE :]
    empty = bytearray(L.SECTOR_SIZE)
    empty[: L.BOOT_CODE_SIZE] = boot_code
    empty[L.BOOT_SIGNATURE_OFFSET :] = L.BOOT_SIGNATURE
    return bytes(empty)
