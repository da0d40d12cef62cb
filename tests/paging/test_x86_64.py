"""x86-64 4-level paging: bit-exact entries, walks, splitting and #PF error codes.

Expected entries are written by hand from Intel SDM Vol. 3A §4.5 (Tables 4-15..4-20):
P bit 0, R/W bit 1, U/S bit 2, PWT bit 3, PCD bit 4, A bit 5, D bit 6, PS bit 7 (PAT in a
PTE), G bit 8, PAT bit 12 in a large-page entry, address bits 51:12, XD bit 63.
Error codes from SDM §4.7: P bit 0, W/R bit 1, U/S bit 2, RSVD bit 3, I/D bit 4.
"""

from __future__ import annotations

import pytest

from fwtools.paging import (
    AccessKind,
    Attributes,
    MemAttr,
    NotMappedError,
    Ok,
    PageFault,
    PagingError,
    X64PageTable,
)
from fwtools.paging import x86_64 as x

POOL = 0x0000_7F00_0000_0000  # default table pool: root PML4 at POOL, next tables follow
G1, M2, K4 = 1 << 30, 1 << 21, 1 << 12
R, W, F = AccessKind.READ, AccessKind.WRITE, AccessKind.FETCH


def entries(t: X64PageTable, va: int) -> list[int]:
    return [s.entry for s in t.walk(va).steps]


def fault_code(t: X64PageTable, va: int, kind: AccessKind) -> int:
    result = t.access(va, kind)
    assert isinstance(result, PageFault), result
    return result.error_code


def test_bit_constants_match_sdm() -> None:
    assert (x.P, x.RW, x.US, x.PWT, x.PCD, x.A, x.D, x.PS, x.G) == (
        0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80, 0x100,
    )
    assert x.PAT_LARGE == 0x1000 and x.NX == 0x8000_0000_0000_0000
    assert (x.PF_P, x.PF_WR, x.PF_US, x.PF_RSVD, x.PF_ID) == (1, 2, 4, 8, 0x10)


def test_1g_leaf_encoding_and_walk() -> None:
    t = X64PageTable()
    t.map(0, 0, 4 * G1)
    assert t.cr3 == POOL and t.table_count == 2  # PML4 + one PDPT
    # PML4E[0] -> PDPT at POOL+0x1000, R/W|P (bits 1,0)
    # PDPTE[3]: address 0xC0000000 (bits 51:30), PS (bit 7), R/W, P
    assert entries(t, 3 * G1 + 0x1234) == [0x0000_7F00_0000_1003, 0x0000_0000_C000_0083]
    walk = t.walk(3 * G1 + 0x1234)
    assert [s.name for s in walk.steps] == ["PML4E", "PDPTE"]
    assert walk.page_size == G1 and walk.pa == 3 * G1 + 0x1234
    assert t.access(3 * G1 + 0x1234, F) == Ok(3 * G1 + 0x1234)


def test_2m_and_4k_leaf_encodings() -> None:
    t = X64PageTable()
    # 2 MiB page at PA 0x40200000, NX (bit 63), RO, PCD (bit 4), G (bit 8), PAT (bit 12)
    t.map(
        0x20_0000,
        0x4020_0000,
        M2,
        Attributes(writable=False, executable=False, raw=x.PCD | x.G | x.PAT_4K),
    )
    # PDE: 0x40200000 | PAT 0x1000 | G 0x100 | PS 0x80 | PCD 0x10 | P 0x1, XD bit 63
    assert entries(t, 0x20_0000)[2] == 0x8000_0000_4020_1191
    assert t.walk(0x20_0000).steps[2].name == "PDE"
    # 4 KiB page at PA 0x123456000, RW, executable, PWT (bit 3), A (bit 5), D (bit 6), PAT bit 7
    t.map(0x40_1000, 0x1_2345_6000, K4, Attributes(raw=x.PWT | x.A | x.D | x.PAT_4K))
    chain = entries(t, 0x40_1abc)
    assert chain == [
        0x0000_7F00_0000_1003,  # PML4E -> PDPT
        0x0000_7F00_0000_2003,  # PDPTE -> PD
        0x0000_7F00_0000_3003,  # PDE[2] -> PT
        0x0000_0001_2345_60EB,  # PTE: 0x123456000 | PAT 0x80 | D 0x40 | A 0x20 | PWT 8 | RW | P
    ]
    assert t.translate(0x40_1abc) == 0x1_2345_6abc
    assert t.get_attributes(0x40_1000) == Attributes(raw=x.PWT | x.A | x.D | x.PAT_4K)


def test_largest_leaf_respects_pa_alignment_and_1g_option() -> None:
    t = X64PageTable()
    t.map(G1, G1 + M2, G1)  # PA not 1 GiB aligned -> 512 x 2 MiB
    assert t.walk(G1).page_size == M2
    t2 = X64PageTable(use_1g_pages=False)
    t2.map(0, 0, G1)
    assert t2.walk(0).page_size == M2 and t2.table_count == 3
    t3 = X64PageTable()
    t3.map(0x1000, 0x1000, M2)  # unaligned start -> 4 KiB pages
    assert t3.walk(0x1000).page_size == K4 and t3.walk(M2).page_size == K4


def test_split_1g_to_2m_to_4k_preserves_other_pages() -> None:
    t = X64PageTable()
    t.map(0, 0, G1, Attributes(raw=x.G | x.PCD))
    t.set_attributes(G1 // 2 + K4, K4, MemAttr.XP)
    # 1 GiB -> 512 x 2 MiB (PD) -> the 2 MiB page holding the range -> 512 x 4 KiB (PT)
    assert t.table_count == 4
    assert t.walk(0).page_size == M2
    assert entries(t, 0)[-1] == 0x0000_0000_0000_0193  # 2 MiB: G|PS|PCD|RW|P carried over
    assert t.walk(G1 // 2).page_size == K4
    assert entries(t, G1 // 2)[-1] == 0x0000_0000_2000_0113  # 4 KiB: G|PCD|RW|P (no PS)
    assert entries(t, G1 // 2 + K4)[-1] == 0x8000_0000_2000_1113  # + XD
    # parent became a table pointer R/W|P
    assert entries(t, G1 // 2)[1] == 0x0000_7F00_0000_2003
    ranges = [(r.start, r.end, str(r.permissions)) for r in t.ranges()]
    assert ranges == [
        (0, G1 // 2 + K4, "rwx"),
        (G1 // 2 + K4, G1 // 2 + 2 * K4, "rw-"),
        (G1 // 2 + 2 * K4, G1, "rwx"),
    ]


def test_aligned_2m_range_splits_1g_only_to_2m() -> None:
    t = X64PageTable()
    t.map(0, 0, G1)
    t.set_attributes(M2, 2 * M2, MemAttr.RO)
    assert t.table_count == 3  # no PT needed
    assert t.walk(M2).page_size == M2
    assert entries(t, M2)[-1] == 0x0000_0000_0020_0081  # PS|P, R/W cleared


def test_x86_splits_even_when_attributes_unchanged() -> None:
    # CpuDxe ConvertMemoryPageAttributes splits before comparing (docs/reference/wx-model.md §5.1).
    t = X64PageTable()
    t.map(0, 0, G1)
    t.clear_attributes(K4, K4, MemAttr.XP)
    assert t.walk(K4).page_size == K4 and t.table_count == 4


def test_fault_error_codes() -> None:
    t = X64PageTable()
    t.map(0x10_0000, 0x10_0000, 3 * K4)
    t.set_attributes(0x10_0000, K4, MemAttr.XP)
    t.set_attributes(0x10_1000, K4, MemAttr.RO)
    t.set_attributes(0x10_2000, K4, MemAttr.RP)
    # fetch from a present NX page: P=1, I/D=1
    assert fault_code(t, 0x10_0000, F) == 0x11
    assert str(t.access(0x10_0000, F)) == "#PF error 0x11"
    assert isinstance(t.access(0x10_0000, R), Ok) and isinstance(t.access(0x10_0000, W), Ok)
    # write to a read-only page with CR0.WP=1: P=1, W/R=1
    assert fault_code(t, 0x10_1000, W) == 0x03
    assert isinstance(t.access(0x10_1000, F), Ok)
    # RP (P=0): read 0x00, write 0x02, fetch 0x10
    assert fault_code(t, 0x10_2000, R) == 0x00
    assert fault_code(t, 0x10_2000, W) == 0x02
    assert fault_code(t, 0x10_2000, F) == 0x10
    # RP keeps the address: PTE = 0x102000 | R/W, P clear
    assert entries(t, 0x10_2000)[-1] == 0x0000_0000_0010_2002
    # unmapped at the PML4 level: same codes, level 0
    fault = t.access(1 << 40, W)
    assert isinstance(fault, PageFault) and fault.error_code == 0x02 and fault.level == 0
    assert fault.cr2 == 1 << 40 and fault.flags() == "I:0 R:0 U:0 W:1 P:0"
    # clearing RP restores the very same mapping
    t.clear_attributes(0x10_2000, K4, MemAttr.RP)
    assert t.access(0x10_2123, R) == Ok(0x10_2123)


def test_cr0_wp_off_allows_supervisor_write_to_read_only() -> None:
    t = X64PageTable(wp=False)
    t.map(0, 0, M2, Attributes(writable=False))
    assert t.access(0x1000, W) == Ok(0x1000)
    assert t.permissions(0x1000).write


def test_nx_without_efer_nxe_is_ignored() -> None:
    t = X64PageTable(nxe=False)
    t.map(0, 0, M2, Attributes(executable=False))
    t.set_attributes(0, K4, MemAttr.XP)
    assert all(not e & x.NX for e in entries(t, 0))  # CpuDxe never writes XD without NXE
    assert t.access(0x10, F) == Ok(0x10)
    t.unmap(0, K4)
    assert fault_code(t, 0, F) == 0x00  # I/D only reported with EFER.NXE=1


def test_xd_bit_with_nxe_off_is_a_reserved_bit_fault() -> None:
    t = X64PageTable(nxe=False)
    t.map(0, 0, M2)
    leaf = t.walk(0).steps[-1]
    t.memory.write_u64(leaf.entry_address, leaf.entry | x.NX)
    assert fault_code(t, 0, R) == 0x09  # RSVD|P
    assert fault_code(t, 0, F) == 0x09  # no I/D without NXE
    assert fault_code(t, 0, W) == 0x0B


def test_reserved_bits() -> None:
    t = X64PageTable(maxphyaddr=40)
    t.map(0, 0, G1)
    assert t.walk(0).page_size == G1
    step = t.walk(0).steps[1]
    t.memory.write_u64(step.entry_address, step.entry | 0x2000)  # 1 GiB PDPTE bit 13
    assert fault_code(t, 0, R) == 0x09
    t.memory.write_u64(step.entry_address, step.entry | (1 << 45))  # address bit >= M
    assert fault_code(t, 0, F) == 0x19
    root = t.walk(0).steps[0]
    t.memory.write_u64(root.entry_address, root.entry | x.PS)  # PS reserved in a PML4E
    fault = t.access(0, W)
    assert isinstance(fault, PageFault) and fault.error_code == 0x0B and fault.level == 0
    with pytest.raises(PagingError):
        t.map(0, 1 << 40, K4)


def test_assign_and_clear_semantics() -> None:
    t = X64PageTable()
    t.map(0, 0, M2)
    t.set_attributes(0, M2, MemAttr.RO | MemAttr.XP)
    t.clear_attributes(0, K4, MemAttr.RO)
    assert str(t.permissions(0)) == "rw-" and str(t.permissions(K4)) == "r--"
    t.assign_attributes(K4, K4, MemAttr.XP)
    assert str(t.permissions(K4)) == "rw-"
    t.assign_attributes(K4, K4, MemAttr.NONE)
    assert str(t.permissions(K4)) == "rwx"
    assert t.get_attributes(2 * K4) == Attributes(writable=False, executable=False)
    assert t.get_attributes(2 * K4) is not None
    assert t.get_attributes(2 * K4).efi == MemAttr.RO | MemAttr.XP  # type: ignore[union-attr]


def test_errors_do_not_change_the_tables() -> None:
    t = X64PageTable()
    t.map(0, 0, M2)
    before = dict((k, bytes(v)) for k, v in t.memory.frames.items())
    with pytest.raises(NotMappedError) as info:
        t.set_attributes(M2 - K4, 2 * K4, MemAttr.XP)
    assert info.value.address == M2
    with pytest.raises(PagingError):
        t.set_attributes(0x800, K4, MemAttr.XP)
    with pytest.raises(PagingError):
        t.set_attributes(0, 0, MemAttr.XP)
    with pytest.raises(PagingError):
        t.set_attributes(0, K4, MemAttr(0x8))  # not an access attribute
    with pytest.raises(PagingError):
        t.map(0, 0, K4, Attributes(raw=x.P))  # P is not a raw bit
    assert {k: bytes(v) for k, v in t.memory.frames.items()} == before


def test_unmap_splits_and_keeps_neighbours() -> None:
    t = X64PageTable()
    t.map(0, 0, G1)
    t.unmap(M2 + K4, K4)
    assert t.translate(M2 + K4) is None
    assert t.translate(M2) == M2 and t.translate(M2 + 2 * K4) == M2 + 2 * K4
    assert t.translate(4 * M2) == 4 * M2
    t.unmap(0, G1)
    assert list(t.ranges()) == []


def test_canonical_upper_half() -> None:
    t = X64PageTable()
    t.map(0xFFFF_8000_0000_0000, 0x20_0000, K4)
    assert t.translate(0xFFFF_8000_0000_0010) == 0x20_0010
    assert t.walk(0xFFFF_8000_0000_0000).steps[0].index == 256
    with pytest.raises(PagingError):
        t.walk(0x0001_0000_0000_0000)


def test_cost_grows_with_ranges_not_memory_size() -> None:
    small, big = X64PageTable(), X64PageTable()
    small.map(0, 0, 4 * G1)
    big.map(0, 0, 1 << 40)
    for t in (small, big):
        t.set_attributes(0x10_0000, 0x3000, MemAttr.XP)
        t.set_attributes(3 * G1 + K4, K4, MemAttr.RO)
    assert small.table_count == 6  # PML4, PDPT, 2 PDs, 2 PTs
    assert big.table_count == 7  # + the second PDPT of the 1 TiB map
    assert len(list(big.ranges())) == 5


# -- 5-level paging (CR4.LA57, SDM Vol. 3A §4.5: a PML5 above the PML4, 57-bit addresses) --


def test_la57_walk_has_a_pml5_and_57_bit_addresses() -> None:
    t = X64PageTable(la57=True)
    high = 1 << 50  # beyond 4-level's 48-bit space
    t.map(high, 0x4000_0000, G1)
    walk = t.walk(high)
    assert [s.name for s in walk.steps] == ["PML5E", "PML4E", "PDPTE"]
    assert [s.level for s in walk.steps] == [-1, 0, 1]
    # PML5 index = bits 56:48, PML4 index = bits 47:39 (both 4 here: bit 50 -> 4 << 46)
    assert walk.steps[0].index == (high >> 48) & 511 == 4
    assert walk.steps[1].index == 0
    # table entries are R/W|P pointing at the next table; the leaf is a 1 GiB page
    assert walk.steps[0].entry == (POOL + K4) | x.RW | x.P
    assert walk.steps[2].entry & x.PS and walk.pa == 0x4000_0000
    assert t.translate(high + 0x1234) == 0x4000_1234
    assert t.cr3 == t.root == POOL


def test_la57_canonical_addresses_and_limits() -> None:
    t = X64PageTable(la57=True)
    top = (1 << 64) - (1 << 56)  # lowest upper-half canonical 57-bit address
    t.map(((1 << 57) - (1 << 56)), 0, M2)
    assert t.translate(top) == 0  # sign-extended form indexes bits 56:0
    with pytest.raises(PagingError, match="canonical 57-bit"):
        t.walk(1 << 60)
    with pytest.raises(PagingError, match="57-bit address space"):
        t.map((1 << 57) - K4, 0, 2 * K4)
    four = X64PageTable()
    with pytest.raises(PagingError, match="canonical 48-bit"):
        four.walk(1 << 50)


def test_la57_splits_faults_and_ranges_match_4_level() -> None:
    """The same edits give the same leaves, permissions and fault codes on both."""
    results = []
    for la57 in (False, True):
        t = X64PageTable(la57=la57)
        t.map(0, 0, 4 * G1)
        t.assign_attributes(0, 4 * G1, MemAttr.XP)
        t.set_attributes(0x1234_5000, 3 * K4, MemAttr.RO)
        t.clear_attributes(0x1234_5000, K4, MemAttr.XP)
        fetch = t.access(0x1234_6000, F)
        write = t.access(0x1234_5000, W)
        assert isinstance(fetch, PageFault) and isinstance(write, PageFault)
        results.append((
            [(r.start, r.end, str(r.permissions)) for r in t.ranges()],
            fetch.error_code, write.error_code, t.table_count - (1 if la57 else 0),
        ))
    assert results[0] == results[1]
    assert results[0][1:3] == (0x11, 0x03)


def test_la57_reserved_ps_in_pml5e() -> None:
    t = X64PageTable(la57=True)
    t.map(0, 0, G1)
    t.memory.write_u64(t.root, t.memory.read_u64(t.root) | x.PS)
    fault = t.access(0, R)
    assert isinstance(fault, PageFault) and fault.reason == "reserved"
    assert fault.level == -1 and fault.error_code == 0x09  # RSVD | P
