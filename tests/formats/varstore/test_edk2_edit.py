"""Editing: set/delete semantics, validation, size limits, a full store, blank layouts."""

from __future__ import annotations

import uuid

import pytest
from varstore_testlib import VENDOR, fv_checksum_ok, independent_record

from fwtools._base.efitime import EfiTime
from fwtools.errors import FwError, UsageError
from fwtools.formats.efi import guids
from fwtools.formats.varstore import (
    LAYOUTS,
    StoreFullError,
    Variable,
    VariableStore,
    VariableTooLargeError,
    attribute_names,
    layout_by_name,
)
from fwtools.formats.varstore import layout as lay

OTHER = uuid.UUID("11111111-2222-4333-8444-555555555555")


def fresh(layout: str = "ovmf-2m-128k") -> VariableStore:
    return VariableStore.blank(layout)


def test_blank_layouts() -> None:
    for name, layout in LAYOUTS.items():
        if layout.trailer == "code":
            with pytest.raises(UsageError, match="unified"):
                VariableStore.blank(name)
            continue
        store = VariableStore.blank(name)
        data = store.to_bytes()
        assert len(data) == layout.total_size and not store.modified and len(store) == 0
        assert fv_checksum_ok(data)
        assert store.layout is layout
        assert store.free_space() == layout.capacity == layout.store_end - 0x64
        assert [i.code for i in store.check()] == ["summary"]
    assert VariableStore.blank(LAYOUTS["ovmf-4m-528k"]).layout.name == "ovmf-4m-528k"
    assert layout_by_name("OVMF_VARS_4M.fd") is LAYOUTS["ovmf-4m-528k"]
    with pytest.raises(UsageError, match="unknown variable store layout"):
        VariableStore.blank("ovmf-8m")


def test_layout_table() -> None:
    assert lay.OVMF_2M.store_size == 0xDFB8 and lay.OVMF_4M.store_size == 0x3FFB8
    assert lay.OVMF_2M.max_auth_variable_size == 0x2800
    assert lay.OVMF_2M.max_variable_size == 0x2000
    assert lay.OVMF_4M.max_auth_variable_size == lay.OVMF_4M.max_variable_size == 0x8400
    assert lay.AAVMF_64M.max_auth_variable_size == 0x2800
    assert lay.AAVMF_64M.event_log is None and lay.AAVMF_64M.write_queue_size == 0x3FFE0
    assert lay.OVMF_2M.write_queue_size == lay.OVMF_4M.write_queue_size == 0xFE0
    # Measured CRCs of the pristine working-block headers (docs/reference/formats.md §1.6).
    assert lay.ftw_working_header(0xFE0)[16:20] == (0x642CAF2C).to_bytes(4, "little")
    assert lay.ftw_working_header(0x3FFE0)[16:20] == (0x86C6E75B).to_bytes(4, "little")
    assert lay.AUTH_HEADER.size == 60 and lay.NORMAL_HEADER.size == 32
    assert lay.STORE_HEADER.size == 28 and lay.FV_HEADER_LENGTH == 0x48
    assert lay.OVMF_4M.limit_for(0x27) == 0x8400 and lay.OVMF_2M.limit_for(0x07) == 0x2000
    assert lay.OVMF_2M.limit_for(0x0F) == 0x8000  # HARDWARE_ERROR_RECORD
    assert lay.state_name(0x3C) == "replaced" and lay.state_name(0x12) == "invalid 0x12"


def test_set_replace_keeps_position_and_new_are_appended() -> None:
    store = fresh()
    store.set(Variable("A", VENDOR, 0x07, b"a"))
    store.set(Variable("B", VENDOR, 0x07, b"b"))
    store.set(Variable("A", OTHER, 0x07, b"other guid"))
    store.set(Variable("A", VENDOR, 0x07, b"a2"))  # replaced in place
    assert [(v.name, v.guid, v.data) for v in store] == [
        ("A", VENDOR, b"a2"), ("B", VENDOR, b"b"), ("A", OTHER, b"other guid"),
    ]  # fmt: skip
    assert store.keys() == [(VENDOR, "A"), (VENDOR, "B"), (OTHER, "A")]
    assert store.delete("A", VENDOR) and not store.delete("A", VENDOR)
    assert not store.delete("Nope", VENDOR)
    store.set(Variable("A", VENDOR, 0x07, b"back"))  # deleted then re-added: appended
    again = VariableStore.parse(store.to_bytes())
    assert [(v.name, v.guid, v.data) for v in again] == [
        ("B", VENDOR, b"b"), ("A", OTHER, b"other guid"), ("A", VENDOR, b"back"),
    ]  # fmt: skip
    # 60-byte headers: B is 60 + 4 + 1 -> 68 bytes aligned, A (OTHER) 60 + 4 + 10 -> 76.
    assert [r.offset for r in again.records] == [0x64, 0xA8, 0xF4]
    assert len(again) == 3 and (VENDOR, "B") in again


def test_set_identical_is_not_a_change() -> None:
    store = fresh()
    store.set(Variable("A", VENDOR, 0x07, b"a"))
    reread = VariableStore.parse(store.to_bytes())
    parsed = reread.get("A", VENDOR)
    assert parsed is not None and parsed.offset == 0x64
    reread.set(Variable("A", VENDOR, 0x07, b"a"))
    assert not reread.modified
    reread.set(Variable("A", VENDOR, 0x07, b"b"))
    assert reread.modified


def test_written_record_layout() -> None:
    store = fresh()
    stamp = EfiTime(2024, 1, 2, 3, 4, 5)
    store.set(Variable("PK", guids.EFI_GLOBAL_VARIABLE, 0x27, b"k" * 5, timestamp=stamp))
    store.set(Variable("Boot0000", guids.EFI_GLOBAL_VARIABLE, 0x07, b"\x01\x00\x00\x00"))
    data = store.to_bytes()
    expected = independent_record(
        "PK", guids.EFI_GLOBAL_VARIABLE, 0x27, b"k" * 5, stamp.to_bytes()
    ) + independent_record("Boot0000", guids.EFI_GLOBAL_VARIABLE, 0x07, b"\x01\x00\x00\x00")
    assert data[0x64 : 0x64 + len(expected)] == expected
    assert set(data[0x64 + len(expected) : 0xE000]) == {0xFF}


def test_normalisation() -> None:
    """MonotonicCount/PubKeyIndex 0 and TimeStamp zero unless the attributes call for them."""
    store = fresh()
    stamp = EfiTime(2024, 1, 2, 3, 4, 5)
    store.set(Variable("Plain", VENDOR, 0x07, b"p", timestamp=stamp, monotonic_count=5,
                       pubkey_index=3))  # fmt: skip
    plain = store.get("Plain", VENDOR)
    assert plain is not None
    assert plain.timestamp == EfiTime.zero() and plain.monotonic_count == 0
    assert plain.pubkey_index == 0
    store.set(Variable("Counted", VENDOR, 0x17, b"c", monotonic_count=5, pubkey_index=3))
    store.set(Variable("Timed", VENDOR, 0x27, b"t"))
    again = VariableStore.parse(store.to_bytes())
    counted = again.get("Counted", VENDOR)
    assert counted is not None and (counted.monotonic_count, counted.pubkey_index) == (5, 3)
    timed = again.get("Timed", VENDOR)
    assert timed is not None and timed.timestamp == EfiTime.zero()


@pytest.mark.parametrize(
    ("variable", "match"),
    [
        (Variable("", VENDOR, 0x07, b"x"), "non-empty"),
        (Variable("A\0B", VENDOR, 0x07, b"x"), "non-empty"),
        (Variable("A", VENDOR, 0x47, b"x"), "APPEND_WRITE"),
        (Variable("A", VENDOR, 0x06, b"x"), "NON_VOLATILE"),
        (Variable("A", VENDOR, 0x05, b"x"), "RUNTIME_ACCESS without BOOTSERVICE"),
        (Variable("A", VENDOR, 0x37, b"x"), "both"),
        (Variable("A", VENDOR, 0x07, b""), "empty data"),
        (Variable("A", VENDOR, 1 << 32, b"x"), "u32"),
        (Variable("A", VENDOR, 0x07, b"x", pubkey_index=-1), "pubkey_index"),
        (Variable(7, VENDOR, 0x07, b"x"), "not a string"),  # type: ignore[arg-type]
        (Variable("A", "not-a-uuid", 0x07, b"x"), "uuid"),  # type: ignore[arg-type]
    ],
)
def test_set_refuses_what_no_firmware_stores(variable: Variable, match: str) -> None:
    store = fresh()
    with pytest.raises(UsageError, match=match):
        store.set(variable)
    assert not store.modified and len(store) == 0


def test_variable_size_limits() -> None:
    """The limit includes header and name (Variable.c: StrSize (VariableName) + PayloadSize >
    Max... - GetVariableHeaderSize ())."""
    name = "Big"  # 8 bytes with the NUL
    for layout, attrs, limit in (
        ("ovmf-2m-128k", 0x27, 0x2800),
        ("ovmf-2m-128k", 0x07, 0x2000),
        ("ovmf-4m-528k", 0x27, 0x8400),
        ("ovmf-4m-528k", 0x07, 0x8400),
        ("aavmf-64m", 0x27, 0x2800),
    ):
        store = fresh(layout)
        fits = Variable(name, VENDOR, attrs, bytes(limit - 60 - 8))
        store.set(fits)
        assert fits.record_size() == limit
        too_big = Variable(name, OTHER, attrs, bytes(limit - 60 - 8 + 1))
        with pytest.raises(VariableTooLargeError) as info:
            store.set(too_big)
        assert (info.value.size, info.value.limit) == (limit + 1, limit)
        assert "over this firmware's" in str(info.value) and "by 1" in str(info.value)
        assert store.get(name, OTHER) is None


def test_store_full() -> None:
    store = fresh("ovmf-2m-128k")  # 0xE000 - 0x64 = 57244 bytes of records
    for i in range(6):
        store.set(Variable(f"Fill{i}", VENDOR, 0x07, bytes(0x2000 - 60 - 12)))  # 0x2000 each
    assert store.free_space() == 57244 - 6 * 0x2000
    store.to_bytes()
    store.set(Variable("Fill6", VENDOR, 0x07, bytes(0x2000 - 60 - 12)))
    assert store.free_space() == -100
    assert any(i.code == "store-full" for i in store.check())
    with pytest.raises(StoreFullError) as info:
        store.to_bytes()
    error = info.value
    assert (error.needed, error.available, error.missing) == (7 * 0x2000, 57244, 100)
    assert "100 bytes missing" in str(error)
    assert isinstance(error, FwError)
    store.delete("Fill6", VENDOR)
    assert VariableStore.parse(store.to_bytes()).free_space() == 57244 - 6 * 0x2000


def test_exact_fit() -> None:
    store = fresh("ovmf-2m-128k")
    for i in range(6):
        store.set(Variable(f"Fill{i}", VENDOR, 0x07, bytes(0x2000 - 60 - 12)))
    last = 57244 - 6 * 0x2000 - 60 - 12  # the rest, exactly
    store.set(Variable("Last", VENDOR, 0x07, bytes(last)))
    assert store.free_space() == 0
    again = VariableStore.parse(store.to_bytes())
    assert again.records_end == again.layout.store_end and len(again) == 7


def test_attribute_names_and_variable_helpers() -> None:
    variable = Variable("db", guids.EFI_IMAGE_SECURITY_DATABASE, 0x27, b"x")
    assert attribute_names(0x27, short=True) == ["NV", "BS", "RT", "AT"]
    assert variable.attribute_names == attribute_names(0x27)
    assert variable.key == (guids.EFI_IMAGE_SECURITY_DATABASE, "db")
    assert variable.name_bytes == b"d\0b\0\0\0"
    assert variable.record_size() == 60 + 6 + 1 and variable.record_size(False) == 32 + 6 + 1


def test_unchanged_blank_is_its_own_bytes() -> None:
    store = fresh("ovmf-4m-528k")
    assert store.to_bytes() is store.original_bytes
    store.set(Variable("A", VENDOR, 0x07, b"a"))
    store.delete("A", VENDOR)
    # Modified, but the compacted empty store is the template again.
    assert store.modified and store.to_bytes() == store.original_bytes
