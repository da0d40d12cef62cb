"""Moving a store's variables to another layout (e.g. OVMF's 128 KiB store to the 528 KiB
one of the 4 MiB build), and naming the layout that would take what does not fit.

A variable that is too large for its build (Microsoft's 2023+ dbx updates need a ~24 KiB
record against the OVMF 2M build's PcdMaxAuthVariableSize of 0x2800, ``OvmfPkgX64.dsc``)
cannot be written there at all; the only way out is the larger build, whose store has
another layout and which boots with that build's firmware code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from fwtools.errors import FwError, UsageError
from fwtools.formats.varstore import layout as lay

if TYPE_CHECKING:
    from fwtools.formats.varstore.errors import StoreFullError, VariableTooLargeError
    from fwtools.formats.varstore.layout import StoreLayout
    from fwtools.formats.varstore.store import VariableStore

# The layouts a store can be moved to: those holding variables only (a unified OVMF.fd
# also holds the firmware code, which a conversion cannot make).
TARGETS: Final[tuple[StoreLayout, ...]] = (lay.OVMF_2M, lay.OVMF_4M, lay.AAVMF_64M)
# The firmware code each layout boots with, as Debian's ovmf / qemu-efi-aarch64 name it
# (/usr/share/OVMF, /usr/share/AAVMF).
FIRMWARE_CODE: Final[dict[str, str]] = {
    lay.OVMF_2M.name: "OVMF_CODE.fd",
    lay.OVMF_4M.name: "OVMF_CODE_4M.fd",
    lay.AAVMF_64M.name: "AAVMF_CODE.fd",
}
# VariableTooLargeError.pcd -> the StoreLayout field holding that limit.
_LIMIT_FIELDS: Final[dict[str, str]] = {
    "PcdMaxVariableSize": "max_variable_size",
    "PcdMaxAuthVariableSize": "max_auth_variable_size",
    "PcdMaxHardwareErrorVariableSize": "max_hw_error_variable_size",
}


def relayout(store: VariableStore, layout: str | StoreLayout) -> VariableStore:
    """A new store of ``layout`` (a :class:`StoreLayout` or a name or alias such as
    ``ovmf-4m``) holding every live variable of ``store``: name, GUID, attributes, data,
    and in the authenticated format the timestamp (and, for count-based authenticated
    variables, MonotonicCount and PubKeyIndex), in the order ``store`` would write them
    (:meth:`VariableStore.reclaim_order`). The header format (authenticated or normal)
    stays the same.

    What is normalised is what every rewrite normalises (:meth:`VariableStore.set`): a
    TimeStamp on a variable without TIME_BASED_AUTHENTICATED_WRITE_ACCESS becomes zero, as
    edk2 writes it. Raises :class:`~fwtools.formats.varstore.errors.DamagedStoreError` for
    a store with error-level issues (rewriting would change what the firmware sees),
    :class:`~fwtools.formats.varstore.errors.VariableTooLargeError` for a variable over the
    new layout's limits, :class:`~fwtools.formats.varstore.errors.StoreFullError` when the
    variables do not fit, and :class:`~fwtools.errors.UsageError` for an unknown layout or
    one that cannot be made blank or belongs to the other machine (OVMF's and ArmVirt's
    stores are not interchangeable: their firmware is not).
    """
    try:
        return _relayout(store, layout)
    except FwError as exc:  # about this store: say which file it is
        raise (exc.with_path(store.path) if store.path else exc) from None


def _relayout(store: VariableStore, layout: str | StoreLayout) -> VariableStore:
    from fwtools.formats.varstore.errors import DamagedStoreError, StoreFullError
    from fwtools.formats.varstore.store import VariableStore

    target = lay.layout_by_name(layout) if isinstance(layout, str) else layout
    if target is None:
        raise UsageError(f"unknown variable store layout {layout!r} (known: "
                         f"{', '.join(t.name for t in TARGETS)})")
    current = store.layout
    if current.name in lay.LAYOUTS and current.x86_flash != target.x86_flash:
        raise UsageError(f"layout {target.name} belongs to {_machine(target)}, this store "
                         f"({current.name}) to {_machine(current)}; their firmware is not "
                         "interchangeable")
    damage = [i for i in store.check() if i.severity == "error"]
    if damage:
        raise DamagedStoreError(damage)
    new = VariableStore.blank(target, authenticated=store.authenticated)
    for variable in store.reclaim_order():
        if variable.name:  # a NameSize-2 record, which no SetVariable creates, is dropped
            new.set(variable)
    if new.free_space() < 0:
        raise StoreFullError(new.used_space(), new.layout.capacity,
                             f"{len(new)} variables in layout {new.layout.name}")
    return new


def _machine(layout: StoreLayout) -> str:
    return "OVMF (x86 QEMU flash)" if layout.x86_flash else "ArmVirt (AArch64 QEMU flash)"


def limit_of(layout: StoreLayout, pcd: str) -> int | None:
    """The limit ``pcd`` (``PcdMaxAuthVariableSize``, ...) of ``layout``, None if unknown."""
    field = _LIMIT_FIELDS.get(pcd)
    value = getattr(layout, field) if field is not None else None
    return value if isinstance(value, int) else None


def larger_layout(
    current: StoreLayout, error: VariableTooLargeError | StoreFullError
) -> StoreLayout | None:
    """The smallest variables-only layout for the same machine (OVMF or ArmVirt) that takes
    what ``error`` says does not fit in ``current``: a record of ``error.size`` bytes under
    the same limit, or ``error.needed`` bytes of records. None when there is none (or the
    current layout is not one fwtools knows)."""
    from fwtools.formats.varstore.errors import VariableTooLargeError

    if current.name not in lay.LAYOUTS:
        return None
    for candidate in sorted(TARGETS, key=lambda t: t.capacity):
        if candidate.x86_flash != current.x86_flash or candidate.capacity < current.capacity:
            continue
        if candidate.name == current.name:
            continue
        if isinstance(error, VariableTooLargeError):
            limit = limit_of(candidate, error.pcd)
            if limit is not None and limit >= error.size:
                return candidate
        elif candidate.capacity >= error.needed:
            return candidate
    return None


def larger_layout_hint(path: str, current: StoreLayout,
                       error: VariableTooLargeError | StoreFullError) -> str:
    """What to do about ``error`` in a store of layout ``current`` at ``path``: the larger
    layout that takes it and the conversion to it, or that none has room. The one wording
    fw-vars (set, dbx, enroll ...), fw-vars update and fw-vars audit give."""
    from fwtools.formats.varstore.errors import VariableTooLargeError

    bigger = larger_layout(current, error)
    if bigger is None:
        return f"no known layout of this machine's firmware has room for it ({current.name})"
    code = FIRMWARE_CODE.get(bigger.name)
    firmware = f" and boot it with {code}" if code else ""
    if isinstance(error, VariableTooLargeError):
        room = f"{error.pcd} {limit_of(bigger, error.pcd)}"
    else:
        room = f"{bigger.capacity} bytes for variables"
    return (f"layout {bigger.name} ({bigger.description}) takes it ({room}): convert the "
            f"store with 'fw-vars convert {path} NEW.fd --layout {bigger.name}'{firmware}")


__all__ = ["FIRMWARE_CODE", "TARGETS", "larger_layout", "larger_layout_hint", "limit_of",
           "relayout"]
