"""fw-check disk end to end on the committed disk fixture (testdata/make_disk_fixtures.py):
partitions and the ESP's EFI files as text and JSON, one-line errors for bad images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "testdata" / "disk" / "gpt-fat12-ext4.img"
FW_CHECK = [sys.executable, "-c", "from fwtools.cli.fw_check import main; main()"]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([*FW_CHECK, "disk", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO, env=env)


def test_text() -> None:
    r = run(IMAGE)
    assert r.returncode == 0, r.stderr
    assert "GPT (primary header)" in r.stdout
    assert "EFI System 'EFI system partition' [ESP]" in r.stdout
    assert "\\EFI\\BOOT\\BOOTX64.EFI  20482 bytes" in r.stdout
    assert "\\EFI\\debian\\shimx64.efi" in r.stdout


def test_json() -> None:
    r = run("--json", IMAGE)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "fwtools.fw-check.disk/1" and doc["format"] == "raw"
    parts = doc["table"]["partitions"]
    assert [p["index"] for p in parts] == [1, 2] and parts[0]["esp"]
    assert parts[1]["unique_guid"] == "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
    assert doc["esp"]["partition"] == 1 and doc["esp"]["filesystem"] == "FAT12"
    assert [f["path"] for f in doc["esp"]["efi_files"]] == [
        "\\EFI\\BOOT\\BOOTX64.EFI", "\\EFI\\debian\\shimx64.efi"]


def test_bad_images_are_one_line(tmp_path: Path) -> None:
    data = bytearray(IMAGE.read_bytes())
    data[512 + 20] ^= 0xFF  # primary header CRC
    data[len(data) - 512 + 20] ^= 0xFF  # backup header CRC
    bad = tmp_path / "bad.img"
    bad.write_bytes(bytes(data))
    r = run(bad)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "bad.img: GPT header.header_crc32: offset 0x210" \
        in r.stderr
    r = run(tmp_path / "missing.img")
    assert r.returncode == 2 and r.stderr.startswith("error: ")
