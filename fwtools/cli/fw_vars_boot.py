"""fw-vars boot: list, add, order, next and delete Boot#### entries
(the library side is fwtools/formats/varstore/bootentries.py)."""

from __future__ import annotations

import sys

import click

from fwtools.cli._varstore import edit_options, editing, save_store
from fwtools.cli.common import CONTEXT, EXIT_FINDINGS, INPUT_FILE

STORE = INPUT_FILE


@click.group(context_settings=CONTEXT)
def boot() -> None:
    """Boot entries (Boot####, BootOrder, BootNext)."""


@boot.command("list", context_settings=CONTEXT)
@click.argument("store", type=STORE)
def list_(store: str) -> None:
    """List boot entries in BootOrder order, then the others."""
    from fwtools.formats.varstore import bootentries as be
    from fwtools.formats.varstore.storeio import load_store

    loaded = load_store(store)
    order = be.boot_order(loaded)
    nxt = be.boot_next(loaded)
    if nxt is not None:
        click.echo(f"BootNext: {be.entry_name(nxt)}")
    click.echo("BootOrder: " + ",".join(f"{n:04X}" for n in order))
    for entry in be.list_entries(loaded.variables, order):
        if entry.variable is None:
            click.echo(f"  {entry.name}  (missing)")
        elif entry.option is None:  # a broken entry is shown, not fatal
            click.echo(f"  {entry.name}  unparsable: {entry.error}")
        else:
            flag = "*" if entry.option.active else " "
            paths = " ".join(entry.option.path_texts)
            click.echo(f"{flag} {entry.name}  {entry.option.description}  {paths}")


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
    from fwtools.formats.varstore import bootentries as be

    wanted = be.parse_entry_number(number) if number else None
    with editing(store, template) as (loaded, st):
        num = be.add_entry(
            st, description, file_path, partuuid=partuuid, partition=partition, start=start,
            size=size, optional_data=(optional + "\0").encode("utf-16-le") if optional else b"",
            number=wanted, first=first, make_next=make_next,
        )
        target = save_store(loaded, st, output, in_place, fmt)
    click.echo(f"{target}: {be.entry_name(num)} {description!r} -> {file_path}")


@boot.command(context_settings=CONTEXT)
@click.argument("store", type=STORE)
@click.argument("entries", nargs=-1, required=True)
@edit_options
def order(store: str, entries: tuple[str, ...], output: str | None, in_place: bool,
          fmt: str | None, template: str | None) -> None:
    """Set BootOrder, e.g. `boot order STORE 0003 0001` (comma lists work too)."""
    from fwtools.formats.varstore import bootentries as be

    numbers = [be.parse_entry_number(e) for item in entries for e in item.split(",") if e]
    with editing(store, template) as (loaded, st):
        be.set_order(st, numbers)
        target = save_store(loaded, st, output, in_place, fmt)
    click.echo(f"{target}: BootOrder {','.join(f'{n:04X}' for n in numbers)}")


@boot.command("next", context_settings=CONTEXT)
@click.argument("store", type=STORE)
@click.argument("entry")
@edit_options
def next_(store: str, entry: str, output: str | None, in_place: bool, fmt: str | None,
          template: str | None) -> None:
    """Set BootNext: boot ENTRY once, on the next start."""
    from fwtools.formats.varstore import bootentries as be

    num = be.parse_entry_number(entry)
    with editing(store, template) as (loaded, st):
        be.set_next(st, num)
        target = save_store(loaded, st, output, in_place, fmt)
    click.echo(f"{target}: BootNext {be.entry_name(num)}")


@boot.command("delete", context_settings=CONTEXT)
@click.argument("store", type=STORE)
@click.argument("entry")
@edit_options
def delete_(store: str, entry: str, output: str | None, in_place: bool, fmt: str | None,
            template: str | None) -> None:
    """Delete a Boot#### entry and take it out of BootOrder and BootNext."""
    from fwtools.formats.varstore import bootentries as be

    num = be.parse_entry_number(entry)
    with editing(store, template) as (loaded, st):
        if not be.delete_entry(st, num):
            click.echo(f"{store}: no entry {be.entry_name(num)}; nothing written", err=True)
            sys.exit(EXIT_FINDINGS)
        target = save_store(loaded, st, output, in_place, fmt)
    click.echo(f"{target}: {be.entry_name(num)} deleted")
