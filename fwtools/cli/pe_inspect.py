"""pe-inspect: inspect EFI binaries (headers, sections, special sections, signatures)."""

from __future__ import annotations

import os
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
    print_json,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from fwtools.policy.pe_facts import FileResult


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("paths", nargs=-1, required=True, type=click.Path(readable=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON document (fwtools.pe-inspect/1).")
@click.option(
    "--verify", "anchors", multiple=True, type=INPUT_FILE,
    help="Verify against this trust anchor: a PEM/DER certificate or an EFI signature list "
    "(db). Repeatable.",
)
@click.option(
    "--dbx", "dbx", multiple=True, type=INPUT_FILE,
    help="Revocations: an EFI signature list (dbx) or certificate. Repeatable.",
)
@click.option(
    "--vars", "vars_store", type=INPUT_FILE,
    help="Verify against the db and dbx of this variable store (raw, qcow2 or JSON), as the "
    "firmware booting with it would.",
)
@click.option(
    "--extract-certs", "extract_dir", type=click.Path(file_okay=False),
    help="Write every signature (.p7s) and certificate (.pem) found into DIR.",
)
@click.option(
    "--check-signatures", is_flag=True,
    help="Verify each PKCS#7 SignerInfo signature with its signer's key even without "
    "--verify (always done with --verify).",
)
@click.option(
    "--checksum", is_flag=True,
    help="Also compute the optional header CheckSum (costs as much as a digest; firmware "
    "ignores it).",
)
@click.option("-v", "--verbose", is_flag=True, help="Show every certificate of each signature.")
@click.option("--color/--no-color", default=None, help="Force or disable colours.")
def pe_inspect(
    paths: tuple[str, ...],
    as_json: bool,
    anchors: tuple[str, ...],
    dbx: tuple[str, ...],
    vars_store: str | None,
    extract_dir: str | None,
    check_signatures: bool,
    checksum: bool,
    verbose: bool,
    color: bool | None,
) -> None:
    """Inspect EFI binaries: PE header, sections and permissions, special sections
    (.sbat, .sbatlevel, .vendor_cert, UKI), kernel headers, Authenticode signatures and
    digests, and (with --verify) whether db/dbx trust them.

    PATHS may be files or directories (searched recursively for PE images).

    Exit status: 0 inspected; 1 a signature does not match its image, or a --verify verdict
    was untrusted or revoked; 2 an input (or a signature or special section in it) was
    unreadable or malformed; the other inputs are still reported.
    """
    from fwtools.policy.collect import inspect_path
    from fwtools.policy.pe_facts import expand_paths

    trust = None
    if dbx and not anchors:
        fail("--dbx needs at least one --verify trust anchor")
    if vars_store and anchors:
        fail("give --vars or --verify, not both")
    if vars_store:
        from fwtools.crypto.secureboot import store_trust_anchors
        from fwtools.formats.varstore.storeio import load_store

        trust = store_trust_anchors(load_store(vars_store))
    if anchors:
        from fwtools.crypto.trust import TrustAnchors

        trust = TrustAnchors.from_files(list(anchors), dbx_paths=list(dbx))

    files = list(expand_paths(list(paths)))
    missing_dirs = [p for p in paths if os.path.isdir(p) and not any(
        f.startswith(p.rstrip("/") + "/") for f in files)]
    shown: Iterable[str] = files
    if not as_json and len(files) > 8:  # a bar on a terminal for a long batch
        from fwtools.report.text_progress import progress

        shown = progress(files, "inspecting", enabled=True)
    results = [
        inspect_path(f, anchors=trust, check_signatures=check_signatures, checksum=checksum)
        for f in shown
    ]
    if extract_dir is not None:
        from pathlib import Path

        from fwtools.policy.pe_extract import extract_certificates

        extract_certificates([r.facts for r in results if r.facts], Path(extract_dir))

    if as_json:
        from fwtools.report.pe_json import inspect_document

        print_json(inspect_document(results))
    else:
        from fwtools.report.text_pe import render_inspection

        render_inspection(results, None if sys.stdout.isatty() else sys.stdout,
                          verbose=verbose, color=color)
    for d in missing_dirs:
        click.echo(f"warning: no PE images found under {d}", err=True)
    sys.exit(exit_status(results))


def exit_status(results: list[FileResult]) -> int:
    """2 if any input (or part of one) is malformed, 1 if a signature check failed, else 0.

    Every unreadable file, and every malformed part of an otherwise readable one (a
    signature that is not PKCS#7, a special section that does not decode), gets one
    ``error:`` line on stderr, in both output modes.
    """
    from fwtools.policy.pe_rules import MALFORMED_RULES, VERIFICATION_RULES, all_findings

    status = EXIT_OK
    for r in results:
        if r.facts is None:
            click.echo(f"error: {r.error}", err=True)
            status = EXIT_INPUT
            continue
        for path, f in all_findings(r.facts):
            if f.rule in MALFORMED_RULES:
                click.echo(f"error: {path}: {f.message}", err=True)
                status = EXIT_INPUT
            elif f.rule in VERIFICATION_RULES and f.severity == "error" and status == EXIT_OK:
                status = EXIT_FINDINGS
    return status


def main() -> None:
    pe_inspect(prog_name="pe-inspect")


if __name__ == "__main__":
    main()
