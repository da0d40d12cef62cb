"""fw-check --junit: JUnit XML, one testsuite per file and one testcase per rule checked.

A finding at or above --fail-on is a <failure>; findings below it are listed in
<system-out>; a rule that did not apply is <skipped>; an unreadable file is an <error>.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from fwtools._base.severity import at_least

if TYPE_CHECKING:
    from fwtools.policy.results import FileReport, Result


def junit_xml(reports: list[FileReport], profile_name: str, fail_on: str) -> bytes:
    root = ET.Element("testsuites", name=f"fw-check {profile_name}")
    total = failures = errors = skipped = 0
    for rep in reports:
        suite = ET.SubElement(root, "testsuite", name=rep.path)
        s_tests = s_fail = s_err = s_skip = 0
        if rep.error:
            case = ET.SubElement(suite, "testcase", classname=rep.path, name="input-error")
            ET.SubElement(case, "error", message=rep.error, type="input-error").text = rep.error
            s_tests, s_err = 1, 1
        by_rule: dict[str, list[Result]] = {}
        for r in rep.results:
            by_rule.setdefault(r.rule, []).append(r)
        names = [*rep.checked, *[r for r in by_rule if r not in rep.checked
                                 and r != "input-error"]]
        for rid in names:
            case = ET.SubElement(suite, "testcase", classname=rep.path, name=rid)
            s_tests += 1
            active = [r for r in by_rule.get(rid, []) if r.waived is None]
            failing = [r for r in active if at_least(r.severity, fail_on)]
            if failing:
                s_fail += 1
                text = "\n".join(f"{r.severity}: {r.message} [{r.location}]" for r in failing)
                ET.SubElement(case, "failure", message=failing[0].message,
                              type=failing[0].severity).text = text
            out = [f"{r.severity}: {r.message}" for r in active if r not in failing]
            out += [f"waived ({r.waived.reason}): {r.message}"
                    for r in by_rule.get(rid, []) if r.waived is not None]
            if out:
                ET.SubElement(case, "system-out").text = "\n".join(out)
        for rid, why in rep.skipped.items():
            case = ET.SubElement(suite, "testcase", classname=rep.path, name=rid)
            ET.SubElement(case, "skipped", message=why)
            s_tests += 1
            s_skip += 1
        suite.set("tests", str(s_tests))
        suite.set("failures", str(s_fail))
        suite.set("errors", str(s_err))
        suite.set("skipped", str(s_skip))
        total, failures = total + s_tests, failures + s_fail
        errors, skipped = errors + s_err, skipped + s_skip
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.set("skipped", str(skipped))
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"
