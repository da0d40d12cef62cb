"""Is a store in use by a running QEMU? QEMU's image locks, read and honoured.

QEMU locks every image file it opens with byte-range locks (QEMU ``block/file-posix.c``,
``raw_apply_lock_bytes``): for each permission it holds (consistent read, write, ...) a
shared lock on byte ``RAW_LOCK_PERM_BASE + bit`` (100 + bit), and for each permission it does
not share with others a shared lock on ``RAW_LOCK_SHARED_BASE + bit`` (200 + bit). Locks are
open file description (OFD) locks where the kernel has them (``F_OFD_SETLK``, Linux 3.15),
else POSIX ones. QEMU finds a conflict by *testing* for an exclusive lock on the bytes it
cares about (``raw_check_lock_bytes``, ``qemu_lock_fd_test``), so every lock it holds is a
read lock and a conflict shows up as "an exclusive lock here would be refused".

This module does the same: :func:`holder` tests with ``F_OFD_GETLK`` whether an exclusive lock
on bytes 100..299 would conflict (OFD and POSIX locks conflict with each other, so both kinds
are seen). :func:`hold` also takes QEMU-style shared locks on those bytes for the duration of
an update, so that a QEMU starting meanwhile fails with "Failed to get "write" lock" instead of
mapping a file that is about to be replaced; the test is repeated after taking them, which
closes the window between test and lock.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

# QEMU block/file-posix.c.
RAW_LOCK_PERM_BASE: Final = 100
RAW_LOCK_SHARED_BASE: Final = 200
_LOCK_START: Final = RAW_LOCK_PERM_BASE
_LOCK_LEN: Final = RAW_LOCK_SHARED_BASE + 100 - RAW_LOCK_PERM_BASE  # bytes 100..299
# <asm-generic/fcntl.h>; Python's fcntl module has them from 3.9 on Linux, not everywhere.
F_OFD_GETLK: Final = 36
F_OFD_SETLK: Final = 37
# struct flock on Linux (x86-64, aarch64 and the other 64-bit ABIs): short l_type,
# short l_whence, off_t l_start, off_t l_len, pid_t l_pid, padded to 32 bytes.
_FLOCK: Final = struct.Struct("hhqqi4x")


@dataclass(frozen=True)
class LockHolder:
    """A conflicting lock found on a store: its kind and byte, and the holder's pid for POSIX
    locks (OFD locks have no owning process: pid -1)."""

    exclusive: bool
    offset: int
    pid: int

    def describe(self) -> str:
        who = f"process {self.pid}" if self.pid > 0 else "another process (an OFD lock)"
        if RAW_LOCK_PERM_BASE <= self.offset < RAW_LOCK_SHARED_BASE + 100:
            what = "QEMU's image lock"
        else:
            what = "a lock"
        return f"{who} holds {what} on byte {self.offset} (a running QEMU has it open)"


def _flock(kind: int) -> bytes:
    return _FLOCK.pack(kind, os.SEEK_SET, _LOCK_START, _LOCK_LEN, 0)


def _test(fd: int) -> LockHolder | None:
    import fcntl

    answer = fcntl.fcntl(fd, F_OFD_GETLK, _flock(fcntl.F_WRLCK))
    kind, _whence, start, _length, pid = _FLOCK.unpack(answer)
    if kind == fcntl.F_UNLCK:
        return None
    return LockHolder(kind == fcntl.F_WRLCK, start, pid)


def _open_regular(path: str | os.PathLike[str]) -> int | None:
    """A read-only descriptor of ``path`` when it is a regular file, else None: a FIFO given
    as a store must not block here, and reading it reports why (_base/fileio.py)."""
    from fwtools._base.fileio import open_input
    from fwtools.errors import FwIOError

    try:
        return open_input(path)[0]
    except FwIOError:
        return None


def supported() -> bool:
    return sys.platform.startswith("linux")


def holder(path: str | os.PathLike[str]) -> LockHolder | None:
    """The lock another process holds on ``path`` that QEMU would hold on an image it has open,
    or None. Only Linux has OFD locks; elsewhere None. A file that cannot be opened is None
    too (reading it will report that)."""
    if not supported():
        return None
    fd = _open_regular(path)
    if fd is None:
        return None
    try:
        return _test(fd)
    except OSError as exc:  # a filesystem without locks (some FUSE, old NFS)
        if exc.errno in (errno.EINVAL, errno.ENOLCK, errno.EOPNOTSUPP):
            return None
        raise
    finally:
        os.close(fd)


class StoreLocked(Exception):
    def __init__(self, found: LockHolder) -> None:
        super().__init__(found.describe())
        self.holder = found


@contextlib.contextmanager
def hold(path: str | os.PathLike[str]) -> Iterator[None]:
    """Keep QEMU away from ``path`` while it is updated: test for a conflicting lock, take
    QEMU's shared locks on bytes 100..299, test again. Raises :class:`StoreLocked` when a lock
    is held by someone else. Without lock support (not Linux, a filesystem without locks) it
    only yields."""
    if not supported():
        yield
        return
    import fcntl

    fd = _open_regular(path)
    if fd is None:
        yield  # reading or writing it reports why
        return
    try:
        try:
            found = _test(fd)
            if found is None:
                fcntl.fcntl(fd, F_OFD_SETLK, _flock(fcntl.F_RDLCK))
                found = _test(fd)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOLCK, errno.EOPNOTSUPP):
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    found = LockHolder(True, _LOCK_START, -1)
                else:
                    raise
            else:
                found = None
        if found is not None:
            raise StoreLocked(found)
        yield
    finally:
        os.close(fd)  # closing the description releases its OFD locks
