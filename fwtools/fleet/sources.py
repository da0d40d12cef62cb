"""Where the stores of an audit come from: store files, directories, libvirt domain XML files,
and a libvirt connection (``virsh``).

Directories are walked in sorted order. A file found there is audited when it looks like a
store: qcow2 magic, a JSON document naming ``variables``, a size that is one of the known
layouts' (``fwtools.formats.varstore.LAYOUTS``), or a name as libvirt and Debian give stores
(``*_VARS*.fd``, ``*.nvram``), so that a damaged VM store is reported rather than passed over.
Everything else in a directory (firmware code images, READMEs) is skipped, and so is every
entry that is not a regular file (named pipes, sockets, devices, dangling symlinks): nothing
that is not a file is opened, since opening a FIFO blocks until a writer comes. A file named
on the command line is always audited (a special file there is an error row: fileio.py).

Domain XML (libvirt ``docs/formatdomain.rst``): ``<name>``, ``<os><type arch=...>``,
``<os><loader ...>CODE</loader>`` and ``<os><nvram template=... format=...>PATH</nvram>`` or
``<nvram type='file'><source file=PATH/></nvram>`` (libvirt 8.5.0). DTDs and entities are
refused before parsing, so no entity is ever expanded.

``--libvirt URI`` asks ``virsh`` (libvirt-clients), as checked against libvirt 9.0 (Debian 12)
by tests/e2e/test_libvirt_fleet.py: ``list --all --name`` for the domains, ``list --name`` for
the active ones (running, paused, pmsuspended: QEMU has the store open), and ``dumpxml`` per
domain (the live XML of an active domain, else the persistent one). virsh runs with
``LC_ALL=C``, so nothing depends on translated state names. A stopped domain with firmware
autoselection (``<os firmware='efi'>``) has no ``<loader>``/``<nvram>`` in its XML under
libvirt 9.0: libvirt picks the firmware and creates the store at start, at
``<nvram dir>/<name>_VARS.fd`` (libvirt src/qemu/qemu_firmware.c); for the local
``qemu:///system`` and ``qemu:///session`` that path is known and audited.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from fwtools._base.fileio import is_regular, open_input
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
    if not is_regular(path):
        return False
    if _STORE_NAME.search(name) and ext in _STORE_EXTENSIONS:
        return True
    try:
        fd, st = open_input(path)
    except FwError:
        return False
    with os.fdopen(fd, "rb") as f:
        size = st.st_size
        try:
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
    if not path.lower().endswith(".xml") or not is_regular(path):
        return False
    try:
        fd, _ = open_input(path)
    except FwError:
        return False
    with os.fdopen(fd, "rb") as f:
        try:
            head = f.read(4096)
        except OSError:
            return False
    return b"<domain" in head


def gather(paths: tuple[str, ...] | list[str], uri: str | None) -> list[StoreRef]:
    """The stores named by PATHS (stores, directories, domain XML) and by the domains of the
    libvirt connection ``uri``, in that order: what audit and update both work on. Raises
    :class:`UsageError` when nothing is named or nothing is found."""
    if not paths and not uri:
        raise UsageError("give STORE, DIR or DOMAIN.xml arguments, or --libvirt URI")
    refs = list(expand(list(paths)))
    if uri:
        refs += list(libvirt_refs(uri))
    if not refs:
        raise UsageError("no variable stores found in " + ", ".join(paths or (uri or "",)))
    return refs


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
                    if not is_regular(full):  # a FIFO, socket, device or dangling symlink
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
                     source: str = "domain-xml", nvram_dir: str | None = None
                     ) -> StoreRef | None:
    """The NVRAM store a libvirt domain XML names; None for a domain without UEFI firmware
    (no ``<loader>`` and no ``<nvram>``). UsageError for XML that is not a domain.

    ``nvram_dir``: where the libvirt the XML came from keeps NVRAM it creates (see
    :func:`nvram_dir`), for a domain with firmware autoselection and no ``<nvram>`` yet."""
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
        if nvram_dir is not None and name is not None and loader is None:
            # Firmware autoselection as libvirt 9.0 keeps it: the path libvirt will use (and
            # has used, if the domain ever ran). A store not there yet is an error row.
            path = os.path.join(nvram_dir, f"{name}_VARS.fd")
            missing = None if os.path.lexists(path) else (
                f"{path}: no such file: domain {name} has firmware autoselection and has not "
                "started yet; libvirt picks the firmware and creates its NVRAM at first start")
            return StoreRef(path, vm=name, architecture=arch, running=running, source=source,
                            error=missing)
        return StoreRef(origin, vm=name, loader=loader, architecture=arch, running=running,
                        source=source,
                        error=f"{origin}: domain {name or '?'} has UEFI firmware but no <nvram> "
                              "(libvirt fills it in when the domain is defined, or with "
                              "firmware autoselection in libvirt 9.0 at its first start)")
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


def virsh(uri: str | None, *args: str, needed_by: str = "--libvirt") -> str:
    """``virsh [-c URI] ARGS`` (libvirt-clients), its standard output. Without ``uri`` virsh
    picks the connection itself (``LIBVIRT_DEFAULT_URI``, then its own default). UsageError
    (one line) when virsh is missing, times out or fails; ``needed_by`` names the option
    that needs it."""
    env = {**os.environ, "LC_ALL": "C"}
    command = ["virsh", *(["-c", uri] if uri else []), *args]
    shown = " ".join(command)
    try:
        # libvirt's names and XML are UTF-8 whatever the locale (virsh passes them through).
        done = subprocess.run(command, capture_output=True, encoding="utf-8",
                              errors="replace", timeout=_VIRSH_TIMEOUT, check=False, env=env)
    except FileNotFoundError:
        raise UsageError(f"{needed_by} needs virsh (Debian: libvirt-clients)") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"{shown}: no answer in {_VIRSH_TIMEOUT} s") from None
    if done.returncode != 0:
        message = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        raise UsageError(f"{shown}: {message}")
    return done.stdout


def _names(listing: str) -> list[str]:
    return [n.strip() for n in listing.splitlines() if n.strip()]


def nvram_dir(uri: str) -> str | None:
    """Where the QEMU driver behind ``uri`` creates NVRAM stores, for the local
    ``qemu:///system`` (``/var/lib/libvirt/qemu/nvram``) and ``qemu:///session``
    (``$XDG_CONFIG_HOME/libvirt/qemu/nvram``) of a distribution build (src/qemu/qemu_conf.c,
    ``cfg->nvramDir``); None for any other URI (a remote host's files are not ours to read)."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if parts.scheme != "qemu" or parts.netloc:
        return None
    if parts.path == "/system":
        return "/var/lib/libvirt/qemu/nvram"
    if parts.path == "/session":
        config = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
        return os.path.join(config, "libvirt", "qemu", "nvram")
    return None


def libvirt_refs(uri: str) -> Iterator[StoreRef]:
    """The stores of every domain on ``uri`` (``virsh list --all --name``, ``list --name``
    for the active ones, then ``dumpxml`` per domain); domains without UEFI firmware are
    passed over."""
    names = _names(virsh(uri, "list", "--all", "--name"))
    active = set(_names(virsh(uri, "list", "--name")))
    directory = nvram_dir(uri)
    for name in names:
        origin = f"{uri}/{name}"
        running = name in active
        try:
            xml_text = virsh(uri, "dumpxml", name)
        except UsageError as exc:
            yield StoreRef(origin, vm=name, running=running, source="libvirt", error=str(exc))
            continue
        try:
            ref = parse_domain_xml(xml_text, origin=origin, running=running, source="libvirt",
                                   nvram_dir=directory)
        except UsageError as exc:
            yield StoreRef(origin, vm=name, running=running, source="libvirt", error=str(exc))
            continue
        if ref is not None:
            yield ref
