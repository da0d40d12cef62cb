"""The edge cases the corpus lacks, from testdata/varstore (make_varstore_fixtures.py writes
them with struct from the edk2 headers; MANIFEST.json says what each holds)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib

import pytest
from varstore_testlib import FIXTURES, REPO, VENDOR, fixture, fixture_names, fv_checksum_ok

from fwtools._base.efitime import EfiTime
from fwtools.errors import ParseError, UsageError
from fwtools.formats.efi import guids
from fwtools.formats.varstore import (
    DamagedStoreError,
    Variable,
    VariableStore,
    is_varstore,
)

# The fixtures' geometry (make_varstore_fixtures.py): store region 0x0-0x2000, event log
# 0x2000-0x3000, FTW working block 0x3000-0x4000, spare 0x4000-0x8000.
STORE_END = 0x2000
EVENT_LOG = range(0x2000, 0x3000)
FTW = range(0x3000, 0x4000)
SPARE = range(0x4000, 0x8000)


def codes(store: VariableStore) -> dict[str, tuple[str, int | None]]:
    return {i.code: (i.severity, i.offset) for i in store.check()}


def live(store: VariableStore) -> list[tuple[str, bytes, int]]:
    return [(v.name, v.data, v.state) for v in store]


def test_fixtures_are_up_to_date() -> None:
    script = REPO / "testdata" / "make_varstore_fixtures.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads((FIXTURES / "MANIFEST.json").read_text())
    assert sorted(manifest) == fixture_names()
    for name in manifest:
        assert len(fixture(name)) < 64 * 1024


@pytest.mark.parametrize("name", fixture_names())
def test_every_fixture_parses_and_round_trips(name: str) -> None:
    data = fixture(name)
    assert is_varstore(data)
    store = VariableStore.parse(data, path=name)
    assert store.to_bytes() == data
    # The regions are found from the headers alone (no OVMF build has this geometry).
    layout = store.layout
    assert layout.name == "custom"
    assert (layout.store_end, layout.event_log, layout.ftw_working, layout.ftw_spare) == (
        STORE_END, EVENT_LOG, FTW, SPARE,
    )  # fmt: skip
    assert layout.max_auth_variable_size is None
    # repair always gives a store without errors, with the same variables.
    repaired = VariableStore.parse(store.to_bytes(repair=True))
    assert [i for i in repaired.check() if i.severity == "error"] == []
    assert [(v.name, v.data) for v in repaired] == [(v.name, v.data) for v in store.reclaim_order()]


def test_normal_format() -> None:
    store = VariableStore.parse(fixture("normal-format.fd"))
    assert not store.authenticated
    assert [(r.state, r.state_name) for r in store.records] == [
        (0x3C, "replaced"), (0x3F, "added"), (0x3F, "added"), (0x3D, "deleted"),
    ]  # fmt: skip
    assert [r.header_size for r in store.records] == [32] * 4
    assert live(store) == [("Lang", b"eng\0", 0x3F), ("Timeout", b"\0\0", 0x3F)]
    timeout = store.get("Timeout", guids.EFI_GLOBAL_VARIABLE)
    assert timeout is not None and timeout.timestamp is None and timeout.offset == 0xC8
    assert codes(store)["store-normal-format"][0] == "warning"

    store.set(Variable("Timeout", guids.EFI_GLOBAL_VARIABLE, 0x07, b"\x03\x00"))
    store.set(Variable("New", VENDOR, 0x03, b"n"))
    with pytest.raises(UsageError, match="authenticated"):
        store.set(Variable("Auth", VENDOR, 0x27, b"x"))
    with pytest.raises(UsageError, match="timestamps"):
        store.set(Variable("Stamp", VENDOR, 0x07, b"x", timestamp=EfiTime(2024, 1, 1, 0, 0, 0)))
    out = store.to_bytes()
    again = VariableStore.parse(out)
    assert not again.authenticated
    assert live(again) == [
        ("Lang", b"eng\0", 0x3F), ("Timeout", b"\x03\x00", 0x3F), ("New", b"n", 0x3F),
    ]  # fmt: skip
    # 32-byte headers: Lang at 0x64, its record is 32 + 10 + 4 = 46 -> next at 0x94.
    assert [r.offset for r in again.records] == [0x64, 0x94, 0xC8]
    assert out[0x48:0x58] == bytes.fromhex("1636cfdd7532644198b6fe85707ffe7d")


def test_normal_format_blank() -> None:
    store = VariableStore.blank("ovmf-4m-528k", authenticated=False)
    assert not store.authenticated and len(store) == 0
    data = store.to_bytes()
    assert data[0x48:0x58] == bytes.fromhex("1636cfdd7532644198b6fe85707ffe7d")
    # Otherwise the same as the authenticated template.
    auth = VariableStore.blank("ovmf-4m-528k").to_bytes()
    assert data[:0x48] == auth[:0x48] and data[0x58:] == auth[0x58:]


def test_in_transition() -> None:
    """FindVariableEx: first 0x3F of a key, else the last 0x3E; a 0x3E with a 0x3F twin is
    not live. Reclaim writes the 0x3F ones first, then the promoted 0x3E ones."""
    store = VariableStore.parse(fixture("in-transition.fd"))
    states = [(r.variable.name, r.state, r.live) for r in store.records if r.variable]
    assert states == [
        ("Alpha", 0x3E, False),
        ("Beta", 0x3E, True),
        ("Gamma", 0x3E, False),
        ("Delta", 0x3F, True),
        ("Alpha", 0x3F, True),
        ("Gamma", 0x3E, True),
        ("AuthVar", 0x3F, True),
    ]
    assert live(store) == [
        ("Beta", b"beta-1", 0x3E),
        ("Delta", b"delta", 0x3F),
        ("Alpha", b"alpha-2", 0x3F),
        ("Gamma", b"gamma-2", 0x3E),
        ("AuthVar", b"signed", 0x3F),
    ]
    auth = store.get("AuthVar", VENDOR)
    assert auth is not None and auth.timestamp == EfiTime(2024, 1, 2, 3, 4, 5)
    found = codes(store)
    assert found["record-in-transition-old"] == ("note", 0x64)
    assert found["record-in-transition-live"][0] == "note"
    assert [v.name for v in store.reclaim_order()] == ["Delta", "Alpha", "AuthVar", "Beta", "Gamma"]

    store.set(Variable("Epsilon", VENDOR, 0x07, b"new"))
    again = VariableStore.parse(store.to_bytes())
    assert live(again) == [
        ("Delta", b"delta", 0x3F),
        ("Alpha", b"alpha-2", 0x3F),
        ("AuthVar", b"signed", 0x3F),
        ("Beta", b"beta-1", 0x3F),
        ("Gamma", b"gamma-2", 0x3F),
        ("Epsilon", b"new", 0x3F),
    ]
    assert again.get("AuthVar", VENDOR).timestamp == EfiTime(2024, 1, 2, 3, 4, 5)  # type: ignore[union-attr]


def test_torn_tail() -> None:
    store = VariableStore.parse(fixture("torn-tail.fd"))
    assert live(store) == [("One", b"one", 0x3F), ("Two", b"two", 0x3F)]
    torn = store.records[-1]
    assert (torn.state, torn.state_name, torn.live) == (0xFF, "unwritten", False)
    # The interrupted write is complete apart from its State: decoded, never live.
    assert torn.variable is not None and torn.variable.name == "Three"
    assert codes(store)["record-torn"] == ("warning", 0xF4)
    store.delete("One", VENDOR)
    again = VariableStore.parse(store.to_bytes())
    assert live(again) == [("Two", b"two", 0x3F)]
    assert len(again.records) == 1


def test_torn_header() -> None:
    store = VariableStore.parse(fixture("torn-header.fd"))
    assert live(store) == [("One", b"one", 0x3F)]
    torn = store.records[-1]
    assert torn.offset == 0xAC and torn.variable is None and not torn.header_valid
    assert torn.name_size is None and torn.size is None
    assert codes(store)["record-torn"] == ("warning", 0xAC)
    store.set(Variable("Two", VENDOR, 0x07, b"2"))
    again = VariableStore.parse(store.to_bytes())
    assert [(v.name, v.offset) for v in again] == [("One", 0x64), ("Two", 0xAC)]
    assert [i.code for i in again.check() if i.severity != "note"] == []


def test_ftw_pending_write() -> None:
    data = fixture("ftw-pending.fd")
    store = VariableStore.parse(data)
    assert store.ftw is not None
    pending = store.ftw.pending
    assert pending is not None and pending.offset == 0x3048
    assert (pending.lba, pending.block_offset, pending.length) == (0, 0, STORE_END)
    assert pending.spare_complete and not pending.destination_complete
    assert pending.relative_offset == -SPARE.start
    assert codes(store)["ftw-pending"] == ("error", 0x3048)
    with pytest.raises(ParseError) as info:
        VariableStore.parse(data, path="ftw-pending.fd", strict=True)
    assert info.value.offset == 0x3048 and "FTW write pending" in str(info.value)
    # Editing would race the firmware's restart: refused unless repaired.
    store.set(Variable("Two", VENDOR, 0x07, b"2"))
    with pytest.raises(DamagedStoreError, match="FTW write pending") as refused:
        store.to_bytes()
    assert refused.value.issues[0].code == "ftw-pending"
    out = store.to_bytes(repair=True)
    again = VariableStore.parse(out)
    assert again.ftw is not None and again.ftw.pending is None and again.ftw.header_pristine
    assert set(out[FTW.start + 32 : FTW.stop]) == {0xFF}
    assert set(out[SPARE.start : SPARE.stop]) == {0xFF}
    assert live(again) == [("One", b"one", 0x3F), ("Two", b"2", 0x3F)]


def test_ftw_completed_write() -> None:
    store = VariableStore.parse(fixture("ftw-completed.fd"))
    assert store.ftw is not None
    assert store.ftw.completed_writes == 1 and store.ftw.pending is None
    write = store.ftw.writes[0]
    assert write.complete and write.header_allocated and write.number_of_writes == 1
    assert write.records[0].destination_complete and write.records[0].spare_complete
    assert codes(store)["ftw-completed"][0] == "note"
    assert [i for i in store.check() if i.severity == "error"] == []
    store.set(Variable("Two", VENDOR, 0x07, b"2"))
    out = store.to_bytes()
    # The driver's own header, CRC over the erased header fields, then an empty queue.
    queue = len(FTW) - 32
    signature = out[FTW.start : FTW.start + 16]
    crc = zlib.crc32(signature + b"\xff" * 8 + struct.pack("<Q", queue))
    assert out[FTW.start : FTW.start + 32] == (
        signature + struct.pack("<I", crc) + b"\xfe\xff\xff\xff" + struct.pack("<Q", queue)
    )
    assert crc == 0x642CAF2C
    assert set(out[FTW.start + 32 : FTW.stop]) == {0xFF}


def test_dirty_free_space() -> None:
    data = fixture("dirty-free-space.fd")
    store = VariableStore.parse(data)
    assert store.free_space_dirty_at == 0xAC
    severity, offset = codes(store)["free-space-dirty"]
    assert (severity, offset) == ("warning", 0xAC)
    assert "64 non-0xFF bytes" in next(i.message for i in store.check() if i.offset == 0xAC)
    store.set(Variable("Two", VENDOR, 0x07, b"2"))
    out = store.to_bytes()  # a warning does not block writing
    again = VariableStore.parse(out)
    assert again.free_space_dirty_at is None
    assert set(out[again.records_end : STORE_END]) == {0xFF}
    assert fv_checksum_ok(out)


@pytest.mark.parametrize(
    ("name", "code", "offset"),
    [
        ("bad-name.fd", "record-name-nul", 0xA0),
        ("bad-state.fd", "record-state", 0xAE),
        ("crossing-end.fd", "record-crosses-end", 0xAC),
    ],
)
def test_records_strict_validators_reject(name: str, code: str, offset: int) -> None:
    data = fixture(name)
    store = VariableStore.parse(data)
    assert codes(store)[code] == ("error", offset)
    with pytest.raises(ParseError) as info:
        VariableStore.parse(data, path=name, strict=True)
    assert info.value.offset == offset and info.value.path == name
    store.set(Variable("Extra", VENDOR, 0x07, b"x"))
    with pytest.raises(DamagedStoreError):
        store.to_bytes()
    repaired = VariableStore.parse(store.to_bytes(repair=True), strict=True)
    assert repaired.get("Extra", VENDOR) is not None


def test_bad_name_is_read_as_the_firmware_reads_it() -> None:
    store = VariableStore.parse(fixture("bad-name.fd"))
    bad = store.records[0]
    assert bad.name_size == 6 and bad.variable is not None and bad.variable.name == "Bad"
    assert bad.live  # the generic driver compares NameSize bytes and finds it
    assert [v.name for v in store] == ["Bad", "Good"]


def test_crossing_record_is_not_live() -> None:
    store = VariableStore.parse(fixture("crossing-end.fd"))
    crossing = store.records[-1]
    assert crossing.state == 0x3F and not crossing.header_valid and not crossing.live
    assert crossing.variable is None
    assert [v.name for v in store] == ["One"]
