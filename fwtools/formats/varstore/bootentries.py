"""Boot entries in a variable store: Boot#### load options, BootOrder and BootNext
(UEFI 2.10 §3.1.1 "Boot Manager Programming", §3.3 "Globally Defined Variables").

Every variable here is an EFI global variable, stored NV|BS|RT (0x7) as the firmware's
boot manager and efibootmgr store them. BootOrder is an array of UINT16; BootNext one.
"""

from __future__ import annotations

import string
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from fwtools.errors import FwError, UsageError
from fwtools.formats.efi import guids

if TYPE_CHECKING:
    from fwtools.formats.efi.loadoption import LoadOption
    from fwtools.formats.varstore.model import Variable
    from fwtools.formats.varstore.store import VariableStore

BOOT_ATTRIBUTES: Final = 0x07  # NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS
MAX_ENTRY: Final = 0xFFFF


class VariableSource(Protocol):
    """Anything variables can be looked up in (a parsed store, a loaded JSON store)."""

    def get(self, name: str, guid: uuid.UUID) -> Variable | None: ...


def entry_name(number: int) -> str:
    """``Boot0003`` for 3."""
    return f"Boot{number:04X}"


def parse_entry_number(text: str) -> int:
    """``0003``, ``Boot0003`` or ``3`` -> 3 (hex, as the variable names are); UsageError
    for anything else."""
    try:
        number = int(text.removeprefix("Boot"), 16)
    except ValueError:
        raise UsageError(
            f"{text!r} is not a boot entry number (e.g. 0003 or Boot0003)"
        ) from None
    if not 0 <= number <= MAX_ENTRY:
        raise UsageError(f"{text!r} is out of range")
    return number


def boot_number(variable: Variable) -> int | None:
    """#### of a Boot#### variable (EFI global, four hex digits), else None."""
    digits = variable.name[4:]
    if (variable.guid != guids.EFI_GLOBAL_VARIABLE or len(variable.name) != 8
            or not variable.name.startswith("Boot")
            or not all(c in string.hexdigits for c in digits)):
        return None
    return int(digits, 16)


def _u16_array(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data) - 1, 2)]


def order_bytes(order: list[int]) -> bytes:
    """BootOrder's data for ``order``."""
    return b"".join(n.to_bytes(2, "little") for n in order)


def boot_order(store: VariableSource) -> list[int]:
    """BootOrder's entry numbers (empty when there is none)."""
    var = store.get("BootOrder", guids.EFI_GLOBAL_VARIABLE)
    return _u16_array(var.data) if var is not None else []


def boot_next(store: VariableSource) -> int | None:
    """BootNext's entry number, or None."""
    var = store.get("BootNext", guids.EFI_GLOBAL_VARIABLE)
    if var is None or len(var.data) < 2:
        return None
    return int.from_bytes(var.data[:2], "little")


@dataclass(frozen=True)
class BootEntry:
    """One entry as listed: ``variable`` None when BootOrder names a missing Boot####;
    ``option`` the decoded load option, or ``error`` why it does not decode."""

    number: int
    in_order: bool
    variable: Variable | None
    option: LoadOption | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return entry_name(self.number)


def list_entries(variables: list[Variable], order: list[int]) -> list[BootEntry]:
    """The entries in BootOrder order, then the Boot#### variables BootOrder leaves out
    (by number). A broken load option is listed with its error, not raised."""
    from fwtools.formats.efi.loadoption import LoadOption

    by_number = {n: v for v in variables if (n := boot_number(v)) is not None}
    numbers = order + sorted(set(by_number) - set(order))
    out = []
    for number in numbers:
        var = by_number.get(number)
        if var is None:
            out.append(BootEntry(number, number in order, None))
            continue
        try:
            out.append(BootEntry(number, number in order, var, LoadOption.parse(var.data)))
        except FwError as exc:
            out.append(BootEntry(number, number in order, var, error=str(exc)))
    return out


def _set_global(store: VariableStore, name: str, data: bytes) -> None:
    from fwtools.formats.varstore.model import Variable

    store.set(Variable(name, guids.EFI_GLOBAL_VARIABLE, BOOT_ATTRIBUTES, data))


def add_entry(
    store: VariableStore,
    description: str,
    file_path: str,
    *,
    partuuid: str | None = None,
    partition: int = 1,
    start: int = 2048,
    size: int = 0,
    optional_data: bytes = b"",
    number: int | None = None,
    first: bool = True,
    make_next: bool = False,
) -> int:
    """Add (or replace) Boot#### for the loader ``file_path`` on the ESP and put it first
    (or last) in BootOrder; ``make_next`` also sets BootNext. The device path is
    ``HD(partition,GPT,partuuid,start,size)/file_path`` with ``partuuid``, else the short
    form ``file_path`` alone, which the boot manager tries on every file system
    (edk2 ``BmExpandFileDevicePath``). ``number`` defaults to the first free one.
    Returns the entry number; raises what :meth:`VariableStore.set` raises (e.g.
    VariableTooLargeError for a description past the build's PcdMaxVariableSize)."""
    from fwtools.formats.efi import devicepath
    from fwtools.formats.efi.loadoption import LoadOption

    if number is None:
        taken = {boot_number(v) for v in store}
        free = [n for n in range(MAX_ENTRY + 1) if n not in taken]
        if not free:
            raise UsageError("every Boot#### number is taken")
        number = free[0]
    if partuuid:
        path = devicepath.build_hd_file_path(partition, start, size, partuuid, file_path)
    else:
        path = devicepath.build_file_path(file_path)
    option = LoadOption.build(description, path, optional_data)
    order = [n for n in boot_order(store) if n != number]
    _set_global(store, entry_name(number), option.to_bytes())
    _set_global(store, "BootOrder", order_bytes([number, *order] if first else [*order, number]))
    if make_next:
        _set_global(store, "BootNext", number.to_bytes(2, "little"))
    return number


def set_order(store: VariableStore, numbers: list[int]) -> None:
    """Set BootOrder to ``numbers``; UsageError for a number given twice or an entry that
    does not exist."""
    if len(set(numbers)) != len(numbers):
        raise UsageError("an entry appears twice in the new BootOrder")
    missing = [n for n in numbers if store.get(entry_name(n), guids.EFI_GLOBAL_VARIABLE) is None]
    if missing:
        raise UsageError("no such entries: " + ", ".join(entry_name(n) for n in missing))
    _set_global(store, "BootOrder", order_bytes(numbers))


def set_next(store: VariableStore, number: int) -> None:
    """Set BootNext (boot ``number`` once); UsageError when the entry does not exist."""
    if store.get(entry_name(number), guids.EFI_GLOBAL_VARIABLE) is None:
        raise UsageError(f"no entry {entry_name(number)}")
    _set_global(store, "BootNext", number.to_bytes(2, "little"))


def delete_entry(store: VariableStore, number: int) -> bool:
    """Delete Boot#### and take it out of BootOrder and BootNext; False when there is no
    such entry (nothing changed).

    Deleting the last entry of BootOrder deletes BootOrder: an empty one cannot be stored
    (SetVariable with no data deletes; tests/reliability/test_found_bugs.py)."""
    if not store.delete(entry_name(number), guids.EFI_GLOBAL_VARIABLE):
        return False
    order = boot_order(store)
    if number in order:
        rest = [n for n in order if n != number]
        if rest:
            _set_global(store, "BootOrder", order_bytes(rest))
        else:
            store.delete("BootOrder", guids.EFI_GLOBAL_VARIABLE)
    if boot_next(store) == number:
        store.delete("BootNext", guids.EFI_GLOBAL_VARIABLE)
    return True


__all__ = [
    "BOOT_ATTRIBUTES",
    "BootEntry",
    "add_entry",
    "boot_next",
    "boot_number",
    "boot_order",
    "delete_entry",
    "entry_name",
    "list_entries",
    "order_bytes",
    "parse_entry_number",
    "set_next",
    "set_order",
]
