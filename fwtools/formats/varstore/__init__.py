"""formats/varstore layer (see docs/architecture.md)."""
