"""formats/pe layer (see docs/architecture.md)."""
