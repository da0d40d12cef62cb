"""formats/efi layer (see docs/architecture.md)."""
