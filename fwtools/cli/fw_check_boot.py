"""``fw-check boot-chain``: replay a boot chain on an emulated firmware and say whether it
boots, faults or is refused under W^X (docs/boot-chain.md)."""

from __future__ import annotations

import sys
from typing import Any

import click

from fwtools.cli.common import (
    CONTEXT,
    EXIT_FINDINGS,
    EXIT_INPUT,
    EXIT_OK,
    INPUT_FILE,
    Command,
    fail,
)


def _int(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value, 0)
    except ValueError:
        fail(f"{option} {value!r} is not a number (decimal or 0x hex)")


def _yes_no(value: str | None) -> bool | None:
    return None if value is None else value in ("yes", "on", "true", "1")


_YES_NO = click.Choice(["yes", "no", "on", "off", "true", "false", "1", "0"])


def _list(what: str) -> None:
    from fwtools.uefi.loaders import shipped_models
    from fwtools.uefi.profile import load_firmware, shipped_firmware

    if what == "firmware":
        for name in shipped_firmware():
            p = load_firmware(name)
            click.echo(f"{name:<26} {p.arch or 'any':<4} {p.description}")
    else:
        for m in shipped_models():
            click.echo(f"{m.name:<26} {m.family:<13} {m.description}")


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("binaries", nargs=-1, type=INPUT_FILE)
@click.option("--firmware", "firmware", metavar="PROFILE|FILE",
              help="Firmware profile: a shipped name (see --list-firmware) or a TOML file.")
@click.option("--arch", type=click.Choice(["x64", "aa64"]),
              help="Architecture (default: from the binaries).")
@click.option("--secure-boot", type=click.Choice(["on", "off"]), default="off",
              show_default=True, help="Loaders take different paths with Secure Boot on.")
@click.option("--nx-policy", metavar="MASK", help="Override PcdDxeNxMemoryProtectionPolicy.")
@click.option("--image-protection", metavar="MASK",
              help="Override PcdImageProtectionPolicy (BIT0 unknown source, BIT1 FV).")
@click.option("--memory-attribute-protocol", "map_", type=_YES_NO,
              help="Whether EFI_MEMORY_ATTRIBUTE_PROTOCOL is installed.")
@click.option("--edk2-release", metavar="YYYYMM", help="edk2-stable release the build is from.")
@click.option("--stack-nx", type=_YES_NO, help="PcdSetNxForStack.")
@click.option("--stack-guard", type=_YES_NO, help="PcdCpuStackGuard.")
@click.option("--null-detection", type=_YES_NO, help="NULL page read-protected.")
@click.option("--clear-freed-memory", type=_YES_NO,
              help="FreePages fills freed pages (DEBUG_PROPERTY_CLEAR_MEMORY_ENABLED).")
@click.option("--la57", type=_YES_NO, help="x86 5-level paging (PcdUse5LevelPageTable).")
@click.option("--memory", "memory_mib", metavar="MIB", help="Guest RAM in MiB.")
@click.option("--model", "models", multiple=True, metavar="N=MODEL",
              help="Use loader model MODEL for stage N (1-based), e.g. 1=shim-15.6. "
              "Repeatable; see --list-models.")
@click.option("--json", "as_json", is_flag=True, help="JSON (fwtools.fw-check.boot-chain/1).")
@click.option("--html", "html", type=click.Path(dir_okay=False),
              help="Also write a self-contained HTML page with the memory map at each step.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the report here (atomically) instead of stdout.")
@click.option("-v", "--verbose", is_flag=True, help="Show every firmware step and detail.")
@click.option("--list-firmware", is_flag=True, help="List the shipped firmware profiles.")
@click.option("--list-models", is_flag=True, help="List the shipped loader models.")
@click.option("--color/--no-color", default=None, help="Force or disable colours.")
def command(binaries: tuple[str, ...], firmware: str | None, arch: str | None,
            secure_boot: str, nx_policy: str | None, image_protection: str | None,
            map_: str | None, edk2_release: str | None, stack_nx: str | None,
            stack_guard: str | None, null_detection: str | None,
            clear_freed_memory: str | None, la57: str | None, memory_mib: str | None,
            models: tuple[str, ...], as_json: bool, html: str | None, output: str | None,
            verbose: bool, list_firmware: bool, list_models: bool,
            color: bool | None) -> None:
    """Replay BINARIES (the boot chain, first stage first: e.g. SHIM GRUB KERNEL, any prefix
    of it, or a UKI / systemd-boot chain) on an emulated UEFI firmware and report whether
    it boots, faults on a W^X violation, or is refused.

    Exit status: 0 boots; 1 faults or refused; 2 usage error or unreadable input.
    """
    from fwtools.errors import FwError

    if list_firmware or list_models:
        try:
            _list("firmware" if list_firmware else "models")
        except FwError as exc:
            fail(str(exc))
        sys.exit(EXIT_OK)
    if not binaries:
        fail("give the chain's binaries (e.g. SHIM GRUB KERNEL)")
    if not firmware:
        fail("--firmware PROFILE is required (see --list-firmware)")
    forced: dict[int, str] = {}
    for spec in models:
        n, sep, name = spec.partition("=")
        if not sep or not n.isdigit() or not 1 <= int(n) <= len(binaries) or not name:
            fail(f"--model {spec!r}: expected N=MODEL with N from 1 to {len(binaries)}")
        forced[int(n) - 1] = name
    overrides: dict[str, Any] = {
        "nx_policy": _int(nx_policy, "--nx-policy"),
        "image_protection": _int(image_protection, "--image-protection"),
        "memory_attribute_protocol": _yes_no(map_),
        "edk2_release": _int(edk2_release, "--edk2-release"),
        "stack_nx": _yes_no(stack_nx),
        "stack_guard": _yes_no(stack_guard),
        "null_detection": _yes_no(null_detection),
        "debug_clear_memory": _yes_no(clear_freed_memory),
        "la57": _yes_no(la57),
        "memory_mib": _int(memory_mib, "--memory"),
    }
    from fwtools.uefi.replay import replay_files

    try:
        result = replay_files(
            list(binaries), firmware=firmware, arch=arch,  # type: ignore[arg-type]
            secure_boot=secure_boot == "on", models=forced, overrides=overrides,
            snapshots=html is not None,
        )
    except (FwError, OSError) as exc:
        fail(str(exc))

    if html:
        from fwtools._base.atomic import atomic_write
        from fwtools.report.html_boot import render_html

        try:
            atomic_write(html, render_html(result).encode("utf-8"))
        except (FwError, OSError) as exc:
            fail(str(exc))
    if as_json:
        from fwtools._base.jsontext import dumps_indented
        from fwtools.report.boot_json import boot_chain_document

        text = dumps_indented(boot_chain_document(result)) + "\n"
    else:
        import io

        from fwtools.report.text_boot import render_boot_chain

        buf = io.StringIO()
        render_boot_chain(result, buf if output else sys.stdout, color=False if output else color,
                          verbose=verbose)
        text = buf.getvalue()
    if output:
        from fwtools._base.atomic import atomic_write

        try:
            atomic_write(output, text.encode("utf-8"))
        except (FwError, OSError) as exc:
            fail(str(exc))
    elif text:
        sys.stdout.write(text)
        sys.stdout.flush()
    sys.exit(EXIT_OK if result.verdict == "boots" else EXIT_FINDINGS)


def main(argv: list[str]) -> None:
    command(args=argv, prog_name="fw-check boot-chain")


__all__ = ["EXIT_INPUT", "command", "main"]
