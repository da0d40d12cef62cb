"""Authenticode PKCS#7 parsing and SignerInfo checks; X.509 summaries."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import Corpus, EfiBinary, MsCorpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwtools.crypto.authenticode import (
    AuthenticodeSignature,
    image_signatures,
    parse_authenticode,
)
from fwtools.crypto.x509info import certificate_info, load_certificates
from fwtools.errors import FwError, FwIOError, ParseError, SignatureFormatError
from fwtools.formats.efi import guids
from fwtools.formats.pe.authenticode import authenticode_digests
from fwtools.formats.pe.image import PeImage
from fwtools.formats.pe.wincert import certificate_entries

FIXTURES = Path(__file__).resolve().parents[2] / "testdata" / "authenticode"
MS_2011 = (
    "CN=Microsoft Corporation UEFI CA 2011,O=Microsoft Corporation,L=Redmond,ST=Washington,C=US"
)
MS_2023 = "CN=Microsoft UEFI CA 2023,O=Microsoft Corporation,C=US"


def sigs_of(name: str) -> list[AuthenticodeSignature]:
    return image_signatures(PeImage.open(FIXTURES / name))


# -- real signatures -------------------------------------------------------------------------


def test_corpus_signatures_verify(corpus_efi_binary: EfiBinary) -> None:
    img = PeImage.open(corpus_efi_binary.path)
    sigs = image_signatures(img)
    if img.certificate_table is None:
        assert sigs == []
        return
    assert sigs
    digests = authenticode_digests(img)
    for sig in sigs:
        assert sig.error is None, sig.error
        assert sig.digest_algorithm == "sha256"
        assert sig.signed_digest == digests["sha256"] == sig.computed_digest
        assert sig.digest_matches is True
        assert sig.signature_valid is True
        assert sig.signer is not None
        assert sig.signer.issuer == sig.signer_issuer
        assert sig.signer.serial == sig.signer_serial
        assert sig.signer in sig.certificates
        assert sig.nested == []


def test_corpus_shim_signatures(corpus: Corpus) -> None:
    for suite in ("bookworm", "trixie"):
        for arch in ("amd64", "arm64"):
            sigs = image_signatures(PeImage.open(corpus.shim(suite, arch)))
            assert [s.issuer for s in sigs] == [MS_2011, MS_2023]
            first, second = sigs
            assert first.signer is not None and second.signer is not None
            assert first.signer.common_name == "Microsoft Windows UEFI Driver Publisher"
            assert second.signer.common_name == "Microsoft UEFI CA 2023 signer"
            # Each bag carries the signer and its issuing CA (whose root is absent).
            assert [c.common_name for c in first.certificates] == [
                "Microsoft Windows UEFI Driver Publisher",
                "Microsoft Corporation UEFI CA 2011",
            ]
            assert first.offset < second.offset and (first.index, second.index) == (0, 1)


def test_corpus_debian_signers(corpus: Corpus) -> None:
    grub, kernel = corpus.grub("trixie", "amd64"), corpus.kernel("bookworm", "arm64")
    for path, what in ((grub, "grub2"), (kernel, "linux")):
        (sig,) = image_signatures(PeImage.open(path))
        assert sig.subject == f"CN=Debian Secure Boot Signer 2022 - {what}"
        assert sig.issuer == "CN=Debian Secure Boot CA"
        assert [c.subject for c in sig.certificates] == [sig.subject]


def test_precomputed_digests_are_used(corpus: Corpus) -> None:
    img = PeImage.open(corpus.grub("bookworm", "amd64"))
    fake = {"sha256": bytes(32)}
    (sig,) = image_signatures(img, fake)
    assert sig.computed_digest == bytes(32) and sig.digest_matches is False


# -- fixtures --------------------------------------------------------------------------------


def test_two_signatures_rsa_and_ecdsa() -> None:
    rsa_sig, ec_sig = sigs_of("two-sigs.efi")
    assert rsa_sig.signer and rsa_sig.signer.key_type == "RSA-2048"
    assert ec_sig.signer and ec_sig.signer.key_type == "EC-P256"
    for sig in (rsa_sig, ec_sig):
        assert sig.signature_valid and sig.digest_matches and sig.error is None


def test_nested_signature() -> None:
    (outer,) = sigs_of("nested.efi")
    assert outer.digest_algorithm == "sha256" and outer.digest_matches
    (inner,) = outer.nested
    assert inner.digest_algorithm == "sha1"
    assert inner.signer is not None and inner.signer.key_type == "EC-P256"
    assert inner.signature_valid and inner.digest_matches
    assert inner.index == outer.index and inner.offset == outer.offset
    assert outer.all_signatures() == [outer, inner]


def test_sha1_signature() -> None:
    (sig,) = sigs_of("signed-sha1.efi")
    assert sig.digest_algorithm == "sha1" and len(sig.signed_digest) == 20
    assert sig.signature_valid and sig.digest_matches


def test_intermediate_in_the_bag() -> None:
    (sig,) = sigs_of("chain.efi")
    assert [c.common_name for c in sig.certificates] == [
        "fwtools test chain signer",
        "fwtools test intermediate CA",
    ]
    assert sig.signer == sig.certificates[0]
    assert sig.certificates[1].is_ca is True and sig.signer and sig.signer.is_ca is False


def test_garbage_entry_does_not_stop_the_others() -> None:
    garbage, good = sigs_of("garbage-entry.efi")
    assert garbage.error and "WIN_CERTIFICATE[0]" in garbage.error
    assert garbage.signer is None and garbage.signature_valid is None
    assert garbage.digest_matches is None
    assert good.error is None and good.digest_matches and good.signature_valid


def rewrap(name: str, cert_type: int, prefix: bytes) -> PeImage:
    """signed.efi with its one entry rewritten as ``cert_type`` holding ``prefix + PKCS#7``."""
    data = (FIXTURES / name).read_bytes()
    img = PeImage(data)
    (entry,) = certificate_entries(img)
    body = prefix + entry.content
    head = struct.pack("<IHH", 8 + len(body), 0x0200, cert_type)
    table = head + body + bytes(-len(body) % 8)
    out = bytearray(data[: entry.offset] + table)
    assert img.security_entry_offset is not None
    struct.pack_into("<II", out, img.security_entry_offset + 0, entry.offset, len(table))
    return PeImage(bytes(out))


def test_uefi_guid_wrapped_pkcs7_is_accepted() -> None:
    # WIN_CERTIFICATE_UEFI_GUID with CertType EFI_CERT_TYPE_PKCS7_GUID: edk2 accepts it.
    img = rewrap("signed.efi", 0x0EF1, guids.CERT_TYPE_PKCS7.bytes_le)
    (sig,) = image_signatures(img)
    assert sig.error is None and sig.signature_valid and sig.digest_matches


@pytest.mark.parametrize(
    ("cert_type", "prefix", "message"),
    [
        (0x0EF1, bytes(16), "CertType is not EFI_CERT_TYPE_PKCS7_GUID"),
        (0x0001, b"", "type X509 is not an Authenticode signature"),
    ],
)
def test_other_entry_types_are_reported(cert_type: int, prefix: bytes, message: str) -> None:
    (sig,) = image_signatures(rewrap("signed.efi", cert_type, prefix))
    assert sig.error and message in sig.error and sig.signer is None


def test_malformed_table_yields_an_error_signature() -> None:
    (sig,) = sigs_of("bad-dwlength-small.efi")
    assert sig.error and "dwLength 4" in sig.error and sig.index == 0


def test_digest_mismatch() -> None:
    (sig,) = sigs_of("trailing-after-cert.efi")
    assert sig.signature_valid is True  # the signature itself is fine...
    assert sig.digest_matches is False  # ...but the image it covers has changed
    assert sig.computed_digest != sig.signed_digest


def test_unsigned() -> None:
    assert sigs_of("tiny.efi") == []


def blob_of(name: str, index: int = 0) -> tuple[bytes, int]:
    entry = certificate_entries(PeImage.open(FIXTURES / name))[index]
    return entry.content, entry.offset


def test_tampered_signer_signature() -> None:
    from asn1crypto import cms

    content, offset = blob_of("signed.efi")
    info = cms.ContentInfo.load(content)
    signature = info["content"]["signer_infos"][0]["signature"].native
    pos = content.index(signature)
    bad = content[: pos + 10] + bytes([content[pos + 10] ^ 1]) + content[pos + 11 :]
    sig = parse_authenticode(bad, index=3, offset=offset)
    assert sig.signature_valid is False
    assert sig.error and "does not verify" in sig.error
    assert (sig.index, sig.offset) == (3, offset)


def test_tampered_authenticated_content() -> None:
    # Change the signed digest inside the SpcIndirectDataContent: messageDigest no longer
    # matches, so the SignerInfo is invalid even though its RSA signature is intact.
    content, _ = blob_of("signed.efi")
    sig = parse_authenticode(content)
    pos = content.index(sig.signed_digest)
    bad = content[:pos] + bytes([content[pos] ^ 1]) + content[pos + 1 :]
    tampered = parse_authenticode(bad)
    assert tampered.signature_valid is False
    assert tampered.error and "messageDigest" in tampered.error


def test_missing_signer_certificate() -> None:
    # Remove the certificate bag's only certificate by pointing the sid at another serial:
    # the signer cannot be found, the sid still names it.
    content, _ = blob_of("signed.efi")
    sig = parse_authenticode(content)
    assert sig.signer is not None
    serial = int(sig.signer_serial, 16).to_bytes(2, "big")
    pos = content.rindex(b"\x02\x02" + serial)  # the sid's INTEGER comes last
    bad = content[: pos + 2] + b"\x7f\x7f" + content[pos + 4 :]
    orphan = parse_authenticode(bad)
    assert orphan.signer is None and orphan.signer_serial == "7f7f"
    assert orphan.signer_issuer == sig.signer_issuer
    assert orphan.signature_valid is None
    assert orphan.error and "not in the signature" in orphan.error


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "malformed PKCS#7"),
        (b"\x30\x03\x02\x01\x01", "malformed PKCS#7"),
        ((FIXTURES / "ca.der").read_bytes(), "malformed PKCS#7"),
        # ContentInfo of type "data": PKCS#7, but not SignedData.
        (bytes.fromhex("300f06092a864886f70d010701a0020400"), "not PKCS#7 SignedData"),
    ],
)
def test_not_authenticode(blob: bytes, message: str) -> None:
    with pytest.raises(SignatureFormatError) as exc:
        parse_authenticode(blob, index=2, offset=0x1234)
    assert message in str(exc.value)
    assert exc.value.offset == 0x1234 and exc.value.structure == "WIN_CERTIFICATE[2] PKCS#7"


def test_signed_data_that_is_not_authenticode(tmp_path: Path) -> None:
    # A detached S/MIME-style PKCS#7 made by openssl: SignedData over plain data.
    data = tmp_path / "msg"
    data.write_bytes(b"hello")
    out = tmp_path / "msg.p7"
    subprocess.run(
        ["openssl", "smime", "-sign", "-binary", "-outform", "DER", "-in", data,
         "-signer", FIXTURES / "signer.pem", "-inkey", FIXTURES / "keys/signer.key",
         "-out", out],
        check=True, capture_output=True,
    )  # fmt: skip
    with pytest.raises(SignatureFormatError, match="not SpcIndirectDataContent"):
        parse_authenticode(out.read_bytes())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_parse_or_raise_signature_format_error(blob: bytes) -> None:
    with contextlib.suppress(SignatureFormatError):
        parse_authenticode(blob)


_BLOBS = [blob_of(n)[0] for n in ("nested.efi", "chain.efi", "signed-ec.efi")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(0, len(_BLOBS) - 1),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 10**6),
)
def test_mutated_signatures_never_crash(which: int, edits: list[tuple[int, int]], cut: int) -> None:
    blob = bytearray(_BLOBS[which])
    for pos, value in edits:
        blob[pos % len(blob)] = value
    if cut % 3 == 0:
        del blob[cut % len(blob) :]
    try:
        sig = parse_authenticode(bytes(blob))
    except ParseError:
        return
    assert sig.signature_valid in (True, False, None)


_SIGNED = (FIXTURES / "two-sigs.efi").read_bytes()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6))
def test_mutated_certificate_tables_never_crash(edits: list[tuple[int, int]]) -> None:
    # Bytes flipped anywhere in the table (headers included) and in the SECURITY entry.
    from fwtools.crypto.trust import TrustAnchors, verify_image

    data = bytearray(_SIGNED)
    table = 0xA00
    for pos, value in edits:
        span = len(data) - table + 8
        where = pos % span
        data[table + where if where < len(data) - table else 0x80 + 24 + 144 + where % 8] = value
    try:
        img = PeImage(bytes(data))
        sigs = image_signatures(img)
        verify_image(img, sigs, TrustAnchors.from_files([FIXTURES / "ca.pem"]))
    except FwError:
        pass


def test_importing_the_module_does_not_import_asn1crypto_or_cryptography() -> None:
    code = (
        "import sys, fwtools.crypto.authenticode, fwtools.crypto.trust, "
        "fwtools.crypto.x509info\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('asn1crypto', 'cryptography')]\n"
        "assert not bad, bad"
    )
    env = dict(os.environ)
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# -- X.509 summaries ------------------------------------------------------------------------


def test_microsoft_certificates(ms_corpus: MsCorpus) -> None:
    from cryptography import x509

    for path in ms_corpus.certs("db") + ms_corpus.certs("kek") + ms_corpus.certs("pk"):
        der = path.read_bytes()
        info = certificate_info(der)
        cert = x509.load_der_x509_certificate(der)
        assert info.subject == cert.subject.rfc4514_string()
        assert info.issuer == cert.issuer.rfc4514_string()
        assert info.serial == f"{cert.serial_number:x}"
        assert info.not_before == cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert info.not_after == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert info.sha256 == hashlib.sha256(der).hexdigest() and info.der == der
        assert info.key_type == "RSA-2048"
        assert info.signature_algorithm == "sha256WithRSAEncryption"
    ms_ca = ms_corpus.file("certs/db/MicCorUEFCA2011_2011-06-27.der")
    ca = certificate_info(ms_ca.read_bytes())
    assert ca.subject == MS_2011 and ca.is_ca is True
    assert ca.serial == "6108d3c4000000000004"
    assert ca.not_before == "2011-06-27T21:22:45Z"


def test_fixture_certificates() -> None:
    ec = certificate_info((FIXTURES / "ec-signer.der").read_bytes())
    assert ec.key_type == "EC-P256" and ec.signature_algorithm == "sha256WithRSAEncryption"
    assert ec.subject == "CN=fwtools test EC signer,O=fwtools test"
    assert ec.issuer == "CN=fwtools authenticode test CA,O=fwtools test"
    assert ec.serial == "2003" and ec.is_ca is False and ec.common_name == "fwtools test EC signer"


def test_rfc4514_escaping() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec as ec_keys
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    key = ec_keys.generate_private_key(ec_keys.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'A, B + "C" <D>; E\\'),
            x509.NameAttribute(NameOID.COMMON_NAME, "#lead and trail "),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "x@example.invalid"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2020, 1, 1))
        .not_valid_after(dt.datetime(2030, 1, 1))
        .sign(key, hashes.SHA384())
    )
    info = certificate_info(cert.public_bytes(Encoding.DER))
    assert info.subject == (
        "emailAddress=x@example.invalid,CN=\\#lead and trail\\ ,"
        'O=A\\, B \\+ \\"C\\" \\<D\\>\\; E\\\\,C=DE'
    )
    assert info.is_ca is None  # no basicConstraints
    assert info.signature_algorithm == "ecdsa-with-SHA384"
    assert info.common_name == "#lead and trail "


def test_not_a_certificate() -> None:
    with pytest.raises(SignatureFormatError) as exc:
        certificate_info(b"\x30\x03\x02\x01\x00", structure="db cert", offset=0x40)
    assert exc.value.structure == "db cert" and exc.value.offset == 0x40
    der = (FIXTURES / "ca.der").read_bytes()
    with pytest.raises(SignatureFormatError):
        certificate_info(der + b"\0")  # exactly one DER certificate, nothing after it


def test_load_certificates(tmp_path: Path) -> None:
    two = tmp_path / "two.pem"
    pems = [(FIXTURES / f"{name}.pem").read_bytes() for name in ("ca", "signer")]
    two.write_bytes(b"\n".join(pems))
    assert load_certificates(two) == [
        (FIXTURES / "ca.der").read_bytes(),
        (FIXTURES / "signer.der").read_bytes(),
    ]
    assert load_certificates(FIXTURES / "ca.der") == [(FIXTURES / "ca.der").read_bytes()]

    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a certificate")
    with pytest.raises(SignatureFormatError) as exc:
        load_certificates(junk)
    assert exc.value.path == str(junk) and str(junk) in str(exc.value)

    key_only = tmp_path / "key.pem"
    key_only.write_bytes((FIXTURES / "keys/signer.key").read_bytes())
    with pytest.raises(SignatureFormatError, match="no CERTIFICATE block"):
        load_certificates(key_only)

    broken = tmp_path / "broken.pem"
    text = (FIXTURES / "ca.pem").read_text().splitlines()
    broken.write_text("\n".join([*text[:3], "AAAA", *text[-1:]]) + "\n")
    with pytest.raises(SignatureFormatError) as exc2:
        load_certificates(broken)
    assert exc2.value.path == str(broken)

    with pytest.raises(FwIOError, match=r"missing\.pem"):
        load_certificates(tmp_path / "missing.pem")
