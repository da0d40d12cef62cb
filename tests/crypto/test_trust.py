"""Trust anchors and verdicts, against sbverify and OpenSSL on real and tampered images.

Oracles:
- ``sbverify --cert CERT FILE`` (sbsigntool 0.9.4). It has one known false positive:
  its verify callback treats X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY like an expired
  certificate and accepts it, so any signature whose PKCS#7 bag holds an intermediate CA
  whose issuer is missing (every shim signature: the Microsoft UEFI CA is in the bag, its
  root is not) "verifies" against *any* certificate. The tests check that this is the only
  disagreement.
- ``openssl smime -verify -partial_chain -purpose any -no_check_time`` on each signature
  (with the SpcIndirectDataContent as detached content): the firmware rules for the chain
  (a db certificate may be an intermediate, no time or purpose checks) without that bug.
"""

from __future__ import annotations

import hashlib
import ssl
import struct
import subprocess
import uuid
from pathlib import Path

import pytest
from corpus import Corpus, MsCorpus
from corpus.params import need_tool

from fwtools.crypto.authenticode import (
    AuthenticodeSignature,
    _spc_indirect_data_content,
    image_signatures,
)
from fwtools.crypto.trust import TrustAnchors, VerifyResult, verify_image
from fwtools.crypto.x509info import certificate_info
from fwtools.errors import FwIOError, SignatureFormatError
from fwtools.formats.efi import guids
from fwtools.formats.efi.siglist import SignatureData, SignatureList
from fwtools.formats.pe.authenticode import authenticode_digests
from fwtools.formats.pe.image import PeImage
from fwtools.formats.pe.wincert import certificate_entries

FIXTURES = Path(__file__).resolve().parents[2] / "testdata" / "authenticode"
OWNER = uuid.UUID("0f0f0f0f-1111-2222-3333-444444444444")


def pem_file(der: bytes, tmp_path: Path, name: str) -> Path:
    """sbverify and openssl -CAfile read PEM only."""
    path = tmp_path / f"{name}.pem"
    path.write_text(ssl.DER_cert_to_PEM_cert(der))
    return path


def sbverify_ok(image: Path, cert_pem: Path) -> bool:
    need_tool("sbverify")
    proc = subprocess.run(["sbverify", "--cert", cert_pem, image], capture_output=True)
    return proc.returncode == 0


def openssl_verdicts(image: Path, anchor_pem: Path, tmp_path: Path) -> list[bool]:
    """Per WIN_CERTIFICATE: does OpenSSL verify the SignerInfo and a chain to the anchor?"""
    from asn1crypto import cms

    need_tool("openssl")
    out = []
    for entry in certificate_entries(PeImage.open(image)):
        info = cms.ContentInfo.load(entry.content)
        idc = _spc_indirect_data_content().load(
            info["content"]["encap_content_info"]["content"].dump(), explicit=0
        )
        p7, content = tmp_path / f"sig{entry.index}.p7", tmp_path / f"idc{entry.index}.bin"
        p7.write_bytes(info.dump())
        content.write_bytes(idc.contents)  # Authenticode signs the value octets only
        proc = subprocess.run(
            ["openssl", "smime", "-verify", "-inform", "DER", "-in", p7, "-content", content,
             "-binary", "-CAfile", anchor_pem, "-partial_chain", "-purpose", "any",
             "-no_check_time", "-out", "/dev/null"],
            capture_output=True,
        )  # fmt: skip
        out.append(proc.returncode == 0)
    return out


def has_dangling_intermediate(sig: AuthenticodeSignature) -> bool:
    """The shape that triggers sbverify 0.9.4's false positive (see the module doc)."""
    subjects = {c.subject for c in sig.certificates}
    return any(c.is_ca and c.issuer not in subjects for c in sig.certificates)


def verdict(path: Path, anchors: TrustAnchors) -> tuple[VerifyResult, list[AuthenticodeSignature]]:
    img = PeImage.open(path)
    digests = authenticode_digests(img)
    sigs = image_signatures(img, digests)
    return verify_image(img, sigs, anchors, digests=digests), sigs


def vendor_cert(shim: Path) -> bytes:
    """The DER certificate in shim's .vendor_cert: {cert_size, dbx_size, cert_off, dbx_off}."""
    img = PeImage.open(shim)
    section = img.section(".vendor_cert")
    assert section is not None
    data = img.section_data(section)
    size, _dbx_size, offset, _dbx_offset = struct.unpack_from("<IIII", data)
    return bytes(data[offset : offset + size])


def esl(signature_type: uuid.UUID, *payloads: bytes) -> SignatureList:
    size = 16 + len(payloads[0])
    return SignatureList(signature_type, size, tuple(SignatureData(OWNER, p) for p in payloads))


# -- the corpus against sbverify and OpenSSL ----------------------------------------------

SUITE_ARCH = [(s, a) for s in ("bookworm", "trixie") for a in ("amd64", "arm64")]


@pytest.mark.parametrize(("suite", "arch"), SUITE_ARCH)
def test_corpus_shim_against_each_microsoft_db_cert(
    suite: str, arch: str, corpus: Corpus, ms_corpus: MsCorpus, tmp_path: Path
) -> None:
    shim = corpus.shim(suite, arch)
    trusted_by = set()
    for cert in ms_corpus.certs("db"):
        der = cert.read_bytes()
        anchor_pem = pem_file(der, tmp_path, cert.stem)
        result, sigs = verdict(shim, TrustAnchors.from_files([cert]))
        oracle = openssl_verdicts(shim, anchor_pem, tmp_path)
        assert result.trusted == any(oracle), (cert.name, result.reason)
        if result.trusted:
            assert result.signature_index == oracle.index(True)
            assert result.chain[-1].der == der
            assert result.matched_entry == f"db cert {certificate_info(der).subject}"
            trusted_by.add(certificate_info(der).common_name)
            assert sbverify_ok(shim, anchor_pem)
        elif sbverify_ok(shim, anchor_pem):
            # sbverify 0.9.4's false positive, and nothing else.
            assert all(has_dangling_intermediate(s) for s in sigs)
    assert trusted_by == {"Microsoft Corporation UEFI CA 2011", "Microsoft UEFI CA 2023"}


def debian_signed(corpus: Corpus, suite: str, arch: str) -> list[Path]:
    files = corpus.files(suite, arch, f"grub-efi-{arch}-signed", "usr/lib/grub/*/*.efi.signed")
    files.append(corpus.kernel(suite, arch))
    if arch == "amd64":
        files += corpus.files(suite, arch, "fwupd-amd64-signed", "usr/libexec/fwupd/efi/*")
    return files


@pytest.mark.parametrize(("suite", "arch"), SUITE_ARCH)
def test_corpus_debian_binaries_chain_to_shims_vendor_cert(
    suite: str, arch: str, corpus: Corpus, ms_corpus: MsCorpus, tmp_path: Path
) -> None:
    ca = vendor_cert(corpus.shim(suite, arch))
    assert certificate_info(ca).subject == "CN=Debian Secure Boot CA"
    ca_pem = pem_file(ca, tmp_path, "debian-ca")
    ms = ms_corpus.file("certs/db/MicCorUEFCA2011_2011-06-27.der")
    ms_pem = pem_file(ms.read_bytes(), tmp_path, "ms2011")
    binaries = debian_signed(corpus, suite, arch)
    assert len(binaries) >= 5
    for path in binaries:
        result, _ = verdict(path, TrustAnchors(db_certs=[ca]))
        assert result.status == "trusted", (path, result.reason)
        assert [c.der for c in result.chain][-1] == ca and len(result.chain) == 2
        assert result.matched_entry == "db cert CN=Debian Secure Boot CA"
        assert sbverify_ok(path, ca_pem)
        wrong, _ = verdict(path, TrustAnchors.from_files([ms]))
        assert wrong.status == "untrusted" and "does not chain" in wrong.reason
        assert not sbverify_ok(path, ms_pem)


def flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x5A]) + data[offset + 1 :]


def shim_offsets(img: PeImage) -> dict[str, int]:
    text = img.section(".text")
    assert text is not None
    first = certificate_entries(img)[0]
    from asn1crypto import cms

    der_len = len(cms.ContentInfo.load(first.content).dump())
    assert der_len < len(first.content), "shim's first entry has padding after its DER"
    return {
        "text": text.raw_offset + text.raw_size // 2,
        "checksum": img.checksum_offset,
        "trailing": img.end_of_section_data + 0x100,  # hashed, in no section
        "entry-padding": first.offset + 8 + der_len + 1,  # inside dwLength, after the DER
    }


SHIM_TAMPERING = {"text": False, "checksum": True, "trailing": False, "entry-padding": True}


@pytest.mark.parametrize(("where", "still_trusted"), sorted(SHIM_TAMPERING.items()))
def test_corpus_tampered_shim(
    where: str, still_trusted: bool, corpus: Corpus, ms_corpus: MsCorpus, tmp_path: Path
) -> None:
    shim = corpus.shim("bookworm", "amd64")
    img = PeImage.open(shim)
    offset = shim_offsets(img)[where]
    copy = tmp_path / "shim.efi"
    copy.write_bytes(flip(img.data, offset))
    ms = ms_corpus.file("certs/db/MicCorUEFCA2011_2011-06-27.der")
    result, sigs = verdict(copy, TrustAnchors.from_files([ms]))
    assert result.trusted == still_trusted, result.reason
    assert sbverify_ok(copy, pem_file(ms.read_bytes(), tmp_path, "ms")) == still_trusted
    if not still_trusted:
        assert all(s.digest_matches is False for s in sigs)
        assert "does not match the signed digest" in result.reason


def grub_tampered(img: PeImage, where: str) -> bytes:
    text = img.section(".text")
    assert text is not None and img.certificate_table is not None
    from asn1crypto import cms

    entry = certificate_entries(img)[0]
    info = cms.ContentInfo.load(entry.content)
    signature = info["content"]["signer_infos"][0]["signature"].native
    if where == "text":
        return flip(img.data, text.raw_offset + 0x10)
    if where == "checksum":
        return flip(img.data, img.checksum_offset + 1)
    if where == "signature":
        return flip(img.data, img.data.index(signature) + 7)
    if where == "appended":
        return img.data + b"\0" * 16
    raise AssertionError(where)


@pytest.mark.parametrize(
    ("where", "still_trusted"),
    [("text", False), ("checksum", True), ("signature", False), ("appended", False)],
)
def test_corpus_tampered_grub(
    where: str, still_trusted: bool, corpus: Corpus, tmp_path: Path
) -> None:
    ca = vendor_cert(corpus.shim("trixie", "amd64"))
    img = PeImage.open(corpus.grub("trixie", "amd64"))
    copy = tmp_path / "grub.efi"
    copy.write_bytes(grub_tampered(img, where))
    result, sigs = verdict(copy, TrustAnchors(db_certs=[ca]))
    assert result.trusted == still_trusted, result.reason
    assert sbverify_ok(copy, pem_file(ca, tmp_path, "ca")) == still_trusted
    if where == "signature":
        assert sigs[0].signature_valid is False and sigs[0].digest_matches is True


def test_real_microsoft_dbx_does_not_revoke_current_debian(
    corpus: Corpus, ms_corpus: MsCorpus
) -> None:
    shim = corpus.shim("trixie", "amd64")
    ca = vendor_cert(shim)
    anchors = TrustAnchors(db_certs=[ca])
    real = TrustAnchors.from_files(
        [ms_corpus.file("certs/db/MicCorUEFCA2011_2011-06-27.der")],
        dbx_paths=[ms_corpus.file("dbx/amd64/DBXUpdate.bin"),
                   ms_corpus.file("dbx/optional/DBXUpdate2024.bin")],
    )  # fmt: skip
    assert len(real.dbx_hashes["sha256"]) > 100
    assert [certificate_info(d).common_name for d in real.dbx_certs] == [
        "Microsoft Windows Production PCA 2011"
    ]
    anchors.dbx_hashes, anchors.dbx_certs = real.dbx_hashes, real.dbx_certs
    result, _ = verdict(corpus.grub("trixie", "amd64"), anchors)
    assert result.trusted
    result, _ = verdict(shim, real)
    assert result.trusted and result.signature_index == 0


# -- dbx ------------------------------------------------------------------------------------


def test_image_hash_in_dbx_is_revoked(tmp_path: Path) -> None:
    img = PeImage.open(FIXTURES / "signed.efi")
    digest = authenticode_digests(img, ["sha256"])["sha256"]
    dbx = tmp_path / "dbx.esl"
    dbx.write_bytes(esl(guids.CERT_SHA256, bytes(32), digest).to_bytes())
    anchors = TrustAnchors.from_files([FIXTURES / "ca.pem"], dbx_paths=[dbx])
    result, _ = verdict(FIXTURES / "signed.efi", anchors)
    assert result.status == "revoked"
    assert result.matched_entry == f"dbx sha256 {digest.hex()}"


def test_image_sha1_in_dbx_is_revoked_too() -> None:
    img = PeImage.open(FIXTURES / "signed.efi")
    sha1 = authenticode_digests(img, ["sha1"])["sha1"]
    anchors = TrustAnchors.from_signature_lists(
        [esl(guids.CERT_X509, (FIXTURES / "ca.der").read_bytes())],
        [esl(guids.CERT_SHA1, sha1)],
    )
    result, _ = verdict(FIXTURES / "signed.efi", anchors)
    assert result.status == "revoked" and result.matched_entry == f"dbx sha1 {sha1.hex()}"


def test_signer_certificate_in_dbx() -> None:
    anchors = TrustAnchors.from_files([FIXTURES / "ca.pem"], dbx_paths=[FIXTURES / "signer.der"])
    result, _ = verdict(FIXTURES / "signed.efi", anchors)
    assert result.status == "revoked"
    assert result.matched_entry == "dbx cert CN=fwtools test signer,O=fwtools test"
    assert result.signature_index == 0


def test_issuer_in_dbx_revokes_what_it_signed() -> None:
    # dbx holds the intermediate CA (not the signer): chain.efi's signer is issued by it.
    anchors = TrustAnchors.from_files(
        [FIXTURES / "ca.pem"], dbx_paths=[FIXTURES / "intermediate.pem"]
    )
    result, _ = verdict(FIXTURES / "chain.efi", anchors)
    assert result.status == "revoked"
    assert "intermediate CA" in (result.matched_entry or "")
    # The same dbx leaves images signed outside that branch alone.
    other, _ = verdict(FIXTURES / "signed.efi", anchors)
    assert other.trusted


def test_tbs_hash_of_the_db_anchor_in_dbx() -> None:
    ca = (FIXTURES / "ca.der").read_bytes()
    from asn1crypto import x509

    tbs = x509.Certificate.load(ca)["tbs_certificate"].dump()
    revocation_time = bytes(16)  # EFI_TIME; not used by the model
    anchors = TrustAnchors.from_signature_lists(
        [esl(guids.CERT_X509, ca)],
        [esl(guids.CERT_X509_SHA256, hashlib.sha256(tbs).digest() + revocation_time)],
    )
    result, _ = verdict(FIXTURES / "signed.efi", anchors)
    assert result.status == "revoked"
    assert (result.matched_entry or "").startswith("dbx x509-sha256 ")
    assert "TBS of CN=fwtools authenticode test CA" in (result.matched_entry or "")


def test_any_revoked_signature_revokes_the_image() -> None:
    # two-sigs.efi: the RSA signature is trusted, but the ECDSA signer is in dbx. edk2 stops
    # at the first signature forbidden by dbx, whichever order they come in.
    anchors = TrustAnchors.from_files([FIXTURES / "ca.pem"], dbx_paths=[FIXTURES / "ec-signer.pem"])
    result, _ = verdict(FIXTURES / "two-sigs.efi", anchors)
    assert result.status == "revoked" and result.signature_index == 1


# -- db -------------------------------------------------------------------------------------


def test_chain_through_an_intermediate_in_the_bag(tmp_path: Path) -> None:
    root, _ = verdict(FIXTURES / "chain.efi", TrustAnchors.from_files([FIXTURES / "ca.pem"]))
    assert root.trusted
    assert [c.common_name for c in root.chain] == [
        "fwtools test chain signer", "fwtools test intermediate CA",
        "fwtools authenticode test CA",
    ]  # fmt: skip
    # A db certificate may be an intermediate: the chain stops there (partial chain).
    mid, _ = verdict(
        FIXTURES / "chain.efi", TrustAnchors.from_files([FIXTURES / "intermediate.der"])
    )
    assert mid.trusted and len(mid.chain) == 2
    # Or the signer itself.
    leaf, _ = verdict(
        FIXTURES / "chain.efi", TrustAnchors.from_files([FIXTURES / "chain-signer.pem"])
    )
    assert leaf.trusted and len(leaf.chain) == 1
    for name in ("ca", "intermediate", "chain-signer"):
        pem = FIXTURES / f"{name}.pem"
        assert openssl_verdicts(FIXTURES / "chain.efi", pem, tmp_path) == [True]
        assert sbverify_ok(FIXTURES / "chain.efi", pem)


def test_unrelated_anchor_and_the_sbverify_false_positive(tmp_path: Path) -> None:
    other = FIXTURES / "other-ca.pem"
    result, sigs = verdict(FIXTURES / "chain.efi", TrustAnchors.from_files([other]))
    assert result.status == "untrusted"
    assert "does not chain to a db certificate" in result.reason
    assert openssl_verdicts(FIXTURES / "chain.efi", other, tmp_path) == [False]
    # sbverify 0.9.4 accepts it anyway (see the module doc); without the intermediate in the
    # bag it does not.
    assert has_dangling_intermediate(sigs[0])
    assert sbverify_ok(FIXTURES / "chain.efi", other)
    assert not sbverify_ok(FIXTURES / "signed.efi", other)


@pytest.mark.parametrize(
    "name", ["signed.efi", "signed-ec.efi", "two-sigs.efi", "nested.efi", "gaps-signed.efi",
             "unaligned-signed.efi"],
)  # fmt: skip
def test_fixtures_agree_with_sbverify(name: str, tmp_path: Path) -> None:
    for anchor, expect in (("ca", True), ("other-ca", False), ("intermediate", False)):
        pem = FIXTURES / f"{anchor}.pem"
        result, _ = verdict(FIXTURES / name, TrustAnchors.from_files([pem]))
        assert result.trusted == expect, (anchor, result.reason)
        assert sbverify_ok(FIXTURES / name, pem) == expect


def test_where_edk2_and_sbverify_differ(tmp_path: Path) -> None:
    ca = FIXTURES / "ca.pem"
    anchors = TrustAnchors.from_files([ca])
    # SHA-1 signatures: edk2 accepts them, sbverify only knows SHA-256.
    sha1, _ = verdict(FIXTURES / "signed-sha1.efi", anchors)
    assert sha1.trusted and not sbverify_ok(FIXTURES / "signed-sha1.efi", ca)
    # An unparsable first signature: edk2 goes on to the next, sbverify gives up.
    garbage, _ = verdict(FIXTURES / "garbage-entry.efi", anchors)
    assert garbage.trusted and garbage.signature_index == 1
    assert not sbverify_ok(FIXTURES / "garbage-entry.efi", ca)
    # A table not tiled by 8-byte-aligned entries: edk2 rejects, sbverify does not look.
    for name in ("unpadded-table.efi", "bad-dwlength-big.efi"):
        broken, _ = verdict(FIXTURES / name, anchors)
        assert broken.status == "untrusted" and "edk2's walk" in broken.reason
        assert sbverify_ok(FIXTURES / name, ca)
    small, _ = verdict(FIXTURES / "bad-dwlength-small.efi", anchors)
    assert small.status == "untrusted" and not sbverify_ok(FIXTURES / "bad-dwlength-small.efi", ca)


def test_data_after_the_table_breaks_the_signature() -> None:
    result, sigs = verdict(
        FIXTURES / "trailing-after-cert.efi", TrustAnchors.from_files([FIXTURES / "ca.pem"])
    )
    assert result.status == "untrusted" and sigs[0].digest_matches is False
    assert not sbverify_ok(FIXTURES / "trailing-after-cert.efi", FIXTURES / "ca.pem")


def test_unsigned_image_hash_in_db() -> None:
    img = PeImage.open(FIXTURES / "tiny.efi")
    digest = authenticode_digests(img, ["sha256"])["sha256"]
    anchors = TrustAnchors.from_signature_lists([esl(guids.CERT_SHA256, digest)])
    result, sigs = verdict(FIXTURES / "tiny.efi", anchors)
    assert sigs == [] and result.trusted
    assert result.matched_entry == f"db sha256 {digest.hex()}" and result.chain == []
    nothing, _ = verdict(FIXTURES / "tiny.efi", TrustAnchors())
    assert nothing.status == "untrusted" and "unsigned" in nothing.reason


@pytest.mark.parametrize("pad", [True, False])
def test_unaligned_unsigned_image_matches_either_digest(pad: bool) -> None:
    # edk2 hashes the file as it is; sbsign-style tools hash it padded to 8 bytes. A db
    # entry made either way lets the image run.
    img = PeImage.open(FIXTURES / "tiny-unaligned.efi")
    digest = authenticode_digests(img, ["sha256"], pad=pad)["sha256"]
    anchors = TrustAnchors.from_signature_lists([esl(guids.CERT_SHA256, digest)])
    result, _ = verdict(FIXTURES / "tiny-unaligned.efi", anchors)
    assert result.trusted
    assert ("unpadded" in result.reason) == (not pad)


def test_signed_image_hash_in_db_when_no_signature_is_trusted() -> None:
    img = PeImage.open(FIXTURES / "signed.efi")
    digest = authenticode_digests(img, ["sha256"])["sha256"]
    anchors = TrustAnchors.from_signature_lists(
        [esl(guids.CERT_X509, (FIXTURES / "other-ca.der").read_bytes()),
         esl(guids.CERT_SHA256, digest)],
    )  # fmt: skip
    result, _ = verdict(FIXTURES / "signed.efi", anchors)
    assert result.trusted and result.matched_entry == f"db sha256 {digest.hex()}"


# -- loading anchors ------------------------------------------------------------------------


def test_from_files_sniffs_formats(tmp_path: Path, ms_corpus: MsCorpus) -> None:
    db_esl = tmp_path / "db.esl"
    db_esl.write_bytes(
        esl(guids.CERT_X509, (FIXTURES / "intermediate.der").read_bytes()).to_bytes()
        + esl(guids.CERT_SHA256, bytes(range(32))).to_bytes()
        + esl(guids.CERT_RSA2048, bytes(256)).to_bytes()
    )
    dbx_esl = tmp_path / "dbx.esl"
    dbx_esl.write_bytes(esl(guids.CERT_SHA256, bytes(32)).to_bytes())
    both = tmp_path / "both.pem"
    both.write_bytes((FIXTURES / "ca.pem").read_bytes() + (FIXTURES / "signer.pem").read_bytes())
    anchors = TrustAnchors.from_files(
        [both, FIXTURES / "other-ca.der", db_esl, ms_corpus.file("db/amd64/DBUpdate3P2023.bin")],
        dbx_paths=[dbx_esl],
    )
    names = [certificate_info(d).common_name for d in anchors.db_certs]
    assert names == [
        "fwtools authenticode test CA", "fwtools test signer", "fwtools unrelated CA",
        "fwtools test intermediate CA", "Microsoft UEFI CA 2023",
    ]  # fmt: skip
    assert anchors.db_hashes == {"sha256": {bytes(range(32))}}
    assert any("EfiCertRsa2048" in note for note in anchors.ignored)
    assert anchors.dbx_hashes == {"sha256": {bytes(32)}} and not anchors.dbx_certs


def test_from_files_errors(tmp_path: Path) -> None:
    # An empty file named as an anchor or revocation list is a mistake, not an empty db.
    empty = tmp_path / "empty.dbx"
    empty.write_bytes(b"")
    with pytest.raises(SignatureFormatError) as info:
        TrustAnchors.from_files([FIXTURES / "ca.pem"], dbx_paths=[empty])
    assert info.value.path == str(empty) and "empty file" in str(info.value)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"\x30\x82junk that is no certificate")
    with pytest.raises(SignatureFormatError) as exc:
        TrustAnchors.from_files([junk])
    assert exc.value.path == str(junk)
    bad_list = tmp_path / "bad.esl"
    bad = bytearray(esl(guids.CERT_SHA256, bytes(32)).to_bytes())
    struct.pack_into("<I", bad, 16, 0x1000)  # SignatureListSize past the end
    bad_list.write_bytes(bad)
    with pytest.raises(SignatureFormatError) as exc2:
        TrustAnchors.from_files([], dbx_paths=[bad_list])
    assert exc2.value.path == str(bad_list) and exc2.value.offset == 16
    bad_cert = tmp_path / "bad-cert.esl"
    bad_cert.write_bytes(esl(guids.CERT_X509, b"\x30\x03\x02\x01\x00").to_bytes())
    with pytest.raises(SignatureFormatError) as exc3:
        TrustAnchors.from_files([bad_cert])
    assert exc3.value.offset == 28 + 16  # list header, then the owner GUID
    with pytest.raises(FwIOError):
        TrustAnchors.from_files([tmp_path / "missing.pem"])


def test_x509_hashes_in_db_are_ignored() -> None:
    anchors = TrustAnchors.from_signature_lists(
        [esl(guids.CERT_X509_SHA256, bytes(48))], [esl(guids.CERT_X509_SHA384, bytes(64))]
    )
    assert anchors.empty and anchors.dbx_tbs_hashes == {"sha384": {bytes(48)}}
    assert any("only uses certificate hashes in dbx" in n for n in anchors.ignored)
