"""EFI_VARIABLE_AUTHENTICATION_2 payloads (.auth): layout, errors, presets, signed bytes.

Byte layouts are checked against files made by efitools, sbsigntool and Microsoft; the
signed byte sequence is checked here field by field and, through OpenSSL, in
tests/crypto/test_authvar.py.
"""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

import pytest
from corpus import MsCorpus
from hypothesis import given, settings
from hypothesis import strategies as st

from fwtools._base.efitime import EfiTime
from fwtools.errors import ParseError, SignatureFormatError, TruncatedError, UsageError
from fwtools.formats.efi import guids
from fwtools.formats.efi.authvar import (
    APPEND_WRITE,
    PRESETS,
    AuthVariable2,
    attribute_names,
    auth_header_size,
    empty_auth,
    encode_variable_name,
    is_auth_payload,
    parse_attributes,
    signed_data_bytes,
    variable_defaults,
    variable_preset,
)
from fwtools.formats.pe import wincert_layout

REPO = Path(__file__).resolve().parents[3]
SIGDB = REPO / "testdata" / "sigdb"
GOOD_AUTH = sorted(
    p.name for p in SIGDB.glob("*.auth") if not p.name.startswith(("bad-", "truncated", "garbage"))
)


def auth(name: str) -> bytes:
    return (SIGDB / name).read_bytes()


@pytest.mark.parametrize("name", GOOD_AUTH)
def test_fixtures_parse_and_round_trip(name: str) -> None:
    data = auth(name)
    a = AuthVariable2.parse(data)
    assert a.to_bytes() == data
    assert a.cert_type == wincert_layout.WIN_CERT_TYPE_EFI_GUID == 0x0EF1
    assert a.cert_guid == guids.CERT_TYPE_PKCS7
    assert a.revision == 0x0200
    assert a.pkcs7_offset == 40
    assert a.payload_offset == 16 + a.dw_length == a.header_size
    assert data[a.payload_offset :] == a.payload
    assert (
        a.payload
        == (
            SIGDB
            / (
                "kek.esl"
                if name.startswith("kek")
                else "hashes.esl"
                if name.startswith("dbx")
                else "db-efitools.esl"
            )
        ).read_bytes()
    )
    assert is_auth_payload(data) and auth_header_size(data) == a.header_size
    parsed_at = AuthVariable2.parse(data, base=0x1000)
    assert parsed_at.pkcs7_offset == 0x1028 and parsed_at.payload_offset == 0x1000 + 16 + (
        a.dw_length
    )


def test_efitools_header_details() -> None:
    a = AuthVariable2.parse(auth("db-efitools.auth"))
    assert a.timestamp == EfiTime(2024, 1, 2, 3, 4, 5)
    assert a.is_signed and a.problems() == []
    assert a.pkcs7[:1] == b"\x30" and len(a.pkcs7) == a.dw_length - 24
    append = AuthVariable2.parse(auth("db-efitools-append.auth"))
    assert append.timestamp.is_zero  # sign-efi-sig-list -a


def test_unsigned_header() -> None:
    payload = auth("db-efitools.esl")
    data = empty_auth(payload, EfiTime(2024, 1, 2, 3, 4, 5))
    assert data == auth("db-unsigned.auth")
    a = AuthVariable2.parse(data)
    assert a.dw_length == 24 and a.pkcs7 == b"" and not a.is_signed
    assert a.payload == payload and a.payload_offset == 40
    assert a.problems() == ["no PKCS#7 signature (accepted only in setup mode or custom mode)"]
    assert struct.unpack_from("<IHH", data, 16) == (24, 0x0200, 0x0EF1)
    assert is_auth_payload(data)
    now = AuthVariable2.parse(empty_auth(b""))
    assert now.timestamp.auth_problems() == [] and not now.timestamp.is_zero


@pytest.mark.parametrize(
    ("name", "error", "offset", "message"),
    [
        ("bad-dwlength.auth", SignatureFormatError, 16, "past the end"),
        ("bad-dwlength-small.auth", SignatureFormatError, 16, "dwLength 8 is smaller"),
        ("bad-certtype.auth", SignatureFormatError, 22, "wCertificateType 0x0002"),
        ("bad-certguid.auth", SignatureFormatError, 24, "CertType a7717414"),
        ("truncated-timestamp.auth", TruncatedError, 0, "TimeStamp"),
        ("truncated-header.auth", TruncatedError, 16, "needs 40 bytes"),
    ],
)
def test_malformed_headers(name: str, error: type[ParseError], offset: int, message: str) -> None:
    data = auth(name)
    with pytest.raises(error, match=message) as info:
        AuthVariable2.parse(data, base=0x300)
    assert type(info.value) is error
    assert info.value.offset == 0x300 + offset
    assert not is_auth_payload(data)


def test_garbage_pkcs7_still_parses_as_a_header() -> None:
    # The header is fine; the PKCS#7 is the crypto layer's problem (test_authvar.py).
    a = AuthVariable2.parse(auth("garbage-pkcs7.auth"))
    assert len(a.pkcs7) == 64 and a.payload == auth("db-efitools.esl")


def test_revision_is_kept_and_reported() -> None:
    data = bytearray(auth("db-efitools.auth"))
    struct.pack_into("<H", data, 20, 0x0100)
    a = AuthVariable2.parse(bytes(data))
    assert a.revision == 0x0100 and a.to_bytes() == bytes(data)
    assert a.problems() == ["wRevision is 0x0100, not 0x0200"]


def test_sniffer_on_other_inputs() -> None:
    for name in ("db-efitools.esl", "hashes.esl", "mixed.esl", "db.der", "db.pem"):
        assert not is_auth_payload(auth(name)), name
        assert auth_header_size(auth(name)) == 0
    assert not is_auth_payload(b"") and not is_auth_payload(bytes(39))


def test_signed_data_bytes_layout() -> None:
    stamp = EfiTime(2024, 1, 2, 3, 4, 5)
    vendor = guids.EFI_IMAGE_SECURITY_DATABASE
    out = signed_data_bytes("dbx", vendor, 0x67, stamp, b"PAYLOAD")
    assert out == (
        b"d\0b\0x\0"  # UCS-2LE, no NUL
        + bytes.fromhex("cbb219d73a3d9645a3bcdad00e67656f")  # the GUID in EFI byte order
        + b"\x67\0\0\0"
        + stamp.to_bytes()
        + b"PAYLOAD"
    )
    a = AuthVariable2.parse(auth("db-efitools.auth"))
    assert a.signed_data("db", vendor, 0x27) == signed_data_bytes(
        "db", vendor, 0x27, a.timestamp, a.payload
    )
    assert encode_variable_name("Mök") == "Mök".encode("utf-16-le")
    for bad in ("", "a\0b", "emoji\U0001f600", "\ud800"):
        with pytest.raises(UsageError):
            encode_variable_name(bad)


def test_variable_defaults() -> None:
    assert variable_defaults("PK") == (guids.EFI_GLOBAL_VARIABLE, 0x27)
    assert variable_defaults("KEK") == (guids.EFI_GLOBAL_VARIABLE, 0x27)
    for name in ("db", "dbx", "dbt", "dbr"):
        assert variable_defaults(name) == (guids.EFI_IMAGE_SECURITY_DATABASE, 0x27)
    for name in ("MokList", "MokListX", "MokListTrusted", "SbatLevel"):
        assert variable_defaults(name) == (guids.SHIM_LOCK, 0x27)  # "MOK-style"
        # ... while shim stores them NV|BS, not time-authenticated (MokVars.txt, sbat.h).
        assert variable_preset(name).stored_attributes == 0x03
    assert not PRESETS["SbatLevel"].signature_database
    with pytest.raises(UsageError, match="did you mean db"):
        variable_defaults("DB")
    with pytest.raises(UsageError, match="known: PK, KEK"):
        variable_defaults("Boot0000")


def test_attribute_names_and_parsing() -> None:
    assert attribute_names(0x27) == [
        "NON_VOLATILE",
        "BOOTSERVICE_ACCESS",
        "RUNTIME_ACCESS",
        "TIME_BASED_AUTHENTICATED_WRITE_ACCESS",
    ]
    assert attribute_names(0x67 | 0x100, short=True) == ["NV", "BS", "RT", "AT", "AP", "0x100"]
    assert parse_attributes("0x67") == 0x67 == parse_attributes("103")
    assert parse_attributes("NV|BS|RT|AT") == 0x27
    assert parse_attributes("EFI_VARIABLE_NON_VOLATILE, append_write") == 0x41
    assert 0x27 | APPEND_WRITE == 0x67
    for bad in ("NV|XX", "0x100000000", "-1"):
        with pytest.raises(UsageError):
            parse_attributes(bad)


@pytest.mark.parametrize(
    "relpath",
    [f"dbx/{a}/DBXUpdate.bin" for a in ("amd64", "x86", "arm64", "arm")]
    + ["dbx/optional/DBXUpdate2024.bin", "dbx/optional/DBXUpdateSVN.bin"]
    + [f"db/amd64/{n}.bin" for n in ("DBUpdate2024", "DBUpdate3P2023", "DBUpdateOROM2023")]
    + [f"kek/KEKUpdate_Microsoft_PK{n}.bin" for n in (1, 2, 3)],
)
def test_microsoft_objects_parse(relpath: str, ms_corpus: MsCorpus) -> None:
    data = (ms_corpus.root / relpath).read_bytes()
    a = AuthVariable2.parse(data)
    assert a.to_bytes() == data
    assert a.timestamp == EfiTime(2010, 3, 6, 19, 17, 21)
    assert a.problems() == []
    assert is_auth_payload(data)
    # A bare SignedData: SEQUENCE { INTEGER version, ... } (docs/reference/formats.md §4).
    assert a.pkcs7[0] == 0x30 and b"\x02\x01\x01" in a.pkcs7[:8]


@given(st.binary(max_size=200))
@settings(max_examples=400)
def test_parse_fuzz(data: bytes) -> None:
    try:
        a = AuthVariable2.parse(data)
    except ParseError:
        assert not is_auth_payload(data) or len(data) < 40
        return
    assert a.to_bytes() == data
    assert is_auth_payload(data)


@given(st.binary(max_size=120), st.binary(max_size=60), st.integers(0, 0xFFFF))
def test_structured_fuzz(pkcs7: bytes, payload: bytes, revision: int) -> None:
    built = AuthVariable2.build(EfiTime(2024, 1, 2, 3, 4, 5), pkcs7, payload, revision=revision)
    data = built.to_bytes()
    again = AuthVariable2.parse(data)
    assert again == built
    # Cutting into the header or the PKCS#7 is always a clean error.
    for cut in range(0, 40 + len(pkcs7), 7):
        try:
            AuthVariable2.parse(data[:cut])
        except ParseError:
            continue
        raise AssertionError(f"parsed a blob cut at {cut}")


def test_owner_guid_lookup() -> None:
    assert guids.guid_by_name("Microsoft") == guids.MICROSOFT
    assert guids.guid_by_name("microsoftvendor") == guids.MICROSOFT
    assert guids.guid_by_name("guid:OvmfEnrollDefaultKeys") == guids.OVMF_ENROLL_DEFAULT_KEYS
    assert guids.guid_by_name("canonical") == uuid.UUID("6dc40ae4-2ee8-9c4c-a314-0fc7b2008710")
    assert guids.guid_by_name("shim") == guids.SHIM_LOCK
    assert guids.guid_by_name("nope") is None
    # Every named GUID finds itself back by its name.
    for guid, name in guids.NAMES.items():
        assert guids.guid_by_name(name) == guid
