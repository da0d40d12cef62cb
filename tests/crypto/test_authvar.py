"""Signed .auth updates: describe, verify and sign, against Microsoft, efitools, sbsigntool
and OpenSSL.

Oracles:
- Microsoft's signed db/dbx/KEK updates (microsoft/secureboot_objects) must verify, and the
  tests pin which certificate signed each, which trusted certificate anchors it and with
  which attributes (0x67: they are append writes);
- ``openssl cms -verify -binary -partial_chain -purpose any -no_check_time`` over the
  signed bytes we reconstruct (bare SignedData re-wrapped in a ContentInfo for OpenSSL)
  agrees with verify_auth, for Microsoft's updates and for what sign_auth makes;
- efitools' ``sign-efi-sig-list`` and sbsigntool's ``sbvarsign`` output (committed fixtures
  and fresh runs) must verify with verify_auth.
"""

from __future__ import annotations

import contextlib
import ssl
import subprocess
import uuid
from pathlib import Path

import pytest
from corpus import MsCorpus
from corpus.params import need_tool
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from hypothesis import given, settings
from hypothesis import strategies as st

from fwtools._base.efitime import EfiTime
from fwtools.crypto.authvar import (
    AuthVerifyResult,
    auth_signature_info,
    certificate_problems,
    empty_auth,
    sign_auth,
    verify_auth,
)
from fwtools.crypto.trust import TrustAnchors
from fwtools.errors import FwError, SignatureFormatError, UsageError
from fwtools.formats.efi import guids
from fwtools.formats.efi.authvar import AuthVariable2, signed_data_bytes, variable_defaults
from fwtools.formats.efi.siglist import SignatureDatabase

REPO = Path(__file__).resolve().parents[2]
SIGDB = REPO / "testdata" / "sigdb"
DB_GUID = guids.EFI_IMAGE_SECURITY_DATABASE
STAMP = EfiTime(2024, 1, 2, 3, 4, 5)
KEK_CA_2011 = "Microsoft Corporation KEK CA 2011"
MS_KEK_SIGNER = "Microsoft Windows UEFI Key Exchange Key"


def der(name: str) -> bytes:
    return (SIGDB / f"{name}.der").read_bytes()


def key(name: str) -> bytes:
    return (SIGDB / "keys" / f"{name}.key").read_bytes()


def fixture(name: str) -> AuthVariable2:
    return AuthVariable2.parse((SIGDB / name).read_bytes())


def openssl_verifies(auth: AuthVariable2, content: bytes, anchor: bytes, tmp_path: Path) -> bool:
    """``openssl cms -verify`` with firmware's chain rules over ``content``."""
    from asn1crypto import cms

    need_tool("openssl")
    info = cms.ContentInfo.load(auth.pkcs7) if auth.pkcs7[4:6] == b"\x06\x09" else None
    if info is None:  # bare SignedData: OpenSSL wants the ContentInfo
        info = cms.ContentInfo(
            {"content_type": "signed_data", "content": cms.SignedData.load(auth.pkcs7)}
        )
    p7, data, ca = tmp_path / "p7.der", tmp_path / "signed.bin", tmp_path / "ca.pem"
    p7.write_bytes(info.dump())
    data.write_bytes(content)
    ca.write_text(ssl.DER_cert_to_PEM_cert(anchor))
    proc = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", p7, "-content",
         data, "-CAfile", ca, "-partial_chain", "-purpose", "any", "-no_check_time",
         "-out", "/dev/null"],
        capture_output=True,
    )  # fmt: skip
    return proc.returncode == 0


# -- Microsoft's signed updates ------------------------------------------------------------

DB_DBX_UPDATES = [
    ("dbx/amd64/DBXUpdate.bin", "dbx"),
    ("dbx/x86/DBXUpdate.bin", "dbx"),
    ("dbx/arm64/DBXUpdate.bin", "dbx"),
    ("dbx/arm/DBXUpdate.bin", "dbx"),
    ("dbx/optional/DBXUpdate2024.bin", "dbx"),
    ("dbx/optional/DBXUpdateSVN.bin", "dbx"),
    ("db/amd64/DBUpdate2024.bin", "db"),
    ("db/amd64/DBUpdate3P2023.bin", "db"),
    ("db/amd64/DBUpdateOROM2023.bin", "db"),
]


@pytest.mark.parametrize(("relpath", "name"), DB_DBX_UPDATES)
def test_microsoft_db_dbx_updates(
    relpath: str, name: str, ms_corpus: MsCorpus, tmp_path: Path
) -> None:
    a = AuthVariable2.parse((ms_corpus.root / relpath).read_bytes())
    info = auth_signature_info(a)
    assert info.form == "SignedData" and info.digest_algorithm == "sha256"
    assert not info.has_signed_attributes and info.detached and info.problems == []
    assert [s.common_name for s in info.signers] == [MS_KEK_SIGNER]
    assert [c.common_name for c in info.certificates] == [MS_KEK_SIGNER, KEK_CA_2011]

    kek_2011 = (ms_corpus.root / "certs/kek/MicCorKEKCA2011_2011-06-24.der").read_bytes()
    kek_2023 = (ms_corpus.root / "certs/kek/microsoft-corporation-kek-2k-ca-2023.der").read_bytes()
    result = verify_auth(a, name, DB_GUID, None, [kek_2023, kek_2011])
    assert result.valid, result.reason
    assert result.attributes == 0x67 and result.tried == [0x27, 0x67]
    assert result.signer is not None and result.signer.common_name == MS_KEK_SIGNER
    assert result.anchor is not None and result.anchor.der == kek_2011
    assert [c.common_name for c in result.chain] == [MS_KEK_SIGNER, KEK_CA_2011]
    assert result.digest_algorithm == "sha256" and result.warnings == []
    # Not by the 2023 KEK: these were all signed under the 2011 one.
    assert not verify_auth(a, name, DB_GUID, None, [kek_2023]).valid
    # The same verdicts from OpenSSL over our reconstruction of the signed bytes.
    assert openssl_verifies(a, a.signed_data(name, DB_GUID, 0x67), kek_2011, tmp_path)
    assert not openssl_verifies(a, a.signed_data(name, DB_GUID, 0x27), kek_2011, tmp_path)
    assert not openssl_verifies(a, a.signed_data(name, DB_GUID, 0x67), kek_2023, tmp_path)


@pytest.mark.parametrize(
    ("n", "signer"),
    [
        (1, "Microsoft Hyper-V Firmware PK"),
        (2, "Microsoft Surface XLFF 2 UEFI PK Signer"),
        (3, "Microsoft Surface NFF UEFI PK Signer"),
    ],
)
def test_microsoft_kek_updates(n: int, signer: str, ms_corpus: MsCorpus, tmp_path: Path) -> None:
    a = AuthVariable2.parse((ms_corpus.root / f"kek/KEKUpdate_Microsoft_PK{n}.bin").read_bytes())
    info = auth_signature_info(a)
    assert [s.common_name for s in info.signers] == [signer]
    # They are signed by the PKs of Microsoft's own devices, not by the "Windows OEM
    # Devices PK" published beside them: that one verifies none.
    oem_pk = (ms_corpus.root / "certs/pk/WindowsOEMDevicesPK.der").read_bytes()
    refused = verify_auth(a, "KEK", guids.EFI_GLOBAL_VARIABLE, None, [oem_pk])
    assert not refused.valid and "does not chain" in refused.reason
    assert refused.attributes == 0x67  # the signature itself is fine, with 0x67
    # With the device's PK (the signer certificate) enrolled, it verifies.
    pk = info.signers[0].der
    result = verify_auth(a, "KEK", guids.EFI_GLOBAL_VARIABLE, None, [pk])
    assert result.valid and result.attributes == 0x67, result.reason
    assert result.anchor is not None and result.anchor.der == pk
    assert "the signer itself is trusted" in result.reason
    assert openssl_verifies(a, a.signed_data("KEK", guids.EFI_GLOBAL_VARIABLE, 0x67), pk, tmp_path)
    payload = SignatureDatabase.parse(a.payload)
    assert [c for c in payload.certificates()] == [
        (ms_corpus.root / "certs/kek/microsoft-corporation-kek-2k-ca-2023.der").read_bytes()
    ]
    if n == 1:  # the bag also carries the signer's issuer: a partial chain to it works
        issuer = info.certificates[1]
        via_ca = verify_auth(a, "KEK", guids.EFI_GLOBAL_VARIABLE, 0x67, [issuer.der])
        assert via_ca.valid and [c.common_name for c in via_ca.chain] == [
            signer,
            "Microsoft Corporation Third Party Marketplace PCA",
        ]


def test_microsoft_update_tampering(ms_corpus: MsCorpus) -> None:
    data = (ms_corpus.root / "dbx/amd64/DBXUpdate.bin").read_bytes()
    anchor = [(ms_corpus.root / "certs/kek/MicCorKEKCA2011_2011-06-24.der").read_bytes()]
    good = AuthVariable2.parse(data)
    assert verify_auth(good, "dbx", DB_GUID, 0x67, anchor).valid
    flipped = bytearray(data)
    flipped[-1] ^= 1
    bad = verify_auth(AuthVariable2.parse(bytes(flipped)), "dbx", DB_GUID, None, anchor)
    assert not bad.valid and "neither attributes 0x27 nor 0x67" in bad.reason
    assert bad.signer is not None and bad.anchor is None
    stamp = bytearray(data)
    stamp[6] ^= 1  # the Second of the TimeStamp is signed too
    assert not verify_auth(AuthVariable2.parse(bytes(stamp)), "dbx", DB_GUID, None, anchor).valid
    wrong_attrs = verify_auth(good, "dbx", DB_GUID, 0x27, anchor)
    assert not wrong_attrs.valid and wrong_attrs.attributes == 0x27
    assert "with attributes 0x27" in wrong_attrs.reason
    assert not verify_auth(good, "db", DB_GUID, None, anchor).valid  # wrong name
    assert not verify_auth(good, "dbx", guids.EFI_GLOBAL_VARIABLE, 0x67, anchor).valid
    assert not verify_auth(good, "dbx", DB_GUID, 0x67, [der("kek-ca")]).valid


# -- efitools, sbvarsign and our own fixtures ----------------------------------------------

FIXTURES = [
    # file, variable, anchor, attributes that verify, form, signed attributes
    ("db-efitools.auth", "db", "kek-ca", 0x27, "SignedData", False),
    ("db-efitools.auth", "db", "kek", 0x27, "SignedData", False),
    ("db-efitools-append.auth", "db", "kek-ca", 0x67, "SignedData", False),
    ("kek-efitools.auth", "KEK", "pk", 0x27, "SignedData", False),
    ("moklist-efitools.auth", "MokList", "kek-ca", 0x27, "SignedData", False),
    ("db-sbvarsign.auth", "db", "kek-ca", 0x67, "SignedData", True),
    ("dbx-fwtools.auth", "dbx", "kek-ca", 0x27, "SignedData", False),
    ("db-fwtools-ci.auth", "db", "kek-ca", 0x67, "ContentInfo", True),
    ("db-fwtools-ec.auth", "db", "ec-kek", 0x27, "SignedData", False),
]


@pytest.mark.parametrize(("name", "var", "anchor", "attrs", "form", "signed_attrs"), FIXTURES)
def test_fixture_updates_verify(
    name: str,
    var: str,
    anchor: str,
    attrs: int,
    form: str,
    signed_attrs: bool,
    tmp_path: Path,
) -> None:
    a = fixture(name)
    vendor, _ = variable_defaults(var)
    info = auth_signature_info(a)
    assert info.form == form and info.has_signed_attributes == signed_attrs
    result = verify_auth(a, var, vendor, None, [der(anchor)])
    assert result.valid, result.reason
    assert result.attributes == attrs
    assert result.anchor is not None and result.anchor.der == der(anchor)
    assert result.chain[-1].der == der(anchor)
    assert openssl_verifies(a, a.signed_data(var, vendor, attrs), der(anchor), tmp_path)
    # Nothing else anchors it.
    assert not verify_auth(a, var, vendor, None, [der("other")]).valid


def test_sbvarsign_writes_a_zero_based_month() -> None:
    a = fixture("db-sbvarsign.auth")
    info = auth_signature_info(a)
    assert info.signing_time is not None
    year, month = int(info.signing_time[:4]), int(info.signing_time[5:7])
    # sbvarsign 0.9.4 copies struct tm's tm_mon (0-11) into EFI_TIME.Month.
    assert (a.timestamp.year, a.timestamp.month) == ((year, month - 1) if month > 1 else (year, 0))


def test_unsigned_and_bad_timestamp() -> None:
    unsigned = verify_auth(fixture("db-unsigned.auth"), "db", DB_GUID, None, [der("kek")])
    assert not unsigned.valid and unsigned.reason.startswith("unsigned")
    with pytest.raises(SignatureFormatError, match="no PKCS#7") as info:
        auth_signature_info(fixture("db-unsigned.auth"))
    assert info.value.offset == 40
    stamp = verify_auth(fixture("db-bad-timestamp.auth"), "db", DB_GUID, None, [der("kek-ca")])
    assert not stamp.valid and "Nanosecond is 1" in stamp.reason
    assert stamp.anchor is not None  # the signature and chain themselves are fine


def test_garbage_pkcs7() -> None:
    a = fixture("garbage-pkcs7.auth")
    with pytest.raises(SignatureFormatError) as info:
        auth_signature_info(a)
    assert info.value.offset == 40
    with pytest.raises(SignatureFormatError):
        verify_auth(a, "db", DB_GUID, None, [der("kek")])


def test_usage_errors() -> None:
    a = fixture("db-efitools.auth")
    with pytest.raises(UsageError, match="no defaults"):
        verify_auth(a, "Boot0001", DB_GUID, None, [der("kek")])
    with pytest.raises(UsageError, match="no usable trust anchor"):
        verify_auth(a, "db", DB_GUID, None, [b"not a certificate"])
    # An explicit attribute value works for any name.
    assert not verify_auth(a, "Boot0001", DB_GUID, 0x27, [der("kek")]).valid


def test_result_fields() -> None:
    r = verify_auth(fixture("db-efitools.auth"), "db", DB_GUID, None, [der("kek-ca")])
    assert isinstance(r, AuthVerifyResult)
    assert [c.common_name for c in r.chain] == ["fwtools test KEK signer", "fwtools test KEK CA"]
    assert r.signer is not None and r.signer.common_name == "fwtools test KEK signer"
    assert "chains to trusted CN=fwtools test KEK CA" in r.reason


# -- live oracles: efitools and sbvarsign make, we verify ----------------------------------


def test_sign_efi_sig_list_live(tmp_path: Path) -> None:
    need_tool("sign-efi-sig-list")
    out = tmp_path / "out.auth"
    for args, var, attrs in (
        (["-t", "2025-06-07 08:09:10"], "dbx", 0x27),
        (["-a", "-t", "2025-06-07 08:09:10"], "db", 0x67),
        (["-g", str(guids.SHIM_LOCK)], "MokListX", 0x27),  # local time == UTC here
    ):
        subprocess.run(
            ["sign-efi-sig-list", *args, "-k", SIGDB / "keys/kek.key", "-c", SIGDB / "kek.pem",
             var, SIGDB / "hashes.esl", out],
            check=True, capture_output=True, env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        a = AuthVariable2.parse(out.read_bytes())
        vendor, _ = variable_defaults(var)
        result = verify_auth(a, var, vendor, None, [der("kek-ca")])
        assert result.valid and result.attributes == attrs, (args, result.reason)


def test_sbvarsign_live(tmp_path: Path) -> None:
    need_tool("sbvarsign")
    out = tmp_path / "out.auth"
    subprocess.run(
        [
            "sbvarsign",
            "--key",
            SIGDB / "keys/kek.key",
            "--cert",
            SIGDB / "kek.pem",
            "--attr",
            "NON_VOLATILE,BOOTSERVICE_ACCESS,RUNTIME_ACCESS",
            "--output",
            out,
            "dbx",
            SIGDB / "hashes.esl",
        ],
        check=True,
        capture_output=True,
    )
    a = AuthVariable2.parse(out.read_bytes())
    result = verify_auth(a, "dbx", DB_GUID, None, [der("kek")])
    assert result.valid and result.attributes == 0x27, result.reason  # AT always added


# -- signing -------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["SignedData", "ContentInfo"])
@pytest.mark.parametrize("signed_attributes", [False, True])
@pytest.mark.parametrize("digest", ["sha256", "sha384", "sha512"])
def test_sign_auth_round_trip(
    form: str, signed_attributes: bool, digest: str, tmp_path: Path
) -> None:
    payload = (SIGDB / "hashes.esl").read_bytes()
    blob = sign_auth(
        "dbx",
        DB_GUID,
        0x67,
        payload,
        key("kek"),
        der("kek"),
        timestamp=STAMP,
        extra_certs=[der("kek-ca")],
        form=form,  # type: ignore[arg-type]
        signed_attributes=signed_attributes,
        digest=digest,
    )
    a = AuthVariable2.parse(blob)
    assert a.timestamp == STAMP and a.payload == payload
    info = auth_signature_info(a)
    assert info.form == form and info.has_signed_attributes == signed_attributes
    assert info.digest_algorithm == digest
    # The bag is a SET OF: cryptography writes it in DER order.
    assert sorted(c.common_name or "" for c in info.certificates) == [
        "fwtools test KEK CA",
        "fwtools test KEK signer",
    ]
    assert (info.signing_time is not None) == signed_attributes
    result = verify_auth(a, "dbx", DB_GUID, None, [der("kek-ca")])
    assert result.valid and result.attributes == 0x67, result.reason
    assert openssl_verifies(a, a.signed_data("dbx", DB_GUID, 0x67), der("kek-ca"), tmp_path)
    assert not openssl_verifies(a, a.signed_data("db", DB_GUID, 0x67), der("kek-ca"), tmp_path)


def test_sign_auth_defaults_and_key_forms() -> None:
    pem_key = key("pk")
    loaded = serialization.load_pem_private_key(pem_key, None)
    der_key = loaded.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem_cert = (SIGDB / "pk.pem").read_bytes()
    payload = (SIGDB / "kek.esl").read_bytes()
    for k, c in ((pem_key, der("pk")), (loaded, pem_cert), (der_key, der("pk"))):
        a = AuthVariable2.parse(sign_auth("KEK", guids.EFI_GLOBAL_VARIABLE, 0x27, payload, k, c))
        assert a.timestamp.auth_problems() == [] and not a.timestamp.is_zero  # now, UTC
        info = auth_signature_info(a)
        assert info.form == "SignedData" and not info.has_signed_attributes
        assert info.digest_algorithm == "sha256"
        assert verify_auth(a, "KEK", guids.EFI_GLOBAL_VARIABLE, None, [der("pk")]).valid
    zero = sign_auth("db", DB_GUID, 0x67, b"", pem_key, der("pk"), timestamp=EfiTime.zero())
    assert verify_auth(AuthVariable2.parse(zero), "db", DB_GUID, None, [der("pk")]).valid


def test_sign_auth_deterministic_for_rsa_without_attributes() -> None:
    payload = (SIGDB / "hashes.esl").read_bytes()
    blob = sign_auth("dbx", DB_GUID, 0x27, payload, key("kek"), der("kek"), timestamp=STAMP)
    assert blob == (SIGDB / "dbx-fwtools.auth").read_bytes()


def test_sign_auth_mok_style() -> None:
    vendor, attrs = variable_defaults("MokList")
    payload = (SIGDB / "db-efitools.esl").read_bytes()
    blob = sign_auth("MokList", vendor, attrs, payload, key("kek"), der("kek"), timestamp=STAMP)
    # Byte-identical to efitools' sign-efi-sig-list -g SHIM_LOCK MokList (both bare
    # SignedData, no attributes, deterministic RSA).
    assert blob == (SIGDB / "moklist-efitools.auth").read_bytes()
    assert (SIGDB / "db-efitools.auth").read_bytes() == sign_auth(
        "db", DB_GUID, 0x27, payload, key("kek"), der("kek"), timestamp=STAMP
    )


def test_sign_auth_refuses() -> None:
    ok = {"timestamp": STAMP}
    with pytest.raises(UsageError, match="TIME_BASED"):
        sign_auth("db", DB_GUID, 0x07, b"", key("kek"), der("kek"), **ok)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="digest"):
        sign_auth("db", DB_GUID, 0x27, b"", key("kek"), der("kek"), digest="sha1", **ok)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="form"):
        sign_auth("db", DB_GUID, 0x27, b"", key("kek"), der("kek"), form="PEM", **ok)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="Nanosecond"):
        sign_auth(
            "db",
            DB_GUID,
            0x27,
            b"",
            key("kek"),
            der("kek"),
            timestamp=EfiTime(2024, 1, 1, 0, 0, 0, nanosecond=5),
        )
    with pytest.raises(UsageError, match="private key"):
        sign_auth("db", DB_GUID, 0x27, b"", b"junk", der("kek"), **ok)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="signer certificate"):
        sign_auth("db", DB_GUID, 0x27, b"", key("kek"), b"junk", **ok)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="Ed25519"):
        sign_auth("db", DB_GUID, 0x27, b"", ed25519.Ed25519PrivateKey.generate(), der("kek"), **ok)  # type: ignore[arg-type]


def _cert(
    cn: str, k: rsa.RSAPrivateKey, issuer: x509.Certificate | None, issuer_key: rsa.RSAPrivateKey
) -> x509.Certificate:
    import datetime as dt

    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(k.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2000, 1, 1))
        .not_valid_after(dt.datetime(2001, 1, 1))
        .sign(issuer_key, hashes.SHA256())
    )


def test_chains_partial_and_broken() -> None:
    """root -> intermediate -> signer, all expired long ago (firmware ignores validity)."""
    keys = [rsa.generate_private_key(65537, 2048) for _ in range(3)]
    root = _cert("root", keys[0], None, keys[0])
    inter = _cert("intermediate", keys[1], root, keys[0])
    leaf = _cert("signer", keys[2], inter, keys[1])
    d = {c: c.public_bytes(serialization.Encoding.DER) for c in (root, inter, leaf)}
    payload = (SIGDB / "hashes.esl").read_bytes()
    with_bag = AuthVariable2.parse(
        sign_auth(
            "db", DB_GUID, 0x27, payload, keys[2], d[leaf], timestamp=STAMP, extra_certs=[d[inter]]
        )
    )
    without = AuthVariable2.parse(
        sign_auth("db", DB_GUID, 0x27, payload, keys[2], d[leaf], timestamp=STAMP)
    )
    for anchor, names in (
        (root, ["signer", "intermediate", "root"]),
        (inter, ["signer", "intermediate"]),
        (leaf, ["signer"]),
    ):
        r = verify_auth(with_bag, "db", DB_GUID, None, [d[anchor]])
        assert r.valid and [c.common_name for c in r.chain] == names, r.reason
    # Without the intermediate in the bag, the root is out of reach; the intermediate is not.
    assert not verify_auth(without, "db", DB_GUID, None, [d[root]]).valid
    assert verify_auth(without, "db", DB_GUID, None, [d[inter]]).valid


def test_two_signers_must_both_chain() -> None:
    content = signed_data_bytes("db", DB_GUID, 0x27, STAMP, b"")
    kek = serialization.load_pem_private_key(key("kek"), None)
    other = serialization.load_pem_private_key(key("other"), None)
    assert isinstance(kek, rsa.RSAPrivateKey) and isinstance(other, rsa.RSAPrivateKey)
    p7 = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(x509.load_der_x509_certificate(der("kek")), kek, hashes.SHA256())
        .add_signer(x509.load_der_x509_certificate(der("other")), other, hashes.SHA256())
        .sign(
            serialization.Encoding.DER,
            [
                pkcs7.PKCS7Options.DetachedSignature,
                pkcs7.PKCS7Options.Binary,
                pkcs7.PKCS7Options.NoAttributes,
            ],
        )
    )
    a = AuthVariable2.build(STAMP, p7, b"")
    assert len(auth_signature_info(a).signers) == 2
    assert not verify_auth(a, "db", DB_GUID, None, [der("kek-ca")]).valid
    assert verify_auth(a, "db", DB_GUID, None, [der("kek-ca"), der("other")]).valid


def test_embedded_content_is_refused() -> None:
    content = signed_data_bytes("db", DB_GUID, 0x27, STAMP, b"")
    kek = serialization.load_pem_private_key(key("kek"), None)
    assert isinstance(kek, rsa.RSAPrivateKey)
    p7 = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(x509.load_der_x509_certificate(der("kek")), kek, hashes.SHA256())
        .sign(
            serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.NoAttributes]
        )
    )
    a = AuthVariable2.build(STAMP, p7, b"")
    info = auth_signature_info(a)
    assert not info.detached and "detached" in info.problems[0]
    r = verify_auth(a, "db", DB_GUID, None, [der("kek")])
    assert not r.valid and "embeds its content" in r.reason


def test_empty_auth_reexport() -> None:
    assert empty_auth(b"x", STAMP) == AuthVariable2.build(STAMP, b"", b"x").to_bytes()


# -- certificates in lists -----------------------------------------------------------------


def test_certificate_problems() -> None:
    bad = SignatureDatabase.parse((SIGDB / "not-der-x509.esl").read_bytes())
    (problem,) = certificate_problems(bad)
    assert problem.offset == 44 and "not a DER X.509 certificate" in problem.message
    kek = SignatureDatabase.parse((SIGDB / "kek.esl").read_bytes())
    (ec_problem,) = certificate_problems(kek)  # the EC KEK: edk2 wants RSA here
    assert "EC-P256" in ec_problem.message
    assert ec_problem.offset == kek.lists[1].entries[0].data_offset
    assert (
        certificate_problems(SignatureDatabase.parse((SIGDB / "db-efitools.esl").read_bytes()))
        == []
    )


def test_trust_anchors_read_auth_files() -> None:
    # trust.py uses formats.efi.authvar's sniffer: a .auth's payload lists feed db/dbx.
    anchors = TrustAnchors.from_files(
        [SIGDB / "db-efitools.auth"], dbx_paths=[SIGDB / "dbx-fwtools.auth"]
    )
    assert anchors.db_certs == [der("db")]
    assert len(anchors.dbx_hashes["sha256"]) == 3 and len(anchors.dbx_hashes["sha1"]) == 1


# -- fuzzing -------------------------------------------------------------------------------


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_signature_info_fuzz(pkcs7_bytes: bytes) -> None:
    a = AuthVariable2.build(STAMP, pkcs7_bytes, b"")
    with contextlib.suppress(FwError):
        auth_signature_info(a)
    with contextlib.suppress(FwError):
        verify_auth(a, "db", DB_GUID, None, [der("kek")])


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_mutated_real_signatures_fuzz(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from([f[0] for f in FIXTURES]))
    a = fixture(name)
    raw = bytearray(a.pkcs7)
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    mutated = AuthVariable2.build(a.timestamp, bytes(raw[:cut]), a.payload)
    try:
        auth_signature_info(mutated)
        result = verify_auth(
            mutated, "db", DB_GUID, None, [der("kek-ca"), der("pk"), der("ec-kek")]
        )
    except FwError:
        return
    assert isinstance(result.valid, bool)


def test_ec_anchor_in_fixture_is_ec() -> None:
    cert = x509.load_der_x509_certificate(der("ec-kek"))
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


def test_uuid_vendor_matters() -> None:
    a = fixture("moklist-efitools.auth")
    assert verify_auth(a, "MokList", guids.SHIM_LOCK, 0x27, [der("kek")]).valid
    assert not verify_auth(a, "MokList", uuid.uuid4(), 0x27, [der("kek")]).valid
