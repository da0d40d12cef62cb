"""fw-check: the policy gate for EFI binaries and the machine checks (docs/fw-check.md).

``fw-check FILES...`` is the gate (:mod:`.fw_check_gate`); ``fw-check boot-chain``, ``disk``,
``firmware`` and ``vm`` are commands of their own. Only the one that runs is imported: the
gate's options alone cost ``fw-check boot-chain`` a millisecond of start-up (issue 13).
"""

from __future__ import annotations

import sys
from typing import Any, Final

SUBCOMMANDS: Final = {"boot-chain": "fw_check_boot", "disk": "fw_check_disk",
                      "firmware": "fw_check_firmware", "vm": "fw_check_vm"}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        import importlib

        module = importlib.import_module(f"fwtools.cli.{SUBCOMMANDS[sys.argv[1]]}")
        module.main(sys.argv[2:])
    from fwtools.cli.fw_check_gate import command

    command(prog_name="fw-check")


def __getattr__(name: str) -> Any:
    """``command`` (the gate's click command) for callers that import it from here."""
    if name == "command":
        from fwtools.cli.fw_check_gate import command

        return command
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
