"""SBAT metadata: the ``.sbat`` CSV section of EFI binaries and SbatLevel revocation payloads.

References:
    shim ``SBAT.md`` (https://github.com/rhboot/shim/blob/main/SBAT.md): the six columns and
        the mandatory first row ``sbat,1,SBAT Version,sbat,1,<url>``.
    shim ``csv.c`` (``parse_csv_data``): rows split on ``\\r`` or ``\\n``, blank lines skipped,
        a UTF-8 BOM skipped, parsing stops at the first NUL, commas have no quoting, extra
        columns beyond the sixth are ignored.
    shim ``sbat.c`` (``parse_sbat_section``, ``verify_sbat_helper``): every row needs all six
        columns non-empty; generations are compared with ``atoi`` (non-numeric counts as 0),
        and a binary is revoked when its generation is below the first SbatLevel row with
        the same component name.
    shim ``include/sbat.h``, ``SbatLevel_Variable.txt``: the SbatLevel variable payload
        ``sbat,1,YYYYMMDDCC\\n`` followed by ``component,generation\\n`` lines, no trailing NUL.
    fwtools ``docs/reference/formats.md`` section 6.

Two modes: ``strict=True`` (the default) raises :class:`ParseError` at the first problem,
naming the line and the absolute byte offset; ``strict=False`` parses what shim would parse
and records every problem in ``warnings`` instead. Serialising a parsed object gives the
canonical form (``\\n`` line ends, no BOM, no padding); canonical input round-trips
byte-for-byte.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import Final

from fwtools._base.record import Record
from fwtools.errors import ParseError

# -- layout constants -------------------------------------------------------------------

UTF8_BOM: Final = b"\xef\xbb\xbf"
LINE_BREAKS: Final = re.compile(rb"\r\n|\r|\n")
FIELD_SEPARATOR: Final = ","
# SBAT.md: component_name, component_generation, vendor_name, vendor_package_name,
# vendor_version, vendor_url.
SBAT_COLUMNS: Final = 6
SBAT_COLUMN_NAMES: Final = (
    "component_name",
    "component_generation",
    "vendor_name",
    "vendor_package_name",
    "vendor_version",
    "vendor_url",
)
# The first row of every .sbat and of every SbatLevel payload names the format itself.
SBAT_SELF_COMPONENT: Final = "sbat"
SBAT_FORMAT_VERSION: Final = 1
SBAT_SELF_ROW: Final = "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md"
# shim compares generations as 16-bit values; anything larger wraps and is certainly wrong.
MAX_GENERATION: Final = 0xFFFF
# SbatLevel datestamps are YYYYMMDDCC (CC: a counter for several levels on one day).
DATESTAMP_LENGTH: Final = 10
# The value shim writes when resetting SbatLevel, and the first level ever published.
SBAT_LEVEL_ORIGINAL: Final = b"sbat,1,2021030218\n"
_DIGITS: Final = re.compile(r"[0-9]+")
# Longest digit run converted to int: far beyond any real value, far below Python's
# int-from-string limit.
_MAX_DIGITS: Final = 32


# -- data model -------------------------------------------------------------------------


class SbatRow(Record):
    """One row of a ``.sbat`` section (column names as in shim's SBAT.md)."""

    component: str
    generation: int
    vendor_name: str
    vendor_package_name: str
    vendor_version: str
    vendor_url: str
    extra: tuple[str, ...] = ()
    """Columns after the sixth: shim ignores them; kept for the round trip."""
    line: int = 0
    """1-based line number in the section text (0 for rows built in code)."""
    offset: int = 0
    """Absolute byte offset of the row's first byte."""

    def fields(self) -> tuple[str, ...]:
        return (
            self.component,
            str(self.generation),
            self.vendor_name,
            self.vendor_package_name,
            self.vendor_version,
            self.vendor_url,
            *self.extra,
        )

    def to_line(self) -> str:
        return FIELD_SEPARATOR.join(self.fields())


class Sbat(Record):
    """A parsed ``.sbat`` section: its rows in order, and anything odd about it."""

    rows: tuple[SbatRow, ...]
    warnings: tuple[str, ...] = ()

    @property
    def format_version(self) -> int | None:
        """The generation of the leading ``sbat`` row (1 today), or None without one."""
        if self.rows and self.rows[0].component == SBAT_SELF_COMPONENT:
            return self.rows[0].generation
        return None

    @property
    def components(self) -> tuple[SbatRow, ...]:
        """The rows that describe components, i.e. all but the leading ``sbat`` row."""
        if self.format_version is not None:
            return self.rows[1:]
        return self.rows

    def generation(self, component: str) -> int | None:
        """The generation of the first row naming ``component``, or None."""
        for row in self.rows:
            if row.component == component:
                return row.generation
        return None

    def to_bytes(self) -> bytes:
        """Canonical CSV text: one ``\\n``-terminated line per row, UTF-8, no padding."""
        return "".join(row.to_line() + "\n" for row in self.rows).encode("utf-8")


class SbatLevelEntry(Record):
    """One ``component,generation`` line of an SbatLevel payload."""

    component: str
    generation: int
    line: int = 0
    offset: int = 0


class SbatLevel(Record):
    """An SbatLevel payload: format version, datestamp and the minimum generations."""

    version: int
    datestamp: str
    entries: tuple[SbatLevelEntry, ...] = ()
    warnings: tuple[str, ...] = ()

    @classmethod
    def create(cls, datestamp: str, generations: dict[str, int]) -> SbatLevel:
        """Build a level from a datestamp and ``{component: generation}`` in order."""
        level = cls(
            SBAT_FORMAT_VERSION,
            datestamp,
            tuple(SbatLevelEntry(name, gen) for name, gen in generations.items()),
        )
        # Validate by round-tripping through the strict parser.
        return parse_sbat_level(level.to_bytes())

    @property
    def date(self) -> datetime.date | None:
        """The calendar date of the datestamp, or None when it is not YYYYMMDDCC."""
        if len(self.datestamp) != DATESTAMP_LENGTH or not self.datestamp.isdigit():
            return None
        try:
            return datetime.date(
                int(self.datestamp[:4]), int(self.datestamp[4:6]), int(self.datestamp[6:8])
            )
        except ValueError:
            return None

    @property
    def generations(self) -> dict[str, int]:
        """``{component: generation}``; the first line wins for a repeated component."""
        out: dict[str, int] = {}
        for entry in self.entries:
            out.setdefault(entry.component, entry.generation)
        return out

    def generation(self, component: str) -> int | None:
        return self.generations.get(component)

    def to_bytes(self) -> bytes:
        """The variable payload: ``sbat,1,DATESTAMP\\n`` then one line per entry, no NUL."""
        head = f"{SBAT_SELF_COMPONENT},{self.version},{self.datestamp}\n"
        body = "".join(f"{e.component},{e.generation}\n" for e in self.entries)
        return (head + body).encode("utf-8")


class SbatRevocation(Record):
    """A ``.sbat`` row whose generation is below the SbatLevel minimum for its component."""

    component: str
    generation: int
    minimum: int


def revocations(sbat: Sbat, level: SbatLevel) -> tuple[SbatRevocation, ...]:
    """The rows of ``sbat`` that ``level`` revokes (shim's ``verify_sbat_helper`` rule).

    For each row the first SbatLevel entry with the same component name applies; a lower
    generation revokes the binary. Components the level does not name always pass. The
    leading ``sbat`` rows are compared too, as shim does (``sbat,1`` never revokes).
    """
    minimums = level.generations
    return tuple(
        SbatRevocation(row.component, row.generation, minimums[row.component])
        for row in sbat.rows
        if row.component in minimums and row.generation < minimums[row.component]
    )


# -- parsing ----------------------------------------------------------------------------


class _Problems:
    """Collects problems; raises the first one at once in strict mode."""

    def __init__(self, strict: bool, structure: str) -> None:
        self.strict = strict
        self.structure = structure
        self.messages: list[str] = []

    def add(self, message: str, offset: int, line: int | None = None) -> None:
        where = f"{self.structure} line {line}" if line is not None else self.structure
        if self.strict:
            raise ParseError(message, structure=where, offset=offset)
        self.messages.append(f"{where} at offset {offset:#x}: {message}")


class _Line(Record):
    number: int
    offset: int
    """Absolute offset of the first byte."""
    text: str
    fields: tuple[str, ...]
    field_offsets: tuple[int, ...]


def _text_lines(data: bytes, base: int, problems: _Problems) -> Iterator[_Line]:
    """Yield the non-blank lines of ``data`` up to its first NUL, decoded as UTF-8."""
    nul = data.find(b"\0")
    text = data if nul < 0 else data[:nul]
    if nul >= 0:
        hidden = len(data) - nul - data[nul:].count(0)
        if hidden:
            # Not malformed (shim stops at the NUL), but rows hidden there are suspicious.
            problems.messages.append(
                f"{problems.structure} at offset {base + nul:#x}: {hidden} non-NUL bytes "
                "after the terminating NUL are ignored by shim"
            )
    start = 0
    if text.startswith(UTF8_BOM):
        start = len(UTF8_BOM)
    number = 1
    pos = start
    for brk in [*LINE_BREAKS.finditer(text, start), None]:
        end = len(text) if brk is None else brk.start()
        raw = text[pos:end]
        if raw:
            try:
                decoded = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.add(
                    f"invalid UTF-8 byte {raw[exc.start]:#04x}", base + pos + exc.start, number
                )
                decoded = raw.decode("utf-8", "backslashreplace")
            # Split the bytes, not the text, so offsets stay exact even for bad UTF-8 (a
            # comma never occurs inside a multi-byte sequence).
            fields: list[str] = []
            offsets: list[int] = []
            cursor = pos
            for field in raw.split(FIELD_SEPARATOR.encode()):
                fields.append(field.decode("utf-8", "backslashreplace"))
                offsets.append(base + cursor)
                cursor += len(field) + 1
            yield _Line(number, base + pos, decoded, tuple(fields), tuple(offsets))
        if brk is None:
            break
        number += 1
        pos = brk.end()


def _generation(
    text: str, offset: int, line: int, problems: _Problems, what: str = "generation"
) -> int:
    """Decode a generation: strict wants decimal digits in 16 bits; lenient does atoi."""
    if not _DIGITS.fullmatch(text):
        problems.add(f"{what} {text[:40]!r} is not a decimal number", offset, line)
        lead = re.match(r"\s*[+]?([0-9]*)", text)
        digits = lead.group(1) if lead else ""
        return int(digits[:_MAX_DIGITS]) if digits else 0
    if len(text) > _MAX_DIGITS:
        problems.add(f"{what} has {len(text)} digits", offset, line)
        return int(text[:_MAX_DIGITS])
    value = int(text)
    if value > MAX_GENERATION:
        problems.add(f"{what} {value} does not fit the 16 bits shim compares", offset, line)
    return value


def parse_sbat(data: bytes, *, base: int = 0, strict: bool = True) -> Sbat:
    """Parse the contents of a ``.sbat`` section (trailing NUL padding is fine).

    ``base`` is the absolute offset of ``data`` in its file, for error offsets. In strict
    mode every row needs six non-empty columns with a decimal generation, the first row
    must be the ``sbat`` row, and the text must be UTF-8; the :class:`ParseError` names the
    line and the byte offset. With ``strict=False`` the same problems land in
    :attr:`Sbat.warnings` and rows are decoded as shim would (missing columns empty,
    non-numeric generations 0).
    """
    problems = _Problems(strict, ".sbat")
    rows: list[SbatRow] = []
    for line in _text_lines(data, base, problems):
        fields = line.fields
        if len(fields) < SBAT_COLUMNS:
            problems.add(
                f"row has {len(fields)} columns, SBAT needs {SBAT_COLUMNS} "
                f"({', '.join(SBAT_COLUMN_NAMES)})",
                line.offset,
                line.number,
            )
            fields = fields + ("",) * (SBAT_COLUMNS - len(fields))
            offsets = line.field_offsets + (line.offset + len(line.text),) * (
                SBAT_COLUMNS - len(line.field_offsets)
            )
        else:
            offsets = line.field_offsets
        for i in range(SBAT_COLUMNS):
            if not fields[i] and i < len(line.fields):
                problems.add(f"column {SBAT_COLUMN_NAMES[i]} is empty", offsets[i], line.number)
        generation = _generation(fields[1], offsets[1], line.number, problems)
        row = SbatRow(
            component=fields[0],
            generation=generation,
            vendor_name=fields[2],
            vendor_package_name=fields[3],
            vendor_version=fields[4],
            vendor_url=fields[5],
            extra=tuple(fields[SBAT_COLUMNS:]),
            line=line.number,
            offset=line.offset,
        )
        if row.extra:
            problems.messages.append(
                f".sbat line {line.number}: {len(row.extra)} columns after the sixth are "
                "ignored by shim"
            )
        if not rows and row.component != SBAT_SELF_COMPONENT:
            problems.add(
                f"first row is {row.component!r}, not the {SBAT_SELF_COMPONENT!r} format row",
                line.offset,
                line.number,
            )
        rows.append(row)
    if not rows:
        problems.add("no SBAT rows", base)
    return Sbat(tuple(rows), tuple(problems.messages))


def parse_sbat_level(data: bytes, *, base: int = 0, strict: bool = True) -> SbatLevel:
    """Parse an SbatLevel payload (the variable's data, or one string of ``.sbatlevel``).

    The first line is ``sbat,<version>,<YYYYMMDDCC>``; every further line is
    ``component,generation``. Parsing stops at a NUL, as shim's does. Errors and
    ``strict`` behave as in :func:`parse_sbat`.
    """
    problems = _Problems(strict, "SbatLevel")
    version = 0
    datestamp = ""
    entries: list[SbatLevelEntry] = []
    seen: set[str] = set()
    header_seen = False
    for line in _text_lines(data, base, problems):
        fields, offsets = line.fields, line.field_offsets
        if not header_seen:
            header_seen = True
            if fields[0] != SBAT_SELF_COMPONENT or len(fields) != 3:
                problems.add(
                    f"first line {line.text[:60]!r} is not 'sbat,<version>,<datestamp>'",
                    line.offset,
                    line.number,
                )
            if len(fields) > 1:
                version = _generation(fields[1], offsets[1], line.number, problems, "version")
            if len(fields) > 2:
                datestamp = fields[2]
                if len(datestamp) != DATESTAMP_LENGTH or not datestamp.isdigit():
                    problems.add(
                        f"datestamp {datestamp[:40]!r} is not YYYYMMDDCC", offsets[2], line.number
                    )
            continue
        if len(fields) != 2:
            problems.add(
                f"line has {len(fields)} columns, expected 'component,generation'",
                line.offset,
                line.number,
            )
        if not fields[0]:
            problems.add("empty component name", line.offset, line.number)
        generation = (
            _generation(fields[1], offsets[1], line.number, problems) if len(fields) > 1 else 0
        )
        if fields[0] in seen:
            problems.add(
                f"component {fields[0]!r} is listed again; shim uses the first line",
                line.offset,
                line.number,
            )
        seen.add(fields[0])
        entries.append(SbatLevelEntry(fields[0], generation, line.number, line.offset))
    if not header_seen:
        problems.add("empty SbatLevel payload", base)
    return SbatLevel(version, datestamp, tuple(entries), tuple(problems.messages))
