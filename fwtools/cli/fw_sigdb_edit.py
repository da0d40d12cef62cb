"""fw-sigdb's subcommands that write: create, add, remove, merge, dedupe, sign (loaded only
when one runs)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from fwtools.cli.common import (
    CONTEXT,
    EXIT_FINDINGS,
    INPUT_FILE,
    Command,
    edit_target,
    fail,
    guid_arg,
    load_all,
    with_options,
)
from fwtools.cli.fw_sigdb_view import load_each

if TYPE_CHECKING:
    import uuid

    from fwtools.crypto.sigdb_inputs import SigdbInput
    from fwtools.formats.efi.siglist import SignatureDatabase


def _load(path: str, *, describe: bool = True) -> SigdbInput:
    from fwtools.crypto.sigdb_inputs import load_input

    return load_input(path, describe=describe)


def _load_db(path: str, *, missing_ok: bool = False) -> SignatureDatabase:
    """A database to edit: an ESL file (or nothing yet, for create/add to a new file)."""
    from fwtools.formats.efi.siglist import SignatureDatabase

    if missing_ok and not os.path.exists(path):
        return SignatureDatabase(())
    item = _load(path, describe=False)
    if item.format == "auth":
        fail(f"{path}: is a signed .auth update; edit its lists (fw-sigdb show --json) and "
             "sign again")
    return item.database


def _write(db: SignatureDatabase, output: str) -> None:
    from fwtools._base.atomic import atomic_write

    atomic_write(output, db.to_bytes())



def _merged(paths: tuple[str, ...]) -> SignatureDatabase:
    """The lists of all ``paths`` in order, without duplicate entries."""
    from fwtools.formats.efi.siglist import SignatureDatabase

    db = SignatureDatabase(())
    for item in load_each(paths, describe=False):
        db = db.merge(item.database)
    return db


def _summary(output: str, db: SignatureDatabase) -> None:
    click.echo(f"{output}: {len(db.lists)} lists, {db.count} entries")


def _image_digest(path: str) -> bytes:
    from fwtools.formats.pe.authenticode import authenticode_digests
    from fwtools.formats.pe.image import PeImage

    return authenticode_digests(PeImage.open(path), ("sha256",))["sha256"]


def _hash_bytes(text: str) -> bytes:
    try:
        digest = bytes.fromhex(text.strip())
    except ValueError:
        fail(f"--hash {text!r} is not hexadecimal")
    if len(digest) not in (20, 28, 32, 48, 64):
        fail(f"--hash {text!r}: {len(digest)} bytes is not a SHA-1/224/256/384/512 digest")
    return digest


def _add_entries(
    db: SignatureDatabase, owner: uuid.UUID, certs: tuple[str, ...], hashes: tuple[str, ...],
    images: tuple[str, ...],
) -> SignatureDatabase:
    from fwtools.crypto.x509info import load_certificates

    for ders in load_all(certs, load_certificates):
        for der in ders:
            db = db.add_certificate(der, owner)
    for text in hashes:
        db = db.add_hash(_hash_bytes(text), owner)
    for digest in load_all(images, _image_digest):
        db = db.add_hash(digest, owner)
    return db


owner_option = click.option(
    "--owner", default="00000000-0000-0000-0000-000000000000", show_default=True,
    help="SignatureOwner GUID, or a well-known name such as Microsoft.",
)
target_options = [
    click.option("-o", "--output", type=click.Path(dir_okay=False)),
    click.option("--in-place", is_flag=True),
]
entry_options = [
    click.option("--cert", "certs", multiple=True, type=INPUT_FILE,
                 help="A PEM (one or more certificates) or DER certificate. Repeatable."),
    click.option("--hash", "hashes", multiple=True,
                 help="A hex digest (the type follows its length). Repeatable."),
    click.option("--image", "images", multiple=True, type=INPUT_FILE,
                 help="An EFI binary: its Authenticode SHA-256. Repeatable."),
]



@click.command(cls=Command, context_settings=CONTEXT)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@owner_option
@with_options(entry_options)
@click.option("--from", "sources", multiple=True, type=INPUT_FILE,
              help="Start from the lists of this file (ESL, .auth payload, PE .vendor_cert).")
def create(output: str, owner: str, certs: tuple[str, ...], hashes: tuple[str, ...],
           images: tuple[str, ...], sources: tuple[str, ...]) -> None:
    """Write a new signature-list file from certificates, hashes and images."""
    if not certs and not hashes and not images and not sources:
        fail("nothing to put in the list: give --cert, --hash, --image or --from")
    db = _add_entries(_merged(sources), guid_arg(owner, "--owner"), certs, hashes, images)
    _write(db, output)
    _summary(output, db)


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("database", type=INPUT_FILE)
@with_options(target_options)
@owner_option
@with_options(entry_options)
def add(database: str, output: str | None, in_place: bool, owner: str, certs: tuple[str, ...],
        hashes: tuple[str, ...], images: tuple[str, ...]) -> None:
    """Add certificates and hashes to DATABASE (entries already present are skipped)."""
    target = edit_target(database, output, in_place)
    if not certs and not hashes and not images:
        fail("nothing to add: give --cert, --hash or --image")
    db = _load_db(database, missing_ok=not in_place)
    new = _add_entries(db, guid_arg(owner, "--owner"), certs, hashes, images)
    new, dropped = new.dedupe()
    _write(new, target)
    click.echo(f"{target}: added {new.count - db.count} entries"
               + (f" ({dropped} already present)" if dropped else ""))


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("database", type=INPUT_FILE)
@with_options(target_options)
@click.option("--hash", "hashes", multiple=True, help="Remove entries with this digest.")
@click.option("--image", "images", multiple=True, type=INPUT_FILE,
              help="Remove the Authenticode SHA-256 of this EFI binary.")
@click.option("--cert", "certs", multiple=True, type=INPUT_FILE,
              help="Remove this certificate (matched by its DER).")
@click.option("--subject", "subjects", multiple=True,
              help="Remove certificates whose subject (RFC 4514) or CN is exactly this.")
@click.option("--owner", "owners", multiple=True, help="Remove every entry of this owner.")
def remove(database: str, output: str | None, in_place: bool, hashes: tuple[str, ...],
           images: tuple[str, ...], certs: tuple[str, ...], subjects: tuple[str, ...],
           owners: tuple[str, ...]) -> None:
    """Remove entries from DATABASE. Exit 1 (and write nothing) when nothing matched."""
    from fwtools.crypto.x509info import certificate_info, load_certificates
    from fwtools.errors import FwError

    target = edit_target(database, output, in_place)
    if not (hashes or images or certs or subjects or owners):
        fail("nothing to remove: give --hash, --image, --cert, --subject or --owner")
    digests = {_hash_bytes(h) for h in hashes} | set(load_all(images, _image_digest))
    ders = {der for found in load_all(certs, load_certificates) for der in found}
    owner_ids = {guid_arg(o, "--owner") for o in owners}
    wanted = set(subjects)

    def matches(sl: Any, entry: Any) -> bool:
        if entry.owner in owner_ids or entry.data in ders:
            return True
        if not sl.is_x509:
            size = len(entry.data) - 16 if sl.signature_type in _x509_hash_types() else None
            return entry.data[:size] in digests
        if wanted:
            try:
                info = certificate_info(entry.data)
            except FwError:
                return False
            return info.subject in wanted or (info.common_name or "") in wanted
        return False

    db = _load_db(database)
    new, removed = db.remove(matches)
    if not removed:
        click.echo(f"{database}: no entry matched; nothing written", err=True)
        sys.exit(EXIT_FINDINGS)
    _write(new, target)
    click.echo(f"{target}: removed {removed} entries, {new.count} left")


def _x509_hash_types() -> frozenset[Any]:
    from fwtools.formats.efi.siglist import X509_HASH_TYPES

    return X509_HASH_TYPES


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("databases", nargs=-1, required=True, type=INPUT_FILE)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
def merge(databases: tuple[str, ...], output: str) -> None:
    """Merge DATABASES into one list file, in order, without duplicate entries."""
    db = _merged(databases)
    _write(db, output)
    _summary(output, db)


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("database", type=INPUT_FILE)
@with_options(target_options)
@click.option("--canonical", is_flag=True,
              help="Also sort into canonical order (one list per hash type).")
def dedupe(database: str, output: str | None, in_place: bool, canonical: bool) -> None:
    """Drop duplicate entries (same type, owner and data) from DATABASE."""
    target = edit_target(database, output, in_place)
    db, dropped = _load_db(database).dedupe()
    if canonical:
        db = db.canonical()
    _write(db, target)
    click.echo(f"{target}: dropped {dropped} duplicate entries, {db.count} left")


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("payload", required=False, type=INPUT_FILE)
@click.option("--name", "var_name", required=True,
              help="Variable name: PK, KEK, db, dbx, dbt, MokList, ... (sets GUID and "
              "attributes).")
@click.option("--guid", help="Vendor GUID, when not the variable's usual one.")
@click.option("--attributes", type=str, help="Attributes (default 0x27, NV|BS|RT|TIME_AUTH).")
@click.option("--append", is_flag=True, help="Sign an append write (APPEND_WRITE 0x40).")
@click.option("--timestamp", default="now", show_default=True,
              help="EFI_TIME: now, 0, or an ISO date/time in UTC (2024-01-02T03:04:05Z).")
@click.option("--key", type=INPUT_FILE, help="The signer's private key (PEM).")
@click.option("--cert", "cert", type=INPUT_FILE, help="The signer's certificate (PEM or DER).")
@click.option("--chain", multiple=True, type=INPUT_FILE,
              help="Intermediate certificates to carry in the signature. Repeatable.")
@click.option("--form", type=click.Choice(["signed-data", "content-info"]),
              default="signed-data", show_default=True,
              help="PKCS#7 as a bare SignedData (what efitools writes) or a ContentInfo.")
@click.option("--empty", is_flag=True, help="Sign an empty payload (deletes the variable).")
@click.option("--unsigned", is_flag=True,
              help="Write an unsigned .auth (empty PKCS#7), for firmware in setup/custom mode.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
def sign(payload: str | None, var_name: str, guid: str | None, attributes: str | None,
         append: bool, timestamp: str, key: str | None, cert: str | None,
         chain: tuple[str, ...], form: str, empty: bool, unsigned: bool, output: str) -> None:
    """Make a signed .auth update of PAYLOAD (signature lists, certificates, a PE's vendor
    lists) for variable NAME."""
    from fwtools._base.atomic import atomic_write
    from fwtools._base.efitime import parse_time
    from fwtools.crypto.authvar import empty_auth, sign_auth
    from fwtools.crypto.x509info import load_certificates
    from fwtools.errors import FwError
    from fwtools.formats.efi.authvar import APPEND_WRITE, variable_defaults

    if (payload is None) != empty:
        fail("give a PAYLOAD file, or --empty to sign a deletion")
    data = b"" if payload is None else _load(payload, describe=False).database.to_bytes()
    given_vendor = guid_arg(guid, "--guid") if guid else None  # a bad --guid is named first
    try:
        default_guid, default_attrs = variable_defaults(var_name)
    except FwError as exc:
        if given_vendor is None or attributes is None:
            fail(str(exc))
        default_guid, default_attrs = given_vendor, 0
    vendor = given_vendor or default_guid
    try:
        attrs = int(attributes, 0) if attributes else default_attrs
        when = parse_time(timestamp)
    except (ValueError, FwError) as exc:
        fail(f"bad --attributes/--timestamp: {exc}")
    if append:
        attrs |= APPEND_WRITE
    if unsigned:
        if key or cert:
            fail("--unsigned takes no --key/--cert")
        blob = empty_auth(data, when)
    else:
        if not key or not cert:
            fail("signing needs --key and --cert (or --unsigned, explicitly)")
        signer = load_certificates(cert)
        if not signer:
            fail(f"{cert}: holds no certificate")
        extra = [d for path in chain for d in load_certificates(path)]
        from fwtools._base.fileio import read_file

        key_pem = read_file(key)
        try:
            from cryptography.hazmat.primitives.serialization import load_pem_private_key

            load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            fail(f"{key}: not an unencrypted PEM private key ({exc})")
        blob = sign_auth(var_name, vendor, attrs, data, key_pem, signer[0], timestamp=when,
                         extra_certs=extra,
                         form="ContentInfo" if form == "content-info" else "SignedData")
    atomic_write(output, blob)
    click.echo(f"{output}: {var_name} {vendor} attributes {attrs:#x}, timestamp {when}, "
               f"{len(data)} bytes of payload" + (", UNSIGNED" if unsigned else ""))


