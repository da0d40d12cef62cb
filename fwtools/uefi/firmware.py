"""Emulated UEFI boot services for the W^X replay: memory map, page allocator with the DXE NX
policy, the DXE core image loader with image protection, EFI_MEMORY_ATTRIBUTE_PROTOCOL and
ExitBootServices, on the page-table simulator of :mod:`fwtools.paging`.

Every rule cites docs/reference/wx-model.md; edk2 function names are given where the
behaviour is reproduced. Operations are recorded as :class:`Event` entries and an access that
the MMU would refuse is returned as a :class:`FaultRecord`; the replay stops at the first one,
as the real boot would.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Final, Literal

from fwtools._base.record import Record
from fwtools.paging.model import AccessKind, Fault, MemAttr, NotMappedError, PageTable
from fwtools.uefi.image import StageImage
from fwtools.uefi.memmap import PAGE, AllocationError, MemoryMap, pages_for
from fwtools.uefi.memtypes import SUBSYSTEM_TYPES, MemoryType, policy_bit
from fwtools.uefi.profile import (
    PROTECT_FV,
    PROTECT_UNKNOWN_SOURCE,
    RELEASE_CNT_CODE_SECTIONS,
    RELEASE_FREE_CHECKS_MAP,
    RELEASE_UNALIGNED_RWX,
    Arch,
    FirmwareProfile,
)

GIB: Final = 1 << 30
MIB: Final = 1 << 20
ACCESS: Final = MemAttr.RP | MemAttr.RO | MemAttr.XP
RUNTIME_GRANULARITY_AA64: Final = 0x10000

Status = str  # EFI_STATUS name without the EFI_ prefix: "SUCCESS", "INVALID_PARAMETER", ...


def attr_text(attrs: MemAttr | int) -> str:
    """``RP|RO|XP`` style, ``0`` for none."""
    a = MemAttr(int(attrs) & int(ACCESS))
    names = [n for n, bit in (("RP", MemAttr.RP), ("RO", MemAttr.RO), ("XP", MemAttr.XP))
             if a & bit]
    return "|".join(names) or "0"


class Event(Record):
    """One step of the timeline."""

    stage: str
    operation: str
    start: int = 0
    end: int = 0
    memory_type: str | None = None
    permissions: str | None = None  # effective r/w/x after the step ("rw-"), or mixed "*"
    detail: str = ""
    status: Status = "SUCCESS"

    @property
    def size(self) -> int:
        return self.end - self.start


class FaultRecord(Record):
    """An access the MMU refused, as data: who, where, what, and the architectural code."""

    stage: str  # the running stage's name ("firmware", "shim", "shim (LoadImage hook)")
    operation: str
    address: int
    access: Literal["fetch", "write", "read"]
    memory_type: str | None
    fault: str  # "#PF error 0x11" / "EC 0x21 (instruction abort ...) IFSC 0x0f ..."
    explanation: str
    fix: str
    attributes: str  # the UEFI view of the page: "XP", "RO", "RP|XP"
    changed_by: str | None  # the event that last set the page's attributes
    #: 1-based position of the running stage in the chain; 0 is the firmware itself (its
    #: boot manager loading the first stage)
    stage_index: int = 0
    #: the x86 #PF error code, or the AArch64 ESR_ELx
    code: int = 0
    #: the architectural short form: ``#PF error 0x11``, ``EC 0x21 IFSC 0x0f``
    summary: str = ""


#: Why a replay stopped, as a code (docs/boot-chain.md, "stop" in the JSON document).
STOP_CODES: Final[dict[str, str]] = {
    "fault": "an access the MMU refused (see faults[])",
    "unsigned": "Secure Boot is on and the image is not signed",
    "not-efi": "the image's subsystem is not an EFI one",
    "nx-compat-required": "the image lacks NX_COMPAT and the policy requires it",
    "sbat-revoked": "shim's SbatLevel revokes the image (an SBAT generation below it)",
    "wx-section": "a section is writable and executable and the policy requires NX",
    "out-of-resources": "no memory for an allocation",
    "kernel-unsupported": "the kernel lacks an entry the loader needs (LoadFile2, handover)",
    "boot-services-exited": "a boot service was called after ExitBootServices",
    "model-refusal": "the loader model refuses the next stage (see the reason)",
}


class LoadedImage(Record, frozen=False):
    image: StageImage
    base: int
    pages: int
    code_type: MemoryType
    data_type: MemoryType
    protected: bool
    loaded_by: str  # "firmware" or a stage name
    #: the file offset of the byte at ``base``: 0 for a PE placement or a copy of the whole
    #: file, the protected-mode code's offset when a loader copies a bzImage from there on
    #: (linuxefi), so an RVA that equals its file offset lands where the loader put it
    file_offset: int = 0

    def at(self, rva: int) -> int:
        """The address of ``rva`` (of a file offset, for a raw copy) in this placement."""
        return self.base - self.file_offset + rva

    @property
    def entry(self) -> int:
        return self.at(self.image.entry_rva)

    @property
    def end(self) -> int:
        return self.base + self.pages * PAGE


class Stop(Record):
    """Why the replay ended early, as data: the stage that stopped it and a code."""

    verdict: Literal["faults", "refused"]
    code: str  # a key of STOP_CODES
    stage: str  # as FaultRecord.stage
    stage_index: int  # as FaultRecord.stage_index
    reason: str  # the sentence shown to users


class ReplayStop(Exception):
    """The boot cannot continue: a fault, or an image refused (raised inside the replay).

    ``stage`` and ``stage_index`` name who stopped it (as in :class:`FaultRecord`), ``code``
    why (a key of :data:`STOP_CODES`); ``reason`` is the sentence for people."""

    def __init__(self, verdict: Literal["faults", "refused"], reason: str, *, code: str,
                 stage: str, stage_index: int) -> None:
        super().__init__(reason)
        if code not in STOP_CODES:
            raise ValueError(f"unknown stop code {code!r}")
        self.verdict = verdict
        self.reason = reason
        self.code = code
        self.stage = stage
        self.stage_index = stage_index

    @property
    def stop(self) -> Stop:
        return Stop(self.verdict, self.code, self.stage, self.stage_index, self.reason)


class GuestLayout(Record):
    """Where RAM, MMIO and the firmware's own allocations are (from the QEMU machines)."""

    ram: tuple[tuple[int, int], ...]
    mmio: tuple[tuple[int, int], ...]
    firmware: tuple[tuple[int, MemoryType], ...]  # sizes carved top-down from low RAM
    stack_size: int


def guest_layout(arch: Arch, memory: int) -> GuestLayout:
    """A QEMU q35 (x64) or virt (aa64) guest of ``memory`` bytes, with a typical edk2 split
    of the firmware's own memory (sizes as OVMF/ArmVirt report them with ``memmap``)."""
    firmware = (
        (4 * MIB, MemoryType.RESERVED),
        (1 * MIB, MemoryType.RUNTIME_SERVICES_DATA),
        (1 * MIB, MemoryType.RUNTIME_SERVICES_CODE),
        (128 * 1024, MemoryType.ACPI_NVS),
        (128 * 1024, MemoryType.ACPI_RECLAIM),
        (8 * MIB, MemoryType.BOOT_SERVICES_CODE),
        (40 * MIB, MemoryType.BOOT_SERVICES_DATA),
    )
    if arch == "x64":
        low = min(memory, 2 * GIB)
        ram = [(0, 0xA0000), (0x100000, low)]
        if memory > low:
            ram.append((4 * GIB, 4 * GIB + memory - low))
        x86_mmio = ((0xB000_0000, 0xC000_0000), (0xFEC0_0000, 0xFF00_0000), (0xFFC0_0000, 4 * GIB))
        return GuestLayout(tuple(ram), x86_mmio, firmware, 128 * 1024)
    base = 0x4000_0000
    arm_mmio = ((0, 0x0800_0000), (0x0800_0000, 0x4000_0000))  # flash, then devices
    return GuestLayout(((base, base + memory),), arm_mmio, firmware, 128 * 1024)


class Firmware:
    """Boot services of one emulated firmware; ``log`` receives every :class:`Event`."""

    def __init__(
        self,
        profile: FirmwareProfile,
        arch: Arch,
        *,
        secure_boot: bool,
        log: Callable[[Event], None],
        start: bool = True,
    ) -> None:
        """``start=False`` leaves the bring-up (memory map, NX sweep) to :meth:`boot`, for a
        caller whose ``log`` needs the object first."""
        self.profile = profile
        self.arch: Arch = arch
        self.secure_boot = secure_boot
        self._log = log
        self.stage = "firmware"
        self.stage_index = 0  # 1-based index of the running stage; 0 = the firmware itself
        self.compat_mode = False  # Project Mu compatibility mode (docs/reference/wx-model.md §2.3)
        self.boot_services = True
        self.memmap = MemoryMap()
        self.images: list[LoadedImage] = []
        #: (start, end, event text) of every attribute change, newest last, to explain faults
        self.changes: list[tuple[int, int, str]] = []
        self.pt: PageTable
        # Each architecture's encodings load only for a machine of it.
        if arch == "x64":
            from fwtools.paging.x86_64 import X64PageTable

            # DxeIpl sets EFER.NXE only when something needs it (IsEnableNonExecNeeded, §3)
            nxe = bool(profile.stack_nx or profile.nx_policy or profile.image_protection)
            self.pt = X64PageTable(nxe=nxe, wp=True, la57=profile.la57)
        else:
            from fwtools.paging.aarch64 import AArch64PageTable

            self.pt = AArch64PageTable(el=1)
        self.layout = guest_layout(arch, profile.memory_mib * MIB)
        self.stack = (0, 0)
        if start:
            self.boot()

    # ---- bring-up -------------------------------------------------------------------

    def boot(self) -> None:
        """Describe memory, identity-map it and apply the NX policy, as DXE core has by
        the time the boot manager runs."""
        lay = self.layout
        for start, end in lay.ram:
            self.memmap.add(start, end, MemoryType.CONVENTIONAL)
        for start, end in lay.mmio:
            self.memmap.add(start, end, MemoryType.MMIO)
        # Identity map everything DxeIpl / ArmVirtMemInfoLib maps: RAM and MMIO (x86 maps the
        # whole low 4 GiB plus RAM above it, with the largest pages that fit).
        if self.arch == "x64":
            top = max(4 * GIB, max(end for _s, end in lay.ram))
            top = (top + GIB - 1) & ~(GIB - 1)
            self.pt.map(0, 0, top)
        else:
            for start, end in (*lay.mmio, *lay.ram):
                self.pt.map(start, start, end - start)
            for start, end in lay.mmio:  # device memory is mapped XN by ArmVirtMemInfoLib
                self.pt.assign_attributes(start, end - start, MemAttr.XP)
        # the firmware's own memory, carved top-down below 4 GiB like early PEI/DXE allocations
        low_top = lay.ram[-1][1] if self.arch == "aa64" else lay.ram[1][1]
        self.default_max = low_top
        for size, mtype in lay.firmware:
            self.memmap.allocate(mtype, size // PAGE, below=low_top)
        stack_pages = lay.stack_size // PAGE
        sbase = self.memmap.allocate(MemoryType.BOOT_SERVICES_DATA, stack_pages, below=low_top)
        self.stack = (sbase, sbase + lay.stack_size)
        self.event("firmware start", 0, 0, detail=self._describe_profile())
        self._initial_sweep()

    def _describe_profile(self) -> str:
        p = self.profile
        return (
            f"{p.name}: edk2 {p.edk2_release}, NX policy {p.nx_policy:#x}, image protection "
            f"{p.image_protection:#x}, memory attribute protocol "
            f"{'yes' if self.map_installed else 'no'}, stack NX {'yes' if p.stack_nx else 'no'}"
            + (f", EFER.NXE {'on' if self.pt.nx_enforced else 'off'}" if self.arch == "x64" else "")
        )

    def _initial_sweep(self) -> None:
        """InitializeDxeNxMemoryProtectionPolicy (§3): XP on every descriptor whose type is in
        the policy, then the stack and the NULL page."""
        p = self.profile
        for d in list(self.memmap):
            attr = self.type_attribute(d.type)
            if attr:
                self.assign(d.start, d.end - d.start, attr, "NX policy sweep", d.type)
        sbase, send = self.stack
        if p.stack_nx or p.nx_policy & policy_bit(MemoryType.BOOT_SERVICES_DATA):
            self.assign(sbase, send - sbase, MemAttr.XP, "stack NX", MemoryType.BOOT_SERVICES_DATA)
        if p.stack_guard:
            self.assign(sbase, PAGE, MemAttr.RP | MemAttr.XP, "stack guard page",
                         MemoryType.BOOT_SERVICES_DATA)
        if p.null_detection:
            self.assign(0, PAGE, MemAttr.RP | self.type_attribute(MemoryType.CONVENTIONAL),
                         "NULL pointer detection", MemoryType.CONVENTIONAL)

    # ---- policy -----------------------------------------------------------------------

    @property
    def map_installed(self) -> bool:
        return self.profile.map_available(self.arch) and not self.compat_mode

    def type_attribute(self, memory_type: MemoryType) -> MemAttr:
        """GetPermissionAttributeForMemoryType: XP when the type's policy bit is set."""
        p = self.profile
        if self.compat_mode:
            return MemAttr.NONE
        attr = MemAttr.XP if p.nx_policy & policy_bit(memory_type) else MemAttr.NONE
        if (
            memory_type is MemoryType.CONVENTIONAL
            and p.mu is not None
            and p.mu.free_memory_read_protected
        ):
            attr |= MemAttr.RP
        return attr

    def _apply_policy(self, old: MemoryType, new: MemoryType, start: int, size: int) -> str:
        """ApplyMemoryProtectionPolicy (§3): assign the new type's attribute on a change.
        Returns what it did, for the caller's event."""
        if not self.profile.nx_policy or self.compat_mode:
            return ""
        a, b = self.type_attribute(old), self.type_attribute(new)
        if a == b:
            return ""
        self.assign(start, size, b, f"NX policy {old.short}->{new.short}", new, log=False)
        return f"NX policy: {old.short} {attr_text(a)} -> {new.short} {attr_text(b)} (assigned)"

    def assign(self, start: int, size: int, attrs: MemAttr, why: str, mtype: MemoryType | None,
                *, log: bool = True) -> None:
        self.pt.assign_attributes(start, size, attrs)
        self.changes.append((start, start + size, f"{self.stage}: {why} ({attr_text(attrs)})"))
        if log:
            self.event(why, start, start + size, memory_type=mtype, perms=self.perms_of(attrs))

    def perms_of(self, attrs: MemAttr) -> str:
        """Effective permissions of pages whose access bits are exactly ``attrs``."""
        present = not attrs & MemAttr.RP
        x_ignored = not self.pt.nx_enforced
        return (
            ("r" if present else "-")
            + ("w" if present and not attrs & MemAttr.RO else "-")
            + ("x" if present and (x_ignored or not attrs & MemAttr.XP) else "-")
        )

    # ---- events and access checks ------------------------------------------------------

    def event(self, operation: str, start: int, end: int, *, memory_type: MemoryType | None = None,
               detail: str = "", status: Status = "SUCCESS", perms: str | None = None) -> None:
        if perms is None and end > start:
            perms = self.permissions_text(start, end)
        self._log(Event(self.stage, operation, start, end,
                        memory_type.efi_name if memory_type is not None else None,
                        perms, detail, status))

    def permissions_text(self, start: int, end: int) -> str:
        """Effective permissions over [start, end): ``r-x``, or ``*`` when they differ."""
        seen: set[str] = set()
        pos = start
        for r in self.pt.ranges(start, end):
            if r.start > pos:
                seen.add("---")
            seen.add(str(r.permissions))
            pos = r.end
            if len(seen) > 1:
                return "*"
        if pos < end:
            seen.add("---")
        return seen.pop() if len(seen) == 1 else "*"

    def check_access(self, start: int, end: int, kind: AccessKind) -> Fault | None:
        """The first fault an access of ``kind`` to every page of [start, end) would raise."""
        pos = start
        need = {AccessKind.READ: "read", AccessKind.WRITE: "write", AccessKind.FETCH: "execute"}
        attr = need[kind]
        for r in self.pt.ranges(start, end):
            if r.start > pos:
                break
            if not getattr(r.permissions, attr):
                pos = max(pos, r.start)
                break
            pos = r.end
        if pos >= end:
            return None
        result = self.pt.access(pos, kind)
        return result if isinstance(result, Fault) else None

    def access(self, start: int, end: int, kind: AccessKind, operation: str, *,
               explanation: str = "", fix: str = "") -> None:
        """Check an access the running code makes; a fault stops the replay."""
        fault = self.check_access(start, end, kind)
        if fault is None:
            return
        raise FaultStop(self.fault_record(fault, operation, explanation, fix))

    def fault_record(self, fault: Fault, operation: str, explanation: str, fix: str) -> FaultRecord:
        va = fault.va
        mtype = self.memmap.type_at(va)
        attrs = self.pt.get_attributes(va)
        view = attr_text(attrs.efi) if attrs is not None else "not mapped"
        changed = next((text for s, e, text in reversed(self.changes) if s <= va < e), None)
        access: Literal["fetch", "write", "read"] = fault.kind.value
        if not explanation:
            explanation = default_explanation(access, view, mtype, changed)
        if not fix:
            fix = default_fix(access, view, mtype)
        text, number, summary = fault.report()
        return FaultRecord(self.stage, operation, va, access,
                           mtype.efi_name if mtype is not None else None, text,
                           explanation, fix, view, changed, self.stage_index, number, summary)

    def stop(self, verdict: Literal["faults", "refused"], code: str, reason: str) -> ReplayStop:
        """A stop raised by the running stage (the caller raises it)."""
        return ReplayStop(verdict, reason, code=code, stage=self.stage,
                          stage_index=self.stage_index)

    # ---- boot services: memory ----------------------------------------------------------

    def allocate_pages(self, memory_type: MemoryType, pages: int, what: str, *,
                       align: int = PAGE, max_address: int | None = None) -> int:
        """AllocateAnyPages, or AllocateMaxAddress up to and including ``max_address``."""
        if not self.boot_services:
            raise self.stop("faults", "boot-services-exited",
                            f"{self.stage} called AllocatePages after ExitBootServices")
        try:
            if max_address is not None:
                base = self.memmap.allocate(memory_type, pages, align=align,
                                            below=max_address + 1)
            else:
                try:
                    # edk2 allocates below the top of the memory DXE core started in (its
                    # mDefaultMaximumAddress) before it looks higher
                    base = self.memmap.allocate(memory_type, pages, align=align,
                                                below=self.default_max)
                except AllocationError:
                    base = self.memmap.allocate(memory_type, pages, align=align)
        except AllocationError as exc:
            self.event(f"AllocatePages {what}", 0, 0, memory_type=memory_type,
                        detail=str(exc), status=exc.status)
            raise self.stop("refused", "out-of-resources", f"{self.stage}: {exc}") from None
        did = self._apply_policy(MemoryType.CONVENTIONAL, memory_type, base, pages * PAGE)
        self.event(f"AllocatePages {what}", base, base + pages * PAGE, memory_type=memory_type,
                   detail=did)
        return base

    def allocate_pool(self, memory_type: MemoryType, size: int, what: str) -> int:
        """AllocatePool: whole pages of ``memory_type`` carry that type's attribute (§3)."""
        return self.allocate_pages(memory_type, pages_for(size), f"(pool) {what}")

    def free_pages(self, base: int, pages: int, what: str) -> None:
        """FreePages (CoreFreePages, §3): since 202508 RO/RP ranges are leaked, otherwise
        DEBUG_CLEAR_MEMORY poisons the range before it returns to free memory."""
        end = base + pages * PAGE
        attrs = [r.attributes.efi for r in self.pt.ranges(base, end)]
        protected = any(a & (MemAttr.RO | MemAttr.RP) for a in attrs)
        if (
            protected
            and self.profile.edk2_release >= RELEASE_FREE_CHECKS_MAP
            and self.map_installed
        ):
            self.event(f"FreePages {what}", base, end, memory_type=self.memmap.type_at(base),
                        detail="range is RO/RP: edk2 leaks the pages (2d69507a4d)")
            return
        if self.profile.debug_clear_memory:
            self.access(
                base, end, AccessKind.WRITE, f"FreePages {what} (DEBUG_CLEAR_MEMORY)",
                explanation="DXE core fills freed pages with a pattern (DEBUG_CLEAR_MEMORY) "
                "and the range is still read-only: the caller freed pages it had set RO "
                "without resetting them (shim PR #750 on edk2 >= 202502)",
                fix="reset the range to RW (ClearMemoryAttributes RO) before FreePages, as "
                "shim 16.1 does (2f64bb9); edk2 >= 202508 leaks such pages instead",
            )
        try:
            old = self.memmap.free(base, pages)
        except AllocationError as exc:
            self.event(f"FreePages {what}", base, end, detail=str(exc), status=exc.status)
            return
        did = self._apply_policy(old, MemoryType.CONVENTIONAL, base, end - base)
        self.event(f"FreePages {what}", base, end, memory_type=MemoryType.CONVENTIONAL,
                   detail=did)

    def exit_boot_services(self) -> None:
        self.boot_services = False
        self.event("ExitBootServices", 0, 0)

    # ---- EFI_MEMORY_ATTRIBUTE_PROTOCOL (§4) -------------------------------------------

    def _map_check(self, base: int, length: int, attrs: int, op: str) -> Status | None:
        x86 = self.arch == "x64"
        if length == 0:
            return "INVALID_PARAMETER"
        if attrs & ~int(ACCESS):
            return "INVALID_PARAMETER"
        if attrs == 0 and op != "get" and x86:
            return "INVALID_PARAMETER"
        if base & (PAGE - 1) or length & (PAGE - 1):
            if x86:
                return "UNSUPPORTED"
            # ArmPkg folded UpdateRegionMapping's INVALID_PARAMETER to UNSUPPORTED until 2024
            return "INVALID_PARAMETER" if self.profile.edk2_release >= 202402 else "UNSUPPORTED"
        return None

    def map_get(self, base: int, length: int) -> tuple[Status, MemAttr]:
        if not self.map_installed:
            return "NOT_FOUND", MemAttr.NONE
        err = self._map_check(base, length, 0, "get")
        if err:
            return err, MemAttr.NONE
        seen = {r.attributes.efi for r in self.pt.ranges(base, base + length)}
        covered = sum(r.size for r in self.pt.ranges(base, base + length))
        if covered < length:
            return ("UNSUPPORTED" if self.arch == "x64" else "NO_MAPPING"), MemAttr.NONE
        if len(seen) != 1:
            return "NO_MAPPING", MemAttr.NONE
        return "SUCCESS", seen.pop()

    def map_set(self, base: int, length: int, attrs: MemAttr, why: str) -> Status:
        return self._map_update("SetMemoryAttributes", base, length, attrs, why)

    def map_clear(self, base: int, length: int, attrs: MemAttr, why: str) -> Status:
        return self._map_update("ClearMemoryAttributes", base, length, attrs, why)

    def _map_update(self, call: str, base: int, length: int, attrs: MemAttr, why: str) -> Status:
        op = f"{call}({attr_text(attrs)}) {why}"
        if not self.map_installed:
            return "NOT_FOUND"
        err = self._map_check(base, length, int(attrs), call)
        if err:
            self.event(op, base, base + length, memory_type=self.memmap.type_at(base),
                        status=err)
            return err
        try:
            if int(attrs) == 0:
                # ArmSetMemoryAttributes with mask 0 replaces every permission: RWX (§4, inferred)
                self.pt.assign_attributes(base, length, MemAttr.NONE)
            elif call.startswith("Set"):
                self.pt.set_attributes(base, length, attrs)
            else:
                self.pt.clear_attributes(base, length, attrs)
        except NotMappedError:
            status = "UNSUPPORTED"
            self.event(op, base, base + length, status=status)
            return status
        verb = "set" if call.startswith("Set") else "clear"
        self.changes.append((base, base + length, f"{self.stage}: {verb} {attr_text(attrs)} {why}"))
        self.event(op, base, base + length, memory_type=self.memmap.type_at(base))
        return "SUCCESS"

    # ---- the DXE core image loader (§2) ------------------------------------------------

    def load_image(self, image: StageImage, *, source: Literal["fv", "unknown"] = "unknown",
                   loaded_by: str = "firmware") -> LoadedImage:
        """CoreLoadImage: Secure Boot and Mu NX checks, one allocation of the code type,
        copy + relocate, then ProtectUefiImage."""
        types = SUBSYSTEM_TYPES.get(image.subsystem)
        if types is None:
            self.event(f"LoadImage {image.name}", status="UNSUPPORTED", start=0, end=0,
                        detail=f"subsystem {image.subsystem} is not an EFI image")
            raise self._refuse("not-efi", f"LoadImage {image.name}: EFI_UNSUPPORTED (subsystem "
                                          f"{image.subsystem})")
        if self.secure_boot and not image.signed:
            self.event(f"LoadImage {image.name}", 0, 0, status="SECURITY_VIOLATION",
                        detail="Secure Boot is on and the image carries no signature")
            raise self._refuse("unsigned", f"LoadImage {image.name}: EFI_SECURITY_VIOLATION "
                                           "(unsigned image with Secure Boot on)")
        self._mu_nx_check(image)
        code_type, data_type = types
        align = max(image.section_alignment, PAGE)
        pages = pages_for(image.size_of_image + (align if align > PAGE else 0))
        base = self.allocate_pages(code_type, pages, f"image {image.name}", align=align)
        loaded = LoadedImage(image, base, pages, code_type, data_type, False, loaded_by)
        self.access(base, base + pages_for(image.size_of_image) * PAGE, AccessKind.WRITE,
                    f"LoadImage {image.name}: copy sections")
        for page in image.reloc_pages:
            self.access(base + page, base + page + PAGE, AccessKind.WRITE,
                        f"LoadImage {image.name}: relocate")
        self.images.append(loaded)
        self._protect(loaded, source)
        return loaded

    @staticmethod
    def _refuse(code: str, reason: str) -> ReplayStop:
        """CoreLoadImage's refusals are the firmware's own (stage 0), whoever called it."""
        return ReplayStop("refused", reason, code=code, stage="firmware", stage_index=0)

    def _mu_nx_check(self, image: StageImage) -> None:
        mu = self.profile.mu
        if mu is None or image.nx_compat or image.subsystem != 10 or self.compat_mode:
            return
        if mu.block_images_without_nx:
            self.event(f"LoadImage {image.name}", 0, 0, status="SECURITY_VIOLATION",
                        detail="Project Mu BlockImagesWithoutNxFlag: image lacks NX_COMPAT")
            raise self._refuse("nx-compat-required", f"LoadImage {image.name}: "
                               "EFI_SECURITY_VIOLATION (no NX_COMPAT, BlockImagesWithoutNxFlag)")
        # ActivateCompatibilityMode: permanent, policy off, MAP uninstalled, low 640K RWX
        self.compat_mode = True
        self.assign(0, 0xA0000, MemAttr.NONE, "Mu compatibility mode (legacy range RWX)", None)
        # free memory loses its read protection too, or no allocation would be usable once
        # the policy maps every type to 0 (inferred: Mu documents compatibility mode as the
        # legacy, unprotected behaviour)
        for d in list(self.memmap):
            if d.type is MemoryType.CONVENTIONAL and d.start >= 0xA0000:
                self.assign(d.start, d.end - d.start, MemAttr.NONE,
                            "Mu compatibility mode (free memory RWX)", d.type, log=False)
        self.event("Mu compatibility mode", 0, 0,
                    detail=f"{image.name} lacks NX_COMPAT: NX policy and image protection off, "
                    "memory attribute protocol uninstalled")

    def image_protection_wanted(self, source: Literal["fv", "unknown"]) -> bool:
        bit = PROTECT_FV if source == "fv" else PROTECT_UNKNOWN_SOURCE
        return bool(self.profile.image_protection & bit) and not self.compat_mode

    def _protect(self, loaded: LoadedImage, source: Literal["fv", "unknown"]) -> None:
        """ProtectUefiImage (§2.2)."""
        image = loaded.image
        if not self.image_protection_wanted(source):
            return
        rel = self.profile.edk2_release
        gran = PAGE
        if loaded.code_type is MemoryType.RUNTIME_SERVICES_CODE and self.arch == "aa64":
            gran = RUNTIME_GRANULARITY_AA64
        size = pages_for(image.size_of_image) * PAGE
        sa = image.section_alignment
        reason = None
        if sa == 0 or sa % gran:
            reason = f"SectionAlignment {sa:#x} is not a multiple of {gran:#x}"
        if rel >= RELEASE_CNT_CODE_SECTIONS:
            code = [s for s in image.sections if s.contains_code]
        else:
            code = [s for s in image.sections if s.execute and not s.write]
            if not code and reason is None:
                reason = "no section is executable and read-only"
        ranges = []
        if reason is None:
            for s in code:
                start = loaded.base + s.virtual_address
                end = loaded.base + s.virtual_address + ((s.memory_size + sa - 1) // sa) * sa
                if end > loaded.base + size:
                    reason = f"code section {s.name} extends past SizeOfImage"
                    break
                ranges.append((start, end, s.name))
            ranges.sort()
            if any(a[1] > b[0] for a, b in itertools.pairwise(ranges)):
                reason = "code sections overlap"
        if reason is not None:
            if rel >= RELEASE_UNALIGNED_RWX:
                self.assign(loaded.base, size, MemAttr.NONE,
                             f"image {image.name} not protected: {reason}; set RWX",
                             loaded.code_type)
            else:
                self.event(f"image {image.name} not protected", loaded.base, loaded.base + size,
                            memory_type=loaded.code_type, detail=reason)
            return
        loaded.protected = True
        self.assign(loaded.base, size, MemAttr.XP, f"protect image {image.name}: non-code XP",
                     loaded.code_type, log=False)
        for start, end, name in ranges:
            self.assign(start, end - start, MemAttr.RO,
                         f"protect image {image.name}: {name} RO", loaded.code_type, log=False)
        self.event(f"protect image {image.name}", loaded.base, loaded.base + size,
                    memory_type=loaded.code_type,
                    detail=", ".join(f"{n} RO" for _s, _e, n in ranges) + ", rest XP")

    def unload_image(self, loaded: LoadedImage) -> None:
        """UnprotectUefiImage then free (CoreUnloadAndCloseImage)."""
        if loaded.protected:
            self.assign(loaded.base, loaded.pages * PAGE, MemAttr.NONE,
                         f"unprotect image {loaded.image.name}", loaded.code_type)
        self.free_pages(loaded.base, loaded.pages, f"image {loaded.image.name}")


class FaultStop(ReplayStop):
    """The MMU refused an access: ``record`` holds the stage, address, access and code."""

    def __init__(self, record: FaultRecord) -> None:
        super().__init__("faults", f"{record.fault} at {record.address:#x}", code="fault",
                         stage=record.stage, stage_index=record.stage_index)
        self.record = record


def default_explanation(access: str, view: str, mtype: MemoryType | None,
                        changed: str | None) -> str:
    where = mtype.efi_name if mtype is not None else "unmapped memory"
    what = {
        "fetch": "executes code from a page that is not executable",
        "write": "writes to a page that is not writable",
        "read": "reads a page that is not readable",
    }[access]
    text = f"the stage {what} ({where}, attributes {view})"
    if changed:
        text += f"; the page was last changed by {changed}"
    return text


def default_fix(access: str, view: str, mtype: MemoryType | None) -> str:
    if access == "fetch" and mtype is MemoryType.LOADER_DATA:
        return ("allocate code as EfiLoaderCode, or clear EFI_MEMORY_XP on it with "
                "EFI_MEMORY_ATTRIBUTE_PROTOCOL once it is loaded")
    if access == "fetch":
        return ("clear EFI_MEMORY_XP on the code range (EFI_MEMORY_ATTRIBUTE_PROTOCOL) before "
                "jumping to it")
    if access == "write":
        return "keep the range writable until the writes are done; set RO only afterwards"
    return "do not touch read-protected (RP) pages"
