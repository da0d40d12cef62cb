"""Audit one variable store for the 2011 -> 2023 Secure Boot CA transition.

:func:`audit_store` reads a store (raw, qcow2 or JSON, through
``fwtools.formats.varstore.storeio.load_store``) and returns a frozen :class:`StoreAudit`:
the Secure Boot state, who owns the PK, every PK/KEK/db certificate, which of Microsoft's
CAs the store trusts, the dbx against Microsoft's published revocations, SbatLevel against the
latest published, findings (code, severity, what happens to whom) and the update paths that
apply. Nothing here raises for a bad store: the error is the result's ``error``.

Firmware rules cited: edk2 ``SecurityPkg/Library/AuthVariableLib/AuthVariableLib.c``
(SecureBootEnable defaults to enabled when PK exists and the variable does not; Setup Mode is
"no PK"), ``SecurityPkg/Library/DxeImageVerificationLib/DxeImageVerificationLib.c`` (an image
verifies when a db certificate anchors its signature and neither its hash nor any of its
certificates is in dbx; certificate validity dates are not checked).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from fwtools._base.severity import Severity
from fwtools.errors import FwError
from fwtools.fleet.known import (
    CA_BY_KEY,
    CA_BY_SHA256,
    DB_UPDATE_DIR,
    DB_UPDATES,
    DBX_UPDATE_DIR,
    KEK_UPDATE_BY_PK_SHA1,
    KNOWN_PKS,
    MICROSOFT_CAS,
    TRUST_KEYS,
    Generation,
    PkOwner,
    latest_sbat_level,
    published_dbx,
)
from fwtools.fleet.sources import StoreRef

if TYPE_CHECKING:
    import uuid

    from fwtools.crypto.x509info import CertificateInfo
    from fwtools.fleet.pcrs import PcrConsequences
    from fwtools.formats.efi.siglist import SignatureDatabase
    from fwtools.formats.varstore.storeio import LoadedStore

Mode = Literal["setup", "user", "audit", "deployed"]
# A step after the audit of a store that was read: (store, reference, audit) -> audit.
Then = Callable[["LoadedStore", StoreRef, "StoreAudit"], "StoreAudit"]


@dataclass(frozen=True)
class Certificate:
    """One X.509 entry of PK, KEK or db."""

    variable: str
    owner: str  # EFI_SIGNATURE_DATA.SignatureOwner
    subject: str
    issuer: str
    sha256: str
    not_before: str
    not_after: str
    expired: bool
    generation: Generation
    known: str | None  # a trusts key for Microsoft's CAs, else None


@dataclass(frozen=True)
class SecureBootState:
    pk_present: bool
    secure_boot_enable: bool | None  # the variable; None when absent
    setup_mode: bool | None  # SetupMode/AuditMode/DeployedMode/CustomMode where stored
    audit_mode: bool | None
    deployed_mode: bool | None
    custom_mode: bool | None
    mode: Mode
    enforced: bool  # images are verified at the next boot


@dataclass(frozen=True)
class PkInfo:
    owner: PkOwner
    label: str
    enrolled_by_ovmf: bool  # owner GUIDs of OVMF's EnrollDefaultKeys in PK/KEK/db/dbx
    certificate: Certificate | None
    kek_update: str | None  # where Microsoft's KEK update signed by this PK is published


@dataclass(frozen=True)
class DbxState:
    entries: int
    missing: int
    published: int
    architecture: str
    architecture_from: str
    # Why the store's firmware build cannot take the dbx with every published revocation
    # (its record is over PcdMaxAuthVariableSize: OVMF's 2 MiB build), and the conversion
    # that makes room; None when it fits, nothing is missing or the build is not known.
    limitation: str | None = None


@dataclass(frozen=True)
class SbatState:
    present: bool
    datestamp: str | None
    latest: str | None
    outdated: tuple[str, ...]  # "grub 3 < 5" for each component below the latest level
    current: bool


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str


@dataclass(frozen=True)
class UpdatePath:
    id: str  # owner-edit, signed-kek, signed-db, signed-dbx
    via: Literal["owner", "signed"]
    description: str
    objects: tuple[str, ...] = ()
    limitation: str | None = None  # what this path cannot do for this store, and why


@dataclass(frozen=True)
class StoreAudit:
    path: str
    vm: str | None = None
    format: str | None = None
    error: str | None = None
    layout: str | None = None
    running: bool | None = None
    template: str | None = None
    loader: str | None = None
    secure_boot: SecureBootState | None = None
    pk: PkInfo | None = None
    kek: tuple[Certificate, ...] = ()
    db: tuple[Certificate, ...] = ()
    db_hashes: int = 0
    trusts: Mapping[str, bool] = field(default_factory=dict)
    dbx: DbxState | None = None
    sbat_level: SbatState | None = None
    findings: tuple[Finding, ...] = ()
    update_paths: tuple[UpdatePath, ...] = ()
    # fw-vars audit -v: what the recommended update does to PCR 7 (machine/plan_pcrs.py).
    pcrs: PcrConsequences | None = None


_CA_FILES: Final[dict[str, tuple[str, str]]] = {
    "kek-2011": ("KEK", "2011"), "kek-2023": ("KEK", "2023"),
    "windows-pca-2011": ("db", "windows-2011"), "uefi-ca-2011": ("db", "uefi-2011"),
    "windows-uefi-ca-2023": ("db", "windows-2023"), "uefi-ca-2023": ("db", "uefi-2023"),
    "option-rom-ca-2023": ("db", "oprom-2023"),
}


def audit_store(ref: StoreRef | str, *, now: datetime.datetime | None = None,
                then: Then | None = None) -> StoreAudit:
    """Audit the store ``ref`` names; never raises for a bad store (see ``error``).
    ``then(loaded, ref, audit)`` adds to the audit of a store that was read (fw-vars audit
    -v: machine/plan_pcrs.py)."""
    if isinstance(ref, str):
        ref = StoreRef(ref)
    base = StoreAudit(ref.path, vm=ref.vm, running=ref.running, template=ref.template,
                      loader=ref.loader)
    if ref.error is not None:
        return _failed(base, ref.error)
    from fwtools.formats.varstore.storeio import load_store

    pending = (ref.template is not None and not os.path.lexists(ref.path)
               and os.path.exists(ref.template))
    try:
        # A domain that never ran has no NVRAM file yet: libvirt copies the template at its
        # first start (docs/formatdomain.rst, <nvram template=...>), so that is what it gets.
        loaded = load_store(ref.template if pending and ref.template else ref.path)
        if pending:
            audit = _not_created(audit_loaded(loaded, ref, now=now), ref)
            return then(loaded, ref, audit) if then is not None else audit
        audit = audit_loaded(loaded, ref, now=now)
        if loaded.blank_template:
            audit = _blank(audit, loaded.blank_template)
        return then(loaded, ref, audit) if then is not None else audit
    except FwError as exc:
        return _failed(base, _one_line(str(exc)))
    except MemoryError:
        return _failed(base, f"{ref.path}: out of memory reading the store")
    except Exception as exc:  # pragma: no cover - a safety net, as VariableStore.parse has
        # One store must never stop the audit of the others, nor print a traceback.
        return _failed(base, f"{ref.path}: internal error auditing the store: "
                             f"{type(exc).__name__}: {_one_line(str(exc))}")


def _not_created(audit: StoreAudit, ref: StoreRef) -> StoreAudit:
    from dataclasses import replace

    note = Finding("nvram-not-created", "note",
                   f"{ref.path} does not exist yet: the VM has not started since it was "
                   f"defined, and libvirt will copy {ref.template} there at its first start; "
                   "the findings are the template's")
    return replace(audit, findings=(note, *audit.findings))


def _blank(audit: StoreAudit, what: str) -> StoreAudit:
    """An unformatted template (Debian 12's AAVMF_VARS.fd: 64 MiB of zeros) is no error:
    load_store gives the empty store the firmware formats at first boot, as fw-vars show
    shows it, and that is what a VM made from it starts with (Setup Mode, no keys)."""
    from dataclasses import replace

    note = Finding("blank-template", "note",
                   f"{what}; audited as the empty store it becomes: Setup Mode, no keys")
    return replace(audit, findings=(note, *audit.findings))


def _failed(base: StoreAudit, message: str) -> StoreAudit:
    from dataclasses import replace

    return replace(base, error=message, findings=(
        Finding("store-unreadable", "error", f"{message}; this store was not audited"),))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def audit_loaded(loaded: LoadedStore, ref: StoreRef | None = None, *,
                 now: datetime.datetime | None = None) -> StoreAudit:
    """Audit a store already loaded."""
    from fwtools.formats.efi import guids

    ref = ref or StoreRef(loaded.path)
    now = now or datetime.datetime.now(datetime.UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    findings: list[Finding] = []
    layout = loaded.store.layout.name if loaded.store is not None else None

    dbs: dict[str, SignatureDatabase | None] = {}
    for name, guid in (("PK", guids.EFI_GLOBAL_VARIABLE), ("KEK", guids.EFI_GLOBAL_VARIABLE),
                       ("db", guids.EFI_IMAGE_SECURITY_DATABASE),
                       ("dbx", guids.EFI_IMAGE_SECURITY_DATABASE)):
        dbs[name] = _database(loaded, name, guid, findings)

    certs = {name: _certificates(name, dbs[name], stamp, findings) for name in ("PK", "KEK", "db")}
    state = _secure_boot_state(loaded, pk_present=bool(dbs["PK"] and len(dbs["PK"])))
    pk = _pk_info(certs["PK"], dbs) if state.pk_present else None
    trusts = _trusts(certs, dbs["dbx"])
    dbx = _dbx_state(loaded, dbs["dbx"], ref)
    sbat = _sbat_state(loaded)
    db_hashes = sum(len(sl.entries) for sl in (dbs["db"].lists if dbs["db"] else ())
                    if not sl.is_x509)

    findings += _container_findings(ref, loaded.format)
    findings += _findings(state, pk, certs, trusts, dbx, sbat)
    paths = _update_paths(pk, trusts, dbx)
    return StoreAudit(
        ref.path, vm=ref.vm, format=loaded.format, error=None, layout=layout,
        running=ref.running, template=ref.template, loader=ref.loader, secure_boot=state,
        pk=pk, kek=certs["KEK"], db=certs["db"], db_hashes=db_hashes, trusts=trusts, dbx=dbx,
        sbat_level=sbat, findings=tuple(findings), update_paths=paths,
    )


# -- reading ------------------------------------------------------------------------------


def _database(loaded: LoadedStore, name: str, guid: uuid.UUID,
              findings: list[Finding]) -> SignatureDatabase | None:
    from fwtools.formats.efi.siglist import SignatureDatabase

    var = loaded.get(name, guid)
    if var is None:
        return None
    try:
        return SignatureDatabase.parse(bytes(var.data))
    except FwError as exc:
        findings.append(Finding("malformed-variable", "error",
                                f"{name} is not a valid signature database ({_one_line(str(exc))})"
                                f": firmware ignores or rejects it, so what it should hold is "
                                f"not in force"))
        return None


@functools.lru_cache(maxsize=512)
def _info(der: bytes) -> CertificateInfo:
    from fwtools.crypto.x509info import certificate_info

    return certificate_info(der)


def _certificates(name: str, db: SignatureDatabase | None, stamp: str,
                  findings: list[Finding]) -> tuple[Certificate, ...]:
    if db is None:
        return ()
    out = []
    for _, _, sl, entry in db.entries():
        if not sl.is_x509:
            continue
        try:
            info = _info(bytes(entry.data))
        except FwError as exc:
            findings.append(Finding("malformed-certificate", "warning",
                                    f"a {name} entry is not an X.509 certificate "
                                    f"({_one_line(str(exc))}): firmware cannot use it"))
            continue
        known = CA_BY_SHA256.get(info.sha256)
        out.append(Certificate(
            name, str(entry.owner), info.subject, info.issuer, info.sha256, info.not_before,
            info.not_after, info.not_after < stamp, known.generation if known else "other",
            known.key if known else None,
        ))
    return tuple(out)


def _flag(loaded: LoadedStore, name: str, guid: uuid.UUID) -> bool | None:
    var = loaded.get(name, guid)
    if var is None or not var.data:
        return None
    return bytes(var.data)[0] != 0


def _secure_boot_state(loaded: LoadedStore, *, pk_present: bool) -> SecureBootState:
    from fwtools.formats.efi import guids

    g = guids.EFI_GLOBAL_VARIABLE
    sbe = _flag(loaded, "SecureBootEnable", guids.EFI_SECURE_BOOT_ENABLE_DISABLE)
    audit_mode = _flag(loaded, "AuditMode", g)
    deployed = _flag(loaded, "DeployedMode", g)
    mode: Mode = "setup"
    if pk_present:
        mode = "deployed" if deployed else "audit" if audit_mode else "user"
    # AuthVariableLib.c: with a PK and no SecureBootEnable, the firmware creates it enabled.
    enforced = pk_present and sbe is not False and mode != "audit"
    return SecureBootState(pk_present, sbe, _flag(loaded, "SetupMode", g), audit_mode, deployed,
                           _flag(loaded, "CustomMode", guids.EFI_CUSTOM_MODE_ENABLE), mode,
                           enforced)


def _pk_info(certs: tuple[Certificate, ...], dbs: dict[str, SignatureDatabase | None]) -> PkInfo:
    from fwtools.formats.efi import guids

    ovmf = any(entry.owner == guids.OVMF_ENROLL_DEFAULT_KEYS
               for db in dbs.values() if db is not None for _, _, _, entry in db.entries())
    if not certs:
        return PkInfo("custom", "PK holds no X.509 certificate", ovmf, None, None)
    cert = certs[0]
    owner: PkOwner = "custom"
    label = cert.subject
    for known in KNOWN_PKS:
        if known.sha256 == cert.sha256 or _subject_matches(cert.subject, known.subject_cn_prefix,
                                                           known.subject_o):
            owner, label = known.owner, known.label
            break
    der = _pk_der(dbs["PK"])
    update = KEK_UPDATE_BY_PK_SHA1.get(hashlib.sha1(der).hexdigest()) if der else None
    return PkInfo(owner, label, ovmf, cert, update.source if update else None)


def _pk_der(db: SignatureDatabase | None) -> bytes | None:
    if db is None:
        return None
    for _, _, sl, entry in db.entries():
        if sl.is_x509:
            return bytes(entry.data)
    return None


def _subject_matches(subject: str, cn_prefix: str | None, org: str | None) -> bool:
    """By the subject's CN when it has one, else by its O (bookworm's SnakeOil key has no
    CN)."""
    cn = _attribute(subject, "CN")
    if cn is not None:
        return cn_prefix is not None and cn.startswith(cn_prefix)
    return org is not None and _attribute(subject, "O") == org


def _attribute(subject: str, name: str) -> str | None:
    """The first ``name=`` value of a subject as x509info formats it (RFC 4514 order of
    fwtools.crypto.x509info.format_name; values with escaped commas are not split apart
    correctly, which only matters for names fwtools does not recognise anyway)."""
    for part in subject.split(","):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value
    return None


@functools.cache
def _tbs_sha256(key: str) -> bytes:
    from asn1crypto import x509

    from fwtools.crypto.secureboot import MICROSOFT_DB, MICROSOFT_KEK, shipped_certificate

    var, sel = _CA_FILES[key]
    der = shipped_certificate("microsoft", (MICROSOFT_KEK if var == "KEK" else MICROSOFT_DB)[sel])
    return hashlib.sha256(x509.Certificate.load(der)["tbs_certificate"].dump()).digest()


def _revoked(key: str, dbx: SignatureDatabase | None) -> bool:
    """Whether dbx revokes Microsoft's CA ``key`` (its DER as an X.509 entry, or its TBS
    SHA-256 as an EFI_CERT_X509_SHA256 entry: DxeImageVerificationLib IsCertHashFoundInDbx)."""
    from fwtools.formats.efi import guids

    if dbx is None:
        return False
    for _, _, sl, entry in dbx.entries():
        if sl.is_x509 and hashlib.sha256(bytes(entry.data)).hexdigest() == CA_BY_KEY[key].sha256:
            return True
        if sl.signature_type == guids.CERT_X509_SHA256 and bytes(entry.data)[:32] == _tbs_sha256(
                key):
            return True
    return False


def _trusts(certs: dict[str, tuple[Certificate, ...]],
            dbx: SignatureDatabase | None) -> dict[str, bool]:
    out = {}
    for ca in MICROSOFT_CAS:
        present = any(c.known == ca.key for c in certs[ca.variable])
        out[ca.key] = present and not _revoked(ca.key, dbx)
    return {k: out[k] for k in TRUST_KEYS}


def _architecture(layout: str | None, ref: StoreRef, fmt: str) -> tuple[str, str]:
    if ref.architecture:
        return ref.architecture, "the domain's <os><type arch=...>"
    if layout is not None and layout.startswith("aavmf"):
        return "aarch64", f"layout {layout} (ArmVirtQemu's 64 MiB flash)"
    if layout is not None:
        return "x64", f"layout {layout} (OVMF; 32-bit OVMF shares it, x64 assumed)"
    return "x64", f"a {fmt} store has no flash layout; x64 assumed"


def _dbx_state(loaded: LoadedStore, dbx: SignatureDatabase | None, ref: StoreRef) -> DbxState:
    from fwtools.formats.efi import guids

    store = loaded.store
    layout = store.layout.name if store is not None else None
    arch, why = _architecture(layout, ref, loaded.format)
    published = published_dbx().images.get(arch, frozenset())
    have: set[bytes] = set()
    entries = 0
    if dbx is not None:
        for _, _, sl, entry in dbx.entries():
            entries += 1
            if sl.signature_type == guids.CERT_SHA256:
                have.add(bytes(entry.data)[:32])
    missing = published - have
    return DbxState(entries, len(missing), len(published), arch, why,
                    _dbx_limitation(loaded, sorted(missing)))


@functools.lru_cache(maxsize=8)
def _revocations_size(missing: tuple[bytes, ...]) -> int:
    """Bytes of the list adding ``missing`` (most stores of a host miss the same ones)."""
    from fwtools.fleet.known import revocation_list

    return len(revocation_list(missing).to_bytes())


def _dbx_limitation(loaded: LoadedStore, missing: list[bytes]) -> str | None:
    """Why the build cannot take dbx with the ``missing`` revocations added, as fw-vars update
    would write them (``revocation_list``, appended): the record over the build's limit
    (``setvar.check_limit``, the rule every write obeys) and the layout that takes it
    (``relayout.larger_layout_hint``, what fw-vars dbx says). A signed update carrying the
    same revocations is refused the same way: firmware checks the size before the
    signature. None when it fits.

    Only the size matters: none of ``missing`` is in a stored SHA-256 list, so the append
    filters nothing (``SignatureDatabase.append_write``) and the new content is the stored one
    followed by the new list."""
    store = loaded.store
    if store is None or not missing:
        return None
    from fwtools.formats.efi import guids
    from fwtools.formats.efi.authvar import SECURE_BOOT_ATTRIBUTES
    from fwtools.formats.varstore.errors import VariableTooLargeError
    from fwtools.formats.varstore.model import Variable
    from fwtools.formats.varstore.relayout import larger_layout_hint
    from fwtools.formats.varstore.setvar import check_limit

    old = loaded.get("dbx", guids.EFI_IMAGE_SECURITY_DATABASE)
    size = (len(old.data) if old is not None else 0) + _revocations_size(tuple(missing))
    attributes = old.attributes if old is not None else SECURE_BOOT_ATTRIBUTES
    latest = Variable("dbx", guids.EFI_IMAGE_SECURITY_DATABASE, attributes, bytes(size))
    try:
        check_limit(store.layout, latest, store.authenticated)
    except VariableTooLargeError as exc:
        return (f"with the {len(missing)} missing revocations dbx needs a {exc.size}-byte "
                f"record, over this build's {exc.pcd} of {exc.limit} bytes, so the firmware "
                f"refuses the write whoever signed it; "
                f"{larger_layout_hint(loaded.path, store.layout, exc)}")
    return None


def _sbat_state(loaded: LoadedStore) -> SbatState:
    from fwtools.formats.efi import guids
    from fwtools.formats.sbat import parse_sbat_level

    latest = latest_sbat_level()
    var = loaded.get("SbatLevel", guids.SHIM_LOCK)
    latest_stamp = latest.datestamp if latest else None
    if var is None:
        return SbatState(False, None, latest_stamp, (), False)
    try:
        level = parse_sbat_level(bytes(var.data), strict=False)
    except FwError:
        return SbatState(True, None, latest_stamp, ("unreadable",), False)
    outdated = []
    if latest is not None:
        have = level.generations
        for comp, gen in latest.generations.items():
            if have.get(comp, 1) < gen:
                outdated.append(f"{comp} {have.get(comp, 1)} < {gen}")
    current = not outdated and (latest is None or level.datestamp >= latest.datestamp)
    return SbatState(True, level.datestamp, latest_stamp, tuple(outdated), current)


# -- findings -----------------------------------------------------------------------------


_DECLARED: Final[dict[str, str]] = {"raw": "edk2-raw", "qcow2": "qcow2"}


def _container_findings(ref: StoreRef, actual: str) -> list[Finding]:
    """libvirt's ``<nvram format=...>`` against the file's content: QEMU maps the file as
    declared, so a qcow2 file declared raw is flash holding a qcow2 header to the firmware."""
    declared = _DECLARED.get(ref.declared_format or "")
    if declared is None or declared == actual:
        return []
    return [Finding("nvram-format-mismatch", "error",
                    f"the domain declares its NVRAM {ref.declared_format} but the file is "
                    f"{actual}: QEMU maps it as {ref.declared_format}, so the firmware finds no "
                    "variable store and formats a new one: the VM boots without its keys and "
                    "boot entries")]


def _lower(severity: Severity, enforced: bool) -> Severity:
    """A refusal that cannot happen while nothing is verified is one level less severe."""
    if enforced:
        return severity
    return "warning" if severity == "error" else "note"


def _findings(state: SecureBootState, pk: PkInfo | None, certs: dict[str, tuple[Certificate, ...]],
              trusts: Mapping[str, bool], dbx: DbxState, sbat: SbatState) -> list[Finding]:
    out: list[Finding] = []
    on = state.enforced
    if not state.pk_present:
        out.append(Finding("setup-mode", "note",
                           "no PK: the store is in Setup Mode and Secure Boot is off, so every "
                           "image boots, signed or not; the CA transition applies once keys are "
                           "enrolled"))
    elif state.secure_boot_enable is False:
        out.append(Finding("secure-boot-disabled", "note",
                           "SecureBootEnable is 0: nothing is verified at boot; the refusals "
                           "below happen once Secure Boot is turned on"))
    elif state.mode == "audit":
        out.append(Finding("audit-mode", "note", "AuditMode is 1: images are measured but "
                           "not refused"))
    if pk is not None and pk.owner == "test-key":
        out.append(Finding("test-key-pk", "warning",
                           f"PK is the {pk.label}: anyone can sign KEK and db changes and "
                           "boot images this VM accepts; Secure Boot here protects nothing"))
    if trusts["uefi-ca-2011"] and not trusts["uefi-ca-2023"]:
        out.append(Finding("uefi-ca-2023-missing", _lower("error", on),
                           "Microsoft UEFI CA 2023 is not in db: images signed only by it will be "
                           "refused: shims, GRUBs and other third-party loaders Microsoft signs "
                           "from 2026 on (UEFI CA 2011 expired 2026-06-27), so new Linux "
                           "distribution shims will not boot on this VM"))
    if trusts["windows-pca-2011"] and not trusts["windows-uefi-ca-2023"]:
        out.append(Finding("windows-uefi-ca-2023-missing", _lower("error", on),
                           "Windows UEFI CA 2023 is not in db: Windows boot managers signed only "
                           "by it will be refused: Windows media and boot manager updates "
                           "signed after Windows Production PCA 2011 (expired 2026-10-19)"))
    if (trusts["uefi-ca-2011"] or trusts["uefi-ca-2023"]) and not trusts["option-rom-ca-2023"]:
        out.append(Finding("option-rom-ca-2023-missing", _lower("warning", on),
                           "Microsoft Option ROM UEFI CA 2023 is not in db: option ROMs signed "
                           "only by it will be refused: UEFI drivers of passed-through PCI "
                           "devices (GPUs, NICs) signed from 2026 on do not load"))
    if trusts["kek-2011"] and not trusts["kek-2023"]:
        out.append(Finding("kek-2023-missing", "warning",
                           "Microsoft KEK 2K CA 2023 is not in KEK: db and dbx updates Microsoft "
                           "signs with it will be refused: Windows Update and fwupd cannot "
                           "apply the updates published after KEK CA 2011 expired (2026-06-24)"))
    for key in TRUST_KEYS:
        var = CA_BY_KEY[key].variable
        if any(c.known == key for c in certs[var]) and not trusts[key]:
            out.append(Finding("ca-revoked", "note",
                               f"{CA_BY_KEY[key].name} is in {var} but revoked by dbx: "
                               "images signed by it are refused"))
    expired = [c for v in ("PK", "KEK", "db") for c in certs[v] if c.expired]
    if expired:
        names = ", ".join(sorted({_short(c.subject) for c in expired}))
        out.append(Finding("certificate-expired", "note",
                           f"{len(expired)} enrolled certificate(s) expired ({names}): firmware "
                           "does not check expiry, so images signed while they were valid still "
                           "boot, but nothing new is signed with them"))
    microsoft_db = any(trusts[k] for k in ("windows-pca-2011", "uefi-ca-2011",
                                           "windows-uefi-ca-2023", "uefi-ca-2023"))
    if microsoft_db and dbx.missing:
        out.append(Finding("dbx-outdated", _lower("warning", on),
                           f"dbx lacks {dbx.missing} of the {dbx.published} revocations "
                           f"Microsoft publishes for {dbx.architecture}: the known-vulnerable "
                           "boot loaders they name (old shims, GRUBs, Windows boot managers "
                           "signed by the CAs in db) still boot on this VM"))
        if dbx.limitation is not None:
            out.append(Finding("dbx-too-large", "warning",
                               f"this firmware build cannot take the latest dbx: "
                               f"{dbx.limitation}; until the store is converted neither "
                               "fw-vars update (signed or as the owner) nor the guest "
                               "(Windows Update, fwupd) can add the revocations"))
    if state.pk_present:
        if not sbat.present:
            out.append(Finding("sbat-level-missing", "note",
                               "no SbatLevel: shim writes its built-in level at first boot; "
                               "until then every SBAT generation it does not itself revoke "
                               f"still starts (latest published: {sbat.latest})"))
        elif not sbat.current:
            out.append(Finding("sbat-level-outdated", _lower("warning", on),
                               f"SbatLevel {sbat.datestamp} is older than the latest published "
                               f"({sbat.latest}): loaders below it still start "
                               f"({'; '.join(sbat.outdated) or 'older datestamp'})"))
    return out


def _short(subject: str) -> str:
    return _attribute(subject, "CN") or subject


def _update_paths(pk: PkInfo | None, trusts: Mapping[str, bool],
                  dbx: DbxState) -> tuple[UpdatePath, ...]:
    paths = [UpdatePath(
        "owner-edit", "owner",
        "offline, with the VM off: write KEK 2023 and the 2023 db CAs (and dbx, SbatLevel) "
        "directly, as the machine's owner (fw-vars update --via owner; edk2 keeps no record "
        "of how a variable was written, so nothing is re-verified)",
        limitation=f"dbx cannot be written: {dbx.limitation}" if dbx.limitation else None)]
    if pk is not None and pk.kek_update is not None:
        paths.append(UpdatePath(
            "signed-kek", "signed",
            "Microsoft's KEK update (adds KEK 2023) signed by this store's PK", (pk.kek_update,)))
    if trusts["kek-2011"]:
        missing = [name for name, key in DB_UPDATES if not trusts[key]]
        paths.append(UpdatePath(
            "signed-db", "signed",
            "Microsoft's signed db updates (KEK CA 2011 signed them, and it is in KEK)",
            tuple(f"{DB_UPDATE_DIR}/{n}" for n in missing)))
    elif trusts["kek-2023"]:
        paths.append(UpdatePath(
            "signed-db", "signed",
            "db updates signed under KEK 2023 (none published yet by Microsoft)"))
    dirname = DBX_UPDATE_DIR.get(dbx.architecture, dbx.architecture)
    if trusts["kek-2011"] or trusts["kek-2023"]:
        objects = []
        if trusts["kek-2011"]:
            objects.append(f"microsoft/secureboot_objects PostSignedObjects/DBX/{dirname}/"
                           "DBXUpdate.bin (signed under KEK CA 2011)")
        if trusts["kek-2023"]:
            objects.append("microsoft/secureboot_objects PostSignedObjects: the dbx signed "
                           f"under KEK 2023 for {dbx.architecture} (dbx_*.efiauth2)")
        paths.append(UpdatePath("signed-dbx", "signed",
                                "Microsoft's signed dbx update for this architecture",
                                tuple(objects),
                                limitation=f"firmware refuses it here: {dbx.limitation}"
                                if dbx.limitation else None))
    return tuple(paths)
