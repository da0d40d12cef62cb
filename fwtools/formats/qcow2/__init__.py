"""qcow2 images, read and written natively (no qemu-img at run time).

QEMU and libvirt keep VM firmware variable stores as qcow2 (``-drive
if=pflash,format=qcow2``); this package turns such an image into the raw store and back.
Reference: QEMU ``docs/interop/qcow2.rst`` (reference/formats.md section 5).

- :func:`is_qcow2` checks the magic;
- :class:`Qcow2Image` parses an image held in memory and reads its guest view
  (:meth:`~Qcow2Image.read`, :meth:`~Qcow2Image.to_raw`, :meth:`~Qcow2Image.extents`);
- :func:`qcow2_to_raw` and :func:`raw_to_qcow2` convert whole images.

Layouts and constants live in :mod:`.layout`; errors are :class:`Qcow2Error` and its
subclasses, all :class:`fwtools.errors.ParseError`.
"""

from __future__ import annotations

from fwtools.formats.qcow2.image import (
    COMPRESSED,
    DATA,
    DEFAULT_MAX_VIRTUAL_SIZE,
    UNALLOCATED,
    ZERO,
    Extent,
    FeatureName,
    HeaderExtension,
    Qcow2Error,
    Qcow2Header,
    Qcow2Image,
    Qcow2TruncatedError,
    Qcow2UnsupportedError,
    is_qcow2,
    qcow2_to_raw,
)
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
