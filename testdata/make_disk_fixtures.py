#!/usr/bin/env python3
"""Build the disk image fixture in testdata/disk/ with sgdisk, mkfs.vfat, mtools and mke2fs.

The disk reader tests build their images with these tools in a temporary directory
(tests/formats/disk/disk_builder.py); this one small image is committed so the hostile-input
tests (tests/formats/disk/test_disk_hostile.py) and the ``disk`` fuzz target have a real
image where the tools are not installed. Below 600 KiB, so the hypothesis fuzz test takes it
as a seed.

``gpt-fat12-ext4.img`` (576 KiB):

- GPT (``sgdisk``, fixed disk and partition GUIDs), partition 1 the ESP (type EF00, LBAs
  64..575, name "EFI system partition"), partition 2 Linux root x86-64 (type 8304, LBAs
  576..1087, name "root");
- partition 1: ``mkfs.vfat -F 12 -i 1234abcd -n ESP`` and ``mcopy``: ``EFI/BOOT/BOOTX64.EFI``
  (20 KiB), ``EFI/debian/shimx64.efi`` (9 KiB), ``EFI/debian/grub.cfg``, a long-named file in a
  long-named directory;
- partition 2: ``mke2fs -t ext4 -b 1024 -O ^has_journal -N 32 -d``: ``/boot/vmlinuz-6.1.0-18-amd64``
  (30 KiB), ``/boot/grub/grub.cfg``, ``/boot/sparse.bin`` (12 KiB, data and holes in turn:
  six extents, one more than the inode holds, so the extent tree has depth 1), symlinks
  ``/vmlinuz -> boot/vmlinuz-6.1.0-18-amd64`` (fast) and ``/boot/grub.cfg-abs`` (absolute).

MANIFEST.json records the sha256 of every file and the target of every symlink as the tools
were given them (the oracle, not fwtools). mkfs and mtools stamp times, so a rebuild is not
byte-identical; ``--check`` rebuilds in a temporary directory and compares the manifests
(for the hostile edits, which bytes they change).

Hostile variants, kept as byte patches of the image in MANIFEST.json ``hostile`` (``[offset,
hex bytes]`` pairs) and applied by the tests and the ``disk`` fuzz target's seeds; each is made
with a tool where one can make it, and the tests say which error each must give:

- ``fat-chain-loop``: the FAT12 entry of the second cluster of ``BOOTX64.EFI`` (its chain from
  ``mshowfat``) points back at the first;
- ``fat-chain-reserved``: the first cluster's entry is 0xFF0 (a reserved value, no cluster);
- ``ext4-extent-child``: ``debugfs set_inode_field /boot/sparse.bin block[4] 2``: the root
  index's child is the group descriptor block, not an extent node;
- ``ext4-huge-size``: ``set_inode_field /boot/vmlinuz-6.1.0-18-amd64 size 0x10000000000``;
- ``ext4-unknown-feature``: ``ssv feature_incompat`` with bit 31 added;
- ``ext4-symlink-loop``: ``symlink /loop-a /loop-b`` and ``symlink /loop-b /loop-a``;
- ``ext4-dir-cycle``: ``link /boot /boot/grub/up``: a directory entry naming an ancestor;
- ``gpt-both-headers``: one byte of each GPT header's CRC32 field flipped (LBA 1 and the last
  LBA), so neither header is valid.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "disk"
NAME = "gpt-fat12-ext4.img"
SECTOR = 512
DISK_SIZE = 576 << 10
ESP = (64, 575)
ROOT = (576, 1087)
MAX_FIXTURE = 600 << 10
DISK_GUID = "8c4b5e6a-1f2d-4c3b-9a8e-7d6c5b4a3f21"
ESP_GUID = "1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
ROOT_GUID = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
FS_UUID = "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9"
FIXED_TIME = 1735689600  # 2025-01-01


def require(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        sys.exit(f"needs {', '.join(missing)} (apt-get install gdisk dosfstools mtools "
                 "e2fsprogs)")


def run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True,
                   env={**os.environ, **(env or {})})


def trees(tmp: Path) -> tuple[Path, Path]:
    rng = random.Random(16)
    esp, root = tmp / "esp", tmp / "root"
    files = {
        esp / "EFI/BOOT/BOOTX64.EFI": b"MZ" + rng.randbytes(20 << 10),
        esp / "EFI/debian/shimx64.efi": b"MZ" + rng.randbytes(9 << 10),
        esp / "EFI/debian/grub.cfg": b"search.fs_uuid " + FS_UUID.encode() + b" root\n"
        b"set prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n",
        esp / "EFI/Long Directory Name/a file with a long name.txt": b"long names\n",
        root / "boot/vmlinuz-6.1.0-18-amd64": rng.randbytes(30 << 10),
        root / "boot/grub/grub.cfg": b"menuentry 'Debian GNU/Linux' {\n"
        b"\tlinux /boot/vmlinuz-6.1.0-18-amd64 root=UUID=" + FS_UUID.encode() + b" ro\n}\n",
        root / "boot/sparse.bin": b"".join(
            rng.randbytes(1024) if i % 2 == 0 else bytes(1024) for i in range(12)),
    }
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    os.symlink("boot/vmlinuz-6.1.0-18-amd64", root / "vmlinuz")
    os.symlink("/boot/grub/grub.cfg", root / "boot/grub.cfg-abs")
    for p in [*esp.rglob("*"), *root.rglob("*"), esp, root]:
        os.utime(p, (FIXED_TIME, FIXED_TIME), follow_symlinks=False)
    return esp, root


def build(out: Path) -> None:
    require("sgdisk", "mkfs.vfat", "mmd", "mcopy", "mshowfat", "mke2fs", "debugfs")
    out.mkdir(parents=True, exist_ok=True)
    image = out / NAME
    image.unlink(missing_ok=True)
    with open(image, "wb") as f:
        f.truncate(DISK_SIZE)
    run("sgdisk", "-U", DISK_GUID, "-n", f"1:{ESP[0]}:{ESP[1]}", "-t", "1:ef00", "-u",
        f"1:{ESP_GUID}", "-c", "1:EFI system partition", "-n", f"2:{ROOT[0]}:{ROOT[1]}",
        "-t", "2:8304", "-u", f"2:{ROOT_GUID}", "-c", "2:root", image)
    with tempfile.TemporaryDirectory() as tmp:
        esp, root = trees(Path(tmp))
        esp_bytes = (ESP[1] - ESP[0] + 1) * SECTOR
        run("mkfs.vfat", "-F", "12", "-i", "1234abcd", "-n", "ESP", "--offset", str(ESP[0]),
            image, str(esp_bytes // 1024))
        target = f"{image}@@{ESP[0] * SECTOR}"
        env = {"MTOOLS_SKIP_CHECK": "1"}
        for d in sorted(p for p in esp.rglob("*") if p.is_dir()):
            run("mmd", "-i", target, "::/" + d.relative_to(esp).as_posix(), env=env)
        for file in sorted(p for p in esp.rglob("*") if p.is_file()):
            run("mcopy", "-i", target, file, "::/" + file.relative_to(esp).as_posix(), env=env)
        root_bytes = (ROOT[1] - ROOT[0] + 1) * SECTOR
        run("mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-O", "^has_journal", "-N", "32",
            "-U", FS_UUID, "-L", "root", "-E", f"offset={ROOT[0] * SECTOR}", "-d", root, image,
            f"{root_bytes // 1024}k", env={"E2FSPROGS_FAKE_TIME": str(FIXED_TIME)})


# FAT12 (Microsoft FAT specification §3.1 BPB, §4 FAT12 entry packing).
BPB_BYTS_PER_SEC = 11
BPB_RSVD_SEC_CNT = 14

DEBUGFS_EDITS = {
    "ext4-extent-child": ["set_inode_field /boot/sparse.bin block[4] 2"],
    "ext4-huge-size": ["set_inode_field /boot/vmlinuz-6.1.0-18-amd64 size 0x10000000000"],
    "ext4-unknown-feature": ["ssv feature_incompat {incompat_bit31}"],
    "ext4-symlink-loop": ["symlink /loop-a /loop-b", "symlink /loop-b /loop-a"],
    "ext4-dir-cycle": ["link /boot /boot/grub/up"],
}
EXT4_S_FEATURE_INCOMPAT = 1024 + 0x60  # super.rst


def _diff(a: bytes, b: bytes, base: int) -> list[list[object]]:
    """The bytes of ``b`` that differ from ``a``, as [absolute offset, hex] runs."""
    out: list[list[object]] = []
    i = 0
    while i < len(a):
        if a[i] != b[i]:
            j = i
            while j < len(a) and (a[j] != b[j] or (j + 1 < len(a) and a[j + 1] != b[j + 1])):
                j += 1
            out.append([base + i, b[i:j].hex()])
            i = j
        else:
            i += 1
    return out


def _fat12_set(fat: bytearray, cluster: int, value: int) -> None:
    pos = cluster + cluster // 2
    word = int.from_bytes(fat[pos : pos + 2], "little")
    word = (word & 0x000F) | (value << 4) if cluster & 1 else (word & 0xF000) | value
    fat[pos : pos + 2] = word.to_bytes(2, "little")


def hostile(image: Path) -> dict[str, list[list[object]]]:
    data = image.read_bytes()
    out: dict[str, list[list[object]]] = {}
    esp = ESP[0] * SECTOR
    bps = int.from_bytes(data[esp + BPB_BYTS_PER_SEC : esp + BPB_BYTS_PER_SEC + 2], "little")
    rsvd = int.from_bytes(data[esp + BPB_RSVD_SEC_CNT : esp + BPB_RSVD_SEC_CNT + 2], "little")
    fat_at = esp + rsvd * bps
    chain = subprocess.run(["mshowfat", "-i", f"{image}@@{esp}", "::/EFI/BOOT/BOOTX64.EFI"],
                           check=True, capture_output=True, text=True,
                           env={**os.environ, "MTOOLS_SKIP_CHECK": "1"}).stdout
    first = int(chain.rsplit("<", 1)[1].split("-", 1)[0].split(">")[0])
    for name, cluster, value in (("fat-chain-loop", first + 1, first),
                                 ("fat-chain-reserved", first, 0xFF0)):
        fat = bytearray(data[fat_at : fat_at + bps])
        _fat12_set(fat, cluster, value)
        out[name] = _diff(data[fat_at : fat_at + bps], bytes(fat), fat_at)
    root_at, root_len = ROOT[0] * SECTOR, (ROOT[1] - ROOT[0] + 1) * SECTOR
    part = data[root_at : root_at + root_len]
    incompat = int.from_bytes(part[EXT4_S_FEATURE_INCOMPAT : EXT4_S_FEATURE_INCOMPAT + 4],
                              "little")
    with tempfile.TemporaryDirectory() as tmp:
        for name, commands in DEBUGFS_EDITS.items():
            copy = Path(tmp) / f"{name}.ext4"
            copy.write_bytes(part)
            for command in commands:
                run("debugfs", "-w", "-R",
                    command.format(incompat_bit31=hex(incompat | 0x80000000)), copy,
                    env={"E2FSPROGS_FAKE_TIME": str(FIXED_TIME)})
            out[name] = _diff(part, copy.read_bytes(), root_at)
    last = len(data) - SECTOR
    out["gpt-both-headers"] = [[SECTOR + 16, bytes([data[SECTOR + 16] ^ 0xFF]).hex()],
                               [last + 16, bytes([data[last + 16] ^ 0xFF]).hex()]]
    return out


def describe_tree(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = "/" + p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def describe() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        esp, root = trees(Path(tmp))
        return {
            "image": NAME, "size": DISK_SIZE, "disk_guid": DISK_GUID,
            "partitions": {"1": {"first_lba": ESP[0], "last_lba": ESP[1], "guid": ESP_GUID},
                           "2": {"first_lba": ROOT[0], "last_lba": ROOT[1], "guid": ROOT_GUID}},
            "esp": describe_tree(esp), "root": describe_tree(root), "fs_uuid": FS_UUID,
        }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true",
                        help="rebuild in a temporary directory and compare")
    args = parser.parse_args()
    manifest = describe()
    if args.check:
        committed = json.loads((OUT / "MANIFEST.json").read_text())
        with tempfile.TemporaryDirectory() as tmp:
            build(Path(tmp))
            size = (Path(tmp) / NAME).stat().st_size
            fresh = hostile(Path(tmp) / NAME)

        def where(patches: dict[str, list[list[object]]]) -> dict[str, list[object]]:
            return {k: [p[0] for p in v] for k, v in patches.items()}

        hostile_committed = committed.pop("hostile")
        if committed != manifest or size != DISK_SIZE or \
                where(hostile_committed) != where(fresh):
            sys.exit("the disk fixture differs from a rebuild")
        print("ok: the disk fixture matches a rebuild")
        return
    build(OUT)
    if (OUT / NAME).stat().st_size > MAX_FIXTURE:
        sys.exit(f"{NAME} is larger than {MAX_FIXTURE} bytes")
    manifest["hostile"] = hostile(OUT / NAME)
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"wrote {OUT / NAME}")


if __name__ == "__main__":
    main()
