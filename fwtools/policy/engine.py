"""The fw-check engine: a profile's rules over files, waivers, and the verdict.

:func:`check_path` judges one file (in a worker process when there are many);
:func:`run` does a whole list in deterministic order; :func:`apply_waivers` marks waived
results and adds ``waiver-expired`` ones; :func:`exit_code` turns it into docs/design.md's codes.
"""

from __future__ import annotations

import datetime
import functools
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

from fwtools._base.record import Record, replace
from fwtools._base.severity import RANK, SEVERITIES
from fwtools.errors import UsageError
from fwtools.policy.checks import (
    CHAIN_RULES,
    ENGINE_RULES,
    RULES,
    Context,
    NotApplicable,
    Rule,
    arch_name,
    image_type,
)
from fwtools.policy.results import FileReport, Result, Waiver

if TYPE_CHECKING:
    from fwtools.crypto.trust import TrustAnchors
    from fwtools.formats.sbat import SbatLevel
    from fwtools.policy.pe_facts import PeFacts
    from fwtools.policy.profiles import Profile

# Below this many files a process pool costs more than it saves (measured: see
# docs/fw-check.md, "Parallelism").
PARALLEL_MIN_FILES: Final = 24


class Options(Record):
    sbat_level: SbatLevel | None = None
    sbat_level_source: str = ""
    anchors: TrustAnchors | None = None


def rule_info(rule_id: str) -> Rule:
    return RULES.get(rule_id) or ENGINE_RULES[rule_id]


def check_facts(facts: PeFacts, path: str, profile: Profile, options: Options) -> FileReport:
    report = FileReport(path)
    arch, kind = arch_name(facts), image_type(facts)
    for cfg in profile.active:
        if cfg.id in CHAIN_RULES:
            # judged across files by add_chain_results, on a view of these facts
            from fwtools.uefi.image import stage_from_pe

            report.stage = stage_from_pe(facts.image, special=facts.special,
                                         kernel=facts.kernel)
            continue
        rule = RULES[cfg.id]
        ctx = Context(facts, cfg.params_for(arch, kind), options.sbat_level,
                      options.sbat_level_source)
        try:
            violations = rule.run(ctx)
        except NotApplicable as na:
            report.skipped[cfg.id] = str(na)
            continue
        report.checked.append(cfg.id)
        for v in violations:
            report.results.append(Result(path, cfg.id, cfg.level, v.message, v.location,
                                         v.offset))
    return report


def check_path(path: str, profile: Profile, options: Options) -> FileReport:
    """Judge one file; an unreadable or malformed file gives an ``input-error`` result."""
    from fwtools.policy.collect import inspect_path

    fr = inspect_path(path, anchors=options.anchors,
                      check_signatures=profile.needs_signature_check(), inspect=False)
    if fr.facts is None:
        message = fr.error or f"{path}: unreadable"
        return FileReport(path, error=message,
                          results=[Result(path, "input-error", "error", message)])
    return check_facts(fr.facts, path, profile, options)


def run(
    paths: list[str],
    profile: Profile,
    options: Options,
    *,
    jobs: int | None = None,
    progress: Callable[[Iterable[FileReport]], Iterator[FileReport]] | None = None,
) -> list[FileReport]:
    """Check ``paths`` in order; in a process pool when there are many files and cores."""
    work = functools.partial(check_path, profile=profile, options=options)
    cpus = os.cpu_count() or 1
    if jobs is None:
        jobs = cpus if len(paths) >= PARALLEL_MIN_FILES else 1
    stream: Iterable[FileReport]
    if jobs > 1 and len(paths) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(jobs, len(paths))) as pool:
            chunk = max(1, len(paths) // (jobs * 8))
            stream = pool.map(work, paths, chunksize=chunk)
            return add_chain_results(list(progress(stream) if progress else stream), profile)
    stream = map(work, paths)
    return add_chain_results(list(progress(stream) if progress else stream), profile)


def add_chain_results(reports: list[FileReport], profile: Profile) -> list[FileReport]:
    """The cross-file ``boot-chain`` rule, when the profile enables it."""
    cfg = next((c for c in profile.active if c.id in CHAIN_RULES), None)
    if cfg is None:
        return reports
    from fwtools.policy.chain_rule import chain_results

    found = chain_results(reports, cfg)
    for rep in reports:
        if rep.error is None:
            rep.checked.append(cfg.id)
            rep.results.extend(found.get(rep.path, []))
    return reports


# -- waivers ----------------------------------------------------------------------------


def load_waivers(path: str) -> list[Waiver]:
    """A waiver file: ``[[waiver]]`` tables with path (glob), rule, reason, expires (date)."""
    from fwtools._base.tomlfile import read_toml

    data = read_toml(path, "--waivers")
    out = []
    for i, w in enumerate(data.get("waiver", [])):
        where = f"--waivers {path}: waiver {i + 1}"
        if not isinstance(w, dict):
            raise UsageError(f"{where}: must be a table")
        missing = [k for k in ("path", "rule", "reason") if not w.get(k)]
        if missing:
            raise UsageError(f"{where}: missing {', '.join(missing)}")
        wrong = [k for k in ("path", "rule", "reason") if not isinstance(w[k], str)]
        if wrong:
            raise UsageError(f"{where}: {', '.join(wrong)} must be text")
        expires = w.get("expires")
        if isinstance(expires, str):
            try:
                expires = datetime.date.fromisoformat(expires)
            except ValueError:
                raise UsageError(f"{where}: expires {expires!r} is not YYYY-MM-DD") from None
        if isinstance(expires, datetime.datetime):
            expires = expires.date()
        if expires is not None and not isinstance(expires, datetime.date):
            raise UsageError(f"{where}: expires must be a date")
        if w["rule"] != "*" and w["rule"] not in RULES:
            raise UsageError(f"{where}: unknown rule {w['rule']!r}")
        out.append(Waiver(str(w["path"]), str(w["rule"]), str(w["reason"]), expires))
    return out


def apply_waivers(
    reports: list[FileReport], waivers: list[Waiver], today: datetime.date
) -> None:
    """Mark results a live waiver covers; an expired one leaves the result active and adds
    a ``waiver-expired`` warning (once per waiver and file)."""
    if not waivers:
        return
    for rep in reports:
        new: list[Result] = []
        expired_seen: set[int] = set()
        for r in rep.results:
            if r.rule in ENGINE_RULES:
                new.append(r)
                continue
            waived = None
            for i, w in enumerate(waivers):
                if not w.matches(r.path, r.rule):
                    continue
                if w.expires is not None and w.expires < today:
                    if i not in expired_seen:
                        expired_seen.add(i)
                        new.append(Result(
                            r.path, "waiver-expired", "warning",
                            f"waiver for rule {w.rule} on {w.path} expired on "
                            f"{w.expires.isoformat()} ({w.reason}); the finding is active again",
                            "waiver file"))
                    continue
                waived = w
                break
            new.append(replace(r, waived=waived) if waived else r)
        rep.results = new


# -- verdict ----------------------------------------------------------------------------


def active(reports: Iterable[FileReport]) -> Iterator[Result]:
    for rep in reports:
        for r in rep.results:
            if r.waived is None:
                yield r


def summary(reports: list[FileReport], fail_on: str) -> dict[str, Any]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for r in active(reports):
        counts[r.severity] += 1
    waived = sum(1 for rep in reports for r in rep.results if r.waived is not None)
    code = exit_code(reports, fail_on)
    return {
        "files": len(reports),
        "unreadable": sum(1 for r in reports if r.error),
        "errors": counts["error"],
        "warnings": counts["warning"],
        "notes": counts["note"],
        "waived": waived,
        "fail_on": fail_on,
        "passed": code == 0,
        "exit_code": code,
    }


def exit_code(reports: list[FileReport], fail_on: str) -> int:
    """2 if an input was unreadable, 1 if an active result is at or above ``fail_on``."""
    if any(r.error for r in reports):
        return 2
    threshold = RANK[fail_on]
    if any(RANK[r.severity] >= threshold for r in active(reports)):
        return 1
    return 0
