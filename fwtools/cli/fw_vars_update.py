"""fw-vars update: bring many stores to the 2023 CAs, the latest dbx and SbatLevel."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from fwtools.cli.common import CONTEXT, EXIT_FINDINGS, EXIT_INPUT, EXIT_OK, fail, print_json

if TYPE_CHECKING:
    from fwtools.fleet.sources import StoreRef



@click.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--libvirt", "uri", metavar="URI",
              help="Update the NVRAM store of every domain on this libvirt connection "
                   "(running domains are refused).")
@click.option("--ca-2023", "ca_2023", is_flag=True,
              help="Add the 2023 successor of each Microsoft 2011 CA the store has: KEK 2K CA "
                   "2023, Windows UEFI CA 2023, Microsoft UEFI CA 2023, Option ROM UEFI CA "
                   "2023.")
@click.option("--dbx", "dbx", type=click.Choice(["latest"]),
              help="Add Microsoft's published dbx revocations for the store's architecture.")
@click.option("--sbat-level", "sbat_level", type=click.Choice(["latest"]),
              help="Set SbatLevel to the latest published level (never lowered).")
@click.option("--via", type=click.Choice(["auto", "owner", "signed"]), default="auto",
              show_default=True,
              help="owner: write entries directly; signed: only Microsoft's signed updates, "
                   "verified against the store's PK/KEK as firmware would; auto: signed "
                   "where given and accepted, else owner.")
@click.option("--signed-dir", type=click.Path(file_okay=False),
              help="A microsoft/secureboot_objects checkout (PostSignedObjects/) holding the "
                   "signed KEK, db and dbx updates.")
@click.option("--dry-run", is_flag=True,
              help="Print the plan per store and what it does to PCR 7; write nothing.")
@click.option("--chain", "chain", multiple=True, type=click.Path(exists=True, dir_okay=False),
              metavar="FILE",
              help="With --dry-run: the boot chain the VMs load (shim, grub, kernel; one file "
                   "per option, in load order), to predict the PCRs of the whole boot instead "
                   "of PCR 7's store part.")
@click.option("--in-place", is_flag=True, help="Replace each store (atomically).")
@click.option("--backup", is_flag=True,
              help="With --in-place: keep the previous file as NAME.bak (NAME.bak.<UTC time> "
                   "when that exists).")
@click.option("-o", "--output", type=click.Path(),
              help="Write the updated store here (a directory for several stores).")
@click.option("-j", "--jobs", type=click.IntRange(min=1),
              help="Worker processes for many stores (default: all cores).")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON document (fwtools.fw-vars.update/1).")
@click.option("-v", "--verbose", is_flag=True, help="Verification verdicts, trusts after.")
def update(paths: tuple[str, ...], uri: str | None, ca_2023: bool, dbx: str | None,
           sbat_level: str | None, via: str, signed_dir: str | None, dry_run: bool,
           chain: tuple[str, ...], in_place: bool, backup: bool, output: str | None,
           jobs: int | None, as_json: bool, verbose: bool) -> None:
    """Update variable stores for the Microsoft 2011 -> 2023 Secure Boot CA transition.

    PATHS are stores (raw .fd or qcow2), directories (walked for stores) and libvirt domain
    XML files. Each store is planned and written on its own, in parallel; a store that a
    running QEMU holds (its image lock) or whose VM libvirt reports running is refused and
    left untouched. A second run changes nothing. Exit status: 0 done (or nothing to do);
    1 a write was refused (firmware would refuse a signed update, or it does not fit);
    2 usage error, or a store unreadable, locked or running.
    """
    from fwtools.fleet.sources import gather
    from fwtools.fleet.update import UpdateRequest, UpdateTask, check_signed_dir, update_one
    from fwtools.fleet.workers import run_many

    if not (ca_2023 or dbx or sbat_level):
        fail("nothing to update: give --ca-2023, --dbx latest and/or --sbat-level latest")
    if sum((dry_run, in_place, output is not None)) != 1:
        fail("give exactly one of --dry-run, --in-place or -o OUT")
    if backup and not in_place:
        fail("--backup goes with --in-place")
    if chain and not dry_run:
        fail("--chain goes with --dry-run")
    for image in chain:
        _check_image(image)
    if via == "signed" and signed_dir is None:
        fail("--via signed needs --signed-dir DIR (a microsoft/secureboot_objects checkout)")
    if signed_dir is not None:
        if not os.path.isdir(signed_dir):
            fail(f"--signed-dir {signed_dir}: not a directory")
        problem = check_signed_dir(os.path.abspath(signed_dir))
        if problem:
            fail(problem)
    refs = gather(paths, uri)
    outputs = _outputs(refs, output)
    request = UpdateRequest(ca_2023=ca_2023, dbx=dbx == "latest",
                            sbat_level=sbat_level == "latest", via=via,  # type: ignore[arg-type]
                            signed_dir=os.path.abspath(signed_dir) if signed_dir else None)
    then = None
    if dry_run:
        # Only a dry run pays for the PCR prediction (and imports it).
        from fwtools.machine.plan_pcrs import dry_run_pcrs

        then = dry_run_pcrs
    tasks = [UpdateTask(ref, request, dry_run, out, backup, chain, then)
             for ref, out in zip(refs, outputs, strict=True)]
    from fwtools.report.text_progress import progress

    results = list(progress(run_many(update_one, tasks, jobs=jobs), "updating stores",
                            enabled=not as_json and len(tasks) > 1, total=len(tasks)))
    if as_json:
        from fwtools.report.update_json import update_document

        print_json(update_document(results))
    else:
        from fwtools.report.text_update import error_lines, update_lines

        for line in update_lines(results, verbose=verbose):
            click.echo(line)
        for line in error_lines(results):
            click.echo(line, err=True)
    worst = EXIT_OK
    for r in results:
        if r.status in ("error", "refused"):
            worst = EXIT_INPUT
        elif r.refusals:
            worst = max(worst, EXIT_FINDINGS)
    sys.exit(worst)


def _check_image(path: str) -> None:
    """A --chain file must be a PE image: refused up front, not once per store."""
    from fwtools.errors import FwError
    from fwtools.formats.pe.image import PeImage

    try:
        PeImage.open(path)
    except FwError as exc:
        fail(f"--chain {path}: {' '.join(str(exc).split())}")


def _outputs(refs: Sequence[StoreRef], output: str | None) -> list[str | None]:
    """Where each store goes: in place (None), OUT for one store, OUT/NAME for several."""
    if output is None:
        return [None] * len(refs)
    paths = [r.path for r in refs]
    if len(refs) == 1 and not os.path.isdir(output):
        return [output]
    if not os.path.isdir(output):
        fail(f"-o {output}: with several stores, give an existing directory")
    names = [os.path.basename(p) for p in paths]
    if len(set(names)) != len(names):
        fail(f"-o {output}: several stores are named alike; update them in place or one by one")
    return [os.path.join(output, n) for n in names]
