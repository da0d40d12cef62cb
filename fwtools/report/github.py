"""fw-check --github: GitHub Actions workflow commands, one annotation per finding."""

from __future__ import annotations

import os
from pathlib import PurePath
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from fwtools._base.severity import Severity
    from fwtools.policy.results import FileReport

_COMMAND: Final[dict[Severity, str]] = {"error": "error", "warning": "warning", "note": "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(reports: list[FileReport], root: str = ".") -> str:
    lines = []
    for rep in reports:
        for r in rep.results:
            if r.waived is not None:
                continue
            rel = os.path.relpath(os.path.abspath(r.path), os.path.abspath(root))
            name = PurePath(rel if not rel.startswith("..") else r.path).as_posix()
            title = f"{r.rule}" + (f" ({r.location})" if r.location else "")
            lines.append(f"::{_COMMAND[r.severity]} file={_escape_property(name)},"
                         f"title={_escape_property(title)}::{_escape_data(r.message)}")
    return "".join(line + "\n" for line in lines)
