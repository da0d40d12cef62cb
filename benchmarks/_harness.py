"""What every benchmark here shares: timing whole processes side by side, the result table,
the JSON record. Measurements, never tests."""

from __future__ import annotations

import compileall
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
BENCH_DIR: Final = Path(os.environ.get("FWTOOLS_BENCH_DIR", "/var/cache/fwtools-bench"))
VIRT_BIN: Final = BENCH_DIR / "virt-venv" / "bin"
FWTOOLS_BIN: Final = REPO_ROOT / ".venv" / "bin"
TIMEOUT_S: Final = 600.0


@dataclass
class Timing:
    command: list[str]
    runs_s: list[float] = field(default_factory=list)
    max_rss_kib: int = 0
    error: str | None = None

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.runs_s) if self.runs_s and not self.error else None


@dataclass
class Case:
    name: str
    description: str
    files: int
    bytes: int
    fwtools: Timing
    virt: Timing
    target: str
    ratio: float | None = None
    met: bool | None = None


def run_once(cmd: list[str]) -> tuple[float, int, str | None]:
    """(wall seconds, max RSS KiB, error or None) of one run of cmd."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err)
        except OSError as exc:
            return 0.0, 0, f"cannot run: {exc.strerror or exc}"
        # A hung command must not stall the whole benchmark.
        timer = threading.Timer(TIMEOUT_S, proc.kill)
        timer.start()
        try:
            # wait4 rather than wait: it returns this child's own rusage (max RSS).
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        elapsed = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines()
            tail = lines[-1][:120] if lines else "no stderr"
            return elapsed, usage.ru_maxrss, f"exit {code}: {tail}"
    return elapsed, usage.ru_maxrss, None


def measure(cmd: list[str], runs: int) -> Timing:
    t = Timing(cmd)
    _, _, t.error = run_once(cmd)  # warm-up: page cache, .pyc files
    if t.error:
        return t
    for _ in range(runs):
        elapsed, rss, error = run_once(cmd)
        if error:
            t.error = error
            return t
        t.runs_s.append(elapsed)
        t.max_rss_kib = max(t.max_rss_kib, rss)
    return t


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:8.1f} ms"


def render(results: list[Case]) -> str:
    head = ("case", "files", "fwtools", "virt-firmware", "ratio", "target", "met")
    rows = [head]
    for c in results:
        rows.append((
            c.name, str(c.files) if c.files else "-",
            fmt_s(c.fwtools.median_s) if not c.fwtools.error else "FAILED",
            fmt_s(c.virt.median_s) if not c.virt.error else "FAILED",
            "-" if c.ratio is None else f"{c.ratio:.3f}",
            c.target,
            {True: "yes", False: "NO", None: "?"}[c.met],
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for c in results:
        for who, t in (("fwtools", c.fwtools), ("virt-firmware", c.virt)):
            if t.error:
                lines.append(f"{c.name}: {who} failed: {t.error}")
    return "\n".join(lines)


def compile_fwtools() -> None:
    """Compile fwtools' bytecode up front, as pip does for an installed package.

    An editable checkout gets .pyc files only when Python may write them, which
    PYTHONDONTWRITEBYTECODE (set in some shells and CI environments) forbids; without this
    fwtools would be timed compiling its own source on every run.
    """
    compileall.compile_dir(str(REPO_ROOT / "fwtools"), quiet=1)


def judge(case: Case, *, ratio_target: float | None, absolute_target_s: float | None) -> None:
    fw, virt = case.fwtools.median_s, case.virt.median_s
    if fw is not None and virt is not None:
        case.ratio = fw / virt
    if absolute_target_s is not None:
        case.met = None if fw is None else fw <= absolute_target_s
    elif ratio_target is not None:
        case.met = None if case.ratio is None else case.ratio <= ratio_target


def write_record(path: Path, schema: str, runs: int, results: list[Case],
                 **extra: Any) -> None:
    doc = {
        "schema": schema,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": {
            "machine": platform.machine(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "runs": runs,
        **extra,
        "cases": [
            {**asdict(c), "fwtools": {**asdict(c.fwtools), "median_s": c.fwtools.median_s},
             "virt": {**asdict(c.virt), "median_s": c.virt.median_s}}
            for c in results
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
