"""The real-world corpus: fetch.sh fetches it, corpus.py finds files in it."""

from .corpus import (
    Corpus,
    CorpusMissingError,
    EfiBinary,
    MsCorpus,
    Package,
    load_corpus,
    load_ms_corpus,
    require_corpus,
)

__all__ = [
    "Corpus",
    "CorpusMissingError",
    "EfiBinary",
    "MsCorpus",
    "Package",
    "load_corpus",
    "load_ms_corpus",
    "require_corpus",
]
