"""Firmware profiles: the memory-protection settings of one firmware build, as data.

A profile is a TOML file in ``policies/firmware/`` (docs/reference/wx-model.md §1-4 name every
knob)::

    name = "ovmf-strict"
    extends = "ovmf"                  # optional: start from another profile
    description = "..."
    arch = "x64"                      # x64 | aa64 | omitted = either
    flavour = "edk2"                  # edk2 | mu
    edk2_release = 202505             # YYYYMM of the edk2-stable tag the build is based on
    nx_policy = 0xC000000000007FD5    # PcdDxeNxMemoryProtectionPolicy / Mu NxProtectionPolicy
    image_protection = 0x2            # PcdImageProtectionPolicy: BIT0 unknown source, BIT1 FV
    memory_attribute_protocol = true  # EFI_MEMORY_ATTRIBUTE_PROTOCOL installed at boot
    stack_nx = false                  # PcdSetNxForStack
    stack_guard = false               # PcdCpuStackGuard
    null_detection = false            # PcdNullPointerDetectionPropertyMask BIT0
    debug_clear_memory = false        # DEBUG_PROPERTY_CLEAR_MEMORY_ENABLED: FreePages poisons
    la57 = false                      # x86 5-level paging (PcdUse5LevelPageTable, CR4.LA57)
    memory_mib = 2048                 # guest RAM the replay maps
    sources = ["tianocore/edk2: OvmfPkg/OvmfPkgX64.dsc", ...]

    [mu]                              # Project Mu's DXE_MEMORY_PROTECTION_SETTINGS extras
    block_images_without_nx = false   # ImageProtectionPolicy.BlockImagesWithoutNxFlag
    free_memory_read_protected = true # FreeMemoryReadProtected
"""

from __future__ import annotations

import os
from typing import Any, Final, Literal

from fwtools._base.record import Record, fields_of, replace
from fwtools._base.tomlfile import policies_dir, read_toml, shipped_file, shipped_names, table
from fwtools.errors import UsageError

Arch = Literal["x64", "aa64"]
ARCHES: Final[tuple[Arch, ...]] = ("x64", "aa64")

#: PcdImageProtectionPolicy bits (MdeModulePkg.dec).
PROTECT_UNKNOWN_SOURCE: Final = 0x1
PROTECT_FV: Final = 0x2

#: edk2-stable releases where behaviour the replay models changed (docs/reference/wx-model.md §2-4).
RELEASE_X86_MAP: Final = 202502  # x86 CpuDxe installs EFI_MEMORY_ATTRIBUTE_PROTOCOL
RELEASE_ARM_MAP: Final = 202305  # ArmPkg CpuDxe installs it
RELEASE_CNT_CODE_SECTIONS: Final = 202405  # code sections = IMAGE_SCN_CNT_CODE
RELEASE_UNALIGNED_RWX: Final = 202505  # unprotectable images explicitly set RWX via the GCD
RELEASE_FREE_CHECKS_MAP: Final = 202508  # FreePages leaks RO/RP pages instead of poisoning


class MuSettings(Record):
    """Project Mu's DXE memory protection extras (docs/reference/wx-model.md §1.4, §2.3)."""

    block_images_without_nx: bool = False
    free_memory_read_protected: bool = False


class FirmwareProfile(Record):
    _uncompared = frozenset({"path"})  # field(compare=False)
    name: str
    description: str = ""
    arch: Arch | None = None
    flavour: Literal["edk2", "mu"] = "edk2"
    edk2_release: int = 202505
    nx_policy: int = 0
    image_protection: int = PROTECT_FV
    memory_attribute_protocol: bool = True
    stack_nx: bool = False
    stack_guard: bool = False
    null_detection: bool = False
    debug_clear_memory: bool = False
    la57: bool = False
    memory_mib: int = 2048
    mu: MuSettings | None = None
    sources: tuple[str, ...] = ()
    path: str | None = None

    def map_available(self, arch: Arch) -> bool:
        """Whether the protocol exists in this release on ``arch`` and is left installed."""
        if self.flavour == "mu":
            # Mu installs it per its own InstallMemoryAttributeProtocol setting (§1.4, §4)
            return self.memory_attribute_protocol
        first = RELEASE_X86_MAP if arch == "x64" else RELEASE_ARM_MAP
        return self.memory_attribute_protocol and self.edk2_release >= first

    def with_overrides(self, **changes: Any) -> FirmwareProfile:
        """A copy with the named parameters changed (None values are ignored)."""
        real = {k: v for k, v in changes.items() if v is not None}
        if not real:
            return self
        unknown = set(real) - set(self._fields)
        if unknown:
            raise UsageError(f"unknown firmware parameter(s): {', '.join(sorted(unknown))}")
        out = replace(self, **real)
        _validate(out, "command line")
        return out


def firmware_dir() -> str:
    return os.path.join(policies_dir(), "firmware")


def shipped_firmware() -> list[str]:
    """Names of the shipped firmware profiles."""
    return shipped_names(firmware_dir())


_MAX_EXTENDS: Final = 8
_INT_FIELDS: Final = ("edk2_release", "nx_policy", "image_protection", "memory_mib")
_BOOL_FIELDS: Final = (
    "memory_attribute_protocol", "stack_nx", "stack_guard", "null_detection",
    "debug_clear_memory", "la57",
)


def load_firmware(ref: str | os.PathLike[str]) -> FirmwareProfile:
    """A shipped profile by name, or a profile file by path."""
    return _load(os.fspath(ref), 0)


def _resolve(ref: str) -> str:
    if ref.endswith(".toml") or os.sep in ref or "/" in ref:
        return ref
    return shipped_file(firmware_dir(), ref, "firmware profile", shipped_firmware())


def _load(ref: str, depth: int) -> FirmwareProfile:
    if depth > _MAX_EXTENDS:
        raise UsageError(f"firmware profile {ref}: 'extends' nests deeper than {_MAX_EXTENDS}")
    path = _resolve(ref)
    data = read_toml(path, "firmware profile")
    where = f"firmware profile {path}"
    values: dict[str, Any] = {}
    if "extends" in data:
        base = _load(_str(data.pop("extends"), f"{where}: extends"), depth + 1)
        values = fields_of(base)
    stem = os.path.splitext(os.path.basename(path))[0]
    values["name"] = stem if "name" not in data else _str(data.pop("name"), where)
    values["path"] = str(path)
    for key, value in data.items():
        if key in ("description", "flavour", "arch"):
            values[key] = _str(value, f"{where}: {key}")
        elif key in _INT_FIELDS:
            values[key] = _int(value, f"{where}: {key}")
        elif key in _BOOL_FIELDS:
            if not isinstance(value, bool):
                raise UsageError(f"{where}: {key} must be true or false")
            values[key] = value
        elif key == "sources":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise UsageError(f"{where}: sources must be a list of strings")
            # an extending profile adds its sources to the base's
            values[key] = (*values.get(key, ()), *value)
        elif key == "mu":
            mu = table(value, f"{where}: [mu]")
            names = set(MuSettings._fields)
            bad = set(mu) - names
            if bad or not all(isinstance(v, bool) for v in mu.values()):
                raise UsageError(f"{where}: [mu] takes booleans {', '.join(sorted(names))}")
            values[key] = MuSettings(**mu)
        else:
            raise UsageError(f"{where}: unknown key {key!r}")
    profile = FirmwareProfile(**values)
    _validate(profile, where)
    return profile


def _validate(p: FirmwareProfile, where: str) -> None:
    if p.arch is not None and p.arch not in ARCHES:
        raise UsageError(f"{where}: arch must be one of {', '.join(ARCHES)}")
    if p.flavour not in ("edk2", "mu"):
        raise UsageError(f"{where}: flavour must be edk2 or mu")
    if not 201501 <= p.edk2_release <= 209912 or not 1 <= p.edk2_release % 100 <= 12:
        raise UsageError(f"{where}: edk2_release {p.edk2_release} is not YYYYMM")
    if not 0 <= p.nx_policy < 1 << 64:
        raise UsageError(f"{where}: nx_policy {p.nx_policy:#x} is not a UINT64")
    if not 0 <= p.image_protection < 1 << 32:
        raise UsageError(f"{where}: image_protection {p.image_protection:#x} is not a UINT32")
    if not 64 <= p.memory_mib <= 1 << 24:
        raise UsageError(f"{where}: memory_mib must be 64 MiB .. 16 TiB")


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{where} must be a string")
    return value


def _int(value: object, where: str) -> int:
    if isinstance(value, bool):
        raise UsageError(f"{where} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            pass
    raise UsageError(f"{where} must be an integer (decimal or 0x hex)")
