"""Block devices: the bytes of a disk image, read at guest offsets without loading the disk.

A :class:`BlockDevice` is anything with ``size`` and ``read(offset, size)``. Three kinds:

- :class:`RawFile`: a raw image read with ``os.pread`` (nothing is read until asked for);
- :class:`Qcow2File`: a qcow2 image memory-mapped read-only and read through
  :class:`fwtools.formats.qcow2.Qcow2Image` (only the header, L1 table and the L2 tables and
  clusters of the ranges read are ever touched, so the cost is what is read, not the disk);
- :class:`BytesDevice`: an image already in memory (tests, fuzzing).

:class:`Region` is a bounded window of a device (a partition); its errors carry absolute
offsets in the device, i.e. the guest view of the image.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
from typing import Final, Protocol, cast

from fwtools.errors import FwError, FwIOError, ParseError, TruncatedError


class DiskError(ParseError):
    """A partition table or filesystem in a disk image is malformed (offsets are guest
    offsets: for a qcow2 image, positions in the disk it holds)."""


class DiskTruncatedError(DiskError, TruncatedError):
    """A structure lies (partly) beyond the end of the disk or partition."""


class DiskUnsupportedError(DiskError):
    """The image uses a feature the readers refuse (named in the message)."""


class DiskPathError(FwError, LookupError):
    """A path inside a filesystem does not exist or is not what was asked for."""

    def __init__(self, message: str, *, fs_path: str) -> None:
        super().__init__(message)
        self.fs_path = fs_path


class BlockDevice(Protocol):
    """Random access to ``size`` bytes."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, size: int) -> bytes:
        """Exactly ``size`` bytes from ``offset`` (the caller keeps inside ``size``)."""
        ...


class BytesDevice:
    """A disk image held in memory."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    @property
    def size(self) -> int:
        return len(self._data)

    def read(self, offset: int, size: int) -> bytes:
        _check(self, offset, size)
        return self._data[offset : offset + size]

    def close(self) -> None:
        pass


class RawFile:
    """A raw disk image file, read with ``os.pread`` on demand."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from fwtools._base.fileio import open_input

        self.path = os.fspath(path)
        # A block device is a disk (read in place, its size from lseek); a FIFO, socket or
        # character device is refused without being opened for reading.
        self._fd, _ = open_input(self.path, block_devices=True)
        try:
            self._size = os.lseek(self._fd, 0, os.SEEK_END)
        except OSError as exc:
            os.close(self._fd)
            raise FwIOError(f"{self.path}: {exc.strerror or exc}") from None

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, size: int) -> bytes:
        _check(self, offset, size)
        parts: list[bytes] = []
        done = 0
        while done < size:
            try:
                chunk = os.pread(self._fd, size - done, offset + done)
            except OSError as exc:
                raise FwIOError(f"{self.path}: {exc.strerror or exc}") from None
            if not chunk:
                raise DiskTruncatedError(
                    f"the file ended while reading {size} bytes (it shrank?)",
                    structure="disk image", offset=offset + done, path=self.path,
                )  # fmt: skip
            parts.append(chunk)
            done += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


# A 2 GiB or larger guest is the normal case here (the qcow2 reader's default bound is for
# variable stores, which it turns into one buffer); the guest is never materialised.
QCOW2_MAX_VIRTUAL_SIZE: Final = 1 << 50


class Qcow2File:
    """A qcow2 disk image: the file is memory-mapped read-only, so parsing touches only the
    header and the tables, and each read only the clusters it needs."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from fwtools._base.fileio import open_input
        from fwtools.formats.qcow2 import Qcow2Image

        self.path = os.fspath(path)
        fd, st = open_input(self.path, block_devices=True)
        try:
            # A block device's fstat size is 0: map its length from lseek (0 maps a whole file).
            length = os.lseek(fd, 0, os.SEEK_END) if stat.S_ISBLK(st.st_mode) else 0
            self._map: mmap.mmap | None = mmap.mmap(fd, length, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:  # ValueError: an empty file cannot be mapped
            raise FwIOError(f"{self.path}: {getattr(exc, 'strerror', None) or exc}") from None
        finally:
            os.close(fd)
        # Qcow2Image reads through the buffer protocol (len, slices, unpack_from), which a
        # read-only mmap provides without copying the file.
        self.image = Qcow2Image.parse(
            cast(bytes, self._map), path=self.path, max_virtual_size=QCOW2_MAX_VIRTUAL_SIZE
        )

    @property
    def size(self) -> int:
        return self.image.virtual_size

    def read(self, offset: int, size: int) -> bytes:
        _check(self, offset, size)
        return self.image.read(offset, size)

    def close(self) -> None:
        m, self._map = self._map, None
        if m is not None:
            del self.image  # releases its memoryview of the map
            # A caller still holding a view: the GC unmaps it later.
            with contextlib.suppress(BufferError):
                m.close()


def open_device(path: str | os.PathLike[str]) -> RawFile | Qcow2File:
    """The disk image at ``path``, qcow2 when it starts with the qcow2 magic, else raw."""
    from fwtools.formats.qcow2.layout import is_qcow2

    raw = RawFile(path)
    try:
        head = raw.read(0, min(4, raw.size))
    finally:
        raw.close()
    if is_qcow2(head):
        return Qcow2File(path)
    return RawFile(path)


def _check(device: BlockDevice, offset: int, size: int) -> None:
    if offset < 0 or size < 0 or offset + size > device.size:
        raise DiskTruncatedError(
            f"read of {size} bytes is outside the disk ({device.size:#x} bytes)",
            structure="disk image", offset=offset,
        )  # fmt: skip


class Region:
    """``size`` bytes of ``device`` from ``start`` (a partition): reads are relative, and
    :meth:`read` refuses to cross the end, naming the absolute offset and ``structure``."""

    __slots__ = ("device", "size", "start")

    def __init__(self, device: BlockDevice, start: int, size: int) -> None:
        if start < 0 or size < 0 or start + size > device.size:
            raise DiskTruncatedError(
                f"the partition ({size} bytes) ends beyond the disk ({device.size:#x} bytes)",
                structure="partition", offset=start,
            )  # fmt: skip
        self.device = device
        self.start = start
        self.size = size

    def read(self, offset: int, size: int, structure: str = "data") -> bytes:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise DiskTruncatedError(
                f"{structure} ({size} bytes) lies beyond the end of the partition "
                f"({self.size:#x} bytes from {self.start:#x})",
                structure=structure, offset=self.start + max(offset, 0),
            )  # fmt: skip
        return self.device.read(self.start + offset, size)

    def abs(self, offset: int) -> int:
        """The absolute (device) offset of partition offset ``offset``."""
        return self.start + offset
