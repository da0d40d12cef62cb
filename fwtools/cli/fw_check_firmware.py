"""``fw-check firmware``: a firmware image's volumes, modules, what its bytes say, and the W^X
audit of its own images (docs/firmware.md)."""

from __future__ import annotations

import sys
from typing import Any

import click

from fwtools.cli.common import CONTEXT, EXIT_INPUT, INPUT_FILE, Command, fail


def _fail_on(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from fwtools._base.severity import parse_severity

    level = parse_severity(value)
    if level is None:
        raise click.BadParameter(f"{value!r} is not one of 'error', 'warning', 'note'.")
    return level


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("code", type=INPUT_FILE)
@click.option("--policy", default="uefi-ca", show_default=True,
              help="Profile whose image rules judge the modules (section alignment, NX_COMPAT, "
              "W+X ...): a shipped name (uefi-ca, edk2-image-validation, ...) or a TOML file.")
@click.option("--fail-on", metavar="[error|warning|note]", callback=_fail_on, default="error",
              show_default=True, help="Exit 1 when a finding is at least this severe.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON document (fwtools.fw-check.firmware/1).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the report here (atomically) instead of stdout.")
@click.option("-v", "--verbose", is_flag=True, help="Show findings below --fail-on too.")
@click.option("--color/--no-color", default=None, help="Force or disable colours.")
def command(code: str, policy: str, fail_on: str, as_json: bool, output: str | None,
            verbose: bool, color: bool | None) -> None:
    """Read the firmware image CODE (OVMF_CODE*.fd, AAVMF_CODE*.fd, OVMF.fd; raw or qcow2):
    its volumes, every driver and application with its PE facts, what the bytes say about
    the build, and a W^X audit of its own images with fw-check's rules.

    Exit status: 0 passed; 1 a finding at or above --fail-on; 2 usage error or a malformed
    image.
    """
    from fwtools.formats.pi import FirmwareImage
    from fwtools.formats.pi.facts import firmware_facts, notable_drivers, version_sections
    from fwtools.policy.engine import summary as engine_summary
    from fwtools.policy.firmware_audit import audit_firmware
    from fwtools.policy.profiles import load_profile
    from fwtools.report.firmware_json import firmware_document, module_summary

    profile = load_profile(policy)
    image = FirmwareImage.open(code)
    if not any(fv.is_ffs for fv in image.volumes):
        kinds = ", ".join(sorted({fv.file_system for fv in image.volumes}))
        fail(f"{code}: no firmware file system volume (only {kinds}): not a firmware code "
             "image (a variable store goes to fw-vars)")
    audit = audit_firmware(image, profile)
    summary = engine_summary([r.report for r in audit], fail_on)
    summary["modules"] = module_summary(audit)
    doc = firmware_document(image, audit, profile, summary, firmware_facts(image),
                            notable_drivers(image), version_sections(image),
                            _variable_store(image))
    _emit(doc, as_json, output, verbose, color)
    for rep in audit:
        if rep.report.error:
            click.echo(f"error: {code}: {rep.report.error}", err=True)
    code_ = summary["exit_code"]
    sys.exit(code_ if code_ in (0, 1) else EXIT_INPUT)


def _variable_store(image: Any) -> dict[str, Any] | None:
    found = image.variable_store()
    if found is None:
        return None
    fv, store, error = found
    return {"offset": fv.absolute_offset, "size": fv.length,
            "variables": None if store is None else len(store), "error": error}


def _emit(doc: dict[str, Any], as_json: bool, output: str | None, verbose: bool,
          color: bool | None) -> None:
    import io

    if as_json:
        from fwtools._base.jsontext import dumps_indented

        text = dumps_indented(doc) + "\n"
    else:
        from fwtools.report.text_firmware import render_firmware

        buf = io.StringIO()
        render_firmware(doc, buf, color=False if output else (
            color if color is not None else sys.stdout.isatty()), verbose=verbose)
        text = buf.getvalue()
    if output:
        from fwtools._base.atomic import atomic_write

        atomic_write(output, text.encode("utf-8"))
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def main(argv: list[str]) -> None:
    command(args=argv, prog_name="fw-check firmware")


__all__ = ["command", "main"]
