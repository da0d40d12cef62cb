"""paging layer (see docs/architecture.md)."""
