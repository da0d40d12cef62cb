"""fw-vars audit --sarif: the findings as SARIF 2.1.0, in the style of report/sarif.py (one
rule per finding code, one result per finding, the store as the artifact)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from fwtools import __version__
from fwtools.report.sarif import INFO_URI, SARIF_SCHEMA, artifact_uri

if TYPE_CHECKING:
    from fwtools.fleet.audit import StoreAudit

RULES: Final[dict[str, str]] = {
    "store-unreadable": "The store could not be read or holds no variable store",
    "malformed-variable": "A Secure Boot variable is not a valid signature database",
    "malformed-certificate": "A certificate entry is not X.509",
    "nvram-format-mismatch": "libvirt declares another NVRAM format than the file has",
    "nvram-not-created": "The VM has not started yet; its template was audited",
    "blank-template": "An unformatted template, audited as the empty store it becomes",
    "setup-mode": "No PK: Secure Boot is off",
    "secure-boot-disabled": "SecureBootEnable is 0",
    "audit-mode": "AuditMode: nothing is refused",
    "test-key-pk": "The PK is a test key whose private key is public",
    "uefi-ca-2023-missing": "Microsoft UEFI CA 2023 is not trusted",
    "windows-uefi-ca-2023-missing": "Windows UEFI CA 2023 is not trusted",
    "option-rom-ca-2023-missing": "Microsoft Option ROM UEFI CA 2023 is not trusted",
    "kek-2023-missing": "Microsoft KEK 2K CA 2023 is not in KEK",
    "ca-revoked": "A Microsoft CA in db/KEK is revoked by dbx",
    "certificate-expired": "Enrolled certificates have expired",
    "dbx-outdated": "dbx lacks Microsoft's published revocations",
    "dbx-too-large": "The firmware build cannot hold the latest dbx",
    "sbat-level-missing": "No SbatLevel variable",
    "sbat-level-outdated": "SbatLevel older than the latest published",
}


def audit_sarif(audits: Sequence[StoreAudit], root: str) -> dict[str, Any]:
    used: list[str] = []
    for a in audits:
        for f in a.findings:
            if f.code not in used:
                used.append(f.code)
    index = {code: i for i, code in enumerate(used)}
    rules = [{
        "id": code,
        "name": "".join(p.capitalize() for p in code.split("-")),
        "shortDescription": {"text": RULES.get(code, code)},
        "helpUri": f"{INFO_URI}/blob/main/docs/ca-2023.md",
        "properties": {"tags": ["security", "uefi", "secure-boot"]},
    } for code in used]
    results = []
    for a in audits:
        uri, relative = artifact_uri(a.path, root)
        artifact: dict[str, Any] = {"uri": uri}
        if relative:
            artifact["uriBaseId"] = "%SRCROOT%"
        for f in a.findings:
            where = f"VM {a.vm}: " if a.vm else ""
            results.append({
                "ruleId": f.code,
                "ruleIndex": index[f.code],
                "level": f.severity,
                "message": {"text": where + f.message},
                "locations": [{"physicalLocation": {"artifactLocation": artifact,
                                                    "region": {"startLine": 1}}}],
                "partialFingerprints": {"fwtools/v1": f"{f.code}:{uri}"},
            })
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "fw-vars audit", "organization": "fwtools", "version": __version__,
                "semanticVersion": __version__, "informationUri": INFO_URI, "rules": rules,
            }},
            "originalUriBaseIds": {
                "%SRCROOT%": {"uri": Path(os.path.abspath(root)).as_uri() + "/"},
            },
            "automationDetails": {"id": "fw-vars-audit/"},
            "results": results,
        }],
    }
