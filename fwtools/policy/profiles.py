"""Profiles: which rules of :mod:`fwtools.policy.checks` apply, how severe, with what parameters.

A profile is a TOML file (``policies/<name>.toml`` for the shipped ones)::

    name = "my-distro"
    description = "..."
    extends = "uefi-ca"            # a shipped name, or a path relative to this file

    [rules.nx-compat]
    severity = "warning"           # error | warning | note | off
    rationale = "why this rule is in the profile"
    reference = "https://..."
    [rules.section-alignment.params]
    min = 4096
    [rules.section-alignment.by_type.RUNTIME_DRIVER]   # or AA64.RUNTIME_DRIVER
    equals = [0x10000]

``by_type`` parameter overrides apply by image type (APP, DRIVER, RUNTIME_DRIVER, DEFAULT, told
by subsystem), optionally qualified by architecture (X64, AA64, IA32, ARM). A profile that
extends another inherits all its rules; a rule table in the child replaces the keys it sets.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final, Literal

from fwtools._base import severity as sev
from fwtools._base.record import Record, field
from fwtools._base.tomlfile import policies_dir, read_toml, shipped_file, shipped_names, table
from fwtools.errors import UsageError
from fwtools.policy.checks import RULES

RuleSeverity = sev.Severity | Literal["off"]
SEVERITIES: Final[tuple[RuleSeverity, ...]] = (*sev.SEVERITIES, "off")
MAX_EXTENDS: Final = 8


def shipped_profiles() -> list[str]:
    return shipped_names(policies_dir(), exclude=("sbatlevel-history",))


class RuleConfig(Record):
    id: str
    severity: RuleSeverity
    params: dict[str, Any] = field(default_factory=dict)
    by_type: dict[str, dict[str, Any]] = field(default_factory=dict)
    rationale: str = ""
    reference: str = ""

    @property
    def level(self) -> sev.Severity:
        """The severity of the rule's results (the rule is active: not ``off``)."""
        if self.severity == "off":
            raise ValueError(f"rule {self.id} is off")
        return self.severity

    def params_for(self, arch: str, image_type: str) -> dict[str, Any]:
        out = dict(self.params)
        out.update(self.by_type.get(image_type, {}))
        out.update(self.by_type.get(f"{arch}.{image_type}", {}))
        return out


class Profile(Record):
    name: str
    description: str
    source: str
    rules: dict[str, RuleConfig]
    chain: tuple[str, ...] = ()

    @property
    def active(self) -> list[RuleConfig]:
        return [r for r in self.rules.values() if r.severity != "off"]

    def needs_signature_check(self) -> bool:
        return any(r.id in ("signature-invalid", "trusted") for r in self.active)


def _resolve(ref: str, relative_to: Path | None) -> Path:
    if ref.endswith(".toml") or os.sep in ref or "/" in ref:
        p = Path(ref)
        try:
            if not p.is_absolute() and relative_to is not None and not p.exists():
                p = relative_to / p
        except OSError as exc:  # e.g. ENAMETOOLONG for a hostile 'extends'
            where = "extends" if relative_to is not None else "profile"
            raise UsageError(f"{where} {ref[:60]!r}...: {exc.strerror or exc}") from None
        return p
    return Path(shipped_file(policies_dir(), ref, "profile", shipped_profiles()))


def load_profile(ref: str) -> Profile:
    """A shipped profile by name, or a profile file; raises UsageError when invalid."""
    return _load(_resolve(ref, None), depth=0)


def _load(path: Path, depth: int) -> Profile:
    if depth > MAX_EXTENDS:
        raise UsageError(f"{path}: profiles extend each other more than {MAX_EXTENDS} deep")
    data = read_toml(path, "profile")
    if not data.get("rules") and not data.get("extends"):
        raise UsageError(f"profile {path}: defines no rules (and extends no profile)")
    base: dict[str, RuleConfig] = {}
    chain: tuple[str, ...] = ()
    parent_ref = data.get("extends")
    if parent_ref is not None:
        if not isinstance(parent_ref, str):
            raise UsageError(f"{path}: extends must be a profile name or file")
        try:
            parent_path = _resolve(parent_ref, path.parent)
        except UsageError as exc:
            raise exc.with_path(str(path)) from None
        parent = _load(parent_path, depth + 1)
        base = dict(parent.rules)
        chain = (*parent.chain, parent.name)
    rules = data.get("rules", {})
    if not isinstance(rules, dict):
        raise UsageError(f"{path}: [rules] must be a table")
    for rule_id, cfg in rules.items():
        if rule_id not in RULES:
            raise UsageError(f"{path}: unknown rule {rule_id!r} "
                             f"(known: {', '.join(sorted(RULES))})")
        if not isinstance(cfg, dict):
            raise UsageError(f"{path}: rules.{rule_id} must be a table")
        unknown = set(cfg) - {"severity", "params", "by_type", "rationale", "reference"}
        if unknown:
            raise UsageError(f"{path}: rules.{rule_id}: unknown keys {sorted(unknown)}")
        prev = base.get(rule_id)
        lib = RULES[rule_id]
        named = cfg.get("severity")
        severity: RuleSeverity
        if named is None:
            severity = prev.severity if prev else lib.default_severity
        elif isinstance(named, str) and named.strip().lower() == "off":
            severity = "off"
        else:
            # The one scale (fwtools._base.severity); "info" is read as "note".
            level = sev.parse_severity(named) if isinstance(named, str) else None
            if level is None:
                raise UsageError(f"{path}: rules.{rule_id}: severity {named!r} is not one of "
                                 f"{', '.join(SEVERITIES)}")
            severity = level
        params = dict(lib.params)
        if prev:
            params.update(prev.params)
        where = f"profile {path}: rules.{rule_id}"
        params.update(table(cfg.get("params", {}), f"{where}.params"))
        by_type = {k: dict(v) for k, v in (prev.by_type if prev else {}).items()}
        for k, v in table(cfg.get("by_type", {}), f"{where}.by_type").items():
            by_type.setdefault(k, {}).update(table(v, f"{where}.by_type.{k}"))
        base[rule_id] = RuleConfig(
            rule_id, severity, params, by_type,
            cfg.get("rationale", prev.rationale if prev else ""),
            cfg.get("reference", prev.reference if prev else lib.help_uri),
        )
    name = data.get("name", path.stem)
    return Profile(str(name), str(data.get("description", "")), str(path), base, chain)
