"""Measured PCR values: sysfs directory dumps, tpm2_pcrread output, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fwtools.errors import FwIOError, ParseError
from fwtools.formats.tcg.measured import parse_measured, read_measured

SHA256_0 = "3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969"
SHA1_0 = "b2a83b0ebf2f8374299a5b2bdfc31ea955ad7236"

# As tpm2_pcrread (tpm2-tools 5.4) prints it.
PCRREAD = f"""  sha1:
    0 : 0x{SHA1_0.upper()}
  sha256:
    0 : 0x{SHA256_0.upper()}
    7 : 0x{"AB" * 32}
"""


def test_tpm2_pcrread_output() -> None:
    got = parse_measured(PCRREAD.encode())
    assert got == {"sha1": {0: bytes.fromhex(SHA1_0)},
                   "sha256": {0: bytes.fromhex(SHA256_0), 7: b"\xab" * 32}}


def test_tpm2_eventlog_pcrs_block_and_unknown_sections() -> None:
    text = f"""---
version: 2
events:
- EventNum: 0
  PCRIndex: 0
pcrs:
  sha256:
    0  : 0x{SHA256_0}
  sm3:
    1  : 0x{"00" * 32}
"""
    got = parse_measured(text.encode())
    assert got == {"sha256": {0: bytes.fromhex(SHA256_0)}, "sm3_256": {1: bytes(32)}}


def test_json() -> None:
    got = parse_measured(json.dumps({"sha256": {"0": SHA256_0}}).encode())
    assert got == {"sha256": {0: bytes.fromhex(SHA256_0)}}


def test_sysfs_directories(tmp_path: Path) -> None:
    tpm0 = tmp_path / "tpm0"
    (tpm0 / "pcr-sha256").mkdir(parents=True)
    (tpm0 / "pcr-sha1").mkdir()
    (tpm0 / "pcr-sha256" / "0").write_text(SHA256_0.upper() + "\n")
    (tpm0 / "pcr-sha1" / "0").write_text(SHA1_0.upper() + "\n")
    (tpm0 / "device").mkdir()
    want = {"sha1": {0: bytes.fromhex(SHA1_0)}, "sha256": {0: bytes.fromhex(SHA256_0)}}
    assert read_measured(tpm0) == want
    assert read_measured(tpm0 / "pcr-sha256") == {"sha256": want["sha256"]}


@pytest.mark.parametrize(("text", "message"), [
    ("sha256:\n  0 : 0x1234\n", "2 bytes, a sha256 PCR has 32"),
    ("sha256:\n  24 : 0x" + "00" * 32 + "\n", "out of 0..23"),
    ("nothing here\n", "no PCR values"),
    ('{"sha999": {}}', "unknown bank"),
    ('{"sha256": {"0": "zz"}}', "is not hex"),
    ('{"sha256": ', "not JSON"),
    ("[1]", "no PCR values"),
])
def test_bad_values(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_measured(text.encode())


def test_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "pcrs.txt"
    bad.write_text("sha256:\n  0 : 0x12\n")
    with pytest.raises(ParseError) as info:
        read_measured(bad)
    assert str(info.value).startswith(f"{bad}: tpm2_pcrread output line 2: offset 0x8: ")
    with pytest.raises(FwIOError, match="cannot read"):
        read_measured(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ParseError, match=r"no pcr-<bank>/<N> files") as info:
        read_measured(empty)
    assert str(info.value).startswith(str(empty))
