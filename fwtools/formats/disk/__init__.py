"""Disk images, read-only: partition tables, the EFI system partition, /boot.

A disk image is raw or qcow2 (:func:`open_disk` tells them apart by the qcow2 magic). On it:

- GPT (:mod:`.gpt`, primary header with the backup as fallback) or MBR (:mod:`.mbr`,
  primary and logical partitions) partition tables;
- FAT12/16/32 with long names (:mod:`.fat`): the ESP, paths looked up as UEFI does;
- ext2/3/4 (:mod:`.ext4`): enough to read GRUB's ``/boot``.

Layouts are declared once in :mod:`.layout`, citing the specifications. Nothing reads the
whole disk: each read costs what the structures and files it opens cost. Malformed input
raises :class:`DiskError` (a :class:`fwtools.errors.ParseError`) with the absolute offset in
the disk; a missing path raises :class:`DiskPathError`. Why these readers are written here
rather than taken from a library is in docs/disk.md.

    with open_disk("vm.qcow2") as disk:
        esp = disk.esp()
        fs = disk.filesystem(esp)
        shim = fs.read_file("\\\\EFI\\\\BOOT\\\\BOOTX64.EFI")
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from fwtools.errors import FwError
from fwtools.formats.disk.device import (
    BlockDevice,
    BytesDevice,
    DiskError,
    DiskPathError,
    DiskTruncatedError,
    DiskUnsupportedError,
    Qcow2File,
    RawFile,
    Region,
    open_device,
)
from fwtools.formats.disk.table import Partition, PartitionTable

if TYPE_CHECKING:
    from fwtools.formats.disk.ext4 import Ext4Filesystem
    from fwtools.formats.disk.fat import FatFilesystem

_P = ParamSpec("_P")
_T = TypeVar("_T")

__all__ = [
    "BlockDevice",
    "BytesDevice",
    "Disk",
    "DiskError",
    "DiskPathError",
    "DiskTruncatedError",
    "DiskUnsupportedError",
    "Partition",
    "PartitionTable",
    "Qcow2File",
    "RawFile",
    "Region",
    "detect_filesystem",
    "open_disk",
    "open_filesystem",
]


def detect_filesystem(region: Region) -> str | None:
    """``"fat"``, ``"ext4"`` (ext2/3/4) or None, from the first sectors of ``region``."""
    from fwtools.formats.disk.ext4 import looks_like_ext
    from fwtools.formats.disk.fat import looks_like_fat

    if region.size >= 2048 and looks_like_ext(region.read(1024, 1024)):
        return "ext4"
    if region.size >= 512 and looks_like_fat(region.read(0, 512)):
        return "fat"
    return None


def open_filesystem(region: Region) -> FatFilesystem | Ext4Filesystem:
    """The filesystem in ``region``; :class:`DiskUnsupportedError` when it is neither FAT
    nor ext2/3/4."""
    kind = detect_filesystem(region)
    if kind == "ext4":
        from fwtools.formats.disk.ext4 import Ext4Filesystem

        return Ext4Filesystem(region)
    if kind == "fat":
        from fwtools.formats.disk.fat import FatFilesystem

        return FatFilesystem(region)
    raise DiskUnsupportedError("no FAT or ext2/3/4 filesystem found (unknown or unsupported "
                               "filesystem)", structure="filesystem", offset=region.start)


class Disk:
    """A disk image: ``device``, its partition ``table`` (read on first use), and
    filesystems opened on partitions. Use as a context manager, or call :meth:`close`."""

    def __init__(self, device: BlockDevice, path: str | None = None) -> None:
        self.device = device
        self.path = path
        self._table: PartitionTable | None = None

    def __enter__(self) -> Disk:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        close = getattr(self.device, "close", None)
        if close is not None:
            close()

    @property
    def format(self) -> str:
        """``qcow2`` or ``raw``."""
        return "qcow2" if isinstance(self.device, Qcow2File) else "raw"

    @property
    def size(self) -> int:
        return self.device.size

    @property
    def table(self) -> PartitionTable:
        if self._table is None:
            from fwtools.formats.disk.mbr import read_partition_table

            self._table = self._named(read_partition_table, self.device)
        return self._table

    @property
    def partitions(self) -> tuple[Partition, ...]:
        return self.table.partitions

    def partition(self, *, index: int | None = None, guid: str | None = None) -> Partition:
        """The partition with 1-based ``index`` or unique GUID ``guid`` (any case)."""
        for p in self.partitions:
            if index is not None and p.index == index:
                return p
            if guid is not None and p.unique_guid is not None and \
                    str(p.unique_guid) == guid.strip("{}").lower():
                return p
        raise DiskPathError(f"no partition {index if index is not None else guid}",
                            fs_path=str(index if index is not None else guid))

    def esp(self) -> Partition | None:
        """The first EFI system partition (GPT type C12A7328-F81F-11D2-BA4B-00A0C93EC93B or
        MBR type 0xEF), or None."""
        return next((p for p in self.partitions if p.is_esp), None)

    def region(self, partition: Partition | None) -> Region:
        """The bytes of ``partition`` (the whole disk for None: a partitionless image)."""
        if partition is None:
            return Region(self.device, 0, self.device.size)
        return self._named(Region, self.device, partition.offset, partition.size)

    def filesystem(self, partition: Partition | None) -> FatFilesystem | Ext4Filesystem:
        """The FAT or ext2/3/4 filesystem on ``partition`` (None: the whole disk)."""
        return self._named(open_filesystem, self.region(partition))

    def _named(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(*args)`` with this image's path put into the FwError it raises."""
        try:
            return fn(*args, **kwargs)
        except FwError as exc:
            if self.path is not None:
                exc.with_path(self.path)
            raise

    def __repr__(self) -> str:
        return f"<Disk {self.path or ''} {self.format} {self.size} bytes>"


def open_disk(path: str | os.PathLike[str]) -> Disk:
    """The disk image at ``path`` (raw or qcow2)."""
    name = os.fspath(path)
    try:
        return Disk(open_device(name), name)
    except FwError as exc:
        exc.with_path(name)
        raise
