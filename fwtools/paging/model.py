"""The architecture-neutral page-table model: attributes, walks, faults and the table engine.

Both supported formats are 4-level radix trees of 512 eight-byte entries per 4 KiB table
(x86-64 4-level paging, Intel SDM Vol. 3A §4.5; AArch64 stage 1 with the 4 KiB granule and a
48-bit VA, Arm ARM D8.2 "Translation table walk"). Level numbers follow the Arm convention
(0 = top: PML4 / level 0; 3 = last: PT / level 3); leaf sizes are 1 GiB at level 1, 2 MiB at
level 2 and 4 KiB at level 3.

:class:`PageTable` holds the tables as real bytes in a :class:`PhysicalMemory` of 4 KiB frames
and implements, once for both architectures, the operations edk2 performs on them:

* ``map`` builds mappings with the largest leaf that fits (DxeIpl
  ``CreateIdentityMappingPageTables``, ArmMmuLib ``UpdateRegionMappingRecursive``);
* ``set_attributes`` / ``clear_attributes`` / ``assign_attributes`` edit leaves, splitting a
  leaf that the range covers only partially into 512 leaves of the next level, one level at a
  time (1 GiB -> 2 MiB -> 4 KiB), never merging back (x86 ``CpuPageTable.c ::
  ConvertMemoryPageAttributes/SplitPage``; ArmMmuLib ``UpdateRegionMappingRecursive``);
* ``walk`` / ``translate`` / ``access`` walk the bytes like the MMU; the architecture subclass
  decides the fault (x86 #PF error code, AArch64 ESR EC/FSC);
* ``ranges`` flattens the leaves into coalesced ranges (Project Mu ``FlatPageTableLib``, the
  paging audit's page-table flattening).

The architecture-specific entry encodings live in :mod:`fwtools.paging.x86_64` and
:mod:`fwtools.paging.aarch64`.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, Final

from fwtools._base.record import Record, replace
from fwtools.errors import UsageError

PAGE_SIZE: Final = 0x1000
ENTRIES_PER_TABLE: Final = 512
LEVELS: Final = 4
#: Bit position of the lowest VA bit indexing each level (9 bits per level). Level numbers
#: are the architectures' own: 0 = PML4 / AArch64 level 0 ... 3 = PT / level 3; x86's
#: 5-level paging (CR4.LA57) adds the PML5 as level -1 above them.
LEVEL_SHIFT: Final = {-1: 48, 0: 39, 1: 30, 2: 21, 3: 12}
#: Size of the region one entry of each level maps.
ENTRY_SPAN: Final = {level: 1 << shift for level, shift in LEVEL_SHIFT.items()}
VA_BITS: Final = 48
VA_LIMIT: Final = 1 << VA_BITS

SIZE_4K: Final = 1 << 12
SIZE_2M: Final = 1 << 21
SIZE_1G: Final = 1 << 30


class PagingError(UsageError):
    """A page-table operation was asked for something the tables cannot do."""


class NotMappedError(PagingError):
    """An attribute change touched addresses that have no mapping.

    x86 CpuDxe answers RETURN_UNSUPPORTED here (``ConvertMemoryPageAttributes`` finds no page
    entry); the simulator refuses the whole request before changing anything.
    """

    def __init__(self, message: str, *, address: int) -> None:
        super().__init__(message)
        self.address = address


class AccessKind(enum.Enum):
    """What the CPU is doing at the address."""

    READ = "read"
    WRITE = "write"
    FETCH = "fetch"


class MemAttr(enum.IntFlag):
    """The UEFI access attributes (UEFI 2.10 §7.2 EFI_MEMORY_DESCRIPTOR.Attribute).

    edk2 maps them onto entries as: RP <-> x86 P=0 / AArch64 AF=0, RO <-> x86 R/W=0 /
    AArch64 AP[2]=1, XP <-> x86 NX=1 / AArch64 UXN|PXN (EL1) or XN (EL2) (docs/reference/wx-model.md
    §5).
    """

    NONE = 0
    RP = 0x0000_0000_0000_2000  # EFI_MEMORY_RP
    XP = 0x0000_0000_0000_4000  # EFI_MEMORY_XP
    RO = 0x0000_0000_0002_0000  # EFI_MEMORY_RO


ACCESS_ATTRS: Final = MemAttr.RP | MemAttr.XP | MemAttr.RO


class Attributes(Record):
    """Attributes of a leaf as software sees them.

    ``present``, ``writable`` and ``executable`` are the access bits edk2 manipulates;
    ``raw`` holds the other architecture bits of the leaf (x86: U/S, PWT, PCD, A, D, G, PAT in
    its 4 KiB-PTE position bit 7, protection key, available bits; AArch64: AttrIndx, NS, AP[1],
    SH, nG, contiguous, software bits) at their hardware bit positions.
    """

    present: bool = True
    writable: bool = True
    executable: bool = True
    raw: int = 0

    @property
    def efi(self) -> MemAttr:
        """The UEFI RP/RO/XP view of these attributes."""
        out = MemAttr.NONE
        if not self.present:
            out |= MemAttr.RP
        if not self.writable:
            out |= MemAttr.RO
        if not self.executable:
            out |= MemAttr.XP
        return out

    @classmethod
    def from_efi(cls, attrs: MemAttr | int, raw: int = 0) -> Attributes:
        """Attributes with RP/RO/XP taken from a UEFI attribute mask."""
        a = MemAttr(int(attrs) & int(ACCESS_ATTRS))
        return cls(
            present=not a & MemAttr.RP,
            writable=not a & MemAttr.RO,
            executable=not a & MemAttr.XP,
            raw=raw,
        )

    def with_efi_set(self, attrs: MemAttr) -> Attributes:
        """Set the named RP/RO/XP bits (EFI_MEMORY_ATTRIBUTE_PROTOCOL.SetMemoryAttributes)."""
        return replace(
            self,
            present=self.present and not attrs & MemAttr.RP,
            writable=self.writable and not attrs & MemAttr.RO,
            executable=self.executable and not attrs & MemAttr.XP,
        )

    def with_efi_cleared(self, attrs: MemAttr) -> Attributes:
        """Clear the named RP/RO/XP bits (EFI_MEMORY_ATTRIBUTE_PROTOCOL.ClearMemoryAttributes)."""
        return replace(
            self,
            present=self.present or bool(attrs & MemAttr.RP),
            writable=self.writable or bool(attrs & MemAttr.RO),
            executable=self.executable or bool(attrs & MemAttr.XP),
        )

    def with_efi_assigned(self, attrs: MemAttr) -> Attributes:
        """Replace all access bits (CPU arch protocol SetMemoryAttributes, assign semantics)."""
        return replace(
            self,
            present=not attrs & MemAttr.RP,
            writable=not attrs & MemAttr.RO,
            executable=not attrs & MemAttr.XP,
        )


class Permissions(Record):
    """Effective permissions: which supervisor accesses succeed (computed by the MMU walk)."""

    read: bool
    write: bool
    execute: bool

    def __str__(self) -> str:
        return (
            ("r" if self.read else "-")
            + ("w" if self.write else "-")
            + ("x" if self.execute else "-")
        )

    @property
    def rwx(self) -> bool:
        """Readable, writable and executable at once (the Mu paging audit's RW+X)."""
        return self.read and self.write and self.execute


class EntryKind(enum.Enum):
    """How the walker interprets an entry at its level."""

    INVALID = "invalid"
    TABLE = "table"
    LEAF = "leaf"


class WalkStep(Record):
    """One entry read by the walker."""

    level: int
    name: str  # e.g. "PML4E", "PDE", "L2 block"
    index: int
    entry_address: int  # physical address of the 8-byte entry
    entry: int  # the raw 64-bit value
    kind: EntryKind


class Walk(Record):
    """The entry chain for one virtual address."""

    va: int
    steps: tuple[WalkStep, ...]
    leaf_pa: int | None  # output address of the leaf (block base), if any
    leaf_attributes: Attributes | None

    @property
    def leaf(self) -> WalkStep | None:
        """The final entry if it is a leaf (present or a retained not-present leaf)."""
        last = self.steps[-1]
        return last if last.kind is EntryKind.LEAF else None

    @property
    def page_size(self) -> int | None:
        """Size of the leaf's page or block."""
        leaf = self.leaf
        return ENTRY_SPAN[leaf.level] if leaf is not None else None

    @property
    def pa(self) -> int | None:
        """Physical address the VA maps to (ignoring permissions and presence)."""
        size = self.page_size
        if self.leaf_pa is None or size is None:
            return None
        return self.leaf_pa + (self.va & (size - 1))


class Ok(Record):
    """The access succeeded and reached this physical address."""

    pa: int


class Fault(Record, ABC):
    """The access faulted; subclasses carry the architectural fault code."""

    va: int
    kind: AccessKind
    level: int  # level of the entry that caused the fault
    reason: str  # "not-present", "reserved", "translation", "access-flag", "permission"

    @abstractmethod
    def describe(self) -> str:
        """The fault as firmware would print it, e.g. ``#PF error 0x11``."""

    @abstractmethod
    def report(self) -> tuple[str, int, str]:
        """The fault as the replay reports it: :meth:`describe` with the architecture's
        registers, the architectural code (the #PF error code, ESR) and a short summary."""

    def __str__(self) -> str:
        return self.describe()


AccessResult = Ok | Fault


class MappedRange(Record):
    """A run of leaves with the same attributes and effective permissions ([start, end))."""

    start: int
    end: int
    pa: int  # physical address of start
    attributes: Attributes
    permissions: Permissions
    page_sizes: frozenset[int]

    @property
    def size(self) -> int:
        """Length in bytes."""
        return self.end - self.start


class PhysicalMemory:
    """Simulated physical memory: a sparse dict of 4 KiB frames of bytes (zero if absent)."""

    def __init__(self) -> None:
        self.frames: dict[int, bytearray] = {}

    def _frame(self, pa: int) -> bytearray:
        base = pa & ~(PAGE_SIZE - 1)
        frame = self.frames.get(base)
        if frame is None:
            frame = bytearray(PAGE_SIZE)
            self.frames[base] = frame
        return frame

    def read_u64(self, pa: int) -> int:
        """Read a little-endian 64-bit value (both architectures read tables little-endian)."""
        if pa & 7:
            raise PagingError(f"unaligned 64-bit read at {pa:#x}")
        frame = self.frames.get(pa & ~(PAGE_SIZE - 1))
        if frame is None:
            return 0
        off = pa & (PAGE_SIZE - 1)
        return int.from_bytes(frame[off : off + 8], "little")

    def write_u64(self, pa: int, value: int) -> None:
        """Write a little-endian 64-bit value."""
        if pa & 7:
            raise PagingError(f"unaligned 64-bit write at {pa:#x}")
        off = pa & (PAGE_SIZE - 1)
        self._frame(pa)[off : off + 8] = (value & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "little")

    def zero_frame(self, pa: int) -> None:
        """Make the frame at ``pa`` all zero bytes."""
        self.frames[pa & ~(PAGE_SIZE - 1)] = bytearray(PAGE_SIZE)


DEFAULT_TABLE_POOL: Final = 0x0000_7F00_0000_0000


def _check_range(start: int, length: int, what: str, va_bits: int = VA_BITS) -> None:
    if length <= 0:
        raise PagingError(f"{what}: length must be positive, got {length:#x}")
    if start & (PAGE_SIZE - 1) or length & (PAGE_SIZE - 1):
        raise PagingError(f"{what}: {start:#x}+{length:#x} is not 4 KiB aligned")
    if start < 0 or start + length > 1 << va_bits:
        raise PagingError(
            f"{what}: {start:#x}+{length:#x} is outside the {va_bits}-bit address space")


Update = Callable[[Attributes], Attributes]


#: One table entry met by :meth:`PageTable._edit`: the table and position it is at, its
#: level, the VA its span starts at, whether the edited range covers that span whole, and the
#: entry with its kind. A plain tuple: one is made for every entry an edit visits, and each
#: visit unpacks it (a NamedTuple class would cost a third of a millisecond to define).
_Slot = tuple[int, int, int, int, bool, int, EntryKind]


class PageTable(ABC):
    """A 4-level page table in simulated physical memory (arch-neutral engine).

    Subclasses define the entry encodings and the access check; everything that edits the
    tree (map, split, attribute updates, unmap) is here and behaves the same for both
    architectures except where edk2 differs (``SKIP_UNCHANGED_BLOCKS``).
    """

    ARCH: ClassVar[str]
    #: The level of the root table (x86 with 5-level paging: -1, the PML5).
    top_level: int = 0
    #: Width of the virtual address space the tables translate.
    va_bits: int = VA_BITS
    #: ArmMmuLib leaves a block unsplit when it already has the requested attributes;
    #: x86 CpuDxe splits regardless.
    SKIP_UNCHANGED_BLOCKS: ClassVar[bool] = False

    def __init__(
        self,
        *,
        memory: PhysicalMemory | None = None,
        table_pool: int = DEFAULT_TABLE_POOL,
    ) -> None:
        self.memory = memory if memory is not None else PhysicalMemory()
        if table_pool & (PAGE_SIZE - 1):
            raise PagingError(f"table pool {table_pool:#x} is not 4 KiB aligned")
        self._next_table = table_pool
        self.table_pages: list[int] = []
        self.root = self._alloc_table()

    # ---- architecture hooks -------------------------------------------------------------

    @property
    def nx_enforced(self) -> bool:
        """Whether the MMU honours no-execute bits (x86 only with EFER.NXE)."""
        return True

    @property
    @abstractmethod
    def leaf_levels(self) -> frozenset[int]:
        """Levels at which a leaf (page or block) may be created."""

    @abstractmethod
    def level_name(self, level: int, kind: EntryKind) -> str:
        """Human name of an entry at ``level`` (e.g. ``PDE`` or ``L2 block``)."""

    @abstractmethod
    def classify(self, entry: int, level: int) -> EntryKind:
        """How software (edk2) interprets ``entry`` at ``level``."""

    @abstractmethod
    def table_address(self, entry: int) -> int:
        """Physical address of the next-level table a table entry points to."""

    @abstractmethod
    def leaf_address(self, entry: int, level: int) -> int:
        """Output address (page or block base) of a leaf entry."""

    @abstractmethod
    def encode_table(self, table_pa: int) -> int:
        """A table entry pointing to ``table_pa``."""

    @abstractmethod
    def encode_leaf(self, level: int, pa: int, attrs: Attributes) -> int:
        """A leaf entry at ``level`` mapping ``pa`` with ``attrs``."""

    @abstractmethod
    def decode_leaf(self, entry: int, level: int) -> Attributes:
        """The attributes a leaf entry encodes."""

    @abstractmethod
    def check(self, walk: Walk, kind: AccessKind) -> Fault | None:
        """The fault the MMU raises for this access on this walk, or None if it succeeds."""

    def normalize(self, attrs: Attributes) -> Attributes:
        """Drop requests the firmware silently ignores (x86: XP without EFER.NXE)."""
        return attrs

    @property
    def va_limit(self) -> int:
        return 1 << self.va_bits

    def canonical(self, va: int) -> int:
        """The table-indexing form of ``va`` (x86 accepts sign-extended addresses)."""
        if not 0 <= va < self.va_limit:
            raise PagingError(
                f"virtual address {va:#x} is outside the {self.va_bits}-bit address space")
        return va

    # ---- memory -------------------------------------------------------------------------

    def _alloc_table(self) -> int:
        pa = self._next_table
        self._next_table += PAGE_SIZE
        self.memory.zero_frame(pa)
        self.table_pages.append(pa)
        return pa

    @property
    def table_count(self) -> int:
        """Number of 4 KiB table pages allocated (the root included)."""
        return len(self.table_pages)

    def _read(self, table: int, index: int) -> int:
        return self.memory.read_u64(table + 8 * index)

    def _write(self, table: int, index: int, value: int) -> None:
        self.memory.write_u64(table + 8 * index, value)

    # ---- walking ------------------------------------------------------------------------

    def walk(self, va: int) -> Walk:
        """Read the entry chain for ``va`` from the root, like the MMU's table walk."""
        va = self.canonical(va)
        steps: list[WalkStep] = []
        table = self.root
        for level in range(self.top_level, LEVELS):
            index = (va >> LEVEL_SHIFT[level]) & (ENTRIES_PER_TABLE - 1)
            entry = self._read(table, index)
            kind = self.classify(entry, level)
            steps.append(
                WalkStep(level, self.level_name(level, kind), index, table + 8 * index, entry, kind)
            )
            if kind is EntryKind.TABLE:
                table = self.table_address(entry)
                continue
            break
        last = steps[-1]
        if last.kind is EntryKind.LEAF:
            return Walk(
                va,
                tuple(steps),
                self.leaf_address(last.entry, last.level),
                self.decode_leaf(last.entry, last.level),
            )
        return Walk(va, tuple(steps), None, None)

    def translate(self, va: int) -> int | None:
        """Physical address for ``va`` if a present leaf maps it, else None."""
        result = self.access(va, AccessKind.READ)
        return result.pa if isinstance(result, Ok) else None

    def access(self, va: int, kind: AccessKind) -> AccessResult:
        """A supervisor access: Ok(physical address) or the architectural fault."""
        walk = self.walk(va)
        fault = self.check(walk, kind)
        if fault is not None:
            return fault
        pa = walk.pa
        assert pa is not None
        return Ok(pa)

    def permissions(self, va: int) -> Permissions:
        """Effective permissions at ``va`` (which of read/write/fetch succeed)."""
        walk = self.walk(va)
        return self._permissions(walk)

    def _permissions(self, walk: Walk) -> Permissions:
        return Permissions(
            read=self.check(walk, AccessKind.READ) is None,
            write=self.check(walk, AccessKind.WRITE) is None,
            execute=self.check(walk, AccessKind.FETCH) is None,
        )

    def get_attributes(self, va: int) -> Attributes | None:
        """Decoded leaf attributes at ``va`` (None when unmapped)."""
        return self.walk(va).leaf_attributes

    # ---- leaf iteration -----------------------------------------------------------------

    def _leaves(self, start: int, end: int) -> Iterator[tuple[int, Walk]]:
        """Leaves intersecting [start, end) in VA order, each with its full walk."""

        def rec(table: int, level: int, base: int, prefix: tuple[WalkStep, ...]) -> Iterator[
            tuple[int, Walk]
        ]:
            span = ENTRY_SPAN[level]
            first = max(0, (start - base) // span)
            last = min(ENTRIES_PER_TABLE - 1, (end - 1 - base) // span)
            for index in range(first, last + 1):
                entry = self._read(table, index)
                kind = self.classify(entry, level)
                if kind is EntryKind.INVALID:
                    continue
                va = base + index * span
                step = WalkStep(
                    level, self.level_name(level, kind), index, table + 8 * index, entry, kind
                )
                if kind is EntryKind.TABLE:
                    yield from rec(self.table_address(entry), level + 1, va, (*prefix, step))
                else:
                    yield va, Walk(
                        va,
                        (*prefix, step),
                        self.leaf_address(entry, level),
                        self.decode_leaf(entry, level),
                    )

        if start < end:
            yield from rec(self.root, self.top_level, 0, ())

    def ranges(
        self, start: int = 0, end: int | None = None, *, physical: bool = False
    ) -> Iterator[MappedRange]:
        """Mapped ranges in [start, end), adjacent leaves merged (Mu paging-audit flattening).

        Leaves merge when they are VA-contiguous and have the same effective permissions and
        the same RP/RO/XP view; with ``physical=True`` they must also be PA-contiguous and
        have identical raw bits. Not-present leaves that edk2 keeps (x86 P=0 with its
        address, AArch64 AF=0) are listed with no effective permission.

        Cost: one table read per entry; the MMU check runs once per distinct chain of
        entry flags (:meth:`flags_key`), not once per 4 KiB page.
        """
        if end is None:
            end = self.va_limit
        if start >= end:
            return
        cache: dict[tuple[tuple[int, int], ...], tuple[Permissions, Attributes]] = {}
        cur: list[Any] | None = None  # MappedRange fields while the run grows

        def rec(table: int, level: int, base: int, prefix: tuple[tuple[int, int, int, int,
                EntryKind], ...], key: tuple[tuple[int, int], ...]) -> Iterator[MappedRange]:
            nonlocal cur
            span = ENTRY_SPAN[level]
            first = max(0, (start - base) // span)
            last = min(ENTRIES_PER_TABLE - 1, (end - 1 - base) // span)
            for index in range(first, last + 1):
                entry = self._read(table, index)
                if not entry:
                    continue
                kind = self.classify(entry, level)
                if kind is EntryKind.INVALID:
                    continue
                va = base + index * span
                raw_step = (level, index, table, entry, kind)
                step_key = (*key, (level, self.flags_key(entry, level, kind)))
                if kind is EntryKind.TABLE:
                    yield from rec(self.table_address(entry), level + 1, va,
                                   (*prefix, raw_step), step_key)
                    continue
                hit = cache.get(step_key)
                leaf_pa = self.leaf_address(entry, level)
                if hit is None:
                    steps = tuple(
                        WalkStep(lv, self.level_name(lv, k), ix, tb + 8 * ix, en, k)
                        for lv, ix, tb, en, k in (*prefix, raw_step)
                    )
                    attrs0 = self.decode_leaf(entry, level)
                    walk = Walk(va, steps, leaf_pa, attrs0)
                    hit = (self._permissions(walk), replace(attrs0, raw=0))
                    cache[step_key] = hit
                perms, attrs = hit
                if physical:
                    attrs = self.decode_leaf(entry, level)
                lo, hi = max(va, start), min(va + span, end)
                pa = leaf_pa + (lo - va)
                if (
                    cur is not None
                    and cur[1] == lo
                    and cur[4] == perms
                    and cur[3] == attrs
                    and (not physical or cur[2] + (cur[1] - cur[0]) == pa)
                ):
                    cur[1] = hi
                    if span not in cur[5]:
                        cur[5] = cur[5] | {span}
                    continue
                if cur is not None:
                    yield MappedRange(*cur)
                cur = [lo, hi, pa, attrs, perms, frozenset({span})]

        yield from rec(self.root, self.top_level, 0, (), ())
        if cur is not None:
            yield MappedRange(*cur)

    def flags_key(self, entry: int, level: int, kind: EntryKind) -> int:
        """``entry`` without the address bits the access check never looks at, so that
        leaves differing only in their address share one permission computation.
        Architectures override this; the default keeps every bit (no sharing)."""
        return entry

    def table_frames(self) -> list[int]:
        """Physical addresses of every table reachable from the root (root first, DFS)."""
        out: list[int] = []

        def rec(table: int, level: int) -> None:
            out.append(table)
            if level == LEVELS - 1:
                return
            for index in range(ENTRIES_PER_TABLE):
                entry = self._read(table, index)
                if self.classify(entry, level) is EntryKind.TABLE:
                    rec(self.table_address(entry), level + 1)

        rec(self.root, self.top_level)
        return out

    # ---- editing ------------------------------------------------------------------------

    def _split(self, table: int, index: int, level: int, entry: int) -> int:
        """Replace a leaf by a table of 512 next-level leaves with the same attributes.

        x86 ``SplitPage``: the children inherit the parent's attribute bits and the parent
        becomes a table pointer; ArmMmuLib: "an existing block is first replicated into the
        new table with its own attributes". Returns the new table's address.
        """
        attrs = self.decode_leaf(entry, level)
        base = self.leaf_address(entry, level)
        child_span = ENTRY_SPAN[level + 1]
        new = self._alloc_table()
        for i in range(ENTRIES_PER_TABLE):
            self._write(new, i, self.encode_leaf(level + 1, base + i * child_span, attrs))
        self._write(table, index, self.encode_table(new))
        return new

    def map(self, va: int, pa: int, size: int, attrs: Attributes | None = None) -> None:
        """Map [va, va+size) to [pa, pa+size) with the largest leaves VA/PA alignment allows.

        Existing leaves in the range are replaced (a partially covered one is split first);
        existing tables are kept and descended into, as ArmMmuLib does; nothing is merged.
        """
        va = self.canonical(va)
        _check_range(va, size, "map", self.va_bits)
        if pa & (PAGE_SIZE - 1) or pa < 0:
            raise PagingError(f"map: physical address {pa:#x} is not 4 KiB aligned")
        a = self.normalize(attrs if attrs is not None else Attributes())
        self._check_pa(pa + size - 1)
        self.encode_leaf(LEVELS - 1, pa, a)  # validates the raw bits before any change
        delta = pa - va

        def visit(slot: _Slot) -> int | None:
            table, index, level, e_lo, whole, entry, kind = slot
            if (
                whole
                and level in self.leaf_levels
                and kind is not EntryKind.TABLE
                and (e_lo + delta) % ENTRY_SPAN[level] == 0
            ):
                self._write(table, index, self.encode_leaf(level, e_lo + delta, a))
                return None
            if kind is EntryKind.TABLE:
                return self.table_address(entry)
            if kind is EntryKind.LEAF:
                return self._split(table, index, level, entry)
            child = self._alloc_table()
            self._write(table, index, self.encode_table(child))
            return child

        self._edit(va, va + size, visit)

    def _edit(self, start: int, end: int, visit: Callable[[_Slot], int | None]) -> None:
        """Call ``visit`` on every entry whose span meets [start, end), top down in VA order;
        when it returns a table address, the walk continues in that table over the part of
        the range the entry spans (map, unmap and update differ only in their visits)."""

        def rec(table: int, level: int, base: int, lo: int, hi: int) -> None:
            span = ENTRY_SPAN[level]
            for index in range((lo - base) // span, (hi - 1 - base) // span + 1):
                e_lo = base + index * span
                s, t = max(lo, e_lo), min(hi, e_lo + span)
                entry = self._read(table, index)
                whole = s == e_lo and t == e_lo + span
                slot = (table, index, level, e_lo, whole, entry, self.classify(entry, level))
                child = visit(slot)
                if child is not None:
                    rec(child, level + 1, e_lo, s, t)

        rec(self.root, self.top_level, 0, start, end)

    def _check_pa(self, pa: int) -> None:
        """Raise if ``pa`` is beyond the output address size (subclasses narrow it)."""
        if pa >> 52:
            raise PagingError(f"physical address {pa:#x} beyond 52 bits")

    def unmap(self, va: int, size: int) -> None:
        """Remove mappings in [va, va+size), splitting partially covered leaves.

        Unmapped holes are skipped; tables are never freed (edk2 does not free them either).
        """
        va = self.canonical(va)
        _check_range(va, size, "unmap", self.va_bits)

        def visit(slot: _Slot) -> int | None:
            table, index, level, _e_lo, whole, entry, kind = slot
            if kind is EntryKind.INVALID:
                if entry:
                    self._write(table, index, 0)
                return None
            if kind is EntryKind.LEAF and whole:
                self._write(table, index, 0)
                return None
            if kind is EntryKind.TABLE:
                return self.table_address(entry)
            return self._split(table, index, level, entry)

        self._edit(va, va + size, visit)

    def update(self, va: int, size: int, fn: Update) -> None:
        """Apply ``fn`` to the attributes of every leaf in [va, va+size), splitting as edk2.

        A leaf is modified in place when the range covers it entirely; otherwise it is split
        into the next level (1 GiB -> 2 MiB -> 4 KiB) and the walk continues below. With
        ``SKIP_UNCHANGED_BLOCKS`` (ArmMmuLib) a leaf that ``fn`` leaves unchanged is not split.
        Every address must be mapped (checked before anything changes).
        """
        va = self.canonical(va)
        _check_range(va, size, "update", self.va_bits)
        hole = self._first_hole(va, va + size)
        if hole is not None:
            raise NotMappedError(f"address {hole:#x} is not mapped", address=hole)

        # fn depends only on the decoded attributes, so leaves with the same flags (the
        # entry minus its address, see flags_key) get the same new flags: compute once.
        memo: dict[tuple[int, int], int | None] = {}

        def visit(slot: _Slot) -> int | None:
            table, index, level, _e_lo, whole, entry, kind = slot
            if kind is EntryKind.TABLE:
                return self.table_address(entry)
            assert kind is EntryKind.LEAF
            flags = self.flags_key(entry, level, kind)
            key = (level, flags)
            if key in memo:
                new_flags = memo[key]
            else:
                old = self.decode_leaf(entry, level)
                new = self.normalize(fn(old))
                new_flags = None
                if new != old:
                    encoded = self.encode_leaf(level, self.leaf_address(entry, level), new)
                    new_flags = self.flags_key(encoded, level, kind)
                memo[key] = new_flags
            if whole:
                if new_flags is not None:
                    self._write(table, index, new_flags | (entry ^ flags))
                return None
            if self.SKIP_UNCHANGED_BLOCKS and new_flags is None:
                return None
            return self._split(table, index, level, entry)

        self._edit(va, va + size, visit)

    def _first_hole(self, start: int, end: int) -> int | None:
        """The lowest address in [start, end) that no leaf maps, or None."""

        def rec(table: int, level: int, base: int) -> int | None:
            span = ENTRY_SPAN[level]
            first = max(0, (start - base) // span)
            last = min(ENTRIES_PER_TABLE - 1, (end - 1 - base) // span)
            for index in range(first, last + 1):
                entry = self._read(table, index)
                kind = self.classify(entry, level) if entry else EntryKind.INVALID
                if kind is EntryKind.INVALID:
                    return max(start, base + index * span)
                if kind is EntryKind.TABLE:
                    hole = rec(self.table_address(entry), level + 1, base + index * span)
                    if hole is not None:
                        return hole
            return None

        return rec(self.root, self.top_level, 0) if start < end else None

    def set_attributes(self, va: int, size: int, attrs: MemAttr) -> None:
        """Set RP/RO/XP bits on a range, keeping the others (memory attribute protocol Set)."""
        self._check_efi(attrs)
        self.update(va, size, lambda a: a.with_efi_set(attrs))

    def clear_attributes(self, va: int, size: int, attrs: MemAttr) -> None:
        """Clear RP/RO/XP bits on a range, keeping the others (memory attribute protocol Clear)."""
        self._check_efi(attrs)
        self.update(va, size, lambda a: a.with_efi_cleared(attrs))

    def assign_attributes(self, va: int, size: int, attrs: MemAttr) -> None:
        """Make the access bits exactly ``attrs`` (CpuDxe / ArmSetMemoryAttributes assign)."""
        self._check_efi(attrs)
        self.update(va, size, lambda a: a.with_efi_assigned(attrs))

    @staticmethod
    def _check_efi(attrs: MemAttr) -> None:
        if int(attrs) & ~int(ACCESS_ATTRS):
            raise PagingError(f"attributes {int(attrs):#x} contain bits other than RP/RO/XP")

    def dump(self, steps: Sequence[WalkStep]) -> str:
        """One line per walk step, for diagnostics."""
        return "\n".join(
            f"L{s.level} {s.name}[{s.index}] @ {s.entry_address:#x} = {s.entry:#018x}"
            for s in steps
        )
