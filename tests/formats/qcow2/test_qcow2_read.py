"""The native qcow2 reader against qemu-img, the oracle.

Every OVMF/AAVMF variable store of the corpus and a few synthetic buffers are converted by
``qemu-img convert`` the ways QEMU, libvirt and virt-firmware do (v2/v3, 512 B to 2 MiB
clusters, compressed with deflate and zstd, extended L2); qemu-io makes zero clusters,
subclusters, a dirty image, snapshots and bitmaps. The guest view must equal the input (or
``qemu-img convert -O raw``), and the mapping must equal ``qemu-img map``.
"""

from __future__ import annotations

import hashlib
import json
import re
import tracemalloc
from pathlib import Path

import pytest
from corpus import Corpus
from corpus.params import corpus_files, need
from qcow2_oracle import (
    CONVERT_VARIANTS,
    SYNTHETIC,
    convert_to_qcow2,
    convert_to_raw,
    img,
    io,
    our_map,
    qemu_map,
    zstd_available,
)

from fwtools.errors import ParseError
from fwtools.formats.qcow2 import (
    COMPRESSED,
    DATA,
    UNALLOCATED,
    ZERO,
    Qcow2Image,
    Qcow2UnsupportedError,
    is_qcow2,
    qcow2_to_raw,
)
from fwtools.formats.qcow2 import layout as L

VARSTORES = corpus_files(
    "*/amd64/ovmf/usr/share/OVMF/OVMF_VARS*.fd",
    "*/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF_VARS*.fd",
)
ZSTD_MISSING = re.compile(
    r"zstd-compressed cluster at offset 0x[0-9a-f]+: no zstd library installed"
)


def assert_same(ours: bytes, expected: bytes) -> None:
    """Equality without pytest diffing two 64 MiB buffers; names the first difference."""
    if ours == expected:
        return
    if len(ours) != len(expected):
        pytest.fail(f"guest view is {len(ours)} bytes, expected {len(expected)}")
    first = next(i for i, (a, b) in enumerate(zip(ours, expected, strict=True)) if a != b)
    pytest.fail(f"guest views differ first at offset {first:#x}")


def _expected_geometry(options: list[str]) -> tuple[int, int]:
    """(version, cluster size) that the convert options ask for."""
    joined = ",".join(options)
    version = 2 if "compat=0.10" in joined else 3
    match = re.search(r"cluster_size=(\d+)([kM]?)", joined)
    if not match:
        return version, 65536
    scale = {"": 1, "k": 1 << 10, "M": 1 << 20}[match.group(2)]
    return version, int(match.group(1)) * scale


def check_variant(raw_path: Path, raw: bytes, variant: str, tmp_path: Path) -> Qcow2Image | None:
    """Convert with qemu-img, read natively; None when zstd is needed but not installed."""
    options = CONVERT_VARIANTS[variant]
    qcow2_path = tmp_path / "image.qcow2"
    data = convert_to_qcow2(raw_path, qcow2_path, options)
    assert is_qcow2(data)
    image = Qcow2Image.parse(data, path=str(qcow2_path))
    version, cluster_size = _expected_geometry(options)
    assert (image.version, image.cluster_size, image.virtual_size) == (
        version,
        cluster_size,
        len(raw),
    )
    assert image.compression_type == ("zstd" if "zstd" in variant else "deflate")
    assert image.extended_l2 == ("extended_l2=on" in ",".join(options))
    assert image.lazy_refcounts == ("lazy_refcounts=on" in ",".join(options))
    assert not image.dirty and image.notes == ()
    assert our_map(image) == qemu_map(qcow2_path)
    kinds = {e.kind for e in image.extents()}
    if "zstd" in variant and COMPRESSED in kinds and not zstd_available():
        with pytest.raises(Qcow2UnsupportedError, match=ZSTD_MISSING):
            image.to_raw()
        return None
    assert_same(image.to_raw(), raw)
    return image


@pytest.mark.parametrize("variant", CONVERT_VARIANTS)
@pytest.mark.parametrize("path", VARSTORES)
def test_corpus_varstore_converted_by_qemu_img(
    path: Path | None, variant: str, tmp_path: Path
) -> None:
    raw_path = need(path)
    raw = raw_path.read_bytes()
    image = check_variant(raw_path, raw, variant, tmp_path)
    if image is not None and variant.startswith("c-") and raw.count(0) != len(raw):
        # varstores compress well, so qemu-img -c really made compressed clusters (bookworm's
        # AAVMF_VARS.fd is 64 MiB of zeros: nothing to compress there)
        assert any(e.kind == COMPRESSED for e in image.extents())


def test_corpus_has_every_varstore(corpus: Corpus) -> None:
    """The glob above finds the stores the corpus fixture knows about, in both suites."""
    for suite in ("bookworm", "trixie"):
        ovmf = sorted(corpus.ovmf_dir(suite).glob("OVMF_VARS*.fd"))
        aavmf = sorted(corpus.aavmf_dir(suite).glob("AAVMF_VARS*.fd"))
        assert ovmf and aavmf, suite
        found = {p.values[0] for p in VARSTORES}
        assert set(ovmf + aavmf) <= found


@pytest.mark.parametrize("variant", CONVERT_VARIANTS)
@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_converted_by_qemu_img(name: str, variant: str, tmp_path: Path) -> None:
    raw = SYNTHETIC[name]()
    raw_path = tmp_path / "guest.raw"
    raw_path.write_bytes(raw)
    check_variant(raw_path, raw, variant, tmp_path)


def test_zero_flag_and_unallocated_clusters(tmp_path: Path) -> None:
    """qemu-io ``write -z`` keeps the allocation with the zero flag; ``-u`` unmaps it."""
    path = tmp_path / "zero.qcow2"
    img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", path, "256K")
    io(
        path,
        "write -q -P 0xaa 0 256K",
        "write -q -z 8K 8K",  # allocated zero clusters (0x8000...|1)
        "write -q -z -u 32K 4K",  # unmapped zero cluster (0x1)
        "write -q -z 64K 6K",  # one zero cluster plus a partial write of zeros
        "discard -q 128K 4K",
    )
    data = path.read_bytes()
    image = Qcow2Image.parse(data)
    kinds = [(e.guest_offset, e.kind) for e in image.extents()]
    assert (8 << 10, ZERO) in kinds and (32 << 10, ZERO) in kinds
    # both zero-cluster forms of docs/reference/formats.md are in the L2 table
    l2 = _l2_entries(data, image)
    assert l2[2] & ~L.L2E_OFFSET_MASK == L.OFLAG_COPIED | L.OFLAG_ZERO and l2[2] & L.L2E_OFFSET_MASK
    assert l2[8] == L.OFLAG_ZERO
    assert_same(image.to_raw(), convert_to_raw(path, tmp_path / "zero.raw"))
    assert our_map(image) == qemu_map(path)
    assert image.read(8 << 10, 8 << 10) == bytes(8 << 10)
    assert image.read((8 << 10) - 3, 6) == b"\xaa" * 3 + bytes(3)


def _l2_entries(data: bytes, image: Qcow2Image) -> list[int]:
    l1 = int.from_bytes(data[image.header.l1_table_offset :][:8], "big") & L.L1E_OFFSET_MASK
    return [int.from_bytes(data[l1 + 8 * i : l1 + 8 * i + 8], "big") for i in range(64)]


def test_write_zeroes_on_version_2(tmp_path: Path) -> None:
    """Version 2 has no zero flag: QEMU deallocates or writes zeros instead."""
    path = tmp_path / "v2.qcow2"
    img("create", "-q", "-f", "qcow2", "-o", "compat=0.10,cluster_size=4096", path, "64K")
    io(path, "write -q -P 0x5c 0 64K", "write -q -z 4K 8K", "write -q -z 20K 1K")
    image = Qcow2Image.parse(path.read_bytes())
    assert image.version == 2 and image.compat == "0.10"
    assert_same(image.to_raw(), convert_to_raw(path, tmp_path / "v2.raw"))
    assert our_map(image) == qemu_map(path)


def test_extended_l2_subclusters(tmp_path: Path) -> None:
    """Extended L2: 32 subclusters of 2 KiB per 64 KiB cluster, allocated and zeroed apart."""
    path = tmp_path / "extl2.qcow2"
    img("create", "-q", "-f", "qcow2", "-o", "extended_l2=on", path, "1M")
    io(
        path,
        "write -q -P 0x11 4k 2k",
        "write -q -P 0x22 64k 64k",
        "write -q -z 70k 4k",
        "write -q -z 200k 64k",
        "write -q -P 0x33 300k 10k",
        "write -q -z -u 302k 2k",
    )
    image = Qcow2Image.parse(path.read_bytes())
    assert image.extended_l2
    extents = list(image.extents())
    assert any(e.kind == DATA and e.length == 2048 for e in extents)
    assert any(e.kind == ZERO for e in extents) and any(e.kind == UNALLOCATED for e in extents)
    assert_same(image.to_raw(), convert_to_raw(path, tmp_path / "extl2.raw"))
    assert our_map(image) == qemu_map(path)
    assert image.read((4 << 10) - 1, 2050) == b"\0" + b"\x11" * 2048 + b"\0"


def test_dirty_image_reads_and_says_so(tmp_path: Path) -> None:
    """lazy_refcounts + qemu-io ``abort`` (a simulated crash) leaves the dirty bit set."""
    path = tmp_path / "dirty.qcow2"
    img("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on,cluster_size=4096", path, "64K")
    io(path, "write -q -P 0x5a 4K 8K", "abort", check=False)
    image = Qcow2Image.parse(path.read_bytes())
    assert image.dirty and image.lazy_refcounts
    assert len(image.notes) == 1 and "dirty" in image.notes[0]
    assert image.to_raw() == bytes(4 << 10) + b"\x5a" * (8 << 10) + bytes(52 << 10)


def test_snapshots_are_ignored_active_l1_is_read(tmp_path: Path) -> None:
    path = tmp_path / "snap.qcow2"
    img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", path, "64K")
    io(path, "write -q -P 0x11 0 64K")
    img("snapshot", "-c", "before", path)
    io(path, "write -q -P 0x22 4K 4K")
    image = Qcow2Image.parse(path.read_bytes())
    assert image.header.nb_snapshots == 1
    assert image.to_raw() == b"\x11" * 4096 + b"\x22" * 4096 + b"\x11" * (56 << 10)


def test_bitmaps_extension_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bitmap.qcow2"
    img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", path, "64K")
    io(path, "write -q -P 0x44 0 4K")
    img("bitmap", "--add", path, "bm0")
    image = Qcow2Image.parse(path.read_bytes())
    assert image.autoclear_features & L.AUTOCLEAR_BITMAPS
    assert [e.name for e in image.extensions if e.type == L.EXT_BITMAPS] == ["bitmaps"]
    assert image.to_raw() == b"\x44" * 4096 + bytes(60 << 10)


def test_feature_name_table_is_read(tmp_path: Path) -> None:
    path = tmp_path / "features.qcow2"
    img("create", "-q", "-f", "qcow2", path, "1M")
    image = Qcow2Image.parse(path.read_bytes())
    names = {(f.kind, f.bit): f.name for f in image.feature_names}
    assert names[(L.FEATURE_TYPE_INCOMPATIBLE, 0)] == "dirty bit"
    assert names[(L.FEATURE_TYPE_COMPATIBLE, 0)] == "lazy refcounts"


# -- what is refused: real images made by qemu-img --------------------------------------------


def test_backing_file_is_refused(tmp_path: Path) -> None:
    base = tmp_path / "base.qcow2"
    top = tmp_path / "top.qcow2"
    img("create", "-q", "-f", "qcow2", base, "1M")
    img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top)
    with pytest.raises(Qcow2UnsupportedError, match="backing files are not supported") as exc:
        Qcow2Image.parse(top.read_bytes(), path=str(top))
    assert exc.value.offset == 8 and exc.value.path == str(top)
    assert "'base.qcow2'" in str(exc.value)


def test_external_data_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ext.qcow2"
    data_file = tmp_path / "ext.raw"  # absolute: qemu-img creates a relative one in the cwd
    img("create", "-q", "-f", "qcow2", "-o", f"data_file={data_file}", path, "1M")
    assert data_file.exists()
    with pytest.raises(Qcow2UnsupportedError, match="external data files are not supported") as e:
        Qcow2Image.parse(path.read_bytes())
    assert e.value.offset == 72 and f"'{data_file}'" in str(e.value)


def test_luks_encryption_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "luks.qcow2"
    # qemu-img times PBKDF2 to choose the iteration count; on a busy machine the measurement
    # can come out as zero CPU time and it gives up ("Unable to get accurate CPU usage"), so
    # try a few times before calling it a failure.
    for _ in range(8):
        done = img(
            "create", "-q", "--object", "secret,id=sec0,data=fwtools", "-f", "qcow2",
            "-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10",
            path, "1M", check=False,
        )  # fmt: skip
        if done.returncode == 0:
            break
        assert "Unable to get accurate CPU usage" in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    with pytest.raises(Qcow2UnsupportedError, match=r"encrypted images .*LUKS") as exc:
        Qcow2Image.parse(path.read_bytes())
    assert exc.value.offset == 32


def test_zstd_without_library_names_the_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw_path = tmp_path / "guest.raw"
    raw_path.write_bytes(SYNTHETIC["text"]())
    options = ["-c", "-o", "compression_type=zstd,cluster_size=4096"]
    data = convert_to_qcow2(raw_path, tmp_path / "z.qcow2", options)
    image = Qcow2Image.parse(data)
    first = next(e for e in image.extents() if e.kind == COMPRESSED)
    monkeypatch.setattr("fwtools.formats.qcow2.image._zstd_module", lambda: None)
    with pytest.raises(Qcow2UnsupportedError, match=ZSTD_MISSING) as exc:
        image.to_raw()
    assert exc.value.offset == first.host_offset
    assert f"at offset {first.host_offset:#x}" in str(exc.value)


# -- API details ------------------------------------------------------------------------------


def test_read_ranges_and_usage_errors(tmp_path: Path) -> None:
    raw = SYNTHETIC["sparse-2M"]()
    raw_path = tmp_path / "guest.raw"
    raw_path.write_bytes(raw)
    image = Qcow2Image.parse(
        convert_to_qcow2(raw_path, tmp_path / "s.qcow2", ["-c", "-o", "cluster_size=4096"])
    )
    for offset, length in (
        (0, 0),
        (0x1230, 0x10),
        (0x80000, 0x30000),
        (len(raw) - 700, 700),
        (5, 1),
    ):
        assert image.read(offset, length) == raw[offset : offset + length]
    assert image.read(len(raw) - 3) == raw[-3:]
    for offset, length in ((-1, 1), (0, len(raw) + 1), (len(raw), 1), (0, -1)):
        with pytest.raises(ValueError, match="outside the virtual size"):
            image.read(offset, length)


def test_qcow2_to_raw_names_the_path() -> None:
    with pytest.raises(ParseError, match=r"^vars\.qcow2: qcow2 header: offset 0x0: not a qcow2"):
        qcow2_to_raw(b"\0" * 512, path="vars.qcow2")


@pytest.mark.parametrize(("kind", "limit"), [("dense", 1.1), ("compressed", 2.1), ("sparse", 1.1)])
def test_memory_reading_64mib(kind: str, limit: float, tmp_path: Path) -> None:
    """64 MiB guests: the reader needs about the output, at most twice the virtual size.

    Plain data clusters are not copied before the final join, zero runs share one 1 MiB
    buffer; only decompressed clusters exist twice until the join.
    """
    size = 64 << 20
    if kind == "sparse":
        raw = bytes(0x40000) + SYNTHETIC["text"]()[:0x40000] + bytes(size - 0x80000)
    else:
        raw = (SYNTHETIC["text"]() * 200)[:size]
        raw = raw + b"\xa5" * (size - len(raw))
    raw_path = tmp_path / "guest.raw"
    raw_path.write_bytes(raw)
    data = convert_to_qcow2(
        raw_path, tmp_path / "guest.qcow2", ["-c"] if kind == "compressed" else []
    )
    del raw
    image = Qcow2Image.parse(data)
    tracemalloc.start()
    try:
        out = image.to_raw()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(out) == size
    assert peak < limit * size, f"peak {peak / size:.2f} x virtual size"


# -- committed fixtures (testdata/qcow2, made by testdata/make_qcow2_fixtures.py) ----------------

TESTDATA = Path(__file__).resolve().parents[3] / "testdata" / "qcow2"
MANIFEST = json.loads((TESTDATA / "MANIFEST.json").read_text())


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_committed_fixture(name: str) -> None:
    """Read without qemu-img: the guest view qemu-img saw when the fixture was made."""
    entry = MANIFEST[name]
    data = (TESTDATA / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    image = Qcow2Image.parse(data, path=name)
    assert image.virtual_size == entry["virtual_size"]
    kinds = {e.kind for e in image.extents()}
    if name == "v2-512-deflate.qcow2":
        assert (image.version, image.cluster_size) == (2, 512)
        assert kinds == {COMPRESSED, DATA, UNALLOCATED}  # random sectors do not compress
    elif name == "v3-4k-zero.qcow2":
        assert ZERO in kinds
    elif name == "v3-4k-dirty.qcow2":
        assert image.dirty and image.lazy_refcounts
    elif name == "v3-4k-zstd.qcow2":
        assert image.compression_type == "zstd" and kinds == {COMPRESSED}
        if not zstd_available():
            with pytest.raises(Qcow2UnsupportedError, match=ZSTD_MISSING):
                image.to_raw()
            return
    assert hashlib.sha256(image.to_raw()).hexdigest() == entry["guest_sha256"]
