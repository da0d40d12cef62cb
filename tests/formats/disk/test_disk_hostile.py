"""The committed disk fixture (testdata/make_disk_fixtures.py), read without any tool, and
hostile edits of it: each must give a DiskError naming the structure and the absolute offset,
within bounded time and memory, never a traceback or a hang."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest

from fwtools.errors import FwError
from fwtools.formats.disk import (
    BytesDevice,
    Disk,
    DiskError,
    DiskPathError,
    DiskUnsupportedError,
    Region,
    open_disk,
)
from fwtools.formats.disk import layout as L
from fwtools.formats.disk.ext4 import Ext4Filesystem
from fwtools.formats.disk.fat import FatFilesystem, lfn_checksum

FIXTURES = Path(__file__).resolve().parents[3] / "testdata" / "disk"
IMAGE = FIXTURES / "gpt-fat12-ext4.img"
MANIFEST = json.loads((FIXTURES / "MANIFEST.json").read_text())
ESP_START = MANIFEST["partitions"]["1"]["first_lba"] * 512
ROOT_START = MANIFEST["partitions"]["2"]["first_lba"] * 512


def image() -> bytearray:
    return bytearray(IMAGE.read_bytes())


def hostile(name: str) -> bytes:
    """The committed image with the patches testdata/make_disk_fixtures.py recorded."""
    data = image()
    for offset, hexbytes in MANIFEST["hostile"][name]:
        patch = bytes.fromhex(hexbytes)
        data[offset : offset + len(patch)] = patch
    return bytes(data)


def disk_of(data: bytes | bytearray) -> Disk:
    return Disk(BytesDevice(bytes(data)))


def esp(data: bytes | bytearray) -> FatFilesystem:
    d = disk_of(data)
    fs = d.filesystem(d.esp())
    assert isinstance(fs, FatFilesystem)
    return fs


def ext(data: bytes | bytearray) -> Ext4Filesystem:
    d = disk_of(data)
    fs = d.filesystem(d.partition(index=2))
    assert isinstance(fs, Ext4Filesystem)
    return fs


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_fixture_reads_as_the_manifest_says() -> None:
    with open_disk(IMAGE) as d:
        assert str(d.table.disk_guid) == MANIFEST["disk_guid"]
        for index, p in MANIFEST["partitions"].items():
            part = d.partition(index=int(index))
            assert (part.first_lba, part.last_lba, str(part.unique_guid)) == (
                p["first_lba"], p["last_lba"], p["guid"])
        fat = d.filesystem(d.esp())
        for path, digest in MANIFEST["esp"].items():
            assert sha(fat.read_file(path)) == digest, path
        root = d.filesystem(d.partition(index=2))
        assert isinstance(root, Ext4Filesystem) and str(root.uuid) == MANIFEST["fs_uuid"]
        for path, value in MANIFEST["root"].items():
            if value.startswith("-> "):
                assert root.readlink(path) == value[3:], path
            else:
                assert sha(root.read_file(path)) == value, path
        assert root.read_file("/vmlinuz") == root.read_file("/boot/vmlinuz-6.1.0-18-amd64")


def test_lfn_checksum_spec_example() -> None:
    # Microsoft FAT spec §7.2: the checksum runs over the 11 name bytes as stored.
    name = b"BOOTX64 EFI"
    s = 0
    for b in name:
        s = ((0x80 if s & 1 else 0) + (s >> 1) + b) & 0xFF
    assert lfn_checksum(name) == s


def _fat_entry_pos(fs: FatFilesystem, cluster: int) -> int:
    assert fs.fat_type == 12
    fat_start: int = fs._fat_start
    return fs.region.start + fat_start + cluster + cluster // 2


def _set_fat12(data: bytearray, pos: int, cluster: int, value: int) -> None:
    word = struct.unpack_from("<H", data, pos)[0]
    word = (word & 0x000F) | (value << 4) if cluster & 1 else (word & 0xF000) | value
    struct.pack_into("<H", data, pos, word)


def test_fat_chain_loop() -> None:
    data = image()
    fs = esp(data)
    entry = fs.lookup("\\EFI\\BOOT\\BOOTX64.EFI")
    assert entry is not None and entry.size > 2 * fs.cluster_size
    second = fs.next_cluster(entry.first_cluster)
    assert second is not None
    _set_fat12(data, _fat_entry_pos(fs, second), second, entry.first_cluster)
    with pytest.raises(DiskError, match="loops back") as err:
        esp(data).read_file("\\EFI\\BOOT\\BOOTX64.EFI")
    assert err.value.offset is not None and err.value.offset >= ESP_START


def test_fat_chain_out_of_range_and_short() -> None:
    data = image()
    fs = esp(data)
    entry = fs.lookup("\\EFI\\BOOT\\BOOTX64.EFI")
    assert entry is not None
    pos = _fat_entry_pos(fs, entry.first_cluster)
    _set_fat12(data, pos, entry.first_cluster, 0xF00)
    with pytest.raises(DiskError, match="not a data cluster") as err:
        esp(data).read_file("\\EFI\\BOOT\\BOOTX64.EFI")
    assert err.value.offset == pos and err.value.structure == "FAT entry"
    _set_fat12(data, pos, entry.first_cluster, 0xFFF)  # end of chain after one cluster
    with pytest.raises(DiskError, match="ends after 1 clusters"):
        esp(data).read_file("\\EFI\\BOOT\\BOOTX64.EFI")


def test_fat_directory_loop() -> None:
    data = image()
    fs = esp(data)
    efi = fs.lookup("\\EFI")
    assert efi is not None and efi.is_dir
    _set_fat12(data, _fat_entry_pos(fs, efi.first_cluster), efi.first_cluster,
               efi.first_cluster)
    looped = esp(data)
    # the directory ends (a 0x00 entry) in its first cluster, so listing it stops there, as
    # firmware does; walking the chain finds the loop
    assert {e.name for e in looped.listdir("\\EFI")} == {"BOOT", "debian",
                                                           "Long Directory Name"}
    with pytest.raises(DiskError, match="loops back"):
        list(looped.chain(efi.first_cluster))


def test_fat_bad_bpb() -> None:
    data = image()
    struct.pack_into("<H", data, ESP_START + L.FAT_BPB.offset("BPB_BytsPerSec"), 3)
    d = disk_of(data)
    with pytest.raises(DiskUnsupportedError, match="no FAT or ext"):
        d.filesystem(d.esp())
    with pytest.raises(DiskError, match="BPB_BytsPerSec 3") as err:
        FatFilesystem(d.region(d.esp()))
    assert err.value.offset == ESP_START + 11
    data = image()
    struct.pack_into("<H", data, ESP_START + L.FAT_BPB.offset("BPB_TotSec16"), 0xFFFF)
    with pytest.raises(DiskError, match="larger than its partition"):
        esp(data)


def test_fat_lfn_with_wrong_checksum_falls_back_to_the_short_name() -> None:
    data = image()
    fs = esp(data)
    entry = fs.lookup("\\EFI\\Long Directory Name")
    assert entry is not None
    lfn_slot = entry.offset - L.FAT_DIRENT_SIZE
    data[lfn_slot + L.FAT_LFN.offset("LDIR_Chksum")] ^= 0xFF
    names = {e.name for e in esp(data).listdir("\\EFI")}
    assert entry.short_name in names and "Long Directory Name" not in names


def test_ext4_superblock_checks() -> None:
    sb = ROOT_START + L.EXT4_SUPERBLOCK_OFFSET
    data = image()
    struct.pack_into("<I", data, sb + L.EXT4_SUPERBLOCK.offset("s_feature_incompat"),
                     0x80000000 | L.INCOMPAT_FILETYPE | L.INCOMPAT_EXTENTS)
    with pytest.raises(DiskUnsupportedError, match="unknown incompatible") as err:
        ext(data)
    assert err.value.offset == sb + 0x60
    data = image()
    struct.pack_into("<I", data, sb + L.EXT4_SUPERBLOCK.offset("s_feature_incompat"),
                     L.INCOMPAT_META_BG | L.INCOMPAT_FILETYPE | L.INCOMPAT_EXTENTS)
    with pytest.raises(DiskUnsupportedError, match="meta_bg"):
        ext(data)
    data = image()
    struct.pack_into("<I", data, sb + L.EXT4_SUPERBLOCK.offset("s_log_block_size"), 9)
    with pytest.raises(DiskError, match="s_log_block_size 9"):
        ext(data)
    data = image()
    struct.pack_into("<I", data, sb + L.EXT4_SUPERBLOCK.offset("s_blocks_count_lo"), 1 << 30)
    with pytest.raises(DiskError, match="do not fit in the partition"):
        ext(data)


def test_ext4_extent_tree_checks() -> None:
    data = image()
    fs = ext(data)
    inode = fs.resolve("/boot/sparse.bin")
    iblock = inode.offset + L.EXT4_INODE.offset("i_block")
    hdr = L.EXT4_EXTENT_HEADER.unpack_dict(inode.i_block)
    assert hdr["eh_depth"] == 1
    idx0 = iblock + L.EXT4_EXTENT_HEADER.size
    # the child is a block holding no extent node (the group descriptors)
    bad = bytearray(data)
    struct.pack_into("<I", bad, idx0 + 4, 2)
    with pytest.raises(DiskError, match="magic") as err:
        ext(bad).read_file("/boot/sparse.bin")
    assert err.value.offset == ROOT_START + 2048
    bad = bytearray(data)
    struct.pack_into("<I", bad, idx0 + 4, 1 << 20)
    with pytest.raises(DiskError, match="outside the filesystem") as err:
        ext(bad).read_file("/boot/sparse.bin")
    assert err.value.offset == idx0
    # the leaf claims depth 1 under a depth-1 root (a cycle would have to do this)
    leaf = struct.unpack_from("<I", data, idx0 + 4)[0]
    bad = bytearray(data)
    struct.pack_into("<H", bad, ROOT_START + leaf * 1024 + 6, 1)
    with pytest.raises(DiskError, match="depth 1 \\(expected 0\\)"):
        ext(bad).read_file("/boot/sparse.bin")
    # the root's magic
    bad = bytearray(data)
    bad[iblock] ^= 0xFF
    with pytest.raises(DiskError, match="magic") as err:
        ext(bad).read_file("/boot/sparse.bin")
    assert err.value.offset == iblock


def test_ext4_huge_claims_are_refused_before_allocating() -> None:
    data = image()
    fs = ext(data)
    inode = fs.resolve("/boot/vmlinuz-6.1.0-18-amd64")
    struct.pack_into("<I", data, inode.offset + L.EXT4_INODE.offset("i_size_high"), 0x100)
    with pytest.raises(DiskError, match="claims 1099511658496 bytes") as err:
        ext(data).read_file("/boot/vmlinuz-6.1.0-18-amd64")
    assert err.value.offset == inode.offset
    root = fs.resolve("/boot")
    data = image()
    struct.pack_into("<I", data, root.offset + L.EXT4_INODE.offset("i_size_lo"), 1 << 30)
    with pytest.raises(DiskError, match="claims"):
        ext(data).listdir("/boot")


def test_ext4_directory_entry_checks() -> None:
    data = image()
    fs = ext(data)
    boot = fs.resolve("/boot")
    entries = fs.read_dir_inode(boot)
    first_at = entries[0][2]
    struct.pack_into("<H", data, first_at + 4, 2)  # rec_len 2
    with pytest.raises(DiskError, match="rec_len 2") as err:
        ext(data).listdir("/boot")
    assert err.value.offset == first_at


def test_missing_and_wrong_paths() -> None:
    d = disk_of(image())
    with pytest.raises(DiskPathError):
        d.partition(index=9)
    fs = d.filesystem(d.partition(index=2))
    with pytest.raises(DiskPathError, match="longer than 4096"):
        fs.read_file("/" + "a/" * 3000)


def test_region_bounds() -> None:
    dev = BytesDevice(bytes(4096))
    with pytest.raises(DiskError, match="beyond the disk"):
        Region(dev, 1024, 4096)
    region = Region(dev, 1024, 1024)
    with pytest.raises(DiskError, match="beyond the end of the partition") as err:
        region.read(1000, 100, "thing")
    assert err.value.offset == 2024 and err.value.structure == "thing"


@pytest.mark.parametrize("cut", [0, 100, 511, 1024, 40000, 300000])
def test_truncations_raise_fw_errors(cut: int) -> None:
    data = IMAGE.read_bytes()[:cut]
    d = disk_of(data)
    try:
        for part in d.partitions:
            fs = d.filesystem(part)
            for _path, _entry in fs.walk():
                pass
    except FwError as exc:
        assert "\n" not in str(exc)


def _fat_loop(data: bytes) -> None:
    with pytest.raises(DiskError, match="loops back") as err:
        esp(data).read_file("\\EFI\\BOOT\\BOOTX64.EFI")
    assert err.value.structure == "FAT chain"


def _fat_reserved(data: bytes) -> None:
    with pytest.raises(DiskError, match="chains to 0xff0, which is not a data cluster") as err:
        esp(data).read_file("\\EFI\\BOOT\\BOOTX64.EFI")
    assert err.value.offset == MANIFEST["hostile"]["fat-chain-reserved"][0][0]


def _extent_child(data: bytes) -> None:
    with pytest.raises(DiskError, match="magic 0x") as err:
        ext(data).read_file("/boot/sparse.bin")
    assert err.value.offset == ROOT_START + 2 * 1024  # block 2 of a 1 KiB-block filesystem


def _huge_size(data: bytes) -> None:
    with pytest.raises(DiskError, match="claims 1099511627776 bytes") as err:
        ext(data).read_file("/boot/vmlinuz-6.1.0-18-amd64")
    assert err.value.structure == "ext4 inode.i_size"


def _unknown_feature(data: bytes) -> None:
    with pytest.raises(DiskUnsupportedError, match="unknown incompatible features 0x80000000") \
            as err:
        ext(data)
    assert err.value.offset == ROOT_START + 1024 + 0x60


def _symlink_loop(data: bytes) -> None:
    fs = ext(data)
    assert fs.readlink("/loop-a") == "/loop-b"
    with pytest.raises(DiskPathError, match="more than 40 symlinks"):
        fs.read_file("/loop-a")


def _dir_cycle(data: bytes) -> None:
    fs = ext(data)
    paths = [p for p, _ in fs.walk()]
    assert "/boot/grub/up" in paths and len(paths) == len(set(paths))
    assert not any(p.startswith("/boot/grub/up/") for p in paths)  # visited once
    assert fs.read_file("/boot/grub/up/grub/up/grub/grub.cfg") == fs.read_file(
        "/boot/grub/grub.cfg")


def _gpt_both(data: bytes) -> None:
    with pytest.raises(DiskError, match="primary GPT header: header CRC32") as err:
        disk_of(data).table  # noqa: B018
    assert err.value.offset == 512 + 16


HOSTILE = {
    "fat-chain-loop": _fat_loop,
    "fat-chain-reserved": _fat_reserved,
    "ext4-extent-child": _extent_child,
    "ext4-huge-size": _huge_size,
    "ext4-unknown-feature": _unknown_feature,
    "ext4-symlink-loop": _symlink_loop,
    "ext4-dir-cycle": _dir_cycle,
    "gpt-both-headers": _gpt_both,
}


def test_every_hostile_fixture_has_a_test() -> None:
    assert set(MANIFEST["hostile"]) == set(HOSTILE)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_fixture(name: str) -> None:
    data = hostile(name)
    HOSTILE[name](data)
    from fuzz.targets import run

    run("disk", data)  # the fuzz target's contract: returns or raises FwError


def test_gpt_without_protective_mbr_is_read_and_noted() -> None:
    data = image()
    data[510:512] = b"\x00\x00"  # no MBR signature
    table = disk_of(data).table
    assert table.scheme == "gpt" and [p.index for p in table.partitions] == [1, 2]
    assert any("no protective MBR" in n for n in table.notes)


def test_walk_of_a_file_is_a_path_error() -> None:
    d = disk_of(image())
    with pytest.raises(DiskPathError, match="not a directory"):
        list(d.filesystem(d.esp()).walk("\\EFI\\BOOT\\BOOTX64.EFI"))
    with pytest.raises(DiskPathError, match="not a directory"):
        list(d.filesystem(d.partition(index=2)).walk("/vmlinuz"))
