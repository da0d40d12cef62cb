#!/usr/bin/env python3
"""Run atheris campaigns for every parser and append executions/crashes to fuzz/results.tsv.

    nice is applied by the script itself (nice -n 19 for every child).

    python fuzz/run-campaigns.py --seconds 600                 # every target, 600 s each
    python fuzz/run-campaigns.py --seconds 300 --rounds 4 --jobs 2 pe qcow2

Each run is ``fuzz/harness.py TARGET`` under libFuzzer with a growing corpus in
fuzz/work/TARGET/corpus (seeded from fuzz/work/TARGET/seeds, see fuzz/seed.py), crashes,
out-of-memory (-rss_limit_mb) and slow inputs (-timeout) saved in fuzz/work/TARGET/crashes/.
A run that stops on a finding is restarted for the rest of its time slice, so a slice is
always used in full. At most --jobs processes at a time (default 1; never more than the
number of cores). One line per slice goes to fuzz/results.tsv:

    date  target  seconds  executions  findings  artifact names  cpu_seconds

``seconds`` is wall time (libFuzzer's -max_total_time); ``cpu_seconds`` is the user+system
time the fuzzer processes got, which is less when the machine is shared (the children run at
nice 19). Older rows have no cpu_seconds.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "fuzz" / "work"
RESULTS = REPO / "fuzz" / "results.tsv"
PYTHON = sys.executable
TARGETS = ["pe", "siglist", "authvar", "varstore", "qcow2", "mbr", "disk", "sbat", "json",
           "policy", "devicepath", "bootchain", "firmware", "tcg"]
RSS_LIMIT_MB = 1536
TIMEOUT_S = 30

_DONE = re.compile(r"^Done (\d+) runs in (\d+) second", re.M)
_STAT = re.compile(r"^stat::number_of_executed_units:\s*(\d+)", re.M)
_ARTIFACT = re.compile(r"Test unit written to (\S+)")


def _one_run(target: str, seconds: int) -> tuple[int, list[str], float]:
    """One libFuzzer process: (executions, artifacts written, CPU seconds it used)."""
    corpus = WORK / target / "corpus"
    crashes = WORK / target / "crashes"
    seeds = WORK / target / "seeds"
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    cmd = ["nice", "-n", "19", PYTHON, str(REPO / "fuzz" / "harness.py"), target,
           f"-max_total_time={seconds}", f"-rss_limit_mb={RSS_LIMIT_MB}",
           f"-timeout={TIMEOUT_S}", "-max_len=1048576", "-print_final_stats=1",
           f"-artifact_prefix={crashes}/", str(corpus)]
    if seeds.is_dir():
        cmd.append(str(seeds))
    log = WORK / target / f"last-{os.getpid()}.log"  # one per runner: two may share a target
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=str(WORK / target),
                                env=dict(os.environ, PYTHONHASHSEED="0"))
        try:
            # wait4 gives this child's own rusage; RUSAGE_CHILDREN would mix in the other
            # runner's.
            _pid, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C: do not leave the fuzzer running (as run() did)
            proc.kill()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    m = _STAT.search(text) or _DONE.search(text)
    execs = int(m.group(1)) if m else 0
    if not m:
        # A run stopped by a finding prints no final stats; the last status line has the count.
        lines = re.findall(r"^#(\d+)\s", text, re.M)
        execs = int(lines[-1]) if lines else 0
    return execs, _ARTIFACT.findall(text), usage.ru_utime + usage.ru_stime


def slice_(target: str, seconds: int) -> tuple[str, int, int, list[str]]:
    """Fuzz ``target`` for ``seconds`` wall seconds, restarting after a finding."""
    start = time.monotonic()
    total, artifacts, cpu = 0, [], 0.0
    while True:
        left = int(seconds - (time.monotonic() - start))
        if left < 5:
            break
        execs, found, used_cpu = _one_run(target, left)
        total += execs
        cpu += used_cpu
        artifacts += found
        if not found:
            break
    used = int(time.monotonic() - start)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # An input in the corpus that still crashes is found again on every restart: count
    # distinct inputs (the artifact name is the input's SHA-1).
    unique = sorted({Path(a).name for a in artifacts})
    names = ",".join(unique) or "-"
    with open(RESULTS, "a") as f:
        f.write(f"{stamp}\t{target}\t{used}\t{total}\t{len(unique)}\t{names}\t{cpu:.0f}\n")
    print(f"{stamp} {target}: {used} s ({cpu:.0f} s CPU), {total} executions, "
          f"{len(unique)} findings", flush=True)
    return target, used, total, artifacts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("targets", nargs="*", default=TARGETS)
    ap.add_argument("--seconds", type=int, default=600, help="per target per round")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--until", help="UTC time HH:MM after which no slice runs (slices are "
                    "shortened to end by then)")
    args = ap.parse_args()
    jobs = max(1, min(args.jobs, os.cpu_count() or 1))
    for t in args.targets:
        if t not in TARGETS:
            sys.exit(f"unknown target {t!r}")
        if not (WORK / t / "seeds").is_dir():
            subprocess.run([PYTHON, str(REPO / "fuzz" / "seed.py"), t], check=True)
    if not RESULTS.exists():
        RESULTS.write_text("date\ttarget\tseconds\texecutions\tfindings\tartifacts"
                           "\tcpu_seconds\n")
    plan = [t for _ in range(args.rounds) for t in args.targets]
    deadline = None
    if args.until:
        now = datetime.datetime.now(datetime.UTC)
        hh, mm = (int(x) for x in args.until.split(":"))
        deadline = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
        # HH:MM means the next such time, but a time just passed means "stop now", not the
        # same time tomorrow (a queued slice started after its deadline ran a day long).
        if deadline < now - datetime.timedelta(hours=12):
            deadline += datetime.timedelta(days=1)

    def run_one(target: str) -> None:
        seconds = args.seconds
        if deadline is not None:
            left = (deadline - datetime.datetime.now(datetime.UTC)).total_seconds()
            seconds = min(seconds, int(left))
            if seconds < 30:
                return
        slice_(target, seconds)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(run_one, plan))


if __name__ == "__main__":
    main()
