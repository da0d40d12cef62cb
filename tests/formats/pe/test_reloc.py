"""Base relocations (formats/pe/reloc.py) against pefile's own parser of the directory."""

from __future__ import annotations

import warnings
from pathlib import Path

import pefile
import pytest

from fwtools.formats.pe.image import PeImage
from fwtools.formats.pe.reloc import (
    REL_BASED_ABSOLUTE,
    REL_BASED_DIR64,
    relocated_pages,
    relocation_blocks,
    relocation_entries,
)

SAMPLES = sorted((Path(__file__).resolve().parents[3] / "testdata" / "sample").glob("*.efi"))


# ABSOLUTE entries are padding; pefile stops a block at a repeated (offset, type), which only
# padding repeats (efitools' HashTool.efi), while edk2 and shim walk every entry
def _pefile_blocks(path: Path) -> list[tuple[int, list[tuple[int, int]]]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pe = pefile.PE(str(path))
    return [(b.struct.VirtualAddress, [(e.type, e.rva) for e in b.entries if e.type])
            for b in getattr(pe, "DIRECTORY_ENTRY_BASERELOC", [])]


def _ours(path: Path) -> list[tuple[int, list[tuple[int, int]]]]:
    img = PeImage.open(path)
    return [(b.page_rva, [e for e in relocation_entries(img, b) if e[0]])
            for b in relocation_blocks(img)]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_blocks_and_entries_match_pefile(path: Path) -> None:
    assert _ours(path) == _pefile_blocks(path)


@pytest.mark.corpus
def test_corpus_relocations_match_pefile(corpus) -> None:  # type: ignore[no-untyped-def]
    checked = 0
    for binary in corpus.efi_binaries(machine=0x8664)[:16]:
        want = _pefile_blocks(binary.path)
        assert _ours(binary.path) == want, binary.relpath
        img = PeImage.open(binary.path)
        pages = {b.page_rva & ~0xFFF for b in relocation_blocks(img) if b.entry_count}
        assert relocated_pages(img) == tuple(sorted(pages))
        checked += bool(want)
    assert checked


def test_pages_skip_empty_blocks_and_stop_at_a_short_block() -> None:
    img = PeImage.open(SAMPLES[0])
    blocks = relocation_blocks(img)
    assert blocks, "the sample carries relocations"
    pages = relocated_pages(img)
    assert set(pages) == {b.page_rva & ~0xFFF for b in blocks if b.entry_count}
    kinds = {t for b in blocks for t, _rva in relocation_entries(img, b)}
    assert kinds <= {REL_BASED_ABSOLUTE, REL_BASED_DIR64}  # x86-64: DIR64 and padding
    # a block whose SizeOfBlock is under its own 8-byte header ends the walk (edk2, shim)
    first = blocks[0]
    data = bytearray(img.data)
    data[first.offset + 4 : first.offset + 8] = (4).to_bytes(4, "little")
    broken = PeImage(bytes(data), "broken.efi")
    assert relocation_blocks(broken) == ()
    assert relocated_pages(broken) == ()
