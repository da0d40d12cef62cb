"""fw-pcr log end to end on the real logs of testdata/tcg: text, JSON, --pcrs in every form,
a mismatch (exit 1) and malformed inputs (one line, exit 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from fwtools.cli.fw_pcr import cli

REPO = Path(__file__).resolve().parents[2]
TCG = REPO / "testdata" / "tcg"
SCHEMA = json.loads((REPO / "docs/schemas/fw-pcr-log-1.schema.json").read_text())
SB_LOG = TCG / "ovmf-d12-shim-sb.eventlog.bin"
SB_PCRS = TCG / "ovmf-d12-shim-sb.pcrs.json"


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="fw-pcr",
                                catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def log_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    code, out, err = run("log", "--json", *args)
    assert not err
    doc = json.loads(out)
    assert doc["schema"] == "fwtools.fw-pcr.log/1"
    import jsonschema

    jsonschema.validate(doc, SCHEMA)
    return code, doc


def test_text_view_of_a_secure_boot_log() -> None:
    code, out, err = run("log", SB_LOG, "--pcrs", SB_PCRS, "--no-color")
    assert code == 0, err
    assert "crypto-agile event log, 47 events" in out
    assert "db: CN=Microsoft Corporation UEFI CA 2011" in out
    assert "'grub_cmd: linux /vmlinuz console=ttyS0 panic=-1 loglevel=1'" in out
    assert "Boot0002 = 'EFI Internal Shell'" in out
    assert "44 match, 0 mismatch" in out
    code, verbose, _ = run("log", SB_LOG, "-v", "--no-color")
    assert code == 0
    assert "sha384" in verbose and "partition 1: " in verbose
    assert "Microsoft Corporation KEK CA 2011" in verbose


def test_json_document() -> None:
    code, doc = log_json(SB_LOG, "--pcrs", SB_PCRS)
    assert code == 0
    pcrs = json.loads(SB_PCRS.read_text())
    for bank, values in doc["replay"]["banks"].items():
        for pcr, value in values.items():
            assert pcrs[bank][pcr] == value
    assert doc["summary"]["verdict"] == "match"
    assert doc["summary"]["mismatches"] == 0
    assert doc["summary"]["pcrs"] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14]
    events = doc["log"]["events"]
    assert len(events) == 47 and all(e["decode_error"] is None for e in events)
    authority = events[22]
    assert authority["type"] == "EV_EFI_VARIABLE_AUTHORITY"
    assert authority["decoded"]["entry"]["certificate"]["subject"].startswith(
        "CN=Microsoft Corporation UEFI CA 2011")
    assert authority["decoded"]["entry"]["owner_name"] == "Microsoft"
    db = events[7]["decoded"]
    assert db["kind"] == "variable" and db["value"][0]["type"] == "EfiCertX509"
    gpt = events[23]["decoded"]
    assert gpt["kind"] == "gpt" and gpt["partitions"][0]["starting_lba"] == 2048
    assert gpt["partitions"][0]["type_name"] == "EFI System"
    assert events[24]["digests"]["sha256"] == events[24]["digests"]["sha256"].lower()
    assert doc["log"]["spec_id"]["algorithms"][1] == {"id": 11, "name": "sha256",
                                                      "digest_size": 32}


def test_pcrs_as_sysfs_directory_and_tpm2_pcrread(tmp_path: Path) -> None:
    pcrs = json.loads(SB_PCRS.read_text())
    tpm0 = tmp_path / "tpm0"
    for bank, values in pcrs.items():
        (tpm0 / f"pcr-{bank}").mkdir(parents=True)
        for pcr, value in values.items():
            (tpm0 / f"pcr-{bank}" / pcr).write_text(value.upper() + "\n")
    code, doc = log_json(SB_LOG, "--pcrs", tpm0)
    assert code == 0 and doc["summary"]["matches"] == 44
    text = "sha256:\n" + "".join(f"  {n} : 0x{v.upper()}\n" for n, v in pcrs["sha256"].items())
    dump = tmp_path / "pcrread.txt"
    dump.write_text(text)
    code, doc = log_json(SB_LOG, "--pcrs", dump)
    assert code == 0 and doc["summary"]["matches"] == 11


def test_a_mismatch_exits_1(tmp_path: Path) -> None:
    pcrs = json.loads(SB_PCRS.read_text())
    pcrs["sha256"]["7"] = "00" * 32
    wrong = tmp_path / "pcrs.json"
    wrong.write_text(json.dumps(pcrs))
    code, out, _ = run("log", SB_LOG, "--pcrs", wrong, "--no-color")
    assert code == 1
    assert "MISMATCH" in out and "1 mismatch" in out
    code, doc = log_json(SB_LOG, "--pcrs", wrong)
    assert code == 1
    bad = [r for r in doc["comparison"]["pcrs"] if r["status"] == "mismatch"]
    assert [(r["bank"], r["pcr"]) for r in bad] == [("sha256", 7)]


def test_every_real_log_validates() -> None:
    for log in sorted(TCG.glob("*.eventlog.bin")):
        code, _ = log_json(log)
        assert code == 0


def test_sha1_log() -> None:
    code, doc = log_json(TCG / "ovmf-d12-kernel.sha1.eventlog.bin", "--pcrs",
                         TCG / "ovmf-d12-kernel.pcrs.json")
    assert code == 0
    assert doc["log"]["format"] == "sha1" and doc["log"]["spec_id"] is None
    assert doc["summary"]["banks"] == ["sha1"] and doc["summary"]["matches"] == 9


def test_malformed_inputs_are_one_line(tmp_path: Path) -> None:
    hostile = TCG / "hostile" / "huge-event-size.bin"
    code, out, err = run("log", hostile)
    assert code == 2 and out == ""
    assert err == (f"error: {hostile}: TCG_PCR_EVENT2[1]: offset 0x105: EventSize 0xfffffff0 "
                   f"exceeds the 0x137f bytes left\n")
    code, _, err = run("log", tmp_path / "missing.bin")
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1
    bad = tmp_path / "pcrs.txt"
    bad.write_text("garbage\n")
    code, _, err = run("log", SB_LOG, "--pcrs", bad)
    assert code == 2 and "no PCR values found" in err and len(err.splitlines()) == 1


def test_an_oversized_log_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.log"
    with big.open("wb") as f:
        f.truncate((32 << 20) + 1)  # sparse: nothing is written
    code, _, err = run("log", big)
    assert code == 2 and "byte limit" in err and len(err.splitlines()) == 1


def test_a_tampered_log_is_flagged_in_both_views(tmp_path: Path) -> None:
    data = bytearray(SB_LOG.read_bytes())
    at = data.index(b"Calling EFI Application")
    data[at] = ord("K")
    bad = tmp_path / "tampered.log"
    bad.write_bytes(bytes(data))
    code, out, _ = run("log", bad, "--pcrs", SB_PCRS, "--no-color")
    assert code == 0  # the PCRs still match: only the description is wrong
    assert "'Kalling EFI Application from Boot Option' (digest is not of this data)" in out
    assert "1 events carry a digest that is not of their own data" in out
    code, doc = log_json(bad)
    assert doc["summary"]["data_digest_mismatches"] == 1
    assert [e["index"] for e in doc["log"]["events"] if e["data_digest"] == "mismatch"] == [14]
