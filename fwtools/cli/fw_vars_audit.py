"""fw-vars audit: every store of a host against the 2011 -> 2023 Secure Boot CA transition."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from fwtools.cli.common import CONTEXT, EXIT_FINDINGS, EXIT_OK, fail, print_json

if TYPE_CHECKING:
    from fwtools.fleet.audit import StoreAudit
    from fwtools.fleet.sources import StoreRef



@click.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--libvirt", "uri", metavar="URI",
              help="Audit the NVRAM store of every domain on this libvirt connection "
                   "(e.g. qemu:///system; needs virsh).")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON document (fwtools.fw-vars.audit/1).")
@click.option("--sarif", "sarif_file", type=click.Path(dir_okay=False),
              help="Also write the findings as SARIF 2.1.0 to this file.")
@click.option("--fail-on", default="error", show_default=True, metavar="SEVERITY",
              help="Exit 1 when a finding reaches this severity: note, warning or error.")
@click.option("-j", "--jobs", type=click.IntRange(min=1),
              help="Worker processes for many stores (default: all cores).")
@click.option("-v", "--verbose", is_flag=True,
              help="Details per store: certificates, findings, update paths, and what the "
                   "recommended update does to PCR 7 (also in --json as stores[].pcrs).")
@click.option("--color/--no-color", default=None)
def audit(paths: tuple[str, ...], uri: str | None, as_json: bool, sarif_file: str | None,
          fail_on: str, jobs: int | None, verbose: bool, color: bool | None) -> None:
    """Audit variable stores for the Microsoft 2011 -> 2023 Secure Boot CA transition.

    PATHS are stores (raw .fd, qcow2, JSON), directories (walked for stores) and libvirt
    domain XML files. Per store: Secure Boot state, PK owner, PK/KEK/db certificates, which
    Microsoft CAs are trusted, dbx against Microsoft's published revocations, SbatLevel,
    findings and the update paths that apply. A store that cannot be read is reported and
    the others are still audited. Exit status: 0 no finding at --fail-on; 1 findings at
    --fail-on or above; 2 usage error.
    """
    from fwtools._base.severity import at_least, parse_severity
    from fwtools.fleet.audit import audit_store
    from fwtools.fleet.sources import gather
    from fwtools.fleet.workers import run_many

    level = parse_severity(fail_on)
    if level is None:
        fail(f"--fail-on {fail_on!r}: choose note, warning or error")
    refs = gather(paths, uri)

    from fwtools.report.text_progress import progress

    job: Callable[[StoreRef], StoreAudit] = audit_store
    if verbose:
        # Only -v pays for the update plan and the PCR prediction of each store.
        from fwtools.machine.plan_pcrs import audit_store_with_pcrs

        job = audit_store_with_pcrs
    results = list(progress(run_many(job, refs, jobs=jobs), "auditing stores",
                            enabled=not as_json and len(refs) > 1, total=len(refs)))
    if sarif_file:
        from fwtools._base.atomic import atomic_write
        from fwtools._base.jsontext import dumps_indented
        from fwtools.report.audit_sarif import audit_sarif

        text = dumps_indented(audit_sarif(results, ".")) + "\n"
        atomic_write(sarif_file, text.encode())
    if as_json:
        from fwtools.report.audit_json import audit_document

        print_json(audit_document(results, level))
    else:
        from fwtools.report.text_audit import render_audit

        render_audit(results, verbose=verbose, color=color)
    failed = any(at_least(f.severity, level) for a in results for f in a.findings)
    sys.exit(EXIT_FINDINGS if failed else EXIT_OK)
