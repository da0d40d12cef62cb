"""What the fw-vars subcommands share: loading a store to edit and saving it back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from fwtools.cli.common import edit_target, with_options

if TYPE_CHECKING:
    import uuid

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
        from fwtools.formats.varstore.relayout import larger_layout_hint

        raise exc.with_path(path).with_hint(larger_layout_hint(path, store.layout, exc)) from None


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
