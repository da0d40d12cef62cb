"""What fw-vars update --dry-run and fw-vars audit -v say an update does to PCR 7, held to
fw-pcr predict on the store actually written (fw-vars update -o), to the real TPM values and
event logs of testdata/tcg, and to one another; and the PCR work stays out of plain audit and
update runs (lazy imports)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest
from click.testing import CliRunner
from corpus import Corpus
from corpus.params import CORPUS, corpus_files, need

from fwtools.cli.fw_pcr import cli as fw_pcr
from fwtools.cli.fw_vars import cli as fw_vars
from fwtools.formats.tcg.eventtypes import EV_SEPARATOR
from fwtools.formats.tcg.layout import ALGORITHM_IDS
from fwtools.formats.tcg.log import load_event_log

REPO: Final = Path(__file__).resolve().parents[2]
TCG: Final = REPO / "testdata" / "tcg"
MS_STORES: Final = corpus_files(
    "*/amd64/ovmf/usr/share/OVMF/OVMF*_VARS*.ms.fd",
    "*/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF_VARS.ms.fd",
)
ALL: Final = ("--ca-2023", "--dbx", "latest", "--sbat-level", "latest")
AUDIT_SCHEMA: Final = json.loads((REPO / "docs/schemas/fw-vars-audit-1.schema.json").read_text())


def ids(p: Any) -> str:
    return str(Path(p.values[0]).relative_to(CORPUS)) if p.values[0] is not None else "absent"


def invoke(cli: Any, *args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def dry_run_pcrs(store: Path, *args: str | Path) -> dict[str, Any]:
    code, out, err = invoke(fw_vars, "update", store, *args, "--dry-run", "--json")
    assert code in (0, 1), err
    (entry,) = json.loads(out)["stores"]
    assert entry["status"] == "updated" and entry["pcrs"] is not None
    result: dict[str, Any] = entry["pcrs"]
    return result


def predicted(store: Path, *chain: str | Path) -> str:
    """PCR 7 (sha256) as fw-pcr predict gives it for ``store`` and ``chain``."""
    code, out, err = invoke(fw_pcr, "predict", "--vars", store, *chain, "--pcrs", "7",
                            "--bank", "sha256", "--json")
    assert code == 0, err
    value: str = json.loads(out)["banks"]["sha256"]["7"]
    return value


@pytest.mark.parametrize("path", MS_STORES, ids=[ids(p) for p in MS_STORES])
def test_dry_run_pcr7_is_the_prediction_for_the_written_store(path: Path | None,
                                                             tmp_path: Path) -> None:
    store = need(path)
    pcrs = dry_run_pcrs(store, *ALL)
    assert pcrs["basis"] == "store" and pcrs["bank"] == "sha256" and pcrs["chain"] == []
    assert pcrs["error"] is None and pcrs["changed"] == [7]
    (row,) = pcrs["pcrs"]
    assert row["pcr"] == 7 and row["scope"] == "through-separator" and row["changed"]
    # The dry run's values are fw-pcr predict's for the store before and as written.
    out = tmp_path / "updated.fd"
    code, _, err = invoke(fw_vars, "update", store, *ALL, "-o", out)
    assert code in (0, 1), err
    assert row["old"] == predicted(store) != row["new"]
    assert row["new"] == predicted(out)
    # What changed, and why: KEK and db always; dbx unless the store has no room for it
    # (Debian 12's 2 MiB OVMF refuses Microsoft's x64 dbx), and then it says so.
    written = {c["variable"] for c in json.loads(invoke(
        fw_vars, "update", store, *ALL, "--dry-run", "--json")[1])["stores"][0]["changes"]}
    assert {"KEK", "db", "SbatLevel"} <= written
    assert set(row["causes"]) == written - {"SbatLevel"}
    assert [e["description"].split(" ")[0] for e in row["removed"]] == \
        [e["description"].split(" ")[0] for e in row["added"]] == \
        [v for v in ("KEK", "db", "dbx") if v in written]
    if "dbx" not in written:
        assert any(n.startswith("dbx would not be written") for n in pcrs["notes"])
    # What the store alone cannot say is said, not guessed.
    assert any("depends on the boot chain" in n for n in pcrs["not_predicted"])
    assert any(n.startswith("SbatLevel changes") for n in pcrs["not_predicted"])


def test_dry_run_text(corpus: Corpus) -> None:
    store = corpus.package_dir("trixie", "amd64", "ovmf") / "usr/share/OVMF/OVMF_VARS_4M.ms.fd"
    pcrs = dry_run_pcrs(store, "--ca-2023")
    (row,) = pcrs["pcrs"]
    code, out, _ = invoke(fw_vars, "update", store, "--ca-2023", "--dry-run")
    assert code == 0
    assert (f"  PCR 7 would change (sha256, through the separator, from the store alone): "
            f"{row['old']} -> {row['new']} (KEK, db)\n") in out
    assert "not predicted: PCR 7 after the separator depends on the boot chain" in out
    assert "EV_EFI_VARIABLE_DRIVER_CONFIG" not in out  # the events with -v
    code, out, _ = invoke(fw_vars, "update", store, "--ca-2023", "--dry-run", "-v")
    assert "  - EV_EFI_VARIABLE_DRIVER_CONFIG KEK = 2 lists" in out
    assert "  + EV_EFI_VARIABLE_DRIVER_CONFIG db = 5 lists" in out
    # Only SbatLevel: the store part of PCR 7 stays, and the shim-dependent part is named.
    pcrs = dry_run_pcrs(store, "--sbat-level", "latest")
    assert pcrs["changed"] == [] and not pcrs["pcrs"][0]["changed"]
    assert any(n.startswith("SbatLevel changes") for n in pcrs["not_predicted"])


def test_store_part_is_the_real_log_through_the_separator(corpus: Corpus) -> None:
    """The old value from the store alone is the TPM's PCR 7 as the real Debian 12 boot of
    testdata/tcg extended it up to its separator (same shipped store)."""
    store = corpus.package_dir("bookworm", "amd64", "ovmf") / \
        "usr/share/OVMF/OVMF_VARS_4M.ms.fd"
    (row,) = dry_run_pcrs(store, "--ca-2023")["pcrs"]
    log = load_event_log(TCG / "ovmf-d12-shim-sb.eventlog.bin")
    value = bytes(32)
    for event in log.events:
        if event.pcr != 7:
            continue
        digest = event.digest(ALGORITHM_IDS["sha256"])
        assert digest is not None
        value = hashlib.sha256(value + digest).digest()
        if event.event_type == EV_SEPARATOR:
            break
    assert row["old"] == value.hex()


def d12_chain(corpus: Corpus) -> list[Path]:
    s, a = "bookworm", "amd64"
    return [corpus.file(s, a, "shim-signed", "usr/lib/shim/shimx64.efi.signed"),
            corpus.file(s, a, "grub-efi-amd64-signed",
                        "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"),
            corpus.file(s, a, "linux-image-6.1.0-50-amd64", "boot/vmlinuz-*")]


def test_dry_run_with_the_chain(corpus: Corpus, tmp_path: Path) -> None:
    """With the chain, the whole boot's PCR 7: before, the real TPM's value of the Debian 12
    boot on the shipped store; after, fw-pcr predict's for the store written by -o. The
    SbatLevel the plan writes is newer than bookworm shim's built-in level, so shim's
    SbatLevel event changes too."""
    store = corpus.package_dir("bookworm", "amd64", "ovmf") / \
        "usr/share/OVMF/OVMF_VARS_4M.ms.fd"
    chain = d12_chain(corpus)
    options = [x for c in chain for x in ("--chain", c)]
    pcrs = dry_run_pcrs(store, *ALL, *options)
    assert pcrs["basis"] == "store and chain" and pcrs["chain"] == [str(c) for c in chain]
    rows = {r["pcr"]: r for r in pcrs["pcrs"]}
    assert pcrs["changed"] == [7] and {2, 3, 4, 6, 7, 14} <= set(rows)
    assert all(r["scope"] == "boot" for r in rows.values())
    tpm = json.loads((TCG / "ovmf-d12-shim-sb.pcrs.json").read_text())["sha256"]
    assert rows[7]["old"] == tpm["7"] == predicted(store, *chain)
    for n in (2, 3, 4, 6, 14):
        assert rows[n]["old"] == rows[n]["new"] == tpm[str(n)]
    out = tmp_path / "updated.fd"
    code, _, err = invoke(fw_vars, "update", store, *ALL, "-o", out)
    assert code == 0, err
    assert rows[7]["new"] == predicted(out, *chain)
    assert rows[7]["causes"] == ["KEK", "db", "dbx", "SbatLevel"]
    assert [e["type"] for e in rows[7]["added"]][-1] == "EV_EFI_VARIABLE_AUTHORITY"
    assert "SbatLevel: 'sbat,1,2025051000" in rows[7]["added"][-1]["description"]
    assert any(n.startswith("not compared") and "PCR 0" in n for n in pcrs["not_predicted"])
    # --chain goes with --dry-run, and each file must be a PE image.
    code, _, err = invoke(fw_vars, "update", store, "--ca-2023", "-o", out, *options)
    assert code == 2 and "--chain goes with --dry-run" in err
    code, _, err = invoke(fw_vars, "update", store, "--ca-2023", "--dry-run", "--chain",
                          TCG / "README.md")
    assert code == 2 and "--chain" in err and "MZ" in err


def test_no_pcrs_without_a_dry_run(corpus: Corpus, tmp_path: Path) -> None:
    store = corpus.package_dir("trixie", "amd64", "ovmf") / "usr/share/OVMF/OVMF_VARS_4M.ms.fd"
    code, out, _ = invoke(fw_vars, "update", store, "--ca-2023", "-o", tmp_path / "o.fd",
                          "--json")
    assert code == 0 and json.loads(out)["stores"][0]["pcrs"] is None
    # Nothing to change: nothing to predict either.
    code, out, _ = invoke(fw_vars, "update", tmp_path / "o.fd", "--ca-2023", "--dry-run",
                          "--json")
    assert code == 0 and json.loads(out)["stores"][0]["pcrs"] is None


@pytest.mark.parametrize("path", MS_STORES, ids=[ids(p) for p in MS_STORES])
def test_audit_verbose_is_the_recommended_update(path: Path | None) -> None:
    store = need(path)
    code, out, _ = invoke(fw_vars, "audit", store, "-v", "--json")
    assert code == 1  # the 2011-only stores have error findings
    doc = json.loads(out)
    import jsonschema

    jsonschema.validate(doc, AUDIT_SCHEMA)
    (entry,) = doc["stores"]
    assert entry["pcrs"] == dry_run_pcrs(store, *ALL, "--via", "owner")
    code, out, _ = invoke(fw_vars, "audit", store, "--json")
    assert "pcrs" not in json.loads(out)["stores"][0]


def test_audit_verbose_text(corpus: Corpus) -> None:
    d = corpus.package_dir("bookworm", "amd64", "ovmf") / "usr/share/OVMF"
    code, out, _ = invoke(fw_vars, "audit", d / "OVMF_VARS_4M.ms.fd", d / "OVMF_VARS_4M.fd",
                          "-v", "--no-color")
    assert code == 1
    (row,) = dry_run_pcrs(d / "OVMF_VARS_4M.ms.fd", *ALL, "--via", "owner")["pcrs"]
    text = " ".join(out.split())
    assert ("after fw-vars update --ca-2023 --dbx latest --sbat-level latest (as the owner): "
            f"PCR 7 changes (sha256, through the separator, from the store alone): "
            f"{row['old']} -> {row['new']} (KEK, db, dbx)") in text
    # The Setup Mode store gets no update, so no PCR block.
    assert text.count("PCR 7 changes (sha256") == 1


def test_pcr_code_is_imported_only_when_asked(tmp_path: Path, corpus: Corpus) -> None:
    """Plain audit and update never import the prediction (start-up and the 1,000-store
    audit stay as they were); -v and --dry-run do."""
    store = corpus.package_dir("trixie", "amd64", "ovmf") / "usr/share/OVMF/OVMF_VARS_4M.ms.fd"
    probe = ("import sys\nfrom click.testing import CliRunner\n"
             "from fwtools.cli.fw_vars import cli\n"
             "CliRunner().invoke(cli, sys.argv[1:], catch_exceptions=False)\n"
             "print(sorted(m for m in ('fwtools.machine.measure', 'fwtools.machine.plan_pcrs') "
             "if m in sys.modules))\n")

    def loaded(*args: str | Path) -> str:
        proc = subprocess.run([sys.executable, "-c", probe, *[str(a) for a in args]],
                              capture_output=True, text=True, check=True,
                              env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
        return proc.stdout.strip().splitlines()[-1]

    none, both = "[]", "['fwtools.machine.measure', 'fwtools.machine.plan_pcrs']"
    assert loaded("audit", store) == none
    assert loaded("update", store, "--ca-2023", "-o", tmp_path / "o.fd") == none
    assert loaded("audit", store, "-v") == both
    assert loaded("update", store, "--ca-2023", "--dry-run") == both
