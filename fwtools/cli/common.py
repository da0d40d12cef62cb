"""What every command shares: exit codes and one-line error reporting."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
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

# Every command takes -h as well as --help.
CONTEXT: Final = {"help_option_names": ["-h", "--help"]}

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


class LazyGroup(Group):
    """A :class:`Group` that names its subcommands as ``"module:attribute"`` and imports one
    only when it runs (or when ``--help`` lists them all).

    A command's start-up is measured above the interpreter's floor (issue 13): importing
    every subcommand's module, and building their click options, to run one of them cost
    more than the work of ``fw-vars show`` itself."""

    def __init__(self, *args: Any, lazy: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            from importlib import import_module

            module, _, attribute = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


def subcommands(group: click.Group) -> dict[str, click.Command]:
    """Every subcommand of ``group`` by name, lazy ones imported (for --help-like listings
    and the tests that walk every command)."""
    ctx = click.Context(group)
    found = {name: group.get_command(ctx, name) for name in group.list_commands(ctx)}
    return {name: cmd for name, cmd in found.items() if cmd is not None}


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
    from fwtools._base.jsontext import dumps_indented

    click.echo(dumps_indented(document))


def not_built(command: str, issue: str) -> NoReturn:
    fail(f"{command} is not built yet (tracked in {issue})")
