"""Reading input files with one kind of error: FwIOError naming the file, never OSError."""

from __future__ import annotations

import os
import stat
from typing import BinaryIO, Final

from fwtools.errors import FwIOError

# No input fwtools reads comes close (the largest are 64 MiB AAVMF stores and UKIs with an
# initrd); a larger file is refused before it is read into memory.
MAX_INPUT_SIZE: Final = 1 << 30


def read_file(path: str | os.PathLike[str], *, max_size: int = MAX_INPUT_SIZE) -> bytes:
    """The whole content of ``path``; directories, special files and oversized files fail."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if stat.S_ISDIR(st.st_mode):
                raise FwIOError(f"{name}: is a directory")
            if st.st_size > max_size:
                raise FwIOError(
                    f"{name}: {st.st_size} bytes is larger than the {max_size} byte limit"
                )
            data = _read_bounded(f, st, max_size)
    except FwIOError:
        raise
    except IsADirectoryError:
        raise FwIOError(f"{name}: is a directory") from None
    except OSError as exc:
        raise FwIOError(f"{name}: {exc.strerror or exc}") from None
    if len(data) > max_size:  # a pipe or a file that grew while being read
        raise FwIOError(f"{name}: larger than the {max_size} byte limit")
    return data


def _read_bounded(f: BinaryIO, st: os.stat_result, max_size: int) -> bytes:
    """At most ``max_size + 1`` bytes of ``f``, allocating only what the file holds.

    ``f.read(max_size + 1)`` allocates the whole 1 GiB buffer up front whatever the file's
    size, which fails with MemoryError under an address-space limit (``ulimit -v``) even for
    a 1 KiB file (issue 8; tests/reliability/test_resource_bounds.py). A regular file is read
    with one buffer of its size plus one byte; a pipe, or a file that grew meanwhile, is read
    on in 1 MiB pieces up to the limit.
    """
    first = min(st.st_size, max_size) + 1 if stat.S_ISREG(st.st_mode) else 1 << 16
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
