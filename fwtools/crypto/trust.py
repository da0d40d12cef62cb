"""Trust anchors (db/dbx) and the Secure Boot verdict for a PE image.

The verdict models edk2's DxeImageVerificationLib (DxeImageVerificationHandler,
IsForbiddenByDbx, IsAllowedByDb) as firmware applies it:

1. the image's Authenticode digest, in any algorithm dbx lists hashes of, is in dbx
   -> ``revoked``;
2. for each signature in the certificate table (nested signatures are ignored, as edk2
   and sbverify ignore them): a certificate of its chain (signer, PKCS#7 intermediates, the
   db anchor) is a dbx certificate or issued by one, or the TBSCertificate hash of any of
   its certificates is in dbx (EFI_CERT_X509_SHA256/384/512) -> ``revoked``;
3. a signature whose signed digest differs from the image digest, or whose SignerInfo
   does not verify, counts for nothing;
4. a valid signature whose chain reaches a db certificate -> ``trusted``. The db certificate
   may be a root or an intermediate (partial chains, as edk2's Pkcs7Verify allows); the
   PKCS#7 certificates serve as intermediates; validity periods, key usages and EKUs are
   ignored, as firmware ignores them;
5. the image digest is in db -> ``trusted``; otherwise ``untrusted``.

Deliberate simplifications, each more conservative than edk2: a TBS hash found in dbx
revokes even when a timestamp predates the revocation time (edk2 consults dbt), a dbx
certificate revokes even if the signature's digest does not match, and dbx/db image hashes
are checked in every algorithm the databases use, not only in the signature's. edk2 also
rejects an image whose certificate table does not end exactly after its last 8-byte-aligned
entry, and so does this model.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from fwtools._base.digest import new as new_hash
from fwtools._base.fileio import read_file
from fwtools.crypto.authenticode import AuthenticodeSignature
from fwtools.crypto.pkcs7 import Cert, CertCache, find_chain
from fwtools.crypto.sigdb_inputs import sniff_format
from fwtools.crypto.x509info import (
    PARSE_ERRORS,
    CertificateInfo,
    certificate_info,
    certificates_from_bytes,
    one_line,
)
from fwtools.errors import ParseError, SignatureFormatError
from fwtools.formats.efi import guids
from fwtools.formats.efi.siglist import (
    HASH_ALGORITHM,
    X509_HASH_TYPES,
    SignatureList,
    parse_signature_lists,
)
from fwtools.formats.pe import wincert_layout
from fwtools.formats.pe.authenticode import authenticode_digests, authenticode_layout
from fwtools.formats.pe.image import PeImage

Status = Literal["trusted", "untrusted", "revoked"]


@dataclass
class TrustAnchors:
    """The allowed (db) and forbidden (dbx) signature databases.

    Hash sets are keyed by hashlib algorithm name. ``dbx_tbs_hashes`` hold the
    TBSCertificate digests of EFI_CERT_X509_SHA256/384/512 entries (their revocation time is
    not used). ``ignored`` lists entries the verification model does not use (RSA2048 keys,
    X509 TBS hashes in db, ...), one line each.
    """

    db_certs: list[bytes] = field(default_factory=list)
    db_hashes: dict[str, set[bytes]] = field(default_factory=dict)
    dbx_hashes: dict[str, set[bytes]] = field(default_factory=dict)
    dbx_certs: list[bytes] = field(default_factory=list)
    dbx_tbs_hashes: dict[str, set[bytes]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    @classmethod
    def from_signature_lists(
        cls, db: Iterable[SignatureList], dbx: Iterable[SignatureList] = ()
    ) -> TrustAnchors:
        """Anchors from parsed db and dbx signature lists (e.g. from a variable store)."""
        anchors = cls()
        for sl in db:
            anchors._add_list(sl, forbidden=False)
        for sl in dbx:
            anchors._add_list(sl, forbidden=True)
        return anchors

    @classmethod
    def from_files(
        cls,
        paths: Iterable[str | os.PathLike[str]],
        dbx_paths: Iterable[str | os.PathLike[str]] = (),
    ) -> TrustAnchors:
        """Anchors from files: PEM or DER certificates, raw EFI signature lists (.esl, a db
        or dbx variable's data) or signed variable updates (.auth, whose signature is not
        checked). ``paths`` feed db, ``dbx_paths`` dbx."""
        anchors = cls()
        for forbidden, group in ((False, paths), (True, dbx_paths)):
            for path in group:
                certs, lists = _read_anchor_file(path)
                for der in certs:
                    (anchors.dbx_certs if forbidden else anchors.db_certs).append(der)
                for sl in lists:
                    anchors._add_list(sl, forbidden=forbidden)
        return anchors

    def _add_list(self, sl: SignatureList, *, forbidden: bool) -> None:
        which = "dbx" if forbidden else "db"
        if sl.signature_type == guids.CERT_X509:
            for i, entry in enumerate(sl.entries):
                name, at = f"{which} EFI_SIGNATURE_DATA[{i}]", entry.offset + 16
                der = leading_certificate(entry.data, structure=name, offset=at)
                info = certificate_info(der, structure=name, offset=at)
                (self.dbx_certs if forbidden else self.db_certs).append(info.der)
            return
        algorithm = HASH_ALGORITHM.get(sl.signature_type)
        if algorithm is None:
            self.ignored.append(f"{which}: {len(sl.entries)} {sl.type_name} entries (unused)")
            return
        size = new_hash(algorithm).digest_size
        if sl.signature_type in X509_HASH_TYPES:
            if not forbidden:
                self.ignored.append(
                    f"db: {len(sl.entries)} {sl.type_name} entries (firmware only uses "
                    "certificate hashes in dbx)"
                )
                return
            target = self.dbx_tbs_hashes
        else:
            target = self.dbx_hashes if forbidden else self.db_hashes
        target.setdefault(algorithm, set()).update(e.data[:size] for e in sl.entries)

    @property
    def empty(self) -> bool:
        """True when there is nothing in db (no image can be trusted)."""
        return not self.db_certs and not any(self.db_hashes.values())


def leading_certificate(
    data: bytes, *, structure: str = "X.509 certificate", offset: int | None = None
) -> bytes:
    """The DER of the certificate at the start of ``data``, without trailing bytes.

    Signature-list entries and PKCS#7 bags sometimes pad certificates; firmware parses the
    first certificate and ignores the rest.
    """
    from asn1crypto import x509 as asn1_x509

    try:
        return bytes(asn1_x509.Certificate.load(bytes(data)).dump())
    except PARSE_ERRORS as exc:
        raise SignatureFormatError(
            f"not a DER X.509 certificate: {one_line(exc)}", structure=structure, offset=offset
        ) from None


def _read_anchor_file(path: str | os.PathLike[str]) -> tuple[list[bytes], list[SignatureList]]:
    name = os.fspath(path)
    data = read_file(path)
    try:
        if not data:
            # An empty variable is a valid empty database, but an empty file named as a
            # trust anchor or revocation list is a mistake worth stopping for.
            raise SignatureFormatError("empty file: no certificate, hash or signature list",
                                       offset=0)
        # The kinds fw-sigdb reads but PE images (shim's .vendor_cert is no anchor file):
        # anything else is reported as not being a certificate.
        kind = sniff_format(data, fallback="certificate")
        if kind == "esl":
            return [], parse_signature_lists(data)
        if kind == "auth":
            # A signed update given as a list: its signature must at least be well formed.
            from fwtools.crypto.authvar import auth_signature_info
            from fwtools.formats.efi.authvar import AuthVariable2

            auth = AuthVariable2.parse(data)
            auth_signature_info(auth)
            return [], parse_signature_lists(auth.payload, base=auth.payload_offset)
        return certificates_from_bytes(data, name), []
    except ParseError as exc:
        raise exc.with_path(name) from None


@dataclass(frozen=True)
class MatchedEntry:
    """The db/dbx entry that decided a verdict: ``database`` ("db" or "dbx"); ``kind``
    "cert" (an X.509 certificate: ``subject``, ``der``), "hash" (an image digest:
    ``algorithm``, ``digest``) or "tbs-hash" (a certificate's TBSCertificate digest:
    ``algorithm``, ``digest``, and the certificate's ``subject``)."""

    database: str
    kind: Literal["cert", "hash", "tbs-hash"]
    subject: str | None = None
    der: bytes | None = None
    algorithm: str | None = None
    digest: bytes | None = None

    def __str__(self) -> str:
        """``db cert CN=...``, ``dbx sha256 <hex>``, ``dbx x509-sha256 <hex> (TBS of ...)``."""
        if self.kind == "cert":
            return f"{self.database} cert {self.subject}"
        hexdigest = (self.digest or b"").hex()
        if self.kind == "hash":
            return f"{self.database} {self.algorithm} {hexdigest}"
        return f"{self.database} x509-{self.algorithm} {hexdigest} (TBS of {self.subject})"


@dataclass
class VerifyResult:
    """The verdict for one image.

    ``chain`` runs from the signer to the anchor that decided the verdict (empty for hash
    matches and unsigned images); ``signature_index`` is the WIN_CERTIFICATE index of the
    deciding signature; ``entry`` is the db/dbx entry that matched, ``matched_entry`` its
    text, e.g. ``db cert CN=...`` or ``dbx sha256 <hex>``.
    """

    status: Status
    reason: str
    chain: list[CertificateInfo] = field(default_factory=list)
    signature_index: int | None = None
    entry: MatchedEntry | None = None

    @property
    def matched_entry(self) -> str | None:
        return None if self.entry is None else str(self.entry)

    @property
    def trusted(self) -> bool:
        """Whether firmware would run the image."""
        return self.status == "trusted"


def _image_digests(
    img: PeImage, algorithms: set[str], digests: dict[str, bytes] | None
) -> list[tuple[str, bytes, str]]:
    """(algorithm, digest, note) for the image in each algorithm, padded and, for an
    unsigned image of unaligned length, also unpadded (edk2's value)."""
    have = dict(digests or {})
    missing = sorted(a for a in algorithms if a not in have)
    if missing:
        have.update(authenticode_digests(img, missing))
    out = [(a, have[a], "") for a in sorted(algorithms)]
    if algorithms and img.certificate_table is None and authenticode_layout(img).padding:
        unpadded = authenticode_digests(img, sorted(algorithms), pad=False)
        out += [(a, unpadded[a], " (unpadded, as edk2 hashes it)") for a in sorted(algorithms)]
    return out


def _hash_match(
    image_digests: list[tuple[str, bytes, str]],
    hashes: dict[str, set[bytes]],
    which: str,
    status: Status,
) -> VerifyResult | None:
    """The verdict ``status`` when one of the image's digests is among ``hashes`` (db's or
    dbx's, named ``which``), else None."""
    for algorithm, digest, note in image_digests:
        if digest in hashes.get(algorithm, ()):
            return VerifyResult(
                status,
                f"the image's {algorithm} Authenticode digest{note} is in {which}",
                entry=MatchedEntry(which, "hash", algorithm=algorithm, digest=digest),
            )
    return None


def _edk2_table_problem(img: PeImage) -> str | None:
    """Why edk2's walk over the certificate table would not end at the table's end."""
    table = img.certificate_table
    if table is None:
        return None
    start, size = table
    end, pos = start + size, start
    header, align = wincert_layout.WIN_CERTIFICATE, wincert_layout.WIN_CERTIFICATE_ALIGN
    while pos < end:
        if end - pos <= header.size:
            break
        length, _revision, cert_type = header.unpack_from(img.data, pos)
        if end - pos < length:
            break
        if cert_type == wincert_layout.WIN_CERT_TYPE_PKCS_SIGNED_DATA:
            if length <= header.size:
                break
        elif cert_type == wincert_layout.WIN_CERT_TYPE_EFI_GUID:
            if length <= header.size + 16:
                break
        elif length < header.size:
            break
        pos += (length + align - 1) // align * align
    if pos == end:
        return None
    return (
        f"edk2's walk over the certificate table ({start:#x}+{size:#x}) stops at {pos:#x}, "
        "not at the table's end: firmware rejects the image"
    )


def _dbx_match(
    signer: Cert,
    bag: list[Cert],
    anchors: TrustAnchors,
    cache: CertCache,
    db_anchor: Cert | None,
) -> tuple[MatchedEntry, list[Cert]] | None:
    dbx_certs = cache.many(anchors.dbx_certs)
    if dbx_certs:
        chain, hit = find_chain(signer, bag, dbx_certs)
        if hit is not None:
            return MatchedEntry("dbx", "cert", subject=hit.info.subject, der=hit.der), chain
    checked = [signer, *bag] + ([db_anchor] if db_anchor is not None else [])
    for cert in checked:
        for algorithm, hashes in anchors.dbx_tbs_hashes.items():
            digest = cert.tbs_digest(algorithm)
            if digest in hashes:
                return (
                    MatchedEntry("dbx", "tbs-hash", subject=cert.info.subject,
                                 algorithm=algorithm, digest=digest),
                    [signer] if cert is signer else [signer, cert],
                )
    return None


def verify_image(
    img: PeImage,
    signatures: Sequence[AuthenticodeSignature],
    anchors: TrustAnchors,
    *,
    digests: dict[str, bytes] | None = None,
) -> VerifyResult:
    """Decide whether firmware with these db/dbx would run ``img`` (see the module doc).

    ``signatures`` are the image's signatures from
    :func:`fwtools.crypto.authenticode.image_signatures` (their ``digest_matches`` filled);
    ``digests`` may carry precomputed image digests to avoid hashing again.
    """
    cache = CertCache()
    wanted = set(anchors.dbx_hashes) | set(anchors.db_hashes)
    image_digests = _image_digests(img, wanted, digests)

    revoked_hash = _hash_match(image_digests, anchors.dbx_hashes, "dbx", "revoked")
    if revoked_hash is not None:
        return revoked_hash

    db_certs = cache.many(anchors.db_certs)
    reasons: list[str] = []
    trusted: VerifyResult | None = None
    for sig in signatures:
        label = f"signature {sig.index}"
        if sig.signer is None:
            reasons.append(f"{label}: {sig.error or 'no signer certificate'}")
            continue
        signer = cache.get(sig.signer.der)
        if signer is None:
            reasons.append(f"{label}: signer certificate cannot be parsed")
            continue
        bag = [c for c in cache.many(ci.der for ci in sig.certificates) if c.der != signer.der]
        chain, db_anchor = find_chain(signer, bag, db_certs) if db_certs else ([signer], None)
        revoked = _dbx_match(signer, bag, anchors, cache, db_anchor)
        if revoked is not None:
            entry, revoked_chain = revoked
            return VerifyResult(
                "revoked",
                f"{label} by {signer.info.subject or '?'} is revoked: {entry}",
                [c.info for c in revoked_chain],
                sig.index,
                entry,
            )
        if trusted is not None:
            continue  # keep looking for revocations only, as edk2 does
        if sig.digest_matches is not True:
            if sig.digest_matches is False:
                reasons.append(
                    f"{label}: the image's {sig.digest_algorithm} digest "
                    f"{(sig.computed_digest or b'').hex()} does not match the signed digest "
                    f"{sig.signed_digest.hex()}"
                )
            else:
                reasons.append(f"{label}: image digest not checked ({sig.error or 'unknown'})")
            continue
        if sig.signature_valid is not True:
            reasons.append(f"{label}: {sig.error or 'SignerInfo signature not verified'}")
            continue
        if db_anchor is None:
            reasons.append(
                f"{label}: signer {signer.info.subject} (issuer {signer.info.issuer}) does not "
                "chain to a db certificate"
            )
            continue
        trusted = VerifyResult(
            "trusted",
            f"{label} by {signer.info.subject} chains to db certificate {db_anchor.info.subject}",
            [c.info for c in chain],
            sig.index,
            MatchedEntry("db", "cert", subject=db_anchor.info.subject, der=db_anchor.der),
        )

    table_problem = _edk2_table_problem(img)
    if table_problem is not None:
        return VerifyResult("untrusted", table_problem)
    if trusted is not None:
        return trusted
    allowed_hash = _hash_match(image_digests, anchors.db_hashes, "db", "trusted")
    if allowed_hash is not None:
        return allowed_hash
    if not signatures:
        reasons.append("the image is unsigned and its digest is not in db")
    return VerifyResult("untrusted", "; ".join(reasons))
