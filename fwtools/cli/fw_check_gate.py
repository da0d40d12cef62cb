"""``fw-check FILES...``: the policy gate for EFI binaries (docs/fw-check.md).

The console entry point and the dispatch to ``fw-check boot-chain|disk|firmware|vm`` are in
:mod:`fwtools.cli.fw_check`."""

from __future__ import annotations

import datetime
import os
import sys
from typing import Any

import click

from fwtools._base.severity import Severity, parse_severity
from fwtools.cli.common import CONTEXT, EXIT_INPUT, INPUT_FILE, Command, fail


def _fail_on(ctx: click.Context, param: click.Parameter, value: str) -> Severity:
    """A level of the one severity scale: error, warning or note (``info`` is read as
    ``note``, the name pe-inspect and store checks gave the lowest level before)."""
    level = parse_severity(value)
    if level is None:
        raise click.BadParameter(f"{value!r} is not one of 'error', 'warning', 'note'.")
    return level


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("paths", nargs=-1, required=True, type=click.Path(readable=False))
@click.option("--policy", "policy", default="strict", show_default=True,
              help="A shipped profile (uefi-ca, shim-review, edk2-image-validation, strict, "
              "wx-boot-chain) "
              "or a profile TOML file.")
@click.option("--waivers", type=INPUT_FILE,
              help="A waiver file (TOML [[waiver]]: path glob, rule, reason, expires).")
@click.option("--db", "db", multiple=True, type=INPUT_FILE,
              help="Trust anchor for the 'trusted' rule: certificate, .esl or .auth. Repeatable.")
@click.option("--dbx", "dbx", multiple=True, type=INPUT_FILE,
              help="Revocations (dbx .esl/.auth or certificate). Repeatable.")
@click.option("--sbat-level", "sbat_file", type=INPUT_FILE,
              help="SbatLevel payload file (the variable's data).")
@click.option("--sbat-level-store", "sbat_store", type=INPUT_FILE,
              help="Variable store (edk2 raw, qcow2, JSON) holding the SbatLevel variable.")
@click.option("--sbat-level-shim", "sbat_shim", metavar="SHIM[:latest|automatic]",
              help="Take the SbatLevel embedded in a shim's .sbatlevel (default latest).")
@click.option("--sbat-level-history", "sbat_history", metavar="DATE|latest",
              help="The published SbatLevel in force on DATE (policies/sbatlevel-history.toml).")
@click.option("--fail-on", metavar="[error|warning|note]", callback=_fail_on, default="error",
              show_default=True, help="Exit 1 when a finding is at least this severe.")
@click.option("--json", "fmt", flag_value="json", help="JSON document (fwtools.fw-check/1).")
@click.option("--sarif", "fmt", flag_value="sarif", help="SARIF 2.1.0 (GitHub code scanning).")
@click.option("--junit", "fmt", flag_value="junit", help="JUnit XML (GitLab, Jenkins).")
@click.option("--github", "fmt", flag_value="github", help="GitHub Actions annotations.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the report here (atomically) instead of stdout.")
@click.option("--root", default=".", type=click.Path(file_okay=False),
              help="Paths in SARIF/annotations are relative to this directory.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: all cores when there are many files).")
@click.option("--today", hidden=True, help="Pretend today is this date (for waiver expiry).")
@click.option("--color/--no-color", default=None, help="Force or disable colours.")
def command(
    paths: tuple[str, ...], policy: str, waivers: str | None, db: tuple[str, ...],
    dbx: tuple[str, ...], sbat_file: str | None, sbat_store: str | None,
    sbat_shim: str | None, sbat_history: str | None, fail_on: str, fmt: str | None,
    output: str | None, root: str, jobs: int | None, today: str | None, color: bool | None,
) -> None:
    """Check EFI binaries against a signing policy (PATHS: files or directories).

    `fw-check boot-chain --help`: replay a boot chain on an emulated firmware (W^X).
    `fw-check disk --help`: a disk image's partitions and the EFI files on its ESP.
    `fw-check firmware --help`: a firmware image's volumes, drivers and their W^X audit.
    `fw-check vm --help`: will a VM boot, from its firmware, variable store and disk.

    Exit status: 0 passed; 1 a finding at or above --fail-on; 2 usage error or an
    unreadable input (the other inputs are still checked and reported).
    """
    from fwtools.errors import FwError
    from fwtools.policy import engine, sbat_sources
    from fwtools.policy.pe_facts import expand_paths
    from fwtools.policy.profiles import load_profile

    try:
        profile = load_profile(policy)
        waiver_list = engine.load_waivers(waivers) if waivers else []
        day = datetime.date.fromisoformat(today) if today else datetime.date.today()
        sources = [s for s in (sbat_file, sbat_store, sbat_shim, sbat_history) if s]
        if len(sources) > 1:
            fail("give at most one of --sbat-level, --sbat-level-store, --sbat-level-shim, "
                 "--sbat-level-history")
        level = None
        label = ""
        if sbat_file:
            level, label = sbat_sources.from_file(sbat_file)
        elif sbat_store:
            level, label = sbat_sources.from_store(sbat_store)
        elif sbat_shim:
            level, label = sbat_sources.from_shim(sbat_shim)
        elif sbat_history:
            level, label = sbat_sources.from_history(sbat_history)
        anchors = None
        if dbx and not db:
            fail("--dbx needs at least one --db trust anchor")
        if db:
            from fwtools.crypto.trust import TrustAnchors

            anchors = TrustAnchors.from_files(list(db), dbx_paths=list(dbx))
    except (FwError, ValueError) as exc:
        fail(str(exc))

    from fwtools.report.text_progress import progress

    files = list(expand_paths(list(paths)))
    options = engine.Options(level, label, anchors)
    show = fmt is None and output is None and len(files) > 8

    def bar(stream: Any) -> Any:
        return progress(stream, "checking", enabled=show, total=len(files))

    reports = engine.run(files, profile, options, jobs=jobs, progress=bar)
    engine.apply_waivers(reports, waiver_list, day)
    summary = engine.summary(reports, fail_on)
    code = summary["exit_code"]

    text: str | None = None
    data: bytes | None = None
    if fmt == "json":
        from fwtools._base.jsontext import dumps_indented
        from fwtools.report.check_json import check_document

        level_info = None
        if level is not None:
            level_info = {"source": label, "datestamp": level.datestamp,
                          "entries": level.generations}
        text = dumps_indented(check_document(reports, profile, summary, level_info))
        text += "\n"
    elif fmt == "sarif":
        from fwtools._base.jsontext import dumps_indented
        from fwtools.report.sarif import sarif_document

        text = dumps_indented(sarif_document(reports, profile, root)) + "\n"
    elif fmt == "junit":
        from fwtools.report.junit import junit_xml

        data = junit_xml(reports, profile.name, fail_on)
    elif fmt == "github":
        from fwtools.report.github import github_annotations

        text = github_annotations(reports, root)
    if fmt is None:
        from fwtools.report.text_check import render_check

        if output:
            import io

            buf = io.StringIO()
            render_check(reports, profile.name, summary, buf, color=False)
            text = buf.getvalue()
        else:
            render_check(reports, profile.name, summary,
                         None if sys.stdout.isatty() else sys.stdout, color=color)
    if text is not None:
        data = text.encode("utf-8")
    if data is not None:
        if output:
            from fwtools._base.atomic import atomic_write

            try:
                atomic_write(output, data)
            except (FwError, OSError) as exc:
                fail(str(exc))
        elif fmt is not None:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
    for rep in reports:
        if rep.error:
            click.echo(f"error: {rep.error}", err=True)
    for p in paths:
        if os.path.isdir(p) and not any(f.startswith(p.rstrip("/") + "/") for f in files):
            click.echo(f"warning: no PE images found under {p}", err=True)
    sys.exit(code if code in (0, 1) else EXIT_INPUT)


# Subcommands that are commands of their own (fw_check_<module>.main): a file named like one
# is given as ./NAME.
