"""EFI device path constants shared by the parser (:mod:`.devicepath`) and the text form
(:mod:`.devicepath_text`): node types and subtypes, the structures both read, the vendor
GUIDs edk2 prints by name.

References: UEFI 2.10 §10.3 (node types and subtypes), edk2
``MdePkg/Include/Protocol/DevicePath.h`` and ``MdePkg/Include/Guid/PcAnsi.h``.
"""

from __future__ import annotations

import struct
import uuid
from typing import Final

# -- layout -------------------------------------------------------------------------------

NODE_HEADER: Final = struct.Struct("<BBH")
NODE_HEADER_SIZE: Final = NODE_HEADER.size
LENGTH_FIELD: Final = 2

# Types (DevicePath.h).
HARDWARE_DEVICE_PATH: Final = 0x01
ACPI_DEVICE_PATH: Final = 0x02
MESSAGING_DEVICE_PATH: Final = 0x03
MEDIA_DEVICE_PATH: Final = 0x04
BBS_DEVICE_PATH: Final = 0x05
END_DEVICE_PATH_TYPE: Final = 0x7F
END_INSTANCE_SUBTYPE: Final = 0x01
END_ENTIRE_SUBTYPE: Final = 0xFF

# Subtypes used by the builders and the text form.
HW_PCI_DP: Final = 0x01
HW_VENDOR_DP: Final = 0x04
ACPI_DP: Final = 0x01
ACPI_EXTENDED_DP: Final = 0x02
MSG_VENDOR_DP: Final = 0x0A
MSG_URI_DP: Final = 0x18
MEDIA_HARDDRIVE_DP: Final = 0x01
MEDIA_VENDOR_DP: Final = 0x03
MEDIA_FILEPATH_DP: Final = 0x04
MEDIA_PIWG_FW_FILE_DP: Final = 0x06
MEDIA_PIWG_FW_VOL_DP: Final = 0x07

# HARDDRIVE_DEVICE_PATH body: PartitionNumber u32, PartitionStart u64, PartitionSize u64,
# Signature[16], MBRType u8, SignatureType u8.
HARDDRIVE_BODY: Final = struct.Struct("<IQQ16sBB")
MBR_TYPE_PCAT: Final = 0x01
MBR_TYPE_EFI_PARTITION_TABLE_HEADER: Final = 0x02
SIGNATURE_TYPE_MBR: Final = 0x01
SIGNATURE_TYPE_GUID: Final = 0x02

END_ENTIRE_NODE: Final = NODE_HEADER.pack(END_DEVICE_PATH_TYPE, END_ENTIRE_SUBTYPE, 4)
END_INSTANCE_NODE: Final = NODE_HEADER.pack(END_DEVICE_PATH_TYPE, END_INSTANCE_SUBTYPE, 4)
MAX_NODE_LENGTH: Final = 0xFFFF

# GUIDs with a text shortcut (MdePkg Guid/PcAnsi.h, Protocol/DebugPort.h, Guid/...).
PC_ANSI_GUID: Final = uuid.UUID("e0c14753-f9be-11d2-9a0c-0090273fc14d")
VT100_GUID: Final = uuid.UUID("dfa66065-b419-11d3-9a2d-0090273fc14d")
VT100_PLUS_GUID: Final = uuid.UUID("7baec70b-57e0-4c76-8e87-2f9e28088343")
VT_UTF8_GUID: Final = uuid.UUID("ad15a0d6-8bec-4acf-a073-d01de77e2d88")
UART_FLOW_CONTROL_GUID: Final = uuid.UUID("37499a9d-542f-4c89-a026-35da142094e4")
SAS_DEVICE_PATH_GUID: Final = uuid.UUID("d487ddb4-008b-11d9-afdc-001083ffca4d")
DEBUG_PORT_GUID: Final = uuid.UUID("eba4e8d2-3858-41ec-a281-2647ba9660d0")
# ACPI 6 NFIT address-range types (MdePkg Guid/... gEfiVirtualDiskGuid etc.).
VIRTUAL_DISK_GUID: Final = uuid.UUID("77ab535a-45fc-624b-5560-f7b281d1f96e")
VIRTUAL_CD_GUID: Final = uuid.UUID("3d5abd30-4175-87ce-6d64-d2ade523c4bb")
PERSISTENT_VIRTUAL_DISK_GUID: Final = uuid.UUID("5cea02c9-4d07-69d3-269f-4496fbe096f9")
PERSISTENT_VIRTUAL_CD_GUID: Final = uuid.UUID("08018188-42cd-bb48-100f-5387d53ded3d")

# Names DevPathToTextNodeGeneric uses for a known type with an unknown subtype.
GENERIC_TYPE_NAMES: Final[dict[int, str]] = {
    HARDWARE_DEVICE_PATH: "HardwarePath",
    ACPI_DEVICE_PATH: "AcpiPath",
    MESSAGING_DEVICE_PATH: "Msg",
    MEDIA_DEVICE_PATH: "MediaPath",
    BBS_DEVICE_PATH: "BbsPath",
}

def ucs2_text(raw: bytes) -> str:
    """edk2 ``%s`` of a CHAR16 string: up to the first NUL (bounded by the node)."""
    text = raw[: len(raw) & ~1].decode("utf-16-le", "replace")
    return text.split("\0", 1)[0]
