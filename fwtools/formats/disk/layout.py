"""On-disk layouts of GPT, FAT and ext4, each structure declared once.

References (the parsers take offsets, sizes and constants from here, never spell them out):

- GPT: UEFI Specification 2.10, chapter 5 "GUID Partition Table (GPT) Disk Layout":
  §5.3.2 Table 5.21 (GPT Header), §5.3.3 Table 5.22 (GPT Partition Entry), Table 5.23
  (partition type GUIDs); edk2 ``MdePkg/Include/Uefi/UefiGpt.h``. The MBR sector itself is
  :mod:`fwtools.formats.mbr.layout`.
- FAT: Microsoft "FAT: General Overview of On-Disk Format" v1.03 (the FAT32 File System
  Specification shipped with the EFI spec): §3 boot sector and BPB, §4 FAT type
  determination and entries, §6 directory entries, §7 long names; edk2
  ``FatPkg/EnhancedFatDxe/FatFileSystem.h``.
- ext4: Linux ``Documentation/filesystems/ext4/`` (super.rst, group_descr.rst, inodes.rst,
  ifork.rst, directory.rst, blockmap.rst) and ``fs/ext4/ext4.h``, ``ext4_extents.h``.

Every multi-byte field of the three formats is little-endian.
"""

from __future__ import annotations

import uuid
from typing import Final

from fwtools._base.layout import Layout

# =============================================================================== GPT ======

GPT_SIGNATURE: Final = b"EFI PART"
GPT_REVISION_1_0: Final = 0x00010000
# Table 5.21; header_size is at least these 92 bytes and at most a logical block.
GPT_HEADER: Final = Layout(
    "GPT header",
    (
        ("signature", "8s"),  # "EFI PART"
        ("revision", "I"),  # 0x00010000
        ("header_size", "I"),  # 92 <= header_size <= logical block size
        ("header_crc32", "I"),  # CRC32 of header_size bytes with this field zeroed
        ("", "4x"),  # Reserved, must be zero
        ("my_lba", "Q"),  # the LBA of this header (1 for the primary)
        ("alternate_lba", "Q"),  # the other header (the last LBA for the primary)
        ("first_usable_lba", "Q"),
        ("last_usable_lba", "Q"),
        ("disk_guid", "16s"),
        ("partition_entry_lba", "Q"),  # start of the entry array
        ("number_of_partition_entries", "I"),
        ("size_of_partition_entry", "I"),  # 128 * 2^n
        ("partition_entry_array_crc32", "I"),  # CRC32 of entries * size bytes
    ),
)
GPT_HEADER_MIN_SIZE: Final = GPT_HEADER.size  # 92
GPT_ENTRY_MIN_SIZE: Final = 128
# Table 5.22.
GPT_ENTRY: Final = Layout(
    "GPT partition entry",
    (
        ("partition_type_guid", "16s"),  # all zero: the entry is unused
        ("unique_partition_guid", "16s"),
        ("starting_lba", "Q"),
        ("ending_lba", "Q"),  # inclusive
        ("attributes", "Q"),  # bit 0 required, 1 no block IO, 2 legacy BIOS bootable
        ("partition_name", "72s"),  # UCS-2, NUL padded (36 characters)
    ),
)
GPT_ATTR_REQUIRED: Final = 1 << 0
GPT_ATTR_NO_BLOCK_IO: Final = 1 << 1
GPT_ATTR_LEGACY_BIOS_BOOTABLE: Final = 1 << 2

ESP_TYPE_GUID: Final = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
# Table 5.23 plus the Discoverable Partitions Specification (uapi-group.org) names the
# Linux tools print; unknown GUIDs stay GUIDs.
GPT_TYPE_NAMES: Final = {
    uuid.UUID("00000000-0000-0000-0000-000000000000"): "unused",
    uuid.UUID("024dee41-33e7-11d3-9d69-0008c781f39f"): "MBR partition scheme",
    ESP_TYPE_GUID: "EFI System",
    uuid.UUID("21686148-6449-6e6f-744e-656564454649"): "BIOS boot",
    uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4"): "Linux filesystem",
    uuid.UUID("4f68bce3-e8cd-4db1-96e7-fbcaf984b709"): "Linux root (x86-64)",
    uuid.UUID("b921b045-1df0-41c3-af44-4c6f280d3fae"): "Linux root (ARM-64)",
    uuid.UUID("bc13c2ff-59e6-4262-a352-b275fd6f7172"): "Linux extended boot (XBOOTLDR)",
    uuid.UUID("0657fd6d-a4ab-43c4-84e5-0933c84b4f4f"): "Linux swap",
    uuid.UUID("e6d6d379-f507-44c2-a23c-238f2a3df928"): "Linux LVM",
    uuid.UUID("a19d880f-05fc-4d3b-a006-743f0f84911e"): "Linux RAID",
    uuid.UUID("933ac7e1-2eb4-4f13-b844-0e14e2aef915"): "Linux home",
    uuid.UUID("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"): "Microsoft basic data",
    uuid.UUID("e3c9e316-0b5c-4db8-817d-f92df00215ae"): "Microsoft reserved",
}

# MBR partition types this package reads (the MBR sector layout is formats/mbr/layout.py).
MBR_TYPE_EXTENDED: Final = frozenset({0x05, 0x0F, 0x85})  # CHS, LBA, Linux extended
MBR_TYPE_NAMES: Final = {
    0x01: "FAT12", 0x04: "FAT16 <32M", 0x05: "Extended", 0x06: "FAT16", 0x07: "NTFS/exFAT",
    0x0B: "W95 FAT32", 0x0C: "W95 FAT32 (LBA)", 0x0E: "W95 FAT16 (LBA)",
    0x0F: "W95 Extended (LBA)", 0x82: "Linux swap", 0x83: "Linux", 0x85: "Linux extended",
    0x8E: "Linux LVM", 0xEE: "GPT protective", 0xEF: "EFI System", 0xFD: "Linux RAID",
}  # fmt: skip

# =============================================================================== FAT ======

# §3.1 boot sector and the BPB common to FAT12/16/32.
FAT_BPB: Final = Layout(
    "FAT boot sector (BPB)",
    (
        ("BS_jmpBoot", "3s"),  # EB xx 90 or E9 xx xx
        ("BS_OEMName", "8s"),
        ("BPB_BytsPerSec", "H"),  # 512, 1024, 2048 or 4096
        ("BPB_SecPerClus", "B"),  # a power of 2, 1..128
        ("BPB_RsvdSecCnt", "H"),  # never 0
        ("BPB_NumFATs", "B"),  # usually 2
        ("BPB_RootEntCnt", "H"),  # FAT12/16: root directory entries; FAT32: 0
        ("BPB_TotSec16", "H"),  # 0: BPB_TotSec32 holds the count
        ("BPB_Media", "B"),
        ("BPB_FATSz16", "H"),  # FAT12/16 sectors per FAT; FAT32: 0
        ("BPB_SecPerTrk", "H"),
        ("BPB_NumHeads", "H"),
        ("BPB_HiddSec", "I"),
        ("BPB_TotSec32", "I"),
    ),
)
# §3.2: FAT12/16 continue at offset 36 with the extended boot signature fields.
FAT16_EBPB: Final = FAT_BPB.extend(
    "FAT12/16 extended BPB",
    (
        ("BS_DrvNum", "B"),
        ("BS_Reserved1", "B"),
        ("BS_BootSig", "B"),  # 0x29: the next three fields are present
        ("BS_VolID", "I"),
        ("BS_VolLab", "11s"),
        ("BS_FilSysType", "8s"),  # informational only (§3.5)
    ),
)
# §3.3: FAT32 continues at offset 36 with these.
FAT32_EBPB: Final = FAT_BPB.extend(
    "FAT32 extended BPB",
    (
        ("BPB_FATSz32", "I"),
        ("BPB_ExtFlags", "H"),  # bit 7: only FAT number (bits 0-3) is active
        ("BPB_FSVer", "H"),  # 0:0
        ("BPB_RootClus", "I"),  # first cluster of the root directory, usually 2
        ("BPB_FSInfo", "H"),
        ("BPB_BkBootSec", "H"),
        ("BPB_Reserved", "12s"),
        ("BS_DrvNum", "B"),
        ("BS_Reserved1", "B"),
        ("BS_BootSig", "B"),
        ("BS_VolID", "I"),
        ("BS_VolLab", "11s"),
        ("BS_FilSysType", "8s"),
    ),
)
FAT_SIGNATURE_OFFSET: Final = 510  # 0x55 0xAA
FAT_SIGNATURE: Final = b"\x55\xaa"
FAT_EXT_FLAGS_MIRROR_OFF: Final = 0x80
FAT_EXT_FLAGS_ACTIVE_MASK: Final = 0x0F
# §4 (FAT type determination): by the count of data clusters, nothing else.
FAT12_MAX_CLUSTERS: Final = 4084  # fewer than 4085 clusters: FAT12
FAT16_MAX_CLUSTERS: Final = 65524  # fewer than 65525 clusters: FAT16, else FAT32
FAT32_ENTRY_MASK: Final = 0x0FFFFFFF  # the high 4 bits of a FAT32 entry are reserved
FIRST_DATA_CLUSTER: Final = 2
# Entries at or above these values are "bad cluster" (the first) or end of chain.
FAT_BAD: Final = {12: 0xFF7, 16: 0xFFF7, 32: 0x0FFFFFF7}

# §6 directory entry (32 bytes).
FAT_DIRENT: Final = Layout(
    "FAT directory entry",
    (
        ("DIR_Name", "11s"),  # 8.3, space padded; [0] 0xE5 free, 0x00 end, 0x05 means 0xE5
        ("DIR_Attr", "B"),
        ("DIR_NTRes", "B"),  # Windows NT case bits: 0x08 base lower case, 0x10 extension
        ("DIR_CrtTimeTenth", "B"),
        ("DIR_CrtTime", "H"),
        ("DIR_CrtDate", "H"),
        ("DIR_LstAccDate", "H"),
        ("DIR_FstClusHI", "H"),  # FAT32 only
        ("DIR_WrtTime", "H"),
        ("DIR_WrtDate", "H"),
        ("DIR_FstClusLO", "H"),
        ("DIR_FileSize", "I"),
    ),
)
# §7 long name entry (32 bytes, same slot as a directory entry, DIR_Attr = ATTR_LONG_NAME).
FAT_LFN: Final = Layout(
    "FAT long name entry",
    (
        ("LDIR_Ord", "B"),  # sequence number 1..20, 0x40 marks the last (first stored)
        ("LDIR_Name1", "10s"),  # characters 1-5, UCS-2
        ("LDIR_Attr", "B"),  # ATTR_LONG_NAME
        ("LDIR_Type", "B"),  # 0
        ("LDIR_Chksum", "B"),  # checksum of the short name that follows
        ("LDIR_Name2", "12s"),  # characters 6-11
        ("LDIR_FstClusLO", "H"),  # 0
        ("LDIR_Name3", "4s"),  # characters 12-13
    ),
)
FAT_DIRENT_SIZE: Final = FAT_DIRENT.size
ATTR_READ_ONLY: Final = 0x01
ATTR_HIDDEN: Final = 0x02
ATTR_SYSTEM: Final = 0x04
ATTR_VOLUME_ID: Final = 0x08
ATTR_DIRECTORY: Final = 0x10
ATTR_ARCHIVE: Final = 0x20
ATTR_LONG_NAME: Final = ATTR_READ_ONLY | ATTR_HIDDEN | ATTR_SYSTEM | ATTR_VOLUME_ID
ATTR_LONG_NAME_MASK: Final = ATTR_LONG_NAME | ATTR_DIRECTORY | ATTR_ARCHIVE
DIR_FREE: Final = 0xE5
DIR_END: Final = 0x00
DIR_KANJI_E5: Final = 0x05
LFN_LAST: Final = 0x40
LFN_ORD_MASK: Final = 0x3F
LFN_MAX_ORD: Final = 20  # 255 characters / 13
LFN_CHARS_PER_ENTRY: Final = 13
NTRES_LOWER_BASE: Final = 0x08
NTRES_LOWER_EXT: Final = 0x10
# §6: "a directory ... may not contain more than 65,536 32-byte directory entries".
FAT_MAX_DIR_ENTRIES: Final = 65536

# ============================================================================== ext4 ======

EXT4_SUPERBLOCK_OFFSET: Final = 1024
EXT4_MAGIC: Final = 0xEF53
# super.rst "The Super Block", up to s_flags (0x160); the rest is not needed to read files.
EXT4_SUPERBLOCK: Final = Layout(
    "ext4 superblock",
    (
        ("s_inodes_count", "I"),  # 0x0
        ("s_blocks_count_lo", "I"),
        ("s_r_blocks_count_lo", "I"),
        ("s_free_blocks_count_lo", "I"),
        ("s_free_inodes_count", "I"),  # 0x10
        ("s_first_data_block", "I"),  # 1 with 1 KiB blocks, else 0
        ("s_log_block_size", "I"),  # block size = 2 ^ (10 + s_log_block_size)
        ("s_log_cluster_size", "I"),
        ("s_blocks_per_group", "I"),  # 0x20
        ("s_clusters_per_group", "I"),
        ("s_inodes_per_group", "I"),
        ("s_mtime", "I"),
        ("s_wtime", "I"),  # 0x30
        ("s_mnt_count", "H"),
        ("s_max_mnt_count", "H"),
        ("s_magic", "H"),  # 0x38: 0xEF53
        ("s_state", "H"),
        ("s_errors", "H"),
        ("s_minor_rev_level", "H"),
        ("s_lastcheck", "I"),  # 0x40
        ("s_checkinterval", "I"),
        ("s_creator_os", "I"),
        ("s_rev_level", "I"),  # 0: original format (128-byte inodes), 1: dynamic
        ("s_def_resuid", "H"),  # 0x50
        ("s_def_resgid", "H"),
        ("s_first_ino", "I"),  # 0x54
        ("s_inode_size", "H"),  # 0x58
        ("s_block_group_nr", "H"),
        ("s_feature_compat", "I"),  # 0x5C
        ("s_feature_incompat", "I"),  # 0x60
        ("s_feature_ro_compat", "I"),  # 0x64
        ("s_uuid", "16s"),  # 0x68
        ("s_volume_name", "16s"),  # 0x78
        ("s_last_mounted", "64s"),  # 0x88
        ("s_algorithm_usage_bitmap", "I"),  # 0xC8
        ("s_prealloc_blocks", "B"),
        ("s_prealloc_dir_blocks", "B"),
        ("s_reserved_gdt_blocks", "H"),
        ("s_journal_uuid", "16s"),  # 0xD0
        ("s_journal_inum", "I"),  # 0xE0
        ("s_journal_dev", "I"),
        ("s_last_orphan", "I"),
        ("s_hash_seed", "16s"),  # 0xEC
        ("s_def_hash_version", "B"),  # 0xFC
        ("s_jnl_backup_type", "B"),
        ("s_desc_size", "H"),  # 0xFE: group descriptor size with INCOMPAT_64BIT
        ("s_default_mount_opts", "I"),  # 0x100
        ("s_first_meta_bg", "I"),
        ("s_mkfs_time", "I"),
        ("s_jnl_blocks", "68s"),  # 0x10C
        ("s_blocks_count_hi", "I"),  # 0x150
        ("s_r_blocks_count_hi", "I"),
        ("s_free_blocks_count_hi", "I"),
        ("s_min_extra_isize", "H"),
        ("s_want_extra_isize", "H"),
        ("s_flags", "I"),  # 0x160
    ),
)
EXT4_SUPERBLOCK_SIZE: Final = 1024
EXT4_GOOD_OLD_REV: Final = 0
EXT4_GOOD_OLD_INODE_SIZE: Final = 128
EXT4_GOOD_OLD_FIRST_INO: Final = 11
EXT4_MIN_BLOCK_LOG: Final = 0  # 1 KiB
EXT4_MAX_BLOCK_LOG: Final = 6  # 64 KiB
EXT4_ROOT_INO: Final = 2

# s_feature_incompat (super.rst).
INCOMPAT_COMPRESSION: Final = 0x1
INCOMPAT_FILETYPE: Final = 0x2
INCOMPAT_RECOVER: Final = 0x4
INCOMPAT_JOURNAL_DEV: Final = 0x8
INCOMPAT_META_BG: Final = 0x10
INCOMPAT_EXTENTS: Final = 0x40
INCOMPAT_64BIT: Final = 0x80
INCOMPAT_MMP: Final = 0x100
INCOMPAT_FLEX_BG: Final = 0x200
INCOMPAT_EA_INODE: Final = 0x400
INCOMPAT_DIRDATA: Final = 0x1000
INCOMPAT_CSUM_SEED: Final = 0x2000
INCOMPAT_LARGEDIR: Final = 0x4000
INCOMPAT_INLINE_DATA: Final = 0x8000
INCOMPAT_ENCRYPT: Final = 0x10000
INCOMPAT_CASEFOLD: Final = 0x20000
# What the reader handles (inline data and encryption are refused per inode, where used).
INCOMPAT_READABLE: Final = (
    INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_MMP
    | INCOMPAT_FLEX_BG | INCOMPAT_EA_INODE | INCOMPAT_CSUM_SEED | INCOMPAT_LARGEDIR
    | INCOMPAT_INLINE_DATA | INCOMPAT_ENCRYPT | INCOMPAT_CASEFOLD
)  # fmt: skip
INCOMPAT_NAMES: Final = {
    INCOMPAT_COMPRESSION: "compression", INCOMPAT_FILETYPE: "filetype",
    INCOMPAT_RECOVER: "needs_recovery", INCOMPAT_JOURNAL_DEV: "journal_dev",
    INCOMPAT_META_BG: "meta_bg", INCOMPAT_EXTENTS: "extent", INCOMPAT_64BIT: "64bit",
    INCOMPAT_MMP: "mmp", INCOMPAT_FLEX_BG: "flex_bg", INCOMPAT_EA_INODE: "ea_inode",
    INCOMPAT_DIRDATA: "dirdata", INCOMPAT_CSUM_SEED: "metadata_csum_seed",
    INCOMPAT_LARGEDIR: "large_dir", INCOMPAT_INLINE_DATA: "inline_data",
    INCOMPAT_ENCRYPT: "encrypt", INCOMPAT_CASEFOLD: "casefold",
}  # fmt: skip
RO_COMPAT_HUGE_FILE: Final = 0x8

# group_descr.rst: 32 bytes, or s_desc_size (64) bytes with INCOMPAT_64BIT.
EXT4_GROUP_DESC_32: Final = Layout(
    "ext4 group descriptor",
    (
        ("bg_block_bitmap_lo", "I"),
        ("bg_inode_bitmap_lo", "I"),
        ("bg_inode_table_lo", "I"),
        ("bg_free_blocks_count_lo", "H"),
        ("bg_free_inodes_count_lo", "H"),
        ("bg_used_dirs_count_lo", "H"),
        ("bg_flags", "H"),
        ("bg_exclude_bitmap_lo", "I"),
        ("bg_block_bitmap_csum_lo", "H"),
        ("bg_inode_bitmap_csum_lo", "H"),
        ("bg_itable_unused_lo", "H"),
        ("bg_checksum", "H"),
    ),
)
EXT4_GROUP_DESC_64: Final = EXT4_GROUP_DESC_32.extend(
    "ext4 group descriptor (64bit)",
    (
        ("bg_block_bitmap_hi", "I"),
        ("bg_inode_bitmap_hi", "I"),
        ("bg_inode_table_hi", "I"),
        ("bg_free_blocks_count_hi", "H"),
        ("bg_free_inodes_count_hi", "H"),
        ("bg_used_dirs_count_hi", "H"),
        ("bg_itable_unused_hi", "H"),
        ("bg_exclude_bitmap_hi", "I"),
        ("bg_block_bitmap_csum_hi", "H"),
        ("bg_inode_bitmap_csum_hi", "H"),
        ("", "4x"),
    ),
)
EXT4_DESC_SIZE_MIN_64BIT: Final = EXT4_GROUP_DESC_64.size  # 64

# inodes.rst "Inode Table": the 128 bytes every inode has (i_extra_isize follows).
EXT4_INODE: Final = Layout(
    "ext4 inode",
    (
        ("i_mode", "H"),
        ("i_uid", "H"),
        ("i_size_lo", "I"),
        ("i_atime", "I"),
        ("i_ctime", "I"),
        ("i_mtime", "I"),
        ("i_dtime", "I"),
        ("i_gid", "H"),
        ("i_links_count", "H"),
        ("i_blocks_lo", "I"),  # 512-byte units (unless EXT4_HUGE_FILE_FL)
        ("i_flags", "I"),
        ("i_osd1", "I"),
        ("i_block", "60s"),  # extent tree root, block map, or a fast symlink's target
        ("i_generation", "I"),
        ("i_file_acl_lo", "I"),  # extended attribute block
        ("i_size_high", "I"),
        ("i_obso_faddr", "I"),
        ("l_i_blocks_high", "H"),
        ("l_i_file_acl_high", "H"),
        ("l_i_uid_high", "H"),
        ("l_i_gid_high", "H"),
        ("l_i_checksum_lo", "H"),
        ("l_i_reserved", "H"),
    ),
)
I_BLOCK_SIZE: Final = EXT4_INODE.field_size("i_block")  # 60: EXT4_N_BLOCKS * 4
# i_mode file types (inodes.rst "i_mode").
S_IFMT: Final = 0xF000
S_IFLNK: Final = 0xA000
S_IFREG: Final = 0x8000
S_IFDIR: Final = 0x4000
# i_flags (inodes.rst "i_flags").
EXT4_COMPR_FL: Final = 0x4
EXT4_INDEX_FL: Final = 0x1000  # htree directory (read as linear)
EXT4_HUGE_FILE_FL: Final = 0x40000
EXT4_EXTENTS_FL: Final = 0x80000
EXT4_EA_INODE_FL: Final = 0x200000
EXT4_INLINE_DATA_FL: Final = 0x10000000
EXT4_ENCRYPT_FL: Final = 0x800
# Legacy block map (blockmap.rst): 12 direct blocks, then single, double, triple indirect.
EXT4_NDIR_BLOCKS: Final = 12
EXT4_IND_BLOCK: Final = 12
EXT4_DIND_BLOCK: Final = 13
EXT4_TIND_BLOCK: Final = 14

# ifork.rst "Extent Tree" (ext4_extents.h).
EXT4_EXTENT_MAGIC: Final = 0xF30A
EXT4_EXTENT_HEADER: Final = Layout(
    "ext4 extent header",
    (
        ("eh_magic", "H"),  # 0xF30A
        ("eh_entries", "H"),  # valid entries following the header
        ("eh_max", "H"),  # capacity of the node
        ("eh_depth", "H"),  # 0: leaf; the kernel allows at most 5 (EXT4_MAX_EXTENT_DEPTH)
        ("eh_generation", "I"),
    ),
)
EXT4_EXTENT_IDX: Final = Layout(
    "ext4 extent index",
    (
        ("ei_block", "I"),  # first logical block this subtree covers
        ("ei_leaf_lo", "I"),  # block of the next level
        ("ei_leaf_hi", "H"),
        ("ei_unused", "H"),
    ),
)
EXT4_EXTENT: Final = Layout(
    "ext4 extent",
    (
        ("ee_block", "I"),  # first logical block
        ("ee_len", "H"),  # > 32768: unwritten extent of ee_len - 32768 blocks (reads as 0)
        ("ee_start_hi", "H"),
        ("ee_start_lo", "I"),
    ),
)
EXT4_MAX_EXTENT_DEPTH: Final = 5
EXT_INIT_MAX_LEN: Final = 32768

# directory.rst "Linear (Classic) Directories".
EXT4_DIRENT: Final = Layout(
    "ext4 directory entry",
    (
        ("inode", "I"),  # 0: unused entry
        ("rec_len", "H"),  # length of this record, a multiple of 4
        ("name_len", "B"),  # without INCOMPAT_FILETYPE this byte is name_len's high half
        ("file_type", "B"),
    ),
)
EXT4_FT_DIR: Final = 2
EXT4_FT_SYMLINK: Final = 7
EXT4_NAME_MAX: Final = 255
