"""UKI and systemd-boot chains: a real UKI made from Debian 13's systemd stub and kernel
(objcopy, as systemd-stub(7) documents), replayed behind shim and systemd-boot."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import Corpus
from corpus.params import need_tool
from corpus.uki import build_uki_with_objcopy

from fwtools.uefi.replay import replay_files


def build_uki(stub: Path, kernel: Path, out: Path) -> Path:
    """Add .osrel, .cmdline and .linux after the stub's image, 4 KiB-aligned."""
    need_tool("objcopy")
    parts = {".osrel": out.parent / "osrel", ".cmdline": out.parent / "cmdline",
             ".linux": kernel}
    parts[".osrel"].write_bytes(b'ID=debian\nNAME="Debian GNU/Linux"\n')
    parts[".cmdline"].write_bytes(b"console=ttyS0")
    build_uki_with_objcopy(stub, parts, out)
    return out


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
