"""``fw-pcr``: measured boot. ``log`` parses a TCG event log, replays it to PCR values and
compares them with values read from the TPM (docs/fw-pcr.md)."""

from __future__ import annotations

import sys
from typing import Final

import click

from fwtools.cli.common import EXIT_FINDINGS, EXIT_OK, INPUT_FILE, Command, Group, print_json

CONTEXT: Final = {"help_option_names": ["-h", "--help"]}


@click.group(cls=Group, context_settings=CONTEXT)
def cli() -> None:
    """Measured boot: TCG PC Client event logs and TPM PCR values.

    Exit status: 0 success (and every compared PCR matches); 1 a replayed PCR differs from
    the measured value; 2 usage error or malformed input.
    """


@cli.command("log", cls=Command, context_settings=CONTEXT)
@click.argument("eventlog", type=INPUT_FILE)
@click.option("--pcrs", "pcrs_path", type=click.Path(), metavar="FILE|DIR",
              help="PCR values read from the TPM: a /sys/class/tpm/tpm0 (or pcr-sha256) "
              "directory dump, tpm2_pcrread output, or JSON {\"sha256\": {\"0\": \"hex\"}}. "
              "Each PCR the log extends is compared; exit 1 on a mismatch.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (fwtools.fw-pcr.log/1).")
@click.option("-v", "--verbose", is_flag=True,
              help="Digests, offsets and decoded details of every event; every bank.")
@click.option("--color/--no-color", default=None)
def log_command(eventlog: str, pcrs_path: str | None, as_json: bool, verbose: bool,
                color: bool | None) -> None:
    """Decode EVENTLOG (crypto-agile or SHA-1, e.g. a copy of
    /sys/kernel/security/tpm0/binary_bios_measurements), replay it to PCR values per bank,
    and with --pcrs compare them with the TPM's."""
    from fwtools.formats.tcg.log import load_event_log
    from fwtools.formats.tcg.replay import compare, replay
    from fwtools.report.pcr_json import log_document

    log = load_event_log(eventlog)
    result = replay(log)
    comparison = None
    if pcrs_path is not None:
        from fwtools.formats.tcg.measured import read_measured

        comparison = compare(result, read_measured(pcrs_path))
    doc = log_document(eventlog, log, result, pcrs_path, comparison)
    if as_json:
        print_json(doc)
    else:
        from fwtools.report.text_pcr import render_log

        render_log(doc, verbose=verbose, color=color)
    sys.exit(EXIT_FINDINGS if doc["summary"]["verdict"] == "mismatch" else EXIT_OK)


def main() -> None:
    cli(prog_name="fw-pcr")
