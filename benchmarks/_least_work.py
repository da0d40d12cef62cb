#!/usr/bin/env python3
"""The least work of one command, timed inside one process (used by bench_floor.py).

``python _least_work.py KIND RUNS ARG...`` imports what the work needs, runs it once
untimed (imports done, file cache warm), then ``RUNS`` times, and prints the wall time of
each run as a JSON list of seconds. The work is the essential computation the command's
output needs, nothing of start-up and nothing of rendering:

  digests     both Authenticode digests pe-inspect reports (SHA-256 and SHA-1 of the file)
  store       fw-vars show: read and parse the store, decode every variable
  sigdb       fw-sigdb show: read and parse the signature lists
  verify      fw-sigdb verify: read the KEK certificate and the .auth, verify its PKCS#7
              signature over the variable's serialisation
  boot-chain  fw-check boot-chain: parse the three stages and replay them (ovmf-strict,
              64 GiB, Secure Boot on, as the command line in bench_floor.py)
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable


def digests(path: str) -> Callable[[], object]:
    import hashlib

    def run() -> object:
        with open(path, "rb") as f:
            data = f.read()
        return hashlib.sha256(data).digest(), hashlib.sha1(data).digest()

    return run


def store(path: str) -> Callable[[], object]:
    from fwtools.formats.varstore.decode import decode_variable
    from fwtools.formats.varstore.storeio import load_store

    def run() -> object:
        loaded = load_store(path)
        return [decode_variable(v.name, v.guid, v.data) for v in loaded.variables]

    return run


def sigdb(path: str) -> Callable[[], object]:
    from fwtools.crypto.sigdb_inputs import load_input

    return lambda: load_input(path)


def verify(cert: str, update: str) -> Callable[[], object]:
    from fwtools.crypto.authvar import verify_auth
    from fwtools.crypto.sigdb_inputs import load_input
    from fwtools.formats.efi.authvar import variable_defaults

    def run() -> object:
        anchors = [e.data for _i, _j, sl, e in load_input(cert, describe=False).database.entries()
                   if sl.is_x509]
        item = load_input(update, describe=False)
        assert item.auth is not None
        guid, _ = variable_defaults("dbx")
        return verify_auth(item.auth, "dbx", guid, None, anchors)

    return run


def boot_chain(*paths: str) -> Callable[[], object]:
    from fwtools.uefi.image import load_stages
    from fwtools.uefi.profile import load_firmware
    from fwtools.uefi.replay import replay

    profile = load_firmware("ovmf-strict").with_overrides(memory_mib=65536)
    # as fw-check boot-chain reads them (replay_files): each file read while the ones before
    # it are parsed
    return lambda: replay(load_stages(paths), profile, secure_boot=True)


KINDS: dict[str, Callable[..., Callable[[], object]]] = {
    "digests": digests, "store": store, "sigdb": sigdb, "verify": verify,
    "boot-chain": boot_chain,
}


def main(argv: list[str]) -> int:
    kind, runs, *args = argv
    work = KINDS[kind](*args)
    work()
    times = []
    for _ in range(int(runs)):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    print(json.dumps(times))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
