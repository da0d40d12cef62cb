from __future__ import annotations

import os
from pathlib import Path

import pytest

from fwtools._base.atomic import FileAppearedError, atomic_write
from fwtools.errors import FwIOError


def test_replaces_and_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "vars.fd"
    target.write_bytes(b"old")
    target.chmod(0o640)
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["vars.fd"]


def test_failure_leaves_target_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "vars.fd"
    target.write_bytes(b"old")

    def broken(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(FwIOError, match="No space left"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["vars.fd"]


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FwIOError, match="temporary file"):
        atomic_write(tmp_path / "nope" / "x", b"data")


def test_exclusive_write_creates_a_new_file(tmp_path: Path) -> None:
    target = tmp_path / "vm_VARS.fd"
    atomic_write(target, b"store", 0o600, exclusive=True)
    assert target.read_bytes() == b"store"
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vm_VARS.fd"]


def test_exclusive_write_never_replaces_a_file_that_exists(tmp_path: Path) -> None:
    target = tmp_path / "vm_VARS.fd"
    target.write_bytes(b"the VM's own store")
    with pytest.raises(FileAppearedError, match="appeared while it was being written"):
        atomic_write(target, b"template", 0o600, exclusive=True)
    assert target.read_bytes() == b"the VM's own store"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vm_VARS.fd"]  # no temporary left
