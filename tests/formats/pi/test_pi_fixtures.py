"""formats/pi on the fixtures of testdata/make_pi_fixtures.py (written from the PI spec with
struct, independently of the reader): every structure kind, and hostile inputs."""

from __future__ import annotations

import importlib.util
import struct
import sys
import tracemalloc
import uuid
from pathlib import Path
from types import ModuleType

import pytest
from corpus.params import unavailable

from fwtools.errors import ParseError
from fwtools.formats.pi import (
    Budget,
    FirmwareImage,
    PiFormatError,
    PiLimitError,
    PiTruncatedError,
)
from fwtools.formats.pi import layout as L

ROOT = Path(__file__).resolve().parents[3]
PI = ROOT / "testdata" / "pi"
SAMPLE = ROOT / "testdata" / "sample"


def _load_maker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_pi_fixtures",
                                                  ROOT / "testdata" / "make_pi_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_pi_fixtures", module)
    spec.loader.exec_module(module)
    return module


MAKE = _load_maker()


@pytest.fixture(scope="module")
def tiny() -> FirmwareImage:
    return FirmwareImage.open(PI / "tiny.fd")


def test_top_level_volumes(tiny: FirmwareImage) -> None:
    first, second = tiny.volumes
    assert (first.offset, first.length, first.file_system) == (0, 0xC000, "FFS2")
    assert first.name == MAKE.TINY_GUID
    assert first.header_checksum_ok and first.erase_polarity == 1
    assert [(b.num_blocks, b.length) for b in first.block_map] == [(12, 0x1000)]
    assert first.ext_header_offset == 0x48 + 24
    assert first.anomalies == []
    assert (second.offset, second.file_system, second.name) == (0xC000, "FFS3", None)


def test_files_types_states_and_checksums(tiny: FirmwareImage) -> None:
    files = tiny.volumes[0].files
    assert [f.type_name for f in files] == [
        "FFS_PAD", "DRIVER", "APPLICATION", "PEIM", "FREEFORM", "RAW", "DRIVER", "DRIVER",
        "DRIVER", "FREEFORM", "FIRMWARE_VOLUME_IMAGE", "FIRMWARE_VOLUME_IMAGE"]
    assert all(f.header_checksum_ok and f.data_checksum_ok for f in files)
    states = {f.name: f.state_name for f in files}
    assert states[MAKE.DELETED] == "deleted" and states[MAKE.HELLO] == "valid"
    assert all(f.offset % 8 == 0 for f in files)
    raw = next(f for f in files if f.name == MAKE.RAWFILE)
    assert raw.sections == () and bytes(raw.body) == b"raw file body, no sections"
    assert tiny.volumes[0].free_space_offset is not None
    large = tiny.volumes[1].files[0]
    assert large.large and large.header_size == 32 and large.ui_name == "LargeHeader"


def test_modules_listing(tiny: FirmwareImage) -> None:
    got = [(m.label, m.file_type, m.image_format) for m in tiny.modules]
    assert got == [
        ("HelloNx", "DRIVER", "PE32"), ("LegacyWx", "APPLICATION", "PE32"),
        ("TinyTe", "PEIM", "TE"), ("StdCompressed", "DRIVER", "PE32"),
        ("TianoDriver", "DRIVER", "PE32"), ("InnerDriver", "DRIVER", "PE32"),
        ("BcjDriver", "DRIVER", "PE32"), ("LargeHeader", "DRIVER", "PE32")]
    by = {m.label: m for m in tiny.modules}
    hello = by["HelloNx"]
    assert hello.pe is not None and hello.pe.nx_compat and hello.pe.section_alignment == 0x1000
    assert hello.version == "1.0" and hello.wx_sections == ()
    assert by["LegacyWx"].wx_sections == (".text",)
    te = by["TinyTe"].te
    assert te is not None and te.machine_name == "aarch64" and by["TinyTe"].pe is None
    assert by["TinyTe"].wx_sections == (".data",)
    # the bytes after LZMA, CRC32, EFI, Tiano and LZMA + x86 BCJ decoding are the originals
    for name in ("InnerDriver", "StdCompressed", "TianoDriver"):
        assert by[name].image_bytes == (SAMPLE / "hello-nx.efi").read_bytes()
    assert by["TianoDriver"].where.startswith("in Tiano section at ")
    assert by["StdCompressed"].where.startswith("in EFI-compressed section at ")
    assert by["BcjDriver"].image_bytes == (SAMPLE / "legacy-wx.efi").read_bytes()
    assert by["InnerDriver"].volume_path[-1] == str(MAKE.INNER_GUID)


def test_sections_kinds(tiny: FirmwareImage) -> None:
    files = {f.name: f for f in tiny.volumes[0].files}
    hello = files[MAKE.HELLO]
    kinds = [s.type_name for s in hello.sections]
    assert kinds == ["DXE_DEPEX", "PE32", "USER_INTERFACE", "VERSION"]
    assert hello.sections[0].depex == ["TRUE", "END"]
    assert hello.sections[3].build_number == 0 and hello.sections[3].text == "1.0"
    fvfile = files[MAKE.FVFILE]
    (lzma_section,) = fvfile.sections
    assert lzma_section.guided_kind == "LZMA"
    assert lzma_section.guided_attributes & L.GUIDED_SECTION_PROCESSING_REQUIRED
    assert [c.type_name for c in lzma_section.children] == ["RAW", "FIRMWARE_VOLUME_IMAGE"]
    inner = lzma_section.children[1].volume
    assert inner is not None and inner.where().startswith("in LZMA section at ")
    pad, inner_driver = inner.files
    assert pad.type_name == "FFS_PAD"  # holds the extended header, as GenFv writes it
    crc, compressed = inner_driver.sections
    assert crc.guided_kind == "CRC32" and crc.problem is None
    assert [c.type_name for c in crc.children] == ["PE32"] and crc.problem is None
    assert compressed.compression_type == 0
    assert [c.text for c in compressed.children] == ["InnerDriver"]


def test_unsupported_compression_is_said(tiny: FirmwareImage) -> None:
    files = {f.name: f for f in tiny.volumes[0].files}
    (section,) = files[MAKE.BROTLI_FILE].sections
    assert section.children == ()
    assert section.problem == "unsupported: Brotli compression is not decoded"
    assert any("unsupported: Brotli" in p for p in tiny.problems())


def test_efi_compressed_section_facts(tiny: FirmwareImage) -> None:
    files = {f.name: f for f in tiny.volumes[0].files}
    (section,) = files[MAKE.STDCOMP].sections
    assert section.compression_type == 1 and section.problem is None
    assert [c.type_name for c in section.children] == ["PE32", "USER_INTERFACE"]
    assert section.uncompressed_length == sum(
        (c.size + 3) & ~3 for c in section.children[:-1]) + section.children[-1].size


def test_corrupt_efi_stream() -> None:
    from fwtools.formats.pi.tiano import decompress

    hello = (SAMPLE / "hello-nx.efi").read_bytes()
    try:
        good = MAKE.efi_compress(hello)
    except ImportError:
        unavailable("uefi_firmware (the test extra) makes EFI-compressed streams")
    assert decompress(good, tiano=False) == hello
    bad = bytearray(good)
    bad[8:40] = b"\xff" * 32
    body = MAKE.section(MAKE.S_COMPRESSION, struct.pack("<IB", len(hello), 1) + bytes(bad))
    section = FirmwareImage.parse(MAKE.one_file_fv(MAKE.sections(body))).volumes[0].files[0]
    with pytest.raises(PiFormatError, match="EFI-compressed data cannot be decoded") as info:
        section.sections[0].children  # noqa: B018
    assert info.value.offset is not None and info.value.offset >= 0x48 + 24 + 9 + 8
    huge = bytearray(good)
    huge[4:8] = struct.pack("<I", 1 << 30)
    body = MAKE.section(MAKE.S_COMPRESSION, struct.pack("<IB", 1 << 30, 1) + bytes(huge))
    section = FirmwareImage.parse(MAKE.one_file_fv(MAKE.sections(body))).volumes[0].files[0]
    with pytest.raises(PiLimitError, match="OrigSize 0x40000000 is above the 0x400000 bytes"):
        section.sections[0].children  # noqa: B018


def test_lazy_until_walked() -> None:
    image = FirmwareImage.parse((PI / "tiny.fd").read_bytes())
    assert image.budget.decompressed == 0 and image.budget.nodes == 0
    assert len(image.volumes) == 2
    image.volumes[0].files  # noqa: B018 - walking files decompresses nothing
    assert image.budget.decompressed == 0
    assert len(image.modules) == 8
    assert image.budget.decompressed > 0


def test_budget_bounds_decompression() -> None:
    image = FirmwareImage.parse((PI / "tiny.fd").read_bytes(), budget=Budget(max_decompressed=64))
    with pytest.raises(PiLimitError, match="decompression limit"):
        image.modules  # noqa: B018
    image = FirmwareImage.parse((PI / "tiny.fd").read_bytes(), budget=Budget(max_nodes=5))
    with pytest.raises(PiLimitError, match="more than 5 files and sections"):
        image.modules  # noqa: B018


def test_crc32_mismatch_is_a_problem_not_an_error() -> None:
    data = bytearray((PI / "tiny.fd").read_bytes())
    image = FirmwareImage.parse(bytes(data))
    fvfile = next(f for f in image.volumes[0].files if f.name == MAKE.FVFILE)
    assert fvfile.sections  # the CRC32 section is inside the LZMA output: build one directly
    pe = MAKE.section(MAKE.S_PE32, b"MZ" + bytes(62))
    body = MAKE.guided(MAKE.CRC32, pe, attributes=2, extra=struct.pack("<I", 0x12345678))
    volume = MAKE.one_file_fv(MAKE.sections(body))
    crc = FirmwareImage.parse(volume).volumes[0].files[0].sections[0]
    assert len(crc.children) == 1
    assert crc.problem is not None and "does not match the stored 0x12345678" in crc.problem


def test_error_inside_decompressed_data_names_the_section() -> None:
    bad_volume = bytearray(MAKE.fv([MAKE.ffs(MAKE.HELLO, MAKE.DRIVER, MAKE.sections(
        MAKE.ui("x")))], 0x1000))
    bad_volume[0x48 + 20 : 0x48 + 23] = (0x2000).to_bytes(3, "little")  # past the volume
    payload = MAKE.lzma_payload(MAKE.sections(MAKE.section(MAKE.S_FV, bytes(bad_volume))))
    outer = MAKE.fv([MAKE.ffs(MAKE.FVFILE, MAKE.FV_IMAGE, MAKE.sections(
        MAKE.guided(MAKE.LZMA, payload)))], 0x2000)
    image = FirmwareImage.parse(outer, "outer.fd")
    with pytest.raises(PiTruncatedError) as info:
        image.modules  # noqa: B018
    exc = info.value
    assert exc.offset is None and exc.container == "LZMA section at 0x60"
    # the Size field of the file header, inside the FV_IMAGE section inside the LZMA output
    assert exc.inner_offset == 4 + 0x48 + 20
    text = str(exc)
    assert text.startswith("outer.fd: EFI_FFS_FILE_HEADER Size")
    assert "in LZMA section at 0x60, offset 0x60" in text and "\n" not in text


def test_corrupt_lzma_stream() -> None:
    payload = bytearray(MAKE.lzma_payload(bytes(range(256)) * 64))
    payload[20:40] = b"\xff" * 20
    volume = MAKE.fv([MAKE.ffs(MAKE.FVFILE, MAKE.FV_IMAGE, MAKE.sections(
        MAKE.guided(MAKE.LZMA, bytes(payload))))], 0x1000)
    section = FirmwareImage.parse(volume).volumes[0].files[0].sections[0]
    with pytest.raises(PiFormatError) as info:
        section.children  # noqa: B018
    assert info.value.offset == 0x48 + 24 + 24  # the LZMA header, in the file


HOSTILE = {
    "truncated.fd": (PiTruncatedError, 0x20, "FvLength 0xc000 runs past the end"),
    "lzma-huge-declared.fd": (PiLimitError, 0x7D, "declares 0x10000000000 bytes"),
    "lzma-bomb.fd": (PiLimitError, 0x7D, "declares 0x12c00000 bytes"),
    "nested-bomb.fd": (PiLimitError, None, "nested more than 10 levels deep"),
    "huge-file-size.fd": (PiTruncatedError, 0x5C, "size 0xffffff runs past the end"),
    "huge-section-size.fd": (PiTruncatedError, 0x60, "size 0xfffffff0 runs past the end"),
    "huge-fvlength.fd": (PiTruncatedError, 0x20, "FvLength 0x4000000000000000"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_inputs_fail_with_offset_and_bounded_memory(name: str) -> None:
    cls, offset, fragment = HOSTILE[name]
    data = (PI / name).read_bytes()
    tracemalloc.start()
    try:
        with pytest.raises(ParseError) as info:
            image = FirmwareImage.parse(data, name)
            image.modules  # noqa: B018
            image.problems()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(info.value, cls), info.value
    assert info.value.offset == offset
    assert fragment in str(info.value) and str(info.value).startswith(f"{name}: ")
    assert peak < 32 << 20, f"{name} made the reader allocate {peak} bytes"


def test_not_a_firmware_image() -> None:
    with pytest.raises(PiFormatError, match="no firmware volume"):
        FirmwareImage.parse((SAMPLE / "hello-nx.efi").read_bytes(), "hello-nx.efi")
    with pytest.raises(PiFormatError, match="no firmware volume"):
        FirmwareImage.parse(b"")


def test_bad_checksum_candidates_are_skipped() -> None:
    data = bytearray((PI / "tiny.fd").read_bytes())
    data[0x32] ^= 0xFF  # the first volume's checksum: it is no longer a volume
    image = FirmwareImage.parse(bytes(data))
    assert [v.offset for v in image.volumes] == [0xC000]
    only = bytearray(MAKE.one_file_fv(MAKE.sections(MAKE.ui("x"))))
    only[0x32] ^= 0xFF
    with pytest.raises(PiFormatError, match="wrong checksum") as info:
        FirmwareImage.parse(bytes(only))
    assert info.value.offset == 0x32


def test_qcow2_container() -> None:
    from fwtools.formats.qcow2 import raw_to_qcow2

    raw = (PI / "tiny.fd").read_bytes()
    image = FirmwareImage.parse(raw_to_qcow2(raw), "tiny.qcow2")
    assert image.container == "qcow2"
    assert [m.label for m in image.modules] == [m.label for m in FirmwareImage.parse(raw).modules]


def test_guid_constants_match_the_spec_text() -> None:
    assert uuid.UUID("EE4E5898-3914-4259-9D6E-DC7BD79403CF") == L.LZMA_GUID
    assert L.FFS_HEADER_LAYOUT.size == 24 and L.FFS_HEADER2_LAYOUT.size == 32
    assert L.TE_HEADER_LAYOUT.size == 40 and L.SECTION_HEADER2_LAYOUT.size == 8
    assert L.GUID_DEFINED_LAYOUT.size == 20 and L.CRC32_LAYOUT.size == 24


def test_reserved_state_bits_are_not_loaded() -> None:
    data = bytearray((PI / "tiny.fd").read_bytes())
    image = FirmwareImage.parse(bytes(data))
    hello = next(f for f in image.volumes[0].files if f.name == MAKE.HELLO)
    data[hello.offset + L.FFS_HEADER_LAYOUT.offset("state")] = 0x7F  # inverted: 0x80
    image = FirmwareImage.parse(bytes(data))
    hello = next(f for f in image.volumes[0].files if f.name == MAKE.HELLO)
    assert hello.state_name == "reserved-0x80" and not hello.is_valid
    assert "HelloNx" not in [m.label for m in image.modules]


# gEfiSystemNvDataFvGuid (MdePkg/Include/Guid/SystemNvDataGuid.h): an edk2 variable store
NV_DATA_FV: uuid.UUID = uuid.UUID("fff12b8d-7696-4c8b-a985-2747075b4f50")


def test_code_span_leaves_out_a_leading_store_and_blank_padding() -> None:
    """The code digest is the same for the code alone, after a variable store (OVMF.fd's
    layout, whatever the store holds) and with blank padding after it (AAVMF_CODE.fd's)."""
    import hashlib

    code = MAKE.plain()
    digest = hashlib.sha256(code).hexdigest()
    store = bytearray(MAKE.fv([], 0x1000, fs=NV_DATA_FV))
    used = bytearray(store)
    used[0x800:0x810] = b"written by a VM!"  # inside the store volume: the VM's
    n = len(code)
    for data, span in [
        (code, (0, n)),
        (bytes(store) + code, (0x1000, 0x1000 + n)),
        (bytes(used) + code, (0x1000, 0x1000 + n)),
        (code + bytes(0x3000), (0, n)),
        (code + b"\xff" * 0x3000, (0, n)),
        (bytes(used) + code + bytes(0x1000), (0x1000, 0x1000 + n)),
    ]:
        image = FirmwareImage.parse(data)
        assert (image.code_span(), image.code_sha256) == (span, digest)
    # bytes after the last volume that are not blank are part of the code
    tail = code + bytes(0x100) + b"\x01"
    image = FirmwareImage.parse(tail)
    assert image.code_span() == (0, len(tail)) and image.code_sha256 != digest
    # a store after the code is code's business (only a leading one is the VM's)
    image = FirmwareImage.parse(code + bytes(store))
    assert image.code_span() == (0, n + len(store))
    # an image that is only a store: the whole of it
    image = FirmwareImage.parse(bytes(store))
    assert image.code_span() == (0, len(store))
