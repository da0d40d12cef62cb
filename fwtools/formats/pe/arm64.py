"""The arm64 Linux ``Image`` header and the generic EFI zboot header.

References:
    Linux ``Documentation/arch/arm64/booting.rst`` section 4 "Call the kernel image": the
        64-byte header (code0, code1, text_offset, image_size, flags, res2-res4, magic
        "ARM\\x64" at 0x38, res5 = PE header offset at 0x3C) and the ``flags`` bits
        (bit 0 endianness, bits 1-2 page size, bit 3 physical placement).
    Linux ``drivers/firmware/efi/libstub/zboot-header.S``: the EFI zboot image (an EFI
        application that decompresses the real kernel): "MZ", "zimg" at offset 4, payload
        offset and size, the NUL-terminated compression type at offset 24, LINUX_PE_MAGIC
        at 0x38 and the PE header offset at 0x3C.
    Linux ``include/linux/pe.h``: ``LINUX_PE_MAGIC`` 0x818223cd.

Debian's arm64 ``vmlinuz`` in bookworm and trixie is an uncompressed ``Image`` with an EFI
stub (signed by Debian), not a zboot image and not a gzip file.
"""

from __future__ import annotations

import struct
from typing import Final

from fwtools._base.reader import Reader
from fwtools._base.record import Record
from fwtools.errors import ParseError
from fwtools.formats.pe import kernel_magic, layout
from fwtools.formats.pe.bzimage import sniff_compression

# -- layout: arm64 Image header (booting.rst) --------------------------------------------

# code0, code1, text_offset, image_size, flags, res2, res3, res4, magic, res5
ARM64_HEADER: Final = struct.Struct("<IIQQQQQQ4sI")
ARM64_MAGIC: Final = kernel_magic.ARM64_MAGIC
ARM64_MAGIC_OFFSET: Final = kernel_magic.ARM64_MAGIC_OFFSET
ARM64_PE_OFFSET_FIELD: Final = layout.E_LFANEW_OFFSET  # res5 is the DOS header's e_lfanew
FLAG_BIG_ENDIAN: Final = 1 << 0
FLAG_PAGE_SIZE_SHIFT: Final = 1
FLAG_PAGE_SIZE_MASK: Final = 0b11
FLAG_PHYS_PLACEMENT: Final = 1 << 3
FLAGS_KNOWN: Final = 0b1111
PAGE_SIZES: Final[dict[int, int | None]] = {0: None, 1: 4096, 2: 16384, 3: 65536}
PLACEMENTS: Final = ("near-dram-base", "anywhere-48bit")
# "MZ" as the first instruction: the EFI stub kernels start with a harmless "add x13, x18,
# #0x16" (0x91005a4d) or, in newer kernels, "ccmp" (0xfa405a4d); both encode "MZ".
MZ: Final = b"MZ"

# -- layout: EFI zboot header (zboot-header.S) -------------------------------------------

# MZ_MAGIC (u32), "zimg", payload offset, payload size, 2 x reserved
ZBOOT_HEADER: Final = struct.Struct("<4s4sIIII")
ZBOOT_MAGIC: Final = kernel_magic.ZBOOT_MAGIC
ZBOOT_MAGIC_OFFSET: Final = kernel_magic.ZBOOT_MAGIC_OFFSET
ZBOOT_COMP_TYPE_OFFSET: Final = 24
ZBOOT_COMP_TYPE_END: Final = 0x38
LINUX_PE_MAGIC: Final = 0x818223CD
LINUX_PE_MAGIC_OFFSET: Final = 0x38
PE_OFFSET_FIELD: Final = layout.E_LFANEW_OFFSET  # the DOS header's e_lfanew
PE_SIGNATURE: Final = layout.PE_SIGNATURE


def _pe_at(data: bytes, offset: int) -> bool:
    return offset > 0 and data[offset : offset + 4] == PE_SIGNATURE


# -- data model -------------------------------------------------------------------------


class Arm64ImageHeader(Record):
    """The decoded 64-byte arm64 Image header."""

    code0: int
    code1: int
    text_offset: int
    image_size: int
    """Effective image size the kernel needs, from the start of the image (0: unknown)."""
    flags: int
    big_endian: bool
    page_size: int | None
    """4096, 16384, 65536, or None when unspecified."""
    placement: str
    """"near-dram-base" (flags bit 3 clear) or "anywhere-48bit"."""
    pe_offset: int
    """res5: offset of the PE header for EFI-stub kernels (0 otherwise)."""
    is_pe: bool
    """Whether an EFI stub's PE header is present (MZ and PE\\0\\0 at pe_offset)."""
    release: str | None
    """The ``uname -r`` release found in the "Linux version ..." banner, when present."""
    banner: str | None
    """The full "Linux version ..." banner (uncompressed images only)."""


class ZbootHeader(Record):
    """The header of an EFI zboot image (a self-decompressing EFI-stub kernel)."""

    payload_offset: int
    payload_size: int
    compression_type: str
    """As stored: "gzip", "zstd", "lzma", "xz", "lzo", "lz4", "bzip2" ..."""
    payload_compression: str | None
    """The payload's compression according to its magic (None when unrecognised)."""
    pe_offset: int
    is_pe: bool
    linux_pe_magic: bool


# -- parsing ----------------------------------------------------------------------------

# The banner printed at boot: "Linux version " UTS_RELEASE " (" LINUX_COMPILE_BY ...
LINUX_BANNER: Final = b"Linux version "
BANNER_MAX: Final = 512


def find_linux_banner(data: bytes) -> str | None:
    """The first "Linux version <digit>..." string in ``data`` (an uncompressed kernel)."""
    pos = data.find(LINUX_BANNER)
    while pos >= 0:
        start = pos + len(LINUX_BANNER)
        if data[start : start + 1].isdigit():
            end = start
            limit = min(len(data), pos + BANNER_MAX)
            while end < limit and data[end] not in (0, 0x0A):
                end += 1
            return data[pos:end].decode("ascii", "backslashreplace")
        pos = data.find(LINUX_BANNER, start)
    return None


def release_from_banner(banner: str | None) -> str | None:
    """The release word of a "Linux version <release> (...)" banner."""
    if not banner or not banner.startswith(LINUX_BANNER.decode()):
        return None
    rest = banner[len(LINUX_BANNER) :]
    return rest.split(" ", 1)[0] or None


def parse_arm64_image(data: bytes, *, find_banner: bool = True) -> Arm64ImageHeader | None:
    """Decode an arm64 Image header, or return None when ``data`` has no "ARM\\x64" magic.

    ``find_banner`` also searches the image for the "Linux version" banner (a linear scan,
    a few milliseconds for a 40 MB kernel). A PE header offset pointing outside the file
    raises :class:`ParseError`.
    """
    if len(data) < ARM64_HEADER.size:
        return None
    (code0, code1, text_offset, image_size, flags, _r2, _r3, _r4, magic, pe_offset) = (
        ARM64_HEADER.unpack_from(data, 0)
    )
    if magic != ARM64_MAGIC:
        return None
    is_pe = False
    if data[:2] == MZ and pe_offset:
        if pe_offset + len(PE_SIGNATURE) > len(data):
            raise ParseError(
                f"PE header offset {pe_offset:#x} is past the end of the file ({len(data):#x})",
                structure="arm64 Image header res5",
                offset=ARM64_PE_OFFSET_FIELD,
            )
        is_pe = _pe_at(data, pe_offset)
    banner = find_linux_banner(data) if find_banner else None
    return Arm64ImageHeader(
        code0=code0,
        code1=code1,
        text_offset=text_offset,
        image_size=image_size,
        flags=flags,
        big_endian=bool(flags & FLAG_BIG_ENDIAN),
        page_size=PAGE_SIZES[(flags >> FLAG_PAGE_SIZE_SHIFT) & FLAG_PAGE_SIZE_MASK],
        placement=PLACEMENTS[1 if flags & FLAG_PHYS_PLACEMENT else 0],
        pe_offset=pe_offset,
        is_pe=is_pe,
        release=release_from_banner(banner),
        banner=banner,
    )


def parse_zboot(data: bytes) -> ZbootHeader | None:
    """Decode an EFI zboot header, or return None without "MZ" and "zimg" at offset 4.

    A payload outside the file raises :class:`ParseError`.
    """
    if len(data) < ZBOOT_HEADER.size or data[:2] != MZ:
        return None
    if data[ZBOOT_MAGIC_OFFSET : ZBOOT_MAGIC_OFFSET + len(ZBOOT_MAGIC)] != ZBOOT_MAGIC:
        return None
    reader = Reader(data)
    _mz, _zimg, payload_offset, payload_size, _res0, _res1 = reader.unpack(
        ZBOOT_HEADER, 0, "zboot header"
    )
    raw_type = reader.bytes(
        ZBOOT_COMP_TYPE_OFFSET, ZBOOT_COMP_TYPE_END - ZBOOT_COMP_TYPE_OFFSET, "zboot comp_type"
    )
    comp_type = raw_type.split(b"\0", 1)[0].decode("ascii", "backslashreplace")
    if payload_offset + payload_size > len(data):
        raise ParseError(
            f"payload {payload_offset:#x}+{payload_size:#x} extends past the end of the file "
            f"({len(data):#x})",
            structure="zboot header payload",
            offset=8,
        )
    pe_offset = reader.u32(PE_OFFSET_FIELD, "zboot header PE offset")
    return ZbootHeader(
        payload_offset=payload_offset,
        payload_size=payload_size,
        compression_type=comp_type,
        payload_compression=sniff_compression(data[payload_offset : payload_offset + 16]),
        pe_offset=pe_offset,
        is_pe=_pe_at(data, pe_offset),
        linux_pe_magic=reader.u32(LINUX_PE_MAGIC_OFFSET, "zboot header") == LINUX_PE_MAGIC,
    )
