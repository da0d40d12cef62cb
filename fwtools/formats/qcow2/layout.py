"""qcow2 on-disk layout: header fields, feature bits, extension types, table entry bits.

Reference: QEMU ``docs/interop/qcow2.rst`` ("Qcow2 Image File Format"), summarised in
docs/reference/formats.md section 5. Every number in qcow2 is big-endian. Each structure and
constant is defined once here; the reader and the writer take offsets and masks from this
module instead of spelling them out.
"""

from __future__ import annotations

import struct
from typing import Final

from fwtools._base.layout import BIG, Layout

# -- header (qcow2.rst "Header") ------------------------------------------------------------

MAGIC: Final = b"QFI\xfb"


def is_qcow2(data: bytes) -> bool:
    """True when ``data`` starts with the qcow2 magic ``QFI\\xfb`` (qcow2.rst "Header")."""
    return data[:4] == MAGIC


# Fields in file order, (name, struct code). The version 2 header is exactly these 72 bytes.
HEADER_V2_FIELDS: Final = (
    ("magic", "4s"),  # 0: "QFI\xfb"
    ("version", "I"),  # 4: 2 or 3
    ("backing_file_offset", "Q"),  # 8: 0 = no backing file
    ("backing_file_size", "I"),  # 16: name length, at most 1023
    ("cluster_bits", "I"),  # 20: cluster size = 1 << cluster_bits, >= 9
    ("size", "Q"),  # 24: virtual disk size in bytes
    ("crypt_method", "I"),  # 32: 0 none, 1 AES, 2 LUKS
    ("l1_size", "I"),  # 36: entries in the active L1 table
    ("l1_table_offset", "Q"),  # 40: cluster aligned
    ("refcount_table_offset", "Q"),  # 48: cluster aligned
    ("refcount_table_clusters", "I"),  # 56
    ("nb_snapshots", "I"),  # 60
    ("snapshots_offset", "Q"),  # 64: cluster aligned
)
# Version 3 adds these; header_length (>= 104) says how much of the header is present.
HEADER_V3_FIELDS: Final = (
    ("incompatible_features", "Q"),  # 72: unknown bits must make a reader fail
    ("compatible_features", "Q"),  # 80: unknown bits may be ignored
    ("autoclear_features", "Q"),  # 88: cleared by writers that do not know them
    ("refcount_order", "I"),  # 96: refcount_bits = 1 << refcount_order, at most 6
    ("header_length", "I"),  # 100: >= 104, a multiple of 8
)


HEADER_V2_LAYOUT: Final = Layout("qcow2 header (v2)", HEADER_V2_FIELDS, byte_order=BIG)
HEADER_V3_LAYOUT: Final = HEADER_V2_LAYOUT.extend("qcow2 header (v3)", HEADER_V3_FIELDS,
                                                  byte_order=BIG)
HEADER_V2: Final = HEADER_V2_LAYOUT.struct
HEADER_V3: Final = HEADER_V3_LAYOUT.struct
# Absolute offset of every header field, for error messages and the writer.
HEADER_FIELD_OFFSETS: Final = HEADER_V3_LAYOUT.offsets

HEADER_V2_LENGTH: Final = HEADER_V2.size  # 72
HEADER_V3_MIN_LENGTH: Final = HEADER_V3.size  # 104
# qcow2.rst "Additional fields": byte 104 is compression_type, 105-111 zero padding. A field
# is present only when header_length is greater than its offset.
COMPRESSION_TYPE_OFFSET: Final = 104
HEADER_V3_LENGTH: Final = 112  # what QEMU >= 5.1 writes, and what fwtools writes

VERSION_2: Final = 2
VERSION_3: Final = 3
VERSIONS: Final = frozenset({VERSION_2, VERSION_3})

# cluster_bits: "Must not be less than 9"; QEMU's implementation limit is 2 MiB (21 bits).
MIN_CLUSTER_BITS: Final = 9
MAX_CLUSTER_BITS: Final = 21
# "if the image has Extended L2 Entries then cluster_bits must be at least 14".
MIN_CLUSTER_BITS_EXTENDED_L2: Final = 14

# crypt_method
CRYPT_NONE: Final = 0
CRYPT_METHODS: Final[dict[int, str]] = {0: "none", 1: "AES", 2: "LUKS"}

# -- feature bits (qcow2.rst header bytes 72-95) --------------------------------------------

INCOMPAT_DIRTY: Final = 1 << 0
INCOMPAT_CORRUPT: Final = 1 << 1
INCOMPAT_DATA_FILE: Final = 1 << 2
INCOMPAT_COMPRESSION: Final = 1 << 3
INCOMPAT_EXTL2: Final = 1 << 4
INCOMPAT_NAMES: Final[dict[int, str]] = {
    0: "dirty bit",
    1: "corrupt bit",
    2: "external data file",
    3: "compression type",
    4: "extended L2 entries",
}
INCOMPAT_KNOWN: Final = sum(1 << bit for bit in INCOMPAT_NAMES)

COMPAT_LAZY_REFCOUNTS: Final = 1 << 0
COMPAT_NAMES: Final[dict[int, str]] = {0: "lazy refcounts"}

AUTOCLEAR_BITMAPS: Final = 1 << 0
AUTOCLEAR_DATA_FILE_RAW: Final = 1 << 1
AUTOCLEAR_NAMES: Final[dict[int, str]] = {0: "bitmaps", 1: "raw external data"}

# compression_type (byte 104)
COMPRESSION_DEFLATE: Final = 0
COMPRESSION_ZSTD: Final = 1
COMPRESSION_TYPES: Final[dict[int, str]] = {0: "deflate", 1: "zstd"}

# -- header extensions (qcow2.rst "Header extensions") --------------------------------------

# {type u32, length u32}, then length bytes of data padded to a multiple of 8.
EXTENSION_HEADER: Final = struct.Struct(">II")
EXTENSION_ALIGN: Final = 8
EXT_END: Final = 0x00000000
EXT_BACKING_FORMAT: Final = 0xE2792ACA
EXT_FEATURE_TABLE: Final = 0x6803F857
EXT_BITMAPS: Final = 0x23852875
EXT_CRYPTO_HEADER: Final = 0x0537BE77
EXT_DATA_FILE: Final = 0x44415441
EXTENSION_NAMES: Final[dict[int, str]] = {
    EXT_BACKING_FORMAT: "backing file format",
    EXT_FEATURE_TABLE: "feature name table",
    EXT_BITMAPS: "bitmaps",
    EXT_CRYPTO_HEADER: "full disk encryption header",
    EXT_DATA_FILE: "external data file name",
}

# Feature name table entry: type (0 incompatible, 1 compatible, 2 autoclear), bit number,
# 46-byte name padded with zeros.
FEATURE_TABLE_ENTRY: Final = struct.Struct(">BB46s")
FEATURE_TYPE_INCOMPATIBLE: Final = 0
FEATURE_TYPE_COMPATIBLE: Final = 1
FEATURE_TYPE_AUTOCLEAR: Final = 2

# -- L1 / L2 entries (qcow2.rst "Cluster mapping") ------------------------------------------

ENTRY: Final = struct.Struct(">Q")
ENTRY_SIZE: Final = ENTRY.size  # 8: L1 entries, standard L2 entries, refcount table entries
EXTENDED_L2_ENTRY_SIZE: Final = 16  # standard word + subcluster allocation bitmap
SUBCLUSTERS_PER_CLUSTER: Final = 32
SUBCLUSTER_ALLOC_MASK: Final = 0xFFFFFFFF  # bitmap bits 0-31; bits 32-63 are "reads as zero"

# L1 entry: bits 9-55 are the L2 table offset; bit 63 "refcount is exactly one".
L1E_OFFSET_MASK: Final = 0x00FFFFFFFFFFFE00
# L2 entry: bit 62 compressed, bit 63 COPIED; standard descriptor bits 9-55 the host offset,
# bit 0 "reads as zero" (version 3 without extended L2 only).
L2E_OFFSET_MASK: Final = 0x00FFFFFFFFFFFE00
OFLAG_COPIED: Final = 1 << 63
OFLAG_COMPRESSED: Final = 1 << 62
OFLAG_ZERO: Final = 1 << 0

# Compressed cluster descriptor: x = 62 - (cluster_bits - 8); bits 0..x-1 are the host byte
# offset, bits x..61 the number of additional 512-byte sectors after the one holding that
# offset. The data is raw deflate (no zlib header) or a zstd frame.
COMPRESSED_SECTOR_SIZE: Final = 512


def compressed_offset_bits(cluster_bits: int) -> int:
    """x in qcow2.rst "Compressed Clusters Descriptor": the width of the offset field."""
    return 62 - (cluster_bits - 8)


def compressed_sector_mask(cluster_bits: int) -> int:
    """Mask of the "additional sectors" field once shifted down by x (cluster_bits - 8 bits)."""
    return (1 << (cluster_bits - 8)) - 1


# QEMU's window for raw deflate clusters (block/qcow2-threads.c: deflateInit2/inflateInit2
# with -12); a stream QEMU can read inflates with this window.
DEFLATE_WINDOW_BITS: Final = -12

# -- refcounts (qcow2.rst "Host cluster management") ----------------------------------------

REFCOUNT_ORDER_DEFAULT: Final = 4  # 16-bit refcounts; the only order version 2 has
MAX_REFCOUNT_ORDER: Final = 6
REFTABLE_OFFSET_MASK: Final = 0xFFFFFFFFFFFFFE00  # refcount table entry: bits 9-63
REFCOUNT16: Final = struct.Struct(">H")

# -- QEMU implementation limits (block/qcow2.h) ---------------------------------------------

QCOW_MAX_L1_SIZE: Final = 0x2000000  # 32 MiB of L1 table
QCOW_MAX_L1_ENTRIES: Final = QCOW_MAX_L1_SIZE // ENTRY_SIZE
QCOW_MAX_REFTABLE_SIZE: Final = 0x800000  # 8 MiB of refcount table
MAX_BACKING_FILE_NAME: Final = 1023
