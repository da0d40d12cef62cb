"""fwtools.uefi.profile: firmware profiles in policies/firmware/.

The Debian profiles are checked against the Debian source packages (facts and file:line
citations in /tmp/research/findings.md Q1, quoted in the comments below).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fwtools.errors import UsageError
from fwtools.uefi.profile import (
    RELEASE_ARM_MAP,
    RELEASE_X86_MAP,
    FirmwareProfile,
    MuSettings,
    firmware_dir,
    load_firmware,
    shipped_firmware,
)

STRICT = 0xC000000000007FD5
COMPAT = 0xC000000000007FD1


@pytest.mark.parametrize("name", shipped_firmware())
def test_every_shipped_profile_loads(name: str) -> None:
    p = load_firmware(name)
    assert p.name == name
    assert p.path == str(Path(firmware_dir()) / f"{name}.toml")
    assert p.description
    assert p.sources, "every profile cites where its settings come from"
    assert p.arch in (None, "x64", "aa64")
    assert p.flavour in ("edk2", "mu")
    assert (p.mu is not None) == (p.flavour == "mu")


def test_shipped_list_and_lookup_by_path() -> None:
    names = shipped_firmware()
    assert {"ovmf", "ovmf-strict", "armvirt", "mu-ship", "debian13-ovmf"} <= set(names)
    by_path = load_firmware(Path(firmware_dir()) / "ovmf.toml")
    assert by_path == load_firmware("ovmf")


def test_unknown_profile_names_the_shipped_ones() -> None:
    with pytest.raises(UsageError, match=r"unknown firmware profile 'nope'.*ovmf"):
        load_firmware("nope")


# ---- extends ------------------------------------------------------------------------


def test_extends_inherits_and_overrides() -> None:
    base = load_firmware("ovmf")
    strict = load_firmware("ovmf-strict")
    assert strict.nx_policy == STRICT
    assert strict.nx_policy != base.nx_policy
    for field in ("arch", "edk2_release", "image_protection", "memory_attribute_protocol",
                  "debug_clear_memory", "stack_nx"):
        assert getattr(strict, field) == getattr(base, field), field


def test_extends_chain_accumulates_sources() -> None:
    # debian13-ovmf-lab-strict -> debian13-ovmf-strictnx -> debian13-ovmf
    root = load_firmware("debian13-ovmf")
    mid = load_firmware("debian13-ovmf-strictnx")
    leaf = load_firmware("debian13-ovmf-lab-strict")
    assert mid.sources[: len(root.sources)] == root.sources
    assert leaf.sources[: len(mid.sources)] == mid.sources
    assert len(leaf.sources) == len(mid.sources) + 1 == len(root.sources) + 2
    assert leaf.memory_attribute_protocol  # from the middle
    assert leaf.edk2_release == 202502  # from the root
    assert leaf.nx_policy == STRICT  # its own


def test_mu_debug_extends_mu_ship() -> None:
    ship, debug = load_firmware("mu-ship"), load_firmware("mu-debug")
    assert debug.flavour == "mu"
    assert ship.mu == MuSettings(block_images_without_nx=False, free_memory_read_protected=True)
    assert debug.mu == MuSettings(block_images_without_nx=True, free_memory_read_protected=True)
    # docs/reference/wx-model.md §1.4: _DEBUG sets NX on the code types too, _SHIP_MODE does not
    assert debug.nx_policy & 0b101010 == 0b101010
    assert ship.nx_policy & 0b101010 == 0


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_extends_from_a_file(tmp_path: Path) -> None:
    base = write(tmp_path, "base", 'arch = "aa64"\nedk2_release = 202305\nsources = ["a"]\n')
    child = write(tmp_path, "child", f'extends = "{base}"\nnx_policy = 0x10\nsources = ["b"]\n')
    p = load_firmware(child)
    assert (p.name, p.arch, p.edk2_release, p.nx_policy) == ("child", "aa64", 202305, 0x10)
    assert p.sources == ("a", "b")
    assert p.path == str(child)


def test_extends_cycle_is_refused(tmp_path: Path) -> None:
    a = tmp_path / "a.toml"
    b = tmp_path / "b.toml"
    a.write_text(f'extends = "{b}"\n', encoding="utf-8")
    b.write_text(f'extends = "{a}"\n', encoding="utf-8")
    with pytest.raises(UsageError, match="nests deeper"):
        load_firmware(a)


def test_name_key_and_hex_strings(tmp_path: Path) -> None:
    p = load_firmware(write(tmp_path, "x", 'name = "other"\nnx_policy = "0x7FD5"\n'))
    assert p.name == "other"
    assert p.nx_policy == 0x7FD5


# ---- validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('arch = "ia32"', "arch must be one of x64, aa64"),
        ('arch = 64', "arch must be a string"),
        ('flavour = "coreboot"', "flavour must be edk2 or mu"),
        ("edk2_release = 202513", "edk2_release 202513 is not YYYYMM"),
        ("edk2_release = 201412", "is not YYYYMM"),
        ("edk2_release = 2025", "is not YYYYMM"),
        ("nx_policy = -1", "nx_policy -0x1 is not a UINT64"),
        ("nx_policy = 0x1_0000_0000_0000_0000", "is not a UINT64"),
        ("image_protection = 0x1_0000_0000", "is not a UINT32"),
        ("memory_mib = 32", "memory_mib must be 64 MiB"),
        ("memory_attribute_protocol = 1", "memory_attribute_protocol must be true or false"),
        ('stack_nx = "yes"', "stack_nx must be true or false"),
        ("nx_policy = true", "nx_policy must be an integer"),
        ('nx_policy = "strict"', "nx_policy must be an integer"),
        ("nx_policy = 1.5", "nx_policy must be an integer"),
        ('sources = "x"', "sources must be a list of strings"),
        ("sources = [1]", "sources must be a list of strings"),
        ("colour = 1", "unknown key 'colour'"),
        ("[mu]\nblock_images_without_nx = 1", r"\[mu\] takes booleans"),
        ("[mu]\nunknown = true", r"\[mu\] takes booleans"),
        ('description = 3', "description must be a string"),
        ('extends = 3', "extends must be a string"),
    ],
)
def test_validation_errors_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "bad", text + "\n")
    with pytest.raises(UsageError, match=message) as e:
        load_firmware(path)
    assert str(path) in str(e.value)


def test_mu_must_be_a_table(tmp_path: Path) -> None:
    path = write(tmp_path, "bad", "mu = 1\n")
    with pytest.raises(UsageError) as e:
        load_firmware(path)
    assert str(path) in str(e.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "broken", "nx_policy = = 1\n")
    with pytest.raises(UsageError) as e:
        load_firmware(path)
    assert str(path) in str(e.value)


# ---- with_overrides -------------------------------------------------------------------


def test_with_overrides() -> None:
    base = load_firmware("ovmf")
    assert base.with_overrides() is base
    assert base.with_overrides(nx_policy=None) is base
    strict = base.with_overrides(nx_policy=STRICT, stack_nx=True)
    assert (strict.nx_policy, strict.stack_nx) == (STRICT, True)
    assert strict.name == base.name
    assert base.nx_policy == 0  # frozen: the original is untouched


def test_with_overrides_validates() -> None:
    base = load_firmware("ovmf")
    with pytest.raises(UsageError, match=r"unknown firmware parameter.*colour"):
        base.with_overrides(colour=1)
    with pytest.raises(UsageError, match="command line: edk2_release 202599"):
        base.with_overrides(edk2_release=202599)
    with pytest.raises(UsageError, match="command line: arch"):
        base.with_overrides(arch="riscv64")


# ---- map_available -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "release", "installed", "expected"),
    [
        # docs/reference/wx-model.md §4 table, "First release": x86 CpuDxe edk2-stable202502
        # (efaa102d00)
        ("x64", 202411, True, False),
        ("x64", RELEASE_X86_MAP, True, True),
        ("x64", 202605, True, True),
        ("x64", 202605, False, False),
        # ... ArmPkg CpuDxe edk2-stable202305 (1c4dfadb46)
        ("aa64", 202302, True, False),
        ("aa64", RELEASE_ARM_MAP, True, True),
        ("aa64", 202502, True, True),
        ("aa64", 202502, False, False),
    ],
)
def test_map_available(arch: str, release: int, installed: bool, expected: bool) -> None:
    p = FirmwareProfile(name="t", edk2_release=release, memory_attribute_protocol=installed)
    assert p.map_available(arch) is expected  # type: ignore[arg-type]


def test_release_constants() -> None:
    assert (RELEASE_X86_MAP, RELEASE_ARM_MAP) == (202502, 202305)


# ---- Debian profiles against the source packages (findings.md Q1) --------------------


def test_debian13_ovmf_matches_debian_rules() -> None:
    p = load_firmware("debian13-ovmf")
    assert p.arch == "x64"
    assert p.edk2_release == 202502  # edk2 2025.02-8+deb13u1
    # no image passes PcdDxeNxMemoryProtectionPolicy / PcdImageProtectionPolicy; DEC defaults
    # 0 (MdeModulePkg.dec:1519) and 0x2 (dec:1486); OvmfPkgX64.dsc sets neither
    assert p.nx_policy == 0
    assert p.image_protection == 0x2
    # debian/rules:40 NO_STRICTNX_COMMON_FLAGS = --pcd PcdUninstallMemAttrProtocol=TRUE, used
    # by OVMF_CODE_4M.fd (rules:47) and OVMF_CODE_4M.secboot.fd (rules:48)
    assert p.memory_attribute_protocol is False
    assert not p.map_available("x64")
    # OvmfPkgX64.dsc:665 PcdSetNxForStack|FALSE
    assert p.stack_nx is False
    # OvmfPkgX64.dsc:575 PcdDebugPropertyMask|0x2F with PlatformDebugLibIoPort: freed pages
    # are cleared even in RELEASE builds
    assert p.debug_clear_memory is True


def test_debian13_ovmf_strictnx_keeps_the_protocol() -> None:
    p = load_firmware("debian13-ovmf-strictnx")
    base = load_firmware("debian13-ovmf")
    # debian/rules:49, 185-192: the strictnx image is built without the Uninstall PCD
    assert p.memory_attribute_protocol is True
    assert p.map_available("x64")  # 202502 >= x86 first release (CpuDxe.c:1039)
    for field in ("edk2_release", "nx_policy", "image_protection", "stack_nx",
                  "debug_clear_memory"):
        assert getattr(p, field) == getattr(base, field), field


def test_debian13_aavmf_matches_debian_rules() -> None:
    p = load_firmware("debian13-aavmf")
    assert p.arch == "aa64"
    assert p.edk2_release == 202502
    # ArmVirt.dsc.inc:401 PcdDxeNxMemoryProtectionPolicy|0xC000000000007FD5 (trixie has no
    # LoaderData revert), :392 PcdImageProtectionPolicy|0x3, :403 PcdCpuStackGuard|TRUE
    assert p.nx_policy == STRICT
    assert p.image_protection == 0x3
    assert p.stack_guard is True
    # ArmVirtQemu.dsc:215 PcdSetNxForStack|TRUE
    assert p.stack_nx is True
    # debian/rules:59-60: AAVMF_CODE.{no-secboot,secboot}.fd get UninstallMemAttr=TRUE
    assert p.memory_attribute_protocol is False
    # ArmVirt.dsc.inc:330-333: RELEASE PcdDebugPropertyMask 0x21, no clearing
    assert p.debug_clear_memory is False
    strictnx = load_firmware("debian13-aavmf-strictnx")
    # debian/rules:61, 280-286: AAVMF_CODE.secboot.strictnx.fd keeps the protocol
    assert strictnx.memory_attribute_protocol and strictnx.map_available("aa64")
    assert strictnx.nx_policy == STRICT


def test_debian12_profiles_match_debian_rules() -> None:
    ovmf = load_firmware("debian12-ovmf")
    aavmf = load_firmware("debian12-aavmf")
    assert ovmf.edk2_release == aavmf.edk2_release == 202211  # edk2 2022.11-6+deb12u2
    # "2022.11: the MAP is absent" (no gEfiMemoryAttributeProtocolGuid in the tree)
    assert not ovmf.map_available("x64")
    assert not aavmf.map_available("aa64")
    # DEC defaults dec:1395 (NX 0) and dec:1362 (0x2); X64.dsc:670 PcdSetNxForStack FALSE
    assert (ovmf.nx_policy, ovmf.image_protection, ovmf.stack_nx) == (0, 0x2, False)
    # ArmVirt.dsc.inc:371 0xC000000000007FD1 (Debian patch Revert-ArmVirtPkg-make-
    # EFI_LOADER_DATA-non-executabl.patch, #1025656), :364 image protection 0x3
    assert aavmf.nx_policy == COMPAT
    assert aavmf.image_protection == 0x3
    # ArmVirtQemu.dsc:214 PcdSetNxForStack|TRUE
    assert aavmf.stack_nx is True
    # LoaderData (bit 2) executable, LoaderCode (bit 1) executable in both ArmVirt values
    assert not aavmf.nx_policy & 0x4
    assert not aavmf.nx_policy & 0x2
