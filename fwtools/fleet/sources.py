"""Where the stores of an audit come from: store files, directories, libvirt domain XML files,
and a libvirt connection (``virsh``).

Directories are walked in sorted order. A file found there is audited when it looks like a
store: qcow2 magic, a JSON document naming ``variables``, a size that is one of the known
layouts' (``fwtools.formats.varstore.LAYOUTS``), or a name as libvirt and Debian give stores
(``*_VARS*.fd``, ``*.nvram``), so that a damaged VM store is reported rather than passed over.
Everything else in a directory (firmware code images, READMEs) is skipped. A file named on
the command line is always audited.

Domain XML (libvirt ``docs/formatdomain.rst``): ``<name>``, ``<os><type arch=...>``,
``<os><loader ...>CODE</loader>`` and ``<os><nvram template=... format=...>PATH</nvram>`` or
``<nvram type='file'><source file=PATH/></nvram>`` (libvirt 8.5.0). DTDs and entities are
refused before parsing, so no entity is ever expanded.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from fwtools.errors import FwError, UsageError

# libvirt <os><type arch=...> -> the architecture names of Microsoft's dbx JSON.
LIBVIRT_ARCH: Final[dict[str, str]] = {
    "x86_64": "x64", "i686": "ia32", "i386": "ia32", "aarch64": "aarch64", "armv7l": "arm",
    "armv6l": "arm",
}
_QCOW2_MAGIC: Final = b"QFI\xfb"
# Store names as libvirt (<domain>_VARS.fd), Debian (OVMF_VARS_4M.ms.fd) and others give them.
_STORE_NAME: Final = re.compile(r"(^|[_.-])vars([_.-]|$)|\.nvram$")
_STORE_EXTENSIONS: Final = frozenset({"", ".fd", ".raw", ".bin", ".img", ".qcow2", ".qcow",
                                      ".json", ".nvram", ".vars"})
_VIRSH_TIMEOUT: Final = 60


@dataclass(frozen=True)
class StoreRef:
    """One store to audit, and what its origin says about it.

    ``error`` is set when the reference itself is broken (a domain XML that cannot be read,
    a domain without NVRAM): the audit then reports that instead of reading ``path``.
    ``running`` is libvirt's word (None when unknown: files and XML files).
    """

    path: str
    vm: str | None = None
    declared_format: str | None = None
    template: str | None = None
    loader: str | None = None
    architecture: str | None = None
    running: bool | None = None
    source: str = "file"
    error: str | None = None


def _store_sizes() -> frozenset[int]:
    from fwtools.formats.varstore import LAYOUTS

    return frozenset(layout.total_size for layout in LAYOUTS.values())


def looks_like_store(path: str, sizes: frozenset[int] | None = None) -> bool:
    """Whether a file found in a directory is worth auditing (see the module docstring)."""
    name = os.path.basename(path).lower()
    ext = os.path.splitext(name)[1]
    if _STORE_NAME.search(name) and ext in _STORE_EXTENSIONS:
        return True
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    if head.startswith(_QCOW2_MAGIC):
        return True
    if ext == ".json":
        return b'"variables"' in head
    # A file only sized like a store must also start with a firmware volume (FV signature at
    # 0x28): AAVMF_CODE.fd and QEMU_EFI.fd are 64 MiB too.
    return size in (sizes if sizes is not None else _store_sizes()) and head[0x28:0x2C] == b"_FVH"


def _looks_like_domain(path: str) -> bool:
    if not path.lower().endswith(".xml"):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return b"<domain" in head


def expand(arguments: list[str]) -> Iterator[StoreRef]:
    """The stores named by command-line arguments, in order: files, directories (walked),
    domain XML files. A path that does not exist is a StoreRef with ``error`` set."""
    sizes = _store_sizes()
    for arg in arguments:
        if os.path.isdir(arg):
            # A directory that cannot be listed (libvirt's nvram directory is root's) is a
            # row with the error, not silently nothing.
            unreadable: list[OSError] = []
            for root, dirs, files in os.walk(arg, onerror=unreadable.append):
                yield from _walk_errors(unreadable)
                dirs.sort()
                for name in sorted(files):
                    full = os.path.join(root, name)
                    if os.path.islink(full) and not os.path.exists(full):
                        continue
                    if _looks_like_domain(full):
                        yield from domain_refs(full)
                    elif looks_like_store(full, sizes):
                        yield StoreRef(full, source="directory")
            yield from _walk_errors(unreadable)
        elif _looks_like_domain(arg):
            yield from domain_refs(arg)
        elif not os.path.exists(arg):
            yield StoreRef(arg, error=f"{arg}: no such file or directory")
        else:
            yield StoreRef(arg)


def _walk_errors(errors: list[OSError]) -> Iterator[StoreRef]:
    while errors:
        exc = errors.pop(0)
        where = str(exc.filename) if exc.filename is not None else "?"
        yield StoreRef(where, source="directory",
                       error=f"{where}: cannot list the directory: {exc.strerror or exc}")


def domain_refs(path: str) -> Iterator[StoreRef]:
    """The store of the domain described in the XML file ``path``."""
    from fwtools._base.fileio import read_file

    try:
        text = read_file(path, max_size=16 << 20)
    except FwError as exc:
        yield StoreRef(path, source="domain-xml", error=str(exc))
        return
    try:
        ref = parse_domain_xml(text, origin=path)
    except UsageError as exc:
        yield StoreRef(path, source="domain-xml", error=str(exc))
        return
    if ref is not None:
        yield ref


def parse_domain_xml(text: bytes | str, *, origin: str, running: bool | None = None,
                     source: str = "domain-xml") -> StoreRef | None:
    """The NVRAM store a libvirt domain XML names; None for a domain without UEFI firmware
    (no ``<loader>`` and no ``<nvram>``). UsageError for XML that is not a domain."""
    import xml.etree.ElementTree as ET

    raw = text.encode() if isinstance(text, str) else text
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise UsageError(f"{origin}: domain XML with a DTD or entities is refused")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise UsageError(f"{origin}: not well-formed XML: {exc}") from None
    except (LookupError, ValueError) as exc:  # an unknown encoding declaration
        raise UsageError(f"{origin}: unreadable XML: {exc}") from None
    if root.tag != "domain":
        raise UsageError(f"{origin}: not a libvirt domain (root element <{root.tag}>)")
    name = (root.findtext("name") or "").strip() or None
    os_el = root.find("os")
    if os_el is None:
        return None
    type_el = os_el.find("type")
    arch = LIBVIRT_ARCH.get(type_el.get("arch", "")) if type_el is not None else None
    loader_el = os_el.find("loader")
    nvram_el = os_el.find("nvram")
    loader = (loader_el.text or "").strip() or None if loader_el is not None else None
    if nvram_el is None:
        if loader is None and os_el.get("firmware") != "efi":
            return None
        return StoreRef(origin, vm=name, loader=loader, architecture=arch, running=running,
                        source=source,
                        error=f"{origin}: domain {name or '?'} has UEFI firmware but no <nvram> "
                              "(libvirt fills it in when the domain is defined)")
    path = (nvram_el.text or "").strip()
    source_el = nvram_el.find("source")
    if not path and source_el is not None:
        path = source_el.get("file", "")
    if not path:
        return StoreRef(origin, vm=name, loader=loader, architecture=arch, running=running,
                        source=source,
                        error=f"{origin}: domain {name or '?'}: <nvram> names no file "
                              "(a network or block NVRAM is not audited)")
    return StoreRef(path, vm=name, declared_format=nvram_el.get("format"),
                    template=nvram_el.get("template"), loader=loader, architecture=arch,
                    running=running, source=source)


def _virsh(uri: str, *args: str) -> str:
    try:
        done = subprocess.run(["virsh", "-c", uri, *args], capture_output=True, text=True,
                              timeout=_VIRSH_TIMEOUT, check=False)
    except FileNotFoundError:
        raise UsageError("--libvirt needs virsh (Debian: libvirt-clients)") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"virsh -c {uri} {' '.join(args)}: no answer in "
                         f"{_VIRSH_TIMEOUT} s") from None
    if done.returncode != 0:
        message = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        raise UsageError(f"virsh -c {uri} {' '.join(args)}: {message}")
    return done.stdout


def libvirt_refs(uri: str) -> Iterator[StoreRef]:
    """The stores of every domain on ``uri`` (``virsh list --all --name``, then ``dumpxml``
    and ``domstate`` per domain); domains without UEFI firmware are passed over."""
    names = [n.strip() for n in _virsh(uri, "list", "--all", "--name").splitlines()
             if n.strip()]
    for name in names:
        origin = f"{uri}/{name}"
        try:
            xml_text = _virsh(uri, "dumpxml", name)
            state = _virsh(uri, "domstate", name).strip().splitlines()[0:1]
        except UsageError as exc:
            yield StoreRef(origin, vm=name, source="libvirt", error=str(exc))
            continue
        running = bool(state) and state[0].strip() not in ("shut off", "crashed")
        try:
            ref = parse_domain_xml(xml_text, origin=origin, running=running, source="libvirt")
        except UsageError as exc:
            yield StoreRef(origin, vm=name, source="libvirt", error=str(exc))
            continue
        if ref is not None:
            yield ref
