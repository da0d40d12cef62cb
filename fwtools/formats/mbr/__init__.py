"""formats/mbr layer (see docs/architecture.md)."""
