"""Text for fw-vars update: per store, each variable that changes (before -> after, entries
added and how), refusals, notes; then one summary line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fwtools.fleet.pcrs import PcrConsequences
    from fwtools.fleet.update import StoreUpdate, VariableState

_DRY_RUN_STATUS = {"updated": "would be updated"}
_SCOPE = {"through-separator": "through the separator, from the store alone",
          "boot": "the boot of the given chain"}


def _state(state: VariableState | None) -> str:
    if state is None:
        return "absent"
    unit = "entry" if state.entries == 1 else "entries"
    stamp = f", {state.timestamp}" if state.timestamp else ""
    return f"{state.entries} {unit}, {state.size} bytes, attributes {state.attributes:#x}{stamp}"


def error_lines(results: Sequence[StoreUpdate]) -> list[str]:
    """One ``error:`` line per store that was not updated (unreadable, locked, running), for
    stderr: the contract's one line per bad input, while the others go on. A refused store
    says so (``error: PATH: refused: in use: ...``); an unreadable one is just the error."""
    lines: list[str] = []
    for r in results:
        if r.error is None:
            continue
        name = f"{r.vm} ({r.path})" if r.vm else r.path
        message = r.error.removeprefix(f"{r.path}: ")
        status = "" if r.status == "error" else f"{r.status}: "
        lines.append(f"error: {name}: {status}{message}")
    return lines


def update_lines(results: Sequence[StoreUpdate], *, verbose: bool = False) -> list[str]:
    """The plan or result per store (stores with an error are in :func:`error_lines`), then
    a summary line."""
    lines: list[str] = []
    for r in results:
        name = f"{r.vm} ({r.path})" if r.vm else r.path
        if r.error is not None:
            continue
        where = f" [{r.format}, {r.layout}]" if r.layout else ""
        if r.status == "updated":
            n = len(r.changes)
            verb = "would change" if r.dry_run else "changed"
            done = f"; written to {r.written}" if r.written else ""
            if r.backup:
                done += f", previous file kept as {r.backup}"
            lines.append(f"{name}{where}: {n} variable{'s' if n != 1 else ''} {verb}"
                         f"{' (dry run, nothing written)' if r.dry_run else ''}{done}")
        else:
            copied = f"; copied unchanged to {r.written}" if r.written else ""
            what = "skipped" if r.status == "skipped" else "up to date, nothing to change"
            lines.append(f"{name}{where}: {what}{copied}")
        for c in r.changes:
            lines.append(f"  {c.variable}: {_state(c.before)} -> {_state(c.after)}")
            for a in c.added:
                lines.append(f"    + {a.what} ({a.via}: {a.source})")
                if a.detail and verbose:
                    lines.append(f"      {a.detail}")
        for refusal in r.refusals:
            lines.append(f"  REFUSED {refusal.variable} via {refusal.via}: {refusal.reason}")
        for note in r.notes:
            lines.append(f"  note: {note}")
        if r.pcrs is not None:
            lines.extend("  " + line for line in pcr_lines(r.pcrs, verbose=verbose))
        if verbose and r.trusts_after:
            trusted = ", ".join(k for k, v in r.trusts_after.items() if v) or "none"
            lines.append(f"  trusts after: {trusted}")
    counts: dict[str, int] = {}
    dry = any(r.dry_run for r in results)
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    refused = sum(1 for r in results if r.refusals)
    # A dry run writes nothing: its "updated" stores are ones that would be.
    parts = [f"{v} {_DRY_RUN_STATUS.get(k, k) if dry else k}" for k, v in counts.items()]
    if refused:
        parts.append(f"{refused} with refused writes")
    lines.append(f"{len(results)} store{'s' if len(results) != 1 else ''}: " + ", ".join(parts))
    return lines


def pcr_lines(found: PcrConsequences, *, verbose: bool = False,
              verb: str = "would change") -> list[str]:
    """What a planned update does to the PCRs (machine/plan_pcrs.py): per changed PCR the old and
    new value and the variables whose events cause it (with ``verbose`` the events), then
    what is not predicted and why. Plain lines, no markup."""
    if found.error is not None:
        return [f"PCRs: not predicted: {found.error}"]
    out: list[str] = []
    for row in found.pcrs:
        scope = _SCOPE[row.scope]
        if not row.changed:
            if found.basis == "store":
                out.append(f"PCR {row.pcr} ({found.bank}, {scope}): unchanged, {row.old}")
            continue
        causes = f" ({', '.join(row.causes)})" if row.causes else ""
        out.append(f"PCR {row.pcr} {verb} ({found.bank}, {scope}): {row.old} -> "
                   f"{row.new}{causes}")
        if verbose:
            out.extend(f"  - {e.type} {e.description} [{e.source}]" for e in row.removed)
            out.extend(f"  + {e.type} {e.description} [{e.source}]" for e in row.added)
    same = [f"PCR {row.pcr}" for row in found.pcrs if not row.changed]
    if found.basis != "store" and same:
        out.append("unchanged: " + ", ".join(same))
    out.extend(f"not predicted: {why}" for why in found.not_predicted)
    out.extend(f"note: {note}" for note in found.notes)
    return out
