"""What a planned store update does to the TPM's PCRs, for ``fw-vars update --dry-run`` and
``fw-vars audit -v``: old and new value and the events that cause the change, predicted with
``fwtools.machine.measure`` (``predict`` on the store before and after the plan, then
``diff_predictions``: the same code as ``fw-pcr predict`` and ``fw-pcr diff``).

What the store alone decides, and so what is predicted without the boot chain: PCR 7 through
its separator. edk2 measures SecureBoot, PK, KEK, db and dbx (and dbt) there before any image
runs (``SecurityPkg/Tcg/Tcg2Dxe/Tcg2Dxe.c`` ``MeasureAllSecureVariables``); the value is what
``fw-pcr predict --vars STORE`` without a chain gives. The update writes KEK, db, dbx and
SbatLevel only, and no other PCR measures them. After the separator the boot adds
EV_EFI_VARIABLE_AUTHORITY events that depend on the chain: the db entry that verified each
image (``DxeImageVerificationLib`` ``Measurement.c``), shim's SbatLevel (the newer of its
built-in level and the store's, shim ``sbat.c``) and the entry shim verified GRUB with; and a
dbx entry that revokes an image of the chain stops the boot there. A chain given as files
(``--chain``) is predicted in full, as ``fw-pcr diff`` does.

Everything here runs only when asked (a dry run, audit ``-v``): the commands import this
module inside the function that needs it, so plain ``fw-vars audit``/``update`` never load it
nor the measure code. The records are :mod:`fwtools.fleet.pcrs`'s; the fleet jobs call in
here through their hooks (``UpdateTask.then``, ``audit_store(then=...)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Final, Literal

from fwtools.errors import FwError
from fwtools.fleet.pcrs import PcrConsequences, PcrEffect, PcrEvent
from fwtools.formats.tcg import layout as L
from fwtools.formats.tcg.eventtypes import event_type_name
from fwtools.machine.events import EV_EFI_VARIABLE_AUTHORITY, EV_EFI_VARIABLE_DRIVER_CONFIG
from fwtools.machine.measure import MachineInput, diff_predictions, predict

if TYPE_CHECKING:
    from fwtools.fleet.audit import StoreAudit
    from fwtools.fleet.sources import StoreRef
    from fwtools.fleet.update import StoreUpdate, UpdateRequest, UpdateTask
    from fwtools.formats.varstore.store import VariableStore
    from fwtools.formats.varstore.storeio import LoadedStore
    from fwtools.machine.events import PredictedEvent
    from fwtools.machine.measure import PcrChange

DEFAULT_BANK: Final = "sha256"
STORE_PCR: Final = 7
# What the store alone does not decide, said once (text and JSON).
CHAIN_DEPENDENT: Final = (
    "PCR 7 after the separator depends on the boot chain, not on the store alone: the db "
    "entry that verifies each image, shim's SbatLevel, the entry shim verifies GRUB with "
    "(EV_EFI_VARIABLE_AUTHORITY), and whether the new dbx revokes an image of the chain (the "
    "boot then stops there); fw-vars update --dry-run --chain FILE... (or fw-pcr diff) "
    "predicts them")
SBAT_DEPENDS: Final = (
    "SbatLevel changes: shim measures the newer of its built-in level and the store's after "
    "the separator, so PCR 7 changes there too with a shim whose built-in level is older")


def _variable_name(e: PredictedEvent) -> str:
    """The UnicodeName of a UEFI_VARIABLE_DATA event (PFP §10.4.6); '' for other events."""
    if e.event_type not in (EV_EFI_VARIABLE_DRIVER_CONFIG, EV_EFI_VARIABLE_AUTHORITY):
        return ""
    head = L.VARIABLE_DATA.size
    if len(e.data) < head:
        return ""
    length = int.from_bytes(e.data[16:24], "little")
    return e.data[head:head + 2 * length].decode("utf-16-le", "replace")


def _event(e: PredictedEvent) -> PcrEvent:
    return PcrEvent(e.pcr, event_type_name(e.event_type), e.event_type, e.description,
                    e.source, {bank: d.hex() for bank, d in e.digests.items()})


def _effect(change: PcrChange, scope: Literal["through-separator", "boot"]) -> PcrEffect:
    causes: list[str] = []
    for e in (*change.removed, *change.added):
        name = _variable_name(e)
        if name and e.event_type == EV_EFI_VARIABLE_AUTHORITY:
            name = f"{name} authority" if name != "SbatLevel" else name
        label = name or f"{_event(e).type} {e.description}"
        if label not in causes:
            causes.append(label)
    return PcrEffect(change.pcr, change.changed, scope, change.old.hex(), change.new.hex(),
                     tuple(causes), tuple(_event(e) for e in change.removed),
                     tuple(_event(e) for e in change.added))


def consequences(before: object, after: object, chain: Sequence[str] = (), *,
                 bank: str = DEFAULT_BANK, changed_variables: Sequence[str] = (),
                 refused: Sequence[str] = ()) -> PcrConsequences:
    """The PCRs ``after`` (a store with ``get(name, guid)``) changes against ``before`` when
    the machine boots ``chain`` (files in load order; empty: PCR 7 through the separator,
    from the store alone). ``changed_variables`` are the variables the plan writes (for what
    the store alone cannot say), ``refused`` the writes it leaves out."""
    old = predict(MachineInput(before, list(chain), (bank,)))
    new = predict(MachineInput(after, list(chain), (bank,)))
    changes = diff_predictions(old, new, bank)
    notes = tuple(f"{name} would not be written (the plan refuses it): not in the prediction"
                  for name in refused)
    if not chain:
        rows = tuple(_effect(c, "through-separator") for c in changes if c.pcr == STORE_PCR)
        unknown = [CHAIN_DEPENDENT]
        if "SbatLevel" in changed_variables:
            unknown.append(SBAT_DEPENDS)
        return PcrConsequences(bank, "store", (), tuple(r.pcr for r in rows if r.changed),
                               rows, tuple(unknown), notes)
    rows = tuple(_effect(c, "boot") for c in changes)
    # A PCR neither side predicts for the same reason is one the files do not decide, not
    # one the update changes: named once; a reason only one side has is the update's doing.
    both = sorted(n for n in set(old.not_predicted) & set(new.not_predicted)
                  if old.not_predicted[n] == new.not_predicted[n])
    unknown = [f"PCR {n} before the update: {why}" for n, why in old.not_predicted.items()
               if n not in both]
    unknown += [f"PCR {n} after the update: {why}" for n, why in new.not_predicted.items()
                if n not in both]
    if both:
        unknown.append("not compared (not predicted from these files either way; fw-pcr "
                       "predict says why): " + ", ".join(f"PCR {n}" for n in both))
    unknown += [f"before the update: {n}" for n in old.notes]
    unknown += [f"after the update: {n}" for n in new.notes]
    return PcrConsequences(bank, "store and chain", tuple(chain),
                           tuple(r.pcr for r in rows if r.changed), rows, tuple(unknown),
                           notes)


def _failed(chain: Sequence[str], bank: str, exc: FwError) -> PcrConsequences:
    return PcrConsequences(bank, "store and chain" if chain else "store", tuple(chain), (), (),
                           error=" ".join(str(exc).split()))


def update_consequences(result: StoreUpdate, before: object, after: object | None,
                        chain: Sequence[str] = (), bank: str = DEFAULT_BANK) -> StoreUpdate:
    """``result`` (a planned update of ``before`` into ``after``) with its ``pcrs``; unchanged
    when the plan changes nothing. A failed prediction is the consequences' ``error``, never
    the store's."""
    if after is None or not result.changes:
        return result
    try:
        found = consequences(before, after, chain, bank=bank,
                             changed_variables=[c.variable for c in result.changes],
                             refused=[r.variable for r in result.refusals])
    except FwError as exc:
        found = _failed(chain, bank, exc)
    return replace(result, pcrs=found)


def dry_run_pcrs(result: StoreUpdate, loaded: LoadedStore, store: VariableStore | None,
                 task: UpdateTask) -> StoreUpdate:
    """``UpdateTask.then`` of ``fw-vars update --dry-run``: the plan with what it does to the
    PCRs when the machine boots ``task.chain`` (none: PCR 7's store part)."""
    return update_consequences(result, loaded, store, task.chain)


# -- fw-vars audit -v -------------------------------------------------------------------------


def recommended_request() -> UpdateRequest:
    """The update ``fw-vars audit -v`` predicts: ``fw-vars update --ca-2023 --dbx latest
    --sbat-level latest`` as the owner (``--via auto`` without signed objects)."""
    from fwtools.fleet.update import UpdateRequest

    return UpdateRequest(ca_2023=True, dbx=True, sbat_level=True, via="owner")


def _audit_pcrs(loaded: LoadedStore, ref: StoreRef, audit: StoreAudit) -> StoreAudit:
    """``audit`` with the PCR consequences of the recommended update, for a store it changes."""
    from fwtools.fleet.update import plan_loaded

    if audit.error is not None or audit.secure_boot is None or not audit.secure_boot.pk_present:
        return audit
    try:
        plan, after = plan_loaded(loaded, recommended_request(), ref)
        found = update_consequences(plan, loaded, after).pcrs
    except FwError as exc:
        found = _failed((), DEFAULT_BANK, exc)
    except Exception as exc:  # pragma: no cover - the audit itself must survive (audit.py)
        found = _failed((), DEFAULT_BANK, FwError(f"internal error predicting the PCRs: "
                                                   f"{type(exc).__name__}: {exc}"))
    return replace(audit, pcrs=found)


def audit_store_with_pcrs(ref: StoreRef) -> StoreAudit:
    """``audit_store`` and, for a store the recommended update changes, what that update does
    to PCR 7 (``StoreAudit.pcrs``). The job of ``fw-vars audit -v`` (pickled by reference)."""
    from fwtools.fleet.audit import audit_store

    return audit_store(ref, then=_audit_pcrs)
