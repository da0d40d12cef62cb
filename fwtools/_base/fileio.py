"""Reading input files with one kind of error: FwIOError naming the file, never OSError.

Inputs are regular files. A named pipe, a socket or a device named where a file is expected
is refused with one line before it is read: opening a FIFO for reading blocks until a writer
comes (fw-vars audit of a directory holding a FIFO named ``vm_VARS.fd`` hung for ever), and a
character device such as ``/dev/zero`` has no end. :func:`open_input` checks the path with
``stat`` first, so a special file is never opened, then opens with ``O_NONBLOCK`` and checks
the opened file again (it may have been replaced in between). Disk images may also be block
devices (``block_devices=True``): their size is known and they are read in place.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from typing import BinaryIO, Final

from fwtools.errors import FwIOError

# No input fwtools reads comes close (the largest are 64 MiB AAVMF stores and UKIs with an
# initrd); a larger file is refused before it is read into memory.
MAX_INPUT_SIZE: Final = 1 << 30

_O_NONBLOCK: Final[int] = getattr(os, "O_NONBLOCK", 0)
_OPEN_FLAGS: Final = (os.O_RDONLY | _O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
                      | getattr(os, "O_BINARY", 0))


def not_regular(mode: int, *, block_devices: bool = False) -> str | None:
    """Why a file of ``st_mode`` ``mode`` is not read as an input ("is a named pipe (FIFO),
    not a regular file"), or None for a regular file (and, with ``block_devices``, a block
    device)."""
    if stat.S_ISREG(mode) or (block_devices and stat.S_ISBLK(mode)):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISFIFO(mode):
        kind = "a named pipe (FIFO)"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    elif stat.S_ISCHR(mode):
        kind = "a character device"
    elif stat.S_ISBLK(mode):
        kind = "a block device"
    else:
        kind = f"a special file (mode {stat.S_IFMT(mode):#o})"
    return f"is {kind}, not a regular file"


def is_regular(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a regular file (after symlinks); never opens it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def open_input(path: str | os.PathLike[str], *, block_devices: bool = False
               ) -> tuple[int, os.stat_result]:
    """A read-only descriptor of ``path`` and its ``fstat``; FwIOError naming the file when it
    cannot be opened or is not a regular file (or a block device, with ``block_devices``).
    Never blocks: a FIFO is refused before it is opened, and the open itself is
    non-blocking (the descriptor is made blocking again for reading)."""
    name = os.fspath(path)
    try:
        why = not_regular(os.stat(path).st_mode, block_devices=block_devices)
        if why is not None:
            raise FwIOError(f"{name}: {why}")
        fd = os.open(path, _OPEN_FLAGS)
    except FwIOError:
        raise
    except OSError as exc:
        raise FwIOError(f"{name}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        why = not_regular(st.st_mode, block_devices=block_devices)
        if why is not None:
            raise FwIOError(f"{name}: {why}")
        if _O_NONBLOCK:
            os.set_blocking(fd, True)
    except OSError as exc:
        os.close(fd)
        if isinstance(exc, FwIOError):
            raise
        raise FwIOError(f"{name}: {exc.strerror or exc}") from None
    return fd, st


def read_file(path: str | os.PathLike[str], *, max_size: int = MAX_INPUT_SIZE) -> bytes:
    """The whole content of ``path``; directories, special files and oversized files fail."""
    name = os.fspath(path)
    fd, st = open_input(path)
    try:
        with os.fdopen(fd, "rb") as f:
            if st.st_size > max_size:
                raise FwIOError(
                    f"{name}: {st.st_size} bytes is larger than the {max_size} byte limit"
                )
            data = _read_bounded(f, st, max_size)
    except FwIOError:
        raise
    except OSError as exc:
        raise FwIOError(f"{name}: {exc.strerror or exc}") from None
    if len(data) > max_size:  # a file that grew while being read
        raise FwIOError(f"{name}: larger than the {max_size} byte limit")
    return data


def _read_bounded(f: BinaryIO, st: os.stat_result, max_size: int) -> bytes:
    """At most ``max_size + 1`` bytes of ``f``, allocating only what the file holds.

    ``f.read(max_size + 1)`` allocates the whole 1 GiB buffer up front whatever the file's
    size, which fails with MemoryError under an address-space limit (``ulimit -v``) even for
    a 1 KiB file (issue 8; tests/reliability/test_resource_bounds.py). A regular file is read
    with one buffer of its size plus one byte; a file that grew meanwhile, or one whose size
    says nothing (sysfs and securityfs files report 0, e.g. the TPM event log), is read on in
    1 MiB pieces up to the limit.
    """
    first = min(st.st_size, max_size) + 1
    data = f.read(first)
    if len(data) < first:
        return data
    parts, total = [data], len(data)
    while total <= max_size:
        chunk = f.read(min(1 << 20, max_size + 1 - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


class ReadAhead:
    """:func:`read_file` of each of ``paths``, in order, done by a second thread that stays
    ahead of the caller, for a caller that works on each file before it needs the next.

    Reading a large file into a process's new memory is mostly the kernel zero-filling
    fresh pages (a 12 MB kernel takes 5-7 ms in a new process, 2 ms once memory is reused),
    work that needs no interpreter: done by a thread, it overlaps the caller's parsing of
    the files before it. The thread stops reading on while the files it has read and the
    caller has not taken reach ``budget`` bytes (it always holds at least one), and at its
    first read error. :meth:`take` returns a file's bytes or raises its read error, so
    errors come in the order sequential reads would give. Leaving the ``with`` block stops
    the thread and waits for a read in progress (files are regular, so every read ends).
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]], *,
                 budget: int = 64 << 20) -> None:
        import threading

        self._paths = [os.fspath(p) for p in paths]
        self._budget = budget
        self._results: list[bytes | BaseException | None] = [None] * len(self._paths)
        self._read = 0  # files read (or failed)
        self._held = 0  # bytes read and not taken
        self._stopped = False
        self._done = False  # the thread has returned
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="fwtools-read-ahead",
                                        daemon=True)

    def __enter__(self) -> ReadAhead:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        try:
            self._read_all()
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _read_all(self) -> None:
        for i, path in enumerate(self._paths):
            with self._cond:
                while not self._stopped and self._held and self._held >= self._budget:
                    self._cond.wait()
                if self._stopped:
                    return
            result: bytes | BaseException
            try:
                result = read_file(path)
            except BaseException as exc:  # handed to the caller's thread, raised by take()
                result = exc
            with self._cond:
                self._results[i] = result
                self._read = i + 1
                if isinstance(result, bytes):
                    self._held += len(result)
                self._cond.notify_all()
            if not isinstance(result, bytes):
                return

    def take(self, index: int) -> bytes:
        """The bytes of file ``index`` (each is taken once, in order), or its read error."""
        with self._cond:
            while self._read <= index:
                if self._done or not self._thread.is_alive():
                    raise RuntimeError(f"file {index} was not read (an earlier one failed)")
                self._cond.wait()
            result = self._results[index]
            self._results[index] = None
            if isinstance(result, bytes):
                self._held -= len(result)
                self._cond.notify_all()
        if result is None:
            raise RuntimeError(f"file {index} was taken twice")
        if isinstance(result, BaseException):
            raise result
        return result
