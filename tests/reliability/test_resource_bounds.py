"""Inputs that claim huge sizes are rejected or processed with bounded memory (issue 8).

Each test measures the peak of Python allocations with tracemalloc (which sees every bytes,
bytearray and object the parsers create) and asserts a bound; no test looks at wall time.
One test runs the commands in a child process under an address-space limit (RLIMIT_AS), which
also catches allocations tracemalloc would not see.

The bounds, stated as "peak <= k * input + c", are the numbers in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from fuzz.targets import TARGETS

from fwtools._base.fileio import read_file
from fwtools.errors import FwError
from fwtools.formats.efi.authvar import AuthVariable2
from fwtools.formats.efi.siglist import SignatureDatabase
from fwtools.formats.pe.image import PeImage
from fwtools.formats.qcow2 import Qcow2Image
from fwtools.formats.sbat.sbat import parse_sbat, parse_sbat_level
from fwtools.formats.tcg.log import parse_event_log
from fwtools.formats.tcg.replay import replay
from fwtools.formats.varstore.storeio import MAX_STORE_SIZE, load_store
from reliability.hostile import (
    SAMPLE_PE,
    SIGNED_PE,
    auth_with,
    esl_many_entries,
    esl_with,
    huge_sbat,
    pe_with,
    qcow2_with,
    store_with_variable_sizes,
    tcg_many_records,
    tcg_with,
)

MiB = 1 << 20
U32 = 0xFFFFFFFF


def measure(fn: Callable[[], object]) -> tuple[BaseException | None, int]:
    """(the FwError raised or None, peak traced bytes) of ``fn()``; other errors propagate."""
    tracemalloc.start()
    try:
        fn()
        error: BaseException | None = None
    except FwError as exc:
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return error, peak


# -- rejected outright, with a tiny peak ------------------------------------------------------

REJECTED: dict[str, Callable[[], object]] = {
    "qcow2 virtual size 2**60": lambda: Qcow2Image.parse(qcow2_with(size=1 << 60)),
    "qcow2 virtual size > max": lambda: Qcow2Image.parse(qcow2_with(size=(1 << 30) + 512)),
    "qcow2 l1_size 2**32-1": lambda: Qcow2Image.parse(qcow2_with(l1_size=U32)),
    "qcow2 L1 table past the end": lambda: Qcow2Image.parse(
        qcow2_with(l1_table_offset=1 << 40)),
    "qcow2 backing file 4 GiB name": lambda: Qcow2Image.parse(
        qcow2_with(backing_file_offset=1 << 40, backing_file_size=U32)),
    "PE NumberOfSections 65535 (table inside the file)": lambda: PeImage(
        pe_with(sections=0xFFFF, pad=0xFFFF * 40)),
    "PE NumberOfSections 65535 (table past the end)": lambda: PeImage(pe_with(sections=0xFFFF)),
    "PE section SizeOfRawData 2**32-1": lambda: PeImage(pe_with(raw_size=U32)),
    "PE certificate table size 2**32-1": lambda: PeImage(
        pe_with(security_size=U32, base=SIGNED_PE)),
    "ESL SignatureListSize 2**32-1": lambda: SignatureDatabase.parse(esl_with(list_size=U32)),
    "ESL SignatureHeaderSize 2**32-1": lambda: SignatureDatabase.parse(esl_with(header_size=U32)),
    "ESL SignatureSize 2**32-1": lambda: SignatureDatabase.parse(esl_with(sig_size=U32)),
    "ESL SignatureSize 0": lambda: SignatureDatabase.parse(esl_with(sig_size=0)),
    ".auth dwLength 2**32-1": lambda: AuthVariable2.parse(auth_with(dw_length=U32)),
    "TCG EventSize 2**32-1": lambda: parse_event_log(tcg_with(event_size=U32)),
    "TCG Digests.count 2**32-1": lambda: parse_event_log(tcg_with(digest_count=U32)),
    "TCG numberOfAlgorithms 2**32-1": lambda: parse_event_log(tcg_with(algorithms=U32)),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_huge_claims_are_rejected_early(case: str) -> None:
    error, peak = measure(REJECTED[case])
    assert error is not None, f"{case}: accepted"
    assert "\n" not in str(error)
    # The inputs are at most 2.7 MB (the padded PE); nothing near the claimed size is built.
    assert peak < 8 * MiB, f"{case}: peak {peak / MiB:.1f} MiB"


# -- accepted (or reported as issues) with memory bounded by the input ------------------------

def _target(name: str, data: bytes) -> Callable[[], object]:
    if name == "tcg-replay":  # fw-pcr log's library work without the per-event report
        return lambda: replay(parse_event_log(data))
    return lambda: TARGETS[name](data)


BOUNDED: dict[str, tuple[Callable[[], bytes], str, float]] = {
    # case: (input builder, fuzz target, k in "peak <= k * len(input) + 4 MiB")
    "PE SizeOfImage 2**32-1": (lambda: pe_with(size_of_image=U32), "pe", 8),
    "PE section VirtualSize 2**32-1": (lambda: pe_with(virtual_size=U32), "pe", 8),
    "store variable NameSize 2**32-1": (lambda: store_with_variable_sizes(name_size=U32),
                                        "varstore", 8),
    "store variable DataSize 2**32-1": (lambda: store_with_variable_sizes(data_size=U32),
                                        "varstore", 8),
    "qcow2 refcount table 2**32-1 clusters": (
        lambda: qcow2_with(refcount_table_clusters=U32, refcount_table_offset=1 << 62),
        "qcow2", 8),
    "qcow2 2**32-1 snapshots": (lambda: qcow2_with(nb_snapshots=U32, snapshots_offset=1 << 40),
                                "qcow2", 8),
    # 21 845 SHA-256 entries in 1 MiB: one small object per entry.
    "ESL 1 MiB of entries": (lambda: esl_many_entries(MiB), "siglist", 24),
    # 65 536 16-byte TCG_PCR_EVENT2 records without digests, the most records per byte:
    # parse + replay keep one small object per record (~17 bytes per input byte).
    "TCG 1 MiB of empty records": (lambda: tcg_many_records(MiB), "tcg-replay", 24),
}


@pytest.mark.parametrize("case", sorted(BOUNDED))
def test_huge_claims_cost_memory_of_the_input_only(case: str) -> None:
    build, target, k = BOUNDED[case]
    data = build()
    _error, peak = measure(_target(target, data))
    bound = k * len(data) + 4 * MiB
    assert peak <= bound, f"{case}: peak {peak / MiB:.1f} MiB > {bound / MiB:.1f} MiB"


def test_sbat_memory_is_linear_in_the_input() -> None:
    # 20 000 rows (~1 MB): every row is kept, so memory follows the text; shim's own .sbat
    # has 5 rows. The bound is what a 1 GiB input (MAX_INPUT_SIZE) could cost at most.
    data = huge_sbat(20_000)
    error, peak = measure(lambda: (parse_sbat(data, strict=False),
                                   parse_sbat_level(data, strict=False)))
    assert error is None or "SbatLevel" in str(error)
    assert peak <= 40 * len(data) + 4 * MiB, peak / MiB


def test_qcow2_store_is_bounded_by_max_store_size(tmp_path: Path) -> None:
    # fw-vars materialises a qcow2 store's guest view: at most MAX_STORE_SIZE (256 MiB),
    # whatever the header claims; a 4 KiB file claiming exactly the limit costs the limit
    # once (plus a little), and one sector more is refused before anything is allocated.
    at_limit = tmp_path / "at-limit.qcow2"
    at_limit.write_bytes(qcow2_with(size=MAX_STORE_SIZE, l1_size=4096))
    error, peak = measure(lambda: load_store(at_limit))
    assert error is not None  # an all-zero guest is no store of a known size
    assert peak <= MAX_STORE_SIZE + 32 * MiB, peak / MiB
    over = tmp_path / "over-limit.qcow2"
    over.write_bytes(qcow2_with(size=MAX_STORE_SIZE + 512, l1_size=4096))
    error, peak = measure(lambda: load_store(over))
    assert error is not None and "exceeds the limit" in str(error)
    assert peak < 1 * MiB


def test_reading_a_small_file_allocates_its_size(tmp_path: Path) -> None:
    # read_file used to call f.read(1 GiB + 1), which allocates the whole buffer first: a
    # MemoryError (traceback) under `ulimit -v` for any input. Now: the file's size.
    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 1000)
    _error, peak = measure(lambda: read_file(small))
    assert peak < 64 * 1024


# -- commands under an address-space limit ----------------------------------------------------

TD = Path(__file__).resolve().parents[2] / "testdata"
CHILD = r"""
import json, resource, sys
limit = int(sys.argv[1])
if limit:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from click.testing import CliRunner
from fwtools.cli.fw_sigdb import cli as fw_sigdb
from fwtools.cli.fw_vars import cli as fw_vars
from fwtools.cli.pe_inspect import pe_inspect
from fwtools.cli.byebyebios import command as byebyebios
tools = {"fw-vars": fw_vars, "fw-sigdb": fw_sigdb, "pe-inspect": pe_inspect,
         "byebyebios": byebyebios}
out = []
for tool, argv in json.loads(sys.argv[2]):
    try:
        r = CliRunner().invoke(tools[tool], argv, catch_exceptions=False)
        out.append([tool, argv, r.exit_code, r.stderr[-400:]])
    except BaseException as exc:
        out.append([tool, argv, -1, repr(exc)])
# Peak RSS of this program: VmHWM (ru_maxrss would include the parent's peak before exec).
out.append(int(next(line.split()[1] for line in open("/proc/self/status")
                    if line.startswith("VmHWM:"))))  # KiB
print(json.dumps(out))
"""


def test_commands_under_an_address_space_limit(tmp_path: Path) -> None:
    huge = tmp_path / "huge.qcow2"
    huge.write_bytes(qcow2_with(size=1 << 60))
    esl = tmp_path / "many.esl"
    esl.write_bytes(esl_many_entries(MiB))
    runs = [
        ("fw-vars", ["show", str(TD / "varstore/normal-format.fd")], 0),
        ("fw-vars", ["show", str(TD / "qcow2/v3-4k-zero.qcow2")], 2),  # not a store inside
        ("fw-vars", ["show", str(huge)], 2),
        ("fw-sigdb", ["show", str(esl)], 0),
        ("fw-sigdb", ["show", str(TD / "sigdb/db-fwtools-ci.auth")], 0),
        ("pe-inspect", [str(TD / "sample/hello-nx.signed.efi")], 0),
    ]
    # 768 MiB of address space: the interpreter, cryptography and rich fit with room to
    # spare; before the read_file fix every command here died of MemoryError.
    limit = 768 * MiB
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(limit), json.dumps([[t, a] for t, a, _ in runs])],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=str(TD.parent)),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout)[:-1]
    for (tool, argv, code, err), (_, _, expected) in zip(results, runs, strict=True):
        assert code == expected, (tool, argv, code, err)
        assert "Traceback" not in err and "MemoryError" not in err


def test_byebyebios_maps_a_large_qcow2_disk(tmp_path: Path) -> None:
    """byebyebios used to read a qcow2 image whole (f.read()): a VM disk of many GiB cost
    that much memory. It maps the file now and touches only the header, the tables and the
    first cluster: the child's peak RSS stays far below the 3 GiB disk."""
    from fwtools.formats.qcow2.writer import raw_to_qcow2

    disk = tmp_path / "vm.qcow2"
    sector0 = bytes(510) + b"\x55\xaa"  # an empty MBR: the first cluster is allocated
    with open(disk, "wb") as f:
        f.write(raw_to_qcow2(sector0 + bytes((1 << 20) - 512)))
        f.truncate(3 << 30)  # sparse: 3 GiB of (unreferenced) zeros after the image
    runs = [["--dry-run", str(disk)], [str(disk)], ["--check", str(disk)]]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, "0", json.dumps([["byebyebios", a] for a in runs])],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=str(TD.parent)),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    *results, maxrss_kib = json.loads(proc.stdout)
    assert [code for _t, _a, code, _e in results] == [0, 0, 0], results
    assert maxrss_kib * 1024 < 512 * MiB, f"peak RSS {maxrss_kib / 1024:.0f} MiB"


@pytest.mark.parametrize("memory_mib", [2048, 16 << 20])  # the default guest, and 16 TiB
def test_boot_chain_replay_of_a_huge_image_is_bounded(memory_mib: int) -> None:
    """fw-check boot-chain: a stage claiming SizeOfImage 4 GiB - 4 KiB behind a real EFI
    application, on the default guest (LoadImage fails: refused) and on the largest guest a
    profile may give (16 TiB: the image is placed and protected). The page tables keep ranges
    of equal attributes, not pages, so neither the guest nor the image size shows in memory."""
    from fwtools.uefi.image import load_stage, stage_from_bytes
    from fwtools.uefi.profile import load_firmware
    from fwtools.uefi.replay import replay

    app = load_stage(SAMPLE_PE)
    huge = stage_from_bytes(pe_with(size_of_image=0xFFFFF000), "huge.efi")
    profile = load_firmware("mu-ship").with_overrides(memory_mib=memory_mib)
    result: list[str] = []
    error, peak = measure(lambda: result.append(replay([app, huge], profile).verdict))
    assert error is None
    assert result == (["refused"] if memory_mib == 2048 else ["boots"])
    assert peak < 4 * MiB, peak / MiB  # measured: 0.3 and 0.4 MiB
