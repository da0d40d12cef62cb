"""fw-sigdb extract-certs: certificates of signature lists and .auth signers to files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from fwtools._base.atomic import atomic_write
from fwtools.errors import FwIOError

if TYPE_CHECKING:
    from fwtools.crypto.sigdb_inputs import SigdbInput


def extract(items: Iterable[SigdbInput], directory: Path, *, der: bool = False) -> list[Path]:
    """Write ``<input>.<list>.<entry>.<CN>.pem`` for every X.509 entry, and
    ``<input>.signer<i>.<CN>.pem`` for the certificates carried by a .auth signature."""
    from fwtools.crypto.x509info import certificate_info, filename_slug, to_pem

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FwIOError(f"{directory}: {exc.strerror or exc}") from None
    suffix = ".der" if der else ".pem"
    written: list[Path] = []

    def put(name: str, data: bytes) -> None:
        target = directory / (name + suffix)
        atomic_write(target, data if der else to_pem(data))
        written.append(target)

    for item in items:
        stem = Path(item.path).name
        for i, j, sl, entry in item.database.entries():
            if sl.is_x509:
                subject = certificate_info(entry.data).subject
                put(f"{stem}.{i}.{j}.{filename_slug(subject)}", entry.data)
        if item.auth_info is not None:
            for k, cert in enumerate(item.auth_info.certificates):
                put(f"{stem}.signer{k}.{filename_slug(cert.subject)}", cert.der)
    return written
