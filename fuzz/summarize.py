"""Totals per target from fuzz/results.tsv: seconds, executions, findings (a Markdown table).

"seconds" is wall time; "CPU seconds" sums the rows that recorded it (older rows did not).
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.tsv"


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    distinct: dict[str, set[str]] = defaultdict(set)
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            t = totals[row["target"]]
            t[0] += int(row["seconds"])
            t[1] += int(row["executions"])
            t[2] += int(row["findings"])
            t[3] += 1
            t[4] += int(row.get("cpu_seconds") or 0)
            distinct[row["target"]] |= {a for a in row["artifacts"].split(",") if a != "-"}
    print("| target | slices | seconds | CPU seconds (where recorded) | executions "
          "| findings (distinct inputs) |")
    print("|---|---|---|---|---|---|")
    for name, (secs, execs, found, n, cpu) in sorted(totals.items()):
        print(f"| {name} | {n} | {secs} | {cpu} | {execs:,} | {found} ({len(distinct[name])}) |")
    all_secs = sum(t[0] for t in totals.values())
    all_cpu = sum(t[4] for t in totals.values())
    print(f"| **all** | {sum(t[3] for t in totals.values())} | {all_secs} | {all_cpu} | "
          f"{sum(t[1] for t in totals.values()):,} | {sum(t[2] for t in totals.values())} "
          f"({sum(len(d) for d in distinct.values())}) |")


if __name__ == "__main__":
    main()
