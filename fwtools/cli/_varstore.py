"""What the fw-vars subcommands share: loading a store to edit and saving it back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from fwtools.cli.common import edit_target, with_options

if TYPE_CHECKING:
    import uuid

    from fwtools.formats.varstore.errors import StoreFullError, VariableTooLargeError
    from fwtools.formats.varstore.store import VariableStore
    from fwtools.formats.varstore.storeio import LoadedStore


def default_guid(name: str) -> uuid.UUID:
    """The GUID a variable name usually lives under (EFI global for the spec's names)."""
    from fwtools.formats.efi import guids
    from fwtools.formats.efi.authvar import PRESETS

    preset = PRESETS.get(name)
    return preset.vendor if preset is not None else guids.EFI_GLOBAL_VARIABLE


def open_store(path: str, template: str | None = None) -> tuple[LoadedStore, VariableStore]:
    """Load a store to edit; a JSON input needs a template (or layout) to become one."""
    from fwtools.formats.varstore.storeio import load_store

    loaded = load_store(path)
    return loaded, loaded.as_store(template)


@contextmanager
def editing(path: str, template: str | None = None) -> Iterator[
    tuple[LoadedStore, VariableStore]
]:
    """:func:`open_store` for an edit made in the ``with`` block. A variable over the
    build's size limit, or variables that no longer fit, get a hint naming the larger
    layout that would take them and how to move the store there (``fw-vars convert
    --layout``): the one way out, since the firmware itself refuses such a write."""
    from fwtools.formats.varstore.errors import StoreFullError, VariableTooLargeError

    loaded, store = open_store(path, template)
    try:
        yield loaded, store
    except (VariableTooLargeError, StoreFullError) as exc:
        raise exc.with_path(path).with_hint(_larger_layout_hint(path, store, exc)) from None


def _larger_layout_hint(path: str, store: VariableStore,
                        exc: VariableTooLargeError | StoreFullError) -> str:
    from fwtools.formats.varstore.errors import VariableTooLargeError
    from fwtools.formats.varstore.relayout import FIRMWARE_CODE, larger_layout, limit_of

    current = store.layout
    bigger = larger_layout(current, exc)
    if bigger is None:
        return f"no known layout of this machine's firmware has room for it ({current.name})"
    code = FIRMWARE_CODE.get(bigger.name)
    firmware = f" and boot it with {code}" if code else ""
    if isinstance(exc, VariableTooLargeError):
        room = f"{exc.pcd} {limit_of(bigger, exc.pcd)}"
    else:
        room = f"{bigger.capacity} bytes for variables"
    return (f"layout {bigger.name} ({bigger.description}) takes it ({room}): convert the "
            f"store with 'fw-vars convert {path} NEW.fd --layout {bigger.name}'{firmware}")


def save_store(loaded: LoadedStore, store: VariableStore, output: str | None, in_place: bool,
               fmt: str | None) -> str:
    from fwtools._base.atomic import atomic_write
    from fwtools.formats.varstore.storeio import format_for_output, store_bytes

    target = edit_target(loaded.path, output, in_place)
    out_fmt = format_for_output(target, fmt, loaded.format)
    if in_place and fmt is None:
        out_fmt = loaded.format
    data = store_bytes(store, out_fmt, cluster_size=loaded.qcow2_cluster_size,
                       version=loaded.qcow2_version, source_format=loaded.format)
    atomic_write(target, data)
    return target


edit_options = with_options([
    click.option("-o", "--output", type=click.Path(dir_okay=False),
                 help="Write the edited store here."),
    click.option("--in-place", is_flag=True, help="Replace the input store (atomically)."),
    click.option("--format", "fmt", type=click.Choice(["raw", "qcow2", "json"]),
                 help="Output container (default: from the output's extension, else the "
                 "input's)."),
    click.option("--template", help="For JSON input: a store or layout name to build on."),
])
