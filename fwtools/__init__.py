"""fwtools: a UEFI firmware toolkit.

Layers, bottom to top (see docs/architecture.md): errors, _base, formats, crypto, paging,
uefi, policy, report, cli. A module imports only from its own layer or below.
"""

__version__ = "0.1.0"
