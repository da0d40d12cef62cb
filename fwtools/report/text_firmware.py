"""fw-check firmware's text output: volumes, what the image says, modules, the W^X audit.

Rendered from the ``fwtools.fw-check.firmware/1`` document (:mod:`.firmware_json`), in plain
text with ANSI colour on a terminal (no rich: the table is long and start-up counts).
"""

from __future__ import annotations

from collections import Counter
from typing import IO, Any

from fwtools._base.severity import at_least
from fwtools.report.ansi import Painter

_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "note": "cyan"}


def _hex(value: int | None) -> str:
    return "-" if value is None else f"{value:#x}"


def render_firmware(doc: dict[str, Any], out: IO[str], *, color: bool | None = None,
                    verbose: bool = False) -> None:
    paint = Painter.for_stream(out, color)
    fw = doc["firmware"]
    w = out.write
    w(f"{paint(fw['path'] or '-', 'bold')}: {fw['container']}, {fw['size']:#x} bytes\n\n")
    w(paint("Volumes\n", "bold"))
    w(f"  {'name':<20} {'size':>10}  {'fs':<6} {'files':>5}  {'guid':<36}  where\n")
    level: dict[int, int] = {}
    for v in doc["firmware"]["volumes"]:
        level[v["index"]] = 0 if v["parent"] is None else level[v["parent"]] + 1
        indent = "  " * level[v["index"]]
        name = f"{indent}{v['name'] if v['name'] and v['name'] != v['guid'] else '-'}"
        w(f"  {name:<20} {v['size']:>#10x}  {v['file_system']:<6} {v['files']:>5}  "
          f"{v['guid'] or '-':<36}  {v['location']}\n")
        for a in v["anomalies"]:
            w(f"  {indent}  {paint('anomaly', 'yellow')}: {a}\n")
    store = fw["variable_store"]
    if store is not None:
        detail = (f"{store['variables']} variables" if store["error"] is None
                  else paint(store["error"], "yellow"))
        w(f"  variable store at {_hex(store['offset'])}: {detail}\n")
    w("\n" + paint("What the image says\n", "bold"))
    for f in fw["facts"]:
        value = f["value"]
        shown = paint("unknown", "dim") if value is None else str(value).lower() if isinstance(
            value, bool) else str(value)
        w(f"  {f['name']:<36} {shown:<32} {paint(f['basis'], 'dim')}\n")
    present = [n for n, yes in fw["drivers"].items() if yes]
    w(f"  {'drivers present':<36} {', '.join(present)}\n")
    for p in fw["problems"]:
        w(f"  {paint('problem', 'yellow')}: {p}\n")
    w("\n" + paint("Modules\n", "bold"))
    w(f"  {'name':<34} {'type':<22} {'fmt':<4} {'machine':<8} {'align':>7} {'nx':<3} "
      f"{'w+x':<4} guid\n")
    for m in doc["modules"]:
        align = _hex(m["section_alignment"])
        nx = "-" if m["nx_compat"] is None else ("yes" if m["nx_compat"] else "no")
        wx = ",".join(m["wx_sections"]) or "-"
        name = (m["name"] or "-")[:34]
        w(f"  {name:<34} {m['type']:<22} {m['format']:<4} {m['machine'] or '-':<8} "
          f"{align:>7} {nx:<3} {wx:<4} {m['guid']}\n")
        if m["error"]:
            w(f"    {paint('error', 'bold red')}: {m['error']}\n")
    s = doc["summary"]
    w("\n" + paint(f"W^X audit ({doc['profile']['name']}: "
                   f"{', '.join(doc['profile']['rules']) or 'no image rules'})\n", "bold"))
    # one header per module: two modules may share a UI name in one volume (OVMF's two
    # CpuMpPei), their GUIDs tell them apart
    by_module: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for r in doc["results"]:
        by_module.setdefault((r["path"], r.get("guid")), []).append(r)
    labels = Counter(label for label, _ in by_module)
    shown_modules = 0
    for (label, guid), results in by_module.items():
        failing = any(at_least(r["severity"], s["fail_on"]) for r in results)
        if not verbose and not failing:
            continue
        shown_modules += 1
        mark = paint("FAIL", "red") if failing else paint("warn", "yellow")
        shown = f"{label} {{{guid}}}" if labels[label] > 1 and guid else label
        w(f"  {mark} {shown}\n")
        for r in results:
            where = f" ({r['location']})" if r["location"] else ""
            w(f"    {paint(r['severity'], _SEVERITY_STYLE[r['severity']])} {r['rule']}: "
              f"{r['message']}{where}\n")
    m = s["modules"]
    w(f"  {m['modules']} modules ({m['pe']} PE, {m['te']} TE): {m['page_aligned']} with 4 KiB "
      f"SectionAlignment, {m['nx_compat']} NX_COMPAT, {m['wx']} with W+X sections\n")
    verdict = paint("passed", "green") if s["passed"] else paint("failed", "red")
    w(f"  {s['errors']} errors, {s['warnings']} warnings, {s['notes']} notes: {verdict} "
      f"(--fail-on {s['fail_on']})\n")
