"""fw-sigdb's read-only subcommands: show, verify, extract-certs (loaded only when one
runs)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

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
    load_all,
    print_json,
)

if TYPE_CHECKING:
    from fwtools.crypto.sigdb_inputs import SigdbInput


def load_each(paths: tuple[str, ...], *, describe: bool = True) -> list[SigdbInput]:
    """Every input of a batch (each bad one reported; then exit 2, nothing written)."""
    from fwtools.crypto.sigdb_inputs import load_input

    return load_all(paths, lambda path: load_input(path, describe=describe))



@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=INPUT_FILE)
@click.option("--json", "as_json", is_flag=True, help="One JSON document (fwtools.fw-sigdb/1).")
@click.option("-v", "--verbose", is_flag=True, help="Full digests and every certificate.")
@click.option("--color/--no-color", default=None)
def show(files: tuple[str, ...], as_json: bool, verbose: bool, color: bool | None) -> None:
    """List the signature lists, entries and certificates of FILES."""
    from fwtools.crypto.sigdb_inputs import load_input
    from fwtools.errors import FwError

    items: list[SigdbInput | tuple[str, str]] = []
    status = EXIT_OK
    for path in files:
        try:
            items.append(load_input(path))
        except FwError as exc:  # reported, and the next file is still shown
            items.append((path, str(exc.with_path(path))))
            click.echo(f"error: {exc}", err=True)
            status = EXIT_INPUT
    for item in items:
        if not isinstance(item, tuple) and item.auth_error:
            click.echo(f"error: {item.path}: {item.auth_error}", err=True)
            status = EXIT_INPUT
    if as_json:
        from fwtools.report.sigdb_json import show_document

        print_json(show_document(items))
    else:
        from fwtools.report.text_sigdb import render_inputs

        render_inputs(items, None if sys.stdout.isatty() else sys.stdout, verbose=verbose,
                      color=color)
    sys.exit(status)


@click.command("extract-certs", cls=Command, context_settings=CONTEXT)
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("files", nargs=-1, required=True, type=INPUT_FILE)
@click.option("--der", is_flag=True, help="Write DER (.der) instead of PEM (.pem).")
def extract_certs(directory: str, files: tuple[str, ...], der: bool) -> None:
    """Write every certificate in FILES (lists, .auth payloads and signers) into DIRECTORY."""
    from pathlib import Path

    from fwtools.crypto.sigdb_extract import extract

    items = load_each(files)
    for path in extract(items, Path(directory), der=der):
        click.echo(str(path))


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=INPUT_FILE)
@click.option("--cert", "certs", multiple=True, type=INPUT_FILE,
              help="Trusted certificate (KEK/PK, PEM or DER, or a list file of them). "
              "Repeatable.")
@click.option("--vars", "vars_store", type=INPUT_FILE,
              help="Trust the KEK and PK of this variable store, as its firmware would.")
@click.option("--name", "var_name", help="Variable the update is for (default: guessed from "
              "the payload, else db).")
@click.option("--guid", help="Vendor GUID, when not the variable's usual one.")
@click.option("--attributes", type=str,
              help="Attributes the signature must cover (default: the variable's, with and "
              "without APPEND_WRITE).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def verify(files: tuple[str, ...], certs: tuple[str, ...], vars_store: str | None,
           var_name: str | None, guid: str | None, attributes: str | None,
           as_json: bool) -> None:
    """Verify signed .auth FILES against trusted certificates, as firmware would."""
    from fwtools.crypto.authvar import verify_auth
    from fwtools.crypto.sigdb_inputs import load_input
    from fwtools.errors import FwError
    from fwtools.formats.efi.authvar import variable_defaults
    from fwtools.report.sigdb_json import verify_document, verify_json

    anchors: list[bytes] = []
    for item in load_each(certs, describe=False):
        found = [e.data for _i, _j, sl, e in item.database.entries() if sl.is_x509]
        if not found:
            fail(f"{item.path}: holds no certificate")
        anchors.extend(found)
    if vars_store:
        from fwtools.crypto.secureboot import store_update_anchors
        from fwtools.formats.varstore.storeio import load_store

        from_store = store_update_anchors(load_store(vars_store))
        if not from_store:
            fail(f"{vars_store}: the store has no KEK or PK certificate")
        anchors.extend(from_store)
    if not anchors:
        fail("no trusted certificate: give --cert or --vars (a store with KEK/PK)")
    try:
        attrs = int(attributes, 0) if attributes else None
    except ValueError:
        fail(f"--attributes {attributes!r} is not a number")
    given_vendor = guid_arg(guid, "--guid") if guid else None
    docs = []
    status = EXIT_OK
    for path in files:
        try:
            item = load_input(path, describe=False)
            if item.auth is None:
                raise FwError(f"not a signed .auth update ({item.format})")
            name = var_name or _guess_variable(item)
            default_guid, _ = variable_defaults(name)
            result = verify_auth(item.auth, name, given_vendor or default_guid, attrs, anchors)
        except FwError as exc:
            message = str(exc.with_path(path))
            docs.append(verify_json(path, None, message))
            click.echo(f"error: {message}", err=True)
            status = EXIT_INPUT
            continue
        docs.append(verify_json(path, result, None))
        if not result.valid and status == EXIT_OK:
            status = EXIT_FINDINGS
        if not as_json:
            mark = "OK  " if result.valid else "FAIL"
            click.echo(f"{mark} {path} ({name}, attributes {result.attributes:#x}): "
                       f"{result.reason}")
    if as_json:
        print_json(verify_document(docs))
    sys.exit(status)


def _guess_variable(item: SigdbInput) -> str:
    """dbx for hash-only payloads, db otherwise: what Microsoft's updates are."""
    from fwtools.formats.efi import guids

    types = {sl.signature_type for sl in item.database.lists}
    return "dbx" if types and guids.CERT_X509 not in types else "db"


