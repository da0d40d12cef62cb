"""fw-vars' read-only subcommands: show, get, diff, check (loaded only when one runs)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from fwtools.cli.common import (
    CONTEXT,
    EXIT_FINDINGS,
    EXIT_INPUT,
    EXIT_OK,
    INPUT_FILE,
    Command,
    fail,
    guid_arg,
    print_json,
)

if TYPE_CHECKING:
    from fwtools.formats.varstore.model import Variable


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("store", type=INPUT_FILE)
@click.argument("names", nargs=-1)
@click.option("--guid", help="Only variables of this vendor GUID (or name).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (fwtools.fw-vars/1).")
@click.option("-v", "--verbose", is_flag=True, help="Decode every variable in full.")
@click.option("--color/--no-color", default=None)
def show(store: str, names: tuple[str, ...], guid: str | None, as_json: bool, verbose: bool,
         color: bool | None) -> None:
    """List the variables of STORE (or only NAMES)."""
    from fwtools.formats.varstore.storeio import load_store

    loaded = load_store(store)
    variables = _select(loaded.variables, names, guid)
    if as_json:
        from fwtools.formats.varstore.jsonform import variables_to_json

        doc = variables_to_json(variables, format=loaded.format)
        if loaded.store is not None:
            doc["layout"] = loaded.store.layout.name
        print_json(doc)
        return
    from fwtools.report.text_vars import render_variables

    notes = []
    if loaded.blank_template:
        notes.append(f"{loaded.blank_template}; shown as the empty store it becomes")
    if loaded.store is not None:
        st = loaded.store
        notes.append(f"{loaded.format}, layout {st.layout.name}, "
                     f"{'authenticated' if st.authenticated else 'normal'} header format, "
                     f"{len(variables)} variables, {st.free_space()} bytes free")
    render_variables(variables, title=store, verbose=verbose, color=color, notes=notes)


def _select(variables: list[Variable], names: tuple[str, ...], guid: str | None) -> list[
    Variable
]:
    wanted = set(names)
    vendor = guid_arg(guid, "--guid") if guid else None
    chosen = [v for v in variables if (not wanted or v.name in wanted)
              and (vendor is None or v.guid == vendor)]
    missing = wanted - {v.name for v in chosen}
    if missing:
        fail(f"no variable {', '.join(sorted(missing))} in the store")
    return chosen

@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("store", type=INPUT_FILE)
@click.argument("name")
@click.option("--guid", help="Vendor GUID or name (default: the usual one for NAME).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the data here instead of stdout.")
def get(store: str, name: str, guid: str | None, output: str | None) -> None:
    """Write the raw data of variable NAME to stdout or a file."""
    from fwtools._base.atomic import atomic_write
    from fwtools.cli._varstore import default_guid
    from fwtools.formats.varstore.storeio import load_store

    loaded = load_store(store)
    vendor = guid_arg(guid, "--guid") if guid is not None else default_guid(name)
    found = [v for v in loaded.variables if v.name == name and v.guid == vendor]
    if not found:
        fail(f"{store}: no variable {name} {vendor}")
    if output:
        atomic_write(output, found[0].data)
    else:
        sys.stdout.buffer.write(found[0].data)


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("first", type=INPUT_FILE)
@click.argument("second", type=INPUT_FILE)
@click.option("--json", "as_json", is_flag=True)
def diff(first: str, second: str, as_json: bool) -> None:
    """Compare two stores variable by variable (keyed by GUID and name). Exit 1 if they
    differ."""
    from fwtools.formats.efi import guids
    from fwtools.formats.varstore.diff import diff_variables
    from fwtools.formats.varstore.storeio import load_store

    changes = diff_variables(load_store(first).variables, load_store(second).variables)
    rows: list[dict[str, Any]] = [
        {"guid": str(c.guid), "guid_name": guids.guid_name(c.guid), "name": c.name,
         "status": c.status, "changed": list(c.changed)}
        for c in changes
    ]
    if as_json:
        from fwtools.report.envelope import document

        print_json(document("fwtools.fw-vars.diff/1", rows, {
            s: sum(1 for r in rows if r["status"] == s) for s in ("added", "removed", "changed")
        }))
    else:
        mark = {"added": "+", "removed": "-", "changed": "~"}
        for r in rows:
            extra = f" ({', '.join(r['changed'])})" if r["changed"] else ""
            click.echo(f"{mark[r['status']]} {r['name']} {r['guid_name'] or r['guid']}{extra}")
        if not rows:
            click.echo("no differences")
    sys.exit(EXIT_FINDINGS if rows else EXIT_OK)


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("stores", nargs=-1, required=True, type=INPUT_FILE)
@click.option("--json", "as_json", is_flag=True)
def check(stores: tuple[str, ...], as_json: bool) -> None:
    """Integrity report: headers, checksums, record states, free space, FTW, sizes. Exit 1
    when a problem (not just a note) is found, 2 when a store cannot be read; every store is
    checked and reported either way."""
    from fwtools.errors import FwError
    from fwtools.formats.varstore.storeio import load_store
    from fwtools.report.jsonable import to_jsonable

    files: list[dict[str, Any]] = []
    worst = EXIT_OK
    for path in stores:
        try:
            loaded = load_store(path)
        except FwError as exc:  # reported, and the next store is still checked
            files.append({"path": path, "error": str(exc.with_path(path)), "issues": []})
            click.echo(f"error: {exc}", err=True)
            worst = EXIT_INPUT
            continue
        if loaded.store is None:
            files.append({"path": path, "format": loaded.format, "issues": []})
            continue
        issues = loaded.store.check()
        files.append({"path": path, "format": loaded.format,
                      "layout": loaded.store.layout.name, "issues": to_jsonable(issues)})
        if any(getattr(i, "severity", "") in ("error", "warning") for i in issues):
            worst = max(worst, EXIT_FINDINGS)
        if not as_json:
            click.echo(f"{path}: {loaded.format}, layout {loaded.store.layout.name}, "
                       f"{len(issues)} findings")
            for i in issues:
                where = f" @ {i.offset:#x}" if getattr(i, "offset", None) is not None else ""
                click.echo(f"  {i.severity:<7} {i.message}{where}")
    if as_json:
        from fwtools.report.envelope import document

        summary = {"files": len(files), "errors": sum(1 for f in files if "error" in f)}
        print_json(document("fwtools.fw-vars.check/1", files, summary))
    sys.exit(worst)
