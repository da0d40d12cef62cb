"""The one exception tree of fwtools.

Every error raised on purpose by the library derives from :class:`FwError`. Errors about
malformed input carry the file, the structure being decoded and the absolute byte offset,
so the command line can print one precise line instead of a traceback.
"""

from __future__ import annotations


class FwError(Exception):
    """Root of all fwtools errors."""


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

    def with_path(self, path: str) -> ParseError:
        """Return this error with the file name set (keeps the subclass)."""
        if self.path is None:
            self.path = path
        return self

    def __str__(self) -> str:
        parts = []
        if self.path is not None:
            parts.append(self.path)
        if self.structure is not None:
            parts.append(self.structure)
        if self.offset is not None:
            parts.append(f"offset {self.offset:#x}")
        where = ": ".join(parts)
        return f"{where}: {self.message}" if where else self.message


class TruncatedError(ParseError):
    """The input ends before a structure does."""


class PeFormatError(ParseError):
    """A PE/COFF image is malformed."""


class SignatureFormatError(ParseError):
    """A WIN_CERTIFICATE, PKCS#7 blob or signature list is malformed."""


class VerificationError(FwError):
    """A signature or digest check failed (a result, not a parse problem)."""
