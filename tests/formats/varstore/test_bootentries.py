"""varstore/bootentries.py: Boot####, BootOrder and BootNext in a store."""

from __future__ import annotations

import pytest

from fwtools.errors import UsageError
from fwtools.formats.efi import guids
from fwtools.formats.efi.loadoption import LoadOption
from fwtools.formats.varstore import bootentries as be
from fwtools.formats.varstore import layout as lay
from fwtools.formats.varstore.errors import VariableTooLargeError
from fwtools.formats.varstore.model import Variable
from fwtools.formats.varstore.store import VariableStore

G = guids.EFI_GLOBAL_VARIABLE


def test_entry_numbers() -> None:
    assert be.parse_entry_number("Boot000A") == 10
    assert be.parse_entry_number("3") == 3
    for bad in ("Boot12345", "XYZW", "-1", ""):
        with pytest.raises(UsageError):
            be.parse_entry_number(bad)
    assert be.boot_number(Variable("Boot00FF", G, 7, b"x")) == 0xFF
    assert be.boot_number(Variable("Boot00FG", G, 7, b"x")) is None
    assert be.boot_number(Variable("Boot0001", guids.SHIM_LOCK, 7, b"x")) is None


def test_add_order_next_delete() -> None:
    store = VariableStore.blank(lay.OVMF_4M)
    first = be.add_entry(store, "debian", "\\EFI\\debian\\shimx64.efi")
    second = be.add_entry(store, "other", "\\EFI\\other.efi", first=False, make_next=True,
                          optional_data="quiet\0".encode("utf-16-le"))
    assert (first, second) == (0, 1)
    assert be.boot_order(store) == [0, 1] and be.boot_next(store) == 1
    var = store.get("Boot0001", G)
    assert var is not None and var.attributes == be.BOOT_ATTRIBUTES
    option = LoadOption.parse(var.data)
    assert option.description == "other" and option.optional_data_text == "quiet"
    assert option.file_path_text.endswith("\\EFI\\other.efi")
    hd = be.add_entry(store, "hd", "\\x.efi", partuuid="12345678-1234-1234-1234-123456789abc",
                      number=0x10)
    assert hd == 0x10 and be.boot_order(store) == [0x10, 0, 1]
    assert "HD(1,GPT,12345678-1234-1234-1234-123456789ABC" in LoadOption.parse(
        store.get("Boot0010", G).data).file_path_text.upper()  # type: ignore[union-attr]

    be.set_order(store, [1, 0])
    assert be.boot_order(store) == [1, 0]
    with pytest.raises(UsageError, match="twice"):
        be.set_order(store, [1, 1])
    with pytest.raises(UsageError, match="Boot0007"):
        be.set_order(store, [7])
    with pytest.raises(UsageError, match="Boot0007"):
        be.set_next(store, 7)
    be.set_next(store, 0)

    listed = be.list_entries(store.variables, be.boot_order(store))
    assert [(e.name, e.in_order) for e in listed] == [
        ("Boot0001", True), ("Boot0000", True), ("Boot0010", False)]
    assert all(e.option is not None for e in listed)

    assert be.delete_entry(store, 0)
    assert be.boot_order(store) == [1] and be.boot_next(store) is None
    assert not be.delete_entry(store, 0)
    assert be.delete_entry(store, 1)
    assert store.get("BootOrder", G) is None  # an empty BootOrder cannot be stored


def test_listing_shows_broken_and_missing_entries() -> None:
    store = VariableStore.blank(lay.OVMF_4M)
    store.set(Variable("Boot0002", G, 7, b"\x01\x00"))
    listed = be.list_entries(store.variables, [5, 2])
    assert listed[0].variable is None and listed[0].name == "Boot0005"
    assert listed[1].option is None and listed[1].error


def test_a_description_past_the_limit_is_the_stores_error() -> None:
    store = VariableStore.blank(lay.OVMF_2M)
    with pytest.raises(VariableTooLargeError) as info:
        be.add_entry(store, "d" * 6000, "\\EFI\\x.efi")
    assert info.value.pcd == "PcdMaxVariableSize" and info.value.name == "Boot0000"
    assert store.get("BootOrder", G) is None
