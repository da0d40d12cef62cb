"""uefi layer (see docs/architecture.md)."""
