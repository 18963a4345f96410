"""Mapping metrics against a gold standard: accuracy@k, MRR, coverage, precision and recall.

Gold may be many-to-many: a source concept counts as found at rank r when any of its gold
targets is its r-th candidate.

>>> cands = pd.DataFrame({"source_code": ["a", "a", "b", "b"], "target_code": ["x", "y", "y", "z"],
...                       "rank": [1, 2, 1, 2]})
>>> gold = pd.DataFrame({"source_code": ["a", "b"], "target_code": ["y", "y"]})
>>> m = mapping_metrics(cands, gold, ks=(1, 2))
>>> m["top1"], m["top2"], m["mrr"]
(0.5, 1.0, 0.75)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harmonize.errors import InputError
from harmonize.vocab import read_table


def read_gold(path: str | Path) -> pd.DataFrame:
    """A gold mapping file: CSV/Parquet with ``source_code`` and ``target_code`` columns."""
    frame = read_table(path)
    for column in ("source_code", "target_code"):
        if column not in frame.columns:
            raise InputError(f"{path}: missing required column '{column}'")
    return frame


def mapping_metrics(
    candidates: pd.DataFrame,
    gold: pd.DataFrame,
    mappings: pd.DataFrame | None = None,
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Metrics over the gold's distinct source codes.

    ``candidates`` has source_code, target_code, rank (1 = best); ``mappings`` (source_code,
    target_code) are the chosen ones, for coverage, precision and recall.
    """
    gold_pairs = set(zip(gold["source_code"], gold["target_code"], strict=True))
    sources = sorted(set(gold["source_code"]))
    n = len(sources)
    if n == 0:
        raise InputError("the gold standard has no rows")
    is_hit = np.array(
        [
            (s, t) in gold_pairs
            for s, t in zip(candidates["source_code"], candidates["target_code"], strict=True)
        ],
        dtype=bool,
    )
    hits = candidates.loc[is_hit, ["source_code", "rank"]]
    first_hit = hits.groupby("source_code")["rank"].min()
    first_hit = first_hit[first_hit.index.isin(sources)]
    out: dict[str, float] = {"n": n}
    for k in ks:
        out[f"top{k}"] = float((first_hit <= k).sum() / n)
    out["mrr"] = float((1.0 / first_hit).sum() / n)
    if mappings is not None:
        chosen = mappings[mappings["source_code"].isin(sources)]
        right = [
            (s, t) in gold_pairs
            for s, t in zip(chosen["source_code"], chosen["target_code"], strict=True)
        ]
        out["coverage"] = float(chosen["source_code"].nunique() / n)
        # precision over chosen pairs; recall over gold sources (a source counts once).
        out["precision"] = float(sum(right) / len(chosen)) if len(chosen) else 0.0
        out["recall"] = float(chosen.loc[right, "source_code"].nunique() / n)
    return out
