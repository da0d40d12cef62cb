"""fw-pcr predict, --compare, --pcrlock and diff end to end on the Debian 12 corpus files of
testdata/tcg's Secure Boot boot; and what fw-vars update --ca-2023 does to PCR 7."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from corpus import Corpus

from fwtools.cli.fw_pcr import cli
from fwtools.fleet.update import UpdateRequest, plan_loaded
from fwtools.formats.varstore.storeio import load_store
from fwtools.machine.measure import MachineInput, diff_predictions, predict

REPO = Path(__file__).resolve().parents[2]
TCG = REPO / "testdata" / "tcg"
GRUB_CFG = ("set timeout=0\nlinux /vmlinuz console=ttyS0 panic=-1 loglevel=1\n"
            "initrd /initrd.img\nboot\n")


SCHEMA = json.loads((REPO / "docs/schemas/fw-pcr-1.schema.json").read_text())


def validate(doc: dict[str, object]) -> None:
    import jsonschema

    jsonschema.validate(doc, SCHEMA)


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="fw-pcr",
                                catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def d12(corpus: Corpus, tmp_path: Path) -> dict[str, Path]:
    s, a = "bookworm", "amd64"
    cfg = tmp_path / "grub.cfg"
    cfg.write_text(GRUB_CFG)
    return {
        "vars": corpus.package_dir(s, a, "ovmf") / "usr/share/OVMF/OVMF_VARS_4M.ms.fd",
        "shim": corpus.file(s, a, "shim-signed", "usr/lib/shim/shimx64.efi.signed"),
        "grub": corpus.file(s, a, "grub-efi-amd64-signed",
                            "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"),
        "kernel": corpus.file(s, a, "linux-image-6.1.0-50-amd64", "boot/vmlinuz-*"),
        "cfg": cfg,
    }


def chain(d: dict[str, Path]) -> list[Path]:
    return [d["shim"], d["grub"], d["kernel"]]


def test_predict_json(d12: dict[str, Path]) -> None:
    code, out, err = run("predict", "--vars", d12["vars"], *chain(d12), "--grub-cfg",
                         d12["cfg"], "--bank", "sha256,sha384", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "fwtools.fw-pcr/1"
    validate(doc)
    tpm = json.loads((TCG / "ovmf-d12-shim-sb.pcrs.json").read_text())
    assert doc["banks"]["sha256"]["7"] == tpm["sha256"]["7"]
    assert doc["banks"]["sha384"]["4"] == tpm["sha384"]["4"]
    assert set(doc["banks"]) == {"sha256", "sha384"}
    assert "5" in doc["not_predicted"] and "--disk" in doc["not_predicted"]["5"]
    assert "0" in doc["not_predicted"] and "1" in doc["not_predicted"]
    first = doc["events"][0]
    assert first["pcr"] == 7 and first["type"] == "EV_EFI_VARIABLE_DRIVER_CONFIG"
    assert set(first["digests"]) == {"sha256", "sha384"}
    kinds = [c["kind"] for c in doc["chain"]]
    assert kinds == ["shim", "grub", "kernel"]
    auth = [e for e in doc["events"] if e["type"] == "EV_EFI_VARIABLE_AUTHORITY"]
    assert [e["source"] for e in auth] == ["edk2", "shim", "shim"]


def test_pcrs_filter_and_pcrlock(d12: dict[str, Path], tmp_path: Path) -> None:
    out_dir = tmp_path / "pcrlock"
    code, out, err = run("predict", "--vars", d12["vars"], *chain(d12), "--pcrs", "7",
                         "--pcrlock", out_dir, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert list(doc["banks"]["sha256"]) == ["7"]
    files = sorted(p.name for p in out_dir.iterdir())
    assert files == ["507-fwtools-pcr7.pcrlock"]
    records = json.loads((out_dir / files[0]).read_text())["records"]
    assert all(r["pcr"] == 7 for r in records)
    assert [d["hashAlg"] for d in records[0]["digests"]] == ["sha1", "sha256"]
    assert [r["digests"][1]["digest"] for r in records] == \
        [e["digests"]["sha256"] for e in doc["events"]]


def test_compare_with_the_real_log(d12: dict[str, Path]) -> None:
    code, out, err = run("predict", "--vars", d12["vars"], *chain(d12), "--grub-cfg",
                         d12["cfg"], "--compare", TCG / "ovmf-d12-shim-sb.eventlog.bin")
    assert code == 0, err
    assert "every logged event of the predicted PCRs is as predicted" in out
    # The Debian 13 boot used another shim, grub and kernel: the first divergence is shim.
    code, out, _ = run("predict", "--vars", d12["vars"], *chain(d12), "--grub-cfg",
                       d12["cfg"], "--compare", TCG / "ovmf-d13-shim-sb.eventlog.bin",
                       "--json")
    assert code == 1
    doc = json.loads(out)
    validate(doc)
    first = doc["comparison"]["first_divergence"]
    assert first["pcr"] == 4 and first["logged_type"] == "EV_EFI_BOOT_SERVICES_APPLICATION"
    assert "another binary" in first["explanation"]


def test_ca_2023_update_changes_pcr7(d12: dict[str, Path], tmp_path: Path) -> None:
    loaded = load_store(d12["vars"])
    result, updated = plan_loaded(loaded, UpdateRequest(ca_2023=True))
    assert result.status == "updated" and updated is not None
    new_path = tmp_path / "vars-2023.fd"
    new_path.write_bytes(updated.to_bytes())
    paths = [str(p) for p in chain(d12)]
    old = predict(MachineInput(loaded, paths))
    new = predict(MachineInput(load_store(new_path), paths))
    changes = {c.pcr: c for c in diff_predictions(old, new)}
    assert [n for n, c in changes.items() if c.changed] == [7]
    seven = changes[7]
    assert [e.description.split(" ")[0] for e in seven.added] == ["KEK", "db"]
    assert [e.description.split(" ")[0] for e in seven.removed] == ["KEK", "db"]
    # shim is still verified by the 2011 CA, the first db entry that matches.
    code, out, err = run("diff", "--vars", d12["vars"], "--vars-new", new_path, *chain(d12),
                         "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "fwtools.fw-pcr.diff/1"
    for row in doc["pcrs"]:
        for event in row["added"] + row["removed"]:
            import jsonschema

            jsonschema.validate(event, SCHEMA["$defs"]["event"])
    assert doc["summary"]["changed"] == [7]
    row = next(r for r in doc["pcrs"] if r["pcr"] == 7)
    assert row["old"] == old.banks["sha256"][7].hex() != row["new"]
    code, out, _ = run("diff", "--vars", d12["vars"], "--vars-new", new_path, *chain(d12))
    assert "PCR7 changes" in out and "+ EV_EFI_VARIABLE_DRIVER_CONFIG KEK" in out


def test_usage_errors(d12: dict[str, Path]) -> None:
    code, _, err = run("predict", "--vars", d12["vars"], d12["shim"], "--bank", "md5")
    assert code == 2 and "unknown bank 'md5'" in err
    code, _, err = run("predict", "--vars", d12["vars"], d12["shim"], "--pcrs", "7,x")
    assert code == 2 and "--pcrs" in err
    code, _, err = run("predict", "--vars", d12["shim"], d12["shim"])
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_diff_of_a_chain_upgrade(d12: dict[str, Path], corpus: Corpus) -> None:
    """Debian 12's shim, grub and kernel replaced by Debian 13's, same store: PCR 4 (the
    images), 7 (nothing: same SbatLevel and CAs) and 14 (shim's vendor dbx) as predicted."""
    s, a = "trixie", "amd64"
    d13 = [corpus.file(s, a, "shim-signed", "usr/lib/shim/shimx64.efi.signed"),
           corpus.file(s, a, "grub-efi-amd64-signed",
                       "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"),
           corpus.file(s, a, "linux-image-6.12.117+deb13-amd64", "boot/vmlinuz-*")]
    new_chain = [w for p in d13 for w in ("--new-chain", str(p))]
    code, out, err = run("diff", "--vars", d12["vars"], *chain(d12), *new_chain, "--json")
    assert code == 0, err
    doc = json.loads(out)
    import jsonschema

    jsonschema.validate(doc, json.loads((REPO / "docs/schemas/fw-pcr-diff-1.schema.json")
                                        .read_text()))
    assert doc["summary"]["changed"] == [4, 14]
    assert doc["chains"]["new"] == [str(p) for p in d13]
    four = next(r for r in doc["pcrs"] if r["pcr"] == 4)
    # Two shim_lock events for grub 2.06's kernel, one for 2.12's.
    assert len(four["removed"]) == 4 and len(four["added"]) == 3
    # The real logs of both boots agree on what changes.
    tpm12 = json.loads((TCG / "ovmf-d12-shim-sb.pcrs.json").read_text())["sha256"]
    tpm13 = json.loads((TCG / "ovmf-d13-shim-sb.pcrs.json").read_text())["sha256"]
    for row in doc["pcrs"]:
        if row["pcr"] in (4, 7, 14):
            assert row["old"] == tpm12[str(row["pcr"])] and row["new"] == tpm13[str(row["pcr"])]
    code, _, err = run("diff", "--vars", d12["vars"], *chain(d12))
    assert code == 2 and "--vars-new" in err
