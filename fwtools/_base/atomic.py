"""Crash-safe file writing: temporary file in the target directory, fsync, rename."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from fwtools.errors import FwIOError

if TYPE_CHECKING:
    from pathlib import Path


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int | None = None, *,
                 keep_owner: bool = False, exclusive: bool = False) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file.

    The data goes to a temporary file in the same directory, which is flushed and fsynced and
    then renamed over the target; the directory is fsynced too. The target's permission bits
    are kept when it exists. On any failure the target is untouched and the temporary file is
    removed. With ``keep_owner`` the new file also gets the target's owner and group where
    this process may set them (root replacing a VM's store owned by the QEMU user).

    With ``exclusive`` the file must not exist: the temporary file is hard-linked to the name,
    which fails if another process created it meanwhile (:class:`FileAppearedError`), so a
    file that appears during the write is never replaced.
    """
    # Imported here: commands that only read (most runs) do not pay for tempfile (random,
    # shutil, bz2, lzma) and pathlib at start-up.
    import tempfile
    from pathlib import Path

    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if mode is None:
        try:
            mode = target.stat().st_mode & 0o7777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise FwIOError(f"{target}: cannot create a temporary file: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        if keep_owner:
            _copy_owner(target, tmp)
        if exclusive:
            os.link(tmp, target)
            os.unlink(tmp)
        else:
            os.replace(tmp, target)
    except FileExistsError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise FileAppearedError(f"{target}: appeared while it was being written") from None
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise FwIOError(f"{target}: write failed: {exc.strerror or exc}") from exc
    fsync_directory(directory)


class FileAppearedError(FwIOError):
    """An exclusive write found the name taken by a file created while it wrote."""


def _copy_owner(target: Path, tmp: str) -> None:
    try:
        st = target.stat()
    except FileNotFoundError:
        return
    mine = os.stat(tmp)
    if (st.st_uid, st.st_gid) != (mine.st_uid, mine.st_gid):
        with contextlib.suppress(PermissionError):
            os.chown(tmp, st.st_uid, st.st_gid)


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Make a rename in ``directory`` durable; best effort (some filesystems refuse)."""
    with contextlib.suppress(OSError):
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
