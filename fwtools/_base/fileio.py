"""Reading input files with one kind of error: FwIOError naming the file, never OSError."""

from __future__ import annotations

import os
import stat
from typing import Final

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
            data = f.read(max_size + 1)
    except FwIOError:
        raise
    except IsADirectoryError:
        raise FwIOError(f"{name}: is a directory") from None
    except OSError as exc:
        raise FwIOError(f"{name}: {exc.strerror or exc}") from None
    if len(data) > max_size:  # a pipe or a file that grew while being read
        raise FwIOError(f"{name}: larger than the {max_size} byte limit")
    return data
