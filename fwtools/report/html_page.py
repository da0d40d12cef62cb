"""The one HTML page skeleton fwtools' reports share (``fw-check boot-chain --html``,
``fw-check vm --html``): a self-contained document with inline styles, no external assets
and no network requests, every input-derived string escaped with :func:`html.escape`.

A page may carry a JSON document in a ``<script type="application/json">`` block
(:func:`script_json` keeps any string from closing the element) and an inline script.

Values drawn from a JSON document can be marked with the document path they show,
``data-field="stages.0.path"`` (:func:`field`), so a test can prove the page shows every
field of the document it was built from. A fault is rendered from its
``fwtools.fw-check.boot-chain/1`` JSON form (:func:`fault_article`), one definition for
both pages.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

VERDICT_TEXT: Final = {
    "boots": "Boots",
    "faults": "Faults",
    "refused": "Refused",
}


def esc(text: object) -> str:
    """``text`` as HTML text or attribute value (quotes escaped too)."""
    return html.escape(str(text), quote=True)


def yes(value: bool) -> str:
    return "yes" if value else "no"


def value_text(value: object) -> str:
    """How a JSON scalar reads on a page: null "none", booleans "yes"/"no", else str()."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return yes(value)
    return str(value)


def field(paths: str | Sequence[str], value: object, *, tag: str = "span",
          text: str | None = None, cls: str | None = None) -> str:
    """An element showing ``value`` (or ``text``), escaped, marked with the JSON document
    path(s) it shows (several paths when one text shows both, e.g. a number and its hex)."""
    names = paths if isinstance(paths, str) else " ".join(paths)
    shown = value_text(value) if text is None else text
    klass = f' class="{esc(cls)}"' if cls else ""
    return f'<{tag} data-field="{esc(names)}"{klass}>{esc(shown)}</{tag}>'


def params(rows: Iterable[tuple[str, str]]) -> str:
    """A ``<dl class="params">`` of (label, HTML) pairs; labels are escaped here."""
    body = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<dl class="params">{body}</dl>'


def section(ident: str, title: str, body: str, *, extra: str = "") -> str:
    return (f'<section aria-labelledby="{ident}-h"{extra}>'
            f'<h2 id="{ident}-h">{esc(title)}</h2>{body}</section>')


def verdict_badge(verdict: str, *, paths: str = "verdict") -> str:
    label = VERDICT_TEXT.get(verdict, verdict)
    return (f'<p class="verdict verdict-{esc(verdict)}" role="status">'
            f'<span class="verdict-label">Verdict:</span> '
            f"{field(paths, verdict, text=label)}</p>")


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe inside a ``<script>`` element: ``<``, ``>`` and ``&``
    become ``\\u003c`` etc., so no string can close the element or open a comment."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def page(title: str, header: str, main: Sequence[str], *, css: str = "",
         data: tuple[str, Any] | None = None, script: str | None = None,
         footer: str = "") -> str:
    """The whole document: ``header`` and ``main`` are HTML already escaped by the caller;
    ``css`` is appended to the shared styles; ``data`` is ``(element id, JSON value)``."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{BASE_CSS}{css}</style>",
        "</head>",
        "<body>",
        f"<header>{header}</header>",
        "<main>",
        *main,
        "</main>",
    ]
    if footer:
        parts.append(f"<footer>{footer}</footer>")
    if data is not None:
        ident, value = data
        parts.append(f'<script type="application/json" id="{esc(ident)}">'
                     f"{script_json(value)}</script>")
    if script is not None:
        parts.append(f"<script>{script}</script>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def fault_article(f: Mapping[str, Any], n: int, *, prefix: str = "faults",
                  step: int | None = None) -> str:
    """One fault of ``faults_json`` (fwtools/report/boot_json.py) as an article; ``prefix``
    is the document path of the fault list, ``step`` a timeline step to link to."""
    p = f"{prefix}.{n}."
    stage_index = f.get("stage_index")
    stage = field(p + "stage", f["stage"])
    if stage_index is not None:
        stage += f" (stage {field(p + 'stage_index', stage_index)})"
    rows = [
        ("Address", field([p + "address", p + "address_hex"], f["address"], tag="code",
                          text=f["address_hex"])),
        ("Access", field(p + "access", f["access"])),
        ("Fault code", field(p + "fault", f["fault"], tag="code")),
        ("Stage", stage),
        ("Operation", field(p + "operation", f["operation"])),
        ("Memory type", field(p + "memory_type", f["memory_type"],
                              text=f["memory_type"] or "(none)")),
        ("Attributes", field(p + "attributes", f["attributes"], tag="code")),
        ("Explanation", field(p + "explanation", f["explanation"])),
        ("Fix", field(p + "fix", f["fix"])),
        ("Last changed by", field(p + "changed_by", f["changed_by"],
                                  text=f["changed_by"] or "(never changed)")),
    ]
    if "code" in f:
        rows.insert(3, ("Error code", field([p + "code", p + "code_hex"], f["code"],
                                            tag="code", text=f["code_hex"])))
    go = "" if step is None else (
        f'<button type="button" class="goto" data-step="{step}">'
        f"Show step {step} in the timeline</button>")
    access = str(f["access"]).capitalize()
    return (f'<article class="fault" id="fault-{n}"><h3>{esc(access)} at '
            f"<code>{esc(f['address_hex'])}</code> in {esc(f['stage'])}</h3>"
            f"{params(rows)}{go}</article>")


def faults_section(faults: Sequence[Mapping[str, Any]], *, prefix: str = "faults",
                   steps: Sequence[int | None] | None = None) -> str:
    if not faults:
        body = "<p>No fault: every access the chain made was allowed.</p>"
    else:
        body = "".join(fault_article(f, n, prefix=prefix,
                                     step=None if steps is None else steps[n])
                       for n, f in enumerate(faults))
    return section("faults", "Faults", body)


BASE_CSS: Final = """
:root{--rwx:#c62828;--rx:#2e7d32;--rw:#1565c0;--r:#9e9e9e;--none:#263238;--sel:#fff3c4;
--bad:#fde7e7;--line:#d0d7de;--muted:#57606a;--hi:#f9a825}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328;
background:#fff}
header,main,footer{max-width:1400px;margin:0 auto;padding:0 1rem}
header{padding-top:1rem}
footer{color:var(--muted);padding:1.5rem 1rem}
h1{font-size:1.3rem;margin:.2rem 0}
h2{font-size:1.1rem;border-bottom:1px solid var(--line);padding-bottom:.2rem;margin-top:1.6rem}
h3{font-size:1rem;margin:.2rem 0 .4rem}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
pre.console{background:#1f2328;color:#f6f8fa;padding:.5rem .8rem;border-radius:4px;
white-space:pre-wrap;overflow-wrap:anywhere}
.verdict{font-size:2rem;font-weight:700;margin:.3rem 0;padding:.2rem .8rem;border-radius:6px;
display:inline-block;color:#fff}
.verdict-label{font-size:1rem;font-weight:400;opacity:.9}
.verdict-boots{background:var(--rx)}.verdict-faults{background:var(--rwx)}
.verdict-refused{background:#e65100}
.reason{font-size:1.05rem;margin:.3rem 0 .8rem}
.muted{color:var(--muted)}
dl.params{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.4rem 0}
dl.params dt{font-weight:600}dl.params dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;margin:.3rem 0}
caption{text-align:left;color:var(--muted);padding:.2rem 0}
th,td{border:1px solid var(--line);padding:.2rem .4rem;text-align:left;vertical-align:top}
thead th{background:#f6f8fa;position:sticky;top:0}
.badge{display:inline-block;padding:0 .35rem;border-radius:4px;font-size:.8em;font-weight:700;
color:#fff;background:var(--rwx);margin-left:.3rem}
.badge.bad{background:#b71c1c}
.badge.ok{background:var(--rx)}
button{font:inherit;padding:.15rem .6rem;cursor:pointer}
.fault{border:1px solid var(--rwx);border-left:6px solid var(--rwx);border-radius:4px;
padding:.5rem .8rem;margin:.6rem 0}
.stage{border:1px solid var(--line);border-left:6px solid var(--rx);border-radius:4px;
padding:.5rem .8rem;margin:.6rem 0}
.stage.refused{border-left-color:#e65100}.stage.unchecked{border-left-color:var(--r)}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);
white-space:nowrap}
"""
