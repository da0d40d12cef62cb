"""Everything fwtools knows about one EFI binary, gathered once for inspection and rules.

This is the meeting point of the format parsers (headers, sections, special sections,
kernel headers) and the crypto layer (Authenticode signatures, trust verdicts). pe-inspect
renders it with the verdicts of :mod:`fwtools.policy.pe_rules`; fw-check's rules in
:mod:`fwtools.policy.checks` judge it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from fwtools._base.fileio import read_file
from fwtools.errors import FwError, ParseError
from fwtools.formats.pe import layout
from fwtools.formats.pe.image import PeImage

if TYPE_CHECKING:
    from fwtools.crypto.authenticode import AuthenticodeSignature
    from fwtools.crypto.trust import TrustAnchors, VerifyResult
    from fwtools.formats.pe.kernel import KernelInfo
    from fwtools.formats.pe.special import SpecialSection
    from fwtools.policy.findings import Finding

# How deep .linux sections of UKIs are followed (a UKI inside a UKI is already odd).
MAX_EMBED_DEPTH: Final = 2
DIGEST_ALGORITHMS: Final = ("sha256", "sha1")


@dataclass
class PeFacts:
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


@dataclass
class FileResult:
    """The outcome for one input file: facts, or the one-line error that stopped it."""

    path: str
    facts: PeFacts | None = None
    error: str | None = None


def collect_facts(
    data: bytes,
    path: str,
    *,
    anchors: TrustAnchors | None = None,
    check_signatures: bool = False,
    checksum: bool = False,
    inspect: bool = True,
    depth: int = 0,
) -> PeFacts:
    """Parse ``data`` as a PE image and gather all facts; raises FwError on bad input.

    The PKCS#7 SignerInfo signatures are verified when ``check_signatures`` is set or trust
    anchors are given; a valid signature by an unknown key proves nothing by itself, and
    skipping it spares loading cryptography. ``inspect`` adds what only pe-inspect shows:
    the images embedded in a UKI and the built-in verdicts (fw-check's profile rules judge
    the facts themselves and need neither).
    """
    from fwtools.crypto.authenticode import image_signatures
    from fwtools.formats.pe.authenticode import authenticode_digests
    from fwtools.formats.pe.special import embedded_pe, special_sections

    image = PeImage(data, path)
    digests = authenticode_digests(image, DIGEST_ALGORITHMS)
    signatures = image_signatures(
        image, digests, check=check_signatures or anchors is not None
    )
    special = special_sections(image)
    facts = PeFacts(
        path=path,
        size=len(data),
        image=image,
        digests=digests,
        signatures=signatures,
        special=special,
        kernel=_kernel_info(data),
        computed_checksum=image.computed_checksum() if checksum else None,
    )
    if inspect and depth < MAX_EMBED_DEPTH:
        for sect in image.sections:
            if sect.name != ".linux":
                continue
            inner = embedded_pe(image, sect)
            if inner is None:
                continue
            label = f"{path}[{sect.name}]"
            try:
                facts.embedded[sect.name] = collect_facts(
                    inner, label, anchors=anchors, check_signatures=check_signatures,
                    checksum=checksum, depth=depth + 1,
                )
            except FwError as exc:
                facts.embedded[sect.name] = str(exc)
    if anchors is not None:
        from fwtools.crypto.trust import verify_image

        facts.verification = verify_image(image, signatures, anchors, digests=digests)
    if inspect:
        from fwtools.policy.pe_rules import evaluate

        facts.findings = evaluate(facts)
    return facts


def _kernel_info(data: bytes) -> KernelInfo | None:
    from fwtools.formats.pe.kernel_magic import looks_like_pe_kernel

    if not looks_like_pe_kernel(data):
        return None
    from fwtools.formats.pe.kernel import kernel_info

    return kernel_info(data)


def inspect_path(
    path: str,
    *,
    anchors: TrustAnchors | None = None,
    check_signatures: bool = False,
    checksum: bool = False,
    inspect: bool = True,
) -> FileResult:
    """Inspect one file, turning every expected failure into a one-line error."""
    try:
        data = read_file(path)
        facts = collect_facts(
            data, path, anchors=anchors, check_signatures=check_signatures, checksum=checksum,
            inspect=inspect,
        )
        return FileResult(path, facts)
    except ParseError as exc:
        return FileResult(path, error=str(exc.with_path(path)))
    except FwError as exc:
        return FileResult(path, error=str(exc))
    except RecursionError:
        return FileResult(path, error=f"{path}: structure nests too deeply")


def looks_like_pe(path: Path) -> bool:
    """Cheap sniff used when walking directories: MZ, and PE\\0\\0 at e_lfanew."""
    try:
        with open(path, "rb") as f:
            head = f.read(0x40)
            if len(head) < 0x40 or head[:2] != layout.DOS_MAGIC:
                return False
            f.seek(int.from_bytes(head[layout.E_LFANEW_OFFSET : 0x40], "little"))
            return f.read(4) == layout.PE_SIGNATURE
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
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    full = Path(root, name)
                    if full.is_file() and not full.is_symlink() and looks_like_pe(full):
                        yield str(full)
        else:
            yield p
