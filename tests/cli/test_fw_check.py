"""fw-check end to end: exit codes, every output format, SARIF validation, JUnit, CI files."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "testdata" / "policy"
SCHEMA = REPO / "testdata" / "schemas" / "sarif-schema-2.1.0.json"
FW_CHECK = [sys.executable, "-c", "from fwtools.cli.fw_check import main; main()"]


def run(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FW_CHECK, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def test_exit_codes() -> None:
    assert run("--policy", "uefi-ca", POLICY / "good.efi").returncode == 0
    assert run("--policy", "uefi-ca", POLICY / "bad-nx-compat.efi").returncode == 1
    # shim-review makes NX a warning: passes at --fail-on error, fails at warning.
    assert run("--policy", "shim-review", POLICY / "bad-nx-compat.efi").returncode == 0
    assert run("--policy", "shim-review", "--fail-on", "warning",
               POLICY / "bad-nx-compat.efi").returncode == 1
    assert run("--policy", "no-such", POLICY / "good.efi").returncode == 2
    assert run("--sbat-level", POLICY / "missing.txt", POLICY / "good.efi").returncode == 2


def test_fail_on_takes_info_as_note(tmp_path: Path) -> None:
    # A profile whose nx-compat finding is a note; "info", the lowest level's old name in
    # pe-inspect and store checks, is still accepted for it.
    profile = tmp_path / "notes.toml"
    profile.write_text('extends = "uefi-ca"\n[rules.nx-compat]\nseverity = "note"\n')
    image = POLICY / "bad-nx-compat.efi"
    assert run("--policy", profile, "--fail-on", "warning", image).returncode == 0
    assert run("--policy", profile, "--fail-on", "note", image).returncode == 1
    info = run("--policy", profile, "--fail-on", "info", "--json", image)
    assert info.returncode == 1
    assert json.loads(info.stdout)["summary"]["fail_on"] == "note"
    bad = run("--policy", profile, "--fail-on", "fatal", image)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "'fatal' is not one of" in bad.stderr


def test_unreadable_input_still_reports_the_rest(tmp_path: Path) -> None:
    bad = tmp_path / "bad.efi"
    bad.write_bytes(b"not a PE")
    p = run("--policy", "uefi-ca", "--json", bad, POLICY / "bad-nx-compat.efi")
    assert p.returncode == 2
    assert p.stderr.startswith("error: ") and "Traceback" not in p.stderr
    doc = json.loads(p.stdout)
    assert [r["rule"] for r in doc["results"]] == ["input-error", "nx-compat"]


def test_json_contract() -> None:
    p = run("--policy", "strict", "--json", "--sbat-level-history", "latest", POLICY)
    assert p.returncode == 1
    doc = json.loads(p.stdout)
    assert doc["schema"] == "fwtools.fw-check/1"
    assert doc["profile"]["name"] == "strict"
    assert doc["sbat_level"]["datestamp"] == "2025051000"
    for r in doc["results"]:
        assert set(r) >= {"path", "rule", "severity", "message", "location"}
        assert r["severity"] in ("error", "warning", "note")
    paths = [f["path"] for f in doc["files"]]
    assert paths == sorted(paths) and len(paths) == len(list(POLICY.glob("*.efi")))
    revoked = [r for r in doc["results"] if r["rule"] == "sbat-revoked"]
    assert [Path(r["path"]).name for r in revoked] == ["old-grub.efi"]
    assert "SbatLevel 2025051000" in revoked[0]["message"]
    s = doc["summary"]
    assert s["errors"] == sum(r["severity"] == "error" for r in doc["results"])
    assert s["exit_code"] == 1 and s["passed"] is False


def test_deterministic_and_parallel_same() -> None:
    a = run("--policy", "strict", "--json", "-j", "1", POLICY)
    b = run("--policy", "strict", "--json", "-j", "2", POLICY)
    assert a.stdout == b.stdout


def test_sarif_validates(tmp_path: Path) -> None:
    import jsonschema
    out = tmp_path / "out.sarif"
    p = run("--policy", "strict", "--sarif", "-o", out, "--waivers", POLICY / "waivers.toml",
            POLICY)
    assert p.returncode == 1 and p.stdout == ""
    doc = json.loads(out.read_text())
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(doc, schema)
    run_ = doc["runs"][0]
    rules = run_["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert "nx-compat" in ids and "waiver-expired" in ids
    for r in rules:
        assert r["shortDescription"]["text"] and r["fullDescription"]["text"]
        assert r["help"]["text"] and r["helpUri"].startswith("https://")
        assert r["defaultConfiguration"]["level"] in ("error", "warning", "note")
    for res in run_["results"]:
        loc = res["locations"][0]["physicalLocation"]["artifactLocation"]
        assert loc["uri"].startswith("testdata/policy/")  # relative to the cwd
        assert ids[res["ruleIndex"]] == res["ruleId"]
    suppressed = [r for r in run_["results"] if r.get("suppressions")]
    assert [r["ruleId"] for r in suppressed] == ["nx-compat"]


def test_sarif_root(tmp_path: Path) -> None:
    p = run("--policy", "uefi-ca", "--sarif", "--root", POLICY, POLICY / "bad-wx-section.efi")
    (res,) = json.loads(p.stdout)["runs"][0]["results"]
    assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "bad-wx-section.efi")


def test_junit_parses() -> None:
    p = run("--policy", "uefi-ca", "--junit", POLICY / "good.efi", POLICY / "bad-wx-section.efi")
    assert p.returncode == 1
    root = ET.fromstring(p.stdout)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 2
    good, bad = suites
    assert [c.get("name") for c in good.findall("testcase")] == [
        "section-alignment", "wx-section", "nx-compat"]
    assert good.get("failures") == "0" and bad.get("failures") == "1"
    (failed,) = [c for c in bad.findall("testcase") if c.find("failure") is not None]
    assert failed.get("name") == "wx-section"
    assert root.get("tests") == "6" and root.get("failures") == "1"


def test_github_annotations() -> None:
    p = run("--policy", "uefi-ca", "--github", POLICY / "bad-wx-section.efi")
    (line,) = p.stdout.splitlines()
    assert line.startswith("::error file=testdata/policy/bad-wx-section.efi,title=wx-section")
    assert "::section .text is both writable and executable" in line


def test_waivers_cli() -> None:
    args: list[str | Path] = ["--policy", "uefi-ca", "--waivers", POLICY / "waivers.toml",
                              "--today", "2026-01-01"]
    assert run(*args, POLICY / "bad-nx-compat.efi").returncode == 0
    p = run(*args, "--json", POLICY / "bad-wx-section.efi")
    assert p.returncode == 1
    assert {r["rule"] for r in json.loads(p.stdout)["results"]} == {"wx-section",
                                                                    "waiver-expired"}


def test_text_output() -> None:
    p = run("--policy", "uefi-ca", POLICY / "bad-wx-section.efi", POLICY / "good.efi")
    assert "FAIL" in p.stdout and "wx-section" in p.stdout and "failed" in p.stdout


def test_sbat_level_sources(tmp_path: Path) -> None:
    store = tmp_path / "vars.fd"
    subprocess.run([sys.executable, "-c", "from fwtools.cli.fw_vars import main; main()",
                    "sbat-level", str(REPO / "testdata" / "varstore" / "ftw-completed.fd"),
                    "--file", str(POLICY / "sbatlevel-grub4.txt"), "-o", str(store)],
                   check=True, capture_output=True)
    options: list[list[str | Path]] = [
        ["--sbat-level-store", store], ["--sbat-level", POLICY / "sbatlevel-grub4.txt"],
        ["--sbat-level-history", "2024-06-01"]]
    for opt in options:
        p = run("--policy", "shim-review", "--json", *opt, POLICY / "old-grub.efi")
        assert p.returncode == 1, opt
        (r,) = json.loads(p.stdout)["results"]
        assert "entry grub,4 revokes .sbat row grub,3" in r["message"]
    assert run("--sbat-level-history", "2024-06-01", "--sbat-level",
               POLICY / "sbatlevel-grub4.txt", POLICY / "good.efi").returncode == 2


def test_docs_ci_examples() -> None:
    """docs/fw-check.md shows a GitHub Actions job, a GitLab CI job and a pre-commit hook,
    and the hook is also in .pre-commit-hooks.yaml (no YAML parser here: checked as text)."""
    text = (REPO / "docs" / "fw-check.md").read_text()
    assert "github/codeql-action/upload-sarif" in text and "fw-check --policy" in text
    assert "--sarif" in text and "junit:" in text and "--junit" in text
    assert "- id: fw-check" in text
    hooks = (REPO / ".pre-commit-hooks.yaml").read_text()
    assert "- id: fw-check" in hooks and "entry: fw-check" in hooks
    assert hooks.strip() in text


def test_output_file_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    p = run("--policy", "uefi-ca", "--json", "-o", out, POLICY / "good.efi")
    assert p.returncode == 0 and p.stdout == ""
    assert json.loads(out.read_text())["summary"]["passed"] is True
