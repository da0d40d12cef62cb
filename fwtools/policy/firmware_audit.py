"""The W^X audit of a firmware image's own modules, with fw-check's rules.

Each PE32 module of the image is judged like a file given to fw-check
(:func:`fwtools.policy.engine.check_facts`), by the rules of a profile that judge an image's
headers and sections (section alignment, NX_COMPAT, W+X sections, ...): what Project Mu's
ImageValidation checks at build time, on the shipped binary. Rules about signatures and SBAT
are left out: a firmware's modules are covered by the flash image, not signed one by one.

A TE module (AArch64 SEC/PEI) has no SectionAlignment or DllCharacteristics: those rules are
skipped for it with the reason, and W+X sections are judged from its section table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from fwtools._base.record import Record, replace
from fwtools.policy.results import FileReport, Result

if TYPE_CHECKING:
    from fwtools.formats.pi.image import FirmwareImage, Module
    from fwtools.policy.profiles import Profile

# The rules of checks.py that judge one image's headers and sections.
IMAGE_RULES: Final = frozenset({
    "section-alignment", "nx-compat", "wx-section", "code-data-mixed", "section-page-aligned",
    "subsystem-allowed", "subsystem-type", "image-base", "relocations", "sections-in-image",
    "sections-overlap", "headers-not-executable", "entry-point", "pe-anomaly",
})
# The profile fw-check firmware uses unless told otherwise: Microsoft's memory-mitigation
# rules (section alignment, W+X, NX_COMPAT), the ones the W^X replay depends on.
DEFAULT_POLICY: Final = "uefi-ca"
TE_REASON: Final = ("TE image: SectionAlignment and DllCharacteristics were stripped with the "
                    "PE headers")


class ModuleReport(Record, frozen=False):
    """One module's verdicts: ``report.path`` is the module's label in the image."""

    module: Module
    report: FileReport


def image_rules(profile: Profile) -> Profile:
    """``profile`` with only the rules that judge one image's headers and sections."""
    return replace(profile, rules={k: v for k, v in profile.rules.items() if k in IMAGE_RULES})


def module_label(module: Module) -> str:
    """``DXEFV/CpuDxe``: the innermost named volume and the UI name (or GUID)."""
    named = [p for p in module.volume_path if p != "-"]
    return "/".join((*named[-1:], module.label))


def audit_firmware(image: FirmwareImage, profile: Profile) -> list[ModuleReport]:
    """Judge every module of ``image`` with ``profile``'s image rules, in flash order."""
    from fwtools.policy.engine import Options, check_facts
    from fwtools.policy.pe_facts import PeFacts

    rules = image_rules(profile)
    options = Options()
    out: list[ModuleReport] = []
    for module in image.modules:
        label = module_label(module)
        pe = module.pe
        if pe is not None:
            facts = PeFacts(path=label, size=len(module.image_bytes), image=pe, digests={},
                            signatures=[], special=[], kernel=None)
            out.append(ModuleReport(module, check_facts(facts, label, rules, options)))
        elif module.te is not None:
            out.append(ModuleReport(module, _te_report(module, label, rules)))
        else:
            message = module.image_error or f"{label}: not a PE or TE image"
            out.append(ModuleReport(module, FileReport(
                label, error=message, results=[Result(label, "input-error", "error", message)])))
    return out


def _te_report(module: Module, label: str, rules: Profile) -> FileReport:
    report = FileReport(label)
    for cfg in rules.active:
        if cfg.id != "wx-section":
            report.skipped[cfg.id] = TE_REASON
            continue
        report.checked.append(cfg.id)
        for name in module.wx_sections:
            report.results.append(Result(label, cfg.id, cfg.level,
                                         f"section {name} is both writable and executable",
                                         f"section {name}"))
    return report
