"""Run a job over many stores: in this process for a few, in a process pool for many.

Results come back in input order. Each worker holds one store at a time and the results are
small frozen records, so memory is bounded by the largest store (times the number of
workers), not by the number of stores. The pool is forked, so workers start without
re-importing fwtools.

Large buffers: reading a 64 MiB AAVMF store allocates 64 MiB several times over (the file,
the qcow2 guest view, a blank store's image). glibc serves each from a fresh mmap, which the
kernel zero-fills page by page and unmaps again on free: for a directory of such stores most
of the time went to the kernel (measured in benchmarks/bench_audit.py: 2.9 s of 4.1 s system
time for 100 stores). A process that audits many stores therefore asks glibc to keep large
blocks on its heap and reuse them (``mallopt`` M_MMAP_THRESHOLD / M_TRIM_THRESHOLD, glibc
``malloc/malloc.c``); memory then stays at the peak one store needs, which is the bound
anyway.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Final, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Below this many stores a pool costs more to start than it saves.
POOL_THRESHOLD: Final = 16
# glibc mallopt parameters (malloc/malloc.h) and the sizes used.
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3
_KEEP_BELOW: Final = 256 << 20  # the largest store storeio accepts (MAX_STORE_SIZE)


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def reuse_large_buffers() -> bool:
    """Ask glibc to reuse large freed blocks instead of unmapping them (see the module
    docstring); False where that is not glibc or not possible. Process-wide, for processes
    that audit many stores."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_BELOW)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 2 * _KEEP_BELOW))


def run_many(job: Callable[[T], R], items: Sequence[T], *, jobs: int | None = None) -> Iterator[R]:
    """``job(item)`` for each item, in order. ``job`` must be a module-level function (it is
    pickled by reference) that never raises for a bad item."""
    workers = default_jobs() if jobs is None else max(1, jobs)
    if workers == 1 or len(items) <= POOL_THRESHOLD:
        if len(items) > 1:
            reuse_large_buffers()
        for item in items:
            yield job(item)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # The first item in this process: its result comes at once, and the modules and caches
    # it loads (parsers, certificates, Microsoft's dbx list) are inherited by the forked
    # workers instead of being loaded again in each. The buffers setting is the workers'
    # own, so they do not inherit (and copy on write) a heap the parent kept.
    yield job(items[0])
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    rest = items[1:]
    chunk = max(1, min(32, len(rest) // (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=reuse_large_buffers) as pool:
        yield from pool.map(job, rest, chunksize=chunk)
