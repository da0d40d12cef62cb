"""fw-vars: edk2 variable stores (raw flash images, qcow2, JSON): read, edit, enrol keys.

The group only names its subcommands; each is imported when it runs (``LazyGroup``), so
``fw-vars show`` pays for the code of show, not for enroll's or update's (issue 13)."""

from __future__ import annotations

import click

from fwtools.cli.common import CONTEXT, LazyGroup


@click.group(cls=LazyGroup, context_settings=CONTEXT, lazy={
    "show": "fwtools.cli.fw_vars_view:show",
    "get": "fwtools.cli.fw_vars_view:get",
    "diff": "fwtools.cli.fw_vars_view:diff",
    "check": "fwtools.cli.fw_vars_view:check",
    "set": "fwtools.cli.fw_vars_edit:set_",
    "delete": "fwtools.cli.fw_vars_edit:delete",
    "enroll": "fwtools.cli.fw_vars_edit:enroll",
    "dbx": "fwtools.cli.fw_vars_edit:dbx",
    "sbat-level": "fwtools.cli.fw_vars_edit:sbat_level",
    "shim": "fwtools.cli.fw_vars_edit:shim",
    "convert": "fwtools.cli.fw_vars_edit:convert",
    "boot": "fwtools.cli.fw_vars_boot:boot",
    "audit": "fwtools.cli.fw_vars_audit:audit",
    "update": "fwtools.cli.fw_vars_update:update",
})
def cli() -> None:
    """edk2 UEFI variable stores (OVMF/AAVMF VARS files, raw or qcow2, or JSON).

    Edits need -o OUT or --in-place and are written atomically; the output container
    follows --format, else the output's extension (.fd/.raw, .qcow2, .json), else the input's.
    Exit status: 0 success; 1 check found problems or a verification failed; 2 usage error
    or malformed input.
    """


def main() -> None:
    cli(prog_name="fw-vars")


if __name__ == "__main__":
    main()
