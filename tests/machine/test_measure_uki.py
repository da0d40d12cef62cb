"""PCR 11 of a UKI: sd-stub's section measurements, against systemd-measure (the oracle
systemd ships for exactly this) on a UKI built from Debian 12's stub with objcopy."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from corpus import Corpus
from corpus.params import need_tool, unavailable

from fwtools.formats.pe.authenticode import authenticode_digests
from fwtools.formats.pe.image import PeImage
from fwtools.formats.varstore.storeio import load_store
from fwtools.machine.measure import MachineInput, predict
from fwtools.machine.measure_sd import STUB_PAYLOAD_DEVICE_PATH

MEASURE = Path("/usr/lib/systemd/systemd-measure")


def build_uki(stub: Path, kernel: Path, tmp: Path) -> tuple[Path, dict[str, Path]]:
    need_tool("objcopy")
    parts = {"osrel": tmp / "osrel", "cmdline": tmp / "cmdline", "initrd": tmp / "initrd"}
    parts["osrel"].write_text("ID=debian\nVERSION_ID=12\n")
    parts["cmdline"].write_text("console=ttyS0 quiet")
    parts["initrd"].write_bytes(bytes(range(256)) * 391)
    out = tmp / "uki.efi"
    args = ["objcopy"]
    for name, path, vma in (("osrel", parts["osrel"], 0x20000),
                            ("cmdline", parts["cmdline"], 0x30000),
                            ("linux", kernel, 0x2000000),
                            ("initrd", parts["initrd"], 0x3000000)):
        args += ["--add-section", f".{name}={path}", "--change-section-vma",
                 f".{name}={vma:#x}"]
    subprocess.run([*args, str(stub), str(out)], check=True, capture_output=True)
    return out, {"linux": kernel, **parts}


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_pcr11_of_a_uki(suite: str, corpus: Corpus, tmp_path: Path) -> None:
    stub = corpus.file(suite, "amd64", "systemd-boot-efi",
                       "usr/lib/systemd/boot/efi/linuxx64.efi.stub")
    kernel = corpus.file("bookworm", "amd64", "linux-image-6.1.0-50-amd64", "boot/vmlinuz-*")
    uki, parts = build_uki(stub, kernel, tmp_path)
    store = load_store(corpus.package_dir("bookworm", "amd64", "ovmf")
                       / "usr/share/OVMF/OVMF_VARS_4M.fd")
    p = predict(MachineInput(store, [str(uki)], ("sha1", "sha256"), secure_boot=False))
    assert p.stages == [(str(uki), "uki")] and {4, 11} <= set(p.predicted)
    assert 9 in p.not_predicted and 12 in p.not_predicted  # the ESP's sidecars: no --disk
    # PCR 4: the UKI from the boot option, then (Secure Boot off) the .linux sd-stub loads,
    # whose Authenticode digest is the kernel file's
    images = [e for e in p.events if e.pcr == 4 and e.event_type == 0x80000003]
    kernel_digest = authenticode_digests(PeImage.open(kernel), ["sha256"], pad=False)
    assert [e.source for e in images] == ["edk2", "edk2"]
    assert images[1].digests["sha256"] == kernel_digest["sha256"]
    assert images[1].data.endswith(STUB_PAYLOAD_DEVICE_PATH)
    measured = [e.description.strip("'") for e in p.events if e.pcr == 11]
    sections = [".linux", ".osrel", ".cmdline", ".initrd"]
    if suite == "trixie":  # systemd 257 also measures the stub's own .sbat
        sections.append(".sbat")
    assert measured == [s for s in sections for _ in (0, 1)]
    if suite != "bookworm":
        return
    if not MEASURE.exists():
        unavailable(f"{MEASURE} (Debian's systemd) is not installed (.ci/run installs it)")
    # systemd-measure gives PCR 11 after the first boot phase, "enter-initrd".
    proc = subprocess.run([str(MEASURE), "calculate", *(f"--{k}={v}" for k, v in parts.items()),
                           "--bank=sha256", "--bank=sha1", "--phase=enter-initrd"],
                          check=True, capture_output=True, text=True)
    expected = dict(line.split(":", 1)[1].split("=") for line in proc.stdout.splitlines()
                    if line.startswith("11:"))
    for bank in ("sha1", "sha256"):
        value = p.banks[bank][11]
        phase = hashlib.new(bank, b"enter-initrd").digest()
        assert hashlib.new(bank, value + phase).hexdigest() == expected[bank]
