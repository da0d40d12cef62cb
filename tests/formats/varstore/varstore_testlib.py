"""Shared by the varstore tests: corpus store lists and facts, fixture paths, the oracles.

Oracles (none of them fwtools):
- ``tests/formats/efi/efi_varstore_walk.py``: a small test-only walker written for another
  purpose (live records of an authenticated store, FindVariableEx rule);
- virt-firmware's ``virt-fw-vars --output-json -`` (the peer venv of
  benchmarks/setup-peers.sh), which lists the 0x3F records of a store in store order;
- ``independent_record``: a record encoded here with ``struct`` from VariableFormat.h.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import struct
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from corpus.params import CORPUS, corpus_files, need_peer

REPO: Final = Path(__file__).resolve().parents[3]
FIXTURES: Final = REPO / "testdata" / "varstore"
WALKER_PATH: Final = REPO / "tests" / "formats" / "efi" / "efi_varstore_walk.py"
VENDOR: Final = uuid.UUID("b6a4e3ad-2f45-4b0b-9d6c-7e0f0a1b2c3d")

STORE_GLOBS: Final = (
    "*/amd64/ovmf/usr/share/OVMF/OVMF*_VARS*.fd",
    "*/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF*_VARS*.fd",
    "*/amd64/ovmf/usr/share/ovmf/OVMF.fd",
)


def store_params() -> list[Any]:
    """Every OVMF/AAVMF variable store in the corpus (and the unified OVMF.fd images)."""
    params: list[Any] = corpus_files(*STORE_GLOBS)
    return params


@dataclass(frozen=True)
class Facts:
    """What a corpus store holds, measured with an independent walk (docs/reference/formats.md §1.7
    for bookworm; trixie measured the same way). ``states`` counts records by State."""

    layout: str
    records: int
    live: int
    states: dict[int, int]
    records_end: int


_EMPTY_4M: Final = Facts("ovmf-4m-528k", 0, 0, {}, 0x64)
FACTS: Final[dict[str, Facts]] = {
    "bookworm/amd64/ovmf/usr/share/OVMF/OVMF_VARS.fd": Facts("ovmf-2m-128k", 0, 0, {}, 0x64),
    "bookworm/amd64/ovmf/usr/share/OVMF/OVMF_VARS.ms.fd": Facts(
        "ovmf-2m-128k", 57, 31, {0x3F: 31, 0x3C: 25, 0x3D: 1}, 0x5998
    ),
    "bookworm/amd64/ovmf/usr/share/OVMF/OVMF_VARS_4M.fd": _EMPTY_4M,
    "bookworm/amd64/ovmf/usr/share/OVMF/OVMF_VARS_4M.ms.fd": Facts(
        "ovmf-4m-528k", 57, 31, {0x3F: 31, 0x3C: 25, 0x3D: 1}, 0x5998
    ),
    "bookworm/amd64/ovmf/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd": Facts(
        "ovmf-4m-528k", 57, 31, {0x3F: 31, 0x3C: 25, 0x3D: 1}, 0x4A54
    ),
    "bookworm/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF_VARS.ms.fd": Facts(
        "aavmf-64m", 29, 22, {0x3F: 22, 0x3C: 6, 0x3D: 1}, 0x2638
    ),
    "bookworm/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF_VARS.snakeoil.fd": Facts(
        "aavmf-64m", 29, 22, {0x3F: 22, 0x3C: 6, 0x3D: 1}, 0x16F4
    ),
    "trixie/amd64/ovmf/usr/share/OVMF/OVMF_VARS_4M.fd": _EMPTY_4M,
    "trixie/amd64/ovmf/usr/share/OVMF/OVMF_VARS_4M.ms.fd": Facts(
        "ovmf-4m-528k", 39, 21, {0x3F: 21, 0x3C: 17, 0x3D: 1}, 0x31E8
    ),
    "trixie/amd64/ovmf/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd": Facts(
        "ovmf-4m-528k", 39, 21, {0x3F: 21, 0x3C: 17, 0x3D: 1}, 0x23C4
    ),
    "trixie/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF_VARS.fd": Facts("aavmf-64m", 0, 0, {}, 0x64),
    "trixie/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF_VARS.ms.fd": Facts(
        "aavmf-64m", 35, 21, {0x3F: 21, 0x3C: 12, 0x3D: 2}, 0x2A68
    ),
    "trixie/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF_VARS.snakeoil.fd": Facts(
        "aavmf-64m", 35, 21, {0x3F: 21, 0x3C: 12, 0x3D: 2}, 0x1C44
    ),
    "bookworm/amd64/ovmf/usr/share/ovmf/OVMF.fd": Facts("ovmf-unified-2m", 0, 0, {}, 0x64),
    "trixie/amd64/ovmf/usr/share/ovmf/OVMF.fd": Facts("ovmf-unified-4m", 0, 0, {}, 0x64),
}
# Debian bookworm's AAVMF_VARS.fd: 64 MiB of zeros, no FV (the firmware formats it).
BLANK_STORES: Final = frozenset({"bookworm/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF_VARS.fd"})
# The pristine templates blank() must reproduce byte for byte: relative path -> layout.
TEMPLATES: Final[dict[str, str]] = {
    "bookworm/amd64/ovmf/usr/share/OVMF/OVMF_VARS.fd": "ovmf-2m-128k",
    "bookworm/amd64/ovmf/usr/share/OVMF/OVMF_VARS_4M.fd": "ovmf-4m-528k",
    "trixie/amd64/ovmf/usr/share/OVMF/OVMF_VARS_4M.fd": "ovmf-4m-528k",
    "trixie/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF_VARS.fd": "aavmf-64m",
}


def rel(path: Path) -> str:
    return str(path.relative_to(CORPUS))


@functools.lru_cache(maxsize=4)
def read(path: Path) -> bytes:
    """File bytes, cached (the AAVMF stores are 64 MiB each)."""
    return path.read_bytes()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_names() -> list[str]:
    return sorted(p.name for p in FIXTURES.glob("*.fd"))


@functools.cache
def walker() -> ModuleType:
    """tests/formats/efi/efi_varstore_walk.py, loaded by path (it lives in another test
    directory)."""
    spec = importlib.util.spec_from_file_location("efi_varstore_walk_oracle", WALKER_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def virt_fw_vars_json(path: Path) -> list[dict[str, Any]]:
    """virt-firmware's reading of a store: [{name, guid, attr, data, time?}], store order."""
    tool = need_peer("virt-fw-vars")
    done = subprocess.run(
        [tool, "-i", str(path), "--output-json", "-"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    doc = json.loads(done.stdout)
    variables: list[dict[str, Any]] = doc["variables"]
    return variables


AUTH_RECORD: Final = struct.Struct("<HBBIQ16sIII16s")


def independent_record(
    name: str, guid: uuid.UUID, attributes: int, data: bytes, stamp: bytes = bytes(16)
) -> bytes:
    """An authenticated record, State 0x3F, padded with 0xFF to 4 bytes (VariableFormat.h)."""
    encoded = name.encode("utf-16-le") + b"\0\0"
    header = AUTH_RECORD.pack(
        0x55AA, 0x3F, 0, attributes, 0, stamp, 0, len(encoded), len(data), guid.bytes_le
    )
    body = header + encoded + data
    return body + b"\xff" * (-len(body) % 4)


def fv_checksum_ok(image: bytes) -> bool:
    (header_length,) = struct.unpack_from("<H", image, 0x30)
    words: tuple[int, ...] = struct.unpack_from(f"<{header_length // 2}H", image)
    return sum(words) & 0xFFFF == 0
