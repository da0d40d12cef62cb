"""What every command shares: exit codes and one-line error reporting."""

from __future__ import annotations

import sys
from typing import Any, Final, NoReturn

import click

# Input files are opened by fwtools itself, which reports an unreadable one in a single
# error line and goes on with the rest; click's own readability check would stop the whole
# run with a usage message instead.
INPUT_FILE: Final = click.Path(dir_okay=False, readable=False)

EXIT_OK: Final = 0
EXIT_FINDINGS: Final = 1
EXIT_INPUT: Final = 2


def fail(message: str, code: int = EXIT_INPUT) -> NoReturn:
    """Print one line to stderr and exit; never a traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def print_json(document: dict[str, Any]) -> None:
    import json

    click.echo(json.dumps(document, indent=2, sort_keys=False))


def not_built(command: str, issue: str) -> NoReturn:
    fail(f"{command} is not built yet (tracked in {issue})")
