"""fw-check vm end to end on Debian's files: every verdict's JSON against
docs/schemas/fw-check-vm-1.schema.json, settings read from an unknown image, and
``--libvirt-domain NAME`` through a stand-in ``virsh`` on PATH."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import jsonschema
import pytest
from click.testing import CliRunner

from fwtools.cli.fw_check_vm import command

REPO: Final = Path(__file__).resolve().parents[2]
SCHEMA: Final = json.loads((REPO / "docs/schemas/fw-check-vm-1.schema.json").read_text())


def run(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(command, [str(a) for a in args], env=env,
                                catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def vm_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    code, out, err = run("--json", *args)
    assert code in (0, 1), err
    doc: dict[str, Any] = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    return code, doc


def test_schema_is_a_valid_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_boots_with_secure_boot(corpus: Any) -> None:
    shim, grub, kernel = corpus.boot_chain("trixie", "amd64")
    code, doc = vm_json("--firmware", corpus.ovmf("trixie", "OVMF_CODE_4M.secboot.fd"),
                        "--vars", corpus.ovmf("trixie", "OVMF_VARS_4M.ms.fd"),
                        shim, grub, kernel)
    assert (code, doc["verdict"], doc["refusal"]) == (0, "boots", None)
    assert doc["firmware"]["basis"] == "known build"
    assert doc["secure_boot"]["state"] == "on"
    assert [s["authority"]["kind"] for s in doc["stages"]] == [
        "db-certificate", "shim-vendor-certificate", "shim-vendor-certificate"]
    assert doc["stages"][1]["sbat"]["result"] == "pass"


def test_boots_with_secure_boot_off_on_ovmf_fd(corpus: Any) -> None:
    """Debian's OVMF.fd is the build without Secure Boot: everything loads."""
    shim, grub, _ = corpus.boot_chain("bookworm", "amd64")
    code, doc = vm_json("--firmware", corpus.ovmf("bookworm", "OVMF.fd"),
                        "--vars", corpus.ovmf("bookworm", "OVMF_VARS.ms.fd"), shim, grub)
    assert (code, doc["verdict"]) == (0, "boots")
    assert doc["firmware"]["profile"] == "debian12-ovmf"
    assert doc["firmware"]["settings"]["secure_boot_support"] == {"value": False,
                                                                  "basis": "known build"}
    assert doc["secure_boot"]["state"] == "off"
    assert {s["authority"]["kind"] for s in doc["stages"]} == {"secure-boot-off"}


def test_refused_by_the_firmware(corpus: Any) -> None:
    """Debian's snakeoil store trusts only its test key: Microsoft-signed shim is refused."""
    shim, grub, _ = corpus.boot_chain("trixie", "amd64")
    code, doc = vm_json("--firmware", corpus.ovmf("trixie", "OVMF_CODE_4M.snakeoil.fd"),
                        "--vars", corpus.ovmf("trixie", "OVMF_VARS_4M.snakeoil.fd"), shim, grub)
    assert (code, doc["verdict"]) == (1, "refused")
    assert (doc["refusal"]["stage"], doc["refusal"]["by"]) == (1, "firmware")
    assert doc["stages"][0]["allowed"] is False and doc["stages"][0]["authority"] is None


def test_refused_by_shim_sbat(corpus: Any, tmp_path: Path) -> None:
    from fwtools.cli.fw_vars import cli as fw_vars

    shim, grub, _ = corpus.boot_chain("trixie", "amd64")
    store = tmp_path / "sbat-grub.fd"
    made = CliRunner().invoke(fw_vars, [
        "sbat-level", str(corpus.ovmf("trixie", "OVMF_VARS_4M.ms.fd")), "--level",
        "sbat,1,2099010100\ngrub,99\n", "-o", str(store)])
    assert made.exit_code == 0, made.output
    code, doc = vm_json("--firmware", corpus.ovmf("trixie", "OVMF_CODE_4M.secboot.fd"),
                        "--vars", store, shim, grub)
    assert (code, doc["verdict"], doc["refusal"]["by"]) == (1, "refused", "shim")
    sbat = doc["stages"][1]["sbat"]
    assert sbat["result"] == "fail" and sbat["failed_row"]["component"] == "grub"


def test_faults_on_the_strict_lab_profile(corpus: Any) -> None:
    """Debian 12's GRUB 2.06 faults (W^X) on the strict-NX lab build when it starts the
    kernel (tests/machine/test_vm_disks.py::test_strict_nx_lab_firmware on a disk)."""
    shim, grub, kernel = corpus.boot_chain("bookworm", "amd64")
    code, doc = vm_json("--firmware", "debian13-ovmf-lab-strict",
                        "--vars", corpus.ovmf("bookworm", "OVMF_VARS_4M.ms.fd"),
                        shim, grub, kernel)
    assert (code, doc["verdict"]) == (1, "faults")
    assert doc["firmware"]["kind"] == "profile" and doc["firmware"]["sha256"] is None
    assert doc["faults"] and doc["faults"][0]["stage"] == "grub"


def _unknown_aavmf(corpus: Any, tmp_path: Path) -> Path:
    """Debian 13's strict-NX AAVMF with one erased byte of free space changed: no known
    build, the same code (tests/machine/test_firmware_id.py::_unknown_build)."""
    from fwtools.formats.pi import FirmwareImage

    data = bytearray(corpus.aavmf("trixie", "AAVMF_CODE.secboot.strictnx.fd").read_bytes())
    fv = FirmwareImage.parse(bytes(data)).volumes[0]
    at = fv.offset + fv.length - 0x100
    assert data[at] == 0xFF
    data[at] = 0
    out = tmp_path / "AAVMF_CODE.custom.fd"
    out.write_bytes(data)
    return out


def test_unknown_image_reports_what_it_read(corpus: Any, tmp_path: Path) -> None:
    """Without --profile: exit 2 naming what was read and only what cannot be; with it, the
    read settings keep the basis "read from the image" and the rest are the profile's."""
    code_file = _unknown_aavmf(corpus, tmp_path)
    shim, grub, _ = corpus.boot_chain("trixie", "arm64")
    store = corpus.aavmf("trixie", "AAVMF_VARS.ms.fd")
    code, out, err = run("--firmware", code_file, "--vars", store, shim, grub)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "not a known build" in err and "edk2 release edk2-stable202502" in err
    assert "NX policy 0xc000000000007fd5" in err
    cannot = err.split("cannot tell", 1)[1]
    assert "image_protection" in cannot and "nx_policy" not in cannot
    assert "edk2_release" not in cannot and "--profile NAME" in cannot

    code, doc = vm_json("--firmware", code_file, "--vars", store, "--profile", "armvirt",
                        shim, grub)
    settings = doc["firmware"]["settings"]
    assert (doc["firmware"]["basis"], doc["firmware"]["identified"]) == ("override", None)
    read = {k for k, v in settings.items() if v["basis"] == "read from the image"}
    assert read == {"edk2_release", "nx_policy", "secure_boot_support"}
    assert settings["edk2_release"]["value"] == 202502
    assert settings["nx_policy"]["hex"] == "0xc000000000007fd5"
    assert settings["image_protection"]["basis"] == "override"
    assert doc["secure_boot"]["state"] == "on" and doc["verdict"] == "boots"


# -- --libvirt-domain NAME -------------------------------------------------------------------

FAKE_VIRSH = """#!/bin/sh
# A stand-in for virsh: records how it was called, knows one domain.
echo "$* LIBVIRT_DEFAULT_URI=${LIBVIRT_DEFAULT_URI:-}" >> "LOG"
[ "$LC_ALL" = C ] || { echo "not in the C locale" >&2; exit 1; }
[ "$1" = -c ] && shift 2
case "$1 $2" in
  "dumpxml deb") cat "XML" ;;
  dumpxml*) echo "error: failed to get domain '$2'" >&2; exit 1 ;;
  *) echo "unexpected $*" >&2; exit 1 ;;
esac
"""


@pytest.fixture
def fake_virsh(corpus: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``virsh`` on PATH answering ``dumpxml deb`` with a domain of Debian 13's Secure Boot
    OVMF and its .ms store; returns the file it logs its arguments to."""
    xml = tmp_path / "deb.xml"
    xml.write_text(f"""<domain type='kvm'>
  <name>deb</name>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <loader readonly='yes' secure='yes' type='pflash'>{
        corpus.ovmf("trixie", "OVMF_CODE_4M.secboot.fd")}</loader>
    <nvram>{corpus.ovmf("trixie", "OVMF_VARS_4M.ms.fd")}</nvram>
  </os>
  <sysinfo type='fwcfg'><entry name='opt/ovmf/PcdSetNxForStack'>y</entry></sysinfo>
</domain>
""")
    log = tmp_path / "virsh.log"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    virsh = bindir / "virsh"
    virsh.write_text(FAKE_VIRSH.replace("LOG", str(log)).replace("XML", str(xml)))
    virsh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    return log


def test_libvirt_domain_by_name(corpus: Any, fake_virsh: Path) -> None:
    shim, grub, _ = corpus.boot_chain("trixie", "amd64")
    code, doc = vm_json("--libvirt-domain", "deb", "--connect", "qemu:///system", shim, grub)
    assert (code, doc["verdict"]) == (0, "boots")
    assert doc["vars"] == str(corpus.ovmf("trixie", "OVMF_VARS_4M.ms.fd"))
    assert doc["firmware"]["profile"] == "debian13-ovmf"
    assert doc["firmware"]["settings"]["stack_nx"] == {"value": True, "basis": "override"}
    assert fake_virsh.read_text().splitlines() == [
        "-c qemu:///system dumpxml deb LIBVIRT_DEFAULT_URI="]


def test_libvirt_domain_default_uri(corpus: Any, fake_virsh: Path) -> None:
    """Without --connect, virsh itself takes LIBVIRT_DEFAULT_URI (no -c is passed)."""
    shim, grub, _ = corpus.boot_chain("trixie", "amd64")
    code, _, err = run("--libvirt-domain", "deb", shim, grub,
                       env={"LIBVIRT_DEFAULT_URI": "qemu:///session"})
    assert code == 0, err
    assert fake_virsh.read_text().splitlines() == [
        "dumpxml deb LIBVIRT_DEFAULT_URI=qemu:///session"]


def test_libvirt_domain_unknown(corpus: Any, fake_virsh: Path) -> None:
    shim = corpus.shim("trixie", "amd64")
    code, out, err = run("--libvirt-domain", "nosuch", "--connect", "qemu:///system", shim)
    assert (code, out) == (2, "")
    assert err == ("error: virsh -c qemu:///system dumpxml nosuch: error: failed to get "
                   "domain 'nosuch'\n")


def test_libvirt_domain_without_virsh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, out, err = run("--libvirt-domain", "deb", "x.efi")
    assert (code, out) == (2, "")
    assert err == "error: --libvirt-domain NAME needs virsh (Debian: libvirt-clients)\n"


def test_libvirt_domain_xml_file_is_not_a_name(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A path (an existing file, a '/', or '.xml') is read as a file: a missing one is a
    file error, and virsh is never asked."""
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = run("--libvirt-domain", "missing.xml", "x.efi")
    assert code == 2 and "missing.xml" in err and "virsh" not in err
    code, _, err = run("--connect", "qemu:///system", "--firmware", "ovmf", "--vars", "v",
                       "x.efi")
    assert code == 2 and "--connect URI goes with --libvirt-domain NAME" in err


def test_refusal_names_the_revoked_certificate(corpus: Any, tmp_path: Path) -> None:
    """db and dbx both hold the test CA (fw-vars enroll --db/--dbx with the certificate):
    the firmware refuses an image its key signed, and the JSON names the dbx certificate."""
    import hashlib

    from fwtools.cli.fw_vars import cli as fw_vars

    ca = REPO / "testdata" / "sample" / "test-ca.der"
    store = tmp_path / "dbx-ca.fd"
    made = CliRunner().invoke(fw_vars, [
        "enroll", str(corpus.ovmf("trixie", "OVMF_VARS_4M.fd")), "--pk",
        "generate:fwtools test PK", "--microsoft", "--db", str(ca), "--dbx", str(ca),
        "-o", str(store)])
    assert made.exit_code == 0, made.output
    code, doc = vm_json("--firmware", corpus.ovmf("trixie", "OVMF_CODE_4M.secboot.fd"),
                        "--vars", store, REPO / "testdata" / "sample" / "hello-nx.signed.efi")
    assert (code, doc["verdict"]) == (1, "refused")
    assert (doc["refusal"]["stage"], doc["refusal"]["by"]) == (1, "firmware")
    assert doc["refusal"]["revoked_by"] == {
        "kind": "dbx-certificate", "subject": "CN=fwtools test CA,O=fwtools test",
        "sha256": hashlib.sha256(ca.read_bytes()).hexdigest()}
    assert "dbx cert CN=fwtools test CA" in doc["refusal"]["reason"]
    code, out, _ = run("--firmware", corpus.ovmf("trixie", "OVMF_CODE_4M.secboot.fd"),
                       "--vars", store, REPO / "testdata" / "sample" / "hello-nx.signed.efi",
                       "--html", tmp_path / "vm.html")
    sha256 = doc["refusal"]["revoked_by"]["sha256"]
    assert code == 1
    assert f"revoked by: dbx-certificate CN=fwtools test CA,O=fwtools test (sha256 {sha256})" in out
    page = (tmp_path / "vm.html").read_text()
    assert 'data-field="refusal.revoked_by.sha256"' in page and sha256 in page
