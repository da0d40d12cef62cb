"""The human view of fw-vars: one line per variable, decoded values summarised.

Plain text (ANSI colour on a terminal only): a store is shown in the time it takes to start
the interpreter, and is readable when piped into less or a CI log.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from fwtools._base.record import Record
from fwtools.report.ansi import Painter
from fwtools.report.jsonable import to_jsonable

if TYPE_CHECKING:
    from fwtools.formats.varstore.model import Variable



def summarize(decoded: Any, limit: int = 100) -> str:
    """One line for a decoded value: the fields a reader looks for first."""
    summary = getattr(decoded, "summary", None)
    if isinstance(decoded, Record) and isinstance(summary, str) and summary:
        # What the general path below finds first, without converting the whole value
        # (a dbx has hundreds of entries).
        error = getattr(decoded, "error", None)
        text = f"{summary}  [error: {error}]" if error else summary
        return text if len(text) <= limit else text[: limit - 1] + "…"
    plain = to_jsonable(decoded)
    if isinstance(plain, dict):
        for key in ("summary", "text", "value"):
            if key in plain and plain[key] not in (None, ""):
                text = str(plain[key])
                break
        else:
            text = ", ".join(
                f"{k}={v}" for k, v in plain.items()
                if not isinstance(v, dict | list) and v not in (None, "", b"") and k != "error"
            )
        if plain.get("error"):
            text = f"{text}  [error: {plain['error']}]" if text else f"error: {plain['error']}"
    else:
        text = str(plain)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_variables(
    variables: Iterable[Variable],
    *,
    title: str,
    stream: IO[str] | None = None,
    verbose: bool = False,
    color: bool | None = None,
    notes: Iterable[str] = (),
) -> None:
    from fwtools.formats.efi import guids
    from fwtools.formats.efi.authvar import attribute_names
    from fwtools.formats.varstore.decode import decode_variable

    stream = stream or sys.stdout
    paint = Painter.for_stream(stream, color)
    out = [paint(title, "bold")]
    out += [paint(f"  {n}", "dim") for n in notes]
    rows = list(variables)
    width = max((len(v.name) for v in rows), default=4)
    for v in rows:
        guid = guids.guid_name(v.guid) or str(v.guid)
        attrs = "+".join(attribute_names(v.attributes, short=True)) or "-"
        decoded = decode_variable(v.name, v.guid, v.data, digests=verbose)
        stamp = ""
        if v.timestamp is not None and not v.timestamp.is_zero:
            stamp = f"  {v.timestamp}"
        line = (
            f"{paint(v.name.ljust(width), 'bold cyan')}  {guid:<26} {attrs:<12} "
            f"{len(v.data):>6} B{stamp}"
        )
        if decoded is not None and not verbose:
            line += "  " + summarize(decoded)
        out.append(line)
        if verbose:
            if decoded is not None:
                from fwtools.report.outline import brief, outline_lines

                out += ["    " + ln for ln in outline_lines(brief(to_jsonable(decoded)))]
            else:
                data = v.data.hex()
                out += [f"    {data[i:i + 64]}" for i in range(0, min(len(data), 512), 64)]
                if len(data) > 512:
                    out.append(f"    … {len(v.data) - 256} more bytes")
    stream.write("\n".join(out) + "\n")
