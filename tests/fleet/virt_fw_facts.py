"""Oracle, run with virt-firmware's own interpreter (benchmarks/setup-peers.sh's venv):
virt-firmware's reading of variable stores, as the facts an audit reports.

Usage: <virt-venv>/bin/python virt_fw_facts.py STORE... -> one JSON object on stdout,
{path: {"error": str|null, "PK"/"KEK"/"db": [sha256 of each X.509 DER], "dbx": [hex of each
EFI_CERT_SHA256 entry], "dbx_entries": n, "SecureBootEnable": bool|null}}.
Nothing from fwtools is imported here.
"""

import hashlib
import json
import sys

from cryptography.hazmat.primitives.serialization import Encoding
from virt.firmware.efi import guids
from virt.firmware.varstore import autodetect


def facts(path):
    try:
        store = autodetect.open_varstore(path)
    except Exception as exc:  # virt-firmware fails in many ways on non-stores
        return {"error": f"{type(exc).__name__}: {exc}"}
    if store is None:
        return {"error": "not a variable store"}
    try:
        varlist = store.get_varlist()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    out = {"error": None}
    for name in ("PK", "KEK", "db"):
        var = varlist.get(name)
        certs = []
        if var is not None and var.sigdb is not None:
            for siglist in var.sigdb:
                if siglist.x509 is not None:
                    certs.append(hashlib.sha256(siglist.x509.public_bytes(Encoding.DER))
                                 .hexdigest())
        out[name] = certs
    dbx = varlist.get("dbx")
    hashes, entries = [], 0
    if dbx is not None and dbx.sigdb is not None:
        for siglist in dbx.sigdb:
            for sig in siglist:
                entries += 1
                if str(siglist.guid) == guids.EfiCertSha256:
                    hashes.append(sig["data"].hex())
    out["dbx"] = hashes
    out["dbx_entries"] = entries
    sbe = varlist.get("SecureBootEnable")
    out["SecureBootEnable"] = None if sbe is None else sbe.data[0] != 0
    return out


print(json.dumps({p: facts(p) for p in sys.argv[1:]}))
