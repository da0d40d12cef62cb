"""In-place updates of a qcow2 image's guest data.

Images with internal snapshots, encryption or an external data file are refused, and so are
images whose L1 or refcount table does not start on a cluster boundary (QEMU will not open
them). When the
guest range lies in allocated, uncompressed data clusters, the new bytes replace the old ones
at their host offsets and nothing else changes (header, L1/L2 tables and refcounts stay as
they are), so an image ``qemu-img check`` found clean stays clean.

When the range lies in one guest cluster that is unallocated or a plain zero cluster (standard
L2 entries, 16-bit refcounts, no backing file, not dirty), a new data cluster is appended at
the cluster-aligned end of the file holding the old guest view (zeros) with the payload, and,
if that part of the guest has no L2 table yet, a new zeroed L2 table too; the L2 (and L1)
entry gets the host offset with the COPIED flag and the new clusters get refcount 1 in the
existing refcount blocks. When a refcount block would be missing (a refcount table entry of
0) the update is refused rather than growing refcount structures. Compressed clusters are
always refused (:class:`Qcow2UnsupportedError`).

- :func:`plan_guest_write` returns the host patches ``[(host_offset, bytes)]``, so a caller
  can apply them to a file without rewriting it whole;
- :func:`write_guest` returns the new image bytes.
"""

from __future__ import annotations

from typing import NoReturn

from fwtools.errors import UsageError
from fwtools.formats.qcow2 import layout as L
from fwtools.formats.qcow2.header import (
    Qcow2Error,
    Qcow2TruncatedError,
    Qcow2UnsupportedError,
    _field,
)
from fwtools.formats.qcow2.image import COMPRESSED, DATA, UNALLOCATED, ZERO, Qcow2Image

HostPatch = tuple[int, bytes]


def plan_guest_write(image: Qcow2Image, offset: int, payload: bytes) -> list[HostPatch]:
    """Where ``payload`` at guest ``offset`` goes in the file, as ``(host_offset, bytes)``.

    Raises :class:`Qcow2UnsupportedError` when the range is not entirely in allocated,
    uncompressed, unshared data clusters, and :class:`~fwtools.errors.UsageError` when it
    is outside the virtual size.
    """
    if offset < 0 or offset + len(payload) > image.virtual_size:
        raise UsageError(
            f"guest range {offset:#x}+{len(payload):#x} is outside the virtual size "
            f"{image.virtual_size:#x}"
        )
    header = image.header
    problems = []
    if header.crypt_method != L.CRYPT_NONE:
        problems.append("it is encrypted")
    if header.incompatible_features & L.INCOMPAT_DATA_FILE:
        problems.append("its data is in an external data file")
    if header.nb_snapshots:
        problems.append(f"it has {header.nb_snapshots} internal snapshot(s) sharing clusters")
    if problems:
        raise Qcow2UnsupportedError(
            "cannot update the image in place: " + "; ".join(problems),
            structure="qcow2 header",
            offset=0,
            path=image.path,
        )
    _refuse_misaligned_tables(image)
    patches: list[HostPatch] = []
    if not payload:
        return patches
    extents = list(image.extents(offset, len(payload)))
    if any(e.kind in (UNALLOCATED, ZERO) for e in extents):
        return _allocate(image, offset, payload)
    for extent in extents:
        if extent.kind != DATA:
            raise Qcow2UnsupportedError(
                f"guest bytes {extent.guest_offset:#x}..{extent.guest_offset + extent.length:#x}"
                f" are {extent.kind}, not an allocated data cluster; only allocated, "
                "uncompressed clusters can be rewritten in place",
                structure="L2 entry",
                path=image.path,
            )
        assert extent.host_offset is not None  # DATA extents always have one
        start = extent.guest_offset - offset
        patches.append((extent.host_offset, payload[start : start + extent.length]))
    _refuse_metadata_overlap(image, patches)
    _refuse_shared(image, patches)
    return patches


# -- overlap checks -----------------------------------------------------------------------
#
# A corrupt (or hostile) image can map a guest data cluster onto its own metadata. QEMU
# refuses such writes (qcow2_check_metadata_overlap, "Preventing invalid write on
# metadata"); without the same checks a guest write corrupted the image or, the other way
# round, a refcount update changed guest data (issue 8: found by the qcow2 fuzz target,
# testdata/fuzz/qcow2/data-cluster-is-refcount-block.bin).


def _overlap_error(image: Qcow2Image, host: int, what: str) -> NoReturn:
    raise Qcow2Error(
        f"host offset {host:#x} is both {what}: the image is corrupt "
        "(run qemu-img check); refusing to write",
        structure="qcow2 metadata",
        offset=host,
        path=image.path,
    )


def _refuse_misaligned_tables(image: Qcow2Image) -> None:
    """The L1 and refcount tables must start on a cluster boundary; QEMU will not even open
    an image where they do not ("L1 table offset invalid", "Reference count table offset
    invalid"). A refcount table inside the header made a refcount update rewrite header
    fields (issue 8; found by atheris:
    testdata/fuzz/qcow2/crash-refcount-table-in-header-8dbc11c7.bin)."""
    header = image.header
    for name, value in (("l1_table_offset", header.l1_table_offset),
                        ("refcount_table_offset", header.refcount_table_offset)):
        if value % image.cluster_size:
            raise Qcow2Error(
                f"{name} {value:#x} is not a multiple of the cluster size "
                f"{image.cluster_size:#x}: the image is corrupt (QEMU refuses to open it); "
                "refusing to write",
                structure=f"qcow2 header.{name}",
                offset=_field(name),
                path=image.path,
            )


def _metadata_regions(image: Qcow2Image) -> list[tuple[int, int, str]]:
    """(start, size, name) of the metadata a write must keep apart from other structures:
    the header cluster, the L1 table, the refcount table and the L2 tables."""
    header = image.header
    cs = image.cluster_size
    regions = [(0, cs, "the header cluster"),
               (header.l1_table_offset, header.l1_size * L.ENTRY_SIZE, "the L1 table"),
               (header.refcount_table_offset, header.refcount_table_clusters * cs,
                "the refcount table")]
    return regions + [(l2, cs, "an L2 table") for l2 in image.l2_tables if l2]


def _refuse_metadata_overlap(image: Qcow2Image, data_patches: list[HostPatch]) -> None:
    """Guest data about to be written in place must not lie on metadata: the header cluster,
    the L1 table, an L2 table, the refcount table or a refcount block."""
    header = image.header
    data = image.data
    cs = image.cluster_size
    regions = _metadata_regions(image)
    rt = header.refcount_table_offset
    table = bytes(data[rt : rt + header.refcount_table_clusters * cs])
    for host, chunk in data_patches:
        for start, size, what in regions:
            if host < start + size and start < host + len(chunk):
                _overlap_error(image, host, f"guest data and {what}")
        # Is the data cluster a refcount block? Look its offset up in the refcount table.
        cluster = host & ~(cs - 1)
        if _has_entry(table, cluster, L.REFTABLE_OFFSET_MASK):
            _overlap_error(image, host, "guest data and a refcount block")


def _refuse_shared(image: Qcow2Image, data_patches: list[HostPatch]) -> None:
    """A host cluster rewritten in place must back exactly one guest cluster: two L2 entries
    pointing at it (a corrupt image, or refcounts > 1 without snapshots) would make the write
    change the other guest cluster too (found by the qcow2 fuzz target;
    testdata/fuzz/qcow2/shared-data-cluster.bin)."""
    cs = image.cluster_size
    wanted = {host & ~(cs - 1) for host, _chunk in data_patches}
    seen: dict[int, int] = {}
    for g, n, kind, a, _b in image.guest_runs():
        if kind != DATA or a is None:
            continue
        for cluster in range(a & ~(cs - 1), a + n, cs):
            if cluster in wanted:
                first = seen.setdefault(cluster, g)
                if first >> image.header.cluster_bits != g >> image.header.cluster_bits:
                    _overlap_error(image, cluster, f"the data of guest offsets {first:#x} and "
                                   f"{g:#x} (a shared cluster)")


def _has_entry(table: bytes, value: int, mask: int) -> bool:
    """Whether a big-endian 64-bit entry of ``table`` has ``value`` under ``mask``."""
    needle = value.to_bytes(8, "big")[1:7]  # offset bytes; the flag bits are outside them
    pos = table.find(needle, 1)
    while pos != -1:
        start = pos - 1
        if start % 8 == 0 and int.from_bytes(table[start : start + 8], "big") & mask == value:
            return True
        pos = table.find(needle, pos + 1)
    return False


def _refuse_data_overlap(image: Qcow2Image, metadata_patches: list[HostPatch]) -> None:
    """Metadata entries about to be updated (refcounts, L1/L2 entries) must not lie in a
    cluster the guest maps as data (plain, preallocated-zero or compressed)."""
    cs = image.cluster_size
    targets = {host & ~(cs - 1): host for host, _chunk in metadata_patches}
    for _g, n, kind, a, b in image.guest_runs():
        if a is None:
            continue
        end = b if kind == COMPRESSED else a + n
        for cluster, host in targets.items():
            if a < cluster + cs and cluster < end:
                _overlap_error(image, host, f"metadata and in a {kind} guest cluster")


def write_guest(data: bytes, offset: int, payload: bytes, *, path: str | None = None) -> bytes:
    """The image ``data`` with ``payload`` written at guest ``offset`` (see
    :func:`plan_guest_write` for what is refused); only those host bytes differ."""
    image = Qcow2Image.parse(data, path=path, max_virtual_size=1 << 62)
    out = bytearray(data)
    for host, chunk in plan_guest_write(image, offset, payload):
        if host + len(chunk) > len(out):
            out.extend(bytes(host + len(chunk) - len(out)))
        out[host : host + len(chunk)] = chunk
    return bytes(out)


def _refuse(message: str, image: Qcow2Image, structure: str = "qcow2 header") -> NoReturn:
    raise Qcow2UnsupportedError(
        f"cannot allocate a cluster in place: {message}", structure=structure, path=image.path
    )


def _allocate(image: Qcow2Image, offset: int, payload: bytes) -> list[HostPatch]:
    """Patches that map the guest cluster of ``offset`` to a new data cluster."""
    header = image.header
    data = image.data
    bits = header.cluster_bits
    cs = 1 << bits
    c = offset >> bits
    if (offset + len(payload) - 1) >> bits != c:
        _refuse("the range spans several clusters", image)
    if header.incompatible_features & L.INCOMPAT_EXTL2:
        _refuse("extended L2 entries are not supported here", image)
    if header.refcount_order != L.REFCOUNT_ORDER_DEFAULT:
        _refuse(f"refcount_order {header.refcount_order} (only 16-bit refcounts)", image)
    if header.backing_file_offset:
        _refuse("the image has a backing file that would supply the rest of the cluster", image)
    if header.incompatible_features & L.INCOMPAT_DIRTY:
        _refuse("the dirty bit is set (refcounts may be stale: run qemu-img check -r)", image)
    per_l2 = cs // L.ENTRY_SIZE
    l1_index, l2_index = divmod(c, per_l2)
    l1_pos = header.l1_table_offset + l1_index * L.ENTRY_SIZE
    (l1_entry,) = L.ENTRY.unpack_from(data, l1_pos)
    l2_table = l1_entry & L.L1E_OFFSET_MASK
    if l2_table:
        l2_pos = l2_table + l2_index * L.ENTRY_SIZE
        (l2_entry,) = L.ENTRY.unpack_from(data, l2_pos)
        if l2_entry & L.L2E_OFFSET_MASK or l2_entry & L.OFLAG_COMPRESSED:
            _refuse(f"L2 entry {l2_entry:#018x} is a preallocated zero cluster", image,
                    "L2 entry")

    # New clusters at the cluster-aligned end of the file: [L2 table,] data.
    end = -(-len(data) // cs) * cs
    new_l2 = end if not l2_table else 0
    new_data = end + (cs if new_l2 else 0)
    new_clusters = [h for h in (new_l2, new_data) if h]

    # Refcounts: 16-bit entries in existing refcount blocks.
    per_block = cs // L.REFCOUNT16.size
    rt = header.refcount_table_offset
    rt_entries = header.refcount_table_clusters * cs // L.ENTRY_SIZE
    refcount_patches: dict[int, bytes] = {}
    for host in new_clusters:
        block_index, index = divmod(host >> bits, per_block)
        if block_index >= rt_entries:
            _refuse("the refcount table would have to grow", image, "refcount table")
        rt_pos = rt + block_index * L.ENTRY_SIZE
        if rt_pos + L.ENTRY_SIZE > len(data):
            # The header's refcount_table_offset is not checked at parse time (reading needs
            # no refcounts): a table past the end of the file made this a struct.error
            # (issue 8; testdata/fuzz/qcow2/refcount-table-past-eof.bin).
            raise Qcow2TruncatedError(
                f"refcount table entry {block_index} at {rt_pos:#x} is outside the file "
                f"({len(data):#x} bytes)",
                structure="qcow2 header.refcount_table_offset",
                offset=_field("refcount_table_offset"),
                path=image.path,
            )
        (rt_entry,) = L.ENTRY.unpack_from(data, rt_pos)
        block = rt_entry & L.REFTABLE_OFFSET_MASK
        if block == 0 or block + cs > len(data):
            _refuse("a new refcount block would be needed", image, "refcount table")
        if block % cs:
            _overlap_error(image, block, "a refcount block and not cluster-aligned")
        for start, size, what in _metadata_regions(image):
            if block < start + size and start < block + cs:
                _overlap_error(image, block, f"a refcount block and {what}")
        pos = block + index * L.REFCOUNT16.size
        (count,) = L.REFCOUNT16.unpack_from(data, pos)
        if count:
            _refuse(f"cluster {host:#x} past the end of the file has refcount {count}", image,
                    "refcount block")
        refcount_patches[pos] = L.REFCOUNT16.pack(1)

    cluster = bytearray(cs)  # unallocated/zero without a backing file read as zeros
    start = offset - (c << bits)
    cluster[start : start + len(payload)] = payload
    patches: list[HostPatch] = []
    if new_l2:
        table = bytearray(cs)
        L.ENTRY.pack_into(table, l2_index * L.ENTRY_SIZE, new_data | L.OFLAG_COPIED)
        patches.append((new_l2, bytes(table)))
    patches.append((new_data, bytes(cluster)))
    metadata = sorted(refcount_patches.items())
    if new_l2:
        metadata.append((l1_pos, L.ENTRY.pack(new_l2 | L.OFLAG_COPIED)))
    else:
        metadata.append((l2_table + l2_index * L.ENTRY_SIZE,
                         L.ENTRY.pack(new_data | L.OFLAG_COPIED)))
    _refuse_data_overlap(image, metadata)
    return patches + metadata
