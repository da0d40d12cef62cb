"""The x86 boot protocol setup header: fixture, mutations, hostile input, Debian kernels."""

from __future__ import annotations

import contextlib
import gzip
import re
import struct
import subprocess
from pathlib import Path

import pytest
from corpus.params import CORPUS, corpus_files, need, need_tool
from hypothesis import given, settings
from hypothesis import strategies as st

from fwtools.errors import ParseError, TruncatedError
from fwtools.formats.pe.bzimage import parse_bzimage, sniff_compression
from fwtools.formats.pe.kernel import kernel_info, sniff_kernel

TESTDATA = Path(__file__).resolve().parents[3] / "testdata" / "uki"
FAKE = TESTDATA / "fake-bzimage.efi"



# -- the fixture (testdata/make_uki.py fake_bzimage) --------------------------------------


def patched(data: bytes, offset: int, fmt: str, value: object) -> bytes:
    out = bytearray(data)
    struct.pack_into("<" + fmt, out, offset, value)
    return bytes(out)


def test_fixture_header() -> None:
    data = FAKE.read_bytes()
    hdr = parse_bzimage(data)
    assert hdr is not None
    assert (hdr.boot_protocol, hdr.version) == ("2.15", 0x020F)
    assert hdr.setup_sects == 3 and hdr.protected_mode_offset == 0x800
    assert hdr.kernel_version == "6.1.0-fwtools-test (fwtools@testdata) #1 SMP PREEMPT_DYNAMIC"
    assert hdr.release == "6.1.0-fwtools-test"
    assert hdr.loadflag_names == ("LOADED_HIGH",)
    assert hdr.xloadflags == 0x7F and hdr.efi_handover_32 and hdr.efi_handover_64
    assert "EFI_HANDOVER_64" in hdr.xloadflag_names
    assert (hdr.payload_offset, hdr.payload_file_offset) == (0x100, 0x900)
    assert hdr.payload_compression == "gzip"
    start = 0x900
    payload = data[start : start + hdr.payload_length]
    assert gzip.decompress(payload).startswith(b"\x7fELF")
    assert hdr.kernel_info is not None and hdr.kernel_info.offset == 0x840
    assert hdr.kernel_info.setup_type_max == 0x80000009
    assert (hdr.min_alignment, hdr.kernel_alignment, hdr.relocatable_kernel) == (21, 2 << 20, True)
    assert (hdr.pref_address, hdr.init_size, hdr.handover_offset) == (1 << 24, 1 << 24, 0x190)
    assert hdr.cmdline_size == 2047
    assert hdr.is_pe and hdr.linux_pe_magic


def test_fixture_against_file_command() -> None:
    need_tool("file")
    out = subprocess.run(["file", "-b", str(FAKE)], capture_output=True, text=True).stdout
    match = re.search(r"bzImage, version (.*?), (RO|RW)-rootFS", out)
    assert match, out
    hdr = parse_bzimage(FAKE.read_bytes())
    assert hdr is not None and hdr.kernel_version == match.group(1)


def test_kernel_info_and_sniff_for_fixture() -> None:
    data = FAKE.read_bytes()
    assert sniff_kernel(data).kind == "bzimage" and sniff_kernel(data).is_pe
    info = kernel_info(data)
    assert info is not None
    assert (info.kind, info.machine, info.release, info.compression) == (
        "bzimage",
        "x86_64",
        "6.1.0-fwtools-test",
        "gzip",
    )
    assert info.bzimage is not None and info.arm64 is None


def test_not_a_bzimage() -> None:
    assert parse_bzimage(b"") is None
    assert parse_bzimage(b"MZ" + bytes(0x300)) is None
    assert parse_bzimage(FAKE.read_bytes().replace(b"HdrS", b"HdrX")) is None


def test_old_protocol_ignores_newer_fields() -> None:
    data = patched(FAKE.read_bytes(), 0x206, "H", 0x0204)
    hdr = parse_bzimage(data)
    assert hdr is not None and hdr.boot_protocol == "2.04"
    assert (hdr.xloadflags, hdr.payload_offset, hdr.kernel_info, hdr.cmdline_size) == (
        0,
        0,
        None,
        0,
    )
    assert hdr.payload_compression is None and hdr.payload_file_offset is None


def test_setup_sects_zero_means_four() -> None:
    # (With an old protocol version, so that no payload field points into the moved code.)
    data = patched(patched(FAKE.read_bytes(), 0x1F1, "B", 0), 0x206, "H", 0x0204)
    hdr = parse_bzimage(data)
    assert hdr is not None and hdr.setup_sects == 4 and hdr.protected_mode_offset == 0xA00


def test_short_jump_bounds_the_header() -> None:
    # A jump landing at 0x264 means kernel_info_offset (0x268) is not part of the header.
    data = patched(FAKE.read_bytes(), 0x201, "B", 0x62)
    hdr = parse_bzimage(data)
    assert hdr is not None and hdr.kernel_info_offset == 0 and hdr.kernel_info is None


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "field_offset", "message"),
    [
        (0x20E, "H", 0x7000, 0x20E, "kernel_version string"),
        (0x24C, "I", 0xFFFFFFFF, 0x248, "payload"),
        (0x248, "I", 0x10000, 0x248, "payload"),
        (0x268, "I", 0x80, 0x268, "does not start with b'LToP'"),
        (0x1F1, "B", 0xFF, 0x1F1, "setup code of 255 sectors"),
    ],
)
def test_inconsistent_headers(
    offset: int, fmt: str, value: int, field_offset: int, message: str
) -> None:
    data = patched(FAKE.read_bytes(), offset, fmt, value)
    with pytest.raises(ParseError) as info:
        parse_bzimage(data)
    assert message in str(info.value)
    assert info.value.offset == field_offset


def test_kernel_info_offset_past_the_end() -> None:
    data = patched(FAKE.read_bytes(), 0x268, "I", 0xFFFFFF00)
    with pytest.raises(TruncatedError) as info:
        parse_bzimage(data)
    assert info.value.offset == 0x800 + 0xFFFFFF00


@pytest.mark.parametrize("cut", [0x206, 0x207, 0x230, 0x26B, 0x400, 0x7FF])
def test_truncated(cut: int) -> None:
    with pytest.raises(ParseError) as info:
        parse_bzimage(FAKE.read_bytes()[:cut])
    assert info.value.offset is not None


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (b"\x1f\x8b\x08", "gzip"),
        (b"\xfd7zXZ\x00\x00", "xz"),
        (b"\x28\xb5\x2f\xfd\x04", "zstd"),
        (b"\x5d\x00\x00\x80\x00", "lzma"),
        (b"BZh91AY", "bzip2"),
        (b"\x02\x21\x4c\x18", "lz4"),
        (b"\x89LZO\x00\r\n\x1a\n", "lzo"),
        (b"\x7fELF\x02", "none"),
        (b"\x00\x00", None),
    ],
)
def test_compression_magics(head: bytes, name: str | None) -> None:
    assert sniff_compression(head) == name


@given(st.binary(max_size=0x300))
@settings(max_examples=300)
def test_hostile_bytes(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_bzimage(data)


@given(st.binary(min_size=0x208, max_size=0xC00), st.binary(min_size=2, max_size=2))
@settings(max_examples=500)
def test_hostile_bytes_with_magic(data: bytes, version: bytes) -> None:
    buf = bytearray(data)
    buf[0x202:0x206] = b"HdrS"
    buf[0x206:0x208] = version
    try:
        hdr = parse_bzimage(bytes(buf))
    except ParseError as exc:
        assert exc.offset is not None
    else:
        assert hdr is not None
    with contextlib.suppress(ParseError):
        kernel_info(bytes(buf))


@given(st.data())
@settings(max_examples=300)
def test_fixture_field_fuzz(data: st.DataObject) -> None:
    """Random values in random setup-header fields of a valid image."""
    image = bytearray(FAKE.read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        offset = data.draw(st.integers(0x1F1, 0x26B))
        image[offset] = data.draw(st.integers(0, 255))
    try:
        parse_bzimage(bytes(image))
    except ParseError as exc:
        assert exc.offset is not None


# -- Debian kernels ---------------------------------------------------------------------

X86_KERNELS = corpus_files("*/amd64/linux-image-*/boot/vmlinuz-*")
EXPECTED_COMPRESSION = {"bookworm": "xz", "trixie": "zstd"}
FILE_COMPRESSION = {
    "xz": "XZ compressed data",
    "zstd": "Zstandard compressed data",
    "gzip": "gzip compressed data",
}


@pytest.mark.parametrize("path", X86_KERNELS)
def test_debian_kernels(path: Path | None, tmp_path: Path) -> None:
    path = need(path)
    data = path.read_bytes()
    hdr = parse_bzimage(data)
    assert hdr is not None
    release = path.name.removeprefix("vmlinuz-")
    assert hdr.release == release
    assert path.parent.parent.name == f"linux-image-{release}"
    assert hdr.kernel_version is not None and "debian-kernel@lists.debian.org" in hdr.kernel_version
    assert hdr.version >= 0x020F and hdr.is_pe
    assert hdr.efi_handover_64 and "KERNEL_64" in hdr.xloadflag_names
    assert hdr.kernel_info is not None
    assert hdr.payload_file_offset is not None
    assert hdr.payload_file_offset + hdr.payload_length <= len(data)
    suite = path.relative_to(CORPUS).parts[0]
    if suite in EXPECTED_COMPRESSION:
        assert hdr.payload_compression == EXPECTED_COMPRESSION[suite]
    # Oracle 1: file(1) reads the same version string.
    need_tool("file")
    out = subprocess.run(["file", "-b", str(path)], capture_output=True, text=True).stdout
    match = re.search(r"bzImage, version (.*?), (RO|RW)-rootFS", out)
    assert match, out
    assert hdr.kernel_version.startswith(match.group(1))
    # Oracle 2: file(1) names the payload's compression.
    payload = tmp_path / "payload"
    payload.write_bytes(data[hdr.payload_file_offset : hdr.payload_file_offset + 64])
    out = subprocess.run(["file", "-b", str(payload)], capture_output=True, text=True).stdout
    assert hdr.payload_compression is not None
    assert out.startswith(FILE_COMPRESSION[hdr.payload_compression]), out
    info = kernel_info(data)
    assert info is not None and (info.kind, info.machine, info.release) == (
        "bzimage",
        "x86_64",
        release,
    )
