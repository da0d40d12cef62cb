"""Read a firmware exception dump off the serial console, and compare it with the replay's
fault (``fw-check boot-chain --json``, ``faults[0]``).

The dumps (no pytest here; unit tests in ``test_dumps.py``):

- x86-64, edk2 ``UefiCpuPkg/Library/CpuExceptionHandlerLib`` (``X64/ArchExceptionHandler.c``
  ``DumpCpuContext``, ``CpuExceptionCommon.c`` ``DumpModuleImageInfo``), printed in RELEASE
  and DEBUG builds alike::

    !!!! X64 Exception Type - 0E(#PF - Page-Fault)  CPU Apic ID - 00000000 !!!!
    ExceptionData - 0000000000000011  I:1 R:0 U:0 W:0 P:1 PK:0 SS:0 SGX:0
    RIP  - 00000000287AA2F0, CS  - 0000000000000038, RFLAGS - 0000000000010206
    ...
    CR0  - 0000000080010033, CR2  - 00000000287AA2F0, CR3  - 000000003FC01000
    ...
    !!!! Find image based on IP(0x3AA69CF6) /build/.../grub.efi (ImageBase=..., EntryPoint=...) !!!!

  For a #PF with the I bit set, ``DumpImageAndCpuContent`` looks the image up by the return
  address at [RSP] (RIP is not in any image), so "Find image" names the caller: the stage
  that jumped. Otherwise it names the image RIP is in: the stage that made the access.
- AArch64, ArmPkg ``Library/DefaultExceptionHandlerLib/AArch64/DefaultExceptionHandler.c``:
  RELEASE prints only ``Synchronous Exception at 0x<ELR>``; DEBUG adds
  ``PC 0x<ELR> (0x<base>+0x<offset>) [ 0] <image base name>`` (just ``PC 0x<ELR>`` when ELR is
  in no loaded image) and ``SP ... ELR 0x... SPSR ... / ESR 0x........ FAR 0x...``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

Access = Literal["fetch", "write", "read"]
DumpArch = Literal["x64", "aa64"]

PAGE_MASK: Final = 0xFFF

# x86 #PF error code bits (Intel SDM vol. 3, 4.7; edk2 IA32_PF_EC_* in CpuExceptionCommon.h)
PF_WRITE: Final = 1 << 1
PF_FETCH: Final = 1 << 4
# AArch64 ESR_ELx exception classes (Arm ARM D17.2.37): instruction / data abort, lower or
# same EL; the fault status code is ISS[5:0] (IFSC/DFSC), WnR is ISS[6] for data aborts
EC_INSTRUCTION_ABORT: Final = (0x20, 0x21)
EC_DATA_ABORT: Final = (0x24, 0x25)
ESR_WNR: Final = 1 << 6

_X64_TYPE: Final = re.compile(r"!!!! X64 Exception Type - ([0-9A-Fa-f]+)\(([^)]*)\)")
_X64_DATA: Final = re.compile(r"ExceptionData - ([0-9A-Fa-f]+)")
_X64_RIP: Final = re.compile(r"\bRIP  ?- ([0-9A-Fa-f]+)")
_X64_CR2: Final = re.compile(r"\bCR2  ?- ([0-9A-Fa-f]+)")
_X64_IMAGE: Final = re.compile(r"!!!! Find image based on IP\(0x[0-9A-Fa-f]+\) (\S+)")
_AA64_HEAD: Final = re.compile(r"(Synchronous|SError|IRQ|FIQ) Exception at 0x([0-9A-Fa-f]+)")
_AA64_ESR: Final = re.compile(r"\bESR 0x([0-9A-Fa-f]+)")
_AA64_FAR: Final = re.compile(r"\bFAR 0x([0-9A-Fa-f]+)")
_AA64_ELR: Final = re.compile(r"\bELR 0x([0-9A-Fa-f]+)")
_AA64_IMAGE: Final = re.compile(r"\bPC 0x[0-9A-Fa-f]+ \(0x[0-9A-Fa-f]+\+0x[0-9A-Fa-f]+\) "
                                r"\[ ?0\] (\S+)")


def _hex(m: re.Match[str] | None, group: int = 1) -> int | None:
    return None if m is None else int(m.group(group), 16)


@dataclass(frozen=True)
class ConsoleFault:
    """What the firmware's dump says. ``None`` is "not printed" (RELEASE builds)."""

    arch: DumpArch
    exception: str  # x86 "0E(#PF - Page-Fault)"; AArch64 "Synchronous"
    pc: int  # RIP / ELR
    code: int | None  # x86 ExceptionData; AArch64 ESR (DEBUG only)
    data_address: int | None  # CR2 / FAR (FAR: DEBUG only)
    image: str | None  # "Find image" / backtrace image path (DEBUG only)

    @property
    def page_fault(self) -> bool:
        return self.arch == "x64" and self.exception.startswith("0E")

    @property
    def access(self) -> Access | None:
        if self.code is None:
            return None
        if self.arch == "x64":
            if not self.page_fault:
                return None
            return ("fetch" if self.code & PF_FETCH
                    else "write" if self.code & PF_WRITE else "read")
        ec = self.code >> 26
        if ec in EC_INSTRUCTION_ABORT:
            return "fetch"
        if ec in EC_DATA_ABORT:
            return "write" if self.code & ESR_WNR else "read"
        return None

    @property
    def address(self) -> int | None:
        """The faulting address: x86 RIP for a fetch, CR2 for data; AArch64 FAR when the ESR
        says it is an abort (FAR holds the address of instruction and data aborts alike)."""
        if self.arch == "x64":
            return self.pc if self.access == "fetch" else self.data_address
        return self.data_address if self.access is not None else None

    @property
    def stage(self) -> str | None:
        return image_stage(self.image)


def parse_fault(text: str, arch: DumpArch) -> ConsoleFault | None:
    """The first exception dump in ``text`` (clean console text), or None."""
    if arch == "x64":
        head = _X64_TYPE.search(text)
        if head is None:
            return None
        body = text[head.end():]
        rip = _hex(_X64_RIP.search(body))
        if rip is None:
            return None
        return ConsoleFault("x64", f"{head.group(1)}({head.group(2)})", rip,
                            _hex(_X64_DATA.search(body)), _hex(_X64_CR2.search(body)),
                            _group(_X64_IMAGE.search(body)))
    head = _AA64_HEAD.search(text)
    if head is None:
        return None
    elr = int(head.group(2), 16)
    # the DEBUG register dump follows the head line; a second head (the handler printing
    # again) ends this dump
    body = text[head.end():]
    again = _AA64_HEAD.search(body)
    if again is not None:
        body = body[:again.start()]
    return ConsoleFault("aa64", head.group(1), elr, _hex(_AA64_ESR.search(body)),
                        _hex(_AA64_FAR.search(body)), _group(_AA64_IMAGE.search(body)))


def _group(m: re.Match[str] | None) -> str | None:
    return None if m is None else m.group(1)


_IMAGE_STAGES: Final = (("shim", "shim"), ("mmx64", "shim"), ("mmaa64", "shim"),
                        ("fbx64", "shim"), ("fbaa64", "shim"), ("grub", "grub"),
                        ("vmlinu", "kernel"), ("linux", "kernel"))


def image_stage(path: str | None) -> str | None:
    """The chain stage an image path names (shim*, grub*, vmlinuz*), or None for anything
    else (a firmware driver's .dll/.efi, or no path)."""
    if path is None or path.startswith("("):  # "(No PDB)"
        return None
    name = re.split(r"[\\/]", path)[-1].lower()
    for prefix, stage in _IMAGE_STAGES:
        if name.startswith(prefix):
            return stage
    return None


#: chains.Stage (the console's furthest marker) -> the stage running when it faulted:
#: grub printed its marker (and, after ``linux``, the kernel-loaded one), so grub runs until
#: the kernel's EFI stub prints; "firmware" (no grub marker) cannot tell shim from grub
MARKER_STAGE: Final[Mapping[str, str]] = {"grub": "grub", "kernel-loaded": "grub",
                                          "efi-stub": "kernel"}


@dataclass(frozen=True)
class Field:
    name: str
    real: object
    replay: object
    compared: bool  # False: the console does not tell (the reason is in ``real``)

    @property
    def ok(self) -> bool:
        return not self.compared or self.real == self.replay

    def line(self) -> str:
        mark = ("ok" if self.real == self.replay else "MISMATCH") if self.compared \
            else "not compared"
        return f"  {self.name:<12} real {self.real!s:<34} replay {self.replay!s:<24} {mark}"


def _h(v: int | None) -> str:
    return "?" if v is None else f"{v:#x}"


def compare_fault(real: ConsoleFault, marker_stage: str, fault: Mapping[str, Any]
                  ) -> list[Field]:
    """Compare ``real`` (and the console's furthest marker, :data:`MARKER_STAGE`'s keys) with
    one fault of the replay's JSON (``stage``, ``access``, ``code``, ``address``). Each field
    is compared when the console tells it; README "What a fault is compared on" lists them."""
    replay_stage = str(fault["stage"]).split()[0]  # "shim (LoadImage hook)" -> "shim"
    fields: list[Field] = []
    seen = real.stage or MARKER_STAGE.get(marker_stage)
    fields.append(Field("stage", seen if seen is not None else
                        f"? (marker {marker_stage!r}, no image)", replay_stage, seen is not None))
    access = real.access
    fields.append(Field("access", access if access is not None else "? (no code printed)",
                        fault["access"], access is not None))
    code = int(fault["code"])
    if real.code is None:
        fields.append(Field("code", "? (no code printed)", _h(code), False))
    elif real.arch == "x64":
        fields.append(Field("#PF error", _h(real.code), _h(code), True))
    else:
        fields.append(Field("ESR.EC", _h(real.code >> 26), _h(code >> 26), True))
        fields.append(Field("ESR.FSC", _h(real.code & 0x3F), _h(code & 0x3F), True))
    replay_off = int(fault["address"]) & PAGE_MASK
    if real.address is not None:
        name = "CR2 & 0xfff" if real.arch == "x64" and access != "fetch" else \
            "RIP & 0xfff" if real.arch == "x64" else "FAR & 0xfff"
        fields.append(Field(name, _h(real.address & PAGE_MASK), _h(replay_off), True))
    elif real.arch == "aa64" and fault["access"] == "fetch":
        # RELEASE: only ELR. For an instruction abort ELR is the faulting address; the replay
        # says fetch, so ELR's offset must be its address's (a data abort at the same offset
        # would be a coincidence of 1 in 4096)
        fields.append(Field("ELR & 0xfff", _h(real.pc & PAGE_MASK), _h(replay_off), True))
    else:
        fields.append(Field("page offset", "? (no faulting address printed)", _h(replay_off),
                            False))
    return fields


def mismatch_report(fields: list[Field]) -> str:
    bad = [f.name for f in fields if not f.ok]
    head = f"real firmware and replay disagree on {', '.join(bad)}" if bad else "agree"
    return head + "\n" + "\n".join(f.line() for f in fields)
