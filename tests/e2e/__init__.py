"""End-to-end tests: Debian's real firmware (OVMF) booted in QEMU; see README.md."""
