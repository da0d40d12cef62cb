"""Everything fwtools knows about one EFI binary, gathered once for inspection and rules.

This is the meeting point of the format parsers (headers, sections, special sections,
kernel headers) and the crypto layer (Authenticode signatures, trust verdicts). The facts
are data: :mod:`fwtools.policy.collect` gathers them, fw-check's rules in
:mod:`fwtools.policy.checks` judge them and pe-inspect renders them with the verdicts of
:mod:`fwtools.policy.pe_rules`. This module imports none of those (they import it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fwtools._base.record import Record, field
from fwtools.formats.pe import layout

if TYPE_CHECKING:
    from pathlib import Path

    from fwtools.crypto.authenticode import AuthenticodeSignature
    from fwtools.crypto.trust import VerifyResult
    from fwtools.formats.pe.image import PeImage
    from fwtools.formats.pe.kernel import KernelInfo
    from fwtools.formats.pe.special import SpecialSection
    from fwtools.policy.findings import Finding


class PeFacts(Record, frozen=False):
    path: str
    size: int
    image: PeImage
    digests: dict[str, bytes]
    signatures: list[AuthenticodeSignature]
    special: list[SpecialSection]
    kernel: KernelInfo | None
    embedded: dict[str, PeFacts | str] = field(default_factory=dict)
    verification: VerifyResult | None = None
    findings: list[Finding] = field(default_factory=list)
    # The PE CheckSum as computed over the file; only on request, since it costs as much as
    # a digest and firmware never checks it.
    computed_checksum: int | None = None


class FileResult(Record, frozen=False):
    """The outcome for one input file: facts, or the one-line error that stopped it."""

    path: str
    facts: PeFacts | None = None
    error: str | None = None


def looks_like_pe(path: Path) -> bool:
    """Cheap sniff used when walking directories: MZ, and PE\\0\\0 at e_lfanew."""
    try:
        with open(path, "rb") as f:
            e_lfanew = layout.e_lfanew(f.read(layout.DOS_HEADER.size))
            if e_lfanew is None:
                return False
            f.seek(e_lfanew)
            return f.read(len(layout.PE_SIGNATURE)) == layout.PE_SIGNATURE
    except OSError:
        return False


def expand_paths(paths: list[str]) -> Iterator[str]:
    """Named files as given; directories walked recursively for PE files, in sorted order.

    Files named explicitly are always inspected (and fail loudly when not PE); files found
    in a directory are only taken when they look like PE images, so an ESP's config files
    and fonts make no noise.
    """
    for p in paths:
        if os.path.isdir(p):
            from pathlib import Path  # only for directories: most runs name files

            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    full = Path(root, name)
                    if full.is_file() and not full.is_symlink() and looks_like_pe(full):
                        yield str(full)
        else:
            yield p
