"""The rule library of fw-check: each rule judges one fact of an EFI binary.

A rule has an id, a default severity, default parameters, a one-line summary and a help
text naming its source. Profiles (``policies/*.toml``, :mod:`fwtools.policy.profiles`)
select rules, set their severity and parameters; rules never read profiles themselves.

Sources (each rule's help_uri links its own; docs/fw-check.md lists them by rule):
Microsoft's UEFI CA memory-mitigation requirements (page-sized SectionAlignment, no W+X
section, NX_COMPAT); Project Mu's ImageValidation (W^X flags, section alignment, subsystem,
image base); shim's loader checks (relocations, sections, entry point) and SBAT revocation
(``verify_sbat_helper``); shim-review (a vendor SBAT row); Authenticode and db/dbx.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from fwtools._base.record import Record, field
from fwtools._base.severity import Severity
from fwtools.formats.pe import layout

if TYPE_CHECKING:
    from fwtools.formats.pe.image import Section
    from fwtools.formats.sbat import Sbat, SbatLevel
    from fwtools.policy.pe_facts import PeFacts

MS_NX_URL: Final = (
    "https://learn.microsoft.com/en-us/windows-hardware/drivers/bringup/"
    "uefi-ca-memory-mitigation-requirements"
)
MU_URL: Final = (
    "https://github.com/microsoft/mu_basecore/tree/HEAD/.pytool/Plugin/ImageValidation"
)
SHIM_PE_URL: Final = "https://github.com/rhboot/shim/blob/main/pe.c"
SBAT_URL: Final = "https://github.com/rhboot/shim/blob/main/SBAT.md"
SHIM_REVIEW_URL: Final = "https://github.com/rhboot/shim-review"
AUTHENTICODE_URL: Final = (
    "https://learn.microsoft.com/en-us/windows-hardware/drivers/install/authenticode"
)
DOCS_URL: Final = "https://github.com/fwtools/fwtools/blob/main/docs/fw-check.md"

SUBSYSTEM_NAMES: Final[dict[str, int]] = {
    "IMAGE_SUBSYSTEM_EFI_APPLICATION": 10,
    "IMAGE_SUBSYSTEM_EFI_BOOT_SERVICE_DRIVER": 11,
    "IMAGE_SUBSYSTEM_EFI_RUNTIME_DRIVER": 12,
    "IMAGE_SUBSYSTEM_EFI_ROM": 13,
}
# Project Mu's per-image-type profiles, told here by subsystem (Mu uses the INF MODULE_TYPE,
# which a built binary no longer carries).
IMAGE_TYPES: Final[dict[int, str]] = {10: "APP", 11: "DRIVER", 12: "RUNTIME_DRIVER"}
ARCH_NAMES: Final[dict[int, str]] = {0x8664: "X64", 0xAA64: "AA64", 0x14C: "IA32", 0x1C2: "ARM",
                                     0x1C4: "ARM", 0x5064: "RISCV64"}


class Violation(Record):
    """What a rule found wrong, and where (in a firmware engineer's terms)."""

    message: str
    location: str = ""
    offset: int | None = None


class NotApplicable(Exception):
    """Raised by a rule that cannot judge this input (e.g. no SbatLevel given)."""


class Context(Record):
    facts: PeFacts
    params: Mapping[str, Any]
    sbat_level: SbatLevel | None = None
    sbat_level_source: str = ""


RuleFunc = Callable[[Context], Iterator[Violation]]


class Rule(Record):
    id: str
    default_severity: Severity
    summary: str
    help: str
    help_uri: str
    params: Mapping[str, Any] = field(default_factory=dict)
    func: RuleFunc | None = None

    def run(self, ctx: Context) -> list[Violation]:
        assert self.func is not None
        return list(self.func(ctx))


RULES: dict[str, Rule] = {}

# Rules the engine itself emits (not selectable in profiles).
ENGINE_RULES: Final[dict[str, Rule]] = {
    "input-error": Rule(
        "input-error", "error", "The input could not be read or parsed as a PE image",
        "The file is unreadable or malformed; nothing else could be checked. The message "
        "names the structure and byte offset.", DOCS_URL),
    "waiver-expired": Rule(
        "waiver-expired", "warning", "A waiver for this file has expired",
        "A waiver's expiry date has passed, so it no longer waives the finding it names. "
        "Renew it with a new reason or fix the finding.", DOCS_URL),
}


def rule(
    rule_id: str, severity: Severity, summary: str, help_text: str, uri: str,
    **params: Any,
) -> Callable[[RuleFunc], RuleFunc]:
    def register(func: RuleFunc) -> RuleFunc:
        RULES[rule_id] = Rule(rule_id, severity, summary, help_text, uri, dict(params), func)
        return func

    return register


def image_type(facts: PeFacts) -> str:
    return IMAGE_TYPES.get(facts.image.subsystem, "DEFAULT")


def arch_name(facts: PeFacts) -> str:
    return ARCH_NAMES.get(facts.image.machine, f"{facts.image.machine:#x}")


def opt_offset(facts: PeFacts, field: str) -> int:
    """The file offset of the optional header field ``field``, for the image's form (PE32
    or PE32+: ImageBase is at 28 in one and 24 in the other)."""
    return facts.image.optional_field_offset(field)


def scn_offset(s: Section, field: str) -> int:
    """The file offset of a field of section ``s``'s IMAGE_SECTION_HEADER."""
    return s.header_offset + layout.SECTION_HEADER.offset(field)


# -- memory mitigations (Microsoft UEFI CA, Mu) -----------------------------------------


@rule("nx-compat", "error", "DllCharacteristics must include NX_COMPAT (0x0100)",
      "Microsoft's UEFI CA requires NX_COMPAT where implemented: the image attests it keeps "
      "W^X and works with non-executable allocations. Without it, W^X-enforcing firmware "
      "(Project Mu, OVMF with a strict NX policy, shim with MokPolicy NX) loads it in "
      "compatibility mode or refuses it.", MS_NX_URL)
def check_nx_compat(ctx: Context) -> Iterator[Violation]:
    img = ctx.facts.image
    if not img.nx_compat:
        yield Violation(
            f"NX_COMPAT is not set (DllCharacteristics {img.dll_characteristics:#06x}): "
            "W^X-enforcing firmware loads it in compatibility mode or refuses it",
            "optional header DllCharacteristics", opt_offset(ctx.facts, "DllCharacteristics"))


@rule("section-alignment", "error", "SectionAlignment must be page-sized",
      "Firmware can only give sections their own page permissions when SectionAlignment is "
      "4 KiB or a larger power of two (Microsoft UEFI CA rule 1). Parameters: min (default "
      "4096), power_of_two (default true), equals (a list of exact values, Project Mu's "
      "ALIGNMENT == checks; overrides min).", MS_NX_URL, min=layout.PAGE_SIZE,
      power_of_two=True, equals=None)
def check_section_alignment(ctx: Context) -> Iterator[Violation]:
    align = ctx.facts.image.section_alignment
    where = ("optional header SectionAlignment", opt_offset(ctx.facts, "SectionAlignment"))
    equals = ctx.params.get("equals")
    if equals:
        allowed = [int(v) for v in equals]
        if align not in allowed:
            want = " or ".join(f"{v:#x}" for v in allowed)
            yield Violation(f"SectionAlignment {align:#x} is not {want} "
                            f"(profile for {arch_name(ctx.facts)} {image_type(ctx.facts)})",
                            *where)
        return
    minimum = int(ctx.params.get("min", layout.PAGE_SIZE))
    pow2 = bool(ctx.params.get("power_of_two", True))
    if align < minimum or (pow2 and align & (align - 1)):
        yield Violation(
            f"SectionAlignment {align:#x} is not a power of two of at least {minimum:#x}: "
            "sections cannot get their own page permissions", *where)


@rule("wx-section", "error", "No section may be both writable and executable",
      "A section with IMAGE_SCN_MEM_WRITE and IMAGE_SCN_MEM_EXECUTE cannot be mapped W^X "
      "(Microsoft UEFI CA rule 2; Mu TestWriteExecuteFlags).", MS_NX_URL)
def check_wx(ctx: Context) -> Iterator[Violation]:
    for s in ctx.facts.image.sections:
        if s.write and s.execute:
            yield Violation(f"section {s.name} is both writable and executable "
                            f"(Characteristics {s.characteristics:#010x})",
                            f"section {s.name}", scn_offset(s, "Characteristics"))


@rule("code-data-mixed", "warning", "No section may be flagged as both code and data",
      "Project Mu's paging audit fails sections flagged CNT_CODE and also INITIALIZED_DATA or "
      "UNINITIALIZED_DATA: code pages become read-only and data written there faults.",
      MU_URL)
def check_code_data(ctx: Context) -> Iterator[Violation]:
    data = layout.SCN_CNT_INITIALIZED_DATA | layout.SCN_CNT_UNINITIALIZED_DATA
    for s in ctx.facts.image.sections:
        if s.contains_code and s.characteristics & data:
            yield Violation(f"section {s.name} is flagged as both code and data",
                            f"section {s.name}", scn_offset(s, "Characteristics"))


@rule("section-page-aligned", "error", "Every section must start on a page boundary",
      "Only a section that starts on a page boundary can get its own permissions. Checked "
      "when SectionAlignment is at least a page (otherwise section-alignment already "
      "fails). Parameter: page (default 4096).", MS_NX_URL, page=layout.PAGE_SIZE)
def check_page_aligned(ctx: Context) -> Iterator[Violation]:
    page = int(ctx.params.get("page", layout.PAGE_SIZE))
    if ctx.facts.image.section_alignment < page:
        return
    for s in ctx.facts.image.sections:
        if s.virtual_address % page:
            yield Violation(f"section {s.name} starts at RVA {s.virtual_address:#x}, not on "
                            "a page boundary", f"section {s.name}", scn_offset(s, "VirtualAddress"))


@rule("image-base", "error", "ImageBase must be the profile's value",
      "Project Mu's TestImageBase: ImageBase must equal IMAGE_BASE (default 0). Parameter: "
      "value.", MU_URL, value=0)
def check_image_base(ctx: Context) -> Iterator[Violation]:
    want = int(ctx.params.get("value", 0))
    base = ctx.facts.image.image_base
    if base != want:
        yield Violation(f"ImageBase {base:#x} is not {want:#x}", "optional header ImageBase",
                        opt_offset(ctx.facts, "ImageBase"))


def _subsystem_values(values: Any) -> set[int]:
    out: set[int] = set()
    for v in values or ():
        out.add(SUBSYSTEM_NAMES[v] if isinstance(v, str) else int(v))
    return out


@rule("subsystem-allowed", "error", "Subsystem must be one the profile allows",
      "Project Mu's TestSubsystemValue: Subsystem must be in ALLOWED_SUBSYSTEMS. Parameter: "
      "allowed (numbers or IMAGE_SUBSYSTEM_EFI_* names; default the EFI application and "
      "drivers).", MU_URL, allowed=[10, 11, 12])
def check_subsystem_allowed(ctx: Context) -> Iterator[Violation]:
    img = ctx.facts.image
    allowed = _subsystem_values(ctx.params.get("allowed"))
    if img.subsystem not in allowed:
        names = ", ".join(str(v) for v in sorted(allowed))
        yield Violation(f"subsystem {img.subsystem} ({img.subsystem_name}) is not allowed "
                        f"(allowed: {names})", "optional header Subsystem",
                        opt_offset(ctx.facts, "Subsystem"))


def check_efi_subsystem(ctx: Context) -> Iterator[Violation]:
    """The first test of subsystem-type (pe-inspect's efi-subsystem verdict)."""
    img = ctx.facts.image
    if img.subsystem not in layout.EFI_SUBSYSTEMS:
        yield Violation(f"subsystem {img.subsystem} ({img.subsystem_name}) is not an EFI "
                        "subsystem", "optional header Subsystem",
                        opt_offset(ctx.facts, "Subsystem"))


@rule("subsystem-type", "error", "Subsystem must match the image type",
      "An EFI binary must declare an EFI subsystem (10 application, 11 boot-service driver, "
      "12 runtime driver, 13 ROM); a Linux kernel's EFI stub must be an application; a "
      "runtime driver must have a SectionAlignment of at least runtime_alignment (64 KiB "
      "on AArch64, UEFI spec 2.10 section 2.3.6). Parameter: runtime_alignment.",
      MU_URL, runtime_alignment={"AA64": 0x10000})
def check_subsystem_type(ctx: Context) -> Iterator[Violation]:
    img = ctx.facts.image
    where = ("optional header Subsystem", opt_offset(ctx.facts, "Subsystem"))
    if img.subsystem not in layout.EFI_SUBSYSTEMS:
        yield from check_efi_subsystem(ctx)
        return
    if ctx.facts.kernel is not None and img.subsystem != 10:
        yield Violation(f"a kernel EFI stub with subsystem {img.subsystem} instead of 10 "
                        "(EFI application)", *where)
    if img.subsystem == 12:
        need = dict(ctx.params.get("runtime_alignment") or {}).get(arch_name(ctx.facts))
        if need and img.section_alignment < int(need):
            yield Violation(f"runtime driver with SectionAlignment {img.section_alignment:#x} "
                            f"below {int(need):#x} required on {arch_name(ctx.facts)}", *where)


# -- loader checks (shim, edk2) --------------------------------------------------------


@rule("relocations", "error", "The image must carry base relocations",
      "shim refuses images with RELOCS_STRIPPED or without a base-relocation directory; "
      "firmware can then load it only at its ImageBase.", SHIM_PE_URL)
def check_relocations(ctx: Context) -> Iterator[Violation]:
    if not ctx.facts.image.has_relocations:
        yield Violation("no base relocations (RELOCS_STRIPPED or an empty BASERELOC "
                        "directory): the image can only be loaded at its ImageBase",
                        "data directory BASERELOC")


@rule("sections-in-image", "error", "Every section must lie inside SizeOfImage",
      "A section extending past SizeOfImage is mapped outside the loader's allocation.",
      SHIM_PE_URL)
def check_sections_in_image(ctx: Context) -> Iterator[Violation]:
    img = ctx.facts.image
    for s in img.sections:
        end = s.virtual_address + s.memory_size
        if end > img.size_of_image:
            yield Violation(f"section {s.name} ends at RVA {end:#x}, past SizeOfImage "
                            f"{img.size_of_image:#x}", f"section {s.name}",
                            scn_offset(s, "VirtualSize"))


@rule("sections-overlap", "error", "Sections must not overlap each other or the headers",
      "shim rejects sections that overlap the headers; overlapping sections get conflicting "
      "page permissions.", SHIM_PE_URL)
def check_overlap(ctx: Context) -> Iterator[Violation]:
    img = ctx.facts.image
    ordered = sorted(img.sections, key=lambda s: (s.virtual_address, s.name))
    for s in ordered:
        if s.memory_size and s.virtual_address < img.size_of_headers:
            yield Violation(f"section {s.name} at RVA {s.virtual_address:#x} overlaps the "
                            f"headers (SizeOfHeaders {img.size_of_headers:#x})",
                            f"section {s.name}", scn_offset(s, "VirtualAddress"))
    for a, b in itertools.pairwise(ordered):
        if a.memory_size and a.virtual_address + a.memory_size > b.virtual_address:
            yield Violation(f"sections {a.name} [{a.virtual_address:#x}, "
                            f"{a.virtual_address + a.memory_size:#x}) and {b.name} "
                            f"(from {b.virtual_address:#x}) overlap", f"section {b.name}",
                            scn_offset(b, "VirtualAddress"))


@rule("headers-not-executable", "error", "The headers must not share a page with code",
      "Firmware maps the headers with the permissions of the page they share; an executable "
      "section starting in the headers' first page makes the headers executable (typical "
      "of SectionAlignment 0x20/0x200 images).", MS_NX_URL)
def check_headers(ctx: Context) -> Iterator[Violation]:
    img = ctx.facts.image
    page = layout.PAGE_SIZE
    headers_end = -(-max(img.size_of_headers, 1) // page) * page
    for s in img.sections:
        if s.execute and s.virtual_address < headers_end:
            yield Violation(f"executable section {s.name} starts at RVA "
                            f"{s.virtual_address:#x}, in the headers' page "
                            f"(up to {headers_end:#x})", f"section {s.name}",
                            scn_offset(s, "VirtualAddress"))


@rule("entry-point", "error", "The entry point must lie inside an executable section",
      "shim requires the entry point inside exactly one section; under W^X it must be in "
      "an executable one or the first instruction faults.", SHIM_PE_URL)
def check_entry(ctx: Context) -> Iterator[Violation]:
    img = ctx.facts.image
    entry = img.entry_point
    where = ("optional header AddressOfEntryPoint", opt_offset(ctx.facts, "AddressOfEntryPoint"))
    if entry == 0:
        yield Violation("AddressOfEntryPoint is 0", *where)
        return
    inside = [s for s in img.sections
              if s.virtual_address <= entry < s.virtual_address + s.memory_size]
    if not inside:
        yield Violation(f"entry point {entry:#x} is in no section", *where)
    elif not any(s.execute for s in inside):
        names = ", ".join(s.name for s in inside)
        yield Violation(f"entry point {entry:#x} is in non-executable section {names}", *where)


@rule("pe-anomaly", "warning", "The PE headers have anomalies",
      "Oddities that loaders tolerate but that signal a broken build (e.g. more sections "
      "than loaders accept).", SHIM_PE_URL)
def check_anomalies(ctx: Context) -> Iterator[Violation]:
    for a in ctx.facts.image.anomalies:
        yield Violation(a, "PE headers")


# -- SBAT (shim, shim-review) -----------------------------------------------------------


def _sbat(facts: PeFacts) -> tuple[Sbat | None, str | None, int]:
    for sect in facts.special:
        if sect.kind == "sbat":
            from fwtools.formats.sbat import Sbat

            decoded = sect.decoded if isinstance(sect.decoded, Sbat) else None
            return decoded, sect.error, sect.offset
    return None, None, 0


@rule("sbat-present", "error", "The image must carry a .sbat section",
      "shim 15.3 and later refuse to start an image without .sbat in Secure Boot mode. "
      "Kernels are skipped by default (skip_kernels), since GRUB verifies them through "
      "shim_lock, which does not require SBAT.", SBAT_URL, skip_kernels=True)
def check_sbat_present(ctx: Context) -> Iterator[Violation]:
    if ctx.params.get("skip_kernels", True) and ctx.facts.kernel is not None:
        raise NotApplicable("a Linux kernel (verified through shim_lock)")
    if ctx.facts.image.section(".sbat") is None:
        yield Violation("no .sbat section: shim 15.3 and later refuse to start it", "sections")


@rule("sbat-well-formed", "error", "The .sbat section must parse per SBAT.md",
      "Every row needs six non-empty fields, the first row is 'sbat,1,...', generations are "
      "decimal numbers.", SBAT_URL)
def check_sbat_format(ctx: Context) -> Iterator[Violation]:
    sbat, error, offset = _sbat(ctx.facts)
    if sbat is None and error is None:
        raise NotApplicable("no .sbat section")
    if error:
        yield Violation(error, "section .sbat", offset)
    elif sbat is not None:
        for w in sbat.warnings:
            yield Violation(w, "section .sbat", offset)
    if sbat is not None:
        if sbat.format_version is None:
            yield Violation("the first row is not 'sbat,1,SBAT Version,...'", "section .sbat",
                            offset)
        elif not sbat.components:
            yield Violation("no component rows after the 'sbat' row", "section .sbat", offset)


@rule("sbat-vendor-row", "error", "Each upstream SBAT row needs a vendor row",
      "shim-review requires a vendor-specific row (e.g. grub.debian) appended after every "
      "upstream component row (e.g. grub), so a vendor's own fixes can be revoked without "
      "revoking everyone's builds.", SHIM_REVIEW_URL)
def check_sbat_vendor(ctx: Context) -> Iterator[Violation]:
    sbat, _, offset = _sbat(ctx.facts)
    if sbat is None:
        raise NotApplicable("no .sbat section")
    names = [r.component for r in sbat.components]
    for row in sbat.components:
        if "." in row.component:
            continue
        if not any(n.startswith(row.component + ".") for n in names):
            yield Violation(f"upstream row {row.component},{row.generation} has no vendor row "
                            f"({row.component}.<vendor>)", f"section .sbat line {row.line}",
                            row.offset or offset)


@rule("sbat-revoked", "error", "No SBAT row may be revoked by the SbatLevel",
      "shim's verify_sbat_helper: for each .sbat row the first SbatLevel entry with the same "
      "component applies; a lower generation makes shim refuse the image "
      "(EFI_SECURITY_VIOLATION). Needs an SbatLevel (--sbat-level, --sbat-level-store, "
      "--sbat-level-shim or --sbat-level-history).", SBAT_URL)
def check_sbat_revoked(ctx: Context) -> Iterator[Violation]:
    level = ctx.sbat_level
    if level is None:
        raise NotApplicable("no SbatLevel given")
    sbat, _, offset = _sbat(ctx.facts)
    if sbat is None:
        raise NotApplicable("no .sbat section")
    minimums = level.generations
    for row in sbat.rows:
        need = minimums.get(row.component)
        if need is not None and row.generation < need:
            src = f" ({ctx.sbat_level_source})" if ctx.sbat_level_source else ""
            yield Violation(
                f"SbatLevel {level.datestamp}{src} entry {row.component},{need} revokes .sbat "
                f"row {row.component},{row.generation} (line {row.line})",
                f"section .sbat line {row.line}", row.offset or offset)


# -- Authenticode ---------------------------------------------------------------------


@rule("signed", "error", "The image must carry an Authenticode signature",
      "Secure Boot firmware only runs signed images (or images whose hash is in db).",
      AUTHENTICODE_URL)
def check_signed(ctx: Context) -> Iterator[Violation]:
    if not ctx.facts.signatures:
        yield Violation("the image is not signed", "certificate table")


@rule("digest-mismatch", "error", "The signed digest must match the image",
      "The Authenticode digest in the signature must equal the image's digest; otherwise the "
      "image was modified after signing.", AUTHENTICODE_URL)
def check_digest(ctx: Context) -> Iterator[Violation]:
    for sig in ctx.facts.signatures:
        if sig.digest_matches is False:
            yield Violation(f"signed {sig.digest_algorithm} digest does not match the image: "
                            "the image was modified after signing", f"signature {sig.index}",
                            sig.offset)


@rule("signature-invalid", "error", "The PKCS#7 signature must verify",
      "The SignerInfo signature must verify with the signer certificate's key, and the "
      "signature must parse.", AUTHENTICODE_URL)
def check_signature_valid(ctx: Context) -> Iterator[Violation]:
    yield from signature_errors(ctx)
    yield from invalid_signatures(ctx)


def signature_errors(ctx: Context) -> Iterator[Violation]:
    """Signatures that did not parse or check cleanly (pe-inspect's ``signature`` verdict)."""
    for sig in ctx.facts.signatures:
        if sig.error:
            yield Violation(sig.error, f"signature {sig.index}", sig.offset)


def invalid_signatures(ctx: Context) -> Iterator[Violation]:
    """Cleanly parsed signatures whose SignerInfo signature does not verify."""
    for sig in ctx.facts.signatures:
        if not sig.error and sig.signature_valid is False:
            yield Violation("the PKCS#7 signature does not verify with the signer's "
                            "certificate", f"signature {sig.index}", sig.offset)


@rule("trusted", "error", "The signature must chain to db and not be in dbx",
      "With --db (and --dbx) given, the image must be trusted as edk2's "
      "DxeImageVerificationLib decides: not revoked by dbx, signed by a chain to a db "
      "certificate or hashed in db.", AUTHENTICODE_URL)
def check_trusted(ctx: Context) -> Iterator[Violation]:
    v = ctx.facts.verification
    if v is None:
        raise NotApplicable("no --db trust anchors given")
    if v.status != "trusted":
        where = "trust anchors" if v.signature_index is None else f"signature {v.signature_index}"
        yield Violation(f"{v.status}: {v.reason}", where)


# -- boot chain (judged across the input set by fwtools.policy.chain_rule) ----------------


def _across_files(ctx: Context) -> Iterator[Violation]:
    raise NotApplicable("judged across the input set: every boot chain the inputs form")


RULES["boot-chain"] = Rule(
    "boot-chain", "error", "Every boot chain the inputs form must boot under W^X firmware",
    "The inputs are grouped into boot chains (shim -> grub -> kernel, systemd-boot -> "
    "kernel/UKI, per architecture) and each chain is replayed on the emulated firmware "
    "profiles in 'firmware' with Secure Boot as in 'secure_boot' (fw-check boot-chain). A "
    "chain that faults or is refused is reported against the stage responsible. "
    "Parameters: firmware (profile names or files; profiles of another architecture are "
    "skipped), secure_boot (list of booleans), max_chains.",
    "https://github.com/fwtools/fwtools/blob/main/docs/boot-chain.md",
    {"firmware": ["ovmf-strict", "armvirt-map"], "secure_boot": [False, True],
     "max_chains": 64},
    _across_files,
)
CHAIN_RULES: Final = frozenset({"boot-chain"})
