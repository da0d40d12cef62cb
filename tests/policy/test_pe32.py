"""fw-check's rules on PE32 images: the header fields they report are located with the PE32
layout (ImageBase at optional-header offset 28, where PE32+ has it at 24 and PE32 has
BaseOfData). pefile is the oracle for every offset."""

from __future__ import annotations

import warnings

import pefile
import pytest
from pe_images import PE32_MAGIC, PE32PLUS_MAGIC, build_image

from fwtools.policy import checks
from fwtools.policy.collect import collect_facts
from fwtools.policy.pe_rules import evaluate


def _pefile(data: bytes) -> pefile.PE:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pefile.PE(data=data, fast_load=True)


def _violations(rule: str, data: bytes, **params: object) -> list[checks.Violation]:
    facts = collect_facts(data, "image.efi", inspect=False)
    return checks.RULES[rule].run(checks.Context(facts, params))


@pytest.mark.parametrize("magic", [PE32_MAGIC, PE32PLUS_MAGIC], ids=["pe32", "pe32plus"])
def test_image_base_is_reported_at_its_field(magic: int) -> None:
    data = build_image(magic, image_base=0x10000, base_of_data=0x2000)
    oh = _pefile(data).OPTIONAL_HEADER
    [v] = _violations("image-base", data, value=0)
    assert v.message == f"ImageBase {oh.ImageBase:#x} is not 0x0"
    assert v.offset == oh.get_field_absolute_offset("ImageBase")
    # The bytes at the reported offset are ImageBase's, not PE32's BaseOfData.
    assert int.from_bytes(data[v.offset : v.offset + 4], "little") == 0x10000


@pytest.mark.parametrize("magic", [PE32_MAGIC, PE32PLUS_MAGIC], ids=["pe32", "pe32plus"])
def test_optional_header_rules_report_pefile_offsets(magic: int) -> None:
    data = build_image(magic, dll_characteristics=0x0040, subsystem=3, section_alignment=0x200,
                       entry=0x2010)
    oh = _pefile(data).OPTIONAL_HEADER
    want = {
        "nx-compat": oh.get_field_absolute_offset("DllCharacteristics"),
        "section-alignment": oh.get_field_absolute_offset("SectionAlignment"),
        "subsystem-allowed": oh.get_field_absolute_offset("Subsystem"),
        "entry-point": oh.get_field_absolute_offset("AddressOfEntryPoint"),
    }
    for rule, offset in want.items():
        found = _violations(rule, data, **checks.RULES[rule].params)
        assert found, rule
        assert {v.offset for v in found} == {offset}, rule


def test_section_rules_report_pefile_offsets() -> None:
    data = build_image(PE32_MAGIC)
    sections = _pefile(data).sections
    text = sections[0]
    patched = bytearray(data)
    at = text.get_field_absolute_offset("Characteristics")
    patched[at : at + 4] = (0xE0000020).to_bytes(4, "little")  # RWX
    [v] = _violations("wx-section", bytes(patched))
    assert v.offset == at


def test_pe_inspect_verdicts_on_pe32() -> None:
    data = build_image(PE32_MAGIC, dll_characteristics=0x0140)
    facts = collect_facts(data, "image.efi")
    assert facts.findings == evaluate(facts)
    nx = [f for f in facts.findings if f.rule == "nx-compat"]
    assert [(f.severity, f.offset) for f in nx] == [
        ("note", _pefile(data).OPTIONAL_HEADER.get_field_absolute_offset("DllCharacteristics"))
    ]
