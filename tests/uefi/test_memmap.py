"""fwtools.uefi.memmap: the typed page map and edk2's top-down allocator.

Allocation order follows edk2 ``CoreFindFreePages`` (highest free range first,
docs/reference/wx-model.md §3
names the Page.c functions the model reproduces); status names are the EFI_STATUS codes of
UEFI 2.10 §7.2 (AllocatePages / FreePages).
"""

from __future__ import annotations

import itertools

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from fwtools.errors import UsageError
from fwtools.uefi.memmap import PAGE, AllocationError, Descriptor, MemoryMap, pages_for
from fwtools.uefi.memtypes import MemoryType

CONV = MemoryType.CONVENTIONAL
LC = MemoryType.LOADER_CODE
LD = MemoryType.LOADER_DATA
BSD = MemoryType.BOOT_SERVICES_DATA
MMIO = MemoryType.MMIO
MIB = 1 << 20


def fresh(size: int = 16 * MIB, base: int = 0x100000) -> MemoryMap:
    m = MemoryMap()
    m.add(base, base + size, CONV)
    return m


def descs(m: MemoryMap) -> list[tuple[int, int, MemoryType]]:
    return [(d.start, d.end, d.type) for d in m]


def status_of(excinfo: pytest.ExceptionInfo[AllocationError]) -> str:
    return excinfo.value.status


# ---- add / type_at / pieces ------------------------------------------------------------


def test_add_keeps_descriptors_sorted_and_merges_equal_neighbours() -> None:
    m = MemoryMap()
    m.add(0x3000, 0x5000, CONV)
    m.add(0x0000, 0x1000, CONV)
    m.add(0x1000, 0x3000, CONV)  # touches both: one descriptor
    assert descs(m) == [(0, 0x5000, CONV)]
    m.add(0x5000, 0x6000, MMIO)  # different type: no merge
    m.add(0x8000, 0x9000, CONV)  # gap: no merge
    assert descs(m) == [(0, 0x5000, CONV), (0x5000, 0x6000, MMIO), (0x8000, 0x9000, CONV)]
    assert len(m) == 3


@pytest.mark.parametrize(("start", "end"), [(0x1000, 0x3000), (0x3000, 0x5000), (0x2000, 0x4000),
                                            (0x0, 0x8000)])
def test_add_refuses_overlap(start: int, end: int) -> None:
    m = MemoryMap()
    m.add(0x2000, 0x4000, CONV)
    with pytest.raises(UsageError, match="overlaps"):
        m.add(start, end, LD)


@pytest.mark.parametrize(("start", "end"), [(0x800, 0x2000), (0x1000, 0x1800), (0x2000, 0x2000),
                                            (0x3000, 0x2000)])
def test_add_refuses_unaligned_or_empty_ranges(start: int, end: int) -> None:
    with pytest.raises(UsageError, match="page-aligned"):
        MemoryMap().add(start, end, CONV)


def test_type_at_and_pieces() -> None:
    m = MemoryMap()
    m.add(0x1000, 0x3000, CONV)
    m.add(0x5000, 0x6000, MMIO)
    assert m.type_at(0x1000) is CONV
    assert m.type_at(0x2FFF) is CONV
    assert m.type_at(0x3000) is None
    assert m.type_at(0x0) is None
    assert m.type_at(0x5800) is MMIO
    assert m.pieces(0x2000, 0x5800) == [Descriptor(0x2000, 0x3000, CONV),
                                        Descriptor(0x5000, 0x5800, MMIO)]
    assert m.pieces(0x3000, 0x5000) == []


def test_pages_for_rounds_up() -> None:
    assert [pages_for(n) for n in (0, 1, PAGE, PAGE + 1, 3 * PAGE)] == [0, 1, 1, 2, 3]
    assert Descriptor(0x1000, 0x4000, CONV).pages == 3


# ---- convert -------------------------------------------------------------------------


def test_convert_splits_and_returns_old_pieces() -> None:
    m = fresh(0x10000, base=0)
    old = m.convert(0x4000, 0x6000, LD)
    assert old == [Descriptor(0x4000, 0x6000, CONV)]
    assert descs(m) == [(0, 0x4000, CONV), (0x4000, 0x6000, LD), (0x6000, 0x10000, CONV)]


def test_convert_merges_with_equal_typed_neighbours_on_both_sides() -> None:
    m = fresh(0x10000, base=0)
    m.convert(0x2000, 0x3000, LD)
    m.convert(0x4000, 0x5000, LD)
    assert len(m) == 5
    old = m.convert(0x3000, 0x4000, LD)  # the gap between two LoaderData runs
    assert old == [Descriptor(0x3000, 0x4000, CONV)]
    assert descs(m) == [(0, 0x2000, CONV), (0x2000, 0x5000, LD), (0x5000, 0x10000, CONV)]
    m.convert(0x2000, 0x5000, CONV)  # back to free: everything is one descriptor again
    assert descs(m) == [(0, 0x10000, CONV)]


def test_convert_across_several_descriptors() -> None:
    m = fresh(0x10000, base=0)
    m.convert(0x2000, 0x3000, LD)
    m.convert(0x3000, 0x4000, LC)
    old = m.convert(0x1000, 0x5000, BSD)
    assert old == [Descriptor(0x1000, 0x2000, CONV), Descriptor(0x2000, 0x3000, LD),
                   Descriptor(0x3000, 0x4000, LC), Descriptor(0x4000, 0x5000, CONV)]
    assert descs(m) == [(0, 0x1000, CONV), (0x1000, 0x5000, BSD), (0x5000, 0x10000, CONV)]


def test_convert_outside_the_map_is_not_found_and_changes_nothing() -> None:
    m = MemoryMap()
    m.add(0x0, 0x2000, CONV)
    m.add(0x3000, 0x4000, CONV)
    before = descs(m)
    with pytest.raises(AllocationError) as e:
        m.convert(0x1000, 0x4000, LD)  # the hole at 0x2000 is not described
    assert status_of(e) == "NOT_FOUND"
    assert descs(m) == before


# ---- allocate ------------------------------------------------------------------------


def test_allocate_is_top_down() -> None:
    m = fresh(0x10000, base=0)
    a = m.allocate(LD, 2)
    b = m.allocate(LC, 1)
    assert a == 0xE000  # the highest two pages
    assert b == 0xD000  # directly below
    assert descs(m) == [(0, 0xD000, CONV), (0xD000, 0xE000, LC), (0xE000, 0x10000, LD)]


def test_allocate_takes_the_highest_descriptor_that_fits() -> None:
    m = MemoryMap()
    m.add(0x0, 0x8000, CONV)
    m.add(0x8000, 0x9000, MMIO)
    m.add(0x9000, 0xA000, CONV)  # a one-page hole on top
    assert m.allocate(LD, 2) == 0x6000  # does not fit above MMIO: next range down
    assert m.allocate(LD, 1) == 0x9000  # fits the top hole


def test_allocate_alignment_rounds_the_base_down() -> None:
    m = fresh(0x100000, base=0x100000)  # [1 MiB, 2 MiB)
    base = m.allocate(LC, 3, align=0x10000)
    assert base % 0x10000 == 0
    assert base == 0x1F0000  # highest 64 KiB-aligned base with 3 pages below 2 MiB
    # the pages above the aligned block stay free
    assert m.type_at(0x1F3000) is CONV
    # an alignment below a page is a page
    assert m.allocate(LD, 1, align=16) == 0x1FF000


def test_allocate_below_limits_the_top() -> None:
    m = fresh(0x100000, base=0x100000)
    base = m.allocate(LD, 4, below=0x180000)
    assert base == 0x17C000
    assert base + 4 * PAGE <= 0x180000
    with pytest.raises(AllocationError) as e:
        m.allocate(LD, 1, below=0x100000)  # nothing free below the map
    assert status_of(e) == "OUT_OF_RESOURCES"


def test_allocate_errors() -> None:
    m = fresh(0x4000, base=0)
    with pytest.raises(AllocationError) as e:
        m.allocate(LD, 0)
    assert status_of(e) == "INVALID_PARAMETER"
    with pytest.raises(AllocationError) as e:
        m.allocate(LD, 5)
    assert status_of(e) == "OUT_OF_RESOURCES"
    assert descs(m) == [(0, 0x4000, CONV)]


def test_allocate_never_uses_non_free_memory() -> None:
    m = MemoryMap()
    m.add(0x0, 0x4000, MMIO)
    m.add(0x4000, 0x5000, LD)
    with pytest.raises(AllocationError):
        m.allocate(LD, 1)


# ---- allocate_at -----------------------------------------------------------------------


def test_allocate_at() -> None:
    m = fresh(0x10000, base=0)
    assert m.allocate_at(0x3000, 2, LD) == 0x3000
    assert descs(m) == [(0, 0x3000, CONV), (0x3000, 0x5000, LD), (0x5000, 0x10000, CONV)]


@pytest.mark.parametrize(("address", "pages"),
                         [(0x4000, 1), (0x3000, 2), (0xF000, 2), (0x20000, 1)])
def test_allocate_at_not_free_is_not_found(address: int, pages: int) -> None:
    m = fresh(0x10000, base=0)
    m.allocate_at(0x4000, 1, LD)
    before = descs(m)
    with pytest.raises(AllocationError) as e:
        m.allocate_at(address, pages, LC)  # allocated, overlapping, past the end, unmapped
    assert status_of(e) == "NOT_FOUND"
    assert descs(m) == before


# ---- free ----------------------------------------------------------------------------


def test_free_returns_the_type_and_merges_back() -> None:
    m = fresh(0x10000, base=0)
    a = m.allocate(LC, 3)
    assert m.free(a, 3) is LC
    assert descs(m) == [(0, 0x10000, CONV)]
    assert m.total(CONV) == 0x10000


def test_free_part_of_an_allocation() -> None:
    # CoreFreePages converts whatever allocated range it is given; a sub-range is fine
    m = fresh(0x10000, base=0)
    a = m.allocate(LD, 4)
    assert m.free(a + PAGE, 2) is LD
    assert descs(m) == [(0, a, CONV), (a, a + PAGE, LD), (a + PAGE, a + 3 * PAGE, CONV),
                        (a + 3 * PAGE, a + 4 * PAGE, LD)]


def test_free_unaligned_is_invalid_parameter() -> None:
    m = fresh(0x10000, base=0)
    a = m.allocate(LD, 1)
    with pytest.raises(AllocationError) as e:
        m.free(a + 0x10, 1)
    assert status_of(e) == "INVALID_PARAMETER"
    assert m.type_at(a) is LD


def test_free_errors_are_not_found() -> None:
    m = MemoryMap()
    m.add(0x0, 0x10000, CONV)
    m.add(0x20000, 0x30000, CONV)
    code = m.allocate(LC, 1)  # 0x2f000
    data = m.allocate(LD, 1)  # 0x2e000
    assert (code, data) == (0x2F000, 0x2E000)
    before = descs(m)
    cases = [
        (0x1000, 1),  # unallocated (free memory)
        (data - PAGE, 2),  # partly free, partly allocated
        (data, 2),  # spans LoaderData and LoaderCode: two allocations of different types
        (0x10000, 1),  # not in the memory map at all
        (code, 2),  # runs past the end of the map
    ]
    for address, pages in cases:
        with pytest.raises(AllocationError) as e:
            m.free(address, pages)
        assert status_of(e) == "NOT_FOUND", (hex(address), pages)
        assert descs(m) == before


def test_allocation_error_is_a_usage_error() -> None:
    assert issubclass(AllocationError, UsageError)


def test_total() -> None:
    m = fresh(0x10000, base=0)
    m.allocate(LD, 2)
    m.allocate(LC, 3)
    assert (m.total(LD), m.total(LC), m.total(CONV)) == (0x2000, 0x3000, 0xB000)


# ---- property: against a per-page dict -----------------------------------------------

WINDOW_PAGES = 64
TYPES = [LC, LD, BSD, MemoryType.RUNTIME_SERVICES_DATA]


class PageModel:
    """One entry per page: its type, or absent when not described."""

    def __init__(self, ranges: list[tuple[int, int, MemoryType]]) -> None:
        self.pages: dict[int, MemoryType] = {}
        for start, end, t in ranges:
            for p in range(start // PAGE, end // PAGE):
                self.pages[p] = t

    def allocate(self, t: MemoryType, n: int, align: int, below: int | None) -> int | None:
        top = max(self.pages) + 1
        if below is not None:
            top = min(top, below // PAGE)
        step = max(align, PAGE) // PAGE
        base = ((top - n) // step) * step
        while base >= 0:
            if all(self.pages.get(p) is CONV for p in range(base, base + n)):
                for p in range(base, base + n):
                    self.pages[p] = t
                return base * PAGE
            base -= step
        return None

    def allocate_at(self, address: int, n: int, t: MemoryType) -> bool:
        first = address // PAGE
        if not all(self.pages.get(p) is CONV for p in range(first, first + n)):
            return False
        for p in range(first, first + n):
            self.pages[p] = t
        return True

    def free(self, address: int, n: int) -> MemoryType | None:
        first = address // PAGE
        types = {self.pages.get(p) for p in range(first, first + n)}
        if len(types) != 1 or None in types or CONV in types:
            return None
        for p in range(first, first + n):
            self.pages[p] = CONV
        return types.pop()

    def convert(self, address: int, n: int, t: MemoryType) -> bool:
        first = address // PAGE
        if any(p not in self.pages for p in range(first, first + n)):
            return False
        for p in range(first, first + n):
            self.pages[p] = t
        return True


ops = st.lists(
    st.one_of(
        st.tuples(st.just("allocate"), st.sampled_from(TYPES), st.integers(1, 8),
                  st.sampled_from([PAGE, 2 * PAGE, 4 * PAGE, 16 * PAGE]),
                  st.one_of(st.none(), st.integers(1, WINDOW_PAGES).map(lambda p: p * PAGE))),
        st.tuples(st.just("allocate_at"), st.sampled_from(TYPES), st.integers(0, WINDOW_PAGES),
                  st.integers(1, 6)),
        st.tuples(st.just("free"), st.integers(0, WINDOW_PAGES), st.integers(1, 6)),
        st.tuples(st.just("convert"), st.sampled_from([*TYPES, CONV]),
                  st.integers(0, WINDOW_PAGES), st.integers(1, 6)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_memory_map_agrees_with_a_per_page_model(sequence: list[tuple]) -> None:
    # a window with a hole (pages 40..43 undescribed) and an MMIO range on top
    layout = [(0, 40 * PAGE, CONV), (44 * PAGE, 60 * PAGE, CONV), (60 * PAGE, 64 * PAGE, MMIO)]
    m = MemoryMap()
    for start, end, t in layout:
        m.add(start, end, t)
    ref = PageModel(layout)
    for op in sequence:
        if op[0] == "allocate":
            _, t, n, align, below = op
            want = ref.allocate(t, n, align, below)
            try:
                got: int | None = m.allocate(t, n, align=align, below=below)
            except AllocationError as exc:
                assert exc.status == "OUT_OF_RESOURCES"
                got = None
            assert got == want, op
        elif op[0] == "allocate_at":
            _, t, page, n = op
            ok = ref.allocate_at(page * PAGE, n, t)
            try:
                m.allocate_at(page * PAGE, n, t)
                assert ok, op
            except AllocationError as exc:
                assert not ok and exc.status == "NOT_FOUND", op
        elif op[0] == "free":
            _, page, n = op
            want_t = ref.free(page * PAGE, n)
            try:
                assert m.free(page * PAGE, n) is want_t and want_t is not None, op
            except AllocationError as exc:
                assert want_t is None and exc.status == "NOT_FOUND", op
        else:
            _, t, page, n = op
            ok = ref.convert(page * PAGE, n, t)
            try:
                m.convert(page * PAGE, (page + n) * PAGE, t)
                assert ok, op
            except AllocationError:
                assert not ok, op
        # invariants: sorted, disjoint, merged, and page-for-page equal to the model
        ds = list(m)
        for a, b in itertools.pairwise(ds):
            assert a.end <= b.start
            assert not (a.end == b.start and a.type is b.type), (a, b)
        assert all(d.start < d.end for d in ds)
        seen = {p: d.type for d in ds for p in range(d.start // PAGE, d.end // PAGE)}
        assert seen == ref.pages
        for p in (0, 39, 40, 44, 63):
            assert m.type_at(p * PAGE) is ref.pages.get(p)
