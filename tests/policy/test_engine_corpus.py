"""fw-check verdicts on the Debian corpus, each checked against an independent oracle
(objdump -p for DllCharacteristics and SectionAlignment) or a documented fact."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from corpus import Corpus, MsCorpus
from corpus.params import need_tool

from fwtools.formats.sbat import SbatLevel
from fwtools.policy import engine, sbat_sources
from fwtools.policy.profiles import load_profile
from fwtools.policy.results import FileReport

OBJDUMP = shutil.which("objdump")


def objdump_fields(path: Path) -> dict[str, int] | None:
    """DllCharacteristics and SectionAlignment as binutils reads them (None if it cannot)."""
    assert OBJDUMP is not None
    out = subprocess.run([OBJDUMP, "-p", str(path)], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    fields = dict(re.findall(r"^(DllCharacteristics|SectionAlignment)\s+([0-9a-fA-F]+)$",
                             out.stdout, re.M))
    return {k: int(v, 16) for k, v in fields.items()}


@pytest.fixture(scope="module")
def uefi_ca(corpus: Corpus) -> dict[str, FileReport]:
    files = [str(b.path) for b in corpus.efi_binaries()]
    reports = engine.run(files, load_profile("uefi-ca"), engine.Options())
    return {r.path: r for r in reports}


def test_nx_compat_and_alignment_match_objdump(
    corpus: Corpus, uefi_ca: dict[str, FileReport]
) -> None:
    need_tool("objdump")
    compared = 0
    for path, rep in uefi_ca.items():
        oracle = objdump_fields(Path(path))
        if oracle is None:  # binutils without aarch64 PE support
            continue
        compared += 1
        rules = {r.rule for r in rep.results}
        assert ("nx-compat" in rules) == (not oracle["DllCharacteristics"] & 0x100), path
        align = oracle["SectionAlignment"]
        bad_align = align < 0x1000 or align & (align - 1) != 0
        assert ("section-alignment" in rules) == bad_align, path
    assert compared >= 20


def test_corpus_explained(uefi_ca: dict[str, FileReport]) -> None:
    def hit(rule: str) -> set[str]:
        return {p.split("/root/", 1)[-1] for p, r in uefi_ca.items()
                if any(x.rule == rule for x in r.results)}

    # The 512-byte-aligned binaries: bookworm's systemd-boot 252 (boot loader and stub) and
    # bookworm's fwupd; trixie's systemd-boot 257 is linked with 4 KiB alignment.
    assert hit("section-alignment") == {
        "bookworm/amd64/fwupd-amd64-signed/usr/libexec/fwupd/efi/fwupdx64.efi.signed",
        "bookworm/amd64/systemd-boot-efi/usr/lib/systemd/boot/efi/linuxx64.efi.stub",
        "bookworm/amd64/systemd-boot-efi/usr/lib/systemd/boot/efi/systemd-bootx64.efi",
    }
    # No Debian binary has a W+X section.
    assert hit("wx-section") == set()
    # shim and grub are not NX_COMPAT (shim's release default; Microsoft's NX exception).
    nx = hit("nx-compat")
    assert any("shimx64.efi" in p for p in nx)
    assert any("grubx64.efi" in p for p in nx)


def test_sbat_carriers(corpus: Corpus) -> None:
    files = [str(b.path) for b in corpus.efi_binaries()]
    reports = engine.run(files, load_profile("shim-review"), engine.Options())
    missing = {r.path.split("/root/", 1)[-1] for r in reports
               if any(x.rule == "sbat-present" for x in r.results)}
    # efitools' tools and trixie's systemd addon stub carry no .sbat; shim, grub, fwupd and
    # systemd-boot do (kernels are skipped: GRUB verifies them through shim_lock).
    assert all("efitools" in p or "addon" in p for p in missing), missing
    assert not any("shim" in p or "grub" in p for p in missing)
    for r in reports:
        if "shim-signed" in r.path or "grub-efi" in r.path:
            assert not [x for x in r.results if x.rule.startswith("sbat")], r.path


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_shim_not_revoked_by_its_own_level(corpus: Corpus, suite: str) -> None:
    shim = corpus.shim(suite, "amd64")
    prof = load_profile("shim-review")
    for which in ("latest", "automatic"):
        level, label = sbat_sources.from_shim(f"{shim}:{which}")
        assert "shim" in level.generations
        rep = engine.check_path(str(shim), prof, engine.Options(level, label))
        assert "sbat-revoked" in rep.checked
        assert not [r for r in rep.results if r.rule == "sbat-revoked"]


def test_grub_revoked_by_a_higher_generation(corpus: Corpus) -> None:
    grub = corpus.grub("bookworm", "amd64")
    prof = load_profile("shim-review")
    rep = engine.check_path(str(grub), prof, engine.Options())
    from fwtools.formats.pe.image import PeImage
    from fwtools.formats.pe.special import special_sections

    (sbat,) = [s.decoded for s in special_sections(PeImage.open(grub)) if s.kind == "sbat"]
    gen = sbat.generation("grub")  # type: ignore[attr-defined]
    assert gen is not None
    level = SbatLevel.create("2099010100", {"grub": gen + 1})
    rep = engine.check_path(str(grub), prof, engine.Options(level, "constructed"))
    (hit,) = [r for r in rep.results if r.rule == "sbat-revoked"]
    assert f"entry grub,{gen + 1} revokes .sbat row grub,{gen}" in hit.message
    level = SbatLevel.create("2099010100", {"grub": gen})
    rep = engine.check_path(str(grub), prof, engine.Options(level, "constructed"))
    assert not [r for r in rep.results if r.rule == "sbat-revoked"]


def test_signature_chains(corpus: Corpus, ms_corpus: MsCorpus) -> None:
    """strict with Microsoft's UEFI CA 2011 as db: shim (signed by Microsoft) is trusted;
    grub (signed by Debian's key, trusted only through shim's vendor cert) is not."""
    from fwtools.crypto.trust import TrustAnchors

    anchors = TrustAnchors.from_files([ms_corpus.file("certs/db/MicCorUEFCA2011_2011-06-27.der")])
    prof = load_profile("strict")
    shim = engine.check_path(str(corpus.shim("bookworm", "amd64")), prof,
                             engine.Options(anchors=anchors))
    assert "trusted" in shim.checked
    assert not [r for r in shim.results if r.rule in ("trusted", "signature-invalid",
                                                       "digest-mismatch", "signed")]
    grub = engine.check_path(str(corpus.grub("bookworm", "amd64")), prof,
                             engine.Options(anchors=anchors))
    (hit,) = [r for r in grub.results if r.rule == "trusted"]
    assert hit.message.startswith("untrusted")
    assert not [r for r in grub.results if r.rule in ("signature-invalid", "digest-mismatch")]
