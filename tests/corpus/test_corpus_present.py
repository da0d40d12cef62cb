"""The corpus is complete: a broken or partial fetch fails CI here, in one obvious place,
rather than as scattered skips (or, under FWTOOLS_REQUIRE_CORPUS=1, scattered failures).
"""

from __future__ import annotations

import pytest

from corpus.corpus import MACHINE, SUITES, Corpus, MsCorpus, pe_machine, read_packages_txt


def test_manifest_lists_every_package(corpus: Corpus) -> None:
    rows = corpus.packages()
    missing = []
    for req in read_packages_txt():
        hits = [
            p for p in rows
            if (p.suite, p.arch, p.requested) == (req.suite, req.arch, req.name)
        ]
        if len(hits) != 1:
            missing.append(f"{req.suite}/{req.arch}/{req.name} ({len(hits)} rows)")
            continue
        p = hits[0]
        if req.meta:
            # The meta package is resolved to the versioned image that holds the files.
            assert p.name.startswith("linux-image-") and p.name != req.name, p
        else:
            assert p.name == req.name, p
        assert p.version and len(p.sha256) == 64, p
    assert not missing, f"not in {corpus.manifest_path}: {missing}"
    assert len(rows) == len(read_packages_txt())


def test_every_package_is_unpacked(corpus: Corpus) -> None:
    for p in corpus.packages():
        assert p.root.is_dir(), p
        assert any(p.root.iterdir()), f"{p.root} is empty"
        assert (corpus.base / p.deb).is_file(), f"{p.deb} missing from the cache"


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_boot_chain_is_present(corpus: Corpus, suite: str, arch: str) -> None:
    for path in corpus.boot_chain(suite, arch):
        assert pe_machine(path) == MACHINE[arch], path


@pytest.mark.parametrize("suite", SUITES)
def test_firmware_is_present(corpus: Corpus, suite: str) -> None:
    assert corpus.ovmf(suite, "OVMF_CODE_4M.fd").stat().st_size > 0
    assert corpus.ovmf(suite, "OVMF_VARS_4M.ms.fd").stat().st_size > 0
    assert corpus.aavmf(suite, "AAVMF_VARS.ms.fd").stat().st_size == 64 << 20
    assert corpus.systemd_boot(suite).is_file()
    assert all(p.is_file() for p in corpus.snakeoil(suite))


def test_efi_binaries_are_found(corpus: Corpus) -> None:
    binaries = corpus.efi_binaries()
    ids = {b.id for b in binaries}
    assert len(ids) == len(binaries)
    for suite in SUITES:
        for arch in ("amd64", "arm64"):
            found = {b.path for b in corpus.efi_binaries(suite=suite, arch=arch)}
            # The scan must agree with the named helpers, kernels included.
            assert set(corpus.boot_chain(suite, arch)) <= found
        assert corpus.systemd_boot(suite) in {b.path for b in binaries}
        assert corpus.efi_binaries(suite=suite, machine=MACHINE["amd64"])
        assert corpus.efi_binaries(suite=suite, machine=MACHINE["arm64"])
    for b in binaries:
        assert pe_machine(b.path) == b.machine == MACHINE[b.arch], b.id
        assert not b.relpath.endswith((".fd", ".mod")), b.id


def test_lookup_errors_name_the_alternatives(corpus: Corpus) -> None:
    with pytest.raises(LookupError, match="have"):
        corpus.package("bookworm", "amd64", "no-such-package")
    with pytest.raises(LookupError, match="0 files match"):
        corpus.file("bookworm", "amd64", "shim-signed", "usr/lib/shim/nothing*")


def test_ms_corpus_is_present(ms_corpus: MsCorpus) -> None:
    assert len(ms_corpus.certs("kek")) >= 2
    assert len(ms_corpus.certs("db")) >= 4
    assert ms_corpus.certs("pk")
    for arch in ("amd64", "arm64", "x86", "arm"):
        assert ms_corpus.file(f"dbx/{arch}/DBXUpdate.bin").stat().st_size > 0
