"""The structures of formats/varstore/layout.py against the offsets and sizes of the edk2
headers, written out here from the C declarations (MdePkg/Include/Pi/PiFirmwareVolume.h,
MdeModulePkg/Include/Guid/VariableFormat.h, SystemNvDataGuid.h and
MdeModulePkg/Universal/FaultTolerantWriteDxe/FaultTolerantWrite.h), not from the module."""

from __future__ import annotations

import pytest

from fwtools._base.layout import Layout
from fwtools.formats.varstore import layout as lay

# (layout, size, {field: offset}) as the C compilers lay them out for X64/AARCH64.
EXPECTED: list[tuple[Layout, int, dict[str, int]]] = [
    (lay.FV_HEADER_LAYOUT, 0x38, {
        "zero_vector": 0x00, "file_system_guid": 0x10, "fv_length": 0x20, "signature": 0x28,
        "attributes": 0x2C, "header_length": 0x30, "checksum": 0x32,
        "ext_header_offset": 0x34, "reserved": 0x36, "revision": 0x37,
    }),
    (lay.BLOCK_MAP_ENTRY_LAYOUT, 8, {"num_blocks": 0, "length": 4}),
    (lay.STORE_HEADER_LAYOUT, 28, {
        "signature": 0, "size": 16, "format": 20, "state": 21, "reserved": 22, "reserved1": 24,
    }),
    (lay.NORMAL_HEADER_LAYOUT, 32, {
        "start_id": 0, "state": 2, "reserved": 3, "attributes": 4, "name_size": 8,
        "data_size": 12, "vendor_guid": 16,
    }),
    (lay.AUTH_HEADER_LAYOUT, 60, {
        "start_id": 0, "state": 2, "reserved": 3, "attributes": 4, "monotonic_count": 8,
        "timestamp": 16, "pubkey_index": 32, "name_size": 36, "data_size": 40,
        "vendor_guid": 44,
    }),
    (lay.FTW_WORKING_HEADER_LAYOUT, 32, {
        "signature": 0, "crc": 16, "state": 20, "reserved3": 21, "write_queue_size": 24,
    }),
    # EFI_FAULT_TOLERANT_WRITE_HEADER: a UINT8 of bit fields, then the GUID at its natural
    # (4-byte) alignment, then two UINT64 at 8-byte alignment.
    (lay.FTW_WRITE_HEADER_LAYOUT, 40, {
        "bits": 0, "caller_id": 4, "number_of_writes": 24, "private_data_size": 32,
    }),
    (lay.FTW_WRITE_RECORD_LAYOUT, 40, {
        "bits": 0, "lba": 8, "offset": 16, "length": 24, "relative_offset": 32,
    }),
]  # fmt: skip


@pytest.mark.parametrize(("layout", "size", "offsets"), EXPECTED, ids=lambda v: str(v)[:40])
def test_layout_matches_the_c_declaration(
    layout: Layout, size: int, offsets: dict[str, int]
) -> None:
    assert layout.size == size
    assert dict(layout.offsets) == offsets


def test_derived_names_follow_the_layouts() -> None:
    assert lay.FV_HEADER_SIZE == lay.FV_BLOCK_MAP_OFFSET == 0x38
    assert lay.FV_HEADER_LENGTH == 0x48 and lay.FV_HEADER_MIN_LENGTH == 0x40
    assert (lay.FV_CHECKSUM_OFFSET, lay.FV_REVISION_OFFSET) == (0x32, 0x37)
    assert (lay.STATE_OFFSET, lay.RESERVED_OFFSET, lay.START_ID_END) == (2, 3, 2)
    assert lay.AUTH_TIMESTAMP_OFFSET == 16
    # The packed FTW working header the driver writes starts with the signature GUID.
    header = lay.ftw_working_header(0xFE0)
    assert header[:16] == lay.WORKING_BLOCK_SIGNATURE_GUID.bytes_le
    assert lay.FTW_WORKING_HEADER_LAYOUT.unpack_dict(header)["write_queue_size"] == 0xFE0


def test_set_fv_checksum_makes_the_words_sum_to_zero() -> None:
    header = bytearray(range(0x48))
    lay.set_fv_checksum(header)
    assert lay.fv_checksum(header) == 0
