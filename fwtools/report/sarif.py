"""fw-check --sarif: SARIF 2.1.0 as GitHub code scanning accepts it.

tool.driver.rules carry id, shortDescription, fullDescription, help, helpUri and
defaultConfiguration.level; results carry ruleId, ruleIndex, level, message and a
physicalLocation whose artifactLocation.uri is relative to ``root`` (%SRCROOT%). Waived
results are kept with an external suppression and the waiver's reason.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fwtools import __version__

if TYPE_CHECKING:
    from fwtools.policy.profiles import Profile
    from fwtools.policy.results import FileReport

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/fwtools/fwtools"


def artifact_uri(path: str, root: str) -> tuple[str, bool]:
    """(uri, relative?): relative POSIX path under ``root``, else an absolute file URI."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    if not rel.startswith(".."):
        return quote(PurePath(rel).as_posix()), True
    return Path(os.path.abspath(path)).as_uri(), False


def sarif_document(reports: list[FileReport], profile: Profile, root: str) -> dict[str, Any]:
    from fwtools.policy.engine import rule_info

    used = [c.id for c in profile.active]
    for rep in reports:
        for r in rep.results:
            if r.rule not in used:
                used.append(r.rule)
    severities = {c.id: c.severity for c in profile.active}
    rules = []
    for rid in used:
        info = rule_info(rid)
        cfg = profile.rules.get(rid)
        full = info.help + (f" Profile {profile.name}: {cfg.rationale}" if cfg and
                            cfg.rationale else "")
        rules.append({
            "id": rid,
            "name": "".join(p.capitalize() for p in rid.split("-")),
            "shortDescription": {"text": info.summary},
            "fullDescription": {"text": full},
            "help": {"text": full, "markdown": f"**{info.summary}**\n\n{full}\n\n"
                     f"Reference: {(cfg.reference if cfg else '') or info.help_uri}"},
            "helpUri": (cfg.reference if cfg and cfg.reference else info.help_uri),
            "defaultConfiguration": {"level": severities.get(rid, info.default_severity)},
            "properties": {"tags": ["security", "uefi"]},
        })
    index = {rid: i for i, rid in enumerate(used)}
    results = []
    for rep in reports:
        for r in rep.results:
            uri, relative = artifact_uri(r.path, root)
            artifact: dict[str, Any] = {"uri": uri}
            if relative:
                artifact["uriBaseId"] = "%SRCROOT%"
            text = r.message + (f" [{r.location}]" if r.location else "")
            res: dict[str, Any] = {
                "ruleId": r.rule,
                "ruleIndex": index[r.rule],
                "level": r.severity,
                "message": {"text": text},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": artifact,
                        # Binaries have no lines; GitHub needs a region, so line 1.
                        "region": {"startLine": 1},
                    },
                    "logicalLocations": [{"name": r.location or "image",
                                          "kind": "member"}],
                }],
                "partialFingerprints": {"fwtools/v1": f"{r.rule}:{uri}:{r.location}"},
            }
            if r.offset is not None:
                res["properties"] = {"fileOffset": r.offset}
            if r.waived is not None:
                res["suppressions"] = [{"kind": "external", "justification": r.waived.reason}]
            results.append(res)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "fw-check", "organization": "fwtools", "version": __version__,
                "semanticVersion": __version__, "informationUri": INFO_URI, "rules": rules,
            }},
            "originalUriBaseIds": {
                "%SRCROOT%": {"uri": Path(os.path.abspath(root)).as_uri() + "/"},
            },
            "automationDetails": {"id": f"fw-check/{profile.name}/"},
            "results": results,
            "properties": {"profile": profile.name},
        }],
    }
