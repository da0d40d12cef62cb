"""What the fw-vars subcommands share: loading a store to edit and saving it back."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from fwtools.cli.common import call, edit_target, with_options

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

    loaded: LoadedStore = call(lambda: load_store(path))
    return loaded, call(lambda: loaded.as_store(template))


def save_store(loaded: LoadedStore, store: VariableStore, output: str | None, in_place: bool,
          fmt: str | None) -> str:
    from fwtools._base.atomic import atomic_write
    from fwtools.formats.varstore.storeio import format_for_output, store_bytes

    target = edit_target(loaded.path, output, in_place)
    out_fmt = call(lambda: format_for_output(target, fmt, loaded.format))
    if in_place and fmt is None:
        out_fmt = loaded.format
    data = call(lambda: store_bytes(store, out_fmt, cluster_size=loaded.qcow2_cluster_size,
                                     version=loaded.qcow2_version, source_format=loaded.format))
    call(lambda: atomic_write(target, data))
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
