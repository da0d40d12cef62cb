"""What fw-check reports: one result per finding, one report per file, and waivers.

The data the engine (:mod:`fwtools.policy.engine`) produces and the cross-file rules
(:mod:`fwtools.policy.chain_rule`) add to, kept apart from both so neither imports the other
for it; the renderers in ``fwtools/report/`` read them.
"""

from __future__ import annotations

import contextlib
import datetime
import fnmatch
import os
from pathlib import PurePath
from typing import TYPE_CHECKING

from fwtools._base.record import Record, field
from fwtools._base.severity import Severity

if TYPE_CHECKING:
    from fwtools.uefi.image import StageImage


class Waiver(Record):
    path: str
    rule: str
    reason: str
    expires: datetime.date | None

    def matches(self, path: str, rule: str) -> bool:
        if self.rule not in ("*", rule):
            return False
        posix = PurePath(path).as_posix()
        candidates = {posix, posix.removeprefix("./")}
        with contextlib.suppress(ValueError):
            candidates.add(PurePath(os.path.relpath(path)).as_posix())
        return any(fnmatch.fnmatchcase(c, self.path) for c in candidates)


class Result(Record):
    path: str
    rule: str
    severity: Severity
    message: str
    location: str = ""
    offset: int | None = None
    waived: Waiver | None = None


class FileReport(Record, frozen=False):
    _uncompared = frozenset({"stage"})  # field(compare=False)
    path: str
    error: str | None = None
    results: list[Result] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    """Rule ids that judged this file (passed or not), in profile order."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Rule id -> why it did not apply."""
    stage: StageImage | None = None
    """The file as a boot-chain stage, from the same parse as its facts (only when the
    profile replays chains)."""
