"""Helpers shared by test modules."""

from __future__ import annotations

from harmonize.workspace import Workspace


def snapshot(ws: Workspace) -> dict[str, bytes]:
    """Every file of a workspace with its bytes: to prove a failed command changed nothing."""
    if not ws.root.exists():
        return {}
    return {
        str(p.relative_to(ws.root)): p.read_bytes()
        for p in sorted(ws.root.rglob("*"))
        if p.is_file()
    }
