"""Parametrising tests over corpus files found by glob, for tests that need paths at
collection time rather than the ``corpus`` fixture, and the one rule for anything a test
needs from outside the repository (corpus, oracle tools, peer tools, privileges): skip with
the reason on a developer's machine, fail under ``FWTOOLS_REQUIRE_CORPUS=1``, which
``.ci/run`` sets after installing all of it, so CI can never go green by skipping."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, NoReturn

import pytest

from .corpus import FETCH_HINT, PEERS_DIR, REQUIRE_ENV, corpus_base, require_corpus

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


def populated_stores(*patterns: str) -> list[Any]:
    """:func:`corpus_files` for variable stores, keeping only those holding variables.

    Debian ships unformatted (all-zero AAVMF) and freshly formatted empty templates beside
    the firmware-written ones; tests about the variables inside have nothing to check in
    those, so they are not generated rather than generated and skipped.
    """
    from fwtools.errors import FwError
    from fwtools.formats.varstore.store import VariableStore

    params = corpus_files(*patterns)
    kept = []
    for param in params:
        (path,) = param.values
        if path is not None:
            try:
                if not len(VariableStore.parse(path.read_bytes())):
                    continue
            except FwError:
                continue
        kept.append(param)
    return kept or params


def unavailable(reason: str) -> NoReturn:
    """Skip for ``reason``, or fail when CI requires everything to be present."""
    if require_corpus():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 makes this an error)", pytrace=False)
    pytest.skip(reason)


def need(path: Path | None) -> Path:
    """The parametrised path, or skip (fail under FWTOOLS_REQUIRE_CORPUS=1) without one."""
    if path is None:
        unavailable(f"real-world corpus not found under {CORPUS} ({FETCH_HINT})")
    return path


def without_read_override() -> list[str]:
    """A command prefix under which a mode-000 file of ours cannot be read.

    Root reads anything through CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH; dropping those from the
    bounding set makes the owner's permission bits apply to root too (CI runs as root). For
    anyone else mode 000 already denies the read.
    """
    if os.geteuid() != 0:
        return []
    return [need_tool("setpriv"), "--bounding-set=-dac_override,-dac_read_search"]


# The venv in PEERS_DIR of each peer tool used as an oracle (benchmarks/setup-peers.sh makes
# them; .ci/run runs it): virt-firmware's commands and python-uefivars' ``uefivars``.
PEER_VENVS = {"virt-fw-vars": "virt-venv", "pe-inspect": "virt-venv",
              "virt-fw-sigdb": "virt-venv", "virt-fw-measure": "virt-venv",
              "uefivars": "uefivars-venv"}


def need_peer(tool: str) -> str:
    """The path of a peer tool (virt-fw-vars, uefivars...) installed by setup-peers.sh."""
    candidate = PEERS_DIR / PEER_VENVS[tool] / "bin" / tool
    if candidate.is_file():
        return str(candidate)
    unavailable(f"{candidate} missing: run benchmarks/setup-peers.sh (.ci/run does)")


def need_tool(tool: str) -> str:
    """The path of ``tool`` (an oracle such as sbverify or openssl), or skip/fail."""
    found = shutil.which(tool)
    if found is None:
        unavailable(f"{tool} is not installed (.ci/run installs it)")
    return found
