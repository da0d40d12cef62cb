"""The PKCS#7 of authenticated-variable updates (.auth): describe, verify, sign.

References: UEFI 2.10 §8.2.2 (EFI_VARIABLE_AUTHENTICATION_2); RFC 2315 (PKCS #7 v1.5) §9;
edk2 SecurityPkg/Library/AuthVariableLib/AuthService.c (VerifyTimeBasedPayload) and
CryptoPkg/Library/BaseCryptLib/Pk/CryptPkcs7VerifyCommon.c (Pkcs7Verify, WrapPkcs7Data).

What firmware checks, and this module models (:func:`verify_auth`):

- the CertData is a PKCS#7 SignedData, either bare or wrapped in a ContentInfo (edk2's
  WrapPkcs7Data adds the wrapper when it is missing), with a *detached* id-data content;
- every SignerInfo verifies over :func:`~fwtools.formats.efi.authvar.signed_data_bytes`
  (name, vendor GUID, attributes as passed to SetVariable, TimeStamp, data). With
  authenticated attributes, their messageDigest must be the digest of those bytes and the
  signature covers the DER of the attributes (as a SET OF); without, the signature covers
  the bytes directly;
- the signer (found in the PKCS#7 certificate bag) chains, through the other bag
  certificates, to a trusted certificate, where the trusted certificate may be the signer
  itself or any CA above it (OpenSSL's X509_V_FLAG_PARTIAL_CHAIN), with no validity-period
  or purpose check (X509_V_FLAG_NO_CHECK_TIME, X509_PURPOSE_ANY);
- the TimeStamp has Pad1, Nanosecond, TimeZone, Daylight and Pad2 zero.

Not modelled, because they depend on the stored variable: a non-append update must carry a
TimeStamp later than the stored one; a PK-signed update (PK, KEK) also needs the signer's
top-level certificate to byte-match the enrolled PK; private authenticated variables are
bound to their first signer through certdb.

asn1crypto parses, cryptography verifies and signs; both are imported inside functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any, Concatenate, Final, Literal, ParamSpec, TypeVar

from fwtools._base.efitime import EfiTime
from fwtools._base.record import Record, field
from fwtools.crypto.pkcs7 import (
    PKCS7_DATA,
    PKCS9_SIGNING_TIME,
    CertCache,
    attribute,
    content_signed_data,
    find_chain,
    find_signer,
    malformed_der,
    verify_signer_info,
)
from fwtools.crypto.x509info import PARSE_ERRORS, CertificateInfo, certificate_info
from fwtools.errors import SignatureFormatError, UsageError
from fwtools.formats.efi.authvar import (
    APPEND_WRITE,
    TIME_BASED_AUTHENTICATED_WRITE_ACCESS,
    AuthVariable2,
    empty_auth,
    signed_data_bytes,
    variable_defaults,
)

if TYPE_CHECKING:
    import uuid

    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

    from fwtools.formats.efi.siglist import SignatureDatabase

_STRUCTURE: Final = "EFI_VARIABLE_AUTHENTICATION_2 PKCS#7"
# Digests edk2 accepts for .auth signatures (AuthService.c mHashInfo; SHA-384/512 only since
# 2023, SHA-256 in every version).
SIGNING_DIGESTS: Final = ("sha256", "sha384", "sha512")

Form = Literal["SignedData", "ContentInfo"]
_P = ParamSpec("_P")
_R = TypeVar("_R")


class AuthSignatureInfo(Record, frozen=False):
    """What the PKCS#7 of a .auth says about itself (nothing is verified).

    ``signers`` are the certificates the SignerInfos name, found in the bag (a SignerInfo
    whose certificate is missing has none; ``signer_ids`` always names it, as
    ``issuer / serial`` or ``keyid <hex>``). ``certificates`` is the whole bag, in order.
    ``digest_algorithm`` is the first SignerInfo's (hashlib name when known, else dotted);
    ``form`` is "SignedData" for a bare SignedData (efitools, sbvarsign, Microsoft) and
    "ContentInfo" for one wrapped in a ContentInfo. ``signing_time`` is the signingTime
    attribute (ISO 8601 UTC) when there is one. ``detached`` is False when the SignedData
    embeds content, which firmware refuses. ``problems`` lists oddities that do not stop
    parsing.
    """

    signers: list[CertificateInfo]
    certificates: list[CertificateInfo]
    digest_algorithm: str
    form: Form
    has_signed_attributes: bool
    signer_ids: list[str] = field(default_factory=list)
    signing_time: str | None = None
    detached: bool = True
    problems: list[str] = field(default_factory=list)


class AuthVerifyResult(Record, frozen=False):
    """The verdict of :func:`verify_auth`.

    ``valid`` is whether firmware holding ``anchors`` would accept the signature.
    ``attributes`` are the attributes the signature was checked with (for
    ``attributes=None``, the ones that verified, else the first tried); ``tried`` lists
    every candidate. ``signer`` is the first SignerInfo's certificate, ``anchor`` the trusted
    certificate its chain reached, ``chain`` the certificates from the signer to the anchor
    (both included). ``warnings`` hold things firmware does not refuse but that look wrong
    (an invalid calendar date in the TimeStamp, an unusual wRevision).
    """

    valid: bool
    reason: str
    signer: CertificateInfo | None
    anchor: CertificateInfo | None
    chain: list[CertificateInfo]
    attributes: int
    tried: list[int] = field(default_factory=list)
    digest_algorithm: str = ""
    warnings: list[str] = field(default_factory=list)


# -- parsing ----------------------------------------------------------------------------


class _Parsed(Record, frozen=False):
    signed_data: Any
    form: Form
    bag: list[tuple[bytes, Any]]  # (DER, asn1crypto Certificate)
    signer_infos: list[Any]
    signer_certs: list[int | None]  # index in ``bag`` of each SignerInfo's certificate
    signer_ids: list[str]
    problems: list[str]


def _signer_id(sid: Any) -> str:
    from fwtools.crypto.x509info import format_name, format_serial

    if sid.name == "issuer_and_serial_number":
        return (
            f"{format_name(sid.chosen['issuer'])} / "
            f"{format_serial(int(sid.chosen['serial_number'].native))}"
        )
    return f"keyid {bytes(sid.chosen.native).hex()}"


def _parse_pkcs7(auth: AuthVariable2) -> _Parsed:
    """Decode the CertData; SignatureFormatError (at the PKCS#7 offset) when it is not a
    PKCS#7 SignedData with at least one SignerInfo."""
    from asn1crypto import cms, core

    structure = _STRUCTURE
    offset = auth.pkcs7_offset
    blob = auth.pkcs7
    if not blob:
        raise SignatureFormatError(
            "no PKCS#7 signature (dwLength 24: an unsigned, setup-mode header)",
            structure=structure,
            offset=offset,
        )
    problems: list[str] = []
    with malformed_der("malformed PKCS#7", structure=structure, offset=offset):
        outer = core.Sequence.load(blob, strict=False)
        consumed = len(outer.dump())
        if consumed != len(blob):
            problems.append(f"{len(blob) - consumed} bytes after the PKCS#7 DER inside dwLength")
        first = outer[0]
        form: Form
        if isinstance(first, core.ObjectIdentifier):
            info = cms.ContentInfo.load(blob[:consumed])
            signed_data = content_signed_data(info, structure=structure, offset=offset)
            form = "ContentInfo"
        elif isinstance(first, core.Integer):
            signed_data = cms.SignedData.load(blob[:consumed])
            form = "SignedData"
        else:
            raise SignatureFormatError(
                "neither a PKCS#7 ContentInfo nor a bare SignedData",
                structure=structure,
                offset=offset,
            )
        # asn1crypto parses lazily: touch every field used later so that malformed DER
        # fails here, as a SignatureFormatError, rather than in the middle of a check.
        _ = signed_data["version"].native
        _ = [a["algorithm"].dotted for a in signed_data["digest_algorithms"]]
        encap = signed_data["encap_content_info"]
        _ = encap["content_type"].dotted
        bag: list[tuple[bytes, Any]] = []
        for i, choice in enumerate(signed_data["certificates"] or []):
            if choice.name != "certificate":
                problems.append(f"certificate {i} in the bag is a {choice.name}, ignored")
                continue
            cert = choice.chosen
            der = cert.dump()
            tbs = cert["tbs_certificate"]
            _ = (tbs["subject"].native, tbs["issuer"].native, tbs["serial_number"].native)
            _ = tbs["subject_public_key_info"]["algorithm"]["algorithm"].dotted
            _ = cert.key_identifier
            bag.append((der, cert))
        signer_infos = list(signed_data["signer_infos"])
        if not signer_infos:
            raise SignatureFormatError(
                "SignedData has no SignerInfo", structure=structure, offset=offset
            )
        certs = [cert for _der, cert in bag]
        signer_certs = []
        signer_ids = []
        for si in signer_infos:
            _ = si["digest_algorithm"]["algorithm"].dotted
            _ = si["signature_algorithm"]["algorithm"].dotted
            _ = si["signature"].native
            for attr in si["signed_attrs"] or []:
                _ = attr["type"].dotted
                _ = attr["values"].native
            signer_ids.append(_signer_id(si["sid"]))
            signer_certs.append(find_signer(si["sid"], certs))
    return _Parsed(signed_data, form, bag, signer_infos, signer_certs, signer_ids, problems)


def _cert_info(der: bytes, what: str, offset: int) -> CertificateInfo:
    return certificate_info(der, structure=f"{_STRUCTURE} {what}", offset=offset)


def _malformed_pkcs7(
    fn: Callable[Concatenate[AuthVariable2, _P], _R],
) -> Callable[Concatenate[AuthVariable2, _P], _R]:
    """Run ``fn(auth, ...)`` with asn1crypto's errors, which its lazy decoding may raise at
    any field access, reported as malformed PKCS#7 at the offset of ``auth``'s CertData."""

    @functools.wraps(fn)
    def checked(auth: AuthVariable2, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with malformed_der("malformed PKCS#7", structure=_STRUCTURE, offset=auth.pkcs7_offset):
            return fn(auth, *args, **kwargs)

    return checked


@_malformed_pkcs7
def auth_signature_info(auth: AuthVariable2) -> AuthSignatureInfo:
    """Describe the PKCS#7 of ``auth``: signers, certificate bag, digest, form, attributes.

    Raises :class:`SignatureFormatError` (with the PKCS#7's absolute offset) when the
    CertData is empty or not a PKCS#7 SignedData.
    """
    parsed = _parse_pkcs7(auth)
    offset = auth.pkcs7_offset
    certificates = [
        _cert_info(der, f"certificate {i}", offset) for i, (der, _c) in enumerate(parsed.bag)
    ]
    signers = [certificates[found] for found in parsed.signer_certs if found is not None]
    first = parsed.signer_infos[0]
    signed_attrs = first["signed_attrs"]
    signing_time = attribute(signed_attrs, PKCS9_SIGNING_TIME)
    problems = list(parsed.problems)
    for sid, found in zip(parsed.signer_ids, parsed.signer_certs, strict=True):
        if found is None:
            problems.append(f"the certificate of signer {sid} is not in the PKCS#7")
    encap = parsed.signed_data["encap_content_info"]
    detached = encap["content"].native is None
    if not detached:
        problems.append("the PKCS#7 embeds its content; firmware needs a detached signature")
    if encap["content_type"].dotted != PKCS7_DATA:
        problems.append(f"encapsulated content type {encap['content_type'].dotted} is not data")
    when = None
    if signing_time is not None:
        try:
            value = signing_time.native.astimezone(UTC)
            when = value.strftime("%Y-%m-%dT%H:%M:%SZ")
        except (*PARSE_ERRORS, AttributeError):
            problems.append("malformed signingTime attribute")
    return AuthSignatureInfo(
        signers=signers,
        certificates=certificates,
        digest_algorithm=str(first["digest_algorithm"]["algorithm"].native),
        form=parsed.form,
        has_signed_attributes=bool(len(signed_attrs)),
        signer_ids=parsed.signer_ids,
        signing_time=when,
        detached=detached,
        problems=problems,
    )


# -- verification -----------------------------------------------------------------------


def _check_signatures(parsed: _Parsed, content: bytes) -> str | None:
    """None when every SignerInfo verifies over ``content`` (PKCS7_verify requires all)."""
    for i, (si, found) in enumerate(zip(parsed.signer_infos, parsed.signer_certs, strict=True)):
        label = f"SignerInfo {i}" if len(parsed.signer_infos) > 1 else "the SignerInfo"
        if found is None:
            return f"{label}: signer {parsed.signer_ids[i]} has no certificate in the PKCS#7"
        spki = parsed.bag[found][1]["tbs_certificate"]["subject_public_key_info"].dump()
        valid, why = verify_signer_info(si, spki, content)
        if not valid:
            return f"{label}: {why}"
    return None


@_malformed_pkcs7
def verify_auth(
    auth: AuthVariable2,
    name: str,
    vendor: uuid.UUID,
    attributes: int | None,
    anchors: Sequence[bytes],
) -> AuthVerifyResult:
    """Would firmware trusting ``anchors`` accept ``auth`` as an update of ``name``/``vendor``?

    ``anchors`` are DER certificates (the KEK entries for db/dbx, the PK for KEK and PK).
    ``attributes`` are those SetVariable would be called with; None tries the variable's
    default (:func:`~fwtools.formats.efi.authvar.variable_defaults`, so ``name`` must be a
    known one) without and then with APPEND_WRITE, and reports which one verified. The rules
    are those of the module docstring. Raises :class:`SignatureFormatError` when the PKCS#7
    is malformed and :class:`UsageError` when no anchor is a readable certificate; an
    unsigned header, a signature that does not verify or a chain that reaches no anchor is
    an invalid result, not an error.
    """
    if attributes is None:
        _vendor, default = variable_defaults(name)
        candidates = [default & ~APPEND_WRITE, default | APPEND_WRITE]
    else:
        candidates = [attributes]
    warnings = [
        f"TimeStamp: {p}" for p in auth.timestamp.calendar_problems() if not auth.timestamp.is_zero
    ]
    warnings += [p for p in auth.problems() if p.startswith("wRevision")]

    def result(valid: bool, reason: str, attrs: int, **kw: Any) -> AuthVerifyResult:
        return AuthVerifyResult(
            valid,
            reason,
            kw.pop("signer", None),
            kw.pop("anchor", None),
            kw.pop("chain", []),
            attrs,
            list(candidates),
            kw.pop("digest", ""),
            warnings,
        )

    if not auth.pkcs7:
        return result(
            False,
            "unsigned: the authentication header holds no PKCS#7 "
            "(accepted only in setup mode or custom mode)",
            candidates[0],
        )
    parsed = _parse_pkcs7(auth)
    digest = str(parsed.signer_infos[0]["digest_algorithm"]["algorithm"].native)
    cache = CertCache()
    trusted = cache.many(bytes(a) for a in anchors)
    if not trusted:
        raise UsageError("no usable trust anchor: give at least one DER certificate")
    # The bag is parsed already: the chain reuses those certificates rather than decoding
    # their DER again.
    bag = [cache.get(der, cert) for der, cert in parsed.bag]

    encap = parsed.signed_data["encap_content_info"]
    if encap["content"].native is not None:
        return result(
            False,
            "the PKCS#7 embeds its content instead of signing detached data "
            "(OpenSSL's PKCS7_verify in firmware refuses: content and data present)",
            candidates[0],
            digest=digest,
        )

    verified: int | None = None
    failures = []
    for attrs in candidates:
        content = signed_data_bytes(name, vendor, attrs, auth.timestamp, auth.payload)
        why = _check_signatures(parsed, content)
        if why is None:
            verified = attrs
            break
        failures.append((attrs, why))

    first_signer = parsed.signer_certs[0]
    first = bag[first_signer] if first_signer is not None else None
    signer_info = (
        first.describe(structure=f"{_STRUCTURE} signer", offset=auth.pkcs7_offset)
        if first is not None
        else None
    )
    if verified is None:
        if len(failures) == 1:
            attrs, why = failures[0]
            reason = f"with attributes {attrs:#x}: {why}"
        else:
            tried = " nor ".join(f"{a:#x}" for a, _w in failures)
            reason = (
                f"the signature verifies with neither attributes {tried} "
                f"(name {name!r}, vendor {vendor}): {failures[0][1]}"
            )
        return result(False, reason, candidates[0], signer=signer_info, digest=digest)

    # Every signer must chain to an anchor (PKCS7_verify checks each signer's chain).
    chain_info: list[CertificateInfo] = []
    anchor_info: CertificateInfo | None = None
    for i, found in enumerate(parsed.signer_certs):
        assert found is not None  # _check_signatures passed
        signer = bag[found]
        if signer is None:
            return result(
                False,
                f"signer certificate {i} cannot be parsed",
                verified,
                signer=signer_info,
                digest=digest,
            )
        pool = [c for c in bag if c is not None and c.der != signer.der]
        chain, anchor = find_chain(signer, pool, trusted)
        if anchor is None:
            return result(
                False,
                f"the signature verifies (attributes {verified:#x}), but signer "
                f"{signer.info.subject} (issuer {signer.info.issuer}) does not chain to any "
                "trusted certificate",
                verified,
                signer=signer_info,
                chain=[c.info for c in chain],
                digest=digest,
            )
        if i == 0:
            chain_info = [c.info for c in chain]
            anchor_info = anchor.info

    rejected = auth.timestamp.firmware_rejections()
    assert signer_info is not None and anchor_info is not None
    if rejected:
        return result(
            False,
            "the signature and chain verify, but firmware rejects the "
            "TimeStamp: " + "; ".join(rejected),
            verified,
            signer=signer_info,
            anchor=anchor_info,
            chain=chain_info,
            digest=digest,
        )
    via = (
        "the signer itself is trusted"
        if anchor_info.der == signer_info.der
        else f"chains to trusted {anchor_info.subject}"
    )
    return result(
        True,
        f"signed by {signer_info.subject} over {name!r} {vendor} attributes {verified:#x}; {via}",
        verified,
        signer=signer_info,
        anchor=anchor_info,
        chain=chain_info,
        digest=digest,
    )


# -- signing ----------------------------------------------------------------------------


def _load_key(key: PrivateKeyTypes | bytes) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import (
        load_der_private_key,
        load_pem_private_key,
    )

    if isinstance(key, bytes | bytearray | memoryview):
        raw = bytes(key)
        try:
            loaded: Any = (
                load_pem_private_key(raw, None)
                if b"-----BEGIN" in raw
                else load_der_private_key(raw, None)
            )
        except (ValueError, TypeError) as exc:
            raise UsageError(f"cannot load the private key: {exc}") from None
    else:
        loaded = key
    if not isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise UsageError(
            f"{type(loaded).__name__} keys cannot sign PKCS#7 here (RSA or EC only; "
            "firmware supports RSA)"
        )
    return loaded


def _load_cert(cert: bytes) -> Any:
    from cryptography import x509

    try:
        if b"-----BEGIN" in cert:
            return x509.load_pem_x509_certificate(cert)
        return x509.load_der_x509_certificate(cert)
    except ValueError as exc:
        raise UsageError(f"cannot load the signer certificate: {exc}") from None


def sign_auth(
    name: str,
    vendor: uuid.UUID,
    attributes: int,
    payload: bytes,
    key: PrivateKeyTypes | bytes,
    cert_der: bytes,
    *,
    timestamp: EfiTime | None = None,
    extra_certs: Sequence[bytes] = (),
    form: Form = "SignedData",
    signed_attributes: bool = False,
    digest: str = "sha256",
) -> bytes:
    """A signed .auth (EFI_VARIABLE_AUTHENTICATION_2 + ``payload``) for SetVariable(``name``,
    ``vendor``, ``attributes``).

    ``key`` is a cryptography private key or its PEM/DER bytes (unencrypted); ``cert_der``
    the signer certificate (DER, or PEM); ``extra_certs`` go into the PKCS#7 bag
    (intermediates). ``timestamp`` defaults to now in UTC. The PKCS#7 is made by
    cryptography's PKCS7SignatureBuilder: detached, binary, no S/MIME capabilities, and no
    authenticated attributes unless ``signed_attributes`` (then contentType, signingTime and
    messageDigest, like sbvarsign). With ``form="SignedData"`` (the default, what efitools'
    sign-efi-sig-list and Microsoft publish, accepted by every edk2) the ContentInfo wrapper
    is removed; ``"ContentInfo"`` keeps it. ``attributes`` must include
    TIME_BASED_AUTHENTICATED_WRITE_ACCESS (0x20) and are signed exactly as given, so an
    append update needs APPEND_WRITE (0x40) here too.
    """
    from asn1crypto import cms
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    if not attributes & TIME_BASED_AUTHENTICATED_WRITE_ACCESS:
        raise UsageError(
            f"attributes {attributes:#x} lack TIME_BASED_AUTHENTICATED_WRITE_ACCESS (0x20); "
            "a .auth is only meaningful for a time-based authenticated variable"
        )
    if form not in ("SignedData", "ContentInfo"):
        raise UsageError(f"form {form!r} is neither 'SignedData' nor 'ContentInfo'")
    if digest not in SIGNING_DIGESTS:
        raise UsageError(f"digest {digest!r} is not one of {', '.join(SIGNING_DIGESTS)}")
    when = EfiTime.now() if timestamp is None else timestamp
    rejected = when.firmware_rejections()
    if rejected:
        raise UsageError("firmware would reject this TimeStamp: " + "; ".join(rejected))
    content = signed_data_bytes(name, vendor, attributes, when, payload)
    private_key = _load_key(key)
    certificate = _load_cert(bytes(cert_der))
    algorithm: hashes.SHA256 | hashes.SHA384 | hashes.SHA512 = (
        hashes.SHA256()
        if digest == "sha256"
        else hashes.SHA384()
        if digest == "sha384"
        else hashes.SHA512()
    )
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content)
    builder = builder.add_signer(certificate, private_key, algorithm)
    for extra in extra_certs:
        builder = builder.add_certificate(_load_cert(bytes(extra)))
    options = [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]
    options.append(
        pkcs7.PKCS7Options.NoCapabilities if signed_attributes else pkcs7.PKCS7Options.NoAttributes
    )
    der = builder.sign(serialization.Encoding.DER, options)
    if form == "SignedData":
        # The explicit [0] tag of ContentInfo.content is not part of the SignedData.
        der = cms.ContentInfo.load(der)["content"].untag().dump()
    return AuthVariable2.build(when, der, payload).to_bytes()


# -- certificates in signature lists ----------------------------------------------------


def certificate_problems(db: SignatureDatabase) -> list[SignatureFormatError]:
    """One error per EFI_CERT_X509 entry of ``db`` that edk2 would refuse: not exactly one
    DER X.509 certificate, or a certificate without an RSA key (CheckSignatureListFormat
    extracts an RSA public key from each). Offsets point at the entry's data."""
    out = []
    for i, j, sl, entry in db.entries():
        if not sl.is_x509:
            continue
        where = f"EFI_SIGNATURE_LIST[{i}] entry {j} (X.509)"
        try:
            info = certificate_info(entry.data, structure=where, offset=entry.data_offset)
        except SignatureFormatError as exc:
            out.append(exc)
            continue
        if not info.key_type.startswith("RSA-"):
            out.append(
                SignatureFormatError(
                    f"{info.subject}: {info.key_type} key; edk2 accepts only RSA certificates here",
                    structure=where,
                    offset=entry.data_offset,
                )
            )
    return out


__all__ = [
    "AuthSignatureInfo",
    "AuthVerifyResult",
    "auth_signature_info",
    "certificate_problems",
    "empty_auth",
    "sign_auth",
    "verify_auth",
]
