"""What kind of Linux kernel a file (or a UKI's ``.linux`` section) is, and its headers.

References:
    Linux ``Documentation/arch/x86/boot.rst`` (bzImage, see :mod:`.bzimage`).
    Linux ``Documentation/arch/arm64/booting.rst`` and
        ``drivers/firmware/efi/libstub/zboot-header.S`` (see :mod:`.arm64`).
    RFC 1952 (gzip), the .xz file format, bzip2 and zstd frame magics (see
        :data:`fwtools.formats.pe.bzimage.COMPRESSION_MAGICS`).
    ELF: the System V gABI ``e_ident``/``e_machine`` fields.

Order of detection: EFI zboot ("zimg" at 4), bzImage ("HdrS" at 0x202), arm64 Image
("ARM\\x64" at 0x38), bare ELF, then a compressed file (gzip, xz, ...). For a compressed
file the first bytes are decompressed (stdlib codecs only, a bounded amount) to recognise
a compressed arm64 Image, the form ``vmlinuz`` takes on several distributions.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Final

from fwtools._base.record import Record
from fwtools.errors import ParseError
from fwtools.formats.pe import bzimage, kernel_magic, layout
from fwtools.formats.pe.bzimage import BzImageHeader, parse_bzimage, sniff_compression

if TYPE_CHECKING:  # arm64 is imported when an arm64 kernel is met (an x86 one never needs it)
    from fwtools.formats.pe.arm64 import Arm64ImageHeader, ZbootHeader

KIND_BZIMAGE: Final = "bzimage"
KIND_ARM64_IMAGE: Final = "arm64-image"
KIND_ZBOOT: Final = "zboot"
KIND_ELF: Final = "elf"
KIND_UNKNOWN: Final = "unknown"

# ELF e_ident and e_machine (gABI): 16-byte ident, e_type u16, e_machine u16 (little
# endian for the targets we meet; EI_DATA at 5 says which).
ELF_MAGIC: Final = b"\x7fELF"
ELF_DATA_OFFSET: Final = 5
ELF_DATA_LSB: Final = 1
ELF_MACHINE_OFFSET: Final = 18
ELF_MACHINES: Final[dict[int, str]] = {
    3: "i386",
    40: "arm",
    62: "x86_64",
    183: "aarch64",
    243: "riscv",
    258: "loongarch",
}
# How much of a compressed kernel is decompressed to look at its head.
PEEK_INPUT: Final = 1 << 20
PEEK_OUTPUT: Final = 1 << 16


class KernelFormat(Record):
    """The outer format of a kernel file, from magic numbers alone."""

    kind: str
    """"bzimage", "arm64-image", "zboot", "elf", a compression name ("gzip", "xz",
    "zstd", "lzma", "bzip2", "lz4", "lzo") for a plainly compressed file, or "unknown"."""
    is_pe: bool
    """Whether the file is also a PE image (an EFI stub): MZ and PE\\0\\0 at e_lfanew."""


class KernelInfo(Record):
    """Everything the headers say about a kernel image."""

    kind: str
    is_pe: bool
    machine: str | None
    """PE or ELF machine ("x86_64", "aarch64", ...), or None when unknown."""
    release: str | None
    """The ``uname -r`` release when the headers or banner carry it (e.g. "6.1.0-50-amd64")."""
    version_string: str | None
    """The full version string (bzImage ``kernel_version`` or the arm64 banner)."""
    compression: str | None
    """Payload compression (bzImage, zboot) or the file's own compression."""
    bzimage: BzImageHeader | None = None
    arm64: Arm64ImageHeader | None = None
    zboot: ZbootHeader | None = None
    inner: KernelInfo | None = None
    """For a compressed file: what its decompressed head is (e.g. a gzip'ed arm64 Image)."""


def pe_machine(data: bytes) -> str | None:
    """The COFF machine name ("x86_64", "aarch64", ...) when ``data`` starts with a PE image
    (MZ, and PE\\0\\0 at e_lfanew), else None."""
    e_lfanew = layout.e_lfanew(data)
    if e_lfanew is None:
        return None
    coff = e_lfanew + len(layout.PE_SIGNATURE)
    machine_end = coff + layout.COFF_HEADER.end("Machine")
    if data[e_lfanew:coff] != layout.PE_SIGNATURE or machine_end > len(data):
        return None
    machine = int.from_bytes(data[coff + layout.COFF_HEADER.offset("Machine") : machine_end],
                             "little")
    return layout.MACHINES.get(machine, f"{machine:#06x}")


def _elf_machine(data: bytes) -> str | None:
    if len(data) < ELF_MACHINE_OFFSET + 2 or not data.startswith(ELF_MAGIC):
        return None
    order = "<" if data[ELF_DATA_OFFSET] == ELF_DATA_LSB else ">"
    (machine,) = struct.unpack_from(order + "H", data, ELF_MACHINE_OFFSET)
    return ELF_MACHINES.get(machine, str(machine))


def _magic_at(data: bytes, offset: int, magic: bytes) -> bool:
    return data[offset : offset + len(magic)] == magic


def sniff_kernel(data: bytes) -> KernelFormat:
    """Classify ``data`` by magic numbers only (never raises)."""
    is_pe = pe_machine(data) is not None
    if data[:2] == layout.DOS_MAGIC and _magic_at(
        data, kernel_magic.ZBOOT_MAGIC_OFFSET, kernel_magic.ZBOOT_MAGIC
    ):
        return KernelFormat(KIND_ZBOOT, is_pe)
    if _magic_at(data, bzimage.HEADER_MAGIC_OFFSET, bzimage.HEADER_MAGIC):
        return KernelFormat(KIND_BZIMAGE, is_pe)
    if _magic_at(data, kernel_magic.ARM64_MAGIC_OFFSET, kernel_magic.ARM64_MAGIC):
        return KernelFormat(KIND_ARM64_IMAGE, is_pe)
    if data.startswith(ELF_MAGIC):
        return KernelFormat(KIND_ELF, is_pe)
    compression = sniff_compression(data)
    if compression is not None and compression != "none":
        return KernelFormat(compression, is_pe)
    return KernelFormat(KIND_UNKNOWN, is_pe)


def _peek_decompressed(data: bytes, compression: str) -> bytes | None:
    """Up to PEEK_OUTPUT bytes of the decompressed stream, or None (unsupported/corrupt).

    zlib, lzma and bz2 are imported here: only a plainly compressed kernel file needs them.
    """
    import zlib

    chunk = data[:PEEK_INPUT]
    try:
        if compression == "gzip":
            return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS).decompress(chunk, PEEK_OUTPUT)
        if compression in ("xz", "lzma"):
            import lzma

            try:
                return lzma.LZMADecompressor().decompress(chunk, PEEK_OUTPUT)
            except lzma.LZMAError:
                return None
        if compression == "bzip2":
            import bz2

            return bz2.BZ2Decompressor().decompress(chunk, PEEK_OUTPUT)
    except (zlib.error, OSError, EOFError, ValueError):
        return None
    return None  # zstd, lz4, lzo: no stdlib decoder


def kernel_info(data: bytes, *, peek: bool = True) -> KernelInfo | None:
    """Decode the headers of a kernel image, or None when ``data`` is not a known kernel.

    Raises :class:`fwtools.errors.ParseError` when a recognised header is truncated or
    inconsistent. ``peek`` decompresses the head of a plainly compressed file to recognise
    what is inside (reported in :attr:`KernelInfo.inner`).
    """
    fmt = sniff_kernel(data)
    machine = pe_machine(data)
    if fmt.kind == KIND_ZBOOT:
        from fwtools.formats.pe.arm64 import parse_zboot

        zboot = parse_zboot(data)
        assert zboot is not None
        compression = zboot.payload_compression or zboot.compression_type or None
        return KernelInfo(KIND_ZBOOT, fmt.is_pe, machine, None, None, compression, zboot=zboot)
    if fmt.kind == KIND_BZIMAGE:
        bz = parse_bzimage(data)
        assert bz is not None
        return KernelInfo(
            KIND_BZIMAGE,
            fmt.is_pe,
            machine or "x86",
            bz.release,
            bz.kernel_version,
            bz.payload_compression,
            bzimage=bz,
        )
    if fmt.kind == KIND_ARM64_IMAGE:
        from fwtools.formats.pe.arm64 import parse_arm64_image

        arm = parse_arm64_image(data)
        assert arm is not None
        return KernelInfo(
            KIND_ARM64_IMAGE,
            fmt.is_pe,
            machine or "aarch64",
            arm.release,
            arm.banner,
            None,
            arm64=arm,
        )
    if fmt.kind == KIND_ELF:
        return KernelInfo(KIND_ELF, fmt.is_pe, _elf_machine(data), None, None, "none")
    if fmt.kind == KIND_UNKNOWN:
        return None
    inner = None
    if peek:
        head = _peek_decompressed(data, fmt.kind)
        if head:
            try:
                inner = kernel_info(head, peek=False)
            except ParseError:
                # Only the head was decompressed: fields pointing further in cannot be
                # checked, but the kind is still known.
                sniffed = sniff_kernel(head)
                if sniffed.kind != KIND_UNKNOWN:
                    inner = KernelInfo(
                        sniffed.kind, sniffed.is_pe, pe_machine(head), None, None, None
                    )
    if inner is None:
        # A compressed file that is not (recognisably) a kernel is not reported as one.
        return None
    return KernelInfo(
        fmt.kind,
        fmt.is_pe,
        inner.machine,
        inner.release,
        inner.version_string,
        fmt.kind,
        inner=inner,
    )
