"""Hostile and broken input: only ParseError (with an offset) or a report, never another
exception, never a hang; damaged stores are not rewritten silently."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from corpus import Corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from varstore_testlib import VENDOR, fixture, fixture_names, fv_checksum_ok, read

from fwtools.errors import FwError, ParseError, TruncatedError
from fwtools.formats.varstore import (
    BlankStoreError,
    DamagedStoreError,
    Variable,
    VariableStore,
    is_varstore,
    layout_by_name,
)


def sample_store() -> bytes:
    """A 528 KiB store with a few records (no corpus needed)."""
    store = VariableStore.blank("ovmf-4m-528k")
    for i in range(5):
        store.set(Variable(f"Var{i}", VENDOR, 0x07 if i % 2 else 0x27, bytes([i]) * (10 + i)))
    return store.to_bytes()


SAMPLE = sample_store()
SOURCES = [SAMPLE] + [fixture(name) for name in fixture_names()]


def exercise(data: bytes) -> VariableStore | None:
    """Everything a caller may do with arbitrary bytes; returns the store when it parsed."""
    is_varstore(data)
    try:
        store = VariableStore.parse(data)
    except ParseError as exc:
        assert "internal parse failure" not in str(exc)
        return None
    assert store.to_bytes() == data
    store.check()
    for record in store.records:
        assert record.offset < store.layout.store_end
    try:
        out = store.to_bytes(repair=True)
    except FwError:
        return store
    assert len(out) == len(data) and fv_checksum_ok(out)
    again = VariableStore.parse(out)
    record_errors = [
        i for i in again.check() if i.severity == "error" and not i.code.startswith("fv-")
    ]
    assert record_errors == []
    kept = [(v.name, v.data) for v in store.reclaim_order() if v.name]  # NameSize 2 dropped
    assert [(v.name, v.data) for v in again] == kept
    return store


@given(st.data())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_stores_raise_only_parse_errors(data: st.DataObject) -> None:
    raw = bytearray(data.draw(st.sampled_from(SOURCES)))
    # Mostly the headers and records (the first 0x400 bytes), sometimes the FTW area.
    for _ in range(data.draw(st.integers(1, 6))):
        region = data.draw(st.sampled_from(["records", "anywhere", "ftw"]))
        if region == "records":
            pos = data.draw(st.integers(0, 0x3FF))
        elif region == "ftw":
            base = 0x41000 if len(raw) == 0x84000 else 0x3000
            pos = data.draw(st.integers(base, base + 0x7F))
        else:
            pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    exercise(bytes(raw))


@given(st.binary(max_size=4096))
@settings(max_examples=300, deadline=None)
def test_random_bytes_raise_only_parse_errors(data: bytes) -> None:
    assert exercise(data) is None or is_varstore(data)


@given(st.binary(min_size=0x38, max_size=0x200))
@settings(max_examples=300, deadline=None)
def test_random_bytes_behind_a_valid_fv_signature(tail: bytes) -> None:
    raw = bytearray(SAMPLE[:0x48]) + tail
    exercise(bytes(raw))
    raw = bytearray(SAMPLE)
    raw[0x48 : 0x48 + len(tail)] = tail
    exercise(bytes(raw))


def test_mutated_corpus_store(corpus: Corpus) -> None:
    """One deterministic sweep over the real 4M .ms store: every byte of the first records
    and of the FTW header set to 0x00, 0xFF and 0x55."""
    data = read(corpus.ovmf("bookworm", "OVMF_VARS_4M.ms.fd"))
    for pos in [*range(0, 0x100), *range(0x41000, 0x41020)]:
        for value in (0x00, 0xFF, 0x55):
            raw = bytearray(data)
            raw[pos] = value
            exercise(bytes(raw))


def test_code_image_is_not_a_store(corpus: Corpus) -> None:
    path = corpus.ovmf("bookworm", "OVMF_CODE_4M.fd")
    data = read(path)
    assert not is_varstore(data)
    with pytest.raises(ParseError) as info:
        VariableStore.parse(data, path=str(path))
    assert info.value.offset == 0x10 and info.value.path == str(path)
    assert "code volume" in str(info.value)


@pytest.mark.parametrize("cut", [0, 1, 0x20, 0x3F, 0x40, 0x47, 0x50, 0x64, 0x200, 0x3FFFF,
                                 0x41010, 0x83FFF])  # fmt: skip
def test_truncated(cut: int) -> None:
    with pytest.raises(ParseError) as info:
        VariableStore.parse(SAMPLE[:cut], path="cut.fd")
    error = info.value
    assert error.offset is not None and error.path == "cut.fd"
    if cut >= 0x40:
        assert isinstance(error, TruncatedError) and error.offset == cut
        assert "truncated" in str(error)


def patched(offset: int, fmt: str, value: int, data: bytes = SAMPLE) -> bytes:
    raw = bytearray(data)
    struct.pack_into(fmt, raw, offset, value)
    return bytes(raw)


def test_wrong_fv_checksum_is_reported_and_blocks_writing() -> None:
    bad = patched(0x32, "<H", struct.unpack_from("<H", SAMPLE, 0x32)[0] ^ 1)
    store = VariableStore.parse(bad)
    issue = next(i for i in store.check() if i.code == "fv-checksum")
    assert issue.severity == "error" and issue.offset == 0x32
    assert "every variable would be lost" in issue.message
    assert store.to_bytes() == bad  # unchanged: written back as found
    store.set(Variable("New", VENDOR, 0x07, b"n"))
    with pytest.raises(DamagedStoreError, match="checksum"):
        store.to_bytes()
    repaired = store.to_bytes(repair=True)
    assert fv_checksum_ok(repaired)
    assert repaired[:0x32] == SAMPLE[:0x32] and repaired[0x34:0x48] == SAMPLE[0x34:0x48]
    with pytest.raises(ParseError, match="checksum"):
        VariableStore.parse(bad, strict=True)


def test_broken_fv_header_is_rebuilt_by_repair() -> None:
    bad = patched(0x37, "<B", 1)  # Revision 1
    store = VariableStore.parse(bad)
    assert {i.code for i in store.check() if i.severity == "error"} >= {"fv-revision"}
    out = store.to_bytes(repair=True)
    assert out[:0x48] == SAMPLE[:0x48]


def test_start_id_garbage_ends_the_records() -> None:
    raw = bytearray(SAMPLE)
    raw[0x64:0x66] = b"\x12\x34"
    store = VariableStore.parse(bytes(raw))
    assert store.records == [] and len(store) == 0
    issue = next(i for i in store.check() if i.code == "free-space-dirty")
    assert issue.severity == "warning" and issue.offset == 0x64


def test_sizes_overflowing_the_store() -> None:
    for field, value in ((36, 0xFFFF0), (40, 0x40000), (40, 0xFFFFFFF0)):
        store = VariableStore.parse(patched(0x64 + field, "<I", value))
        issue = next(i for i in store.check() if i.code == "record-crosses-end")
        assert issue.offset == 0x64
        assert store.records[0].variable is None and len(store) == 0


def test_erased_sizes_are_a_torn_header() -> None:
    store = VariableStore.parse(patched(0x64 + 36, "<I", 0xFFFFFFFF))
    assert store.records[0].variable is None
    assert next(i for i in store.check() if i.code == "record-torn").offset == 0x64


def test_record_header_crossing_the_end() -> None:
    store = VariableStore.blank("ovmf-2m-128k")
    raw = bytearray(store.to_bytes())
    raw[0xE000 - 20 : 0xE000 - 18] = b"\xaa\x55"  # a StartId 20 bytes before the end
    raw[0x64:0x66] = b"\xaa\x55"  # ... reached through a record spanning the store
    struct.pack_into("<BBIQ16sIII", raw, 0x66, 0x3F, 0, 7, 0, bytes(16), 0, 4, 0)
    struct.pack_into("<I", raw, 0x64 + 40, 0xE000 - 20 - 0x64 - 60 - 4)
    raw[0x64 + 60 : 0x64 + 64] = b"A\0\0\0"
    parsed = VariableStore.parse(bytes(raw))
    last = parsed.records[-1]
    assert last.offset == 0xE000 - 20 and not last.header_valid
    assert next(i for i in parsed.check() if i.code == "record-crosses-end").offset == last.offset


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "where"),
    [
        (0x10, "<I", 0x12345678, 0x10),  # FileSystemGuid
        (0x28, "<I", 0x12345678, 0x28),  # Signature
        (0x30, "<H", 0x47, 0x30),  # HeaderLength odd
        (0x30, "<H", 0x10, 0x30),  # HeaderLength too small
        (0x20, "<Q", 0x40, 0x20),  # FvLength too small
        (0x48, "<I", 0x12345678, 0x48),  # store Signature
        (0x58, "<I", 0x90000, 0x58),  # store Size past FvLength
        (0x58, "<I", 4, 0x58),  # store Size below its header
    ],
)
def test_structural_errors_carry_offsets(offset: int, fmt: str, value: int, where: int) -> None:
    with pytest.raises(ParseError) as info:
        VariableStore.parse(patched(offset, fmt, value))
    assert info.value.offset == where
    assert not isinstance(info.value, BlankStoreError)


def test_store_size_other_than_the_builds() -> None:
    store = VariableStore.parse(patched(0x58, "<I", 0x40000))
    assert store.layout.name == "custom"
    issue = next(i for i in store.check() if i.code == "store-size")
    assert issue.severity == "error" and issue.offset == 0x58 and "ovmf-4m-528k" in issue.message


def test_fv_length_beyond_the_file() -> None:
    with pytest.raises(TruncatedError) as info:
        VariableStore.parse(patched(0x20, "<Q", 0x100000))
    assert info.value.offset == len(SAMPLE)


def test_store_header_format_and_state() -> None:
    store = VariableStore.parse(patched(0x5C, "<B", 0x5B))
    assert next(i for i in store.check() if i.code == "store-header-state").offset == 0x5C


def test_erased_store_header_is_blank() -> None:
    raw = bytearray(SAMPLE)
    raw[0x48 : 0x48 + 28] = b"\xff" * 28
    with pytest.raises(BlankStoreError) as info:
        VariableStore.parse(bytes(raw))
    assert info.value.offset == 0x48 and info.value.layout is layout_by_name("ovmf-4m-528k")


@pytest.mark.parametrize(("size", "fill"), [(0x20000, 0x00), (0x84000, 0xFF), (0x5000, 0x00)])
def test_blank_images(size: int, fill: int) -> None:
    with pytest.raises(BlankStoreError) as info:
        VariableStore.parse(bytes([fill]) * size)
    expected = {0x20000: "ovmf-2m-128k", 0x84000: "ovmf-4m-528k"}.get(size)
    assert (info.value.layout.name if info.value.layout else None) == expected


def test_blank_aavmf_without_corpus() -> None:
    data = bytes(64 * 1024 * 1024)
    assert is_varstore(data)
    with pytest.raises(BlankStoreError, match="blank AAVMF template") as info:
        VariableStore.parse(data)
    assert info.value.layout is layout_by_name("aavmf-64m")
    almost = bytearray(data)
    almost[0x1000000] = 1
    with pytest.raises(ParseError) as other:
        VariableStore.parse(bytes(almost))
    assert not isinstance(other.value, BlankStoreError)


def test_buffer_types() -> None:
    for buffer in (bytearray(SAMPLE), memoryview(SAMPLE)):
        store = VariableStore.parse(buffer)
        assert len(store) == 5 and store.to_bytes() == SAMPLE
        assert is_varstore(buffer)


def test_ftw_queue_with_absurd_counts_terminates(tmp_path: Path) -> None:
    raw = bytearray(SAMPLE)
    base = 0x41000 + 32
    # A "complete" write claiming 2^64-1 writes with huge private data, then more junk.
    struct.pack_into("<B3x16s4xQQ", raw, base, 0xF8, bytes(16), 0xFFFFFFFFFFFFFFFF, 1 << 40)
    store = VariableStore.parse(bytes(raw))
    assert store.ftw is not None and store.ftw.pending is None
    struct.pack_into("<B3x16s4xQQ", raw, base, 0xF8, bytes(16), 0, 0)
    struct.pack_into("<B3x16s4xQQ", raw, base + 40, 0xFC, bytes(16), 3, 0)
    store = VariableStore.parse(bytes(raw))
    assert store.ftw is not None and len(store.ftw.writes) == 2


def test_aavmf_trailer_is_kept_and_reported() -> None:
    raw = bytearray(VariableStore.blank("aavmf-64m").to_bytes())
    raw[0x100000] = 0x5A
    store = VariableStore.parse(bytes(raw))
    issue = next(i for i in store.check() if i.code == "trailer-not-zero")
    assert (issue.severity, issue.offset) == ("note", 0x100000)
    store.set(Variable("A", VENDOR, 0x07, b"a"))
    out = store.to_bytes()
    assert len(out) == len(raw) and out[0x100000] == 0x5A
    assert out[0xC0000:] == bytes(raw[0xC0000:])


def test_small_inputs_are_not_stores() -> None:
    for data in (b"", b"_FVH", bytes(0x37), SAMPLE[:0x37]):
        assert not is_varstore(data)
        with pytest.raises(ParseError):
            VariableStore.parse(data)
