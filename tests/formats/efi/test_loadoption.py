"""EFI_LOAD_OPTION: every firmware-written Boot####/Driver#### of the corpus stores and of
the QEMU-captured oracle parses and re-serialises byte for byte; attributes; builder;
errors with offsets; fuzzing (only ParseError)."""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Final

import pytest
from corpus.params import need, populated_stores
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_devicepath import EDK2_ORACLE

from fwtools.errors import ParseError, TruncatedError, UsageError
from fwtools.formats.efi import guids
from fwtools.formats.efi.devicepath import build_file_path, build_hd_file_path
from fwtools.formats.efi.loadoption import (
    LOAD_OPTION_ACTIVE,
    LOAD_OPTION_CATEGORY_APP,
    LOAD_OPTION_HIDDEN,
    LoadOption,
)
from fwtools.formats.varstore.store import VariableStore

STORES: Final = populated_stores(
    "*/amd64/ovmf/usr/share/OVMF/OVMF*_VARS*.fd",
    "*/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF*_VARS*.fd",
)
LOAD_OPTION_NAME: Final = re.compile(r"(Boot|Driver|SysPrep|PlatformRecovery)[0-9A-F]{4}")


@pytest.mark.parametrize("path", STORES)
def test_corpus_boot_entries_round_trip(path: Path | None) -> None:
    store = VariableStore.parse(need(path).read_bytes())
    options = [
        r.variable
        for r in store.records
        if r.variable is not None
        and r.variable.guid == guids.EFI_GLOBAL_VARIABLE
        and LOAD_OPTION_NAME.fullmatch(r.variable.name)
    ]
    assert options
    for var in options:
        option = LoadOption.parse(var.data, base=0x40)
        assert option.to_bytes() == var.data, var.name
        assert option.description and option.device_paths
        assert option.offset == 0x40
        assert option.file_path_text
    ui_app = LoadOption.parse(next(v.data for v in options if v.name == "Boot0000"))
    # OVMF's UiApp entry: category APP, hidden, active (0x109).
    assert ui_app.description == "UiApp"
    assert ui_app.attributes == LOAD_OPTION_ACTIVE | LOAD_OPTION_HIDDEN | LOAD_OPTION_CATEGORY_APP
    assert ui_app.hidden and ui_app.active and ui_app.category_name == "app"
    assert ui_app.attribute_names == ["ACTIVE", "HIDDEN"]


@pytest.mark.parametrize(("source", "display_only", "name", "hex_data", "text"), EDK2_ORACLE)
def test_oracle_options(source: str, display_only: bool, name: str, hex_data: str,
                        text: str) -> None:
    data = bytes.fromhex(hex_data)
    option = LoadOption.parse(data)
    assert option.to_bytes() == data
    if option.optional_data:
        # edk2's BDS marks the options it creates (BmBoot.c mBmAutoCreateBootOptionGuid).
        assert option.optional_data_guid == guids.EDK2_AUTO_CREATED_BOOT_OPTION


def test_build_and_properties() -> None:
    args = "root=/dev/vda2 quiet".encode("utf-16-le") + b"\0\0"
    option = LoadOption.build("debian", build_file_path("\\EFI\\debian\\shimx64.efi"), args)
    data = option.to_bytes()
    assert data[:6] == struct.pack("<IH", 1, 4 + 2 * 24 + 4)  # FilePath node + End
    again = LoadOption.parse(data)
    assert again == option
    assert again.active and not again.hidden and again.category_name == "boot"
    assert again.optional_data_text == "root=/dev/vda2 quiet"
    assert again.optional_data_guid is None
    assert again.path_texts == ["\\EFI\\debian\\shimx64.efi"]
    hd = LoadOption.build(
        "Linux", build_hd_file_path(1, 2048, 1024, "0c84991b-22f7-4b7f-a8d2-45b6ed102863",
                                    "\\EFI\\BOOT\\BOOTX64.EFI"),
        attributes=0,
    )
    assert not hd.active
    assert hd.file_path_text.startswith("HD(1,GPT,0C84991B-")
    # Unpaired surrogates in a description survive (UCS-2 is not UTF-16).
    odd = struct.pack("<IH", 1, 4) + b"\x00\xd8A\x00\x00\x00" + bytes.fromhex("7fff0400")
    assert LoadOption.parse(odd).to_bytes() == odd
    with pytest.raises(UsageError):
        LoadOption.build("a\0b", build_file_path("x"))
    with pytest.raises(ParseError):
        LoadOption.build("bad path", b"\x01\x02")


def test_errors() -> None:
    with pytest.raises(TruncatedError) as short:
        LoadOption.parse(b"\x01\x00\x00", base=0x10)
    assert short.value.offset == 0x10
    with pytest.raises(ParseError, match="NUL") as nul:
        LoadOption.parse(struct.pack("<IH", 1, 4) + b"A\x00B\x00", base=0x10)
    assert nul.value.offset == 0x16
    with pytest.raises(TruncatedError) as length:
        LoadOption.parse(struct.pack("<IH", 1, 40) + b"A\x00\x00\x00" + bytes.fromhex("7fff0400"))
    assert length.value.offset == 4
    with pytest.raises(ParseError) as node:
        LoadOption.parse(struct.pack("<IH", 1, 4) + b"\x00\x00" + bytes.fromhex("04040200"),
                         base=0x100)
    assert node.value.offset == 0x100 + 8 + 2


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=160))
def test_fuzz_only_parse_errors(data: bytes) -> None:
    try:
        option = LoadOption.parse(data)
    except ParseError:
        return
    assert option.to_bytes() == data
    assert len(option.path_texts) == len(option.device_paths)
    text = option.optional_data_text
    assert text is None or text.encode("utf-16-le") in option.optional_data


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30).filter(lambda t: "\0" not in t), st.binary(max_size=40),
       st.integers(0, 0xFFFFFFFF))
def test_fuzz_build_round_trip(description: str, optional: bytes, attributes: int) -> None:
    option = LoadOption.build(description, build_file_path("\\x.efi"), optional, attributes)
    assert LoadOption.parse(option.to_bytes()) == option
