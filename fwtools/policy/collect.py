"""Gathering the facts of EFI binaries (:mod:`fwtools.policy.pe_facts`) from their bytes.

Parsing, digests, signatures, special sections, kernel headers, the images embedded in a
UKI and, for pe-inspect, the built-in verdicts of :mod:`fwtools.policy.pe_rules`. fw-check's
engine asks for the facts alone (``inspect=False``) and judges them with its profile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from fwtools._base.fileio import read_file
from fwtools.errors import FwError, ParseError
from fwtools.formats.pe.image import PeImage
from fwtools.policy.pe_facts import FileResult, PeFacts

if TYPE_CHECKING:
    from fwtools.crypto.trust import TrustAnchors
    from fwtools.formats.pe.kernel import KernelInfo

# How deep .linux sections of UKIs are followed (a UKI inside a UKI is already odd).
MAX_EMBED_DEPTH: Final = 2
DIGEST_ALGORITHMS: Final = ("sha256", "sha1")


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
