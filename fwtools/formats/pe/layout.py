"""PE/COFF layouts and value tables (Microsoft PE/COFF spec rev 11, "PE Format").

Every header structure fwtools reads is declared here once, as a
:class:`~fwtools._base.layout.Layout` (fields in file order, offsets derived): the DOS
header's e_lfanew, the COFF file header, the optional header in its two forms (PE32 has
BaseOfData at 24 and a 4-byte ImageBase at 28; PE32+ has an 8-byte ImageBase at 24 and
8-byte stack and heap sizes), the data directory entries, the section header, the base
relocation block header and WIN_CERTIFICATE. pefile decodes the values; parsers, validators
and rules take field offsets from here, so a location they report is right for both forms.
The tables below turn values into names; unknown values stay integers.
"""

from __future__ import annotations

from typing import Final

from fwtools._base.layout import Layout

DOS_MAGIC: Final = b"MZ"
PE_SIGNATURE: Final = b"PE\0\0"
PE32_MAGIC: Final = 0x10B
PE32PLUS_MAGIC: Final = 0x20B

# -- headers ("PE Format": "MS-DOS Stub", "COFF File Header", "Optional Header") -----------

# IMAGE_DOS_HEADER (winnt.h): only the magic and e_lfanew matter to an EFI loader (edk2
# MdePkg/Library/BasePeCoffLib/BasePeCoff.c PeCoffLoaderGetPeHeader).
DOS_HEADER: Final = Layout("IMAGE_DOS_HEADER", (
    ("e_magic", "2s"),  # 0: "MZ"
    ("", "58x"),  # 2: the real-mode fields, unused by UEFI
    ("e_lfanew", "I"),  # 60: file offset of the PE signature
))
E_LFANEW_OFFSET: Final = DOS_HEADER.offset("e_lfanew")  # 0x3C

# IMAGE_FILE_HEADER, right after "PE\0\0".
COFF_HEADER: Final = Layout("IMAGE_FILE_HEADER", (
    ("Machine", "H"),  # 0
    ("NumberOfSections", "H"),  # 2
    ("TimeDateStamp", "I"),  # 4
    ("PointerToSymbolTable", "I"),  # 8
    ("NumberOfSymbols", "I"),  # 12
    ("SizeOfOptionalHeader", "H"),  # 16
    ("Characteristics", "H"),  # 18
))
COFF_HEADER_SIZE: Final = COFF_HEADER.size  # 20
# A COFF symbol table record (IMAGE_SYMBOL); the string table follows the last one.
COFF_SYMBOL_SIZE: Final = 18

# The optional header's standard fields, the same in both forms up to BaseOfCode.
_OPTIONAL_STANDARD: Final = (
    ("Magic", "H"),  # 0: 0x10B PE32, 0x20B PE32+
    ("MajorLinkerVersion", "B"),  # 2
    ("MinorLinkerVersion", "B"),  # 3
    ("SizeOfCode", "I"),  # 4
    ("SizeOfInitializedData", "I"),  # 8
    ("SizeOfUninitializedData", "I"),  # 12
    ("AddressOfEntryPoint", "I"),  # 16
    ("BaseOfCode", "I"),  # 20
)
# The Windows-specific fields from SectionAlignment (offset 32 in both forms) to
# DllCharacteristics (70 in both forms).
_OPTIONAL_WINDOWS: Final = (
    ("SectionAlignment", "I"),  # 32
    ("FileAlignment", "I"),  # 36
    ("MajorOperatingSystemVersion", "H"),  # 40
    ("MinorOperatingSystemVersion", "H"),  # 42
    # 44: 1 or more in a Linux EFI stub that supports LINUX_INITRD_MEDIA (5.8+), which
    # loaders such as systemd-stub check.
    ("MajorImageVersion", "H"),
    ("MinorImageVersion", "H"),  # 46
    ("MajorSubsystemVersion", "H"),  # 48
    ("MinorSubsystemVersion", "H"),  # 50
    ("Win32VersionValue", "I"),  # 52
    ("SizeOfImage", "I"),  # 56
    ("SizeOfHeaders", "I"),  # 60
    ("CheckSum", "I"),  # 64: skipped by Authenticode
    ("Subsystem", "H"),  # 68
    ("DllCharacteristics", "H"),  # 70
)


def _stack_and_heap(code: str) -> tuple[tuple[str, str], ...]:
    return (
        ("SizeOfStackReserve", code),
        ("SizeOfStackCommit", code),
        ("SizeOfHeapReserve", code),
        ("SizeOfHeapCommit", code),
        ("LoaderFlags", "I"),
        ("NumberOfRvaAndSizes", "I"),
    )


# IMAGE_OPTIONAL_HEADER32 up to NumberOfRvaAndSizes (96 bytes; the data directories follow).
OPTIONAL_HEADER32: Final = Layout("IMAGE_OPTIONAL_HEADER32", (
    *_OPTIONAL_STANDARD,
    ("BaseOfData", "I"),  # 24: PE32 only
    ("ImageBase", "I"),  # 28
    *_OPTIONAL_WINDOWS,
    *_stack_and_heap("I"),  # 72..95
))
# IMAGE_OPTIONAL_HEADER64 up to NumberOfRvaAndSizes (112 bytes; the data directories follow).
OPTIONAL_HEADER64: Final = Layout("IMAGE_OPTIONAL_HEADER64", (
    *_OPTIONAL_STANDARD,
    ("ImageBase", "Q"),  # 24
    *_OPTIONAL_WINDOWS,
    *_stack_and_heap("Q"),  # 72..111
))
OPTIONAL_HEADERS: Final[dict[int, Layout]] = {
    PE32_MAGIC: OPTIONAL_HEADER32,
    PE32PLUS_MAGIC: OPTIONAL_HEADER64,
}

# IMAGE_DATA_DIRECTORY: an RVA (a file offset for SECURITY) and a size.
DATA_DIRECTORY: Final = Layout("IMAGE_DATA_DIRECTORY", (
    ("VirtualAddress", "I"),
    ("Size", "I"),
))
DATA_DIRECTORY_SIZE: Final = DATA_DIRECTORY.size  # 8

# IMAGE_SECTION_HEADER ("Section Table (Section Headers)").
SECTION_HEADER: Final = Layout("IMAGE_SECTION_HEADER", (
    ("Name", "8s"),  # 0: "/N" for a long name in the COFF string table
    ("VirtualSize", "I"),  # 8
    ("VirtualAddress", "I"),  # 12
    ("SizeOfRawData", "I"),  # 16
    ("PointerToRawData", "I"),  # 20
    ("PointerToRelocations", "I"),  # 24
    ("PointerToLinenumbers", "I"),  # 28
    ("NumberOfRelocations", "H"),  # 32
    ("NumberOfLinenumbers", "H"),  # 34
    ("Characteristics", "I"),  # 36
))
SECTION_HEADER_SIZE: Final = SECTION_HEADER.size  # 40

# IMAGE_BASE_RELOCATION: the header of each block of the .reloc data ("The .reloc Section").
BASE_RELOCATION_BLOCK: Final = Layout("IMAGE_BASE_RELOCATION", (
    ("VirtualAddress", "I"),  # the 4 KiB page the block's entries patch
    ("SizeOfBlock", "I"),  # header included
))


def e_lfanew(data: bytes) -> int | None:
    """The PE signature's offset from the DOS header at the start of ``data`` (MZ and
    e_lfanew present), else None. Whether a signature is there is the caller's check."""
    if len(data) < DOS_HEADER.size or data[:2] != DOS_MAGIC:
        return None
    value: int = DOS_HEADER.unpack_from(data)[1]
    return value


# Loaders refuse more than this many sections (Windows and edk2's PeCoffLib); pefile stops
# at 2048, so anything between the two is reported as an anomaly, above 2048 as an error.
MAX_SECTIONS: Final = 2048
PAGE_SIZE: Final = 4096

DIR_EXPORT: Final = 0
DIR_IMPORT: Final = 1
DIR_RESOURCE: Final = 2
DIR_EXCEPTION: Final = 3
DIR_SECURITY: Final = 4
DIR_BASERELOC: Final = 5
DIR_DEBUG: Final = 6

DATA_DIRECTORY_NAMES: Final = (
    "EXPORT", "IMPORT", "RESOURCE", "EXCEPTION", "SECURITY", "BASERELOC", "DEBUG",
    "ARCHITECTURE", "GLOBALPTR", "TLS", "LOAD_CONFIG", "BOUND_IMPORT", "IAT",
    "DELAY_IMPORT", "CLR_RUNTIME", "RESERVED",
)  # fmt: skip

MACHINES: Final[dict[int, str]] = {
    0x014C: "i386",
    0x8664: "x86_64",
    0x01C2: "arm-thumb",
    0x01C4: "arm",
    0xAA64: "aarch64",
    0x5032: "riscv32",
    0x5064: "riscv64",
    0x5128: "riscv128",
    0x6232: "loongarch32",
    0x6264: "loongarch64",
    0x0200: "ia64",
    0x0EBC: "ebc",
}

SUBSYSTEMS: Final[dict[int, str]] = {
    1: "native",
    2: "windows-gui",
    3: "windows-cui",
    10: "efi-application",
    11: "efi-boot-service-driver",
    12: "efi-runtime-driver",
    13: "efi-rom",
    16: "windows-boot-application",
}
EFI_SUBSYSTEMS: Final = frozenset({10, 11, 12, 13})

# IMAGE_FILE_* (COFF Characteristics)
FILE_RELOCS_STRIPPED: Final = 0x0001
FILE_CHARACTERISTICS: Final[dict[int, str]] = {
    0x0001: "RELOCS_STRIPPED",
    0x0002: "EXECUTABLE_IMAGE",
    0x0004: "LINE_NUMS_STRIPPED",
    0x0008: "LOCAL_SYMS_STRIPPED",
    0x0020: "LARGE_ADDRESS_AWARE",
    0x0100: "32BIT_MACHINE",
    0x0200: "DEBUG_STRIPPED",
    0x1000: "SYSTEM",
    0x2000: "DLL",
}

# IMAGE_DLLCHARACTERISTICS_*
DLL_NX_COMPAT: Final = 0x0100
DLL_CHARACTERISTICS: Final[dict[int, str]] = {
    0x0020: "HIGH_ENTROPY_VA",
    0x0040: "DYNAMIC_BASE",
    0x0080: "FORCE_INTEGRITY",
    0x0100: "NX_COMPAT",
    0x0200: "NO_ISOLATION",
    0x0400: "NO_SEH",
    0x0800: "NO_BIND",
    0x1000: "APPCONTAINER",
    0x2000: "WDM_DRIVER",
    0x4000: "GUARD_CF",
    0x8000: "TERMINAL_SERVER_AWARE",
}

# IMAGE_SCN_*
SCN_CNT_CODE: Final = 0x00000020
SCN_CNT_INITIALIZED_DATA: Final = 0x00000040
SCN_CNT_UNINITIALIZED_DATA: Final = 0x00000080
SCN_MEM_DISCARDABLE: Final = 0x02000000
SCN_MEM_SHARED: Final = 0x10000000
SCN_MEM_EXECUTE: Final = 0x20000000
SCN_MEM_READ: Final = 0x40000000
SCN_MEM_WRITE: Final = 0x80000000
SECTION_CHARACTERISTICS: Final[dict[int, str]] = {
    0x00000008: "TYPE_NO_PAD",
    0x00000020: "CNT_CODE",
    0x00000040: "CNT_INITIALIZED_DATA",
    0x00000080: "CNT_UNINITIALIZED_DATA",
    0x00000200: "LNK_INFO",
    0x00000800: "LNK_REMOVE",
    0x00001000: "LNK_COMDAT",
    0x00008000: "GPREL",
    0x01000000: "LNK_NRELOC_OVFL",
    0x02000000: "MEM_DISCARDABLE",
    0x04000000: "MEM_NOT_CACHED",
    0x08000000: "MEM_NOT_PAGED",
    0x10000000: "MEM_SHARED",
    0x20000000: "MEM_EXECUTE",
    0x40000000: "MEM_READ",
    0x80000000: "MEM_WRITE",
}
SCN_ALIGN_MASK: Final = 0x00F00000

# WIN_CERTIFICATE, the certificate table's entry header: fwtools.formats.pe.wincert_layout.
