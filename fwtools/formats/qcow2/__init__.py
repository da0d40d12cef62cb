"""formats/qcow2 layer (see docs/architecture.md)."""
