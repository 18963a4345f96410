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

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harmonize.core import sql
from harmonize.core.errors import InputError
from harmonize.core.results import TableResult
from harmonize.core.workspace import Workspace
from harmonize.sites.vocab import read_table


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


@dataclass(frozen=True)
class MapEvaluation(TableResult):
    """A stored mapping scored against a gold file: ``metrics`` as :func:`mapping_metrics`
    gives them (n, top1, top5, top10, mrr, coverage, precision, recall); ``n_unknown`` gold
    source codes are not concepts of the source site; ``k`` candidates were stored per concept."""

    source: str
    target: str
    metrics: dict[str, float]
    n_unknown: int
    k: int
    run_id: str

    @property
    def n(self) -> int:
        """Gold source concepts scored."""
        return int(self.metrics["n"])

    def to_dict(self) -> dict[str, float | int]:
        """The metrics, then n_unknown and k, as one flat dict (the CLI's JSON)."""
        return {**self.metrics, "n": self.n, "n_unknown": self.n_unknown, "k": self.k}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])


def _read_stored(
    ws: Workspace, source: str, target: str
) -> tuple[int, pd.DataFrame, pd.DataFrame, set[str]]:
    """The pair's stored k, candidates and mappings, and the source site's codes."""
    ws.require()
    with ws.connect(read_only=True) as con:
        ws.require_site(con, source)
        ws.require_site(con, target)
        k_row = sql.run_internal(con, "pair_k", source=source, target=target).fetchone()
        if k_row is None:
            raise InputError(
                f"no mapping of '{source}' onto '{target}' yet. "
                f"Run 'harmonize map --source {source} --target {target}' first."
            )
        candidates = sql.run_internal(con, "pair_candidates", source=source, target=target).df()
        mappings = sql.run_internal(con, "pair_mappings", source=source, target=target).df()
        codes = set(sql.run_internal(con, "site_concepts", site=source).df()["code"])
    return int(k_row[0]), candidates, mappings, codes


def _store(ws: Workspace, result: MapEvaluation, gold_path: Path) -> None:
    metrics = result.metrics
    with ws.transaction() as con:
        sql.run_internal(
            con,
            "insert_map_evaluation",
            source=result.source,
            target=result.target,
            run_id=result.run_id,
            gold_file=str(gold_path.resolve()),
            gold_sha256=hashlib.sha256(gold_path.read_bytes()).hexdigest(),
            n=result.n,
            n_unknown=result.n_unknown,
            **{m: metrics.get(m) for m in ("top1", "top5", "top10", "mrr", "coverage")},
            precision=metrics.get("precision"),
            recall=metrics.get("recall"),
        )


def evaluate_mapping(
    ws: Workspace, source: str, target: str, gold_path: str | Path, ks: Sequence[int] = (1, 5, 10)
) -> MapEvaluation:
    """Scores the stored candidates and mappings of ``source`` onto ``target`` against a gold
    file, stores the result in ``map_evaluations`` and returns it.

    Gold source codes that the source site does not have are counted in ``n_unknown`` and left
    out of the metrics (they say more about the gold file than about the mapping).

    >>> from harmonize.datasets.tiny import tiny_workspace
    >>> ws = tiny_workspace()  # sites a and b, lexical indexes, b mapped onto a
    >>> gold = ws.root.parent / "gold.csv"
    >>> _ = gold.write_text("source_code,target_code\\nB1,A1\\nB2,A1\\nZZ,A1\\n")
    >>> result = evaluate_mapping(ws, "b", "a", gold)
    >>> result.n, result.n_unknown, result.metrics["top1"], result.metrics["top5"]
    (2, 1, 0.5, 1.0)
    """
    gold_path = Path(gold_path)
    gold = read_gold(gold_path)
    k, candidates, mappings, codes = _read_stored(ws, source, target)
    known = gold["source_code"].isin(codes)
    n_unknown = int(gold.loc[~known, "source_code"].nunique())
    if not known.any():
        raise InputError(
            f"{gold_path}: none of its {n_unknown} source codes is a concept of site '{source}'; "
            "is the gold file the other way round?"
        )
    metrics = mapping_metrics(candidates, gold[known], mappings, ks=ks)
    run_id = str(mappings["run_id"].iloc[0]) if len(mappings) else ""
    result = MapEvaluation(source, target, metrics, n_unknown, k, run_id)
    _store(ws, result, gold_path)
    return result
