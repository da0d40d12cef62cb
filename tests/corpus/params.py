"""Parametrising tests over corpus files found by glob, for tests that need paths at
collection time rather than the ``corpus`` fixture; skipping tests whose oracle tool is
missing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from .corpus import FETCH_HINT, corpus_base, require_corpus

CORPUS = corpus_base() / "root"


def corpus_files(*patterns: str) -> list[Any]:
    """pytest params for corpus files matching ``patterns`` (globs below root/).

    Half-unpacked trees (``*.tmp``, left by an interrupted fetch) are ignored. With no
    match there is one ``corpus-missing`` case, which :func:`need` skips or fails.
    """
    found = sorted(
        {
            p
            for pattern in patterns
            for p in CORPUS.glob(pattern)
            if p.is_file() and not any(part.endswith(".tmp") for part in p.parts)
        }
    )
    if not found:
        return [pytest.param(None, id="corpus-missing", marks=pytest.mark.corpus)]
    return [pytest.param(p, id=str(p.relative_to(CORPUS)), marks=pytest.mark.corpus) for p in found]


def need(path: Path | None) -> Path:
    """The parametrised path, or skip (fail under FWTOOLS_REQUIRE_CORPUS=1) without one."""
    if path is None:
        message = f"real-world corpus not found under {CORPUS} ({FETCH_HINT})"
        if require_corpus():
            pytest.fail(message)
        pytest.skip(message)
    return path


def need_tool(tool: str) -> None:
    """Skip the test unless ``tool`` (an oracle such as sbverify or openssl) is on PATH."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
