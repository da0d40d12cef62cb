"""Injection on real disk-image layouts made by sgdisk, sfdisk and mformat."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from corpus.params import need_tool

from fwtools.formats.mbr import (
    BYEBYEBIOS,
    EMPTY,
    FILESYSTEM,
    build_boot_code,
    identify_boot_code,
    inject,
    parse_sector,
)

SIZE = 64 << 20


def need(*tools: str) -> None:
    for tool in tools:
        need_tool(tool)


def run(*args: str | Path, stdin: str | None = None) -> str:
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True,
                          input=stdin).stdout


def blank(path: Path) -> Path:
    with open(path, "wb") as f:
        f.truncate(SIZE)
    return path


def gpt(path: Path) -> Path:
    need("sgdisk")
    run("sgdisk", "-n1:2048:+16M", "-t1:ef00", "-n2:0:+8M", "-t2:8300", blank(path))
    return path


def hybrid(path: Path) -> Path:
    gpt(path)
    run("sgdisk", "-h", "1:EE", path)
    return path


def plain_mbr(path: Path) -> Path:
    """An MBR-partitioned disk with a disk signature, made by sfdisk."""
    need("sfdisk")
    run("sfdisk", "-q", blank(path), stdin="label: dos\nlabel-id: 0x1234abcd\n"
        "start=2048, size=32768, type=c, bootable\nsize=16384, type=83\n")
    return path
    run("sgdisk", "-m", "1:2", path)
    with open(path, "r+b") as f:
        f.seek(440)
        f.write(bytes.fromhex("cdab3412"))
    return path


def table(img: Path) -> list[str]:
    """sgdisk's partition lines (on MBR disks its invented disk GUID changes every run)."""
    if not shutil.which("sgdisk"):
        return []
    lines = run("sgdisk", "-p", img).splitlines()
    return [line for line in lines if line.strip()[:1].isdigit()]


def replace_sector(path: Path) -> tuple[bytes, bytes]:
    data = path.read_bytes()
    new = inject(data[:512], build_boot_code())
    path.write_bytes(new + data[512:])
    return data, new


@pytest.mark.parametrize(("make", "scheme"),
                         [(gpt, "gpt"), (hybrid, "hybrid"), (plain_mbr, "mbr")])
def test_layouts_survive(tmp_path: Path, make: object, scheme: str) -> None:
    assert callable(make)
    img: Path = make(tmp_path / "disk.img")
    before_table = table(img)
    old, _ = replace_sector(img)
    mbr = parse_sector(old)
    assert mbr.scheme == scheme
    assert mbr.boot_code_kind == EMPTY
    after = img.read_bytes()
    # Byte by byte: everything from offset 440 on (disk signature, table, 0x55AA, the GPT
    # header and entries at LBA 1+, the rest of the disk) is unchanged.
    assert len(after) == len(old)
    diff = [i for i in range(512) if after[i] != old[i]]
    assert diff and max(diff) < 440
    assert after[440:] == old[440:]
    assert identify_boot_code(after) == BYEBYEBIOS
    assert parse_sector(after).scheme == scheme
    need("sgdisk", "sfdisk")
    assert table(img) == before_table
    if scheme != "mbr":
        assert "No problems found" in run("sgdisk", "-v", img)
    if scheme == "mbr":
        assert parse_sector(after).disk_signature == 0x1234ABCD
        assert "label-id: 0x1234abcd" in run("sfdisk", "-d", img)


def test_superfloppy_fat_is_a_filesystem(tmp_path: Path) -> None:
    need("mformat")
    img = blank(tmp_path / "fat.img")
    run("mformat", "-i", img, "-F", "::")
    assert identify_boot_code(img.read_bytes()[:512]) == FILESYSTEM
