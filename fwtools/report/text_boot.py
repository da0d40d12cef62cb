"""``fw-check boot-chain``'s text view: the stages, the timeline, the verdict and each fault
with its cause and fix. Plain text with ANSI colour on a terminal (no rich: this view is
printed after a replay that is itself faster than importing rich)."""

from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING, Final

from fwtools.report.ansi import Painter

if TYPE_CHECKING:
    from fwtools.uefi.replay import Replay

_VERDICT_STYLE: Final = {"boots": "bold green", "faults": "bold red", "refused": "bold yellow"}
_PERM_STYLE: Final = {"rwx": "red", "r-x": "green", "rw-": "cyan", "r--": "dim", "---": "dim"}


def _range(start: int, end: int) -> str:
    if end <= start:
        return ""
    size = end - start
    unit = (f"{size >> 30} GiB" if size >= 1 << 30 and not size % (1 << 30)
            else f"{size >> 20} MiB" if size >= 1 << 20 and not size % (1 << 20)
            else f"{size >> 10} KiB" if size >= 1 << 10 and not size % (1 << 10)
            else f"{size:#x} B")
    return f"{start:#014x}-{end:#014x} {unit:>8}"


def _map_text(r: Replay) -> str:
    """The protocol as the replay had it (an edk2 release without it, or a profile that
    leaves it out: no), and whether it went away during the boot."""
    text = "yes" if r.memory_attribute_protocol else "no"
    if r.memory_attribute_protocol and not r.memory_attribute_protocol_at_end:
        text += " (uninstalled during the boot: compatibility mode)"
    elif not r.memory_attribute_protocol and r.firmware.memory_attribute_protocol:
        text += f" (not in edk2 {r.firmware.edk2_release} on {r.arch})"
    return text


def render_boot_chain(r: Replay, out: IO[str], *, color: bool | None = None,
                      verbose: bool = False) -> None:
    from fwtools.uefi.memtypes import nx_types

    paint = Painter.for_stream(out, color)
    p = r.firmware
    w = out.write
    w(paint("boot chain: ", "bold") + " -> ".join(os.path.basename(s.path) for s in r.stages)
      + "\n")
    types = ", ".join(nx_types(p.nx_policy)) or "none"
    w(f"firmware:   {p.name} ({r.arch}, edk2 {p.edk2_release}): NX policy {p.nx_policy:#x} "
      f"[{types}], image protection {p.image_protection:#x}, memory attribute protocol "
      f"{_map_text(r)}, stack NX {'yes' if p.stack_nx else 'no'}\n")
    w(f"secure boot: {'on' if r.secure_boot else 'off'}\n\n")
    w(paint("stages", "bold") + "\n")
    for s in r.stages:
        forced = " (model given on the command line)" if s.overridden else ""
        sure = "verified" if s.model_verified else "unverified"
        w(f"  {s.index + 1}. {s.name:<8} {os.path.basename(s.path):<34} {s.model:<24} "
          f"[{sure}] {s.identified_by}{forced}\n")
        if s.model_basis == "fallback":
            w("     " + paint(f"not identified: the generic {s.model} model stands in", "yellow")
              + "\n")
            for fact in s.unidentified:
                w(f"       - {fact}\n")
    w("\n" + paint("timeline", "bold") + "\n")
    for i, e in enumerate(r.events):
        if not verbose and e.stage == "firmware" and e.operation.startswith("NX policy sweep"):
            continue
        perms = e.permissions or ""
        status = "" if e.status == "SUCCESS" else paint(e.status, "bold red")
        line = (f"  {i:>3} {e.stage:<22.22} {e.operation[:60]:<60} "
                f"{_range(e.start, e.end):<39} {(e.memory_type or '')[3:]:<20} "
                f"{paint(perms, _PERM_STYLE.get(perms, 'bold'))} {status}")
        w(line.rstrip() + "\n")
        if e.detail and (verbose or e.status != "SUCCESS" or e.stage == "firmware"):
            w(f"      {paint(e.detail, 'dim')}\n")
    w("\n" + paint("verdict: ", "bold") + paint(r.verdict.upper(), _VERDICT_STYLE[r.verdict])
      + f" - {r.reason}\n")
    for f in r.faults:
        w(f"\n{paint('fault', 'bold red')} in {f.stage} during {f.operation}\n")
        w(f"  address {f.address:#x}, {f.access}, {f.fault}\n")
        w(f"  memory  {f.memory_type or 'not in the memory map'}, attributes {f.attributes}\n")
        if f.changed_by:
            w(f"  set by  {f.changed_by}\n")
        w(f"  why     {f.explanation}\n")
        w(f"  fix     {f.fix}\n")
