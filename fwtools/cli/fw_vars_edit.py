"""fw-vars' subcommands that write a store: set, delete, enroll, dbx, sbat-level, shim,
convert (loaded only when one runs)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from fwtools.cli._varstore import default_guid, edit_options, editing, save_store
from fwtools.cli.common import (
    CONTEXT,
    EXIT_FINDINGS,
    INPUT_FILE,
    Command,
    fail,
    guid_arg,
    load_all,
)

if TYPE_CHECKING:
    import uuid

    from fwtools.crypto.sigdb_inputs import SigdbInput

@click.command("set", cls=Command, context_settings=CONTEXT)
@click.argument("store", type=INPUT_FILE)
@click.argument("name")
@click.option("--guid", help="Vendor GUID or name (default: the usual one for NAME).")
@click.option("--attributes", help="Attributes, e.g. 0x7 or NV,BS,RT (default: NV|BS|RT, or "
              "the existing variable's).")
@click.option("--bool", "v_bool")
@click.option("--uint8", "v_uint8")
@click.option("--uint16", "v_uint16")
@click.option("--uint32", "v_uint32")
@click.option("--uint64", "v_uint64")
@click.option("--string", "v_string", help="ASCII, no terminator (like Lang).")
@click.option("--ucs2", "v_ucs2", help="UCS-2 with a NUL terminator.")
@click.option("--hex", "v_hex", help="Raw data as hex.")
@click.option("--file", "v_file", type=INPUT_FILE, help="Raw data from a file.")
@edit_options
def set_(store: str, name: str, guid: str | None, attributes: str | None, output: str | None,
         in_place: bool, fmt: str | None, template: str | None, **values: str | None) -> None:
    """Set variable NAME to a typed value or raw data."""
    from fwtools._base.record import replace
    from fwtools.formats.efi.authvar import parse_attributes
    from fwtools.formats.varstore.model import Variable
    from fwtools.formats.varstore.values import encode_value

    given = [(k[2:], v) for k, v in values.items() if v is not None]
    if len(given) != 1:
        fail("give exactly one value: --bool, --uint8/16/32/64, --string, --ucs2, --hex, --file")
    data = encode_value(*given[0])
    with editing(store, template) as (loaded, st):
        vendor = guid_arg(guid, "--guid") if guid is not None else default_guid(name)
        old = st.get(name, vendor)
        attrs = parse_attributes(attributes) if attributes else (
            old.attributes if old is not None else 0x07
        )
        if old is not None:
            new = replace(old, attributes=attrs, data=data)
        else:
            new = Variable(name=name, guid=vendor, attributes=attrs, data=data)
        st.set(new)
        target = save_store(loaded, st, output, in_place, fmt)
    click.echo(f"{target}: {name} = {len(data)} bytes, attributes {attrs:#x}")


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("store", type=INPUT_FILE)
@click.argument("names", nargs=-1, required=True)
@click.option("--guid", help="Vendor GUID or name (default: the usual one for each NAME).")
@edit_options
def delete(store: str, names: tuple[str, ...], guid: str | None, output: str | None,
           in_place: bool, fmt: str | None, template: str | None) -> None:
    """Delete variables. Exit 1 (nothing written) when one does not exist."""
    with editing(store, template) as (loaded, st):
        given = guid_arg(guid, "--guid") if guid is not None else None
        missing = [n for n in names
                   if not st.delete(n, given if given is not None else default_guid(n))]
        if missing:
            click.echo(f"{store}: no variable {', '.join(missing)}; nothing written", err=True)
            sys.exit(EXIT_FINDINGS)
        target = save_store(loaded, st, output, in_place, fmt)
    click.echo(f"{target}: deleted {', '.join(names)}")


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("store", type=INPUT_FILE)
@click.option("--pk", help="PK certificate file, 'microsoft' (Windows OEM Devices PK), or "
              "'generate:CN' for a fresh self-signed one.")
@click.option("--pk-key-out", type=click.Path(dir_okay=False),
              help="With generate:CN, where to keep the new PK's private key.")
@click.option("--kek", "keks", multiple=True, type=INPUT_FILE,
              help="KEK certificates or signature lists. Repeatable.")
@click.option("--db", "dbs", multiple=True, type=INPUT_FILE,
              help="db certificates or signature lists. Repeatable.")
@click.option("--dbx", "dbxs", multiple=True, type=INPUT_FILE,
              help="dbx signature lists, certificates, or signed .auth updates. Repeatable.")
@click.option("--microsoft", is_flag=True,
              help="Add Microsoft's KEK and db certificates (see --microsoft-kek/-db).")
@click.option("--microsoft-kek", default="2011,2023", show_default=True,
              help="Microsoft KEK CAs: 2011, 2023, all or none.")
@click.option("--microsoft-db", default="windows-2011,uefi-2011,windows-2023,uefi-2023",
              show_default=True,
              help="Microsoft db CAs: windows-2011, uefi-2011, windows-2023, uefi-2023, "
              "oprom-2023, all or none.")
@click.option("--distro", "distros", multiple=True, type=click.Choice(["debian"]),
              help="Add a distribution's Secure Boot CA to db. Repeatable.")
@click.option("--owner", help="Owner GUID (or name) for the entries you give.")
@click.option("--secure-boot/--no-secure-boot", default=None,
              help="Set SecureBootEnable (default: leave it; firmware turns Secure Boot on "
              "once a PK exists).")
@click.option("--replace", is_flag=True, help="Replace KEK/db/dbx instead of adding to them.")
@click.option("--timestamp", default="now", show_default=True,
              help="Timestamp of the authenticated variables (now, 0, or ISO UTC).")
@edit_options
def enroll(store: str, pk: str | None, pk_key_out: str | None, keks: tuple[str, ...],
           dbs: tuple[str, ...], dbxs: tuple[str, ...], microsoft: bool, microsoft_kek: str,
           microsoft_db: str, distros: tuple[str, ...], owner: str | None,
           secure_boot: bool | None, replace: bool, timestamp: str, output: str | None,
           in_place: bool, fmt: str | None, template: str | None) -> None:
    """Enrol Secure Boot keys: PK, KEK, db, dbx, and switch Secure Boot on."""
    from fwtools._base.efitime import parse_time
    from fwtools.crypto import secureboot as sb
    from fwtools.formats.efi import guids

    # The selections are checked even without --microsoft: a typo should not pass silently.
    kek_years = sb.parse_selection(microsoft_kek, list(sb.MICROSOFT_KEK),
                                   option="--microsoft-kek")
    db_names = sb.parse_selection(microsoft_db, list(sb.MICROSOFT_DB), option="--microsoft-db")
    own = guid_arg(owner, "--owner") if owner is not None else guids.OVMF_ENROLL_DEFAULT_KEYS
    request = sb.EnrollRequest(secure_boot=secure_boot, replace=replace,
                               timestamp=parse_time(timestamp))
    if pk is not None:
        request.pk = (_pk_certificate(pk, pk_key_out), own)
    from fwtools.crypto.sigdb_inputs import load_input

    items = load_all([*keks, *dbs, *dbxs], load_input)  # every bad one reported
    request.kek = _databases(items[: len(keks)], own)
    request.db = _databases(items[len(keks) : len(keks) + len(dbs)], own)
    request.dbx = _databases(items[len(keks) + len(dbs) :], own)
    if microsoft:
        ms = guids.MICROSOFT
        kek = sb.microsoft_kek(kek_years)
        db = sb.microsoft_db(db_names)
        for der in kek:
            request.kek = request.kek.add_certificate(der, ms)
        for der in db:
            request.db = request.db.add_certificate(der, ms)
    for distro in distros:
        request.db = request.db.add_certificate(
            sb.shipped_certificate("distro", sb.DISTRO_CERTS[distro]), own)
    if request.pk is None and not (request.kek.lists or request.db.lists or request.dbx.lists) \
            and secure_boot is None:
        fail("nothing to enrol: give --pk, --kek, --db, --dbx, --microsoft or --distro")
    request.kek, _ = request.kek.dedupe()
    request.db, _ = request.db.dedupe()
    with editing(store, template) as (loaded, st):
        changes = sb.enroll(st, request)
        target = save_store(loaded, st, output, in_place, fmt)
    click.echo(f"{target}: " + "; ".join(changes))


def _pk_certificate(spec: str, key_out: str | None) -> bytes:
    from fwtools.crypto import secureboot as sb

    if spec == "microsoft":
        return sb.shipped_certificate("microsoft", sb.MICROSOFT_PK)
    if spec.startswith("generate:"):
        from fwtools.crypto.keys import self_signed

        der, key_pem = self_signed(spec.split(":", 1)[1])
        if key_out:
            from fwtools._base.atomic import atomic_write

            atomic_write(key_out, key_pem, mode=0o600)
        return der
    from fwtools.crypto.x509info import load_certificates

    certs = load_certificates(spec)
    if len(certs) != 1:
        fail(f"--pk {spec}: PK holds exactly one certificate, the file has {len(certs)}")
    return certs[0]


def _databases(items: list[SigdbInput], owner: uuid.UUID) -> Any:
    """Certificates, signature lists or .auth payloads, as one database."""
    from fwtools.formats.efi.siglist import SignatureDatabase

    db = SignatureDatabase(())
    for item in items:
        if item.auth_error:
            fail(f"{item.path}: {item.auth_error}")
        incoming = item.database
        if not incoming.lists:
            fail(f"{item.path}: holds no certificate or signature list")
        if item.format == "certificate":
            # Plain certificates get the requested owner rather than the nil GUID.
            for _i, _j, _sl, entry in incoming.entries():
                db = db.add_certificate(entry.data, owner)
        else:
            db = db.merge(incoming)
    return db


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("store", type=INPUT_FILE)
@click.argument("update", type=INPUT_FILE)
@click.option("--cert", "certs", multiple=True, type=INPUT_FILE,
              help="Verify with these certificates instead of the store's KEK and PK.")
@click.option("--force", is_flag=True, help="Apply even when the signature does not verify.")
@click.option("--name", "var_name", default="dbx", show_default=True,
              help="The variable the update is for (db updates work the same way).")
@edit_options
def dbx(store: str, update: str, certs: tuple[str, ...], force: bool, var_name: str,
        output: str | None, in_place: bool, fmt: str | None, template: str | None) -> None:
    """Apply a signed dbx (or db) update, after verifying it against the store's KEK/PK."""
    from fwtools._base.fileio import read_file
    from fwtools.crypto.secureboot import apply_signed_update
    from fwtools.crypto.x509info import load_certificates
    from fwtools.errors import ParseError, VerificationError

    blob = read_file(update)
    anchors = [d for found in load_all(certs, load_certificates) for d in found] or None
    with editing(store, template) as (loaded, st):
        if anchors is None and not force:
            from fwtools.crypto.secureboot import store_update_anchors

            if not store_update_anchors(st):
                fail(f"{store}: no KEK or PK certificate to verify {update} with (give "
                     "--cert, or --force)")
        try:
            result = apply_signed_update(st, blob, name=var_name, anchors=anchors, force=force)
        except (ParseError, VerificationError) as exc:  # about the update, not the store
            raise exc.with_path(update) from None
        target = save_store(loaded, st, output, in_place, fmt)
    how = "FORCED, signature not verified" if result.forced else (
        result.verification.reason if result.verification else "")
    click.echo(f"{target}: {var_name} +{result.added} entries "
               f"({result.already_present} already present); {how}")


@click.command("sbat-level", cls=Command, context_settings=CONTEXT)
@click.argument("store", type=INPUT_FILE)
@click.option("--from-shim", type=INPUT_FILE, help="Take the level embedded in this shim binary.")
@click.option("--which", type=click.Choice(["latest", "automatic"]), default="latest",
              show_default=True, help="Which of shim's embedded levels (automatic = previous).")
@click.option("--file", "level_file", type=INPUT_FILE, help="An SbatLevel payload file.")
@click.option("--level", help="The payload text, e.g. 'sbat,1,2024010900\\nshim,4\\ngrub,3\\n'.")
@click.option("--delete", "remove", is_flag=True, help="Delete SbatLevel.")
@edit_options
def sbat_level(store: str, from_shim: str | None, which: str, level_file: str | None,
               level: str | None, remove: bool, output: str | None, in_place: bool,
               fmt: str | None, template: str | None) -> None:
    """Set (or delete) shim's SbatLevel variable."""
    from fwtools.errors import FwError
    from fwtools.formats.efi import guids
    from fwtools.formats.sbat import parse_sbat_level
    from fwtools.formats.varstore.model import Variable

    chosen = [x for x in (from_shim, level_file, level) if x is not None]
    if len(chosen) + remove != 1:
        fail("give exactly one of --from-shim, --file, --level or --delete")
    with editing(store, template) as (loaded, st):
        if remove:
            if not st.delete("SbatLevel", guids.SHIM_LOCK):
                click.echo(f"{store}: no SbatLevel; nothing written", err=True)
                sys.exit(EXIT_FINDINGS)
            click.echo(f"{save_store(loaded, st, output, in_place, fmt)}: SbatLevel deleted")
            return
        if from_shim is not None:
            payload = _shim_level(from_shim, which)
        elif level_file is not None:
            from fwtools._base.fileio import read_file

            payload = read_file(level_file)
        else:
            try:
                payload = (level or "").encode().decode("unicode_escape").encode()
            except UnicodeError as exc:
                fail(f"--level {level!r}: {exc}")
        try:
            parsed = parse_sbat_level(payload)
        except FwError as exc:
            raise exc.with_path(level_file or from_shim or "--level") from None
        # shim keeps SbatLevel as NV|BS, set with the payload's length (no terminating NUL).
        st.set(Variable("SbatLevel", guids.SHIM_LOCK, 0x03, payload))
        target = save_store(loaded, st, output, in_place, fmt)
    gens = " ".join(f"{e.component},{e.generation}" for e in parsed.entries)
    click.echo(f"{target}: SbatLevel {parsed.datestamp} {gens}")


def _shim_level(path: str, which: str) -> bytes:
    from fwtools.formats.pe.image import PeImage
    from fwtools.formats.pe.special import decode_section

    image = PeImage.open(path)
    section = image.section(".sbatlevel")
    if section is None:
        fail(f"{path}: no .sbatlevel section (shim 15.7 or later has one)")
    decoded, error = decode_section(".sbatlevel", image.section_data(section), section.raw_offset)
    if decoded is None:
        fail(f"{path}: {error}")
    text: str = getattr(decoded, f"{which}_text")
    return text.encode()


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("store", type=INPUT_FILE)
@click.option("--verbose/--no-verbose", "verbose", default=None, help="SHIM_VERBOSE.")
@click.option("--debug/--no-debug", "debug", default=None, help="SHIM_DEBUG (waits for gdb).")
@click.option("--fallback-verbose/--no-fallback-verbose", default=None, help="FALLBACK_VERBOSE.")
@click.option("--fallback-no-reboot/--fallback-reboot", default=None, help="FB_NO_REBOOT.")
@edit_options
def shim(store: str, verbose: bool | None, debug: bool | None, fallback_verbose: bool | None,
         fallback_no_reboot: bool | None, output: str | None, in_place: bool, fmt: str | None,
         template: str | None) -> None:
    """Switch shim's and fallback's debugging variables on or off."""
    from fwtools.formats.efi import guids
    from fwtools.formats.varstore.model import Variable

    switches = {"SHIM_VERBOSE": verbose, "SHIM_DEBUG": debug,
                "FALLBACK_VERBOSE": fallback_verbose, "FB_NO_REBOOT": fallback_no_reboot}
    if all(v is None for v in switches.values()):
        fail("nothing to change: give --verbose, --debug, --fallback-verbose or "
             "--fallback-no-reboot (or their --no- forms)")
    with editing(store, template) as (loaded, st):
        done = []
        for name, on in switches.items():
            if on is None:
                continue
            if on:
                # shim reads a UINT32 (any non-zero byte for fallback); NV|BS like mokutil.
                st.set(Variable(name, guids.SHIM_LOCK, 0x03, (1).to_bytes(4, "little")))
            else:
                st.delete(name, guids.SHIM_LOCK)
            done.append(f"{name}={'on' if on else 'off'}")
        target = save_store(loaded, st, output, in_place, fmt)
    click.echo(f"{target}: {', '.join(done)}")


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("source", type=INPUT_FILE)
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["raw", "qcow2", "json"]),
              help="Output container (default: from OUTPUT's extension).")
@click.option("--layout", help="Move the variables to this store layout (e.g. ovmf-4m: the "
              "528 KiB store of OVMF's 4 MiB build, whose variables may be larger), keeping "
              "their attributes and timestamps. For JSON input, the layout to build on.")
@click.option("--template", help="For JSON input: a store or layout name to build on.")
@click.option("--cluster-size", type=int, help="qcow2 cluster size (default: the input's, "
              "else 4096 as libvirt uses).")
def convert(source: str, output: str, fmt: str | None, layout: str | None,
            template: str | None, cluster_size: int | None) -> None:
    """Convert between raw, qcow2 and JSON, or (--layout) to another store layout. Raw <->
    qcow2 keeps the store byte for byte; a new layout needs that build's firmware code
    (ovmf-4m: OVMF_CODE_4M.fd)."""
    from pathlib import Path

    from fwtools._base.atomic import atomic_write
    from fwtools.formats.varstore.storeio import format_for_output, load_store, store_bytes

    if template is not None and layout is not None:
        fail("give --layout or --template, not both")
    loaded = load_store(source)
    if template is not None and loaded.store is not None:
        fail(f"--template is for JSON input; {source} is already a {loaded.format} store")
    out_fmt = format_for_output(output, fmt, loaded.format)
    if out_fmt == loaded.format and fmt is None and layout is None and Path(output).suffix == "":
        fail(f"say which format {output} should have: --format raw|qcow2|json")
    if loaded.store is None and out_fmt == "json" and layout is None:
        from fwtools._base.jsontext import dumps_indented
        from fwtools.formats.varstore.jsonform import variables_to_json

        doc = variables_to_json(loaded.json_variables, format="json")
        atomic_write(output, (dumps_indented(doc) + "\n").encode())
        return
    before = loaded.store.layout.name if loaded.store is not None else None
    if layout is not None and loaded.store is not None:
        from fwtools.formats.varstore.relayout import relayout

        st = relayout(loaded.store, layout)
    else:
        st = loaded.as_store(template if template is not None else layout)
    data = store_bytes(st, out_fmt, cluster_size=cluster_size or loaded.qcow2_cluster_size,
                       version=loaded.qcow2_version, source_format=loaded.format)
    atomic_write(output, data)
    moved = f", layout {before} -> {st.layout.name}" if layout is not None and before else ""
    click.echo(f"{output}: {out_fmt}, {len(st)} variables{moved}")


