"""EFI_SIGNATURE_LIST / EFI_SIGNATURE_DATA (UEFI 2.10 §32.4.1, ImageAuthentication.h).

A signature database (db, dbx, dbt, KEK, PK, MokList, shim's .vendor_cert halves) is a
concatenation of lists; each list has one SignatureType, a fixed SignatureSize and entries of
{Owner GUID, data}:

=====  ====  =====================================================================
off    size  field
=====  ====  =====================================================================
0      16    SignatureType
16     4     SignatureListSize (the whole list)
20     4     SignatureHeaderSize
24     4     SignatureSize (owner + data of one entry)
28     H     SignatureHeader (H = SignatureHeaderSize; 0 for every defined type)
28+H   n*S   EFI_SIGNATURE_DATA {SignatureOwner GUID, SignatureData[S - 16]}
=====  ====  =====================================================================

Parse -> ``to_bytes`` is byte-identical, including unknown signature types (kept opaque)
and nonzero headers. :class:`SignatureDatabase` is the immutable whole, with builder-style
editing methods that return new databases, and :meth:`SignatureDatabase.append_write`
reproduces what edk2 stores for an APPEND_WRITE (``AuthService.c:FilterSignatureList``).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from fwtools._base.efitime import EfiTime
from fwtools._base.guid import GUID_SIZE
from fwtools._base.reader import Reader
from fwtools._base.record import Record, replace
from fwtools.errors import SignatureFormatError, UsageError
from fwtools.formats.efi import guids

# EFI_SIGNATURE_LIST header: SignatureType GUID, ListSize, HeaderSize, SignatureSize.
LIST_HEADER: Final = struct.Struct("<16sIII")
LIST_HEADER_SIZE: Final = LIST_HEADER.size
LIST_SIZE_FIELD: Final = 16
HEADER_SIZE_FIELD: Final = 20
SIGNATURE_SIZE_FIELD: Final = 24
OWNER_SIZE: Final = GUID_SIZE  # EFI_SIGNATURE_DATA.SignatureOwner

# Digest sizes.
SHA1_SIZE: Final = 20
SHA224_SIZE: Final = 28
SHA256_SIZE: Final = 32
SHA384_SIZE: Final = 48
SHA512_SIZE: Final = 64
RSA2048_SIZE: Final = 256

# Fixed SignatureSize (owner included) for each type; X509 is variable (16 + DER length).
FIXED_SIGNATURE_SIZE: Final[dict[uuid.UUID, int]] = {
    guids.CERT_SHA1: OWNER_SIZE + SHA1_SIZE,
    guids.CERT_SHA224: OWNER_SIZE + SHA224_SIZE,
    guids.CERT_SHA256: OWNER_SIZE + SHA256_SIZE,
    guids.CERT_SHA384: OWNER_SIZE + SHA384_SIZE,
    guids.CERT_SHA512: OWNER_SIZE + SHA512_SIZE,
    guids.CERT_RSA2048: OWNER_SIZE + RSA2048_SIZE,
    guids.CERT_RSA2048_SHA256: OWNER_SIZE + RSA2048_SIZE,
    guids.CERT_RSA2048_SHA1: OWNER_SIZE + RSA2048_SIZE,
    guids.CERT_X509_SHA256: OWNER_SIZE + SHA256_SIZE + EfiTime.SIZE,
    guids.CERT_X509_SHA384: OWNER_SIZE + SHA384_SIZE + EfiTime.SIZE,
    guids.CERT_X509_SHA512: OWNER_SIZE + SHA512_SIZE + EfiTime.SIZE,
    guids.CERT_SM3: OWNER_SIZE + SHA256_SIZE,
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
# Image-digest list type for each digest length (add_hash picks the type this way).
HASH_TYPE_BY_LENGTH: Final[dict[int, uuid.UUID]] = {
    SHA1_SIZE: guids.CERT_SHA1,
    SHA224_SIZE: guids.CERT_SHA224,
    SHA256_SIZE: guids.CERT_SHA256,
    SHA384_SIZE: guids.CERT_SHA384,
    SHA512_SIZE: guids.CERT_SHA512,
}
# Certificate-revocation list type for each TBSCertificate digest length (add_x509_hash).
X509_HASH_TYPE_BY_LENGTH: Final[dict[int, uuid.UUID]] = {
    SHA256_SIZE: guids.CERT_X509_SHA256,
    SHA384_SIZE: guids.CERT_X509_SHA384,
    SHA512_SIZE: guids.CERT_X509_SHA512,
}
X509_HASH_TYPES: Final = frozenset(X509_HASH_TYPE_BY_LENGTH.values())
# The types edk2 accepts in PK/KEK/db/dbx/dbt (AuthService.c mSupportSigItem). SM3 types are
# not among them.
EDK2_SUPPORTED_TYPES: Final = frozenset(
    {
        guids.CERT_SHA1,
        guids.CERT_SHA224,
        guids.CERT_SHA256,
        guids.CERT_SHA384,
        guids.CERT_SHA512,
        guids.CERT_RSA2048,
        guids.CERT_RSA2048_SHA256,
        guids.CERT_RSA2048_SHA1,
        guids.CERT_X509,
        guids.CERT_X509_SHA256,
        guids.CERT_X509_SHA384,
        guids.CERT_X509_SHA512,
    }
)

# Order of list types in SignatureDatabase.canonical(); unknown types follow, by GUID text.
CANONICAL_TYPE_ORDER: Final = (
    guids.CERT_X509,
    guids.CERT_SHA256,
    guids.CERT_SHA384,
    guids.CERT_SHA512,
    guids.CERT_SHA224,
    guids.CERT_SHA1,
    guids.CERT_X509_SHA256,
    guids.CERT_X509_SHA384,
    guids.CERT_X509_SHA512,
    guids.CERT_RSA2048,
    guids.CERT_RSA2048_SHA256,
    guids.CERT_RSA2048_SHA1,
)

# Microsoft dbx SVN entry (owner MICROSOFT_SVN, inside a SHA-256 list): version u8, the
# application GUID, u32 (major << 16 | minor), reserved (secureboot_objects
# scripts/utility_functions.py and dbx_info_msft_latest.json "svns").
SVN_ENTRY: Final = struct.Struct("<B16sI")


def hash_type_for(digest_length: int) -> uuid.UUID:
    """The image-digest list type for a digest of this many bytes (20 -> SHA1, 28 -> SHA224,
    32 -> SHA256, 48 -> SHA384, 64 -> SHA512); :class:`UsageError` for other lengths."""
    try:
        return HASH_TYPE_BY_LENGTH[digest_length]
    except KeyError:
        raise UsageError(f"{digest_length} bytes is not a SHA-1/224/256/384/512 digest") from None


def x509_hash_entry(data: bytes) -> tuple[bytes, EfiTime]:
    """Split the data of an EFI_CERT_X509_SHA256/384/512 entry into the TBSCertificate hash
    and its TimeOfRevocation (an all-zero time means "revoked for all time")."""
    if len(data) <= EfiTime.SIZE:
        raise SignatureFormatError(
            f"{len(data)} bytes is too short for an X.509 hash entry (hash + EFI_TIME)",
            structure="EFI_CERT_X509_SHA* entry",
        )
    split = len(data) - EfiTime.SIZE
    return bytes(data[:split]), EfiTime.from_bytes(data, split)


class SvnEntry(Record):
    """A Microsoft dbx SVN entry: the minimum version of one boot application."""

    version: int
    application: uuid.UUID
    major: int
    minor: int


def svn_entry(data: bytes) -> SvnEntry:
    """Decode the 32-byte data of an SVN entry (owner :data:`guids.MICROSOFT_SVN`)."""
    if len(data) < SVN_ENTRY.size:
        raise SignatureFormatError(
            f"{len(data)} bytes is too short for an SVN entry", structure="SVN entry"
        )
    version, app, value = SVN_ENTRY.unpack_from(data)
    return SvnEntry(version, uuid.UUID(bytes_le=app), value >> 16, value & 0xFFFF)


class SignatureData(Record):
    """One EFI_SIGNATURE_DATA: the owner GUID and the signature bytes after it.

    ``offset`` is where the entry (its owner GUID) starts in the file it was parsed from, or
    in :meth:`SignatureDatabase.to_bytes` for a database built in memory; it does not take
    part in equality.
    """

    owner: uuid.UUID
    data: bytes
    offset: int = 0
    _uncompared = frozenset({"offset"})

    @property
    def data_offset(self) -> int:
        """Where ``data`` starts (after the owner GUID)."""
        return self.offset + OWNER_SIZE

    def to_bytes(self) -> bytes:
        return self.owner.bytes_le + self.data


class SignatureList(Record):
    """One EFI_SIGNATURE_LIST. ``offset`` (not part of equality) is where it starts."""

    signature_type: uuid.UUID
    signature_size: int
    entries: tuple[SignatureData, ...]
    header: bytes = b""
    offset: int = 0
    _uncompared = frozenset({"offset"})

    @property
    def type_name(self) -> str:
        return guids.guid_name(self.signature_type) or str(self.signature_type)

    @property
    def is_x509(self) -> bool:
        return self.signature_type == guids.CERT_X509

    @property
    def hash_algorithm(self) -> str | None:
        """hashlib name of a hash-type list (image digests or X.509 TBS digests)."""
        return HASH_ALGORITHM.get(self.signature_type)

    @property
    def list_size(self) -> int:
        return LIST_HEADER_SIZE + len(self.header) + self.signature_size * len(self.entries)

    def with_entries(self, entries: Iterable[SignatureData]) -> SignatureList:
        """This list's type, size and header with other entries."""
        return replace(self, entries=tuple(entries))

    def to_bytes(self) -> bytes:
        body = b"".join(entry.to_bytes() for entry in self.entries)
        size = LIST_HEADER_SIZE + len(self.header) + len(body)
        head = LIST_HEADER.pack(
            self.signature_type.bytes_le, size, len(self.header), self.signature_size
        )
        return head + self.header + body


def parse_signature_lists(
    data: bytes | memoryview, *, base: int = 0, structure: str = "EFI_SIGNATURE_LIST"
) -> list[SignatureList]:
    """Parse a concatenation of signature lists that must exactly fill ``data``.

    ``base`` is the absolute offset of ``data`` in its file, used in error messages and
    stored in the results' ``offset``. Unknown signature types are kept (their entries are
    opaque); a known fixed-size type with the wrong SignatureSize is an error, as in edk2's
    CheckSignatureListFormat. Raises :class:`SignatureFormatError` (or its sibling
    :class:`TruncatedError` for a cut-off list header) naming the list and the offset of the
    offending field.
    """
    # One copy of a memoryview (none of bytes): entries are then plain slices of it.
    buf = bytes(data)
    reader = Reader(buf, base=base)
    # GUIDs by their 16 stored bytes, built once per distinct value: a dbx of thousands of
    # entries has a handful of owners, and uuid.UUID() is the costliest step per entry.
    guids_seen: dict[bytes, uuid.UUID] = {}
    lists: list[SignatureList] = []
    pos = 0
    while pos < len(buf):
        name = f"{structure}[{len(lists)}]"
        raw_type, list_size, header_size, sig_size = reader.unpack(LIST_HEADER, pos, name)
        sig_type = _guid(guids_seen, raw_type)
        remaining = len(buf) - pos
        if list_size < LIST_HEADER_SIZE or list_size > remaining:
            why = (
                f"is smaller than the {LIST_HEADER_SIZE}-byte list header"
                if list_size < LIST_HEADER_SIZE
                else f"does not fit in the remaining {remaining:#x} bytes"
            )
            raise SignatureFormatError(
                f"SignatureListSize {list_size:#x} {why}",
                structure=name,
                offset=base + pos + LIST_SIZE_FIELD,
            )
        if header_size > list_size - LIST_HEADER_SIZE:
            raise SignatureFormatError(
                f"SignatureHeaderSize {header_size:#x} exceeds the list "
                f"(SignatureListSize {list_size:#x})",
                structure=name,
                offset=base + pos + HEADER_SIZE_FIELD,
            )
        expected = FIXED_SIGNATURE_SIZE.get(sig_type)
        if sig_size < OWNER_SIZE or (expected is not None and sig_size != expected):
            want = f" (expected {expected})" if expected is not None else ""
            raise SignatureFormatError(
                f"SignatureSize {sig_size} is invalid for "
                f"{guids.guid_name(sig_type) or sig_type}{want}",
                structure=name,
                offset=base + pos + SIGNATURE_SIZE_FIELD,
            )
        body_start = pos + LIST_HEADER_SIZE + header_size
        body_len = list_size - LIST_HEADER_SIZE - header_size
        if body_len % sig_size:
            raise SignatureFormatError(
                f"{body_len:#x} bytes of entries is not a multiple of SignatureSize {sig_size}",
                structure=name,
                offset=base + body_start,
            )
        header = buf[pos + LIST_HEADER_SIZE : body_start]
        entries = _parse_entries(buf, body_start, body_len, sig_size, base, guids_seen)
        lists.append(SignatureList(sig_type, sig_size, entries, header, base + pos))
        pos += list_size
    return lists


def _guid(seen: dict[bytes, uuid.UUID], raw: bytes) -> uuid.UUID:
    """The GUID stored as ``raw``, made once per parse (``seen`` caches them)."""
    guid = seen.get(raw)
    if guid is None:
        guid = seen[raw] = uuid.UUID(bytes_le=raw)
    return guid


def _parse_entries(
    buf: bytes, start: int, length: int, size: int, base: int, guids_seen: dict[bytes, uuid.UUID]
) -> tuple[SignatureData, ...]:
    """The EFI_SIGNATURE_DATA entries in ``buf[start:start + length]`` (``size`` bytes each,
    ``length`` a multiple of it): the hot loop of a large dbx, kept free of per-entry calls
    beyond the slices and the dataclass."""
    entries: list[SignatureData] = []
    append = entries.append
    get = guids_seen.get
    for off in range(start, start + length, size):
        data_start = off + OWNER_SIZE
        raw = buf[off:data_start]
        owner = get(raw)  # _guid(), inlined: a call per entry costs ~10% here
        if owner is None:
            owner = guids_seen[raw] = uuid.UUID(bytes_le=raw)
        append(SignatureData(owner, buf[data_start : off + size], base + off))
    return tuple(entries)


def signature_lists_to_bytes(lists: Iterable[SignatureList]) -> bytes:
    return b"".join(sl.to_bytes() for sl in lists)


def _entry_key(sl: SignatureList, entry: SignatureData) -> tuple[uuid.UUID, uuid.UUID, bytes]:
    return (sl.signature_type, entry.owner, entry.data)


def _laid_out(lists: Iterable[SignatureList], base: int = 0) -> tuple[SignatureList, ...]:
    """The lists with their and their entries' offsets set as ``to_bytes`` places them."""
    out = []
    pos = base
    for sl in lists:
        start = pos + LIST_HEADER_SIZE + len(sl.header)
        entries = tuple(
            replace(e, offset=start + i * sl.signature_size) for i, e in enumerate(sl.entries)
        )
        out.append(replace(sl, entries=entries, offset=pos))
        pos += sl.list_size
    return tuple(out)


class SignatureDatabase(Record):
    """A signature database: the signature lists of one variable (or file), in order.

    Immutable: the editing methods return new databases, whose lists and entries carry the
    offsets :meth:`to_bytes` gives them. Parsed databases keep the offsets of their file.
    ``len(db)`` and :attr:`count` are the number of entries (not lists).
    """

    lists: tuple[SignatureList, ...] = ()

    # -- bytes ---------------------------------------------------------------------------

    @classmethod
    def parse(
        cls,
        data: bytes | memoryview,
        *,
        base: int = 0,
        structure: str = "EFI_SIGNATURE_LIST",
    ) -> SignatureDatabase:
        """Parse signature lists that exactly fill ``data`` (empty data: empty database).

        See :func:`parse_signature_lists` for ``base``, ``structure`` and the errors.
        """
        return cls(tuple(parse_signature_lists(data, base=base, structure=structure)))

    def to_bytes(self) -> bytes:
        return signature_lists_to_bytes(self.lists)

    @classmethod
    def _of(cls, lists: Iterable[SignatureList]) -> SignatureDatabase:
        return cls(_laid_out(lists))

    # -- reading -------------------------------------------------------------------------

    def entries(self) -> Iterator[tuple[int, int, SignatureList, SignatureData]]:
        """(list index, entry index, list, entry) for every entry, in order."""
        for i, sl in enumerate(self.lists):
            for j, entry in enumerate(sl.entries):
                yield i, j, sl, entry

    @property
    def count(self) -> int:
        """The number of entries in all lists."""
        return sum(len(sl.entries) for sl in self.lists)

    def __len__(self) -> int:
        return self.count

    @property
    def is_empty(self) -> bool:
        """True when the database holds no list at all (``to_bytes()`` is empty)."""
        return not self.lists

    def types(self) -> list[uuid.UUID]:
        """The signature types of the lists, each once, in order of first appearance."""
        return list(dict.fromkeys(sl.signature_type for sl in self.lists))

    def certificates(self) -> list[bytes]:
        """The data of every EFI_CERT_X509 entry (DER certificates, not validated)."""
        return [e.data for _i, _j, sl, e in self.entries() if sl.is_x509]

    def contains(self, signature_type: uuid.UUID, owner: uuid.UUID, data: bytes) -> bool:
        """Whether an entry with this type, owner and data exists."""
        return any(
            sl.signature_type == signature_type and e.owner == owner and e.data == data
            for _i, _j, sl, e in self.entries()
        )

    def problems(self) -> list[SignatureFormatError]:
        """What edk2's CheckSignatureListFormat would refuse in a PK/KEK/db/dbx/dbt write,
        one error (with offset) per problem: signature types it does not support, a nonzero
        SignatureHeaderSize. (Sizes were checked by :meth:`parse`; whether X.509 entries
        are DER certificates is decided in the crypto layer,
        :func:`fwtools.crypto.authvar.certificate_problems`.) PK additionally must hold
        exactly one entry; that is the caller's to check."""
        out = []
        for i, sl in enumerate(self.lists):
            name = f"EFI_SIGNATURE_LIST[{i}]"
            if sl.signature_type not in EDK2_SUPPORTED_TYPES:
                out.append(
                    SignatureFormatError(
                        f"signature type {sl.type_name} is not accepted by edk2",
                        structure=name,
                        offset=sl.offset,
                    )
                )
            if sl.header:
                out.append(
                    SignatureFormatError(
                        f"SignatureHeaderSize is {len(sl.header)}; edk2 requires 0",
                        structure=name,
                        offset=sl.offset + HEADER_SIZE_FIELD,
                    )
                )
        return out

    # -- building ------------------------------------------------------------------------

    def add_list(self, sl: SignatureList) -> SignatureDatabase:
        """This database with ``sl`` appended as a new list."""
        return self._of((*self.lists, sl))

    def add_certificate(self, der: bytes, owner: uuid.UUID) -> SignatureDatabase:
        """Append one EFI_CERT_X509 list holding this certificate, as edk2, efitools'
        ``cert-to-efi-sig-list`` and virt-firmware do (one certificate per list, since
        SignatureSize is 16 + the DER length). The DER is not validated here.

        An identical entry already present is appended again; :meth:`dedupe` drops it.
        """
        if not der:
            raise UsageError("empty certificate")
        entry = SignatureData(owner, bytes(der))
        return self.add_list(SignatureList(guids.CERT_X509, OWNER_SIZE + len(der), (entry,)))

    def add_hash(
        self, digest: bytes, owner: uuid.UUID, signature_type: uuid.UUID | None = None
    ) -> SignatureDatabase:
        """Append a hash entry.

        The type follows the digest length (:func:`hash_type_for`: 32 bytes -> SHA256)
        unless ``signature_type`` is given; for EFI_CERT_X509_SHA256/384/512 ``digest`` is
        the TBSCertificate hash, optionally followed by the 16-byte TimeOfRevocation (all
        zero, "revoked for all time", when absent).

        Placement: when the database's *last* list has this type and SignatureSize and no
        SignatureHeader, the entry joins it; otherwise a new list is started. Consecutive
        hashes thus share one list, as in Microsoft's dbx updates. Both forms are valid for
        edk2, which walks entries regardless of how they are grouped. Duplicates are not
        checked (see :meth:`dedupe`).
        """
        digest = bytes(digest)
        if signature_type is None:
            signature_type = hash_type_for(len(digest))
        size = FIXED_SIGNATURE_SIZE.get(signature_type)
        if size is None or signature_type not in HASH_ALGORITHM:
            raise UsageError(
                f"{guids.guid_name(signature_type) or signature_type} is not a hash type"
            )
        if signature_type in X509_HASH_TYPES and len(digest) == size - OWNER_SIZE - EfiTime.SIZE:
            digest += EfiTime.zero().to_bytes()
        if len(digest) != size - OWNER_SIZE:
            raise UsageError(
                f"{len(digest)} bytes do not fit {guids.guid_name(signature_type)} entries "
                f"({size - OWNER_SIZE} bytes)"
            )
        entry = SignatureData(owner, digest)
        if self.lists:
            last = self.lists[-1]
            if (
                last.signature_type == signature_type
                and last.signature_size == size
                and (not last.header)
            ):
                return self._of((*self.lists[:-1], last.with_entries((*last.entries, entry))))
        return self.add_list(SignatureList(signature_type, size, (entry,)))

    def add_x509_hash(
        self, tbs_digest: bytes, owner: uuid.UUID, revocation_time: EfiTime | None = None
    ) -> SignatureDatabase:
        """Append an EFI_CERT_X509_SHA256/384/512 entry (type from the digest length)
        revoking a certificate from ``revocation_time`` on (None: for all time)."""
        try:
            signature_type = X509_HASH_TYPE_BY_LENGTH[len(tbs_digest)]
        except KeyError:
            raise UsageError(
                f"{len(tbs_digest)} bytes is not a SHA-256/384/512 TBSCertificate digest"
            ) from None
        when = revocation_time or EfiTime.zero()
        return self.add_hash(bytes(tbs_digest) + when.to_bytes(), owner, signature_type)

    def remove(
        self, predicate: Callable[[SignatureList, SignatureData], bool]
    ) -> tuple[SignatureDatabase, int]:
        """Drop the entries ``predicate(list, entry)`` selects: (new database, how many).

        A list that loses all its entries is dropped; lists that were empty to begin with
        are kept.
        """
        removed = 0
        lists = []
        for sl in self.lists:
            kept = [e for e in sl.entries if not predicate(sl, e)]
            removed += len(sl.entries) - len(kept)
            if kept or not sl.entries:
                lists.append(sl if len(kept) == len(sl.entries) else sl.with_entries(kept))
        if not removed:
            return self, 0
        return self._of(lists), removed

    def remove_hash(self, digest: bytes) -> tuple[SignatureDatabase, int]:
        """Drop hash entries with this digest: image digests (SHA1..SHA512 lists) and
        TBSCertificate digests (X509_SHA* lists, whatever their revocation time)."""
        digest = bytes(digest)

        def match(sl: SignatureList, entry: SignatureData) -> bool:
            if sl.signature_type in X509_HASH_TYPES:
                return entry.data[: -EfiTime.SIZE] == digest
            return sl.signature_type in HASH_ALGORITHM and entry.data == digest

        return self.remove(match)

    def remove_certificate(self, der: bytes) -> tuple[SignatureDatabase, int]:
        """Drop EFI_CERT_X509 entries holding exactly this DER."""
        der = bytes(der)
        return self.remove(lambda sl, e: sl.is_x509 and e.data == der)

    def remove_owner(self, owner: uuid.UUID) -> tuple[SignatureDatabase, int]:
        """Drop every entry of this owner."""
        return self.remove(lambda _sl, e: e.owner == owner)

    def dedupe(self) -> tuple[SignatureDatabase, int]:
        """Drop every entry whose (type, owner, data) appeared earlier: (database, count).

        The first occurrence stays where it is; lists left empty are dropped.
        """
        seen: set[tuple[uuid.UUID, uuid.UUID, bytes]] = set()

        def later_duplicate(sl: SignatureList, entry: SignatureData) -> bool:
            key = _entry_key(sl, entry)
            if key in seen:
                return True
            seen.add(key)
            return False

        return self.remove(later_duplicate)

    def merge(self, other: SignatureDatabase) -> SignatureDatabase:
        """The union: this database's lists, then ``other``'s, each entry (type, owner,
        data) once, where it first appears; lists left empty are dropped.

        Unlike :meth:`append_write` this also drops duplicates within either database.
        """
        return SignatureDatabase((*self.lists, *other.lists)).dedupe()[0]

    def canonical(self) -> SignatureDatabase:
        """A deterministic form of the same set of entries (duplicates dropped).

        Order: lists by type as in :data:`CANONICAL_TYPE_ORDER` (X509 first, then SHA256,
        SHA384, SHA512, SHA224, SHA1, the X509_SHA* types, the RSA2048 types), unknown types
        after them by GUID text; one EFI_CERT_X509 list per certificate, ordered by
        (DER bytes, owner); every other type in one list per (type, SignatureSize,
        SignatureHeader), its entries ordered by (data, owner). Owners are compared by their
        16 stored bytes.
        """
        unique = self.dedupe()[0]
        rank = {t: i for i, t in enumerate(CANONICAL_TYPE_ORDER)}
        groups: dict[tuple[uuid.UUID, int, bytes], list[SignatureData]] = {}
        for sl in unique.lists:
            key = (sl.signature_type, sl.signature_size, sl.header)
            groups.setdefault(key, []).extend(sl.entries)
        keyed: list[tuple[tuple[int, str, int, bytes, bytes, bytes], SignatureList]] = []
        for (sig_type, size, header), entries in groups.items():
            type_key = (rank.get(sig_type, len(rank)), str(sig_type))
            ordered = sorted(entries, key=lambda e: (e.data, e.owner.bytes_le))
            if sig_type == guids.CERT_X509 and not header:
                keyed.extend(
                    (
                        (*type_key, 0, b"", e.data, e.owner.bytes_le),
                        SignatureList(sig_type, size, (e,)),
                    )
                    for e in ordered
                )
            elif ordered:
                keyed.append(
                    (
                        (*type_key, size, header, b"", b""),
                        SignatureList(sig_type, size, tuple(ordered), header),
                    )
                )
        keyed.sort(key=lambda item: item[0])
        return self._of(sl for _key, sl in keyed)

    def append_write(self, incoming: SignatureDatabase) -> SignatureDatabase:
        """The variable's content after an APPEND_WRITE of ``incoming``, as edk2 stores it.

        ``AuthService.c:FilterSignatureList`` (applied to db, dbx, dbt and KEK): an
        incoming entry is dropped when an entry with the same 16+N bytes (owner and data)
        exists in a *stored* list of the same SignatureType and SignatureSize; duplicates
        within ``incoming`` are kept. Each incoming list keeps its header and its surviving
        entries and is appended after the stored data; a list with no survivor is dropped.
        Nothing is merged into the stored lists. Appending to an empty (absent) variable
        stores ``incoming`` as it is (edk2 filters only against an existing variable).
        """
        if self.is_empty:
            return self._of(incoming.lists)
        stored: dict[tuple[uuid.UUID, int], set[bytes]] = {}
        for sl in self.lists:
            stored.setdefault((sl.signature_type, sl.signature_size), set()).update(
                e.to_bytes() for e in sl.entries
            )
        added = []
        for sl in incoming.lists:
            have = stored.get((sl.signature_type, sl.signature_size), set())
            kept = [e for e in sl.entries if e.to_bytes() not in have]
            if kept:
                added.append(sl.with_entries(kept))
        return self._of((*self.lists, *added))


__all__ = [
    "FIXED_SIGNATURE_SIZE",
    "HASH_ALGORITHM",
    "HASH_TYPE_BY_LENGTH",
    "LIST_HEADER",
    "OWNER_SIZE",
    "X509_HASH_TYPES",
    "SignatureData",
    "SignatureDatabase",
    "SignatureList",
    "SvnEntry",
    "hash_type_for",
    "parse_signature_lists",
    "signature_lists_to_bytes",
    "svn_entry",
    "x509_hash_entry",
]
