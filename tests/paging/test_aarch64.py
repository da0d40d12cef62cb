"""AArch64 stage 1, 4 KiB granule: bit-exact descriptors, walks, splitting and ESR values.

Expected descriptors are written by hand from the Arm ARM (DDI 0487) D8.3: bits[1:0] 0b11
table/page, 0b01 block; AttrIndx bits 4:2, NS 5, AP[1] 6, AP[2] 7, SH bits 9:8, AF 10, nG 11,
output address 47:12, Contiguous 52, PXN 53, UXN/XN 54; table descriptors PXNTable 59,
UXNTable 60, APTable 62:61. ESR_ELx (D17.2): EC bits 31:26, IL bit 25, ISS: xFSC bits 5:0,
WnR bit 6.
"""

from __future__ import annotations

import pytest

from fwtools.paging import (
    AArch64PageTable,
    Abort,
    AccessKind,
    Attributes,
    MemAttr,
    NotMappedError,
    Ok,
    PagingError,
)
from fwtools.paging import aarch64 as a

G1, M2, K4 = 1 << 30, 1 << 21, 1 << 12
R, W, F = AccessKind.READ, AccessKind.WRITE, AccessKind.FETCH
WB = a.NORMAL_WRITE_BACK  # AttrIndx=3 (0xC) | SH inner shareable (0x300)


def entries(t: AArch64PageTable, va: int) -> list[int]:
    return [s.entry for s in t.walk(va).steps]


def abort(t: AArch64PageTable, va: int, kind: AccessKind) -> Abort:
    result = t.access(va, kind)
    assert isinstance(result, Abort), result
    return result


def test_bit_constants_match_arm_arm() -> None:
    assert (a.AP1, a.AP2, a.AF, a.NG) == (0x40, 0x80, 0x400, 0x800)
    assert (a.PXN, a.UXN) == (1 << 53, 1 << 54)
    assert (a.EC_INSTRUCTION_ABORT_SAME, a.EC_DATA_ABORT_SAME) == (0x21, 0x25)


def test_block_and_page_descriptors() -> None:
    t = AArch64PageTable()
    t.map(G1, G1, G1, Attributes(raw=WB))
    # L0 table -> L1 table at POOL+0x1000: address | 0b11
    # L1 block: 0x40000000 | AF 0x400 | SH 0x300 | AttrIndx 0xC | 0b01
    assert entries(t, G1) == [0x0000_7F00_0000_1003, 0x0000_0000_4000_070D]
    assert [s.name for s in t.walk(G1).steps] == ["L0 table", "L1 block"]
    t.map(0x20_0000, 0x8020_0000, M2, Attributes(writable=False, raw=WB | a.NG))
    # L2 block: 0x80200000 | nG 0x800 | AF | SH | AP[2] 0x80 | AttrIndx | 0b01
    assert entries(t, 0x20_0000)[-1] == 0x0000_0000_8020_0F8D
    t.map(0x40_1000, 0x1_2345_6000, K4, Attributes(writable=False, executable=False, raw=WB))
    # L3 page: UXN|PXN (bits 54,53) | 0x123456000 | AF | SH | AP[2] | AttrIndx | 0b11
    assert entries(t, 0x40_1000)[-1] == 0x0060_0001_2345_678F
    assert t.walk(0x40_1000).steps[-1].name == "L3 page"
    assert t.translate(0x40_1abc) == 0x1_2345_6abc
    assert t.translate(G1 + 0x123) == G1 + 0x123
    assert t.walk(0x20_0010).pa == 0x8020_0010 and t.walk(0x20_0010).page_size == M2


def test_el2_uses_xn_bit_54_only() -> None:
    t = AArch64PageTable(el=2)
    t.map(0, 0, K4, Attributes(executable=False, raw=WB))
    assert entries(t, 0)[-1] == 0x0040_0000_0000_070F  # XN bit 54 | AF | SH | AttrIndx | 0b11
    assert abort(t, 0, F).fsc == 0x0F


def test_translation_faults_at_each_level() -> None:
    t = AArch64PageTable()
    f = abort(t, 0x1000, R)  # empty L0
    assert (f.ec, f.fsc, f.wnr, f.level) == (0x25, 0x04, False, 0)
    assert f.esr == 0x9600_0004
    t.map(0, 0, K4)
    assert abort(t, G1, W).fsc == 0x05  # L1 entry empty
    assert abort(t, G1, W).esr == 0x9600_0045  # WnR=1
    assert abort(t, M2, R).fsc == 0x06  # L2 entry empty
    f = abort(t, K4, F)
    assert (f.ec, f.fsc) == (0x21, 0x07)  # instruction abort, translation fault level 3
    assert f.esr == 0x8600_0007
    assert str(f) == "EC 0x21 (instruction abort, same EL) IFSC 0x07 (translation fault, level 3)"


def test_reserved_descriptor_types_are_translation_faults() -> None:
    t = AArch64PageTable()
    t.map(0, 0, K4)
    l0, _l1, _l2, l3 = t.walk(0).steps
    t.memory.write_u64(l3.entry_address, l3.entry & ~0b10)  # 0b01 at level 3 is reserved
    assert abort(t, 0, R).fsc == 0x07
    t.memory.write_u64(l0.entry_address, l0.entry & ~0b10)  # block at level 0: invalid
    assert abort(t, 0, R).fsc == 0x04


def test_access_flag_faults() -> None:
    t = AArch64PageTable()
    t.map(0, 0, G1, Attributes(raw=WB))
    t.set_attributes(0, G1, MemAttr.RP)  # whole block: no split
    assert entries(t, 0)[-1] == 0x0000_0000_0000_030D  # SH|AttrIndx|0b01, AF (bit 10) clear
    assert abort(t, 0x10, R).fsc == 0x09  # access flag fault level 1
    t.clear_attributes(0, G1, MemAttr.RP)
    t.set_attributes(M2, M2, MemAttr.RP)
    assert abort(t, M2, W).fsc == 0x0A and abort(t, M2, W).wnr
    t.set_attributes(4 * M2 + K4, K4, MemAttr.RP)
    f = abort(t, 4 * M2 + K4, F)
    assert (f.ec, f.fsc, f.reason) == (0x21, 0x0B, "access-flag")


def test_permission_faults() -> None:
    t = AArch64PageTable()
    t.map(0, 0, G1, Attributes(raw=WB))
    t.set_attributes(0, K4, MemAttr.RO)
    f = abort(t, 0, W)
    assert (f.ec, f.fsc, f.wnr, f.esr) == (0x25, 0x0F, True, 0x9600_004F)
    assert str(f) == (
        "EC 0x25 (data abort, same EL) DFSC 0x0f (permission fault, level 3) WnR=1"
    )
    assert t.access(0, R) == Ok(0) and t.access(0, F) == Ok(0)
    t.set_attributes(K4, K4, MemAttr.XP)
    f = abort(t, K4, F)
    assert (f.ec, f.fsc, f.esr) == (0x21, 0x0F, 0x8600_000F)
    t.set_attributes(M2, M2, MemAttr.XP)  # 2 MiB block stays a block
    assert abort(t, M2, F).fsc == 0x0E
    t2 = AArch64PageTable()
    t2.map(0, 0, G1, Attributes(writable=False))
    assert abort(t2, 0, W).fsc == 0x0D


def test_el0_writable_is_privileged_execute_never_and_wxn() -> None:
    t = AArch64PageTable()
    t.map(0, 0, K4, Attributes(raw=a.AP1))  # AP[2:1]=0b01: RW at EL0 and EL1
    assert abort(t, 0, F).fsc == 0x0F
    t.map(0, 0, K4, Attributes(writable=False, raw=a.AP1))  # 0b11: RO both: executable
    assert t.access(0, F) == Ok(0)
    w = AArch64PageTable(wxn=True)
    w.map(0, 0, 2 * K4)
    w.set_attributes(K4, K4, MemAttr.RO)
    assert abort(w, 0, F).fsc == 0x0F and w.access(K4, F) == Ok(K4)


def test_hierarchical_table_attributes() -> None:
    t = AArch64PageTable()
    t.map(0, 0, K4)
    l1 = t.walk(0).steps[1]
    t.memory.write_u64(l1.entry_address, l1.entry | a.AP_TABLE_RO | a.PXN_TABLE)
    assert abort(t, 0, W).fsc == 0x0F
    assert abort(t, 0, F).fsc == 0x0F
    assert t.access(0, R) == Ok(0)


def test_address_size_fault() -> None:
    t = AArch64PageTable()
    t.map(0, 0, K4)
    leaf = t.walk(0).steps[-1]
    t.memory.write_u64(leaf.entry_address, leaf.entry | (1 << 48))
    assert abort(t, 0, R).fsc == 0x03  # address size fault level 3
    with pytest.raises(PagingError):
        t.map(0, 1 << 48, K4)


def test_split_replicates_block_attributes() -> None:
    t = AArch64PageTable()
    t.map(0, 0, G1, Attributes(raw=WB | a.NG))
    t.set_attributes(M2 + K4, K4, MemAttr.RO)
    assert t.table_count == 4  # L0, L1, L2 (from the 1 GiB block), L3 (from one 2 MiB block)
    assert entries(t, 0)[-1] == 0x0000_0000_0000_0F0D  # L2 block: nG|AF|SH|AttrIndx|0b01
    assert entries(t, M2)[-1] == 0x0000_0000_0020_0F0F  # L3 page
    assert entries(t, M2 + K4)[-1] == 0x0000_0000_0020_1F8F  # + AP[2]
    assert entries(t, M2)[1] == 0x0000_7F00_0000_2003  # block became a table descriptor


def test_block_with_requested_attributes_is_not_split() -> None:
    # ArmMmuLib: "A block already holding the requested attributes is left unsplit".
    t = AArch64PageTable()
    t.map(0, 0, G1, Attributes(executable=False))
    t.set_attributes(K4, K4, MemAttr.XP)
    assert t.table_count == 2 and t.walk(K4).page_size == G1


def test_set_on_unmapped_range_is_refused() -> None:
    t = AArch64PageTable()
    t.map(0, 0, K4)
    with pytest.raises(NotMappedError):
        t.set_attributes(0, 2 * K4, MemAttr.RO)
    assert t.access(0, W) == Ok(0)


def test_ranges_list_rwx_and_rp() -> None:
    t = AArch64PageTable()
    t.map(0, 0, 4 * M2, Attributes(raw=WB))
    t.set_attributes(M2, M2, MemAttr.XP)
    t.set_attributes(2 * M2, K4, MemAttr.RP)
    got = [(r.start, r.end, str(r.permissions), r.attributes.efi) for r in t.ranges()]
    assert got == [
        (0, M2, "rwx", MemAttr.NONE),
        (M2, 2 * M2, "rw-", MemAttr.XP),
        (2 * M2, 2 * M2 + K4, "---", MemAttr.RP),
        (2 * M2 + K4, 4 * M2, "rwx", MemAttr.NONE),
    ]
    assert [r.start for r in t.ranges() if r.permissions.rwx] == [0, 2 * M2 + K4]
    clipped = list(t.ranges(M2 + K4, 2 * M2 + 2 * K4))
    assert (clipped[0].start, clipped[-1].end) == (M2 + K4, 2 * M2 + 2 * K4)
    assert clipped[0].pa == M2 + K4
