"""Real disk images for the disk reader tests, made with Debian's tools in a temporary directory.

sgdisk (gdisk) and sfdisk (fdisk) partition, mkfs.vfat (dosfstools) formats FAT at a sector
offset inside the image, mtools' mmd/mcopy fill it, mke2fs (e2fsprogs) builds ext2/3/4 from a
directory with ``-d`` at a byte offset (``-E offset=``), e2fsck -D turns big directories into
hash trees, and qemu-img converts to qcow2. The tools are the oracle: every file the tests
read back through fwtools is compared with the source tree these tools were given.

A test that needs a missing tool skips, or fails under FWTOOLS_REQUIRE_CORPUS=1
(corpus.params.need_tool).
"""

from __future__ import annotations

import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

from corpus.params import need_tool

MIB = 1 << 20
SECTOR = 512


def run(*args: str | Path, stdin: str | None = None) -> str:
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True,
                          input=stdin).stdout


def need(*tools: str) -> None:
    for tool in tools:
        need_tool(tool)


def blank(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def esp_tree(root: Path, *, big: int = 300 << 10, many: int = 40) -> Path:
    """An ESP as Debian lays it out, plus long and mixed-case names and a full directory."""
    rng = random.Random(1)
    _write(root / "EFI/BOOT/BOOTX64.EFI", b"MZ" + rng.randbytes(big))
    _write(root / "EFI/BOOT/fbx64.efi", b"MZ" + rng.randbytes(20 << 10))
    _write(root / "EFI/debian/shimx64.efi", b"MZ" + rng.randbytes(big // 2))
    _write(root / "EFI/debian/grubx64.efi", b"MZ" + rng.randbytes(big // 3))
    _write(root / "EFI/debian/mmx64.efi", b"MZ" + rng.randbytes(7000))
    _write(root / "EFI/debian/BOOTX64.CSV", "shimx64.efi,debian,,This is the boot entry for "
           "debian\n".encode("utf-16-le"))
    _write(root / "EFI/debian/grub.cfg",
           b"search.fs_uuid 1234-abcd root\nset prefix=($root)'/boot/grub'\n"
           b"configfile $prefix/grub.cfg\n")
    _write(root / "EFI/Long Directory Name With Spaces/a file with a rather long name.txt",
           b"long names\n")
    _write(root / "EFI/Linux/debian-6.1.0-18-amd64.efi", rng.randbytes(5000))
    _write(root / "MixedCase.Efi", b"mixed\n")
    _write(root / "empty.txt", b"")
    _write(root / "caf\u00e9 \u00fcber.txt", b"unicode name\n")
    for i in range(many):
        _write(root / f"many/file-number-{i:04d}-with-a-long-name.bin", rng.randbytes(i * 37))
    return root


def boot_tree(root: Path) -> Path:
    """/boot of a Debian system, with symlinks of every kind and a big directory."""
    rng = random.Random(2)
    _write(root / "boot/vmlinuz-6.1.0-18-amd64", rng.randbytes(1200 << 10))
    _write(root / "boot/initrd.img-6.1.0-18-amd64", rng.randbytes(700 << 10))
    _write(root / "boot/config-6.1.0-18-amd64", b"CONFIG_EFI_STUB=y\n" * 500)
    _write(root / "boot/grub/grub.cfg",
           b"set default=0\nmenuentry 'Debian GNU/Linux' {\n"
           b"\tlinux /boot/vmlinuz-6.1.0-18-amd64 root=UUID=1234 ro quiet\n"
           b"\tinitrd /boot/initrd.img-6.1.0-18-amd64\n}\n")
    _write(root / "boot/grub/x86_64-efi/normal.mod", rng.randbytes(9000))
    _write(root / "etc/hostname", b"debian\n")
    # A sparse file: data blocks between holes give an extent tree deeper than the inode's
    # four root slots (mke2fs -d keeps zero blocks as holes).
    chunks = [rng.randbytes(4096) if i % 2 == 0 else bytes(4096) for i in range(1200)]
    _write(root / "boot/sparse.bin", b"".join(chunks))
    for i in range(400):
        _write(root / f"boot/grub/locale/entry-{i:04d}-with-a-long-name.mo", b"%d\n" % i)
    os.symlink("boot/vmlinuz-6.1.0-18-amd64", root / "vmlinuz")
    os.symlink("boot/initrd.img-6.1.0-18-amd64", root / "initrd.img")
    os.symlink("vmlinuz-6.1.0-18-amd64", root / "boot/vmlinuz")
    os.symlink("/boot/grub/grub.cfg", root / "boot/grub.cfg-abs")
    os.symlink("../boot/./grub/../grub/grub.cfg", root / "etc/grub-rel")
    long_target = "/boot/grub/" + "x" * 70 + "/../grub.cfg"
    (root / "boot/grub" / ("x" * 70)).mkdir()
    os.symlink(long_target, root / "boot/slow-link")
    os.symlink("loop-b", root / "loop-a")
    os.symlink("loop-a", root / "loop-b")
    os.symlink("/boot", root / "bootdir")
    return root


def tree_files(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every regular file (not symlink) under ``root``."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def fat_fill(image: Path, offset: int, src: Path) -> None:
    """Copy ``src`` into the FAT filesystem at byte ``offset`` of ``image`` with mtools."""
    target = f"{image}@@{offset}"
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": ""}
    for d in sorted(p for p in src.rglob("*") if p.is_dir()):
        subprocess.run(["mmd", "-i", target, "::/" + d.relative_to(src).as_posix()],
                       check=True, capture_output=True, env=env)
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        subprocess.run(["mcopy", "-i", target, str(f), "::/" + f.relative_to(src).as_posix()],
                       check=True, capture_output=True, env=env)


@dataclass(frozen=True)
class GptDisk:
    path: Path
    esp_src: Path
    root_src: Path
    esp_index: int
    root_index: int


def make_fat(image: Path, offset: int, size: int, fat_bits: int, src: Path,
             sectors_per_cluster: int | None = None) -> None:
    need("mkfs.vfat", "mmd", "mcopy")
    args = ["mkfs.vfat", "-F", str(fat_bits), "--offset", str(offset // SECTOR), "-n", "ESP"]
    if sectors_per_cluster:
        args += ["-s", str(sectors_per_cluster)]
    run(*args, image, str(size // 1024))
    fat_fill(image, offset, src)


def make_ext(image: Path, offset: int, size: int, src: Path, *options: str,
             fs_type: str = "ext4", block_size: int = 4096, htree: bool = True) -> None:
    need("mke2fs", "e2fsck")
    run("mke2fs", "-q", "-F", "-t", fs_type, "-b", str(block_size), "-E",
        f"offset={offset}", "-d", src, "-L", "root", *options, image, f"{size // 1024}k")
    if htree:
        # e2fsck cannot take an offset: check a copy of the partition and put it back.
        part = image.with_suffix(".part")
        with open(image, "rb") as f, open(part, "wb") as out:
            f.seek(offset)
            out.write(f.read(size))
        subprocess.run(["e2fsck", "-fyD", str(part)], capture_output=True, check=False)
        with open(image, "r+b") as f, open(part, "rb") as inp:
            f.seek(offset)
            f.write(inp.read())
        part.unlink()


def make_gpt_disk(tmp: Path, *, fat_bits: int = 32, ext_options: tuple[str, ...] = (),
                  fs_type: str = "ext4", block_size: int = 4096) -> GptDisk:
    """A GPT disk: partition 1 the ESP (FAT``fat_bits``), 2 a Linux filesystem."""
    need("sgdisk")
    esp_size = {32: 40 * MIB, 16: 16 * MIB, 12: 2 * MIB}[fat_bits]
    root_size = 12 * MIB
    esp_start = MIB
    root_start = esp_start + esp_size
    disk = blank(tmp / "disk.img", root_start + root_size + MIB)
    run("sgdisk", "-n", f"1:{esp_start // SECTOR}:+{esp_size // 1024}K", "-t", "1:ef00",
        "-c", "1:EFI system partition", "-n", f"2:{root_start // SECTOR}:+{root_size // 1024}K",
        "-t", "2:8304", "-c", "2:root", disk)
    esp_src = esp_tree(tmp / "esp", big=(300 << 10) if fat_bits != 12 else (60 << 10),
                       many=40 if fat_bits != 12 else 12)
    make_fat(disk, esp_start, esp_size, fat_bits, esp_src, 1 if fat_bits == 32 else None)
    root_src = boot_tree(tmp / "root")
    make_ext(disk, root_start, root_size, root_src, *ext_options, fs_type=fs_type,
             block_size=block_size)
    return GptDisk(disk, esp_src, root_src, 1, 2)


def to_qcow2(raw: Path, *options: str) -> Path:
    need("qemu-img")
    out = raw.with_suffix(".qcow2")
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", *options, raw, out)
    return out
