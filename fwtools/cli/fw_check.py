"""fw-check: not built yet; the command exists so that installs and scripts can find it."""

from __future__ import annotations

import click

from fwtools.cli.common import not_built


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "ignore_unknown_options": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(args: tuple[str, ...]) -> None:
    """fw-check is not built yet."""
    not_built("fw-check", "issue 5")


def main() -> None:
    command(prog_name="fw-check")
