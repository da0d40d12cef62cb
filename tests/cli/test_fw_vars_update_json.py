"""fw-vars update --json against docs/schemas/fw-vars-update-1.schema.json, on Debian's real
stores: every status (updated, unchanged, skipped, refused, error), signed and owner writes,
refusals, a dry run's PCR prediction, in-place writes with backups, and libvirt domains (a
stand-in virsh, as tests/fleet/test_update.py). The schema takes ``pcrs`` and ``trusts_after``
from the audit schema by reference, so both are loaded into one registry."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Final

import jsonschema
import pytest
from click.testing import CliRunner
from corpus.params import CORPUS, need
from referencing import Registry, Resource

from fwtools.cli.fw_vars import cli

REPO: Final = Path(__file__).resolve().parents[2]
SCHEMAS: Final = REPO / "docs" / "schemas"
UPDATE: Final = json.loads((SCHEMAS / "fw-vars-update-1.schema.json").read_text())
AUDIT: Final = json.loads((SCHEMAS / "fw-vars-audit-1.schema.json").read_text())
MS_OBJECTS: Final = REPO / "testdata" / "microsoft-secureboot-objects"
OVMF: Final = "amd64/ovmf/usr/share/OVMF"
AAVMF: Final = "all/qemu-efi-aarch64/usr/share/AAVMF"


def validate(doc: dict[str, Any]) -> None:
    registry: Registry[Any] = Registry().with_resources(
        [(s["$id"], Resource.from_contents(s)) for s in (UPDATE, AUDIT)])
    jsonschema.Draft202012Validator(UPDATE, registry=registry).validate(doc)


def update_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["update", "--json", *map(str, args)],
                                catch_exceptions=False)
    doc: dict[str, Any] = json.loads(result.stdout)
    validate(doc)
    return result.exit_code, doc


def copy(tmp_path: Path, rel: str, name: str) -> Path:
    src = CORPUS / rel
    dest = tmp_path / name
    shutil.copyfile(need(src if src.is_file() else None), dest)
    dest.chmod(0o644)
    return dest


@pytest.fixture
def stores(tmp_path: Path) -> dict[str, Path]:
    return {
        "ms4m": copy(tmp_path, f"trixie/{OVMF}/OVMF_VARS_4M.ms.fd", "ms4m_VARS.fd"),
        "ms2m": copy(tmp_path, f"bookworm/{OVMF}/OVMF_VARS.ms.fd", "ms2m_VARS.fd"),
        "zeros": copy(tmp_path, f"bookworm/{AAVMF}/AAVMF_VARS.fd", "zeros_VARS.fd"),
        "aavmf": copy(tmp_path, f"trixie/{AAVMF}/AAVMF_VARS.ms.fd", "aavmf_VARS.fd"),
    }


def test_dry_run_every_kind_of_store(stores: dict[str, Path], tmp_path: Path) -> None:
    fifo = tmp_path / "fifo_VARS.fd"
    os.mkfifo(fifo)
    code, doc = update_json(*stores.values(), tmp_path / "missing_VARS.fd", fifo,
                            "--ca-2023", "--dbx", "latest", "--sbat-level", "latest",
                            "--signed-dir", MS_OBJECTS, "--dry-run")
    assert code == 2  # the unreadable ones
    rows = {Path(s["path"]).name.split("_")[0]: s for s in doc["stores"]}
    assert {k: r["status"] for k, r in rows.items()} == {
        "ms4m": "updated", "ms2m": "updated", "zeros": "skipped", "aavmf": "updated",
        "missing": "error", "fifo": "error"}
    assert doc["summary"] == {"stores": 6, "updated": 3, "unchanged": 0, "skipped": 1,
                              "refused": 0, "error": 2, "refused_writes": 2}
    ms4m = rows["ms4m"]
    assert ms4m["dry_run"] is True and ms4m["written"] is None
    assert {a["via"] for c in ms4m["changes"] for a in c["added"]} == {"owner", "signed"}
    assert ms4m["pcrs"] is not None and ms4m["pcrs"]["changed"] == [7]
    # The 2 MiB build refuses the dbx both ways (the audit's dbx-too-large).
    assert [(r["variable"], r["via"]) for r in rows["ms2m"]["refusals"]] == [
        ("dbx", "signed"), ("dbx", "owner")]
    assert rows["zeros"]["trusts_after"] == {} and rows["zeros"]["pcrs"] is None
    assert rows["fifo"]["error"] == f"{fifo}: is a named pipe (FIFO), not a regular file"
    assert rows["fifo"]["format"] is None and rows["fifo"]["changes"] == []


def test_in_place_then_unchanged(stores: dict[str, Path]) -> None:
    store = stores["ms4m"]
    code, doc = update_json(store, "--ca-2023", "--dbx", "latest", "--in-place", "--backup")
    assert code == 0
    (row,) = doc["stores"]
    assert row["status"] == "updated" and row["dry_run"] is False
    assert row["written"] == str(store) and row["backup"] == f"{store}.bak"
    assert row["pcrs"] is None and all(row["trusts_after"].values())
    code, doc = update_json(store, "--ca-2023", "--dbx", "latest", "--in-place")
    assert code == 0 and doc["stores"][0]["status"] == "unchanged"
    assert doc["stores"][0]["notes"] and doc["stores"][0]["changes"] == []


def test_libvirt_running_domain_is_refused(stores: dict[str, Path], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    web, db = stores["ms4m"], stores["aavmf"]
    xml = ("<domain type='kvm'><name>{0}</name><os firmware='efi'><type arch='{2}' "
           "machine='q35'>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/"
           "OVMF_CODE_4M.ms.fd</loader><nvram format='raw'>{1}</nvram></os></domain>")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "virsh").write_text(f"""#!/bin/sh
shift 2
case "$1 $2" in
  "list --all") printf 'web1\\ndb1\\n' ;;
  "list --name") printf 'web1\\n' ;;
  "dumpxml web1") echo "{xml.format('web1', web, 'x86_64')}" ;;
  "dumpxml db1") echo "{xml.format('db1', db, 'aarch64')}" ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
""")
    (bin_dir / "virsh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    code, doc = update_json("--libvirt", "qemu:///system", "--ca-2023", "--in-place")
    assert code == 2
    rows = {s["vm"]: s for s in doc["stores"]}
    assert rows["web1"]["status"] == "refused" and "is running" in rows["web1"]["error"]
    assert rows["db1"]["status"] == "updated" and rows["db1"]["layout"] == "aavmf-64m"
    assert doc["summary"]["refused"] == 1 and doc["summary"]["updated"] == 1


def test_the_schema_is_not_a_rubber_stamp() -> None:
    """Wrong documents fail: a status not in the list, a missing member, a bad pcrs."""
    good: dict[str, Any] = {
        "schema": "fwtools.fw-vars.update/1", "tool": {"name": "fwtools", "version": "0"},
        "stores": [{"path": "a", "vm": None, "format": "edk2-raw", "layout": "ovmf-4m-528k",
                    "status": "unchanged", "error": None, "changes": [], "refusals": [],
                    "notes": [], "written": None, "backup": None, "dry_run": True,
                    "trusts_after": {}, "pcrs": None}],
        "summary": {"stores": 1, "updated": 0, "unchanged": 1, "skipped": 0, "refused": 0,
                    "error": 0, "refused_writes": 0},
    }
    validate(good)
    for mutate in (lambda d: d["stores"][0].update(status="written"),
                   lambda d: d["stores"][0].pop("refusals"),
                   lambda d: d["stores"][0].update(pcrs={"bank": "sha256"}),
                   lambda d: d["stores"][0].update(trusts_after={"kek-2011": True})):
        bad = json.loads(json.dumps(good))
        mutate(bad)
        with pytest.raises(jsonschema.ValidationError):
            validate(bad)
