"""SHA digests of small inputs without importing hashlib.

``import hashlib`` loads OpenSSL's libcrypto: about 3 ms of a command's start-up, more than
``fw-vars show`` spends on its store. The interpreter's own SHA modules (``_sha1``,
``_sha256``/``_sha512`` on Python 3.11, ``_sha2`` from 3.12) load in a tenth of that. They
hash more slowly than OpenSSL's SHA-extension code, so they are for what commands hash
while reporting: certificates, signature-list entries, variable data. Whole images (PE
files, firmware volumes) keep using hashlib. A name the interpreter has no module for (SM3,
an interpreter built without them) falls back to ``hashlib.new``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module
from typing import Protocol


class Hash(Protocol):
    """What hashlib's hash objects and the interpreter's SHA objects share."""

    @property
    def digest_size(self) -> int: ...

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def digest(self) -> bytes: ...

    def hexdigest(self) -> str: ...


# hashlib name -> the interpreter's own module that defines it (3.12 merged the SHA-2
# modules into _sha2). Naming only the running version's module matters: a failed import
# searches every sys.path entry first.
_BUILTIN: dict[str, str] = (
    {"sha1": "_sha1", "sha224": "_sha2", "sha256": "_sha2", "sha384": "_sha2", "sha512": "_sha2"}
    if sys.version_info >= (3, 12) else
    {"sha1": "_sha1", "sha224": "_sha256", "sha256": "_sha256", "sha384": "_sha512",
     "sha512": "_sha512"}
)

_constructors: dict[str, Callable[..., Hash]] = {}


def new(name: str, data: bytes | bytearray | memoryview = b"") -> Hash:
    """A hash object for ``name`` (hashlib's names), fed ``data``."""
    constructor = _constructors.get(name)
    if constructor is None:
        constructor = _constructors[name] = _constructor(name)
    return constructor(data)


def _constructor(name: str) -> Callable[..., Hash]:
    # Where hashlib is loaded already (pefile and asn1crypto import it), it costs nothing
    # more and is the faster hash.
    module = _BUILTIN.get(name)
    if module is not None and "hashlib" not in sys.modules:
        try:
            found: Callable[..., Hash] = getattr(import_module(module), name)
        except (ImportError, AttributeError):
            pass
        else:
            return found
    import hashlib

    return lambda data=b"": hashlib.new(name, data)


def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    return new("sha256", data).hexdigest()
