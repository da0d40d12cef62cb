"""edk2 non-volatile variable store: every structure, constant and known layout.

References (tianocore/edk2; ``docs/varstore-format.md`` has the values measured on Debian's
stores):

- ``MdePkg/Include/Pi/PiFirmwareVolume.h``: EFI_FIRMWARE_VOLUME_HEADER, EFI_FV_BLOCK_MAP_ENTRY;
- ``MdeModulePkg/Include/Guid/SystemNvDataGuid.h``: gEfiSystemNvDataFvGuid,
  EFI_FAULT_TOLERANT_WORKING_BLOCK_HEADER, gEdkiiWorkingBlockSignatureGuid;
- ``MdeModulePkg/Include/Guid/VariableFormat.h``: VARIABLE_STORE_HEADER, VARIABLE_HEADER,
  AUTHENTICATED_VARIABLE_HEADER, the State values, HEADER_ALIGNMENT;
- ``MdeModulePkg/Universal/FaultTolerantWriteDxe/FaultTolerantWrite.h``, ``FtwMisc.c``:
  EFI_FAULT_TOLERANT_WRITE_HEADER / _RECORD and the restart rule;
- ``OvmfPkg/Include/Fdf/VarStore.fdf.inc``, ``ArmVirtPkg/VarStore.fdf.inc``: the templates;
- ``OvmfPkg/OvmfPkgX64.dsc``, ``ArmVirtPkg/ArmVirtQemu.dsc``: PcdMaxVariableSize and
  PcdMaxAuthVariableSize of each build.

All integers are little-endian; GUIDs are in the EFI mixed-endian form. Each structure is
declared once as a :class:`~fwtools._base.layout.Layout` (fields in file order with their
``struct`` codes); the ``struct.Struct``, the ``*_OFFSET`` and ``*_SIZE`` names below are
derived from it, and the parser (:mod:`.parse`, :mod:`.records`, :mod:`.ftw`) and the writer
(:mod:`.reclaim`) take offsets and sizes from here, never spelled out.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from typing import Final, Literal

from fwtools._base.layout import Layout
from fwtools._base.record import Record, replace

# Attribute bits (one definition, in fwtools.formats.efi.authvar).
from fwtools.formats.efi.authvar import (
    AUTHENTICATED_WRITE_ACCESS,
    HARDWARE_ERROR_RECORD,
    TIME_BASED_AUTHENTICATED_WRITE_ACCESS,
)

# -- firmware volume header (PiFirmwareVolume.h) ------------------------------------------
#
# EFI_FIRMWARE_VOLUME_HEADER, then BlockMap[]: {NumBlocks u32, Length u32} ... {0, 0}.

FV_HEADER_FIELDS: Final = (
    ("zero_vector", "16s"),  # 0x00: all 0
    ("file_system_guid", "16s"),  # 0x10: gEfiSystemNvDataFvGuid for a variable FV
    ("fv_length", "Q"),  # 0x20: the whole NV region (variables + event log + FTW + spare)
    ("signature", "4s"),  # 0x28: "_FVH"
    ("attributes", "I"),  # 0x2C: EFI_FVB_ATTRIBUTES_2
    ("header_length", "H"),  # 0x30: 0x48 with one block-map entry
    ("checksum", "H"),  # 0x32: 16-bit sum of all words over HeaderLength is 0
    ("ext_header_offset", "H"),  # 0x34: 0
    ("reserved", "B"),  # 0x36: 0
    ("revision", "B"),  # 0x37: 2 (EFI_FVH_REVISION)
)
FV_HEADER_LAYOUT: Final = Layout("EFI_FIRMWARE_VOLUME_HEADER", FV_HEADER_FIELDS)
BLOCK_MAP_ENTRY_LAYOUT: Final = Layout(
    "EFI_FV_BLOCK_MAP_ENTRY", (("num_blocks", "I"), ("length", "I"))
)

FV_HEADER: Final = FV_HEADER_LAYOUT.struct
FV_HEADER_SIZE: Final = FV_HEADER_LAYOUT.size  # 0x38, without the block map
FV_ZERO_VECTOR_OFFSET: Final = FV_HEADER_LAYOUT.offset("zero_vector")
FV_GUID_OFFSET: Final = FV_HEADER_LAYOUT.offset("file_system_guid")
FV_LENGTH_OFFSET: Final = FV_HEADER_LAYOUT.offset("fv_length")
FV_SIGNATURE_OFFSET: Final = FV_HEADER_LAYOUT.offset("signature")
FV_ATTRIBUTES_OFFSET: Final = FV_HEADER_LAYOUT.offset("attributes")
FV_HEADER_LENGTH_OFFSET: Final = FV_HEADER_LAYOUT.offset("header_length")
FV_CHECKSUM_OFFSET: Final = FV_HEADER_LAYOUT.offset("checksum")
FV_EXT_HEADER_OFFSET_OFFSET: Final = FV_HEADER_LAYOUT.offset("ext_header_offset")
FV_REVISION_OFFSET: Final = FV_HEADER_LAYOUT.offset("revision")
FV_BLOCK_MAP_OFFSET: Final = FV_HEADER_SIZE
FV_SIGNATURE: Final = b"_FVH"
FV_REVISION: Final = 2
BLOCK_MAP_ENTRY: Final = BLOCK_MAP_ENTRY_LAYOUT.struct
BLOCK_MAP_ENTRY_SIZE: Final = BLOCK_MAP_ENTRY_LAYOUT.size
# One block-map entry plus the {0, 0} terminator: what every OVMF/ArmVirt varstore has.
FV_HEADER_LENGTH: Final = FV_HEADER_SIZE + 2 * BLOCK_MAP_ENTRY_SIZE  # 0x48
# The smallest header a parser can read: the fixed part and one block-map entry.
FV_HEADER_MIN_LENGTH: Final = FV_HEADER_SIZE + BLOCK_MAP_ENTRY_SIZE

# The attributes the fdf templates give the NV FV (VarStore.fdf.inc: 0x0004FEFF), and what
# ArmVirt's VirtNorFlashDxe writes when it formats the flash at runtime
# (InitializeFvAndVariableStoreHeaders: EFI_FVB2_READ_ENABLED_CAP | ... = 0x00000E36,
# measured on bookworm's AAVMF_VARS.{ms,snakeoil}.fd).
FV_ATTRIBUTES_TEMPLATE: Final = 0x0004FEFF
# OvmfPkg/QemuFlashFvbServicesRuntimeDxe (QemuFlash.c): the x86 flash driver's block size;
# a varstore FV whose BlockMap[0].Length differs is erased at boot.
X86_FLASH_BLOCK_SIZE: Final = 0x1000
FV_ATTRIBUTES_ARMVIRT_RUNTIME: Final = 0x00000E36

# SystemNvDataGuid.h: gEfiSystemNvDataFvGuid.
SYSTEM_NV_DATA_FV_GUID: Final = uuid.UUID("fff12b8d-7696-4c8b-a985-2747075b4f50")
# PiFirmwareFile.h: the file systems a *code* FV carries (to name what was given instead).
FIRMWARE_FILE_SYSTEM2_GUID: Final = uuid.UUID("8c8ce578-8a3d-4f1c-9935-896185c32dd3")
FIRMWARE_FILE_SYSTEM3_GUID: Final = uuid.UUID("5473c07a-3dcb-4dca-bd6f-1e9689e7349a")


def fv_checksum(header: bytes | bytearray | memoryview) -> int:
    """The 16-bit sum of the little-endian words of ``header`` (0 for a valid FV header;
    ``header`` is HeaderLength bytes, an even number)."""
    count = len(header) // 2
    words: tuple[int, ...] = struct.unpack_from(f"<{count}H", header)
    return sum(words) & 0xFFFF


def fv_checksum_field(header: bytes | bytearray | memoryview) -> int:
    """The Checksum value that makes ``header`` sum to 0 (its current Checksum ignored)."""
    current = bytes(header[FV_CHECKSUM_OFFSET : FV_HEADER_LAYOUT.end("checksum")])
    without = fv_checksum(header) - int.from_bytes(current, "little")
    return (-without) & 0xFFFF


def set_fv_checksum(header: bytearray) -> None:
    """Set the Checksum field of ``header`` (HeaderLength bytes) so its words sum to 0."""
    value = fv_checksum_field(header)
    header[FV_CHECKSUM_OFFSET : FV_HEADER_LAYOUT.end("checksum")] = value.to_bytes(
        FV_HEADER_LAYOUT.field_size("checksum"), "little"
    )


# -- variable store header (VariableFormat.h) ---------------------------------------------

STORE_HEADER_LAYOUT: Final = Layout(
    "VARIABLE_STORE_HEADER",
    (
        ("signature", "16s"),  # 0: gEfiAuthenticatedVariableGuid or gEfiVariableGuid
        ("size", "I"),  # 16: the store including this header, excluding the FV header
        ("format", "B"),  # 20: VARIABLE_STORE_FORMATTED 0x5A
        ("state", "B"),  # 21: VARIABLE_STORE_HEALTHY 0xFE
        ("reserved", "H"),  # 22
        ("reserved1", "I"),  # 24
    ),
)
STORE_HEADER: Final = STORE_HEADER_LAYOUT.struct
STORE_HEADER_SIZE: Final = STORE_HEADER_LAYOUT.size  # 28
AUTHENTICATED_VARIABLE_GUID: Final = uuid.UUID("aaf32c78-947b-439a-a180-2e144ec37792")
VARIABLE_GUID: Final = uuid.UUID("ddcf3616-3275-4164-98b6-fe85707ffe7d")
VARIABLE_STORE_FORMATTED: Final = 0x5A
VARIABLE_STORE_HEALTHY: Final = 0xFE
# GetVariableStoreStatus: a store header of all 0xFF is "raw" (never formatted).
RAW_STORE_HEADER: Final = b"\xff" * STORE_HEADER_SIZE

# -- variable records (VariableFormat.h) --------------------------------------------------
#
# Each header is followed by the name (UCS-2LE with its NUL, NameSize bytes) and the data
# (DataSize bytes), with no padding (ALIGNMENT is 1 on IA32/X64/ARM/AARCH64); the next
# header starts at the next HEADER_ALIGNMENT (4) boundary.

# VARIABLE_HEADER (32 bytes), used under gEfiVariableGuid.
NORMAL_HEADER_LAYOUT: Final = Layout(
    "VARIABLE_HEADER",
    (
        ("start_id", "H"),  # 0: 0x55AA
        ("state", "B"),  # 2
        ("reserved", "B"),  # 3
        ("attributes", "I"),  # 4
        ("name_size", "I"),  # 8
        ("data_size", "I"),  # 12
        ("vendor_guid", "16s"),  # 16
    ),
)
# AUTHENTICATED_VARIABLE_HEADER (60 bytes), used under gEfiAuthenticatedVariableGuid.
AUTH_HEADER_LAYOUT: Final = Layout(
    "AUTHENTICATED_VARIABLE_HEADER",
    (
        ("start_id", "H"),  # 0: 0x55AA
        ("state", "B"),  # 2
        ("reserved", "B"),  # 3
        ("attributes", "I"),  # 4
        ("monotonic_count", "Q"),  # 8
        ("timestamp", "16s"),  # 16: EFI_TIME
        ("pubkey_index", "I"),  # 32
        ("name_size", "I"),  # 36
        ("data_size", "I"),  # 40
        ("vendor_guid", "16s"),  # 44
    ),
)
NORMAL_HEADER: Final = NORMAL_HEADER_LAYOUT.struct
AUTH_HEADER: Final = AUTH_HEADER_LAYOUT.struct
NORMAL_HEADER_SIZE: Final = NORMAL_HEADER_LAYOUT.size  # 32
AUTH_HEADER_SIZE: Final = AUTH_HEADER_LAYOUT.size  # 60
START_ID: Final = 0x55AA
START_ID_BYTES: Final = b"\xaa\x55"
# The name's terminating UCS-2 NUL (NameSize counts it).
NAME_NUL: Final = b"\0\0"
HEADER_ALIGNMENT: Final = 4
# The fields both record formats share sit at the same offsets.
START_ID_END: Final = NORMAL_HEADER_LAYOUT.end("start_id")
STATE_OFFSET: Final = NORMAL_HEADER_LAYOUT.offset("state")
RESERVED_OFFSET: Final = NORMAL_HEADER_LAYOUT.offset("reserved")
AUTH_TIMESTAMP_OFFSET: Final = AUTH_HEADER_LAYOUT.offset("timestamp")
ERASED: Final = 0xFF
ERASED_U32: Final = 0xFFFFFFFF


def header_align(value: int) -> int:
    """HEADER_ALIGN: round up to the 4-byte boundary the next record starts at."""
    return (value + HEADER_ALIGNMENT - 1) & ~(HEADER_ALIGNMENT - 1)


# State bits (flash semantics: bits only go 1 -> 0). VariableFormat.h:
VAR_IN_DELETED_TRANSITION: Final = 0xFE  # variable is in obsolete transition
VAR_DELETED: Final = 0xFD  # variable is obsolete
VAR_HEADER_VALID_ONLY: Final = 0x7F  # header has been written, data not yet
VAR_ADDED: Final = 0x3F  # variable has been completely added
# The composite values that appear in stores.
STATE_UNWRITTEN: Final = 0xFF  # header being written (Variable.c UpdateVariable step 1)
STATE_ADDED: Final = VAR_ADDED  # 0x3F
STATE_IN_TRANSITION: Final = VAR_ADDED & VAR_IN_DELETED_TRANSITION  # 0x3E
STATE_DELETED: Final = VAR_ADDED & VAR_DELETED  # 0x3D
STATE_REPLACED: Final = VAR_ADDED & VAR_IN_DELETED_TRANSITION & VAR_DELETED  # 0x3C

STATE_NAMES: Final[dict[int, str]] = {
    STATE_UNWRITTEN: "unwritten",
    VAR_HEADER_VALID_ONLY: "header-only",
    STATE_ADDED: "added",
    STATE_IN_TRANSITION: "in-transition",
    STATE_DELETED: "deleted",
    STATE_REPLACED: "replaced",
}


def state_name(state: int) -> str:
    """A short name for a record State (``added``, ``in-transition``, ``deleted`` for a
    delete, ``replaced`` for the old copy after an update, ``header-only``, ``unwritten``),
    or ``invalid 0x..`` for a value edk2's strict validators reject."""
    return STATE_NAMES.get(state, f"invalid {state:#04x}")


# -- FTW working block (SystemNvDataGuid.h, FaultTolerantWrite.h) ---------------------------

# EFI_FAULT_TOLERANT_WORKING_BLOCK_HEADER.
FTW_WORKING_HEADER_LAYOUT: Final = Layout(
    "EFI_FAULT_TOLERANT_WORKING_BLOCK_HEADER",
    (
        ("signature", "16s"),  # 0: gEdkiiWorkingBlockSignatureGuid
        # 16: CRC-32 of the header with Crc, state byte and Reserved3 all 0xFF
        ("crc", "I"),
        # 20: WorkingBlockValid:1, WorkingBlockInvalid:1, Reserved:6 ("set" = 0: 0xFE valid)
        ("state", "B"),
        ("reserved3", "3s"),  # 21: 0xFF
        ("write_queue_size", "Q"),  # 24: working area size - 32
    ),
)
FTW_WORKING_HEADER: Final = FTW_WORKING_HEADER_LAYOUT.struct
FTW_WORKING_HEADER_SIZE: Final = FTW_WORKING_HEADER_LAYOUT.size  # 32
WORKING_BLOCK_SIGNATURE_GUID: Final = uuid.UUID("9e58292b-7c68-497d-a0ce-6500fd9f1b95")
FTW_WORKING_STATE_VALID: Final = 0xFE
FTW_WORKING_STATE_BIT_VALID: Final = 0x01
FTW_WORKING_STATE_BIT_INVALID: Final = 0x02

# EFI_FAULT_TOLERANT_WRITE_HEADER (natural alignment, 40 bytes).
FTW_WRITE_HEADER_LAYOUT: Final = Layout(
    "EFI_FAULT_TOLERANT_WRITE_HEADER",
    (
        ("bits", "B"),  # 0: HeaderAllocated:1, WritesAllocated:1, Complete:1 (0 = set)
        ("", "3x"),
        ("caller_id", "16s"),  # 4
        ("", "4x"),
        ("number_of_writes", "Q"),  # 24
        ("private_data_size", "Q"),  # 32
    ),
)
FTW_WRITE_HEADER: Final = FTW_WRITE_HEADER_LAYOUT.struct
FTW_WRITE_HEADER_SIZE: Final = FTW_WRITE_HEADER_LAYOUT.size  # 40
FTW_HEADER_ALLOCATED: Final = 0x01
FTW_WRITES_ALLOCATED: Final = 0x02
FTW_COMPLETE: Final = 0x04
# EFI_FAULT_TOLERANT_WRITE_RECORD (40 bytes, then PrivateDataSize bytes).
FTW_WRITE_RECORD_LAYOUT: Final = Layout(
    "EFI_FAULT_TOLERANT_WRITE_RECORD",
    (
        ("bits", "B"),  # 0: BootBlockUpdate:1, SpareComplete:1, DestinationComplete:1
        ("", "7x"),
        ("lba", "Q"),  # 8
        ("offset", "Q"),  # 16
        ("length", "Q"),  # 24
        ("relative_offset", "q"),  # 32: the target relative to the spare area
    ),
)
FTW_WRITE_RECORD: Final = FTW_WRITE_RECORD_LAYOUT.struct
FTW_WRITE_RECORD_SIZE: Final = FTW_WRITE_RECORD_LAYOUT.size  # 40
FTW_BOOT_BLOCK_UPDATE: Final = 0x01
FTW_SPARE_COMPLETE: Final = 0x02
FTW_DESTINATION_COMPLETE: Final = 0x04


def ftw_working_header(write_queue_size: int) -> bytes:
    """The 32-byte working-block header the FTW driver writes and accepts
    (``UpdateWorkingBlock.c:InitWorkSpaceHeader``; ``IsValidWorkSpace`` compares byte for
    byte): CRC-32 over the header with Crc, state and Reserved3 set to 0xFF, then state 0xFE.
    Measured: 0x642CAF2C for WriteQueueSize 0xFE0, 0x86C6E75B for 0x3FFE0."""
    signature = WORKING_BLOCK_SIGNATURE_GUID.bytes_le
    erased = FTW_WORKING_HEADER.pack(signature, ERASED_U32, ERASED, b"\xff" * 3, write_queue_size)
    crc = zlib.crc32(erased)
    return FTW_WORKING_HEADER.pack(
        signature, crc, FTW_WORKING_STATE_VALID, b"\xff" * 3, write_queue_size
    )


# -- variable size limits (MdeModulePkg.dec defaults, overridden per build) ---------------

# MdeModulePkg.dec: PcdMaxHardwareErrorVariableSize default, not overridden by OVMF/ArmVirt.
MAX_HARDWARE_ERROR_VARIABLE_SIZE: Final = 0x8000

# -- known layouts -------------------------------------------------------------------------

Trailer = Literal["none", "zero", "code"]


class StoreLayout(Record):
    """Where everything is in one kind of NV image (all offsets from the start of the file).

    ``store_offset`` is where the VARIABLE_STORE_HEADER is (FV HeaderLength) and
    ``store_size`` its Size field, so the variable region ends at ``store_end``.
    ``block_map`` and ``fv_attributes`` are those of the build's fdf template (what
    :meth:`VariableStore.blank` writes); a parsed store keeps its own header.
    ``event_log``, ``ftw_working`` and ``ftw_spare`` are byte ranges (``None`` where the
    build has none, or where a custom image has no FTW working block). ``trailer`` says what
    follows FvLength up to ``total_size``: nothing, zeros (ArmVirt's 64 MiB pflash) or
    firmware code (the unified ``OVMF.fd``).
    The size limits include the record header and the name (``Variable.c``:
    ``StrSize (VariableName) + PayloadSize > Max... - GetVariableHeaderSize ()``);
    ``None`` means unknown (custom layouts).
    """

    name: str
    description: str
    total_size: int
    fv_length: int
    block_map: tuple[tuple[int, int], ...]
    fv_attributes: int
    store_offset: int
    store_size: int
    event_log: range | None
    ftw_working: range | None
    ftw_spare: range | None
    max_variable_size: int | None
    max_auth_variable_size: int | None
    max_hw_error_variable_size: int | None = MAX_HARDWARE_ERROR_VARIABLE_SIZE
    trailer: Trailer = "none"
    x86_flash: bool = False  # QemuFlashFvbServicesRuntimeDxe: BlockMap[0].Length == 0x1000

    @property
    def store_end(self) -> int:
        """End of the variable region (store header offset + Size)."""
        return self.store_offset + self.store_size

    @property
    def records_offset(self) -> int:
        """Where the first record starts: the 4-byte-aligned end of the store header."""
        return header_align(self.store_offset + STORE_HEADER_SIZE)

    @property
    def capacity(self) -> int:
        """Bytes available for records."""
        return self.store_end - self.records_offset

    @property
    def write_queue_size(self) -> int | None:
        """The FTW WriteQueueSize the driver computes for this working area."""
        if self.ftw_working is None:
            return None
        return len(self.ftw_working) - FTW_WORKING_HEADER_SIZE

    def limit_for(self, attributes: int) -> int | None:
        """The maximum record size (header + name + data) edk2 accepts for a variable with
        these attributes (``Variable.c:VariableServiceSetVariable``)."""
        if attributes & HARDWARE_ERROR_RECORD:
            return self.max_hw_error_variable_size
        if attributes & (AUTHENTICATED_WRITE_ACCESS | TIME_BASED_AUTHENTICATED_WRITE_ACCESS):
            return self.max_auth_variable_size
        return self.max_variable_size


_KIB: Final = 1024
_MIB: Final = 1024 * _KIB

# OvmfPkg/Include/Fdf/VarStore.fdf.inc, FD_SIZE_1MB / FD_SIZE_2MB: 0x20000 bytes,
# 0x20 blocks of 0x1000; variables 0x0-0xE000, event log 0xE000-0xF000, FTW working
# 0xF000-0x10000, spare 0x10000-0x20000. OvmfPkgX64.dsc: PcdMaxVariableSize 0x2000,
# PcdMaxAuthVariableSize 0x2800. Debian: OVMF_VARS.fd (bookworm).
OVMF_2M: Final = StoreLayout(
    name="ovmf-2m-128k",
    description="OVMF 1M/2M build, 128 KiB OVMF_VARS.fd",
    total_size=0x20000,
    fv_length=0x20000,
    block_map=((0x20, 0x1000),),
    fv_attributes=FV_ATTRIBUTES_TEMPLATE,
    store_offset=FV_HEADER_LENGTH,
    store_size=0xE000 - FV_HEADER_LENGTH,  # 0xDFB8
    event_log=range(0xE000, 0xF000),
    ftw_working=range(0xF000, 0x10000),
    ftw_spare=range(0x10000, 0x20000),
    max_variable_size=0x2000,
    max_auth_variable_size=0x2800,
    x86_flash=True,
)

# VarStore.fdf.inc, FD_SIZE_4MB: 0x84000 bytes, 0x84 blocks of 0x1000; variables
# 0x0-0x40000, event log 0x40000-0x41000, FTW working 0x41000-0x42000, spare
# 0x42000-0x84000. OvmfPkgX64.dsc: both limits 0x8400. Debian: OVMF_VARS_4M.fd (and
# OVMF32_VARS_4M.fd).
OVMF_4M: Final = StoreLayout(
    name="ovmf-4m-528k",
    description="OVMF 4M build, 528 KiB OVMF_VARS_4M.fd",
    total_size=0x84000,
    fv_length=0x84000,
    block_map=((0x84, 0x1000),),
    fv_attributes=FV_ATTRIBUTES_TEMPLATE,
    store_offset=FV_HEADER_LENGTH,
    store_size=0x40000 - FV_HEADER_LENGTH,  # 0x3FFB8
    event_log=range(0x40000, 0x41000),
    ftw_working=range(0x41000, 0x42000),
    ftw_spare=range(0x42000, 0x84000),
    max_variable_size=0x8400,
    max_auth_variable_size=0x8400,
    x86_flash=True,
)

# ArmVirtPkg/VarStore.fdf.inc: FV of 3 blocks of 0x40000 (FvLength 0xC0000); variables
# 0x0-0x40000, no event log, FTW working 0x40000-0x80000 (WriteQueueSize 0x3FFE0), spare
# 0x80000-0xC0000; the file is QEMU virt's second 64 MiB pflash, zero after 0xC0000.
# ArmVirtQemu.dsc: PcdMaxVariableSize 0x2000, PcdMaxAuthVariableSize 0x2800.
AAVMF_64M: Final = StoreLayout(
    name="aavmf-64m",
    description="ArmVirtQemu (AAVMF) 64 MiB AAVMF_VARS.fd",
    total_size=64 * _MIB,
    fv_length=0xC0000,
    block_map=((3, 0x40000),),
    fv_attributes=FV_ATTRIBUTES_TEMPLATE,
    store_offset=FV_HEADER_LENGTH,
    store_size=0x40000 - FV_HEADER_LENGTH,
    event_log=None,
    ftw_working=range(0x40000, 0x80000),
    ftw_spare=range(0x80000, 0xC0000),
    max_variable_size=0x2000,
    max_auth_variable_size=0x2800,
    trailer="zero",
)
# What VirtNorFlashDxe writes when it formats the flash itself
# (InitializeFvAndVariableStoreHeaders): NumBlocks covering the whole 64 MiB device, so the
# block map is larger than FvLength. Normal on bookworm's AAVMF_VARS.{ms,snakeoil}.fd.
AAVMF_RUNTIME_BLOCK_MAP: Final = ((0x100, 0x40000),)

# Debian's unified /usr/share/ovmf/OVMF.fd: the varstore FV at offset 0 (the geometry of the
# build's OVMF_VARS), firmware code after.
OVMF_UNIFIED_2M: Final = replace(
    OVMF_2M,
    name="ovmf-unified-2m",
    description="OVMF 2M build, unified 2 MiB OVMF.fd (variables + code)",
    total_size=0x200000,
    trailer="code",
)
OVMF_UNIFIED_4M: Final = replace(
    OVMF_4M,
    name="ovmf-unified-4m",
    description="OVMF 4M build, unified 4 MiB OVMF.fd (variables + code)",
    total_size=0x400000,
    trailer="code",
)

LAYOUTS: Final[dict[str, StoreLayout]] = {
    layout.name: layout
    for layout in (OVMF_2M, OVMF_4M, AAVMF_64M, OVMF_UNIFIED_2M, OVMF_UNIFIED_4M)
}
# Spellings people use for the same layouts.
LAYOUT_ALIASES: Final[dict[str, str]] = {
    "ovmf-2m": OVMF_2M.name,
    "ovmf": OVMF_2M.name,
    "ovmf_vars.fd": OVMF_2M.name,
    "ovmf-4m": OVMF_4M.name,
    "ovmf_vars_4m.fd": OVMF_4M.name,
    "aavmf": AAVMF_64M.name,
    "armvirt": AAVMF_64M.name,
    "aavmf_vars.fd": AAVMF_64M.name,
}
CUSTOM_LAYOUT_NAME: Final = "custom"


def layout_by_name(name: str) -> StoreLayout | None:
    """A known layout by name or alias (case-insensitive), or None."""
    key = name.strip().lower()
    return LAYOUTS.get(LAYOUT_ALIASES.get(key, key))


def match_layout(
    total_size: int, fv_length: int, store_offset: int, store_size: int
) -> StoreLayout | None:
    """The known layout with exactly this geometry, or None."""
    for layout in LAYOUTS.values():
        if (
            layout.total_size == total_size
            and layout.fv_length == fv_length
            and layout.store_offset == store_offset
            and layout.store_size == store_size
        ):
            return layout
    return None


def layout_for_size(total_size: int) -> StoreLayout | None:
    """The variables-only known layout whose image has this size (for blank images)."""
    for layout in (OVMF_2M, OVMF_4M, AAVMF_64M):
        if layout.total_size == total_size:
            return layout
    return None


__all__ = [
    "AAVMF_64M",
    "AUTHENTICATED_VARIABLE_GUID",
    "AUTH_HEADER",
    "FV_HEADER",
    "LAYOUTS",
    "NORMAL_HEADER",
    "OVMF_2M",
    "OVMF_4M",
    "STORE_HEADER",
    "SYSTEM_NV_DATA_FV_GUID",
    "VARIABLE_GUID",
    "WORKING_BLOCK_SIGNATURE_GUID",
    "StoreLayout",
    "ftw_working_header",
    "fv_checksum",
    "header_align",
    "layout_by_name",
    "match_layout",
    "state_name",
]
