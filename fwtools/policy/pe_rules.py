"""The built-in verdicts pe-inspect shows for every binary.

They follow Microsoft's UEFI CA memory-mitigation requirements (page-sized SectionAlignment,
no W+X section, NX_COMPAT), shim's post-process-pe checks, Project Mu's ImageValidation and
paging audit (code and data not mixed in one section), and the Authenticode facts (a
signature whose digest does not match the image is worthless).

The checks themselves are fw-check's (:mod:`fwtools.policy.checks`); this module only names
pe-inspect's selection of them, its severities, and the facts pe-inspect reports besides.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Final

from fwtools._base.severity import Severity
from fwtools.formats.pe import layout
from fwtools.policy import checks
from fwtools.policy.checks import Context, NotApplicable, Violation
from fwtools.policy.findings import Finding

if TYPE_CHECKING:
    from fwtools.policy.pe_facts import PeFacts


# Findings that mean part of the input is malformed (exit 2, like an unreadable file) and
# findings that mean a signature check failed (exit 1), as docs/design.md's exit codes ask.
MALFORMED_RULES: Final = frozenset({"signature", "special-section", "embedded"})
VERIFICATION_RULES: Final = frozenset({"digest-mismatch", "signature-invalid", "verify"})


def all_findings(facts: PeFacts) -> Iterator[tuple[str, Finding]]:
    """(path, finding) for ``facts`` and every image embedded in it (a UKI's .linux)."""
    for f in facts.findings:
        yield facts.path, f
    for inner in facts.embedded.values():
        if not isinstance(inner, str):
            yield from all_findings(inner)


# -- what only pe-inspect reports (facts, not policy) -----------------------------------


def _nx_compat_set(ctx: Context) -> Iterator[Violation]:
    if ctx.facts.image.nx_compat:
        yield Violation("NX_COMPAT is set: firmware may enforce W^X on this image",
                        "optional header DllCharacteristics",
                        checks.opt_offset(ctx.facts, "DllCharacteristics"))


def _sbat_present(ctx: Context) -> Iterator[Violation]:
    # Only EFI images are shim's business; a non-EFI one already has efi-subsystem.
    if ctx.facts.image.subsystem in layout.EFI_SUBSYSTEMS:
        yield from checks.check_sbat_present(ctx)


def _special_section_errors(ctx: Context) -> Iterator[Violation]:
    for sect in ctx.facts.special:
        if sect.error:
            yield Violation(f"{sect.name}: {sect.error}", f"section {sect.name}", sect.offset)


def _checksum(ctx: Context) -> Iterator[Violation]:
    img, computed = ctx.facts.image, ctx.facts.computed_checksum
    if computed is not None and img.checksum and img.checksum != computed:
        yield Violation(f"optional header CheckSum {img.checksum:#x} differs from the computed "
                        f"{computed:#x} (firmware does not check it)",
                        "optional header CheckSum", img.checksum_offset)


def _verdict(trusted: bool) -> Callable[[Context], Iterator[Violation]]:
    def check(ctx: Context) -> Iterator[Violation]:
        v = ctx.facts.verification
        if v is not None and (v.status == "trusted") == trusted:
            yield Violation(f"{v.status}: {v.reason}", "trust anchors")

    return check


def _embedded_errors(ctx: Context) -> Iterator[Violation]:
    for name, inner in ctx.facts.embedded.items():
        if isinstance(inner, str):
            yield Violation(inner, f"section {name}")


# pe-inspect's verdicts in the order it lists them: (rule, severity, check). The policy
# checks are fw-check's own (fwtools.policy.checks, with their default parameters) under
# pe-inspect's rule names and severities; the rest report facts only pe-inspect shows.
VERDICTS: Final[tuple[tuple[str, Severity, checks.RuleFunc], ...]] = (
    ("efi-subsystem", "warning", checks.check_efi_subsystem),
    ("nx-compat", "note", _nx_compat_set),
    ("nx-compat", "warning", checks.check_nx_compat),
    ("section-alignment", "error", checks.check_section_alignment),
    ("wx-section", "error", checks.check_wx),
    ("code-data-mixed", "warning", checks.check_code_data),
    ("section-page-aligned", "error", checks.check_page_aligned),
    ("relocations", "warning", checks.check_relocations),
    ("pe-anomaly", "warning", checks.check_anomalies),
    ("sbat", "warning", _sbat_present),
    ("special-section", "error", _special_section_errors),
    ("signed", "note", checks.check_signed),
    ("signature", "error", checks.signature_errors),
    ("digest-mismatch", "error", checks.check_digest),
    ("signature-invalid", "error", checks.invalid_signatures),
    ("checksum", "note", _checksum),
    ("verify", "note", _verdict(trusted=True)),
    ("verify", "error", _verdict(trusted=False)),
    ("embedded", "error", _embedded_errors),
)


def evaluate(facts: PeFacts) -> list[Finding]:
    ctx = Context(facts, {})
    out: list[Finding] = []
    for rule_id, severity, check in VERDICTS:
        with contextlib.suppress(NotApplicable):
            out += [Finding(rule_id, severity, v.message, v.location, v.offset)
                    for v in check(ctx)]
    return out
