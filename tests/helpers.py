"""Helpers shared by test modules."""

from __future__ import annotations

import re

import pandas as pd

from harmonize.core.workspace import Workspace


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


N_FAMILIES = 20
THEMES = [f"{a}{b}" for a, b in zip("bcdfghjklmnpqrstvwxz", "aeiouaeiouaeiouaeiou", strict=True)]


def known_vocab_files(tmp_path):
    """Each family f has five children under parent Pf; the right target of all five is Tf
    ("<theme> condition"). Children 3 and 4 are worded exactly like a decoy target Df, so
    plain retrieval maps them onto the decoy; children 0-3 are known. The reranker can only
    learn from child 3 (known, decoy-worded) that the siblings' votes beat a perfect cosine."""
    local, standard, known, truth = [], [], [], []
    for f, theme in enumerate(THEMES[:N_FAMILIES]):
        standard.append((f"T{f}", f"{theme} condition"))
        standard.append((f"D{f}", f"zy{theme}q marker {f}"))
        for j in range(5):
            text = f"zy{theme}q marker {f}" if j >= 3 else f"{theme} condition type {j}"
            code = f"c{f}_{j}"
            local.append((code, text, f"P{f}"))
            (known if j < 4 else truth).append((code, f"T{f}"))
    paths = {}
    for name, rows, cols in (
        ("local", local, ["code", "description", "parent_code"]),
        ("standard", standard, ["code", "description"]),
        ("known", known, ["source_code", "target_code"]),
        ("truth", truth, ["source_code", "target_code"]),
    ):
        paths[name] = tmp_path / f"{name}.csv"
        pd.DataFrame(rows, columns=cols).to_csv(paths[name], index=False)
    return paths
