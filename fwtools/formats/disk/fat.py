"""FAT12/16/32 with long file names, read-only: the EFI system partition as firmware reads it.

Reference: Microsoft "FAT: General Overview of On-Disk Format" v1.03 (layouts and section
numbers in :mod:`.layout`); path lookup as edk2's FAT driver does it
(``FatPkg/EnhancedFatDxe/Open.c``, ``OpenVolume.c``, ``DirectoryManage.c`` ``FatSearchODir``):
components separated by ``\\`` (``/`` is accepted too), matched case-insensitively against
the long name or the 8.3 name.

Bounds on hostile input, all raising :class:`~.device.DiskError` with the absolute offset:
a cluster chain is at most the volume's cluster count long and a file's chain may not visit
a cluster twice; a directory holds at most 65,536 entries (§6); :meth:`FatFilesystem.walk`
visits each directory once. Reading a file reads its clusters and the FAT sectors that chain
them, nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from fwtools.formats.disk import layout as L
from fwtools.formats.disk.device import DiskError, DiskPathError, DiskTruncatedError, Region

MAX_FILE_SIZE: Final = 1 << 30  # what read_file returns at most unless told otherwise
_FAT_PAGE: Final = 4096
_FAT_CACHE_PAGES: Final = 256  # 1 MiB of FAT kept between reads
_DIR_CACHE: Final = 256
WALK_MAX_DEPTH: Final = 64
WALK_MAX_ENTRIES: Final = 1 << 20


@dataclass(frozen=True)
class FatEntry:
    """A directory entry: ``name`` is the long name when there is a valid one, else the 8.3
    name (lower-cased where the NT case bits say so); ``offset`` is the absolute offset of
    the 32-byte short entry."""

    name: str
    short_name: str
    attributes: int
    first_cluster: int
    size: int
    offset: int

    @property
    def is_dir(self) -> bool:
        return bool(self.attributes & L.ATTR_DIRECTORY)

    @property
    def is_symlink(self) -> bool:
        return False


def lfn_checksum(short_name: bytes) -> int:
    """§7.2 ``ChkSum``: the checksum of the 11-byte short name stored in each LFN entry."""
    s = 0
    for b in short_name:
        s = (((s & 1) << 7) + (s >> 1) + b) & 0xFF
    return s


def looks_like_fat(sector: bytes) -> bool:
    """A boot sector whose BPB is plausible (the checks of :class:`FatFilesystem`)."""
    if len(sector) < 512 or sector[L.FAT_SIGNATURE_OFFSET : 512] != L.FAT_SIGNATURE:
        return False
    b = L.FAT_BPB.unpack_dict(sector)
    spc = b["BPB_SecPerClus"]
    return (b["BPB_BytsPerSec"] in (512, 1024, 2048, 4096) and 0 < spc <= 128
            and spc & (spc - 1) == 0 and b["BPB_RsvdSecCnt"] > 0 and b["BPB_NumFATs"] > 0
            and (b["BPB_TotSec16"] or b["BPB_TotSec32"]) > 0)  # fmt: skip


class FatFilesystem:
    """A FAT volume in ``region``. Accessible attributes: ``fat_type`` (12, 16 or 32),
    ``bytes_per_sector``, ``cluster_size``, ``cluster_count``, ``volume_label``,
    ``volume_id``."""

    kind = "fat"

    def __init__(self, region: Region) -> None:
        self.region = region
        boot = region.read(0, 512, "FAT boot sector")
        b = L.FAT32_EBPB.unpack_dict(boot)
        off = L.FAT32_EBPB.offset

        def bad(message: str, name: str) -> DiskError:
            return DiskError(message, structure=f"FAT BPB.{name}", offset=region.abs(off(name)))

        if boot[L.FAT_SIGNATURE_OFFSET : 512] != L.FAT_SIGNATURE:
            raise DiskError("boot sector has no 0x55AA signature", structure="FAT boot sector",
                            offset=region.abs(L.FAT_SIGNATURE_OFFSET))
        bps = b["BPB_BytsPerSec"]
        if bps not in (512, 1024, 2048, 4096):
            raise bad(f"BPB_BytsPerSec {bps} is not 512, 1024, 2048 or 4096", "BPB_BytsPerSec")
        spc = b["BPB_SecPerClus"]
        if not (0 < spc <= 128 and spc & (spc - 1) == 0):
            raise bad(f"BPB_SecPerClus {spc} is not a power of 2 up to 128", "BPB_SecPerClus")
        if b["BPB_RsvdSecCnt"] == 0:
            raise bad("BPB_RsvdSecCnt is 0", "BPB_RsvdSecCnt")
        if b["BPB_NumFATs"] == 0:
            raise bad("BPB_NumFATs is 0", "BPB_NumFATs")
        total = b["BPB_TotSec16"] or b["BPB_TotSec32"]
        if total == 0:
            raise bad("the total sector count is 0", "BPB_TotSec32")
        fat_sectors = b["BPB_FATSz16"] or b["BPB_FATSz32"]
        if fat_sectors == 0:
            raise bad("the FAT size is 0", "BPB_FATSz32")
        if total * bps > region.size:
            raise bad(f"the volume ({total} sectors of {bps} bytes) is larger than its "
                      f"partition ({region.size} bytes)", "BPB_TotSec32")
        self.bytes_per_sector = bps
        self.cluster_size: int = bps * spc
        root_sectors = (b["BPB_RootEntCnt"] * L.FAT_DIRENT_SIZE + bps - 1) // bps
        self._fat_start = b["BPB_RsvdSecCnt"] * bps
        self._fat_bytes = fat_sectors * bps
        self._root_start = self._fat_start + b["BPB_NumFATs"] * self._fat_bytes
        self._root_entries = b["BPB_RootEntCnt"]
        self._data_start: int = self._root_start + root_sectors * bps
        if self._data_start >= total * bps:
            raise bad(f"the data region starts at {self._data_start:#x}, past the volume's "
                      f"{total * bps:#x} bytes", "BPB_TotSec32")
        # §4: the FAT type follows from the cluster count alone.
        self.cluster_count: int = (total * bps - self._data_start) // self.cluster_size
        if self.cluster_count <= L.FAT12_MAX_CLUSTERS:
            self.fat_type = 12
        elif self.cluster_count <= L.FAT16_MAX_CLUSTERS:
            self.fat_type = 16
        else:
            self.fat_type = 32
        if self.fat_type == 32:
            if b["BPB_RootEntCnt"] or b["BPB_FATSz16"]:
                raise bad("a FAT32 volume (by its cluster count) has FAT12/16 root entries",
                          "BPB_RootEntCnt")
            self._root_cluster = b["BPB_RootClus"]
            if not self._valid_cluster(self._root_cluster):
                raise bad(f"BPB_RootClus {self._root_cluster} is not a data cluster",
                          "BPB_RootClus")
            if b["BPB_ExtFlags"] & L.FAT_EXT_FLAGS_MIRROR_OFF:
                active = b["BPB_ExtFlags"] & L.FAT_EXT_FLAGS_ACTIVE_MASK
                if active >= b["BPB_NumFATs"]:
                    raise bad(f"active FAT {active} does not exist", "BPB_ExtFlags")
                self._fat_start += active * self._fat_bytes
            label, vol_id = b["BS_VolLab"], b["BS_VolID"]
        else:
            self._root_cluster = 0
            e = L.FAT16_EBPB.unpack_dict(boot)
            label, vol_id = e["BS_VolLab"], e["BS_VolID"]
        if (self.cluster_count + 2) * self.fat_type > self._fat_bytes * 8:
            raise bad(f"the FAT ({self._fat_bytes} bytes) cannot hold {self.cluster_count} "
                      f"FAT{self.fat_type} entries", "BPB_FATSz16")
        self.volume_label = label.decode("cp437").rstrip(" ")
        self.volume_id = vol_id
        self._bad = L.FAT_BAD[self.fat_type]
        self._fat_cache: dict[int, bytes] = {}
        self._dir_cache: dict[int, tuple[FatEntry, ...]] = {}

    def __repr__(self) -> str:
        return (f"<FatFilesystem FAT{self.fat_type} at {self.region.start:#x} "
                f"clusters={self.cluster_count} cluster_size={self.cluster_size}>")

    # -- the FAT ------------------------------------------------------------------------

    def _valid_cluster(self, c: int) -> bool:
        return L.FIRST_DATA_CLUSTER <= c < L.FIRST_DATA_CLUSTER + self.cluster_count

    def _fat_read(self, pos: int, n: int) -> bytes:
        """``n`` bytes of the active FAT from ``pos``, through a small page cache."""
        out = b""
        while n > 0:
            page = pos // _FAT_PAGE
            data = self._fat_cache.get(page)
            if data is None:
                start = page * _FAT_PAGE
                data = self.region.read(self._fat_start + start,
                                        min(_FAT_PAGE, self._fat_bytes - start), "FAT")
                if len(self._fat_cache) >= _FAT_CACHE_PAGES:
                    self._fat_cache.clear()
                self._fat_cache[page] = data
            lo = pos % _FAT_PAGE
            piece = data[lo : lo + n]
            if not piece:
                raise DiskTruncatedError(f"FAT entry at {pos:#x} is past the FAT's "
                                         f"{self._fat_bytes} bytes", structure="FAT",
                                         offset=self.region.abs(self._fat_start + pos))
            out += piece
            pos += len(piece)
            n -= len(piece)
        return out

    def next_cluster(self, c: int) -> int | None:
        """The FAT entry of cluster ``c``: the next cluster, or None at end of chain."""
        if self.fat_type == 12:
            pos = c + c // 2
            v = int.from_bytes(self._fat_read(pos, 2), "little")
            v = v >> 4 if c & 1 else v & 0xFFF
        elif self.fat_type == 16:
            pos = c * 2
            v = int.from_bytes(self._fat_read(pos, 2), "little")
        else:
            pos = c * 4
            v = int.from_bytes(self._fat_read(pos, 4), "little") & L.FAT32_ENTRY_MASK
        if v > self._bad:
            return None
        where = self.region.abs(self._fat_start + pos)
        if v == self._bad:
            raise DiskError(f"cluster {c} chains to a cluster marked bad", structure="FAT entry",
                            offset=where)
        if not self._valid_cluster(v):
            raise DiskError(f"cluster {c} chains to {v:#x}, which is not a data cluster "
                            f"(2..{self.cluster_count + 1})", structure="FAT entry",
                            offset=where)
        return v

    def chain(self, first: int, limit: int | None = None) -> Iterator[int]:
        """The clusters of the chain from ``first``; at most ``limit`` (default: the cluster
        count), each at most once; a cluster seen twice is a loop and an error."""
        if not self._valid_cluster(first):
            raise DiskError(f"chain starts at {first:#x}, which is not a data cluster",
                            structure="FAT chain", offset=self.region.abs(self._fat_start))
        limit = self.cluster_count if limit is None else min(limit, self.cluster_count)
        seen: set[int] = set()
        c: int | None = first
        while c is not None and len(seen) < limit:
            if c in seen:
                raise DiskError(f"the cluster chain from {first} loops back to cluster {c}",
                                structure="FAT chain", offset=self.region.abs(self._fat_start))
            seen.add(c)
            yield c
            if len(seen) == limit:
                return
            c = self.next_cluster(c)

    def _cluster_pos(self, c: int) -> int:
        return self._data_start + (c - L.FIRST_DATA_CLUSTER) * self.cluster_size

    def read_chain(self, first: int, size: int, structure: str) -> bytes:
        """``size`` bytes from the chain at ``first`` (contiguous clusters read at once)."""
        if size == 0:
            return b""
        cs = self.cluster_size
        needed = -(-size // cs)
        if needed > self.cluster_count:
            raise DiskError(f"{structure} of {size} bytes is larger than the volume",
                            structure=structure, offset=self.region.abs(self._data_start))
        parts: list[bytes] = []
        run_start = run_len = 0
        got = 0
        for c in self.chain(first, needed):
            got += 1
            if run_len and c == run_start + run_len:
                run_len += 1
                continue
            if run_len:
                parts.append(self._read_run(run_start, run_len))
            run_start, run_len = c, 1
        if run_len:
            parts.append(self._read_run(run_start, run_len))
        if got < needed:
            raise DiskError(f"the cluster chain of {structure} ends after {got} clusters; "
                            f"its size {size} needs {needed}", structure=structure,
                            offset=self.region.abs(self._cluster_pos(first)))
        data = b"".join(parts)
        return data[:size]

    def _read_run(self, c: int, n: int) -> bytes:
        return self.region.read(self._cluster_pos(c), n * self.cluster_size, "FAT cluster")

    # -- directories --------------------------------------------------------------------

    def _dir_slots(self, first_cluster: int) -> Iterator[tuple[int, bytes]]:
        """(absolute offset, 32-byte slot) of a directory; cluster 0 is the root."""
        if first_cluster == 0 and self.fat_type != 32:
            pos = self._root_start
            size = self._root_entries * L.FAT_DIRENT_SIZE
            data = self.region.read(pos, size, "FAT root directory")
            for i in range(0, size, L.FAT_DIRENT_SIZE):
                yield self.region.abs(pos + i), data[i : i + L.FAT_DIRENT_SIZE]
            return
        if first_cluster == 0:
            first_cluster = self._root_cluster
        max_clusters = -(-L.FAT_MAX_DIR_ENTRIES * L.FAT_DIRENT_SIZE // self.cluster_size)
        for count, c in enumerate(self.chain(first_cluster), 1):
            if count > max_clusters:
                raise DiskError(f"directory at cluster {first_cluster} is longer than "
                                f"{L.FAT_MAX_DIR_ENTRIES} entries", structure="FAT directory",
                                offset=self.region.abs(self._cluster_pos(c)))
            pos = self._cluster_pos(c)
            data = self._read_run(c, 1)
            for i in range(0, self.cluster_size, L.FAT_DIRENT_SIZE):
                yield self.region.abs(pos + i), data[i : i + L.FAT_DIRENT_SIZE]

    def read_directory(self, first_cluster: int = 0) -> tuple[FatEntry, ...]:
        """The entries of the directory at ``first_cluster`` (0: the root), without the
        volume label, ``.`` and ``..``, deleted entries and orphaned long-name parts."""
        cached = self._dir_cache.get(first_cluster)
        if cached is not None:
            return cached
        out: list[FatEntry] = []
        lfn: dict[int, str] = {}
        expect = 0
        checksum = -1
        for where, slot in self._dir_slots(first_cluster):
            b0, attr = slot[0], slot[11]
            if b0 == L.DIR_END:
                break
            if b0 == L.DIR_FREE:
                lfn, expect = {}, 0
                continue
            if attr & L.ATTR_LONG_NAME_MASK == L.ATTR_LONG_NAME:
                e = L.FAT_LFN.unpack_dict(slot)
                order = b0 & L.LFN_ORD_MASK
                if b0 & L.LFN_LAST:
                    lfn, expect, checksum = {}, 0, e["LDIR_Chksum"]
                    if 0 < order <= L.LFN_MAX_ORD:
                        expect = order
                elif not (expect and order == expect - 1 and e["LDIR_Chksum"] == checksum):
                    lfn, expect = {}, 0
                    continue
                else:
                    expect = order
                if expect:
                    raw = e["LDIR_Name1"] + e["LDIR_Name2"] + e["LDIR_Name3"]
                    lfn[order] = raw.decode("utf-16-le", "replace")
                continue
            if attr & L.ATTR_VOLUME_ID:
                lfn, expect = {}, 0
                continue
            d = L.FAT_DIRENT.unpack_dict(slot)
            raw_name = d["DIR_Name"]
            long_name = None
            if expect == 1 and lfn and lfn_checksum(raw_name) == checksum:
                text = "".join(lfn[i] for i in sorted(lfn))
                long_name = text.split("\0", 1)[0]
            lfn, expect = {}, 0
            short = _short_name(raw_name, d["DIR_NTRes"])
            if short in (".", ".."):
                continue
            cluster = d["DIR_FstClusLO"]
            if self.fat_type == 32:
                cluster |= d["DIR_FstClusHI"] << 16
            out.append(FatEntry(long_name or short, short, attr, cluster, d["DIR_FileSize"],
                                where))
        result = tuple(out)
        if len(self._dir_cache) >= _DIR_CACHE:
            self._dir_cache.clear()
        self._dir_cache[first_cluster] = result
        return result

    # -- paths --------------------------------------------------------------------------

    def lookup(self, path: str) -> FatEntry | None:
        """The entry at ``path`` (``\\EFI\\BOOT\\BOOTX64.EFI``; case-insensitive), or None
        for the root. Raises :class:`DiskPathError` when a component is missing."""
        entry: FatEntry | None = None
        parts: list[FatEntry] = []
        for comp in _components(path):
            if comp == "..":
                if parts:
                    parts.pop()
                entry = parts[-1] if parts else None
                continue
            if entry is not None and not entry.is_dir:
                raise DiskPathError(f"{path}: {entry.name} is not a directory", fs_path=path)
            entry = self._find(entry, comp, path)
            parts.append(entry)
        return entry

    def _find(self, parent: FatEntry | None, name: str, path: str) -> FatEntry:
        cluster = 0 if parent is None else self._dir_cluster(parent)
        want = name.casefold()
        for e in self.read_directory(cluster):
            if e.name.casefold() == want or e.short_name.casefold() == want:
                return e
        raise DiskPathError(f"{path}: no {name!r} on the FAT volume", fs_path=path)

    def stat(self, path: str) -> FatEntry | None:
        return self.lookup(path)

    def exists(self, path: str) -> bool:
        try:
            self.lookup(path)
        except DiskPathError:
            return False
        return True

    def listdir(self, path: str = "\\") -> tuple[FatEntry, ...]:
        entry = self.lookup(path)
        if entry is None:
            return self.read_directory(0)
        if not entry.is_dir:
            raise DiskPathError(f"{path}: not a directory", fs_path=path)
        return self.read_directory(self._dir_cluster(entry))

    def _dir_cluster(self, entry: FatEntry) -> int:
        if entry.first_cluster == 0:  # only the root may have cluster 0
            raise DiskError(f"directory {entry.name!r} has no cluster",
                            structure="FAT directory entry", offset=entry.offset)
        return entry.first_cluster

    def read_file(self, path: str, *, max_size: int = MAX_FILE_SIZE) -> bytes:
        """The bytes of the file at ``path``."""
        entry = self.lookup(path)
        if entry is None or entry.is_dir:
            raise DiskPathError(f"{path}: is a directory", fs_path=path)
        return self.read_entry(entry, max_size=max_size)

    def read_entry(self, entry: FatEntry, *, max_size: int = MAX_FILE_SIZE) -> bytes:
        if entry.size > max_size:
            raise DiskError(f"file {entry.name!r} of {entry.size} bytes is larger than the "
                            f"{max_size} byte limit", structure="FAT directory entry",
                            offset=entry.offset)
        if entry.size and entry.first_cluster == 0:
            raise DiskTruncatedError(f"file {entry.name!r} has {entry.size} bytes but no "
                                     "cluster", structure="FAT directory entry",
                                     offset=entry.offset)
        return self.read_chain(entry.first_cluster, entry.size, f"file {entry.name!r}")

    def walk(self, path: str = "\\") -> Iterator[tuple[str, FatEntry]]:
        """Every entry under ``path``, depth first, as (``\\``-separated path, entry); each
        directory is visited once, at most 64 deep and 2^20 entries in all."""
        top = self.lookup(path)
        if top is not None and not top.is_dir:
            raise DiskPathError(f"{path}: not a directory", fs_path=path)
        prefix = "\\" + "\\".join(_components(path))
        start = 0 if top is None else self._dir_cluster(top)
        seen = {start}
        total = 0
        stack: list[tuple[str, int, int]] = [(prefix.rstrip("\\"), start, 0)]
        while stack:
            base, cluster, depth = stack.pop()
            for e in self.read_directory(cluster):
                total += 1
                if total > WALK_MAX_ENTRIES:
                    raise DiskError(f"more than {WALK_MAX_ENTRIES} entries under {path!r}",
                                    structure="FAT directory", offset=e.offset)
                full = f"{base}\\{e.name}"
                yield full, e
                if e.is_dir and e.first_cluster not in seen and depth < WALK_MAX_DEPTH:
                    if e.first_cluster == 0:
                        continue
                    seen.add(e.first_cluster)
                    stack.append((full, e.first_cluster, depth + 1))


def _short_name(raw: bytes, ntres: int) -> str:
    base = raw[:8].rstrip(b" ")
    ext = raw[8:11].rstrip(b" ")
    if base[:1] == bytes([L.DIR_KANJI_E5]):
        base = b"\xe5" + base[1:]
    b = base.decode("cp437")
    e = ext.decode("cp437")
    if ntres & L.NTRES_LOWER_BASE:
        b = b.lower()
    if ntres & L.NTRES_LOWER_EXT:
        e = e.lower()
    return f"{b}.{e}" if e else b


def _components(path: str) -> list[str]:
    return [c for c in path.replace("/", "\\").split("\\") if c and c != "."]
