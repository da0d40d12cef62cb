"""Authenticode signatures: the PKCS#7 SignedData in a PE image's certificate table.

References: Microsoft, "Windows Authenticode Portable Executable Signature Format";
RFC 2315 (PKCS #7 v1.5) §9; edk2 CryptoPkg AuthenticodeVerify and Pkcs7Verify.

An Authenticode signature is a PKCS#7 SignedData whose content is an
SpcIndirectDataContent carrying the image digest. Its single SignerInfo signs the DER of the
authenticated attributes, and their messageDigest attribute is the digest of the
SpcIndirectDataContent's *value octets* (without its SEQUENCE tag and length: an Authenticode
quirk that sbverify's IDC_get and edk2 reproduce).

asn1crypto and cryptography are imported inside the functions that need them, so importing
this module costs nothing until a signature is parsed.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from typing import Any, Final

from fwtools._base.record import Record, field
from fwtools.crypto.pkcs7 import (
    PKCS9_CONTENT_TYPE,
    PKCS9_MESSAGE_DIGEST,
    content_signed_data,
    find_signer,
    malformed_der,
    verify_signer_info,
)
from fwtools.crypto.x509info import CertificateInfo, certificate_info, format_name, format_serial
from fwtools.errors import FwError, SignatureFormatError
from fwtools.formats.pe import wincert_layout
from fwtools.formats.pe.authenticode import authenticode_digests
from fwtools.formats.pe.image import PeImage
from fwtools.formats.pe.wincert import WinCertificate, scan_certificate_entries

SPC_INDIRECT_DATA: Final = "1.3.6.1.4.1.311.2.1.4"
# Unauthenticated attribute holding further, complete SignedData blobs (signtool /as,
# osslsigncode -nest).
SPC_NESTED_SIGNATURE: Final = "1.3.6.1.4.1.311.2.4.1"

# Nested signatures can nest again; real files go one level deep.
_MAX_NESTING: Final = 4


class AuthenticodeSignature(Record, frozen=False):
    """One Authenticode signature, as parsed and (optionally) checked against the image.

    ``signer`` is the certificate the SignerInfo's sid names, found in the PKCS#7 bag (None
    when absent; ``signer_issuer``/``signer_serial`` come from the sid either way).
    ``signature_valid`` is True when the SignerInfo signature verifies with the signer's key
    *and* the messageDigest attribute is the digest of the SpcIndirectDataContent; None when
    it could not be checked (no signer certificate, unsupported key). ``computed_digest`` and
    ``digest_matches`` compare the image's Authenticode digest (of ``digest_algorithm``)
    with ``signed_digest``; they are None until :func:`image_signatures` fills them.
    ``error`` explains anything that went wrong; a signature that could not be parsed at all
    has it set and empty fields.
    """

    index: int
    offset: int
    digest_algorithm: str
    signed_digest: bytes
    signer: CertificateInfo | None
    signer_issuer: str
    signer_serial: str
    certificates: list[CertificateInfo]
    signature_valid: bool | None
    computed_digest: bytes | None = None
    digest_matches: bool | None = None
    nested: list[AuthenticodeSignature] = field(default_factory=list)
    error: str | None = None

    @property
    def subject(self) -> str:
        """The signer certificate's subject, or "" when the certificate is missing."""
        return self.signer.subject if self.signer else ""

    @property
    def issuer(self) -> str:
        """The signer's issuer as the SignerInfo names it."""
        return self.signer_issuer

    def all_signatures(self) -> list[AuthenticodeSignature]:
        """This signature followed by its nested signatures, depth first."""
        out = [self]
        for sig in self.nested:
            out.extend(sig.all_signatures())
        return out


def _failed(index: int, offset: int, error: str) -> AuthenticodeSignature:
    return AuthenticodeSignature(
        index=index,
        offset=offset,
        digest_algorithm="",
        signed_digest=b"",
        signer=None,
        signer_issuer="",
        signer_serial="",
        certificates=[],
        signature_valid=None,
        error=error,
    )


@functools.cache
def _spc_indirect_data_content() -> Any:
    """The asn1crypto spec of SpcIndirectDataContent (built on first use, see module doc)."""
    from asn1crypto import algos, core

    # asn1crypto ships no type stubs, so its base classes are Any to mypy.
    class SpcAttributeTypeAndOptionalValue(core.Sequence):  # type: ignore[misc]
        _fields = [  # noqa: RUF012 - asn1crypto's declarative spec
            ("type", core.ObjectIdentifier),
            ("value", core.Any, {"optional": True}),
        ]

    class SpcIndirectDataContent(core.Sequence):  # type: ignore[misc]
        _fields = [  # noqa: RUF012
            ("data", SpcAttributeTypeAndOptionalValue),
            ("message_digest", algos.DigestInfo),
        ]

    return SpcIndirectDataContent


def parse_authenticode(
    content: bytes, *, index: int = 0, offset: int = 0, check: bool = True
) -> AuthenticodeSignature:
    """Parse one Authenticode PKCS#7 SignedData blob (trailing zero padding is allowed).

    ``index`` and ``offset`` locate the WIN_CERTIFICATE the blob came from and are copied
    into the result and into errors. The SignerInfo is verified against the signer
    certificate from the bag; comparing with the image digest is left to
    :func:`image_signatures`. Raises :class:`SignatureFormatError` when the blob is not a
    PKCS#7 SignedData carrying an SpcIndirectDataContent. With ``check=False`` the
    SignerInfo signature is not verified (``signature_valid`` stays None), which spares
    loading cryptography when only the contents are wanted.
    """
    return _parse(content, index, offset, 0, check)


def _parse(
    content: bytes, index: int, offset: int, depth: int, check: bool = True
) -> AuthenticodeSignature:
    from asn1crypto import cms, x509

    structure = f"WIN_CERTIFICATE[{index}] PKCS#7"
    with malformed_der("malformed PKCS#7 SignedData", structure=structure, offset=offset):
        info = cms.ContentInfo.load(bytes(content))
        signed_data = content_signed_data(info, structure=structure, offset=offset)
        encap = signed_data["encap_content_info"]
        if encap["content_type"].dotted != SPC_INDIRECT_DATA:
            raise SignatureFormatError(
                f"signed content type {encap['content_type'].dotted} is not "
                "SpcIndirectDataContent (not Authenticode)",
                structure=structure,
                offset=offset,
            )
        raw = encap["content"].dump()
        if not raw:
            raise SignatureFormatError(
                "SignedData has no SpcIndirectDataContent", structure=structure, offset=offset
            )
        # PKCS#7 v1.5 puts the content itself under [0] EXPLICIT (CMS would wrap it in an
        # OCTET STRING); asn1crypto hands it over as an Any, tag included.
        idc = _spc_indirect_data_content().load(raw, explicit=0)
        digest_info = idc["message_digest"]
        # asn1crypto names digests as hashlib does ("sha256"); unknown ones stay dotted.
        digest_algorithm = str(digest_info["digest_algorithm"]["algorithm"].native)
        signed_digest = bytes(digest_info["digest"].native)
        idc_value = bytes(idc.contents)
        signer_infos = signed_data["signer_infos"]
        if len(signer_infos) == 0:
            raise SignatureFormatError(
                "SignedData has no SignerInfo", structure=structure, offset=offset
            )
        signer_info = signer_infos[0]
        sid = signer_info["sid"]

        errors: list[str] = []
        if len(signer_infos) > 1:
            errors.append(f"{len(signer_infos)} SignerInfos; Authenticode uses the first only")
        bag: list[tuple[Any, CertificateInfo]] = []
        for i, choice in enumerate(signed_data["certificates"] or []):
            if choice.name != "certificate":
                continue
            der = choice.chosen.dump()
            try:
                bag.append((x509.Certificate.load(der), certificate_info(der)))
            except SignatureFormatError as exc:
                errors.append(f"certificate {i} in the bag: {exc.message}")

        if sid.name == "issuer_and_serial_number":
            signer_issuer = format_name(sid.chosen["issuer"])
            signer_serial = format_serial(int(sid.chosen["serial_number"].native))
        else:
            signer_issuer, signer_serial = "", ""
        found = find_signer(sid, [cert for cert, _cinfo in bag])
        signer_cert = bag[found] if found is not None else None

        valid: bool | None = None
        if signer_cert is None:
            errors.append("the signer's certificate is not in the signature")
        elif check:
            spki = signer_cert[0]["tbs_certificate"]["subject_public_key_info"].dump()
            valid, why = verify_signer_info(
                signer_info, spki, idc_value, content_type=SPC_INDIRECT_DATA
            )
            if why:
                errors.append(why)

        nested: list[AuthenticodeSignature] = []
        for attr in signer_info["unsigned_attrs"] or []:
            if attr["type"].dotted != SPC_NESTED_SIGNATURE:
                continue
            for value in attr["values"]:
                if depth >= _MAX_NESTING:
                    errors.append("nested signatures nest too deep; ignoring the rest")
                    break
                try:
                    nested.append(_parse(value.dump(), index, offset, depth + 1, check))
                except SignatureFormatError as exc:
                    nested.append(_failed(index, offset, f"nested signature: {exc.message}"))
    return AuthenticodeSignature(
        index=index,
        offset=offset,
        digest_algorithm=digest_algorithm,
        signed_digest=signed_digest,
        signer=signer_cert[1] if signer_cert else None,
        signer_issuer=signer_issuer,
        signer_serial=signer_serial,
        certificates=[cinfo for _cert, cinfo in bag],
        signature_valid=valid,
        nested=nested,
        error="; ".join(errors) or None,
    )


def _entry_blob(entry: WinCertificate) -> bytes | str:
    """The PKCS#7 bytes of an entry, or why the entry holds none."""
    if entry.cert_type == wincert_layout.WIN_CERT_TYPE_PKCS_SIGNED_DATA:
        return entry.content
    if entry.cert_type == wincert_layout.WIN_CERT_TYPE_EFI_GUID:
        # WIN_CERTIFICATE_UEFI_GUID: CertType GUID, then the data; edk2 accepts PKCS#7 here.
        # (The GUID registry loads only for this rare form: signed PEs carry PKCS#7 as is.)
        from fwtools.formats.efi import guids

        if len(entry.content) >= 16 and uuid.UUID(bytes_le=entry.content[:16]) == (
            guids.CERT_TYPE_PKCS7
        ):
            return entry.content[16:]
        return "WIN_CERTIFICATE_UEFI_GUID whose CertType is not EFI_CERT_TYPE_PKCS7_GUID"
    return f"WIN_CERTIFICATE type {entry.type_name} is not an Authenticode signature"


def image_signatures(
    img: PeImage, digests: dict[str, bytes] | None = None, *, check: bool = True
) -> list[AuthenticodeSignature]:
    """Every signature in the image's certificate table, checked against the image digest.

    One result per WIN_CERTIFICATE, in table order. ``digests`` may carry precomputed
    Authenticode digests (from :func:`authenticode_digests`); the algorithms the signatures
    need and that are missing are computed in one pass. An entry that cannot be parsed, or a
    malformed table entry, yields a result with ``error`` set instead of stopping the
    others. ``check`` is passed on to :func:`parse_authenticode`.
    """
    entries, table_error = scan_certificate_entries(img)
    sigs: list[AuthenticodeSignature] = []
    for entry in entries:
        blob = _entry_blob(entry)
        if isinstance(blob, str):
            sigs.append(_failed(entry.index, entry.offset, blob))
            continue
        try:
            sigs.append(
                parse_authenticode(blob, index=entry.index, offset=entry.offset, check=check)
            )
        except SignatureFormatError as exc:
            sigs.append(_failed(entry.index, entry.offset, str(exc)))
    if table_error is not None:
        sigs.append(_failed(len(entries), table_error.offset or 0, str(table_error)))

    everything = [s for sig in sigs for s in sig.all_signatures()]
    have = dict(digests or {})
    wanted = {s.digest_algorithm for s in everything if s.digest_algorithm} - set(have)
    computable = []
    for name in sorted(wanted):
        try:
            hashlib.new(name)
        except ValueError:
            continue
        computable.append(name)
    if computable:
        try:
            have.update(authenticode_digests(img, computable))
        except FwError as exc:
            for s in everything:
                s.error = f"{s.error}; " if s.error else ""
                s.error += f"image digest: {exc}"
            return sigs
    for s in everything:
        computed = have.get(s.digest_algorithm)
        if computed is None:
            if s.digest_algorithm:
                note = f"cannot compute a {s.digest_algorithm} image digest"
                s.error = f"{s.error}; {note}" if s.error else note
            continue
        s.computed_digest = computed
        s.digest_matches = computed == s.signed_digest
    return sigs


__all__ = [
    "PKCS9_CONTENT_TYPE",
    "PKCS9_MESSAGE_DIGEST",
    "SPC_INDIRECT_DATA",
    "SPC_NESTED_SIGNATURE",
    "AuthenticodeSignature",
    "image_signatures",
    "parse_authenticode",
]
