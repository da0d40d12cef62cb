"""arm64 Image and EFI zboot headers, kernel sniffing, Debian arm64 kernels."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import re
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from corpus.params import corpus_files, need, need_tool
from hypothesis import given, settings
from hypothesis import strategies as st

from fwtools.errors import ParseError
from fwtools.formats.pe.arm64 import parse_arm64_image, parse_zboot
from fwtools.formats.pe.kernel import kernel_info, sniff_kernel

# -- synthetic images (booting.rst, zboot-header.S) --------------------------------------

BANNER = b"Linux version 6.12.0-fwtools-arm64 (fwtools@testdata) (gcc 14) #1 SMP\n"


def arm64_image(
    *, flags: int = 0b1010, pe_offset: int = 0x40, pe: bool = True, size: int = 0x1000
) -> bytes:
    """code0 "MZ" + branch, text_offset 0, image_size, flags, magic, res5 = PE offset."""
    head = struct.pack(
        "<IIQQQQQQ4sI", 0xFA405A4D, 0x14000000, 0, 0x200000, flags, 0, 0, 0, b"ARM\x64", pe_offset
    )
    body = bytearray(head.ljust(size, b"\0"))
    if pe and pe_offset + 4 <= size:
        body[pe_offset : pe_offset + 4] = b"PE\0\0"
        body[pe_offset + 4 : pe_offset + 6] = struct.pack("<H", 0xAA64)
    body[0x800 : 0x800 + len(BANNER)] = BANNER
    return bytes(body)


def zboot_image(comp: bytes = b"gzip", payload: bytes | None = None) -> bytes:
    payload = gzip.compress(arm64_image(), mtime=0) if payload is None else payload
    head = bytearray(0x200)
    head[0:4] = b"MZ\0\0"
    head[4:8] = b"zimg"
    struct.pack_into("<II", head, 8, len(head), len(payload))
    head[24 : 24 + len(comp) + 1] = comp + b"\0"
    struct.pack_into("<II", head, 0x38, 0x818223CD, 0x40)
    head[0x40:0x44] = b"PE\0\0"
    struct.pack_into("<H", head, 0x44, 0xAA64)
    return bytes(head) + payload


def test_arm64_header_fields() -> None:
    hdr = parse_arm64_image(arm64_image())
    assert hdr is not None
    assert (hdr.text_offset, hdr.image_size, hdr.flags) == (0, 0x200000, 0b1010)
    assert (hdr.big_endian, hdr.page_size, hdr.placement) == (False, 4096, "anywhere-48bit")
    assert hdr.is_pe and hdr.pe_offset == 0x40
    assert hdr.release == "6.12.0-fwtools-arm64"
    assert hdr.banner == BANNER.decode().rstrip("\n")


@pytest.mark.parametrize(
    ("flags", "big_endian", "page_size", "placement"),
    [
        (0b0000, False, None, "near-dram-base"),
        (0b0001, True, None, "near-dram-base"),
        (0b0100, False, 16384, "near-dram-base"),
        (0b1110, False, 65536, "anywhere-48bit"),
        (0xFFFF_FFFF_FFFF_FFF0, False, None, "near-dram-base"),
    ],
)
def test_arm64_flags(flags: int, big_endian: bool, page_size: int | None, placement: str) -> None:
    hdr = parse_arm64_image(arm64_image(flags=flags))
    assert hdr is not None
    assert (hdr.big_endian, hdr.page_size, hdr.placement, hdr.flags) == (
        big_endian,
        page_size,
        placement,
        flags,
    )


def test_arm64_without_efi_stub() -> None:
    data = arm64_image(pe_offset=0, pe=False)
    data = b"\x00\x00" + data[2:]  # no "MZ" either
    hdr = parse_arm64_image(data)
    assert hdr is not None and not hdr.is_pe
    assert sniff_kernel(data).kind == "arm64-image" and not sniff_kernel(data).is_pe


def test_arm64_pe_offset_outside_the_file() -> None:
    with pytest.raises(ParseError) as info:
        parse_arm64_image(arm64_image(pe_offset=0xFFFFFF00, pe=False))
    assert info.value.offset == 0x3C


def test_not_arm64() -> None:
    assert parse_arm64_image(b"") is None
    assert parse_arm64_image(bytes(0x40)) is None
    assert parse_arm64_image(arm64_image()[:0x3F]) is None


def test_zboot_header() -> None:
    data = zboot_image()
    z = parse_zboot(data)
    assert z is not None
    assert (z.payload_offset, z.compression_type, z.payload_compression) == (0x200, "gzip", "gzip")
    assert z.payload_size == len(data) - 0x200
    assert z.is_pe and z.linux_pe_magic and z.pe_offset == 0x40
    info = kernel_info(data)
    assert info is not None and (info.kind, info.machine, info.compression) == (
        "zboot",
        "aarch64",
        "gzip",
    )


def test_zboot_compression_type_vs_magic() -> None:
    z = parse_zboot(zboot_image(b"zstd", b"\x28\xb5\x2f\xfd" + bytes(60)))
    assert z is not None and (z.compression_type, z.payload_compression) == ("zstd", "zstd")


def test_zboot_payload_outside_the_file() -> None:
    data = bytearray(zboot_image())
    struct.pack_into("<I", data, 12, 0xFFFFFFFF)
    with pytest.raises(ParseError) as info:
        parse_zboot(bytes(data))
    assert info.value.offset == 8


def test_not_zboot() -> None:
    assert parse_zboot(b"MZ") is None
    assert parse_zboot(arm64_image()) is None


@pytest.mark.parametrize(
    ("compress", "kind"),
    [
        (lambda d: gzip.compress(d, mtime=0), "gzip"),
        (lzma.compress, "xz"),
        (lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE), "lzma"),
        (bz2.compress, "bzip2"),
    ],
)
def test_compressed_arm64_image(compress: Any, kind: str) -> None:
    """``vmlinuz`` as several distributions ship it on arm64: a compressed Image."""
    data = compress(arm64_image(size=0x20000))
    assert sniff_kernel(data).kind == kind
    info = kernel_info(data)
    assert info is not None
    assert (info.kind, info.compression, info.machine) == (kind, kind, "aarch64")
    assert info.inner is not None and info.inner.kind == "arm64-image"
    assert info.inner.arm64 is not None and info.inner.arm64.page_size == 4096


def test_compressed_garbage_is_not_a_kernel() -> None:
    assert kernel_info(gzip.compress(b"hello world")) is None
    assert kernel_info(b"\x1f\x8b\x08corrupt") is None
    assert sniff_kernel(b"\x1f\x8b\x08corrupt").kind == "gzip"


def test_elf_and_unknown() -> None:
    elf = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HH", 2, 183) + bytes(44)
    info = kernel_info(elf)
    assert info is not None and (info.kind, info.machine) == ("elf", "aarch64")
    assert kernel_info(b"just text") is None
    assert sniff_kernel(b"").kind == "unknown"


@given(st.binary(max_size=0x400))
@settings(max_examples=400)
def test_hostile_bytes(data: bytes) -> None:
    for parse in (parse_arm64_image, parse_zboot, kernel_info):
        with contextlib.suppress(ParseError):
            parse(data)
    sniff_kernel(data)


@given(st.binary(min_size=0x40, max_size=0x400), st.sampled_from([b"ARM\x64", b"zimg"]))
@settings(max_examples=400)
def test_hostile_bytes_with_magic(data: bytes, magic: bytes) -> None:
    buf = bytearray(data)
    buf[0:2] = b"MZ"
    if magic == b"zimg":
        buf[4:8] = magic
    else:
        buf[0x38:0x3C] = magic
    for parse in (parse_arm64_image, parse_zboot, kernel_info):
        try:
            parse(bytes(buf))
        except ParseError as exc:
            assert exc.offset is not None


@given(st.binary(max_size=64), st.sampled_from(["gzip", "xz", "bzip2"]))
@settings(max_examples=100)
def test_hostile_compressed_heads(data: bytes, kind: str) -> None:
    wrapped = {
        "gzip": lambda d: gzip.compress(d, mtime=0),
        "xz": lzma.compress,
        "bzip2": bz2.compress,
    }[kind](data)
    with contextlib.suppress(ParseError):
        kernel_info(wrapped)


# -- Debian kernels ---------------------------------------------------------------------

ARM64_KERNELS = corpus_files("*/arm64/linux-image-*/boot/vmlinuz-*")


@pytest.mark.parametrize("path", ARM64_KERNELS)
def test_debian_arm64_kernels(path: Path | None) -> None:
    path = need(path)
    data = path.read_bytes()
    release = path.name.removeprefix("vmlinuz-")
    # Debian's arm64 vmlinuz (bookworm and trixie) is an uncompressed, EFI-stub Image.
    assert sniff_kernel(data).kind == "arm64-image"
    assert parse_zboot(data) is None
    hdr = parse_arm64_image(data)
    assert hdr is not None
    assert hdr.is_pe and hdr.pe_offset == 0x40
    assert hdr.release == release
    assert hdr.image_size >= len(data)
    need_tool("file")
    out = subprocess.run(["file", "-b", str(path)], capture_output=True, text=True).stdout
    match = re.search(r"ARM64 boot executable Image, (little|big)-endian, (\d+)K pages", out)
    assert match, out
    assert hdr.big_endian == (match.group(1) == "big")
    assert hdr.page_size == int(match.group(2)) * 1024
    info = kernel_info(data)
    assert info is not None
    assert (info.kind, info.machine, info.release) == ("arm64-image", "aarch64", release)
