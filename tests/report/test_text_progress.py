"""The progress bar: done/total on a terminal (it was a pulse without a count), nothing
otherwise, and every item passed through in order either way."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest

from fwtools.report.text_progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def shown(monkeypatch: pytest.MonkeyPatch, items: object, **kwargs: object
          ) -> tuple[list[object], str]:
    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    got = list(progress(items, "auditing stores", True, **kwargs))  # type: ignore[call-overload]
    return got, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err.getvalue())


def gen(n: int) -> Iterator[int]:
    yield from range(n)


def test_a_generator_with_its_total_shows_done_of_total(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    got, text = shown(monkeypatch, gen(41), total=41)
    assert got == list(range(41))
    assert "auditing stores" in text and "0/41" in text and "41/41" in text


def test_a_list_gives_its_own_total(monkeypatch: pytest.MonkeyPatch) -> None:
    got, text = shown(monkeypatch, ["a", "b", "c"])
    assert got == ["a", "b", "c"] and "3/3" in text


@pytest.mark.parametrize("enabled", [True, False])
def test_nothing_without_a_terminal(monkeypatch: pytest.MonkeyPatch, enabled: bool) -> None:
    err = io.StringIO()  # a pipe or file: isatty() is False
    monkeypatch.setattr("sys.stderr", err)
    assert list(progress(gen(5), "x", enabled, total=5)) == list(range(5))
    assert err.getvalue() == ""


def test_disabled_on_a_terminal_shows_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    assert list(progress(gen(3), "x", False, total=3)) == [0, 1, 2]
    assert err.getvalue() == ""
