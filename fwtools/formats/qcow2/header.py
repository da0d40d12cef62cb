"""qcow2 header: the header fields, header extensions and feature names, and the checks
:meth:`~fwtools.formats.qcow2.image.Qcow2Image.parse` makes before mapping any cluster.

Split from :mod:`.image` (which maps guest offsets to clusters and reads them); the
behaviour is the one described there. Reference: QEMU ``docs/interop/qcow2.rst`` ("Header",
"Header extensions", "Feature name table"); where the spec leaves room this does what QEMU's
``block/qcow2.c`` (``qcow2_do_open``) does.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from fwtools._base.record import Record
from fwtools.errors import ParseError, TruncatedError
from fwtools.formats.qcow2 import layout as L
from fwtools.formats.qcow2.layout import is_qcow2

DEFAULT_MAX_VIRTUAL_SIZE: Final = 1 << 30


class Qcow2Error(ParseError):
    """A qcow2 image is malformed (or marked corrupt)."""


class Qcow2TruncatedError(Qcow2Error, TruncatedError):
    """A qcow2 structure lies (partly) beyond the end of the file."""


class Qcow2UnsupportedError(Qcow2Error):
    """A qcow2 image uses a feature fwtools does not read (backing file, encryption, ...)."""


# -- parsed structures -----------------------------------------------------------------------


class Qcow2Header(Record):
    """The header fields (qcow2.rst "Header"); version 2 images get the version 3 defaults.

    ``compression_type`` is the raw byte 104 (0 when header_length does not cover it).
    """

    version: int
    backing_file_offset: int
    backing_file_size: int
    cluster_bits: int
    size: int
    crypt_method: int
    l1_size: int
    l1_table_offset: int
    refcount_table_offset: int
    refcount_table_clusters: int
    nb_snapshots: int
    snapshots_offset: int
    incompatible_features: int = 0
    compatible_features: int = 0
    autoclear_features: int = 0
    refcount_order: int = L.REFCOUNT_ORDER_DEFAULT
    header_length: int = L.HEADER_V2_LENGTH
    compression_type: int = L.COMPRESSION_DEFLATE


class HeaderExtension(Record):
    """One header extension: its type, the offset of its 8-byte header, and its data."""

    type: int
    offset: int
    data: bytes

    @property
    def name(self) -> str:
        return L.EXTENSION_NAMES.get(self.type, f"unknown extension {self.type:#010x}")


class FeatureName(Record):
    """An entry of the feature name table extension (qcow2.rst "Feature name table")."""

    kind: int  # layout.FEATURE_TYPE_*: 0 incompatible, 1 compatible, 2 autoclear
    bit: int
    name: str


def _align_up(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# -- header -----------------------------------------------------------------------------------


def _field(name: str) -> int:
    return L.HEADER_FIELD_OFFSETS[name]


def _header_of(
    fields: tuple[tuple[str, str], ...],
    values: tuple[Any, ...],
    compression_type: int = L.COMPRESSION_DEFLATE,
) -> Qcow2Header:
    named = {name: value for (name, _), value in zip(fields, values, strict=True)}
    del named["magic"]
    return Qcow2Header(**named, compression_type=compression_type)


def _parse_header(data: bytes, max_virtual_size: int) -> Qcow2Header:
    if not is_qcow2(data):
        raise Qcow2Error(
            f"not a qcow2 image: magic is {bytes(data[:4])!r}, expected {L.MAGIC!r}",
            structure="qcow2 header",
            offset=0,
        )
    if len(data) < L.HEADER_V2_LENGTH:
        raise Qcow2TruncatedError(
            f"file of {len(data)} bytes is shorter than the {L.HEADER_V2_LENGTH}-byte header",
            structure="qcow2 header",
            offset=len(data),
        )
    v2 = L.HEADER_V2.unpack_from(data, 0)
    version = v2[1]
    if version not in L.VERSIONS:
        raise Qcow2UnsupportedError(
            f"qcow version {version} is not supported (only 2 and 3)",
            structure="qcow2 header.version",
            offset=_field("version"),
        )
    cluster_bits = v2[4]
    if not L.MIN_CLUSTER_BITS <= cluster_bits <= L.MAX_CLUSTER_BITS:
        raise Qcow2Error(
            f"cluster_bits {cluster_bits} is outside {L.MIN_CLUSTER_BITS}..{L.MAX_CLUSTER_BITS} "
            "(512 B to 2 MiB clusters)",
            structure="qcow2 header.cluster_bits",
            offset=_field("cluster_bits"),
        )
    cluster_size = 1 << cluster_bits
    header = _header_of(L.HEADER_V2_FIELDS, v2)
    if version >= L.VERSION_3:
        if len(data) < L.HEADER_V3_MIN_LENGTH:
            raise Qcow2TruncatedError(
                f"file of {len(data)} bytes is shorter than the {L.HEADER_V3_MIN_LENGTH}-byte "
                "version 3 header",
                structure="qcow2 header",
                offset=len(data),
            )
        v3 = L.HEADER_V3.unpack_from(data, 0)
        header_length = v3[-1]
        if header_length < L.HEADER_V3_MIN_LENGTH:
            raise Qcow2Error(
                f"header_length {header_length} is less than {L.HEADER_V3_MIN_LENGTH}",
                structure="qcow2 header.header_length",
                offset=_field("header_length"),
            )
        if header_length > cluster_size:
            raise Qcow2Error(
                f"header_length {header_length} exceeds the cluster size {cluster_size}",
                structure="qcow2 header.header_length",
                offset=_field("header_length"),
            )
        if len(data) < header_length:
            raise Qcow2TruncatedError(
                f"file of {len(data)} bytes ends inside the {header_length}-byte header",
                structure="qcow2 header",
                offset=len(data),
            )
        compression = (
            data[L.COMPRESSION_TYPE_OFFSET] if header_length > L.COMPRESSION_TYPE_OFFSET
            else L.COMPRESSION_DEFLATE
        )  # fmt: skip
        header = _header_of(L.HEADER_V2_FIELDS + L.HEADER_V3_FIELDS, v3, compression)
    if header.size > max_virtual_size:
        raise Qcow2Error(
            f"virtual size {header.size} bytes exceeds the limit of {max_virtual_size} bytes",
            structure="qcow2 header.size",
            offset=_field("size"),
        )
    if header.refcount_order > L.MAX_REFCOUNT_ORDER:
        raise Qcow2Error(
            f"refcount_order {header.refcount_order} exceeds {L.MAX_REFCOUNT_ORDER}",
            structure="qcow2 header.refcount_order",
            offset=_field("refcount_order"),
        )
    return header


def _walk_extensions(data: bytes, header: Qcow2Header) -> tuple[HeaderExtension, ...]:
    """Header extensions between header_length and the end of the first cluster.

    With a backing file the extension area ends where the backing file name starts
    (qcow2.rst "Header extensions"; QEMU's qcow2_read_extensions).
    """
    end = 1 << header.cluster_bits
    if header.backing_file_offset:
        end = min(end, header.backing_file_offset)
    pos = header.header_length
    found: list[HeaderExtension] = []
    while pos + L.EXTENSION_HEADER.size <= end:
        if pos + L.EXTENSION_HEADER.size > len(data):
            raise Qcow2TruncatedError(
                "file ends inside the header extension area",
                structure="header extension",
                offset=pos,
            )
        ext_type, length = L.EXTENSION_HEADER.unpack_from(data, pos)
        if ext_type == L.EXT_END:
            break
        start = pos + L.EXTENSION_HEADER.size
        if length > end - start:
            raise Qcow2Error(
                f"header extension {ext_type:#010x} claims {length} bytes, more than the "
                f"{end - start} left before {end:#x}",
                structure="header extension.length",
                offset=pos + 4,
            )
        if start + length > len(data):
            raise Qcow2TruncatedError(
                f"header extension {ext_type:#010x} of {length} bytes runs past the end of "
                "the file",
                structure="header extension",
                offset=pos,
            )
        found.append(HeaderExtension(ext_type, pos, bytes(data[start : start + length])))
        pos = start + _align_up(length, L.EXTENSION_ALIGN)
    return tuple(found)


def _feature_names(extensions: tuple[HeaderExtension, ...]) -> tuple[FeatureName, ...]:
    names: list[FeatureName] = []
    size = L.FEATURE_TABLE_ENTRY.size
    for ext in extensions:
        if ext.type != L.EXT_FEATURE_TABLE:
            continue
        for pos in range(0, len(ext.data) - size + 1, size):
            kind, bit, raw = L.FEATURE_TABLE_ENTRY.unpack_from(ext.data, pos)
            text = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
            names.append(FeatureName(kind, bit, text))
    return tuple(names)


def _describe_bits(mask: int, kind: int, names: tuple[FeatureName, ...]) -> str:
    parts = []
    for bit in range(64):
        if mask >> bit & 1:
            label = next((f.name for f in names if f.kind == kind and f.bit == bit), None)
            parts.append(f"bit {bit} ({label!r})" if label else f"bit {bit}")
    return ", ".join(parts)


def _check_features(
    data: bytes,
    header: Qcow2Header,
    extensions: tuple[HeaderExtension, ...],
    names: tuple[FeatureName, ...],
) -> tuple[str, ...]:
    """Refuse what cannot be read correctly; return notes about what can."""
    incompat = header.incompatible_features
    where = _field("incompatible_features")
    unknown = incompat & ~L.INCOMPAT_KNOWN
    if unknown:
        raise Qcow2UnsupportedError(
            "unknown incompatible feature "
            f"{_describe_bits(unknown, L.FEATURE_TYPE_INCOMPATIBLE, names)} "
            f"(incompatible_features {incompat:#x}); a reader must refuse the image",
            structure="qcow2 header.incompatible_features",
            offset=where,
        )
    if incompat & L.INCOMPAT_CORRUPT:
        raise Qcow2Error(
            "image is marked corrupt (incompatible feature bit 1): QEMU found inconsistent "
            "metadata; repair a copy with 'qemu-img check -r all' first",
            structure="qcow2 header.incompatible_features",
            offset=where,
        )
    data_file = next((e for e in extensions if e.type == L.EXT_DATA_FILE), None)
    if incompat & L.INCOMPAT_DATA_FILE:
        data_file_where = ("qcow2 header.incompatible_features", where)
    elif data_file is not None:
        data_file_where = ("header extension (external data file name)", data_file.offset)
    elif header.autoclear_features & L.AUTOCLEAR_DATA_FILE_RAW:
        data_file_where = ("qcow2 header.autoclear_features", _field("autoclear_features"))
    else:
        data_file_where = None
    if data_file_where is not None:
        name = f" {data_file.data.decode('utf-8', 'replace')!r}" if data_file else ""
        raise Qcow2UnsupportedError(
            f"external data files are not supported (guest data lives in the data file{name}, "
            "not in this image)",
            structure=data_file_where[0],
            offset=data_file_where[1],
        )
    if header.crypt_method != L.CRYPT_NONE:
        method = L.CRYPT_METHODS.get(header.crypt_method, "unknown")
        raise Qcow2UnsupportedError(
            f"encrypted images are not supported (crypt_method {header.crypt_method}: {method})",
            structure="qcow2 header.crypt_method",
            offset=_field("crypt_method"),
        )
    if header.backing_file_offset:
        raise Qcow2UnsupportedError(
            f"backing files are not supported{_backing_name(data, header)}: the guest view "
            "depends on another image; flatten it with 'qemu-img convert -O qcow2' first",
            structure="qcow2 header.backing_file_offset",
            offset=_field("backing_file_offset"),
        )
    compression = header.compression_type
    if compression not in L.COMPRESSION_TYPES:
        raise Qcow2UnsupportedError(
            f"unknown compression type {compression}",
            structure="qcow2 header.compression_type",
            offset=L.COMPRESSION_TYPE_OFFSET,
        )
    if compression != L.COMPRESSION_DEFLATE and not incompat & L.INCOMPAT_COMPRESSION:
        raise Qcow2Error(
            f"compression type {L.COMPRESSION_TYPES[compression]} without incompatible "
            "feature bit 3 (compression type)",
            structure="qcow2 header.compression_type",
            offset=L.COMPRESSION_TYPE_OFFSET,
        )
    if compression == L.COMPRESSION_DEFLATE and incompat & L.INCOMPAT_COMPRESSION:
        raise Qcow2Error(
            "incompatible feature bit 3 (compression type) is set but compression_type is 0 "
            "(deflate)",
            structure="qcow2 header.incompatible_features",
            offset=where,
        )
    if incompat & L.INCOMPAT_EXTL2 and header.cluster_bits < L.MIN_CLUSTER_BITS_EXTENDED_L2:
        raise Qcow2Error(
            f"extended L2 entries need clusters of at least 16 KiB; cluster_bits is "
            f"{header.cluster_bits}",
            structure="qcow2 header.cluster_bits",
            offset=_field("cluster_bits"),
        )
    notes = []
    if incompat & L.INCOMPAT_DIRTY:
        notes.append(
            "image is marked dirty (incompatible feature bit 0): it was not closed cleanly "
            "and its refcounts may be stale; the guest data reads correctly, but QEMU will "
            "repair the refcounts before writing"
        )
    return tuple(notes)


def _backing_name(data: bytes, header: Qcow2Header) -> str:
    start, size = header.backing_file_offset, header.backing_file_size
    if 0 < size <= L.MAX_BACKING_FILE_NAME and start + size <= len(data):
        return f" (backing file {bytes(data[start : start + size]).decode('utf-8', 'replace')!r})"
    return ""


def _read_l1(data: bytes, header: Qcow2Header) -> tuple[int, ...]:
    """The L2 table offsets of the L1 entries the virtual size needs, each checked."""
    bits = header.cluster_bits
    cs = 1 << bits
    esize = (
        L.EXTENDED_L2_ENTRY_SIZE if header.incompatible_features & L.INCOMPAT_EXTL2
        else L.ENTRY_SIZE
    )  # fmt: skip
    per_l2 = cs // esize
    clusters = _ceil_div(header.size, cs)
    needed = _ceil_div(clusters, per_l2)
    if header.l1_size > L.QCOW_MAX_L1_ENTRIES:
        raise Qcow2Error(
            f"L1 table of {header.l1_size} entries exceeds QEMU's limit of {L.QCOW_MAX_L1_ENTRIES}",
            structure="qcow2 header.l1_size",
            offset=_field("l1_size"),
        )
    if header.l1_size < needed:
        raise Qcow2Error(
            f"L1 table has {header.l1_size} entries but a virtual size of {header.size} bytes "
            f"with {cs}-byte clusters needs {needed}",
            structure="qcow2 header.l1_size",
            offset=_field("l1_size"),
        )
    if needed == 0:
        return ()
    table = header.l1_table_offset
    if table & (cs - 1) or table == 0:
        raise Qcow2Error(
            f"L1 table offset {table:#x} is not a cluster-aligned offset after the header",
            structure="qcow2 header.l1_table_offset",
            offset=_field("l1_table_offset"),
        )
    if table + needed * L.ENTRY_SIZE > len(data):
        raise Qcow2TruncatedError(
            f"L1 table at {table:#x} ({needed} entries used) is outside the file "
            f"({len(data):#x} bytes)",
            structure="qcow2 header.l1_table_offset",
            offset=_field("l1_table_offset"),
        )
    entries = struct.unpack_from(f">{needed}Q", data, table)
    result = []
    for i, entry in enumerate(entries):
        l2 = entry & L.L1E_OFFSET_MASK
        pos = table + i * L.ENTRY_SIZE
        if l2:
            if l2 & (cs - 1):
                raise Qcow2Error(
                    f"L2 table offset {l2:#x} is not aligned to the cluster size {cs:#x}",
                    structure=f"L1 entry {i}",
                    offset=pos,
                )
            used = min(per_l2, clusters - i * per_l2)
            if l2 + used * esize > len(data):
                raise Qcow2TruncatedError(
                    f"L2 table at {l2:#x} ({used} entries used) is outside the file "
                    f"({len(data):#x} bytes)",
                    structure=f"L1 entry {i}",
                    offset=pos,
                )
        result.append(l2)
    return tuple(result)
