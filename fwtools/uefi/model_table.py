"""The table of loader models and the real-firmware cases behind them, for
docs/boot-chain.md, generated from ``policies/loaders/*.toml`` (each model's ``verified_by``)
so the document cannot drift from the models.

``python -m fwtools.uefi.model_table`` prints the table; ``--write FILE`` replaces the part
of FILE between the markers below (tests/uefi/test_model_verification.py checks that
docs/boot-chain.md holds what this generates).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from fwtools.uefi.registry import LoaderModel

BEGIN: Final = "<!-- model-table:begin (python -m fwtools.uefi.model_table --write) -->"
END: Final = "<!-- model-table:end -->"


def _case(test_id: str) -> str:
    """``tests/e2e/FILE.py::test_boot_chain[x64-...]`` -> ``test_boot_chain[x64-...]``."""
    return test_id.split("::", 1)[-1]


def model_table(models: Sequence[LoaderModel]) -> str:
    """Markdown: every model, whether a real-firmware case in CI exercises it, and which."""
    rows = ["| model | family | verified on real firmware | real cases (tests/e2e) |",
            "|---|---|---|---|"]
    for m in sorted(models, key=lambda m: (m.family, m.name)):
        cases = "<br>".join(f"`{_case(t)}`" for t in m.verified_by) or "none"
        rows.append(f"| {m.name} | {m.family} | {'yes' if m.verified else 'no'} | {cases} |")
    return "\n".join(rows) + "\n"


def replace_table(text: str, table: str) -> str:
    """``text`` with the part between the markers replaced by ``table``."""
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END, start)
    return text[:start] + "\n" + table + text[end:]


def main(argv: Sequence[str] | None = None) -> int:
    from fwtools.uefi.loaders import shipped_models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--write", type=Path, help="replace the table in this Markdown file")
    args = parser.parse_args(argv)
    table = model_table(shipped_models())
    if args.write is None:
        sys.stdout.write(table)
        return 0
    text = args.write.read_text(encoding="utf-8")
    args.write.write_text(replace_table(text, table), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
