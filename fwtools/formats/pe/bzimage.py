"""The Linux x86 boot protocol setup header of a bzImage (what ``vmlinuz`` is on x86).

References:
    Linux ``Documentation/arch/x86/boot.rst``: "The Real-Mode Kernel Header" table (field
        offsets and the protocol version each appeared in), "Details of Header Fields"
        (``setup_sects`` 0 meaning 4, ``kernel_version`` pointing 0x200 bytes before its
        string, ``payload_offset`` and ``kernel_info_offset`` counting from the start of the
        protected-mode code), "The kernel_info" (the ``LToP`` block).
    Linux ``arch/x86/include/uapi/asm/bootparam.h``: ``loadflags`` and ``xloadflags`` bits
        (``XLF_5LEVEL``, ``XLF_5LEVEL_ENABLED``, ``XLF_MEM_ENCRYPTION`` are not in boot.rst).
    Linux ``arch/x86/boot/header.S``: the PE/COFF header of EFI-stub kernels lives in the
        same first sector, and v6.x kernels put ``LINUX_PE_MAGIC`` at offset 0x38.

The payload's compression is identified by magic numbers, as boot.rst tells boot loaders
to do. Nothing here decompresses anything.
"""

from __future__ import annotations

import struct
from typing import Final

from fwtools._base.flags import flag_names
from fwtools._base.reader import Reader
from fwtools._base.record import Record
from fwtools.errors import ParseError, TruncatedError
from fwtools.formats.pe import kernel_magic, layout

# -- layout: the setup header (boot.rst "The Real-Mode Kernel Header") -------------------

SECTOR_SIZE: Final = 512
SETUP_SECTS_OFFSET: Final = 0x1F1
BOOT_FLAG_OFFSET: Final = 0x1FE
BOOT_FLAG: Final = 0xAA55
HEADER_MAGIC_OFFSET: Final = kernel_magic.BZIMAGE_MAGIC_OFFSET
HEADER_MAGIC: Final = kernel_magic.BZIMAGE_MAGIC
# setup_sects == 0 means 4, for compatibility with ancient kernels.
DEFAULT_SETUP_SECTS: Final = 4
# kernel_version holds the string's offset minus 0x200.
KERNEL_VERSION_BASE: Final = 0x200
KERNEL_VERSION_MAX: Final = 256
# The jump at 0x200 is 0xEB followed by a signed byte relative to 0x202; its target
# bounds the header, so fields past it do not exist even if the version claims them.
JUMP_OFFSET: Final = 0x200
JUMP_SHORT: Final = 0xEB
# A Linux PE header starts after the DOS header; v6.x kernels mark it at 0x38.
LINUX_PE_MAGIC_OFFSET: Final = 0x38
LINUX_PE_MAGIC: Final = 0x818223CD

# (field, offset, struct format, first protocol version that has it)
SETUP_HEADER_FIELDS: Final[tuple[tuple[str, int, str, int], ...]] = (
    ("setup_sects", 0x1F1, "B", 0x0000),
    ("root_flags", 0x1F2, "H", 0x0000),
    ("syssize", 0x1F4, "I", 0x0204),
    ("vid_mode", 0x1FA, "H", 0x0000),
    ("root_dev", 0x1FC, "H", 0x0000),
    ("boot_flag", 0x1FE, "H", 0x0000),
    ("jump", 0x200, "H", 0x0200),
    ("version", 0x206, "H", 0x0200),
    ("realmode_swtch", 0x208, "I", 0x0200),
    ("start_sys_seg", 0x20C, "H", 0x0200),
    ("kernel_version", 0x20E, "H", 0x0200),
    ("type_of_loader", 0x210, "B", 0x0200),
    ("loadflags", 0x211, "B", 0x0200),
    ("setup_move_size", 0x212, "H", 0x0200),
    ("code32_start", 0x214, "I", 0x0200),
    ("ramdisk_image", 0x218, "I", 0x0200),
    ("ramdisk_size", 0x21C, "I", 0x0200),
    ("heap_end_ptr", 0x224, "H", 0x0201),
    ("cmd_line_ptr", 0x228, "I", 0x0202),
    ("initrd_addr_max", 0x22C, "I", 0x0203),
    ("kernel_alignment", 0x230, "I", 0x0205),
    ("relocatable_kernel", 0x234, "B", 0x0205),
    ("min_alignment", 0x235, "B", 0x020A),
    ("xloadflags", 0x236, "H", 0x020C),
    ("cmdline_size", 0x238, "I", 0x0206),
    ("hardware_subarch", 0x23C, "I", 0x0207),
    ("hardware_subarch_data", 0x240, "Q", 0x0207),
    ("payload_offset", 0x248, "I", 0x0208),
    ("payload_length", 0x24C, "I", 0x0208),
    ("setup_data", 0x250, "Q", 0x0209),
    ("pref_address", 0x258, "Q", 0x020A),
    ("init_size", 0x260, "I", 0x020A),
    ("handover_offset", 0x264, "I", 0x020B),
    ("kernel_info_offset", 0x268, "I", 0x020F),
)

# loadflags (boot.rst "loadflags")
LOADFLAGS: Final[dict[int, str]] = {
    0x01: "LOADED_HIGH",
    0x02: "KASLR_FLAG",
    0x20: "QUIET_FLAG",
    0x40: "KEEP_SEGMENTS",
    0x80: "CAN_USE_HEAP",
}
LOADED_HIGH: Final = 0x01

# xloadflags (boot.rst "xloadflags", bootparam.h XLF_*)
XLF_KERNEL_64: Final = 1 << 0
XLF_CAN_BE_LOADED_ABOVE_4G: Final = 1 << 1
XLF_EFI_HANDOVER_32: Final = 1 << 2
XLF_EFI_HANDOVER_64: Final = 1 << 3
XLF_EFI_KEXEC: Final = 1 << 4
XLF_5LEVEL: Final = 1 << 5
XLF_5LEVEL_ENABLED: Final = 1 << 6
XLF_MEM_ENCRYPTION: Final = 1 << 7
XLOADFLAGS: Final[dict[int, str]] = {
    XLF_KERNEL_64: "KERNEL_64",
    XLF_CAN_BE_LOADED_ABOVE_4G: "CAN_BE_LOADED_ABOVE_4G",
    XLF_EFI_HANDOVER_32: "EFI_HANDOVER_32",
    XLF_EFI_HANDOVER_64: "EFI_HANDOVER_64",
    XLF_EFI_KEXEC: "EFI_KEXEC",
    XLF_5LEVEL: "5LEVEL",
    XLF_5LEVEL_ENABLED: "5LEVEL_ENABLED",
    XLF_MEM_ENCRYPTION: "MEM_ENCRYPTION",
}

# kernel_info (boot.rst "Details of the kernel_info Fields"): header, size, size_total,
# setup_type_max.
KERNEL_INFO: Final = struct.Struct("<4sIII")
KERNEL_INFO_MAGIC: Final = b"LToP"

# Compression magic numbers (boot.rst "payload_offset", plus the LZO and LZ4 legacy frame
# magics the kernel's decompressors accept). Longest first, so prefixes cannot shadow.
COMPRESSION_MAGICS: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x89LZO\x00\r\n\x1a\n", "lzo"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x02\x21\x4c\x18", "lz4"),
    (b"\x5d\x00\x00", "lzma"),
    (b"BZh", "bzip2"),
    (b"\x1f\x8b", "gzip"),
    (b"\x1f\x9e", "gzip"),
    (b"\x7fELF", "none"),
)


def sniff_compression(data: bytes | memoryview) -> str | None:
    """Name the compression of ``data`` by its magic ("gzip", "xz", "zstd", ... or "none"
    for a bare ELF), or None when no known magic matches."""
    head = bytes(data[:16])
    for magic, name in COMPRESSION_MAGICS:
        if head.startswith(magic):
            return name
    return None


# -- data model -------------------------------------------------------------------------


class X86KernelInfo(Record):
    """The ``kernel_info`` block (protocol 2.15+), found via ``kernel_info_offset``."""

    offset: int
    """File offset of the block."""
    size: int
    size_total: int
    setup_type_max: int


class BzImageHeader(Record):
    """The decoded setup header. Fields the protocol version lacks are 0."""

    boot_protocol: str
    """e.g. "2.15"."""
    version: int
    """The raw protocol version, (major << 8) | minor."""
    setup_sects: int
    """Setup sectors after the boot sector (a stored 0 already turned into 4)."""
    protected_mode_offset: int
    """File offset of the protected-mode code: (setup_sects + 1) * 512."""
    kernel_version: str | None
    """The human-readable version string, e.g. "6.1.0-50-amd64 (debian-kernel@...) #1 ..."."""
    release: str | None
    """The first word of kernel_version: the ``uname -r`` release, e.g. "6.1.0-50-amd64"."""
    syssize: int
    """Size of the protected-mode code in bytes (16-byte paragraphs in the header)."""
    loadflags: int
    loadflag_names: tuple[str, ...]
    xloadflags: int
    xloadflag_names: tuple[str, ...]
    efi_handover_32: bool
    efi_handover_64: bool
    code32_start: int
    initrd_addr_max: int
    kernel_alignment: int
    relocatable_kernel: bool
    min_alignment: int
    cmdline_size: int
    payload_offset: int
    """As stored: relative to the protected-mode code."""
    payload_file_offset: int | None
    """Absolute file offset of the payload, or None when there is none."""
    payload_length: int
    payload_compression: str | None
    """By magic: "gzip", "xz", "zstd", "lzma", "bzip2", "lz4", "lzo", "none" (bare ELF)."""
    pref_address: int
    init_size: int
    handover_offset: int
    kernel_info_offset: int
    kernel_info: X86KernelInfo | None
    is_pe: bool
    """Whether an EFI stub's PE header is present (MZ and PE\\0\\0 at e_lfanew)."""
    linux_pe_magic: bool
    """Whether LINUX_PE_MAGIC marks the DOS header at 0x38 (kernels since v6.x)."""


# -- parsing ----------------------------------------------------------------------------


def _has_pe_header(data: bytes) -> bool:
    e_lfanew = layout.e_lfanew(data)
    if e_lfanew is None:
        return False
    return data[e_lfanew : e_lfanew + len(layout.PE_SIGNATURE)] == layout.PE_SIGNATURE


def parse_bzimage(data: bytes) -> BzImageHeader | None:
    """Decode the setup header of a bzImage, or return None when ``data`` is not one.

    A bzImage is recognised by "HdrS" at 0x202 (boot.rst). Once recognised, a header cut
    short, a version string or payload outside the file, or a kernel_info block without
    its magic raise :class:`ParseError` with the offset of the field at fault.
    """
    magic_end = HEADER_MAGIC_OFFSET + len(HEADER_MAGIC)
    if len(data) < magic_end or data[HEADER_MAGIC_OFFSET:magic_end] != HEADER_MAGIC:
        return None
    reader = Reader(data)
    version = reader.u16(0x206, "setup header version")
    # The short jump at 0x200 bounds the header: fields beyond its target do not exist.
    header_end = len(data)
    if data[JUMP_OFFSET] == JUMP_SHORT:
        header_end = JUMP_OFFSET + 2 + data[JUMP_OFFSET + 1]
    fields: dict[str, int] = {}
    for name, offset, fmt, since in SETUP_HEADER_FIELDS:
        size = struct.calcsize(fmt)
        if version < since or offset + size > header_end:
            fields[name] = 0
            continue
        reader.need(offset, size, f"setup header {name}")
        fields[name] = int(struct.unpack_from("<" + fmt, data, offset)[0])

    setup_sects = fields["setup_sects"] or DEFAULT_SETUP_SECTS
    pm_offset = (setup_sects + 1) * SECTOR_SIZE
    if pm_offset > len(data):
        raise TruncatedError(
            f"setup code of {setup_sects} sectors ends at {pm_offset:#x}, past the end of "
            f"the file ({len(data):#x})",
            structure="setup header setup_sects",
            offset=SETUP_SECTS_OFFSET,
        )

    kernel_version = None
    release = None
    if fields["kernel_version"]:
        start = fields["kernel_version"] + KERNEL_VERSION_BASE
        if start >= len(data):
            raise ParseError(
                f"kernel_version string at {start:#x} is past the end of the file ({len(data):#x})",
                structure="setup header kernel_version",
                offset=0x20E,
            )
        end = data.find(b"\0", start, start + KERNEL_VERSION_MAX)
        raw = data[start : end if end >= 0 else start + KERNEL_VERSION_MAX]
        kernel_version = raw.decode("ascii", "backslashreplace")
        release = kernel_version.split(" ", 1)[0] or None

    payload_file_offset = None
    compression = None
    if fields["payload_offset"] or fields["payload_length"]:
        payload_file_offset = pm_offset + fields["payload_offset"]
        payload_end = payload_file_offset + fields["payload_length"]
        if payload_end > len(data):
            raise ParseError(
                f"payload {payload_file_offset:#x}+{fields['payload_length']:#x} extends past "
                f"the end of the file ({len(data):#x})",
                structure="setup header payload_offset",
                offset=0x248,
            )
        compression = sniff_compression(data[payload_file_offset : payload_file_offset + 16])

    kernel_info = None
    if fields["kernel_info_offset"]:
        ki_offset = pm_offset + fields["kernel_info_offset"]
        magic, size, size_total, setup_type_max = reader.unpack(
            KERNEL_INFO, ki_offset, "kernel_info"
        )
        if magic != KERNEL_INFO_MAGIC:
            raise ParseError(
                f"kernel_info at {ki_offset:#x} does not start with {KERNEL_INFO_MAGIC!r}",
                structure="setup header kernel_info_offset",
                offset=0x268,
            )
        kernel_info = X86KernelInfo(ki_offset, size, size_total, setup_type_max)

    xloadflags = fields["xloadflags"]
    linux_pe_magic = (
        len(data) >= LINUX_PE_MAGIC_OFFSET + 4
        and reader.u32(LINUX_PE_MAGIC_OFFSET, "DOS header") == LINUX_PE_MAGIC
    )
    return BzImageHeader(
        boot_protocol=f"{version >> 8}.{version & 0xFF:02d}",
        version=version,
        setup_sects=setup_sects,
        protected_mode_offset=pm_offset,
        kernel_version=kernel_version,
        release=release,
        syssize=fields["syssize"] * 16,
        loadflags=fields["loadflags"],
        loadflag_names=tuple(flag_names(fields["loadflags"], LOADFLAGS)),
        xloadflags=xloadflags,
        xloadflag_names=tuple(flag_names(xloadflags, XLOADFLAGS)),
        efi_handover_32=bool(xloadflags & XLF_EFI_HANDOVER_32),
        efi_handover_64=bool(xloadflags & XLF_EFI_HANDOVER_64),
        code32_start=fields["code32_start"],
        initrd_addr_max=fields["initrd_addr_max"],
        kernel_alignment=fields["kernel_alignment"],
        relocatable_kernel=bool(fields["relocatable_kernel"]),
        min_alignment=fields["min_alignment"],
        cmdline_size=fields["cmdline_size"],
        payload_offset=fields["payload_offset"],
        payload_file_offset=payload_file_offset,
        payload_length=fields["payload_length"],
        payload_compression=compression,
        pref_address=fields["pref_address"],
        init_size=fields["init_size"],
        handover_offset=fields["handover_offset"],
        kernel_info_offset=fields["kernel_info_offset"],
        kernel_info=kernel_info,
        is_pe=_has_pe_header(data),
        linux_pe_magic=linux_pe_magic,
    )
