"""GUID Partition Table: the primary header and entry array, with the backup as fallback.

Reference: UEFI 2.10 §5.3 (layouts in :mod:`.layout`); the checks are those of edk2
``MdeModulePkg/Universal/Disk/PartitionDxe/Gpt.c`` (``PartitionValidGptTable``,
``PartitionCheckGptEntryArrayCRC``, ``PartitionCheckGptEntry``): a header is valid when its
signature, header CRC32, MyLBA and entry-array CRC32 are right; when the primary is not,
the backup at the disk's last LBA is used. Entries that lie outside the usable LBAs or
overlap an earlier one are skipped, as edk2 skips them, and noted.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass
from typing import Final

from fwtools.formats.disk import layout as L
from fwtools.formats.disk.device import BlockDevice, DiskError, DiskTruncatedError
from fwtools.formats.disk.table import Partition, PartitionTable

# The entry array is read in one piece; real tables are 16 KiB (128 x 128 bytes). A larger
# claim than this is refused rather than allocated.
MAX_ENTRY_ARRAY: Final = 4 << 20
SECTOR_SIZES: Final = (512, 4096)


@dataclass(frozen=True)
class GptHeader:
    lba: int  # where it was read
    revision: int
    header_size: int
    my_lba: int
    alternate_lba: int
    first_usable_lba: int
    last_usable_lba: int
    disk_guid: uuid.UUID
    partition_entry_lba: int
    number_of_partition_entries: int
    size_of_partition_entry: int
    partition_entry_array_crc32: int


def find_sector_size(device: BlockDevice) -> int | None:
    """The logical block size whose LBA 1 holds "EFI PART" (512 or 4096), or None."""
    for ss in SECTOR_SIZES:
        if device.size >= 2 * ss and device.read(ss, 8) == L.GPT_SIGNATURE:
            return ss
    return None


def read_gpt(device: BlockDevice, sector_size: int = 512) -> PartitionTable:
    """The GPT of ``device``: the primary header if valid, else the backup.

    Raises :class:`DiskError` naming the primary header's problem when neither is valid.
    """
    last_lba = device.size // sector_size - 1
    notes: list[str] = []
    try:
        header, entries = _read_header_and_entries(device, 1, sector_size, last_lba)
        source = "primary"
    except DiskError as primary_error:
        # The primary's AlternateLBA is not trusted when the primary is bad; edk2 uses the
        # last block of the disk.
        try:
            header, entries = _read_header_and_entries(device, last_lba, sector_size, last_lba)
        except DiskError:
            raise primary_error from None
        notes.append(f"primary GPT header unusable ({primary_error}); "
                     f"read the backup at LBA {last_lba}")
        source = "backup"
    partitions = _partitions(header, entries, sector_size, last_lba, notes)
    return PartitionTable("gpt", partitions, sector_size, header.disk_guid, source, tuple(notes))


def _read_header_and_entries(
    device: BlockDevice, lba: int, ss: int, last_lba: int
) -> tuple[GptHeader, bytes]:
    where = "primary" if lba == 1 else "backup"
    pos = lba * ss
    if lba < 1 or pos + ss > device.size:
        raise DiskTruncatedError(f"the {where} GPT header at LBA {lba} is beyond the disk",
                                 structure="GPT header", offset=pos)
    block = device.read(pos, ss)
    h = L.GPT_HEADER.unpack_dict(block)
    off = L.GPT_HEADER.offset

    def bad(message: str, name: str) -> DiskError:
        return DiskError(f"{where} GPT header: {message}", structure=f"GPT header.{name}",
                         offset=pos + off(name))

    if h["signature"] != L.GPT_SIGNATURE:
        raise bad(f"signature is {h['signature']!r}, not {L.GPT_SIGNATURE!r}", "signature")
    size = h["header_size"]
    if not L.GPT_HEADER_MIN_SIZE <= size <= ss:
        raise bad(f"header_size {size} is outside {L.GPT_HEADER_MIN_SIZE}..{ss}", "header_size")
    crc_at = off("header_crc32")
    zeroed = block[:crc_at] + bytes(4) + block[crc_at + 4 : size]
    if zlib.crc32(zeroed) != h["header_crc32"]:
        raise bad(f"header CRC32 {h['header_crc32']:#010x} does not match the header "
                  f"({zlib.crc32(zeroed):#010x})", "header_crc32")
    if h["my_lba"] != lba:
        raise bad(f"MyLBA is {h['my_lba']}, but the header is at LBA {lba}", "my_lba")
    first, last = h["first_usable_lba"], h["last_usable_lba"]
    if first > last or last > last_lba:
        raise bad(f"usable LBAs {first}..{last} are not inside the disk (last LBA "
                  f"{last_lba})", "last_usable_lba")
    esize, count = h["size_of_partition_entry"], h["number_of_partition_entries"]
    if esize < L.GPT_ENTRY_MIN_SIZE or esize % L.GPT_ENTRY_MIN_SIZE:
        raise bad(f"SizeOfPartitionEntry {esize} is not a multiple of 128",
                  "size_of_partition_entry")
    total = esize * count
    if total > MAX_ENTRY_ARRAY:
        raise bad(f"the entry array ({count} x {esize} bytes) is larger than the "
                  f"{MAX_ENTRY_ARRAY} byte limit", "number_of_partition_entries")
    array_pos = h["partition_entry_lba"] * ss
    if h["partition_entry_lba"] < 1 or array_pos + total > device.size:
        raise DiskTruncatedError(
            f"{where} GPT entry array (LBA {h['partition_entry_lba']}, {total} bytes) is "
            "beyond the disk", structure="GPT header.partition_entry_lba",
            offset=pos + off("partition_entry_lba"),
        )  # fmt: skip
    entries = device.read(array_pos, total)
    if zlib.crc32(entries) != h["partition_entry_array_crc32"]:
        raise bad(f"entry array CRC32 {h['partition_entry_array_crc32']:#010x} does not "
                  f"match the array at LBA {h['partition_entry_lba']} "
                  f"({zlib.crc32(entries):#010x})", "partition_entry_array_crc32")
    header = GptHeader(
        lba=lba, revision=h["revision"], header_size=size, my_lba=h["my_lba"],
        alternate_lba=h["alternate_lba"], first_usable_lba=first, last_usable_lba=last,
        disk_guid=uuid.UUID(bytes_le=h["disk_guid"]),
        partition_entry_lba=h["partition_entry_lba"], number_of_partition_entries=count,
        size_of_partition_entry=esize,
        partition_entry_array_crc32=h["partition_entry_array_crc32"],
    )  # fmt: skip
    return header, entries


def _partitions(
    header: GptHeader, entries: bytes, ss: int, last_lba: int, notes: list[str]
) -> tuple[Partition, ...]:
    out: list[Partition] = []
    esize = header.size_of_partition_entry
    for i in range(header.number_of_partition_entries):
        e = L.GPT_ENTRY.unpack_dict(entries, i * esize)
        if e["partition_type_guid"] == bytes(16):
            continue
        first, last = e["starting_lba"], e["ending_lba"]
        if not header.first_usable_lba <= first <= last <= header.last_usable_lba:
            notes.append(f"GPT entry {i + 1} (LBAs {first}..{last}) is outside the usable "
                         f"LBAs {header.first_usable_lba}..{header.last_usable_lba}; skipped")
            continue
        clash = next((p for p in out if first <= p.last_lba and p.first_lba <= last), None)
        if clash is not None:
            notes.append(f"GPT entry {i + 1} (LBAs {first}..{last}) overlaps entry "
                         f"{clash.index}; skipped")
            continue
        name = e["partition_name"].decode("utf-16-le", "replace").split("\0", 1)[0]
        out.append(Partition(
            index=i + 1, scheme="gpt", first_lba=first, last_lba=last, sector_size=ss,
            type_guid=uuid.UUID(bytes_le=e["partition_type_guid"]),
            unique_guid=uuid.UUID(bytes_le=e["unique_partition_guid"]), name=name,
            attributes=e["attributes"],
            bootable=bool(e["attributes"] & L.GPT_ATTR_LEGACY_BIOS_BOOTABLE),
        ))  # fmt: skip
    return tuple(out)
