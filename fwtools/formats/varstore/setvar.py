"""What SetVariable accepts and how edk2 stores it: the rules :meth:`VariableStore.set
<fwtools.formats.varstore.store.VariableStore.set>` applies before a variable enters a store.

References (tianocore/edk2): ``MdeModulePkg/Universal/Variable/RuntimeDxe/Variable.c``
(``VariableServiceSetVariable``: the attribute rules and the size limits per attribute;
``UpdateVariable``: TimeStamp, MonotonicCount and PubKeyIndex as written).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Final

from fwtools._base.efitime import EfiTime
from fwtools._base.record import replace
from fwtools.errors import UsageError
from fwtools.formats.efi.authvar import (
    APPEND_WRITE,
    AUTHENTICATED_WRITE_ACCESS,
    BOOTSERVICE_ACCESS,
    HARDWARE_ERROR_RECORD,
    NON_VOLATILE,
    RUNTIME_ACCESS,
    TIME_BASED_AUTHENTICATED_WRITE_ACCESS,
    encode_variable_name,
)
from fwtools.formats.varstore.errors import VariableTooLargeError
from fwtools.formats.varstore.model import Variable

if TYPE_CHECKING:
    from fwtools.formats.varstore.layout import StoreLayout

ZERO_TIME: Final = EfiTime.zero()
_AT_AW: Final = AUTHENTICATED_WRITE_ACCESS | TIME_BASED_AUTHENTICATED_WRITE_ACCESS
_U64: Final = 0xFFFFFFFFFFFFFFFF
_U32: Final = 0xFFFFFFFF


def validated(variable: Variable, authenticated: bool) -> Variable:
    """``variable`` as a store of this record format keeps it (see :func:`normalised`), or
    :class:`UsageError` for what no firmware stores: an invalid name, APPEND_WRITE, no
    NON_VOLATILE, RUNTIME without BOOTSERVICE, both authenticated-write bits, empty data,
    authenticated attributes or a timestamp in a normal-format store, counters that do not
    fit their fields."""
    if not isinstance(variable.name, str):
        raise UsageError(f"variable name {variable.name!r} is not a string")
    if not isinstance(variable.guid, uuid.UUID):
        raise UsageError(f"variable {variable.name!r}: guid must be a uuid.UUID")
    encode_variable_name(variable.name)
    attrs = variable.attributes
    if isinstance(attrs, bool) or not isinstance(attrs, int) or not 0 <= attrs <= _U32:
        raise UsageError(f"variable {variable.name}: attributes {attrs!r} are not a u32")
    if attrs & APPEND_WRITE:
        raise UsageError(
            f"variable {variable.name}: APPEND_WRITE (0x40) is a SetVariable operation, "
            "not a stored attribute; merge the data and store it without 0x40"
        )
    if not attrs & NON_VOLATILE:
        raise UsageError(
            f"variable {variable.name}: attributes {attrs:#x} lack NON_VOLATILE (0x1); "
            "only non-volatile variables are kept in the store"
        )
    if attrs & RUNTIME_ACCESS and not attrs & BOOTSERVICE_ACCESS:
        raise UsageError(
            f"variable {variable.name}: RUNTIME_ACCESS without BOOTSERVICE_ACCESS "
            f"({attrs:#x}) is refused by SetVariable"
        )
    if attrs & _AT_AW == _AT_AW:
        raise UsageError(
            f"variable {variable.name}: both AUTHENTICATED_WRITE_ACCESS and "
            "TIME_BASED_AUTHENTICATED_WRITE_ACCESS are set"
        )
    if not variable.data:
        raise UsageError(
            f"variable {variable.name}: empty data (SetVariable with no data deletes a "
            "variable; use delete)"
        )
    if not authenticated:
        if attrs & _AT_AW:
            raise UsageError(
                f"variable {variable.name}: authenticated attributes {attrs:#x} need the "
                "authenticated store format; this store uses the normal format"
            )
        if variable.timestamp is not None and not variable.timestamp.is_zero:
            raise UsageError(f"variable {variable.name}: a normal-format store has no timestamps")
    for field_name, limit in (("monotonic_count", _U64), ("pubkey_index", _U32)):
        value = getattr(variable, field_name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            raise UsageError(f"variable {variable.name}: {field_name} {value!r} does not fit")
    if variable.timestamp is not None and not isinstance(variable.timestamp, EfiTime):
        raise UsageError(f"variable {variable.name}: timestamp must be an EfiTime")
    return normalised(replace(variable, data=bytes(variable.data)), authenticated)


def normalised(variable: Variable, authenticated: bool) -> Variable:
    """The variable as edk2 writes its record: in the authenticated format TimeStamp zero
    unless it has TIME_BASED_AUTHENTICATED_WRITE_ACCESS, MonotonicCount and PubKeyIndex zero
    unless it has (count-based) AUTHENTICATED_WRITE_ACCESS; none of them in the normal
    format. State and offset are dropped (a stored record is 0x3F)."""
    attrs = variable.attributes
    if authenticated:
        stamp = variable.timestamp if attrs & TIME_BASED_AUTHENTICATED_WRITE_ACCESS else None
        timestamp: EfiTime | None = stamp if stamp is not None else ZERO_TIME
        counted = bool(attrs & AUTHENTICATED_WRITE_ACCESS)
        count = variable.monotonic_count if counted else 0
        index = variable.pubkey_index if counted else 0
    else:
        timestamp, count, index = None, 0, 0
    return Variable(
        name=variable.name,
        guid=variable.guid,
        attributes=attrs,
        data=variable.data,
        timestamp=timestamp,
        monotonic_count=count,
        pubkey_index=index,
    )


def size_limit(layout: StoreLayout, attributes: int) -> tuple[int, str] | None:
    """The build's maximum record size for a variable with these attributes and the PCD
    that sets it, or None where the layout does not know it."""
    limit = layout.limit_for(attributes)
    if limit is None:
        return None
    if attributes & HARDWARE_ERROR_RECORD:
        pcd = "PcdMaxHardwareErrorVariableSize"
    elif attributes & _AT_AW:
        pcd = "PcdMaxAuthVariableSize"
    else:
        pcd = "PcdMaxVariableSize"
    return limit, pcd


def check_limit(layout: StoreLayout, variable: Variable, authenticated: bool) -> None:
    """Raise :class:`VariableTooLargeError` when the variable's record is over the limit."""
    found = size_limit(layout, variable.attributes)
    if found is None:
        return
    limit, pcd = found
    size = variable.record_size(authenticated)
    if size > limit:
        raise VariableTooLargeError(variable.name, variable.guid, size, limit, pcd)


__all__ = ["check_limit", "normalised", "size_limit", "validated"]
