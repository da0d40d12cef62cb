"""What a firmware image's bytes say about its build, and what they cannot say.

Every fact has a ``value`` and a ``basis``: how it was read from the image, or, when
``value`` is None, why it cannot be read (the setting is folded into code, or belongs to the
VM rather than the image). Nothing is guessed from file names or sizes. The detections and
their reliability were measured on Debian's OVMF/AAVMF builds (bookworm 2022.11, trixie
2025.02); see docs/firmware.md.

Sources of the signals (tianocore/edk2):

- memory attribute protocol: gEfiMemoryAttributeProtocolGuid
  (MdePkg/Include/Protocol/MemoryAttribute.h) is referenced by the CPU driver that installs it
  (UefiCpuPkg/CpuDxe/CpuDxe.c, ArmPkg/Drivers/CpuDxe/MemoryAttribute.c);
- its uninstall switch: BdsDxe's platform boot manager library reads the fw_cfg file
  ``opt/org.tianocore/UninstallMemAttrProtocol`` (PcdUninstallMemAttrProtocol);
- image verification: SecurityPkg/Library/DxeImageVerificationLib links into
  SecurityStubDxe and reads db/dbx (gEfiImageSecurityDatabaseGuid, L"dbx");
- authenticated variables: SecurityPkg/Library/AuthVariableLib links into the variable
  driver and handles CustomMode (gEfiCustomModeEnableGuid);
- release: PcdFirmwareVendor / PcdFirmwareVersionString are UCS-2 strings in BdsDxe,
  SmbiosPlatformDxe and UiApp; CodeView paths name the source tree (``/edk2-2025.02/Build/``);
- NX policy (PcdDxeNxMemoryProtectionPolicy, FixedAtBuild): folded into DxeCore's code as an
  immediate (AArch64 MOVZ+MOVK, x86-64 MOVABS) whose top bits are the OS-loader types' bits.
"""

from __future__ import annotations

import re
import struct
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from fwtools.formats.pe.image import PeImage
    from fwtools.formats.pi.image import FirmwareImage, Module

Value = str | int | bool | None

MEMORY_ATTRIBUTE_PROTOCOL: Final = uuid.UUID("f4560cf6-40ec-4b4a-a192-bf1d57d0b189")
IMAGE_SECURITY_DATABASE: Final = uuid.UUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")
CUSTOM_MODE_ENABLE: Final = uuid.UUID("c076ec0c-7028-4399-a072-71ee5c448b9f")
UNINSTALL_MEMATTR_FWCFG: Final = b"opt/org.tianocore/UninstallMemAttrProtocol"
NX_STACK_FWCFG: Final = b"opt/ovmf/PcdSetNxForStack"
# The volumes that name the platform (OvmfPkg/OvmfPkgX64.fdf, ArmVirtPkg/ArmVirtQemu.fdf).
OVMF_DXEFV: Final = uuid.UUID("7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1")
ARMVIRT_FVMAIN: Final = uuid.UUID("64074afe-340a-4be6-94ba-91b5b4d0f71e")

CPU_DRIVERS: Final = ("CpuDxe", "ArmCpuDxe")
VARIABLE_DRIVERS: Final = ("VariableSmm", "VariableStandaloneMm", "VariableRuntimeDxe")
# Drivers whose presence changes what a boot can do, in the order reported.
NOTABLE: Final = (
    "DxeCore", "CpuDxe", "ArmCpuDxe", "BdsDxe", "SecurityStubDxe", "SecureBootConfigDxe",
    "EnrollDefaultKeys", "VariableRuntimeDxe", "VariableSmm", "VariableSmmRuntimeDxe",
    "VariableStandaloneMm", "PiSmmCore", "PiSmmIpl", "FaultTolerantWriteSmm", "Tcg2Dxe",
    "TcgDxe", "Tcg2Pei", "TcgPei", "Shell", "UiApp",
)

_UCS2_RUN: Final = re.compile(rb"(?:[\x20-\x7e]\x00){6,120}")
_VERSION: Final = re.compile(r"\d{4}\.\d{2}(?:\.\d+)?(?:-[0-9A-Za-z.+~]+)?")
_VENDOR: Final = re.compile(r"(?:[A-Za-z][ -~]*?)?EDK II[ -~]*")
_CODEVIEW_TREE: Final = re.compile(rb"/edk2-(\d{4}\.\d{2}(?:\.\d+)?)[/-]")


@dataclass(frozen=True)
class Fact:
    """One thing the image says: ``value`` (None: unknown) and the ``basis`` for it."""

    name: str
    value: Value
    basis: str

    @property
    def known(self) -> bool:
        return self.value is not None


def _by_name(modules: Iterable[Module]) -> dict[str, list[Module]]:
    out: dict[str, list[Module]] = {}
    for m in modules:
        if m.name:
            out.setdefault(m.name, []).append(m)
    return out


def _contains(modules: list[Module], needle: bytes) -> bool:
    return any(needle in m.image_bytes for m in modules)


def _strings(modules: list[Module]) -> list[str]:
    out: list[str] = []
    for m in modules:
        out += [s.decode("utf-16-le") for s in _UCS2_RUN.findall(m.image_bytes)]
    return out


def firmware_facts(image: FirmwareImage) -> list[Fact]:
    """Everything :mod:`fwtools.formats.pi.facts` can read from ``image`` (walks it)."""
    mods = image.modules
    names = _by_name(mods)
    facts = [_platform(image, names)]
    facts += _release(image, names)
    facts += _memory_attribute(names)
    facts += _secure_boot(names)
    facts += _variables(names)
    facts.append(_nx_policy(names))
    facts += _unreadable(names)
    return facts


def notable_drivers(image: FirmwareImage) -> dict[str, bool]:
    """Whether each driver of :data:`NOTABLE` is in the image (by UI name)."""
    names = _by_name(image.modules)
    return {n: n in names for n in NOTABLE}


def version_sections(image: FirmwareImage) -> dict[str, int]:
    """The VERSION section strings of the modules and how many modules carry each."""
    return dict(Counter(m.version for m in image.modules if m.version).most_common())


# -- platform and release ----------------------------------------------------------------------

def _platform(image: FirmwareImage, names: dict[str, list[Module]]) -> Fact:
    core = names.get("DxeCore", [])
    machine = core[0].machine if core else None
    arch = {0x8664: "X64", 0xAA64: "AARCH64", 0x14C: "IA32", 0x5064: "RISCV64"}.get(
        machine or 0)
    volume_names = {fv.name for fv in image.all_volumes()}
    if OVMF_DXEFV in volume_names:
        platform = "OvmfPkg"
    elif ARMVIRT_FVMAIN in volume_names:
        platform = "ArmVirtQemu"
    else:
        platform = None
    if platform is None or arch is None:
        return Fact("platform", None, "no DxeCore or no OVMF/ArmVirt volume name GUID")
    return Fact("platform", f"{platform} {arch}",
                "DxeCore's PE machine and the DXE volume's name GUID")


def _release(image: FirmwareImage, names: dict[str, list[Module]]) -> list[Fact]:
    out: list[Fact] = []
    vendor_mods = names.get("BdsDxe", []) + names.get("SmbiosPlatformDxe", [])
    vendors = sorted({m.group(0) for s in _strings(vendor_mods) for m in [_VENDOR.search(s)]
                      if m})
    if vendors:
        out.append(Fact("firmware_vendor", vendors[0],
                        "PcdFirmwareVendor: UCS-2 string in BdsDxe/SmbiosPlatformDxe"))
    else:
        out.append(Fact("firmware_vendor", None, "no vendor string in BdsDxe/SmbiosPlatformDxe"))
    version_mods = (names.get("SmbiosPlatformDxe", []) + names.get("UiApp", [])
                    + names.get("Tcg2Pei", []))
    versions = Counter(m.group(0) for s in _strings(version_mods)
                       for m in [_VERSION.search(s)] if m)
    version = versions.most_common(1)[0][0] if versions else None
    out.append(Fact("firmware_version", version,
                    "PcdFirmwareVersionString: UCS-2 string in SmbiosPlatformDxe/UiApp"
                    if version else "no version string (edk2's default PCD is empty)"))
    trees = Counter(t.decode() for m in image.modules
                    for t in _CODEVIEW_TREE.findall(m.image_bytes))
    if trees:
        tree = trees.most_common(1)[0][0]
        out.append(Fact("edk2_release", f"edk2-stable{tree.replace('.', '')[:6]}",
                        f"CodeView path of the build tree (edk2-{tree})"))
    elif version and vendors and "Debian" in vendors[0] and re.match(r"\d{4}\.\d{2}", version):
        out.append(Fact("edk2_release", f"edk2-stable{version[:4]}{version[5:7]}",
                        "Debian's package version (upstream YYYY.MM) in PcdFirmwareVersionString"))
    else:
        out.append(Fact("edk2_release", None,
                        "no version string or debug path names the source release"))
    nx_images = sum(1 for m in image.modules if m.pe is not None and m.pe.nx_compat)
    out.append(Fact("genfw_nx_compat", nx_images > 0,
                    f"{nx_images} images have NX_COMPAT: BaseTools' GenFw sets it since 2023 "
                    "(TianoCore BZ 4487)" if nx_images else
                    "no image has NX_COMPAT: GenFw older than 2023, or every image fails "
                    "its checks"))
    return out


# -- drivers that matter ----------------------------------------------------------------------

def _memory_attribute(names: dict[str, list[Module]]) -> list[Fact]:
    guid = MEMORY_ATTRIBUTE_PROTOCOL.bytes_le
    cpu = [m for n in CPU_DRIVERS for m in names.get(n, [])]
    if not cpu:
        present = Fact("memory_attribute_protocol", None, "no CpuDxe/ArmCpuDxe in the image")
    elif _contains(cpu, guid):
        present = Fact("memory_attribute_protocol", True,
                       "gEfiMemoryAttributeProtocolGuid referenced by the CPU driver")
    else:
        present = Fact("memory_attribute_protocol", False,
                       "the CPU driver does not reference gEfiMemoryAttributeProtocolGuid")
    bds = names.get("BdsDxe", [])
    if not bds:
        switch = Fact("memory_attribute_uninstall_switch", None, "no BdsDxe in the image")
    else:
        has = _contains(bds, UNINSTALL_MEMATTR_FWCFG)
        switch = Fact("memory_attribute_uninstall_switch", has,
                      "BdsDxe reads fw_cfg opt/org.tianocore/UninstallMemAttrProtocol" if has
                      else "BdsDxe has no UninstallMemAttrProtocol fw_cfg switch")
    if switch.value is False:
        default = Fact("memory_attribute_uninstall_default", None,
                       "BdsDxe has no uninstall switch to take a default")
    else:
        default = _uninstall_default(bds[0] if bds else None)
    return [present, switch, default]


# x86-64, as GCC builds OvmfPkg's PlatformBootManagerLib: the default goes into the slot
# whose address is the parser's second argument, right after the fw_cfg name is loaded:
#   lea rdx, [rbp+slot]; lea rcx, [rip+name]; mov byte [rbp+slot], 0|1; call parser
_X64_UNINSTALL: Final = re.compile(
    rb"(?s)\x48\x8d\x95(....)\x48\x8d\x0d(....)\xc6\x85(....)([\x00\x01])\xe8")


def _uninstall_default(bds: Module | None) -> Fact:
    name = "memory_attribute_uninstall_default"
    folded = ("PcdUninstallMemAttrProtocol is folded into BdsDxe's code (compiler-dependent)"
              "; the VM's fw_cfg overrides it: identify the build or give it")
    pe = bds.pe if bds is not None else None
    if pe is None or pe.machine != 0x8664:
        return Fact(name, None, folded)
    data = bds.image_bytes if bds is not None else b""
    at = data.find(UNINSTALL_MEMATTR_FWCFG)
    text = next((s for s in pe.sections if s.execute), None)
    target = _rva(pe, at) if at >= 0 else None
    if text is None or target is None:
        return Fact(name, None, folded)
    code = pe.section_data(text)
    values = set()
    for m in _X64_UNINSTALL.finditer(code):
        slot, rel, stored, value = m.groups()
        lea_end = text.virtual_address + m.start(2) + 4
        if slot == stored and lea_end + int.from_bytes(rel, "little", signed=True) == target:
            values.add(value == b"\x01")
    if len(values) == 1:
        return Fact(name, values.pop(), "x86 BdsDxe: the byte stored into the fw_cfg parser's "
                    "default slot next to the name (GCC builds; the VM's fw_cfg overrides it)")
    return Fact(name, None, folded)


def _rva(pe: PeImage, offset: int) -> int | None:
    for s in pe.sections:
        if s.raw_offset <= offset < s.raw_offset + s.raw_size:
            return s.virtual_address + offset - s.raw_offset
    return None


def _secure_boot(names: dict[str, list[Module]]) -> list[Fact]:
    stub = names.get("SecurityStubDxe", [])
    if not stub:
        verify = Fact("image_verification", None, "no SecurityStubDxe in the image")
    else:
        linked = (_contains(stub, IMAGE_SECURITY_DATABASE.bytes_le)
                  and _contains(stub, "dbx".encode("utf-16-le")))
        verify = Fact("image_verification", linked,
                      "DxeImageVerificationLib in SecurityStubDxe (reads db/dbx)" if linked
                      else "SecurityStubDxe does not read db/dbx (no DxeImageVerificationLib)")
    var = [m for n in VARIABLE_DRIVERS for m in names.get(n, [])]
    if not var:
        auth = Fact("authenticated_variables", None, "no variable driver in the image")
    else:
        linked = _contains(var, CUSTOM_MODE_ENABLE.bytes_le)
        auth = Fact("authenticated_variables", linked,
                    "AuthVariableLib in the variable driver (CustomMode GUID)" if linked
                    else "the variable driver has no AuthVariableLib (no CustomMode GUID)")
    config = Fact("secure_boot_config_dxe", "SecureBootConfigDxe" in names,
                  "UI section names")
    if verify.value is True and auth.value is True:
        support = Fact("secure_boot", "supported",
                       "image verification and authenticated variables are built in")
    elif verify.value is False and auth.value is False:
        support = Fact("secure_boot", "not supported",
                       "neither image verification nor authenticated variables are built in")
    elif verify.known and auth.known:
        support = Fact("secure_boot", "partial",
                       "only one of image verification and authenticated variables")
    else:
        support = Fact("secure_boot", None, "security or variable driver not found")
    return [support, verify, auth, config]


def _variables(names: dict[str, list[Module]]) -> list[Fact]:
    if "VariableSmm" in names:
        value, basis = "smm", "VariableSmm (SMM) with VariableSmmRuntimeDxe"
    elif "VariableStandaloneMm" in names:
        value, basis = "standalone-mm", "VariableStandaloneMm"
    elif "VariableRuntimeDxe" in names:
        value, basis = "runtime-dxe", "VariableRuntimeDxe (no SMM protection of the store)"
    else:
        value, basis = None, "no variable driver found by UI name"
    smm = Fact("smm", "PiSmmCore" in names or "StandaloneMmCore" in names,
               "PiSmmCore / StandaloneMmCore by UI name")
    return [Fact("variable_driver", value, basis), smm]


# -- settings folded into code -------------------------------------------------------------------

_MOVZ: Final = 0xD2800000  # MOVZ Xd, #imm16, LSL #(hw*16): sf=1 opc=10 100101 hw imm16 Rd
_MOVK: Final = 0xF2800000  # MOVK Xd, #imm16, LSL #(hw*16): sf=1 opc=11
_MOV_MASK: Final = 0xFF800000
_HIGH_BITS: Final = 0xC000  # bits 63 and 62: the OEM and OS reserved memory types


# A MOVK Xd, #imm, LSL #48 word: top byte 0xF2, hw (bits 22:21) = 3 and bit 23 set.
_MOVK48: Final = re.compile(rb"(?=[\x00-\xff][\x00-\xff][\xe0-\xff]\xf2)")


def _aarch64_policy(code: bytes) -> set[int]:
    """Values built by MOVZ Xd,#lo then MOVK Xd,#hi,LSL #48 (within two instructions) with
    bits 63 and 62 set (EFI status codes have bit 63 alone) and a non-zero low half."""
    found: set[int] = set()
    for m in _MOVK48.finditer(code):
        pos = m.start()
        if pos % 4 or pos < 4:
            continue
        (b,) = struct.unpack_from("<I", code, pos)
        if b & _MOV_MASK != _MOVK or (b >> 21) & 3 != 3:
            continue
        hi = (b >> 5) & 0xFFFF
        if hi & _HIGH_BITS != _HIGH_BITS:
            continue
        for back in (4, 8):
            if pos - back < 0:
                break
            (a,) = struct.unpack_from("<I", code, pos - back)
            if (a & _MOV_MASK == _MOVZ and not (a >> 21) & 3 and a & 0x1F == b & 0x1F
                    and a & (0xFFFF << 5)):
                found.add(hi << 48 | (a >> 5) & 0xFFFF)
                break
    return found


def _x64_policy(code: bytes) -> set[int]:
    """MOVABS r64, imm64 (REX.W B8+r) immediates of the same shape."""
    found: set[int] = set()
    for m in re.finditer(rb"[\x48\x49][\xb8-\xbf]", code):
        imm = code[m.end() : m.end() + 8]
        if len(imm) == 8:
            value = int.from_bytes(imm, "little")
            high, low = value >> 48, value & 0xFFFF
            if high & _HIGH_BITS == _HIGH_BITS and low and not value >> 16 & 0xFFFFFFFF:
                found.add(value)
    return found


def _nx_policy(names: dict[str, list[Module]]) -> Fact:
    core = names.get("DxeCore", [])
    pe = core[0].pe if core else None
    name = "nx_memory_protection_policy"
    if pe is None:
        return Fact(name, None, "no DxeCore PE image")
    code = b"".join(pe.section_data(s) for s in pe.sections if s.execute)
    if pe.machine == 0xAA64:
        values = _aarch64_policy(code)
        how = "MOVZ+MOVK immediate in DxeCore"
    elif pe.machine == 0x8664:
        values = _x64_policy(code)
        how = "MOVABS immediate in DxeCore"
    else:
        return Fact(name, None, f"no detection for machine {pe.machine:#x}")
    if len(values) == 1:
        (value,) = values
        return Fact(name, f"{value:#018x}", how)
    if values:
        return Fact(name, None, f"{len(values)} candidate values in DxeCore: ambiguous")
    return Fact(name, None, "no policy immediate in DxeCore: 0, or folded differently; "
                            "identify the build or give it")


def _unreadable(names: dict[str, list[Module]]) -> list[Fact]:
    folded = "FixedAtBuild PCD folded into code by the compiler: identify the build or give it"
    out = [
        Fact("image_protection_policy", None, folded),
        Fact("cpu_stack_guard", None, folded),
        Fact("null_pointer_detection", None, folded),
    ]
    platform = names.get("PlatformPei", [])
    if platform and _contains(platform, NX_STACK_FWCFG):
        out.append(Fact("set_nx_for_stack", None,
                        "the VM's: PlatformPei reads fw_cfg opt/ovmf/PcdSetNxForStack "
                        "(default off)"))
    else:
        out.append(Fact("set_nx_for_stack", None, folded))
    return out
