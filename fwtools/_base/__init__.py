"""Byte-level helpers shared by every format: bounded readers, GUIDs, atomic writes."""
