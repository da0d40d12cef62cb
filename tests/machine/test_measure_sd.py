"""systemd-boot and systemd-stub measurements (fwtools/machine/measure_sd.py) without a boot:
the cpio sd-stub wraps UKI sections in (read back by ``cpio``), the command line it passes,
the initrd it assembles, systemd-boot's loader.conf event, and what an ESP with credentials
or add-ons does to the claims. tests/e2e/test_fw_pcr_predict_cases.py holds the same rules
against real boots."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from corpus import Corpus
from corpus.params import need_tool

from fwtools.formats.pe.image import PeImage
from fwtools.formats.tcg.log import parse_event_log
from fwtools.formats.varstore.storeio import load_store
from fwtools.machine.measure import MachineInput, events_to_log, predict
from fwtools.machine.measure_sd import (
    LOADER_CONF_TAG,
    cpio_literal,
    loader_conf_event,
    mangle_stub_cmdline,
    stub_cmdline,
    stub_initrd,
)

sys.path[:0] = [str(Path(__file__).resolve().parent),
                str(Path(__file__).resolve().parents[1] / "formats" / "disk")]


def test_cpio_literal_is_a_newc_archive(tmp_path: Path) -> None:
    busybox = need_tool("busybox")  # busybox-static, as testdata/tcg/capture.sh uses
    data = b'ID=debian\nNAME="Debian GNU/Linux"\n'
    archive = cpio_literal(data, ".extra", "os-release")
    assert len(archive) % 4 == 0 and archive.startswith(b"070701")
    listing = subprocess.run([busybox, "cpio", "-itv"], input=archive, capture_output=True,
                             check=True).stdout.decode()
    rows = [line.split() for line in listing.splitlines()]
    assert [(r[0], r[-1]) for r in rows] == [("dr-xr-xr-x", ".extra"),
                                            ("-r--r--r--", ".extra/os-release")]
    subprocess.run([busybox, "cpio", "-id"], input=archive, cwd=tmp_path, check=True)
    assert (tmp_path / ".extra" / "os-release").read_bytes() == data
    # nested directories get their parents first (pack_cpio_prefix)
    nested = cpio_literal(b"x", "a/b", "f")
    assert nested.count(b"070701") == 4 and b"a\0" in nested and b"a/b/f\0" in nested


def test_mangle_stub_cmdline() -> None:
    assert mangle_stub_cmdline("console=ttyS0 quiet\n") == "console=ttyS0 quiet"
    assert mangle_stub_cmdline("a\tb\r\nc  ") == "a b  c"


def test_loader_conf_event() -> None:
    event = loader_conf_event(b"timeout 3\n", ["sha256"])
    record = parse_event_log(events_to_log([event], ["sha256"])).events[1]
    assert record.pcr == 5 and record.event_type == 6
    assert record.data[:8] == LOADER_CONF_TAG.to_bytes(4, "little") + (24).to_bytes(4, "little")
    assert record.data[8:] == "loader.conf\0".encode("utf-16-le")
    assert event.digests["sha256"] == hashlib.sha256(b"timeout 3\n").digest()


def _uki(corpus: Corpus, tmp: Path, cmdline: str, initrd: bytes) -> Path:
    from corpus.uki import build_uki_with_objcopy

    parts = {".osrel": tmp / "osrel", ".cmdline": tmp / "cmdline", ".initrd": tmp / "initrd",
             ".linux": corpus.kernel("trixie", "amd64")}
    parts[".osrel"].write_bytes(b"ID=debian\n")
    parts[".cmdline"].write_text(cmdline)
    parts[".initrd"].write_bytes(initrd)
    out = tmp / "uki.efi"
    build_uki_with_objcopy(corpus.systemd_boot("trixie", "linuxx64.efi.stub"), parts, out)
    return out


def test_stub_cmdline_and_initrd(corpus: Corpus, tmp_path: Path) -> None:
    uki = PeImage.open(_uki(corpus, tmp_path, "console=ttyS0 quiet\n", b"INITRD"))
    assert stub_cmdline(uki) == "console=ttyS0 quiet"
    # .initrd padded to 4 bytes, then .osrel as /.extra/os-release (systemd 257)
    assert stub_initrd(uki) == b"INITRD\0\0" + cpio_literal(b"ID=debian\n", ".extra",
                                                            "os-release")


def test_esp_sidecars_withdraw_pcr_9_and_12(corpus: Corpus, tmp_path: Path) -> None:
    from vm_builder import build_sdboot_disk

    uki = _uki(corpus, tmp_path, "console=ttyS0", b"INITRD")
    kernel = corpus.kernel("trixie", "amd64")
    sd_boot = corpus.systemd_boot("trixie")
    store = load_store(corpus.ovmf_dir("trixie") / "OVMF_VARS_4M.fd")
    plain = tmp_path / "plain"
    plain.mkdir()
    disk = build_sdboot_disk(plain, sd_boot, kernel, uki, default="debian-uki*")
    p = predict(MachineInput(store, [str(sd_boot), str(uki)], ["sha256"], disk=str(disk)))
    assert {4, 5, 9, 11, 12} <= set(p.predicted) and p.banks["sha256"][12] == bytes(32)
    conf = next(e for e in p.events if e.pcr == 5 and e.event_type == 6)
    assert conf.hashed == b"timeout 3\ndefault debian-uki*\n"
    # the same ESP with a global credential: sd-stub would measure it (PCR 12) and pass it
    # in the initrd (PCR 9)
    creds = tmp_path / "creds"
    creds.mkdir()
    disk = build_sdboot_disk(creds, sd_boot, kernel, uki, default="debian-uki*",
                             extra={"loader/credentials/password.cred": b"secret"})
    q = predict(MachineInput(store, [str(sd_boot), str(uki)], ["sha256"], disk=str(disk)))
    assert 9 in q.not_predicted and "password.cred" in q.not_predicted[12]
    assert 11 in q.predicted and 4 in q.predicted


def test_predict_cli_json_for_systemd_boot(corpus: Corpus, tmp_path: Path) -> None:
    import json

    import jsonschema
    from click.testing import CliRunner
    from vm_builder import build_sdboot_disk

    from fwtools.cli.fw_pcr import cli

    uki = _uki(corpus, tmp_path, "console=ttyS0", b"INITRD")
    sd_boot = corpus.systemd_boot("trixie")
    disk = build_sdboot_disk(tmp_path, sd_boot, corpus.kernel("trixie", "amd64"), uki,
                             default=None)
    store = corpus.ovmf_dir("trixie") / "OVMF_VARS_4M.fd"
    result = CliRunner().invoke(cli, ["predict", "--json", "--vars", str(store), str(sd_boot),
                                      str(uki), "--disk", str(disk)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    schema = Path(__file__).resolve().parents[2] / "docs/schemas/fw-pcr-1.schema.json"
    jsonschema.validate(doc, json.loads(schema.read_text()))
    assert [c["kind"] for c in doc["chain"]] == ["systemd-boot", "uki"]
    assert "systemd-boot" in {e["source"] for e in doc["events"]}
