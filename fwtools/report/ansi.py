"""ANSI colour for the plain-text views (fw-vars, fw-sigdb) that do not start rich."""

from __future__ import annotations

from typing import IO, Final

STYLES: Final = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33",
                 "magenta": "35", "cyan": "36"}


class Painter:
    """``paint(text, "bold cyan")``: ``text`` in those styles, or unchanged when off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, stream: IO[str], color: bool | None) -> Painter:
        """On for a terminal, unless ``color`` forces it on or off."""
        return cls(stream.isatty() if color is None else color)

    def __call__(self, text: str, style: str) -> str:
        if not self.enabled:
            return text
        return f"\x1b[{';'.join(STYLES[s] for s in style.split())}m{text}\x1b[0m"
