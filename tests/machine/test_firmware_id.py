"""Firmware identification: every Debian OVMF/AAVMF code file in the corpus maps to the
profile its debian/rules gives it; unknown files ask for --profile; fw_cfg overrides."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fwtools.errors import UsageError
from fwtools.machine.firmware_id import (
    KNOWN_BUILDS,
    apply_fw_cfg,
    identify_firmware,
    parse_fw_cfg,
)
from fwtools.uefi.profile import load_firmware

EXPECTED = {
    ("bookworm", "OVMF_CODE.fd"): ("debian12-ovmf", False),
    ("bookworm", "OVMF_CODE.secboot.fd"): ("debian12-ovmf", True),
    ("bookworm", "OVMF_CODE_4M.fd"): ("debian12-ovmf", False),
    ("bookworm", "OVMF_CODE_4M.secboot.fd"): ("debian12-ovmf", True),
    ("bookworm", "OVMF_CODE_4M.ms.fd"): ("debian12-ovmf", True),
    ("trixie", "OVMF_CODE_4M.fd"): ("debian13-ovmf", False),
    ("trixie", "OVMF_CODE_4M.secboot.fd"): ("debian13-ovmf", True),
    ("trixie", "OVMF_CODE_4M.snakeoil.fd"): ("debian13-ovmf", True),
    ("trixie", "OVMF_CODE_4M.secboot.strictnx.fd"): ("debian13-ovmf-strictnx", True),
    ("bookworm", "AAVMF_CODE.fd"): ("debian12-aavmf", True),
    ("trixie", "AAVMF_CODE.fd"): ("debian13-aavmf", False),
    ("trixie", "AAVMF_CODE.no-secboot.fd"): ("debian13-aavmf", False),
    ("trixie", "AAVMF_CODE.secboot.fd"): ("debian13-aavmf", True),
    ("trixie", "AAVMF_CODE.ms.fd"): ("debian13-aavmf", True),
    ("trixie", "AAVMF_CODE.secboot.strictnx.fd"): ("debian13-aavmf-strictnx", True),
}


@pytest.mark.parametrize(("suite", "name"), sorted(EXPECTED))
def test_corpus_builds(corpus: object, suite: str, name: str) -> None:
    base = corpus.ovmf_dir(suite) if name.startswith("OVMF") else \
        corpus.aavmf_dir(suite)  # type: ignore[attr-defined]
    info = identify_firmware(str(base / name))
    assert (info.profile, info.secure_boot_support) == EXPECTED[(suite, name)]
    assert info.basis == "known build"
    load_firmware(info.profile or "")  # the profile exists


def test_table_has_no_stale_entries(corpus: object) -> None:
    seen = set()
    for suite in ("bookworm", "trixie"):
        for d in (corpus.ovmf_dir(suite), corpus.aavmf_dir(suite)):  # type: ignore[attr-defined]
            for p in Path(d).glob("*_CODE*.fd"):
                seen.add(hashlib.sha256(p.read_bytes()).hexdigest())
    assert set(KNOWN_BUILDS) <= seen


def test_unknown_file_and_override(tmp_path: Path) -> None:
    f = tmp_path / "mystery.fd"
    f.write_bytes(b"\xff" * 4096)
    info = identify_firmware(str(f))
    assert info.basis == "unknown" and info.profile is None
    assert "--profile NAME" in info.notes[0]
    info = identify_firmware(str(f), profile_override="ovmf-strict")
    assert (info.basis, info.profile) == ("override", "ovmf-strict")
    with pytest.raises(UsageError):
        identify_firmware("no-such-profile")
    assert identify_firmware("ovmf").basis == "override"


def test_fw_cfg() -> None:
    cfg = parse_fw_cfg(["opt/org.tianocore/UninstallMemAttrProtocol=n",
                        "name=opt/ovmf/PcdSetNxForStack,string=y", "opt/other=1"])
    info = identify_firmware("debian13-ovmf")
    apply_fw_cfg(info, cfg)
    assert info.overrides == {"memory_attribute_protocol": True, "stack_nx": True}
    assert info.settings_basis["stack_nx"] == "override"
    assert any("opt/other" in n for n in info.notes)
    with pytest.raises(UsageError):
        parse_fw_cfg(["novalue"])


# What formats/pi reads from Debian's builds (debian/rules: secboot = Secure Boot support;
# the x86 BdsDxe of 2025.02 uninstalls the memory attribute protocol by default, strictnx
# keeps it; 2022.11 has no memory attribute protocol on x86 at all).
READ_FROM_IMAGE = {
    ("trixie", "OVMF_CODE_4M.fd"): (False, False),
    ("trixie", "OVMF_CODE_4M.secboot.fd"): (True, False),
    ("trixie", "OVMF_CODE_4M.secboot.strictnx.fd"): (True, True),
    ("bookworm", "OVMF_CODE_4M.secboot.fd"): (True, False),
}


@pytest.mark.parametrize(("suite", "name"), sorted(READ_FROM_IMAGE))
def test_unknown_build_settings_read_from_the_image(corpus: object, suite: str, name: str,
                                                    tmp_path: Path) -> None:
    """A build no hash identifies (here: Debian's file in a qcow2 container, whose bytes
    differ) gets what the image says, with that basis, and still asks for the profile."""
    import subprocess

    from corpus.params import need_tool

    source = corpus.ovmf_dir(suite) / name  # type: ignore[attr-defined]
    copy = tmp_path / f"{name}.qcow2"
    subprocess.run([need_tool("qemu-img"), "convert", "-O", "qcow2", str(source), str(copy)],
                   check=True)
    secure_boot, protocol = READ_FROM_IMAGE[(suite, name)]
    info = identify_firmware(str(copy))
    assert (info.basis, info.profile) == ("unknown", None)
    assert "--profile NAME" in info.notes[0] and "read from the image" in info.notes[0]
    assert info.secure_boot_support is secure_boot
    assert info.overrides == {"memory_attribute_protocol": protocol}
    assert info.settings_basis == {"secure_boot_support": "read from the image",
                                   "memory_attribute_protocol": "read from the image"}
    info = identify_firmware(str(copy), profile_override="ovmf-strict")
    assert info.basis == "override" and info.secure_boot_support is secure_boot
