"""The one severity scale of fwtools: store issues, rule findings, gate results.

Three levels, SARIF's names (``note`` < ``warning`` < ``error``), one rank. ``info`` was the
lowest level's name in store issues and pe-inspect findings before they shared this scale;
it is still accepted wherever a user names a level (``--fail-on info``) and read as ``note``.
"""

from __future__ import annotations

from typing import Final, Literal, cast

Severity = Literal["note", "warning", "error"]

SEVERITIES: Final[tuple[Severity, ...]] = ("note", "warning", "error")
RANK: Final[dict[str, int]] = {"note": 0, "warning": 1, "error": 2}
_ALIASES: Final[dict[str, Severity]] = {"info": "note"}


def parse_severity(text: str) -> Severity | None:
    """The level a user named (case-insensitive, ``info`` for ``note``), or None."""
    key = text.strip().lower()
    if key in RANK:
        return cast(Severity, key)
    return _ALIASES.get(key)


def at_least(severity: str, level: str) -> bool:
    """True when ``severity`` ranks at ``level`` or above."""
    return RANK[severity] >= RANK[level]


def worst(severities: list[Severity] | tuple[Severity, ...]) -> Severity | None:
    """The highest of ``severities``, or None for none."""
    return max(severities, key=lambda s: RANK[s]) if severities else None
