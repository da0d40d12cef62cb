"""The whole inspection pipeline on hostile input: parse, digest, signatures, special sections,
rules and both renderers. Anything but a FwError is a bug."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from corpus import Corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwtools.errors import FwError
from fwtools.policy.collect import collect_facts, inspect_path
from fwtools.policy.pe_facts import FileResult
from fwtools.report.pe_json import inspect_document
from fwtools.report.text_pe import render_inspection

TESTDATA = Path(__file__).resolve().parents[2] / "testdata"
SEEDS = {
    "signed": TESTDATA / "sample/hello-nx.signed.efi",
    "uki": TESTDATA / "uki/uki.efi",
}


def _pipeline(blob: bytes, name: str) -> None:
    try:
        facts = collect_facts(blob, name, check_signatures=True, checksum=True)
    except FwError as exc:
        assert str(exc)
        assert "\n" not in str(exc)
        return
    result = [FileResult(name, facts)]
    json.dumps(inspect_document(result))
    assert_fast_text_is_rich(result)


def assert_fast_text_is_rich(result: list[FileResult]) -> None:
    """pe-inspect's uncoloured text, written directly where it can be, is what rich draws."""
    for verbose in (False, True):
        fast, rich = io.StringIO(), io.StringIO()
        render_inspection(result, fast, verbose=verbose, color=False)
        render_inspection(result, rich, verbose=verbose, color=False, fast=False)
        assert fast.getvalue() == rich.getvalue()


def test_fast_text_on_the_corpus(corpus: Corpus) -> None:
    """Every PE image of the corpus (kernels with long version lines, shim's .sbat table,
    signatures whose issuer lines wrap) reads the same through both renderers."""
    results = [inspect_path(str(b.path)) for b in corpus.efi_binaries()]
    assert len(results) > 40
    for r in results:
        assert_fast_text_is_rich([r])
    assert_fast_text_is_rich(results)


def test_fast_text_on_unusual_lines(tmp_path: Path) -> None:
    """Wide, tabbed and control characters, and lines exactly at the width, in a path."""
    blob = SEEDS["uki"].read_bytes()
    for name in ("a\tb.efi", "wide-\u4e2d\u6587" * 12 + ".efi", "x" * 118 + ".efi",
                 "ctl-\x07-\r.efi", "x" * 300 + ".efi"):
        facts = collect_facts(blob, name, check_signatures=True)
        assert_fast_text_is_rich([FileResult(name, facts)])


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_seeds_are_clean(seed: str) -> None:
    facts = collect_facts(SEEDS[seed].read_bytes(), seed, check_signatures=True)
    assert not [f for f in facts.findings if f.rule in {"signature", "special-section"}]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_mutations_never_crash(seed: str, data: st.DataObject) -> None:
    blob = bytearray(SEEDS[seed].read_bytes())
    for _ in range(data.draw(st.integers(1, 16))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob)))]
    _pipeline(bytes(blob), seed)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(SEEDS)), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=64))
def test_spliced_garbage(seed: str, where: int, garbage: bytes) -> None:
    blob = bytearray(SEEDS[seed].read_bytes())
    pos = where % len(blob)
    blob[pos : pos + len(garbage)] = garbage
    _pipeline(bytes(blob), seed)
