"""The built-in verdicts pe-inspect shows for every binary.

They follow Microsoft's UEFI CA memory-mitigation requirements (page-sized SectionAlignment,
no W+X section, NX_COMPAT), shim's post-process-pe checks, Project Mu's ImageValidation and
paging audit (code and data not mixed in one section), and the Authenticode facts (a
signature whose digest does not match the image is worthless).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from fwtools.formats.pe import layout
from fwtools.policy.findings import Finding, Severity

if TYPE_CHECKING:
    from fwtools.policy.pe_facts import PeFacts


# Findings that mean part of the input is malformed (exit 2, like an unreadable file) and
# findings that mean a signature check failed (exit 1), as DESIGN.md's exit codes ask.
MALFORMED_RULES: Final = frozenset({"signature", "special-section", "embedded"})
VERIFICATION_RULES: Final = frozenset({"digest-mismatch", "signature-invalid", "verify"})


def all_findings(facts: PeFacts) -> Iterator[tuple[str, Finding]]:
    """(path, finding) for ``facts`` and every image embedded in it (a UKI's .linux)."""
    for f in facts.findings:
        yield facts.path, f
    for inner in facts.embedded.values():
        if not isinstance(inner, str):
            yield from all_findings(inner)


def evaluate(facts: PeFacts) -> list[Finding]:
    img = facts.image
    out: list[Finding] = []
    opt = img.optional_header_offset
    is_efi = img.subsystem in layout.EFI_SUBSYSTEMS

    if not is_efi:
        out.append(Finding(
            "efi-subsystem", "warning",
            f"subsystem {img.subsystem_name} is not an EFI subsystem",
            "optional header Subsystem", opt + 68,
        ))
    if img.nx_compat:
        out.append(Finding(
            "nx-compat", "info", "NX_COMPAT is set: firmware may enforce W^X on this image",
            "optional header DllCharacteristics", opt + 70,
        ))
    else:
        out.append(Finding(
            "nx-compat", "warning",
            "NX_COMPAT is not set: W^X-enforcing firmware loads it in compatibility mode "
            "or refuses it",
            "optional header DllCharacteristics", opt + 70,
        ))
    align = img.section_alignment
    if align < layout.PAGE_SIZE or align & (align - 1):
        out.append(Finding(
            "section-alignment", "error",
            f"SectionAlignment {align:#x} is not a power of two of at least 4 KiB: "
            "sections cannot get their own page permissions",
            "optional header SectionAlignment", opt + 32,
        ))
    for s in img.sections:
        where = f"section {s.name}"
        if s.write and s.execute:
            out.append(Finding(
                "wx-section", "error",
                f"section {s.name} is both writable and executable",
                where, s.header_offset + 36,
            ))
        if s.contains_code and s.characteristics & (
            layout.SCN_CNT_INITIALIZED_DATA | layout.SCN_CNT_UNINITIALIZED_DATA
        ):
            out.append(Finding(
                "code-data-mixed", "warning",
                f"section {s.name} is flagged as both code and data",
                where, s.header_offset + 36,
            ))
        if align >= layout.PAGE_SIZE and not s.is_page_aligned():
            out.append(Finding(
                "section-page-aligned", "error",
                f"section {s.name} starts at RVA {s.virtual_address:#x}, not on a page boundary",
                where, s.header_offset + 12,
            ))
    if not img.has_relocations:
        out.append(Finding(
            "relocations", "warning",
            "no base relocations: the image can only be loaded at its ImageBase",
            "data directory BASERELOC",
        ))
    for anomaly in img.anomalies:
        out.append(Finding("pe-anomaly", "warning", anomaly, "PE headers"))

    if is_efi and facts.kernel is None and img.section(".sbat") is None:
        out.append(Finding(
            "sbat", "warning",
            "no .sbat section: shim 15.3 and later refuse to start it",
            "sections",
        ))
    for sect in facts.special:
        if sect.error:
            out.append(Finding(
                "special-section", "error", f"{sect.name}: {sect.error}",
                f"section {sect.name}", sect.offset,
            ))

    if not facts.signatures:
        out.append(Finding("signed", "info", "the image is not signed", "certificate table"))
    for sig in facts.signatures:
        where = f"signature {sig.index}"
        if sig.error:
            out.append(Finding("signature", "error", sig.error, where, sig.offset))
            continue
        if sig.digest_matches is False:
            out.append(Finding(
                "digest-mismatch", "error",
                f"signed {sig.digest_algorithm} digest does not match the image: the image "
                "was modified after signing",
                where, sig.offset,
            ))
        if sig.signature_valid is False:
            out.append(Finding(
                "signature-invalid", "error",
                "the PKCS#7 signature does not verify with the signer's certificate",
                where, sig.offset,
            ))
    computed = facts.computed_checksum
    if computed is not None and img.checksum and img.checksum != computed:
        out.append(Finding(
            "checksum", "info",
            f"optional header CheckSum {img.checksum:#x} differs from the computed "
            f"{computed:#x} (firmware does not check it)",
            "optional header CheckSum", img.checksum_offset,
        ))
    if facts.verification is not None:
        v = facts.verification
        severity: Severity = "info" if v.status == "trusted" else "error"
        out.append(Finding("verify", severity, f"{v.status}: {v.reason}", "trust anchors"))
    for name, inner in facts.embedded.items():
        if isinstance(inner, str):
            out.append(Finding("embedded", "error", inner, f"section {name}"))
    return out
