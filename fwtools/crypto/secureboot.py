"""Secure Boot key management on a variable store: enrolment, dbx updates, SbatLevel.

What offline tools must write for "user mode, Secure Boot on" is in docs/reference/formats.md §2.4
(edk2
AuthVariableLib): PK (one X.509 entry), KEK, db, dbx as time-authenticated NV variables
(attributes 0x27) and SecureBootEnable; SetupMode, SecureBoot, VendorKeys and certdbv are
volatile and made by the firmware at every boot, so they are never written. Certificates
come from the caller, or from the Microsoft and distribution certificates shipped in
``fwtools/data`` (see its README for provenance).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Final, Protocol

from fwtools._base.efitime import EfiTime
from fwtools.errors import UsageError, VerificationError
from fwtools.formats.efi import guids
from fwtools.formats.efi.authvar import SECURE_BOOT_ATTRIBUTES, AuthVariable2
from fwtools.formats.efi.siglist import SignatureDatabase

if TYPE_CHECKING:
    from fwtools.crypto.authvar import AuthVerifyResult
    from fwtools.crypto.trust import TrustAnchors
    from fwtools.formats.varstore.model import Variable
    from fwtools.formats.varstore.store import VariableStore

class VariableSource(Protocol):
    """Where variables are looked up: a VariableStore, or a loaded store in any container
    (:class:`fwtools.formats.varstore.storeio.LoadedStore`, JSON included)."""

    def get(self, name: str, guid: uuid.UUID) -> Variable | None: ...


SECURE_BOOT_ENABLE_GUID: Final = guids.EFI_SECURE_BOOT_ENABLE_DISABLE
CUSTOM_MODE_GUID: Final = guids.EFI_CUSTOM_MODE_ENABLE
BS_NV: Final = 0x03  # NON_VOLATILE | BOOTSERVICE_ACCESS

MICROSOFT_KEK: Final[dict[str, str]] = {
    "2011": "MicCorKEKCA2011_2011-06-24.der",
    "2023": "microsoft-corporation-kek-2k-ca-2023.der",
}
# db selections, by what the certificate lets boot.
MICROSOFT_DB: Final[dict[str, str]] = {
    "windows-2011": "MicWinProPCA2011_2011-10-19.der",
    "uefi-2011": "MicCorUEFCA2011_2011-06-27.der",
    "windows-2023": "windows-uefi-ca-2023.der",
    "uefi-2023": "microsoft-uefi-ca-2023.der",
    "oprom-2023": "microsoft-option-rom-uefi-ca-2023.der",
}
MICROSOFT_PK: Final = "WindowsOEMDevicesPK.der"
DISTRO_CERTS: Final[dict[str, str]] = {"debian": "debian-secure-boot-ca.der"}


def shipped_certificate(group: str, name: str) -> bytes:
    """A DER certificate from fwtools/data/<group>/<name>."""
    return (resources.files("fwtools") / "data" / group / name).read_bytes()


def microsoft_kek(years: Iterable[str]) -> list[bytes]:
    return [shipped_certificate("microsoft", MICROSOFT_KEK[y]) for y in years]


def microsoft_db(selection: Iterable[str]) -> list[bytes]:
    return [shipped_certificate("microsoft", MICROSOFT_DB[s]) for s in selection]


def parse_selection(text: str, choices: Sequence[str], *, option: str) -> list[str]:
    """``"2011,2023"`` / ``"all"`` / ``"none"`` into a checked list, in the choices' order."""
    wanted = {t.strip() for t in text.split(",") if t.strip()}
    if wanted == {"none"}:
        return []
    if wanted == {"all"}:
        return list(choices)
    unknown = wanted - set(choices)
    if unknown:
        raise UsageError(
            f"{option}: unknown {', '.join(sorted(unknown))}; choose from "
            f"{', '.join(choices)}, all or none"
        )
    return [c for c in choices if c in wanted]


@dataclass
class EnrollRequest:
    """The keys to enrol. Each database is a list of (DER certificate, owner) plus lists."""

    pk: tuple[bytes, uuid.UUID] | None = None
    kek: SignatureDatabase = field(default_factory=lambda: SignatureDatabase(()))
    db: SignatureDatabase = field(default_factory=lambda: SignatureDatabase(()))
    dbx: SignatureDatabase = field(default_factory=lambda: SignatureDatabase(()))
    secure_boot: bool | None = None
    timestamp: EfiTime | None = None
    replace: bool = False


def _variable(name: str, guid: uuid.UUID, attributes: int, data: bytes,
              timestamp: EfiTime | None) -> Variable:
    from fwtools.formats.varstore.model import Variable

    return Variable(name=name, guid=guid, attributes=attributes, data=data, timestamp=timestamp)


def enroll(store: VariableStore, request: EnrollRequest) -> list[str]:
    """Write PK/KEK/db/dbx and the Secure Boot switches into ``store``; returns what changed.

    Existing KEK/db/dbx keep their entries unless ``replace`` (new entries are merged as an
    append write would); PK is always replaced, since it holds exactly one certificate.
    """
    when = request.timestamp or EfiTime.now()
    changes: list[str] = []
    if request.pk is not None:
        der, owner = request.pk
        pk = SignatureDatabase(()).add_certificate(der, owner)
        store.set(_variable("PK", guids.EFI_GLOBAL_VARIABLE, SECURE_BOOT_ATTRIBUTES,
                            pk.to_bytes(), when))
        changes.append("PK: 1 certificate")
    for name, guid, incoming in (
        ("KEK", guids.EFI_GLOBAL_VARIABLE, request.kek),
        ("db", guids.EFI_IMAGE_SECURITY_DATABASE, request.db),
        ("dbx", guids.EFI_IMAGE_SECURITY_DATABASE, request.dbx),
    ):
        if not incoming.lists:
            continue
        old = store.get(name, guid)
        if old is not None and not request.replace:
            merged = SignatureDatabase.parse(old.data).append_write(incoming)
        else:
            merged = incoming
        store.set(_variable(name, guid, SECURE_BOOT_ATTRIBUTES, merged.to_bytes(), when))
        changes.append(f"{name}: {merged.count} entries")
    if request.secure_boot is not None:
        value = b"\x01" if request.secure_boot else b"\x00"
        store.set(_variable("SecureBootEnable", SECURE_BOOT_ENABLE_GUID, BS_NV, value, None))
        changes.append(f"SecureBootEnable: {value[0]}")
        if request.secure_boot:
            # CustomMode is reset at every boot anyway; writing 0 documents the intent and
            # matches what EnrollDefaultKeys and virt-firmware leave behind.
            store.set(_variable("CustomMode", CUSTOM_MODE_GUID, BS_NV, b"\x00", None))
    return changes


def stored_certificates(store: VariableSource, names: Iterable[tuple[str, uuid.UUID]]) -> list[
    bytes
]:
    """The X.509 certificates in the given signature-database variables of ``store``."""
    certs: list[bytes] = []
    for name, guid in names:
        var = store.get(name, guid)
        if var is None:
            continue
        db = SignatureDatabase.parse(var.data)
        certs.extend(e.data for _i, _j, sl, e in db.entries() if sl.is_x509)
    return certs


@dataclass
class DbxUpdateResult:
    added: int
    already_present: int
    verification: AuthVerifyResult | None
    forced: bool


def apply_signed_update(
    store: VariableStore,
    update: bytes,
    *,
    name: str = "dbx",
    anchors: Sequence[bytes] | None = None,
    force: bool = False,
    attributes: int | None = None,
) -> DbxUpdateResult:
    """Apply a signed append update (a Microsoft DBXUpdate.bin, a db update) as firmware would.

    The signature is checked against ``anchors`` or, by default, the KEK and PK certificates
    already in the store (db/dbx updates must be signed by a KEK or the PK); a failure raises
    :class:`VerificationError` unless ``force``. The payload is appended with edk2's
    filtering (entries already present are skipped) and the stored timestamp becomes the
    later of the two, as for an APPEND_WRITE. ``attributes`` are those SetVariable is called
    with (0x67 for an append, as an OS applies Microsoft's updates); None accepts a signature
    over the variable's default attributes with or without APPEND_WRITE.
    """
    from fwtools.crypto.authvar import verify_auth
    from fwtools.formats.efi.authvar import variable_defaults

    auth = AuthVariable2.parse(update)
    guid, _ = variable_defaults(name)
    keys = list(anchors) if anchors is not None else store_update_anchors(store)
    result: AuthVerifyResult | None = None
    if keys:
        result = verify_auth(auth, name, guid, attributes, keys)
    if result is None or not result.valid:
        why = result.reason if result else "no KEK or PK certificate to verify it with"
        if not force:
            raise VerificationError(f"{name} update not applied: {why}")
    incoming = SignatureDatabase.parse(auth.payload, base=auth.payload_offset)
    old = store.get(name, guid)
    existing = SignatureDatabase.parse(old.data) if old is not None else SignatureDatabase(())
    merged = existing.append_write(incoming)
    added = merged.count - existing.count
    stamp = auth.timestamp
    if old is not None and old.timestamp is not None and stamp < old.timestamp:
        stamp = old.timestamp
    store.set(_variable(name, guid, SECURE_BOOT_ATTRIBUTES, merged.to_bytes(), stamp))
    return DbxUpdateResult(added, incoming.count - added, result, force and not (
        result is not None and result.valid))


def store_trust_anchors(store: VariableSource) -> TrustAnchors:
    """What the firmware booting with ``store`` trusts for images: its db and dbx."""
    from fwtools.crypto.trust import TrustAnchors

    lists = {}
    for name in ("db", "dbx"):
        var = store.get(name, guids.EFI_IMAGE_SECURITY_DATABASE)
        lists[name] = SignatureDatabase.parse(var.data).lists if var is not None else ()
    return TrustAnchors.from_signature_lists(lists["db"], lists["dbx"])


def store_update_anchors(store: VariableSource) -> list[bytes]:
    """The certificates the firmware accepts signed db/dbx updates from: KEK and PK."""
    return stored_certificates(
        store, [("KEK", guids.EFI_GLOBAL_VARIABLE), ("PK", guids.EFI_GLOBAL_VARIABLE)]
    )


__all__ = [
    "DISTRO_CERTS",
    "MICROSOFT_DB",
    "MICROSOFT_KEK",
    "DbxUpdateResult",
    "EnrollRequest",
    "VariableSource",
    "apply_signed_update",
    "enroll",
    "microsoft_db",
    "microsoft_kek",
    "parse_selection",
    "shipped_certificate",
    "store_trust_anchors",
    "store_update_anchors",
    "stored_certificates",
]
