"""PE/COFF layouts and value tables (Microsoft PE/COFF spec rev 11, "PE Format").

The header structures themselves are decoded by pefile; this module holds the offsets that
Authenticode and the validators need, and the tables that turn values into names. Unknown
values stay integers.
"""

from __future__ import annotations

import struct
from typing import Final

DOS_MAGIC: Final = b"MZ"
PE_SIGNATURE: Final = b"PE\0\0"
E_LFANEW_OFFSET: Final = 0x3C
COFF_HEADER_SIZE: Final = 20
SECTION_HEADER_SIZE: Final = 40
PE32_MAGIC: Final = 0x10B
PE32PLUS_MAGIC: Final = 0x20B

# Offsets inside the optional header (from its start) that Authenticode skips.
CHECKSUM_OFFSET: Final = 64
DATA_DIRECTORIES_OFFSET: Final = {PE32_MAGIC: 96, PE32PLUS_MAGIC: 112}
DATA_DIRECTORY_SIZE: Final = 8
# MajorImageVersion (u16, optional header, PE32 and PE32+): 1 or more in a Linux EFI stub
# that supports LINUX_INITRD_MEDIA (5.8+), which loaders such as systemd-stub check.
MAJOR_IMAGE_VERSION_OFFSET: Final = 44

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

# WIN_CERTIFICATE (wintrust.h / UEFI 2.10 §32.2.4): dwLength, wRevision, wCertificateType.
WIN_CERTIFICATE: Final = struct.Struct("<IHH")
WIN_CERT_REVISION_1_0: Final = 0x0100
WIN_CERT_REVISION_2_0: Final = 0x0200
WIN_CERT_TYPE_X509: Final = 0x0001
WIN_CERT_TYPE_PKCS_SIGNED_DATA: Final = 0x0002
WIN_CERT_TYPE_EFI_PKCS115: Final = 0x0EF0
WIN_CERT_TYPE_EFI_GUID: Final = 0x0EF1
WIN_CERT_TYPES: Final[dict[int, str]] = {
    WIN_CERT_TYPE_X509: "X509",
    WIN_CERT_TYPE_PKCS_SIGNED_DATA: "PKCS_SIGNED_DATA",
    WIN_CERT_TYPE_EFI_PKCS115: "EFI_PKCS115",
    WIN_CERT_TYPE_EFI_GUID: "EFI_GUID",
}
# Entries of the attribute certificate table are quadword aligned.
WIN_CERTIFICATE_ALIGN: Final = 8
