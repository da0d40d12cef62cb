"""formats/pi on every Debian OVMF/AAVMF image of the corpus (bookworm 2022.11, trixie 2025.02).

Expected numbers are docs/reference/pi-firmware.md's (section 3, measured with a throwaway
walker) and Debian's debian/rules; the FFS file lists are compared with an independent
parser, uefi-firmware-parser (PyPI uefi_firmware, a test-only dependency).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from corpus.params import corpus_files, need, unavailable

from fwtools.formats.pi import FirmwareImage
from fwtools.formats.pi.facts import firmware_facts

IMAGES = corpus_files("*/amd64/ovmf/usr/share/OVMF/OVMF_CODE*.fd",
                      "*/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF_CODE*.fd",
                      "*/amd64/ovmf/usr/share/ovmf/OVMF.fd",
                      "*/all/qemu-efi-aarch64/usr/share/qemu-efi-aarch64/QEMU_EFI.fd")

# (suite, file) -> (modules, PE, TE, 4 KiB-aligned PE, NX_COMPAT PE, DXE PE, MM)
EXPECTED: dict[tuple[str, str], tuple[int, int, int, int, int, int, int]] = {
    ("bookworm", "AAVMF_CODE.fd"): (106, 96, 10, 96, 0, 96, 0),
    ("bookworm", "AAVMF_CODE.ms.fd"): (106, 96, 10, 96, 0, 96, 0),
    ("bookworm", "AAVMF_CODE.snakeoil.fd"): (106, 96, 10, 96, 0, 96, 0),
    ("bookworm", "OVMF_CODE.fd"): (127, 127, 0, 10, 0, 112, 0),
    ("bookworm", "OVMF_CODE.ms.fd"): (139, 139, 0, 18, 0, 113, 8),
    ("bookworm", "OVMF_CODE.secboot.fd"): (139, 139, 0, 18, 0, 113, 8),
    ("bookworm", "OVMF_CODE_4M.fd"): (124, 124, 0, 10, 0, 110, 0),
    ("bookworm", "OVMF_CODE_4M.ms.fd"): (136, 136, 0, 18, 0, 111, 8),
    ("bookworm", "OVMF_CODE_4M.secboot.fd"): (136, 136, 0, 18, 0, 111, 8),
    ("bookworm", "OVMF_CODE_4M.snakeoil.fd"): (136, 136, 0, 18, 0, 111, 8),
    ("trixie", "AAVMF_CODE.fd"): (103, 97, 6, 97, 97, 97, 0),
    ("trixie", "AAVMF_CODE.ms.fd"): (105, 95, 10, 95, 95, 95, 0),
    ("trixie", "AAVMF_CODE.no-secboot.fd"): (103, 97, 6, 97, 97, 97, 0),
    ("trixie", "AAVMF_CODE.secboot.fd"): (105, 95, 10, 95, 95, 95, 0),
    ("trixie", "AAVMF_CODE.secboot.strictnx.fd"): (105, 95, 10, 95, 95, 95, 0),
    ("trixie", "AAVMF_CODE.snakeoil.fd"): (105, 95, 10, 95, 95, 95, 0),
    ("trixie", "OVMF_CODE_4M.fd"): (134, 134, 0, 10, 10, 118, 0),
    ("trixie", "OVMF_CODE_4M.ms.fd"): (143, 143, 0, 19, 19, 115, 9),
    ("trixie", "OVMF_CODE_4M.secboot.fd"): (143, 143, 0, 19, 19, 115, 9),
    ("trixie", "OVMF_CODE_4M.secboot.strictnx.fd"): (143, 143, 0, 19, 19, 115, 9),
    ("trixie", "OVMF_CODE_4M.snakeoil.fd"): (143, 143, 0, 19, 19, 115, 9),
    ("bookworm", "OVMF.fd"): (127, 127, 0, 10, 0, 112, 0),
    ("trixie", "OVMF.fd"): (134, 134, 0, 10, 10, 118, 0),
    ("bookworm", "QEMU_EFI.fd"): (106, 96, 10, 96, 0, 96, 0),
    ("trixie", "QEMU_EFI.fd"): (103, 97, 6, 97, 97, 97, 0),
}

_CACHE: dict[Path, FirmwareImage] = {}


def _image(path: Path | None) -> FirmwareImage:
    p = need(path)
    if p not in _CACHE:
        _CACHE.clear()  # one image at a time: AAVMF images are 64 MiB
        _CACHE[p] = FirmwareImage.open(p)
    return _CACHE[p]


def _key(path: Path) -> tuple[str, str]:
    return path.relative_to(path.parents[len(path.parents) - 1]).parts[0], path.name


def _suite(path: Path) -> str:
    return next(p for p in path.parts if p in ("bookworm", "trixie"))


@pytest.mark.parametrize("path", IMAGES)
def test_volumes_and_module_counts(path: Path | None) -> None:
    image = _image(path)
    assert path is not None
    volumes = list(image.all_volumes())
    assert all(v.header_checksum_ok and not v.anomalies for v in volumes)
    assert image.problems() == []
    mods = image.modules
    pe = [m.pe for m in mods if m.pe is not None]
    got = (len(mods), len(pe), sum(1 for m in mods if m.te is not None),
           sum(1 for p in pe if p.section_alignment % 4096 == 0),
           sum(1 for p in pe if p.nx_compat),
           sum(1 for m in mods if m.pe is not None
               and m.file_type in ("DXE_CORE", "DRIVER", "APPLICATION")),
           sum(1 for m in mods if m.file_type in ("MM", "MM_CORE", "COMBINED_MM_DXE")))
    assert got == EXPECTED[(_suite(path), path.name)]
    assert not any(m.image_error for m in mods)
    assert not any(m.wx_sections for m in mods)  # reference section 3: no W+X anywhere
    names = {m.name for m in mods}
    assert {"DxeCore", "BdsDxe", "SecurityStubDxe"} <= names
    assert names & {"CpuDxe", "ArmCpuDxe"}
    assert names & {"VariableRuntimeDxe", "VariableSmm"}
    files = [f for v in volumes for f in v.files]
    assert all(f.header_checksum_ok and f.data_checksum_ok for f in files)
    fs = {v.name for v in volumes}
    if "AAVMF" in path.name or "QEMU_EFI" in path.name:
        assert {m.machine for m in mods} == {0xAA64}
        assert all(m.te is not None for m in mods if m.file_type in ("PEIM", "PEI_CORE",
                                                                      "SECURITY_CORE"))
        assert "FvMain" in {v.display_name for v in volumes}
    else:
        assert {"PEIFV", "DXEFV", "SECFV", "FVMAIN_COMPACT"} <= {v.display_name for v in volumes}
        assert fs  # named volumes
    assert image.has_variable_store == (path.name == "OVMF.fd")


# What debian/rules builds each variant with (reference sections 4-5).
@pytest.mark.parametrize("path", IMAGES)
def test_facts(path: Path | None) -> None:
    image = _image(path)
    assert path is not None
    facts = {f.name: f for f in firmware_facts(image)}
    trixie = _suite(path) == "trixie"
    arm = "AAVMF" in path.name or "QEMU_EFI" in path.name
    value = {n: f.value for n, f in facts.items()}
    assert value["platform"] == ("ArmVirtQemu AARCH64" if arm else "OvmfPkg X64")
    assert value["memory_attribute_protocol"] is trixie
    assert value["memory_attribute_uninstall_switch"] is trixie
    # debian/rules: --pcd PcdUninstallMemAttrProtocol=TRUE but for strictnx; readable on x86
    uninstall = value["memory_attribute_uninstall_default"]
    if trixie and not arm:
        assert uninstall is ("strictnx" not in path.name)
    else:
        assert uninstall is None and facts["memory_attribute_uninstall_default"].basis
    assert value["genfw_nx_compat"] is trixie
    if trixie:
        assert value["firmware_vendor"] == "Debian distribution of EDK II"
        assert value["firmware_version"] == "2025.02-8+deb13u1"
        assert value["edk2_release"] == "edk2-stable202502"
    else:
        assert value["firmware_vendor"] == "EDK II" and value["firmware_version"] is None
        assert value["edk2_release"] == ("edk2-stable202211" if arm else None)
    # trixie builds Secure Boot only into the secboot variants (ms/snakeoil are symlinks
    # to them); the plain and no-secboot builds, and OVMF.fd, have none. bookworm's
    # builds all carry it.
    no_sb = trixie and (path.name in ("OVMF_CODE_4M.fd", "AAVMF_CODE.fd", "OVMF.fd",
                                      "QEMU_EFI.fd") or "no-secboot" in path.name)
    assert value["secure_boot"] == ("not supported" if no_sb else "supported")
    assert value["secure_boot_config_dxe"] is (not no_sb)
    smm = not arm and any(k in path.name for k in ("secboot", ".ms.", "snakeoil"))
    assert value["smm"] is smm
    assert value["variable_driver"] == ("smm" if smm else "runtime-dxe")
    if arm:
        assert value["nx_memory_protection_policy"] == (
            "0xc000000000007fd5" if trixie else "0xc000000000007fd1")
    else:
        assert value["nx_memory_protection_policy"] is None
    for unreadable in ("image_protection_policy", "cpu_stack_guard", "null_pointer_detection",
                       "set_nx_for_stack"):
        assert value[unreadable] is None and facts[unreadable].basis


def _oracle_files(volumes: list[bytes]) -> Counter[tuple[str, int]]:
    """The FFS files uefi-firmware-parser finds in each top-level volume (its AutoParser
    only looks at offset 0, and AAVMF's volume starts at 0x1000)."""
    try:
        from uefi_firmware import uefi
    except ImportError:
        unavailable("uefi_firmware (uefi-firmware-parser, the test extra) is not installed")
    found: Counter[tuple[str, int]] = Counter()

    def walk(obj: Any) -> None:
        if isinstance(obj, uefi.FirmwareFile):
            found[(str(obj.guid_label), int(obj.type))] += 1
        for child in getattr(obj, "objects", None) or []:
            if child is not None:
                walk(child)

    for data in volumes:
        volume = uefi.FirmwareVolume(data)
        assert volume.valid_header and volume.process()
        walk(volume)
    return found


@pytest.mark.parametrize("path", IMAGES)
def test_file_lists_match_uefi_firmware_parser(path: Path | None) -> None:
    image = _image(path)
    ours = Counter((str(f.name), f.type) for f in image.files())
    theirs = _oracle_files([bytes(v.data) for v in image.volumes])
    assert sum(ours.values()) > 100
    assert ours == theirs


def test_qcow2_image_reads_like_raw(tmp_path: Path) -> None:
    from fwtools.formats.qcow2 import raw_to_qcow2

    (path,) = [p.values[0] for p in corpus_files(
        "trixie/amd64/ovmf/usr/share/OVMF/OVMF_CODE_4M.fd")]
    raw = _image(path)
    q = FirmwareImage.parse(raw_to_qcow2(raw.data), "OVMF_CODE_4M.qcow2")
    assert q.container == "qcow2"
    assert [(m.guid, m.label) for m in q.modules] == [(m.guid, m.label) for m in raw.modules]


@pytest.mark.parametrize("path", corpus_files("*/amd64/ovmf/usr/share/ovmf/OVMF.fd"))
def test_ovmf_fd_store_parses_as_fw_vars_does(path: Path | None) -> None:
    image = _image(path)
    found = image.variable_store()
    assert found is not None
    fv, store, error = found
    assert error is None and store is not None and fv.offset == 0
    # Debian 12 built OVMF.fd with the 128 KiB store of OVMF_VARS.fd, Debian 13 with 528 KiB
    assert fv.length == (0x84000 if _suite(need(path)) == "trixie" else 0x20000)
    assert image.volumes[1].offset == fv.length  # the code follows the store


def test_volume_hashes_tell_builds_apart() -> None:
    """The secboot and strictnx builds differ only in BdsDxe (reference section 4): their
    DXE volumes hash differently, PEI and SEC volumes alike; ms is a symlink to secboot."""
    def hashes(name: str) -> dict[str, str]:
        (param,) = corpus_files(f"trixie/amd64/ovmf/usr/share/OVMF/{name}")
        image = FirmwareImage.open(need(param.values[0]))
        return {v.display_name: v.sha256 for v in image.all_volumes()}

    secboot, strict, ms = (hashes(n) for n in ("OVMF_CODE_4M.secboot.fd",
                                               "OVMF_CODE_4M.secboot.strictnx.fd",
                                               "OVMF_CODE_4M.ms.fd"))
    assert secboot == ms
    assert secboot["DXEFV"] != strict["DXEFV"]
    assert secboot["PEIFV"] == strict["PEIFV"] and secboot["SECFV"] == strict["SECFV"]
