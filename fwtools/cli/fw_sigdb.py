"""fw-sigdb: EFI signature databases (db, dbx, KEK, MokList) and signed .auth updates.

The group only names its subcommands; each is imported when it runs (``LazyGroup``)."""

from __future__ import annotations

import click

from fwtools.cli.common import CONTEXT, LazyGroup


@click.group(cls=LazyGroup, context_settings=CONTEXT, lazy={
    "show": "fwtools.cli.fw_sigdb_view:show",
    "verify": "fwtools.cli.fw_sigdb_view:verify",
    "extract-certs": "fwtools.cli.fw_sigdb_view:extract_certs",
    "create": "fwtools.cli.fw_sigdb_edit:create",
    "add": "fwtools.cli.fw_sigdb_edit:add",
    "remove": "fwtools.cli.fw_sigdb_edit:remove",
    "merge": "fwtools.cli.fw_sigdb_edit:merge",
    "dedupe": "fwtools.cli.fw_sigdb_edit:dedupe",
    "sign": "fwtools.cli.fw_sigdb_edit:sign",
})
def cli() -> None:
    """EFI signature databases (db, dbx, KEK, MokList as EFI_SIGNATURE_LISTs) and signed
    .auth updates (EFI_VARIABLE_AUTHENTICATION_2).

    Inputs may be signature-list files, .auth files, PEM/DER certificates, or EFI binaries
    with shim's .vendor_cert. Exit status: 0 success; 1 a verification failed or nothing
    matched; 2 usage error or malformed input.
    """


def main() -> None:
    cli(prog_name="fw-sigdb")


if __name__ == "__main__":
    main()
