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


# captured 2026-12-07 from tests/e2e/test_lab.py::test_lab_boot[bookworm-aa64-strict-sb] (the
# lab's DEBUG AAVMF, edk2 2025.02-8+deb13u1): an excerpt, verbatim lines in order; the 35
# callers of the backtrace and the X/V register dump are left out
AA64_LAB_DEBUG: Final = """\
FWTOOLS-KERNEL-LOADED



Synchronous Exception at 0x000000006DC5498C
PC 0x00006DC5498C
PC 0x00007D77FA48
  SP 0x0000000047542220  ELR 0x000000006DC5498C  SPSR 0x60000205  FPSR 0x00000000
 ESR 0x8600000E          FAR 0x000000006DC5498C
 ESR : EC 0x21  IL 0x1  ISS 0x0000000E
Instruction abort: Permission fault, second level
Synchronous Exception at 0x000000006DC5498C
ASSERT [ArmCpuDxe] DefaultExceptionHandler.c(339): ((BOOLEAN)(0==1))
"""
