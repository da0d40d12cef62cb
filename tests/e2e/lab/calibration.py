"""The lab's recorded results (``tests/e2e/lab/results.json``) and docs/boot-chain.md's lab
calibration table, generated from them.

The chain of checks that keeps the document true (tests/e2e/test_lab.py):

1. every lab boot in CI must show what results.json recorded for it (outcome, stage, exception,
   #PF error code, access, page offset, the memory attribute protocol) and agree with the
   replay on verdict, stage, access, code and page offset;
2. without QEMU, the recorded real boots must agree with today's replay, and the recorded
   replay fields must be today's replay;
3. the table between the markers in docs/boot-chain.md must be :func:`table` of results.json.

Record by booting the matrix (``tests/e2e/lab/run-lab.py --record``); after a simulator
change that moves only the replay side, ``python tests/e2e/lab/calibration.py --replay``
refreshes the replay fields without booting (check 1 then still compares with real boots).
``--write`` (the default action with no option is to print the table) replaces the table in
docs/boot-chain.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

if __name__ == "__main__" and not __package__:  # as a script: import it as e2e.lab.calibration
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from e2e.lab.calibration import main as _main

    raise SystemExit(_main())

from .matrix import CASE_BY_ID, CASES, RESULTS, LabCase, Observation

SCHEMA: Final = "fwtools.lab-results/1"
BEGIN: Final = "<!-- lab-table:begin (python tests/e2e/lab/calibration.py --write) -->"
END: Final = "<!-- lab-table:end -->"
DOC: Final = Path(__file__).resolve().parents[3] / "docs" / "boot-chain.md"


@dataclass(frozen=True)
class Record:
    case: LabCase
    real: Observation
    replay: dict[str, Any]


@dataclass(frozen=True)
class Results:
    firmware: dict[str, str]  # source, build key, QEMU version: provenance, not compared
    records: dict[str, Record]  # by case id, in CASES order

    def to_json(self) -> str:
        boots = {
            cid: {"chain": r.case.chain, "variant": r.case.variant.name,
                  "profile": r.case.variant.profile, "secure_boot": r.case.secure_boot,
                  "real": r.real.to_json(), "replay": r.replay}
            for cid, r in self.records.items()
        }
        return json.dumps({"schema": SCHEMA, "firmware": self.firmware, "boots": boots},
                          indent=1) + "\n"


def load(path: Path = RESULTS) -> Results:
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema {data.get('schema')!r}, not {SCHEMA!r}")
    records = {}
    for cid, b in data["boots"].items():
        if cid not in CASE_BY_ID:
            raise ValueError(f"{path}: {cid!r} is not a lab case (matrix.CASES)")
        records[cid] = Record(CASE_BY_ID[cid], Observation.from_json(b["real"]),
                              dict(b["replay"]))
    return Results(dict(data["firmware"]), records)


def ordered(records: Mapping[str, Record]) -> dict[str, Record]:
    return {c.id: records[c.id] for c in CASES if c.id in records}


# -- the table --------------------------------------------------------------------------------


def _real(r: Record) -> str:
    f = r.real.fault_fields()
    if f is None:
        return f"**refused**: \"{r.real.refusal}\"" if r.real.refusal else r.real.outcome
    pc, data = f["pc"], f["data_address"]
    if r.real.arch == "x64":
        regs = (f"RIP = CR2 = {pc:#x}" if pc == data else
                f"RIP {pc:#x}, CR2 {'?' if data is None else hex(data)}")
        code = "?" if f["code"] is None else f"{f['code']:#x}"
        return f"**#PF {code}** ({f['access']}), {regs}, after marker {r.real.stage}"
    esr = "no ESR printed" if f["code"] is None else \
        f"ESR {f['code']:#x} (EC {f['code'] >> 26:#x}, FSC {f['code'] & 0x3F:#x})"
    far = "FAR ?" if data is None else f"FAR {data:#x}"
    return (f"**{f['exception']} exception** ({f['access'] or '?'}), {esr}, ELR {pc:#x}, "
            f"{far}, after marker {r.real.stage}")


def _replay(r: Record) -> str:
    v = r.replay
    if v["verdict"] == "refused" and "code" in v:
        return f"**refused**: {v['stage']} (stage {v.get('stage_index', '?')}), {v['code']}"
    if v["verdict"] != "faults":
        return str(v["verdict"])
    code = f"#PF {v['code']:#x}" if r.case.arch == "x64" else f"ESR {v['code']:#x}"
    return (f"**faults**: {v['stage']} (stage {v.get('stage_index', '?')}), {v['access']}, "
            f"{code}, offset {v['page_offset']:#x}, {v.get('memory_type', '?')}")


def table(results: Results) -> str:
    """Markdown: one row per lab boot, the real outcome and the replay side by side."""
    rows = ["| chain | lab firmware (profile) | SB | memory attribute protocol (DEBUG log) "
            "| real firmware | replay |",
            "|---|---|---|---|---|---|"]
    for r in ordered(results.records).values():
        mapp = r.real.memory_attribute_protocol
        rows.append(
            f"| {r.case.chain} {r.case.arch} | {r.case.variant.name} ({r.case.variant.profile}) "
            f"| {'on' if r.case.secure_boot else 'off'} "
            f"| {'?' if mapp is None else 'installed' if mapp else 'uninstalled'} "
            f"| {_real(r)} | {_replay(r)} |")
    fw = results.firmware
    prov = ", ".join(f"{k} {v}" for k, v in fw.items())
    return "\n".join(rows) + f"\n\nRecorded with {prov}.\n"


def replace_table(text: str, new: str) -> str:
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END, start)
    return text[:start] + "\n" + new + text[end:]


def refresh_replay(results: Results) -> Results:
    """``results`` with every replay field recomputed (no boots)."""
    from corpus import load_corpus

    from .matrix import replay_case, replay_view

    corpus = load_corpus()
    return Results(results.firmware, {
        cid: Record(r.case, r.real, replay_view(replay_case(r.case, corpus)))
        for cid, r in results.records.items()})


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--write", nargs="?", type=Path, const=DOC,
                    help=f"replace the table in this Markdown file (default {DOC})")
    ap.add_argument("--replay", action="store_true",
                    help="recompute the replay fields of --results first (no boots)")
    args = ap.parse_args(argv)
    results = load(args.results)
    if args.replay:
        results = refresh_replay(results)
        args.results.write_text(results.to_json(), encoding="utf-8")
    new = table(results)
    if args.write is None:
        sys.stdout.write(new)
        return 0
    text = args.write.read_text(encoding="utf-8")
    args.write.write_text(replace_table(text, new), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
