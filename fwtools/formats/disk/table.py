"""A partition, whatever table it came from, and the table read from a disk."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from fwtools.formats.disk import layout as L


@dataclass(frozen=True)
class Partition:
    """One partition. ``index`` is 1-based as firmware and Linux number them (GPT entry
    number; MBR 1-4 primary, 5+ logical). Offsets are bytes in the disk (guest view).

    ``type_guid`` and ``unique_guid`` are set for GPT, ``mbr_type`` for MBR; ``name`` is the
    GPT partition name (empty for MBR).
    """

    index: int
    scheme: str  # "gpt" or "mbr"
    first_lba: int
    last_lba: int  # inclusive
    sector_size: int
    type_guid: uuid.UUID | None = None
    unique_guid: uuid.UUID | None = None
    name: str = ""
    attributes: int = 0
    mbr_type: int | None = None
    bootable: bool = False

    @property
    def offset(self) -> int:
        return self.first_lba * self.sector_size

    @property
    def size(self) -> int:
        return (self.last_lba - self.first_lba + 1) * self.sector_size

    @property
    def type_name(self) -> str:
        if self.type_guid is not None:
            return L.GPT_TYPE_NAMES.get(self.type_guid, str(self.type_guid))
        mbr_type = self.mbr_type or 0
        return L.MBR_TYPE_NAMES.get(mbr_type, f"type {mbr_type:#04x}")

    @property
    def is_esp(self) -> bool:
        """The EFI system partition: GPT type C12A7328-F81F-11D2-BA4B-00A0C93EC93B, or MBR
        OS type 0xEF (UEFI 2.10 §5.2.2 and §13.3.1.1)."""
        if self.type_guid is not None:
            return self.type_guid == L.ESP_TYPE_GUID
        return self.mbr_type == 0xEF

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "scheme": self.scheme,
            "type": str(self.type_guid) if self.type_guid is not None else self.mbr_type,
            "type_name": self.type_name,
            "unique_guid": str(self.unique_guid) if self.unique_guid is not None else None,
            "name": self.name,
            "first_lba": self.first_lba,
            "last_lba": self.last_lba,
            "offset": self.offset,
            "size": self.size,
            "attributes": self.attributes,
            "esp": self.is_esp,
        }


@dataclass(frozen=True)
class PartitionTable:
    """The partitions of a disk. ``scheme`` is ``gpt``, ``mbr`` or ``none``; for GPT,
    ``source`` says which header was used (``primary`` or ``backup``) and ``disk_guid`` is
    set. ``notes`` are problems that did not stop reading (a bad primary header, entries
    skipped as firmware skips them)."""

    scheme: str
    partitions: tuple[Partition, ...]
    sector_size: int = 512
    disk_guid: uuid.UUID | None = None
    source: str = ""
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        return {
            "scheme": self.scheme,
            "sector_size": self.sector_size,
            "disk_guid": str(self.disk_guid) if self.disk_guid is not None else None,
            "header": self.source or None,
            "notes": list(self.notes),
            "partitions": [p.to_json() for p in self.partitions],
        }
