"""EFI_TIME: bytes, validity for authenticated variables, ordering, text.

Oracles: the TimeStamp Microsoft's signed updates carry (2010-03-06 19:17:21, fact sheet
§4), and the EFI_TIMEs efitools writes for ``-t "2024-01-02 03:04:05"``
(testdata/sigdb, made by make_sigdb_fixtures.py).
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fwtools._base.efitime import EFI_UNSPECIFIED_TIMEZONE, EfiTime, parse_time
from fwtools.errors import FwError, ParseError, TruncatedError, UsageError

SIGDB = Path(__file__).resolve().parents[2] / "testdata" / "sigdb"
# The first 16 bytes of every object in microsoft/secureboot_objects.
MICROSOFT_STAMP = bytes.fromhex("da070306131115000000000000000000")


def test_microsoft_stamp() -> None:
    t = EfiTime.from_bytes(MICROSOFT_STAMP)
    assert (t.year, t.month, t.day, t.hour, t.minute, t.second) == (2010, 3, 6, 19, 17, 21)
    assert t.to_bytes() == MICROSOFT_STAMP
    assert str(t) == "2010-03-06T19:17:21Z"
    assert t.to_datetime() == datetime(2010, 3, 6, 19, 17, 21, tzinfo=UTC)
    assert t.auth_problems() == []
    assert EfiTime.SIZE == 16


def test_efitools_stamps() -> None:
    # sign-efi-sig-list -t and cert-to-efi-hash-list -t "2024-01-02 03:04:05".
    auth = (SIGDB / "db-efitools.auth").read_bytes()
    assert EfiTime.from_bytes(auth) == EfiTime(2024, 1, 2, 3, 4, 5)
    esl = (SIGDB / "x509-sha256-efitools.esl").read_bytes()
    assert EfiTime.from_bytes(esl, len(esl) - 16) == parse_time("2024-01-02T03:04:05Z")


def test_layout_of_every_field() -> None:
    t = EfiTime(0x1234, 2, 3, 4, 5, 6, 7, 0x0A0B0C0D, -60, 1, 9)
    raw = t.to_bytes()
    assert raw == struct.pack("<HBBBBBBIhBB", 0x1234, 2, 3, 4, 5, 6, 7, 0x0A0B0C0D, -60, 1, 9)
    assert EfiTime.from_bytes(b"xx" + raw, 2) == t


def test_truncated_reports_the_offset() -> None:
    with pytest.raises(TruncatedError) as info:
        EfiTime.from_bytes(bytes(20), 8, base=0x100)
    assert info.value.offset == 0x108
    assert info.value.structure == "EFI_TIME"
    assert "12 available" in str(info.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"year": -1},
        {"year": 0x10000},
        {"month": 256},
        {"nanosecond": 1 << 32},
        {"timezone": 0x8000},
        {"timezone": -0x8001},
        {"pad2": -1},
    ],
)
def test_constructor_refuses_values_that_do_not_fit(fields: dict[str, int]) -> None:
    base = {"year": 2024, "month": 1, "day": 2, "hour": 3, "minute": 4, "second": 5}
    with pytest.raises(UsageError):
        EfiTime(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"pad1": 1}, "Pad1 is 1"),
        ({"nanosecond": 5}, "Nanosecond is 5"),
        ({"timezone": 60}, "TimeZone is 60"),
        ({"timezone": EFI_UNSPECIFIED_TIMEZONE}, "TimeZone is 2047"),
        ({"daylight": 1}, "Daylight is 1"),
        ({"pad2": 3}, "Pad2 is 3"),
    ],
)
def test_firmware_rejects_nonzero_pads(fields: dict[str, int], problem: str) -> None:
    t = EfiTime(2024, 1, 2, 3, 4, 5, **fields)
    assert len(t.firmware_rejections()) == 1
    assert t.firmware_rejections()[0].startswith(problem)
    assert t.auth_problems()[0].startswith(problem)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ((2026, 0, 25, 1, 2, 3), "Month 0"),  # sbvarsign 0.9.4 in January
        ((2023, 2, 29, 0, 0, 0), "Day 29"),
        ((2024, 4, 31, 0, 0, 0), "Day 31"),
        ((2024, 1, 1, 24, 0, 0), "Hour 24"),
        ((2024, 1, 1, 0, 60, 0), "Minute 60"),
        ((2024, 1, 1, 0, 0, 60), "Second 60"),
        ((1899, 1, 1, 0, 0, 0), "Year 1899"),
    ],
)
def test_calendar_problems(fields: tuple[int, ...], problem: str) -> None:
    t = EfiTime(*fields)
    assert t.firmware_rejections() == []
    assert t.auth_problems() and t.auth_problems()[0].startswith(problem)
    assert t.to_datetime() is None
    assert str(t).startswith(f"{fields[0]:04d}-{fields[1]:02d}")  # printed as stored


def test_leap_day_and_zero_are_fine() -> None:
    assert EfiTime(2024, 2, 29, 23, 59, 59).auth_problems() == []
    zero = EfiTime.zero()
    assert zero.is_zero and zero.auth_problems() == [] and zero.to_bytes() == bytes(16)
    assert zero.to_datetime() is None
    assert str(zero) == "0000-00-00T00:00:00Z"


def test_ordering_is_year_to_second_only() -> None:
    a = EfiTime(2024, 1, 2, 3, 4, 5)
    b = EfiTime(2024, 1, 2, 3, 4, 5, nanosecond=999)
    c = EfiTime(2024, 1, 2, 3, 4, 6)
    assert not a < b and not b < a and a <= b and b >= a and a != b
    assert a < c and c > b and EfiTime.zero() < a
    assert sorted([c, a, EfiTime.zero()]) == [EfiTime.zero(), a, c]
    assert a.sort_key == (2024, 1, 2, 3, 4, 5)


def test_datetime_conversions() -> None:
    aware = datetime(2024, 1, 2, 5, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    t = EfiTime.from_datetime(aware)
    assert t == EfiTime(2024, 1, 2, 3, 4, 5)  # UTC, sub-seconds dropped
    assert EfiTime.from_datetime(datetime(2024, 1, 2, 3, 4, 5)) == t  # naive = UTC
    with pytest.raises(UsageError):
        EfiTime.from_datetime(datetime(1800, 1, 1))
    plus_one = EfiTime(2024, 1, 2, 4, 4, 5, timezone=60)
    assert plus_one.to_datetime() == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert str(plus_one) == "2024-01-02T04:04:05+01:00"
    minus = EfiTime(2024, 1, 2, 3, 4, 5, timezone=-90, nanosecond=7_000)
    assert str(minus) == "2024-01-02T03:04:05.000007000-01:30"
    assert minus.to_datetime() == datetime(
        2024, 1, 2, 3, 4, 5, 7, tzinfo=timezone(timedelta(minutes=-90))
    )
    local = EfiTime(2024, 1, 2, 3, 4, 5, timezone=EFI_UNSPECIFIED_TIMEZONE)
    assert local.to_datetime() == datetime(2024, 1, 2, 3, 4, 5)
    assert str(local) == "2024-01-02T03:04:05"


def test_now_is_utc_and_whole_seconds() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    t = EfiTime.now()
    after = datetime.now(UTC)
    assert t.nanosecond == 0 and t.auth_problems() == []
    when = t.to_datetime()
    assert when is not None and before <= when <= after


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02", EfiTime(2024, 1, 2, 0, 0, 0)),
        ("2024-01-02T03:04:05Z", EfiTime(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02t03:04:05z", EfiTime(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02 03:04:05", EfiTime(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02T05:04:05+02:00", EfiTime(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02T03:04:05.999Z", EfiTime(2024, 1, 2, 3, 4, 5)),
        ("0", EfiTime.zero()),
        (" zero ", EfiTime.zero()),
    ],
)
def test_parse_time(text: str, expected: EfiTime) -> None:
    assert parse_time(text) == expected


def test_parse_time_now() -> None:
    assert abs(parse_time("NOW").sort_key[0] - datetime.now(UTC).year) <= 1


@pytest.mark.parametrize("text", ["", "yesterday", "2024-13-01", "20240102", "2024-01-02T25:00"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="not a time"):
        parse_time(text)


@given(st.binary(max_size=40), st.integers(min_value=-4, max_value=40))
def test_from_bytes_fuzz(data: bytes, offset: int) -> None:
    try:
        t = EfiTime.from_bytes(data, offset)
    except ParseError:
        return
    assert t.to_bytes() == data[offset : offset + 16]
    # Everything else is total on any decoded value.
    t.auth_problems()
    t.to_datetime()
    assert isinstance(t.isoformat(), str)


@given(st.binary(min_size=16, max_size=16))
def test_any_16_bytes_round_trip(data: bytes) -> None:
    try:
        t = EfiTime.from_bytes(data)
    except FwError as exc:  # pragma: no cover - 16 bytes always decode
        raise AssertionError(exc) from exc
    assert t.to_bytes() == data
