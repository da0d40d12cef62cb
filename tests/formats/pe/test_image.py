"""PeImage on the real corpus (checked against objdump) and on hostile inputs."""

from __future__ import annotations

import contextlib
import re
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwtools.errors import ParseError, PeFormatError, TruncatedError
from fwtools.formats.pe import layout
from fwtools.formats.pe.image import PeImage

SAMPLE = Path(__file__).resolve().parents[3] / "testdata" / "sample" / "hello-nx.efi"


def _objdump(args: list[str], path: Path) -> str:
    return subprocess.run(
        ["objdump", *args, str(path)], capture_output=True, text=True, check=True
    ).stdout


def _objdump_header(path: Path) -> dict[str, int]:
    out = _objdump(["-p"], path)
    fields = {}
    for key in ("SectionAlignment", "FileAlignment", "ImageBase", "AddressOfEntryPoint",
                "SizeOfImage", "SizeOfHeaders", "CheckSum", "Subsystem", "DllCharacteristics",
                "NumberOfRvaAndSizes"):
        m = re.search(rf"^{key}\s+([0-9a-fA-F]+)", out, re.M)
        assert m, f"objdump printed no {key}"
        fields[key] = int(m.group(1), 16)
    return fields


@pytest.mark.corpus
def test_headers_and_sections_match_objdump(corpus) -> None:  # type: ignore[no-untyped-def]
    binaries = corpus.efi_binaries(machine=0x8664)
    assert len(binaries) > 20
    for binary in binaries:
        img = PeImage.open(binary.path)
        want = _objdump_header(binary.path)
        got = {
            "SectionAlignment": img.section_alignment,
            "FileAlignment": img.file_alignment,
            "ImageBase": img.image_base,
            "AddressOfEntryPoint": img.entry_point,
            "SizeOfImage": img.size_of_image,
            "SizeOfHeaders": img.size_of_headers,
            "CheckSum": img.checksum,
            "Subsystem": img.subsystem,
            "DllCharacteristics": img.dll_characteristics,
            "NumberOfRvaAndSizes": img.number_of_rva_and_sizes,
        }
        assert got == want, binary.id
        rows = re.findall(
            r"^\s*\d+\s+(\S+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)",
            _objdump(["-h"], binary.path), re.M,
        )
        ours = [(s.name, img.image_base + s.virtual_address, s.raw_offset)
                for s in img.sections if s.raw_size]
        theirs = [(n, int(vma, 16), int(off, 16)) for n, vma, off in rows]
        assert ours == theirs, binary.id


@pytest.mark.corpus
def test_checksum_matches_the_linker(corpus) -> None:  # type: ignore[no-untyped-def]
    # Linkers and signing tools store the real checksum; ours must reproduce it.
    checked = 0
    for binary in corpus.efi_binaries():
        img = PeImage.open(binary.path)
        if img.checksum:
            assert img.computed_checksum() == img.checksum, binary.id
            checked += 1
    assert checked > 10


@pytest.mark.corpus
def test_long_section_names_resolved(corpus) -> None:  # type: ignore[no-untyped-def]
    img = PeImage.open(corpus.shim("bookworm", "amd64"))
    names = [s.name for s in img.sections]
    assert {".sbatlevel", ".vendor_cert", ".data.ident", ".sbat"} <= set(names)
    assert not any(n.startswith("/") for n in names)


def _sample() -> bytes:
    return SAMPLE.read_bytes()


def test_sample_parses() -> None:
    img = PeImage(_sample(), "hello-nx.efi")
    assert img.machine_name == "x86_64"
    assert img.nx_compat
    assert img.section_alignment == 0x1000
    assert img.has_relocations


@pytest.mark.parametrize("data", [b"", b"M", b"MZ", b"\0" * 64, b"ELF" + b"\0" * 200])
def test_not_pe(data: bytes) -> None:
    with pytest.raises(ParseError) as info:
        PeImage(data, "x.efi")
    assert info.value.offset == 0
    assert "x.efi" in str(info.value)


def _patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    buf = bytearray(data)
    struct.pack_into(fmt, buf, offset, value)
    return bytes(buf)


def test_e_lfanew_past_end() -> None:
    data = _patch(_sample(), layout.E_LFANEW_OFFSET, "<I", 0xFFFFFF00)
    with pytest.raises(PeFormatError) as info:
        PeImage(data)
    assert info.value.offset == layout.E_LFANEW_OFFSET


def test_section_table_outside_file() -> None:
    data = _sample()
    img = PeImage(data)
    # 65535 sections: the table runs far past the end of the file.
    bad = _patch(data, img.pe_offset + 6, "<H", 0xFFFF)
    with pytest.raises(PeFormatError) as info:
        PeImage(bad)
    assert info.value.offset == img.section_table_offset
    assert "section table" in str(info.value)
    # Truncated in the middle of the section table.
    cut = data[: img.section_table_offset + layout.SECTION_HEADER_SIZE + 7]
    with pytest.raises(ParseError):
        PeImage(cut)


def test_section_raw_data_outside_file() -> None:
    data = _sample()
    img = PeImage(data)
    hdr = img.sections[0].header_offset
    bad = _patch(data, hdr + 20, "<I", 0xFFFFF000)  # PointerToRawData
    with pytest.raises(PeFormatError) as info:
        PeImage(bad)
    assert info.value.offset == hdr + 16
    huge = _patch(data, hdr + 16, "<I", 0xFFFFFFFF)  # SizeOfRawData
    with pytest.raises(PeFormatError):
        PeImage(huge)


def test_truncated_file_reports_section() -> None:
    data = _sample()
    img = PeImage(data)
    last = max(img.sections, key=lambda s: s.raw_end)
    with pytest.raises(PeFormatError) as info:
        PeImage(data[: last.raw_end - 1])
    assert last.name in str(info.value)


def test_certificate_table_outside_file() -> None:
    data = _sample()
    img = PeImage(data)
    entry = img.data_directories[layout.DIR_SECURITY].entry_offset
    bad = _patch(_patch(data, entry, "<I", len(data) - 8), entry + 4, "<I", 0x10000)
    with pytest.raises(PeFormatError) as info:
        PeImage(bad)
    assert info.value.offset == entry


def test_bad_optional_header_magic() -> None:
    data = _sample()
    img = PeImage(data)
    with pytest.raises(PeFormatError) as info:
        PeImage(_patch(data, img.optional_header_offset, "<H", 0x1234))
    assert info.value.offset == img.optional_header_offset


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_images_never_crash(data: st.DataObject) -> None:
    seed = bytearray(_sample())
    # Mutations concentrate on the headers, where the parser makes its decisions.
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, min(len(seed), 0x400) - 1))
        seed[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(seed)))
    try:
        img = PeImage(bytes(seed[:cut]))
    except ParseError:
        return
    for s in img.sections:
        assert s.raw_size == 0 or s.raw_end <= len(img.data)
    img.computed_checksum()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes(blob: bytes) -> None:
    with contextlib.suppress(ParseError):
        PeImage(blob)


def test_truncated_error_is_parse_error() -> None:
    assert issubclass(TruncatedError, ParseError)
