"""The fault-tolerant-write (FTW) working block of an NV image: its header, its write queue
and what the FTW driver will do with them at the next boot.

References (tianocore/edk2): ``MdeModulePkg/Include/Guid/SystemNvDataGuid.h`` (the working
block header), ``MdeModulePkg/Universal/FaultTolerantWriteDxe/FaultTolerantWrite.h`` (write
headers and records), ``FtwMisc.c`` (``FtwGetLastWriteHeader``, ``FtwGetLastWriteRecord``,
``InitFtwProtocol``: the restart rule) and ``UpdateWorkingBlock.c`` (``IsValidWorkSpace``).
The structures are declared in :mod:`.layout`; the findings in :mod:`.issues`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from fwtools._base.record import Record as Value
from fwtools.formats.varstore import issues as iss
from fwtools.formats.varstore import layout as lay
from fwtools.formats.varstore.bytescan import first_not

if TYPE_CHECKING:
    from fwtools.formats.varstore.issues import Findings
    from fwtools.formats.varstore.layout import StoreLayout

_FTW_GUID_BYTES = lay.WORKING_BLOCK_SIGNATURE_GUID.bytes_le
_WORKING = lay.FTW_WORKING_HEADER_LAYOUT
_WORKING_SIZE = lay.FTW_WORKING_HEADER_SIZE
_WRITE = lay.FTW_WRITE_HEADER_LAYOUT
_RECORD = lay.FTW_WRITE_RECORD_LAYOUT


class FtwRecord(Value):
    """EFI_FAULT_TOLERANT_WRITE_RECORD (flags decoded: True = done/set)."""

    offset: int
    boot_block_update: bool
    spare_complete: bool
    destination_complete: bool
    lba: int
    block_offset: int
    length: int
    relative_offset: int


class FtwWrite(Value):
    """EFI_FAULT_TOLERANT_WRITE_HEADER with its records."""

    offset: int
    header_allocated: bool
    writes_allocated: bool
    complete: bool
    caller_id: uuid.UUID
    number_of_writes: int
    private_data_size: int
    records: tuple[FtwRecord, ...]


class FtwWorkingBlock(Value):
    """The FTW working area: header, write queue and what the driver will do at boot.

    ``header_pristine``: the header is byte-identical to what the driver computes
    (``IsValidWorkSpace``). ``pending`` is the record the driver would restart at boot
    (``InitFtwProtocol``: the last write is not Complete and its record is SpareComplete),
    copying the spare over the target. ``aborted``: an allocated write whose spare copy never
    completed, which the driver discards.
    """

    offset: int
    size: int
    signature_valid: bool
    crc: int
    expected_crc: int
    state: int
    write_queue_size: int
    header_pristine: bool
    queue_blank: bool
    writes: tuple[FtwWrite, ...]
    pending: FtwRecord | None
    aborted: bool
    spare_blank: bool | None
    spare_has_working_header: bool

    @property
    def completed_writes(self) -> int:
        return sum(1 for w in self.writes if w.complete)



def find_working_block(data: bytes, start: int, stop: int) -> range | None:
    """The FTW working area of a custom image: the first working-block signature in
    [start, stop) whose WriteQueueSize fits before ``stop``, as a byte range (header and
    queue), or None."""
    at = data.find(_FTW_GUID_BYTES, start, stop)
    if at < 0 or at + _WORKING_SIZE > stop:
        return None
    queue: int = _WORKING.unpack_dict(data, at)["write_queue_size"]
    if queue > stop - at - _WORKING_SIZE:
        return None
    return range(at, at + _WORKING_SIZE + queue)


def read_working_block(
    data: bytes, layout: StoreLayout, findings: Findings
) -> FtwWorkingBlock | None:
    """The layout's FTW working block as found (None where it has none); its issues go to
    ``findings``."""
    region = layout.ftw_working
    if region is None:
        return None
    base = region.start
    size = len(region)
    header = _WORKING.unpack_dict(data, base)
    expected = lay.ftw_working_header(size - _WORKING_SIZE)
    expected_crc: int = _WORKING.unpack_dict(expected)["crc"]
    pristine = data[base : base + _WORKING_SIZE] == expected
    queue_blank = first_not(data, base + _WORKING_SIZE, region.stop, 0xFF)
    spare = layout.ftw_spare
    spare_blank: bool | None = None
    spare_working = False
    if spare is not None:
        spare_blank = first_not(data, spare.start, spare.stop, 0xFF) is None
        if not spare_blank and len(spare) >= _WORKING_SIZE:
            spare_working = data[spare.start : spare.start + _WORKING_SIZE] == expected
    writes: list[FtwWrite] = []
    pending: FtwRecord | None = None
    aborted = False
    signature_valid = header["signature"] == _FTW_GUID_BYTES
    if signature_valid and queue_blank is not None:
        writes, pending, aborted = _read_queue(data, base, size)
    block = FtwWorkingBlock(
        offset=base,
        size=size,
        signature_valid=signature_valid,
        crc=header["crc"],
        expected_crc=expected_crc,
        state=header["state"],
        write_queue_size=header["write_queue_size"],
        header_pristine=pristine,
        queue_blank=queue_blank is None,
        writes=tuple(writes),
        pending=pending,
        aborted=aborted,
        spare_blank=spare_blank,
        spare_has_working_header=spare_working,
    )
    _report(block, layout, findings)
    return block


def _read_queue(
    data: bytes, base: int, size: int
) -> tuple[list[FtwWrite], FtwRecord | None, bool]:
    """FtwMisc.c: FtwGetLastWriteHeader / FtwGetLastWriteRecord and InitFtwProtocol."""
    writes: list[FtwWrite] = []
    last: FtwWrite | None = None
    off = _WORKING_SIZE
    while off + _WRITE.size <= size:
        bits, caller, count, private = _WRITE.unpack_from(data, base + off)
        if bits == lay.ERASED:
            break  # an empty header slot: nothing allocated after this
        record_size = _RECORD.size + private
        room = (size - off - _WRITE.size) // record_size
        records = []
        for n in range(min(count, room)):
            at = base + off + _WRITE.size + n * record_size
            rbits, lba, block_offset, length, relative = _RECORD.unpack_from(data, at)
            records.append(
                FtwRecord(
                    offset=at,
                    boot_block_update=not rbits & lay.FTW_BOOT_BLOCK_UPDATE,
                    spare_complete=not rbits & lay.FTW_SPARE_COMPLETE,
                    destination_complete=not rbits & lay.FTW_DESTINATION_COMPLETE,
                    lba=lba,
                    block_offset=block_offset,
                    length=length,
                    relative_offset=relative,
                )
            )
        write = FtwWrite(
            offset=base + off,
            header_allocated=not bits & lay.FTW_HEADER_ALLOCATED,
            writes_allocated=not bits & lay.FTW_WRITES_ALLOCATED,
            complete=not bits & lay.FTW_COMPLETE,
            caller_id=uuid.UUID(bytes_le=caller),
            number_of_writes=count,
            private_data_size=private,
            records=tuple(records),
        )
        writes.append(write)
        if not write.complete:
            last = write
            break
        off += _WRITE.size + count * record_size
    if last is None or not last.header_allocated or not last.records:
        return writes, None, False
    record = next((r for r in last.records if not r.destination_complete), last.records[-1])
    if record.spare_complete:
        return writes, record, False
    return writes, None, True


def _report(block: FtwWorkingBlock, layout: StoreLayout, findings: Findings) -> None:
    issue = findings.add
    base = block.offset
    queue_start = base + _WORKING_SIZE
    if not block.signature_valid:
        where = (
            "the spare holds a valid working header, which the firmware copies back"
            if block.spare_has_working_header
            else "the firmware re-creates it at boot (harmless for variables)"
        )
        issue(iss.FTW_SIGNATURE, f"FTW working block has no valid signature; {where}", base)
    elif not block.header_pristine:
        issue(
            iss.FTW_HEADER,
            f"FTW working block header differs from what the driver computes (Crc "
            f"{block.crc:#x}, expected {block.expected_crc:#x}; state {block.state:#04x}); "
            "the firmware treats it as invalid and re-creates it",
            base,
        )
    if block.pending is not None:
        record = block.pending
        issue(
            iss.FTW_PENDING,
            "FTW write pending: at next boot the firmware copies the spare block over LBA "
            f"{record.lba:#x} offset {record.block_offset:#x} ({record.length:#x} bytes), "
            "overwriting the variable store in this file; boot the VM once so it "
            "completes, or rewrite with repair (drops the pending write)",
            record.offset,
        )
    elif block.aborted:
        issue(
            iss.FTW_ABORTED,
            "FTW queue ends in a write whose spare copy never completed; the firmware "
            "discards it (harmless)",
            block.writes[-1].offset if block.writes else base,
        )
    if block.completed_writes:
        issue(
            iss.FTW_COMPLETED,
            f"FTW write queue holds {block.completed_writes} completed write(s) (left by "
            "the firmware's reclaim); harmless",
            queue_start,
        )
    elif block.signature_valid and not block.queue_blank and not block.writes:
        issue(
            iss.FTW_QUEUE_DIRTY,
            "FTW write queue is not blank after the header; the firmware reclaims it",
            queue_start,
        )
    if block.spare_blank is False and layout.ftw_spare is not None:
        issue(
            iss.FTW_SPARE,
            "FTW spare area is not erased (scratch space; harmless unless a write is pending)",
            layout.ftw_spare.start,
        )


__all__ = [
    "FtwRecord",
    "FtwWorkingBlock",
    "FtwWrite",
    "find_working_block",
    "read_working_block",
]
