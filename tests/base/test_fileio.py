from __future__ import annotations

from pathlib import Path

import pytest

from fwtools._base.fileio import read_file
from fwtools.errors import FwIOError


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
