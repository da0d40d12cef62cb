from __future__ import annotations

import os
import signal
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fwtools._base.fileio import ReadAhead, is_regular, not_regular, open_input, read_file
from fwtools.errors import FwIOError
from fwtools.formats.disk.device import open_device


def test_reads(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    assert read_file(tmp_path / "f") == b"abc"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: None, "No such file"),
        (lambda p: p.write_bytes(b"x" * 11), "larger than the 10 byte limit"),
    ],
)
def test_errors_name_the_file_once(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "input"
    make(target)
    with pytest.raises(FwIOError) as info:
        read_file(target, max_size=10)
    text = str(info.value)
    assert message in text and text.count(str(target)) == 1


# --- special files: refused by kind, never opened for reading (a FIFO's open blocks) -------


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Fail instead of hanging: an open() blocked on a FIFO is interrupted after 10 s."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError("blocked (opening a FIFO for reading?)")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, 10)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _socket(path: Path) -> Path:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()  # the socket file stays
    return path


@pytest.mark.parametrize(
    ("make", "kind"),
    [(_fifo, "a named pipe (FIFO)"), (_socket, "a socket"),
     (lambda p: Path("/dev/null"), "a character device")],
)
def test_special_files_are_refused_by_kind(tmp_path: Path, no_hang: None, make, kind: str  # type: ignore[no-untyped-def]
                                           ) -> None:
    target = make(tmp_path / "vm_VARS.fd")
    for call in (lambda: read_file(target), lambda: open_input(target),
                 lambda: open_input(target, block_devices=True),
                 lambda: open_device(target)):
        with pytest.raises(FwIOError) as info:
            call()
        assert str(info.value) == f"{target}: is {kind}, not a regular file"
    assert not is_regular(target)


def test_a_symlink_to_a_fifo_is_refused_too(tmp_path: Path, no_hang: None) -> None:
    link = tmp_path / "link.fd"
    link.symlink_to(_fifo(tmp_path / "p"))
    with pytest.raises(FwIOError, match="named pipe"):
        read_file(link)


def test_not_regular_names_each_kind() -> None:
    assert not_regular(stat.S_IFREG | 0o644) is None
    assert not_regular(stat.S_IFBLK | 0o660) == "is a block device, not a regular file"
    assert not_regular(stat.S_IFBLK | 0o660, block_devices=True) is None
    assert not_regular(stat.S_IFDIR | 0o755) == "is a directory"


def test_open_input_gives_a_blocking_descriptor(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    fd, st = open_input(tmp_path / "f")
    try:
        assert os.get_blocking(fd) and st.st_size == 3 and os.read(fd, 10) == b"abc"
    finally:
        os.close(fd)


def test_read_ahead_gives_each_file_in_order(tmp_path: Path) -> None:
    paths = []
    for i in range(5):
        (tmp_path / f"f{i}").write_bytes(bytes([i]) * (1000 * (i + 1)))
        paths.append(tmp_path / f"f{i}")
    with ReadAhead(paths) as files:
        assert [files.take(i) for i in range(5)] == [read_file(p) for p in paths]
        with pytest.raises(RuntimeError, match="taken twice"):
            files.take(0)


def test_read_ahead_holds_at_most_its_budget_beyond_one_file(tmp_path: Path) -> None:
    """With a budget smaller than a file, the thread reads one file ahead and waits."""
    paths = []
    for i in range(4):
        (tmp_path / f"f{i}").write_bytes(b"x" * 4096)
        paths.append(tmp_path / f"f{i}")
    with ReadAhead(paths, budget=100) as files:
        for i in range(4):
            time.sleep(0.05)  # time for the thread to run ahead, if it would
            assert files._read <= i + 1 and files._held <= 4096
            assert files.take(i) == b"x" * 4096


def test_read_ahead_raises_a_read_error_at_its_file_and_stops(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "c").write_bytes(b"c")
    paths = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    with ReadAhead(paths) as files:
        assert files.take(0) == b"a"
        with pytest.raises(FwIOError, match="b: No such file"):
            files.take(1)
        with pytest.raises(RuntimeError, match="not read"):
            files.take(2)  # the thread stopped at the first error


def test_leaving_early_stops_the_thread(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        (tmp_path / f"f{i}").write_bytes(b"y" * 10)
        paths.append(tmp_path / f"f{i}")
    files = ReadAhead(paths, budget=1)
    with files:
        assert files.take(0) == b"y" * 10
    assert not files._thread.is_alive()
