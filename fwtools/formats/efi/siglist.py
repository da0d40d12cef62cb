"""EFI_SIGNATURE_LIST / EFI_SIGNATURE_DATA (UEFI 2.10 §32.4.1, ImageAuthentication.h).

A signature database (db, dbx, KEK, MokList, shim's .vendor_cert halves) is a concatenation
of lists; each list has one SignatureType, a fixed SignatureSize and entries of
{Owner GUID, data}. Parse -> ``to_bytes`` is byte-identical.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from typing import Final

from fwtools._base.guid import guid_from_bytes
from fwtools._base.reader import Reader
from fwtools.errors import SignatureFormatError
from fwtools.formats.efi import guids

# EFI_SIGNATURE_LIST header: SignatureType GUID, ListSize, HeaderSize, SignatureSize.
LIST_HEADER: Final = struct.Struct("<16sIII")
OWNER_SIZE: Final = 16

# Fixed SignatureSize (owner included) for each type; X509 is variable (16 + DER length).
FIXED_SIGNATURE_SIZE: Final[dict[uuid.UUID, int]] = {
    guids.CERT_SHA1: 16 + 20,
    guids.CERT_SHA224: 16 + 28,
    guids.CERT_SHA256: 16 + 32,
    guids.CERT_SHA384: 16 + 48,
    guids.CERT_SHA512: 16 + 64,
    guids.CERT_RSA2048: 16 + 256,
    guids.CERT_RSA2048_SHA256: 16 + 256,
    guids.CERT_RSA2048_SHA1: 16 + 256,
    guids.CERT_X509_SHA256: 16 + 32 + 16,
    guids.CERT_X509_SHA384: 16 + 48 + 16,
    guids.CERT_X509_SHA512: 16 + 64 + 16,
    guids.CERT_SM3: 16 + 32,
}

# Hash algorithm of the hash-type lists (digest of an image, or of a TBSCertificate).
HASH_ALGORITHM: Final[dict[uuid.UUID, str]] = {
    guids.CERT_SHA1: "sha1",
    guids.CERT_SHA224: "sha224",
    guids.CERT_SHA256: "sha256",
    guids.CERT_SHA384: "sha384",
    guids.CERT_SHA512: "sha512",
    guids.CERT_X509_SHA256: "sha256",
    guids.CERT_X509_SHA384: "sha384",
    guids.CERT_X509_SHA512: "sha512",
}
X509_HASH_TYPES: Final = frozenset(
    {guids.CERT_X509_SHA256, guids.CERT_X509_SHA384, guids.CERT_X509_SHA512}
)


@dataclass(frozen=True)
class SignatureData:
    """One EFI_SIGNATURE_DATA: the owner GUID and the signature bytes after it."""

    owner: uuid.UUID
    data: bytes
    offset: int = 0

    def to_bytes(self) -> bytes:
        return self.owner.bytes_le + self.data


@dataclass(frozen=True)
class SignatureList:
    """One EFI_SIGNATURE_LIST."""

    signature_type: uuid.UUID
    signature_size: int
    entries: tuple[SignatureData, ...]
    header: bytes = b""
    offset: int = 0

    @property
    def type_name(self) -> str:
        return guids.guid_name(self.signature_type) or str(self.signature_type)

    @property
    def is_x509(self) -> bool:
        return self.signature_type == guids.CERT_X509

    def to_bytes(self) -> bytes:
        body = b"".join(entry.to_bytes() for entry in self.entries)
        size = LIST_HEADER.size + len(self.header) + len(body)
        head = LIST_HEADER.pack(
            self.signature_type.bytes_le, size, len(self.header), self.signature_size
        )
        return head + self.header + body


def parse_signature_lists(
    data: bytes | memoryview, *, base: int = 0, structure: str = "EFI_SIGNATURE_LIST"
) -> list[SignatureList]:
    """Parse a concatenation of signature lists that must exactly fill ``data``.

    ``base`` is the absolute offset of ``data`` in its file, used in error messages. Unknown
    signature types are kept (their entries are opaque); a known fixed-size type with the
    wrong SignatureSize is an error, as in edk2's CheckSignatureListFormat.
    """
    reader = Reader(data, base=base)
    lists: list[SignatureList] = []
    pos = 0
    while pos < len(data):
        name = f"{structure}[{len(lists)}]"
        raw_type, list_size, header_size, sig_size = reader.unpack(LIST_HEADER, pos, name)
        sig_type = uuid.UUID(bytes_le=raw_type)
        if list_size < LIST_HEADER.size or pos + list_size > len(data):
            raise SignatureFormatError(
                f"SignatureListSize {list_size:#x} does not fit in the remaining "
                f"{len(data) - pos:#x} bytes",
                structure=name,
                offset=base + pos + 16,
            )
        if header_size > list_size - LIST_HEADER.size:
            raise SignatureFormatError(
                f"SignatureHeaderSize {header_size:#x} exceeds the list",
                structure=name,
                offset=base + pos + 20,
            )
        expected = FIXED_SIGNATURE_SIZE.get(sig_type)
        if sig_size < OWNER_SIZE or (expected is not None and sig_size != expected):
            want = f" (expected {expected})" if expected is not None else ""
            raise SignatureFormatError(
                f"SignatureSize {sig_size} is invalid for "
                f"{guids.guid_name(sig_type) or sig_type}{want}",
                structure=name,
                offset=base + pos + 24,
            )
        body_start = pos + LIST_HEADER.size + header_size
        body_len = list_size - LIST_HEADER.size - header_size
        if body_len % sig_size:
            raise SignatureFormatError(
                f"{body_len:#x} bytes of entries is not a multiple of SignatureSize {sig_size}",
                structure=name,
                offset=base + body_start,
            )
        header = bytes(data[pos + LIST_HEADER.size : body_start])
        entries = tuple(
            SignatureData(
                owner=guid_from_bytes(data, off),
                data=bytes(data[off + OWNER_SIZE : off + sig_size]),
                offset=base + off,
            )
            for off in range(body_start, body_start + body_len, sig_size)
        )
        lists.append(SignatureList(sig_type, sig_size, entries, header, base + pos))
        pos += list_size
    return lists


def signature_lists_to_bytes(lists: list[SignatureList] | tuple[SignatureList, ...]) -> bytes:
    return b"".join(sl.to_bytes() for sl in lists)
