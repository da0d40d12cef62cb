"""SBAT CSV (.sbat) and SbatLevel payloads: rules, round trips, hostile input, real files."""

from __future__ import annotations

import contextlib
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from corpus.params import corpus_files, need
from hypothesis import given, settings
from hypothesis import strategies as st

from fwtools.errors import ParseError
from fwtools.formats.pe.image import PeImage
from fwtools.formats.sbat import (
    SBAT_LEVEL_ORIGINAL,
    Sbat,
    SbatLevel,
    SbatRow,
    parse_sbat,
    parse_sbat_level,
    revocations,
)

# -- known data -------------------------------------------------------------------------

SHIM_SBAT = (
    b"sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n"
    b"shim,4,UEFI shim,shim,1,https://github.com/rhboot/shim\n"
    b"shim.debian,1,Debian,shim,16.1,https://tracker.debian.org/pkg/shim\n"
)

# docs/reference/formats.md 6.4 (SbatLevel_Variable.txt)
PUBLISHED_LEVELS = [
    (b"sbat,1,2021030218\n", {}),
    (b"sbat,1,2022052400\ngrub,2\n", {"grub": 2}),
    (b"sbat,1,2022052400\nshim,2\ngrub,2\n", {"shim": 2, "grub": 2}),
    (b"sbat,1,2022111500\nshim,2\ngrub,3\n", {"shim": 2, "grub": 3}),
    (
        b"sbat,1,2023012900\nshim,2\ngrub,3\ngrub.debian,4\n",
        {"shim": 2, "grub": 3, "grub.debian": 4},
    ),
    (
        b"sbat,1,2024010900\nshim,4\ngrub,3\ngrub.debian,4\n",
        {"shim": 4, "grub": 3, "grub.debian": 4},
    ),
    (
        b"sbat,1,2024040900\nshim,4\ngrub,4\ngrub.peimage,2\n",
        {"shim": 4, "grub": 4, "grub.peimage": 2},
    ),
    (b"sbat,1,2025021800\nshim,4\ngrub,5\n", {"shim": 4, "grub": 5}),
    (
        b"sbat,1,2025051000\nshim,4\ngrub,5\ngrub.proxmox,2\n",
        {"shim": 4, "grub": 5, "grub.proxmox": 2},
    ),
]


# -- .sbat ------------------------------------------------------------------------------


def test_shim_sbat_rows_lines_and_offsets() -> None:
    sbat = parse_sbat(SHIM_SBAT + b"\0" * 58, base=0x1000)
    assert [r.component for r in sbat.rows] == ["sbat", "shim", "shim.debian"]
    shim = sbat.rows[1]
    assert shim == SbatRow(
        "shim",
        4,
        "UEFI shim",
        "shim",
        "1",
        "https://github.com/rhboot/shim",
        line=2,
        offset=0x1000 + SHIM_SBAT.index(b"shim,4"),
    )
    assert sbat.format_version == 1
    assert [r.component for r in sbat.components] == ["shim", "shim.debian"]
    assert sbat.generation("shim.debian") == 1
    assert sbat.generation("grub") is None
    assert sbat.warnings == ()
    assert sbat.to_bytes() == SHIM_SBAT


def test_tolerated_variations_follow_shim() -> None:
    text = b"\xef\xbb\xbf\r\n" + SHIM_SBAT.replace(b"\n", b"\r\n") + b"\n\n\0\0"
    sbat = parse_sbat(text)
    assert [r.component for r in sbat.rows] == ["sbat", "shim", "shim.debian"]
    # Line numbers count CRLF as one break; the blank first line is line 1.
    assert [r.line for r in sbat.rows] == [2, 3, 4]
    assert sbat.to_bytes() == SHIM_SBAT


def test_lone_cr_separates_rows() -> None:
    sbat = parse_sbat(SHIM_SBAT.replace(b"\n", b"\r"))
    assert len(sbat.rows) == 3


def test_extra_columns_are_kept_and_noted() -> None:
    data = SHIM_SBAT + b"x,1,v,p,1.0,https://example.invalid,extra,more\n"
    sbat = parse_sbat(data)
    assert sbat.rows[-1].extra == ("extra", "more")
    assert sbat.rows[-1].vendor_url == "https://example.invalid"
    assert any("ignored by shim" in w for w in sbat.warnings)
    assert sbat.to_bytes() == data


def test_data_after_nul_is_ignored_but_reported() -> None:
    data = SHIM_SBAT + b"\0evil,99,a,b,c,d\n"
    sbat = parse_sbat(data, base=0x200)
    assert len(sbat.rows) == 3
    assert any("after the terminating NUL" in w and "0x" in w for w in sbat.warnings)


def test_utf8_vendor_names() -> None:
    data = SHIM_SBAT + "grub.x,1,Université,grub2,2.12,https://example.invalid\n".encode()
    assert parse_sbat(data).rows[-1].vendor_name == "Université"


@pytest.mark.parametrize(
    ("data", "message", "offset"),
    [
        (b"sbat,1,SBAT Version,sbat,1\n", "5 columns", 0),
        (SHIM_SBAT + b"grub,,a,b,c,d\n", "component_generation is empty", len(SHIM_SBAT) + 5),
        (SHIM_SBAT + b"grub,1,,b,c,d\n", "vendor_name is empty", len(SHIM_SBAT) + 7),
        (SHIM_SBAT + b"grub,x1,a,b,c,d\n", "not a decimal number", len(SHIM_SBAT) + 5),
        (SHIM_SBAT + b"grub,-1,a,b,c,d\n", "not a decimal number", len(SHIM_SBAT) + 5),
        (SHIM_SBAT + b"grub,65536,a,b,c,d\n", "16 bits", len(SHIM_SBAT) + 5),
        (SHIM_SBAT + b"grub," + b"9" * 5000 + b",a,b,c,d\n", "digits", len(SHIM_SBAT) + 5),
        (
            SHIM_SBAT + b"grub,1,Univ\xffrsit\xe9,b,c,d\n",
            "invalid UTF-8 byte 0xff",
            len(SHIM_SBAT) + 11,
        ),
        (b"grub,1,a,b,c,d\n", "not the 'sbat' format row", 0),
        (b"", "no SBAT rows", 0),
        (b"\0" * 64, "no SBAT rows", 0),
        (b"\r\n\n\xef\xbb\xbf", "1 columns", 3),  # a BOM is only skipped at the start
    ],
)
def test_strict_errors_name_line_and_offset(data: bytes, message: str, offset: int) -> None:
    base = 0x4000
    with pytest.raises(ParseError) as info:
        parse_sbat(data, base=base)
    assert message in str(info.value)
    assert info.value.offset == base + offset
    assert info.value.structure is not None and info.value.structure.startswith(".sbat")
    # Lenient mode records the same problem and still returns rows.
    lenient = parse_sbat(data, base=base, strict=False)
    assert any(message in w for w in lenient.warnings)


def test_strict_error_reports_line_number() -> None:
    with pytest.raises(ParseError, match=r"\.sbat line 4"):
        parse_sbat(SHIM_SBAT + b"grub,1,a\n")


def test_lenient_uses_atoi_semantics() -> None:
    sbat = parse_sbat(SHIM_SBAT + b"grub,12abc,a,b,c,d\ngrub2,zz,a,b,c,d\n", strict=False)
    assert sbat.rows[-2].generation == 12
    assert sbat.rows[-1].generation == 0


FIELD = st.text(
    alphabet=st.characters(blacklist_characters=",\r\n\0\ufeff", blacklist_categories=["Cs"]),
    min_size=1,
    max_size=20,
)
ROW = st.tuples(FIELD, st.integers(0, 0xFFFF), FIELD, FIELD, FIELD, FIELD)


@given(st.lists(ROW, max_size=8))
def test_round_trip_property(rows: list[tuple[str, int, str, str, str, str]]) -> None:
    head = SbatRow("sbat", 1, "SBAT Version", "sbat", "1", "https://x")
    built = Sbat((head, *(SbatRow(*r) for r in rows)))
    data = built.to_bytes()
    parsed = parse_sbat(data)
    assert [r.fields() for r in parsed.rows] == [r.fields() for r in built.rows]
    assert parsed.to_bytes() == data


@given(st.binary(max_size=512), st.integers(0, 1 << 40))
@settings(max_examples=400)
def test_hostile_bytes_sbat(data: bytes, base: int) -> None:
    try:
        parse_sbat(data, base=base)
    except ParseError as exc:
        assert exc.offset is not None and exc.offset >= base
    parse_sbat(data, base=base, strict=False)  # lenient never raises


@given(
    st.lists(
        st.sampled_from(
            [
                b"sbat",
                b"1",
                b",",
                b"\n",
                b"\r",
                b"\0",
                b"\xff",
                b"grub",
                b"99999999999999999999",
                b"\xef\xbb\xbf",
                b"",
            ]
        ),
        max_size=40,
    )
)
@settings(max_examples=400)
def test_hostile_token_soup(tokens: list[bytes]) -> None:
    data = b"".join(tokens)
    for parse in (parse_sbat, parse_sbat_level):
        with contextlib.suppress(ParseError):
            parse(data)
        parse(data, strict=False)


# -- SbatLevel --------------------------------------------------------------------------


@pytest.mark.parametrize(("payload", "generations"), PUBLISHED_LEVELS)
def test_published_levels(payload: bytes, generations: dict[str, int]) -> None:
    level = parse_sbat_level(payload)
    assert level.version == 1
    assert level.datestamp == payload[7:17].decode()
    assert level.generations == generations
    assert level.to_bytes() == payload
    assert level.date is not None and level.date.year >= 2021
    assert level.warnings == ()


def test_original_level_constant() -> None:
    level = parse_sbat_level(SBAT_LEVEL_ORIGINAL)
    assert (level.datestamp, level.entries) == ("2021030218", ())
    assert str(level.date) == "2021-03-02"


def test_create_and_query() -> None:
    level = SbatLevel.create("2025051000", {"shim": 4, "grub": 5, "grub.proxmox": 2})
    assert level.to_bytes() == PUBLISHED_LEVELS[-1][0]
    assert level.generation("grub") == 5
    assert level.generation("systemd") is None
    with pytest.raises(ParseError, match="datestamp"):
        SbatLevel.create("2025-05-10", {})


def test_level_tolerates_nul_bom_and_crlf() -> None:
    level = parse_sbat_level(b"\xef\xbb\xbfsbat,1,2022111500\r\nshim,2\r\ngrub,3\r\n\0\0")
    assert level.generations == {"shim": 2, "grub": 3}


@pytest.mark.parametrize(
    ("data", "message", "offset"),
    [
        (b"", "empty SbatLevel", 0),
        (b"grub,1\n", "is not 'sbat,<version>,<datestamp>'", 0),
        (b"sbat,1\n", "is not 'sbat,<version>,<datestamp>'", 0),
        (b"sbat,1,2024\n", "not YYYYMMDDCC", 7),
        (b"sbat,x,2024010900\n", "version 'x'", 5),
        (b"sbat,1,2024010900\nshim\n", "1 columns", 18),
        (b"sbat,1,2024010900\nshim,4,extra\n", "3 columns", 18),
        (b"sbat,1,2024010900\n,4\n", "empty component", 18),
        (b"sbat,1,2024010900\nshim,four\n", "not a decimal", 23),
        (b"sbat,1,2024010900\nshim,4\nshim,5\n", "listed again", 25),
        (b"sbat,1,2024010900\nshim,\xc3\n", "invalid UTF-8", 23),
    ],
)
def test_level_strict_errors(data: bytes, message: str, offset: int) -> None:
    with pytest.raises(ParseError) as info:
        parse_sbat_level(data, base=0x100)
    assert message in str(info.value)
    assert info.value.offset == 0x100 + offset
    assert any(message in w for w in parse_sbat_level(data, strict=False).warnings)


def test_duplicate_component_first_wins() -> None:
    level = parse_sbat_level(b"sbat,1,2024010900\nshim,4\nshim,5\n", strict=False)
    assert level.generations == {"shim": 4}


@given(st.binary(max_size=256))
@settings(max_examples=300)
def test_hostile_bytes_level(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_sbat_level(data)
    parse_sbat_level(data, strict=False)


# -- revocation rule --------------------------------------------------------------------


def test_revocations_follow_verify_sbat() -> None:
    grub = parse_sbat(
        b"sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n"
        b"grub,3,Free Software Foundation,grub,2.06,https://www.gnu.org/software/grub/\n"
        b"grub.debian,4,Debian,grub2,2.06-3~deb11u5,https://tracker.debian.org/pkg/grub2\n"
    )
    assert revocations(grub, parse_sbat_level(PUBLISHED_LEVELS[4][0])) == ()
    revoked = revocations(grub, parse_sbat_level(PUBLISHED_LEVELS[6][0]))
    assert [(r.component, r.generation, r.minimum) for r in revoked] == [("grub", 3, 4)]
    assert revocations(grub, parse_sbat_level(SBAT_LEVEL_ORIGINAL)) == ()


# -- real files -------------------------------------------------------------------------

SBAT_CARRIERS = corpus_files(
    "*/*/*/usr/**/*.efi", "*/*/*/usr/**/*.efi.signed", "*/*/*/usr/**/*.efi.stub"
)


def oracle_section(path: Path, name: str, tmp_path: Path) -> bytes | None:
    """The section's bytes as objcopy dumps them; for PE machines this host's binutils do
    not know (aarch64), an independent struct-based read of the section table."""
    data = path.read_bytes()
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    machine, nsec = struct.unpack_from("<HH", data, pe + 4)
    if machine == 0x8664 and shutil.which("objcopy"):
        out = tmp_path / "section.bin"
        subprocess.run(
            ["objcopy", "-O", "binary", f"--only-section={name}", str(path), str(out)],
            check=True,
            capture_output=True,
        )
        return out.read_bytes() if out.stat().st_size else None
    opt_size = struct.unpack_from("<H", data, pe + 20)[0]
    table = pe + 24 + opt_size
    for i in range(nsec):
        raw_name, vsize, _va, rsize, roff = struct.unpack_from("<8sIIII", data, table + 40 * i)
        if raw_name.rstrip(b"\0").decode() == name:
            return data[roff : roff + min(vsize, rsize)]
    return None


@pytest.mark.parametrize("path", SBAT_CARRIERS)
def test_every_corpus_sbat_parses(path: Path | None, tmp_path: Path) -> None:
    path = need(path)
    img = PeImage.open(path)
    section = img.section(".sbat")
    oracle = oracle_section(path, ".sbat", tmp_path)
    if section is None:
        assert oracle is None  # efitools and the systemd addon stub carry none
        return
    assert oracle is not None
    sbat = parse_sbat(img.section_data(section), base=section.raw_offset)
    expected = [
        line.split(",") for line in oracle.split(b"\0", 1)[0].decode().splitlines() if line.strip()
    ]
    assert [list(r.fields()) for r in sbat.rows] == expected
    assert sbat.rows[0].component == "sbat" and sbat.rows[0].generation == 1
    assert all(r.offset >= section.raw_offset for r in sbat.rows)
    assert sbat.to_bytes() == oracle.split(b"\0", 1)[0]
    assert sbat.warnings == ()
