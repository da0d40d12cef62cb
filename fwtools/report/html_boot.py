"""fw-check boot-chain as one self-contained HTML page: where did W^X break?

The page (skeleton, shared styles, faults: fwtools/report/html_page.py) has no external
assets and makes no network requests. The header (verdict,
firmware profile, stages) and the faults are plain HTML; the timeline and the memory view
are drawn by a small inline script from one ``<script type="application/json">`` block.
That block holds the events and the memory maps of :attr:`Replay.snapshots`. Each distinct
range list is stored once in ``maps``, and every event names its list by index (``snap``),
so a run of steps that leave the map unchanged costs one number per step.

JSON data (``version`` 1)::

    {"version": 1, "verdict": "faults", "types": ["EfiConventionalMemory", ...],
     "events": [{"stage", "op", "start", "end", "type", "perms", "detail", "status",
                 "snap"}, ...],              # snap: index into maps, or null
     "maps": [[[start, end, type index or null, "rw-"], ...], ...],
     "faults": [event index, ...], "hex_width": 8}

Addresses are JSON numbers; one at or above 2**53 (beyond any 52-bit physical address)
would be a ``"0x..."`` string, which the script also accepts.
"""

from __future__ import annotations

import os
from typing import Any, Final

from fwtools.report.html_page import (
    VERDICT_TEXT,
    esc,
    faults_section,
    page,
    params,
    verdict_badge,
    yes,
)
from fwtools.uefi.memtypes import nx_types
from fwtools.uefi.profile import PROTECT_FV, PROTECT_UNKNOWN_SOURCE, FirmwareProfile
from fwtools.uefi.replay import MemoryRange, Replay

DATA_ID: Final = "fw-boot-data"
FORMAT_VERSION: Final = 1
_JSON_SAFE: Final = 1 << 53


def render_html(replay: Replay) -> str:
    """The whole page for ``replay`` (snapshots optional: without them there is no map)."""
    from fwtools.report.boot_json import faults_json

    data = page_data(replay)
    title = f"Boot-chain replay: {VERDICT_TEXT.get(replay.verdict, replay.verdict)} " \
            f"on {replay.firmware.name}"
    main = [
        _stages(replay),
        faults_section(faults_json(replay), steps=data["faults"]),
        _timeline(replay),
        _memory(replay),
    ]
    return page(title, _header(replay), main, css=_CSS, data=(DATA_ID, data), script=_JS)


def page_data(replay: Replay) -> dict[str, Any]:
    """The JSON the page's script draws from (see the module docstring)."""
    types: dict[str, int] = {}
    maps: list[list[list[Any]]] = []
    seen: dict[tuple[MemoryRange, ...], int] = {}
    top = 0

    def type_index(name: str | None) -> int | None:
        if name is None:
            return None
        return types.setdefault(name, len(types))

    events: list[dict[str, Any]] = []
    for i, ev in enumerate(replay.events):
        ref: int | None = None
        snap = replay.snapshots.get(i)
        if snap is not None:
            key = tuple(snap)
            ref = seen.get(key)
            if ref is None:
                ref = seen[key] = len(maps)
                maps.append([[_num(r.start), _num(r.end), type_index(r.memory_type),
                               r.permissions] for r in snap])
                top = max([top, *(r.end - 1 for r in snap if r.end > 0)])
        if ev.end > 0:
            top = max(top, ev.end - 1)
        events.append({
            "stage": ev.stage, "op": ev.operation, "start": _num(ev.start),
            "end": _num(ev.end), "type": ev.memory_type, "perms": ev.permissions,
            "detail": ev.detail, "status": ev.status, "snap": ref,
        })
    return {
        "version": FORMAT_VERSION,
        "verdict": replay.verdict,
        "types": list(types),
        "events": events,
        "maps": maps,
        "faults": _fault_events(replay),
        "hex_width": max(8, len(f"{top:x}")),
    }


def _num(value: int) -> int | str:
    return value if 0 <= value < _JSON_SAFE else hex(value)


def _fault_events(replay: Replay) -> list[int | None]:
    """For each fault, the index of the timeline's FAULT event covering its address, else
    the last FAULT event (None without one)."""
    out: list[int | None] = []
    faulting = [i for i, ev in enumerate(replay.events) if ev.status == "FAULT"]
    for fault in replay.faults:
        exact = [i for i in faulting
                 if replay.events[i].start <= fault.address < max(replay.events[i].end,
                                                                  replay.events[i].start + 1)]
        pick = exact or faulting
        out.append(pick[-1] if pick else None)
    return out


# ---- static parts ----------------------------------------------------------------------


def _header(replay: Replay) -> str:
    rows = [
        ("Firmware profile", _profile_text(replay.firmware)),
        ("Architecture", esc(replay.arch)),
        ("Secure Boot", yes(replay.secure_boot)),
        *_profile_rows(replay.firmware, replay),
    ]
    return (
        "<h1>Boot-chain W^X replay</h1>"
        f"{verdict_badge(replay.verdict)}"
        f'<p class="reason">{esc(replay.reason) or "(no reason recorded)"}</p>'
        f"{params(rows)}"
    )


def _profile_text(p: FirmwareProfile) -> str:
    out = f"<strong>{esc(p.name)}</strong> ({esc(p.flavour)})"
    if p.description:
        out += f'<br><span class="muted">{esc(p.description)}</span>'
    return out


def _profile_rows(p: FirmwareProfile, replay: Replay) -> list[tuple[str, str]]:
    types = nx_types(p.nx_policy)
    nx = f"<code>{p.nx_policy:#018x}</code>"
    nx += f": NX for {esc(', '.join(types))}" if types else ": no memory type is made NX"
    bits = []
    if p.image_protection & PROTECT_UNKNOWN_SOURCE:
        bits.append("images from an unknown source (disk, network)")
    if p.image_protection & PROTECT_FV:
        bits.append("images from firmware volumes")
    prot = f"<code>{p.image_protection:#x}</code>: "
    prot += f"protects {esc(' and '.join(bits))}" if bits else "no image is protected"
    if p.map_available(replay.arch):
        mapp = "installed"
    elif p.memory_attribute_protocol:
        mapp = f"enabled, but edk2 {p.edk2_release} on {esc(replay.arch)} does not have it"
    else:
        mapp = "not installed"
    rows = [
        ("NX policy", nx),
        ("Image protection", prot),
        ("Memory attribute protocol", mapp),
        ("edk2 release", esc(p.edk2_release)),
        ("Stack NX / guard", f"{yes(p.stack_nx)} / {yes(p.stack_guard)}"),
        ("Guest memory", f"{p.memory_mib} MiB"),
    ]
    if p.mu is not None:
        rows.append(("Project Mu", f"block images without NX: "
                     f"{yes(p.mu.block_images_without_nx)}, free memory read-protected: "
                     f"{yes(p.mu.free_memory_read_protected)}"))
    return rows


def _stages(replay: Replay) -> str:
    rows = []
    for s in replay.stages:
        model = esc(s.model) + (" <em>(forced)</em>" if s.overridden else "")
        if s.model_basis == "fallback":
            model += (' <em title="' + esc("; ".join(s.unidentified))
                      + '">(fallback: not identified)</em>')
        model += " (verified on real firmware)" if s.model_verified else " (unverified)"
        version = f" {esc(s.version)}" if s.version else ""
        rows.append(
            f"<tr><td>{s.index}</td><th scope=\"row\">{esc(s.name)}</th>"
            f'<td><span title="{esc(s.path)}">{esc(os.path.basename(s.path))}</span></td>'
            f"<td>{esc(s.family)}{version}</td><td>{model}</td><td>{esc(s.identified_by)}</td>"
            "</tr>"
        )
    return (
        '<section aria-labelledby="stages-h"><h2 id="stages-h">Stages</h2>'
        "<table><caption>The chain, first stage first</caption>"
        '<thead><tr><th scope="col">#</th><th scope="col">Stage</th><th scope="col">File</th>'
        '<th scope="col">Program</th><th scope="col">Loader model</th>'
        '<th scope="col">Identified by</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _timeline(replay: Replay) -> str:
    if not replay.events:
        return ('<section aria-labelledby="timeline-h"><h2 id="timeline-h">Timeline</h2>'
                "<p>The replay recorded no events.</p></section>")
    last = len(replay.events) - 1
    return (
        '<section aria-labelledby="timeline-h" id="timeline">'
        '<h2 id="timeline-h">Timeline</h2>'
        '<div class="controls">'
        '<button type="button" id="prev" aria-label="Previous step">&larr; Prev</button>'
        '<label for="slider" class="visually-hidden">Step</label>'
        f'<input type="range" id="slider" min="0" max="{last}" value="0" step="1">'
        '<button type="button" id="next" aria-label="Next step">Next &rarr;</button>'
        '<span id="step-label" aria-live="polite"></span>'
        "</div>"
        '<p class="hint">Click a row, drag the slider, or use the arrow keys to select a step. '
        "Rows marked <span class=\"badge bad\">!</span> did not succeed.</p>"
        '<noscript><p>The timeline and memory view need JavaScript; the faults above do not.'
        "</p></noscript>"
        '<div class="scroll"><table id="events"><caption>Every firmware and loader operation'
        ", in order</caption><thead><tr>"
        '<th scope="col">#</th><th scope="col">Stage</th><th scope="col">Operation</th>'
        '<th scope="col">Range</th><th scope="col">Size</th><th scope="col">Memory type</th>'
        '<th scope="col">Permissions</th><th scope="col">Status</th>'
        '<th scope="col">Detail</th></tr></thead><tbody></tbody></table></div>'
        "</section>"
    )


def _memory(replay: Replay) -> str:
    head = '<section aria-labelledby="memory-h" id="memory"><h2 id="memory-h">Memory map</h2>'
    if not replay.snapshots:
        return head + (
            "<p>The memory view needs snapshots: this replay was run without them "
            "(replay with <code>snapshots=True</code> to record the map after every step)."
            "</p></section>"
        )
    return head + (
        '<p id="map-caption" aria-live="polite"></p>'
        '<fieldset class="controls"><legend>Show</legend>'
        '<label><input type="checkbox" id="hide-free"> Hide free memory '
        "(EfiConventionalMemory not touched by this step; on by default when it is over 90% "
        "of the map)</label>"
        '<label><input type="checkbox" id="rwx-only"> RWX only (writable and executable)'
        "</label>"
        '<label>Strip scale <select id="scale"><option value="linear">proportional</option>'
        '<option value="log">logarithmic (small ranges readable)</option></select></label>'
        "</fieldset>"
        '<ul class="legend" aria-label="Permission colours">'
        '<li><span class="chip perm-rwx"></span> rwx: writable and executable (W^X violation)'
        '</li><li><span class="chip perm-rx"></span> r-x: code</li>'
        '<li><span class="chip perm-rw"></span> rw-: data</li>'
        '<li><span class="chip perm-r"></span> r--: read-only</li>'
        '<li><span class="chip perm-none"></span> ---: not present</li>'
        '<li><span class="chip touched-chip"></span> touched by the selected step</li></ul>'
        '<div id="strip" class="strip" role="img" aria-label="Memory map strip"></div>'
        '<p id="map-summary"></p>'
        '<div class="scroll"><table id="ranges"><caption>Ranges with one memory type and one '
        "effective permission</caption><thead><tr>"
        '<th scope="col">Start</th><th scope="col">End</th><th scope="col">Size</th>'
        '<th scope="col">Memory type</th><th scope="col">Permissions</th>'
        '<th scope="col">This step</th></tr></thead><tbody></tbody></table></div>'
        "</section>"
    )


# what only this page needs; the shared styles are html_page.BASE_CSS
_CSS: Final = """
.scroll{max-height:60vh;overflow:auto;border:1px solid var(--line)}
.scroll table{margin:0}
#events tbody tr{cursor:pointer}
#events tbody tr:hover{background:#f3f6f9}
#events tr.bad{background:var(--bad)}
#events tr.fault{background:#f8c9c9;font-weight:600}
#events tr.sel{background:var(--sel);outline:2px solid var(--hi);outline-offset:-2px}
#events td.num,#ranges td.num{text-align:right;white-space:nowrap}
td.addr{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:nowrap}
.perm{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:nowrap}
.chip{display:inline-block;width:.9em;height:.9em;border-radius:2px;vertical-align:-.1em;
margin-right:.3rem;border:1px solid #0003}
.perm-rwx{background:var(--rwx)}.perm-rx{background:var(--rx)}.perm-rw{background:var(--rw)}
.perm-r{background:var(--r)}.perm-none{background:var(--none)}
.perm-mixed{background:repeating-linear-gradient(45deg,var(--rw) 0 3px,var(--rx) 3px 6px)}
.touched-chip{background:#fff;outline:3px solid var(--hi);outline-offset:-3px}
.controls{display:flex;flex-wrap:wrap;gap:.6rem;align-items:center;margin:.4rem 0;border:0;
padding:0}
fieldset.controls legend{font-weight:600;float:left;margin-right:.4rem}
#slider{flex:1 1 300px}
#step-label{flex:1 1 100%;font-weight:600}
.hint{color:var(--muted);margin:.2rem 0}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:.3rem 1.2rem;padding:0;margin:.4rem 0}
.strip{display:flex;height:44px;border:1px solid var(--line);margin:.4rem 0;overflow:hidden;
background:#eee}
.strip>div{min-width:2px;height:100%;border-right:1px solid #fff8;cursor:pointer}
.strip>div.hole{flex:0 0 6px;min-width:6px;background:repeating-linear-gradient(90deg,#fff 0 2px,
#bbb 2px 4px);cursor:default}
.strip>div.touched{box-shadow:inset 0 0 0 3px var(--hi);min-width:6px}
#ranges tr.touched{background:var(--sel)}
#ranges tr.flash{outline:2px solid var(--hi)}
"""

_JS: Final = r"""
(function () {
"use strict";
var D = JSON.parse(document.getElementById("fw-boot-data").textContent);
var EV = D.events, MAPS = D.maps, TYPES = D.types, W = D.hex_width;
var FREE = "EfiConventionalMemory";
var cur = -1, rows = [];
function $(id) { return document.getElementById(id); }
function num(v) { return typeof v === "string" ? Number(BigInt(v)) : v; }
function size(a, b) {
  if (typeof a === "string" || typeof b === "string") return Number(BigInt(b) - BigInt(a));
  return b - a;
}
function hex(v) {
  var s = (typeof v === "string" ? BigInt(v) : v).toString(16);
  while (s.length < W) s = "0" + s;
  return "0x" + s;
}
function human(n) {
  var u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"], i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  var t = n % 1 === 0 ? String(n) : n.toFixed(n < 10 ? 2 : 1);
  return t + " " + u[i];
}
function permClass(p) {
  if (!p) return "";
  if (p === "*") return "perm-mixed";
  var r = p[0] === "r", w = p[1] === "w", x = p[2] === "x";
  if (w && x) return "perm-rwx";
  if (x) return "perm-rx";
  if (w) return "perm-rw";
  return r ? "perm-r" : "perm-none";
}
function isRWX(p) { return !!p && p[1] === "w" && p[2] === "x"; }
function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}
function permCell(p) {
  var td = el("td", "perm");
  if (p === null || p === undefined) { td.textContent = "\u2014"; return td; }
  td.appendChild(el("span", "chip " + permClass(p)));
  td.appendChild(document.createTextNode(p === "*" ? "* (mixed)" : p));
  if (isRWX(p)) td.appendChild(el("span", "badge", "W+X"));
  return td;
}
function hasRange(e) { return size(e.start, e.end) > 0; }
function overlaps(r, e) {
  return hasRange(e) && num(r[0]) < num(e.end) && num(r[1]) > num(e.start);
}

function buildTimeline() {
  var tbody = document.querySelector("#events tbody");
  if (!tbody) return;
  EV.forEach(function (e, i) {
    var tr = el("tr");
    tr.tabIndex = 0;
    if (e.status === "FAULT") tr.className = "fault";
    else if (e.status !== "SUCCESS") tr.className = "bad";
    tr.appendChild(el("td", "num", String(i)));
    tr.appendChild(el("td", null, e.stage));
    tr.appendChild(el("td", null, e.op));
    if (hasRange(e)) {
      tr.appendChild(el("td", "addr", hex(e.start) + "\u2013" + hex(e.end)));
      tr.appendChild(el("td", "num", human(size(e.start, e.end))));
    } else {
      tr.appendChild(el("td", null, "\u2014"));
      tr.appendChild(el("td", null, ""));
    }
    tr.appendChild(el("td", null, e.type || ""));
    tr.appendChild(permCell(e.perms));
    var st = el("td", null, e.status);
    if (e.status !== "SUCCESS") st.appendChild(el("span", "badge bad", "!"));
    tr.appendChild(st);
    tr.appendChild(el("td", null, e.detail));
    tr.addEventListener("click", function () { select(i); });
    tr.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(i); }
    });
    tbody.appendChild(tr);
    rows.push(tr);
  });
}

function select(i, focus) {
  if (!EV.length) return;
  i = Math.max(0, Math.min(EV.length - 1, i));
  if (cur >= 0 && rows[cur]) {
    rows[cur].classList.remove("sel");
    rows[cur].removeAttribute("aria-current");
  }
  cur = i;
  var tr = rows[i];
  tr.classList.add("sel");
  tr.setAttribute("aria-current", "step");
  tr.scrollIntoView({block: "nearest"});
  if (focus) tr.focus({preventScroll: true});
  $("slider").value = String(i);
  var e = EV[i];
  $("step-label").textContent = "Step " + i + " of " + (EV.length - 1) + ": " + e.stage +
    " \u2014 " + e.op + (e.status !== "SUCCESS" ? " [" + e.status + "]" : "");
  renderMap();
}

function renderMap() {
  var strip = $("strip");
  if (!strip || cur < 0) return;
  var e = EV[cur], j = cur;
  while (j >= 0 && EV[j].snap === null) j--;
  var tbody = document.querySelector("#ranges tbody");
  strip.textContent = "";
  tbody.textContent = "";
  if (j < 0) {
    $("map-caption").textContent = "No memory snapshot was recorded at or before step " +
      cur + ".";
    $("map-summary").textContent = "";
    return;
  }
  $("map-caption").textContent = j === cur
    ? "Memory map after step " + cur + " (" + e.stage + ": " + e.op + ")"
    : "Memory map as of step " + j + " (no snapshot was recorded after step " + cur + ")";
  var ranges = MAPS[EV[j].snap];
  var hideFree = $("hide-free").checked, rwxOnly = $("rwx-only").checked;
  var log = $("scale").value === "log";
  var shown = ranges.filter(function (r) {
    var t = r[2] === null ? null : TYPES[r[2]];
    if (rwxOnly && !isRWX(r[3])) return false;
    if (hideFree && t === FREE && !overlaps(r, e)) return false;
    return true;
  });
  var total = 0, rwx = 0, rwxBytes = 0, touched = 0;
  shown.forEach(function (r) { total += size(r[0], r[1]); });
  ranges.forEach(function (r) {
    if (isRWX(r[3])) { rwx++; rwxBytes += size(r[0], r[1]); }
  });
  var prevEnd = null;
  shown.forEach(function (r, k) {
    var n = size(r[0], r[1]);
    var t = r[2] === null ? "(no type)" : TYPES[r[2]];
    var hit = overlaps(r, e);
    if (hit) touched++;
    if (prevEnd !== null && num(r[0]) !== prevEnd) {
      var gap = el("div", "hole");
      gap.title = "gap: not in the map, or hidden by a filter";
      strip.appendChild(gap);
    }
    prevEnd = num(r[1]);
    var seg = el("div", permClass(r[3]) + (hit ? " touched" : ""));
    var w = log ? Math.log2(Math.max(n, 4096)) - 11 : (total ? n / total * 1000 : 1);
    seg.style.flex = w + " 1 0";
    var label = hex(r[0]) + "\u2013" + hex(r[1]) + " " + human(n) + " " + t + " " + r[3] +
      (isRWX(r[3]) ? " W+X" : "") + (hit ? " (this step)" : "");
    seg.title = label;
    var tr = el("tr", hit ? "touched" : "");
    tr.appendChild(el("td", "addr", hex(r[0])));
    tr.appendChild(el("td", "addr", hex(r[1])));
    tr.appendChild(el("td", "num", human(n)));
    tr.appendChild(el("td", null, t));
    tr.appendChild(permCell(r[3]));
    tr.appendChild(el("td", null, hit ? "\u25c6 touched" : ""));
    seg.addEventListener("click", function () {
      tr.scrollIntoView({block: "nearest"});
      tr.classList.add("flash");
      setTimeout(function () { tr.classList.remove("flash"); }, 1200);
    });
    strip.appendChild(seg);
    tbody.appendChild(tr);
  });
  strip.setAttribute("aria-label", "Memory map strip: " + shown.length + " ranges, " +
    rwx + " writable and executable; the table below lists them");
  $("map-summary").textContent = shown.length + " of " + ranges.length + " ranges shown (" +
    human(total) + "); RWX: " + rwx + " range" + (rwx === 1 ? "" : "s") +
    (rwx ? " (" + human(rwxBytes) + ")" : "") +
    (hasRange(e) ? "; " + touched + " shown range(s) touched by step " + cur : "");
}

function hideFreeByDefault() {
  // A big guest is mostly one free run that squeezes the chain's ranges out of the strip.
  var box = $("hide-free"), last = null, free = 0, all = 0;
  if (!box) return;
  for (var k = EV.length - 1; k >= 0 && last === null; k--) {
    if (EV[k].snap !== null) last = MAPS[EV[k].snap];
  }
  (last || []).forEach(function (r) {
    var n = size(r[0], r[1]);
    all += n;
    if (r[2] !== null && TYPES[r[2]] === FREE) free += n;
  });
  if (all && free / all > 0.9) box.checked = true;
}

function init() {
  buildTimeline();
  if (!EV.length) return;
  $("prev").addEventListener("click", function () { select(cur - 1); });
  $("next").addEventListener("click", function () { select(cur + 1); });
  $("slider").addEventListener("input", function () { select(Number(this.value)); });
  ["hide-free", "rwx-only", "scale"].forEach(function (id) {
    var c = $(id);
    if (c) c.addEventListener("change", renderMap);
  });
  Array.prototype.forEach.call(document.querySelectorAll("button.goto"), function (b) {
    b.addEventListener("click", function () {
      select(Number(b.getAttribute("data-step")), true);
      $("timeline").scrollIntoView();
    });
  });
  document.addEventListener("keydown", function (ev) {
    var t = ev.target && ev.target.tagName;
    if (t === "INPUT" || t === "SELECT" || t === "TEXTAREA") return;
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    var moves = {ArrowUp: -1, ArrowLeft: -1, ArrowDown: 1, ArrowRight: 1};
    var inRow = ev.target && ev.target.tagName === "TR";
    if (ev.key in moves) { ev.preventDefault(); select(cur + moves[ev.key], inRow); }
    else if (ev.key === "Home") { ev.preventDefault(); select(0, inRow); }
    else if (ev.key === "End") { ev.preventDefault(); select(EV.length - 1, inRow); }
  });
  hideFreeByDefault();
  var first = D.faults.filter(function (f) { return f !== null; })[0];
  if (first === undefined) {
    first = EV.findIndex(function (e) { return e.status !== "SUCCESS"; });
    if (first < 0) first = EV.length - 1;
  }
  select(first);
}
init();
})();
"""
