"""fwtools._base.digest gives hashlib's digests, from the interpreter's own SHA modules where
it has them (no OpenSSL load), and falls back to hashlib for the rest."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from fwtools._base import digest

DATA = bytes(range(256)) * 300


@pytest.mark.parametrize("name", ["sha1", "sha224", "sha256", "sha384", "sha512", "md5"])
def test_same_digest_as_hashlib(name: str) -> None:
    h = digest.new(name, DATA[:100])
    h.update(DATA[100:])
    assert h.digest() == hashlib.new(name, DATA).digest()
    assert h.digest_size == hashlib.new(name).digest_size
    assert digest.new(name).hexdigest() == hashlib.new(name).hexdigest()


def test_sha256_hex() -> None:
    assert digest.sha256_hex(b"abc") == hashlib.sha256(b"abc").hexdigest()


def test_unknown_algorithm_is_hashlibs_error() -> None:
    with pytest.raises(ValueError):
        digest.new("no-such-hash")


def test_sha256_does_not_import_hashlib() -> None:
    code = ("import sys; from fwtools._base import digest; digest.sha256_hex(b'x'); "
            "print('hashlib' in sys.modules, '_hashlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
