"""A libvirt domain as the three files of a machine: ``<loader>`` (firmware code),
``<nvram>`` (the store; read with :func:`fwtools.fleet.sources.parse_domain_xml`), the first
``<disk device='disk'>`` with a file source, and the VM's fw_cfg entries: libvirt's
``<sysinfo type='fwcfg'><entry name=...>`` and ``-fw_cfg name=...,string=...`` arguments in
``<qemu:commandline>`` (https://libvirt.org/formatdomain.html#fw-cfg-sysinfo)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fwtools.errors import UsageError

_QEMU_NS = "{http://libvirt.org/schemas/domain/qemu/1.0}"


@dataclass
class DomainMachine:
    name: str | None
    loader: str | None
    nvram: str | None
    disk: str | None
    arch: str | None
    fw_cfg: dict[str, str] = field(default_factory=dict)


def read_domain(path: str) -> DomainMachine:
    """The machine a domain XML file describes; UsageError when it names no UEFI NVRAM."""
    import xml.etree.ElementTree as ET

    from fwtools._base.fileio import read_file
    from fwtools.fleet.sources import parse_domain_xml

    raw = read_file(path)
    ref = parse_domain_xml(raw, origin=path)
    if ref is None:
        raise UsageError(f"{path}: the domain has no UEFI firmware")
    if ref.error:
        raise UsageError(ref.error)
    root = ET.fromstring(raw)  # well-formed and DTD-free: parse_domain_xml checked
    disk = None
    for d in root.iterfind("./devices/disk"):
        if d.get("device", "disk") != "disk":
            continue
        src = d.find("source")
        if src is not None and src.get("file"):
            disk = src.get("file")
            break
    fw_cfg: dict[str, str] = {}
    for sysinfo in root.iterfind("sysinfo"):
        if sysinfo.get("type") == "fwcfg":
            for entry in sysinfo.iterfind("entry"):
                if entry.get("name") and entry.get("file") is None:
                    fw_cfg[entry.get("name", "")] = (entry.text or "").strip()
    args = [a.get("value", "") for a in root.iterfind(f"{_QEMU_NS}commandline/{_QEMU_NS}arg")]
    for i, a in enumerate(args[:-1]):
        if a == "-fw_cfg":
            parts = dict(p.partition("=")[::2] for p in args[i + 1].split(","))
            if "name" in parts and "string" in parts:
                fw_cfg[parts["name"]] = parts["string"]
    return DomainMachine(ref.vm, ref.loader, ref.path, disk, ref.architecture, fw_cfg)
