"""The one exception tree of fwtools.

Every error raised on purpose by the library derives from :class:`FwError`. Errors about
malformed input carry the file, the structure being decoded and the absolute byte offset,
so the command line can print one precise line instead of a traceback.
"""

from __future__ import annotations

import os
from typing import TypeVar

_E = TypeVar("_E", bound="FwError")


class FwError(Exception):
    """Root of all fwtools errors.

    ``path`` is the file the error is about, kept as data: whoever knows the file name sets
    it with :meth:`with_path` (the same exception object, whatever its subclass and however
    its constructor looks), and ``str()`` puts it in front of the message. ``hint`` is what
    to do instead, appended after the message (:meth:`with_hint`). Nothing rebuilds an
    error from its text.
    """

    path: str | None = None
    hint: str | None = None

    def with_path(self: _E, path: str | os.PathLike[str]) -> _E:
        """This error, about ``path`` (unless it already names a file)."""
        if self.path is None:
            self.path = os.fspath(path)
        return self

    def with_hint(self: _E, hint: str) -> _E:
        """This error, with ``hint`` (what to do instead) added to its message."""
        self.hint = hint
        return self

    def _message(self) -> str:
        """The message without the location."""
        return super().__str__()

    def _where(self, message: str) -> list[str]:
        """The location parts printed before ``message``: the file (not twice)."""
        if self.path is None or message.startswith(f"{self.path}:"):
            return []
        return [self.path]

    def __str__(self) -> str:
        message = self._message()
        where = ": ".join(self._where(message))
        text = f"{where}: {message}" if where else message
        return f"{text}; {self.hint}" if self.hint else text


class UsageError(FwError, ValueError):
    """The caller asked for something impossible (bad option value, missing anchor, ...)."""


class FwIOError(FwError, OSError):
    """A file could not be read or written."""


class ParseError(FwError, ValueError):
    """Input bytes do not form a valid structure.

    ``structure`` names what was being decoded (e.g. ``"IMAGE_SECTION_HEADER[3]"``),
    ``offset`` is the absolute byte offset in the file where the problem is, and ``path``
    is filled in by whoever knows the file name.
    """

    def __init__(
        self,
        message: str,
        *,
        structure: str | None = None,
        offset: int | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.structure = structure
        self.offset = offset
        self.path = path

    def _message(self) -> str:
        return self.message

    def _where(self, message: str) -> list[str]:
        parts = super()._where(message)
        if self.structure is not None:
            parts.append(self.structure)
        if self.offset is not None:
            parts.append(f"offset {self.offset:#x}")
        return parts


class TruncatedError(ParseError):
    """The input ends before a structure does."""


class PeFormatError(ParseError):
    """A PE/COFF image is malformed."""


class SignatureFormatError(ParseError):
    """A WIN_CERTIFICATE, PKCS#7 blob or signature list is malformed."""


class VerificationError(FwError):
    """A signature or digest check failed (a result, not a parse problem)."""
