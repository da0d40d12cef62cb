"""The human view of fw-sigdb: lists, entries, certificates, .auth signatures.

Plain lines rather than rich tables: a dbx holds thousands of hashes, and listing them must
cost less than starting the interpreter. Colour is ANSI, only on a terminal (or forced).
"""

from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING, Any

from fwtools.report.ansi import Painter
from fwtools.report.sigdb_json import input_json

if TYPE_CHECKING:
    from fwtools.crypto.sigdb_inputs import SigdbInput

_HASH_KEYS = ("sha256", "sha1", "sha224", "sha384", "sha512")


def _owner(entry: dict[str, Any]) -> str:
    name = entry["owner_name"]
    return f"{name} ({entry['owner']})" if name else entry["owner"]


def _entry_line(e: dict[str, Any], x509: bool, verbose: bool, paint: Painter) -> str:
    if x509:
        if "subject" not in e:
            return paint(f"unparsable certificate: {e.get('error')}", "red")
        digest = e["sha256"] if verbose else e["sha256"][:16] + "…"
        return (
            f"{paint(e['subject'], 'bold cyan')}  issued by {e['issuer']}  {e['key_type']}  "
            f"{e['not_before'][:10]}..{e['not_after'][:10]}  sha256 {digest}"
        )
    tbs = next((k for k in e if k.startswith("tbs_")), None)
    if tbs is not None:
        return f"{tbs[4:]} of TBS {e[tbs]}  revoked since {e.get('time_of_revocation')}"
    return str(next((e[k] for k in _HASH_KEYS if k in e), e.get("data", "")))


def _lines(doc: dict[str, Any], verbose: bool, paint: Painter) -> list[str]:
    n = doc["entries"]
    noun = "entry" if n == 1 else "entries"
    out = [paint(f"== {doc['path']}  ({doc['format']}, {n} {noun})", "bold")]
    auth = doc["auth"]
    if auth is not None:
        line = f"signed update, timestamp {auth['timestamp']}"
        if auth["timestamp_problems"]:
            line += paint("  (" + "; ".join(auth["timestamp_problems"]) + ")", "red")
        out.append(line)
        if auth["error"]:
            out.append(paint(f"  ✗ {auth['error']}", "red"))
        for s in auth["signers"]:
            extras = f"{auth['digest_algorithm']}, {auth['form']}" + (
                ", signed attributes" if auth["signed_attributes"] else ""
            )
            out.append(f"  signer {paint(s['subject'], 'bold cyan')}  issued by {s['issuer']}  "
                       + paint(f"({extras})", "dim"))
        if verbose:
            out += [paint(f"  cert   {c['subject']}  issued by {c['issuer']}", "dim")
                    for c in auth["certificates"]]
    for i, sl in enumerate(doc["lists"]):
        entries = sl["entries"]
        owners = {e["owner"] for e in entries}
        shared = len(owners) == 1
        head = paint(f"[{i}] {sl['type']}", "bold magenta") + (
            f"  {len(entries)} {'entry' if len(entries) == 1 else 'entries'}"
        )
        if doc["format"] == "pe":
            head += f"  {sl['role']}"
        if shared:
            head += f"  owner {_owner(entries[0])}"
        out.append(head + paint(f"  at {sl['offset']:#x}", "dim"))
        x509 = sl["type"] == "EfiCertX509"
        for e in entries:
            prefix = "    " if shared else f"    {_owner(e)}  "
            out.append(prefix + _entry_line(e, x509, verbose, paint))
    out.append("")
    return out


def render_inputs(
    items: list[SigdbInput | tuple[str, str]],
    stream: IO[str] | None = None,
    *,
    verbose: bool = False,
    color: bool | None = None,
) -> None:
    stream = stream or sys.stdout
    paint = Painter.for_stream(stream, color)
    for item in items:
        if isinstance(item, tuple):
            continue  # errors go to stderr, one line each, from the command
        stream.write("\n".join(_lines(input_json(item), verbose, paint)) + "\n")
