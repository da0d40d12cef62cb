"""MBR partition tables: the four primary records and the logical partitions of an
extended partition (the chain of EBRs), and which table a disk uses.

Sector 0 is parsed by :mod:`fwtools.formats.mbr` (UEFI 2.10 §5.2.1). An extended
partition's EBRs (each a sector with the same four-record layout: record 0 the logical
partition relative to this EBR, record 1 the next EBR relative to the extended partition)
follow the Linux reading in ``block/partitions/msdos.c``; the chain is bounded
(:data:`MAX_LOGICAL`) and a repeated EBR ends it with an error rather than a loop.
"""

from __future__ import annotations

from typing import Final

from fwtools.formats.disk import layout as L
from fwtools.formats.disk.device import BlockDevice, DiskError
from fwtools.formats.disk.table import Partition, PartitionTable
from fwtools.formats.mbr import Mbr, parse_sector
from fwtools.formats.mbr import layout as ML

SECTOR: Final = ML.SECTOR_SIZE
MAX_LOGICAL: Final = 256  # Linux stops at DISK_MAX_PARTS; no real disk comes close


def read_sector0(device: BlockDevice) -> Mbr:
    if device.size < SECTOR:
        raise DiskError(f"the disk ({device.size} bytes) is smaller than one sector",
                        structure="MBR", offset=0)
    return parse_sector(device.read(0, SECTOR))


def read_mbr_partitions(device: BlockDevice, mbr: Mbr) -> PartitionTable:
    """The partitions of an MBR disk; records that reach past the disk are noted and
    skipped."""
    last_lba = device.size // SECTOR - 1
    notes: list[str] = []
    out: list[Partition] = []
    for rec in mbr.partitions:
        if rec.empty or rec.size_lba == 0:
            continue
        if rec.os_type in L.MBR_TYPE_EXTENDED:
            out.extend(_logical(device, rec.start_lba, rec.size_lba, last_lba, notes))
            continue
        part = _make(rec.index + 1, rec.os_type, rec.start_lba, rec.size_lba,
                     rec.boot_indicator == ML.BOOT_INDICATOR_ACTIVE)
        if part.last_lba > last_lba:
            notes.append(f"MBR partition {part.index} (LBAs {part.first_lba}..{part.last_lba}) "
                         f"reaches past the disk (last LBA {last_lba}); skipped")
            continue
        out.append(part)
    out.sort(key=lambda p: p.index)
    return PartitionTable("mbr", tuple(out), SECTOR, notes=tuple(notes))


def _make(index: int, os_type: int, start: int, size: int, active: bool) -> Partition:
    return Partition(index=index, scheme="mbr", first_lba=start, last_lba=start + size - 1,
                     sector_size=SECTOR, mbr_type=os_type, bootable=active)


def _logical(
    device: BlockDevice, ext_start: int, ext_size: int, last_lba: int, notes: list[str]
) -> list[Partition]:
    out: list[Partition] = []
    ebr = ext_start
    seen: set[int] = set()
    index = 5
    while True:
        if ebr in seen:
            raise DiskError(f"the EBR chain loops back to LBA {ebr}",
                            structure="EBR", offset=ebr * SECTOR)
        if len(seen) >= MAX_LOGICAL:
            raise DiskError(f"the EBR chain has more than {MAX_LOGICAL} links",
                            structure="EBR", offset=ebr * SECTOR)
        seen.add(ebr)
        if ebr > last_lba:
            notes.append(f"EBR at LBA {ebr} is beyond the disk; logical partitions end there")
            break
        sector = parse_sector(device.read(ebr * SECTOR, SECTOR))
        if not sector.has_boot_signature:
            notes.append(f"EBR at LBA {ebr} has no 0x55AA signature; logical partitions "
                         "end there")
            break
        first, link = sector.partitions[0], sector.partitions[1]
        if not first.empty and first.size_lba:
            part = _make(index, first.os_type, ebr + first.start_lba, first.size_lba,
                         first.boot_indicator == ML.BOOT_INDICATOR_ACTIVE)
            if part.last_lba > min(last_lba, ext_start + ext_size - 1):
                notes.append(f"logical partition {index} reaches past the extended partition; "
                             "skipped")
            else:
                out.append(part)
            index += 1
        if link.empty or link.os_type not in L.MBR_TYPE_EXTENDED or link.start_lba == 0:
            break
        ebr = ext_start + link.start_lba
    return out


def read_partition_table(device: BlockDevice) -> PartitionTable:
    """The disk's table: GPT when the MBR is protective (or hybrid), or when there is no MBR
    signature but LBA 1 says "EFI PART"; MBR partitions otherwise; ``none`` when neither."""
    from fwtools.formats.disk.gpt import find_sector_size, read_gpt

    mbr = read_sector0(device)
    has_ee = mbr.has_boot_signature and any(
        p.os_type == ML.TYPE_GPT_PROTECTIVE for p in mbr.partitions)
    ss = find_sector_size(device)
    if has_ee or (ss is not None and not mbr.has_boot_signature):
        table = read_gpt(device, ss or SECTOR)
        note = None
        if mbr.scheme == "hybrid":
            note = "hybrid MBR: the GPT is used, as UEFI does"
        elif not has_ee:
            # edk2 PartitionDxe/Gpt.c reads a GPT only behind a protective MBR (type 0xEE).
            note = "no protective MBR: UEFI firmware (edk2) does not read this GPT"
        if note is not None:
            return PartitionTable(table.scheme, table.partitions, table.sector_size,
                                  table.disk_guid, table.source, (*table.notes, note))
        return table
    if mbr.scheme == "mbr":
        return read_mbr_partitions(device, mbr)
    return PartitionTable("none", ())
