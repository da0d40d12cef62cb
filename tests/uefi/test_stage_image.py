"""One description of a PE file: the replay's stage image is a view of the parse the policy
facts are made of (fwtools/uefi/image.py stage_from_pe over PeImage, the special-section
decoders and kernel_info), whether it parses the file itself or is handed the facts."""

from __future__ import annotations

from pathlib import Path

import pytest

from fwtools._base.fileio import read_file
from fwtools.errors import FwError, FwIOError
from fwtools.formats.pe.image import PeImage
from fwtools.formats.pe.reloc import relocated_pages
from fwtools.policy.collect import collect_facts
from fwtools.uefi.image import load_stage, load_stages, stage_from_pe

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "testdata" / "sample").glob("*.efi"))


def _from_facts(path: Path) -> object:
    facts = collect_facts(read_file(path), str(path), inspect=False)
    return stage_from_pe(facts.image, special=facts.special, kernel=facts.kernel)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_stage_is_the_same_from_the_file_and_from_the_facts(path: Path) -> None:
    stage = load_stage(path)
    assert _from_facts(path) == stage
    img = PeImage.open(path)
    assert stage.sections == img.sections
    assert stage.reloc_pages == relocated_pages(img)
    assert stage.major_image_version == img.major_image_version


@pytest.mark.corpus
def test_corpus_stages_are_the_same_from_the_file_and_from_the_facts(
        corpus) -> None:  # type: ignore[no-untyped-def]
    paths = [*corpus.boot_chain("bookworm", "amd64"), *corpus.boot_chain("trixie", "arm64"),
             corpus.systemd_boot("trixie"), corpus.systemd_boot("trixie", "linuxx64.efi.stub")]
    for path in paths:
        stage = load_stage(path)
        assert _from_facts(path) == stage, path
    shim = load_stage(corpus.shim("trixie", "amd64"))
    assert shim.shim_version and shim.sbat_version("shim") and shim.reloc_pages
    kernel = load_stage(corpus.kernel("bookworm", "amd64"))
    assert kernel.kernel is not None and kernel.kernel.handover_64


@pytest.mark.corpus
def test_stages_read_ahead_are_those_read_one_by_one(corpus) -> None:  # type: ignore[no-untyped-def]
    """load_stages (what fw-check boot-chain uses: each file read by a second thread while
    the ones before it are parsed) gives the stage images load_stage gives, in order."""
    for suite, arch in (("bookworm", "amd64"), ("trixie", "amd64"), ("trixie", "arm64")):
        paths = list(corpus.boot_chain(suite, arch))
        assert load_stages(paths) == [load_stage(p) for p in paths]
    uki = [corpus.systemd_boot("trixie"), *SAMPLES]
    assert load_stages(uki) == [load_stage(p) for p in uki]


def test_read_ahead_errors_come_in_the_order_sequential_loading_gives(tmp_path: Path) -> None:
    """A file that cannot be read stops the chain where load_stage would: after the stages
    before it parse, and a malformed stage before it is reported first."""
    good, missing = SAMPLES[0], tmp_path / "missing.efi"
    with pytest.raises(FwIOError, match=r"missing\.efi"):
        load_stages([good, missing, good])
    junk = tmp_path / "junk.efi"
    junk.write_bytes(b"MZ" + bytes(200))
    with pytest.raises(FwError, match=r"junk\.efi") as exc:
        load_stages([junk, missing])
    assert not isinstance(exc.value, FwIOError)
