"""Byte-level helpers shared by every format: bounded readers, GUIDs, UCS-2, EFI_TIME, atomic writes."""
