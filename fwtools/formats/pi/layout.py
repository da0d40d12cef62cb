"""PI firmware images: every structure, constant and name, declared once.

References (tianocore/edk2 at edk2-stable202502; PI specification 1.8 volume 3):

- ``MdePkg/Include/Pi/PiFirmwareVolume.h``: EFI_FIRMWARE_VOLUME_HEADER, EFI_FV_BLOCK_MAP_ENTRY,
  EFI_FIRMWARE_VOLUME_EXT_HEADER, EFI_FIRMWARE_VOLUME_EXT_ENTRY and its types, EFI_FVB2_*;
- ``MdePkg/Include/Pi/PiFirmwareFile.h``: EFI_FFS_FILE_HEADER, EFI_FFS_FILE_HEADER2, the file
  types, FFS_ATTRIB_*, EFI_FILE_* states, EFI_COMMON_SECTION_HEADER(2), the section types,
  EFI_COMPRESSION_SECTION, EFI_GUID_DEFINED_SECTION, EFI_VERSION_SECTION,
  EFI_FREEFORM_SUBTYPE_GUID_SECTION, gEfiFirmwareFileSystem2/3Guid;
- ``MdePkg/Include/IndustryStandard/PeImage.h``: EFI_TE_IMAGE_HEADER;
- ``MdePkg/Include/Guid/Crc32GuidedSectionExtraction.h`` and
  ``MdeModulePkg/Include/Guid/LzmaDecompress.h``, ``TianoDecompress.h``, ``BrotliDecompress.h``:
  the GUID-defined section kinds GenFfs and GenSec write (``BaseTools/Conf/tools_def.template``
  names the LZMA tools by these GUIDs);
- ``MdePkg/Include/Pi/PiDependency.h``: the dependency expression opcodes.

The firmware volume header itself is the variable store's (a variable store is a firmware
volume too): its layout is declared in :mod:`fwtools.formats.varstore.layout` and imported
here, not repeated. All integers are little-endian; GUIDs are in the EFI mixed-endian form.
"""

from __future__ import annotations

import uuid
from typing import Final

from fwtools._base.layout import Layout
from fwtools.formats.varstore.layout import (
    BLOCK_MAP_ENTRY_LAYOUT,
    FIRMWARE_FILE_SYSTEM2_GUID,
    FIRMWARE_FILE_SYSTEM3_GUID,
    FV_HEADER_LAYOUT,
    FV_SIGNATURE,
    SYSTEM_NV_DATA_FV_GUID,
    fv_checksum,
)

__all__ = [
    "BLOCK_MAP_ENTRY_LAYOUT",
    "FIRMWARE_FILE_SYSTEM2_GUID",
    "FIRMWARE_FILE_SYSTEM3_GUID",
    "FV_HEADER_LAYOUT",
    "FV_SIGNATURE",
    "SYSTEM_NV_DATA_FV_GUID",
    "fv_checksum",
]

# -- firmware volume (PiFirmwareVolume.h) -----------------------------------------------------

FV_HEADER_SIZE: Final = FV_HEADER_LAYOUT.size  # 0x38, the block map follows
FV_SIGNATURE_OFFSET: Final = FV_HEADER_LAYOUT.offset("signature")
# EFI_FVB2_ERASE_POLARITY: erased flash reads as 0xFF (set on every OVMF/ArmVirt FV).
FVB2_ERASE_POLARITY: Final = 0x00000800
# EFI_FVB2_ALIGNMENT: bits 16-20 are log2 of the FV's required alignment.
FVB2_ALIGNMENT_MASK: Final = 0x001F0000
FVB2_ALIGNMENT_SHIFT: Final = 16
FVH_REVISION: Final = 2  # EFI_FVH_REVISION

EXT_HEADER_LAYOUT: Final = Layout("EFI_FIRMWARE_VOLUME_EXT_HEADER", (
    ("fv_name", "16s"),  # 0: the FV's own name GUID
    ("ext_header_size", "I"),  # 16: the header and all its entries
))
EXT_ENTRY_LAYOUT: Final = Layout("EFI_FIRMWARE_VOLUME_EXT_ENTRY", (
    ("ext_entry_size", "H"),  # 0: the entry including this header
    ("ext_entry_type", "H"),  # 2: EFI_FV_EXT_TYPE_*
))
EXT_TYPE_NAMES: Final[dict[int, str]] = {
    0x01: "OEM_TYPE",  # EFI_FV_EXT_TYPE_OEM_TYPE: TypeMask u32, then GUIDs
    0x02: "GUID_TYPE",  # EFI_FV_EXT_TYPE_GUID_TYPE: FormatType GUID, then data
    0x03: "USED_SIZE_TYPE",  # EFI_FV_EXT_TYPE_USED_SIZE_TYPE: UsedSize u32
}
EXT_TYPE_USED_SIZE: Final = 0x03
USED_SIZE_LAYOUT: Final = Layout("EFI_FIRMWARE_VOLUME_EXT_ENTRY_USED_SIZE_TYPE", (
    ("ext_entry_size", "H"), ("ext_entry_type", "H"), ("used_size", "I"),
))

FILE_SYSTEM_NAMES: Final[dict[uuid.UUID, str]] = {
    FIRMWARE_FILE_SYSTEM2_GUID: "FFS2",
    FIRMWARE_FILE_SYSTEM3_GUID: "FFS3",
    SYSTEM_NV_DATA_FV_GUID: "NVRAM",  # the variable store (not FFS)
}

# -- FFS files (PiFirmwareFile.h) --------------------------------------------------------------

FFS_HEADER_LAYOUT: Final = Layout("EFI_FFS_FILE_HEADER", (
    ("name", "16s"),  # 0: the file's GUID
    ("header_checksum", "B"),  # 16: IntegrityCheck.Checksum.Header
    ("file_checksum", "B"),  # 17: IntegrityCheck.Checksum.File
    ("type", "B"),  # 18: EFI_FV_FILETYPE
    ("attributes", "B"),  # 19: EFI_FFS_FILE_ATTRIBUTES
    ("size", "3s"),  # 20: 24-bit size including the header; 0 for a large file
    ("state", "B"),  # 23: EFI_FFS_FILE_STATE
))
FFS_HEADER2_LAYOUT: Final = FFS_HEADER_LAYOUT.extend("EFI_FFS_FILE_HEADER2", (
    ("extended_size", "Q"),  # 24: the size when FFS_ATTRIB_LARGE_FILE is set (FFS3 only)
))
FFS_HEADER_SIZE: Final = FFS_HEADER_LAYOUT.size  # 24
FFS_HEADER2_SIZE: Final = FFS_HEADER2_LAYOUT.size  # 32
FFS_ALIGNMENT: Final = 8  # files start 8-byte aligned from the FV's start
MAX_FFS_SIZE: Final = 0x1000000  # a file this big needs the large header

FILE_TYPE_NAMES: Final[dict[int, str]] = {
    0x01: "RAW",
    0x02: "FREEFORM",
    0x03: "SECURITY_CORE",
    0x04: "PEI_CORE",
    0x05: "DXE_CORE",
    0x06: "PEIM",
    0x07: "DRIVER",
    0x08: "COMBINED_PEIM_DRIVER",
    0x09: "APPLICATION",
    0x0A: "MM",
    0x0B: "FIRMWARE_VOLUME_IMAGE",
    0x0C: "COMBINED_MM_DXE",
    0x0D: "MM_CORE",
    0x0E: "MM_STANDALONE",
    0x0F: "MM_CORE_STANDALONE",
    0xF0: "FFS_PAD",
}
FILETYPE_RAW: Final = 0x01
FILETYPE_FFS_PAD: Final = 0xF0
# Files whose body is not a list of sections.
FILE_TYPES_WITHOUT_SECTIONS: Final = frozenset({FILETYPE_RAW, FILETYPE_FFS_PAD})
# Files holding an executable module (the "drivers and applications" of a listing).
EXECUTABLE_FILE_TYPES: Final = frozenset(range(0x03, 0x0B)) | frozenset(range(0x0C, 0x10))


def file_type_name(value: int) -> str:
    """``DRIVER``, ``OEM_0xC1``, ``DEBUG_0xE0``, or the number in hex."""
    if value in FILE_TYPE_NAMES:
        return FILE_TYPE_NAMES[value]
    if 0xC0 <= value <= 0xDF:
        return f"OEM_{value:#04x}"
    if 0xE0 <= value <= 0xEF:
        return f"DEBUG_{value:#04x}"
    return f"{value:#04x}"


FFS_ATTRIB_LARGE_FILE: Final = 0x01
FFS_ATTRIB_DATA_ALIGNMENT_2: Final = 0x02
FFS_ATTRIB_FIXED: Final = 0x04
FFS_ATTRIB_DATA_ALIGNMENT: Final = 0x38
FFS_ATTRIB_CHECKSUM: Final = 0x40
# MdeModulePkg/Core/Dxe/FwVol/FwVolRead.c mFvAttributes: log2 of the data alignment for
# the three DATA_ALIGNMENT bits; with DATA_ALIGNMENT_2 the table is 128 KiB ... 16 MiB.
DATA_ALIGNMENT_LOG2: Final = (0, 4, 7, 9, 10, 12, 15, 16)
DATA_ALIGNMENT_2_LOG2: Final = (17, 18, 19, 20, 21, 22, 23, 24)
FFS_FIXED_CHECKSUM: Final = 0xAA  # IntegrityCheck.File without FFS_ATTRIB_CHECKSUM

# EFI_FFS_FILE_STATE bits; with EFI_FVB2_ERASE_POLARITY the byte is inverted first.
EFI_FILE_HEADER_CONSTRUCTION: Final = 0x01
EFI_FILE_HEADER_VALID: Final = 0x02
EFI_FILE_DATA_VALID: Final = 0x04
EFI_FILE_MARKED_FOR_UPDATE: Final = 0x08
EFI_FILE_DELETED: Final = 0x10
EFI_FILE_HEADER_INVALID: Final = 0x20
# The highest set bit decides (MdeModulePkg/Core/Dxe/FwVol/Ffs.c GetFileState).
FILE_STATE_NAMES: Final[dict[int, str]] = {
    EFI_FILE_HEADER_CONSTRUCTION: "header-construction",
    EFI_FILE_HEADER_VALID: "header-valid",
    EFI_FILE_DATA_VALID: "valid",
    EFI_FILE_MARKED_FOR_UPDATE: "marked-for-update",
    EFI_FILE_DELETED: "deleted",
    EFI_FILE_HEADER_INVALID: "header-invalid",
}

# -- sections (PiFirmwareFile.h) ---------------------------------------------------------------

SECTION_HEADER_LAYOUT: Final = Layout("EFI_COMMON_SECTION_HEADER", (
    ("size", "3s"),  # 0: 24-bit size including the header; 0xFFFFFF: ExtendedSize follows
    ("type", "B"),  # 3: EFI_SECTION_TYPE
))
SECTION_HEADER2_LAYOUT: Final = SECTION_HEADER_LAYOUT.extend("EFI_COMMON_SECTION_HEADER2", (
    ("extended_size", "I"),  # 4
))
SECTION_HEADER_SIZE: Final = SECTION_HEADER_LAYOUT.size  # 4
SECTION_HEADER2_SIZE: Final = SECTION_HEADER2_LAYOUT.size  # 8
SECTION_SIZE_EXTENDED: Final = 0xFFFFFF
SECTION_ALIGNMENT: Final = 4

# The bodies that follow the common header (their offsets are from the body's start).
COMPRESSION_LAYOUT: Final = Layout("EFI_COMPRESSION_SECTION", (
    ("uncompressed_length", "I"),
    ("compression_type", "B"),  # EFI_NOT_COMPRESSED 0, EFI_STANDARD_COMPRESSION 1
))
GUID_DEFINED_LAYOUT: Final = Layout("EFI_GUID_DEFINED_SECTION", (
    ("section_definition_guid", "16s"),
    ("data_offset", "H"),  # from the start of the section (common header included)
    ("attributes", "H"),  # EFI_GUIDED_SECTION_*
))
VERSION_LAYOUT: Final = Layout("EFI_VERSION_SECTION", (
    ("build_number", "H"),  # then a NUL-terminated UCS-2 version string
))
FREEFORM_SUBTYPE_LAYOUT: Final = Layout("EFI_FREEFORM_SUBTYPE_GUID_SECTION", (
    ("sub_type_guid", "16s"),
))
# Crc32GuidedSectionExtraction.h CRC32_SECTION_HEADER: the GUID-defined header, then CRC32.
CRC32_LAYOUT: Final = GUID_DEFINED_LAYOUT.extend("CRC32_SECTION_HEADER", (("crc32", "I"),))
# BaseTools/Source/C/LzmaCompress (LzmaCompress.c): LZMA properties byte, dictionary size
# and the uncompressed size (u64), then the raw stream without end marker: the .lzma
# ("alone") container, which Python reads with lzma.FORMAT_ALONE.
LZMA_HEADER_LAYOUT: Final = Layout("LZMA header", (
    ("properties", "B"), ("dictionary_size", "I"), ("uncompressed_size", "Q"),
))

GUIDED_SECTION_PROCESSING_REQUIRED: Final = 0x01
GUIDED_SECTION_AUTH_STATUS_VALID: Final = 0x02

NOT_COMPRESSED: Final = 0
STANDARD_COMPRESSION: Final = 1

SECTION_COMPRESSION: Final = 0x01
SECTION_GUID_DEFINED: Final = 0x02
SECTION_DISPOSABLE: Final = 0x03
SECTION_PE32: Final = 0x10
SECTION_PIC: Final = 0x11
SECTION_TE: Final = 0x12
SECTION_DXE_DEPEX: Final = 0x13
SECTION_VERSION: Final = 0x14
SECTION_USER_INTERFACE: Final = 0x15
SECTION_COMPATIBILITY16: Final = 0x16
SECTION_FIRMWARE_VOLUME_IMAGE: Final = 0x17
SECTION_FREEFORM_SUBTYPE_GUID: Final = 0x18
SECTION_RAW: Final = 0x19
SECTION_PEI_DEPEX: Final = 0x1B
SECTION_MM_DEPEX: Final = 0x1C

SECTION_TYPE_NAMES: Final[dict[int, str]] = {
    SECTION_COMPRESSION: "COMPRESSION",
    SECTION_GUID_DEFINED: "GUID_DEFINED",
    SECTION_DISPOSABLE: "DISPOSABLE",
    SECTION_PE32: "PE32",
    SECTION_PIC: "PIC",
    SECTION_TE: "TE",
    SECTION_DXE_DEPEX: "DXE_DEPEX",
    SECTION_VERSION: "VERSION",
    SECTION_USER_INTERFACE: "USER_INTERFACE",
    SECTION_COMPATIBILITY16: "COMPATIBILITY16",
    SECTION_FIRMWARE_VOLUME_IMAGE: "FIRMWARE_VOLUME_IMAGE",
    SECTION_FREEFORM_SUBTYPE_GUID: "FREEFORM_SUBTYPE_GUID",
    SECTION_RAW: "RAW",
    SECTION_PEI_DEPEX: "PEI_DEPEX",
    SECTION_MM_DEPEX: "MM_DEPEX",
}
DEPEX_SECTION_TYPES: Final = frozenset({SECTION_DXE_DEPEX, SECTION_PEI_DEPEX, SECTION_MM_DEPEX})


def section_type_name(value: int) -> str:
    return SECTION_TYPE_NAMES.get(value, f"{value:#04x}")


# -- GUID-defined section kinds -----------------------------------------------------------------

# edk2 names: gLzmaCustomDecompressGuid, gLzmaF86CustomDecompressGuid,
# gTianoCustomDecompressGuid, gBrotliCustomDecompressGuid, gEfiCrc32GuidedSectionExtractionGuid.
LZMA_GUID: Final = uuid.UUID("ee4e5898-3914-4259-9d6e-dc7bd79403cf")
LZMA_F86_GUID: Final = uuid.UUID("d42ae6bd-1352-4bfb-909a-ca72a6eae889")
TIANO_GUID: Final = uuid.UUID("a31280ad-481e-41b6-95e8-127f4c984779")
BROTLI_GUID: Final = uuid.UUID("3d532050-5cda-4fd0-879e-0f7f630d5afb")
CRC32_GUID: Final = uuid.UUID("fc1bcdb0-7d31-49aa-936a-a4600d9dd083")
GUIDED_SECTION_NAMES: Final[dict[uuid.UUID, str]] = {
    LZMA_GUID: "LZMA",
    LZMA_F86_GUID: "LZMA+x86",
    TIANO_GUID: "Tiano",
    BROTLI_GUID: "Brotli",
    CRC32_GUID: "CRC32",
}
# MdePkg/Include/Guid/FfsSectionAlignmentPadding.h: a FREEFORM_SUBTYPE_GUID section that only
# pads the image behind it to its alignment.
SECTION_ALIGNMENT_PADDING_GUID: Final = uuid.UUID("04132c8d-0a22-4fa8-826e-8bbfefdb836c")

# -- TE images (PeImage.h EFI_TE_IMAGE_HEADER) --------------------------------------------------

TE_HEADER_LAYOUT: Final = Layout("EFI_TE_IMAGE_HEADER", (
    ("signature", "2s"),  # "VZ"
    ("machine", "H"),
    ("number_of_sections", "B"),
    ("subsystem", "B"),
    ("stripped_size", "H"),  # PE header bytes removed; file offset = RVA - this + 40
    ("address_of_entry_point", "I"),
    ("base_of_code", "I"),
    ("image_base", "Q"),
    ("reloc_rva", "I"), ("reloc_size", "I"),  # DataDirectory[0]: base relocations
    ("debug_rva", "I"), ("debug_size", "I"),  # DataDirectory[1]: debug
))
TE_SIGNATURE: Final = b"VZ"

# -- dependency expressions (PiDependency.h) ----------------------------------------------------

DEPEX_OPCODES: Final[dict[int, tuple[str, bool]]] = {  # opcode -> (name, takes a GUID)
    0x00: ("BEFORE", True),
    0x01: ("AFTER", True),
    0x02: ("PUSH", True),
    0x03: ("AND", False),
    0x04: ("OR", False),
    0x05: ("NOT", False),
    0x06: ("TRUE", False),
    0x07: ("FALSE", False),
    0x08: ("END", False),
    0x09: ("SOR", False),
}
DEPEX_END: Final = 0x08

# -- names of well-known volumes (OvmfPkg/OvmfPkgX64.fdf, ArmVirtPkg/ArmVirtQemu.fdf) ----------

VOLUME_NAMES: Final[dict[uuid.UUID, str]] = {
    uuid.UUID("48db5e17-707c-472d-91cd-1613e7ef51b0"): "FVMAIN_COMPACT",
    uuid.UUID("763bed0d-de9f-48f5-81f1-3e90e1b1a015"): "SECFV",
    uuid.UUID("6938079b-b503-4e3d-9d24-b28337a25806"): "PEIFV",
    uuid.UUID("7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1"): "DXEFV",
    uuid.UUID("64074afe-340a-4be6-94ba-91b5b4d0f71e"): "FvMain",
}
