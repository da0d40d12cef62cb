"""fw-check --json: one ``fwtools.fw-check/1`` document (results[], summary)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fwtools.report.envelope import document

if TYPE_CHECKING:
    from fwtools.policy.profiles import Profile
    from fwtools.policy.results import FileReport, Result

SCHEMA = "fwtools.fw-check/1"


def result_json(r: Result) -> dict[str, Any]:
    out: dict[str, Any] = {
        "path": r.path, "rule": r.rule, "severity": r.severity, "message": r.message,
        "location": r.location, "offset": r.offset,
    }
    if r.waived is not None:
        out["waiver"] = {
            "reason": r.waived.reason,
            "expires": r.waived.expires.isoformat() if r.waived.expires else None,
        }
    return out


def check_document(
    reports: list[FileReport], profile: Profile, summary: dict[str, Any],
    sbat_level: dict[str, Any] | None = None,
) -> dict[str, Any]:
    files = [
        {"path": rep.path, "error": rep.error, "checked": rep.checked, "skipped": rep.skipped}
        for rep in reports
    ]
    doc = document(SCHEMA, files, summary)
    doc["profile"] = {
        "name": profile.name, "source": profile.source, "extends": list(profile.chain),
        "rules": {
            r.id: {"severity": r.severity, "params": r.params, "reference": r.reference}
            for r in profile.active
        },
    }
    doc["sbat_level"] = sbat_level
    doc["results"] = [result_json(r) for rep in reports for r in rep.results
                      if r.waived is None]
    doc["waived"] = [result_json(r) for rep in reports for r in rep.results
                     if r.waived is not None]
    return doc
