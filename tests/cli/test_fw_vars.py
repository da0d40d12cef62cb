"""fw-vars end to end on Debian's OVMF/AAVMF stores, with qemu-img as the qcow2 oracle."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fwtools.cli.fw_vars import cli

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "fwtools/data/microsoft"


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def show(path: Path, *names: str) -> dict[str, Any]:
    code, out, err = run("show", "--json", path, *names)
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in doc["variables"]}


@pytest.fixture
def blank4m(corpus: Any, tmp_path: Path) -> Path:
    target = tmp_path / "OVMF_VARS_4M.fd"
    target.write_bytes(corpus.ovmf("bookworm", "OVMF_VARS_4M.fd").read_bytes())
    return target


def test_show_json_contract(corpus: Any) -> None:
    doc = show(corpus.ovmf("bookworm", "OVMF_VARS_4M.ms.fd"))
    assert doc["schema"] == "fwtools.fw-vars/1" and doc["format"] == "edk2-raw"
    names = by_name(doc)
    for key in ("PK", "KEK", "db", "dbx", "BootOrder" if "BootOrder" in names else "Boot0000"):
        v = names[key]
        assert {"name", "guid", "attributes", "size", "data", "decoded", "timestamp"} <= set(v)
        assert v["size"] == len(bytes.fromhex(v["data"]))
    assert names["PK"]["attributes"] == 0x27 and names["PK"]["timestamp"]


def test_enroll_microsoft_secure_boot(blank4m: Path, tmp_path: Path) -> None:
    out = tmp_path / "sb.qcow2"
    code, _, err = run("enroll", blank4m, "--pk", "generate:fwtools test PK", "--microsoft",
                       "--secure-boot", "-o", out)
    assert code == 0, err
    check = subprocess.run(["qemu-img", "check", str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    doc = show(out)
    assert doc["format"] == "qcow2"
    names = by_name(doc)
    assert names["SecureBootEnable"]["data"] == "01"
    assert all(names[n]["attributes"] == 0x27 for n in ("PK", "KEK", "db"))
    from fwtools.formats.efi.siglist import SignatureDatabase

    kek = SignatureDatabase.parse(bytes.fromhex(names["KEK"]["data"]))
    got = {hashlib.sha256(e.data).hexdigest() for _i, _j, _sl, e in kek.entries()}
    want = {hashlib.sha256((SHIPPED / n).read_bytes()).hexdigest()
            for n in ("MicCorKEKCA2011_2011-06-24.der", "microsoft-corporation-kek-2k-ca-2023.der")}
    assert got == want
    # raw <-> qcow2 keeps the store byte for byte; qemu-img agrees.
    raw = tmp_path / "sb.fd"
    assert run("convert", out, raw)[0] == 0
    cmp = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(raw), str(out)],
                         capture_output=True, text=True)
    assert cmp.returncode == 0, cmp.stdout


def test_set_get_delete(blank4m: Path, tmp_path: Path) -> None:
    out = tmp_path / "v.fd"
    assert run("set", blank4m, "Timeout", "--uint16", "5", "-o", out)[0] == 0
    assert run("set", out, "FwtoolsTest", "--guid", "605dab50-e046-4300-abb6-3dd810dd8b23",
               "--hex", "deadbeef", "--attributes", "0x3", "--in-place")[0] == 0
    code, data, _ = run("get", out, "Timeout")
    assert code == 0 and data == "\x05\x00"
    names = by_name(show(out))
    assert names["FwtoolsTest"]["attributes"] == 3 and names["FwtoolsTest"]["data"] == "deadbeef"
    before = out.read_bytes()
    code, _, err = run("delete", out, "NoSuchVariable", "--in-place")
    assert code == 1 and out.read_bytes() == before
    assert run("delete", out, "Timeout", "--in-place")[0] == 0
    assert "Timeout" not in by_name(show(out))
    # Editing needs an explicit target.
    code, _, err = run("set", out, "Timeout", "--uint16", "1")
    assert code == 2 and "--in-place" in err


def test_dbx_update_is_verified(corpus: Any, ms_corpus: Any, tmp_path: Path) -> None:
    store = tmp_path / "ms.fd"
    store.write_bytes(corpus.ovmf("bookworm", "OVMF_VARS_4M.ms.fd").read_bytes())
    update = ms_corpus.root / "dbx/amd64/DBXUpdate.bin"
    before = store.read_bytes()
    tampered = tmp_path / "tampered.bin"
    blob = bytearray(update.read_bytes())
    blob[-1] ^= 1
    tampered.write_bytes(bytes(blob))
    code, _, err = run("dbx", store, tampered, "--in-place")
    # A failed verification is a verdict, exit 1 (docs/design.md exit codes), not bad input.
    assert code == 1 and "not applied" in err and store.read_bytes() == before
    assert err.startswith(f"error: {tampered}: ") and err.count("\n") == 1
    code, out, err = run("dbx", store, update, "--in-place")
    assert code == 0, err
    assert "KEK CA 2011" in out
    from fwtools.formats.efi.siglist import SignatureDatabase

    dbx = SignatureDatabase.parse(bytes.fromhex(by_name(show(store))["dbx"]["data"]))
    assert dbx.count >= 443
    # Applying it again adds nothing.
    code, out, _ = run("dbx", store, update, "--in-place")
    assert code == 0 and "+0 entries" in out


def test_sbat_level_from_shim(corpus: Any, blank4m: Path) -> None:
    shim = corpus.shim("trixie", "amd64")
    assert run("sbat-level", blank4m, "--from-shim", shim, "--in-place")[0] == 0
    var = by_name(show(blank4m))["SbatLevel"]
    text = bytes.fromhex(var["data"]).decode()
    assert text.startswith("sbat,1,") and "shim," in text and var["attributes"] == 3


def test_shim_switches_and_boot_entries(blank4m: Path) -> None:
    assert run("shim", blank4m, "--verbose", "--fallback-verbose", "--in-place")[0] == 0
    names = by_name(show(blank4m))
    assert names["SHIM_VERBOSE"]["data"] == "01000000"
    assert run("shim", blank4m, "--no-verbose", "--in-place")[0] == 0
    assert "SHIM_VERBOSE" not in by_name(show(blank4m))
    assert run("boot", "add", blank4m, "--description", "debian", "--path",
               "\\EFI\\debian\\shimx64.efi", "--in-place")[0] == 0
    assert run("boot", "add", blank4m, "--description", "other", "--path",
               "\\EFI\\BOOT\\BOOTX64.EFI", "--last", "--in-place")[0] == 0
    code, out, _ = run("boot", "list", blank4m)
    assert code == 0 and "BootOrder: 0000,0001" in out and "\\EFI\\debian\\shimx64.efi" in out
    assert run("boot", "order", blank4m, "0001,0000", "--in-place")[0] == 0
    assert run("boot", "next", blank4m, "0000", "--in-place")[0] == 0
    code, out, _ = run("boot", "list", blank4m)
    assert "BootNext: Boot0000" in out and "BootOrder: 0001,0000" in out
    assert run("boot", "delete", blank4m, "0000", "--in-place")[0] == 0
    code, out, _ = run("boot", "list", blank4m)
    assert "BootOrder: 0001" in out and "BootNext" not in out


def test_json_round_trip_and_diff(corpus: Any, tmp_path: Path) -> None:
    src = corpus.ovmf("bookworm", "OVMF_VARS_4M.ms.fd")
    as_json = tmp_path / "vars.json"
    assert run("convert", src, as_json)[0] == 0
    rebuilt = tmp_path / "rebuilt.fd"
    template = corpus.ovmf("bookworm", "OVMF_VARS_4M.fd")
    code, _, err = run("convert", as_json, rebuilt, "--template", template)
    assert code == 0, err
    code, out, _ = run("diff", src, rebuilt)
    assert code == 0 and "no differences" in out
    edited = tmp_path / "edited.fd"
    run("set", rebuilt, "Timeout", "--uint16", "9", "-o", edited)
    code, out, _ = run("diff", "--json", rebuilt, edited)
    assert code == 1
    assert json.loads(out)["files"][0]["name"] == "Timeout"


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_every_corpus_store_shows_and_checks(corpus: Any, suite: str) -> None:
    stores = sorted(corpus.ovmf_dir(suite).glob("OVMF_VARS*.fd")) + sorted(
        p for p in corpus.aavmf_dir(suite).glob("AAVMF_VARS*.fd"))
    assert stores
    for store in stores:
        code, out, err = run("show", store)
        assert code == 0, (store, err)
        code, out, err = run("check", store)
        assert code in (0, 1) and "Traceback" not in out + err


def test_bad_inputs(corpus: Any, tmp_path: Path) -> None:
    small = tmp_path / "OVMF_VARS.fd"
    small.write_bytes(corpus.ovmf("bookworm", "OVMF_VARS.fd").read_bytes())
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(200_000))
    out = tmp_path / "out.fd"
    code, _, err = run("set", small, "Huge", "--file", big, "-o", out)
    assert code == 2 and not out.exists()
    assert "bytes" in err and "Traceback" not in err
    code_image = corpus.ovmf("bookworm", "OVMF_CODE_4M.fd")
    random = tmp_path / "random.fd"
    random.write_bytes(os.urandom(528 * 1024))
    truncated = tmp_path / "truncated.fd"
    truncated.write_bytes(corpus.ovmf("bookworm", "OVMF_VARS_4M.ms.fd").read_bytes()[:20_000])
    for bad in (code_image, random, truncated):
        code, _, err = run("show", bad)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, (bad, err)


def test_interrupted_write_keeps_the_old_store(corpus: Any, tmp_path: Path) -> None:
    """Kill fw-vars at random moments while it rewrites a 64 MiB store in place: the store is
    always the old one or the new one, never a mix or a stub."""
    src = corpus.aavmf("bookworm", "AAVMF_VARS.ms.fd")
    store = tmp_path / "AAVMF_VARS.fd"
    old = src.read_bytes()
    store.write_bytes(old)
    cmd = [sys.executable, "-m", "fwtools.cli.fw_vars", "set", str(store), "FwtoolsTest",
           "--hex", "00" * 64, "--in-place"]
    outcomes = set()
    for delay in (0.05, 0.15, 0.3, 0.5, 0.8):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = store.read_bytes()
        assert len(data) == len(old)
        outcomes.add("old" if data == old else "new")
        if data != old:
            names = by_name(show(store))
            assert "FwtoolsTest" in names
            store.write_bytes(old)
    assert outcomes  # at least one run finished either way


def test_blank_aavmf_template_is_formatted_not_refused(corpus: Any, tmp_path: Path) -> None:
    """Debian 12's AAVMF_VARS.fd is 64 MiB of zeros: fw-vars says so, and enrolling keys
    into it formats it as the firmware would at first boot."""
    template = corpus.aavmf("bookworm", "AAVMF_VARS.fd")
    assert not template.read_bytes().strip(b"\0")
    code, out, _ = run("show", template)
    assert code == 0 and "blank" in out.lower()
    out_store = tmp_path / "AAVMF_VARS.secboot.fd"
    code, _, err = run("enroll", template, "--pk", "microsoft", "--microsoft", "--secure-boot",
                       "-o", out_store)
    assert code == 0, err
    assert out_store.stat().st_size == template.stat().st_size
    names = by_name(show(out_store))
    assert {"PK", "KEK", "db", "SecureBootEnable"} <= set(names)
    code, out, _ = run("check", out_store)
    assert code == 0, out
