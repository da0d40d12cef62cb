"""A libvirt domain as the three files of a machine: ``<loader>`` (firmware code),
``<nvram>`` (the store; read with :func:`fwtools.fleet.sources.parse_domain_xml`), the first
``<disk device='disk'>`` with a file source, and the VM's fw_cfg entries: libvirt's
``<sysinfo type='fwcfg'><entry name=...>`` and ``-fw_cfg name=...,string=...`` arguments in
``<qemu:commandline>`` (https://libvirt.org/formatdomain.html#fw-cfg-sysinfo).

The XML comes from a file, or from libvirt by domain name (``virsh dumpxml NAME``, through
:func:`fwtools.fleet.sources.virsh`: the live XML of a running domain, else the persistent
one)."""

from __future__ import annotations

import os
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
    from fwtools._base.fileio import read_file

    return parse_domain(read_file(path), path)


def libvirt_domain(name: str, uri: str | None = None) -> DomainMachine:
    """The machine of libvirt domain ``name`` on ``uri`` (None: virsh's default connection,
    ``LIBVIRT_DEFAULT_URI`` first). A missing virsh or an unknown domain is a UsageError."""
    from fwtools.fleet.sources import nvram_dir, virsh

    xml = virsh(uri, "dumpxml", name, needed_by="--libvirt-domain NAME")
    uri = uri or os.environ.get("LIBVIRT_DEFAULT_URI")
    directory = nvram_dir(uri) if uri else None
    return parse_domain(xml.encode("utf-8"), f"libvirt domain {name}", nvram_dir=directory)


def looks_like_domain_name(spec: str) -> bool:
    """Whether ``--libvirt-domain SPEC`` names a domain rather than an XML file: not an
    existing path, no ``/`` (libvirt refuses it in names, src/conf/domain_conf.c) and no
    ``.xml`` suffix (a missing XML file stays a file error)."""
    return not (os.path.exists(spec) or "/" in spec or spec.lower().endswith(".xml"))


def parse_domain(raw: bytes, origin: str, *, nvram_dir: str | None = None) -> DomainMachine:
    """The machine domain XML ``raw`` describes (``origin`` names it in messages)."""
    import xml.etree.ElementTree as ET

    from fwtools.fleet.sources import parse_domain_xml

    ref = parse_domain_xml(raw, origin=origin, nvram_dir=nvram_dir)
    if ref is None:
        raise UsageError(f"{origin}: the domain has no UEFI firmware")
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
