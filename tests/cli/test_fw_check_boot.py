"""fw-check boot-chain end to end: verdicts and exit codes, the text timeline, JSON, HTML,
parameter overrides, forced models, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import Corpus

REPO = Path(__file__).resolve().parents[2]
FW_CHECK = [sys.executable, "-c", "from fwtools.cli.fw_check import main; main()"]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FW_CHECK, "boot-chain", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO)


@pytest.fixture(scope="module")
def bookworm(corpus: Corpus) -> tuple[Path, Path, Path]:
    return corpus.boot_chain("bookworm", "amd64")


@pytest.fixture(scope="module")
def trixie_aa64(corpus: Corpus) -> tuple[Path, Path, Path]:
    return corpus.boot_chain("trixie", "arm64")


def test_boots_exit_0_and_timeline(trixie_aa64: tuple[Path, Path, Path]) -> None:
    p = run("--firmware", "armvirt-map", "--secure-boot", "on", *trixie_aa64)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "verdict: BOOTS" in out
    for model in ("shim-16.1", "grub-debian-2.12", "linux-arm64-image"):
        assert model in out
    # shim's per-section requests through the memory attribute protocol are on the timeline
    assert "SetMemoryAttributes(RO) grubaa64.efi.signed .text" in out
    assert "ClearMemoryAttributes(RP|XP) grubaa64.efi.signed .text" in out
    assert "ExitBootServices" in out


def test_fault_exit_1_with_cause_and_fix(bookworm: tuple[Path, Path, Path]) -> None:
    p = run("--firmware", "ovmf-strict", "--secure-boot", "on", *bookworm)
    assert p.returncode == 1
    assert "verdict: FAULTS" in p.stdout
    assert "#PF error 0x11 (I:1 R:0 U:0 W:0 P:1)" in p.stdout
    assert "EfiLoaderData" in p.stdout and "fix" in p.stdout


def test_json_contract(bookworm: tuple[Path, Path, Path]) -> None:
    p = run("--firmware", "ovmf-strict", "--json", *bookworm)
    assert p.returncode == 1
    doc = json.loads(p.stdout)
    assert doc["schema"] == "fwtools.fw-check.boot-chain/1"
    assert doc["verdict"] == "faults"
    assert [s["model"] for s in doc["stages"]] == [
        "shim-16.1", "grub-debian-2.06", "linux-x86-stub-backport"]
    assert [s["path"] for s in doc["stages"]] == [str(b) for b in bookworm]
    f = doc["faults"][0]
    # Secure Boot off: the legacy loader's trampoline in free memory at page 0 (lab: RIP=CR2=0)
    assert (f["stage"], f["access"], f["address"]) == ("grub", "fetch", 0)
    assert f["memory_type"] == "EfiConventionalMemory"
    assert f["fault"].startswith("#PF error 0x11")
    for key in ("operation", "explanation", "fix"):
        assert f[key]
    # the fault as data: grub is stages[1], the #PF error code an integer
    assert (f["stage_index"], f["code"], f["code_hex"]) == (2, 0x11, "0x11")
    assert doc["stages"][f["stage_index"] - 1]["name"] == f["stage"]
    assert doc["stop"] == {"code": "fault", "stage": "grub", "stage_index": 2}
    ev = doc["events"]
    assert ev[0]["operation"] == "firmware start"
    assert all({"stage", "operation", "start", "end", "memory_type", "permissions",
                "status"} <= set(e) for e in ev)
    assert doc["firmware"]["nx_policy_hex"] == "0xc000000000007fd5"


def test_json_stop_of_a_refusal_and_of_a_boot(bookworm: tuple[Path, Path, Path]) -> None:
    p = run("--firmware", "mu-debug", "--json", *bookworm)
    doc = json.loads(p.stdout)
    assert p.returncode == 1 and doc["verdict"] == "refused" and doc["faults"] == []
    # Debian's shim lacks NX_COMPAT: Mu's LoadImage (the firmware, stage 0) refuses it
    assert doc["stop"] == {"code": "nx-compat-required", "stage": "firmware", "stage_index": 0}
    q = run("--firmware", "ovmf", "--json", *bookworm)
    assert q.returncode == 0 and json.loads(q.stdout)["stop"] is None


def test_overrides_change_the_verdict(bookworm: tuple[Path, Path, Path]) -> None:
    assert run("--firmware", "ovmf", "--secure-boot", "on", *bookworm).returncode == 0
    p = run("--firmware", "ovmf", "--secure-boot", "on",
            "--nx-policy", "0xC000000000007FD5", "--json", *bookworm)
    assert p.returncode == 1
    assert json.loads(p.stdout)["firmware"]["nx_policy"] == 0xC000000000007FD5


def test_forced_model(corpus: Corpus) -> None:
    shim = corpus.shim("trixie", "amd64")
    sdboot = corpus.systemd_boot("trixie")
    # shim 15.6/15.7 skip sections whose size is not a 4 KiB multiple, so systemd-boot's
    # .text stays NX and its entry faults where the memory attribute protocol exists
    # (rhboot/shim issue #585)
    p = run("--firmware", "ovmf", "--model", "1=shim-15.6", "--json", shim, sdboot)
    doc = json.loads(p.stdout)
    assert p.returncode == 1 and doc["verdict"] == "faults"
    assert doc["stages"][0]["model"] == "shim-15.6" and doc["stages"][0]["model_overridden"]
    assert doc["faults"][0]["access"] == "fetch"
    q = run("--firmware", "ovmf", "--memory-attribute-protocol", "no",
            "--model", "1=shim-15.6", shim, sdboot)
    assert q.returncode == 0, q.stdout


def test_a_model_that_overruns_its_buffer_is_an_error(corpus: Corpus, tmp_path: Path) -> None:
    """A copy past its buffer is the model's mistake: one error line and exit code 2, not a
    verdict (uefi/operations.py Runner.check_fits)."""
    model = tmp_path / "overrun.toml"
    model.write_text('name = "overrun"\nfamily = "grub"\n'
                     '[[steps]]\nop = "allocate"\nname = "kernel"\ntype = "LoaderData"\n'
                     'size = "next.file"\n[[steps]]\nop = "place"\ninto = "kernel"\n',
                     encoding="utf-8")
    p = run("--firmware", "debian13-aavmf", "--secure-boot", "on", "--model", f"2={model}",
            *corpus.boot_chain("bookworm", "arm64"))
    assert p.returncode == 2, p.stdout
    assert p.stdout == ""
    (line,) = p.stderr.strip().splitlines()
    assert "loader model overrun (stage grub)" in line and "overruns it by" in line


def test_html_and_output_files(bookworm: tuple[Path, Path, Path], tmp_path: Path) -> None:
    html = tmp_path / "replay.html"
    out = tmp_path / "replay.json"
    p = run("--firmware", "ovmf-strict", "--json", "--html", html, "-o", out, *bookworm)
    assert p.returncode == 1 and p.stdout == ""
    assert json.loads(out.read_text())["verdict"] == "faults"
    page = html.read_text()
    assert page.lstrip().lower().startswith("<!doctype html")
    assert "EfiLoaderData" in page or "EfiConventionalMemory" in page


def test_lists() -> None:
    p = run("--list-firmware")
    assert p.returncode == 0
    names = {line.split()[0] for line in p.stdout.splitlines()}
    assert {"ovmf", "ovmf-strict", "ovmf-compat", "armvirt", "armvirt-map", "mu-ship",
            "mu-debug"} <= names
    m = run("--list-models")
    assert m.returncode == 0 and "shim-15.6" in m.stdout and "grub-debian-2.12" in m.stdout


@pytest.mark.parametrize("args", [
    ["--firmware", "no-such-profile"],
    ["--firmware", "ovmf", "--nx-policy", "zz"],
    ["--firmware", "ovmf", "--edk2-release", "199901"],
    ["--firmware", "ovmf", "--model", "9=shim-15.6"],
    ["--firmware", "ovmf", "--model", "1=no-such-model"],
    ["--firmware", "armvirt"],  # an aarch64 profile for x86 binaries
    ["--firmware", "ovmf", "--arch", "aa64"],
    [],  # no --firmware
])
def test_usage_errors_are_one_line(args: list[str], bookworm: tuple[Path, Path, Path]) -> None:
    p = run(*args, *bookworm)
    assert p.returncode == 2, p.stdout
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")


def test_bad_binaries(tmp_path: Path, bookworm: tuple[Path, Path, Path]) -> None:
    junk = tmp_path / "junk.efi"
    junk.write_bytes(b"MZ" + bytes(100))
    for bad in (junk, tmp_path / "missing.efi"):
        p = run("--firmware", "ovmf", bookworm[0], bad)
        assert p.returncode == 2 and "Traceback" not in p.stderr
        assert p.stderr.startswith("error: ") and str(bad.name) in p.stderr
    mixed = run("--firmware", "ovmf", bookworm[0], Path(str(bookworm[1]).replace(
        "amd64", "arm64").replace("x86_64-efi", "arm64-efi").replace("grubx64", "grubaa64")))
    assert mixed.returncode == 2 and "mixes" in mixed.stderr
