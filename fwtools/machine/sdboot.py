"""Which entry systemd-boot boots (systemd src/boot/boot.c, v257: ``config_load_entries``,
``config_load_type2_entries``, ``boot_entry_compare``, ``config_default_entry_select``).

Entries (the Boot Loader Specification, docs/BOOT_LOADER_SPECIFICATION in systemd):

- Type #1: ``\\loader\\entries\\*.conf`` with ``title``, ``version``, ``sort-key``,
  ``machine-id`` and ``linux``/``efi``; the entry id is the file name.
- Type #2: ``\\EFI\\Linux\\*.efi`` UKIs; only a PE image with ``.osrel`` and ``.linux``
  sections is an entry (others are skipped). Its id is the file name; its version is the
  os-release ``IMAGE_VERSION``, else ``VERSION_ID``, else ``BUILD_ID``, its sort key
  ``SORT_KEY``, else ``IMAGE_ID``, else ``ID``.

Order (``boot_entry_compare``): entries with a sort key before those without; among those
with one, by sort key, then machine id, then version, newest first; then by id, newest
first (``strverscmp_improved``, here :func:`version_key`).

Default (``config_default_entry_select``): the ``LoaderEntryOneShot`` EFI variable, then
``LoaderEntryDefault`` (``bootctl set-oneshot``/``set-default``; vendor GUID
4a67b082-0a4c-41cf-b6c7-440b29bb8c4f, a UTF-16 string), then ``loader.conf``'s ``default``;
each is a glob over the ids, the first matching entry in order wins. Without any, the first
entry in order. ``@saved`` (``LoaderEntryLastBooted``) depends on what booted last: it is
read from the store when there, else noted. Boot counting (``+N-M`` in a name) is not
modelled.
"""

from __future__ import annotations

import fnmatch
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from fwtools.formats.varstore.storeio import LoadedStore

LOADER_GUID: Final = uuid.UUID("4a67b082-0a4c-41cf-b6c7-440b29bb8c4f")
ENTRIES_DIR: Final = "\\loader\\entries"
UKI_DIR: Final = "\\EFI\\Linux"


@dataclass
class Entry:
    """One systemd-boot menu entry."""

    id: str
    kind: Literal["type1", "type2"]
    path: str  # the .conf or the UKI, on the ESP
    title: str | None = None
    version: str | None = None
    sort_key: str | None = None
    machine_id: str | None = None
    target: str | None = None  # type 1: the linux/efi path it loads (ESP form)
    data: bytes | None = field(default=None, repr=False)  # type 2: the UKI


@dataclass
class Choice:
    entry: Entry
    how: str
    notes: list[str] = field(default_factory=list)


def parse_conf(raw: bytes) -> dict[str, str]:
    """``key value`` lines (loader.conf, type 1 entries); the first of a key wins, as
    systemd-boot's ``line_get_key_value`` readers keep the first ``linux``."""
    out: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _sep, value = line.partition(" ")
        out.setdefault(key, value.strip())
    return out


def version_key(text: str) -> list[tuple[int, object]]:
    """A sort key approximating systemd's ``strverscmp_improved``: digit runs compare as
    numbers and sort after letters; ``~`` sorts before everything."""
    out: list[tuple[int, object]] = []
    for part in re.split(r"(\d+)", text.lower()):
        if not part:
            continue
        if part.isdigit():
            out.append((2, int(part)))
        else:
            for ch in part:
                out.append((-1, "") if ch == "~" else (1, ch))
    return out


def type1_entry(name: str, path: str, raw: bytes) -> Entry:
    conf = parse_conf(raw)
    target = conf.get("efi") or conf.get("linux")
    return Entry(name, "type1", path, conf.get("title"), conf.get("version"),
                 conf.get("sort-key"), conf.get("machine-id"),
                 target.replace("/", "\\") if target else None)


def type2_entry(name: str, path: str, data: bytes) -> Entry | None:
    """The entry a UKI makes, or None when systemd-boot skips it (no ``.osrel`` or no
    ``.linux``, or not a PE image)."""
    from fwtools.errors import FwError
    from fwtools.formats.pe.image import PeImage
    from fwtools.formats.pe.uki_sections import parse_key_values

    try:
        img = PeImage(data, path)
        sections = {s.name: s for s in img.sections}
        if ".osrel" not in sections or ".linux" not in sections:
            return None
        osrel = parse_key_values(img.section_data(sections[".osrel"]))
    except FwError:
        return None
    get = osrel.get
    version = get("IMAGE_VERSION") or get("VERSION_ID") or get("BUILD_ID")
    sort_key = get("SORT_KEY") or get("IMAGE_ID") or get("ID")
    title = get("PRETTY_NAME") or get("NAME")
    return Entry(name, "type2", path, title, version, sort_key, None, None, data)


def sort_entries(entries: Sequence[Entry]) -> list[Entry]:
    """``boot_entry_compare`` (module doc)."""
    def newest_first(value: str | None) -> list[tuple[int, object]]:
        # each element negated, and the end of the string as rank 0 (between "~" and
        # everything else, as in strverscmp_improved), so "1.2.1" sorts before "1.2"
        return [(-rank, _neg(v)) for rank, v in version_key(value or "")] + [(0, 0)]

    def key(e: Entry) -> tuple[object, ...]:
        if e.sort_key is None:
            return (1, newest_first(e.id))
        return (0, e.sort_key, e.machine_id or "", newest_first(e.version),
                newest_first(e.id))
    return sorted(entries, key=key)


def _neg(v: object) -> object:
    if isinstance(v, int):
        return -v
    assert isinstance(v, str)
    return tuple(-ord(c) for c in v)


def _efi_string(store: LoadedStore | None, name: str) -> str | None:
    if store is None:
        return None
    var = store.get(name, LOADER_GUID)
    if var is None:
        return None
    return bytes(var.data).decode("utf-16-le", "replace").rstrip("\0") or None


def choose(entries: Sequence[Entry], conf: dict[str, str],
           store: LoadedStore | None) -> Choice | None:
    """The entry systemd-boot boots (module doc), or None without entries."""
    ordered = sort_entries(entries)
    if not ordered:
        return None
    notes: list[str] = []

    def find(pattern: str | None) -> Entry | None:
        if not pattern:
            return None
        return next((e for e in ordered if fnmatch.fnmatchcase(e.id, pattern)), None)

    picks: list[tuple[str | None, Callable[[str], str]]] = [
        (_efi_string(store, "LoaderEntryOneShot"),
         lambda p: f"LoaderEntryOneShot {p!r} in the store"),
        (_efi_string(store, "LoaderEntryDefault"),
         lambda p: f"LoaderEntryDefault {p!r} in the store"),
    ]
    default = conf.get("default")
    if default == "@saved":
        last = _efi_string(store, "LoaderEntryLastBooted")
        if last is None:
            notes.append("loader.conf default @saved: the store has no LoaderEntryLastBooted "
                         "(the first entry in order is used)")
        picks.append((last, lambda p: f"loader.conf default @saved: LoaderEntryLastBooted "
                                      f"{p!r}"))
    elif default and default.startswith("@"):
        notes.append(f"loader.conf default {default} depends on state at boot: "
                     "the first entry in order is used")
    else:
        picks.append((default, lambda p: f"loader.conf default {p!r}"))
    for pattern, how in picks:
        found = find(pattern)
        if found is not None:
            return Choice(found, how(pattern or ""), notes)
        if pattern:
            notes.append(f"{how(pattern)} matches no entry")
    why = "no default matches" if any(p for p, _how in picks) else "no default set"
    return Choice(ordered[0], f"the first entry in systemd-boot's order ({why})", notes)
