"""Native qcow2 reader: the guest view of a qcow2 image held in memory.

Reference: QEMU ``docs/interop/qcow2.rst``; docs/reference/formats.md section 5. Where the spec
leaves room, the reader does what QEMU's block/qcow2*.c does, because QEMU is the program
that boots the variable store.

Read:
    version 2 and 3 headers, header_length and the optional compression_type field; cluster
    sizes 512 B to 2 MiB; standard and extended (subcluster) L2 entries; zero clusters (the
    version 3 zero flag and the subcluster zero bits) and unallocated clusters, both read as
    zeros; deflate- and zstd-compressed clusters (zstd needs ``compression.zstd`` or the
    ``zstandard`` package); header extensions (walked and kept; the feature name table names
    unknown feature bits); images with the dirty bit (read-only use is safe, ``notes`` says so).
Refused with :class:`Qcow2UnsupportedError`:
    backing files, external data files, encryption, unknown incompatible feature bits.
Refused with :class:`Qcow2Error`:
    images marked corrupt and every inconsistency that would make the guest view wrong.
Ignored:
    refcounts (the reader never needs them), internal snapshots (only the active L1 table is
    read) and bitmaps.

Every error is a :class:`~fwtools.errors.ParseError` carrying the absolute offset of the bad
field. The image is mapped lazily: :meth:`Qcow2Image.parse` checks the header, the header
extensions and the L1 table; L2 tables and data clusters are looked at by :meth:`read`.
"""

from __future__ import annotations

import functools
import importlib
import struct
import zlib
from collections.abc import Iterator
from types import ModuleType
from typing import Final

from fwtools._base.record import Record
from fwtools.errors import ParseError, UsageError
from fwtools.formats.qcow2 import layout as L
from fwtools.formats.qcow2.header import (  # the header's public names, re-exported
    DEFAULT_MAX_VIRTUAL_SIZE as DEFAULT_MAX_VIRTUAL_SIZE,
)
from fwtools.formats.qcow2.header import FeatureName as FeatureName
from fwtools.formats.qcow2.header import HeaderExtension as HeaderExtension
from fwtools.formats.qcow2.header import Qcow2Error as Qcow2Error
from fwtools.formats.qcow2.header import Qcow2Header as Qcow2Header
from fwtools.formats.qcow2.header import Qcow2TruncatedError as Qcow2TruncatedError
from fwtools.formats.qcow2.header import Qcow2UnsupportedError as Qcow2UnsupportedError
from fwtools.formats.qcow2.header import (
    _check_features,
    _feature_names,
    _parse_header,
    _read_l1,
    _walk_extensions,
)

# Extent kinds.
DATA: Final = "data"  # a standard host cluster (or subcluster run)
COMPRESSED: Final = "compressed"
ZERO: Final = "zero"  # zero flag / subcluster zero bit: reads as zeros
UNALLOCATED: Final = "unallocated"  # no backing file, so it reads as zeros too


class Extent(Record):
    """A run of the guest view with one kind of mapping.

    ``host_offset`` is where the bytes of ``guest_offset`` are in the file for ``data``, the
    start of the compressed stream for ``compressed`` (whose guest run is at most a cluster),
    and ``None`` for ``zero`` and ``unallocated``.
    """

    guest_offset: int
    length: int
    kind: str
    host_offset: int | None


# A run as produced by Qcow2Image._runs: (guest offset, length, kind, a, b). For DATA a is the
# host offset of the first byte; for COMPRESSED a/b are the start/end of the compressed bytes
# and the run lies inside one cluster; otherwise a and b are 0.
_Run = tuple[int, int, str, int, int]


class Qcow2Image:
    """The guest view of a qcow2 image held in memory (build it with :meth:`parse`).

    Accessible attributes: ``header`` (:class:`Qcow2Header`), ``extensions``
    (:class:`HeaderExtension` tuple, file order), ``feature_names`` (from the feature name
    table), ``notes`` (things worth telling a user that do not stop reading, e.g. the dirty
    bit), ``path``, and the properties below. Reads never change the image.
    """

    __slots__ = (
        "_data",
        "_l1",
        "_l2_entries",
        "_l2_entry_size",
        "_view",
        "extensions",
        "feature_names",
        "header",
        "notes",
        "path",
    )

    def __init__(
        self,
        data: bytes,
        header: Qcow2Header,
        extensions: tuple[HeaderExtension, ...],
        feature_names: tuple[FeatureName, ...],
        l1: tuple[int, ...],
        notes: tuple[str, ...],
        path: str | None,
    ) -> None:
        self._data = data
        self._view = memoryview(data)
        self.header = header
        self.extensions = extensions
        self.feature_names = feature_names
        self._l1 = l1  # L2 table offsets (0 = unallocated) for the L1 entries the size needs
        self._l2_entry_size = (
            L.EXTENDED_L2_ENTRY_SIZE if header.incompatible_features & L.INCOMPAT_EXTL2
            else L.ENTRY_SIZE
        )  # fmt: skip
        self._l2_entries = (1 << header.cluster_bits) // self._l2_entry_size
        self.notes = notes
        self.path = path

    # -- header facts -------------------------------------------------------------------

    @property
    def data(self) -> bytes:
        """The image file's bytes, as parsed (never changed by this object)."""
        return self._data

    @property
    def version(self) -> int:
        return self.header.version

    @property
    def cluster_bits(self) -> int:
        return self.header.cluster_bits

    @property
    def cluster_size(self) -> int:
        return 1 << self.header.cluster_bits

    @property
    def virtual_size(self) -> int:
        return self.header.size

    @property
    def compression_type(self) -> str:
        """``"deflate"`` or ``"zstd"`` (QEMU calls deflate "zlib")."""
        return L.COMPRESSION_TYPES[self.header.compression_type]

    @property
    def incompatible_features(self) -> int:
        return self.header.incompatible_features

    @property
    def compatible_features(self) -> int:
        return self.header.compatible_features

    @property
    def autoclear_features(self) -> int:
        return self.header.autoclear_features

    @property
    def dirty(self) -> bool:
        """Incompatible bit 0: QEMU did not close the image cleanly (refcounts may be stale)."""
        return bool(self.header.incompatible_features & L.INCOMPAT_DIRTY)

    @property
    def extended_l2(self) -> bool:
        """Incompatible bit 4: L2 entries are 128-bit with 32 subclusters per cluster."""
        return bool(self.header.incompatible_features & L.INCOMPAT_EXTL2)

    @property
    def lazy_refcounts(self) -> bool:
        """Compatible bit 0."""
        return bool(self.header.compatible_features & L.COMPAT_LAZY_REFCOUNTS)

    @property
    def refcount_bits(self) -> int:
        return 1 << self.header.refcount_order

    @property
    def compat(self) -> str:
        """The ``compat`` level ``qemu-img info`` shows: "0.10" (version 2) or "1.1"."""
        return "0.10" if self.header.version == L.VERSION_2 else "1.1"

    @property
    def backing_format(self) -> str | None:
        """The backing file format extension, if any (only seen with backing files)."""
        for ext in self.extensions:
            if ext.type == L.EXT_BACKING_FORMAT:
                return ext.data.decode("utf-8", "replace")
        return None

    def __repr__(self) -> str:
        where = f" {self.path!r}" if self.path else ""
        return (
            f"<Qcow2Image{where} v{self.version} cluster_size={self.cluster_size} "
            f"virtual_size={self.virtual_size} compression={self.compression_type}>"
        )

    # -- parsing --------------------------------------------------------------------------

    @classmethod
    def parse(
        cls,
        data: bytes,
        *,
        path: str | None = None,
        max_virtual_size: int = DEFAULT_MAX_VIRTUAL_SIZE,
    ) -> Qcow2Image:
        """Check the header, header extensions and L1 table of ``data``.

        ``max_virtual_size`` bounds the guest size a caller is prepared to materialise
        (:meth:`to_raw` builds a buffer that large). Raises :class:`Qcow2Error` (or a
        subclass) naming the offset of the bad field; ``path`` is put into errors.
        """
        try:
            return cls._parse(data, path, max_virtual_size)
        except ParseError as exc:
            if path is not None:
                exc.with_path(path)
            raise

    @classmethod
    def _parse(cls, data: bytes, path: str | None, max_virtual_size: int) -> Qcow2Image:
        header = _parse_header(data, max_virtual_size)
        extensions = _walk_extensions(data, header)
        feature_names = _feature_names(extensions)
        notes = _check_features(data, header, extensions, feature_names)
        l1 = _read_l1(data, header)
        return cls(data, header, extensions, feature_names, l1, notes, path)

    # -- reading --------------------------------------------------------------------------

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        """``length`` bytes of the guest view from ``offset`` (to the end when ``None``).

        Unallocated and zero clusters read as zeros. Reading outside the virtual size is a
        :class:`~fwtools.errors.UsageError`. Memory: the result plus at most the longest
        zero run and the decompressed clusters in range; data clusters are not copied twice.
        """
        end = self._check_range(offset, length)
        try:
            return self._read(offset, end)
        except ParseError as exc:
            if self.path is not None:
                exc.with_path(self.path)
            raise

    def to_raw(self) -> bytes:
        """The whole guest view: what ``qemu-img convert -O raw`` writes."""
        return self.read(0, self.virtual_size)

    @property
    def l2_tables(self) -> tuple[int, ...]:
        """The L2 table offsets of the L1 entries the virtual size uses (0: unallocated)."""
        return self._l1

    def guest_runs(self) -> Iterator[tuple[int, int, str, int | None, int]]:
        """``(guest offset, length, kind, host start, host end)`` for the whole guest, one
        per (sub)cluster run, unmerged; host start is None unless the run is data or
        compressed (whose host end is the end of its compressed bytes). For overlap checks
        (:mod:`fwtools.formats.qcow2.update`)."""
        for g, n, kind, a, b in self._runs(0, self.header.size):
            yield g, n, kind, (a if kind in (DATA, COMPRESSED) else None), b

    def extents(self, offset: int = 0, length: int | None = None) -> Iterator[Extent]:
        """The mapping of the guest range, adjacent runs of one kind merged.

        Compressed clusters are reported one per cluster and are not decompressed here.
        """
        end = self._check_range(offset, length)
        return _with_path(self._extents(offset, end), self.path)

    def _check_range(self, offset: int, length: int | None) -> int:
        size = self.header.size
        if length is None:
            length = size - offset
        if offset < 0 or length < 0 or offset + length > size:
            raise UsageError(
                f"read of {length} bytes at {offset:#x} is outside the virtual size {size:#x}"
            )
        return offset + length

    def _read(self, start: int, end: int) -> bytes:
        if start == end:
            return b""
        cluster_mask = self.cluster_size - 1
        # Parts: a memoryview of the file, a decompressed cluster (bytes), or an int for a
        # run of zeros; runs of one kind are merged so the join sees few, large parts.
        parts: list[memoryview | bytes | int] = []
        run_kind = ""
        run_a = 0
        run_n = 0
        view = self._view
        for g, n, kind, a, b in self._runs(start, end):
            if kind == DATA:
                if run_kind == DATA and run_a + run_n == a:
                    run_n += n
                    continue
            elif kind in (ZERO, UNALLOCATED) and run_kind == ZERO:
                run_n += n
                continue
            if run_kind == DATA:
                parts.append(view[run_a : run_a + run_n])
            elif run_kind == ZERO:
                parts.append(run_n)
            run_kind, run_a, run_n = "", 0, 0
            if kind == DATA:
                run_kind, run_a, run_n = DATA, a, n
            elif kind == COMPRESSED:
                cluster = self._decompress(a, b)
                lo = g & cluster_mask
                parts.append(cluster if n == len(cluster) else cluster[lo : lo + n])
            else:
                run_kind, run_n = ZERO, n
        if run_kind == DATA:
            parts.append(view[run_a : run_a + run_n])
        elif run_kind == ZERO:
            parts.append(run_n)
        if len(parts) == 1 and isinstance(parts[0], int):
            return bytes(parts[0])
        # Zero runs are slices of one shared buffer of at most _ZERO_CHUNK bytes, so the
        # join needs the result, the decompressed clusters and little else.
        longest = max((p for p in parts if isinstance(p, int)), default=0)
        zeros = memoryview(bytes(min(longest, _ZERO_CHUNK)))
        return b"".join(_expand_zero_runs(parts, zeros))

    def _extents(self, start: int, end: int) -> Iterator[Extent]:
        pending: Extent | None = None
        for g, n, kind, a, _ in self._runs(start, end):
            host = a if kind in (DATA, COMPRESSED) else None
            if pending is not None and pending.kind == kind and kind != COMPRESSED:
                contiguous = pending.host_offset is None or (
                    host == pending.host_offset + pending.length
                )
                if contiguous:
                    pending = Extent(pending.guest_offset, pending.length + n, kind,
                                     pending.host_offset)  # fmt: skip
                    continue
            if pending is not None:
                yield pending
            pending = Extent(g, n, kind, host)
        if pending is not None:
            yield pending

    def _runs(self, start: int, end: int) -> Iterator[_Run]:
        """The mapping of guest bytes [start, end), one run per (sub)cluster or L2 table."""
        data = self._data
        bits = self.header.cluster_bits
        cs = 1 << bits
        per_l2 = self._l2_entries
        esize = self._l2_entry_size
        extended = esize == L.EXTENDED_L2_ENTRY_SIZE
        words_per_entry = esize // L.ENTRY_SIZE
        c = start >> bits
        last = (end - 1) >> bits
        while c <= last:
            l1_index = c // per_l2
            table_first = l1_index * per_l2
            table_last = min(last, table_first + per_l2 - 1)
            l2_offset = self._l1[l1_index]
            if l2_offset == 0:
                g0 = max(start, c << bits)
                g1 = min(end, (table_last + 1) << bits)
                yield (g0, g1 - g0, UNALLOCATED, 0, 0)
                c = table_last + 1
                continue
            count = table_last - c + 1
            entry_pos = l2_offset + (c - table_first) * esize
            # _read_l1 made sure every L2 entry the virtual size needs is inside the file.
            words = struct.unpack_from(f">{count * words_per_entry}Q", data, entry_pos)
            for k in range(count):
                base = (c + k) << bits
                lo = max(start, base)
                hi = min(end, base + cs)
                pos = entry_pos + k * esize
                if extended:
                    yield from self._extended_entry(
                        words[2 * k], words[2 * k + 1], pos, base, lo, hi
                    )
                else:
                    yield self._standard_entry(words[k], pos, base, lo, hi)
            c = table_last + 1

    def _standard_entry(self, entry: int, pos: int, base: int, lo: int, hi: int) -> _Run:
        """Decode a standard L2 entry at file offset ``pos`` for the guest cluster at ``base``."""
        if entry & L.OFLAG_COMPRESSED:
            return self._compressed_entry(entry, pos, lo, hi)
        if entry & L.OFLAG_ZERO:
            if self.header.version < L.VERSION_3:
                # QEMU: "Zero cluster entry found in pre-v3 image" (block/qcow2-cluster.c).
                raise Qcow2Error(
                    f"L2 entry {entry:#018x} has the zero flag, which version 2 images lack",
                    structure="L2 entry",
                    offset=pos,
                )
            return (lo, hi - lo, ZERO, 0, 0)
        host = entry & L.L2E_OFFSET_MASK
        if host == 0:
            return (lo, hi - lo, UNALLOCATED, 0, 0)
        self._check_data_cluster(host, pos, base, self.cluster_size)
        return (lo, hi - lo, DATA, host + (lo - base), 0)

    def _extended_entry(
        self, entry: int, bitmap: int, pos: int, base: int, lo: int, hi: int
    ) -> Iterator[_Run]:
        """Decode an extended L2 entry (qcow2.rst "Extended L2 Entries")."""
        if entry & L.OFLAG_COMPRESSED:
            # "Compressed data clusters don't have subclusters"; the bitmap is reserved.
            yield self._compressed_entry(entry, pos, lo, hi)
            return
        alloc = bitmap & L.SUBCLUSTER_ALLOC_MASK
        zero = bitmap >> 32
        if alloc & zero:
            first = (alloc & zero & -(alloc & zero)).bit_length() - 1
            raise Qcow2Error(
                f"subcluster {first} is marked both allocated and reading as zeros "
                f"(bitmap {bitmap:#018x})",
                structure="extended L2 entry bitmap",
                offset=pos + L.ENTRY_SIZE,
            )
        host = entry & L.L2E_OFFSET_MASK
        if host == 0 and alloc:
            raise Qcow2Error(
                f"subclusters are allocated (bitmap {bitmap:#018x}) but the entry has no "
                "host offset",
                structure="extended L2 entry",
                offset=pos,
            )
        sub = self.cluster_size // L.SUBCLUSTERS_PER_CLUSTER
        if alloc:
            self._check_data_cluster(host, pos, base, alloc.bit_length() * sub)
        if alloc == L.SUBCLUSTER_ALLOC_MASK:
            yield (lo, hi - lo, DATA, host + (lo - base), 0)
            return
        if alloc == 0 and zero in (0, L.SUBCLUSTER_ALLOC_MASK):
            yield (lo, hi - lo, ZERO if zero else UNALLOCATED, 0, 0)
            return
        for i in range((lo - base) // sub, (hi - 1 - base) // sub + 1):
            s0 = max(lo, base + i * sub)
            s1 = min(hi, base + (i + 1) * sub)
            if alloc >> i & 1:
                yield (s0, s1 - s0, DATA, host + (s0 - base), 0)
            elif zero >> i & 1:
                yield (s0, s1 - s0, ZERO, 0, 0)
            else:
                yield (s0, s1 - s0, UNALLOCATED, 0, 0)

    def _check_data_cluster(self, host: int, pos: int, base: int, extent: int) -> None:
        """A data cluster must be cluster aligned and its guest-visible bytes in the file."""
        cs = self.cluster_size
        if host & (cs - 1):
            raise Qcow2Error(
                f"data cluster offset {host:#x} is not aligned to the cluster size {cs:#x}",
                structure="L2 entry",
                offset=pos,
            )
        # The last guest cluster may be only partly inside the virtual size; QEMU then writes
        # only that part, so only the visible bytes have to exist.
        visible = min(extent, self.header.size - base)
        if host + visible > len(self._data):
            raise Qcow2TruncatedError(
                f"data cluster at {host:#x} (guest offset {base:#x}, {visible} bytes used) "
                f"is outside the file ({len(self._data):#x} bytes)",
                structure="L2 entry",
                offset=pos,
            )

    def _compressed_entry(self, entry: int, pos: int, lo: int, hi: int) -> _Run:
        """qcow2.rst "Compressed Clusters Descriptor", computed as block/qcow2.c does."""
        bits = self.header.cluster_bits
        x = L.compressed_offset_bits(bits)
        host = entry & ((1 << x) - 1)
        sectors = ((entry >> x) & L.compressed_sector_mask(bits)) + 1
        size = sectors * L.COMPRESSED_SECTOR_SIZE - (host & (L.COMPRESSED_SECTOR_SIZE - 1))
        if host == 0 or host >= len(self._data):
            raise Qcow2TruncatedError(
                f"compressed cluster data at {host:#x} is outside the file "
                f"({len(self._data):#x} bytes)",
                structure="L2 entry (compressed)",
                offset=pos,
            )
        # The last sector may be cut off by the end of the file; QEMU reads it as zeros and
        # decompression stops once a whole cluster came out.
        return (lo, hi - lo, COMPRESSED, host, min(host + size, len(self._data)))

    def _decompress(self, start: int, end: int) -> bytes:
        cs = self.cluster_size
        chunk = self._view[start:end]
        if self.header.compression_type == L.COMPRESSION_ZSTD:
            out = _zstd_decompress(chunk, cs, start)
        else:
            try:
                out = zlib.decompressobj(L.DEFLATE_WINDOW_BITS).decompress(chunk, cs)
            except zlib.error as exc:
                raise Qcow2Error(
                    f"deflate-compressed cluster does not inflate: {exc}",
                    structure="compressed cluster",
                    offset=start,
                ) from None
        if len(out) != cs:
            raise Qcow2Error(
                f"compressed cluster inflates to {len(out)} bytes instead of the cluster size {cs}",
                structure="compressed cluster",
                offset=start,
            )
        return out


_ZERO_CHUNK: Final = 1 << 20


def _expand_zero_runs(
    parts: list[memoryview | bytes | int], zeros: memoryview
) -> Iterator[memoryview | bytes]:
    chunk = len(zeros)
    for part in parts:
        if not isinstance(part, int):
            yield part
            continue
        for _ in range(part // chunk):
            yield zeros
        if part % chunk:
            yield zeros[: part % chunk]


def _with_path(extents: Iterator[Extent], path: str | None) -> Iterator[Extent]:
    """``extents`` with ``path`` put into the ParseErrors it raises while iterating."""
    try:
        yield from extents
    except ParseError as exc:
        if path is not None:
            exc.with_path(path)
        raise


def qcow2_to_raw(
    data: bytes, *, path: str | None = None, max_virtual_size: int = DEFAULT_MAX_VIRTUAL_SIZE
) -> bytes:
    """The guest view of the qcow2 image ``data`` (``qemu-img convert -f qcow2 -O raw``)."""
    return Qcow2Image.parse(data, path=path, max_virtual_size=max_virtual_size).to_raw()


# -- zstd --------------------------------------------------------------------------------------


@functools.cache
def _zstd_module() -> ModuleType | None:
    """``compression.zstd`` (Python >= 3.14) or the ``zstandard`` package, if importable."""
    for name in ("compression.zstd", "zstandard"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _zstd_decompress(chunk: memoryview, size: int, offset: int) -> bytes:
    """Decompress one zstd-compressed cluster as QEMU does (block/qcow2-threads.c).

    QEMU accepts several frames and stops once a whole cluster came out, ignoring the rest
    of the last sector.
    """
    module = _zstd_module()
    if module is None:
        raise Qcow2UnsupportedError(
            f"zstd-compressed cluster at offset {offset:#x}: no zstd library installed "
            "(Python >= 3.14 has compression.zstd; otherwise install the 'zstandard' package)",
            structure="compressed cluster",
            offset=offset,
        )
    out = bytearray()
    try:
        if module.__name__ == "zstandard":
            reader = module.ZstdDecompressor().stream_reader(bytes(chunk), read_across_frames=True)
            while len(out) < size:
                piece = reader.read(size - len(out))
                if not piece:
                    break
                out += piece
        else:
            rest = bytes(chunk)
            while len(out) < size and rest:
                decompressor = module.ZstdDecompressor()
                out += decompressor.decompress(rest, size - len(out))
                if not decompressor.eof:
                    break
                rest = decompressor.unused_data
    except (module.ZstdError, ValueError) as exc:
        raise Qcow2Error(
            f"zstd-compressed cluster does not decompress: {exc}",
            structure="compressed cluster",
            offset=offset,
        ) from None
    return bytes(out)
