"""Summaries of X.509 certificates: names, serial, validity, key, fingerprint.

Certificates are decoded with asn1crypto, which is lenient enough for the certificates found
in signature databases and Authenticode bags (Microsoft's lack extensions some validators
insist on). Distinguished names are written as RFC 4514 strings, most specific attribute
first ("CN=Microsoft Corporation UEFI CA 2011,O=Microsoft Corporation,...,C=US"), the form
``openssl x509 -nameopt RFC2253`` and cryptography's ``rfc4514_string()`` print.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from fwtools._base import digest
from fwtools._base.fileio import read_file
from fwtools._base.record import Record
from fwtools.errors import SignatureFormatError

if TYPE_CHECKING:
    from asn1crypto import x509 as asn1_x509

# RFC 4514 §3 names, plus the attribute names OpenSSL prints for the other common types.
_SHORT_NAMES: Final[dict[str, str]] = {
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "STREET",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "title",
    "2.5.4.42": "GN",
    "2.5.4.43": "initials",
    "2.5.4.46": "dnQualifier",
    "2.5.4.97": "organizationIdentifier",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
    "1.2.840.113549.1.9.1": "emailAddress",
}

_SIGNATURE_ALGORITHMS: Final[dict[str, str]] = {
    "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.10": "rsassaPss",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.113549.1.1.14": "sha224WithRSAEncryption",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10045.4.3.1": "ecdsa-with-SHA224",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.3.101.112": "ED25519",
    "1.3.101.113": "ED448",
}

_CURVES: Final[dict[str, str]] = {
    "secp256r1": "P256",
    "secp384r1": "P384",
    "secp521r1": "P521",
    "secp224r1": "P224",
    "secp192r1": "P192",
}

# What asn1crypto raises on malformed input (its parsing is lazy, so any field access may).
# AttributeError: asn1crypto's lazy ``Any.native`` fails with it when the DER holds a
# universal type asn1crypto has no native form for (REAL, ObjectDescriptor, ...) in a
# place it decodes generically (a Name's AttributeValue, a signed attribute value): found
# by fuzzing, issue 8, testdata/fuzz/{siglist,authvar}/crash-*.bin.
PARSE_ERRORS: Final = (ValueError, TypeError, KeyError, IndexError, OverflowError,
                       AttributeError)


def one_line(exc: BaseException) -> str:
    """``str(exc)`` on one line: asn1crypto's messages go on with "\n    while parsing ...",
    which broke the one-line error contract (issue 8)."""
    return " ".join(str(exc).split())


class CertificateInfo(Record):
    """What a report says about one certificate.

    ``serial`` is lower-case hex without separators; ``not_before``/``not_after`` are
    ISO 8601 UTC (``2011-06-27T21:22:45Z``); ``key_type`` is e.g. ``RSA-2048`` or
    ``EC-P256``; ``sha256`` is the hex SHA-256 of ``der``; ``is_ca`` is the basicConstraints
    cA flag, or None when the certificate has no basicConstraints extension.
    """

    subject: str
    issuer: str
    serial: str
    not_before: str
    not_after: str
    key_type: str
    signature_algorithm: str
    sha256: str
    der: bytes
    is_ca: bool | None

    @property
    def common_name(self) -> str | None:
        """The first CN of the subject, for short labels."""
        for part in _split_rdns(self.subject):
            if part.startswith("CN="):
                return _unescape(part[3:])
        return None


def _split_rdns(name: str) -> list[str]:
    parts, current, escaped = [], "", False
    for ch in name:
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\":
            current += ch
            escaped = True
        elif ch in ",+":
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out.append(chr(int(pair, 16)))
                i += 3
                continue
            out.append(value[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _escape(value: str) -> str:
    """RFC 4514 §2.4 escaping of an attribute value."""
    out = []
    for i, ch in enumerate(value):
        if ch in '"+,;<>\\' or (i == 0 and ch in "# ") or (i == len(value) - 1 and ch == " "):
            out.append("\\" + ch)
        elif ch == "\0":
            out.append("\\00")
        else:
            out.append(ch)
    return "".join(out)


def format_name(name: asn1_x509.Name) -> str:
    """An asn1crypto Name as an RFC 4514 string (last RDN first)."""
    rdns = []
    for rdn in reversed(list(name.chosen)):
        avas = []
        for ava in rdn:
            dotted = ava["type"].dotted
            try:
                value = ava["value"].native
            except PARSE_ERRORS:
                # asn1crypto fails on some malformed values (an AttributeValue whose Any
                # holds a REAL raises AttributeError): show it as unknown syntax (issue 8;
                # testdata/fuzz/siglist/crash-x509-name-real-*.bin).
                value = None
            key = _SHORT_NAMES.get(dotted, dotted)
            if isinstance(value, str):
                avas.append(f"{key}={_escape(value)}")
            else:
                # RFC 4514 §2.4: a value of unknown syntax is '#' and the hex of its DER.
                avas.append(f"{dotted}=#{ava['value'].dump().hex()}")
        rdns.append("+".join(avas))
    return ",".join(rdns)


def format_serial(serial: int) -> str:
    """A serial number as lower-case hex (a minus sign for the negative serials some CAs
    issued)."""
    return f"-{-serial:x}" if serial < 0 else f"{serial:x}"


def _iso(value: Any) -> str:
    # asn1crypto returns datetime, or its own extended_datetime for year 0; both have
    # these attributes, only the former has strftime.
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}Z"
    )


def _key_type(spki: Any) -> str:
    algorithm = spki.algorithm
    if algorithm in ("rsa", "rsassa_pss"):
        return f"RSA-{spki.bit_size}"
    if algorithm == "ec":
        _kind, curve = spki.curve
        curve_name = curve if isinstance(curve, str) else "explicit"
        return f"EC-{_CURVES.get(curve_name, curve_name)}"
    if algorithm == "dsa":
        return f"DSA-{spki.bit_size}"
    if algorithm in ("ed25519", "ed448"):
        return str(algorithm).capitalize()
    return str(spki["algorithm"]["algorithm"].dotted)


def certificate_info(
    der: bytes, *, structure: str = "X.509 certificate", offset: int | None = None
) -> CertificateInfo:
    """Summarise one DER certificate.

    Raises :class:`SignatureFormatError` (with ``structure`` and ``offset`` when given) if
    ``der`` is not exactly one DER-encoded X.509 certificate.
    """
    from asn1crypto import x509

    der = bytes(der)
    try:
        cert = x509.Certificate.load(der, strict=True)
        tbs = cert["tbs_certificate"]
        validity = tbs["validity"]
        bc = cert.basic_constraints_value
        return CertificateInfo(
            subject=format_name(tbs["subject"]),
            issuer=format_name(tbs["issuer"]),
            serial=format_serial(int(tbs["serial_number"].native)),
            not_before=_iso(validity["not_before"].native),
            not_after=_iso(validity["not_after"].native),
            key_type=_key_type(tbs["subject_public_key_info"]),
            signature_algorithm=_SIGNATURE_ALGORITHMS.get(
                cert["signature_algorithm"]["algorithm"].dotted,
                str(cert["signature_algorithm"]["algorithm"].dotted),
            ),
            sha256=digest.sha256_hex(der),
            der=der,
            is_ca=None if bc is None else bool(bc["ca"].native),
        )
    except PARSE_ERRORS as exc:
        raise SignatureFormatError(
            f"not a DER X.509 certificate: {one_line(exc)}", structure=structure, offset=offset
        ) from None


def load_certificates(path: str | os.PathLike[str]) -> list[bytes]:
    """The DER certificates in a PEM file (any number of CERTIFICATE blocks) or a DER file.

    Raises :class:`FwIOError` when the file cannot be read and :class:`SignatureFormatError`
    (naming the file) when it holds no certificate or a malformed one.
    """
    return certificates_from_bytes(read_file(path), os.fspath(path))


def certificates_from_bytes(data: bytes, name: str) -> list[bytes]:
    """:func:`load_certificates` on a file's content; ``name`` goes into errors."""
    # asn1crypto.pem.detect's test, made here: a DER certificate then never imports pem
    # (with textwrap and base64).
    if b"-----BEGIN" in data or b"---- BEGIN" in data:
        from asn1crypto import pem

        ders: list[bytes] = []
        try:
            for i, (label, _headers, body) in enumerate(pem.unarmor(data, multiple=True)):
                if label in ("CERTIFICATE", "X509 CERTIFICATE"):
                    certificate_info(body, structure=f"PEM block {i} ({label})")
                    ders.append(bytes(body))
        except SignatureFormatError as exc:
            raise exc.with_path(name) from None
        except PARSE_ERRORS as exc:
            raise SignatureFormatError(f"malformed PEM: {one_line(exc)}", path=name) from None
        if not ders:
            raise SignatureFormatError("PEM file holds no CERTIFICATE block", path=name)
        return ders
    try:
        certificate_info(data, offset=0)
    except SignatureFormatError as exc:
        raise exc.with_path(name) from None
    return [data]


def to_pem(der: bytes) -> bytes:
    """PEM armour for a DER certificate (64-column base64, as openssl writes it)."""
    import base64

    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


def filename_slug(subject: str) -> str:
    """A file-name-safe short form of a subject: its CN, else the whole name."""
    import re

    cn = re.search(r"CN=([^,]+)", subject)
    base = cn.group(1) if cn else subject
    # Leading/trailing dots and dashes go too, so that a CN of "." or ".." (or "-x") can
    # never make a special or option-like name on its own (issue 8 security review;
    # tests/reliability/test_hostile_names.py).
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._-")[:60].rstrip(".") or "cert"
