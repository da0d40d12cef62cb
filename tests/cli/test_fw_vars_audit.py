"""fw-vars audit end to end: JSON against docs/schemas/fw-vars-audit-1.schema.json, SARIF
against the SARIF 2.1.0 schema, exit codes (--fail-on, usage), text rows, the worker pool."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Final

import jsonschema
from click.testing import CliRunner
from fleet.fleet_testlib import store_2011, update_2023

from fwtools.cli.fw_vars import cli

REPO: Final = Path(__file__).resolve().parents[2]
SCHEMA: Final = json.loads((REPO / "docs/schemas/fw-vars-audit-1.schema.json").read_text())
SARIF: Final = json.loads((REPO / "testdata/schemas/sarif-schema-2.1.0.json").read_text())
TRUST_KEYS: Final = ["kek-2011", "kek-2023", "windows-pca-2011", "uefi-ca-2011",
                     "windows-uefi-ca-2023", "uefi-ca-2023", "option-rom-ca-2023"]


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["audit", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def audit_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    code, out, _ = run("--json", *args)
    doc: dict[str, Any] = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    return code, doc


def fleet(tmp_path: Path) -> tuple[Path, Path]:
    old = store_2011(tmp_path)
    new = update_2023(old, tmp_path / "new_VARS.fd")
    (tmp_path / "bad_VARS.fd").write_bytes(b"junk")
    return old, new


def test_json_document(tmp_path: Path) -> None:
    old, new = fleet(tmp_path)
    code, doc = audit_json(tmp_path)
    assert code == 1  # the 2011-only store has errors
    assert doc["schema"] == "fwtools.fw-vars.audit/1"
    stores = {Path(s["path"]).name: s for s in doc["stores"]}
    assert set(stores) == {"bad_VARS.fd", old.name, new.name}
    bad = stores["bad_VARS.fd"]
    assert bad["error"] and bad["trusts"] is None and bad["findings"][0]["severity"] == "error"
    assert list(stores[old.name]["trusts"]) == TRUST_KEYS
    assert stores[new.name]["trusts"] == dict.fromkeys(TRUST_KEYS, True)
    assert stores[old.name]["vm"] is None and stores[old.name]["format"] == "edk2-raw"
    assert doc["summary"]["stores"] == 3 and doc["summary"]["errors"] == 1


def test_fail_on(tmp_path: Path) -> None:
    new = update_2023(store_2011(tmp_path), tmp_path / "new_VARS.fd")
    code, doc = audit_json(new)
    severities = {f["severity"] for f in doc["stores"][0]["findings"]}
    assert "error" not in severities and "warning" in severities  # dbx is still outdated
    assert code == 0
    assert run("--fail-on", "warning", new)[0] == 1
    assert run("--fail-on", "info", new)[0] == 1  # info reads as note


def test_usage_errors(tmp_path: Path) -> None:
    code, _, err = run()
    assert code == 2 and err.startswith("error:")
    code, _, err = run("--fail-on", "fatal", tmp_path)
    assert code == 2 and "--fail-on" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(empty)
    assert code == 2 and "no variable stores" in err


def test_text_rows_and_details(tmp_path: Path) -> None:
    old, _ = fleet(tmp_path)
    code, out, _ = run("--no-color", tmp_path)
    assert code == 1
    lines = out.splitlines()
    assert "store" in lines[0] and "findings" in lines[0]
    assert len(lines) == 4  # header + one row per store
    row = next(line for line in lines if old.name in line)
    assert "PCA11 UEFI11" in row and "2 error" in row
    code, out, _ = run("--no-color", "-v", old)
    assert "uefi-ca-2023-missing" in out and "will be refused" in out
    assert "update (owner) owner-edit" in out


def test_domain_xml_names_the_vm(tmp_path: Path) -> None:
    store = store_2011(tmp_path, "db1_VARS.fd")
    xml = tmp_path / "db1.xml"
    xml.write_text(f"<domain><name>db1</name><os><loader>/x</loader>"
                   f"<nvram format='raw'>{store}</nvram></os></domain>")
    _, doc = audit_json(xml)
    assert [s["vm"] for s in doc["stores"]] == ["db1"]
    _, out, _ = run("--no-color", xml)
    assert out.splitlines()[1].startswith("db1 ")


def test_sarif(tmp_path: Path) -> None:
    old = store_2011(tmp_path)
    sarif = tmp_path / "audit.sarif"
    run("--json", "--sarif", sarif, old)
    doc = json.loads(sarif.read_text())
    jsonschema.validate(doc, SARIF)
    results = doc["runs"][0]["results"]
    assert {"uefi-ca-2023-missing", "kek-2023-missing"} <= {r["ruleId"] for r in results}


def test_many_stores_in_a_pool(tmp_path: Path) -> None:
    old = store_2011(tmp_path)
    many = tmp_path / "many"
    many.mkdir()
    for i in range(20):
        shutil.copyfile(old, many / f"vm{i:02d}_VARS.fd")
    code, doc = audit_json("--jobs", "2", many)
    assert code == 1
    assert [Path(s["path"]).name for s in doc["stores"]] == [f"vm{i:02d}_VARS.fd"
                                                             for i in range(20)]
    assert all(s["trusts"]["uefi-ca-2011"] for s in doc["stores"])


FAKE_VIRSH = """#!/bin/sh
# A stand-in for virsh: two UEFI domains (one running) and one BIOS domain. fwtools asks for
# all domains (list --all --name) and the active ones (list --name), in the C locale.
[ "$LC_ALL" = C ] || { echo "not in the C locale" >&2; exit 1; }
shift 2  # -c URI
case "$1 $2" in
  "list --all") printf 'web\\ndb\\nold\\n\\n' ;;
  "list --name") printf 'web\\n\\n' ;;
  dumpxml*)
    if [ "$2" = old ]; then echo "<domain><name>old</name><os><type>hvm</type></os></domain>";
    else echo "<domain><name>$2</name><os><type arch='x86_64'>hvm</type><loader>/c</loader>\\
<nvram format='raw'>STORES/$2_VARS.fd</nvram></os></domain>"; fi ;;
  *) echo "unexpected $*" >&2; exit 1 ;;
esac
"""


def test_libvirt_uri_through_virsh(tmp_path: Path, monkeypatch: Any) -> None:
    stores = tmp_path / "nvram"
    stores.mkdir()
    store_2011(stores, "web_VARS.fd")
    update_2023(store_2011(stores, "old2011.fd"), stores / "db_VARS.fd")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    virsh = bindir / "virsh"
    virsh.write_text(FAKE_VIRSH.replace("STORES", str(stores)))
    virsh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    code, doc = audit_json("--libvirt", "qemu:///system")
    assert code == 1
    assert [(s["vm"], s["running"]) for s in doc["stores"]] == [("web", True), ("db", False)]
    assert doc["stores"][1]["trusts"]["uefi-ca-2023"] is True
    assert doc["stores"][0]["dbx"]["architecture_from"].startswith("the domain")


def test_libvirt_without_virsh(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = run("--libvirt", "qemu:///system")
    assert code == 2 and "virsh" in err


def test_debian_corpus_through_the_command(corpus: Any, tmp_path: Path) -> None:
    """The Debian AAVMF directories of both suites (bookworm's all-zero AAVMF_VARS.fd among
    them), qcow2 copies beside: every store a row, the zero file the empty store it becomes."""
    bookworm = corpus.aavmf("bookworm", "AAVMF_VARS.fd").parent
    trixie = corpus.ovmf("trixie", "OVMF_VARS_4M.ms.fd")
    fw_vars_convert = CliRunner().invoke(cli, ["convert", str(trixie), str(tmp_path / "t.qcow2")])
    assert fw_vars_convert.exit_code == 0
    code, doc = audit_json(bookworm, tmp_path / "t.qcow2")
    rows = {Path(s["path"]).name: s for s in doc["stores"]}
    assert set(rows) == {"AAVMF_VARS.fd", "AAVMF_VARS.ms.fd", "AAVMF_VARS.snakeoil.fd", "t.qcow2"}
    blank = rows["AAVMF_VARS.fd"]
    assert blank["error"] is None and blank["secure_boot"]["mode"] == "setup"
    assert [f["code"] for f in blank["findings"]] == ["blank-template", "setup-mode"]
    assert rows["t.qcow2"]["format"] == "qcow2" and rows["t.qcow2"]["pk"]["owner"] == "distribution"
    assert rows["AAVMF_VARS.ms.fd"]["dbx"]["architecture"] == "aarch64"
    assert code == 1


def test_progress_bar_counts_stores(tmp_path: Path, monkeypatch: Any) -> None:
    # The bar over many stores had no total (an indeterminate pulse): audit and update give it
    # the number of stores, so it shows done/total (tests/report/test_text_progress.py shows
    # the rendering), and only in text mode.
    from fwtools.report import text_progress

    seen: list[tuple[str, bool, int | None]] = []
    real = text_progress.progress

    def spy(items: Any, description: str, enabled: bool, *, total: int | None = None) -> Any:
        seen.append((description, enabled, total))
        return real(items, description, enabled, total=total)

    monkeypatch.setattr(text_progress, "progress", spy)
    old, new = fleet(tmp_path)
    run(tmp_path)
    run("--json", tmp_path)
    result = CliRunner().invoke(cli, ["update", "--ca-2023", "--dry-run", str(old), str(new)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert seen == [("auditing stores", True, 3), ("auditing stores", False, 3),
                    ("updating stores", True, 2)]


def test_debians_blank_templates_audit_clean(corpus: Any) -> None:
    """Debian's unformatted templates (bookworm's all-zero AAVMF_VARS.fd, trixie's formatted
    empty one, the OVMF ones) are what new VMs start from: no error, exit 0 (the all-zero one
    was a store-unreadable error, so auditing Debian's own files exited 1)."""
    files = [corpus.aavmf("bookworm", "AAVMF_VARS.fd"), corpus.aavmf("trixie", "AAVMF_VARS.fd"),
             corpus.ovmf("bookworm", "OVMF_VARS.fd"), corpus.ovmf("trixie", "OVMF_VARS_4M.fd")]
    code, doc = audit_json(*files)
    assert code == 0
    assert [s["error"] for s in doc["stores"]] == [None] * 4
    assert [s["secure_boot"]["mode"] for s in doc["stores"]] == ["setup"] * 4
    codes = [[f["code"] for f in s["findings"]] for s in doc["stores"]]
    assert codes == [["blank-template", "setup-mode"]] + [["setup-mode"]] * 3
    assert doc["summary"]["findings"] == {"error": 0, "warning": 0, "note": 5}
    code, out, _ = run(files[0])
    assert code == 0 and "setup (off)" in out and "error" not in out
