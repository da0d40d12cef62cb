"""``json.dumps(value, indent=2)``, byte for byte, in half the time.

CPython's C encoder has no ``indent``: with one, :mod:`json` encodes in Python through nested
generators, about a millisecond for a 4 MiB variable store's document (issue 13, "start-up at
the floor": every ``--json`` command pays it). :func:`dumps_indented` walks the value once with
plain appends and leaves strings to the C string encoder. What the fast path does not know (a
subclass of a JSON type, a non-finite float, a key that is not a string, a cycle) goes to
:func:`json.dumps` itself, so the text, and every error, stay the standard library's.
"""

from __future__ import annotations

from json.encoder import encode_basestring_ascii as _string
from typing import Any

__all__ = ["dumps_indented"]


class _Unusual(Exception):
    """Raised inside the fast path for a value :func:`json.dumps` should handle."""


def dumps_indented(value: Any) -> str:
    """``json.dumps(value, indent=2)``."""
    parts: list[str] = []
    try:
        _encode(value, "\n", parts, 0)
    except (_Unusual, RecursionError):
        import json

        return json.dumps(value, indent=2)
    return "".join(parts)


_FLOAT_MAX = float("inf")
_DEPTH_LIMIT = 200  # deeper than any document fwtools writes; json.dumps decides past it


def _scalar(v: Any) -> str | None:
    """The text of a str, int or float of exactly that type (finite floats only), else None."""
    t = type(v)
    if t is str:
        return _string(v)
    if t is int:
        return int.__repr__(v)
    if t is float and -_FLOAT_MAX < v < _FLOAT_MAX:
        return float.__repr__(v)
    return None


def _encode(v: Any, newline: str, out: list[str], depth: int) -> None:
    text = _scalar(v)
    if text is not None:
        out.append(text)
    elif v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif depth > _DEPTH_LIMIT:
        raise _Unusual
    elif type(v) is dict:
        if not v:
            out.append("{}")
            return
        inner = newline + "  "
        sep = "{" + inner
        for key, item in v.items():
            if type(key) is not str:
                raise _Unusual  # json turns int, float, bool and None keys into strings
            text = _scalar(item)
            if text is not None:
                out.append(sep + _string(key) + ": " + text)
            else:
                out.append(sep + _string(key) + ": ")
                _encode(item, inner, out, depth + 1)
            sep = "," + inner
        out.append(newline + "}")
    elif type(v) is list or type(v) is tuple:
        if not v:
            out.append("[]")
            return
        inner = newline + "  "
        sep = "[" + inner
        for item in v:
            text = _scalar(item)
            if text is not None:
                out.append(sep + text)
            else:
                out.append(sep)
                _encode(item, inner, out, depth + 1)
            sep = "," + inner
        out.append(newline + "]")
    else:
        raise _Unusual
