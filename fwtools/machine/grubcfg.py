"""Enough of GRUB's configuration language to find the kernel the default entry boots.

GRUB's script (grub-core/script/) is a shell; this reads the subset grub-mkconfig
(util/grub.d/10_linux.in) and grub-install's ESP stub emit: ``set``, ``search`` /
``search.fs_uuid`` with ``--set=VAR``, ``configfile``, ``menuentry``/``submenu`` blocks and
their ``linux``/``linuxefi``/``chainloader`` lines, ``set default=`` (an index, a ``>``
path into submenus, a title or an ``--id``). ``if``/``else`` blocks are flattened: a
``set`` whose value refers to a variable (``${saved_entry}``) is noted and ignored, since
its value is only known at boot. Words are split as GRUB splits them: single and double
quotes, backslash escapes, ``$var`` and ``${var}`` expansion from the variables set so far.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

_FIRST_WINS: Final = frozenset({"menuentry_id_option"})
_VAR: Final = re.compile(r"\$(\{[A-Za-z0-9_]+\}|[A-Za-z0-9_]+)")


@dataclass
class MenuEntry:
    title: str
    entry_id: str | None
    lines: list[list[str]] = field(default_factory=list)
    children: list[MenuEntry] | None = None  # a submenu


@dataclass
class GrubConfig:
    """A parsed file: top-level commands in order, the menu, ``set`` values, notes."""

    commands: list[list[str]] = field(default_factory=list)
    menu: list[MenuEntry] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    default: str | None = None
    notes: list[str] = field(default_factory=list)


def split_words(line: str, variables: dict[str, str]) -> list[str]:
    """One line into words, quotes removed and variables expanded (unknown: empty)."""
    words: list[str] = []
    cur: list[str] = []
    have = False
    i, n = 0, len(line)

    def expand(text: str) -> str:
        return _VAR.sub(lambda m: variables.get(m.group(1).strip("{}"), ""), text)

    while i < n:
        c = line[i]
        if c in " \t":
            if have:
                words.append("".join(cur))
                cur, have = [], False
            i += 1
        elif c == "#" and not have:
            break
        elif c == "'":
            j = line.find("'", i + 1)
            j = n if j < 0 else j
            cur.append(line[i + 1:j])
            have, i = True, j + 1
        elif c == '"':
            j = i + 1
            buf = []
            while j < n and line[j] != '"':
                if line[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(line[j])
                j += 1
            cur.append(expand("".join(buf)))
            have, i = True, j + 1
        elif c == "\\" and i + 1 < n:
            cur.append(line[i + 1])
            have, i = True, i + 2
        elif c == "$":
            m = _VAR.match(line, i)
            if m:
                cur.append(variables.get(m.group(1).strip("{}"), ""))
                i = m.end()
            else:
                cur.append(c)
                i += 1
            have = True
        else:
            cur.append(c)
            have, i = True, i + 1
    if have:
        words.append("".join(cur))
    return words


def _logical_lines(text: str) -> list[str]:
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if out and out[-1].endswith("\\"):
            out[-1] = out[-1][:-1] + line
            continue
        if line and not line.startswith("#"):
            # ";" separates commands (a ";" inside quotes is not expected in these files)
            out.extend(part.strip() for part in line.split(";") if part.strip())
    return out


def _entry_header(words: list[str]) -> tuple[str, str | None]:
    title = words[1] if len(words) > 1 else ""
    entry_id = None
    for i, w in enumerate(words):
        if w in ("--id", "$menuentry_id_option") and i + 1 < len(words):
            entry_id = words[i + 1]
    return title, entry_id


def parse_grub_cfg(text: str, variables: dict[str, str] | None = None) -> GrubConfig:
    """Parse ``text`` with ``variables`` (e.g. ``root``, ``prefix``) already set."""
    cfg = GrubConfig(variables=dict(variables or {}))
    stack: list[MenuEntry] = []
    for line in _logical_lines(text):
        raw_words = line.split()
        if raw_words and raw_words[0] in ("menuentry", "submenu"):
            words = split_words(line.rstrip("{").rstrip(), cfg.variables)
            title, entry_id = _entry_header(words)
            entry = MenuEntry(title, entry_id, children=[] if words[0] == "submenu" else None)
            parent = stack[-1].children if stack else cfg.menu
            if parent is not None:
                parent.append(entry)
            stack.append(entry)
            continue
        if line == "}":
            if stack:
                stack.pop()
            continue
        words = split_words(line, cfg.variables)
        if not words:
            continue
        if stack:
            stack[-1].lines.append(words)
            continue
        if words[0] in ("if", "elif", "else", "fi", "then", "function", "{"):
            continue
        if "=" in words[0] and words[0].split("=", 1)[0].isidentifier():
            # a bare assignment (``menuentry_id_option="--id"``); in a flattened if/else the
            # first branch (the feature test passing, as on current GRUB) wins
            name, _sep, value = words[0].partition("=")
            if name not in cfg.variables or name not in _FIRST_WINS:
                cfg.variables[name] = value
            continue
        cfg.commands.append(words)
        if words[0] == "set" and len(words) > 1:
            name, _sep, value = words[1].partition("=")
            if "$" in line.split("=", 1)[-1] and name == "default":
                cfg.notes.append(f"`{line}` depends on state at boot (ignored)")
                continue
            cfg.variables[name] = value
            if name == "default":
                cfg.default = value
    return cfg


def default_entry(cfg: GrubConfig) -> tuple[MenuEntry | None, str]:
    """The entry ``set default`` selects (GRUB's menu.c ``grub_menu_get_default_entry_index``
    and the ``>`` path of ``get_entry_number``), and how it was chosen."""
    spec = cfg.default if cfg.default not in (None, "") else "0"
    how = f"default={spec!r}" if cfg.default not in (None, "") else "no default set: entry 0"
    menu = cfg.menu
    chosen: MenuEntry | None = None
    for part in str(spec).split(">"):
        chosen = None
        if part.isdigit():
            idx = int(part)
            chosen = menu[idx] if idx < len(menu) else None
        else:
            chosen = next((e for e in menu if part in (e.entry_id, e.title)), None)
        if chosen is None:
            if menu and spec != "0":
                return menu[0], f"{how} names no entry: GRUB falls back to entry 0"
            return (menu[0] if menu else None), how
        if chosen.children is not None:
            menu = chosen.children
    if chosen is not None and chosen.children is not None:
        return (chosen.children[0] if chosen.children else None), how + " (a submenu: its first)"
    return chosen, how
