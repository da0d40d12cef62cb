"""``fw-vars audit --libvirt`` and ``fw-vars update --libvirt`` against a real libvirt: Debian
12's libvirtd (9.0) on ``qemu:///system``, started by tests/e2e/libvirt.sh where no init system
runs it, with Debian's OVMF (the ``ovmf`` package: libvirt's firmware descriptors in
/usr/share/qemu/firmware name it).

Domains (TCG, q35 with SMM, no disk), all named ``fwtools-e2e-<pid>-*`` and destroyed and
undefined (their NVRAM removed) at the end:

- ``auto``: firmware autoselection (``<os firmware='efi'>``, secure-boot + enrolled-keys).
  libvirt 9.0 picks the firmware at start, so its persistent XML never gains
  ``<loader>``/``<nvram>``: the store is found at libvirt's NVRAM path.
- ``explicit``: ``<loader>`` and ``<nvram template=...>PATH</nvram>``.
- ``filled``: ``<nvram template=.../>`` without a path: libvirt fills one in at define.
- ``fresh``: like ``explicit`` but never started: no NVRAM file yet. The audit reads the
  template; update writes the updated template where libvirt would copy the template, and at
  its first start libvirt takes that file (its owner root until then) and keeps it.
- ``live``: started and kept running (paused, so the firmware stops writing its store while
  the test compares bytes): the audit says running, update refuses it with exit 2 and its
  file keeps its bytes and inode; named as a plain file, QEMU's image lock refuses it too.

The first three are started once and destroyed, so libvirt creates their NVRAM from the
template, as at a VM's first start. After the update, ``explicit`` and ``fresh`` are started:
libvirt and QEMU take the rewritten (owner and mode kept) and the created file.

``<nvram format='qcow2'>`` needs libvirt 9.2; Debian 12's 9.0 drops the attribute (a
``.qcow2`` NVRAM path gets a raw copy of the template), so only raw NVRAM is tested here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from click.testing import CliRunner
from corpus.params import unavailable

from fwtools.cli.fw_vars import cli

URI: Final = "qemu:///system"
NVRAM_DIR: Final = Path("/var/lib/libvirt/qemu/nvram")
OVMF: Final = Path("/usr/share/OVMF")
START_SCRIPT: Final = Path(__file__).resolve().parent / "libvirt.sh"

_HEAD: Final = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
"""
_TAIL: Final = """  <features><acpi/><smm state='on'/></features>
  <devices><memballoon model='none'/></devices>
</domain>
"""
AUTO: Final = _HEAD + """  <os firmware='efi'>
    <type arch='x86_64' machine='q35'>hvm</type>
    <firmware>
      <feature enabled='yes' name='secure-boot'/>
      <feature enabled='yes' name='enrolled-keys'/>
    </firmware>
  </os>
""" + _TAIL
EXPLICIT: Final = _HEAD + f"""  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <loader readonly='yes' type='pflash' secure='yes'>{OVMF}/OVMF_CODE_4M.ms.fd</loader>
    <nvram template='{OVMF}/OVMF_VARS_4M.ms.fd' format='raw'>{{nvram}}</nvram>
  </os>
""" + _TAIL
FILLED: Final = EXPLICIT.replace(">{nvram}</nvram>", "/>")


def virsh(*args: str, check: bool = True) -> str:
    done = subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "LC_ALL": "C"})
    if check and done.returncode != 0:
        raise AssertionError(f"virsh {' '.join(args)}: exit {done.returncode}: "
                             f"{done.stderr.strip()}")
    return done.stdout


@pytest.fixture(scope="session")
def libvirt() -> str:
    """qemu:///system answering (tests/e2e/libvirt.sh); skipped, or under
    FWTOOLS_REQUIRE_CORPUS=1 failed, only when libvirt or OVMF is not installed or a user
    other than root finds no daemon running. A daemon root cannot start fails the test."""
    missing = [t for t in ("virsh", "libvirtd", "virtlogd") if shutil.which(t) is None]
    if missing or not (OVMF / "OVMF_CODE_4M.ms.fd").exists():
        unavailable(f"e2e: {', '.join(missing) or 'OVMF'} not installed (apt-get install "
                    "libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu ovmf)")
    done = subprocess.run(["bash", str(START_SCRIPT)], capture_output=True, text=True,
                          timeout=120, check=False)
    if done.returncode == 3:  # not root, and nothing runs libvirt: a developer's machine
        unavailable(f"e2e: {done.stderr.strip()}")
    assert done.returncode == 0, f"libvirt does not run here:\n{done.stdout}{done.stderr}"
    return URI


@pytest.fixture
def domains(libvirt: str) -> Iterator[dict[str, str]]:
    """The names of the test's domains (defined by the test); destroyed, undefined and their
    NVRAM removed afterwards, whatever the test did."""
    prefix = f"fwtools-e2e-{os.getpid()}-"
    names = {role: prefix + role for role in ("auto", "explicit", "filled", "fresh", "live")}
    try:
        yield names
    finally:
        defined = set(virsh("list", "--all", "--name", check=False).split())
        for name in names.values():
            if name in defined:
                virsh("destroy", name, check=False)
                virsh("undefine", "--nvram", name, check=False)
        for leftover in NVRAM_DIR.glob(prefix + "*"):
            leftover.unlink()


def define(name: str, xml: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.xml"
    path.write_text(xml)
    virsh("define", str(path))


def first_start(name: str) -> None:
    """Start and destroy: libvirt creates the NVRAM from the template, QEMU runs OVMF."""
    virsh("start", name)
    assert virsh("domstate", name).strip() == "running"
    virsh("destroy", name)


def fw_vars(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout


def by_vm(document: dict[str, Any], names: dict[str, str]) -> dict[str, dict[str, Any]]:
    rows = {row["vm"]: row for row in document["stores"] if row["vm"] in names.values()}
    return {role: rows[name] for role, name in names.items()}


def test_audit_and_update_through_libvirt(domains: dict[str, str], tmp_path: Path) -> None:
    explicit_nvram = NVRAM_DIR / f"{domains['explicit']}_VARS.fd"
    live_nvram = NVRAM_DIR / f"{domains['live']}_VARS.fd"
    define(domains["auto"], AUTO.format(name=domains["auto"]), tmp_path)
    define(domains["explicit"], EXPLICIT.format(name=domains["explicit"], nvram=explicit_nvram),
           tmp_path)
    define(domains["filled"], FILLED.format(name=domains["filled"]), tmp_path)
    define(domains["fresh"], EXPLICIT.format(
        name=domains["fresh"], nvram=NVRAM_DIR / f"{domains['fresh']}_VARS.fd"), tmp_path)
    define(domains["live"], EXPLICIT.format(name=domains["live"], nvram=live_nvram), tmp_path)

    # What libvirt 9.0 made of the definitions (the parsing in fwtools/fleet/sources.py).
    auto_xml = virsh("dumpxml", "--inactive", domains["auto"])
    assert "<loader" not in auto_xml and "<nvram" not in auto_xml
    filled_nvram = NVRAM_DIR / f"{domains['filled']}_VARS.fd"
    assert f">{filled_nvram}</nvram>" in virsh("dumpxml", "--inactive", domains["filled"])

    for role in ("auto", "explicit", "filled"):
        first_start(domains[role])
    auto_nvram = NVRAM_DIR / f"{domains['auto']}_VARS.fd"
    for path in (auto_nvram, explicit_nvram, filled_nvram):
        assert path.stat().st_uid != 0  # created by libvirt for QEMU's user (libvirt-qemu)
    virsh("start", domains["live"])
    # The live XML names what the running firmware uses.
    assert f">{live_nvram}</nvram>" in virsh("dumpxml", domains["live"])
    virsh("suspend", domains["live"])  # paused: QEMU is alive and still holds the store
    assert virsh("domstate", domains["live"]).strip() == "paused"
    live_before = live_nvram.read_bytes()
    live_inode = live_nvram.stat().st_ino

    code, out = fw_vars("audit", "--libvirt", URI, "--json")
    assert code == 1, out  # the 2011-only stores have error findings
    rows = by_vm(json.loads(out), domains)
    assert {role: row["running"] for role, row in rows.items()} == {
        "auto": False, "explicit": False, "filled": False, "fresh": False, "live": True}
    assert rows["auto"]["path"] == str(auto_nvram)
    assert rows["explicit"]["path"] == str(explicit_nvram)
    assert rows["filled"]["path"] == str(filled_nvram)
    assert rows["live"]["path"] == str(live_nvram)
    for role, row in rows.items():
        assert row["error"] is None, (role, row["error"])
        assert row["format"] == "edk2-raw"
        assert row["trusts"]["uefi-ca-2011"] and not row["trusts"]["uefi-ca-2023"], role
        assert row["secure_boot"]["mode"] == "user", (role, row["secure_boot"])
    assert rows["fresh"]["findings"][0]["code"] == "nvram-not-created"
    assert rows["explicit"]["template"] == str(OVMF / "OVMF_VARS_4M.ms.fd")
    assert rows["explicit"]["loader"] == str(OVMF / "OVMF_CODE_4M.ms.fd")

    stopped = {role: NVRAM_DIR / f"{domains[role]}_VARS.fd" for role in
               ("auto", "explicit", "filled")}
    owners = {role: (p.stat().st_uid, p.stat().st_gid, p.stat().st_mode) for role, p in
              stopped.items()}
    code, out = fw_vars("update", "--libvirt", URI, "--ca-2023", "--in-place", "--json")
    assert code == 2, out  # the running domain is refused
    updates = by_vm(json.loads(out), domains)
    assert {role: row["status"] for role, row in updates.items()} == {
        "auto": "updated", "explicit": "updated", "filled": "updated", "fresh": "updated",
        "live": "refused"}
    assert f"VM {domains['live']} is running" in updates["live"]["error"]
    fresh_nvram = NVRAM_DIR / f"{domains['fresh']}_VARS.fd"
    assert updates["fresh"]["written"] == str(fresh_nvram)
    assert fresh_nvram.stat().st_mode & 0o777 == 0o600
    assert live_nvram.read_bytes() == live_before
    assert live_nvram.stat().st_ino == live_inode
    # Named as a plain file, without libvirt's word: QEMU's image lock refuses it
    # (fwtools/fleet/locks.py), libvirt's QEMU holds it like any other.
    result = CliRunner().invoke(cli, ["update", str(live_nvram), "--ca-2023", "--in-place"],
                                catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert f"error: {live_nvram}: refused: " in result.stderr, result.output
    assert "image lock" in result.stderr, result.output
    assert live_nvram.read_bytes() == live_before
    assert live_nvram.stat().st_ino == live_inode
    for role, path in stopped.items():
        assert (path.stat().st_uid, path.stat().st_gid, path.stat().st_mode) == owners[role]

    def audit_2023(roles: tuple[str, ...]) -> None:
        _, out = fw_vars("audit", "--libvirt", URI, "--json")
        rows = by_vm(json.loads(out), domains)
        for role in roles:
            assert rows[role]["error"] is None, (role, rows[role]["error"])
            assert "nvram-not-created" not in {f["code"] for f in rows[role]["findings"]}, role
            assert all(rows[role]["trusts"][k] for k in (
                "kek-2023", "windows-uefi-ca-2023", "uefi-ca-2023", "option-rom-ca-2023")), role
        assert not rows["live"]["trusts"]["uefi-ca-2023"]

    audit_2023(("auto", "explicit", "filled", "fresh"))
    # libvirt and QEMU take the updated stores: the domains start and keep running, and the
    # created one is not replaced by the template at this first start.
    for role in ("explicit", "fresh"):
        virsh("start", domains[role])
    time.sleep(2)
    for role in ("explicit", "fresh"):
        assert virsh("domstate", domains[role]).strip() == "running", role
        virsh("destroy", domains[role])
    audit_2023(("explicit", "fresh"))


def test_fw_check_vm_takes_a_domain_by_name(libvirt: str, corpus: Any, tmp_path: Path) -> None:
    """``fw-check vm --libvirt-domain NAME --connect URI``: the firmware, store and fw_cfg of a
    domain libvirt holds (``virsh dumpxml``; defined, never started), and an unknown name is
    one error line with exit 2."""
    from fwtools.cli.fw_check_vm import command

    name = f"fwtools-e2e-{os.getpid()}-vm"
    nvram = tmp_path / f"{name}_VARS.fd"
    shutil.copyfile(OVMF / "OVMF_VARS_4M.ms.fd", nvram)
    # libvirt 9.0 refuses opt/ovmf/ names in <sysinfo type='fwcfg'> ("That firmware name is
    # reserved", src/qemu/qemu_validate.c): QEMU's own -fw_cfg is how a domain sets them.
    xml = EXPLICIT.format(name=name, nvram=nvram).replace(
        "<domain type='qemu'>",
        "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>",
    ).replace("</domain>", "  <qemu:commandline>\n    <qemu:arg value='-fw_cfg'/>\n"
              "    <qemu:arg value='name=opt/ovmf/PcdSetNxForStack,string=y'/>\n"
              "  </qemu:commandline>\n</domain>")
    define(name, xml, tmp_path)
    try:
        shim, grub, _ = corpus.boot_chain("bookworm", "amd64")
        result = CliRunner().invoke(command, ["--libvirt-domain", name, "--connect", URI,
                                              "--json", str(shim), str(grub)],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert doc["verdict"] == "boots" and doc["vars"] == str(nvram)
        assert doc["firmware"]["source"] == str(OVMF / "OVMF_CODE_4M.ms.fd")
        assert doc["firmware"]["basis"] == "known build"  # Debian 12's host OVMF
        assert doc["firmware"]["settings"]["stack_nx"] == {"value": True, "basis": "override"}
        assert doc["secure_boot"]["state"] == "on"
    finally:
        virsh("undefine", "--nvram", name, check=False)
    result = CliRunner().invoke(command, ["--libvirt-domain", name, "--connect", URI,
                                          str(shim)], catch_exceptions=False)
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert f"failed to get domain '{name}'" in result.stderr
