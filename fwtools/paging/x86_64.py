"""x86-64 4-level paging (PML4 -> PDPT -> PD -> PT) with 4 KiB, 2 MiB and 1 GiB pages.

Entry formats: Intel SDM Vol. 3A §4.5 "4-Level Paging and 5-Level Paging", Tables 4-15 to 4-20.
Every paging-structure entry: P bit 0, R/W bit 1, U/S bit 2, PWT bit 3, PCD bit 4, A bit 5,
address bits M-1..12 (M = MAXPHYADDR, at most 52), XD/NX bit 63. A PDPTE or PDE with PS (bit 7)
set maps a 1 GiB / 2 MiB page: D bit 6, G bit 8, PAT bit 12, address bits M-1..30 / M-1..21
(bits 29:13 / 20:13 reserved). A PTE maps 4 KiB: D bit 6, PAT bit 7, G bit 8.

Access rights (SDM §4.6): a supervisor write needs R/W=1 in every entry of the walk only when
CR0.WP=1; an instruction fetch faults if XD=1 in any entry and IA32_EFER.NXE=1. With NXE=0 the
XD bit is *reserved* (§4.5: "If IA32_EFER.NXE = 0 and the P flag ... is 1, the XD flag (bit 63)
is reserved"), so hardware raises #PF with RSVD=1; edk2 CpuDxe therefore never writes XD
when NXE is off ("CpuDxe silently ignores XP requests when NXE is off", docs/reference/wx-model.md
§3), and this
simulator's attribute operations do the same, so such pages stay executable.

Page-fault error code (SDM §4.7, Figure 4-12): P bit 0 (0 = not-present page, 1 =
protection or reserved-bit violation), W/R bit 1 (write), U/S bit 2 (user-mode access), RSVD
bit 3 (reserved bit set in some paging-structure entry), I/D bit 4 (instruction fetch, only
reported when EFER.NXE=1 or CR4.SMEP=1). The simulator models supervisor (CPL 0) accesses
with SMEP/SMAP/PKS off, which is where UEFI runs.
"""

from __future__ import annotations

from typing import ClassVar, Final

from fwtools.paging.model import (
    DEFAULT_TABLE_POOL,
    LEVEL_SHIFT,
    AccessKind,
    Attributes,
    EntryKind,
    Fault,
    PageTable,
    PagingError,
    PhysicalMemory,
    Walk,
)

# Entry bits (SDM Vol. 3A §4.5, Tables 4-15..4-20; edk2 UefiCpuPkg/CpuDxe/CpuPageTable.h).
P: Final = 1 << 0
RW: Final = 1 << 1
US: Final = 1 << 2
PWT: Final = 1 << 3
PCD: Final = 1 << 4
A: Final = 1 << 5
D: Final = 1 << 6
PS: Final = 1 << 7
PAT_4K: Final = 1 << 7  # PTE only
G: Final = 1 << 8
PAT_LARGE: Final = 1 << 12  # PDPTE/PDE with PS=1
NX: Final = 1 << 63
AVAILABLE_LOW: Final = 0b111 << 9  # bits 11:9, ignored by hardware
HIGH_IGNORED: Final = 0x7FF << 52  # bits 62:52 (62:59 are the protection key in PTEs)

ADDR_4K: Final = 0x000F_FFFF_FFFF_F000  # bits 51:12
ADDR_2M: Final = 0x000F_FFFF_FFE0_0000  # bits 51:21
ADDR_1G: Final = 0x000F_FFFF_C000_0000  # bits 51:30
RSVD_2M: Final = 0x0000_0000_001F_E000  # bits 20:13 of a 2 MiB PDE
RSVD_1G: Final = 0x0000_0000_3FFF_E000  # bits 29:13 of a 1 GiB PDPTE

#: Bits of Attributes.raw (in their 4 KiB-PTE positions).
RAW_MASK: Final = US | PWT | PCD | A | D | PAT_4K | G | AVAILABLE_LOW | HIGH_IGNORED

# Page-fault error code bits (SDM Vol. 3A §4.7; edk2 CpuExceptionCommon.h).
PF_P: Final = 1 << 0
PF_WR: Final = 1 << 1
PF_US: Final = 1 << 2
PF_RSVD: Final = 1 << 3
PF_ID: Final = 1 << 4

LEVEL_NAMES: Final = {-1: "PML5E", 0: "PML4E", 1: "PDPTE", 2: "PDE", 3: "PTE"}
_LEAF_ADDR: Final = {1: ADDR_1G, 2: ADDR_2M, 3: ADDR_4K}


class PageFault(Fault):
    """#PF (vector 14); CR2 holds ``va``."""

    error_code: int

    @property
    def cr2(self) -> int:
        """The faulting linear address."""
        return self.va

    def describe(self) -> str:
        return f"#PF error {self.error_code:#04x}"

    def report(self) -> tuple[str, int, str]:
        text = self.describe()
        return f"{text} ({self.flags()}), CR2 {self.cr2:#x}", self.error_code, text

    def flags(self) -> str:
        """The error code spelled like edk2's exception dump (``I:1 R:0 U:0 W:0 P:1``)."""
        e = self.error_code
        return (
            f"I:{(e >> 4) & 1} R:{(e >> 3) & 1} U:{(e >> 2) & 1} W:{(e >> 1) & 1} P:{e & 1}"
        )


class X64PageTable(PageTable):
    """x86-64 4-level paging as edk2 DxeIpl builds it and CpuDxe edits it.

    ``nxe`` is IA32_EFER.NXE (MSR 0xC0000080 bit 11), ``wp`` is CR0.WP (bit 16),
    ``maxphyaddr`` is CPUID.80000008H:EAX[7:0], ``use_1g_pages`` is edk2's PcdUse1GPageTable.
    """

    ARCH: ClassVar[str] = "x64"
    SKIP_UNCHANGED_BLOCKS: ClassVar[bool] = False

    def __init__(
        self,
        *,
        nxe: bool = True,
        wp: bool = True,
        maxphyaddr: int = 52,
        use_1g_pages: bool = True,
        la57: bool = False,
        memory: PhysicalMemory | None = None,
        table_pool: int | None = None,
    ) -> None:
        if not 36 <= maxphyaddr <= 52:
            raise PagingError(f"MAXPHYADDR {maxphyaddr} outside 36..52")
        if table_pool is None:
            # default pool: DEFAULT_TABLE_POOL, or the top 4 GiB below MAXPHYADDR
            table_pool = min(DEFAULT_TABLE_POOL, (1 << maxphyaddr) - (1 << 32))
        if table_pool >> maxphyaddr:
            raise PagingError(f"table pool {table_pool:#x} beyond MAXPHYADDR {maxphyaddr}")
        self.nxe = nxe
        self.wp = wp
        self.maxphyaddr = maxphyaddr
        self.use_1g_pages = use_1g_pages
        #: bits 51:M of every entry are reserved (SDM Table 4-15 onwards).
        self._rsvd_addr = ((1 << 52) - 1) & ~((1 << maxphyaddr) - 1)
        self._leaf_levels = frozenset({1, 2, 3} if use_1g_pages else {2, 3})
        #: CR4.LA57: 5-level paging, a PML5 above the PML4 and 57-bit linear addresses
        #: (SDM Vol. 3A §4.5); CpuDxe reads CR4 to know (GetCurrentPagingContext).
        self.la57 = la57
        self.top_level = -1 if la57 else 0
        self.va_bits = 57 if la57 else 48
        super().__init__(memory=memory, table_pool=table_pool)

    @property
    def nx_enforced(self) -> bool:
        return self.nxe

    @property
    def cr3(self) -> int:
        """CR3 with PCID/PWT/PCD zero: the PML4 (with LA57: PML5) physical address."""
        return self.root

    @property
    def leaf_levels(self) -> frozenset[int]:
        return self._leaf_levels

    def level_name(self, level: int, kind: EntryKind) -> str:
        return LEVEL_NAMES[level]

    def canonical(self, va: int) -> int:
        """Accept canonical addresses (bits 63:N-1 equal for N = 48, or 57 with LA57, SDM
        Vol. 1 §3.3.7.1); index by bits N-1:0."""
        n = self.va_bits
        if 0 <= va < (1 << (n - 1)):
            return va
        if ((1 << 64) - (1 << (n - 1))) <= va <= 0xFFFF_FFFF_FFFF_FFFF:
            return va & ((1 << n) - 1)
        if (1 << (n - 1)) <= va < (1 << n):
            return va  # upper half given in its N-bit form
        raise PagingError(f"{va:#x} is not a canonical {n}-bit address")

    def classify(self, entry: int, level: int) -> EntryKind:
        if entry & P:
            if level == 3 or (level in (1, 2) and entry & PS):
                return EntryKind.LEAF
            return EntryKind.TABLE
        # P=0: the MMU ignores the rest, but edk2 keeps the address and attributes of an
        # RP page in place (RP <-> P=0) and restores them by setting P again.
        if entry and (level == 3 or (level in (1, 2) and entry & PS)):
            return EntryKind.LEAF
        return EntryKind.INVALID

    def table_address(self, entry: int) -> int:
        return entry & ADDR_4K

    def leaf_address(self, entry: int, level: int) -> int:
        return entry & _LEAF_ADDR[level]

    def encode_table(self, table_pa: int) -> int:
        """Non-leaf entries are created with just R/W|P, so the leaf decides
        (docs/reference/wx-model.md §5.1)."""
        return (table_pa & ADDR_4K) | RW | P

    def encode_leaf(self, level: int, pa: int, attrs: Attributes) -> int:
        if attrs.raw & ~RAW_MASK:
            raise PagingError(f"raw x86 bits {attrs.raw & ~RAW_MASK:#x} are not attribute bits")
        raw = attrs.raw
        entry = pa & _LEAF_ADDR[level]
        if level < 3:
            entry |= PS
            if raw & PAT_4K:
                raw = (raw & ~PAT_4K) | PAT_LARGE
        entry |= raw
        if attrs.present:
            entry |= P
        if attrs.writable:
            entry |= RW
        if not attrs.executable:
            entry |= NX
        return entry

    def flags_key(self, entry: int, level: int, kind: EntryKind) -> int:
        """The address field below MAXPHYADDR is never checked (bits above it are
        reserved and stay in the key; so do the reserved low bits of 2 MiB/1 GiB leaves)."""
        low = 12 if kind is EntryKind.TABLE or level == 3 else LEVEL_SHIFT[level]
        return entry & ~(((1 << self.maxphyaddr) - 1) & ~((1 << low) - 1))

    def decode_leaf(self, entry: int, level: int) -> Attributes:
        raw = entry & RAW_MASK & ~PAT_4K
        if level == 3:
            raw |= entry & PAT_4K
        elif entry & PAT_LARGE:
            raw |= PAT_4K
        return Attributes(
            present=bool(entry & P),
            writable=bool(entry & RW),
            executable=not entry & NX,
            raw=raw,
        )

    def normalize(self, attrs: Attributes) -> Attributes:
        """CpuDxe ignores XP when EFER.NXE is off: the XD bit would be reserved."""
        if not self.nxe and not attrs.executable:
            return Attributes(attrs.present, attrs.writable, True, attrs.raw)
        return attrs

    def _check_pa(self, pa: int) -> None:
        if pa >> self.maxphyaddr:
            raise PagingError(f"physical address {pa:#x} beyond MAXPHYADDR {self.maxphyaddr}")

    def reserved_bits(self, entry: int, level: int) -> int:
        """Reserved bits set in a present entry (SDM Vol. 3A §4.5, Tables 4-15..4-20)."""
        bad = entry & self._rsvd_addr
        if not self.nxe:
            bad |= entry & NX
        if level <= 0:
            bad |= entry & PS  # PML5E/PML4E bit 7 is reserved
        elif entry & PS and level == 1:
            bad |= entry & RSVD_1G
        elif entry & PS and level == 2:
            bad |= entry & RSVD_2M
        return bad

    def check(self, walk: Walk, kind: AccessKind) -> Fault | None:
        """Supervisor access check and #PF error code (SDM Vol. 3A §4.6, §4.7)."""
        code = 0
        if kind is AccessKind.WRITE:
            code |= PF_WR
        elif kind is AccessKind.FETCH and self.nxe:
            code |= PF_ID  # I/D is reported only with EFER.NXE=1 (or CR4.SMEP=1)
        writable = True
        executable = True
        for step in walk.steps:
            if not step.entry & P:
                return PageFault(walk.va, kind, step.level, "not-present", code)
            if self.reserved_bits(step.entry, step.level):
                return PageFault(walk.va, kind, step.level, "reserved", code | PF_RSVD | PF_P)
            writable = writable and bool(step.entry & RW)
            executable = executable and not (self.nxe and step.entry & NX)
        level = walk.steps[-1].level
        if kind is AccessKind.WRITE and self.wp and not writable:
            return PageFault(walk.va, kind, level, "permission", code | PF_P)
        if kind is AccessKind.FETCH and not executable:
            return PageFault(walk.va, kind, level, "permission", code | PF_P)
        return None
