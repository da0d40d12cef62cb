"""The frame every --json document shares: schema name, tool, files, summary."""

from __future__ import annotations

from typing import Any

from fwtools import __version__


def document(schema: str, files: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": schema,
        "tool": {"name": "fwtools", "version": __version__},
        "files": files,
        "summary": summary,
    }
