"""fw-pcr log against libtpms: extend a fresh swtpm with every event of a log through
tpm2-tools (``tpm2_pcrextend``), read the banks back with ``tpm2_pcrread`` and give that
output, as the tool prints it, to ``fw-pcr log --pcrs``. An oracle for the replay and for the
tpm2_pcrread reader that needs no boot: the real logs of testdata/tcg and a generated one
with PCRs and digests drawn at random.

Needs swtpm and tpm2-tools (skips without them; fails under FWTOOLS_REQUIRE_CORPUS=1).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from corpus.params import unavailable

from fwtools.cli.fw_pcr import cli
from fwtools.formats.tcg.layout import ALGORITHMS
from fwtools.formats.tcg.log import EventLog, load_event_log, parse_event_log
from fwtools.formats.tcg.write import pcr_event2, spec_id_record

TCG = Path(__file__).resolve().parents[2] / "testdata" / "tcg"
BANKS = ("sha1", "sha256", "sha384", "sha512")


def _free_port_pair() -> int:
    """A port whose successor is free too (swtpm: server port, control port + 1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 65535:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair")


@pytest.fixture
def swtpm(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fresh swtpm (TPM 2.0, started) and the environment tpm2-tools need to reach it."""
    missing = [t for t in ("swtpm", "tpm2_pcrextend", "tpm2_pcrread") if not shutil.which(t)]
    if missing:
        unavailable(f"e2e: {', '.join(missing)} not installed (apt-get install swtpm "
                    "tpm2-tools)")
    port = _free_port_pair()
    state = tmp_path / "tpm"
    state.mkdir()
    proc = subprocess.Popen(
        ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}",
         "--server", f"type=tcp,port={port},bindaddr=127.0.0.1",
         "--ctrl", f"type=tcp,port={port + 1},bindaddr=127.0.0.1",
         "--flags", "not-need-init,startup-clear"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {**os.environ, "TPM2TOOLS_TCTI": f"swtpm:host=127.0.0.1,port={port}"}
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def extend_and_read(log: EventLog, env: dict[str, str], out: Path) -> set[int]:
    """Extend the TPM with every extending event of ``log``; write tpm2_pcrread's output of
    the PCRs it touched to ``out``; return those PCRs."""
    pcrs: set[int] = set()
    for event in log.events:
        if not event.extends:
            continue
        digests = ",".join(f"{ALGORITHMS[alg][0]}={digest.hex()}"
                           for alg, digest in event.digests.items())
        subprocess.run(["tpm2_pcrextend", f"{event.pcr}:{digests}"], env=env, check=True,
                       capture_output=True, timeout=30)
        pcrs.add(event.pcr)
    selection = "+".join(f"{bank}:{','.join(map(str, sorted(pcrs)))}" for bank in BANKS)
    read = subprocess.run(["tpm2_pcrread", selection], env=env, check=True,
                          capture_output=True, text=True, timeout=30)
    out.write_text(read.stdout)
    return pcrs


def check(log_path: Path, pcrread: Path, pcrs: set[int]) -> None:
    result = CliRunner().invoke(cli, ["log", "--json", str(log_path), "--pcrs", str(pcrread)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stdout[-2000:] + result.stderr
    doc = json.loads(result.stdout)
    rows = doc["comparison"]["pcrs"]
    assert {(r["bank"], r["pcr"]) for r in rows} == {(b, p) for b in BANKS for p in pcrs}
    assert {r["status"] for r in rows} == {"match"}


@pytest.mark.parametrize("name", ["ovmf-d12-shim-sb", "ovmf-d13-shim-sb"])
def test_real_log_extended_into_libtpms(name: str, swtpm: dict[str, str],
                                        tmp_path: Path) -> None:
    log_path = TCG / f"{name}.eventlog.bin"
    pcrread = tmp_path / "pcrread.txt"
    pcrs = extend_and_read(load_event_log(log_path), swtpm, pcrread)
    assert pcrread.read_text().startswith("  sha1:\n")  # the shape the reader expects
    check(log_path, pcrread, pcrs)


def test_generated_log_extended_into_libtpms(swtpm: dict[str, str], tmp_path: Path) -> None:
    rng = random.Random(17)
    banks = tuple((alg, size) for alg, (name, size) in ALGORITHMS.items() if name in BANKS)
    records = [spec_id_record(banks)]
    for _ in range(60):
        pcr = rng.choice([*range(17), 23])  # 17-22 need locality 4, which tpm2-tools lacks
        digests = [(alg, rng.randbytes(size)) for alg, size in banks]
        records.append(pcr_event2(pcr, rng.choice([0xD, 0x80000007, 0x5]), digests,
                                  rng.randbytes(rng.randrange(40))))
    data = b"".join(records)
    log_path = tmp_path / "generated.log"
    log_path.write_bytes(data)
    pcrread = tmp_path / "pcrread.txt"
    pcrs = extend_and_read(parse_event_log(data), swtpm, pcrread)
    check(log_path, pcrread, pcrs)
