"""Consoles of real faulting boots, for the tests that check dumps.py and the replay without
QEMU (test_dumps.py; test_boot_chains.py's test_simulator_fault)."""

from __future__ import annotations

from typing import Final

# captured 2026-12 (serial.log, after clean_serial); the handler prints its line twice
AA64_RELEASE: Final = """\
BdsDxe: starting Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x1,0x0)
Welcome to GRUB!

FWTOOLS-GRUB-MARKER
FWTOOLS-KERNEL-LOADED


Synchronous Exception at 0x000000006DDC198C


Synchronous Exception at 0x000000006DDC198C
"""


def x64_lab_dump(error_code: int, rip: int, cr2: int) -> str:
    """The lines of an edk2 X64 #PF dump that dumps.py reads, from the values the lab recorded
    (tests/e2e/lab/README.md "Results": the table keeps ExceptionData, RIP and CR2, not the
    verbatim console)."""
    return ("!!!! X64 Exception Type - 0E(#PF - Page-Fault)  CPU Apic ID - 00000000 !!!!\n"
            f"ExceptionData - {error_code:016X}\n"
            f"RIP  - {rip:016X}, CS  - 0000000000000038, RFLAGS - 0000000000010206\n"
            f"CR0  - 0000000080010033, CR2  - {cr2:016X}, CR3  - 000000003FC01000\n")
