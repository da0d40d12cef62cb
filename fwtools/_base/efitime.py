"""EFI_TIME (UEFI 2.10 §8.3, MdePkg/Include/Uefi/UefiBaseType.h).

Sixteen bytes: Year u16, Month, Day, Hour, Minute, Second, Pad1 (u8 each), Nanosecond u32,
TimeZone i16, Daylight u8, Pad2 u8. Authenticated variables use it as their timestamp
(EFI_VARIABLE_AUTHENTICATION_2.TimeStamp, the TimeStamp of an authenticated variable record,
the TimeOfRevocation of an EFI_CERT_X509_SHA* entry).

For authentication edk2 requires Pad1, Nanosecond, TimeZone, Daylight and Pad2 to be zero
(``AuthService.c:VerifyTimeBasedPayload`` returns EFI_SECURITY_VIOLATION otherwise), so the
time is UTC, and compares stamps on Year..Second only
(``AuthServiceInternalCompareTimeStamp``). :class:`EfiTime` keeps every field as stored so
that parse -> ``to_bytes`` is byte-identical, even for stamps firmware would refuse (such as
the 0-based month sbvarsign 0.9.4 writes); :meth:`EfiTime.auth_problems` says what is wrong.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta, timezone
from typing import ClassVar, Final

from fwtools._base.record import Record
from fwtools.errors import TruncatedError, UsageError

EFI_TIME_LAYOUT: Final = struct.Struct("<HBBBBBBIhBB")
EFI_UNSPECIFIED_TIMEZONE: Final = 0x07FF
# EFI_TIME.Daylight bits.
EFI_TIME_ADJUST_DAYLIGHT: Final = 0x01
EFI_TIME_IN_DAYLIGHT: Final = 0x02
# Valid ranges from UEFI 2.10 §8.3 (EFI_TIME field descriptions).
YEAR_RANGE: Final = (1900, 9999)
TIMEZONE_RANGE: Final = (-1440, 1440)
NANOSECOND_MAX: Final = 999_999_999

_FIELD_LIMITS: Final = (
    ("year", 0, 0xFFFF),
    ("month", 0, 0xFF),
    ("day", 0, 0xFF),
    ("hour", 0, 0xFF),
    ("minute", 0, 0xFF),
    ("second", 0, 0xFF),
    ("pad1", 0, 0xFF),
    ("nanosecond", 0, 0xFFFFFFFF),
    ("timezone", -0x8000, 0x7FFF),
    ("daylight", 0, 0xFF),
    ("pad2", 0, 0xFF),
)
_DAYS_IN_MONTH: Final = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class EfiTime(Record):
    """One EFI_TIME, every field as stored.

    Equality compares all fields; ordering (``<``, ``<=``, ...) compares Year..Second only,
    as edk2 does, so two stamps may be neither ``<`` nor ``==`` each other when only their
    Nanosecond or pads differ. The constructor accepts any value its field can store
    (calendar validity is reported by :meth:`auth_problems`, not enforced) and raises
    :class:`UsageError` for values that do not fit.
    """

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int
    pad1: int = 0
    nanosecond: int = 0
    timezone: int = 0
    daylight: int = 0
    pad2: int = 0

    SIZE: ClassVar[int] = EFI_TIME_LAYOUT.size

    def __post_init__(self) -> None:
        for name, low, high in _FIELD_LIMITS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise UsageError(f"EFI_TIME.{name} {value!r} does not fit its field")

    # -- bytes ---------------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, offset: int = 0, *, base: int = 0) -> EfiTime:
        """Decode the EFI_TIME at ``data[offset:]``.

        ``base`` is added to ``offset`` in errors (the absolute position of ``data`` in its
        file). Raises :class:`TruncatedError` when fewer than 16 bytes remain.
        """
        have = len(data) - offset
        if offset < 0 or have < cls.SIZE:
            raise TruncatedError(
                f"needs {cls.SIZE} bytes, only {max(0, have)} available",
                structure="EFI_TIME",
                offset=base + max(offset, 0),
            )
        return cls(*EFI_TIME_LAYOUT.unpack_from(data, offset))

    def to_bytes(self) -> bytes:
        return EFI_TIME_LAYOUT.pack(
            *self.sort_key,  # Year..Second
            self.pad1,
            self.nanosecond,
            self.timezone,
            self.daylight,
            self.pad2,
        )

    # -- construction --------------------------------------------------------------------

    @classmethod
    def zero(cls) -> EfiTime:
        """All fields zero: "no time" (a revocation for all time, a never-updated stamp)."""
        return cls(0, 0, 0, 0, 0, 0)

    @classmethod
    def from_datetime(cls, dt: datetime) -> EfiTime:
        """The UTC time of ``dt`` to the second, with every other field zero (the form
        authenticated variables need). A naive ``dt`` is taken to be UTC already."""
        if dt.tzinfo is not None:
            dt = dt.astimezone(UTC)
        if not YEAR_RANGE[0] <= dt.year <= YEAR_RANGE[1]:
            raise UsageError(f"year {dt.year} is outside EFI_TIME's {YEAR_RANGE} range")
        return cls(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second)

    @classmethod
    def now(cls) -> EfiTime:
        """The current UTC time, Nanosecond 0."""
        return cls.from_datetime(datetime.now(UTC))

    # -- meaning -------------------------------------------------------------------------

    @property
    def is_zero(self) -> bool:
        # Field by field rather than comparing with a zero EfiTime: asked of every variable shown.
        return not (self.year | self.month | self.day | self.hour | self.minute | self.second
                    | self.pad1 | self.nanosecond | self.timezone | self.daylight | self.pad2)

    @property
    def sort_key(self) -> tuple[int, int, int, int, int, int]:
        """Year..Second: what edk2 compares (``AuthServiceInternalCompareTimeStamp``)."""
        return (self.year, self.month, self.day, self.hour, self.minute, self.second)

    def __lt__(self, other: EfiTime) -> bool:
        return self.sort_key < other.sort_key

    def __le__(self, other: EfiTime) -> bool:
        return self.sort_key <= other.sort_key

    def __gt__(self, other: EfiTime) -> bool:
        return self.sort_key > other.sort_key

    def __ge__(self, other: EfiTime) -> bool:
        return self.sort_key >= other.sort_key

    def calendar_problems(self) -> list[str]:
        """Fields outside the ranges UEFI 2.10 §8.3 gives (edk2's authenticated-variable code
        does not check these, but the value is not a real time)."""
        out = []
        if not YEAR_RANGE[0] <= self.year <= YEAR_RANGE[1]:
            out.append(f"Year {self.year} is outside {YEAR_RANGE[0]}..{YEAR_RANGE[1]}")
        if not 1 <= self.month <= 12:
            out.append(f"Month {self.month} is outside 1..12")
        elif not 1 <= self.day <= _days_in_month(self.year, self.month):
            out.append(f"Day {self.day} is outside 1..{_days_in_month(self.year, self.month)}")
        if self.hour > 23:
            out.append(f"Hour {self.hour} is outside 0..23")
        if self.minute > 59:
            out.append(f"Minute {self.minute} is outside 0..59")
        if self.second > 59:
            out.append(f"Second {self.second} is outside 0..59")
        if self.nanosecond > NANOSECOND_MAX:
            out.append(f"Nanosecond {self.nanosecond} is outside 0..{NANOSECOND_MAX}")
        if self.timezone != EFI_UNSPECIFIED_TIMEZONE and not (
            TIMEZONE_RANGE[0] <= self.timezone <= TIMEZONE_RANGE[1]
        ):
            out.append(f"TimeZone {self.timezone} is outside -1440..1440 and not 0x07FF")
        return out

    def firmware_rejections(self) -> list[str]:
        """Why edk2 refuses this stamp on an authenticated write (empty if it accepts it):
        Pad1, Nanosecond, TimeZone, Daylight and Pad2 must all be 0
        (``AuthService.c:VerifyTimeBasedPayload``)."""
        out = []
        for name, label in (
            ("pad1", "Pad1"),
            ("nanosecond", "Nanosecond"),
            ("timezone", "TimeZone"),
            ("daylight", "Daylight"),
            ("pad2", "Pad2"),
        ):
            value = getattr(self, name)
            if value:
                out.append(f"{label} is {value}, must be 0 for an authenticated variable")
        return out

    def auth_problems(self) -> list[str]:
        """Everything wrong with this stamp as an authenticated-variable timestamp: first
        what edk2 rejects (:meth:`firmware_rejections`), then invalid calendar fields
        (:meth:`calendar_problems`, e.g. sbvarsign's Month 0). An all-zero stamp has none:
        firmware accepts it (it is older than any real stamp)."""
        if self.is_zero:
            return []
        return self.firmware_rejections() + self.calendar_problems()

    def to_datetime(self) -> datetime | None:
        """The time as a ``datetime``, or None when the fields are not a valid time (or the
        stamp is all zero).

        TimeZone 0 gives an aware UTC datetime. Another TimeZone in -1440..1440 gives an
        aware datetime at that offset (UEFI 2.10: "the time's offset in minutes from UTC";
        note that before the UEFI 2.7 errata the sign was the other way round).
        EFI_UNSPECIFIED_TIMEZONE (0x07FF) gives a naive datetime (local time of unknown
        zone). Nanoseconds are truncated to microseconds; Daylight is ignored.
        """
        if self.is_zero or self.calendar_problems():
            return None
        if self.timezone == EFI_UNSPECIFIED_TIMEZONE:
            tz: timezone | None = None
        elif self.timezone == 0:
            tz = UTC
        else:
            tz = timezone(timedelta(minutes=self.timezone))
        return datetime(*self.sort_key, self.nanosecond // 1000, tzinfo=tz)

    def isoformat(self) -> str:
        """ISO 8601 text of the fields as stored, never failing: ``2010-03-06T19:17:21Z``.

        Nanoseconds appear as a 9-digit fraction when nonzero; TimeZone 0 is ``Z``, another
        valid TimeZone an offset (``+01:00``), EFI_UNSPECIFIED_TIMEZONE no suffix. Fields
        that are not a valid time are printed as they are (``2026-00-25T...`` for Month 0).
        A Pad1/Pad2/Daylight value, or a TimeZone outside the valid range, is not shown;
        :meth:`auth_problems` reports them.
        """
        text = (
            f"{self.year:04d}-{self.month:02d}-{self.day:02d}T"
            f"{self.hour:02d}:{self.minute:02d}:{self.second:02d}"
        )
        if self.nanosecond:
            text += f".{self.nanosecond:09d}"
        if self.timezone == 0:
            text += "Z"
        elif TIMEZONE_RANGE[0] <= self.timezone <= TIMEZONE_RANGE[1]:
            sign = "+" if self.timezone > 0 else "-"
            hours, minutes = divmod(abs(self.timezone), 60)
            text += f"{sign}{hours:02d}:{minutes:02d}"
        return text

    def __str__(self) -> str:
        return self.isoformat()




def _days_in_month(year: int, month: int) -> int:
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 29 if month == 2 and leap else _DAYS_IN_MONTH[month - 1]


def _is_date(text: str) -> bool:
    """YYYY-MM-DD (digits only)."""
    parts = text.split("-")
    return [len(p) for p in parts] == [4, 2, 2] and all(p.isdigit() for p in parts)


def parse_time(text: str) -> EfiTime:
    """An EFI_TIME from command-line text, in UTC with every other field zero.

    Accepts ``now``; ``0`` or ``zero`` (the all-zero stamp); a date ``2024-01-02`` (midnight
    UTC); an ISO 8601 date-time ``2024-01-02T03:04:05Z`` or with an offset
    (``+02:00``, converted to UTC) or without one (taken as UTC); a space may replace the
    ``T``. Fractions of a second are dropped. Raises :class:`UsageError` for anything else.
    """
    value = text.strip()
    lowered = value.lower()
    if lowered == "now":
        return EfiTime.now()
    if lowered in ("0", "zero"):
        return EfiTime.zero()
    if not _is_date(value) and "T" not in value.upper() and " " not in value:
        raise UsageError(f"not a time: {text!r} (use YYYY-MM-DD[THH:MM:SS[Z]], now or 0)")
    iso = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        raise UsageError(f"not a time: {text!r} (use YYYY-MM-DD[THH:MM:SS[Z]], now or 0)") from None
    return EfiTime.from_datetime(dt.replace(microsecond=0))


__all__ = [
    "EFI_TIME_LAYOUT",
    "EFI_UNSPECIFIED_TIMEZONE",
    "EfiTime",
    "parse_time",
]
