"""SBAT: the ``.sbat`` CSV section of EFI binaries and SbatLevel revocation payloads.

See :mod:`fwtools.formats.sbat.sbat` for the format rules and references.
"""

from fwtools.formats.sbat.sbat import (
    SBAT_LEVEL_ORIGINAL,
    Sbat,
    SbatLevel,
    SbatLevelEntry,
    SbatRevocation,
    SbatRow,
    parse_sbat,
    parse_sbat_level,
    revocations,
)

__all__ = [
    "SBAT_LEVEL_ORIGINAL",
    "Sbat",
    "SbatLevel",
    "SbatLevelEntry",
    "SbatRevocation",
    "SbatRow",
    "parse_sbat",
    "parse_sbat_level",
    "revocations",
]
