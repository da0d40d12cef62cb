#!/usr/bin/env python3
"""Derive fixtures from the real logs of testdata/tcg (see README.md there):

- ``ovmf-d12-kernel.sha1.eventlog.bin``: the kernel log in the SHA-1 (TCG 1.2,
  ``TCG_PCR_EVENT``) form, each record carrying the real log's SHA-1 digest and data; the
  Spec ID event is dropped, as in a log written by a SHA-1-only firmware. It replays to the
  ``sha1`` bank of ``ovmf-d12-kernel.pcrs.json``.
- ``hostile/*.bin``: malformed crypto-agile logs, one defect each, and ``hostile/EXPECTED.tsv``
  with the structure and absolute offset the parser must name for each.

Written from the TCG PC Client Platform Firmware Profile 1.06 §10.2 directly with ``struct``
(not with fwtools), so the fixtures are an oracle for the parser.

    python3 testdata/tcg/make_tcg_fixtures.py
"""

from __future__ import annotations

import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
EV_NO_ACTION = 3
SPEC_ID = b"Spec ID Event03\0"


def agile_records(data: bytes) -> list[tuple[int, int, list[tuple[int, bytes]], bytes, int]]:
    """(pcr, type, [(alg, digest)], event data, offset) of each TCG_PCR_EVENT2 after the Spec
    ID event, sizes taken from the Spec ID event."""
    pcr, etype, _digest, size = struct.unpack_from("<II20sI", data, 0)
    spec = data[32 : 32 + size]
    assert etype == EV_NO_ACTION and spec.startswith(SPEC_ID)
    (count,) = struct.unpack_from("<I", spec, 24)
    sizes = dict(struct.unpack_from("<HH", spec, 28 + 4 * i) for i in range(count))
    pos = 32 + size
    out = []
    while pos < len(data):
        start = pos
        pcr, etype, n = struct.unpack_from("<III", data, pos)
        pos += 12
        digests = []
        for _ in range(n):
            (alg,) = struct.unpack_from("<H", data, pos)
            digests.append((alg, data[pos + 2 : pos + 2 + sizes[alg]]))
            pos += 2 + sizes[alg]
        (size,) = struct.unpack_from("<I", data, pos)
        pos += 4
        out.append((pcr, etype, digests, data[pos : pos + size], start))
        pos += size
    return out


def sha1_log(real: bytes) -> bytes:
    out = []
    for pcr, etype, digests, body, _ in agile_records(real):
        sha1 = dict(digests)[0x0004]
        out.append(struct.pack("<II20sI", pcr, etype, sha1, len(body)) + body)
    return b"".join(out)


def hostile(real: bytes) -> dict[str, tuple[bytes, str, int]]:
    """name -> (bytes, structure named in the error, absolute offset in the error)."""
    records = agile_records(real)
    (spec_size,) = struct.unpack_from("<I", real, 28)
    first = 32 + spec_size  # the first TCG_PCR_EVENT2
    second = records[1][4]
    size_at = second - 4 - len(records[0][3])  # EventSize of record 1 (index 1 overall)
    out: dict[str, tuple[bytes, str, int]] = {}

    b = bytearray(real[: size_at + 4 + 1])  # record 1 cut inside its 2 bytes of event data
    out["truncated-event-data.bin"] = (bytes(b), "TCG_PCR_EVENT2[1]", size_at)

    b = bytearray(real)
    struct.pack_into("<I", b, size_at, 0xFFFFFFF0)  # EventSize of 4 GiB
    out["huge-event-size.bin"] = (bytes(b), "TCG_PCR_EVENT2[1]", size_at)

    b = bytearray(real)
    struct.pack_into("<I", b, first + 8, 0x7FFFFFFF)  # Digests.count far above the 4 banks
    out["huge-digest-count.bin"] = (bytes(b), "TCG_PCR_EVENT2[1]", first + 8)

    b = bytearray(real)
    struct.pack_into("<H", b, first + 12, 0x0042)  # an algorithm the Spec ID does not list
    out["unknown-digest-algorithm.bin"] = (bytes(b), "TCG_PCR_EVENT2[1]", first + 12)

    b = bytearray(real)
    struct.pack_into("<I", b, 32 + 24, 0x40000000)  # numberOfAlgorithms: a billion
    out["huge-algorithm-count.bin"] = (bytes(b), "TCG_EfiSpecIdEvent", 32 + 24)

    b = bytearray(real)
    struct.pack_into("<HH", b, 32 + 28 + 4, 0x000B, 0xFFFF)  # sha256 digests of 65535 bytes
    out["wrong-digest-size.bin"] = (bytes(b), "TCG_EfiSpecIdEvent.digestSizes[1]", 32 + 28 + 6)

    b = bytearray(real[:20])  # not even one record header
    out["short-header.bin"] = (bytes(b), "TCG_PCR_EVENT[0]", 0)

    b = bytearray(real)
    struct.pack_into("<I", b, 28, 0xFFFFFFFF)  # the Spec ID record's EventSize
    out["huge-spec-id-size.bin"] = (bytes(b), "TCG_PCR_EVENT[0]", 28)

    # Record 1 ends exactly where its EventSize field starts.
    out["truncated-before-event-size.bin"] = (real[:size_at], "TCG_PCR_EVENT2[1]", size_at)
    return out


def main() -> None:
    kernel = (HERE / "ovmf-d12-kernel.eventlog.bin").read_bytes()
    (HERE / "ovmf-d12-kernel.sha1.eventlog.bin").write_bytes(sha1_log(kernel))
    directory = HERE / "hostile"
    directory.mkdir(exist_ok=True)
    rows = ["# file\tstructure\toffset"]
    for name, (blob, structure, offset) in sorted(hostile(kernel).items()):
        (directory / name).write_bytes(blob)
        rows.append(f"{name}\t{structure}\t{offset:#x}")
    (directory / "EXPECTED.tsv").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
