"""Sector 0 (MBR) layout: offsets, sizes and partition-record fields.

Reference: UEFI 2.10 §5.2.1 (legacy MBR) and §5.2.3 (protective MBR), edk2
``MdePkg/Include/IndustryStandard/Mbr.h``; summarised in docs/reference/formats.md section 7.1.
Every multi-byte field is little-endian.
"""

from __future__ import annotations

import struct
from typing import Final

SECTOR_SIZE: Final = 512

BOOT_CODE_OFFSET: Final = 0
BOOT_CODE_SIZE: Final = 440  # bytes 0..439: what byebyebios replaces, and nothing else
DISK_SIGNATURE_OFFSET: Final = 440  # u32: Windows disk ID, Linux PARTUUID prefix
DISK_SIGNATURE: Final = struct.Struct("<I")
RESERVED_OFFSET: Final = 444  # u16, usually 0 (0x5A5A = copy protected)
PARTITION_TABLE_OFFSET: Final = 446
PARTITION_RECORD_SIZE: Final = 16
PARTITION_RECORDS: Final = 4
BOOT_SIGNATURE_OFFSET: Final = 510
BOOT_SIGNATURE: Final = b"\x55\xaa"

# One partition record (16 bytes): boot indicator, start CHS (3), OS type, end CHS (3),
# starting LBA u32, size in sectors u32.
PARTITION_RECORD: Final = struct.Struct("<B3sB3sII")
BOOT_INDICATOR_ACTIVE: Final = 0x80

# OS types that matter here.
TYPE_EMPTY: Final = 0x00
TYPE_GPT_PROTECTIVE: Final = 0xEE  # UEFI §5.2.3; edk2 and Linux need start LBA 1
TYPE_EFI_SYSTEM: Final = 0xEF
GPT_PROTECTIVE_START_LBA: Final = 1

# LBA 1 of a GPT disk with 512-byte sectors starts with this signature.
GPT_HEADER_SIGNATURE: Final = b"EFI PART"
