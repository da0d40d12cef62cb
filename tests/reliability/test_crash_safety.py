"""Crash-safe writes for every command that writes (issue 8, docs/design.md "Writing").

Each command below runs in tests/reliability/faults.py, a fork server that kills it with
SIGKILL just before each file-system event of its write (temporary file creation, each
quarter of the data, flush, fsync, chmod, rename, directory fsync...) and makes each
write-type event fail with ENOSPC in turn. After a kill every target must be its old bytes or
the complete new output (an in-place store must still parse); after ENOSPC the command must
exit 2 with one error line, leave every target unchanged and leave no file behind.

Read-only targets (a directory of mode 0555, with CAP_DAC_OVERRIDE dropped so that root is
refused too) are checked by test_read_only_targets.

A SIGKILL cannot run clean-up code: what it can leave is one hidden temporary file
``.<target>.<random>.tmp`` next to the target (never the target itself). The test counts
those and removes them between runs; docs/reliability.md lists the numbers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from corpus.params import without_read_override

REPO = Path(__file__).resolve().parents[2]
TD = REPO / "testdata"
CORPUS = Path(os.environ.get("FWTOOLS_CORPUS", "/var/cache/fwtools-corpus")) / "root"
MS_OBJECTS = REPO / "testdata/microsoft-secureboot-objects"
OVMF_MS = CORPUS / "bookworm/amd64/ovmf/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
DBX_UPDATE = MS_OBJECTS / "dbx/amd64/DBXUpdate.bin"

STORE = TD / "varstore/normal-format.fd"
QCOW2_STORE_NAME = "store.qcow2"
ESL = TD / "sigdb/mixed.esl"
HASHES = TD / "sigdb/hashes.esl"
DB_KEY = TD / "sigdb/keys/db.key"
DB_CERT = TD / "sigdb/db.pem"
KEK_CERT = TD / "sigdb/kek.pem"
SIGNED_PE = TD / "sample/hello-nx.signed.efi"
SAMPLE_PE = TD / "sample/hello-nx.efi"
HASH = "ab" * 32
TS = "2024-01-01T00:00:00"

# (id, tool, argv, setup [(source, name in the work dir)], targets (names), validate, codes)
# {W} is the work directory; inputs live outside it. Targets in PARTIAL_OK may hold their
# complete new state after a failed run: byebyebios writes the --backup of the (unchanged)
# sector before patching the image, and extract-certs keeps the files written before the
# failure (each one complete, by the atomic writer).
Case = tuple[str, str, list[str], list[tuple[str, str]], list[str], list[tuple[str, str]],
             list[int]]


def _cases(inputs: dict[str, Path]) -> dict[str, list[Case]]:
    s = str
    vars_cases: list[Case] = [
        ("fw-vars set -o (new file)", "fw-vars",
         ["set", s(STORE), "Foo", "--hex", "0011", "-o", "{W}/out.fd"], [], ["out.fd"],
         [("store", "out.fd")], [0]),
        ("fw-vars set -o (over an existing file)", "fw-vars",
         ["set", s(STORE), "Foo", "--hex", "0011", "-o", "{W}/out.fd"],
         [(s(HASHES), "out.fd")], ["out.fd"], [], [0]),
        ("fw-vars set --in-place (raw)", "fw-vars",
         ["set", "{W}/store.fd", "Foo", "--hex", "0011", "--in-place"],
         [(s(STORE), "store.fd")], ["store.fd"], [("store", "store.fd")], [0]),
        ("fw-vars set --in-place (qcow2)", "fw-vars",
         ["set", "{W}/store.qcow2", "Foo", "--hex", "0011", "--in-place"],
         [(s(inputs["qcow2"]), "store.qcow2")], ["store.qcow2"], [("store", "store.qcow2")],
         [0]),
        ("fw-vars delete --in-place", "fw-vars", ["delete", "{W}/store.fd", "Lang", "--in-place"],
         [(s(STORE), "store.fd")], ["store.fd"], [("store", "store.fd")], [0]),
        ("fw-vars get -o", "fw-vars", ["get", s(STORE), "Lang", "-o", "{W}/lang.bin"], [],
         ["lang.bin"], [], [0]),
        ("fw-vars enroll -o", "fw-vars",
         ["enroll", s(inputs["blank"]), "--pk", s(DB_CERT), "--kek", s(KEK_CERT),
          "--timestamp", TS, "-o", "{W}/enrolled.fd"], [], ["enrolled.fd"],
         [("store", "enrolled.fd")], [0]),
        # A generated PK: its key file is written (mode 0600) before the store; the key is
        # random, so "complete" is checked by parsing the store and the key's PEM frame.
        ("fw-vars enroll --pk generate: --pk-key-out", "fw-vars",
         ["enroll", s(inputs["blank"]), "--pk", "generate:fwtools crash test",
          "--pk-key-out", "{W}/pk.key", "--timestamp", TS, "-o", "{W}/gen.fd"], [],
         ["gen.fd", "pk.key"], [("store", "gen.fd"), ("pem-key", "pk.key")], [0]),
        ("fw-vars sbat-level --in-place", "fw-vars",
         ["sbat-level", "{W}/store.fd", "--level", "sbat,1,2021030218\n", "--in-place"],
         [(s(STORE), "store.fd")], ["store.fd"], [("store", "store.fd")], [0]),
        ("fw-vars shim --in-place", "fw-vars", ["shim", "{W}/store.fd", "--verbose", "--in-place"],
         [(s(STORE), "store.fd")], ["store.fd"], [("store", "store.fd")], [0]),
        ("fw-vars boot add --in-place", "fw-vars",
         ["boot", "add", "{W}/store.fd", "--description", "x", "--path", "\\EFI\\x.efi",
          "--in-place"], [(s(STORE), "store.fd")], ["store.fd"], [("store", "store.fd")], [0]),
        ("fw-vars boot order --in-place", "fw-vars",
         ["boot", "order", "{W}/store.fd", "0001", "0002", "--in-place"],
         [(s(inputs["boot"]), "store.fd")], ["store.fd"], [("store", "store.fd")], [0]),
        ("fw-vars boot next -o", "fw-vars",
         ["boot", "next", s(inputs["boot"]), "0001", "-o", "{W}/n.fd"],
         [], ["n.fd"], [("store", "n.fd")], [0]),
        ("fw-vars boot delete --in-place", "fw-vars",
         ["boot", "delete", "{W}/store.fd", "0001", "--in-place"],
         [(s(inputs["boot"]), "store.fd")], ["store.fd"], [("store", "store.fd")], [0]),
        ("fw-vars convert raw->qcow2", "fw-vars", ["convert", s(STORE), "{W}/out.qcow2"], [],
         ["out.qcow2"], [("store", "out.qcow2")], [0]),
        ("fw-vars convert raw->json", "fw-vars", ["convert", s(STORE), "{W}/out.json"], [],
         ["out.json"], [("store", "out.json")], [0]),
        ("fw-vars convert qcow2->raw", "fw-vars", ["convert", s(inputs["qcow2"]), "{W}/o.fd"],
         [], ["o.fd"], [("store", "o.fd")], [0]),
    ]
    if OVMF_MS.is_file() and DBX_UPDATE.is_file():
        vars_cases.append(
            ("fw-vars dbx --in-place", "fw-vars",
             ["dbx", "{W}/ms.fd", s(DBX_UPDATE), "--in-place"],
             [(s(OVMF_MS), "ms.fd")], ["ms.fd"], [("store", "ms.fd")], [0]))
    sigdb_cases: list[Case] = [
        ("fw-sigdb create", "fw-sigdb",
         ["create", "-o", "{W}/new.esl", "--cert", s(DB_CERT), "--hash", HASH], [], ["new.esl"],
         [("siglist", "new.esl")], [0]),
        ("fw-sigdb add (over the input)", "fw-sigdb",
         ["add", "{W}/db.esl", "-o", "{W}/db.esl", "--hash", HASH], [(s(ESL), "db.esl")],
         ["db.esl"], [("siglist", "db.esl")], [0]),
        ("fw-sigdb remove", "fw-sigdb",
         ["remove", s(HASHES), "-o", "{W}/r.esl", "--owner",
          "5ef1d8b0-0d1c-4c5e-9e7a-6f7774f00d01"],
         [], ["r.esl"], [("siglist", "r.esl")], [0]),
        ("fw-sigdb merge", "fw-sigdb", ["merge", s(ESL), s(HASHES), "-o", "{W}/m.esl"], [],
         ["m.esl"], [("siglist", "m.esl")], [0]),
        ("fw-sigdb dedupe", "fw-sigdb",
         ["dedupe", s(TD / "sigdb/duplicates.esl"), "-o", "{W}/d.esl"], [], ["d.esl"],
         [("siglist", "d.esl")], [0]),
        ("fw-sigdb sign", "fw-sigdb",
         ["sign", s(ESL), "--name", "db", "--key", s(DB_KEY), "--cert", s(DB_CERT),
          "--timestamp", TS, "-o", "{W}/db.auth"], [], ["db.auth"], [], [0]),
        ("fw-sigdb extract-certs", "fw-sigdb",
         ["extract-certs", "{W}/certs", s(ESL), s(TD / "sigdb/db-fwtools-ci.auth")],
         [], ["certs"], [], [0]),
    ]
    other_cases: list[Case] = [
        ("byebyebios IMAGE (in place) --backup", "byebyebios",
         ["{W}/disk.img", "--backup", "{W}/sector0.bin"], [(s(inputs["disk"]), "disk.img")],
         ["disk.img", "sector0.bin"], [], [0]),
        ("byebyebios IMAGE.qcow2 (in place)", "byebyebios", ["{W}/disk.qcow2"],
         [(s(inputs["disk_qcow2"]), "disk.qcow2")], ["disk.qcow2"], [], [0]),
        ("byebyebios --restore", "byebyebios",
         ["{W}/disk.img", "--restore", s(inputs["backup"])],
         [(s(inputs["stubbed"]), "disk.img")], ["disk.img"], [], [0]),
        ("pe-inspect --extract-certs", "pe-inspect",
         ["--extract-certs", "{W}/pcerts", s(SIGNED_PE)],
         [], ["pcerts"], [], [0]),
        ("fw-check -o", "fw-check", ["-o", "{W}/report.json", "--json", s(SAMPLE_PE)],
         [], ["report.json"], [], [0, 1]),
    ]
    return {"fw-vars": vars_cases, "fw-sigdb": sigdb_cases, "other": other_cases}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Inputs made once: a qcow2 store, a blank authenticated store, disk images."""
    from fwtools.formats.qcow2.writer import raw_to_qcow2
    from fwtools.formats.varstore.store import VariableStore

    d = tmp_path_factory.mktemp("inputs")
    out = {"qcow2": d / "store.qcow2", "blank": d / "blank.fd", "disk": d / "disk.img",
           "disk_qcow2": d / "disk.qcow2", "backup": d / "sector0.bin", "stubbed": d / "stub.img"}
    out["qcow2"].write_bytes(raw_to_qcow2(STORE.read_bytes()))
    out["blank"].write_bytes(VariableStore.blank("ovmf-4m-528k").to_bytes())
    out["disk"].write_bytes(bytes(1 << 20))
    out["disk_qcow2"].write_bytes(raw_to_qcow2(bytes(1 << 20)))
    from click.testing import CliRunner

    from fwtools.cli.byebyebios import command as byebyebios
    from fwtools.cli.fw_vars import cli as fw_vars

    result = CliRunner().invoke(byebyebios, [str(out["disk"]), "--backup", str(out["backup"])])
    assert result.exit_code == 0, result.output
    out["boot"] = d / "boot.fd"
    result = CliRunner().invoke(fw_vars, ["boot", "add", str(STORE), "--description", "x",
                                          "--path", "\\EFI\\x.efi", "--number", "0001",
                                          "-o", str(out["boot"])])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(fw_vars, ["boot", "add", str(out["boot"]), "--description", "y",
                                          "--path", "\\EFI\\y.efi", "--number", "0002",
                                          "--in-place"])
    assert result.exit_code == 0, result.output
    shutil.copyfile(out["disk"], out["stubbed"])
    out["disk"].write_bytes(bytes(1 << 20))
    return out


PARTIAL_OK = {"sector0.bin", "certs", "pcerts", "pk.key"}


def _plan(cases: list[Case], work: Path) -> dict[str, Any]:
    plan = []
    for i, (cid, tool, argv, setup, targets, validate, codes) in enumerate(cases):
        w = work / f"case{i}"

        def fill(word: str, w: Path = w) -> str:
            return word.replace("{W}", str(w))

        plan.append({
            "id": cid, "tool": tool, "argv": [fill(a) for a in argv],
            "setup": [[src, str(w / name)] for src, name in setup],
            "targets": [str(w / t) for t in targets], "dirs": [str(w)],
            "validate": [{"kind": k, "path": str(w / p)} for k, p in validate], "codes": codes,
            "partial_ok": [str(w / t) for t in targets if t in PARTIAL_OK],
        })
    return {"cases": plan}


def _run_server(plan: dict[str, Any], tmp_path: Path, prefix: list[str] | None = None) -> Any:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(REPO))
    server = str(Path(__file__).with_name("faults.py"))
    proc = subprocess.run([*(prefix or []), sys.executable, server, str(plan_file)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize("group", ["fw-vars", "fw-sigdb", "other"])
def test_kill_and_enospc_during_writes(group: str, inputs: dict[str, Path],
                                       tmp_path: Path) -> None:
    cases = _cases(inputs)[group]
    results = _run_server(_plan(cases, tmp_path / "work"), tmp_path)
    assert len(results) == len(cases)
    problems = []
    for r in results:
        if "error" in r:
            problems.append(f"{r['id']}: {r['error']}")
            continue
        assert r["kill_points"] >= 5, r  # at least mkstemp, write, fsync, rename, dir fsync
        assert r["enospc_points"] >= 3, r
        problems += [f"{r['id']}: {f}" for f in r["failures"]]
    summary = {r["id"]: (r.get("kill_points"), r.get("enospc_points"),
                         r.get("max_temp_files_after_kill"), r.get("deterministic"))
               for r in results}
    print(json.dumps(summary, indent=1))  # shown with -s; the numbers in docs/reliability.md
    assert not problems, "\n".join(problems[:40])


READ_ONLY_CHILD = r"""
import json, sys
from click.testing import CliRunner
sys.path.insert(0, sys.argv[2])
from tests.reliability.faults import _tools
tools = _tools()
out = []
for case in json.loads(open(sys.argv[1]).read())["cases"]:
    try:
        r = CliRunner().invoke(tools[case["tool"]], case["argv"], catch_exceptions=False)
        out.append([case["id"], r.exit_code, r.stderr])
    except BaseException:
        import traceback
        out.append([case["id"], -1, traceback.format_exc()])
print(json.dumps(out))
"""


def test_read_only_targets(inputs: dict[str, Path], tmp_path: Path) -> None:
    """Every write command against a directory of mode 0555 (root too: CAP_DAC_OVERRIDE is
    dropped): exit 2, one error line naming the target, nothing changed or created."""
    cases = [c for group in _cases(inputs).values() for c in group]
    plan = _plan(cases, tmp_path / "work")
    before = {}
    for case in plan["cases"]:
        w = Path(case["dirs"][0])
        w.mkdir(parents=True)
        for src, dst in case["setup"]:
            shutil.copyfile(src, dst)
        before[case["id"]] = {p.name: p.read_bytes() for p in w.iterdir()}
        w.chmod(0o555)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    try:
        proc = subprocess.run(
            [*without_read_override(), sys.executable, "-c", READ_ONLY_CHILD, str(plan_file),
             str(REPO)],
            capture_output=True, text=True, timeout=600,
            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    finally:
        for case in plan["cases"]:
            Path(case["dirs"][0]).chmod(0o755)
    assert proc.returncode == 0, proc.stderr[-3000:]
    problems = []
    for (cid, code, stderr), case in zip(json.loads(proc.stdout), plan["cases"], strict=True):
        w = Path(case["dirs"][0])
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        if code != 2:
            problems.append(f"{cid}: exit {code}: {stderr[-400:]}")
        elif not lines or not all(ln.startswith("error: ") for ln in lines):
            problems.append(f"{cid}: stderr {lines[:3]}")
        elif not any("Permission denied" in ln for ln in lines):
            problems.append(f"{cid}: the error does not say why: {lines}")
        now = {p.name: p.read_bytes() for p in w.iterdir()}
        if now != before[cid]:
            problems.append(f"{cid}: the directory changed: {sorted(set(now) ^ set(before[cid]))}")
    assert not problems, "\n".join(problems)
