"""Every parser under hypothesis, in the normal test run (issue 8).

The same targets as the atheris campaigns (tests/fuzz/targets.py): a target returns or raises
FwError with a one-line message; anything else fails. Inputs are seeds from testdata/ with
byte edits, splices, truncations and extensions drawn by hypothesis, plus raw random bytes.
The regression fixtures in testdata/fuzz/<parser>/ are replayed by test_fuzz_regressions.py.

Sizes are kept small so the whole file runs in a few seconds; the long runs are the atheris
campaigns (fuzz/run-campaigns.py).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.targets import TARGETS, run, small_seeds

SEEDS: dict[str, list[bytes]] = {}


def _seeds(name: str) -> list[bytes]:
    if name not in SEEDS:
        from fuzz.targets import _made_seeds

        SEEDS[name] = small_seeds(name) + _made_seeds(name, corpus=False)
        SEEDS[name] = [s for s in SEEDS[name] if len(s) <= (600 << 10)] or [b""]
    return SEEDS[name]


@st.composite
def mutated(draw: st.DrawFn, name: str) -> bytes:
    seeds = _seeds(name)
    blob = bytearray(seeds[draw(st.integers(0, len(seeds) - 1))])
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.integers(0, 4))
        pos = draw(st.integers(0, max(0, len(blob) - 1)))
        if op == 0 and blob:  # flip a byte
            blob[pos] = draw(st.integers(0, 255))
        elif op == 1:  # splice in bytes, often "interesting" integers
            chunk = draw(st.one_of(
                st.binary(min_size=1, max_size=16),
                st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x80", b"\xff\xff\xff\x7f",
                                 b"\x00" * 8, b"\xff" * 8, b"\x01\x00\x00\x00"]),
            ))
            blob[pos : pos + len(chunk)] = chunk
        elif op == 2:  # truncate
            del blob[pos:]
        elif op == 3:  # insert
            blob[pos:pos] = draw(st.binary(min_size=1, max_size=32))
        else:  # delete a run
            del blob[pos : pos + draw(st.integers(1, 64))]
    return bytes(blob)


# Examples per parser: the PE and store targets do the most work per input.
# FWTOOLS_FUZZ_SCALE=N multiplies every count (a longer run outside the normal test run).
SCALE = int(os.environ.get("FWTOOLS_FUZZ_SCALE", "1"))
# replays are ~10-50 ms each and a boot-chain input is replayed twice
EXAMPLES = {"pe": 60, "varstore": 60, "qcow2": 80, "authvar": 80, "bootchain": 30, "disk": 60,
            "firmware": 40}
DEFAULT_EXAMPLES = 120
RANDOM_EXAMPLES = 60


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_exercise_the_target(name: str) -> None:
    # The seeds must be valid inputs, not errors: otherwise mutations test nothing.
    for blob in _seeds(name)[:4]:
        run(name, blob)


def _mutation_test(name: str) -> object:
    @settings(max_examples=EXAMPLES.get(name, DEFAULT_EXAMPLES) * SCALE, deadline=None,
              database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(blob=mutated(name))
    def test(blob: bytes) -> None:
        run(name, blob)

    test.__name__ = f"test_mutated_{name}"
    return test


def _random_test(name: str) -> object:
    @settings(max_examples=RANDOM_EXAMPLES * SCALE, deadline=None, database=None)
    @given(blob=st.binary(max_size=2048))
    def test(blob: bytes) -> None:
        run(name, blob)

    test.__name__ = f"test_random_{name}"
    return test


for _name in TARGETS:
    globals()[f"test_mutated_{_name}"] = _mutation_test(_name)
    globals()[f"test_random_{_name}"] = _random_test(_name)
