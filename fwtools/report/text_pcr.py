"""``fw-pcr log``'s text view (rich): the events, the replayed PCRs and the comparison with
measured values. Built from the JSON document (report/pcr_json.py), so both views say the
same thing."""

from __future__ import annotations

from typing import IO, Any, Final

_STATUS: Final = {"match": "[green]match[/]", "mismatch": "[bold red]MISMATCH[/]",
                  "not-measured": "[yellow]not measured[/]",
                  "not-logged": "[dim]not in the log[/]"}


def render_log(doc: dict[str, Any], *, verbose: bool = False, file: IO[str] | None = None,
               color: bool | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(file=file, no_color=color is False, force_terminal=color or None,
                      highlight=False, soft_wrap=True)
    log, replay, summary = doc["log"], doc["replay"], doc["summary"]
    banks = ", ".join(summary["banks"]) or "none"
    console.print(f"[bold]{escape(log['path'])}[/]: {log['format']} event log, "
                  f"{summary['events']} events, {log['size']} bytes, banks {banks}")
    if log["startup_locality"] is not None:
        console.print(f"StartupLocality {log['startup_locality']} (PCR 0 starts at it)")
    shown_bank = "sha256" if "sha256" in summary["banks"] else (summary["banks"] or [""])[0]
    for e in log["events"]:
        head = f"{e['index']:>4} PCR{e['pcr']:<2} {e['type']:<34}"
        if e["decode_error"]:
            line = f"[red]undecodable: {escape(e['decode_error'])}[/]"
        else:
            line = escape(e["description"])
        if e["data_digest"] == "mismatch":
            line += " [bold yellow](digest is not of this data)[/]"
        console.print(f"{head} {line}")
        if verbose:
            console.print(f"[dim]       at {e['offset']:#x}, {e['data_size']} bytes of data[/]")
            for alg, digest in e["digests"].items():
                console.print(f"[dim]       {alg:<7} {digest}[/]")
            for extra in _details(e.get("decoded") or {}):
                console.print(f"       {escape(extra)}")
    if summary["data_digest_mismatches"]:
        console.print(f"[bold yellow]{summary['data_digest_mismatches']} events carry a digest "
                      f"that is not of their own data, as the spec requires for their type: "
                      f"the log does not describe what was measured[/]")
    for name in replay["unavailable"]:
        console.print(f"[yellow]bank {name}: this Python's hashlib cannot compute it[/]")
    for name in replay["incomplete"]:
        console.print(f"[yellow]bank {name}: some events carry no {name} digest; its "
                      f"replayed values are not what the TPM holds[/]")
    rows = {(r["bank"], r["pcr"]): r for r in (doc["comparison"] or {}).get("pcrs", [])}
    for bank, values in replay["banks"].items():
        if bank != shown_bank and not verbose and not any(
            r["bank"] == bank and r["status"] == "mismatch" for r in rows.values()
        ):
            continue
        console.print(f"[bold]{bank}[/]")
        pcrs = sorted({int(p) for p in values} | {p for b, p in rows if b == bank})
        for pcr in pcrs:
            row = rows.get((bank, pcr))
            value = values.get(str(pcr))
            status = f"  {_STATUS[row['status']]}" if row else ""
            shown = value if value is not None else row["measured"] if row else ""
            console.print(f"  PCR{pcr:<2} {shown}{status}")
            if row and row["status"] == "mismatch":
                console.print(f"  [red]measured {row['measured']}[/]")
    if doc["comparison"] is not None:
        verdict = ("[bold red]mismatch[/]" if summary["verdict"] == "mismatch"
                   else "[green]match[/]")
        console.print(f"{escape(doc['comparison']['path'])}: {summary['matches']} match, "
                      f"{summary['mismatches']} mismatch, {summary['not_measured']} not "
                      f"measured, {summary['not_logged']} not in the log: {verdict}")


def _details(decoded: dict[str, Any]) -> list[str]:
    """Extra lines for -v: signature list entries, partitions, load option data."""
    kind = decoded.get("kind")
    out: list[str] = []
    if kind == "variable" and isinstance(decoded["value"], list):
        for sl in decoded["value"]:
            if not isinstance(sl, dict):
                break
            out.append(f"{sl['type']}: {len(sl['entries'])} entries")
            for entry in sl["entries"]:
                what = entry.get("subject") or next(
                    (entry[k] for k in ("sha256", "sha1", "sha384", "sha512", "data")
                     if k in entry), "")
                out.append(f"  {entry['owner_name'] or entry['owner']}  {what}")
    elif kind == "authority" and decoded["entry"] and decoded["entry"].get("certificate"):
        cert = decoded["entry"]["certificate"]
        out.append(f"issuer {cert['issuer']}  sha256 {cert['sha256']}")
    elif kind == "gpt":
        for p in decoded["partitions"]:
            out.append(f"partition {p['index'] + 1}: {p['type_name'] or p['type_guid']} "
                       f"{p['unique_guid']} LBA {p['starting_lba']}-{p['ending_lba']} "
                       f"{p['name']!r}")
    elif kind == "image" and decoded["device_path_error"]:
        out.append(f"device path: {decoded['device_path_error']}")
    return out
