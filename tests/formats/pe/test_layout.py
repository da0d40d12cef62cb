"""The PE header layouts (formats/pe/layout.py) against pefile: every field's offset and
value, for PE32 and PE32+ images, synthetic and real."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pefile
import pytest
from pe_images import PE32_MAGIC, PE32PLUS_MAGIC, build_image

from fwtools._base.layout import Layout
from fwtools.formats.pe import layout
from fwtools.formats.pe.image import PeImage

SAMPLE = Path(__file__).resolve().parents[3] / "testdata" / "sample" / "hello-nx.efi"

# pefile's names where they differ from the specification's.
PEFILE_NAMES = {"Win32VersionValue": "Reserved1", "VirtualSize": "Misc_VirtualSize"}


def _pefile(data: bytes) -> pefile.PE:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pefile.PE(data=data, fast_load=True)


def _check(lay: Layout, structure: Any, data: bytes) -> None:
    """Every field of ``lay`` at pefile's offset of ``structure`` has pefile's value."""
    start = structure.get_file_offset()
    values = lay.unpack_dict(data, start)
    for name in lay.names:
        theirs = PEFILE_NAMES.get(name, name)
        assert lay.offset(name) == structure.get_field_relative_offset(theirs), name
        assert values[name] == getattr(structure, theirs), name
    assert lay.size == structure.sizeof()


def _check_image(data: bytes) -> None:
    pe = _pefile(data)
    img = PeImage(data)
    assert layout.e_lfanew(data) == pe.DOS_HEADER.e_lfanew == img.pe_offset
    _check(layout.COFF_HEADER, pe.FILE_HEADER, data)
    opt = layout.OPTIONAL_HEADERS[pe.OPTIONAL_HEADER.Magic]
    assert img.optional_header_layout is opt
    # pefile's OPTIONAL_HEADER structure stops before the data directories, as ours does.
    _check(opt, pe.OPTIONAL_HEADER, data)
    for name in opt.names:
        assert img.optional_field_offset(name) == \
            pe.OPTIONAL_HEADER.get_field_absolute_offset(PEFILE_NAMES.get(name, name)), name
    for ours, theirs in zip(img.data_directories, pe.OPTIONAL_HEADER.DATA_DIRECTORY,
                            strict=False):
        _check(layout.DATA_DIRECTORY, theirs, data)
        assert ours.entry_offset == theirs.get_file_offset()
        assert (ours.virtual_address, ours.size) == (theirs.VirtualAddress, theirs.Size)
    assert len(pe.sections) == len(img.sections)
    for section in pe.sections:
        _check(layout.SECTION_HEADER, section, data)


@pytest.mark.parametrize("magic", [PE32_MAGIC, PE32PLUS_MAGIC], ids=["pe32", "pe32plus"])
def test_layouts_match_pefile(magic: int) -> None:
    _check_image(build_image(magic))


def test_pe32_and_pe32plus_differ_where_the_spec_says() -> None:
    pe32, plus = layout.OPTIONAL_HEADER32, layout.OPTIONAL_HEADER64
    assert (pe32.offset("BaseOfData"), pe32.offset("ImageBase")) == (24, 28)
    assert "BaseOfData" not in plus.offsets
    assert (plus.offset("ImageBase"), plus.field_size("ImageBase")) == (24, 8)
    assert (pe32.field_size("SizeOfStackReserve"), plus.field_size("SizeOfStackReserve")) == (4, 8)
    assert (pe32.size, plus.size) == (96, 112)
    # The fields in between sit at the same offsets in both forms.
    for name in ("SectionAlignment", "MajorImageVersion", "SizeOfHeaders", "CheckSum",
                 "Subsystem", "DllCharacteristics"):
        assert pe32.offset(name) == plus.offset(name), name


def test_pe32_image_values() -> None:
    img = PeImage(build_image(PE32_MAGIC, image_base=0x400000, base_of_data=0x2000))
    assert not img.is_pe32_plus
    assert img.image_base == 0x400000
    assert img.optional_field_offset("ImageBase") == img.optional_header_offset + 28


def test_sample_matches_pefile() -> None:
    _check_image(SAMPLE.read_bytes())


@pytest.mark.corpus
def test_corpus_layouts_match_pefile(corpus) -> None:  # type: ignore[no-untyped-def]
    binaries = corpus.efi_binaries()
    assert binaries
    for binary in binaries:
        _check_image(Path(binary.path).read_bytes())


def test_e_lfanew_needs_a_dos_header() -> None:
    assert layout.e_lfanew(b"MZ" + bytes(60)) is None  # 62 bytes: no room for e_lfanew
    assert layout.e_lfanew(b"ZM" + bytes(62)) is None
    assert layout.e_lfanew(b"MZ" + bytes(58) + b"\x40\0\0\0") == 0x40
