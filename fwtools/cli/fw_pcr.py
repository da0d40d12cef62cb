"""``fw-pcr``: measured boot. ``predict`` computes a machine's PCRs from its variable store and
boot chain, ``log`` parses a TCG event log, replays it to PCR values and compares them with
values read from the TPM (or with a prediction), ``diff`` shows what a store change does to the
PCRs (docs/fw-pcr.md)."""

from __future__ import annotations

import sys
from typing import Any

import click

from fwtools.cli.common import (
    CONTEXT,
    EXIT_FINDINGS,
    EXIT_OK,
    INPUT_FILE,
    Command,
    Group,
    print_json,
)


@click.group(cls=Group, context_settings=CONTEXT)
def cli() -> None:
    """Measured boot: TCG PC Client event logs and TPM PCR values.

    Exit status: 0 success (and every compared PCR matches); 1 a replayed PCR differs from
    the measured value; 2 usage error or malformed input.
    """


def _pcr_list(text: str | None) -> list[int] | None:
    if text is None:
        return None
    from fwtools.errors import UsageError

    try:
        pcrs = sorted({int(x) for x in text.replace(" ", "").split(",") if x})
    except ValueError:
        raise UsageError(f"--pcrs: {text!r} is not a comma-separated list of numbers") from None
    if any(not 0 <= n < 24 for n in pcrs):
        raise UsageError("--pcrs: PCR numbers are 0-23")
    return pcrs


def _banks(text: str) -> list[str]:
    from fwtools.errors import UsageError
    from fwtools.formats.tcg.layout import ALGORITHM_IDS, BANK_ALIASES

    out = []
    for raw in text.lower().replace(" ", "").split(","):
        name = BANK_ALIASES.get(raw, raw).replace("-", "")
        if name not in ALGORITHM_IDS:
            raise UsageError(f"--bank: unknown bank {raw!r} (sha1, sha256, sha384, sha512)")
        out.append(name)
    return list(dict.fromkeys(out))


def _secure_boot(text: str) -> bool | None:
    return {"auto": None, "on": True, "off": False}[text]


def _machine_options(f: Any) -> Any:
    for option in reversed([
        click.option("--bank", "bank_text", default="sha1,sha256", show_default=True,
                     metavar="LIST", help="Banks to compute: sha1, sha256, sha384, sha512."),
        click.option("--secure-boot", "secure_boot", default="auto", show_default=True,
                     type=click.Choice(["auto", "on", "off"]),
                     help="auto: on when the store has a PK (edk2 with Secure Boot built in); "
                     "off for a firmware without Secure Boot."),
        click.option("--disk", type=INPUT_FILE, metavar="IMAGE",
                     help="The boot disk (raw or qcow2): edk2 measures its GPT in PCR 5."),
        click.option("--qemu-kernel", is_flag=True,
                     help="The chain is one kernel given to QEMU with -kernel."),
        click.option("--grub-cfg", "grub_cfg", type=INPUT_FILE, metavar="FILE",
                     help="The grub.cfg GRUB runs: its commands make PCR 8."),
        click.option("--initrd", type=INPUT_FILE, metavar="FILE",
                     help="The initrd grub.cfg loads: GRUB and Linux's stub hash it (PCR 9)."),
        click.option("--grub-prefix", default="(hd0,gpt1)/EFI/debian", show_default=True,
                     help="GRUB's $prefix as it logs it (Debian 2.06 measures its embedded "
                     "config's tests on it)."),
    ]):
        f = option(f)
    return f


def _predict(vars_path: str, chain: tuple[str, ...], bank_text: str, secure_boot: str,
             disk: str | None, qemu_kernel: bool, grub_cfg: str | None, initrd: str | None,
             grub_prefix: str) -> Any:
    from fwtools._base.fileio import read_file
    from fwtools.formats.varstore.storeio import load_store
    from fwtools.machine.measure import MachineInput, predict

    cfg = read_file(grub_cfg) if grub_cfg else None
    machine = MachineInput(load_store(vars_path), list(chain), _banks(bank_text),
                           secure_boot=_secure_boot(secure_boot), qemu_kernel=qemu_kernel,
                           disk=disk, grub_cfg=cfg, grub_prefix=grub_prefix, initrd=initrd)
    return predict(machine)


@cli.command("predict", cls=Command, context_settings=CONTEXT)
@click.option("--vars", "vars_path", type=INPUT_FILE, required=True, metavar="STORE",
              help="The VM's variable store (edk2 raw, qcow2 or JSON).")
@click.argument("chain", nargs=-1, type=INPUT_FILE)
@click.option("--pcrs", "pcrs_text", metavar="LIST", help="Only these PCRs, e.g. 4,7.")
@_machine_options
@click.option("--pcrlock", "pcrlock_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Write one systemd-pcrlock .pcrlock file per predicted PCR into DIR.")
@click.option("--compare", "compare_log", type=INPUT_FILE, metavar="EVENTLOG",
              help="Line the prediction up with a real event log; exit 1 at a divergence.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (fwtools.fw-pcr/1).")
@click.option("-v", "--verbose", is_flag=True, help="Every event's digests and what was hashed.")
def predict_command(vars_path: str, chain: tuple[str, ...], pcrs_text: str | None,
                    bank_text: str, secure_boot: str, disk: str | None, qemu_kernel: bool,
                    grub_cfg: str | None, initrd: str | None, grub_prefix: str,
                    pcrlock_dir: str | None, compare_log: str | None, as_json: bool,
                    verbose: bool) -> None:
    """Predict the PCRs a boot of CHAIN (shim, grub, kernel; or one kernel with
    --qemu-kernel) measures on edk2 with the variable store STORE. PCRs that cannot be known
    from files are listed with the reason."""
    from fwtools.report.pcr_predict import divergence_json, predict_document, predict_lines

    pcrs = _pcr_list(pcrs_text)
    prediction = _predict(vars_path, chain, bank_text, secure_boot, disk, qemu_kernel,
                          grub_cfg, initrd, grub_prefix)
    doc = predict_document(vars_path, list(chain), prediction, pcrs)
    diverges = False
    if compare_log is not None:
        from fwtools.formats.tcg.log import load_event_log
        from fwtools.machine.measure import compare_with_log

        bank = "sha256" if "sha256" in prediction.banks else next(iter(prediction.banks))
        found = compare_with_log(prediction, load_event_log(compare_log), bank)
        doc["comparison"] = {"log": compare_log, **divergence_json(found, bank)}
        diverges = found is not None
    if pcrlock_dir is not None:
        _write_pcrlock(pcrlock_dir, prediction, pcrs)
    if as_json:
        print_json(doc)
    else:
        click.echo("\n".join(predict_lines(doc, verbose=verbose)))
    sys.exit(EXIT_FINDINGS if diverges else EXIT_OK)


def _write_pcrlock(directory: str, prediction: Any, pcrs: list[int] | None) -> None:
    """One ``NNN-fwtools-pcrN.pcrlock`` per PCR (systemd.pcrlock(5): a JSON object with
    ``records``), written atomically."""
    import json
    import os

    from fwtools._base.atomic import atomic_write
    from fwtools.machine.measure import pcrlock_records

    os.makedirs(directory, exist_ok=True)
    wanted = pcrs if pcrs is not None else list(prediction.predicted)
    for pcr, records in pcrlock_records(prediction, wanted).items():
        path = os.path.join(directory, f"{500 + pcr:03d}-fwtools-pcr{pcr}.pcrlock")
        atomic_write(path, (json.dumps({"records": records}, indent=1) + "\n").encode())


@cli.command("diff", cls=Command, context_settings=CONTEXT)
@click.option("--vars", "vars_path", type=INPUT_FILE, required=True, metavar="OLD",
              help="The store as it is.")
@click.option("--vars-new", "new_path", type=INPUT_FILE, metavar="NEW",
              help="The store as planned (e.g. fw-vars update -o NEW); default: OLD.")
@click.option("--new-chain", "new_chain", type=INPUT_FILE, multiple=True, metavar="FILE",
              help="The chain as planned, one file per option in load order (e.g. a shim "
              "and grub upgrade); default: CHAIN.")
@click.argument("chain", nargs=-1, type=INPUT_FILE)
@_machine_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document "
              "(fwtools.fw-pcr.diff/1).")
def diff_command(vars_path: str, new_path: str | None, new_chain: tuple[str, ...],
                 chain: tuple[str, ...], bank_text: str, secure_boot: str, disk: str | None,
                 qemu_kernel: bool, grub_cfg: str | None, initrd: str | None,
                 grub_prefix: str, as_json: bool) -> None:
    """Which predicted PCRs change when the store OLD becomes NEW and/or CHAIN becomes the
    --new-chain files: old and new values and the events that cause it. Exit 0 either way."""
    from fwtools.errors import UsageError
    from fwtools.machine.measure import diff_predictions
    from fwtools.report.pcr_predict import diff_document, diff_lines

    if new_path is None and not new_chain:
        raise UsageError("give --vars-new NEW, --new-chain FILE... or both")
    rest = (bank_text, secure_boot, disk, qemu_kernel, grub_cfg, initrd, grub_prefix)
    old = _predict(vars_path, chain, *rest)
    new = _predict(new_path or vars_path, new_chain or chain, *rest)
    bank = "sha256" if "sha256" in old.banks else next(iter(old.banks))
    doc = diff_document(vars_path, new_path or vars_path, diff_predictions(old, new, bank),
                        bank, list(chain), list(new_chain or chain))
    if as_json:
        print_json(doc)
    else:
        click.echo("\n".join(diff_lines(doc)))
    sys.exit(EXIT_OK)


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
