"""What Authenticode signatures and .auth signatures share: PKCS#7 SignerInfo checks.

References: RFC 2315 (PKCS #7 v1.5) §9; RFC 2985 (PKCS #9 attributes). Both kinds of
signature are a PKCS#7 SignedData whose SignerInfo either signs the content directly or
signs authenticated attributes whose messageDigest is the content's digest;
:func:`verify_signer_info` checks either form, :func:`find_signer` finds the signer's
certificate in the bag, :func:`verify_with_key` checks a raw signature with a public key and
:func:`find_chain` builds the chain from a signer to a trusted certificate (for Authenticode
in :mod:`fwtools.crypto.trust`, for .auth in :mod:`fwtools.crypto.authvar`). Parsing shares
:func:`content_signed_data` (unwrap a ContentInfo) and :func:`malformed_der` (asn1crypto's
errors as :class:`~fwtools.errors.SignatureFormatError`).

asn1crypto and cryptography are imported inside the functions, so importing this module
costs nothing until a signature is checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from fwtools._base import digest
from fwtools.crypto.x509info import PARSE_ERRORS, CertificateInfo, certificate_info, one_line
from fwtools.errors import FwError, SignatureFormatError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.padding import AsymmetricPadding
    from cryptography.hazmat.primitives.hashes import HashAlgorithm

PKCS7_DATA: Final = "1.2.840.113549.1.7.1"
PKCS7_SIGNED_DATA: Final = "1.2.840.113549.1.7.2"
PKCS9_CONTENT_TYPE: Final = "1.2.840.113549.1.9.3"
PKCS9_MESSAGE_DIGEST: Final = "1.2.840.113549.1.9.4"
PKCS9_SIGNING_TIME: Final = "1.2.840.113549.1.9.5"


@contextmanager
def malformed_der(message: str, *, structure: str, offset: int | None) -> Iterator[None]:
    """Turn what asn1crypto raises on bad DER into a :class:`SignatureFormatError`
    ``"{message}: {error}"`` at ``structure``/``offset``; fwtools' own errors pass through.

    asn1crypto decodes lazily, so malformed DER can fail at any field access, not only at
    ``load``: the whole use of a parsed structure belongs inside the block.
    """
    try:
        yield
    except FwError:
        raise
    except PARSE_ERRORS as exc:
        raise SignatureFormatError(
            f"{message}: {one_line(exc)}", structure=structure, offset=offset
        ) from None


def content_signed_data(info: Any, *, structure: str, offset: int | None) -> Any:
    """The SignedData an asn1crypto ContentInfo wraps; :class:`SignatureFormatError` when it
    wraps another content type."""
    content_type = info["content_type"].dotted
    if content_type != PKCS7_SIGNED_DATA:
        raise SignatureFormatError(
            f"ContentInfo content type {content_type} is not PKCS#7 SignedData",
            structure=structure,
            offset=offset,
        )
    return info["content"]


def attribute(attrs: Any, oid: str) -> Any | None:
    """The first value of the attribute ``oid`` among ``attrs`` (asn1crypto CMSAttributes,
    possibly None), or None when there is none."""
    for attr in attrs or []:
        if attr["type"].dotted == oid:
            values = attr["values"]
            return values[0] if len(values) else None
    return None


def find_signer(sid: Any, certs: Sequence[Any]) -> int | None:
    """The index in ``certs`` (asn1crypto Certificates) of the certificate a SignerInfo's
    ``sid`` names, by issuer and serial number or by subject key identifier; None when it is
    not there. Names compare as RFC 5280 has it (asn1crypto's Name equality), as OpenSSL's
    lookup of the signer does."""
    if sid.name == "issuer_and_serial_number":
        issuer = sid.chosen["issuer"]
        serial = int(sid.chosen["serial_number"].native)
        for i, cert in enumerate(certs):
            tbs = cert["tbs_certificate"]
            if int(tbs["serial_number"].native) != serial:
                continue
            # The same DER settles it without asn1crypto's RFC 5280 comparison, which loads
            # unicodedata and stringprep for its string preparation (a few ms of start-up).
            if tbs["issuer"].dump() == issuer.dump() or tbs["issuer"] == issuer:
                return i
        return None
    key_id = bytes(sid.chosen.native)
    for i, cert in enumerate(certs):
        if cert.key_identifier == key_id:
            return i
    return None


def signature_scheme(
    sig_alg: Any, *, default_hash: str | None = None
) -> tuple[HashAlgorithm | None, AsymmetricPadding | None] | str:
    """The hash and RSA padding that an asn1crypto SignedDigestAlgorithm (a SignerInfo's or
    a certificate's signatureAlgorithm) asks :func:`verify_with_key` for, or why it cannot
    be used. ``default_hash`` applies where the algorithm names no hash (rsaEncryption, or
    a bare key OID such as id-ecPublicKey in a SignerInfo); Ed25519/Ed448 take none.
    RSASSA-PSS takes its salt length and its MGF1 hash from the parameters."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    algo = _signature_algo(sig_alg)
    if algo in ("ed25519", "ed448"):
        return None, None
    try:
        hash_name = str(sig_alg.hash_algo)
    except ValueError:
        if default_hash is None:
            return f"signature algorithm {sig_alg['algorithm'].dotted} names no hash"
        hash_name = default_hash
    chosen = _hash(hashes, hash_name)
    if chosen is None:
        return f"unsupported signature hash {hash_name}"
    pss = None
    if algo == "rsassa_pss":
        params = sig_alg["parameters"]
        mgf = params["mask_gen_algorithm"]
        if mgf["algorithm"].native != "mgf1":
            return f"unsupported RSASSA-PSS mask generation {mgf['algorithm'].dotted}"
        mgf_name = str(mgf["parameters"]["algorithm"].native)
        mgf_hash = _hash(hashes, mgf_name)
        if mgf_hash is None:
            return f"unsupported RSASSA-PSS MGF1 hash {mgf_name}"
        pss = padding.PSS(mgf=padding.MGF1(mgf_hash), salt_length=int(params["salt_length"].native))
    return chosen, pss


def _signature_algo(sig_alg: Any) -> str | None:
    """asn1crypto's signature_algo ("rsassa_pkcs1v15", "rsassa_pss", "ecdsa", "dsa",
    "ed25519", "ed448"), or None for an OID it does not map (a bare key OID)."""
    try:
        return str(sig_alg.signature_algo)
    except ValueError:
        return None


def _hash(hashes: Any, name: str) -> HashAlgorithm | None:
    algorithm = getattr(hashes, name.upper(), None)
    return algorithm() if algorithm is not None else None


def verify_with_key(
    key: Any,
    signature: bytes,
    data: bytes,
    digest: HashAlgorithm | None,
    rsa_padding: AsymmetricPadding | None = None,
) -> bool:
    """Check ``signature`` over ``data`` with a cryptography public ``key``: RSA (PKCS#1
    v1.5 unless ``rsa_padding``), ECDSA and DSA with ``digest``, Ed25519 and Ed448.

    Returns False, without checking, for other key types and for a ``digest`` of None where
    one is needed; raises ``InvalidSignature`` when the signature does not verify (and
    whatever cryptography raises for unusable input).
    """
    from cryptography.hazmat.primitives.asymmetric import rsa

    # RSA first: every UEFI signature is RSA, and the other key modules cost import time.
    if isinstance(key, rsa.RSAPublicKey):
        if digest is None:
            return False
        from cryptography.hazmat.primitives.asymmetric import padding

        key.verify(signature, data, rsa_padding or padding.PKCS1v15(), digest)
        return True
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519

    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        key.verify(signature, data)
    elif digest is None:
        return False
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(digest))
    elif isinstance(key, dsa.DSAPublicKey):
        key.verify(signature, data, digest)
    else:
        return False
    return True


def load_public_key(spki_der: bytes) -> Any:
    """A cryptography public key from a DER SubjectPublicKeyInfo.

    An RSA key (what every UEFI signature uses) is built from its modulus and exponent, as
    asn1crypto parses them; that spares importing cryptography's serialization package
    (SSH keys, ciphers: a few ms of every verifying command's start-up). Any other key goes
    through ``load_der_public_key``, which raises ValueError (or UnsupportedAlgorithm) for
    one it cannot use; an RSA key cryptography refuses raises ValueError too.
    """
    from asn1crypto import keys

    try:
        spki = keys.PublicKeyInfo.load(spki_der, strict=True)
        if spki["algorithm"]["algorithm"].native == "rsa":
            numbers = spki["public_key"].parsed
            modulus, exponent = numbers["modulus"].native, numbers["public_exponent"].native
        else:
            modulus = exponent = None
    except PARSE_ERRORS:
        modulus = exponent = None  # load_der_public_key gives the error
    if isinstance(modulus, int) and isinstance(exponent, int):
        from cryptography.hazmat.primitives.asymmetric import rsa

        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    return load_der_public_key(spki_der)


def _key_kind(key: Any) -> str | None:
    """"rsa", "ec", "ed25519" or "ed448" for a cryptography public key, else None."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    if isinstance(key, rsa.RSAPublicKey):
        return "rsa"
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519

    kinds = (("ec", ec.EllipticCurvePublicKey), ("ed25519", ed25519.Ed25519PublicKey),
             ("ed448", ed448.Ed448PublicKey))
    return next((kind for kind, cls in kinds if isinstance(key, cls)), None)


def verify_signer_info(
    signer_info: Any, spki_der: bytes, content: bytes, *, content_type: str | None = None
) -> tuple[bool | None, str | None]:
    """Check an asn1crypto SignerInfo over ``content`` with the signer's SubjectPublicKeyInfo.

    Without authenticated attributes the signature covers ``content``. With them, their
    messageDigest must be the digest of ``content`` (and their contentType, when present
    and ``content_type`` is given, that OID), and the signature covers the attributes' DER
    as a SET OF (RFC 2315 §9.3; the encoding found is kept, not re-sorted).

    Returns (True, None) when it verifies, (False, why) when it does not, and (None, why)
    when it cannot be checked (unsupported digest, key or algorithm).
    """
    # The key is loaded from the SPKI rather than through cryptography.x509, whose import
    # alone would double what inspecting an image costs.
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

    digest_name = str(signer_info["digest_algorithm"]["algorithm"].native)
    try:
        content_digest = digest.new(digest_name, content).digest()
    except ValueError:
        return None, f"unsupported SignerInfo digest algorithm {digest_name}"
    signed_attrs = signer_info["signed_attrs"]
    if len(signed_attrs):
        found = attribute(signed_attrs, PKCS9_CONTENT_TYPE) if content_type else None
        if found is not None and found.dotted != content_type:
            return False, f"the contentType attribute is {found.dotted}, not {content_type}"
        message_digest = attribute(signed_attrs, PKCS9_MESSAGE_DIGEST)
        if message_digest is None:
            return False, "the authenticated attributes have no messageDigest"
        if message_digest.native != content_digest:
            return False, (
                f"the messageDigest attribute is not the {digest_name} digest of the signed content"
            )
        signed = b"\x31" + signed_attrs.dump()[1:]
    else:
        signed = content
    try:
        key = load_public_key(spki_der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        return None, f"the signer's public key is unusable: {one_line(exc)}"
    sig_alg = signer_info["signature_algorithm"]
    signature = bytes(signer_info["signature"].native)
    try:
        # rsaEncryption names no hash: the SignerInfo's digest algorithm applies
        scheme = signature_scheme(sig_alg, default_hash=digest_name)
        if isinstance(scheme, str):
            return None, scheme
        if not verify_with_key(key, signature, signed, *scheme):
            return None, f"unsupported signer key type {type(key).__name__}"
    except InvalidSignature:
        return False, "the SignerInfo signature does not verify with the signer's public key"
    except (*PARSE_ERRORS, AttributeError, UnsupportedAlgorithm) as exc:
        return None, f"the SignerInfo signature cannot be checked: {one_line(exc)}"
    return True, None


# -- certificate chains -----------------------------------------------------------------

# Chains longer than this are not built (real ones have two or three certificates).
MAX_CHAIN: Final = 8


class Cert:
    """A certificate with the parsed forms chain building needs, loaded on demand."""

    __slots__ = ("_info", "asn1", "der")

    def __init__(self, der: bytes, asn1: Any) -> None:
        self.der = der
        self.asn1 = asn1
        self._info: CertificateInfo | None = None

    @classmethod
    def load(cls, der: bytes, asn1: Any = None) -> Cert | None:
        """The certificate, or None when asn1crypto cannot read its TBSCertificate.

        ``asn1`` is the asn1crypto Certificate of ``der`` when the caller has parsed it
        already (a PKCS#7 bag), so that the bytes are not decoded twice.
        """
        from asn1crypto import x509 as asn1_x509

        try:
            if asn1 is None:
                asn1 = asn1_x509.Certificate.load(der)
            # Parsing is lazy; touch the TBSCertificate so that a malformed one fails here.
            asn1["tbs_certificate"]["subject"]
        except PARSE_ERRORS:
            return None
        return cls(der, asn1)

    @property
    def info(self) -> CertificateInfo:
        return self.describe()

    def describe(
        self, *, structure: str = "X.509 certificate", offset: int | None = None
    ) -> CertificateInfo:
        """:func:`~fwtools.crypto.x509info.certificate_info` of the certificate, computed
        once; ``structure`` and ``offset`` name it in the error when that fails."""
        if self._info is None:
            self._info = certificate_info(self.der, structure=structure, offset=offset)
        return self._info

    def tbs_digest(self, algorithm: str) -> bytes:
        return digest.new(algorithm, self.asn1["tbs_certificate"].dump()).digest()


class CertCache:
    """Certificates parsed once per verification, keyed by DER."""

    def __init__(self) -> None:
        self._certs: dict[bytes, Cert | None] = {}

    def get(self, der: bytes, asn1: Any = None) -> Cert | None:
        """The certificate of ``der`` (see :meth:`Cert.load` for ``asn1``)."""
        if der not in self._certs:
            self._certs[der] = Cert.load(der, asn1)
        return self._certs[der]

    def many(self, ders: Iterable[bytes]) -> list[Cert]:
        return [c for c in (self.get(d) for d in ders) if c is not None]


def _issued_by(cert: Cert, issuer: Cert) -> bool:
    """Whether ``issuer`` issued ``cert``: the names match as RFC 5280 compares them (as
    OpenSSL and edk2 do), the outer signatureAlgorithm is the TBSCertificate's, it fits the
    issuer's key type, and the signature over the TBSCertificate verifies with the issuer's
    public key. Done on asn1crypto's parse and the SPKI, without cryptography.x509, whose
    import alone costs more than the rest of a verification."""
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

    # The key type each signature algorithm needs (RFC 5280 §4.1.1.2: an algorithm that
    # does not fit the issuer's key is no valid signature). No DSA: UEFI has none, and
    # cryptography deprecates it.
    key_type: dict[str, str] = {
        "rsassa_pkcs1v15": "rsa", "rsassa_pss": "rsa", "ecdsa": "ec",
        "ed25519": "ed25519", "ed448": "ed448",
    }
    try:
        tbs = cert.asn1["tbs_certificate"]
        issuer_tbs = issuer.asn1["tbs_certificate"]
        if tbs["issuer"] != issuer_tbs["subject"]:
            return False
        sig_alg = cert.asn1["signature_algorithm"]
        if sig_alg.dump() != tbs["signature"].dump():
            return False
        wanted = key_type.get(_signature_algo(sig_alg) or "")
        scheme = signature_scheme(sig_alg)
        if wanted is None or isinstance(scheme, str):
            return False
        key = load_public_key(issuer_tbs["subject_public_key_info"].dump())
        if _key_kind(key) != wanted:
            return False
        signature = bytes(cert.asn1["signature_value"].native)
        return verify_with_key(key, signature, tbs.dump(), *scheme)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError, *PARSE_ERRORS):
        return False


def find_chain(
    signer: Cert, pool: Sequence[Cert], anchors: Sequence[Cert]
) -> tuple[list[Cert], Cert | None]:
    """A chain from ``signer`` through ``pool`` to one of ``anchors``.

    Returns (chain, anchor) with the anchor as the chain's last element, or the longest
    chain built and None. An anchor ends the chain as soon as a chain certificate *is* one
    (same DER) or is issued by one, the partial-chain rule of edk2's Pkcs7Verify (and of
    OpenSSL's X509_V_FLAG_PARTIAL_CHAIN); validity periods and key usages are not checked.
    """
    anchor_ders = {a.der for a in anchors}
    best: list[Cert] = [signer]

    def walk(chain: list[Cert]) -> Cert | None:
        nonlocal best
        if len(chain) > len(best):
            best = list(chain)
        current = chain[-1]
        if current.der in anchor_ders:
            return current
        for anchor in anchors:
            if _issued_by(current, anchor):
                chain.append(anchor)
                return anchor
        if len(chain) >= MAX_CHAIN:
            return None
        seen = {c.der for c in chain}
        for candidate in pool:
            if candidate.der in seen or not _issued_by(current, candidate):
                continue
            chain.append(candidate)
            found = walk(chain)
            if found is not None:
                return found
            chain.pop()
        return None

    chain = [signer]
    anchor = walk(chain)
    return (chain, anchor) if anchor is not None else (best, None)


__all__ = [
    "MAX_CHAIN",
    "PKCS7_DATA",
    "PKCS7_SIGNED_DATA",
    "PKCS9_CONTENT_TYPE",
    "PKCS9_MESSAGE_DIGEST",
    "PKCS9_SIGNING_TIME",
    "Cert",
    "CertCache",
    "attribute",
    "content_signed_data",
    "find_chain",
    "find_signer",
    "malformed_der",
    "verify_signer_info",
    "verify_with_key",
]
