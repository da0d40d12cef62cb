"""ext2/3/4, read-only and only as much as reading GRUB's ``/boot`` needs.

Reference: Linux ``Documentation/filesystems/ext4/`` (layouts in :mod:`.layout`) and
``fs/ext4/`` for the rules the kernel applies:

- superblock, block group descriptors (32-byte, and ``s_desc_size`` with ``64bit``);
- inodes (any ``s_inode_size``), files mapped by extent trees of any depth (``ifork.rst``,
  ``ext4_ext_find_extent``) or by legacy ext2/3 block maps (``blockmap.rst``), holes and
  unwritten extents read as zeros;
- directories read linearly (hash-tree directories too: their index blocks are dirents with
  inode 0 spanning the block, ``directory.rst`` "Hash Tree Directories"), ``rec_len`` decoded
  as ``ext4_rec_len_from_disk`` does;
- symlinks, fast (target in ``i_block``, ``ext4_inode_is_fast_symlink``) and slow; path
  lookup follows at most 40 symlinks (Linux ``MAXSYMLINKS``).

Refused with :class:`~.device.DiskUnsupportedError`: unknown incompatible features,
``compression``, ``journal_dev``, ``meta_bg``, ``dirdata``; and, for the inode that uses
them, inline data and encryption. A journal that needs recovery is read as it is (noted).

Bounds on hostile input: every block number is checked against the filesystem; an extent
tree's depth must fall by one per level (at most 5), each child's range must lie inside its
parent's and a block may not appear twice, so a walk visits at most one node per level per
block of the file; an indirect block is read once per file; directories are read up to
:data:`MAX_DIR_SIZE`; files up to the caller's ``max_size`` (memory is the file's size: a
sparse file's holes are materialised as zeros).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from fwtools.formats.disk import layout as L
from fwtools.formats.disk.device import (
    DiskError,
    DiskPathError,
    DiskUnsupportedError,
    Region,
)

MAX_FILE_SIZE: Final = 1 << 30
MAX_DIR_SIZE: Final = 64 << 20
MAX_SYMLINKS: Final = 40  # Linux MAXSYMLINKS
PATH_MAX: Final = 4096
WALK_MAX_DEPTH: Final = 64
WALK_MAX_ENTRIES: Final = 1 << 20
_CACHE: Final = 256
RO_COMPAT_BIGALLOC: Final = 0x200
# A mapping run: (first logical block, first physical block, block count).
_Run = tuple[int, int, int]
REFUSED: Final = {
    L.INCOMPAT_COMPRESSION: "ext2 compression",
    L.INCOMPAT_JOURNAL_DEV: "an external journal device, not a filesystem",
    L.INCOMPAT_META_BG: "meta_bg group descriptor placement",
    L.INCOMPAT_DIRDATA: "dirdata directory entries",
}


@dataclass(frozen=True)
class Inode:
    """The fields of an inode the reader uses; ``offset`` is its absolute offset."""

    ino: int
    mode: int
    size: int
    flags: int
    links: int
    blocks: int  # in 512-byte units
    file_acl: int
    i_block: bytes
    offset: int

    @property
    def is_dir(self) -> bool:
        return self.mode & L.S_IFMT == L.S_IFDIR

    @property
    def is_symlink(self) -> bool:
        return self.mode & L.S_IFMT == L.S_IFLNK

    @property
    def is_file(self) -> bool:
        return self.mode & L.S_IFMT == L.S_IFREG


@dataclass(frozen=True)
class Ext4Entry:
    """A directory entry with its inode: ``name``, ``ino``, ``mode``, ``size``."""

    name: str
    ino: int
    mode: int
    size: int
    offset: int  # absolute offset of the directory entry (of the inode for the root)

    @property
    def is_dir(self) -> bool:
        return self.mode & L.S_IFMT == L.S_IFDIR

    @property
    def is_symlink(self) -> bool:
        return self.mode & L.S_IFMT == L.S_IFLNK


def looks_like_ext(block: bytes) -> bool:
    """True when the 1024 bytes at offset 1024 carry the ext2/3/4 magic."""
    off = L.EXT4_SUPERBLOCK.offset("s_magic")
    return len(block) >= off + 2 and int.from_bytes(block[off : off + 2], "little") == L.EXT4_MAGIC


class Ext4Filesystem:
    """An ext2/3/4 filesystem in ``region``. Accessible attributes: ``block_size``,
    ``blocks_count``, ``inodes_count``, ``group_count``, ``uuid``, ``label``,
    ``incompat``/``ro_compat``/``compat`` feature words, ``notes``."""

    kind = "ext4"

    def __init__(self, region: Region) -> None:
        self.region = region
        sb_pos = L.EXT4_SUPERBLOCK_OFFSET
        raw = region.read(sb_pos, L.EXT4_SUPERBLOCK_SIZE, "ext4 superblock")
        s = L.EXT4_SUPERBLOCK.unpack_dict(raw)

        def bad(message: str, name: str, cls: type[DiskError] = DiskError) -> DiskError:
            return cls(message, structure=f"ext4 superblock.{name}",
                       offset=region.abs(sb_pos + L.EXT4_SUPERBLOCK.offset(name)))

        if s["s_magic"] != L.EXT4_MAGIC:
            raise bad(f"magic is {s['s_magic']:#06x}, not {L.EXT4_MAGIC:#06x}", "s_magic")
        self.incompat = s["s_feature_incompat"]
        self.ro_compat = s["s_feature_ro_compat"]
        self.compat = s["s_feature_compat"]
        unknown = self.incompat & ~(L.INCOMPAT_READABLE | sum(REFUSED))
        if unknown:
            raise bad(f"unknown incompatible features {unknown:#x}", "s_feature_incompat",
                      DiskUnsupportedError)
        for bit, what in REFUSED.items():
            if self.incompat & bit:
                raise bad(f"feature {L.INCOMPAT_NAMES[bit]} ({what}) is not supported",
                          "s_feature_incompat", DiskUnsupportedError)
        log = s["s_log_block_size"]
        if not L.EXT4_MIN_BLOCK_LOG <= log <= L.EXT4_MAX_BLOCK_LOG:
            raise bad(f"s_log_block_size {log} is outside 0..6 (1 to 64 KiB blocks)",
                      "s_log_block_size")
        bs = self.block_size = 1024 << log
        self.blocks_count = s["s_blocks_count_lo"]
        if self.incompat & L.INCOMPAT_64BIT:
            self.blocks_count |= s["s_blocks_count_hi"] << 32
        if self.blocks_count * bs > region.size:
            raise bad(f"{self.blocks_count} blocks of {bs} bytes do not fit in the partition "
                      f"({region.size} bytes)", "s_blocks_count_lo")
        self.first_data_block = s["s_first_data_block"]
        if self.first_data_block >= self.blocks_count or self.first_data_block > 1:
            raise bad(f"s_first_data_block {self.first_data_block} is not 0 or 1",
                      "s_first_data_block")
        bpg, ipg = s["s_blocks_per_group"], s["s_inodes_per_group"]
        if not 0 < bpg <= 8 * bs:
            raise bad(f"s_blocks_per_group {bpg} is outside 1..{8 * bs}", "s_blocks_per_group")
        if not 0 < ipg <= 8 * bs:
            raise bad(f"s_inodes_per_group {ipg} is outside 1..{8 * bs}", "s_inodes_per_group")
        self.inodes_per_group = ipg
        self.group_count = -(-(self.blocks_count - self.first_data_block) // bpg)
        self.inodes_count = s["s_inodes_count"]
        if not L.EXT4_ROOT_INO <= self.inodes_count <= self.group_count * ipg:
            raise bad(f"s_inodes_count {self.inodes_count} does not fit {self.group_count} "
                      f"groups of {ipg}", "s_inodes_count")
        if s["s_rev_level"] == L.EXT4_GOOD_OLD_REV:
            self.inode_size = L.EXT4_GOOD_OLD_INODE_SIZE
        else:
            isz = s["s_inode_size"]
            if not (L.EXT4_GOOD_OLD_INODE_SIZE <= isz <= bs and isz & (isz - 1) == 0):
                raise bad(f"s_inode_size {isz} is not a power of 2 in 128..{bs}",
                          "s_inode_size")
            self.inode_size = isz
        if self.incompat & L.INCOMPAT_64BIT:
            dsz = s["s_desc_size"]
            if not (L.EXT4_DESC_SIZE_MIN_64BIT <= dsz <= bs and dsz & (dsz - 1) == 0):
                raise bad(f"s_desc_size {dsz} is not a power of 2 in 64..{bs}", "s_desc_size")
            self.desc_size = dsz
        else:
            self.desc_size = L.EXT4_GROUP_DESC_32.size
        self._gdt = (self.first_data_block + 1) * bs
        if self._gdt + self.group_count * self.desc_size > self.blocks_count * bs:
            raise bad(f"{self.group_count} group descriptors do not fit in the filesystem",
                      "s_blocks_per_group")
        self.cluster_size = (1024 << s["s_log_cluster_size"]
                             if self.ro_compat & RO_COMPAT_BIGALLOC else bs)  # fmt: skip
        self.uuid = uuid.UUID(bytes=s["s_uuid"])
        self.label = s["s_volume_name"].split(b"\0", 1)[0].decode("utf-8", "replace")
        self.notes: tuple[str, ...] = ()
        if self.incompat & L.INCOMPAT_RECOVER:
            self.notes = ("the journal needs recovery: files are read as last checkpointed",)
        self._inodes: dict[int, Inode] = {}
        self._tables: dict[int, int] = {}
        self._dirs: dict[int, dict[str, int]] = {}

    def __repr__(self) -> str:
        return (f"<Ext4Filesystem at {self.region.start:#x} block_size={self.block_size} "
                f"blocks={self.blocks_count} uuid={self.uuid}>")

    # -- groups and inodes --------------------------------------------------------------

    def _inode_table(self, group: int) -> int:
        known = self._tables.get(group)
        if known is not None:
            return known
        pos = self._gdt + group * self.desc_size
        layout = (L.EXT4_GROUP_DESC_64 if self.desc_size >= L.EXT4_DESC_SIZE_MIN_64BIT
                  else L.EXT4_GROUP_DESC_32)  # fmt: skip
        d = layout.unpack_dict(self.region.read(pos, layout.size, "ext4 group descriptor"))
        table: int = d["bg_inode_table_lo"]
        if layout is L.EXT4_GROUP_DESC_64:
            table |= d["bg_inode_table_hi"] << 32
        table_blocks = -(-self.inodes_per_group * self.inode_size // self.block_size)
        if table == 0 or table + table_blocks > self.blocks_count:
            raise DiskError(f"group {group}'s inode table at block {table} is outside the "
                            f"filesystem", structure="ext4 group descriptor.bg_inode_table",
                            offset=self.region.abs(pos + layout.offset("bg_inode_table_lo")))
        if len(self._tables) >= _CACHE:
            self._tables.clear()
        self._tables[group] = table
        return table

    def inode(self, ino: int) -> Inode:
        cached = self._inodes.get(ino)
        if cached is not None:
            return cached
        if not 1 <= ino <= self.inodes_count:
            raise DiskError(f"inode {ino} is outside 1..{self.inodes_count}",
                            structure="ext4 inode number", offset=self.region.abs(1024))
        group, index = divmod(ino - 1, self.inodes_per_group)
        pos = self._inode_table(group) * self.block_size + index * self.inode_size
        i = L.EXT4_INODE.unpack_dict(self.region.read(pos, L.EXT4_INODE.size, "ext4 inode"))
        blocks = i["i_blocks_lo"]
        if self.ro_compat & L.RO_COMPAT_HUGE_FILE:
            blocks |= i["l_i_blocks_high"] << 32
            if i["i_flags"] & L.EXT4_HUGE_FILE_FL:
                blocks *= self.block_size // 512
        inode = Inode(
            ino=ino, mode=i["i_mode"], size=i["i_size_lo"] | i["i_size_high"] << 32,
            flags=i["i_flags"], links=i["i_links_count"], blocks=blocks,
            file_acl=i["i_file_acl_lo"] | i["l_i_file_acl_high"] << 32, i_block=i["i_block"],
            offset=self.region.abs(pos),
        )  # fmt: skip
        if len(self._inodes) >= _CACHE:
            self._inodes.clear()
        self._inodes[ino] = inode
        return inode

    # -- file data ----------------------------------------------------------------------

    def read_inode(self, inode: Inode, *, max_size: int = MAX_FILE_SIZE) -> bytes:
        """The data of ``inode`` (holes and unwritten extents as zeros)."""
        return self._read_with_runs(inode, max_size)[0]

    def _read_with_runs(self, inode: Inode, max_size: int) -> tuple[bytes, list[_Run]]:
        where = inode.offset
        if inode.flags & L.EXT4_INLINE_DATA_FL:
            raise DiskUnsupportedError(f"inode {inode.ino} keeps its data inline "
                                       "(inline_data), which is not read",
                                       structure="ext4 inode.i_flags", offset=where)
        if inode.flags & L.EXT4_ENCRYPT_FL:
            raise DiskUnsupportedError(f"inode {inode.ino} is encrypted",
                                       structure="ext4 inode.i_flags", offset=where)
        if inode.flags & L.EXT4_COMPR_FL:
            raise DiskUnsupportedError(f"inode {inode.ino} is compressed (ext2 compression)",
                                       structure="ext4 inode.i_flags", offset=where)
        size = inode.size
        # Sparse files may be larger than the filesystem, so the caller's limit is the bound.
        if size > max_size:
            raise DiskError(f"inode {inode.ino} claims {size} bytes, more than the limit of "
                            f"{max_size}", structure="ext4 inode.i_size", offset=where)
        if size == 0:
            return b"", []
        bs = self.block_size
        nblocks = -(-size // bs)
        if inode.flags & L.EXT4_EXTENTS_FL:
            runs = self._extent_runs(inode, nblocks)
        else:
            runs = self._blockmap_runs(inode, nblocks)
        out = bytearray(size)
        for logical, physical, count in runs:
            count = min(count, nblocks - logical)
            if physical < self.first_data_block or physical + count > self.blocks_count:
                raise DiskError(f"inode {inode.ino} maps block {logical} to {physical}, outside "
                                f"the filesystem ({self.blocks_count} blocks)",
                                structure="ext4 block mapping", offset=where)
            start = logical * bs
            n = min(count * bs, size - start)
            out[start : start + n] = self.region.read(physical * bs, n, "ext4 file data")
        return bytes(out), runs

    def _check_block(self, block: int, what: str, where: int) -> None:
        if not self.first_data_block < block < self.blocks_count:
            raise DiskError(f"{what} points at block {block}, outside the filesystem "
                            f"({self.blocks_count} blocks)", structure=what, offset=where)

    def _extent_runs(self, inode: Inode, nblocks: int) -> list[_Run]:
        runs: list[_Run] = []
        seen: set[int] = set()

        def node(data: bytes, where: int, depth: int | None, lo: int, hi: int) -> None:
            h = L.EXT4_EXTENT_HEADER.unpack_dict(data)
            if h["eh_magic"] != L.EXT4_EXTENT_MAGIC:
                raise DiskError(f"extent header magic {h['eh_magic']:#06x} is not 0xf30a",
                                structure="ext4 extent header", offset=where)
            entries, d = h["eh_entries"], h["eh_depth"]
            capacity = (len(data) - L.EXT4_EXTENT_HEADER.size) // L.EXT4_EXTENT.size
            if entries > h["eh_max"] or h["eh_max"] > capacity:
                raise DiskError(f"extent node has {entries} entries, max {h['eh_max']}, room "
                                f"for {capacity}", structure="ext4 extent header",
                                offset=where)
            if d > L.EXT4_MAX_EXTENT_DEPTH or (depth is not None and d != depth):
                raise DiskError(f"extent node depth {d} (expected "
                                f"{'<= 5' if depth is None else depth})",
                                structure="ext4 extent header.eh_depth", offset=where)
            prev_end = lo
            for k in range(entries):
                pos = L.EXT4_EXTENT_HEADER.size + k * L.EXT4_EXTENT.size
                if d == 0:
                    e = L.EXT4_EXTENT.unpack_dict(data, pos)
                    first, length = e["ee_block"], e["ee_len"]
                    if length > L.EXT_INIT_MAX_LEN:
                        length -= L.EXT_INIT_MAX_LEN
                        unwritten = True
                    else:
                        unwritten = False
                    if first < prev_end or first + length > hi or length == 0:
                        raise DiskError(f"extent of blocks {first}..+{length} overlaps or "
                                        f"leaves its node's range {lo}..{hi}",
                                        structure="ext4 extent", offset=where + pos)
                    prev_end = first + length
                    if first >= nblocks:
                        break
                    if not unwritten:
                        runs.append((first, e["ee_start_lo"] | e["ee_start_hi"] << 32, length))
                    continue
                ix = L.EXT4_EXTENT_IDX.unpack_dict(data, pos)
                first = ix["ei_block"]
                if k + 1 < entries:
                    end = L.EXT4_EXTENT_IDX.unpack_dict(
                        data, pos + L.EXT4_EXTENT_IDX.size)["ei_block"]
                else:
                    end = hi
                if first < prev_end or end <= first or end > hi:
                    raise DiskError(f"extent index for blocks {first}..{end} overlaps or "
                                    f"leaves its node's range {lo}..{hi}",
                                    structure="ext4 extent index", offset=where + pos)
                prev_end = end
                if first >= nblocks:
                    break
                child = ix["ei_leaf_lo"] | ix["ei_leaf_hi"] << 32
                self._check_block(child, "ext4 extent index", where + pos)
                if child in seen:
                    raise DiskError(f"extent tree visits block {child} twice",
                                    structure="ext4 extent index", offset=where + pos)
                seen.add(child)
                block = self.region.read(child * self.block_size, self.block_size,
                                         "ext4 extent node")
                node(block, self.region.abs(child * self.block_size), d - 1, first, end)

        node(inode.i_block, inode.offset + L.EXT4_INODE.offset("i_block"), None, 0, 1 << 32)
        return runs

    def _blockmap_runs(self, inode: Inode, nblocks: int) -> list[_Run]:
        bs = self.block_size
        per = bs // 4
        ptrs = [int.from_bytes(inode.i_block[i * 4 : i * 4 + 4], "little") for i in range(15)]
        where = inode.offset + L.EXT4_INODE.offset("i_block")
        runs: list[_Run] = []
        seen: set[int] = set()

        def add(logical: int, physical: int) -> None:
            if runs and runs[-1][0] + runs[-1][2] == logical and \
                    runs[-1][1] + runs[-1][2] == physical:
                last = runs[-1]
                runs[-1] = (last[0], last[1], last[2] + 1)
            else:
                runs.append((logical, physical, 1))

        def walk(ptr: int, level: int, base: int, at: int) -> None:
            if ptr == 0 or base >= nblocks:
                return
            if level == 0:
                self._check_block(ptr, "ext4 block map", at)
                add(base, ptr)
                return
            self._check_block(ptr, "ext4 indirect block", at)
            if ptr in seen:
                raise DiskError(f"block map uses indirect block {ptr} twice",
                                structure="ext4 indirect block", offset=at)
            seen.add(ptr)
            data = self.region.read(ptr * bs, bs, "ext4 indirect block")
            span = per ** (level - 1)
            for k in range(per):
                if base + k * span >= nblocks:
                    break
                child = int.from_bytes(data[k * 4 : k * 4 + 4], "little")
                walk(child, level - 1, base + k * span, self.region.abs(ptr * bs + k * 4))

        for k in range(L.EXT4_NDIR_BLOCKS):
            walk(ptrs[k], 0, k, where + 4 * k)
        base = L.EXT4_NDIR_BLOCKS
        for level, slot in ((1, L.EXT4_IND_BLOCK), (2, L.EXT4_DIND_BLOCK),
                            (3, L.EXT4_TIND_BLOCK)):
            walk(ptrs[slot], level, base, where + 4 * slot)
            base += per**level
        return runs

    # -- directories and symlinks -------------------------------------------------------

    def read_dir_inode(self, inode: Inode) -> list[tuple[str, int, int]]:
        """(name, inode number, absolute offset) of each entry, ``.`` and ``..`` included."""
        if not inode.is_dir:
            raise DiskError(f"inode {inode.ino} is not a directory",
                            structure="ext4 inode.i_mode", offset=inode.offset)
        # Directories have no holes (the kernel refuses them), so one larger than the
        # filesystem is corrupt: refused before anything is allocated.
        data, runs = self._read_with_runs(
            inode, min(MAX_DIR_SIZE, self.blocks_count * self.block_size))
        bs = self.block_size
        filetype = bool(self.incompat & L.INCOMPAT_FILETYPE)
        out: list[tuple[str, int, int]] = []
        for b in range(0, len(data), bs):
            pos = b
            end = min(b + bs, len(data))
            block_at = self._place(inode, runs, b)
            in_hole = block_at == inode.offset
            while pos + L.EXT4_DIRENT.size <= end:
                ino, rec_len, name_len, ftype = L.EXT4_DIRENT.unpack_from(data, pos)
                if bs >= 65536 and (rec_len in (0, 65535)):
                    rec_len = bs  # ext4_rec_len_from_disk
                elif bs >= 65536:
                    rec_len = (rec_len & 65532) | ((rec_len & 3) << 16)
                if not filetype:
                    name_len |= ftype << 8
                at = block_at if in_hole else block_at + pos - b
                if rec_len < L.EXT4_DIRENT.size or rec_len % 4 or pos + rec_len > end \
                        or L.EXT4_DIRENT.size + name_len > rec_len:
                    raise DiskError(f"directory entry rec_len {rec_len} / name_len {name_len} "
                                    f"does not fit its block", structure="ext4 directory entry",
                                    offset=at)
                if ino and name_len:
                    name = data[pos + 8 : pos + 8 + name_len].decode("utf-8", "surrogateescape")
                    out.append((name, ino, at))
                pos += rec_len
        return out

    def _place(self, inode: Inode, runs: list[_Run], off: int) -> int:
        """The absolute offset of byte ``off`` of ``inode``'s data (the inode's own offset
        inside a hole)."""
        bs = self.block_size
        blk = off // bs
        for logical, physical, count in runs:
            if logical <= blk < logical + count:
                return self.region.abs((physical + blk - logical) * bs + off % bs)
        return inode.offset

    def _names(self, inode: Inode) -> dict[str, int]:
        """Name -> inode number of a directory (the first entry wins, as a linear search)."""
        names = self._dirs.get(inode.ino)
        if names is None:
            names = {}
            for name, ino, _ in self.read_dir_inode(inode):
                names.setdefault(name, ino)
            if len(self._dirs) >= _CACHE // 4:
                self._dirs.clear()
            self._dirs[inode.ino] = names
        return names

    def readlink_inode(self, inode: Inode) -> str:
        if not inode.is_symlink:
            raise DiskError(f"inode {inode.ino} is not a symlink", structure="ext4 inode.i_mode",
                            offset=inode.offset)
        if inode.size > PATH_MAX:
            raise DiskError(f"symlink target of {inode.size} bytes is longer than {PATH_MAX}",
                            structure="ext4 inode.i_size", offset=inode.offset)
        if inode.flags & L.EXT4_ENCRYPT_FL:
            raise DiskUnsupportedError(f"symlink inode {inode.ino} is encrypted",
                                       structure="ext4 inode.i_flags", offset=inode.offset)
        # ext4_inode_is_fast_symlink: no data blocks besides an xattr block.
        ea_blocks = self.cluster_size >> 9 if inode.file_acl else 0
        if inode.flags & L.EXT4_EA_INODE_FL:
            fast = 0 < inode.size < L.I_BLOCK_SIZE
        else:
            fast = not inode.flags & L.EXT4_INLINE_DATA_FL and inode.blocks - ea_blocks == 0
        if fast:
            if inode.size > L.I_BLOCK_SIZE:
                raise DiskError(f"fast symlink claims {inode.size} bytes (at most 60)",
                                structure="ext4 inode.i_size", offset=inode.offset)
            raw = inode.i_block[: inode.size]
        else:
            raw = self.read_inode(inode, max_size=PATH_MAX)
        return raw.decode("utf-8", "surrogateescape")

    # -- paths --------------------------------------------------------------------------

    def resolve(self, path: str, *, follow: bool = True) -> Inode:
        """The inode at ``path`` (``/``-separated, from the filesystem root), following
        symlinks (the last one only when ``follow``); at most 40 in all."""
        if len(path) > PATH_MAX:
            raise DiskPathError(f"path of {len(path)} characters is longer than {PATH_MAX}",
                                fs_path=path[:64])
        stack = [L.EXT4_ROOT_INO]
        comps = [c for c in path.split("/") if c]
        comps.reverse()
        links = 0
        current = self.inode(L.EXT4_ROOT_INO)
        while comps:
            comp = comps.pop()
            if comp == ".":
                continue
            if comp == "..":
                if len(stack) > 1:
                    stack.pop()
                current = self.inode(stack[-1])
                continue
            if not current.is_dir:
                raise DiskPathError(f"{path}: a component before {comp!r} is not a directory",
                                    fs_path=path)
            ino = self._names(current).get(comp)
            if ino is None:
                raise DiskPathError(f"{path}: no {comp!r} on the ext4 filesystem", fs_path=path)
            node = self.inode(ino)
            if node.is_symlink and (comps or follow):
                links += 1
                if links > MAX_SYMLINKS:
                    raise DiskPathError(f"{path}: more than {MAX_SYMLINKS} symlinks",
                                        fs_path=path)
                target = self.readlink_inode(node)
                if target.startswith("/"):
                    stack = [L.EXT4_ROOT_INO]
                    current = self.inode(L.EXT4_ROOT_INO)
                more = [c for c in target.split("/") if c]
                more.reverse()
                comps.extend(more)
                continue
            stack.append(ino)
            current = node
        return current

    def stat(self, path: str, *, follow: bool = True) -> Inode:
        return self.resolve(path, follow=follow)

    def exists(self, path: str) -> bool:
        try:
            self.resolve(path)
        except DiskPathError:
            return False
        return True

    def read_file(self, path: str, *, max_size: int = MAX_FILE_SIZE) -> bytes:
        """The bytes of the file at ``path`` (symlinks followed)."""
        inode = self.resolve(path)
        if not inode.is_file:
            raise DiskPathError(f"{path}: not a regular file", fs_path=path)
        return self.read_inode(inode, max_size=max_size)

    def readlink(self, path: str) -> str:
        return self.readlink_inode(self.resolve(path, follow=False))

    def listdir(self, path: str = "/") -> tuple[Ext4Entry, ...]:
        inode = self.resolve(path)
        if not inode.is_dir:
            raise DiskPathError(f"{path}: not a directory", fs_path=path)
        return self._entries(inode)

    def _entries(self, inode: Inode) -> tuple[Ext4Entry, ...]:
        out = []
        for name, ino, at in self.read_dir_inode(inode):
            if name in (".", ".."):
                continue
            child = self.inode(ino)
            out.append(Ext4Entry(name, ino, child.mode, child.size, at))
        return tuple(out)

    def walk(self, path: str = "/") -> Iterator[tuple[str, Ext4Entry]]:
        """Every entry under ``path`` (symlinks not followed), each directory once, at most
        64 deep and 2^20 entries."""
        top = self.resolve(path)
        if not top.is_dir:
            raise DiskPathError(f"{path}: not a directory", fs_path=path)
        seen = {top.ino}
        total = 0
        base = "/" + "/".join(c for c in path.split("/") if c)
        stack: list[tuple[str, Inode, int]] = [(base.rstrip("/"), top, 0)]
        while stack:
            prefix, inode, depth = stack.pop()
            for e in self._entries(inode):
                total += 1
                if total > WALK_MAX_ENTRIES:
                    raise DiskError(f"more than {WALK_MAX_ENTRIES} entries under {path!r}",
                                    structure="ext4 directory", offset=e.offset)
                full = f"{prefix}/{e.name}"
                yield full, e
                if e.is_dir and e.ino not in seen and depth < WALK_MAX_DEPTH:
                    seen.add(e.ino)
                    stack.append((full, self.inode(e.ino), depth + 1))
