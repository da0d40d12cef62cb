"""Fixtures shared by the whole test suite.

Corpus fixtures (see docs/testing.md):

- ``corpus``: the Debian corpus (:class:`corpus.Corpus`), e.g.
  ``corpus.file("bookworm", "amd64", "grub-efi-amd64-signed",
  "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed")``, ``corpus.kernel("trixie", "arm64")``,
  ``corpus.boot_chain("bookworm", "amd64")``, ``corpus.ovmf("trixie", "OVMF_VARS_4M.ms.fd")``;
- ``corpus_efi_binary``: parametrizes a test over every PE image in the corpus
  (:class:`corpus.EfiBinary`, test ids ``suite/arch/package/relpath``);
- ``ms_corpus``: Microsoft's Secure Boot objects (:class:`corpus.MsCorpus`).

A test that uses them is marked ``corpus`` / ``mscorpus`` automatically. When the corpus is
absent it is skipped with the reason, unless ``FWTOOLS_REQUIRE_CORPUS=1`` (CI), where it fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/ has no __init__.py, so pytest's default "prepend" import mode puts it on sys.path and
# the helpers import as the package "corpus". Do it explicitly so that also holds under
# --import-mode=importlib and for anything that imports this conftest directly.
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from corpus import (  # noqa: E402
    Corpus,
    CorpusMissingError,
    EfiBinary,
    MsCorpus,
    load_corpus,
    load_ms_corpus,
)
from corpus.params import unavailable  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTDATA = REPO_ROOT / "testdata"

_CORPUS_FIXTURES = frozenset({"corpus", "corpus_efi_binary"})
_MS_CORPUS_FIXTURES = frozenset({"ms_corpus"})


def _get_corpus() -> Corpus:
    try:
        return load_corpus()
    except CorpusMissingError as exc:
        unavailable(str(exc))


def _get_ms_corpus() -> MsCorpus:
    try:
        return load_ms_corpus()
    except CorpusMissingError as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    return _get_corpus()


@pytest.fixture(scope="session")
def ms_corpus() -> MsCorpus:
    return _get_ms_corpus()


@pytest.fixture
def corpus_efi_binary(request: pytest.FixtureRequest) -> EfiBinary:
    param: EfiBinary | None = request.param
    if param is None:  # collected without a corpus: skip or fail with the reason
        _get_corpus()
        raise AssertionError("corpus appeared after collection; rerun pytest")
    return param


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """testdata/sample: the synthetic EFI images and test keys made by make_sample.py."""
    return TESTDATA / "sample"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "corpus_efi_binary" not in metafunc.fixturenames:
        return
    try:
        binaries = load_corpus().efi_binaries()
    except CorpusMissingError:
        # One placeholder case, so the test shows up as skipped (or failed) with the reason
        # instead of vanishing from the report.
        metafunc.parametrize("corpus_efi_binary", [None], ids=["corpus-missing"], indirect=True)
        return
    metafunc.parametrize(
        "corpus_efi_binary", binaries, ids=[b.id for b in binaries], indirect=True
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Mark by fixture use, so `-m "not corpus"` deselects every test that needs the corpus
    # without each test having to repeat the marker.
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & _CORPUS_FIXTURES:
            item.add_marker(pytest.mark.corpus)
        if names & _MS_CORPUS_FIXTURES:
            item.add_marker(pytest.mark.mscorpus)


def pytest_runtest_setup(item: pytest.Item) -> None:
    # A test marked explicitly (e.g. one that builds corpus paths itself) gets the same
    # skip-or-fail treatment as one that asks for the fixture.
    if item.get_closest_marker("corpus") is not None:
        _get_corpus()
    if item.get_closest_marker("mscorpus") is not None:
        _get_ms_corpus()
