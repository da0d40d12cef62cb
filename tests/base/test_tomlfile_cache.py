"""The parsed-TOML cache of shipped policy files (_base/tomlfile.py): same data as parsing,
re-parsed when the file changes, a broken cache ignored, nothing cached for a user's file."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

import pytest

from fwtools._base import tomlfile

TEXT = 'name = "x"\n[steps]\nn = 3\nlist = [1, 2.5, true]\n'


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "policies"
    (root / "loaders").mkdir(parents=True)
    monkeypatch.setenv("FWTOOLS_POLICIES", str(root))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    path = root / "loaders" / "m.toml"
    path.write_text(TEXT)
    return path


def cache_of(path: Path) -> Path:
    return path.parent / "__pycache__" / f"{path.name}.{sys.implementation.cache_tag}"


def test_cached_read_equals_parse(shipped: Path) -> None:
    first = tomlfile.read_toml(shipped, "loader model")
    assert cache_of(shipped).is_file()
    assert tomlfile.read_toml(shipped, "loader model") == first == tomllib.loads(TEXT)


def test_changed_file_is_parsed_again(shipped: Path) -> None:
    tomlfile.read_toml(shipped, "loader model")
    shipped.write_text("extra = 1\n" + TEXT)
    os.utime(shipped, ns=(1, 1))  # a different mtime even on a coarse clock
    assert tomlfile.read_toml(shipped, "loader model")["extra"] == 1


def test_broken_cache_is_ignored(shipped: Path) -> None:
    tomlfile.read_toml(shipped, "loader model")
    cache = cache_of(shipped)
    cache.write_bytes(cache.read_bytes()[:30] + b"\xff\x00garbage")
    assert tomlfile.read_toml(shipped, "loader model") == tomllib.loads(TEXT)


def test_dates_are_not_cached_but_read(shipped: Path) -> None:
    shipped.write_text("when = 2024-01-02\n")
    assert str(tomlfile.read_toml(shipped, "loader model")["when"]) == "2024-01-02"
    assert not cache_of(shipped).exists()


def test_user_file_gets_no_cache(shipped: Path, tmp_path: Path) -> None:
    del shipped
    mine = tmp_path / "mine.toml"
    mine.write_text(TEXT)
    assert tomlfile.read_toml(mine, "profile") == tomllib.loads(TEXT)
    assert not (tmp_path / "__pycache__").exists()


def test_no_cache_written_when_bytecode_writing_is_off(shipped: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    tomlfile.read_toml(shipped, "loader model")
    assert not cache_of(shipped).exists()
