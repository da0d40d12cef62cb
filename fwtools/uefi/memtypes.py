"""UEFI memory types and the per-type bit layout of edk2's NX policy.

Values from the UEFI 2.10 spec (MdePkg/Include/Uefi/UefiMultiPhase.h); the policy lookup is
edk2's ``GetPermissionAttributeForMemoryType`` (docs/reference/wx-model.md §1).
"""

from __future__ import annotations

import enum
from typing import Final

from fwtools.errors import UsageError


class MemoryType(enum.IntEnum):
    """EFI_MEMORY_TYPE."""

    RESERVED = 0
    LOADER_CODE = 1
    LOADER_DATA = 2
    BOOT_SERVICES_CODE = 3
    BOOT_SERVICES_DATA = 4
    RUNTIME_SERVICES_CODE = 5
    RUNTIME_SERVICES_DATA = 6
    CONVENTIONAL = 7
    UNUSABLE = 8
    ACPI_RECLAIM = 9
    ACPI_NVS = 10
    MMIO = 11
    MMIO_PORT_SPACE = 12
    PAL_CODE = 13
    PERSISTENT = 14
    UNACCEPTED = 15

    @property
    def efi_name(self) -> str:
        """The spec's name, e.g. ``EfiLoaderCode``."""
        return _EFI_NAMES[self]

    @property
    def short(self) -> str:
        """The name without ``Efi``, e.g. ``LoaderCode`` (what the TOML files use)."""
        return _EFI_NAMES[self][3:]

    @classmethod
    def parse(cls, text: str | int) -> MemoryType:
        """``LoaderCode``, ``EfiLoaderCode`` or the number."""
        if isinstance(text, int):
            try:
                return cls(text)
            except ValueError:
                raise UsageError(f"memory type {text} is not a UEFI memory type") from None
        key = text.strip()
        for t, name in _EFI_NAMES.items():
            if key in (name, name[3:]):
                return t
        if key.isdigit():
            return cls.parse(int(key))
        raise UsageError(
            f"unknown memory type {text!r} (one of {', '.join(n[3:] for n in _EFI_NAMES.values())})"
        )


_EFI_NAMES: Final = {
    MemoryType.RESERVED: "EfiReservedMemoryType",
    MemoryType.LOADER_CODE: "EfiLoaderCode",
    MemoryType.LOADER_DATA: "EfiLoaderData",
    MemoryType.BOOT_SERVICES_CODE: "EfiBootServicesCode",
    MemoryType.BOOT_SERVICES_DATA: "EfiBootServicesData",
    MemoryType.RUNTIME_SERVICES_CODE: "EfiRuntimeServicesCode",
    MemoryType.RUNTIME_SERVICES_DATA: "EfiRuntimeServicesData",
    MemoryType.CONVENTIONAL: "EfiConventionalMemory",
    MemoryType.UNUSABLE: "EfiUnusableMemory",
    MemoryType.ACPI_RECLAIM: "EfiACPIReclaimMemory",
    MemoryType.ACPI_NVS: "EfiACPIMemoryNVS",
    MemoryType.MMIO: "EfiMemoryMappedIO",
    MemoryType.MMIO_PORT_SPACE: "EfiMemoryMappedIOPortSpace",
    MemoryType.PAL_CODE: "EfiPalCode",
    MemoryType.PERSISTENT: "EfiPersistentMemory",
    MemoryType.UNACCEPTED: "EfiUnacceptedMemoryType",
}

#: The code types edk2's DEBUG build asserts are never NX (CoreInitializeMemoryProtection).
CODE_TYPES: Final = frozenset(
    {MemoryType.LOADER_CODE, MemoryType.BOOT_SERVICES_CODE, MemoryType.RUNTIME_SERVICES_CODE}
)

#: Image memory by PE subsystem (CoreLoadPeImage): (code type, data type).
SUBSYSTEM_TYPES: Final = {
    10: (MemoryType.LOADER_CODE, MemoryType.LOADER_DATA),  # EFI application
    11: (MemoryType.BOOT_SERVICES_CODE, MemoryType.BOOT_SERVICES_DATA),  # boot service driver
    12: (MemoryType.RUNTIME_SERVICES_CODE, MemoryType.RUNTIME_SERVICES_DATA),  # runtime driver
}

OEM_RESERVED_BIT: Final = 1 << 62
OS_RESERVED_BIT: Final = 1 << 63


def policy_bit(memory_type: int) -> int:
    """The bit of a per-type policy mask (NX policy, heap guard) that governs ``memory_type``."""
    if memory_type >= 0x8000_0000:
        return OS_RESERVED_BIT
    if memory_type >= 0x7000_0000:
        return OEM_RESERVED_BIT
    return 1 << memory_type


def nx_types(policy: int) -> list[str]:
    """The memory types a policy mask makes non-executable, by short name (for reports)."""
    out = [t.short for t in MemoryType if policy & policy_bit(t)]
    if policy & OEM_RESERVED_BIT:
        out.append("OEMReserved")
    if policy & OS_RESERVED_BIT:
        out.append("OSReserved")
    return out
