"""Update variable stores for the 2011 -> 2023 Secure Boot CA transition: plan, then apply.

:func:`plan_loaded` works out, for one loaded store, every variable that changes (KEK, db,
dbx, SbatLevel) with its state before and after and the entries added, applying the changes
to the in-memory store as it goes; :func:`store_image` turns the result into the bytes of the
same container (raw stays raw, qcow2 keeps its cluster size and version). :func:`update_one`
is the per-store job the command runs in parallel: refusals for running VMs and locked files
(:mod:`.locks`), the plan, and the atomic write with an optional backup.

What is added (``UpdateRequest``):

- ``ca_2023``: the 2023 counterpart of each Microsoft 2011 CA the store has, as edk2's
  EnrollDefaultKeys enrols them since edk2-stable202511 (commit 05429cbe91): KEK 2K CA 2023
  next to KEK CA 2011; Windows UEFI CA 2023 next to Windows Production PCA 2011; Microsoft
  UEFI CA 2023 and Option ROM UEFI CA 2023 next to UEFI CA 2011. A store that trusts none of
  Microsoft's 2011 CAs is left alone: adding Microsoft's CAs there would widen what it boots.
  Presence counts, not trust: a PCA 2011 revoked by dbx still gets its successor.
- ``dbx``: Microsoft's published revocations for the store's architecture (the image hashes
  of ``fwtools/data/microsoft/dbx_info_msft_latest.json``; its optional certificate and SVN
  revocations are not applied, as Microsoft ships them separately).
- ``sbat_level``: the latest shipped level of ``policies/sbatlevel-history.toml``, written as
  ``fw-vars sbat-level`` writes it (NV|BS, the payload without a NUL); never lowered.

How (``via``):

- ``owner``: the entries are written directly, as the machine's owner can offline (edk2
  stores no AUTHENTICATION_2 descriptor, so nothing is re-verified at boot). New entries are
  appended as an APPEND_WRITE would store them (``SignatureDatabase.append_write``), owner
  GUID Microsoft's. Timestamp: the later of the stored one and the newest added certificate's
  notBefore (for dbx, the newest added revocation's dateOfAddition), as virt-fw-vars stamps
  its writes; a stored timestamp never goes back, so later signed writes keep working.
- ``signed``: Microsoft's signed objects from a microsoft/secureboot_objects checkout, each
  verified against the store's own keys as edk2 would (``SecurityPkg/Library/AuthVariableLib/
  AuthService.c``): SetVariable attributes exactly NV|BS|RT|TIME_AUTH|APPEND (0x67); a KEK
  update only when its PKCS#7 signer certificate is the enrolled PK byte for byte and the
  signature verifies with it; db/dbx updates against the PK or any KEK certificate (partial
  chain, no time check). What firmware would refuse is refused, with the reason. The payload
  is appended with edk2's filtering, the stored timestamp becoming the later of the two
  (``fwtools.crypto.secureboot.apply_signed_update``). SbatLevel has no signed form (shim
  itself writes it at boot): it is written as the owner.
- ``auto`` (the default): signed where a signed object is given and verifies, else owner.

Stores without a PK (Setup Mode: nothing is verified, nothing to transition) are left alone.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from fwtools.errors import FwError
from fwtools.fleet.sources import StoreRef

if TYPE_CHECKING:
    import uuid

    from fwtools._base.efitime import EfiTime
    from fwtools.fleet.audit import StoreAudit
    from fwtools.fleet.pcrs import PcrConsequences
    from fwtools.formats.efi.siglist import SignatureDatabase
    from fwtools.formats.varstore.errors import StoreFullError, VariableTooLargeError
    from fwtools.formats.varstore.model import Variable
    from fwtools.formats.varstore.store import VariableStore
    from fwtools.formats.varstore.storeio import LoadedStore

Via = Literal["auto", "owner", "signed"]
# A step after a dry run's plan: (plan, store as read, store as planned or None, task) -> plan.
PlanStep = Callable[["StoreUpdate", "LoadedStore", "VariableStore | None", "UpdateTask"],
                    "StoreUpdate"]
Status = Literal["updated", "unchanged", "skipped", "error", "refused"]

APPEND_ATTRIBUTES: Final = 0x67  # NV|BS|RT|TIME_BASED_AUTHENTICATED_WRITE_ACCESS|APPEND_WRITE

# The 2023 successors of each 2011 CA (audit trust keys), in the order they are added.
SUCCESSORS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("kek-2023", ("kek-2011",)),
    ("windows-uefi-ca-2023", ("windows-pca-2011",)),
    ("uefi-ca-2023", ("uefi-ca-2011",)),
    ("option-rom-ca-2023", ("uefi-ca-2011", "uefi-ca-2023")),
)
# Trust key -> (variable, selection name in fwtools.crypto.secureboot MICROSOFT_KEK/_DB).
_SHIPPED: Final[dict[str, tuple[str, str]]] = {
    "kek-2023": ("KEK", "2023"),
    "windows-uefi-ca-2023": ("db", "windows-2023"),
    "uefi-ca-2023": ("db", "uefi-2023"),
    "option-rom-ca-2023": ("db", "oprom-2023"),
}


@dataclass(frozen=True)
class UpdateRequest:
    ca_2023: bool = False
    dbx: bool = False
    sbat_level: bool = False
    via: Via = "auto"
    signed_dir: str | None = None


@dataclass(frozen=True)
class VariableState:
    entries: int
    size: int
    attributes: int
    timestamp: str | None


@dataclass(frozen=True)
class Added:
    """Entries one write added: what they are, how, from where, and the verdict."""

    what: str
    via: Literal["owner", "signed"]
    source: str
    detail: str = ""


@dataclass(frozen=True)
class Change:
    """One variable that changes: before (None when it is new), after, what was added."""

    variable: str
    guid: str
    before: VariableState | None
    after: VariableState
    added: tuple[Added, ...]


@dataclass(frozen=True)
class Refusal:
    """A write that did not happen: firmware would refuse it, or it does not fit."""

    variable: str
    via: Literal["owner", "signed"]
    reason: str


@dataclass(frozen=True)
class StoreUpdate:
    """The result for one store. ``status``: updated (changes, written unless a dry run),
    unchanged (nothing to do), skipped (nothing applies: Setup Mode), refused (a running VM,
    a locked file), error (unreadable)."""

    path: str
    vm: str | None = None
    format: str | None = None
    layout: str | None = None
    status: Status = "unchanged"
    error: str | None = None
    changes: tuple[Change, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    notes: tuple[str, ...] = ()
    written: str | None = None
    backup: str | None = None
    dry_run: bool = True
    trusts_after: dict[str, bool] = field(default_factory=dict)
    # A dry run: what the planned change does to the PCRs (machine/plan_pcrs.py), else None.
    pcrs: PcrConsequences | None = None


# -- planning -----------------------------------------------------------------------------


class _Plan:
    """The changes made to one store, variable by variable."""

    def __init__(self, store: VariableStore) -> None:
        self.store = store
        self.before: dict[tuple[uuid.UUID, str], VariableState | None] = {}
        self.added: dict[tuple[uuid.UUID, str], list[Added]] = {}
        self.refusals: list[Refusal] = []
        self.notes: list[str] = []

    def remember(self, name: str, guid: uuid.UUID) -> Variable | None:
        old = self.store.get(name, guid)
        self.before.setdefault((guid, name), _state(old))
        return old

    def write(self, name: str, guid: uuid.UUID, old: Variable | None,
              via: Literal["owner", "signed"], do: Callable[[], object]) -> bool:
        """Run the write ``do``; when the variable exceeds the build's limit or the store no
        longer fits, undo it and record a refusal, as SetVariable returns
        EFI_OUT_OF_RESOURCES. True when the write stands."""
        from fwtools.formats.varstore.errors import StoreFullError, VariableTooLargeError

        try:
            do()
        except VariableTooLargeError as exc:
            self.refusals.append(Refusal(name, via, f"too large for this firmware build: "
                                         f"{exc} ({_layout_hint(self.store, exc)})"))
            return False
        free = self.store.free_space()
        if free >= 0:
            return True
        full = StoreFullError(self.store.used_space(), self.store.layout.capacity)
        if old is not None:
            self.store.set(old)
        else:
            self.store.delete(name, guid)
        self.refusals.append(Refusal(name, via, f"does not fit: the store lacks {-free} "
                                     f"bytes ({_layout_hint(self.store, full)})"))
        return False

    def changes(self) -> tuple[Change, ...]:
        out = []
        for (guid, name), added in self.added.items():
            after = _state(self.store.get(name, guid))
            before = self.before.get((guid, name))
            if after is None or after == before or not added:
                continue
            out.append(Change(name, str(guid), before, after, tuple(added)))
        return tuple(out)


def _state(var: Variable | None) -> VariableState | None:
    if var is None:
        return None
    from fwtools.formats.efi.siglist import SignatureDatabase

    entries = 1
    if var.attributes & 0x20:
        try:
            entries = SignatureDatabase.parse(bytes(var.data)).count
        except FwError:
            entries = 0
    stamp = var.timestamp.isoformat() if var.timestamp is not None and var.attributes & 0x20 \
        else None
    return VariableState(entries, len(var.data), var.attributes, stamp)


def _layout_hint(store: VariableStore, error: VariableTooLargeError | StoreFullError) -> str:
    from fwtools.formats.varstore.relayout import larger_layout_hint

    return larger_layout_hint(store.path or "STORE", store.layout, error)


def plan_loaded(loaded: LoadedStore, request: UpdateRequest,
                ref: StoreRef | None = None) -> tuple[StoreUpdate, VariableStore | None]:
    """The plan for one store, and the store with the changes made (None when nothing
    changes). ``loaded`` is not modified."""
    from fwtools.fleet.audit import audit_loaded

    ref = ref or StoreRef(loaded.path)
    base = StoreUpdate(loaded.path, vm=ref.vm, format=loaded.format,
                       layout=loaded.store.layout.name if loaded.store is not None else None)
    if loaded.store is None:
        return replace(base, status="error", error=f"{loaded.path}: a JSON store is not a "
                       "VM's variable store; convert it to raw or qcow2 first"), None
    if loaded.blank_template:
        return replace(base, status="skipped", notes=(
            f"no variable store ({loaded.blank_template}): the firmware formats an empty one "
            "at first boot; nothing to update",)), None
    audit = audit_loaded(loaded, ref)
    if audit.secure_boot is None or not audit.secure_boot.pk_present:
        return replace(base, status="skipped", notes=(
            "no PK: the store is in Setup Mode, Secure Boot is off and nothing is verified; "
            "enrol keys first (fw-vars enroll --microsoft adds the 2023 CAs)",)), None
    from fwtools.formats.varstore.store import VariableStore

    store = VariableStore.parse(loaded.store.to_bytes(), path=loaded.path)
    plan = _Plan(store)
    signed = _signed_objects(request.signed_dir) if request.signed_dir else None
    if request.ca_2023:
        _plan_ca_2023(plan, audit, request.via, signed)
    if request.dbx:
        _plan_dbx(plan, audit, request.via, signed)
    if request.sbat_level:
        _plan_sbat_level(plan, request.via)
    changes = plan.changes()
    status: Status = "updated" if changes else "unchanged"
    result = replace(base, status=status, changes=changes, refusals=tuple(plan.refusals),
                     notes=tuple(plan.notes))
    if changes:
        from fwtools.formats.varstore.storeio import LoadedStore

        after = audit_loaded(LoadedStore(loaded.path, loaded.format, store), ref)
        result = replace(result, trusts_after=dict(after.trusts))
    return result, store if changes else None


def _present(audit: StoreAudit) -> set[str]:
    return {c.known for c in (*audit.kek, *audit.db) if c.known is not None}


def _plan_ca_2023(plan: _Plan, audit: StoreAudit, via: Via,
                  signed: SignedObjects | None) -> None:
    present = _present(audit)
    wanted = [key for key, sources in SUCCESSORS
              if key not in present and any(s in present for s in sources)]
    if not present & {"kek-2011", "windows-pca-2011", "uefi-ca-2011"} and not wanted:
        plan.notes.append("--ca-2023: the store holds none of Microsoft's 2011 CAs; adding "
                          "Microsoft's 2023 CAs would widen what it trusts (fw-vars enroll "
                          "--microsoft does that deliberately)")
        return
    if not wanted:
        plan.notes.append("--ca-2023: every 2023 CA is already enrolled")
        return
    for key in wanted:
        variable = _SHIPPED[key][0]
        done = False
        if via != "owner":
            done = _signed_ca(plan, audit, key, variable, signed, fallback=via == "auto")
        if not done and via != "signed":
            _owner_certificate(plan, key, variable)


def _owner_certificate(plan: _Plan, key: str, variable: str) -> None:
    from fwtools.crypto.secureboot import MICROSOFT_DB, MICROSOFT_KEK, shipped_certificate
    from fwtools.fleet.known import CA_BY_KEY
    from fwtools.formats.efi import guids
    from fwtools.formats.efi.siglist import SignatureDatabase

    sel = _SHIPPED[key][1]
    filename = (MICROSOFT_KEK if variable == "KEK" else MICROSOFT_DB)[sel]
    der = shipped_certificate("microsoft", filename)
    incoming = SignatureDatabase(()).add_certificate(der, guids.MICROSOFT)
    _owner_append(plan, variable, incoming, _not_before(der),
                  Added(CA_BY_KEY[key].name, "owner", f"fwtools/data/microsoft/{filename}"))


def _owner_append(plan: _Plan, variable: str, incoming: SignatureDatabase,
                  stamp: EfiTime | None, added: Added) -> None:
    from fwtools.formats.efi.authvar import SECURE_BOOT_ATTRIBUTES, variable_defaults
    from fwtools.formats.efi.siglist import SignatureDatabase
    from fwtools.formats.varstore.model import Variable

    guid, _ = variable_defaults(variable)
    old = plan.remember(variable, guid)
    existing = SignatureDatabase.parse(bytes(old.data)) if old is not None else \
        SignatureDatabase(())
    merged = existing.append_write(incoming)
    if merged.count == existing.count:
        return
    when = stamp
    if old is not None and old.timestamp is not None and (when is None or when < old.timestamp):
        when = old.timestamp
    attributes = old.attributes if old is not None else SECURE_BOOT_ATTRIBUTES
    new = Variable(variable, guid, attributes, merged.to_bytes(), when)
    if plan.write(variable, guid, old, "owner", lambda: plan.store.set(new)):
        plan.added.setdefault((guid, variable), []).append(added)


def _not_before(der: bytes) -> EfiTime:
    from fwtools._base.efitime import EfiTime
    from fwtools.crypto.x509info import certificate_info

    text = certificate_info(der).not_before  # ISO 8601 UTC
    return EfiTime.from_datetime(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")))


def _signed_ca(plan: _Plan, audit: StoreAudit, key: str, variable: str,
               signed: SignedObjects | None, *, fallback: bool) -> bool:
    """Apply the signed object adding CA ``key``; False when there is none or firmware would
    refuse it (recorded as a refusal unless the owner write follows)."""
    from fwtools.fleet.known import CA_BY_KEY, DB_UPDATES

    via: Literal["signed"] = "signed"
    name = CA_BY_KEY[key].name
    if signed is None:
        if not fallback:
            plan.refusals.append(Refusal(variable, via, f"{name}: no signed objects given "
                                         "(--signed-dir, a microsoft/secureboot_objects "
                                         "checkout)"))
        return False
    if variable == "KEK":
        return _signed_kek(plan, audit, signed, fallback=fallback)
    filename = next(f for f, k in DB_UPDATES if k == key)
    path = signed.db.get(filename)
    if path is None:
        if not fallback:
            plan.refusals.append(Refusal(variable, via, f"{name}: {filename} is not in "
                                         f"{signed.root}"))
        return False
    return _apply_signed(plan, variable, path, name, fallback=fallback)


def _apply_signed(plan: _Plan, variable: str, path: str, what: str, *, fallback: bool,
                  anchors: Sequence[bytes] | None = None) -> bool:
    from fwtools._base.fileio import read_file
    from fwtools.crypto.secureboot import DbxUpdateResult, apply_signed_update
    from fwtools.errors import VerificationError
    from fwtools.formats.efi.authvar import variable_defaults

    guid, _ = variable_defaults(variable)
    old = plan.remember(variable, guid)
    blob = read_file(path)
    outcome: list[DbxUpdateResult] = []
    try:
        stands = plan.write(variable, guid, old, "signed", lambda: outcome.append(
            apply_signed_update(plan.store, blob, name=variable, anchors=anchors,
                                attributes=APPEND_ATTRIBUTES)))
    except VerificationError as exc:
        reason = f"{what}: {os.path.basename(path)}: firmware would refuse it: {exc}"
    except FwError as exc:  # a malformed update file
        reason = f"{what}: {path}: {' '.join(str(exc).split())}"
    else:
        reason = ""
    if reason:
        if fallback:
            plan.notes.append(reason + "; written as the owner instead")
        else:
            plan.refusals.append(Refusal(variable, "signed", reason))
        return False
    if not stands:
        return True  # refused as firmware would; the owner cannot fit it either
    result = outcome[0]
    if result.added:
        verdict = result.verification.reason if result.verification else ""
        plan.added.setdefault((guid, variable), []).append(
            Added(what, "signed", path, verdict))
    return True


def _signed_kek(plan: _Plan, audit: StoreAudit, signed: SignedObjects, *,
                fallback: bool) -> bool:
    from fwtools.crypto.secureboot import stored_certificates
    from fwtools.formats.efi import guids

    pk = stored_certificates(plan.store, [("PK", guids.EFI_GLOBAL_VARIABLE)])
    label = audit.pk.label if audit.pk is not None else "?"
    if not pk:
        plan.refusals.append(Refusal("KEK", "signed", "PK holds no X.509 certificate"))
        return False
    candidates = signed.kek_for(pk[0])
    if not candidates:
        reason = (f"KEK 2K CA 2023: no KEK update signed by this store's PK ({label}) in "
                  f"{signed.root} ({signed.kek_count} KEK updates, signed by other PKs); in "
                  "User Mode firmware accepts a KEK write only when its PKCS#7 signer "
                  "certificate is the enrolled PK byte for byte (edk2 AuthService.c)")
        if audit.pk is not None and audit.pk.kek_update:
            reason += f"; Microsoft publishes one for this PK: {audit.pk.kek_update}"
        if fallback:
            plan.notes.append(reason + "; written as the owner instead")
        else:
            plan.refusals.append(Refusal("KEK", "signed", reason))
        return False
    # Upstream re-signs an update when its signature was bad (secureboot_objects #398/#399),
    # so a PK may have several: the first that verifies is applied, else the first one's
    # refusal is reported.
    chosen = next((p for p in candidates if _verifies(p, "KEK", pk[:1])), candidates[0])
    return _apply_signed(plan, "KEK", chosen, "Microsoft Corporation KEK 2K CA 2023",
                         fallback=fallback, anchors=pk[:1])


def _verifies(path: str, variable: str, anchors: Sequence[bytes]) -> bool:
    from fwtools.crypto.authvar import verify_auth
    from fwtools.formats.efi.authvar import AuthVariable2, variable_defaults

    try:
        auth = AuthVariable2.parse(Path(path).read_bytes())
        guid, _ = variable_defaults(variable)
        return verify_auth(auth, variable, guid, APPEND_ATTRIBUTES, anchors).valid
    except (FwError, OSError):
        return False


def _plan_dbx(plan: _Plan, audit: StoreAudit, via: Via, signed: SignedObjects | None) -> None:
    from fwtools.fleet.known import DBX_UPDATE_DIR

    arch = audit.dbx.architecture if audit.dbx is not None else "x64"
    if not _missing_hashes(plan.store, arch):
        plan.notes.append(f"--dbx latest: every published {arch} revocation is in dbx")
        return
    if via != "owner":
        path = signed.dbx.get(DBX_UPDATE_DIR.get(arch, arch)) if signed is not None else None
        if path is not None:
            _apply_signed(plan, "dbx", path, f"Microsoft's dbx update for {arch}",
                          fallback=via == "auto")
        elif via == "signed":
            where = signed.root if signed is not None else "no --signed-dir given"
            plan.refusals.append(Refusal("dbx", "signed", f"no signed dbx update for {arch} "
                                         f"({where})"))
    missing = _missing_hashes(plan.store, arch)
    if not missing:
        return
    if via == "signed":
        plan.notes.append(f"dbx still lacks {len(missing)} published {arch} revocations the "
                          "signed update does not carry")
        return
    _owner_dbx(plan, arch, missing)


def _missing_hashes(store: VariableStore, arch: str) -> list[bytes]:
    from fwtools.formats.efi import guids
    from fwtools.formats.efi.siglist import SignatureDatabase

    var = store.get("dbx", guids.EFI_IMAGE_SECURITY_DATABASE)
    have: set[bytes] = set()
    if var is not None:
        try:
            db = SignatureDatabase.parse(bytes(var.data))
        except FwError:
            db = SignatureDatabase(())
        have = {bytes(e.data)[:32] for _, _, sl, e in db.entries()
                if sl.signature_type == guids.CERT_SHA256}
    return [h for h in _published_order(arch) if h not in have]


@functools.cache
def _published_order(arch: str) -> tuple[bytes, ...]:
    """The published hashes of ``arch`` in the JSON's order."""
    return tuple(h for h, _ in _published(arch))


@functools.cache
def _published(arch: str) -> tuple[tuple[bytes, str], ...]:
    import json
    from importlib import resources

    path = resources.files("fwtools") / "data" / "microsoft" / "dbx_info_msft_latest.json"
    doc = json.loads(path.read_bytes())
    seen: set[bytes] = set()
    out = []
    for item in doc["images"].get(arch, []):
        if item.get("hashType", "SHA256") != "SHA256":
            continue
        digest = bytes.fromhex(item["authenticodeHash"])
        if digest not in seen:
            seen.add(digest)
            out.append((digest, str(item.get("dateOfAddition", ""))))
    return tuple(out)


def _owner_dbx(plan: _Plan, arch: str, missing: list[bytes]) -> None:
    from fwtools._base.efitime import EfiTime
    from fwtools.fleet.known import revocation_list

    dates = dict(_published(arch))
    newest = max((dates.get(h, "") for h in missing), default="")
    stamp = None
    if newest:
        try:
            stamp = EfiTime.from_datetime(datetime.datetime.fromisoformat(newest).replace(
                tzinfo=datetime.UTC))
        except ValueError:
            stamp = None
    _owner_append(plan, "dbx", revocation_list(missing), stamp or EfiTime.now(), Added(
        f"{len(missing)} SHA-256 revocations ({arch})", "owner",
        "fwtools/data/microsoft/dbx_info_msft_latest.json"))


def _plan_sbat_level(plan: _Plan, via: Via) -> None:
    from fwtools.fleet.known import latest_sbat_level
    from fwtools.formats.efi import guids
    from fwtools.formats.sbat import SbatLevel, parse_sbat_level
    from fwtools.formats.varstore.model import Variable

    latest = latest_sbat_level()
    if latest is None:
        plan.notes.append("--sbat-level latest: policies/sbatlevel-history.toml not found")
        return
    old = plan.remember("SbatLevel", guids.SHIM_LOCK)
    if old is not None:
        try:
            have = parse_sbat_level(bytes(old.data), strict=False)
        except FwError:
            have = None
        if have is not None and have.datestamp >= latest.datestamp and all(
                have.generations.get(c, 1) >= g for c, g in latest.generations.items()):
            plan.notes.append(f"--sbat-level latest: SbatLevel {have.datestamp} is current")
            return
    level = SbatLevel.create(latest.datestamp, latest.generations)
    # As fw-vars sbat-level writes it: NV|BS, the payload's length, no terminating NUL.
    new = Variable("SbatLevel", guids.SHIM_LOCK, 0x03, level.to_bytes())
    if plan.write("SbatLevel", guids.SHIM_LOCK, old, "owner", lambda: plan.store.set(new)):
        how = " (no signed form: shim writes it itself at boot)" if via == "signed" else ""
        plan.added.setdefault((guids.SHIM_LOCK, "SbatLevel"), []).append(Added(
            f"SbatLevel {latest.datestamp}{how}", "owner",
            "policies/sbatlevel-history.toml"))


# -- Microsoft's signed objects -------------------------------------------------------------


@dataclass(frozen=True)
class SignedObjects:
    """Signed updates found in a microsoft/secureboot_objects checkout (upstream layout:
    ``PostSignedObjects/{KEK/<OEM>,Optional/DB/amd64,DBX/<arch>}``) or in a copy with the
    layout of ``testdata/microsoft-secureboot-objects`` (``kek/``, ``db/amd64/``,
    ``dbx/<arch>/``)."""

    root: str
    db: dict[str, str]  # file name -> path
    dbx: dict[str, str]  # architecture directory (amd64, arm64, ...) -> DBXUpdate.bin
    kek: dict[str, tuple[str, ...]]  # SHA-256 of the PKCS#7 signer certificate -> paths
    kek_count: int

    def kek_for(self, pk_der: bytes) -> tuple[str, ...]:
        return self.kek.get(hashlib.sha256(pk_der).hexdigest(), ())


@functools.cache
def _signed_objects(root: str) -> SignedObjects:
    base = Path(root)
    db: dict[str, str] = {}
    for sub in ("db/amd64", "PostSignedObjects/Optional/DB/amd64", "PostSignedObjects/DB/amd64"):
        for p in sorted((base / sub).glob("*.bin")):
            db.setdefault(p.name, str(p))
    dbx: dict[str, str] = {}
    for sub in ("dbx", "PostSignedObjects/DBX"):
        for p in sorted((base / sub).glob("*/DBXUpdate.bin")):
            dbx.setdefault(p.parent.name, str(p))
    kek: dict[str, list[str]] = {}
    count = 0
    for sub in ("kek", "PostSignedObjects/KEK"):
        for p in sorted((base / sub).rglob("*.bin")):
            top = _top_certificate(p)
            count += 1
            if top is not None:
                kek.setdefault(hashlib.sha256(top).hexdigest(), []).append(str(p))
    return SignedObjects(root, db, dbx, {k: tuple(v) for k, v in kek.items()}, count)


def _top_certificate(path: Path) -> bytes | None:
    """The certificate edk2 compares with the PK: ``Pkcs7GetSigners`` (CryptoPkg/Library/
    BaseCryptLib/Pk/CryptPkcs7VerifyCommon.c) pops the stack of ``PKCS7_get0_signers`` and
    returns the last one popped as TrustedCert, which is the first SignerInfo's certificate."""
    from fwtools.crypto.authvar import auth_signature_info
    from fwtools.formats.efi.authvar import AuthVariable2

    try:
        info = auth_signature_info(AuthVariable2.parse(path.read_bytes()))
    except (FwError, OSError):
        return None
    return info.signers[0].der if info.signers else None


def check_signed_dir(root: str) -> str | None:
    """Why ``root`` holds no signed objects, or None when it has some. Reads the directory
    afresh (the index is then kept for the run's stores, and inherited by forked workers)."""
    _signed_objects.cache_clear()
    found = _signed_objects(root)
    if not (found.db or found.dbx or found.kek_count):
        return (f"--signed-dir {root}: no signed objects (expected a microsoft/"
                "secureboot_objects checkout with PostSignedObjects/, or kek/, db/amd64/, "
                "dbx/<arch>/)")
    return None


# -- the per-store job ----------------------------------------------------------------------


@dataclass(frozen=True)
class UpdateTask:
    ref: StoreRef
    request: UpdateRequest
    dry_run: bool
    output: str | None = None  # None: in place
    backup: bool = False
    # A dry run's boot chain for its PCR prediction, and the step that makes it
    # (machine/plan_pcrs.py dry_run_pcrs: fleet sits below the measure code).
    chain: tuple[str, ...] = ()
    then: PlanStep | None = None


def store_image(store: VariableStore, loaded: LoadedStore) -> bytes:
    """The new store bytes, in the input's container (qcow2 keeps cluster size and version)."""
    from fwtools.formats.varstore.storeio import store_bytes

    return store_bytes(store, loaded.format, cluster_size=loaded.qcow2_cluster_size,
                       version=loaded.qcow2_version, source_format=loaded.format)


def update_one(task: UpdateTask) -> StoreUpdate:
    """Plan (and unless a dry run, write) one store; never raises for a bad store."""
    ref = task.ref
    base = StoreUpdate(ref.path, vm=ref.vm, dry_run=task.dry_run)
    if ref.error is not None:
        return replace(base, status="error", error=ref.error)
    if ref.running:
        return replace(base, status="refused", error=(
            f"{ref.path}: VM {ref.vm or '?'} is running (libvirt): the firmware holds the "
            "store and would overwrite an offline edit; shut the VM down first"))
    template = None
    if not os.path.lexists(ref.path):
        if ref.template is None or not os.path.exists(ref.template):
            more = (f"; libvirt copies {ref.template} there at the VM's first start, and "
                    "that does not exist either" if ref.template else "")
            return replace(base, status="error", error=f"{ref.path}: no such file{more}")
        template = ref.template
    try:
        if template is not None:
            return _create_from_template(task, template)
        return _update(task, base)
    except FwError as exc:
        return replace(base, status="error", error=" ".join(str(exc).split()))
    except MemoryError:
        return replace(base, status="error", error=f"{ref.path}: out of memory")
    except Exception as exc:  # pragma: no cover - one store never stops the others
        return replace(base, status="error", error=f"{ref.path}: internal error: "
                       f"{type(exc).__name__}: {' '.join(str(exc).split())}")


def _predicted(result: StoreUpdate, loaded: LoadedStore, store: VariableStore | None,
               task: UpdateTask) -> StoreUpdate:
    """A dry run's plan, with ``task.then`` applied (what it does to the PCRs)."""
    return task.then(result, loaded, store, task) if task.then is not None else result


def _locked(path: str, base: StoreUpdate, found: object) -> StoreUpdate:
    return replace(base, status="refused", error=f"{path}: in use: {found}; stop the VM first")


def _update(task: UpdateTask, base: StoreUpdate) -> StoreUpdate:
    from fwtools.fleet import locks
    from fwtools.formats.varstore.storeio import load_store

    path = task.ref.path
    found = locks.holder(path)
    if found is not None:
        return _locked(path, base, found.describe())
    if task.dry_run:
        loaded = load_store(path)
        result, store = plan_loaded(loaded, task.request, task.ref)
        return _predicted(replace(result, dry_run=True), loaded, store, task)
    # QEMU's locks are taken only on a store replaced in place; with -o OUT the input is only
    # read, and holding its write locks would turn other readers away (qemu-img convert).
    import contextlib

    guard = locks.hold(path) if task.output is None else contextlib.nullcontext()
    try:
        with guard:
            loaded = load_store(path)
            result, store = plan_loaded(loaded, task.request, task.ref)
            result = replace(result, dry_run=False)
            if store is None:
                if task.output is not None:  # -o OUT always gets the store, unchanged here
                    from fwtools._base.atomic import atomic_write
                    from fwtools._base.fileio import read_file

                    atomic_write(task.output, read_file(path))
                    result = replace(result, written=task.output)
                return result
            data = store_image(store, loaded)
            target = task.output or path
            backup = _backup(path) if task.backup and task.output is None else None
            from fwtools._base.atomic import atomic_write

            atomic_write(target, data, keep_owner=task.output is None)
            return replace(result, written=target, backup=backup)
    except locks.StoreLocked as exc:
        return _locked(path, base, exc.holder.describe())


def _create_from_template(task: UpdateTask, template: str) -> StoreUpdate:
    """A domain that never started: libvirt copies ``<nvram template>`` to the NVRAM path at
    its first start only when no file is there (libvirt docs/formatdomain.rst, ``<nvram>``;
    tests/e2e/test_libvirt_fleet.py starts such a domain), so the updated template is written
    there instead: what the VM would get, updated. Nothing is written when nothing changes."""
    from fwtools.formats.varstore.storeio import load_store

    path = task.ref.path
    loaded = load_store(template)
    result, store = plan_loaded(loaded, task.request, task.ref)
    note = (f"{path} does not exist yet (the VM never started): planned on its template "
            f"{template}")
    result = replace(result, path=path, notes=(note, *result.notes), dry_run=task.dry_run)
    if task.dry_run:
        return _predicted(result, loaded, store, task)
    if store is None:
        return result
    if task.ref.declared_format == "qcow2" and loaded.format != "qcow2":
        # <nvram format='qcow2'> (libvirt 9.2+): libvirt converts a raw template to qcow2.
        from fwtools.formats.varstore.storeio import store_bytes

        data = store_bytes(store, "qcow2")
    else:
        data = store_image(store, loaded)
    if task.output is not None:
        from fwtools._base.atomic import atomic_write

        atomic_write(task.output, data)
        return replace(result, written=task.output)
    _create_exclusive(path, data)
    return replace(result, written=path)


def _create_exclusive(path: str, data: bytes) -> None:
    """Write a new file at ``path``, mode 0600 as libvirt creates NVRAM (libvirt's DAC driver
    hands it to QEMU's user at start), durably, and never over a file that appeared meanwhile
    (libvirt starting the VM)."""
    from fwtools._base.atomic import FileAppearedError, atomic_write

    try:
        atomic_write(path, data, 0o600, exclusive=True)
    except FileAppearedError as exc:
        raise exc.with_hint("the VM started? run the update again") from None


def backup_name(path: str, now: datetime.datetime | None = None) -> str:
    """``NAME.bak``, or ``NAME.bak.<UTC YYYYmmddTHHMMSSZ>`` when that exists (an older
    backup is never overwritten)."""
    first = f"{path}.bak"
    if not os.path.lexists(first):
        return first
    when = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%SZ")
    name = f"{first}.{when}"
    n = 1
    while os.path.lexists(name):
        n += 1
        name = f"{first}.{when}.{n}"
    return name


def _backup(path: str) -> str:
    """Keep the current file as the backup: a hard link to it (same inode, so its owner,
    mode and labels stay), else a copy."""
    from fwtools.errors import FwIOError

    target = backup_name(path)
    try:
        os.link(path, target)
    except OSError:
        import shutil

        try:
            shutil.copy2(path, target)
        except OSError as exc:
            raise FwIOError(f"{target}: cannot keep a backup: {exc.strerror or exc}") from exc
    return target
