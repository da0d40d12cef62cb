"""Authenticated-variable payloads: EFI_VARIABLE_AUTHENTICATION_2 (".auth" files).

References: UEFI 2.10 §8.2.2 (SetVariable, EFI_VARIABLE_AUTHENTICATION_2) and §32.2.4
(WIN_CERTIFICATE_UEFI_GUID); edk2 MdePkg/Include/Uefi/UefiMultiPhase.h, WinCertificate.h,
SecurityPkg/Library/AuthVariableLib/AuthService.c (VerifyTimeBasedPayload) and
MdeModulePkg/Universal/Variable/RuntimeDxe/Variable.c (the dwLength checks).

Layout of a .auth (what is passed as SetVariable's Data)::

    0    EFI_TIME TimeStamp (16)
    16   WIN_CERTIFICATE_UEFI_GUID: dwLength u32 (= 24 + PKCS#7 length), wRevision u16
         (0x0200), wCertificateType u16 (0x0EF1, WIN_CERT_TYPE_EFI_GUID),
         CertType GUID (EFI_CERT_TYPE_PKCS7_GUID)
    40   PKCS#7 SignedData, DER (dwLength - 24 bytes; bare SignedData or a ContentInfo)
    16 + dwLength   the new variable data (signature lists for PK/KEK/db/dbx), no padding

The PKCS#7 signs :func:`signed_data_bytes`: the variable name in UCS-2 without its NUL, the
vendor GUID, the attributes exactly as passed to SetVariable (APPEND_WRITE included), the
TimeStamp and the data. This module only handles bytes; the signature is parsed, verified
and made in :mod:`fwtools.crypto.authvar`.
"""

from __future__ import annotations

import struct
import uuid
from typing import Final

from fwtools._base.efitime import EfiTime
from fwtools._base.flags import bit_names
from fwtools._base.guid import GUID_SIZE, guid_from_bytes
from fwtools._base.record import Record
from fwtools.errors import SignatureFormatError, TruncatedError, UsageError
from fwtools.formats.efi import guids
from fwtools.formats.pe.wincert_layout import (
    WIN_CERT_REVISION_2_0,
    WIN_CERT_TYPE_EFI_GUID,
    WIN_CERT_TYPES,
    WIN_CERTIFICATE,
)

# -- attributes (UEFI 2.10 §8.2, UefiMultiPhase.h) -------------------------------------

NON_VOLATILE: Final = 0x01
BOOTSERVICE_ACCESS: Final = 0x02
RUNTIME_ACCESS: Final = 0x04
HARDWARE_ERROR_RECORD: Final = 0x08
AUTHENTICATED_WRITE_ACCESS: Final = 0x10
TIME_BASED_AUTHENTICATED_WRITE_ACCESS: Final = 0x20
APPEND_WRITE: Final = 0x40
ENHANCED_AUTHENTICATED_ACCESS: Final = 0x80
# NV | BS | RT | TIME_BASED_AUTH: what PK, KEK, db, dbx, dbt are stored with.
SECURE_BOOT_ATTRIBUTES: Final = 0x27

# Full names (without the EFI_VARIABLE_ prefix) and the short forms tools print.
ATTRIBUTE_NAMES: Final[dict[int, str]] = {
    NON_VOLATILE: "NON_VOLATILE",
    BOOTSERVICE_ACCESS: "BOOTSERVICE_ACCESS",
    RUNTIME_ACCESS: "RUNTIME_ACCESS",
    HARDWARE_ERROR_RECORD: "HARDWARE_ERROR_RECORD",
    AUTHENTICATED_WRITE_ACCESS: "AUTHENTICATED_WRITE_ACCESS",
    TIME_BASED_AUTHENTICATED_WRITE_ACCESS: "TIME_BASED_AUTHENTICATED_WRITE_ACCESS",
    APPEND_WRITE: "APPEND_WRITE",
    ENHANCED_AUTHENTICATED_ACCESS: "ENHANCED_AUTHENTICATED_ACCESS",
}
ATTRIBUTE_SHORT_NAMES: Final[dict[int, str]] = {
    NON_VOLATILE: "NV",
    BOOTSERVICE_ACCESS: "BS",
    RUNTIME_ACCESS: "RT",
    HARDWARE_ERROR_RECORD: "HR",
    AUTHENTICATED_WRITE_ACCESS: "AW",
    TIME_BASED_AUTHENTICATED_WRITE_ACCESS: "AT",
    APPEND_WRITE: "AP",
    ENHANCED_AUTHENTICATED_ACCESS: "EA",
}


def attribute_names(attributes: int, *, short: bool = False) -> list[str]:
    """The names of the set bits, lowest first; unknown bits as hex (``0x100``)."""
    return bit_names(attributes & 0xFFFFFFFF, ATTRIBUTE_SHORT_NAMES if short else ATTRIBUTE_NAMES)


def parse_attributes(text: str) -> int:
    """Attributes from text: a number (``0x27``, ``39``) or names joined by ``|`` or ``,``
    (``NV|BS|RT|AT``, ``NON_VOLATILE,APPEND_WRITE``, optionally with the ``EFI_VARIABLE_``
    prefix). Raises :class:`UsageError`."""
    value = text.strip()
    try:
        number = int(value, 0)
    except ValueError:
        pass
    else:
        if not 0 <= number <= 0xFFFFFFFF:
            raise UsageError(f"attributes {text!r} do not fit in 32 bits")
        return number
    by_name = {n: v for v, n in ATTRIBUTE_NAMES.items()}
    by_name.update({n: v for v, n in ATTRIBUTE_SHORT_NAMES.items()})
    result = 0
    for raw in value.replace(",", "|").split("|"):
        name = raw.strip().upper().removeprefix("EFI_VARIABLE_")
        if name not in by_name:
            raise UsageError(f"unknown variable attribute {raw.strip()!r} in {text!r}")
        result |= by_name[name]
    return result


# -- variable presets -------------------------------------------------------------------


class VariablePreset(Record):
    """What fwtools assumes about a well-known variable.

    ``vendor`` is its VendorGuid. ``attributes`` are those a signed (.auth) update of it is
    made and verified with. ``stored_attributes`` are those the owner of the variable
    actually gives it: the same for the Secure Boot databases, but NV|BS (0x03) for shim's
    MokList, MokListX, MokListTrusted and SbatLevel (shim ``MokVars.txt``,
    ``include/sbat.h`` SBAT_VAR_ATTRS), which are not time-authenticated: shim protects them
    by creating them only before ExitBootServices, and never checks a .auth.

    "MOK-style" signing therefore means: a .auth for an authenticated variable *shaped like*
    a MOK variable (shim's GUID, the usual name, signature lists as data) with attributes
    0x27 (NV|BS|RT|TIME_BASED_AUTH), for firmware or tooling that treats it as a private
    authenticated variable (edk2 binds such a variable to its first signer via certdb).
    Writing a real MokList for shim is a plain NV|BS variable (fw-vars), not a .auth.
    """

    name: str
    vendor: uuid.UUID
    attributes: int
    stored_attributes: int
    signature_database: bool = True


_PRESET_LIST: Final = (
    VariablePreset("PK", guids.EFI_GLOBAL_VARIABLE, 0x27, 0x27),
    VariablePreset("KEK", guids.EFI_GLOBAL_VARIABLE, 0x27, 0x27),
    VariablePreset("db", guids.EFI_IMAGE_SECURITY_DATABASE, 0x27, 0x27),
    VariablePreset("dbx", guids.EFI_IMAGE_SECURITY_DATABASE, 0x27, 0x27),
    VariablePreset("dbt", guids.EFI_IMAGE_SECURITY_DATABASE, 0x27, 0x27),
    VariablePreset("dbr", guids.EFI_IMAGE_SECURITY_DATABASE, 0x27, 0x27),
    VariablePreset("MokList", guids.SHIM_LOCK, 0x27, 0x03),
    VariablePreset("MokListX", guids.SHIM_LOCK, 0x27, 0x03),
    VariablePreset("MokListTrusted", guids.SHIM_LOCK, 0x27, 0x03),
    VariablePreset("SbatLevel", guids.SHIM_LOCK, 0x27, 0x03, signature_database=False),
)
PRESETS: Final[dict[str, VariablePreset]] = {p.name: p for p in _PRESET_LIST}


def variable_preset(name: str) -> VariablePreset:
    """The preset for a well-known variable name (exact case, as firmware compares names);
    :class:`UsageError` naming the known ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        hint = next((p.name for p in _PRESET_LIST if p.name.lower() == name.lower()), None)
        extra = f" (did you mean {hint}?)" if hint else ""
        raise UsageError(
            f"no defaults for variable {name!r}{extra}; known: {', '.join(PRESETS)}; "
            "give the vendor GUID and attributes explicitly"
        ) from None


def variable_defaults(name: str) -> tuple[uuid.UUID, int]:
    """(VendorGuid, attributes) to sign and verify an update of a well-known variable with:
    PK and KEK -> EFI_GLOBAL_VARIABLE, 0x27; db, dbx, dbt, dbr -> EFI_IMAGE_SECURITY_DATABASE,
    0x27; MokList, MokListX, MokListTrusted, SbatLevel -> SHIM_LOCK, 0x27 ("MOK-style", see
    :class:`VariablePreset` for why shim itself stores them as 0x03). APPEND_WRITE is not
    included; add :data:`APPEND_WRITE` for an append update."""
    preset = variable_preset(name)
    return preset.vendor, preset.attributes


# -- EFI_VARIABLE_AUTHENTICATION_2 ------------------------------------------------------

TIMESTAMP_OFFSET: Final = 0
WIN_CERTIFICATE_OFFSET: Final = EfiTime.SIZE
CERT_TYPE_GUID_OFFSET: Final = WIN_CERTIFICATE_OFFSET + WIN_CERTIFICATE.size
PKCS7_OFFSET: Final = CERT_TYPE_GUID_OFFSET + GUID_SIZE
# dwLength counts the WIN_CERTIFICATE header and the CertType GUID: OFFSET_OF
# (WIN_CERTIFICATE_UEFI_GUID, CertData) in edk2.
WIN_CERTIFICATE_UEFI_GUID_HEADER: Final = PKCS7_OFFSET - WIN_CERTIFICATE_OFFSET
AUTH2_HEADER_SIZE: Final = PKCS7_OFFSET


def auth_header_size(data: bytes | memoryview) -> int:
    """Size of the EFI_VARIABLE_AUTHENTICATION_2 header (TimeStamp + WIN_CERTIFICATE_UEFI_GUID
    with the PKCS#7 CertType, 16 + dwLength) at the start of ``data``, or 0 when there is no
    well-formed one. Cheap: reads 40 bytes and never raises."""
    if len(data) < AUTH2_HEADER_SIZE:
        return 0
    length, _revision, cert_type = WIN_CERTIFICATE.unpack_from(data, WIN_CERTIFICATE_OFFSET)
    if cert_type != WIN_CERT_TYPE_EFI_GUID:
        return 0
    if bytes(data[CERT_TYPE_GUID_OFFSET:PKCS7_OFFSET]) != guids.CERT_TYPE_PKCS7.bytes_le:
        return 0
    if length < WIN_CERTIFICATE_UEFI_GUID_HEADER or WIN_CERTIFICATE_OFFSET + length > len(data):
        return 0
    return WIN_CERTIFICATE_OFFSET + int(length)


def is_auth_payload(data: bytes | memoryview) -> bool:
    """Whether ``data`` starts with an EFI_VARIABLE_AUTHENTICATION_2 header (a .auth file)
    rather than a signature list. Unambiguous: in a signature list the bytes where
    wCertificateType would be are the top of SignatureHeaderSize, never 0x0EF1 in a list
    that fits in memory."""
    return auth_header_size(data) > 0


def signed_data_bytes(
    name: str, vendor: uuid.UUID, attributes: int, timestamp: EfiTime, payload: bytes
) -> bytes:
    """The bytes the PKCS#7 of a .auth signs, and firmware verifies (UEFI 2.10 §8.2.2,
    ``AuthService.c:VerifyTimeBasedPayload``): VariableName as UCS-2LE without the NUL,
    VendorGuid, Attributes (u32, exactly as passed to SetVariable, APPEND_WRITE included),
    TimeStamp, data."""
    return (
        encode_variable_name(name)
        + vendor.bytes_le
        + struct.pack("<I", attributes)
        + timestamp.to_bytes()
        + bytes(payload)
    )


def encode_variable_name(name: str) -> bytes:
    """``name`` as UCS-2LE without a terminating NUL; :class:`UsageError` when it is empty,
    contains a NUL or a character outside the Basic Multilingual Plane."""
    if not name or "\0" in name or any(ord(c) > 0xFFFF or 0xD800 <= ord(c) <= 0xDFFF for c in name):
        raise UsageError(f"variable name {name!r} is not a non-empty UCS-2 string")
    return name.encode("utf-16-le")


class AuthVariable2(Record):
    """A parsed EFI_VARIABLE_AUTHENTICATION_2 and the variable data after it.

    ``pkcs7`` is the CertData (dwLength - 24 bytes, possibly empty for an unsigned header);
    ``pkcs7_offset`` and ``payload_offset`` are absolute (``base`` added). ``revision`` is
    kept as found (edk2 does not check it; :meth:`problems` notes a value other than
    0x0200).
    """

    timestamp: EfiTime
    revision: int
    cert_type: int
    cert_guid: uuid.UUID
    pkcs7: bytes
    payload: bytes
    pkcs7_offset: int = PKCS7_OFFSET
    payload_offset: int = PKCS7_OFFSET

    @classmethod
    def parse(cls, data: bytes | memoryview, *, base: int = 0) -> AuthVariable2:
        """Parse a .auth blob. ``base`` is its absolute offset, used in errors and offsets.

        Raises :class:`TruncatedError` when the header is cut short and
        :class:`SignatureFormatError` for a wCertificateType other than
        WIN_CERT_TYPE_EFI_GUID, a CertType other than EFI_CERT_TYPE_PKCS7_GUID, or a
        dwLength below 24 or past the end of the data (the checks edk2's SetVariable makes
        before it looks at the signature).
        """
        if len(data) < EfiTime.SIZE:
            raise TruncatedError(
                f"needs {EfiTime.SIZE} bytes for the TimeStamp, only {len(data)} available",
                structure="EFI_VARIABLE_AUTHENTICATION_2.TimeStamp",
                offset=base,
            )
        timestamp = EfiTime.from_bytes(data, TIMESTAMP_OFFSET, base=base)
        if len(data) < AUTH2_HEADER_SIZE:
            raise TruncatedError(
                f"needs {AUTH2_HEADER_SIZE} bytes for TimeStamp and WIN_CERTIFICATE_UEFI_GUID, "
                f"only {len(data)} available",
                structure="EFI_VARIABLE_AUTHENTICATION_2.AuthInfo",
                offset=base + WIN_CERTIFICATE_OFFSET,
            )
        length, revision, cert_type = WIN_CERTIFICATE.unpack_from(data, WIN_CERTIFICATE_OFFSET)
        if cert_type != WIN_CERT_TYPE_EFI_GUID:
            name = WIN_CERT_TYPES.get(cert_type, "unknown")
            raise SignatureFormatError(
                f"wCertificateType {cert_type:#06x} ({name}) is not WIN_CERT_TYPE_EFI_GUID "
                f"({WIN_CERT_TYPE_EFI_GUID:#06x})",
                structure="WIN_CERTIFICATE_UEFI_GUID.Hdr.wCertificateType",
                offset=base + WIN_CERTIFICATE_OFFSET + 6,
            )
        cert_guid = guid_from_bytes(data, CERT_TYPE_GUID_OFFSET)
        if cert_guid != guids.CERT_TYPE_PKCS7:
            raise SignatureFormatError(
                f"CertType {cert_guid} ({guids.guid_name(cert_guid) or 'unknown'}) is not "
                f"EFI_CERT_TYPE_PKCS7_GUID ({guids.CERT_TYPE_PKCS7})",
                structure="WIN_CERTIFICATE_UEFI_GUID.CertType",
                offset=base + CERT_TYPE_GUID_OFFSET,
            )
        if length < WIN_CERTIFICATE_UEFI_GUID_HEADER:
            raise SignatureFormatError(
                f"dwLength {length} is smaller than the {WIN_CERTIFICATE_UEFI_GUID_HEADER}-byte "
                "WIN_CERTIFICATE_UEFI_GUID header",
                structure="WIN_CERTIFICATE_UEFI_GUID.Hdr.dwLength",
                offset=base + WIN_CERTIFICATE_OFFSET,
            )
        end = WIN_CERTIFICATE_OFFSET + length
        if end > len(data):
            raise SignatureFormatError(
                f"dwLength {length:#x} runs {end - len(data):#x} bytes past the end of the "
                f"{len(data):#x}-byte data",
                structure="WIN_CERTIFICATE_UEFI_GUID.Hdr.dwLength",
                offset=base + WIN_CERTIFICATE_OFFSET,
            )
        return cls(
            timestamp=timestamp,
            revision=revision,
            cert_type=cert_type,
            cert_guid=cert_guid,
            pkcs7=bytes(data[PKCS7_OFFSET:end]),
            payload=bytes(data[end:]),
            pkcs7_offset=base + PKCS7_OFFSET,
            payload_offset=base + end,
        )

    @classmethod
    def build(
        cls,
        timestamp: EfiTime,
        pkcs7: bytes,
        payload: bytes,
        *,
        revision: int = WIN_CERT_REVISION_2_0,
    ) -> AuthVariable2:
        """A header around ``pkcs7`` (empty for an unsigned one) and ``payload``."""
        return cls(
            timestamp=timestamp,
            revision=revision,
            cert_type=WIN_CERT_TYPE_EFI_GUID,
            cert_guid=guids.CERT_TYPE_PKCS7,
            pkcs7=bytes(pkcs7),
            payload=bytes(payload),
            pkcs7_offset=PKCS7_OFFSET,
            payload_offset=PKCS7_OFFSET + len(pkcs7),
        )

    @property
    def dw_length(self) -> int:
        """WIN_CERTIFICATE.dwLength: 24 + the PKCS#7 length."""
        return WIN_CERTIFICATE_UEFI_GUID_HEADER + len(self.pkcs7)

    @property
    def header_size(self) -> int:
        """Bytes before the payload (16 + dwLength)."""
        return WIN_CERTIFICATE_OFFSET + self.dw_length

    @property
    def is_signed(self) -> bool:
        """False for an empty CertData (an "unsigned" header, see :func:`empty_auth`)."""
        return bool(self.pkcs7)

    def signed_data(self, name: str, vendor: uuid.UUID, attributes: int) -> bytes:
        """:func:`signed_data_bytes` for this payload and timestamp."""
        return signed_data_bytes(name, vendor, attributes, self.timestamp, self.payload)

    def problems(self) -> list[str]:
        """What firmware would object to that :meth:`parse` accepts: the timestamp
        (:meth:`EfiTime.auth_problems`), a wRevision other than 0x0200, no signature."""
        out = [f"TimeStamp: {p}" for p in self.timestamp.auth_problems()]
        if self.revision != WIN_CERT_REVISION_2_0:
            out.append(f"wRevision is {self.revision:#06x}, not {WIN_CERT_REVISION_2_0:#06x}")
        if not self.pkcs7:
            out.append("no PKCS#7 signature (accepted only in setup mode or custom mode)")
        return out

    def to_bytes(self) -> bytes:
        return (
            self.timestamp.to_bytes()
            + WIN_CERTIFICATE.pack(self.dw_length, self.revision, self.cert_type)
            + self.cert_guid.bytes_le
            + self.pkcs7
            + self.payload
        )


def empty_auth(payload: bytes, timestamp: EfiTime | None = None) -> bytes:
    """A .auth with a well-formed header but no signature (dwLength 24, empty CertData).

    It exists for firmware in setup mode (no PK) or custom mode: edk2's ProcessVarWithPk
    and ProcessVarWithKek then skip the signature check and take the data after
    ``16 + dwLength`` bytes, but SetVariable still needs the EFI_VARIABLE_AUTHENTICATION_2
    header of a time-based authenticated write (``Variable.c`` checks dwLength ≥ 24). In
    user mode firmware rejects it. ``timestamp`` defaults to now (UTC).
    """
    when = EfiTime.now() if timestamp is None else timestamp
    return AuthVariable2.build(when, b"", payload).to_bytes()


__all__ = [
    "APPEND_WRITE",
    "ATTRIBUTE_NAMES",
    "AUTH2_HEADER_SIZE",
    "BOOTSERVICE_ACCESS",
    "NON_VOLATILE",
    "PRESETS",
    "RUNTIME_ACCESS",
    "SECURE_BOOT_ATTRIBUTES",
    "TIME_BASED_AUTHENTICATED_WRITE_ACCESS",
    "AuthVariable2",
    "VariablePreset",
    "attribute_names",
    "auth_header_size",
    "empty_auth",
    "encode_variable_name",
    "is_auth_payload",
    "parse_attributes",
    "signed_data_bytes",
    "variable_defaults",
    "variable_preset",
]
