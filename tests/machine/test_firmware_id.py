"""Firmware identification: every Debian OVMF/AAVMF code file in the corpus maps to the
profile its debian/rules gives it, the firmware lab's x64 builds to their lab profiles; unknown
files ask for --profile; fw_cfg overrides."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from fwtools.errors import UsageError
from fwtools.machine.firmware_id import (
    DEBIAN_BUILDS,
    KNOWN_BUILDS,
    LAB_BUILDS,
    apply_fw_cfg,
    identify_firmware,
    parse_fw_cfg,
)
from fwtools.uefi.profile import load_firmware

# Every firmware code file Debian ships in the corpus (relative to its package) -> the profile
# and Secure Boot support its debian/rules gives it. OVMF.fd is the VARS+CODE image of the
# build without Secure Boot (2 MiB in bookworm, 4 MiB in trixie); QEMU_EFI.fd is the build
# AAVMF_CODE.fd pads to 64 MiB (bookworm: the Secure Boot one; trixie: no-secboot).
_OVMF = ("amd64", "ovmf")
_AAVMF = ("all", "qemu-efi-aarch64")
EXPECTED = {
    ("bookworm", *_OVMF, "usr/share/OVMF/OVMF_CODE.fd"): ("debian12-ovmf", False),
    ("bookworm", *_OVMF, "usr/share/OVMF/OVMF_CODE.ms.fd"): ("debian12-ovmf", True),
    ("bookworm", *_OVMF, "usr/share/OVMF/OVMF_CODE.secboot.fd"): ("debian12-ovmf", True),
    ("bookworm", *_OVMF, "usr/share/OVMF/OVMF_CODE_4M.fd"): ("debian12-ovmf", False),
    ("bookworm", *_OVMF, "usr/share/OVMF/OVMF_CODE_4M.secboot.fd"): ("debian12-ovmf", True),
    ("bookworm", *_OVMF, "usr/share/OVMF/OVMF_CODE_4M.ms.fd"): ("debian12-ovmf", True),
    ("bookworm", *_OVMF, "usr/share/OVMF/OVMF_CODE_4M.snakeoil.fd"): ("debian12-ovmf", True),
    ("bookworm", *_OVMF, "usr/share/ovmf/OVMF.fd"): ("debian12-ovmf", False),
    ("bookworm", *_OVMF, "usr/share/qemu/OVMF.fd"): ("debian12-ovmf", False),
    ("trixie", *_OVMF, "usr/share/OVMF/OVMF_CODE_4M.fd"): ("debian13-ovmf", False),
    ("trixie", *_OVMF, "usr/share/OVMF/OVMF_CODE_4M.secboot.fd"): ("debian13-ovmf", True),
    ("trixie", *_OVMF, "usr/share/OVMF/OVMF_CODE_4M.ms.fd"): ("debian13-ovmf", True),
    ("trixie", *_OVMF, "usr/share/OVMF/OVMF_CODE_4M.snakeoil.fd"): ("debian13-ovmf", True),
    ("trixie", *_OVMF, "usr/share/OVMF/OVMF_CODE_4M.secboot.strictnx.fd"):
        ("debian13-ovmf-strictnx", True),
    ("trixie", *_OVMF, "usr/share/ovmf/OVMF.fd"): ("debian13-ovmf", False),
    ("trixie", *_OVMF, "usr/share/qemu/OVMF.fd"): ("debian13-ovmf", False),
    ("bookworm", *_AAVMF, "usr/share/AAVMF/AAVMF_CODE.fd"): ("debian12-aavmf", True),
    ("bookworm", *_AAVMF, "usr/share/AAVMF/AAVMF_CODE.ms.fd"): ("debian12-aavmf", True),
    ("bookworm", *_AAVMF, "usr/share/AAVMF/AAVMF_CODE.snakeoil.fd"): ("debian12-aavmf", True),
    ("bookworm", *_AAVMF, "usr/share/qemu-efi-aarch64/QEMU_EFI.fd"): ("debian12-aavmf", True),
    ("trixie", *_AAVMF, "usr/share/AAVMF/AAVMF_CODE.fd"): ("debian13-aavmf", False),
    ("trixie", *_AAVMF, "usr/share/AAVMF/AAVMF_CODE.no-secboot.fd"): ("debian13-aavmf", False),
    ("trixie", *_AAVMF, "usr/share/AAVMF/AAVMF_CODE.secboot.fd"): ("debian13-aavmf", True),
    ("trixie", *_AAVMF, "usr/share/AAVMF/AAVMF_CODE.ms.fd"): ("debian13-aavmf", True),
    ("trixie", *_AAVMF, "usr/share/AAVMF/AAVMF_CODE.snakeoil.fd"): ("debian13-aavmf", True),
    ("trixie", *_AAVMF, "usr/share/AAVMF/AAVMF_CODE.secboot.strictnx.fd"):
        ("debian13-aavmf-strictnx", True),
    ("trixie", *_AAVMF, "usr/share/qemu-efi-aarch64/QEMU_EFI.fd"): ("debian13-aavmf", False),
}


def _path(corpus: object, key: tuple[str, str, str, str]) -> Path:
    suite, arch, package, rel = key
    return corpus.package_dir(suite, arch, package) / rel  # type: ignore[attr-defined, no-any-return]


@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda k: f"{k[0]}/{k[3]}")
def test_corpus_builds(corpus: object, key: tuple[str, str, str, str]) -> None:
    info = identify_firmware(str(_path(corpus, key)))
    assert (info.profile, info.secure_boot_support) == EXPECTED[key]
    assert info.basis == "known build"
    load_firmware(info.profile or "")  # the profile exists


def test_every_debian_firmware_file_is_expected(corpus: object) -> None:
    """No firmware code file of the corpus escapes EXPECTED (stores are not firmware)."""
    found = set()
    for suite in ("bookworm", "trixie"):
        for arch, package in (_OVMF, _AAVMF):
            base = corpus.package_dir(suite, arch, package)  # type: ignore[attr-defined]
            found |= {(suite, arch, package, str(p.relative_to(base)))
                      for p in base.rglob("*.fd") if "VARS" not in p.name}
    assert found == set(EXPECTED)


def test_table_digests_are_the_code_of_corpus_files(corpus: object) -> None:
    """Each digest is the SHA-256 of a corpus file's code, computed here without formats/pi:
    a *_CODE file whole (AAVMF without the zeros that pad it to 64 MiB), OVMF.fd after its
    VARS part (the size of the same suite's OVMF_VARS file it starts with)."""
    digests = {}
    for key in EXPECTED:
        data = _path(corpus, key).read_bytes()
        name = Path(key[3]).name
        if name == "OVMF.fd":
            vars_name = "OVMF_VARS.fd" if key[0] == "bookworm" else "OVMF_VARS_4M.fd"
            blank = (corpus.ovmf_dir(key[0]) / vars_name).read_bytes()  # type: ignore[attr-defined]
            assert data.startswith(blank)  # Debian's OVMF.fd: the blank store, then the code
            data = data[len(blank):]
        elif name.startswith("AAVMF"):
            data = data.rstrip(b"\0")
        digests[hashlib.sha256(data).hexdigest()] = EXPECTED[key][0]
    assert set(DEBIAN_BUILDS) == set(digests)
    assert {d: b.profile for d, b in DEBIAN_BUILDS.items()} == digests
    assert KNOWN_BUILDS == {**DEBIAN_BUILDS, **LAB_BUILDS}


_LAB_SCRIPT = Path(__file__).resolve().parents[1] / "e2e" / "lab" / "build-ovmf.sh"
_LAB_DEFAULT_CACHE = "/var/cache/fwtools-lab"


def code_sha256(path: Path) -> str:
    """The digest the lab entry is keyed by: of the build's code (formats/pi)."""
    from fwtools.formats.pi import FirmwareImage

    return FirmwareImage.parse(path.read_bytes(), str(path)).code_sha256


def _lab_build_dir() -> Path:
    """build-ovmf.sh's directory for its current source and settings (its --print-dir)."""
    import subprocess

    out = subprocess.run(["bash", str(_LAB_SCRIPT), "--print-dir"], check=True,
                         capture_output=True, text=True)
    return Path(out.stdout.strip())


@pytest.mark.parametrize("digest", sorted(LAB_BUILDS), ids=lambda d: LAB_BUILDS[d].profile)
def test_lab_build_digests(digest: str) -> None:
    """Each lab entry is the code of the build build-ovmf.sh makes now (a missing build fails
    under FWTOOLS_REQUIRE_CORPUS=1, as in CI, which builds the lab first); a changed build
    (edk2 version, flags, gcc) shows here as a digest to update."""
    from corpus.params import unavailable

    build = LAB_BUILDS[digest]
    path = _lab_build_dir() / build.file
    if not path.is_file():
        unavailable(f"lab firmware not built: {path} (run: sudo {_LAB_SCRIPT})")
    if os.environ.get("LAB_CACHE", _LAB_DEFAULT_CACHE) != _LAB_DEFAULT_CACHE:
        # The build path is in a DEBUG build's bytes: a build elsewhere is another binary,
        # which is not taken for the lab build (it needs --profile, docs/fw-check.md).
        assert code_sha256(path) != digest
        assert identify_firmware(str(path)).profile != build.profile
        return
    assert code_sha256(path) == digest, (
        f"{path}: not the build firmware_id.LAB_BUILDS has for {build.profile}")
    info = identify_firmware(str(path))
    assert (info.basis, info.profile, info.secure_boot_support) == (
        "known build", build.profile, True)
    assert info.build == build.label
    load_firmware(build.profile)  # a shipped profile


def test_unknown_file_and_override(tmp_path: Path) -> None:
    f = tmp_path / "mystery.fd"
    f.write_bytes(b"\xff" * 4096)
    info = identify_firmware(str(f))
    assert info.basis == "unknown" and info.profile is None
    assert info.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()
    assert any(n.startswith("settings not read from the image") for n in info.notes)
    ask = info.ask_for_profile()
    assert "--profile NAME" in ask and "nx_policy" in ask and "read from the image" not in ask
    info = identify_firmware(str(f), profile_override="ovmf-strict")
    assert (info.basis, info.profile) == ("override", "ovmf-strict")
    with pytest.raises(UsageError):
        identify_firmware("no-such-profile")
    assert identify_firmware("ovmf").basis == "override"


def _qemu_img_convert(source: Path, out: Path) -> Path:
    import subprocess

    from corpus.params import need_tool

    subprocess.run([need_tool("qemu-img"), "convert", "-O", "qcow2", str(source), str(out)],
                   check=True)
    return out


@pytest.mark.parametrize("key", [
    ("trixie", *_OVMF, "usr/share/OVMF/OVMF_CODE_4M.secboot.fd"),
    ("bookworm", *_OVMF, "usr/share/ovmf/OVMF.fd"),
    ("trixie", *_AAVMF, "usr/share/AAVMF/AAVMF_CODE.secboot.strictnx.fd"),
], ids=lambda k: f"{k[0]}/{Path(k[3]).name}")
def test_known_build_in_qcow2(corpus: object, key: tuple[str, str, str, str],
                              tmp_path: Path) -> None:
    """A known build converted to qcow2 (qemu-img) is the same build: the guest sees the
    same flash, so it is identified by the decoded image, not the container's bytes."""
    source = _path(corpus, key)
    copy = _qemu_img_convert(source, tmp_path / f"{source.name}.qcow2")
    assert copy.read_bytes() != source.read_bytes()
    info = identify_firmware(str(copy))
    assert info.basis == "known build"
    assert (info.profile, info.secure_boot_support) == EXPECTED[key]
    assert info.sha256 == identify_firmware(str(source)).sha256
    assert any("qcow2 container" in n for n in info.notes)


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_used_ovmf_fd_is_still_identified(corpus: object, suite: str, tmp_path: Path) -> None:
    """OVMF.fd as a VM's one pflash: the VM writes its variable store, the front of the
    image. Here the store holds what enrolling Microsoft's keys leaves (Debian's .ms store of
    the same layout); the code after it still identifies the build."""
    key = (suite, *_OVMF, "usr/share/ovmf/OVMF.fd")
    original = _path(corpus, key).read_bytes()
    vars_name = "OVMF_VARS.ms.fd" if suite == "bookworm" else "OVMF_VARS_4M.ms.fd"
    enrolled = (corpus.ovmf_dir(suite) / vars_name).read_bytes()  # type: ignore[attr-defined]
    used = tmp_path / "OVMF.fd"
    used.write_bytes(enrolled + original[len(enrolled):])
    assert used.read_bytes() != original
    info = identify_firmware(str(used))
    assert info.basis == "known build"
    assert (info.profile, info.secure_boot_support) == EXPECTED[key]
    assert any(f"is at {len(enrolled):#x}-{len(original):#x}" in n for n in info.notes)
    from fwtools.formats.pi import FirmwareImage

    image = FirmwareImage.open(used)
    found = image.variable_store()
    assert found is not None and found[1] is not None  # the store the VM wrote parses
    assert any(v.name == "PK" for v in found[1].variables)


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


# What formats/pi reads from Debian's builds, and so what an unknown build with the same code
# gets with the basis "read from the image" (debian/rules: secboot = Secure Boot support; the
# x86 BdsDxe of 2025.02 uninstalls the memory attribute protocol by default, strictnx keeps
# it; 2022.11 has no memory attribute protocol on x86 at all; AAVMF's DxeCore holds the NX
# policy as one immediate; bookworm's x86 build names no release).
READ_FROM_IMAGE = {
    ("trixie", *_OVMF, "usr/share/OVMF/OVMF_CODE_4M.fd"):
        (False, {"edk2_release", "memory_attribute_protocol"}),
    ("trixie", *_OVMF, "usr/share/OVMF/OVMF_CODE_4M.secboot.fd"):
        (True, {"edk2_release", "memory_attribute_protocol"}),
    ("trixie", *_OVMF, "usr/share/OVMF/OVMF_CODE_4M.secboot.strictnx.fd"):
        (True, {"edk2_release", "memory_attribute_protocol"}),
    ("bookworm", *_OVMF, "usr/share/OVMF/OVMF_CODE_4M.secboot.fd"):
        (True, {"memory_attribute_protocol"}),
    ("bookworm", *_AAVMF, "usr/share/AAVMF/AAVMF_CODE.fd"):
        (True, {"edk2_release", "nx_policy", "memory_attribute_protocol"}),
    ("trixie", *_AAVMF, "usr/share/AAVMF/AAVMF_CODE.secboot.strictnx.fd"):
        (True, {"edk2_release", "nx_policy"}),
}


def _unknown_build(source: Path, out: Path) -> Path:
    """``source`` with one byte changed in its first volume's free space (erased flash no
    driver reads): a build no digest identifies, whose code reads the same."""
    from fwtools.formats.pi import FirmwareImage

    data = bytearray(source.read_bytes())
    fv = FirmwareImage.parse(bytes(data)).volumes[0]
    assert fv.files and fv.free_space_offset is not None
    at = fv.offset + fv.length - 0x100
    assert fv.offset + fv.free_space_offset < at and data[at] == 0xFF
    data[at] = 0
    out.write_bytes(data)
    return out


@pytest.mark.parametrize("key", sorted(READ_FROM_IMAGE), ids=lambda k: f"{k[0]}/{k[3]}")
def test_unknown_build_settings_read_from_the_image(corpus: object, key: tuple[str, ...],
                                                    tmp_path: Path) -> None:
    """A build no digest identifies gets what the image says, with that basis, equal to what
    debian/rules gives the build it was made from, and still asks for the profile, naming
    only the settings the image cannot tell."""
    source = _path(corpus, key)  # type: ignore[arg-type]
    copy = _unknown_build(source, tmp_path / source.name)
    secure_boot, read = READ_FROM_IMAGE[key]
    info = identify_firmware(str(copy))
    assert (info.basis, info.profile) == ("unknown", None)
    assert info.secure_boot_support is secure_boot
    assert set(info.overrides) == read
    assert info.settings_basis == dict.fromkeys({"secure_boot_support", *read},
                                                "read from the image")
    debian = load_firmware(EXPECTED[key][0])  # type: ignore[index]
    assert {k: getattr(debian, k) for k in read} == info.overrides
    ask = info.ask_for_profile()
    assert "--profile NAME" in ask and "read from the image: Secure Boot" in ask
    assert all(s not in ask.split("cannot tell", 1)[1] for s in read)
    assert "image_protection" in ask
    info = identify_firmware(str(copy), profile_override="ovmf-strict")
    assert info.basis == "override" and info.secure_boot_support is secure_boot
    assert set(info.overrides) == read
