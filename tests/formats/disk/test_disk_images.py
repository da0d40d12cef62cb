"""The disk readers on real images made by sgdisk, sfdisk, mkfs.vfat, mtools, mke2fs -d and
qemu-img (disk_builder.py): every file read through fwtools must equal its source file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from disk_builder import (
    MIB,
    SECTOR,
    GptDisk,
    blank,
    boot_tree,
    esp_tree,
    make_ext,
    make_fat,
    make_gpt_disk,
    need,
    run,
    to_qcow2,
    tree_files,
)

from fwtools.formats.disk import (
    BytesDevice,
    Disk,
    DiskError,
    DiskPathError,
    DiskUnsupportedError,
    open_disk,
)
from fwtools.formats.disk.ext4 import Ext4Filesystem
from fwtools.formats.disk.fat import FatFilesystem


@pytest.fixture(scope="module", params=[32, 16, 12], ids=["fat32", "fat16", "fat12"])
def gpt_disk(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> GptDisk:
    return make_gpt_disk(tmp_path_factory.mktemp(f"gpt{request.param}"), fat_bits=request.param)


def esp_path(rel: str) -> str:
    return "\\" + rel.replace("/", "\\")


def _sgdisk_info(disk: Path, index: int) -> dict[str, str]:
    out = run("sgdisk", "-i", str(index), disk)
    return dict(re.findall(r"^([^:\n]+): (.*)$", out, re.M))


def test_gpt_partitions_match_sgdisk(gpt_disk: GptDisk) -> None:
    with open_disk(gpt_disk.path) as disk:
        table = disk.table
        assert table.scheme == "gpt" and table.source == "primary" and not table.notes
        assert disk.format == "raw"
        assert [p.index for p in disk.partitions] == [1, 2]
        for part in disk.partitions:
            info = _sgdisk_info(gpt_disk.path, part.index)
            assert str(part.unique_guid).upper() == info["Partition unique GUID"]
            assert info["Partition GUID code"].startswith(str(part.type_guid).upper())
            assert part.first_lba == int(info["First sector"].split()[0])
            assert part.last_lba == int(info["Last sector"].split()[0])
            assert info["Partition name"] == f"'{part.name}'"
        esp = disk.esp()
        assert esp is not None and esp.index == 1 and esp.type_name == "EFI System"
        assert disk.partitions[1].type_name == "Linux root (x86-64)"
        assert disk.partition(guid=str(esp.unique_guid).upper()) == esp


def test_esp_every_file_matches(gpt_disk: GptDisk) -> None:
    with open_disk(gpt_disk.path) as disk:
        fs = disk.filesystem(disk.esp())
        assert isinstance(fs, FatFilesystem)
        src = tree_files(gpt_disk.esp_src)
        for rel, data in src.items():
            assert fs.read_file(esp_path(rel)) == data, rel
        walked = {p.lstrip("\\").replace("\\", "/"): e for p, e in fs.walk()}
        assert {p for p, e in walked.items() if not e.is_dir} == set(src)
        dirs = {p.relative_to(gpt_disk.esp_src).as_posix()
                for p in gpt_disk.esp_src.rglob("*") if p.is_dir()}
        assert {p for p, e in walked.items() if e.is_dir} == dirs


@pytest.mark.parametrize("bits", [32, 16, 12])
def test_fat_type_by_cluster_count(bits: int, tmp_path: Path) -> None:
    need("mkfs.vfat", "mmd", "mcopy")
    size = {32: 40 * MIB, 16: 16 * MIB, 12: 2 * MIB}[bits]
    image = blank(tmp_path / "fat.img", size)
    src = tmp_path / "src"
    (src / "EFI/BOOT").mkdir(parents=True)
    (src / "EFI/BOOT/BOOTX64.EFI").write_bytes(b"MZ" * 5000)
    make_fat(image, 0, size, bits, src, 1 if bits == 32 else None)
    with open_disk(image) as disk:
        assert disk.table.scheme == "none"
        fs = disk.filesystem(None)
        assert isinstance(fs, FatFilesystem) and fs.fat_type == bits
        assert fs.volume_label == "ESP"
        assert fs.read_file("/efi/boot/bootx64.efi") == b"MZ" * 5000


def test_esp_lookup_as_uefi_does(gpt_disk: GptDisk) -> None:
    with open_disk(gpt_disk.path) as disk:
        fs = disk.filesystem(disk.esp())
        assert isinstance(fs, FatFilesystem)
        boot = (gpt_disk.esp_src / "EFI/BOOT/BOOTX64.EFI").read_bytes()
        for path in ("\\EFI\\BOOT\\BOOTX64.EFI", "\\efi\\boot\\bootx64.efi", "EFI/Boot/BootX64.efi",
                     "\\EFI\\.\\debian\\..\\BOOT\\BOOTX64.EFI"):
            assert fs.read_file(path) == boot, path
        names = {e.name for e in fs.listdir("\\EFI")}
        assert names == {"BOOT", "debian", "Long Directory Name With Spaces", "Linux"}
        long_dir = next(e for e in fs.listdir("\\EFI") if e.name.startswith("Long"))
        assert long_dir.short_name != long_dir.name and "~" in long_dir.short_name
        # the 8.3 alias names the same directory
        assert fs.read_file(f"\\EFI\\{long_dir.short_name}\\A FILE WITH A RATHER LONG NAME.TXT") \
            == b"long names\n"
        assert fs.read_file("\\caf\u00c9 \u00dcBER.txt") == b"unicode name\n"
        assert fs.read_file("\\empty.txt") == b""
        assert fs.exists("\\MIXEDCASE.EFI") and not fs.exists("\\EFI\\BOOT\\nope.efi")
        with pytest.raises(DiskPathError, match=r"no 'nope\.efi'"):
            fs.read_file("\\EFI\\BOOT\\nope.efi")
        with pytest.raises(DiskPathError, match="not a directory"):
            fs.listdir("\\MixedCase.Efi")
        with pytest.raises(DiskPathError, match="is a directory"):
            fs.read_file("\\EFI")


def _ext_checks(fs: Ext4Filesystem, src: Path) -> None:
    files = tree_files(src)
    for rel, data in files.items():
        assert fs.read_file("/" + rel) == data, rel
    walked = dict(fs.walk())
    assert walked.pop("/lost+found").is_dir
    expected = {"/" + p.relative_to(src).as_posix() for p in src.rglob("*")}
    assert set(walked) == expected
    for p in src.rglob("*"):
        if p.is_symlink():
            rel = "/" + p.relative_to(src).as_posix()
            assert walked[rel].is_symlink
            assert fs.readlink(rel) == os.readlink(p), rel
    kernel = files["boot/vmlinuz-6.1.0-18-amd64"]
    assert fs.read_file("/vmlinuz") == kernel
    assert fs.read_file("/boot/vmlinuz") == kernel
    assert fs.read_file("/bootdir/vmlinuz") == kernel
    assert fs.read_file("/boot/grub.cfg-abs") == files["boot/grub/grub.cfg"]
    assert fs.read_file("/etc/grub-rel") == files["boot/grub/grub.cfg"]
    assert fs.read_file("/boot/slow-link") == files["boot/grub/grub.cfg"]
    assert len(fs.listdir("/boot/grub/locale")) == 400
    with pytest.raises(DiskPathError, match="more than 40 symlinks"):
        fs.read_file("/loop-a")
    with pytest.raises(DiskPathError, match="no 'nothere'"):
        fs.read_file("/boot/nothere")
    with pytest.raises(DiskPathError, match="not a directory"):
        fs.read_file("/etc/hostname/x")
    with pytest.raises(DiskPathError, match="not a regular file"):
        fs.read_file("/boot")


def test_ext4_every_file_matches(gpt_disk: GptDisk) -> None:
    with open_disk(gpt_disk.path) as disk:
        fs = disk.filesystem(disk.partition(index=gpt_disk.root_index))
        assert isinstance(fs, Ext4Filesystem)
        assert fs.label == "root" and fs.desc_size == 64
        _ext_checks(fs, gpt_disk.root_src)
        # the big directory was turned into a hash tree by e2fsck -D
        assert fs.resolve("/boot/grub/locale").flags & 0x1000


def _depth(fs: Ext4Filesystem, path: str) -> int:
    return int.from_bytes(fs.resolve(path).i_block[6:8], "little")


# name -> (fs type, block size, mke2fs options)
EXT_VARIANTS: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "ext4-1k": ("ext4", 1024, ()),
    "ext4-32bit-128inode": ("ext4", 4096, ("-O", "^64bit,^metadata_csum", "-I", "128")),
    "ext3": ("ext3", 4096, ()),
    "ext2-1k": ("ext2", 1024, ()),
}


@pytest.mark.parametrize("variant", sorted(EXT_VARIANTS))
def test_ext_variants(variant: str, tmp_path: Path) -> None:
    fs_type, block_size, options = EXT_VARIANTS[variant]
    src = boot_tree(tmp_path / "root")
    if variant == "ext2-1k":
        # a sparse file reaching the triple-indirect block (12 + 256 + 65536 blocks of 1 KiB)
        with open(src / "boot/far.bin", "wb") as f:
            f.seek(70 * MIB)
            f.write(b"far away")
    size = 16 * MIB
    image = blank(tmp_path / "fs.img", size)
    make_ext(image, 0, size, src, *options, fs_type=fs_type, block_size=block_size)
    with open_disk(image) as disk:
        fs = disk.filesystem(None)
        assert isinstance(fs, Ext4Filesystem) and fs.block_size == block_size
        _ext_checks(fs, src)
        if variant == "ext4-1k":
            assert _depth(fs, "/boot/sparse.bin") == 2
        if variant == "ext4-32bit-128inode":
            assert fs.desc_size == 32 and fs.inode_size == 128
        if variant.startswith(("ext2", "ext3")):
            assert not fs.resolve("/boot/sparse.bin").flags & 0x80000  # block map
        if variant == "ext2-1k":
            far = fs.read_file("/boot/far.bin")
            assert len(far) == 70 * MIB + 8 and far[-8:] == b"far away"
            assert not any(far[: 70 * MIB : 4096])


def test_ext4_inline_data_refused_clearly(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "boot").mkdir(parents=True)
    (src / "boot/small.cfg").write_bytes(b"tiny\n")
    image = blank(tmp_path / "fs.img", 8 * MIB)
    make_ext(image, 0, 8 * MIB, src, "-O", "inline_data", htree=False)
    with open_disk(image) as disk:
        fs = disk.filesystem(None)
        # small directories and files keep their data in the inode: refused, naming it
        with pytest.raises(DiskUnsupportedError, match=r"inode \d+ keeps its data inline") as err:
            fs.read_file("/boot/small.cfg")
        assert err.value.structure == "ext4 inode.i_flags" and err.value.offset


class CountingDevice:
    """A block device that counts the bytes read through it."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.bytes_read = 0

    @property
    def size(self) -> int:
        return self.inner.size  # type: ignore[attr-defined, no-any-return]

    def read(self, offset: int, size: int) -> bytes:
        self.bytes_read += size
        return self.inner.read(offset, size)  # type: ignore[attr-defined, no-any-return]

    def close(self) -> None:
        self.inner.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("options", [(), ("-c",)], ids=["qcow2", "qcow2-compressed"])
def test_qcow2_reads_the_same_files(gpt_disk: GptDisk, options: tuple[str, ...]) -> None:
    qcow = to_qcow2(gpt_disk.path, *options)
    try:
        with open_disk(qcow) as disk:
            assert disk.format == "qcow2" and disk.size == gpt_disk.path.stat().st_size
            esp = disk.filesystem(disk.esp())
            for rel, data in tree_files(gpt_disk.esp_src).items():
                assert esp.read_file(esp_path(rel)) == data, rel
            root = disk.filesystem(disk.partition(index=2))
            assert isinstance(root, Ext4Filesystem)
            _ext_checks(root, gpt_disk.root_src)
    finally:
        qcow.unlink()


def test_reading_costs_the_files_not_the_disk(tmp_path: Path) -> None:
    disk_info = make_gpt_disk(tmp_path, fat_bits=32)
    need("qemu-img")
    qcow = to_qcow2(disk_info.path)
    run("qemu-img", "resize", qcow, "2G")
    with open_disk(qcow) as disk:
        counting = CountingDevice(disk.device)
        big = Disk(counting)
        assert big.size == 2 << 30
        fs = big.filesystem(big.esp())
        data = fs.read_file("\\EFI\\BOOT\\BOOTX64.EFI")
        grub = big.filesystem(big.partition(index=2)).read_file("/boot/grub/grub.cfg")
        assert data and grub
        # the two files, their directories, the FAT sectors and tables: not the 2 GiB
        assert counting.bytes_read < len(data) + 2 * MIB


def test_mbr_disk_with_logical_partitions(tmp_path: Path) -> None:
    need("sfdisk")
    disk = blank(tmp_path / "mbr.img", 48 * MIB)
    run("sfdisk", "-q", disk, stdin="label: dos\n"
        "start=2048, size=32768, type=ef, bootable\n"
        "start=36864, size=61440, type=5\n"
        "start=38912, size=20480, type=83\n"
        "start=61440, size=20480, type=83\n")
    esp_src = esp_tree(tmp_path / "esp", big=50 << 10, many=5)
    make_fat(disk, 2048 * SECTOR, 32768 * SECTOR, 16, esp_src)
    root_src = tmp_path / "root"
    (root_src / "boot").mkdir(parents=True)
    (root_src / "boot/vmlinuz").write_bytes(os.urandom(100000))
    make_ext(disk, 61440 * SECTOR, 20480 * SECTOR, root_src, fs_type="ext2", block_size=1024,
             htree=False)
    info = {p["node"].rsplit("img", 1)[1]: p for p in __import__("json").loads(
        run("sfdisk", "--json", disk))["partitiontable"]["partitions"]}
    with open_disk(disk) as d:
        assert d.table.scheme == "mbr"
        parts = {p.index: p for p in d.partitions}
        assert sorted(parts) == [1, 5, 6]
        for index, p in parts.items():
            assert p.first_lba == info[str(index)]["start"]
            assert p.size == info[str(index)]["size"] * SECTOR
        esp = d.esp()
        assert esp is not None and esp.index == 1 and esp.bootable
        fs = d.filesystem(esp)
        for rel, data in tree_files(esp_src).items():
            assert fs.read_file(esp_path(rel)) == data
        assert d.filesystem(parts[6]).read_file("/boot/vmlinuz") == \
            (root_src / "boot/vmlinuz").read_bytes()
        with pytest.raises(DiskUnsupportedError, match="no FAT or ext"):
            d.filesystem(parts[5])  # never formatted


@pytest.fixture(scope="module")
def fat12_bytes(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, GptDisk]:
    d = make_gpt_disk(tmp_path_factory.mktemp("gptbackup"), fat_bits=12)
    return d.path.read_bytes(), d


def test_gpt_backup_used_when_primary_is_bad(fat12_bytes: tuple[bytes, GptDisk]) -> None:
    data, _ = fat12_bytes
    good = Disk(BytesDevice(data)).table
    for where in (512 + 20, 1024 + 5):  # header field (CRC mismatch), entry array (array CRC)
        bad = bytearray(data)
        bad[where] ^= 0xFF
        table = Disk(BytesDevice(bytes(bad))).table
        assert table.source == "backup" and table.partitions == good.partitions
        assert "primary GPT header unusable" in table.notes[0]
    both = bytearray(data)
    both[512 + 20] ^= 0xFF
    both[len(data) - 512 + 20] ^= 0xFF
    with pytest.raises(DiskError) as err:
        Disk(BytesDevice(bytes(both))).table  # noqa: B018
    assert err.value.offset == 512 + 16 and "primary GPT header" in str(err.value)


def test_truncated_disk(fat12_bytes: tuple[bytes, GptDisk]) -> None:
    data, _ = fat12_bytes
    cut = data[: 2 * MIB]  # the ext4 partition and the backup GPT are gone
    # as Linux (is_gpt_valid) does: a header whose usable LBAs pass the disk's end is invalid
    with pytest.raises(DiskError, match="not inside the disk") as err:
        Disk(BytesDevice(cut)).table  # noqa: B018
    assert err.value.offset == 512 + 48


def test_cli_free_of_tracebacks_on_non_disk(tmp_path: Path) -> None:
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(DiskError, match="smaller than one sector"), open_disk(junk) as disk:
        disk.table  # noqa: B018
