"""``fw-check vm --html``: one machine's verdict as a self-contained page.

The page is drawn from the ``fwtools.fw-check.vm/1`` document (fwtools/report/vm_json.py),
the same dict ``--json`` prints, so the two cannot disagree; the document itself rides
along in a ``<script type="application/json" id="fw-vm-data">`` block. Every value shown is
marked with its document path (``data-field``, fwtools/report/html_page.py), which is how
tests/report/test_html_vm.py proves that every field of the document is on the page. The
page has no script of its own: it reads the same without JavaScript.

Order: the verdict and why; firmware identification with each setting's basis; Secure Boot
and why; one section per stage (where on the disk, how it was found, who loads it, the loader
model, the authority that let it run, the SBAT check); the refusal with the message as the
component prints it; faults as ``fw-check boot-chain --html`` shows them; the inputs and
notes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from fwtools.report.html_page import (
    VERDICT_TEXT,
    esc,
    faults_section,
    field,
    page,
    params,
    section,
    value_text,
    verdict_badge,
)

DATA_ID: Final = "fw-vm-data"

#: labels of the firmware settings (machine/firmware_id.py PROFILE_SETTINGS and
#: secure_boot_support); a setting the document gains later is still shown, under its key
_SETTING_LABEL: Final = {
    "edk2_release": "edk2 release",
    "nx_policy": "NX policy (PcdDxeNxMemoryProtectionPolicy)",
    "image_protection": "Image protection (PcdImageProtectionPolicy)",
    "memory_attribute_protocol": "Memory attribute protocol",
    "stack_nx": "Stack NX (PcdSetNxForStack)",
    "stack_guard": "Stack guard (PcdCpuStackGuard)",
    "null_detection": "NULL page detection",
    "debug_clear_memory": "Freed memory cleared (debug builds)",
    "secure_boot_support": "Secure Boot support",
}
_HEX_SETTINGS: Final = frozenset({"image_protection"})


def render_vm_html(doc: Mapping[str, Any]) -> str:
    """The page for one ``fwtools.fw-check.vm/1`` document."""
    verdict = str(doc["verdict"])
    fw = doc["firmware"]
    title = (f"fw-check vm: {VERDICT_TEXT.get(verdict, verdict)} "
             f"({fw['identified'] or fw['source']})")
    main = [
        _firmware(fw),
        _secure_boot(doc["secure_boot"]),
        _stages(doc),
        _refusal(doc),
        faults_section(doc["faults"]),
        _inputs(doc),
    ]
    tool = doc["tool"]
    footer = (f"{field('schema', doc['schema'], tag='code')} written by "
              f"{field('tool.name', tool['name'])} {field('tool.version', tool['version'])}")
    return page(title, _header(doc), main, data=(DATA_ID, doc), footer=footer)


def _header(doc: Mapping[str, Any]) -> str:
    sb, fw, ref = doc["secure_boot"], doc["firmware"], doc["refusal"]
    rows = [
        ("Firmware", esc(fw["identified"] or fw["source"])
         + f" &rarr; profile <strong>{esc(fw['profile'])}</strong>"),
        ("Secure Boot", esc(sb["state"])),
        ("Stages found", f"{len(doc['stages'])}"
         + ("" if doc["chain_complete"] else " (the chain ends early)")),
    ]
    if ref is not None:
        rows.append(("Refused", f'<a href="#refusal-h">stage {esc(ref["stage"])} by '
                                f'{esc(ref["by"])}</a>'))
    if doc["faults"]:
        rows.append(("Faults", f'<a href="#faults-h">{len(doc["faults"])}</a>'))
    return ("<h1>fw-check vm: will this VM boot?</h1>"
            f"{verdict_badge(str(doc['verdict']))}"
            f'<p class="reason">{field("reason", doc["reason"])}</p>'
            f"{params(rows)}")


def _setting_text(name: str, s: Mapping[str, Any]) -> tuple[list[str], str]:
    """The document paths one setting's value element shows, and its text."""
    base = f"firmware.settings.{name}."
    value = s["value"]
    if "hex" in s:
        return [base + "value", base + "hex"], str(s["hex"])
    if name in _HEX_SETTINGS and isinstance(value, int) and not isinstance(value, bool):
        return [base + "value"], hex(value)
    return [base + "value"], "unknown" if value is None else value_text(value)


def _firmware(fw: Mapping[str, Any]) -> str:
    p = "firmware."
    rows = [
        ("Source", field(p + "source", fw["source"], tag="code")),
        ("Kind", field(p + "kind", fw["kind"])),
        ("Identified as", field(p + "identified", fw["identified"],
                                text=fw["identified"] or "not a known build")),
        ("SHA-256 of its code", field(p + "sha256", fw["sha256"], tag="code")),
        ("Basis", field(p + "basis", fw["basis"])),
        ("Profile", field(p + "profile", fw["profile"], tag="strong")),
        ("Description", field(p + "description", fw["description"])),
        ("Architecture", field(p + "arch", fw["arch"])),
    ]
    trs = []
    for name, s in fw["settings"].items():
        paths, text = _setting_text(name, s)
        label = _SETTING_LABEL.get(name, name)
        trs.append(f'<tr><th scope="row">{esc(label)}</th>'
                   f"<td>{field(paths, s['value'], tag='code', text=text)}</td>"
                   f"<td>{field(f'firmware.settings.{name}.basis', s['basis'])}</td></tr>")
    table = ("<table><caption>The replay's firmware settings, each with where it comes from "
             "(read from the image, known build, override, or unknown)</caption>"
             '<thead><tr><th scope="col">Setting</th><th scope="col">Value</th>'
             '<th scope="col">Basis</th></tr></thead>'
             f"<tbody>{''.join(trs)}</tbody></table>")
    return section("firmware", "Firmware", params(rows) + table
                   + _notes(fw["notes"], "firmware.notes"))


def _secure_boot(sb: Mapping[str, Any]) -> str:
    p = "secure_boot."
    enable = sb["secure_boot_enable"]
    support = sb["firmware_support"]
    rows = [
        ("State", field([p + "state"], sb["state"], tag="strong")
         + f" (enabled: {field(p + 'enabled', sb['enabled'])})"),
        ("Why", field(p + "reason", sb["reason"])),
        ("PK enrolled", field(p + "pk", sb["pk"])),
        ("SecureBootEnable", field(p + "secure_boot_enable", enable,
                                   text="absent" if enable is None else str(enable))),
        ("Mode", field(p + "mode", sb["mode"])),
        ("Firmware supports Secure Boot", field(p + "firmware_support", support,
                                                text="unknown" if support is None
                                                else value_text(support))),
    ]
    return section("secure-boot", "Secure Boot", params(rows))


def _stages(doc: Mapping[str, Any]) -> str:
    ref = doc["refusal"]
    refused_at = ref["stage"] if ref is not None else None
    parts = [_stage(st, n, refused_at) for n, st in enumerate(doc["stages"])]
    if not parts:
        parts.append("<p>No stage was found.</p>")
    done = field("chain_complete", doc["chain_complete"])
    stop = doc["chain_stopped"]
    parts.append(params([
        ("Chain complete", done),
        ("Chain stops", field("chain_stopped", stop,
                              text="(it reaches a kernel)" if stop is None else stop)),
    ]))
    return section("stages", "Stages", "".join(parts))


def _stage(st: Mapping[str, Any], n: int, refused_at: int | None) -> str:
    p = f"stages.{n}."
    allowed = st["allowed"]
    if allowed is None:
        state, cls = "not checked", "unchecked"
    elif allowed:
        state, cls = "allowed", ""
    else:
        state, cls = "refused", "refused"
    if refused_at == st["index"] and allowed is not False:
        # allowed to load, then stopped by its own check (shim's SBAT self-check)
        cls = "refused"
    model = st["model"]
    rows = [
        ("Path on disk", field(p + "path", st["path"], tag="code")),
        ("Found by", field(p + "found_by", st["found_by"])),
        ("Loaded by", field(p + "loaded_by", st["loaded_by"])),
        ("Program", field(p + "family", st["family"])),
        ("Loader model", field(p + "model", model,
                               text="(not replayed)" if model is None else model)),
        ("Trust", field(p + "allowed", allowed, tag="strong", text=state)
         + f" by {field(p + 'checked_by', st['checked_by'], text=st['checked_by'] or 'nobody')}"
         + ": " + field(p + "trust", st["trust"],
                        text=st["trust"] or "an earlier stage ended the boot")),
        ("Authority", _authority(st["authority"], p + "authority")),
        ("SBAT", _sbat(st["sbat"], p + "sbat")),
    ]
    klass = f"stage {cls}".strip()
    return (f'<article class="{klass}" id="stage-{esc(st["index"])}">'
            f"<h3>Stage {field(p + 'index', st['index'])}: "
            f"{esc(st['family'])} <code>{esc(st['path'])}</code></h3>"
            f"{params(rows)}</article>")


def _authority(auth: Mapping[str, Any] | None, p: str) -> str:
    if auth is None:
        return field(p, None, text="none (not allowed, or not checked)")
    return params([
        ("Kind", field(p + ".kind", auth["kind"], tag="code")),
        ("Subject", field(p + ".subject", auth["subject"],
                          text=auth["subject"] or "(a hash, no certificate)")),
        ("SHA-256", field(p + ".sha256", auth["sha256"], tag="code",
                          text=auth["sha256"] or "-")),
    ])


def _sbat(sbat: Mapping[str, Any] | None, p: str) -> str:
    if sbat is None:
        return field(p, None, text="not checked (only shim checks SBAT)")
    row = sbat["failed_row"]
    if row is None:
        failed = field(p + ".failed_row", None, text="none")
    else:
        q = p + ".failed_row."
        failed = (field(q + "component", row["component"], tag="code")
                  + f" generation {field(q + 'generation', row['generation'])} is below the "
                  + f"minimum {field(q + 'minimum', row['minimum'])}")
        extra = [k for k in row if k not in ("component", "generation", "minimum")]
        failed += "".join(f"; {esc(k)} {field(q + k, row[k])}" for k in extra)
    result = sbat["result"]
    note = sbat["note"]
    return params([
        ("Result", field(p + ".result", result, tag="strong",
                         cls="badge ok" if result == "pass" else "badge bad")),
        ("SbatLevel", field(p + ".level", sbat["level"], tag="code",
                            text=sbat["level"] or "(none)")),
        ("Level from", field(p + ".source", sbat["source"])),
        ("Failing row", failed),
        ("Note", field(p + ".note", note, text=note or "-")),
    ])


def _refusal(doc: Mapping[str, Any]) -> str:
    ref = doc["refusal"]
    if ref is None:
        return section("refusal", "Refusal",
                       f"<p>{field('refusal', None, text='No stage was refused.')}</p>")
    stage = ref["stage"]
    stages = doc["stages"]
    where = (f" (<code>{esc(stages[stage - 1]['path'])}</code>)"
             if 0 < stage <= len(stages) else " (the stage it could not find)")
    rows = [
        ("Stage", field("refusal.stage", stage) + where),
        ("Refused by", field("refusal.by", ref["by"], tag="strong")),
        ("Why", field("refusal.reason", ref["reason"])),
    ]
    revoked = ref.get("revoked_by")
    rows.append(("Revoked by", field("refusal.revoked_by", None,
                                     text="no denylist entry (not a dbx or MokListX refusal)")
                 if revoked is None else _authority(revoked, "refusal.revoked_by")))
    console = field("refusal.message", ref["message"], tag="pre", cls="console")
    return section("refusal", "Refusal",
                   params(rows) + "<h3>As the component prints it</h3>" + console)


def _inputs(doc: Mapping[str, Any]) -> str:
    rows = [
        ("Variable store", field("vars", doc["vars"], tag="code")),
        ("Disk", field("disk", doc["disk"], tag="code",
                       text=doc["disk"] or "(none: the chain's files were given)")),
        ("Chain from", field("discovery", doc["discovery"])),
    ]
    return section("inputs", "Inputs and notes", params(rows) + _notes(doc["notes"], "notes"))


def _notes(notes: Sequence[str], p: str) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{field(f'{p}.{i}', n)}</li>" for i, n in enumerate(notes))
    return f'<ul class="notes">{items}</ul>'
