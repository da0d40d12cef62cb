"""Parsing fwtools' self-contained HTML reports in tests: tag nesting, link-like attributes,
ids, scripts, the embedded JSON block, and (optionally) the text of every element marked
``data-field`` by document path. Shared by the boot-chain and fw-check vm page tests."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

VOID = frozenset({"meta", "br", "input", "link", "img", "hr", "col", "wbr", "source"})


class PageParser(HTMLParser):
    def __init__(self, data_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.data_id = data_id
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.ids: list[str] = []
        self.data: list[str] = []
        self.fields: dict[str, list[str]] = {}
        self.text: list[str] = []
        self.sections: list[str] = []
        self._open: list[tuple[int, list[str], list[str]]] = []  # (depth, paths, text)
        self._in_data = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            if a.get(name) is not None:
                self.urls.append(str(a[name]))
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "script":
            self.scripts.append(a)
            self._in_data = a.get("id") == self.data_id
        if tag == "section":
            self.sections.append(str(a.get("aria-labelledby")))
        if tag in VOID:
            return
        self.stack.append(tag)
        if a.get("data-field"):
            self._open.append((len(self.stack), str(a["data-field"]).split(), []))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_data = False
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        if self._open and self._open[-1][0] == len(self.stack):
            _depth, paths, text = self._open.pop()
            for p in paths:
                self.fields.setdefault(p, []).append("".join(text))
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self._in_data:
            self.data.append(data)
            return
        self.text.append(data)
        for _depth, _paths, text in self._open:
            text.append(data)


def parse_page(page: str, data_id: str) -> tuple[PageParser, dict[str, Any]]:
    """The parsed page and its embedded document; asserts well-formed nesting, unique ids
    and exactly one data block."""
    p = PageParser(data_id)
    p.feed(page)
    p.close()
    assert not p.errors, p.errors
    assert p.stack == [], p.stack
    assert len(p.ids) == len(set(p.ids)), "duplicate ids"
    assert len(p.data) == 1
    return p, json.loads(p.data[0])
