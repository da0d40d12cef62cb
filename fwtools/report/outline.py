"""Indented outlines of decoded structures for the text views (no rich needed)."""

from __future__ import annotations

from typing import Any

from fwtools.report.jsonable import to_jsonable


def _scalar(item: Any) -> str:
    text = str(item)
    return text if len(text) <= 96 else text[:93] + "..."


def outline_lines(value: Any, indent: str = "") -> list[str]:
    """Indented ``key: value`` lines for a decoded structure, empty fields left out.

    Lists of scalars go on one line; ``{key, value}`` pairs (os-release and friends) read
    as ``KEY: value``.
    """
    plain = to_jsonable(value)
    lines: list[str] = []
    if isinstance(plain, dict):
        if set(plain) == {"key", "value"}:
            return [f"{indent}{plain['key']}: {_scalar(plain['value'])}"]
        for key, item in plain.items():
            if item in (None, "", [], {}):
                continue
            if isinstance(item, list) and all(not isinstance(i, dict | list) for i in item):
                lines.append(f"{indent}{key}: {_scalar(', '.join(map(str, item)))}")
            elif isinstance(item, dict | list):
                lines.append(f"{indent}{key}:")
                lines.extend(outline_lines(item, indent + "  "))
            else:
                lines.append(f"{indent}{key}: {_scalar(item)}")
    elif isinstance(plain, list):
        for item in plain:
            if isinstance(item, dict):
                sub = outline_lines(item, indent + "  ")
                if sub and set(item) == {"key", "value"}:
                    lines.append(indent + sub[0].strip())
                elif sub:
                    lines.append(indent + "- " + sub[0].strip())
                    lines.extend(sub[1:])
            else:
                lines.append(f"{indent}- {_scalar(item)}")
    elif plain is not None:
        lines.append(f"{indent}{_scalar(plain)}")
    return lines


# Position bookkeeping of decoded structures: useful in JSON, noise on a screen.
_HIDDEN_FIELDS = frozenset({"offset", "line", "warnings"})
_MAX_LIST = 6


def brief(value: Any) -> Any:
    """Drop position fields and cut long lists, for the human view."""
    if isinstance(value, dict):
        return {k: brief(v) for k, v in value.items() if k not in _HIDDEN_FIELDS}
    if isinstance(value, list):
        items = [brief(v) for v in value[:_MAX_LIST]]
        if len(value) > _MAX_LIST:
            items.append(f"... {len(value) - _MAX_LIST} more")
        return items
    return value


