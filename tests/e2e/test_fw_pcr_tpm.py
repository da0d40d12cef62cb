"""fw-pcr log against a real TPM: boot Debian 12's OVMF in QEMU with swtpm
(testdata/tcg/capture.sh, the script that made the committed fixtures), then replay the
captured event log and compare it with the PCRs the guest read from the TPM in the same
boot, in every bank, through each --pcrs form.

Needs qemu-system-x86, ovmf, swtpm, busybox-static, gdisk, dosfstools, mtools and the corpus
(the kernel, shim and grub); skips without them (fails under FWTOOLS_REQUIRE_CORPUS=1).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from corpus import Corpus
from corpus.params import unavailable

from fwtools.cli.fw_pcr import cli
from fwtools.formats.tcg.log import load_event_log

from .qemu import scaled_timeout

TCG = Path(__file__).resolve().parents[2] / "testdata" / "tcg"
TOOLS = ("qemu-system-x86_64", "swtpm", "sgdisk", "mkfs.vfat", "mcopy", "timeout")


def capture(case: str, out: Path, suite: str = "bookworm") -> Path:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing or not Path("/bin/busybox").exists():
        unavailable(f"e2e: {', '.join(missing) or 'busybox'} not installed (apt-get install "
                    "qemu-system-x86 ovmf swtpm busybox-static gdisk dosfstools mtools)")
    if not Path("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd").exists():
        unavailable("e2e: Debian's ovmf package is not installed")
    proc = subprocess.run(["bash", str(TCG / "capture.sh"), case, str(out)],
                          capture_output=True, text=True, timeout=scaled_timeout(900),
                          check=False, env={**os.environ, "SUITE": suite})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def fw_pcr(*args: str | Path) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(cli, ["log", "--json", *map(str, args)],
                                catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize(("suite", "case"), [("bookworm", "kernel"), ("bookworm", "shim-sb"),
                                             ("trixie", "shim-sb")])
def test_replay_equals_the_tpm(suite: str, case: str, corpus: Corpus, tmp_path: Path) -> None:
    del corpus  # only for its skip: the kernel, shim and grub come from the corpus
    out = capture(case, tmp_path / case, suite)
    log = out / "eventlog.bin"
    code, doc = fw_pcr(log, "--pcrs", out / "pcrs.json")
    assert code == 0, doc["comparison"]
    summary = doc["summary"]
    assert isinstance(summary, dict)
    assert summary["mismatches"] == 0 and summary["not_measured"] == 0
    assert summary["banks"] == ["sha1", "sha256", "sha384", "sha512"]
    assert summary["matches"] == 4 * len(summary["pcrs"])
    # The same values as a sysfs-style directory.
    pcrs = json.loads((out / "pcrs.json").read_text())
    for bank, values in pcrs.items():
        (out / "tpm0" / f"pcr-{bank}").mkdir(parents=True)
        for n, value in values.items():
            (out / "tpm0" / f"pcr-{bank}" / n).write_text(value.upper() + "\n")
    code, again = fw_pcr(log, "--pcrs", out / "tpm0")
    assert code == 0 and again["summary"] == summary
    # The firmware is deterministic: the same records as the committed capture, with the
    # same PCR 0 and PCR 7 digests (PCR 9 differs: the initrd is rebuilt with new times).
    fresh = load_event_log(log)
    name = {"bookworm": "d12", "trixie": "d13"}[suite]
    committed = load_event_log(TCG / f"ovmf-{name}-{case}.eventlog.bin")
    assert [(e.pcr, e.event_type) for e in fresh.events] == [
        (e.pcr, e.event_type) for e in committed.events]
    for a, b in zip(fresh.events, committed.events, strict=True):
        if a.pcr in (0, 7):
            assert a.digests == b.digests, a
