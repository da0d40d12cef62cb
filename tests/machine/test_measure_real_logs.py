"""PCR prediction against the three real boots in testdata/tcg: a prediction made from the
same store, shim, grub and kernel (the Debian corpus, as testdata/tcg/README.md lists them)
equals the logged events and the TPM's PCR values for every PCR it claims."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from corpus import Corpus

from fwtools.formats.tcg.eventtypes import EV_NO_ACTION
from fwtools.formats.tcg.layout import ALGORITHM_IDS
from fwtools.formats.tcg.log import EventLog, load_event_log
from fwtools.formats.varstore.storeio import load_store
from fwtools.machine.measure import MachineInput, Prediction, predict

TCG = Path(__file__).resolve().parents[2] / "testdata" / "tcg"
BANKS = ("sha1", "sha256", "sha384", "sha512")
GRUB_CFG = ("set timeout=0\nlinux /vmlinuz console=ttyS0 panic=-1 loglevel=1\n"
            "initrd /initrd.img\nboot\n")
INITRD = b"not the initrd of the capture"
SUITE = {"ovmf-d12-kernel": "bookworm", "ovmf-d12-shim-sb": "bookworm",
         "ovmf-d13-shim-sb": "trixie"}


def tpm(case: str) -> dict[str, dict[int, bytes]]:
    doc = json.loads((TCG / f"{case}.pcrs.json").read_text())
    return {bank: {int(k): bytes.fromhex(v) for k, v in values.items()}
            for bank, values in doc.items()}


def gpt_disk(log: EventLog, path: Path) -> Path:
    """A sparse disk image holding the GPT the firmware logged (header at LBA 1, entries at
    the LBA the header names): what --disk reads back."""
    gpt = next(e for e in log.events if e.event_type == 0x80000006)
    data = gpt.data
    header, count = data[:92], int.from_bytes(data[92:100], "little")
    entries = data[100:]
    entry_lba = int.from_bytes(header[72:80], "little")
    with path.open("wb") as f:
        f.truncate(64 << 20)
        f.seek(512)
        f.write(header)
        f.seek(entry_lba * 512)
        f.write(entries)
    assert count == 1
    return path


def make(case: str, corpus: Corpus, tmp_path: Path, **extra: object) -> tuple[Prediction,
                                                                                EventLog]:
    suite = SUITE[case]
    log = load_event_log(TCG / f"{case}.eventlog.bin")
    kernel = next(corpus.package_dir(suite, "amd64", name)
                  for name in ("linux-image-6.1.0-50-amd64", "linux-image-6.12.117+deb13-amd64")
                  if _has(corpus, suite, name))
    vmlinuz = str(next(kernel.glob("boot/vmlinuz-*")))
    ovmf = corpus.package_dir(suite, "amd64", "ovmf") / "usr/share/OVMF"
    if case.endswith("kernel"):
        machine = MachineInput(load_store(ovmf / "OVMF_VARS_4M.fd"), [vmlinuz], BANKS,
                               qemu_kernel=True)
    else:
        shim = corpus.file(suite, "amd64", "shim-signed", "usr/lib/shim/shimx64.efi.signed")
        grub = corpus.file(suite, "amd64", "grub-efi-amd64-signed",
                           "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed")
        machine = MachineInput(load_store(ovmf / "OVMF_VARS_4M.ms.fd"),
                               [str(shim), str(grub), vmlinuz], BANKS,
                               disk=str(gpt_disk(log, tmp_path / "disk.img")),
                               grub_cfg=GRUB_CFG, initrd=str(fake_initrd(tmp_path)))
    for key, value in extra.items():
        setattr(machine, key, value)
    return predict(machine), log


def fake_initrd(tmp_path: Path) -> Path:
    """Not the boot's initrd (it is not committed: its cpio carries file times): the events
    that hash it are checked for position and type, and their logged digests replayed."""
    path = tmp_path / "initrd.img"
    path.write_bytes(INITRD)
    return path


def _has(corpus: Corpus, suite: str, name: str) -> bool:
    try:
        corpus.package_dir(suite, "amd64", name)
    except LookupError:
        return False
    return True


@pytest.mark.parametrize("case", sorted(SUITE))
def test_prediction_equals_the_real_boot(case: str, corpus: Corpus, tmp_path: Path) -> None:
    prediction, log = make(case, corpus, tmp_path)
    claimed = set(prediction.predicted)
    assert {7, 5, 2, 3, 6} <= claimed
    if case.endswith("shim-sb"):
        assert {4, 8, 9, 14} <= claimed
    else:
        assert 9 not in claimed
    assert not claimed & {0, 1}
    # Event by event, per claimed PCR: type and every bank's digest; data where hashed.
    logged = [e for e in log.events if e.event_type != EV_NO_ACTION and e.pcr in claimed]
    assert [(e.pcr, e.event_type) for e in prediction.events if e.pcr in claimed] == \
        [(e.pcr, e.event_type) for e in logged]
    pcr9 = {bank: bytes(hashlib.new(bank).digest_size) for bank in BANKS}
    for mine, real in zip(prediction.events, logged, strict=True):
        initrd = mine.what.startswith("the initrd")
        for bank in BANKS:
            theirs = real.digests[ALGORITHM_IDS[bank]]
            if initrd:
                assert mine.digests[bank] == hashlib.new(bank, INITRD).digest()
            else:
                assert mine.digests[bank] == theirs, \
                    f"{bank} #{real.index} PCR {real.pcr} {mine.description}"
            if mine.pcr == 9:
                pcr9[bank] = hashlib.new(bank, pcr9[bank] + theirs).digest()
        if mine.hashed is not None and mine.event_type != 0x80000006:
            assert mine.data == real.data, f"#{real.index}"
    measured = tpm(case)
    for bank in BANKS:
        for pcr in claimed - {9}:
            assert prediction.banks[bank][pcr] == measured[bank][pcr], f"{bank} PCR {pcr}"
        if 9 in claimed:  # with the real initrd's digests where the initrd is hashed
            assert pcr9[bank] == measured[bank][9]
