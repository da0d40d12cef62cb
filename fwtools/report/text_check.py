"""fw-check's text output (rich): findings grouped by file, then the verdict."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any, Final

from fwtools._base.severity import Severity, at_least

if TYPE_CHECKING:
    from fwtools.policy.results import FileReport

_STYLE: Final[dict[Severity, str]] = {"error": "bold red", "warning": "yellow", "note": "cyan"}


def render_check(
    reports: list[FileReport], profile_name: str, summary: dict[str, Any],
    file: IO[str] | None = None, color: bool | None = None,
) -> None:
    from rich.console import Console
    from rich.markup import escape

    # emoji=False as in text_pe.make_console: paths and messages are data, and rich's emoji
    # table is not loaded.
    console = Console(file=file, no_color=color is False, force_terminal=color or None,
                      highlight=False, emoji=False, width=200 if file is not None else None)
    for rep in reports:
        active = [r for r in rep.results if r.waived is None]
        waived = [r for r in rep.results if r.waived is not None]
        # FAIL only for what fails the gate (--fail-on); lesser findings are marked as such.
        failing = [r for r in active if at_least(r.severity, summary["fail_on"])]
        mark = ("[red]FAIL[/]" if failing else "[yellow]warn[/]" if active
                else "[green]ok[/]")
        console.print(f"{mark} {escape(rep.path)}")
        for r in active:
            where = f" [dim]({escape(r.location)})[/]" if r.location else ""
            console.print(f"  [{_STYLE[r.severity]}]{r.severity}[/] {r.rule}: "
                          f"{escape(r.message)}{where}")
        for r in waived:
            assert r.waived is not None
            console.print(f"  [dim]waived {r.rule}: {escape(r.message)} "
                          f"({escape(r.waived.reason)})[/]")
    s = summary
    verdict = "[green]passed[/]" if s["passed"] else "[red]failed[/]"
    console.print(
        f"{profile_name}: {s['files']} files, {s['errors']} errors, {s['warnings']} warnings, "
        f"{s['notes']} notes, {s['waived']} waived, {s['unreadable']} unreadable: {verdict} "
        f"(--fail-on {s['fail_on']})")
