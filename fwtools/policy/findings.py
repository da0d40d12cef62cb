"""Findings: what a rule says about an input, with a severity and a location."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_ORDER: Final[dict[str, int]] = {"info": 0, "warning": 1, "error": 2}


@dataclass(frozen=True)
class Finding:
    """One rule's verdict on one input.

    ``location`` says where in the input the problem is, in the terms a firmware engineer
    uses: ``"section .data"``, ``"optional header DllCharacteristics"``, ``"signature 0"``;
    ``offset`` is the file offset when one applies.
    """

    rule: str
    severity: Severity
    message: str
    location: str = ""
    offset: int | None = None

    def at_least(self, level: Severity) -> bool:
        return SEVERITY_ORDER[self.severity] >= SEVERITY_ORDER[level]
