"""Helpers shared by test modules."""

from __future__ import annotations

import re

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


def run(runner, ws: Workspace, *args):
    """``harmonize --workspace WS ARGS...`` through click's test runner."""
    from harmonize.cli import cli

    return runner.invoke(cli, ["--workspace", str(ws.root), *args])


def normalise(text: str) -> str:
    """Timings and run ids vary between runs; everything else must match exactly."""
    text = re.sub(r"\d+\.\ds", "<t>s", text)
    return re.sub(r"run \d{8}T\d{6}-[0-9a-f]{6}", "run <id>", text)
