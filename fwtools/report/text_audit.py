"""fw-vars audit, human view: one table row per store; with ``verbose`` the details after it
(certificates, findings with what happens to whom, update paths)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

from fwtools._base.severity import worst

if TYPE_CHECKING:
    from rich.console import Console

    from fwtools.fleet.audit import StoreAudit

# The update whose PCR 7 consequences -v shows (machine/plan_pcrs.py recommended_request).
RECOMMENDED = "fw-vars update --ca-2023 --dbx latest --sbat-level latest (as the owner)"
_STYLE = {"error": "bold red", "warning": "yellow", "note": "cyan"}
_PK_SHORT = {"microsoft-oem": "Microsoft OEM", "test-key": "test key", "custom": "custom"}


def _name(audit: StoreAudit) -> str:
    return audit.vm or audit.path


def _pk(audit: StoreAudit) -> str:
    if audit.pk is None:
        return "-"
    if audit.pk.owner == "distribution":
        return audit.pk.label.split(" ")[0]
    return _PK_SHORT.get(audit.pk.owner, audit.pk.owner)


def _secure_boot(audit: StoreAudit) -> str:
    sb = audit.secure_boot
    if sb is None:
        return "-"
    if not sb.pk_present:
        return "setup (off)"
    return sb.mode if sb.enforced else f"{sb.mode} (off)"


def _findings_cell(audit: StoreAudit) -> str:
    levels = [f.severity for f in audit.findings]
    top = worst(levels)
    if top is None:
        return "[green]ok[/]"
    counts = ", ".join(f"{levels.count(s)} {s}" for s in ("error", "warning", "note")
                       if levels.count(s))
    return f"[{_STYLE[top]}]{counts}[/]"


def _console(stream: IO[str] | None, color: bool | None) -> Console:
    from rich.console import Console

    # Piped or redirected, the table keeps its rows on one line each (a log, a grep).
    target = stream if stream is not None else sys.stdout
    width = None if target.isatty() else 400
    if color is None:
        return Console(file=stream, width=width)
    return Console(file=stream, force_terminal=color, no_color=not color, width=width)


_KEK_SHORT = (("kek-2011", "2011"), ("kek-2023", "2023"))
_DB_SHORT = (("windows-pca-2011", "PCA11"), ("uefi-ca-2011", "UEFI11"),
             ("windows-uefi-ca-2023", "WIN23"), ("uefi-ca-2023", "UEFI23"),
             ("option-rom-ca-2023", "ROM23"))


def _trusted(audit: StoreAudit, names: tuple[tuple[str, str], ...]) -> str:
    return " ".join(short for key, short in names if audit.trusts.get(key)) or "-"


def render_audit(audits: Sequence[StoreAudit], *, stream: IO[str] | None = None,
                 verbose: bool = False, color: bool | None = None) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = _console(stream, color)
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("store", "format", "secure boot", "PK", "KEK", "db (Microsoft CAs)",
                   "dbx missing", "SbatLevel", "findings"):
        table.add_column(column, no_wrap=column != "findings")
    for a in audits:
        if a.error is not None:
            table.add_row(escape(_name(a)), a.format or "-", "-", "-", "-", "-", "-", "-",
                          f"[bold red]error[/]: {escape(_short_error(a))}")
            continue
        dbx = f"{a.dbx.missing}/{a.dbx.published} {a.dbx.architecture}" if a.dbx else "-"
        sbat = a.sbat_level.datestamp or "-" if a.sbat_level else "-"
        table.add_row(escape(_name(a)), a.format or "-", _secure_boot(a), escape(_pk(a)),
                      _trusted(a, _KEK_SHORT), _trusted(a, _DB_SHORT), dbx, sbat,
                      _findings_cell(a))
    console.print(table)
    if verbose:
        for a in audits:
            _details(console, a)


def _short_error(audit: StoreAudit) -> str:
    message = audit.error or ""
    prefix = f"{audit.path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _details(console: Console, a: StoreAudit) -> None:
    from rich.markup import escape

    console.print()
    title = f"{a.vm} ({a.path})" if a.vm else a.path
    console.print(f"[bold]{escape(title)}[/]")
    if a.error is not None:
        console.print(f"  [bold red]error[/]: {escape(a.error)}")
        return
    facts = [f"format {a.format}" + (f", layout {a.layout}" if a.layout else "")]
    if a.running is not None:
        facts.append("running" if a.running else "shut off")
    if a.template:
        facts.append(f"template {os.path.basename(a.template)}")
    console.print("  " + escape("; ".join(facts)))
    if a.secure_boot is not None:
        sb = a.secure_boot
        sbe = "absent" if sb.secure_boot_enable is None else int(sb.secure_boot_enable)
        console.print(f"  Secure Boot: {_secure_boot(a)}; SecureBootEnable {sbe}")
    if a.pk is not None:
        enrolled = " (enrolled by OVMF EnrollDefaultKeys)" if a.pk.enrolled_by_ovmf else ""
        console.print(f"  PK owner: {escape(a.pk.label)} {escape(f'[{a.pk.owner}]')}{enrolled}")
    for cert in ((a.pk.certificate,) if a.pk and a.pk.certificate else ()) + a.kek + a.db:
        expired = " [red]expired[/]" if cert.expired else ""
        console.print(f"  {cert.variable:<4} {escape(cert.subject)}")
        console.print(f"       sha256 {cert.sha256}  {cert.not_before[:10]} -> "
                      f"{cert.not_after[:10]}{expired}  generation {cert.generation}")
    if a.db_hashes:
        console.print(f"  db   {a.db_hashes} image hashes")
    if a.dbx is not None:
        console.print(f"  dbx  {a.dbx.entries} entr{'y' if a.dbx.entries == 1 else 'ies'}; "
                      f"{a.dbx.missing} of Microsoft's "
                      f"{a.dbx.published} {a.dbx.architecture} revocations missing "
                      f"(architecture from {escape(a.dbx.architecture_from)})")
    if a.sbat_level is not None:
        s = a.sbat_level
        console.print(f"  SbatLevel {s.datestamp or 'absent'} (latest published {s.latest})")
    for f in a.findings:
        console.print(f"  [{_STYLE[f.severity]}]{f.severity}[/] {f.code}: {escape(f.message)}")
    for p in a.update_paths:
        console.print(f"  update ({p.via}) {p.id}: {escape(p.description)}")
        for obj in p.objects:
            console.print(f"      {escape(obj)}")
        if p.limitation:
            console.print(f"      [yellow]limitation[/]: {escape(p.limitation)}")
    if a.pcrs is not None:
        from fwtools.report.text_update import pcr_lines

        console.print(f"  after {RECOMMENDED}:")
        for line in pcr_lines(a.pcrs, verb="changes", verbose=True):
            console.print(f"    {escape(line)}", soft_wrap=True)
