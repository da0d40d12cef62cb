"""Findings: what a rule says about an input, with a severity and a location."""

from __future__ import annotations

from fwtools._base import severity as sev
from fwtools._base.record import Record
from fwtools._base.severity import Severity


class Finding(Record):
    """One rule's verdict on one input.

    ``location`` says where in the input the problem is, in the terms a firmware engineer
    uses: ``"section .data"``, ``"optional header DllCharacteristics"``, ``"signature 0"``;
    ``offset`` is the file offset when one applies. ``severity`` is on the one scale of
    :mod:`fwtools._base.severity` (note < warning < error).
    """

    rule: str
    severity: Severity
    message: str
    location: str = ""
    offset: int | None = None

    def at_least(self, level: Severity) -> bool:
        return sev.at_least(self.severity, level)
