"""varstore/relayout.py: moving a store's variables to another layout, and which layout would
take what does not fit."""

from __future__ import annotations

import uuid

import pytest

from fwtools._base.efitime import parse_time
from fwtools.errors import UsageError
from fwtools.formats.varstore import layout as lay
from fwtools.formats.varstore.errors import StoreFullError, VariableTooLargeError
from fwtools.formats.varstore.model import Variable
from fwtools.formats.varstore.relayout import larger_layout, limit_of, relayout
from fwtools.formats.varstore.store import VariableStore

VENDOR = uuid.UUID("11111111-2222-3333-4444-555555555555")
STAMP = parse_time("2024-05-06T07:08:09Z")


def _store(layout: lay.StoreLayout = lay.OVMF_2M) -> VariableStore:
    store = VariableStore.blank(layout)
    store.set(Variable("Plain", VENDOR, 0x07, b"\x01\x02"))
    store.set(Variable("Timed", VENDOR, 0x27, b"signed", timestamp=STAMP))
    store.set(Variable("Counted", VENDOR, 0x17, b"counted", monotonic_count=41,
                       pubkey_index=3))
    return VariableStore.parse(store.to_bytes())


def _record(v: Variable) -> tuple[object, ...]:
    return (v.guid, v.name, v.attributes, v.data, v.timestamp, v.monotonic_count,
            v.pubkey_index)


def test_relayout_keeps_every_field_and_the_order() -> None:
    source = _store()
    moved = relayout(source, "ovmf-4m")
    assert moved.layout is lay.OVMF_4M and moved.authenticated
    assert [_record(v) for v in moved] == [_record(v) for v in source]
    again = VariableStore.parse(moved.to_bytes())
    assert [_record(v) for v in again] == [_record(v) for v in source]
    assert again.get("Counted", VENDOR) is not None
    assert again.get("Counted", VENDOR).monotonic_count == 41  # type: ignore[union-attr]
    assert len(moved.to_bytes()) == lay.OVMF_4M.total_size


def test_relayout_keeps_the_normal_header_format() -> None:
    source = VariableStore.blank(lay.OVMF_2M, authenticated=False)
    source.set(Variable("Plain", VENDOR, 0x07, b"x"))
    moved = relayout(source, lay.OVMF_4M)
    assert not moved.authenticated and [v.name for v in moved] == ["Plain"]


def test_relayout_to_a_smaller_layout_checks_the_limits() -> None:
    source = VariableStore.blank(lay.OVMF_4M)
    source.set(Variable("dbx", VENDOR, 0x27, b"\x00" * 20000, timestamp=STAMP))
    with pytest.raises(VariableTooLargeError) as info:
        relayout(source, "ovmf-2m")
    assert info.value.pcd == "PcdMaxAuthVariableSize" and info.value.limit == 0x2800


def test_relayout_refuses_a_full_store_and_the_other_machine() -> None:
    source = VariableStore.blank(lay.OVMF_4M)
    for i in range(8):
        source.set(Variable(f"Big{i}", VENDOR, 0x07, bytes([i]) * 8000))
    with pytest.raises(StoreFullError):
        relayout(source, "ovmf-2m")
    with pytest.raises(UsageError, match="not interchangeable"):
        relayout(source, "aavmf")
    with pytest.raises(UsageError, match="unknown variable store layout"):
        relayout(source, "ovmf-3m")
    with pytest.raises(UsageError, match="unified"):
        relayout(source, "ovmf-unified-4m")


def test_larger_layout_names_the_4m_build_for_a_too_large_dbx() -> None:
    too_large = VariableTooLargeError("dbx", VENDOR, 21436, 0x2800, "PcdMaxAuthVariableSize")
    assert larger_layout(lay.OVMF_2M, too_large) is lay.OVMF_4M
    assert larger_layout(lay.OVMF_UNIFIED_2M, too_large) is lay.OVMF_4M
    assert limit_of(lay.OVMF_4M, "PcdMaxAuthVariableSize") == 0x8400
    # Nothing larger for the 4M build itself, nor for ArmVirt (one layout only), nor past
    # every limit.
    assert larger_layout(lay.OVMF_4M, too_large) is None
    assert larger_layout(lay.AAVMF_64M, too_large) is None
    huge = VariableTooLargeError("dbx", VENDOR, 0x9000, 0x2800, "PcdMaxAuthVariableSize")
    assert larger_layout(lay.OVMF_2M, huge) is None


def test_larger_layout_for_a_full_store() -> None:
    assert larger_layout(lay.OVMF_2M, StoreFullError(0x20000, lay.OVMF_2M.capacity)) \
        is lay.OVMF_4M
    assert larger_layout(lay.OVMF_2M, StoreFullError(0x50000, lay.OVMF_2M.capacity)) is None
