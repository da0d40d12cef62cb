"""The TCG events a prediction is made of, and the boot stages they are about: the types,
the event record builders (what each event's data is and what its digests are of) for
``fwtools/machine/measure.py`` and ``measure_sd.py``."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from fwtools.formats.pe.image import PeImage
from fwtools.formats.tcg import layout as L
from fwtools.formats.tcg.eventtypes import EV_SEPARATOR

EV_EVENT_TAG: Final = 0x00000006
EV_IPL: Final = 0x0000000D
EV_EFI_VARIABLE_DRIVER_CONFIG: Final = 0x80000001
EV_EFI_BOOT_SERVICES_APPLICATION: Final = 0x80000003
EV_EFI_GPT_EVENT: Final = 0x80000006
EV_EFI_ACTION: Final = 0x80000007
EV_EFI_VARIABLE_AUTHORITY: Final = 0x800000E0
LINUX_INITRD_TAG: Final = 0x8F3B22EC
LINUX_LOAD_OPTIONS_TAG: Final = 0x8F3B22ED

StageKind = Literal["shim", "grub", "systemd-boot", "kernel", "uki", "application"]


@dataclass(frozen=True)
class PredictedEvent:
    """One event the boot logs: ``hashed`` is what its digests are of (None when the digest
    is an Authenticode hash of ``image``), ``what`` says so in words."""

    pcr: int
    event_type: int
    description: str
    data: bytes
    digests: dict[str, bytes]
    what: str
    source: str  # "edk2", "shim", "grub", "linux", "systemd-stub"
    hashed: bytes | None = None


@dataclass(frozen=True)
class Stage:
    path: str
    image: PeImage
    kind: StageKind
    version: str | None = None  # GRUB's upstream version from its SBAT (2.06, 2.12, ...)
    # edk2's Authenticode digests (unpadded) per hashlib name, filled once by predict().
    digests: dict[str, bytes] = field(default_factory=dict, compare=False)


def hash_banks(data: bytes, banks: Sequence[str]) -> dict[str, bytes]:
    return {b: hashlib.new(b, data).digest() for b in banks}


def variable_data(guid: uuid.UUID, name: str, data: bytes) -> bytes:
    """``UEFI_VARIABLE_DATA``: GUID, u64 name length (characters), u64 data length, the
    UTF-16LE name without NUL, the data (PFP §10.4.6)."""
    encoded = name.encode("utf-16-le")
    return L.VARIABLE_DATA.pack(guid.bytes_le, len(name), len(data)) + encoded + data


def hashed_event(pcr: int, event_type: int, description: str, data: bytes, hashed: bytes,
                  what: str, source: str, banks: Sequence[str]) -> PredictedEvent:
    return PredictedEvent(pcr, event_type, description, data, hash_banks(hashed, banks), what,
                          source, hashed)


def separator(pcr: int, banks: Sequence[str]) -> PredictedEvent:
    sep = bytes(4)
    return hashed_event(pcr, EV_SEPARATOR, "separator", sep, sep, "00000000", "edk2", banks)


def action(pcr: int, text: str, banks: Sequence[str], source: str = "edk2") -> PredictedEvent:
    raw = text.encode("ascii")
    return hashed_event(pcr, EV_EFI_ACTION, repr(text), raw, raw, "the ASCII string",
                         source, banks)


def variable_event(pcr: int, event_type: int, guid: uuid.UUID, name: str, data: bytes,
                   banks: Sequence[str], description: str, source: str) -> PredictedEvent:
    raw = variable_data(guid, name, data)
    return hashed_event(pcr, event_type, description, raw, raw,
                         f"UEFI_VARIABLE_DATA {{{guid}, {name}, {len(data)} bytes}}", source,
                         banks)


def ipl_event(pcr: int, text: str, hashed: bytes, what: str, banks: Sequence[str],
              source: str) -> PredictedEvent:
    """An EV_IPL whose data is ``text`` and a NUL (shim and GRUB both log it so)."""
    return hashed_event(pcr, EV_IPL, repr(text), text.encode() + b"\0", hashed, what, source,
                         banks)


def image_event(pcr: int, stage: Stage, banks: Sequence[str], description: str,
                source: str, device_path: bytes = b"") -> PredictedEvent:
    """EV_EFI_BOOT_SERVICES_APPLICATION: the edk2 Authenticode digest (unpadded; shim's
    ``tpm_log_pe`` lets firmware hash ``PE_COFF_IMAGE`` the same way)."""
    digests = {b: stage.digests[b] for b in banks}
    data = L.IMAGE_LOAD_EVENT.pack(0, len(stage.image.data), 0, len(device_path)) + device_path
    return PredictedEvent(pcr, EV_EFI_BOOT_SERVICES_APPLICATION, description, data, digests,
                          f"Authenticode of {os.path.basename(stage.path)}", source)


def tagged_event(pcr: int, tag: int, text: str, hashed: bytes, what: str,
                 banks: Sequence[str], source: str) -> PredictedEvent:
    """EV_EVENT_TAG with a ``TCG_PCClientTaggedEvent`` (Linux's EFI stub,
    ``efi_measure_tagged_event``): the tag, the size and the NUL-terminated text."""
    body = text.encode() + b"\0"
    data = L.TAGGED_EVENT.pack(tag, len(body)) + body
    return PredictedEvent(pcr, EV_EVENT_TAG, repr(text), data, hash_banks(hashed, banks), what,
                          source, hashed)
