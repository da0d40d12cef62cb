"""The edk2 store library on every real OVMF/AAVMF store of the corpus (bookworm, trixie).

Oracles: the facts measured independently (docs/reference/formats.md §1.7; varstore_testlib.FACTS),
the
test-only walker, virt-firmware's JSON reading, the pristine templates Debian ships (for
blank()), and edk2's Reclaim rule recomputed here from the original record bytes.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from pathlib import Path

import pytest
from corpus.params import corpus_files, need
from varstore_testlib import (
    BLANK_STORES,
    FACTS,
    TEMPLATES,
    VENDOR,
    fv_checksum_ok,
    independent_record,
    read,
    rel,
    store_params,
    virt_fw_vars_json,
    walker,
)

from fwtools._base.efitime import EfiTime
from fwtools.formats.efi import guids
from fwtools.formats.varstore import (
    BlankStoreError,
    Variable,
    VariableStore,
    is_varstore,
    layout_by_name,
)

STORES = [p for p in store_params() if p.values[0] is None or rel(p.values[0]) not in BLANK_STORES]
TEMPLATE_FILES = [p for name in TEMPLATES for p in corpus_files(name)]
BLANK_FILES = corpus_files(*BLANK_STORES)
UNIFIED_FILES = corpus_files("*/amd64/ovmf/usr/share/ovmf/OVMF.fd")
RUNTIME_HEADER_FILES = corpus_files("bookworm/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF_VARS.*.fd")


def parsed(path: Path | None) -> tuple[bytes, VariableStore]:
    path = need(path)
    data = read(path)
    return data, VariableStore.parse(data, path=str(path))


@pytest.mark.parametrize("path", store_params())
def test_sniffed_as_varstore(path: Path | None) -> None:
    assert is_varstore(read(need(path)))


@pytest.mark.parametrize("path", STORES)
def test_facts(path: Path | None) -> None:
    data, store = parsed(path)
    facts = FACTS.get(rel(need(path)))
    assert facts is not None, f"{rel(need(path))}: new in the corpus; record its facts"
    assert store.layout.name == facts.layout
    assert store.layout.total_size == len(data)
    assert len(store.records) == facts.records
    assert len(store) == facts.live == sum(r.live for r in store.records)
    states: dict[int, int] = {}
    for record in store.records:
        states[record.state] = states.get(record.state, 0) + 1
    assert states == facts.states
    assert store.records_end == facts.records_end
    assert store.authenticated
    # Nothing in a shipped store is damaged; the rest is 0xFF and the FTW area pristine.
    assert [i for i in store.check() if i.severity != "note"] == []
    assert store.free_space_dirty_at is None
    assert store.ftw is not None and store.ftw.header_pristine and store.ftw.queue_blank
    assert store.ftw.pending is None and store.ftw.spare_blank


@pytest.mark.parametrize("path", STORES)
def test_unchanged_write_is_byte_identical(path: Path | None) -> None:
    data, store = parsed(path)
    assert not store.modified
    assert store.to_bytes() is data or store.to_bytes() == data


@pytest.mark.parametrize("path", STORES)
def test_live_set_matches_the_test_walker(path: Path | None) -> None:
    data, store = parsed(path)
    expected = [
        (v.name, v.guid, v.attributes, v.data, v.timestamp, v.state) for v in walker().walk(data)
    ]
    got = [
        (v.name, v.guid, v.attributes, v.data, v.timestamp.to_bytes() if v.timestamp else None,
         v.state)
        for v in store
    ]  # fmt: skip
    assert got == expected


@pytest.mark.parametrize("path", STORES)
def test_live_set_matches_virt_firmware(path: Path | None) -> None:
    _data, store = parsed(path)
    theirs = virt_fw_vars_json(need(path))
    ours = [
        {
            "name": v.name,
            "guid": str(v.guid),
            "attr": v.attributes,
            "data": v.data.hex(),
            "time": v.timestamp.to_bytes().hex()
            if v.timestamp is not None and not v.timestamp.is_zero
            else None,
        }
        for v in store
    ]
    assert ours == [{**v, "time": v.get("time")} for v in theirs]


@pytest.mark.parametrize("path", STORES)
def test_records_decode(path: Path | None) -> None:
    _data, store = parsed(path)
    for record in store.records:
        assert record.header_valid and record.variable is not None
        # Only bookworm's AAVMF_VARS.ms.fd has something to say: two 0x00 pad bytes.
        assert {i.code for i in record.problems} <= {"record-pad"}
        assert record.offset % 4 == 0 and record.next_offset % 4 == 0
        variable = record.variable
        assert variable.offset == record.offset and variable.state == record.state
        assert record.name_size == len(variable.name_bytes)
        assert record.data_size == len(variable.data)
        assert variable.monotonic_count == 0 and variable.pubkey_index == 0
        # edk2 writes a TimeStamp only for time-based authenticated variables.
        assert variable.timestamp is not None
        if not variable.attributes & 0x20:
            assert variable.timestamp.is_zero


@pytest.mark.parametrize("path", STORES)
def test_compaction_is_what_reclaim_leaves(path: Path | None) -> None:
    """Reclaim copies the 0x3F records verbatim, in store order, into a 0xFF buffer; the FV
    header is not touched (Variable.c Reclaim, Reclaim.c FtwVariableSpace). One deliberate
    difference: the pad bytes up to the next 4-byte boundary are written 0xFF, where
    bookworm's AAVMF_VARS.ms.fd has two 0x00 pads that Reclaim would copy."""
    data, store = parsed(path)
    out = store.to_bytes(repair=True)
    layout = store.layout
    start = layout.records_offset
    expected = b"".join(
        data[r.offset : r.offset + (r.size or 0)].ljust(r.next_offset - r.offset, b"\xff")
        for r in store.records
        if r.live and r.state == 0x3F
    )
    assert out[:start] == data[:start]
    assert out[start : start + len(expected)] == expected
    assert out[start + len(expected) : layout.store_end] == b"\xff" * (
        layout.store_end - start - len(expected)
    )
    # Shipped stores already have a 0xFF event log, a pristine FTW area and a 0xFF spare.
    assert out[layout.store_end :] == data[layout.store_end :]
    assert store.free_space() == layout.store_end - start - len(expected)


@pytest.mark.parametrize("path", STORES)
def test_edit_round_trip(path: Path | None) -> None:
    data, store = parsed(path)
    before = store.variables
    replaced = None
    timeout = store.get("Timeout", guids.EFI_GLOBAL_VARIABLE)
    if timeout is not None:
        replaced = Variable("Timeout", guids.EFI_GLOBAL_VARIABLE, timeout.attributes, b"\x07\x00")
        store.set(replaced)
    removed = store.get("dbx", guids.EFI_IMAGE_SECURITY_DATABASE)
    if removed is not None:
        assert store.delete("dbx", guids.EFI_IMAGE_SECURITY_DATABASE)
    stamp = EfiTime(2025, 6, 7, 8, 9, 10)
    added = [
        Variable("FwToolsTest", VENDOR, 0x07, b"hello"),
        Variable("FwToolsAuth", VENDOR, 0x27, b"signed payload", timestamp=stamp),
    ]
    for variable in added:
        store.set(variable)
    assert store.modified
    out = store.to_bytes()

    assert len(out) == len(data)
    assert fv_checksum_ok(out)
    again = VariableStore.parse(out)
    assert again.layout == store.layout
    assert again.fv_header == store.fv_header
    assert [i for i in again.check() if i.severity != "note"] == []
    expected = []
    for v in before:
        if removed is not None and v.key == removed.key:
            continue
        expected.append(replaced if replaced is not None and v.key == replaced.key else v)
    expected += added
    got = [(v.name, v.guid, v.attributes, v.data) for v in again]
    assert got == [(v.name, v.guid, v.attributes, v.data) for v in expected]
    assert again.get("FwToolsAuth", VENDOR).timestamp == stamp  # type: ignore[union-attr]
    assert again.get("FwToolsTest", VENDOR).timestamp == EfiTime.zero()  # type: ignore[union-attr]
    # Every record is 0x3F, nothing deleted is left, free space / event log / spare are 0xFF.
    assert {r.state for r in again.records} <= {0x3F}
    layout = again.layout
    assert set(out[again.records_end : layout.store_end]) <= {0xFF}
    for region in (layout.event_log, layout.ftw_spare):
        if region is not None:
            assert set(out[region.start : region.stop]) == {0xFF}
    # The FTW working block is the one the driver computes: CRC over the erased header.
    assert layout.ftw_working is not None
    ftw = out[layout.ftw_working.start : layout.ftw_working.start + 32]
    queue = len(layout.ftw_working) - 32
    erased = ftw[:16] + b"\xff" * 8 + struct.pack("<Q", queue)
    assert ftw == ftw[:16] + struct.pack("<I", zlib.crc32(erased)) + b"\xfe\xff\xff\xff" + (
        struct.pack("<Q", queue)
    )
    assert set(out[layout.ftw_working.start + 32 : layout.ftw_working.stop]) == {0xFF}
    # The new records are appended exactly as VariableFormat.h lays them out.
    tail = b"".join(
        independent_record(v.name, v.guid, v.attributes, v.data,
                           v.timestamp.to_bytes() if v.timestamp else bytes(16))
        for v in added
    )  # fmt: skip
    assert out[again.records_end - len(tail) : again.records_end] == tail
    # Beyond the NV region (ArmVirt's zeros) nothing moved.
    assert out[layout.fv_length :] == data[layout.fv_length :]


@pytest.mark.parametrize("path", STORES)
def test_our_writes_read_back_in_virt_firmware(path: Path | None, tmp_path: Path) -> None:
    _data, store = parsed(path)
    store.set(Variable("FwToolsTest", VENDOR, 0x07, b"\x01\x02\x03"))
    target = tmp_path / "out.fd"
    target.write_bytes(store.to_bytes())
    theirs = virt_fw_vars_json(target)
    assert [(v["name"], v["guid"], v["attr"], v["data"]) for v in theirs] == [
        (v.name, str(v.guid), v.attributes, v.data.hex()) for v in store
    ]


@pytest.mark.parametrize("path", TEMPLATE_FILES)
def test_blank_reproduces_the_template(path: Path | None) -> None:
    path = need(path)
    assert VariableStore.blank(TEMPLATES[rel(path)]).to_bytes() == read(path)


@pytest.mark.parametrize("path", BLANK_FILES)
def test_blank_aavmf_template(path: Path | None) -> None:
    path = need(path)
    data = read(path)
    with pytest.raises(BlankStoreError) as info:
        VariableStore.parse(data, path=str(path))
    assert "blank AAVMF template" in str(info.value)
    assert info.value.layout is layout_by_name("aavmf-64m")
    # What the CLI offers: format it. Same size, and what trixie ships as AAVMF_VARS.fd.
    assert info.value.layout is not None
    fresh = VariableStore.blank(info.value.layout)
    assert len(fresh.to_bytes()) == len(data)


@pytest.mark.parametrize("path", UNIFIED_FILES)
def test_unified_image_keeps_its_code(path: Path | None) -> None:
    data, store = parsed(path)
    assert store.layout.trailer == "code"
    store.set(Variable("FwToolsTest", VENDOR, 0x07, b"\x01"))
    out = store.to_bytes()
    assert len(out) == len(data)
    assert out[store.layout.fv_length :] == data[store.layout.fv_length :]
    assert VariableStore.parse(out).get("FwToolsTest", VENDOR) is not None


@pytest.mark.parametrize("path", RUNTIME_HEADER_FILES)
def test_bookworm_runtime_fv_header_is_reported_as_normal(path: Path | None) -> None:
    _data, store = parsed(path)
    assert store.fv_header.attributes == 0xE36
    codes = {i.code: i.severity for i in store.check()}
    assert codes["fv-block-map-runtime"] == "note"
    assert codes["fv-attributes"] == "note"
    assert store.fv_header.block_map == ((0x100, 0x40000),)
    assert store.fv_header.checksum == 0xF8F8


def test_secure_boot_variables_of_the_ms_store(corpus: object) -> None:
    """OVMF_VARS_4M.ms.fd as EnrollDefaultKeys left it: PK/KEK/db/dbx with attributes 0x27
    and the enrollment stamp, SecureBootEnable 1, CustomMode 0, VendorKeysNv 0 (§2.4)."""
    from corpus import Corpus

    assert isinstance(corpus, Corpus)
    store = VariableStore.parse(read(corpus.ovmf("bookworm", "OVMF_VARS_4M.ms.fd")))
    for name, guid in (
        ("PK", guids.EFI_GLOBAL_VARIABLE),
        ("KEK", guids.EFI_GLOBAL_VARIABLE),
        ("db", guids.EFI_IMAGE_SECURITY_DATABASE),
        ("dbx", guids.EFI_IMAGE_SECURITY_DATABASE),
    ):
        variable = store.get(name, guid)
        assert variable is not None and variable.attributes == 0x27
        assert variable.timestamp is not None and variable.timestamp.year == 2025
        assert variable.timestamp.month == 3 and variable.timestamp.day == 10
        assert variable.attribute_names == [
            "NON_VOLATILE", "BOOTSERVICE_ACCESS", "RUNTIME_ACCESS",
            "TIME_BASED_AUTHENTICATED_WRITE_ACCESS",
        ]  # fmt: skip
    enable = store.get("SecureBootEnable", guids.EFI_SECURE_BOOT_ENABLE_DISABLE)
    assert enable is not None and enable.data == b"\x01" and enable.attributes == 0x03
    custom = store.get("CustomMode", guids.EFI_CUSTOM_MODE_ENABLE)
    assert custom is not None and custom.data == b"\x00"
    keys_nv = store.get("VendorKeysNv", guids.EFI_VENDOR_KEYS_NV)
    assert keys_nv is not None and keys_nv.data == b"\x00" and keys_nv.attributes == 0x23
    # Keys are (guid, name): the same name under another GUID is another variable.
    assert store.get("PK", uuid.UUID(int=1)) is None
    assert (guids.EFI_GLOBAL_VARIABLE, "PK") in store
    pk = store.get("PK", guids.EFI_GLOBAL_VARIABLE)
    assert pk is not None
    assert store.keys()[store.variables.index(pk)] == (guids.EFI_GLOBAL_VARIABLE, "PK")
