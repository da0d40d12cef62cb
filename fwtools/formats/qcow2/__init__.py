"""qcow2 images, read and written natively (no qemu-img at run time).

QEMU and libvirt keep VM firmware variable stores as qcow2 (``-drive
if=pflash,format=qcow2``); this package turns such an image into the raw store and back.
Reference: QEMU ``docs/interop/qcow2.rst`` (docs/reference/formats.md section 5).

- :func:`is_qcow2` checks the magic;
- :class:`Qcow2Image` parses an image held in memory and reads its guest view
  (:meth:`~Qcow2Image.read`, :meth:`~Qcow2Image.to_raw`, :meth:`~Qcow2Image.extents`);
- :func:`qcow2_to_raw` and :func:`raw_to_qcow2` convert whole images.

Layouts and constants live in :mod:`.layout`, the header and its checks in :mod:`.header`
(the cluster mapping in :mod:`.image`); errors are :class:`Qcow2Error` and its
subclasses, all :class:`fwtools.errors.ParseError`.

The names below are imported from their modules on first use (PEP 562), so a magic check
(:func:`is_qcow2`, from :mod:`.layout`) does not load the reader or the writer.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from fwtools.formats.qcow2.header import (
        DEFAULT_MAX_VIRTUAL_SIZE,
        FeatureName,
        HeaderExtension,
        Qcow2Error,
        Qcow2Header,
        Qcow2TruncatedError,
        Qcow2UnsupportedError,
    )
    from fwtools.formats.qcow2.image import (
        COMPRESSED,
        DATA,
        UNALLOCATED,
        ZERO,
        Extent,
        Qcow2Image,
        qcow2_to_raw,
    )
    from fwtools.formats.qcow2.layout import is_qcow2
    from fwtools.formats.qcow2.writer import raw_to_qcow2

__all__ = [
    "COMPRESSED",
    "DATA",
    "DEFAULT_MAX_VIRTUAL_SIZE",
    "UNALLOCATED",
    "ZERO",
    "Extent",
    "FeatureName",
    "HeaderExtension",
    "Qcow2Error",
    "Qcow2Header",
    "Qcow2Image",
    "Qcow2TruncatedError",
    "Qcow2UnsupportedError",
    "is_qcow2",
    "qcow2_to_raw",
    "raw_to_qcow2",
]

# Where each public name is defined: the reader (image), but for these.
_DEFINED_IN: Final[dict[str, str]] = {
    "is_qcow2": "layout",
    "raw_to_qcow2": "writer",
    **dict.fromkeys(("DEFAULT_MAX_VIRTUAL_SIZE", "FeatureName", "HeaderExtension", "Qcow2Error",
                     "Qcow2Header", "Qcow2TruncatedError", "Qcow2UnsupportedError"), "header"),
}
_EXPORTS: Final[dict[str, str]] = {name: _DEFINED_IN.get(name, "image") for name in __all__}
"""Public name -> the submodule that defines it (imported on first access)."""


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
