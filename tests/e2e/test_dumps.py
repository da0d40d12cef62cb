"""The exception-dump parser (dumps.py) on dump text, and its comparison with a replay fault.

No QEMU here (conftest.py still marks them ``e2e``, as everything in this directory). The
AArch64 RELEASE console (recorded_dumps.py) is captured from
``test_boot_chain[aa64-bookworm-on-debian13-strictnx-sb]`` (Debian 13 AAVMF
2025.02-8+deb13u1). The x64 texts are written from the format strings in edk2's
CpuExceptionHandlerLib (X64/ArchExceptionHandler.c DumpCpuContext, CpuExceptionCommon.c
DumpModuleImageInfo) with the register values of the lab faults (the real lab dumps are in
tests/e2e/lab/results.json and boot in test_lab.py); ``AA64_DEBUG`` from ArmPkg's AArch64
DefaultExceptionHandler.c, and ``AA64_LAB_DEBUG`` is the real one the lab's DEBUG AAVMF printed.
"""

from __future__ import annotations

from typing import Any

import pytest

from .dumps import compare_fault, image_stage, mismatch_report, parse_fault
from .recorded_dumps import AA64_LAB_DEBUG, AA64_RELEASE

AA64_DEBUG = """\
FWTOOLS-KERNEL-LOADED


Synchronous Exception at 0x000000006DDC198C
PC 0x00006DDC198C

  X0 0x000000007BFE6A18   X1 0x000000007E8F2A00   X2 0x0000000000000000   X3 0x0000000000000000

  SP 0x000000007FF8E8E0  ELR 0x000000006DDC198C  SPSR 0x600003C5  FPSR 0x00000000
 ESR 0x8600000F          FAR 0x000000006DDC198C

 ESR : EC 0x21  IL 0x1  ISS 0x0000000F

Instruction abort: Permission fault, third level
"""

X64_FETCH = """\
FWTOOLS-KERNEL-LOADED
!!!! X64 Exception Type - 0E(#PF - Page-Fault)  CPU Apic ID - 00000000 !!!!
ExceptionData - 0000000000000011  I:1 R:0 U:0 W:0 P:1 PK:0 SS:0 SGX:0
RIP  - 00000000287AA2F0, CS  - 0000000000000038, RFLAGS - 0000000000010206
RAX  - 0000000000000000, RCX - 000000003E9A3018, RDX - 0000000000000000
CR0  - 0000000080010033, CR2  - 00000000287AA2F0, CR3  - 000000003FC01000
!!!! Find image based on IP(0x3AA69CF6) (No PDB)  \
(ImageBase=000000003A72ACC0, EntryPoint=000000003A72B000) !!!!
"""

X64_WRITE = """\
!!!! X64 Exception Type - 0E(#PF - Page-Fault)  CPU Apic ID - 00000000 !!!!
ExceptionData - 0000000000000003  I:0 R:0 U:0 W:1 P:1 PK:0 SS:0 SGX:0
RIP  - 000000003E8B1234, CS  - 0000000000000038, RFLAGS - 0000000000010206
CR0  - 0000000080010033, CR2  - 000000003E900A48, CR3  - 000000003FC01000
!!!! Find image based on IP(0x3E8B1234) /build/shim/shimx64.efi.debug \
(ImageBase=000000003E8A0000, EntryPoint=000000003E8A1000) !!!!
"""


def replay_fault(stage: str, access: str, code: int, address: int) -> dict[str, Any]:
    return {"stage": stage, "access": access, "code": code, "address": address}


def test_aa64_release_reads_elr_only() -> None:
    f = parse_fault(AA64_RELEASE, "aa64")
    assert f is not None
    assert (f.exception, f.pc, f.code, f.data_address, f.image) == (
        "Synchronous", 0x6DDC198C, None, None, None)
    assert f.access is None and f.address is None


def test_aa64_release_compares_stage_and_elr_offset() -> None:
    f = parse_fault(AA64_RELEASE, "aa64")
    assert f is not None
    fields = compare_fault(f, "kernel-loaded", replay_fault("grub", "fetch", 0x8600000E,
                                                            0xBABF898C))
    compared = {x.name: (x.real, x.replay) for x in fields if x.compared}
    assert compared == {"stage": ("grub", "grub"), "ELR & 0xfff": ("0x98c", "0x98c")}
    assert all(x.ok for x in fields), mismatch_report(fields)
    # a replay entry 4 bytes off is caught
    bad = compare_fault(f, "kernel-loaded", replay_fault("grub", "fetch", 0x8600000E,
                                                         0xBABF8990))
    assert [x.name for x in bad if not x.ok] == ["ELR & 0xfff"]
    assert "MISMATCH" in mismatch_report(bad) and "0x990" in mismatch_report(bad)


def test_aa64_release_data_fault_offset_not_compared() -> None:
    # ELR is the instruction, not the data address: nothing to compare the offset with
    f = parse_fault(AA64_RELEASE, "aa64")
    assert f is not None
    fields = compare_fault(f, "kernel-loaded", replay_fault("grub", "write", 0x9600004F,
                                                            0x1234))
    assert [x.name for x in fields if x.compared] == ["stage"]


def test_aa64_debug_reads_esr_far_image() -> None:
    f = parse_fault(AA64_DEBUG, "aa64")
    assert f is not None
    assert (f.pc, f.code, f.data_address) == (0x6DDC198C, 0x8600000F, 0x6DDC198C)
    # ELR is in no loaded image (the kernel sits in grub's buffer): "PC 0x..." alone, and
    # the console marker names the stage
    assert f.image is None and f.stage is None
    assert f.access == "fetch" and f.address == 0x6DDC198C
    fields = compare_fault(f, "kernel-loaded", replay_fault("grub", "fetch", 0x8600000E,
                                                            0xBABF898C))
    got = {x.name: x.ok for x in fields}
    # this (written) dump says a level-3 permission fault (FSC 0x0f), the replay level 2
    # (0x0e): EC agrees, FSC is a mismatch
    assert got == {"stage": True, "access": True, "ESR.EC": True, "ESR.FSC": False,
                   "FAR & 0xfff": True}


def test_aa64_lab_debug_dump_agrees_with_the_replays_fault() -> None:
    """The real DEBUG AAVMF dump (the lab): ESR 0x8600000E, a level-2 permission fault."""
    f = parse_fault(AA64_LAB_DEBUG, "aa64")
    assert f is not None
    assert (f.pc, f.code, f.data_address, f.image) == (0x6DC5498C, 0x8600000E, 0x6DC5498C,
                                                         None)
    assert f.access == "fetch"
    fields = compare_fault(f, "kernel-loaded", replay_fault("grub", "fetch", 0x8600000E,
                                                            0xBABF898C))
    assert {x.name: x.ok for x in fields} == {"stage": True, "access": True, "ESR.EC": True,
                                               "ESR.FSC": True, "FAR & 0xfff": True}


def test_aa64_data_abort_write_read() -> None:
    text = " ESR 0x96000047          FAR 0x0000000000001008\n"
    f = parse_fault("Synchronous Exception at 0x000000007E8F2A10\n"
                    "PC 0x00007E8F2A10 (0x00007E8E3000+0x0000FA10) [ 0] grubaa64.efi\n"
                    + text, "aa64")
    assert f is not None and f.access == "write" and f.address == 0x1008
    assert f.image == "grubaa64.efi" and f.stage == "grub"
    f = parse_fault("Synchronous Exception at 0x0000000040001000\n"
                    + text.replace("96000047", "96000007"), "aa64")
    assert f is not None and f.access == "read"


def test_x64_fetch_uses_rip_and_caller_image() -> None:
    f = parse_fault(X64_FETCH, "x64")
    assert f is not None
    assert f.page_fault and f.code == 0x11 and f.access == "fetch"
    assert f.pc == f.address == 0x287AA2F0
    assert f.image == "(No" and f.stage is None  # no PDB: the console marker decides
    fields = compare_fault(f, "kernel-loaded", replay_fault("grub", "fetch", 0x11, 0x1000A2F0))
    assert {x.name: x.ok for x in fields} == {"stage": True, "access": True, "#PF error": True,
                                               "RIP & 0xfff": True}
    bad = compare_fault(f, "kernel-loaded", replay_fault("grub", "fetch", 0x11, 0x1000A000))
    assert [x.name for x in bad if not x.ok] == ["RIP & 0xfff"]


def test_x64_write_uses_cr2_and_image_stage() -> None:
    f = parse_fault(X64_WRITE, "x64")
    assert f is not None
    assert f.code == 0x3 and f.access == "write" and f.address == 0x3E900A48
    assert f.stage == "shim"
    # the image outranks the console marker
    fields = compare_fault(f, "grub", replay_fault("grub", "write", 0x3, 0x7A48))
    assert [x.name for x in fields if not x.ok] == ["stage"]
    assert {x.name for x in fields} >= {"CR2 & 0xfff", "#PF error"}


def test_no_dump() -> None:
    assert parse_fault("Linux version 6.1\n", "x64") is None
    assert parse_fault("Linux version 6.1\n", "aa64") is None


@pytest.mark.parametrize(("path", "stage"), [
    ("/build/shim/shimx64.efi.debug", "shim"), ("mmx64.efi", "shim"),
    ("C:\\grub\\grubx64.efi", "grub"), ("vmlinuz-6.1.0-50-arm64", "kernel"),
    ("/build/edk2/Build/OvmfX64/DEBUG_GCC5/X64/MmCommunicationDxe.dll", None),
    ("(No", None), (None, None),
])
def test_image_stage(path: str | None, stage: str | None) -> None:
    assert image_stage(path) == stage
