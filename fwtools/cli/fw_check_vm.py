"""``fw-check vm``: will this machine boot? One verdict from the firmware, the variable
store and the disk (or the chain's files), with the reasons (docs/fw-check.md)."""

from __future__ import annotations

import sys
from typing import Any

import click

from fwtools.cli.common import CONTEXT, EXIT_FINDINGS, EXIT_OK, INPUT_FILE, Command, fail

_ARCH = {"x64": "x64", "aarch64": "aa64", "aa64": "aa64"}


def _render(doc: dict[str, Any]) -> None:
    fw = doc["firmware"]
    ident = fw["identified"] or fw["source"]
    click.echo(f"firmware: {ident} -> profile {fw['profile']} ({fw['basis']})")
    for name, s in fw["settings"].items():
        value = s.get("hex", s["value"])
        click.echo(f"  {name:<27} {value!s:<20} {s['basis']}")
    sb = doc["secure_boot"]
    click.echo(f"secure boot: {sb['state']} ({sb['reason']})")
    for st in doc["stages"]:
        auth = st["authority"]
        who = ""
        if auth is not None:
            who = f" [{auth['kind']}" + (f": {auth['subject']}" if auth["subject"] else "") + "]"
        state = {True: "allowed", False: "REFUSED", None: "-"}[st["allowed"]]
        click.echo(f"  {st['index']}. {st['path']}  ({st['family']}, loaded by "
                   f"{st['loaded_by']}) {state}{who}")
        click.echo(f"     found: {st['found_by']}")
        if st["sbat"] is not None:
            sb_ = st["sbat"]
            row = sb_["failed_row"]
            extra = (f": {row['component']},{row['generation']} < {row['minimum']}"
                     if row else "")
            click.echo(f"     sbat: {sb_['result']} against {sb_['level'] or '-'} "
                       f"({sb_['source']}){extra}")
    if doc["chain_stopped"]:
        click.echo(f"  chain ends: {doc['chain_stopped']}")
    ref = doc["refusal"]
    if ref is not None:
        click.echo(f"refused: stage {ref['stage']} by {ref['by']}: {ref['reason']}")
        rev = ref.get("revoked_by")
        if rev is not None:
            click.echo(f"  revoked by: {rev['kind']} {rev['subject'] or '-'}"
                       + (f" (sha256 {rev['sha256']})" if rev["sha256"] else ""))
        for line in ref["message"].splitlines():
            click.echo(f"  console: {line}")
    for f in doc["faults"]:
        click.echo(f"fault: {f['stage']}: {f['fault']} at {f['address_hex']} "
                   f"({f['operation']}, {f['access']}): {f['explanation']}")
    for note in doc["notes"] + fw["notes"]:
        click.echo(f"note: {note}")
    click.echo(f"verdict: {doc['verdict']} - {doc['reason']}")


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("chain", nargs=-1, type=INPUT_FILE)
@click.option("--firmware", metavar="CODE|PROFILE",
              help="Firmware code file (OVMF_CODE*.fd, AAVMF_CODE*.fd) or a profile name.")
@click.option("--vars", "vars_path", type=INPUT_FILE, metavar="VARS",
              help="The VM's variable store (raw, qcow2 or JSON).")
@click.option("--disk", type=INPUT_FILE, metavar="DISK", help="The VM's disk (raw or qcow2).")
@click.option("--libvirt-domain", "domain", metavar="NAME|XML",
              help="Take firmware, store, disk and fw_cfg from a libvirt domain: its name "
              "(virsh dumpxml NAME) or a domain XML file.")
@click.option("--connect", "uri", metavar="URI",
              help="libvirt connection for --libvirt-domain NAME (default: "
              "LIBVIRT_DEFAULT_URI, else virsh's default).")
@click.option("--profile", metavar="NAME",
              help="Firmware profile to use for an unknown firmware file (overrides the "
              "identification).")
@click.option("--fw-cfg", "fw_cfg", multiple=True, metavar="NAME=VALUE",
              help="A QEMU fw_cfg entry of the VM (opt/ovmf/PcdSetNxForStack, "
              "opt/org.tianocore/UninstallMemAttrProtocol). Repeatable.")
@click.option("--arch", type=click.Choice(["x64", "aa64"]), help="Architecture.")
@click.option("--kernel", type=INPUT_FILE, metavar="PATH",
              help="The kernel GRUB or systemd-boot loads (when the configuration is too "
              "dynamic to follow).")
@click.option("--json", "as_json", is_flag=True, help="JSON (fwtools.fw-check.vm/1).")
@click.option("--sarif", "sarif", type=click.Path(dir_okay=False),
              help="Also write SARIF 2.1.0 here.")
@click.option("--html", "html", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write a self-contained HTML report here.")
def command(chain: tuple[str, ...], firmware: str | None, vars_path: str | None,
            disk: str | None, domain: str | None, uri: str | None, profile: str | None,
            fw_cfg: tuple[str, ...], arch: str | None, kernel: str | None, as_json: bool,
            sarif: str | None, html: str | None) -> None:
    """Say whether a VM boots: the firmware (--firmware), its variable store (--vars) and
    its disk (--disk) or the chain's files (CHAIN, first stage first), with Secure Boot as
    the store sets it, trust per stage as firmware, shim and GRUB apply it, and the W^X
    replay.

    Exit status: 0 boots; 1 faults or refused; 2 usage error or unreadable input.
    """
    from fwtools.errors import FwError
    from fwtools.machine.firmware_id import parse_fw_cfg
    from fwtools.machine.vm import check_vm

    try:
        cfg = parse_fw_cfg(fw_cfg)
        if uri and not domain:
            fail("--connect URI goes with --libvirt-domain NAME")
        if domain:
            from fwtools.machine import domain as libvirt

            if libvirt.looks_like_domain_name(domain):
                dom = libvirt.libvirt_domain(domain, uri)
            else:
                dom = libvirt.read_domain(domain)
            if not firmware and not dom.loader:
                fail(f"{domain}: the domain names no firmware <loader> (with firmware "
                     "autoselection libvirt picks it at start): give --firmware CODE|PROFILE")
            firmware = firmware or dom.loader
            vars_path = vars_path or dom.nvram
            if not chain:
                disk = disk or dom.disk
            arch = arch or _ARCH.get(dom.arch or "")
            cfg = {**dom.fw_cfg, **cfg}
        if not firmware:
            fail("--firmware CODE|PROFILE is required")
        if not vars_path:
            fail("--vars VARS is required")
        if (disk is None) == (not chain):
            fail("give either --disk DISK or the chain's files (CHAIN...)")
        result = check_vm(firmware, vars_path, disk=disk, chain=chain,
                          arch=arch, kernel=kernel, profile=profile,  # type: ignore[arg-type]
                          fw_cfg=cfg)
    except (FwError, OSError) as exc:
        fail(str(exc))
    from fwtools.report.vm_json import vm_document

    doc = vm_document(result)
    if sarif or html:
        from fwtools._base.atomic import atomic_write

        try:
            if sarif:
                from fwtools._base.jsontext import dumps_indented
                from fwtools.report.vm_json import vm_sarif

                atomic_write(sarif, (dumps_indented(vm_sarif(result)) + "\n").encode())
            if html:
                from fwtools.report.html_vm import render_vm_html

                atomic_write(html, render_vm_html(doc).encode("utf-8"))
        except (FwError, OSError) as exc:
            fail(str(exc))
    if as_json:
        from fwtools.cli.common import print_json

        print_json(doc)
    else:
        _render(doc)
    sys.exit(EXIT_OK if result.verdict == "boots" else EXIT_FINDINGS)


def main(argv: list[str]) -> None:
    command(args=argv, prog_name="fw-check vm")
