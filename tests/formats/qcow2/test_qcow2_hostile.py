"""Hostile and unsupported qcow2 input: each gives the right ParseError with the offset.

Images are made by fwtools' writer (the layout is then known: header, refcount table,
refcount block, L1, L2, data) and corrupted field by field. Compressed clusters are written
by hand with raw deflate, the way QEMU writes them. The last part fuzzes the parser with
hypothesis: mutated valid images give bytes or a ParseError, nothing else.
"""

from __future__ import annotations

import functools
import struct
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qcow2_oracle import QEMU_IMG, QEMU_IO, SYNTHETIC, convert_to_qcow2, img, io

from fwtools.errors import ParseError, TruncatedError
from fwtools.formats.qcow2 import (
    Qcow2Error,
    Qcow2Image,
    Qcow2TruncatedError,
    Qcow2UnsupportedError,
    qcow2_to_raw,
    raw_to_qcow2,
)
from fwtools.formats.qcow2 import layout as L

TESTDATA = Path(__file__).resolve().parents[3] / "testdata" / "qcow2"
CS = 4096


def guest(size: int = 16 * CS) -> bytes:
    """Data in every cluster but the 3rd and the 6th (left unallocated by the writer)."""
    out = bytearray(b"".join(bytes([i + 1]) * CS for i in range(size // CS)))
    out[2 * CS : 3 * CS] = bytes(CS)
    out[5 * CS : 6 * CS] = bytes(CS)
    return bytes(out)


def image(version: int = 3, cluster_size: int = CS, raw: bytes | None = None) -> bytearray:
    return bytearray(raw_to_qcow2(guest() if raw is None else raw, cluster_size=cluster_size,
                                  version=version))  # fmt: skip


def field(name: str) -> int:
    return L.HEADER_FIELD_OFFSETS[name]


def put(buf: bytearray, name: str, value: int) -> None:
    code = dict(L.HEADER_V2_FIELDS + L.HEADER_V3_FIELDS)[name]
    struct.pack_into(">" + code, buf, field(name), value)


def get(buf: bytearray, name: str) -> int:
    code = dict(L.HEADER_V2_FIELDS + L.HEADER_V3_FIELDS)[name]
    return int(struct.unpack_from(">" + code, buf, field(name))[0])


def l1_offset(buf: bytearray) -> int:
    return get(buf, "l1_table_offset")


def l2_offset(buf: bytearray) -> int:
    return int.from_bytes(buf[l1_offset(buf) : l1_offset(buf) + 8], "big") & L.L1E_OFFSET_MASK


def expect(
    buf: bytes | bytearray,
    error: type[ParseError],
    offset: int,
    match: str,
    **parse_options: int,
) -> ParseError:
    with pytest.raises(error, match=match) as exc:
        Qcow2Image.parse(bytes(buf), path="hostile.qcow2", **parse_options).to_raw()
    assert exc.value.offset == offset, f"offset {exc.value.offset:#x}, expected {offset:#x}"
    assert exc.value.path == "hostile.qcow2"
    assert f"offset {offset:#x}" in str(exc.value)
    return exc.value


def test_writer_layout_assumed_here() -> None:
    buf = image()
    assert qcow2_to_raw(bytes(buf)) == guest()
    assert (get(buf, "refcount_table_offset"), l1_offset(buf), l2_offset(buf)) == (
        CS,
        3 * CS,
        4 * CS,
    )


# -- header ------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 3, 4, 50, 71])
def test_truncated_v2_header(length: int) -> None:
    buf = image(version=2)[:length]
    if length < 4:
        expect(buf, Qcow2Error, 0, "not a qcow2 image")
    else:
        err = expect(buf, Qcow2TruncatedError, length, "shorter than the 72-byte header")
        assert isinstance(err, TruncatedError)


@pytest.mark.parametrize("length", [72, 90, 103])
def test_truncated_v3_header(length: int) -> None:
    expect(image()[:length], Qcow2TruncatedError, length, "104-byte version 3 header")


def test_file_ends_inside_header_length() -> None:
    expect(image()[:108], Qcow2TruncatedError, 108, "ends inside the 112-byte header")


def test_bad_magic() -> None:
    buf = image()
    buf[0:4] = b"QFI\xfa"
    expect(buf, Qcow2Error, 0, "not a qcow2 image")


@pytest.mark.parametrize("version", [0, 1, 4, 0xFFFFFFFF])
def test_unknown_version(version: int) -> None:
    buf = image()
    put(buf, "version", version)
    expect(buf, Qcow2UnsupportedError, 4, f"qcow version {version} is not supported")


@pytest.mark.parametrize("bits", [0, 8, 22, 63, 0xFFFFFFFF])
def test_cluster_bits_out_of_range(bits: int) -> None:
    buf = image()
    put(buf, "cluster_bits", bits)
    expect(buf, Qcow2Error, 20, f"cluster_bits {bits} is outside 9..21")


@pytest.mark.parametrize(
    ("length", "match"), [(96, "less than 104"), (0x2000, "exceeds the cluster")]
)
def test_bad_header_length(length: int, match: str) -> None:
    buf = image()
    put(buf, "header_length", length)
    expect(buf, Qcow2Error, 100, match)


@pytest.mark.parametrize("size", [(1 << 30) + 512, 1 << 62, (1 << 64) - 1])
def test_huge_virtual_size(size: int) -> None:
    buf = image()
    put(buf, "size", size)
    expect(buf, Qcow2Error, 24, "exceeds the limit of 1073741824 bytes")


def test_virtual_size_limit_is_the_callers() -> None:
    buf = image()
    expect(buf, Qcow2Error, 24, "virtual size 65536 bytes exceeds the limit of 65535",
           max_virtual_size=65535)  # fmt: skip


def test_refcount_order_too_large() -> None:
    buf = image()
    put(buf, "refcount_order", 7)
    expect(buf, Qcow2Error, 96, "refcount_order 7 exceeds 6")


@pytest.mark.parametrize(("method", "name"), [(1, "AES"), (2, "LUKS"), (9, "unknown")])
def test_encryption_is_refused(method: int, name: str) -> None:
    buf = image()
    put(buf, "crypt_method", method)
    expect(buf, Qcow2UnsupportedError, 32, f"encrypted images are not supported .*{name}")


def test_backing_file_is_refused() -> None:
    buf = image()
    buf[0x200:0x209] = b"base.img\0"
    put(buf, "backing_file_offset", 0x200)
    put(buf, "backing_file_size", 8)
    err = expect(buf, Qcow2UnsupportedError, 8, "backing files are not supported")
    assert "'base.img'" in str(err)


@pytest.mark.parametrize("bit", [5, 17, 63])
def test_unknown_incompatible_bit_is_refused(bit: int) -> None:
    buf = image()
    put(buf, "incompatible_features", 1 << bit)
    expect(buf, Qcow2UnsupportedError, 72, f"unknown incompatible feature bit {bit} ")


def test_unknown_incompatible_bit_named_by_the_feature_table() -> None:
    buf = image()
    put(buf, "incompatible_features", (1 << 5) | L.INCOMPAT_DIRTY)
    entry = L.FEATURE_TABLE_ENTRY.pack(L.FEATURE_TYPE_INCOMPATIBLE, 5, b"quantum entanglement")
    L.EXTENSION_HEADER.pack_into(buf, 112, L.EXT_FEATURE_TABLE, len(entry))
    buf[120 : 120 + len(entry)] = entry
    expect(buf, Qcow2UnsupportedError, 72, r"bit 5 \('quantum entanglement'\)")


def test_corrupt_bit_is_an_error() -> None:
    buf = image()
    put(buf, "incompatible_features", L.INCOMPAT_CORRUPT)
    err = expect(buf, Qcow2Error, 72, "image is marked corrupt")
    assert not isinstance(err, Qcow2UnsupportedError)


def test_dirty_bit_alone_is_fine() -> None:
    buf = image()
    put(buf, "incompatible_features", L.INCOMPAT_DIRTY)
    parsed = Qcow2Image.parse(bytes(buf))
    assert parsed.dirty and "dirty" in parsed.notes[0]
    assert parsed.to_raw() == guest()


def test_external_data_file_bit_is_refused() -> None:
    buf = image()
    put(buf, "incompatible_features", L.INCOMPAT_DATA_FILE)
    expect(buf, Qcow2UnsupportedError, 72, "external data files are not supported")


def test_external_data_file_extension_is_refused() -> None:
    buf = image()
    L.EXTENSION_HEADER.pack_into(buf, 112, L.EXT_DATA_FILE, 7)
    buf[120:127] = b"vars.fd"
    err = expect(buf, Qcow2UnsupportedError, 112, "external data files are not supported")
    assert "'vars.fd'" in str(err)


def test_raw_external_data_bit_is_refused() -> None:
    buf = image()
    put(buf, "autoclear_features", L.AUTOCLEAR_DATA_FILE_RAW)
    expect(buf, Qcow2UnsupportedError, 88, "external data files")


def test_compression_type_without_its_bit() -> None:
    buf = image()
    buf[104] = L.COMPRESSION_ZSTD
    expect(buf, Qcow2Error, 104, "compression type zstd without incompatible feature bit 3")


def test_compression_bit_without_type() -> None:
    buf = image()
    put(buf, "incompatible_features", L.INCOMPAT_COMPRESSION)
    expect(buf, Qcow2Error, 72, "compression_type is 0")


def test_unknown_compression_type() -> None:
    buf = image()
    put(buf, "incompatible_features", L.INCOMPAT_COMPRESSION)
    buf[104] = 7
    expect(buf, Qcow2UnsupportedError, 104, "unknown compression type 7")


def test_compression_type_beyond_header_length_is_absent() -> None:
    """Byte 104 only counts when header_length covers it (qcow2.rst rule 3)."""
    buf = image()
    put(buf, "header_length", 104)
    buf[104] = 0xEE
    assert Qcow2Image.parse(bytes(buf)).compression_type == "deflate"


def test_extended_l2_needs_16k_clusters() -> None:
    buf = image()
    put(buf, "incompatible_features", L.INCOMPAT_EXTL2)
    expect(buf, Qcow2Error, 20, "extended L2 entries need clusters of at least 16 KiB")


def test_header_extension_longer_than_its_area() -> None:
    buf = image()
    L.EXTENSION_HEADER.pack_into(buf, 112, 0x12345678, CS)
    expect(buf, Qcow2Error, 116, "header extension 0x12345678 claims 4096 bytes")


def test_unknown_header_extensions_are_skipped() -> None:
    buf = image()
    L.EXTENSION_HEADER.pack_into(buf, 112, 0x12345678, 3)
    buf[120:123] = b"abc"
    L.EXTENSION_HEADER.pack_into(buf, 128, L.EXT_BACKING_FORMAT, 5)
    buf[136:141] = b"qcow2"
    parsed = Qcow2Image.parse(bytes(buf))
    assert [(e.type, e.offset, e.data) for e in parsed.extensions] == [
        (0x12345678, 112, b"abc"),
        (L.EXT_BACKING_FORMAT, 128, b"qcow2"),
    ]
    assert parsed.backing_format == "qcow2"
    assert parsed.to_raw() == guest()


# -- L1 ----------------------------------------------------------------------------------------


def test_l1_size_smaller_than_the_virtual_size_needs() -> None:
    buf = image()
    put(buf, "size", 1 << 22)  # 1024 clusters need 2 L1 entries with 4 KiB clusters
    expect(buf, Qcow2Error, 36, "L1 table has 1 entries but .* needs 2")


def test_l1_size_zero_for_a_nonempty_disk() -> None:
    buf = image()
    put(buf, "l1_size", 0)
    expect(buf, Qcow2Error, 36, "L1 table has 0 entries")


def test_l1_size_beyond_qemus_limit() -> None:
    buf = image()
    put(buf, "l1_size", 0xFFFFFFFF)
    expect(buf, Qcow2Error, 36, "exceeds QEMU's limit")


def test_l1_larger_than_needed_is_fine() -> None:
    buf = image()
    put(buf, "l1_size", 5)
    assert qcow2_to_raw(bytes(buf)) == guest()


@pytest.mark.parametrize(
    ("offset", "error", "match"),
    [
        (1 << 40, Qcow2TruncatedError, "L1 table at 0x10000000000 .* is outside the file"),
        (3 * CS + 8, Qcow2Error, "not a cluster-aligned offset"),
        (0, Qcow2Error, "not a cluster-aligned offset after the header"),
    ],
)
def test_bad_l1_table_offset(offset: int, error: type[ParseError], match: str) -> None:
    buf = image()
    put(buf, "l1_table_offset", offset)
    expect(buf, error, 40, match)


def test_l1_entry_outside_the_file() -> None:
    buf = image()
    struct.pack_into(">Q", buf, l1_offset(buf), L.OFLAG_COPIED | (1 << 40))
    expect(buf, Qcow2TruncatedError, l1_offset(buf), "L2 table at 0x10000000000 .* outside")


def test_l1_entry_misaligned() -> None:
    buf = image()
    struct.pack_into(">Q", buf, l1_offset(buf), L.OFLAG_COPIED | (4 * CS + 512))
    expect(buf, Qcow2Error, l1_offset(buf), "L2 table offset 0x4200 is not aligned")


def test_l2_table_partly_outside_the_file() -> None:
    buf = image()[: 4 * CS + 64]  # the L2 table's 16 used entries need 128 bytes
    expect(buf, Qcow2TruncatedError, l1_offset(buf), r"L2 table at 0x4000 \(16 entries used\)")


def test_l1_reserved_bits_are_ignored_like_qemu() -> None:
    buf = image()
    entry = int.from_bytes(buf[l1_offset(buf) : l1_offset(buf) + 8], "big")
    struct.pack_into(">Q", buf, l1_offset(buf), entry | 0x0F00_0000_0000_0001)
    assert qcow2_to_raw(bytes(buf)) == guest()


# -- L2 and data -------------------------------------------------------------------------------


def test_l2_entry_outside_the_file() -> None:
    buf = image()
    struct.pack_into(">Q", buf, l2_offset(buf) + 8, L.OFLAG_COPIED | (1 << 40))
    err = expect(buf, Qcow2TruncatedError, l2_offset(buf) + 8, "data cluster at 0x10000000000")
    assert "guest offset 0x1000" in str(err)


def test_l2_entry_misaligned() -> None:
    buf = image()
    struct.pack_into(">Q", buf, l2_offset(buf) + 8, L.OFLAG_COPIED | (5 * CS + 512))
    expect(buf, Qcow2Error, l2_offset(buf) + 8, "data cluster offset 0x5200 is not aligned")


def test_truncated_last_data_cluster() -> None:
    buf = image()
    expect(buf[:-1], Qcow2TruncatedError, l2_offset(buf) + 15 * 8, "is outside the file")


def test_last_cluster_may_end_at_the_virtual_size() -> None:
    """QEMU writes only the guest-visible part of a partial last cluster."""
    raw = guest()[: 15 * CS + 1024]
    buf = image(raw=raw)
    assert qcow2_to_raw(bytes(buf[: -(CS - 1024)])) == raw
    expect(buf[: -(CS - 1023)], Qcow2TruncatedError, l2_offset(buf) + 15 * 8, "1024 bytes used")


def test_zero_flag_in_version_2_is_an_error() -> None:
    buf = image(version=2)
    struct.pack_into(">Q", buf, l2_offset(buf) + 8, L.OFLAG_ZERO)
    expect(buf, Qcow2Error, l2_offset(buf) + 8, "zero flag, which version 2 images lack")


def test_zero_flag_reads_zeros_even_with_a_host_offset() -> None:
    buf = image()
    entry = int.from_bytes(buf[l2_offset(buf) + 8 : l2_offset(buf) + 16], "big")
    struct.pack_into(">Q", buf, l2_offset(buf) + 8, entry | L.OFLAG_ZERO)
    expected = bytearray(guest())
    expected[CS : 2 * CS] = bytes(CS)
    assert qcow2_to_raw(bytes(buf)) == expected


def test_shared_and_cyclic_tables_are_harmless() -> None:
    """Two guest clusters on one host cluster; an L2 entry pointing at the L2 table itself."""
    buf = image()
    l2 = l2_offset(buf)
    first = int.from_bytes(buf[l2 : l2 + 8], "big")
    struct.pack_into(">Q", buf, l2 + 8, first)
    struct.pack_into(">Q", buf, l2 + 24, L.OFLAG_COPIED | l2)
    raw = qcow2_to_raw(bytes(buf))
    assert raw[CS : 2 * CS] == raw[:CS] == guest()[:CS]
    assert raw[3 * CS : 4 * CS] == bytes(buf[l2 : l2 + CS])


def test_refcount_table_outside_the_file_is_ignored() -> None:
    buf = image()
    put(buf, "refcount_table_offset", 1 << 50)
    put(buf, "refcount_table_clusters", 0xFFFFFFFF)
    put(buf, "nb_snapshots", 0xFFFFFFFF)
    put(buf, "snapshots_offset", 1 << 55)
    assert qcow2_to_raw(bytes(buf)) == guest()


# -- compressed clusters -----------------------------------------------------------------------


def with_compressed_cluster(
    payload: bytes,
    *,
    cluster_bits: int = 12,
    guest_cluster: int = 1,
    pad: int = 100,
    extra_sectors: int | None = None,
) -> tuple[bytearray, int, int]:
    """An image whose ``guest_cluster`` is ``payload`` appended at an unaligned offset.

    The sector count covers the payload, capped at what the descriptor can hold. Returns
    (image, L2 entry offset, compressed data offset).
    """
    buf = image(cluster_size=1 << cluster_bits)
    start = len(buf) + pad
    buf += bytes(pad) + payload
    sectors = (start + len(payload) - 1) // 512 - start // 512 + 1
    extra = min(sectors - 1, L.compressed_sector_mask(cluster_bits))
    if extra_sectors is not None:
        extra = extra_sectors
    entry = L.OFLAG_COMPRESSED | extra << L.compressed_offset_bits(cluster_bits) | start
    pos = l2_offset(buf) + 8 * guest_cluster
    struct.pack_into(">Q", buf, pos, entry)
    return buf, pos, start


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, L.DEFLATE_WINDOW_BITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize("cluster_bits", [9, 12, 16, 21])
def test_hand_made_compressed_cluster(cluster_bits: int) -> None:
    """The descriptor split x = 62 - (cluster_bits - 8), with trailing garbage after it."""
    cs = 1 << cluster_bits
    content = (b"compressed cluster %d " % cluster_bits * cs)[:cs]
    payload = deflate(content) + b"\xff" * 300
    buf, _, _ = with_compressed_cluster(payload, cluster_bits=cluster_bits, guest_cluster=0)
    raw = qcow2_to_raw(bytes(buf))
    assert raw[:cs] == content[: len(raw)]
    assert raw[cs:] == guest()[cs:]


def test_compressed_offset_bits_match_the_spec() -> None:
    # docs/reference/formats.md: x = 54 for 64 KiB clusters; qcow2.rst: a 2 MiB cluster limits
    # compressed clusters to 49 offset bits, 512 B clusters leave a 1-bit sector count.
    assert [L.compressed_offset_bits(b) for b in (9, 16, 21)] == [61, 54, 49]
    assert [L.compressed_sector_mask(b) for b in (9, 16, 21)] == [1, 0xFF, 0x1FFF]


def test_compressed_cluster_that_inflates_short() -> None:
    buf, _, start = with_compressed_cluster(deflate(b"\x11" * (CS // 2)))
    expect(buf, Qcow2Error, start, "inflates to 2048 bytes instead of the cluster size 4096")


def test_compressed_cluster_that_is_not_deflate() -> None:
    buf, _, start = with_compressed_cluster(b"\xff" * 600)
    expect(buf, Qcow2Error, start, "deflate-compressed cluster does not inflate")


def test_compressed_cluster_cut_short_by_its_sector_count() -> None:
    payload = deflate(SYNTHETIC["random-1M"]()[:CS])  # incompressible: > 4 KiB of deflate
    buf, _, start = with_compressed_cluster(payload, extra_sectors=1)
    expect(buf, Qcow2Error, start, "inflates to .* bytes instead of the cluster size")


def test_compressed_cluster_outside_the_file() -> None:
    buf, pos, _ = with_compressed_cluster(deflate(bytes(CS)))
    struct.pack_into(">Q", buf, pos, L.OFLAG_COMPRESSED | (1 << 40))
    expect(buf, Qcow2TruncatedError, pos, "compressed cluster data at 0x10000000000")


def test_compressed_bomb_is_bounded() -> None:
    """A stream that would inflate to 64 MiB gives one cluster and stops."""
    buf, _, _ = with_compressed_cluster(deflate(bytes(64 << 20)))
    assert qcow2_to_raw(bytes(buf))[CS : 2 * CS] == bytes(CS)


# -- extended L2 -------------------------------------------------------------------------------


def extended_image(directory: Path) -> tuple[bytearray, int]:
    """A 1 MiB extended-L2 image from qemu-img with one 64 KiB cluster written at 0."""
    path = directory / "extl2.qcow2"
    img("create", "-q", "-f", "qcow2", "-o", "extended_l2=on", path, "1M")
    io(path, "write -q -P 0x77 0 64k")
    buf = bytearray(path.read_bytes())
    return buf, l2_offset(buf)


def test_extended_l2_allocated_and_zero_bits_overlap(tmp_path: Path) -> None:
    buf, l2 = extended_image(tmp_path)
    struct.pack_into(">Q", buf, l2 + 8, 0x0000_0004_FFFF_FFFF)
    expect(buf, Qcow2Error, l2 + 8, "subcluster 2 is marked both allocated and reading as zeros")


def test_extended_l2_allocated_without_offset(tmp_path: Path) -> None:
    buf, l2 = extended_image(tmp_path)
    struct.pack_into(">QQ", buf, l2 + 16, 0, 1)
    expect(buf, Qcow2Error, l2 + 16, "allocated .* but the entry has no host offset")


# -- fuzz --------------------------------------------------------------------------------------


@functools.cache
def seeds() -> tuple[bytes, ...]:
    """Small valid images: fwtools-written, committed fixtures and (if installed) qemu-img's."""
    raw = guest(8 * CS)
    found = [
        raw_to_qcow2(raw, cluster_size=512, version=2),
        raw_to_qcow2(raw, cluster_size=CS),
        bytes(with_compressed_cluster(deflate(b"z" * CS))[0]),
    ]
    found += [p.read_bytes() for p in sorted(TESTDATA.glob("*.qcow2"))]
    if QEMU_IMG and QEMU_IO:
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name)
            (tmp / "g.raw").write_bytes(raw)
            options = ["-c", "-o", "cluster_size=512"]
            found.append(convert_to_qcow2(tmp / "g.raw", tmp / "c.qcow2", options))
            found.append(bytes(extended_image(tmp)[0]))
    return tuple(found)


INTERESTING = [0, 1, 0x1FF, 0x200, CS, CS + 8, 0xFFFFFFFF, 1 << 32, 1 << 40, 1 << 62, 1 << 63,
               (1 << 64) - 1]  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_images_raise_only_parse_errors(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(seeds()) - 1), label="seed index")
    buf = bytearray(seeds()[index])
    for _ in range(data.draw(st.integers(1, 6), label="mutations")):
        pos = data.draw(st.one_of(st.integers(0, 127), st.integers(0, 1 << 20)), label="pos")
        pos %= len(buf)
        kind = data.draw(st.sampled_from(["byte", "u32", "u64", "truncate"]), label="kind")
        if kind == "byte":
            buf[pos] = data.draw(st.integers(0, 255), label="byte")
        elif kind == "truncate":
            del buf[pos:]
            if not buf:
                break
        else:
            width = 4 if kind == "u32" else 8
            value = data.draw(
                st.one_of(st.sampled_from(INTERESTING), st.integers(0, 2 ** (8 * width) - 1)),
                label="value",
            )
            pos = min(pos - pos % width, len(buf) - width)
            if pos >= 0:
                buf[pos : pos + width] = (value % 2 ** (8 * width)).to_bytes(width, "big")
    try:
        parsed = Qcow2Image.parse(bytes(buf), max_virtual_size=4 << 20)
        extents = list(parsed.extents())
        raw = parsed.to_raw()
    except ParseError:
        return
    assert len(raw) == parsed.virtual_size == sum(e.length for e in extents)
