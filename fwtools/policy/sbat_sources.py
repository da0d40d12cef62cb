"""Where the SbatLevel to check against comes from: a file, a variable store, a shim binary's
``.sbatlevel`` payloads, or the published history in ``policies/sbatlevel-history.toml``.

Each source returns ``(level, label)``; the label says where the level came from and is
quoted in sbat-revoked findings.
"""

from __future__ import annotations

import datetime
import os
from typing import TYPE_CHECKING

from fwtools._base.fileio import read_file
from fwtools._base.record import Record
from fwtools.errors import FwError, UsageError

if TYPE_CHECKING:
    from fwtools.formats.sbat import SbatLevel

SBAT_LEVEL_VARIABLE = "SbatLevel"


class HistoryEntry(Record):
    datestamp: str
    date: datetime.date
    generations: dict[str, int]
    shipped: bool
    notes: str


def from_file(path: str) -> tuple[SbatLevel, str]:
    from fwtools.formats.sbat import parse_sbat_level

    try:
        return parse_sbat_level(read_file(path)), f"file {path}"
    except FwError as exc:
        raise exc.with_path(path) from None


def from_store(path: str) -> tuple[SbatLevel, str]:
    from fwtools.formats.efi import guids
    from fwtools.formats.sbat import parse_sbat_level
    from fwtools.formats.varstore.storeio import load_store

    try:
        store = load_store(path)
    except FwError as exc:
        raise exc.with_path(path) from None
    var = store.get(SBAT_LEVEL_VARIABLE, guids.SHIM_LOCK)
    if var is None:
        raise UsageError(f"{path}: no SbatLevel variable ({guids.SHIM_LOCK})")
    try:
        return parse_sbat_level(bytes(var.data)), f"variable SbatLevel in {path}"
    except FwError as exc:
        raise exc.with_path(path).with_hint("in the store's SbatLevel variable") from None


def from_shim(spec: str) -> tuple[SbatLevel, str]:
    """``SHIM`` or ``SHIM:latest`` (the default, as in ``fw-vars sbat-level``) / ``SHIM:automatic``
    (what shim applies with Secure Boot on and no SbatPolicy)."""
    from fwtools.formats.pe.image import PeImage
    from fwtools.formats.pe.shim_sections import ShimSbatLevel
    from fwtools.formats.pe.special import special_sections

    path, which = spec, "latest"
    head, sep, tail = spec.rpartition(":")
    if sep and tail in ("latest", "automatic", "previous"):
        path, which = head, "automatic" if tail == "previous" else tail
    try:
        img = PeImage(read_file(path), path)
    except FwError as exc:
        raise exc.with_path(path) from None
    for sect in special_sections(img):
        if isinstance(sect.decoded, ShimSbatLevel):
            level = sect.decoded.latest if which == "latest" else sect.decoded.automatic
            return level, f"{which} level of {path}"
    raise UsageError(f"--sbat-level-shim {path}: no .sbatlevel section")


def load_history() -> list[HistoryEntry]:
    from fwtools._base.tomlfile import policies_dir

    path = os.path.join(policies_dir(), "sbatlevel-history.toml")
    from fwtools._base.tomlfile import read_toml

    data = read_toml(path, "SbatLevel history")
    out = []
    for item in data.get("level", []):
        stamp = str(item["datestamp"])
        out.append(HistoryEntry(
            stamp, datetime.date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8])),
            {str(k): int(v) for k, v in item.get("generations", {}).items()},
            bool(item.get("shipped", True)), str(item.get("notes", "")),
        ))
    return out


def from_history(when: str) -> tuple[SbatLevel, str]:
    """The newest shipped level published on or before ``when`` (YYYY-MM-DD), or ``latest``."""
    from fwtools.formats.sbat import SbatLevel

    history = [h for h in load_history() if h.shipped]
    if when == "latest":
        chosen = history[-1]
    else:
        try:
            day = datetime.date.fromisoformat(when)
        except ValueError:
            raise UsageError(f"--sbat-level-history {when!r}: give YYYY-MM-DD or latest") from None
        earlier = [h for h in history if h.date <= day]
        if not earlier:
            raise UsageError(f"--sbat-level-history {when}: no SbatLevel was published by then")
        chosen = earlier[-1]
    level = SbatLevel.create(chosen.datestamp, chosen.generations)
    return level, f"published level {chosen.datestamp} from SbatLevel_Variable.txt"
