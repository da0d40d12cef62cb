"""Event log parsing beyond the real logs: hostile inputs (testdata/tcg/hostile, made by
make_tcg_fixtures.py), the slow path, StartupLocality, unknown types, decoders' errors."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest

from fwtools.errors import ParseError, TruncatedError
from fwtools.formats.tcg.decode import (
    AuthorityData,
    BlobData,
    HandoffTablesData,
    RawData,
    StartupLocalityData,
    TextData,
    VariableData,
    decode_event,
)
from fwtools.formats.tcg.log import load_event_log, parse_event_log
from fwtools.formats.tcg.replay import compare, initial_value, replay
from fwtools.formats.tcg.write import log_to_bytes, measure, pcr_event, pcr_event2, spec_id_record

HOSTILE = Path(__file__).resolve().parents[3] / "testdata" / "tcg" / "hostile"
BANKS = ((0x4, 20), (0xB, 32))
ALGS = [0x4, 0xB]


def expected() -> list[tuple[str, str, int]]:
    rows = []
    for line in (HOSTILE / "EXPECTED.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            name, structure, offset = line.split("\t")
            rows.append((name, structure, int(offset, 16)))
    return rows


@pytest.mark.parametrize(("name", "structure", "offset"), expected())
def test_hostile_logs_name_structure_and_offset(name: str, structure: str, offset: int) -> None:
    with pytest.raises(ParseError) as info:
        load_event_log(HOSTILE / name)
    err = info.value
    assert (err.structure, err.offset) == (structure, offset)
    text = str(err)
    assert text.startswith(f"{HOSTILE / name}: {structure}: offset {offset:#x}: ")
    assert "\n" not in text


def test_every_hostile_fixture_is_listed() -> None:
    assert sorted(p.name for p in HOSTILE.glob("*.bin")) == sorted(n for n, _, _ in expected())


def test_empty_log() -> None:
    with pytest.raises(TruncatedError, match="empty"):
        parse_event_log(b"")


def log_of(*records: bytes) -> bytes:
    return spec_id_record(BANKS) + b"".join(records)


def test_startup_locality_sets_pcr0() -> None:
    locality = pcr_event2(0, 3, [(0x4, bytes(20)), (0xB, bytes(32))],
                          b"StartupLocality\0\x03")
    data = b"hello"
    log = parse_event_log(log_of(locality, pcr_event2(0, 8, measure(data, ALGS), data)))
    assert log.startup_locality == 3
    assert decode_event(log.events[1]) == StartupLocalityData(3)
    result = replay(log)
    start = bytes(31) + b"\x03"
    assert result.banks["sha256"][0] == hashlib.sha256(
        start + hashlib.sha256(data).digest()).digest()
    assert initial_value(0, 32, 3) == start
    assert initial_value(17, 20) == b"\xff" * 20


def test_records_in_another_digest_order_take_the_checked_path() -> None:
    data = b"x"
    swapped = list(reversed(measure(data, ALGS)))
    only_sha1 = measure(data, [0x4])
    log = parse_event_log(log_of(pcr_event2(4, 0xD, swapped, data),
                                 pcr_event2(5, 0xD, only_sha1, data)))
    assert [list(e.digests) for e in log.events[1:]] == [[0xB, 0x4], [0x4]]
    result = replay(log)
    assert result.banks["sha256"][4] == hashlib.sha256(
        bytes(32) + hashlib.sha256(data).digest()).digest()
    assert result.incomplete == ("sha256",)  # PCR 5's event has no sha256 digest
    assert 5 not in result.banks["sha256"]
    assert log_to_bytes(log) == log_of(pcr_event2(4, 0xD, swapped, data),
                                       pcr_event2(5, 0xD, only_sha1, data))


def test_repeated_algorithm_in_a_record() -> None:
    data = b"x"
    digests = measure(data, [0x4]) * 2
    blob = log_of(pcr_event2(4, 0xD, digests, data))
    with pytest.raises(ParseError, match="repeats TPM_ALG_ID 0x0004"):
        parse_event_log(blob)


def test_unknown_event_types_are_kept_raw() -> None:
    data = b"\x01\x02\x03"
    log = parse_event_log(log_of(pcr_event2(2, 0x12345678, measure(data, ALGS), data)))
    event = log.events[1]
    assert event.type_name == "0x12345678"
    assert decode_event(event) == RawData(data)
    assert replay(log).banks["sha1"][2] == hashlib.sha1(
        bytes(20) + hashlib.sha1(data).digest()).digest()


def test_decoder_errors_carry_absolute_offsets() -> None:
    bad_var = struct.pack("<16sQQ", bytes(16), 1000, 0)  # a 1000-character name, no bytes
    log = parse_event_log(log_of(pcr_event2(7, 0x80000001, measure(b"", ALGS), bad_var)))
    event = log.events[1]
    with pytest.raises(TruncatedError) as info:
        decode_event(event)
    assert info.value.offset == event.data_offset + 16
    assert info.value.structure == "UEFI_VARIABLE_DATA"


def test_variable_with_a_bad_signature_list_keeps_the_variable() -> None:
    name = "db".encode("utf-16-le")
    body = b"\xff" * 10
    raw = struct.pack("<16sQQ", bytes(16), 2, len(body)) + name + body
    log = parse_event_log(log_of(pcr_event2(7, 0x80000001, measure(raw, ALGS), raw)))
    decoded = decode_event(log.events[1])
    assert isinstance(decoded, VariableData)
    assert decoded.name == "db" and decoded.value is None
    assert decoded.value_error is not None and "offset" in decoded.value_error


def test_more_event_data_shapes() -> None:
    blob2 = bytes([10]) + b"Fv(123456)" + struct.pack("<QQ", 0x820000, 0x1000)
    handoff = struct.pack("<Q", 1) + bytes(16) + struct.pack("<Q", 0x7F000000)
    utf16 = "linux initrd=\\initrd".encode("utf-16-le")
    auth_raw = struct.pack("<16sQQ", bytes(16), 10, 1) + "MokSBState".encode("utf-16-le") + b"\x01"
    log = parse_event_log(log_of(
        pcr_event2(0, 0x8000000A, measure(b"", ALGS), blob2),
        pcr_event2(1, 0x80000009, measure(b"", ALGS), handoff),
        pcr_event2(12, 0xD, measure(b"", ALGS), utf16),
        pcr_event2(7, 0x800000E0, measure(b"", ALGS), auth_raw),
        pcr_event2(4, 0x4, measure(b"", ALGS), b"\xff\xff\xff\xff"),
        pcr_event2(1, 0x8000000B, measure(b"", ALGS), b"\x06SMBIOS" + handoff),
    ))
    decoded = [decode_event(e) for e in log.events[1:]]
    assert decoded[0] == BlobData(0x820000, 0x1000, "Fv(123456)")
    assert isinstance(decoded[1], HandoffTablesData) and decoded[1].tables[0][1] == 0x7F000000
    assert decoded[2] == TextData("linux initrd=\\initrd", "utf-16le", False, "systemd_cmdline")
    assert isinstance(decoded[3], AuthorityData) and decoded[3].entry is None
    assert decoded[3].data == b"\x01"
    assert getattr(decoded[4], "error", None) is True
    assert decoded[5] == HandoffTablesData(decoded[1].tables, "SMBIOS")


def test_sha1_form_with_cut_record() -> None:
    record = pcr_event(0, 8, hashlib.sha1(b"v").digest(), b"v\0")
    with pytest.raises(TruncatedError) as info:
        parse_event_log(record + record[:-1])
    assert info.value.structure == "TCG_PCR_EVENT[1]"
    assert info.value.offset == len(record) + 28


def test_compare_statuses() -> None:
    data = b"x"
    log = parse_event_log(log_of(pcr_event2(4, 0xD, measure(data, ALGS), data)))
    result = replay(log)
    good = result.banks["sha256"][4]
    rows = compare(result, {"sha256": {4: good, 10: b"\x01" * 32, 11: bytes(32)}})
    assert [(r.pcr, r.status) for r in rows] == [(4, "match"), (10, "not-logged")]
    rows = compare(result, {"sha256": {4: bytes(32)}, "sha1": {}})
    # In the log's bank order; a bank the dump does not have at all is skipped.
    assert [(r.bank, r.pcr, r.status) for r in rows] == [("sha1", 4, "not-measured"),
                                                        ("sha256", 4, "mismatch")]
    assert compare(result, {"sha384": {0: bytes(48)}}) == []


def test_sm3_bank_replayed_or_named_unavailable() -> None:
    banks = ((0xB, 32), (0x12, 32))
    data = b"sm3"
    sm3_digest = bytes(32)  # what the log says; only an OpenSSL with SM3 can check it
    if "sm3" in hashlib.algorithms_available:
        sm3_digest = hashlib.new("sm3", data).digest()
    log = parse_event_log(spec_id_record(banks) + pcr_event2(
        8, 0xD, [*measure(data, [0xB]), (0x12, sm3_digest)], data))
    result = replay(log)
    if "sm3" not in hashlib.algorithms_available:
        # The bank is parsed and said to be unavailable, never computed wrongly.
        assert list(result.banks) == ["sha256"] and result.unavailable == ("sm3_256",)
        return
    assert list(result.banks) == ["sha256", "sm3_256"]
    assert result.banks["sm3_256"][8] == hashlib.new(
        "sm3", bytes(32) + hashlib.new("sm3", data).digest()).digest()


def test_unknown_algorithm_bank_is_parsed_not_replayed() -> None:
    banks = ((0xB, 32), (0x27, 48))  # 0x27 (SHA3-384 is 0x28): not a hash fwtools replays
    data = b"x"
    log = parse_event_log(spec_id_record(banks)
                          + pcr_event2(8, 0xD, [*measure(data, [0xB]), (0x27, bytes(48))], data))
    result = replay(log)
    assert list(result.banks) == ["sha256"] and result.unavailable == ("alg_0027",)


def test_ipl_sources() -> None:
    def ipl(pcr: int, data: bytes) -> bytes:
        return pcr_event2(pcr, 0xD, measure(data, ALGS), data)

    log = parse_event_log(log_of(
        ipl(8, b"grub_cmd: linux /vmlinuz ro\0"),
        ipl(9, b"(hd0,gpt2)/boot/grub/grub.cfg\0"),
        ipl(14, b"MokListX\0"),
        ipl(11, b".linux\0"),
        ipl(12, "root=/dev/vda2 ro".encode("utf-16-le")),
        ipl(4, b"something else\0"),
    ))
    got = [decode_event(e) for e in log.events[1:]]
    assert [getattr(d, "source", None) for d in got] == [
        "grub_cmd", "grub_file", "shim_mok", "systemd_stub_section", "systemd_cmdline", None]
    assert isinstance(got[4], TextData) and got[4].text == "root=/dev/vda2 ro"


def test_post_code_as_string_or_blob() -> None:
    blob = struct.pack("<QQ", 0xFFE00000, 0x200000)
    log = parse_event_log(log_of(pcr_event2(0, 0x1, measure(b"", ALGS), b"POST CODE"),
                                 pcr_event2(0, 0x1, measure(b"", ALGS), blob),
                                 pcr_event2(0, 0x7, measure(b"", ALGS), blob)))
    got = [decode_event(e) for e in log.events[1:]]
    assert got[0] == TextData("POST CODE", "ascii", False)
    assert got[1] == got[2] == BlobData(0xFFE00000, 0x200000)
