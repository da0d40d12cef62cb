"""The UEFI memory map: typed, page-granular descriptors and edk2's top-down page allocator.

Descriptors never overlap and are kept sorted and merged (adjacent ranges of one type are one
descriptor, as GetMemoryMap reports them). Cost is linear in the number of descriptors, never
in the amount of memory.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from fwtools._base.record import Record
from fwtools.errors import UsageError
from fwtools.uefi.memtypes import MemoryType

PAGE: int = 0x1000


class AllocationError(UsageError):
    """AllocatePages/FreePages failed (EFI_OUT_OF_RESOURCES, EFI_NOT_FOUND)."""

    def __init__(self, message: str, *, status: str) -> None:
        super().__init__(message)
        self.status = status


class Descriptor(Record):
    start: int
    end: int
    type: MemoryType

    @property
    def pages(self) -> int:
        return (self.end - self.start) // PAGE


def pages_for(size: int) -> int:
    """EFI_SIZE_TO_PAGES."""
    return (size + PAGE - 1) // PAGE


class MemoryMap:
    def __init__(self) -> None:
        self._starts: list[int] = []
        self._descs: list[Descriptor] = []

    def __iter__(self) -> Iterator[Descriptor]:
        return iter(self._descs)

    def __len__(self) -> int:
        return len(self._descs)

    def add(self, start: int, end: int, memory_type: MemoryType) -> None:
        """Describe [start, end) (must not overlap anything described)."""
        self._check(start, end)
        i = bisect.bisect_left(self._starts, start)
        if (i > 0 and self._descs[i - 1].end > start) or (
            i < len(self._descs) and self._descs[i].start < end
        ):
            raise UsageError(f"memory map: [{start:#x}, {end:#x}) overlaps a descriptor")
        self._descs.insert(i, Descriptor(start, end, memory_type))
        self._starts.insert(i, start)
        self._merge_around(i)

    def type_at(self, address: int) -> MemoryType | None:
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and self._descs[i].start <= address < self._descs[i].end:
            return self._descs[i].type
        return None

    def pieces(self, start: int, end: int) -> list[Descriptor]:
        """The parts of [start, end) that descriptors cover, clipped, in order."""
        i = max(0, bisect.bisect_right(self._starts, start) - 1)
        out: list[Descriptor] = []
        while i < len(self._descs) and self._descs[i].start < end:
            d = self._descs[i]
            lo, hi = max(d.start, start), min(d.end, end)
            if lo < hi:
                out.append(Descriptor(lo, hi, d.type))
            i += 1
        return out

    def convert(self, start: int, end: int, new: MemoryType) -> list[Descriptor]:
        """Retype [start, end), which descriptors must cover entirely; returns the old pieces."""
        self._check(start, end)
        old = self.pieces(start, end)
        covered = sum(p.end - p.start for p in old)
        if covered != end - start:
            raise AllocationError(
                f"[{start:#x}, {end:#x}) is not entirely in the memory map", status="NOT_FOUND"
            )
        i = bisect.bisect_right(self._starts, start) - 1
        j = bisect.bisect_left(self._starts, end)
        first, last = self._descs[i], self._descs[j - 1]
        repl: list[Descriptor] = []
        if first.start < start:
            repl.append(Descriptor(first.start, start, first.type))
        repl.append(Descriptor(start, end, new))
        if last.end > end:
            repl.append(Descriptor(end, last.end, last.type))
        self._descs[i:j] = repl
        self._starts[i:j] = [d.start for d in repl]
        self._merge_around(i + len(repl) - 1)
        self._merge_around(i)
        return old

    def allocate(
        self,
        memory_type: MemoryType,
        pages: int,
        *,
        align: int = PAGE,
        below: int | None = None,
    ) -> int:
        """AllocateAnyPages / AllocateMaxAddress: the highest free range that fits, as edk2's
        ``CoreFindFreePages`` searches top down. Returns the base address."""
        if pages <= 0:
            raise AllocationError("AllocatePages of 0 pages", status="INVALID_PARAMETER")
        size = pages * PAGE
        align = max(align, PAGE)
        for d in reversed(self._descs):
            if d.type is not MemoryType.CONVENTIONAL:
                continue
            top = d.end if below is None else min(d.end, below)
            base = (top - size) & ~(align - 1)
            if base >= d.start and base + size <= top:
                self.convert(base, base + size, memory_type)
                return base
        raise AllocationError(
            f"no free range of {pages} pages for {memory_type.efi_name}", status="OUT_OF_RESOURCES"
        )

    def allocate_at(self, address: int, pages: int, memory_type: MemoryType) -> int:
        """AllocateAddress: [address, +pages) must be free."""
        end = address + pages * PAGE
        parts = self.pieces(address, end)
        if sum(p.end - p.start for p in parts) != end - address or any(
            p.type is not MemoryType.CONVENTIONAL for p in parts
        ):
            raise AllocationError(f"{address:#x} (+{pages} pages) is not free", status="NOT_FOUND")
        self.convert(address, end, memory_type)
        return address

    def free(self, address: int, pages: int) -> MemoryType:
        """FreePages: the range must be allocated memory of one type; returns that type."""
        end = address + pages * PAGE
        if address & (PAGE - 1):
            raise AllocationError(f"FreePages({address:#x}) is not page aligned",
                                  status="INVALID_PARAMETER")
        parts = self.pieces(address, end)
        types = {p.type for p in parts}
        if (
            sum(p.end - p.start for p in parts) != end - address
            or len(types) != 1
            or MemoryType.CONVENTIONAL in types
        ):
            raise AllocationError(
                f"FreePages({address:#x}, {pages}) does not match an allocation", status="NOT_FOUND"
            )
        self.convert(address, end, MemoryType.CONVENTIONAL)
        return types.pop()

    def total(self, memory_type: MemoryType) -> int:
        return sum(d.end - d.start for d in self._descs if d.type is memory_type)

    @staticmethod
    def _check(start: int, end: int) -> None:
        if start & (PAGE - 1) or end & (PAGE - 1) or end <= start:
            raise UsageError(f"memory map: [{start:#x}, {end:#x}) is not a page-aligned range")

    def _merge_around(self, i: int) -> None:
        """Merge descriptor i with equal-typed neighbours."""
        d = self._descs
        if not 0 <= i < len(d):
            return
        if i + 1 < len(d) and d[i].end == d[i + 1].start and d[i].type is d[i + 1].type:
            d[i : i + 2] = [Descriptor(d[i].start, d[i + 1].end, d[i].type)]
            del self._starts[i + 1]
        if i > 0 and d[i - 1].end == d[i].start and d[i - 1].type is d[i].type:
            d[i - 1 : i + 1] = [Descriptor(d[i - 1].start, d[i].end, d[i].type)]
            del self._starts[i]
