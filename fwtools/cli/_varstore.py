"""What the fw-vars subcommands share: loading a store to edit and saving it back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from fwtools.cli.common import fail

if TYPE_CHECKING:
    import uuid

    from fwtools.formats.varstore.edk2 import Variable, VariableStore
    from fwtools.formats.varstore.storeio import LoadedStore

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def call(action: Callable[[], T]) -> T:
    """Run library code, turning every FwError into one line and exit 2."""
    from fwtools.errors import FwError

    try:
        return action()
    except FwError as exc:
        fail(str(exc))


def vendor_guid(text: str | None, default: uuid.UUID) -> uuid.UUID:
    if text is None:
        return default
    from fwtools._base.guid import parse_guid
    from fwtools.formats.efi import guids

    known: uuid.UUID | None = guids.guid_by_name(text)
    return known if known is not None else call(lambda: parse_guid(text))


def default_guid(name: str) -> uuid.UUID:
    """The GUID a variable name usually lives under (EFI global for the spec's names)."""
    from fwtools.formats.efi import guids
    from fwtools.formats.efi.authvar import PRESETS

    preset = PRESETS.get(name)
    return preset.vendor if preset is not None else guids.EFI_GLOBAL_VARIABLE


def open_store(path: str, template: str | None = None) -> LoadedStore:
    """Load a store to edit; a JSON input needs a template (or layout) to become one."""
    from fwtools.formats.varstore.storeio import load_store

    loaded: LoadedStore = call(lambda: load_store(path))
    if loaded.store is None:
        loaded.store = store_from_json(loaded.json_variables, template)
    return loaded


def store_from_json(variables: list[Variable], template: str | None) -> VariableStore:
    from fwtools.formats.varstore.edk2 import VariableStore
    from fwtools.formats.varstore.storeio import load_store

    if template is None:
        fail("a JSON store needs --template STORE (or a layout name such as ovmf-4m-528k) "
             "to become a flash image")
    if Path(template).exists():
        base = call(lambda: load_store(template)).store
        if base is None:
            fail(f"{template}: a template must be a raw or qcow2 store")
        store = call(lambda: VariableStore.blank(base.layout, authenticated=base.authenticated))
    else:
        store = call(lambda: VariableStore.blank(template))
    for var in variables:
        store.set(var)
    return store


def save_store(loaded: LoadedStore, store: VariableStore, output: str | None, in_place: bool,
          fmt: str | None) -> str:
    from fwtools._base.atomic import atomic_write
    from fwtools.formats.varstore.storeio import format_for_output, store_bytes

    if output and in_place:
        fail("give either -o/--output or --in-place, not both")
    if not output and not in_place:
        fail("editing needs -o/--output FILE or --in-place")
    target = loaded.path if in_place else str(output)
    out_fmt = call(lambda: format_for_output(target, fmt, loaded.format))
    if in_place and fmt is None:
        out_fmt = loaded.format
    data = call(lambda: store_bytes(store, out_fmt, cluster_size=loaded.qcow2_cluster_size,
                                     version=loaded.qcow2_version, source_format=loaded.format))
    call(lambda: atomic_write(target, data))
    return target


def edit_options(f: F) -> F:
    for option in reversed([
        click.option("-o", "--output", type=click.Path(dir_okay=False),
                     help="Write the edited store here."),
        click.option("--in-place", is_flag=True, help="Replace the input store (atomically)."),
        click.option("--format", "fmt", type=click.Choice(["raw", "qcow2", "json"]),
                     help="Output container (default: from the output's extension, else the "
                     "input's)."),
        click.option("--template", help="For JSON input: a store or layout name to build on."),
    ]):
        f = option(f)
    return f


