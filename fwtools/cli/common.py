"""What every command shares: exit codes and one-line error reporting."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    import uuid

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

# Input files are opened by fwtools itself, which reports an unreadable one in a single
# error line and goes on with the rest; click's own readability check would stop the whole
# run with a usage message instead.
INPUT_FILE: Final = click.Path(dir_okay=False, readable=False)

EXIT_OK: Final = 0
EXIT_FINDINGS: Final = 1
EXIT_INPUT: Final = 2


def fail(message: str, code: int = EXIT_INPUT) -> NoReturn:
    """Print one line to stderr and exit; never a traceback."""
    # A library message that spans lines (a third-party parser's text) is folded onto one
    # line: the contract is one error line per problem (issue 8).
    message = " ".join(message.split()) if "\n" in message else message
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def call(action: Callable[[], T]) -> T:
    """Run library code, turning a FwError into one error line and exit 2."""
    from fwtools.errors import FwError

    try:
        return action()
    except FwError as exc:
        fail(str(exc))


def guid_arg(text: str, option: str) -> uuid.UUID:
    """The GUID given to ``option``: a GUID, or a well-known name (Microsoft,
    EfiGlobalVariable, OvmfEnrollDefaultKeys, ...)."""
    from fwtools._base.guid import parse_guid
    from fwtools.errors import FwError
    from fwtools.formats.efi import guids

    known = guids.guid_by_name(text)
    if known is not None:
        return known
    try:
        return parse_guid(text)
    except FwError:
        fail(f"{option} {text!r} is neither a GUID nor a known name")


def edit_target(path: str, output: str | None, in_place: bool) -> str:
    """Where an edit of ``path`` goes: -o/--output, or ``path`` itself with --in-place."""
    if output and in_place:
        fail("give either -o/--output or --in-place, not both")
    if not output and not in_place:
        fail("editing needs -o/--output FILE or --in-place")
    return path if in_place else str(output)


def with_options(options: Sequence[Callable[[Any], Any]]) -> Callable[[F], F]:
    """One decorator applying click ``options`` in the order listed (as stacked above a
    command, the first listed comes first in --help)."""

    def wrap(f: F) -> F:
        for option in reversed(options):
            f = option(f)
        return f

    return wrap


def print_json(document: dict[str, Any]) -> None:
    import json

    click.echo(json.dumps(document, indent=2, sort_keys=False))


def not_built(command: str, issue: str) -> NoReturn:
    fail(f"{command} is not built yet (tracked in {issue})")
