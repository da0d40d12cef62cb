"""What every command shares: exit codes and one-line error reporting."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar

import click

from fwtools.errors import FwError, VerificationError

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


def _standalone(run: Callable[[], Any], name: str) -> NoReturn:
    """Run a click command outside click's standalone mode and report its errors ourselves.

    click prints a usage error as a block ("Usage: ...", "Try ... --help", "Error: ...");
    the contract is one ``error:`` line and exit 2 for every error (issue 8). ``--help``,
    ``ctx.exit(n)`` and a broken stdout pipe keep click's own handling.

    This is also the one place a library error (:class:`~fwtools.errors.FwError`, with its
    file and offset as data) becomes that line: commands let them rise here instead of
    wrapping each library call; only batch loops catch them per input, to go on with the
    next one (issue 13).
    """
    try:
        rv = run()
    except VerificationError as exc:  # a verdict, not unreadable input (docs/design.md)
        fail(str(exc), EXIT_FINDINGS)
    except FwError as exc:
        fail(str(exc))
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()  # a bare group prints its help, as click does
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        # Some parser errors carry no context; the program name is the best we have then.
        where = exc.ctx.command_path if exc.ctx is not None else name
        fail(f"{where}: {exc.format_message()} (see '{where} --help')", exc.exit_code)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except click.Abort:  # Ctrl-C or EOF at a prompt: the shell's 128 + SIGINT
        fail("interrupted", 130)
    # Outside standalone mode click returns the exit code of ctx.exit()/--help, else the
    # command's return value; fwtools commands return None and exit through sys.exit.
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)


class Command(click.Command):
    """A click command whose usage errors are one ``error:`` line (see _standalone)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        _standalone(lambda: super(Command, self).main(args, prog_name, complete_var, False,
                                                      **extra), prog_name or self.name or "")


class Group(Command, click.Group):
    """A click group whose usage errors (its own and its subcommands') are one line."""


def load_all(paths: Sequence[str], load: Callable[[str], T]) -> list[T]:
    """``load`` of every input of a batch that ends in one write (a merge, an enrolment, a
    set of trust anchors): each input that cannot be read gets its own ``error:`` line and
    the others are still read, then the command stops with exit 2 before writing anything."""
    loaded: list[T] = []
    failed = False
    for path in paths:
        try:
            loaded.append(load(path))
        except FwError as exc:
            click.echo(f"error: {exc.with_path(path)}", err=True)
            failed = True
    if failed:
        sys.exit(EXIT_INPUT)
    return loaded


def guid_arg(text: str, option: str) -> uuid.UUID:
    """The GUID given to ``option``: a GUID, or a well-known name (Microsoft,
    EfiGlobalVariable, OvmfEnrollDefaultKeys, ...)."""
    from fwtools._base.guid import parse_guid
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
