"""Page-table simulator: x86-64 4-level paging and AArch64 stage 1 with the 4 KiB granule.

Real entry formats in simulated physical memory, walked like the MMU (Intel SDM Vol. 3A
§4.5-4.7; Arm ARM D8). :mod:`.model` is the arch-neutral interface and engine,
:mod:`.x86_64` and :mod:`.aarch64` the encodings and fault rules. See
``docs/reference/wx-model.md`` §5 for how edk2 uses them.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fwtools.paging.aarch64 import AArch64PageTable, Abort
    from fwtools.paging.model import (
        AccessKind,
        AccessResult,
        Attributes,
        EntryKind,
        Fault,
        MappedRange,
        MemAttr,
        NotMappedError,
        Ok,
        PageTable,
        PagingError,
        Permissions,
        PhysicalMemory,
        Walk,
        WalkStep,
    )
    from fwtools.paging.x86_64 import PageFault, X64PageTable

__all__ = [
    "AArch64PageTable",
    "Abort",
    "AccessKind",
    "AccessResult",
    "Attributes",
    "EntryKind",
    "Fault",
    "MappedRange",
    "MemAttr",
    "NotMappedError",
    "Ok",
    "PageFault",
    "PageTable",
    "PagingError",
    "Permissions",
    "PhysicalMemory",
    "Walk",
    "WalkStep",
    "X64PageTable",
]

# The names load with their module on first use, so a replay on one architecture does not
# import the other's encodings (PEP 562).
_HOME = {"AArch64PageTable": "aarch64", "Abort": "aarch64", "PageFault": "x86_64",
         "X64PageTable": "x86_64"}


def __getattr__(name: str) -> object:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{_HOME.get(name, 'model')}"), name)
    globals()[name] = value
    return value
