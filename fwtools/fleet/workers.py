"""Run a job over many stores: in this process for a few, in a process pool for many.

Results come back in input order. Each worker holds one store at a time and the results are
small frozen records, so memory is bounded by the largest store (times the number of
workers), not by the number of stores. The pool is forked, so workers start without
re-importing fwtools.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Final, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Below this many stores a pool costs more to start than it saves.
POOL_THRESHOLD: Final = 16


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_many(job: Callable[[T], R], items: Sequence[T], *, jobs: int | None = None) -> Iterator[R]:
    """``job(item)`` for each item, in order. ``job`` must be a module-level function (it is
    pickled by reference) that never raises for a bad item."""
    workers = default_jobs() if jobs is None else max(1, jobs)
    if workers == 1 or len(items) <= POOL_THRESHOLD:
        for item in items:
            yield job(item)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    chunk = max(1, min(32, len(items) // (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield from pool.map(job, items, chunksize=chunk)
