"""Whether firmware, shim and GRUB let each stage of a boot chain run.

Firmware (edk2 SecurityPkg/Library/DxeImageVerificationLib/DxeImageVerificationLib.c,
``DxeImageVerificationHandler``): Secure Boot off loads everything; on, an image is refused
when its hash or a certificate of its signers' chains is in dbx, allowed when a signature
chains to a db certificate or its hash is in db, else refused (LoadImage returns
EFI_ACCESS_DENIED and BdsDxe prints ``failed to load Boot####``). The rules themselves are
:func:`fwtools.crypto.trust.verify_image`; this module says which databases apply.

shim (rhboot/shim ``shim.c`` ``verify_buffer_authenticode``/``verify_one_signature``,
``pe.c`` ``verify_buffer``, ``sbat.c``), in secure mode:

1. SBAT first (``verify_buffer_sbat``): the next stage's ``.sbat`` rows against the
   effective SbatLevel. An image shim loads itself must have a ``.sbat`` section; one
   verified through the shim_lock protocol or the LoadImage hook (``in_protocol``) may lack
   it. The effective level is the store's SbatLevel, or shim's built-in ``automatic``
   level when the variable is missing or has an older datestamp
   (``preserve_sbat_uefi_variable``). shim also checks its own ``.sbat`` against it
   (the "SBAT self-check").
2. denylist (``check_denylist``): dbx, shim's vendor dbx, MokListX (hashes and
   certificates).
3. allowlist (``check_allowlist``): db (unless ``MokDBState``, mirrored as MokIgnoreDB, is
   set), the vendor db (``VENDOR_DB_FILE``), MokList; then the vendor certificate
   (``.vendor_cert``).
4. ``MokSBState`` non-zero: shim does not verify at all ("Booting in insecure mode").

shim reads its state variables (MokList, MokListX, MokSBState, MokDBState: mok.c
``mok_state_variable_data``) only when stored the way MokManager stores them: NV or BS set,
RT clear (``import_one_mok_state``: one with RUNTIME_ACCESS, which only an OS could have
written, is deleted and ignored). It keeps the SbatLevel variable only with exactly NV|BS or
NV|BS|TIME_BASED_AUTH (sbat.c ``check_sbat_var_attributes``); otherwise it writes its own.

Failures print ``console_error(L"Verification failed", efi_status)``: ``Verification
failed: (0x1A) Security Violation``. EFI_SECURITY_VIOLATION's text depends on shim's
version: shim 16 prints "Security Violation" (seen on the console of Debian 13's shim 16.1
in QEMU, tests/e2e/test_vm_qemu.py), shim 15.x "Security Policy Violation" (gnu-efi's old
table; the "SBAT self-check failed: Security Policy Violation" reports of 2024). GRUB's
shim_lock verifier (grub-core/kern/efi/sb.c) prints ``error: bad shim signature.``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from fwtools.crypto.trust import TrustAnchors, VerifyResult, verify_image
from fwtools.formats.efi import guids
from fwtools.formats.efi.siglist import SignatureList, parse_signature_lists

if TYPE_CHECKING:
    from fwtools.crypto.authenticode import AuthenticodeSignature
    from fwtools.formats.pe.image import PeImage
    from fwtools.formats.pe.shim_sections import VendorCert
    from fwtools.formats.sbat import Sbat, SbatLevel
    from fwtools.formats.varstore.model import Variable
    from fwtools.formats.varstore.storeio import LoadedStore

AuthorityKind = Literal["db-certificate", "db-hash", "shim-vendor-certificate",
                        "shim-vendor-db", "mok-certificate", "mok-hash", "secure-boot-off",
]
Component = Literal["firmware", "shim", "grub"]
#: The denylist that revoked an image: the store's dbx, shim's built-in vendor dbx
#: (``vendor_deauthorized``), MokListX; and what matched: the image's hash, a certificate of
#: a signer's chain (an EFI_CERT_X509 entry) or a certificate's TBS hash
#: (EFI_CERT_X509_SHA256/384/512).
Denylist = Literal["dbx", "shim-vendor-dbx", "mokx"]
RevokedEntry = Literal["hash", "certificate", "certificate-hash"]



def security_violation_text(shim_version: str | None) -> str:
    """EFI_SECURITY_VIOLATION as this shim's %r prints it (module doc)."""
    major = (shim_version or "").split(".")[0]
    return "Security Policy Violation" if major.isdigit() and int(major) < 16 else \
        "Security Violation"


def shim_verification_failed(shim_version: str | None) -> str:
    return f"Verification failed: (0x1A) {security_violation_text(shim_version)}"


def shim_self_check_failed(shim_version: str | None) -> str:
    text = security_violation_text(shim_version)
    return (f"Verifying shim SBAT data failed: {text}\n"
            f"Something has gone seriously wrong: SBAT self-check failed: {text}")

def shim_hook_verification_failed(shim_version: str | None) -> str | None:
    """What shim prints when an image loaded through its LoadImage hook fails verification.

    shim 16 hooks LoadImage (loader-proto.c ``shim_load_image`` -> pe.c ``handle_image``),
    which reports a failure with ``if (verbose || in_protocol) console_print(L"Verification
    failed: %r\n", efi_status)``: ``%r`` is gnu-efi's status text, "Security Policy
    Violation", not console_error's "(0x1A) Security Violation" (Debian 13's shim 16.1 under
    systemd-boot on QEMU's console, tests/e2e/test_vm_qemu.py). Before 16 there is no hook:
    systemd-boot verifies through shim_lock's Verify from its own security override, and
    shim prints nothing (None)."""
    major = (shim_version or "").split(".")[0]
    if major.isdigit() and int(major) < 16:
        return None
    return "Verification failed: Security Policy Violation"


GRUB_BAD_SIGNATURE: Final = "error: bad shim signature.\nerror: you need to load the kernel first."


@dataclass(frozen=True)
class Authority:
    """How a stage was allowed: ``kind``, and ``subject``/``sha256`` of the certificate
    (its DER) or the hash entry that allowed it."""

    kind: AuthorityKind
    subject: str | None = None
    sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "sha256": self.sha256}


@dataclass(frozen=True)
class Revocation:
    """The denylist entry that refused a stage: ``kind`` is ``<denylist>-<entry>``
    (:data:`Denylist`, :data:`RevokedEntry`), e.g. ``dbx-certificate``; ``subject`` and
    ``sha256`` name the revoked certificate (SHA-256 of its DER), or for ``-hash`` the
    image's hash entry (``subject`` is ``"sha256 hash"``), or for ``-certificate-hash`` the
    certificate whose TBS hash the entry holds and that hash (SHA-384/512 entries: the hash
    in ``subject``, ``sha256`` null)."""

    kind: str
    subject: str | None
    sha256: str | None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "sha256": self.sha256}


def revocation(result: VerifyResult, denylist: Denylist) -> Revocation | None:
    """The entry of ``denylist`` that revoked the image, from :func:`verify_image`'s result
    (its ``entry`` and, for certificates, the chain ending at the dbx entry)."""
    entry = result.entry
    if result.status != "revoked" or entry is None:
        return None
    if entry.kind == "cert":  # the chain ends at that certificate
        cert = result.chain[-1] if result.chain else None
        return Revocation(f"{denylist}-certificate", cert.subject if cert else entry.subject,
                          cert.sha256 if cert else None)
    # a SHA-384/512 entry is named with its hash in the subject, ``sha256`` being SHA-256 only
    algorithm, digest = entry.algorithm, (entry.digest or b"").hex()
    sha256 = digest if algorithm == "sha256" else None
    if entry.kind == "tbs-hash":
        subject = entry.subject
        if sha256 is None:
            subject = f"{subject} ({algorithm} TBS hash {digest})"
        return Revocation(f"{denylist}-certificate-hash", subject, sha256)
    return Revocation(f"{denylist}-hash",
                      f"{algorithm} hash" + ("" if sha256 else f" {digest}"), sha256)


@dataclass(frozen=True)
class SbatCheck:
    """A stage's SBAT against the level shim applies: which level (``level`` datestamp and
    where it came from), pass or fail, and the row that failed."""

    level: str
    source: str
    passed: bool
    failed: dict[str, Any] | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "source": self.source,
                "result": "pass" if self.passed else "fail", "failed_row": self.failed,
                "note": self.note}


@dataclass
class Decision:
    """One component's decision on one image."""

    allowed: bool
    by: Component
    reason: str
    authority: Authority | None = None
    message: str | None = None
    sbat: SbatCheck | None = None
    revoked: Revocation | None = None


@dataclass
class SecureBootState:
    enabled: bool
    reason: str
    pk: bool
    secure_boot_enable: int | None
    setup_mode: bool
    firmware_support: bool | None

    def to_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "state": "on" if self.enabled else "off",
                "reason": self.reason, "pk": self.pk,
                "secure_boot_enable": self.secure_boot_enable,
                "mode": "setup" if self.setup_mode else "user",
                "firmware_support": self.firmware_support}


def _lists(store: LoadedStore, name: str, guid: Any) -> tuple[SignatureList, ...] | None:
    var = store.get(name, guid)
    if var is None:
        return None
    data = bytes(var.data)
    return tuple(parse_signature_lists(data)) if data else ()


def _u8(store: LoadedStore, name: str, guid: Any) -> int | None:
    var = store.get(name, guid)
    if var is None:
        return None
    data = bytes(var.data)
    return data[0] if data else 0


@dataclass
class StoreTrust:
    """The trust material a variable store holds for firmware and shim."""

    db: tuple[SignatureList, ...] = ()
    dbx: tuple[SignatureList, ...] = ()
    mok: tuple[SignatureList, ...] = ()
    mokx: tuple[SignatureList, ...] = ()
    mok_sb_state: int | None = None
    mok_ignore_db: bool = False
    sbat_level: SbatLevel | None = None
    sbat_level_error: str | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_store(cls, store: LoadedStore) -> StoreTrust:
        """db/dbx (image security database), shim's MokList/MokListX (or the MokListRT/
        MokListXRT mirrors when only those are stored), MokSBState, MokDBState (or its
        mirror MokIgnoreDB), SbatLevel; shim's state variables only as shim reads them
        (module doc: attributes), each one it ignores with a note."""
        from fwtools.errors import FwError

        out = cls()
        img_db = guids.EFI_IMAGE_SECURITY_DATABASE
        out.db = _lists(store, "db", img_db) or ()
        out.dbx = _lists(store, "dbx", img_db) or ()
        shim_store = _ShimView(store, out.notes)
        for attr, names in (("mok", ("MokList", "MokListRT")),
                            ("mokx", ("MokListX", "MokListXRT"))):
            for name in names:
                found = shim_store.lists(name)
                if found is not None:
                    setattr(out, attr, found)
                    if name.endswith("RT"):
                        out.notes.append(f"{name} read in place of {names[0]}")
                    break
        out.mok_sb_state = shim_store.u8("MokSBState")
        ignore_db = shim_store.u8("MokDBState")
        if ignore_db is None:
            ignore_db = shim_store.u8("MokIgnoreDB")
            if ignore_db is not None:
                out.notes.append("MokIgnoreDB read in place of MokDBState")
        out.mok_ignore_db = bool(ignore_db)
        var = store.get("SbatLevel", guids.SHIM_LOCK)
        if var is not None and var.attributes not in SBAT_LEVEL_ATTRIBUTES:
            out.sbat_level_error = (f"ignored: its attributes {_attrs(var.attributes)} are not "
                                    "NV|BS (or NV|BS|AT), so shim replaces it")
        elif var is not None:
            from fwtools.formats.sbat import parse_sbat_level

            try:
                out.sbat_level = parse_sbat_level(bytes(var.data), strict=False)
            except FwError as exc:
                out.sbat_level_error = f"unreadable: {exc}"
        return out


#: The attributes shim keeps a stored SbatLevel with (sbat.c check_sbat_var_attributes:
#: UEFI_VAR_NV_BS, UEFI_VAR_NV_BS_TIMEAUTH; a shim built with ENABLE_SHIM_DEVEL wants
#: NV|BS|RT instead, which no distribution ships).
SBAT_LEVEL_ATTRIBUTES: Final = frozenset({0x03, 0x23})
#: Of shim's state variables' attributes, one of these must be set (mok.c ``yes_attr``) ...
_MOK_YES_ATTRIBUTES: Final = 0x03  # NON_VOLATILE | BOOTSERVICE_ACCESS
#: ... and this clear (``no_attr``): only an OS could have written such a variable.
_MOK_NO_ATTRIBUTES: Final = 0x04  # RUNTIME_ACCESS
#: The runtime mirrors shim makes of them (volatile, NV clear, RT set): read only when the
#: variable itself is absent, as in a store captured from a running OS.
_MOK_MIRRORS: Final = frozenset({"MokListRT", "MokListXRT", "MokIgnoreDB"})


def _attrs(value: int) -> str:
    from fwtools.formats.efi.authvar import attribute_names

    return "|".join(attribute_names(value, short=True)) or "0"


@dataclass
class _ShimView:
    """A store's shim variables (vendor SHIM_LOCK) as shim's ``import_one_mok_state`` takes
    them: one stored with the wrong attributes is deleted at boot, so it is not there."""

    store: LoadedStore
    notes: list[str]

    def get(self, name: str) -> Variable | None:
        var = self.store.get(name, guids.SHIM_LOCK)
        if var is None or name in _MOK_MIRRORS:
            return var
        if not var.attributes & _MOK_YES_ATTRIBUTES or var.attributes & _MOK_NO_ATTRIBUTES:
            self.notes.append(f"{name} ignored: its attributes {_attrs(var.attributes)} are "
                              "not NV|BS without RT, so shim deletes it at boot "
                              "(mok.c import_one_mok_state)")
            return None
        return var

    def lists(self, name: str) -> tuple[SignatureList, ...] | None:
        var = self.get(name)
        if var is None:
            return None
        data = bytes(var.data)
        return tuple(parse_signature_lists(data)) if data else ()

    def u8(self, name: str) -> int | None:
        var = self.get(name)
        if var is None:
            return None
        data = bytes(var.data)
        return data[0] if data else 0


def secure_boot_state(store: LoadedStore, firmware_support: bool | None) -> SecureBootState:
    """Secure Boot on or off as edk2 derives it at boot (docs/reference/formats.md):
    SetupMode = PK absent; SecureBoot = PK present and SecureBootEnable = 1, a missing
    SecureBootEnable being created as 1 when PK is present (SecureBootConfigDxe)."""
    pk_var = store.get("PK", guids.EFI_GLOBAL_VARIABLE)
    pk = pk_var is not None and len(bytes(pk_var.data)) > 0
    sbe = _u8(store, "SecureBootEnable", guids.EFI_SECURE_BOOT_ENABLE_DISABLE)
    if firmware_support is False:
        return SecureBootState(False, "the firmware build has no Secure Boot support", pk, sbe,
                               not pk, firmware_support)
    if not pk:
        return SecureBootState(False, "no PK in the store: setup mode", pk, sbe, True,
                               firmware_support)
    if sbe == 0:
        return SecureBootState(False, "PK enrolled but SecureBootEnable is 0", pk, sbe, False,
                               firmware_support)
    why = ("PK enrolled and SecureBootEnable is 1" if sbe else
           "PK enrolled; SecureBootEnable is absent, so the firmware creates it as 1")
    if firmware_support is None:
        why += " (assuming the firmware supports Secure Boot)"
    return SecureBootState(True, why, pk, sbe, False, firmware_support)


def _authority(result: VerifyResult, cert_kind: AuthorityKind,
               hash_kind: AuthorityKind) -> Authority:
    if result.chain:
        anchor = result.chain[-1]
        return Authority(cert_kind, anchor.subject, anchor.sha256)
    entry = result.entry
    if entry is None or entry.digest is None:
        return Authority(hash_kind, None, None)
    return Authority(hash_kind, f"{entry.algorithm} hash", entry.digest.hex())


def firmware_verify(img: PeImage, sigs: list[AuthenticodeSignature], trust: StoreTrust,
                    secure_boot: bool) -> Decision:
    """edk2's decision on loading ``img`` from disk (the boot manager's LoadImage)."""
    if not secure_boot:
        return Decision(True, "firmware", "Secure Boot is off",
                        Authority("secure-boot-off"))
    result = verify_image(img, sigs, TrustAnchors.from_signature_lists(trust.db, trust.dbx))
    if result.trusted:
        return Decision(True, "firmware", result.reason,
                        _authority(result, "db-certificate", "db-hash"))
    return Decision(False, "firmware", result.reason, message="Access Denied",
                    revoked=revocation(result, "dbx"))


@dataclass
class ShimTrust:
    """What one shim binary brings: its vendor certificate or vendor db, its vendor dbx and
    its built-in SbatLevel (``automatic``), plus the effective SbatLevel it applies."""

    path: str
    vendor: VendorCert | None
    builtin_level: SbatLevel | None
    level: SbatLevel | None
    level_source: str
    own_sbat: Sbat | None
    version: str | None = None

    @classmethod
    def from_image(cls, img: PeImage, trust: StoreTrust) -> ShimTrust:
        from fwtools.formats.pe.shim_sections import ShimIdent, ShimSbatLevel, VendorCert
        from fwtools.formats.pe.special import special_sections
        from fwtools.formats.sbat import Sbat

        vendor: VendorCert | None = None
        builtin: SbatLevel | None = None
        own: Sbat | None = None
        version: str | None = None
        for sect in special_sections(img):
            if isinstance(sect.decoded, VendorCert):
                vendor = sect.decoded
            elif isinstance(sect.decoded, ShimSbatLevel):
                builtin = sect.decoded.automatic
            elif isinstance(sect.decoded, Sbat):
                own = sect.decoded
            elif isinstance(sect.decoded, ShimIdent):
                version = sect.decoded.version
        level, source = effective_sbat_level(trust, builtin)
        return cls(img.path or "shim", vendor, builtin, level, source, own, version)


def effective_sbat_level(trust: StoreTrust,
                         builtin: SbatLevel | None) -> tuple[SbatLevel | None, str]:
    """The SbatLevel shim applies: the store's unless missing, unreadable, stored with
    attributes shim does not keep (:data:`SBAT_LEVEL_ATTRIBUTES`) or older than
    shim's built-in automatic level (shim sbat.c ``preserve_sbat_uefi_variable`` keeps the
    variable when its datestamp is at least the candidate's)."""
    stored = trust.sbat_level
    if stored is None:
        why = ("the store has no SbatLevel" if trust.sbat_level_error is None
               else f"the store's SbatLevel is {trust.sbat_level_error}")
        if builtin is None:
            return None, why + " and shim has no built-in level"
        return builtin, f"shim's built-in automatic level ({why})"
    if builtin is not None and stored.datestamp < builtin.datestamp:
        return builtin, (f"shim's built-in automatic level (the store's SbatLevel "
                         f"{stored.datestamp} is older, so shim replaces it)")
    return stored, "the store's SbatLevel variable"


def sbat_check(sbat: Sbat | None, level: SbatLevel | None, source: str, *,
               required: bool) -> SbatCheck:
    """shim's ``verify_sbat``: every row against the level's minimum for its component."""
    from fwtools.formats.sbat import revocations

    stamp = level.datestamp if level is not None else ""
    if sbat is None:
        if required:
            return SbatCheck(stamp, source, False, note="no .sbat section (shim requires one "
                             "for images it loads itself)")
        return SbatCheck(stamp, source, True, note="no .sbat section (not required here)")
    if level is None:
        return SbatCheck(stamp, source, True, note="no SbatLevel applies")
    revoked = revocations(sbat, level)
    if revoked:
        r = revoked[0]
        return SbatCheck(stamp, source, False, {"component": r.component,
                                                "generation": r.generation,
                                                "minimum": r.minimum})
    return SbatCheck(stamp, source, True)


def _anchors(lists: tuple[SignatureList, ...], dbx: tuple[SignatureList, ...],
             certs: tuple[bytes, ...] = ()) -> TrustAnchors:
    anchors = TrustAnchors.from_signature_lists(lists, dbx)
    anchors.db_certs.extend(certs)
    return anchors


#: An allowlist shim checks: signature lists (db, vendor db, MokList) and certificates (the
#: vendor certificate).
_Allow = tuple[tuple[SignatureList, ...], tuple[bytes, ...]]


def shim_verify(img: PeImage, sigs: list[AuthenticodeSignature], trust: StoreTrust,
                shim: ShimTrust, *, by: Component = "shim",
                in_protocol: bool = False) -> Decision:
    """shim's decision on ``img`` (secure mode): SBAT, denylist, allowlist, vendor cert.
    ``in_protocol`` is True for the shim_lock Verify call and the LoadImage hook (SBAT
    optional, as in shim's ``verify_sbat_section``); ``by`` names who prints the refusal
    (``grub`` for the shim_lock verifier)."""
    failed_msg: str | None
    if by == "grub":
        failed_msg = GRUB_BAD_SIGNATURE
    elif in_protocol:  # the LoadImage hook (systemd-boot)
        failed_msg = shim_hook_verification_failed(shim.version)
    else:
        failed_msg = shim_verification_failed(shim.version)
    if trust.mok_sb_state:
        return Decision(True, by, "MokSBState is set: shim does not verify (insecure mode)",
                        Authority("secure-boot-off", "MokSBState: shim validation disabled"))
    from fwtools.formats.pe.special import special_sections
    from fwtools.formats.sbat import Sbat

    # pe.c verify_buffer: verify_buffer_sbat first, for every image shim verifies (itself,
    # through shim_lock or the LoadImage hook); only a missing .sbat is allowed in_protocol
    own = next((s.decoded for s in special_sections(img) if isinstance(s.decoded, Sbat)), None)
    sbat = sbat_check(own, shim.level, shim.level_source, required=not in_protocol)
    if not sbat.passed:
        row = sbat.failed
        why = (f"SBAT: {row['component']} generation {row['generation']} is below the "
               f"minimum {row['minimum']} of SbatLevel {sbat.level}" if row else
               f"SBAT: {sbat.note}")
        return Decision(False, by, why, message=failed_msg, sbat=sbat)
    vendor = shim.vendor
    vendor_dbx = vendor.dbx_lists if vendor is not None else ()
    dbx = (*trust.dbx, *vendor_dbx, *trust.mokx)
    candidates: list[tuple[_Allow, AuthorityKind, AuthorityKind, str]] = []
    if not trust.mok_ignore_db:
        candidates.append(((trust.db, ()), "db-certificate", "db-hash", "db"))
    if vendor is not None and vendor.cert_format == "esl":
        candidates.append(((vendor.db_lists, ()), "shim-vendor-db", "shim-vendor-db",
                           "shim's vendor db"))
    candidates.append(((trust.mok, ()), "mok-certificate", "mok-hash", "MokList"))
    if vendor is not None and vendor.cert_format == "x509":
        candidates.append((((), vendor.certificates), "shim-vendor-certificate",
                           "shim-vendor-certificate", "shim's vendor certificate"))
    digests: dict[str, bytes] = {}
    reasons = []
    for (lists, certs), cert_kind, hash_kind, name in candidates:
        result = verify_image(img, sigs, _anchors(lists, dbx, certs), digests=digests)
        if result.status == "revoked":
            # which denylist, in check_denylist's order (shim.c): the vendor dbx, the
            # store's dbx, MokListX
            denylist: Denylist = "dbx"
            order: tuple[tuple[Denylist, tuple[SignatureList, ...]], ...] = (
                ("shim-vendor-dbx", vendor_dbx), ("dbx", trust.dbx), ("mokx", trust.mokx))
            for which, listed in order:
                if not listed:
                    continue
                one = verify_image(img, sigs, _anchors(lists, listed, certs), digests=digests)
                if one.status == "revoked":
                    denylist, result = which, one
                    break
            where = {"dbx": "dbx", "shim-vendor-dbx": "shim's vendor dbx",
                     "mokx": "MokListX"}[denylist]
            return Decision(False, by, f"forbidden by {where}: {result.reason}",
                            message=failed_msg, sbat=sbat,
                            revoked=revocation(result, denylist))
        if result.trusted:
            return Decision(True, by, f"{name}: {result.reason}",
                            _authority(result, cert_kind, hash_kind), sbat=sbat)
        reasons.append(f"{name}: {result.reason}" if result.reason else f"{name}: no match")
    return Decision(False, by, "not authorized (" + "; ".join(reasons) + ")",
                    message=failed_msg, sbat=sbat)


def shim_self_check(shim: ShimTrust) -> SbatCheck:
    """shim's own ``.sbat`` against the level it applies (``SBAT self-check``)."""
    return sbat_check(shim.own_sbat, shim.level, shim.level_source, required=False)


def der_sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()
