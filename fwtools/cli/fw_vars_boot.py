"""fw-vars boot: list, add, order, next and delete Boot#### entries."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from fwtools.cli._varstore import edit_options, open_store, save_store
from fwtools.cli.common import EXIT_FINDINGS, INPUT_FILE, call, fail

if TYPE_CHECKING:
    from fwtools.formats.varstore.edk2 import Variable, VariableStore
    from fwtools.formats.varstore.storeio import LoadedStore

CONTEXT = {"help_option_names": ["-h", "--help"]}
STORE = INPUT_FILE


def _number(text: str) -> int:
    """``0003``, ``Boot0003`` or ``3`` -> 3 (hex, as the variable names are)."""
    value = text.removeprefix("Boot")
    try:
        number = int(value, 16)
    except ValueError:
        fail(f"{text!r} is not a boot entry number (e.g. 0003 or Boot0003)")
    if not 0 <= number <= 0xFFFF:
        fail(f"{text!r} is out of range")
    return number


def _order(store: LoadedStore | VariableStore) -> list[int]:
    from fwtools.formats.efi import guids

    var = store.get("BootOrder", guids.EFI_GLOBAL_VARIABLE)
    if var is None:
        return []
    data = var.data
    return [int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data) - 1, 2)]


def _boot_number(var: Variable) -> int | None:
    """#### of a Boot#### variable (EFI global, four hex digits), else None."""
    from fwtools.formats.efi import guids

    digits = var.name[4:]
    if (var.guid != guids.EFI_GLOBAL_VARIABLE or len(var.name) != 8
            or not var.name.startswith("Boot")
            or not all(c in "0123456789abcdefABCDEF" for c in digits)):
        return None
    return int(digits, 16)


def _order_bytes(order: list[int]) -> bytes:
    return b"".join(n.to_bytes(2, "little") for n in order)


@click.group(context_settings=CONTEXT)
def boot() -> None:
    """Boot entries (Boot####, BootOrder, BootNext)."""


@boot.command("list", context_settings=CONTEXT)
@click.argument("store", type=STORE)
def list_(store: str) -> None:
    """List boot entries in BootOrder order, then the others."""
    from fwtools.errors import FwError
    from fwtools.formats.efi import guids
    from fwtools.formats.efi.loadoption import LoadOption
    from fwtools.formats.varstore.storeio import load_store

    loaded = call(lambda: load_store(store))
    entries = {n: v for v in loaded.variables if (n := _boot_number(v)) is not None}
    order = _order(loaded)
    nxt = loaded.get("BootNext", guids.EFI_GLOBAL_VARIABLE)
    if nxt is not None and len(nxt.data) >= 2:
        click.echo(f"BootNext: Boot{int.from_bytes(nxt.data[:2], 'little'):04X}")
    click.echo("BootOrder: " + ",".join(f"{n:04X}" for n in order))
    for number in order + sorted(set(entries) - set(order)):
        var = entries.get(number)
        if var is None:
            click.echo(f"  Boot{number:04X}  (missing)")
            continue
        try:
            option = LoadOption.parse(var.data)
        except FwError as exc:  # a broken entry is shown, not fatal
            click.echo(f"  Boot{number:04X}  unparsable: {exc}")
            continue
        flag = "*" if option.active else " "
        paths = " ".join(p for p in option.path_texts)
        click.echo(f"{flag} Boot{number:04X}  {option.description}  {paths}")


@boot.command(context_settings=CONTEXT)
@click.argument("store", type=STORE)
@click.option("--description", required=True, help="What the firmware's boot menu shows.")
@click.option("--path", "file_path", required=True,
              help="The loader on the ESP, e.g. \\EFI\\debian\\shimx64.efi.")
@click.option("--partuuid", help="GPT partition GUID of the ESP (makes an HD() path; "
              "default: a short-form file path the firmware resolves on any ESP).")
@click.option("--partition", type=int, default=1, show_default=True)
@click.option("--start", type=int, default=2048, show_default=True, help="First LBA.")
@click.option("--size", type=int, default=0, show_default=True, help="Size in LBAs.")
@click.option("--args", "optional", default="", help="Optional data (UCS-2), e.g. a command line.")
@click.option("--number", help="Entry number (default: the first free).")
@click.option("--first/--last", default=True, help="Where in BootOrder (default: first).")
@click.option("--next", "make_next", is_flag=True, help="Also set BootNext to it.")
@edit_options
def add(store: str, description: str, file_path: str, partuuid: str | None, partition: int,
        start: int, size: int, optional: str, number: str | None, first: bool,
        make_next: bool, output: str | None, in_place: bool, fmt: str | None,
        template: str | None) -> None:
    """Add a Boot#### entry for a loader on the ESP and put it in BootOrder."""
    from fwtools.formats.efi import devicepath, guids
    from fwtools.formats.efi.loadoption import LoadOption
    from fwtools.formats.varstore.edk2 import Variable

    loaded, st = open_store(store, template)
    order = _order(st)
    taken = {_boot_number(v) for v in st}
    num = _number(number) if number else next(n for n in range(0x10000) if n not in taken)
    if partuuid:
        path = call(lambda: devicepath.build_hd_file_path(
            partition, start, size, partuuid, file_path))
    else:
        path = call(lambda: devicepath.build_file_path(file_path))
    data = LoadOption.build(description, path,
                            (optional + "\0").encode("utf-16-le") if optional else b"").to_bytes()
    name = f"Boot{num:04X}"
    st.set(Variable(name, guids.EFI_GLOBAL_VARIABLE, 0x07, data))
    order = [n for n in order if n != num]
    order = [num, *order] if first else [*order, num]
    st.set(Variable("BootOrder", guids.EFI_GLOBAL_VARIABLE, 0x07, _order_bytes(order)))
    if make_next:
        st.set(Variable("BootNext", guids.EFI_GLOBAL_VARIABLE, 0x07, num.to_bytes(2, "little")))
    target = save_store(loaded, st, output, in_place, fmt)
    click.echo(f"{target}: {name} {description!r} -> {file_path}")


@boot.command(context_settings=CONTEXT)
@click.argument("store", type=STORE)
@click.argument("entries", nargs=-1, required=True)
@edit_options
def order(store: str, entries: tuple[str, ...], output: str | None, in_place: bool,
          fmt: str | None, template: str | None) -> None:
    """Set BootOrder, e.g. `boot order STORE 0003 0001` (comma lists work too)."""
    from fwtools.formats.efi import guids
    from fwtools.formats.varstore.edk2 import Variable

    numbers = [_number(e) for item in entries for e in item.split(",") if e]
    if len(set(numbers)) != len(numbers):
        fail("an entry appears twice in the new BootOrder")
    loaded, st = open_store(store, template)
    missing = [n for n in numbers if st.get(f"Boot{n:04X}", guids.EFI_GLOBAL_VARIABLE) is None]
    if missing:
        fail("no such entries: " + ", ".join(f"Boot{n:04X}" for n in missing))
    st.set(Variable("BootOrder", guids.EFI_GLOBAL_VARIABLE, 0x07, _order_bytes(numbers)))
    target = save_store(loaded, st, output, in_place, fmt)
    click.echo(f"{target}: BootOrder {','.join(f'{n:04X}' for n in numbers)}")


@boot.command("next", context_settings=CONTEXT)
@click.argument("store", type=STORE)
@click.argument("entry")
@edit_options
def next_(store: str, entry: str, output: str | None, in_place: bool, fmt: str | None,
          template: str | None) -> None:
    """Set BootNext: boot ENTRY once, on the next start."""
    from fwtools.formats.efi import guids
    from fwtools.formats.varstore.edk2 import Variable

    num = _number(entry)
    loaded, st = open_store(store, template)
    if st.get(f"Boot{num:04X}", guids.EFI_GLOBAL_VARIABLE) is None:
        fail(f"no entry Boot{num:04X}")
    st.set(Variable("BootNext", guids.EFI_GLOBAL_VARIABLE, 0x07, num.to_bytes(2, "little")))
    click.echo(f"{save_store(loaded, st, output, in_place, fmt)}: BootNext Boot{num:04X}")


@boot.command("delete", context_settings=CONTEXT)
@click.argument("store", type=STORE)
@click.argument("entry")
@edit_options
def delete_(store: str, entry: str, output: str | None, in_place: bool, fmt: str | None,
            template: str | None) -> None:
    """Delete a Boot#### entry and take it out of BootOrder and BootNext."""
    from fwtools.formats.efi import guids
    from fwtools.formats.varstore.edk2 import Variable

    num = _number(entry)
    loaded, st = open_store(store, template)
    if not st.delete(f"Boot{num:04X}", guids.EFI_GLOBAL_VARIABLE):
        click.echo(f"{store}: no entry Boot{num:04X}; nothing written", err=True)
        sys.exit(EXIT_FINDINGS)
    order = _order(st)
    if num in order:
        rest = [n for n in order if n != num]
        if rest:
            st.set(Variable("BootOrder", guids.EFI_GLOBAL_VARIABLE, 0x07, _order_bytes(rest)))
        else:
            # Deleting the last entry: an empty BootOrder cannot be stored (SetVariable with
            # no data deletes), so BootOrder goes too; before, this raised UsageError outside
            # call() and printed a traceback (issue 8, tests/reliability/test_found_bugs.py).
            st.delete("BootOrder", guids.EFI_GLOBAL_VARIABLE)
    nxt = st.get("BootNext", guids.EFI_GLOBAL_VARIABLE)
    if nxt is not None and int.from_bytes(nxt.data[:2], "little") == num:
        st.delete("BootNext", guids.EFI_GLOBAL_VARIABLE)
    click.echo(f"{save_store(loaded, st, output, in_place, fmt)}: Boot{num:04X} deleted")
