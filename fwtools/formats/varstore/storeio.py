"""Variable stores in their three containers: raw edk2 flash images, qcow2, and JSON.

The container is told by content (qcow2 magic, JSON text, else raw), never by file name; the
container to write follows ``--format``, else the output's extension, else the input's.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final, Literal

from fwtools._base.fileio import read_file
from fwtools._base.record import Record, field
from fwtools.errors import ParseError, UsageError

if TYPE_CHECKING:
    import uuid

    from fwtools.formats.varstore.model import Variable
    from fwtools.formats.varstore.store import VariableStore

StoreFormat = Literal["edk2-raw", "qcow2", "json"]
FORMATS: Final[tuple[StoreFormat, ...]] = ("edk2-raw", "qcow2", "json")
_ALIASES: Final[dict[str, StoreFormat]] = {
    "raw": "edk2-raw", "edk2-raw": "edk2-raw", "fd": "edk2-raw", "qcow2": "qcow2",
    "json": "json",
}
# libvirt and virt-firmware make NVRAM qcow2 images with 4 KiB clusters; keep that default.
DEFAULT_QCOW2_CLUSTER: Final = 4096
# The largest store is AAVMF's 64 MiB; a qcow2 header claiming far more is refused before
# any memory is spent on it (virt-firmware's probe draws the line at 256 MiB too).
MAX_STORE_SIZE: Final = 256 << 20


class LoadedStore(Record, frozen=False):
    """A store as read: the parsed store (raw and qcow2) or just its variables (JSON)."""

    path: str
    format: StoreFormat
    store: VariableStore | None
    json_variables: list[Variable] = field(default_factory=list)
    qcow2_cluster_size: int = DEFAULT_QCOW2_CLUSTER
    qcow2_version: int = 3
    # Set when the input had no store yet (Debian 12's all-zero AAVMF_VARS.fd): what it
    # was, and ``store`` is then a freshly formatted empty store of the same layout.
    blank_template: str | None = None

    @property
    def variables(self) -> list[Variable]:
        return list(self.store) if self.store is not None else list(self.json_variables)

    def get(self, name: str, guid: uuid.UUID) -> Variable | None:
        """Variable ``name`` of vendor ``guid``, in any container (the last one wins in JSON,
        as it would when the variables are set into a store in order)."""
        if self.store is not None:
            return self.store.get(name, guid)
        found = [v for v in self.json_variables if v.name == name and v.guid == guid]
        return found[-1] if found else None

    def as_store(self, template: str | None = None) -> VariableStore:
        """The store to edit: the parsed one, or for JSON a new store built on ``template``
        (a raw or qcow2 store whose layout and header format to use, or a layout name such
        as ``ovmf-4m-528k``) holding the JSON's variables. Kept as ``store``."""
        if self.store is None:
            self.store = _store_from_json(self.json_variables, template)
        return self.store


def parse_format(text: str) -> StoreFormat:
    try:
        return _ALIASES[text.lower()]
    except KeyError:
        raise UsageError(f"unknown store format {text!r}: use raw, qcow2 or json") from None


def format_for_output(path: str, explicit: str | None, fallback: StoreFormat) -> StoreFormat:
    if explicit:
        return parse_format(explicit)
    ext = os.path.splitext(path)[1].lower()
    if ext in (".qcow2", ".qcow"):
        return "qcow2"
    if ext == ".json":
        return "json"
    if ext in (".fd", ".raw", ".bin", ".img"):
        return "edk2-raw"
    return fallback


def load_store(path: str | os.PathLike[str]) -> LoadedStore:
    """Read a store in any container; ParseError (with file and offset) when it is not one.

    An unformatted template (all zero or erased, of a known size) is not an error: it comes
    back as an empty store of its layout, formatted the way the firmware would format it at
    first boot, with ``blank_template`` saying so.
    """
    from fwtools.formats.qcow2.layout import is_qcow2

    name = os.fspath(path)
    data = read_file(path)
    try:
        if is_qcow2(data):
            from fwtools.formats.qcow2 import Qcow2Image  # the reader only for a qcow2 input

            image = Qcow2Image.parse(data, path=name, max_virtual_size=MAX_STORE_SIZE)
            raw = image.to_raw()
            store, blank = _parse_or_format(raw, name)
            return LoadedStore(name, "qcow2", store, qcow2_cluster_size=image.cluster_size,
                               qcow2_version=image.version, blank_template=blank)
        if data[:1] in (b"{", b"[") or data[:3] == b"\xef\xbb\xbf":
            from fwtools.formats.varstore.jsonform import variables_from_json

            return LoadedStore(name, "json", None, json_variables=variables_from_json(data))
        store, blank = _parse_or_format(data, name)
        return LoadedStore(name, "edk2-raw", store, blank_template=blank)
    except ParseError as exc:
        raise exc.with_path(name) from None


def _store_from_json(variables: list[Variable], template: str | None) -> VariableStore:
    from fwtools.formats.varstore.store import VariableStore

    if template is None:
        raise UsageError("a JSON store needs --template STORE (or a layout name such as "
                         "ovmf-4m-528k) to become a flash image")
    if os.path.exists(template):
        base = load_store(template).store
        if base is None:
            raise UsageError(f"{template}: a template must be a raw or qcow2 store")
        store = VariableStore.blank(base.layout, authenticated=base.authenticated)
    else:
        store = VariableStore.blank(template)
    for var in variables:
        store.set(var)
    return store


def _parse_or_format(data: bytes, name: str) -> tuple[VariableStore, str | None]:
    from fwtools.formats.varstore.errors import BlankStoreError
    from fwtools.formats.varstore.store import VariableStore

    try:
        return VariableStore.parse(data, path=name), None
    except BlankStoreError as exc:
        if exc.layout is None:
            raise
        store = VariableStore.blank(exc.layout)
        store.path = name  # the file it stands for, for errors about it
        return store, exc.message


def store_bytes(
    store: VariableStore,
    fmt: StoreFormat,
    *,
    cluster_size: int = DEFAULT_QCOW2_CLUSTER,
    version: int = 3,
    source_format: StoreFormat = "edk2-raw",
) -> bytes:
    """Serialise ``store`` into the container ``fmt``."""
    if fmt == "json":
        from fwtools._base.jsontext import dumps_indented
        from fwtools.formats.varstore.jsonform import variables_to_json

        doc = variables_to_json(list(store), format=source_format)
        return (dumps_indented(doc) + "\n").encode()
    raw = store.to_bytes()
    if fmt == "qcow2":
        from fwtools.formats.qcow2 import raw_to_qcow2

        return raw_to_qcow2(raw, cluster_size=cluster_size, version=version)
    return raw
