"""--extract-certs: write the signatures and certificates found in EFI binaries to files.

Names are derived from the binary, the signature index and the certificate's subject, so
several binaries can be extracted into one directory; every write is atomic.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from fwtools._base.atomic import atomic_write
from fwtools.errors import FwIOError

if TYPE_CHECKING:
    from fwtools.policy.pe_facts import PeFacts


def extract_certificates(all_facts: Iterable[PeFacts], directory: Path) -> list[Path]:
    """Write ``<binary>.sig<i>.p7s`` and ``<binary>.sig<i>.<j>.<CN>.pem`` files."""
    from fwtools.crypto.x509info import certificate_info, filename_slug, to_pem
    from fwtools.formats.pe.wincert import certificate_entries

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FwIOError(f"{directory}: {exc.strerror or exc}") from None
    written: list[Path] = []

    def put(name: str, data: bytes) -> None:
        target = directory / name
        atomic_write(target, data)
        written.append(target)

    for facts in all_facts:
        stem = Path(facts.path).name
        entries = {e.index: e for e in certificate_entries(facts.image)}
        for sig in facts.signatures:
            entry = entries.get(sig.index)
            if entry is not None:
                put(f"{stem}.sig{sig.index}.p7s", entry.content)
            for j, cert in enumerate(sig.certificates):
                name = f"{stem}.sig{sig.index}.{j}.{filename_slug(cert.subject)}.pem"
                put(name, to_pem(cert.der))
        for sect in facts.special:
            for j, der in enumerate(getattr(sect.decoded, "certificates", []) or []):
                try:
                    subject = certificate_info(der).subject
                except Exception:  # a broken vendor cert is still worth extracting raw
                    subject = "unparsable"
                put(f"{stem}{sect.name}.{j}.{filename_slug(subject)}.pem", to_pem(der))
    return written
