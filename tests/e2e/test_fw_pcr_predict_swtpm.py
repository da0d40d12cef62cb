"""fw-pcr predict against a real TPM: update Debian 12's Microsoft-keyed OVMF store with
fw-vars update --ca-2023 (KEK 2023 and the three 2023 db CAs), predict the boot's PCRs and
the diff from the store as shipped, then boot shim -> grub -> kernel on it under QEMU with
swtpm (testdata/tcg/capture.sh with VARS=) and require the TPM's values, and the log's events,
for every PCR the prediction claims; PCR 7 must have changed from the shipped store's boot
(testdata/tcg/ovmf-d12-shim-sb.pcrs.json) exactly as the diff said, and as fw-vars update
--dry-run said before anything was written (with --chain: the TPM's PCR 7; from the store
alone: the booted log's PCR 7 through its separator).

Needs what tests/e2e/test_fw_pcr_tpm.py needs; skips without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner
from corpus import Corpus
from corpus.params import unavailable

from fwtools.cli.fw_vars import cli as fw_vars
from fwtools.fleet.update import UpdateRequest, plan_loaded
from fwtools.formats.tcg.eventtypes import EV_SEPARATOR
from fwtools.formats.tcg.layout import ALGORITHM_IDS
from fwtools.formats.tcg.log import EventLog, load_event_log
from fwtools.formats.varstore.storeio import load_store
from fwtools.machine.measure import (
    MachineInput,
    compare_with_log,
    diff_predictions,
    predict,
)

from .qemu import scaled_timeout

TCG = Path(__file__).resolve().parents[2] / "testdata" / "tcg"
TOOLS = ("qemu-system-x86_64", "swtpm", "sgdisk", "mkfs.vfat", "mcopy", "timeout")
SHIPPED = Path("/usr/share/OVMF/OVMF_VARS_4M.ms.fd")
GRUB_CFG = ("set timeout=0\nlinux /vmlinuz console=ttyS0 panic=-1 loglevel=1\n"
            "initrd /initrd.img\nboot\n")  # as capture.sh writes it


def dry_run_pcr7(store: Path, *args: str) -> dict[str, object]:
    """PCR 7's row of ``fw-vars update STORE --ca-2023 --dry-run --json``."""
    result = CliRunner().invoke(fw_vars, ["update", str(store), "--ca-2023", "--dry-run",
                                          "--json", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    pcrs = json.loads(result.stdout)["stores"][0]["pcrs"]
    row: dict[str, object] = next(r for r in pcrs["pcrs"] if r["pcr"] == 7)
    assert row["changed"] and pcrs["changed"] == [7]
    return row


def through_separator(log: EventLog) -> str:
    """The log's PCR 7 (sha256) after its separator: the part the store alone decides."""
    value = bytes(32)
    for event in log.events:
        if event.pcr == 7:
            digest = event.digest(ALGORITHM_IDS["sha256"])
            assert digest is not None
            value = hashlib.sha256(value + digest).digest()
            if event.event_type == EV_SEPARATOR:
                break
    return value.hex()


def test_updated_store_boots_to_the_predicted_pcrs(corpus: Corpus, tmp_path: Path) -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing or not Path("/bin/busybox").exists() or not SHIPPED.exists():
        unavailable(f"e2e: {', '.join(missing) or 'busybox or ovmf'} not installed (apt-get "
                    "install qemu-system-x86 ovmf swtpm busybox-static gdisk dosfstools mtools)")
    s, a = "bookworm", "amd64"
    chain = [str(corpus.file(s, a, "shim-signed", "usr/lib/shim/shimx64.efi.signed")),
             str(corpus.file(s, a, "grub-efi-amd64-signed",
                             "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed")),
             str(corpus.file(s, a, "linux-image-6.1.0-50-amd64", "boot/vmlinuz-*"))]
    shipped = load_store(SHIPPED)
    # What the dry run says before anything is written, with the chain and without it.
    dry = dry_run_pcr7(SHIPPED, *[x for c in chain for x in ("--chain", c)])
    store_part = dry_run_pcr7(SHIPPED)
    plan, updated = plan_loaded(shipped, UpdateRequest(ca_2023=True))
    assert plan.status == "updated" and updated is not None
    new_vars = tmp_path / "vars-2023.fd"
    new_vars.write_bytes(updated.to_bytes())

    # Predicted before booting.
    before = predict(MachineInput(shipped, chain, ("sha1", "sha256"), grub_cfg=GRUB_CFG))
    after = predict(MachineInput(load_store(new_vars), chain, ("sha1", "sha256"),
                                 grub_cfg=GRUB_CFG))
    changes = {c.pcr: c for c in diff_predictions(before, after)}
    assert [n for n, c in changes.items() if c.changed] == [7]
    shipped_tpm = json.loads((TCG / "ovmf-d12-shim-sb.pcrs.json").read_text())
    assert changes[7].old.hex() == shipped_tpm["sha256"]["7"]

    out = tmp_path / "boot"
    proc = subprocess.run(["bash", str(TCG / "capture.sh"), "shim-sb", str(out)],
                          capture_output=True, text=True, timeout=scaled_timeout(900),
                          check=False, env={**os.environ, "SUITE": "bookworm",
                                            "VARS": str(new_vars), "KEEP_DISK": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    tpm = json.loads((out / "pcrs.json").read_text())
    assert tpm["sha256"]["7"] == changes[7].new.hex() != shipped_tpm["sha256"]["7"]
    assert (dry["old"], dry["new"]) == (shipped_tpm["sha256"]["7"], tpm["sha256"]["7"])
    assert store_part["new"] == through_separator(load_event_log(out / "eventlog.bin"))

    # With the boot disk, every claimed PCR (PCR 5's GPT too), event by event.
    full = predict(MachineInput(load_store(new_vars), chain, ("sha1", "sha256"),
                                disk=str(out / "disk.img"), grub_cfg=GRUB_CFG,
                                initrd=str(out / "initrd.img")))
    assert {2, 3, 4, 5, 6, 7, 8, 9, 14} <= set(full.predicted)
    assert compare_with_log(full, load_event_log(out / "eventlog.bin")) is None
    for bank in ("sha1", "sha256"):
        for pcr in full.predicted:
            assert full.banks[bank][pcr].hex() == tpm[bank][str(pcr)], f"{bank} PCR {pcr}"
