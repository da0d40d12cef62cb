"""``pkcs7.verify_signer_info`` for the signature-algorithm spellings real signers use:
ecdsa-with-SHA256, or the bare id-ecPublicKey / rsaEncryption key OIDs, where the
SignerInfo's digestAlgorithm names the hash (OpenSSL accepts all of them)."""

from __future__ import annotations

import datetime as dt

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from fwtools.crypto.pkcs7 import verify_signer_info

CONTENT = b"signed content"


def _signed(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> tuple[cms.SignerInfo, bytes]:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer")])
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    der = (pkcs7.PKCS7SignatureBuilder().set_data(CONTENT).add_signer(cert, key, hashes.SHA256())
           .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature]))
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return cms.ContentInfo.load(der)["content"]["signer_infos"][0], spki


@pytest.mark.parametrize(("key", "relabel"), [
    (ec.generate_private_key(ec.SECP256R1()), None),
    (ec.generate_private_key(ec.SECP256R1()), "1.2.840.10045.2.1"),  # id-ecPublicKey
    (rsa.generate_private_key(public_exponent=65537, key_size=2048), None),
    (rsa.generate_private_key(public_exponent=65537, key_size=2048), "1.2.840.113549.1.1.1"),
], ids=["ecdsa-with-SHA256", "id-ecPublicKey", "sha256WithRSAEncryption", "rsaEncryption"])
def test_signer_info_algorithm_spellings(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
                                         relabel: str | None) -> None:
    signer_info, spki = _signed(key)
    if relabel is not None:
        signer_info["signature_algorithm"] = {"algorithm": relabel}
    assert verify_signer_info(signer_info, spki, CONTENT) == (True, None)
    assert verify_signer_info(signer_info, spki, CONTENT + b"!")[0] is False
