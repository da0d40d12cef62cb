"""Every kind of file fw-sigdb reads, turned into signature databases.

An input is an EFI signature list file (a db/dbx/KEK/MokList as stored in a variable), a
signed ``.auth`` update (EFI_VARIABLE_AUTHENTICATION_2 + lists), a PE image whose
``.vendor_cert`` section carries shim's built-in db/dbx, or PEM/DER certificates. It lives in
the crypto layer because certificates are decoded and .auth signatures described here.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING, Final, Literal

from fwtools._base.fileio import read_file
from fwtools._base.record import Record, field
from fwtools.errors import FwError, ParseError, SignatureFormatError
from fwtools.formats.efi import guids
from fwtools.formats.efi.siglist import FIXED_SIGNATURE_SIZE, SignatureDatabase, SignatureList

if TYPE_CHECKING:
    from fwtools.crypto.authvar import AuthSignatureInfo
    from fwtools.formats.efi.authvar import AuthVariable2

InputFormat = Literal["esl", "auth", "pe", "certificate"]
Role = Literal["db", "dbx"]
# Certificates given as plain files have no owner; they are shown with the nil GUID.
NO_OWNER: Final = guids.NIL
# Signature types a signature-list file can start with; a DER certificate starts with 0x30,
# and no PE image with MZ, which none of their first GUID bytes is.
_LIST_TYPES: Final = frozenset(FIXED_SIGNATURE_SIZE) | {guids.CERT_X509, guids.CERT_X509_SM3}


class SigdbInput(Record, frozen=False):
    """One input file: its databases by role, and for .auth files the signature."""

    path: str
    format: InputFormat
    databases: list[tuple[Role, SignatureDatabase]] = field(default_factory=list)
    auth: AuthVariable2 | None = None
    auth_info: AuthSignatureInfo | None = None
    auth_error: str | None = None

    @property
    def database(self) -> SignatureDatabase:
        """All lists of the input in one database (db and dbx halves of a PE concatenated)."""
        lists: list[SignatureList] = []
        for _role, db in self.databases:
            lists.extend(db.lists)
        return SignatureDatabase(tuple(lists))


def certificate_list(der: bytes, owner: uuid.UUID = NO_OWNER) -> SignatureDatabase:
    return SignatureDatabase(()).add_certificate(der, owner)


def _load_pe(path: str, data: bytes) -> SigdbInput:
    from fwtools.formats.pe.image import PeImage
    from fwtools.formats.pe.special import decode_section

    image = PeImage(data, path)
    section = image.section(".vendor_cert")
    if section is None:
        raise SignatureFormatError(
            "PE image has no .vendor_cert section", structure="PE sections", path=path
        )
    decoded, error = decode_section(section.name, image.section_data(section), section.raw_offset)
    if error is not None or decoded is None:
        raise SignatureFormatError(
            error or "undecodable .vendor_cert", structure=".vendor_cert", path=path
        )
    db = SignatureDatabase(tuple(getattr(decoded, "db_lists", ())))
    for der in getattr(decoded, "certificates", ()):
        # shim's VENDOR_CERT_FILE is a bare certificate; it acts like a one-entry db.
        db = db.add_certificate(der, guids.SHIM_LOCK)
    dbx = SignatureDatabase(tuple(getattr(decoded, "dbx_lists", ())))
    return SigdbInput(path, "pe", [("db", db), ("dbx", dbx)])


def load_input(path: str | os.PathLike[str], *, describe: bool = True) -> SigdbInput:
    """Read and classify one input; raises FwError (with file and offset) when malformed.

    ``describe`` decodes a .auth file's PKCS#7 (signers, certificates) for display; a
    verification does its own decoding and skips it.
    """
    from fwtools.formats.efi.authvar import AuthVariable2

    name = os.fspath(path)
    data = read_file(path)
    try:
        kind = sniff_format(data)
        if kind == "pe":
            return _load_pe(name, data)
        if kind == "auth":
            auth = AuthVariable2.parse(data)
            db = SignatureDatabase.parse(auth.payload, base=auth.payload_offset)
            result = SigdbInput(name, "auth", [("db", db)], auth=auth)
            if describe:
                from fwtools.crypto.authvar import auth_signature_info

                try:
                    result.auth_info = auth_signature_info(auth)
                except FwError as exc:
                    result.auth_error = str(exc)
            return result
        if kind == "certificate":
            from fwtools.crypto.x509info import certificates_from_bytes

            db = SignatureDatabase(())
            for der in certificates_from_bytes(data, name):
                db = db.add_certificate(der, NO_OWNER)
            return SigdbInput(name, "certificate", [("db", db)])
        return SigdbInput(name, "esl", [("db", SignatureDatabase.parse(data))])
    except ParseError as exc:
        raise exc.with_path(name) from None


def sniff_format(data: bytes, fallback: InputFormat = "esl") -> InputFormat:
    """Which kind of input ``data`` is, from its first bytes: a PE image (``MZ``), a signed
    update (a well-formed EFI_VARIABLE_AUTHENTICATION_2 header), signature lists (a known
    signature type first), PEM or DER certificates; else ``fallback``, the kind whose
    parser best says what is wrong (signature lists of unknown types are valid too)."""
    from fwtools.formats.efi.authvar import is_auth_payload

    if data[:2] == b"MZ":
        return "pe"
    if is_auth_payload(data):
        return "auth"
    if len(data) >= 16 and uuid.UUID(bytes_le=data[:16]) in _LIST_TYPES:
        return "esl"
    if _looks_like_certificate(data):
        return "certificate"
    return fallback


def _looks_like_certificate(data: bytes) -> bool:
    """PEM armour, or DER that starts like a SEQUENCE with a long length (a certificate).

    A signature list starts with a type GUID, and none of the known ones begins with 0x30.
    """
    if b"-----BEGIN" in data[:4096]:
        return True
    return len(data) > 4 and data[0] == 0x30 and data[1] in (0x82, 0x83)
