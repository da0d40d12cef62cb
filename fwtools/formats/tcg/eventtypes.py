"""TCG PC Client event types: value, name and the shape of their event data.

Reference: TCG PC Client Platform Firmware Profile Specification 1.06 rev 52, §10.4.1
("Event Types", Table 9) and the UEFI event types after EV_EFI_EVENT_BASE; the same values
are in edk2 ``MdePkg/Include/IndustryStandard/UefiTcgPlatform.h`` and Linux
``include/linux/tpm_eventlog.h``. Declared once: the parser keeps unknown values as plain
integers, the decoder picks a body decoder by ``data`` (see ``decode.py``), reports print
``name``.
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

# How an event's data is laid out (decode.py has one decoder per kind).
DataKind = Literal[
    "raw",  # opaque bytes, shown as hex
    "text",  # an ASCII/UTF-8 string (EV_ACTION, EV_EFI_ACTION, EV_IPL, ...)
    "separator",  # 4 bytes, 00000000 or FFFFFFFF (error)
    "no_action",  # Spec ID event, StartupLocality, vendor data
    "ucs2",  # UTF-16LE string (EV_S_CRTM_VERSION)
    "tagged",  # TCG_PCClientTaggedEvent
    "variable",  # UEFI_VARIABLE_DATA
    "authority",  # UEFI_VARIABLE_DATA holding one EFI_SIGNATURE_DATA
    "image",  # UEFI_IMAGE_LOAD_EVENT
    "gpt",  # UEFI_GPT_DATA
    "blob",  # UEFI_PLATFORM_FIRMWARE_BLOB
    "blob2",  # UEFI_PLATFORM_FIRMWARE_BLOB2
    "handoff",  # UEFI_HANDOFF_TABLE_POINTERS
    "handoff2",  # UEFI_HANDOFF_TABLE_POINTERS2
    "text_or_blob",  # a string, or (older firmware) a UEFI_PLATFORM_FIRMWARE_BLOB
]


class EventType(NamedTuple):
    value: int
    name: str
    data: DataKind


EV_NO_ACTION: Final = 0x3
EV_SEPARATOR: Final = 0x4
EV_EFI_VARIABLE_AUTHORITY: Final = 0x800000E0

_TYPES: Final = (
    EventType(0x0, "EV_PREBOOT_CERT", "raw"),
    EventType(0x1, "EV_POST_CODE", "text_or_blob"),
    EventType(0x2, "EV_UNUSED", "raw"),
    EventType(EV_NO_ACTION, "EV_NO_ACTION", "no_action"),
    EventType(EV_SEPARATOR, "EV_SEPARATOR", "separator"),
    EventType(0x5, "EV_ACTION", "text"),
    EventType(0x6, "EV_EVENT_TAG", "tagged"),
    EventType(0x7, "EV_S_CRTM_CONTENTS", "text_or_blob"),
    EventType(0x8, "EV_S_CRTM_VERSION", "ucs2"),
    EventType(0x9, "EV_CPU_MICROCODE", "raw"),
    EventType(0xA, "EV_PLATFORM_CONFIG_FLAGS", "text"),
    EventType(0xB, "EV_TABLE_OF_DEVICES", "raw"),
    EventType(0xC, "EV_COMPACT_HASH", "raw"),
    EventType(0xD, "EV_IPL", "text"),
    EventType(0xE, "EV_IPL_PARTITION_DATA", "raw"),
    EventType(0xF, "EV_NONHOST_CODE", "raw"),
    EventType(0x10, "EV_NONHOST_CONFIG", "raw"),
    EventType(0x11, "EV_NONHOST_INFO", "raw"),
    EventType(0x12, "EV_OMIT_BOOT_DEVICE_EVENTS", "text"),
    EventType(0x13, "EV_POST_CODE2", "raw"),
    EventType(0x80000000, "EV_EFI_EVENT_BASE", "raw"),
    EventType(0x80000001, "EV_EFI_VARIABLE_DRIVER_CONFIG", "variable"),
    EventType(0x80000002, "EV_EFI_VARIABLE_BOOT", "variable"),
    EventType(0x80000003, "EV_EFI_BOOT_SERVICES_APPLICATION", "image"),
    EventType(0x80000004, "EV_EFI_BOOT_SERVICES_DRIVER", "image"),
    EventType(0x80000005, "EV_EFI_RUNTIME_SERVICES_DRIVER", "image"),
    EventType(0x80000006, "EV_EFI_GPT_EVENT", "gpt"),
    EventType(0x80000007, "EV_EFI_ACTION", "text"),
    EventType(0x80000008, "EV_EFI_PLATFORM_FIRMWARE_BLOB", "blob"),
    EventType(0x80000009, "EV_EFI_HANDOFF_TABLES", "handoff"),
    EventType(0x8000000A, "EV_EFI_PLATFORM_FIRMWARE_BLOB2", "blob2"),
    EventType(0x8000000B, "EV_EFI_HANDOFF_TABLES2", "handoff2"),
    EventType(0x8000000C, "EV_EFI_VARIABLE_BOOT2", "variable"),
    EventType(0x8000000D, "EV_EFI_GPT_EVENT2", "gpt"),
    EventType(0x80000010, "EV_EFI_HCRTM_EVENT", "text"),
    EventType(EV_EFI_VARIABLE_AUTHORITY, "EV_EFI_VARIABLE_AUTHORITY", "authority"),
    EventType(0x800000E1, "EV_EFI_SPDM_FIRMWARE_BLOB", "raw"),
    EventType(0x800000E2, "EV_EFI_SPDM_FIRMWARE_CONFIG", "raw"),
    EventType(0x800000E3, "EV_EFI_SPDM_DEVICE_POLICY", "variable"),
    EventType(0x800000E4, "EV_EFI_SPDM_DEVICE_AUTHORITY", "authority"),
)

EVENT_TYPES: Final[dict[int, EventType]] = {t.value: t for t in _TYPES}
EVENT_TYPES_BY_NAME: Final[dict[str, EventType]] = {t.name: t for t in _TYPES}


def event_type_name(value: int) -> str:
    """The EV_* name of ``value``, or its hex for a type the spec does not define."""
    known = EVENT_TYPES.get(value)
    return known.name if known is not None else f"{value:#010x}"


def data_kind(value: int) -> DataKind:
    known = EVENT_TYPES.get(value)
    return known.data if known is not None else "raw"
