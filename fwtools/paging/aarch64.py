"""AArch64 stage 1 translation, 4 KiB granule, 48-bit VA, levels 0-3.

Descriptor formats: Arm ARM (DDI 0487) D8.3 "Translation table descriptor formats"
(older issues D5.3); edk2 ``MdePkg/Include/AArch64/AArch64Mmu.h``.

* bits[1:0]: 0b11 table (levels 0-2) or page (level 3); 0b01 block (levels 1 and 2 only,
  1 GiB / 2 MiB); bit 0 = 0 invalid. A 0b01 descriptor at level 0 or level 3 is invalid
  for the 4 KiB granule and gives a translation fault.
* Lower attributes: AttrIndx[2:0] bits 4:2, NS bit 5, AP[1] bit 6 (EL0 access), AP[2] bit 7
  (read-only), SH[1:0] bits 9:8, AF bit 10, nG bit 11.
* Output address bits 47:12 (page), 47:21 (L2 block), 47:30 (L1 block).
* Upper attributes: Contiguous bit 52, PXN bit 53, UXN/XN bit 54, software bits 58:55.
* Table descriptors: next-level table address bits 47:12; PXNTable 59, UXNTable/XNTable 60,
  APTable 62:61, NSTable 63 (edk2 sets none of them).

Permission model (Arm ARM D8.4 "Memory access control"): at EL1 a write needs AP[2]=0;
instruction fetch is forbidden by PXN, by PXNTable, and for memory writable at EL0
(AP[2:1]=0b01); at EL2 (single-range regime, no E2H) bit 54 is XN and PXN is RES0.
SCTLR_ELx.WXN makes writable memory execute-never.

Faults (Arm ARM D17.2 ESR_ELx; edk2 ``DescribeInstructionOrDataAbort``): EC 0x21 instruction
abort taken without a change of EL, EC 0x25 data abort without a change of EL; ISS[5:0]
IFSC/DFSC: address size fault level n = 0x00+n, translation fault level n = 0x04+n, access
flag fault level n = 0x08+n, permission fault level n = 0x0C+n; ISS[6] WnR (data aborts).
IL (bit 25) is 1 for aborts.
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

VALID: Final = 1 << 0
TYPE_TABLE_OR_PAGE: Final = 1 << 1  # bits[1:0] == 0b11
DESC_TYPE_MASK: Final = 0b11
ATTR_INDX_MASK: Final = 0b111 << 2
NS: Final = 1 << 5
AP1: Final = 1 << 6  # AP[1]: EL0 access
AP2: Final = 1 << 7  # AP[2]: read-only
SH_MASK: Final = 0b11 << 8
SH_INNER: Final = 0b11 << 8
SH_OUTER: Final = 0b10 << 8
AF: Final = 1 << 10
NG: Final = 1 << 11
CONTIGUOUS: Final = 1 << 52
PXN: Final = 1 << 53
UXN: Final = 1 << 54
XN: Final = UXN  # bit 54 is XN in single-range (EL2/EL3) regimes
SOFTWARE: Final = 0xF << 55
PXN_TABLE: Final = 1 << 59
XN_TABLE: Final = 1 << 60  # UXNTable at EL1&0, XNTable at EL2
AP_TABLE_RO: Final = 1 << 62  # APTable[1]: no write access at any EL below

OA_PAGE: Final = 0x0000_FFFF_FFFF_F000  # bits 47:12
OA_L2_BLOCK: Final = 0x0000_FFFF_FFE0_0000  # bits 47:21
OA_L1_BLOCK: Final = 0x0000_FFFF_C000_0000  # bits 47:30
OA_HIGH: Final = 0xF << 48  # bits 51:48: must be zero with a 48-bit output address

#: edk2 ArmMmuLib attribute index of normal write-back memory (TT_ATTR_INDX_MEMORY_WRITE_BACK)
ATTR_INDX_WRITE_BACK: Final = 3 << 2
#: What ArmMmuLib puts in a normal write-back leaf besides the access bits.
NORMAL_WRITE_BACK: Final = ATTR_INDX_WRITE_BACK | SH_INNER

#: Bits of Attributes.raw.
RAW_MASK: Final = ATTR_INDX_MASK | NS | AP1 | SH_MASK | NG | CONTIGUOUS | SOFTWARE

EC_INSTRUCTION_ABORT_LOWER: Final = 0x20
EC_INSTRUCTION_ABORT_SAME: Final = 0x21
EC_DATA_ABORT_LOWER: Final = 0x24
EC_DATA_ABORT_SAME: Final = 0x25

FSC_ADDRESS_SIZE: Final = 0x00
FSC_TRANSLATION: Final = 0x04
FSC_ACCESS_FLAG: Final = 0x08
FSC_PERMISSION: Final = 0x0C

_OA: Final = {1: OA_L1_BLOCK, 2: OA_L2_BLOCK, 3: OA_PAGE}
_REASON_FSC: Final = {
    "address-size": FSC_ADDRESS_SIZE,
    "translation": FSC_TRANSLATION,
    "access-flag": FSC_ACCESS_FLAG,
    "permission": FSC_PERMISSION,
}
_FSC_NAME: Final = {
    FSC_ADDRESS_SIZE: "address size fault",
    FSC_TRANSLATION: "translation fault",
    FSC_ACCESS_FLAG: "access flag fault",
    FSC_PERMISSION: "permission fault",
}


class Abort(Fault):
    """A synchronous instruction or data abort taken to the current EL."""

    ec: int
    fsc: int
    wnr: bool

    @property
    def esr(self) -> int:
        """ESR_ELx: EC[31:26], IL[25]=1, ISS with xFSC[5:0] and (data aborts) WnR[6]."""
        iss = self.fsc
        if self.ec in (EC_DATA_ABORT_SAME, EC_DATA_ABORT_LOWER) and self.wnr:
            iss |= 1 << 6
        return (self.ec << 26) | (1 << 25) | iss

    @property
    def far(self) -> int:
        """FAR_ELx: the faulting virtual address."""
        return self.va

    def describe(self) -> str:
        data = self.ec in (EC_DATA_ABORT_SAME, EC_DATA_ABORT_LOWER)
        what = "data abort" if data else "instruction abort"
        name = _FSC_NAME[self.fsc & ~3]
        text = (
            f"EC {self.ec:#04x} ({what}, same EL) "
            f"{'DFSC' if data else 'IFSC'} {self.fsc:#04x} ({name}, level {self.fsc & 3})"
        )
        if data:
            text += f" WnR={int(self.wnr)}"
        return text

    def report(self) -> tuple[str, int, str]:
        return (f"{self.describe()}, ESR {self.esr:#010x}, FAR {self.far:#x}", self.esr,
                f"EC {self.ec:#04x}")


class AArch64PageTable(PageTable):
    """AArch64 stage 1 (TTBR0, T0SZ=16) with the 4 KiB granule, as ArmMmuLib builds it.

    ``el`` is the regime: 1 (EL1&0, execute-never via UXN|PXN, which is what edk2 sets) or
    2 (EL2 single-range, XN bit 54). ``wxn`` is SCTLR_ELx.WXN.
    """

    ARCH: ClassVar[str] = "aa64"
    SKIP_UNCHANGED_BLOCKS: ClassVar[bool] = True

    def __init__(
        self,
        *,
        el: int = 1,
        wxn: bool = False,
        memory: PhysicalMemory | None = None,
        table_pool: int = DEFAULT_TABLE_POOL,
    ) -> None:
        if el not in (1, 2):
            raise PagingError(f"exception level {el} not modelled (1 or 2)")
        if table_pool >> 48:
            raise PagingError(f"table pool {table_pool:#x} beyond the 48-bit output address")
        self.el = el
        self.wxn = wxn
        super().__init__(memory=memory, table_pool=table_pool)

    @property
    def ttbr0(self) -> int:
        """TTBR0_ELx base address: the level 0 table."""
        return self.root

    @property
    def leaf_levels(self) -> frozenset[int]:
        return frozenset({1, 2, 3})

    @property
    def xn_bits(self) -> int:
        """The bits edk2 sets for XP: UXN|PXN at EL1, XN at EL2 (GcdAttributeToPageAttribute)."""
        return UXN | PXN if self.el == 1 else XN

    def level_name(self, level: int, kind: EntryKind) -> str:
        if kind is EntryKind.TABLE:
            return f"L{level} table"
        if kind is EntryKind.LEAF:
            return f"L{level} {'page' if level == 3 else 'block'}"
        return f"L{level} invalid"

    def classify(self, entry: int, level: int) -> EntryKind:
        if not entry & VALID:
            return EntryKind.INVALID
        if entry & DESC_TYPE_MASK == 0b11:
            return EntryKind.LEAF if level == 3 else EntryKind.TABLE
        # 0b01: block at levels 1 and 2; reserved (invalid) at levels 0 and 3.
        return EntryKind.LEAF if level in (1, 2) else EntryKind.INVALID

    def table_address(self, entry: int) -> int:
        return entry & OA_PAGE

    def leaf_address(self, entry: int, level: int) -> int:
        return entry & _OA[level]

    def encode_table(self, table_pa: int) -> int:
        return (table_pa & OA_PAGE) | 0b11

    def encode_leaf(self, level: int, pa: int, attrs: Attributes) -> int:
        if attrs.raw & ~RAW_MASK:
            raise PagingError(
                f"raw AArch64 bits {attrs.raw & ~RAW_MASK:#x} are not attribute bits"
            )
        entry = (pa & _OA[level]) | (0b11 if level == 3 else 0b01) | attrs.raw
        if attrs.present:
            entry |= AF
        if not attrs.writable:
            entry |= AP2
        if not attrs.executable:
            entry |= self.xn_bits
        return entry

    def flags_key(self, entry: int, level: int, kind: EntryKind) -> int:
        """Output-address bits 47:12 (47:21, 47:30 for blocks) are never checked; bits
        51:48 are (address-size fault) and stay in the key."""
        low = 12 if kind is EntryKind.TABLE or level == 3 else LEVEL_SHIFT[level]
        return entry & ~(((1 << 48) - 1) & ~((1 << low) - 1))

    def decode_leaf(self, entry: int, level: int) -> Attributes:
        return Attributes(
            present=bool(entry & AF),
            writable=not entry & AP2,
            executable=not entry & self.xn_bits,
            raw=entry & RAW_MASK,
        )

    def _check_pa(self, pa: int) -> None:
        if pa >> 48:
            raise PagingError(f"physical address {pa:#x} beyond the 48-bit output address")

    def check(self, walk: Walk, kind: AccessKind) -> Fault | None:
        """Stage 1 access check at the current EL (Arm ARM D8.4, D8.5; ESR D17.2)."""
        no_write = False
        no_exec = False
        for step in walk.steps:
            if step.kind is EntryKind.INVALID:
                return self._abort(walk, kind, step.level, "translation")
            if step.entry & OA_HIGH:
                return self._abort(walk, kind, step.level, "address-size")
            if step.kind is EntryKind.TABLE:
                no_write = no_write or bool(step.entry & AP_TABLE_RO)
                table_xn = PXN_TABLE if self.el == 1 else XN_TABLE
                no_exec = no_exec or bool(step.entry & table_xn)
                continue
            entry = step.entry
            if not entry & AF:
                return self._abort(walk, kind, step.level, "access-flag")
            writable = not (no_write or entry & AP2)
            if kind is AccessKind.WRITE and not writable:
                return self._abort(walk, kind, step.level, "permission")
            if kind is AccessKind.FETCH:
                if self.el == 1:
                    el0_writable = entry & (AP2 | AP1) == AP1 and not no_write
                    xn = bool(entry & PXN) or el0_writable
                else:
                    xn = bool(entry & XN)
                if no_exec or xn or (self.wxn and writable):
                    return self._abort(walk, kind, step.level, "permission")
            return None
        raise AssertionError("walk ended on a table entry")  # pragma: no cover

    @staticmethod
    def _abort(walk: Walk, kind: AccessKind, level: int, reason: str) -> Abort:
        ec = EC_INSTRUCTION_ABORT_SAME if kind is AccessKind.FETCH else EC_DATA_ABORT_SAME
        fsc = _REASON_FSC[reason] + level
        return Abort(walk.va, kind, level, reason, ec, fsc, kind is AccessKind.WRITE)
