"""Crash-safe patching of large files: a sparse copy in the target directory, patched,
fsynced and renamed over the target (the streaming sibling of :mod:`fwtools._base.atomic`,
for files too large to hold in memory, such as disk images).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from fwtools._base.atomic import fsync_directory
from fwtools.errors import FwIOError


def _copy_range(src: int, dst: int, start: int, end: int) -> None:
    pos = start
    while pos < end:
        try:
            n = os.copy_file_range(src, dst, end - pos, pos, pos)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            n = 0
        if n <= 0:  # fall back to read/write
            chunk = os.pread(src, min(end - pos, 1 << 20), pos)
            if not chunk:
                raise OSError(errno.EIO, "file shrank while copying")
            n = os.pwrite(dst, chunk, pos)
        pos += n


def atomic_patch(path: str | os.PathLike[str], patches: Iterable[tuple[int, bytes]]) -> None:
    """Replace ``path`` by a copy of itself with each ``(offset, bytes)`` patch written in.

    Holes are kept (SEEK_DATA/SEEK_HOLE) and data is copied with copy_file_range, which
    reflinks where the filesystem can. The copy is fsynced, given the original's permission
    bits and renamed over the target; the directory is fsynced too. On any failure the
    target is untouched and the temporary file is removed.
    """
    target = Path(path)
    directory = target.parent
    try:
        src = os.open(target, os.O_RDONLY)
    except OSError as exc:
        raise FwIOError(f"{target}: cannot read: {exc.strerror}") from exc
    tmp = None
    try:
        st = os.fstat(src)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        try:
            os.ftruncate(fd, st.st_size)
            pos = 0
            while pos < st.st_size:
                try:
                    data = os.lseek(src, pos, os.SEEK_DATA)
                except OSError as exc:
                    if exc.errno == errno.ENXIO:
                        break  # only a hole is left
                    raise
                hole = os.lseek(src, data, os.SEEK_HOLE)
                _copy_range(src, fd, data, hole)
                pos = hole
            for offset, chunk in patches:
                os.pwrite(fd, chunk, offset)
            os.fsync(fd)
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
        finally:
            os.close(fd)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise FwIOError(f"{target}: write failed: {exc.strerror or exc}") from exc
    finally:
        os.close(src)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    fsync_directory(directory)
