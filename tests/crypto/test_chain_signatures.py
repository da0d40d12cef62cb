"""Certificate-chain links (``pkcs7._issued_by`` through ``find_chain``): the issuer's name
and its signature over the TBSCertificate, checked on asn1crypto's parse and the issuer's
SPKI for every signature scheme certificates use, against cryptography's own verdict
(``verify_directly_issued_by``) as the oracle, and on the real Microsoft chain."""

from __future__ import annotations

import datetime as dt

import pytest
from corpus.corpus import ms_corpus_base
from corpus.params import unavailable
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from fwtools.crypto.pkcs7 import Cert, find_chain

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: Key, issuer: str, issuer_key: Key, *,
          pss: bool = False, mgf_hash: hashes.HashAlgorithm | None = None) -> x509.Certificate:
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + dt.timedelta(days=3650)))
    if isinstance(issuer_key, ed25519.Ed25519PrivateKey):
        return builder.sign(issuer_key, None)
    if pss:
        return builder.sign(issuer_key, hashes.SHA256(), rsa_padding=padding.PSS(
            mgf=padding.MGF1(mgf_hash or hashes.SHA256()), salt_length=32))
    return builder.sign(issuer_key, hashes.SHA384())


def _load(c: x509.Certificate) -> Cert:
    cert = Cert.load(c.public_bytes(serialization.Encoding.DER))
    assert cert is not None
    return cert


def _oracle(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
        return True
    except Exception:  # InvalidSignature, or a name/algorithm cryptography refuses
        return False


RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC = ec.generate_private_key(ec.SECP384R1())
EC2 = ec.generate_private_key(ec.SECP384R1())
ED = ed25519.Ed25519PrivateKey.generate()
ED2 = ed25519.Ed25519PrivateKey.generate()
LEAF = rsa.generate_private_key(public_exponent=65537, key_size=2048)

SCHEMES: dict[str, tuple[Key, bool]] = {
    "rsa-pkcs1v15-sha384": (RSA, False),
    "rsa-pss-sha256": (RSA, True),
    "ecdsa-p384-sha384": (EC, False),
    "ed25519": (ED, False),
}


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_link_verifies_like_cryptography(scheme: str) -> None:
    ca_key, pss = SCHEMES[scheme]
    ca = _cert("CA", ca_key, "CA", ca_key, pss=pss)
    leaf = _cert("leaf", LEAF, "CA", ca_key, pss=pss)
    chain, anchor = find_chain(_load(leaf), [], [_load(ca)])
    assert _oracle(leaf, ca) is True
    assert anchor is not None and anchor.der == _load(ca).der
    assert [c.der for c in chain] == [_load(leaf).der, _load(ca).der]


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("same_type", [True, False])
def test_same_name_other_key_does_not_link(scheme: str, same_type: bool) -> None:
    """A CA of the same name but another key, of the same type or not: the signature and
    the key type decide, as for OpenSSL."""
    ca_key, pss = SCHEMES[scheme]
    others: dict[type, Key] = {rsa.RSAPrivateKey: RSA2, ec.EllipticCurvePrivateKey: EC2,
                               ed25519.Ed25519PrivateKey: ED2}
    same = next(k for t, k in others.items() if isinstance(ca_key, t))
    other_key = same if same_type else (EC if isinstance(ca_key, rsa.RSAPrivateKey) else RSA2)
    impostor = _cert("CA", other_key, "CA", other_key)
    leaf = _cert("leaf", LEAF, "CA", ca_key, pss=pss)
    assert _oracle(leaf, impostor) is False
    _chain, anchor = find_chain(_load(leaf), [], [_load(impostor)])
    assert anchor is None


def test_pss_with_its_own_mgf1_hash() -> None:
    """RSASSA-PSS with SHA-256 and MGF1-SHA512: the MGF1 hash comes from the parameters."""
    ca = _cert("CA", RSA, "CA", RSA)
    leaf = _cert("leaf", LEAF, "CA", RSA, pss=True, mgf_hash=hashes.SHA512())
    assert _oracle(leaf, ca) is True
    assert find_chain(_load(leaf), [], [_load(ca)])[1] is not None


def test_outer_algorithm_must_match_the_tbs_and_the_key() -> None:
    """An RSA-signed certificate whose outer signatureAlgorithm is relabelled (the TBS still
    says sha384WithRSAEncryption): cryptography refuses to load it, OpenSSL rejects it; the
    RSA signature itself still verifies, so only these checks stop the link."""
    from asn1crypto import x509 as asn1_x509

    ca = _cert("CA", RSA, "CA", RSA)
    leaf = _cert("leaf", LEAF, "CA", RSA)
    for label in ("sha256_ecdsa", "sha256_rsa"):
        asn1 = asn1_x509.Certificate.load(leaf.public_bytes(serialization.Encoding.DER))
        asn1["signature_algorithm"] = {"algorithm": label}
        forged = Cert.load(asn1.dump(force=True))
        assert forged is not None
        assert find_chain(forged, [], [_load(ca)])[1] is None, label


def test_name_mismatch_does_not_link() -> None:
    ca = _cert("CA", RSA, "CA", RSA)
    leaf = _cert("leaf", LEAF, "Another CA", RSA)  # signed by CA's key, names another issuer
    _chain, anchor = find_chain(_load(leaf), [], [_load(ca)])
    assert anchor is None


def test_intermediate_from_the_pool() -> None:
    root = _cert("root", RSA, "root", RSA)
    mid = _cert("mid", EC, "root", RSA)
    leaf = _cert("leaf", LEAF, "mid", EC)
    chain, anchor = find_chain(_load(leaf), [_load(mid)], [_load(root)])
    assert anchor is not None
    assert [c.der for c in chain] == [_load(c).der for c in (leaf, mid, root)]


def test_microsoft_dbx_update_signer_links_to_the_2011_kek_ca() -> None:
    """The real link: the signer certificate in Microsoft's amd64 DBXUpdate.bin and the
    Microsoft Corporation KEK CA 2011 (RSA-2048, sha256WithRSAEncryption); the 2023 KEK CA
    does not issue it. Both verdicts as cryptography gives them."""
    from asn1crypto import cms

    from fwtools.formats.efi.authvar import AuthVariable2

    ms = ms_corpus_base()
    update, kek = ms / "dbx" / "amd64" / "DBXUpdate.bin", ms / "certs" / "kek"
    if not update.is_file():
        unavailable(f"{update}: the Microsoft objects are missing")
    # edk2 takes the CertData as a bare SignedData (Microsoft's) or wrapped in a ContentInfo
    signed = cms.SignedData.load(AuthVariable2.parse(update.read_bytes()).pkcs7)
    bag = [x509.load_der_x509_certificate(c.chosen.dump()) for c in signed["certificates"]]
    signer = next(c for c in bag if "Key Exchange Key" in c.subject.rfc4514_string())
    for name, issues in (("MicCorKEKCA2011_2011-06-24.der", True),
                         ("microsoft-corporation-kek-2k-ca-2023.der", False)):
        ca = x509.load_der_x509_certificate((kek / name).read_bytes())
        assert _oracle(signer, ca) is issues
        assert (find_chain(_load(signer), [], [_load(ca)])[1] is not None) is issues
