"""UKI and systemd-boot chains: a real UKI made from Debian 13's systemd stub and kernel
(objcopy, as systemd-stub(7) documents), replayed behind shim and systemd-boot."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import Corpus
from corpus.uki import build_uki, relabel_pre_58

from fwtools.uefi.replay import replay_files


@pytest.fixture(scope="module")
def uki(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    stub = corpus.systemd_boot("trixie", "linuxx64.efi.stub")
    kernel = corpus.kernel("trixie", "amd64")
    return build_uki(stub, kernel, tmp_path_factory.mktemp("uki") / "uki.efi")


@pytest.mark.parametrize("firmware", ["ovmf", "ovmf-strict", "debian13-ovmf-strictnx",
                                      "mu-ship"])
@pytest.mark.parametrize("secure_boot", [False, True])
def test_shim_uki(uki: Path, corpus: Corpus, firmware: str, secure_boot: bool) -> None:
    shim = corpus.shim("trixie", "amd64")
    r = replay_files([shim, uki], firmware=firmware, secure_boot=secure_boot)
    # the UKI's embedded kernel becomes the third stage
    assert [s.model for s in r.stages] == ["shim-16.1", "systemd-stub", "linux-x86-stub"]
    assert r.stages[2].path.endswith(":.linux")
    if secure_boot:
        # objcopy leaves the UKI unsigned (Debian's stub package is unsigned too): shim
        # verifies the second stage in secure mode and refuses it (pe.c:638)
        assert r.verdict == "refused" and "Verification failed" in r.reason
        return
    # shim places the UKI in EfiLoaderCode with its sections' permissions; the stub starts
    # the kernel with firmware LoadImage; the 6.12 stub decompresses into EfiLoaderCode
    assert r.verdict == "boots", r.reason
    assert not any(e.stage.endswith("(LoadImage hook)") for e in r.events)


def test_systemd_boot_chain(uki: Path, corpus: Corpus) -> None:
    shim = corpus.shim("trixie", "amd64")
    sdboot = corpus.systemd_boot("trixie")
    kernel = corpus.kernel("trixie", "amd64")
    for nxt in (uki, kernel):
        r = replay_files([shim, sdboot, nxt], firmware="ovmf-strict")
        assert r.stages[1].model == "systemd-boot"
        assert r.verdict == "boots", r.reason
    # with Secure Boot, shim refuses the unsigned systemd-boot itself (Debian signs it in a
    # separate package, systemd-boot-efi-amd64-signed, not in the corpus)
    r = replay_files([shim, sdboot, kernel], firmware="ovmf-strict", secure_boot=True)
    assert r.verdict == "refused" and r.reason.startswith("shim:")


# ---- systemd-stub's other paths (systemd linux.c / linux_x86.c; see systemd-stub.toml) ----

def _stub_as_version(stub: Path, major: bytes, out: Path) -> Path:
    """The stub relabelled as release ``major`` (three digits): its .sdmagic text and its
    .sbat rows, which is where the replay reads a stub's version from."""
    data = stub.read_bytes()
    old = _stub_release(stub)[:3]
    assert len(major) == len(old) == 3
    for before, after in ((_SDMAGIC + old, _SDMAGIC + major),
                          (b",systemd," + old, b",systemd," + major)):
        assert before in data
        data = data.replace(before, after)
    out.write_bytes(data)
    return out


def _stub_release(stub: Path) -> bytes:
    data = stub.read_bytes()
    start = data.index(_SDMAGIC) + len(_SDMAGIC)
    return data[start:data.index(b" ####", start)]


_SDMAGIC = b"#### LoaderInfo: systemd-stub "


@pytest.fixture(scope="module")
def old_kernel(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("old-kernel")
    return relabel_pre_58(corpus.kernel("bookworm", "amd64"), work / "vmlinuz-pre58")


def _uki(stub: Path, kernel: Path, tmp_path: Path, name: str) -> Path:
    (tmp_path / name).mkdir()
    return build_uki(stub, kernel, tmp_path / name / "uki.efi")


def test_bookworm_stub_hands_an_old_kernel_over_inside_its_linux_section(
        corpus: Corpus, old_kernel: Path, tmp_path: Path) -> None:
    uki = _uki(corpus.systemd_boot("bookworm", "linuxx64.efi.stub"), old_kernel, tmp_path, "b")
    r = replay_files([uki], firmware="debian13-ovmf-lab-strict-img")
    assert [s.model for s in r.stages] == ["systemd-stub", "linux-x86-stub-backport"]
    # 252 jumps into the bzImage inside the UKI's own .linux section, no copy
    inside = [e for e in r.events if "runs inside" in e.operation]
    assert inside and inside[0].operation.endswith("uki.efi .linux")
    assert not any("copied below 4 GiB" in e.operation for e in r.events)
    # Debian 12's stub has SectionAlignment 0x200: even with image protection for every
    # source the UKI is not protectable, so .linux stays in executable EfiLoaderCode
    assert any(e.operation == "image uki.efi not protected" for e in r.events)
    assert r.verdict == "boots", r.reason


def test_stub_254_to_256_faults_on_an_old_kernel_in_a_protected_uki(
        corpus: Corpus, old_kernel: Path, tmp_path: Path) -> None:
    """A 4 KiB-aligned stub of 254-256 (Ubuntu 24.04 ships 255) below 4 GiB still hands over
    inside .linux, which image protection maps non-executable (it is not a code section)."""
    stub = corpus.systemd_boot("trixie", "linuxx64.efi.stub")
    stub255 = _stub_as_version(stub, b"255", tmp_path / "stub255.efi.stub")
    uki = _uki(stub255, old_kernel, tmp_path, "u")
    r = replay_files([uki], firmware="debian13-ovmf-lab-strict-img")
    assert (r.stages[0].version or "").startswith("255")
    assert r.verdict == "faults"
    fault = r.faults[0]
    assert fault.stage == "systemd-stub" and fault.access == "fetch"
    assert "XP" in fault.attributes
    assert "EFI handover protocol" in fault.explanation and "5.8" in fault.fix
    # without image protection for images from disk the same UKI boots
    assert replay_files([uki], firmware="debian13-ovmf").verdict == "boots"


def test_trixie_stub_copies_an_old_kernel_with_bss_below_4g(
        corpus: Corpus, old_kernel: Path, tmp_path: Path) -> None:
    from fwtools.uefi.image import load_stage

    inner = load_stage(old_kernel)
    assert inner.size_of_image > inner.file_size  # the 6.1 bzImage's BSS: PR #33882 applies
    uki = _uki(corpus.systemd_boot("trixie", "linuxx64.efi.stub"), old_kernel, tmp_path, "t")
    r = replay_files([uki], firmware="debian13-ovmf-lab-strict-img")
    assert any(e.operation.startswith("protect image uki.efi") for e in r.events)
    copies = [e for e in r.events if "copied below 4 GiB" in e.operation]
    assert copies and copies[0].end <= 1 << 32 and copies[0].memory_type == "EfiLoaderCode"
    # the copy is executable EfiLoaderCode: the handover entry runs although the UKI itself
    # is protected
    assert r.verdict == "boots", r.reason


def test_stub_258_loads_the_kernel_itself(corpus: Corpus, tmp_path: Path) -> None:
    stub = corpus.systemd_boot("trixie", "linuxx64.efi.stub")
    stub258 = _stub_as_version(stub, b"258", tmp_path / "stub258.efi.stub")
    kernel = corpus.kernel("trixie", "amd64")
    uki = _uki(stub258, kernel, tmp_path, "s")
    r = replay_files([uki], firmware="debian13-ovmf-lab-strict-img")
    assert (r.stages[0].version or "").startswith("258")
    own = [e for e in r.events if "loaded by the stub itself" in e.operation]
    assert own and own[0].memory_type == "EfiLoaderCode"
    assert not any(e.operation == "AllocatePages image uki.efi:.linux" for e in r.events)
    # NX_COMPAT kernel, memory attribute protocol present: code sections made RO+X
    assert any("memory_mark_ro_x" in e.operation for e in r.events)
    assert r.verdict == "boots", r.reason
    # the shipped 257 stub takes firmware LoadImage for the same kernel
    r257 = replay_files([_uki(stub, kernel, tmp_path, "s257")],
                        firmware="debian13-ovmf-lab-strict-img")
    assert not any("loaded by the stub itself" in e.operation for e in r257.events)
    assert r257.verdict == "boots", r257.reason


def test_arm64_stub_refuses_an_old_kernel(corpus: Corpus) -> None:
    """linux_exec has the handover fallback on x86 only: elsewhere pe_kernel_info's
    EFI_UNSUPPORTED ends in "Bad kernel image". The corpus has no arm64 stub, so the trixie
    stub's stage is relabelled aarch64 around Debian 13's real arm64 kernel."""
    from fwtools._base import record
    from fwtools.uefi.image import StageImage, load_stage
    from fwtools.uefi.profile import load_firmware
    from fwtools.uefi.replay import replay

    kernel = load_stage(corpus.kernel("trixie", "arm64"))
    stub = load_stage(corpus.systemd_boot("trixie", "linuxx64.efi.stub"))

    def uki(major: int) -> StageImage:
        inner = record.replace(kernel, path="uki.efi:.linux", major_image_version=major)
        return record.replace(stub, machine="aarch64", uki_kernel=inner)

    r = replay([uki(0)], load_firmware("debian13-aavmf"))
    assert r.verdict == "refused" and "Bad kernel image" in r.reason
    assert replay([uki(1)], load_firmware("debian13-aavmf")).verdict == "boots"


def test_stub_258_loads_an_arm64_kernel(corpus: Corpus, tmp_path: Path) -> None:
    """The arm64 kernel's sections are 64 KiB-aligned: the stub's own copy must hold them
    (the trixie stub relabelled 258 and relabelled aarch64, around the real arm64 kernel)."""
    from fwtools._base import record
    from fwtools.uefi.image import load_stage
    from fwtools.uefi.profile import load_firmware
    from fwtools.uefi.replay import replay

    stub258 = _stub_as_version(corpus.systemd_boot("trixie", "linuxx64.efi.stub"), b"258",
                               tmp_path / "stub258.efi.stub")
    kernel = load_stage(corpus.kernel("trixie", "arm64"))
    assert kernel.section_alignment == 0x10000
    uki = record.replace(load_stage(stub258), machine="aarch64",
                              uki_kernel=record.replace(kernel, path="uki.efi:.linux"))
    r = replay([uki], load_firmware("debian13-aavmf-strictnx"))
    assert any("loaded by the stub itself" in e.operation for e in r.events)
    assert r.verdict == "boots", r.reason


def test_stub_refuses_an_old_kernel_without_handover(corpus: Corpus) -> None:
    """Kernel does not support EFI handover protocol: systemd-stub gives up (linux_x86.c)."""
    from fwtools._base import record
    from fwtools.uefi.image import load_stage
    from fwtools.uefi.profile import load_firmware
    from fwtools.uefi.replay import replay

    kernel = load_stage(corpus.kernel("bookworm", "amd64"))
    assert kernel.kernel is not None
    no_handover = record.replace(kernel, path="uki.efi:.linux", major_image_version=0,
                                      kernel=record.replace(kernel.kernel,
                                                                 handover_64=False,
                                                                 handover_entry=0))
    stub = load_stage(corpus.systemd_boot("trixie", "linuxx64.efi.stub"))
    r = replay([record.replace(stub, uki_kernel=no_handover)], load_firmware("ovmf"))
    assert r.verdict == "refused" and "handover" in r.reason
