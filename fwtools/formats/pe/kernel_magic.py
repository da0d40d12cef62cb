"""The magic numbers that mark a PE image as a Linux kernel, without loading the parsers.

Every EFI binary is checked against these, and only kernels (a few percent of them) then
import :mod:`fwtools.formats.pe.kernel` and its header dataclasses.

References: Linux ``Documentation/arch/x86/boot.rst`` ("HdrS" at 0x202),
``Documentation/arch/arm64/booting.rst`` ("ARM\\x64" at 0x38),
``drivers/firmware/efi/libstub/zboot-header.S`` ("zimg" at 4).
"""

from __future__ import annotations

from typing import Final

BZIMAGE_MAGIC: Final = b"HdrS"
BZIMAGE_MAGIC_OFFSET: Final = 0x202
ARM64_MAGIC: Final = b"ARM\x64"
ARM64_MAGIC_OFFSET: Final = 0x38
ZBOOT_MAGIC: Final = b"zimg"
ZBOOT_MAGIC_OFFSET: Final = 4


def looks_like_pe_kernel(data: bytes) -> bool:
    """Whether a PE image carries a bzImage, arm64 Image or EFI zboot header."""
    return any(
        data[off : off + len(magic)] == magic
        for off, magic in (
            (BZIMAGE_MAGIC_OFFSET, BZIMAGE_MAGIC),
            (ARM64_MAGIC_OFFSET, ARM64_MAGIC),
            (ZBOOT_MAGIC_OFFSET, ZBOOT_MAGIC),
        )
    )
