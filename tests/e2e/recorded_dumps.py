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

