"""formats/sbat layer (see docs/architecture.md)."""
