"""Helpers shared by test modules."""

from __future__ import annotations

import functools
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


def reference_metrics(candidates, gold, mappings=None, ks=(1, 5, 10)) -> dict[str, float]:
    """Mapping metrics computed with plain loops over the gold's sources, independently of
    :func:`harmonize.mapping.metrics.mapping_metrics`, to check it and the figures built on it."""
    gold_targets: dict[str, set[str]] = {}
    for s, t in zip(gold["source_code"], gold["target_code"], strict=True):
        gold_targets.setdefault(s, set()).add(t)
    sources = sorted(gold_targets)
    first: dict[str, int] = {}
    ranked = zip(
        candidates["source_code"], candidates["target_code"], candidates["rank"], strict=True
    )
    for s, t, r in ranked:
        if s in gold_targets and t in gold_targets[s]:
            first[s] = min(first.get(s, r), r)
    n = len(sources)
    out: dict[str, float] = {"n": n}
    for k in ks:
        out[f"top{k}"] = sum(1 for s in sources if s in first and first[s] <= k) / n
    out["mrr"] = sum(1 / first[s] for s in sources if s in first) / n
    if mappings is None:
        return out
    chosen = [
        (s, t)
        for s, t in zip(mappings["source_code"], mappings["target_code"], strict=True)
        if s in gold_targets
    ]
    right = [(s, t) for s, t in chosen if t in gold_targets[s]]
    out["coverage"] = len({s for s, _ in chosen}) / n
    out["precision"] = len(right) / len(chosen) if chosen else 0.0
    out["recall"] = len({s for s, _ in right}) / n
    return out


# The small ICD world: respiratory codes only (ICD-10-CM chapter J, ICD-9-CM 460-519) and the
# GEM pairs between them: ~350 and ~250 codes instead of 74,000 and 14,500.
SMALL_ICD = {
    "icd10": lambda code: code.startswith("J"),
    "icd9": lambda code: code[:2] in {"46", "47", "48", "49", "50", "51"},
}


@functools.cache
def small_icd_frames() -> dict[str, pd.DataFrame]:
    """The small ICD world's vocabularies ("icd9", "icd10") and GEMs ("10to9", "9to10")."""
    from harmonize.datasets import icd

    frames = {}
    for version, keep in SMALL_ICD.items():
        vocab = icd.icd_vocab(version)
        frames[version] = vocab[[keep(c) for c in vocab["code"]]].reset_index(drop=True)
    for direction, (*_, source, target) in icd.GEM_FILES.items():
        gem = icd.gem_gold(direction)
        inside = [
            SMALL_ICD[source](s) and SMALL_ICD[target](t)
            for s, t in zip(gem["source_code"], gem["target_code"], strict=True)
        ]
        frames[direction] = gem[inside].reset_index(drop=True)
    return frames
