"""What the ``cosine_lead`` feature costs the reranker's feature build, paired, in one run.

``add_similarity_columns`` (cosine, lexical overlap, the gaps and the lead) on a frame of the
full ICD benchmark's shape (34,122 queries x 10 candidates, 384-dimensional unit vectors,
sparse character n-gram rows), timed interleaved with the same call where the lead is not
computed (the code before the feature): the ratio with / without is the figure to compare
across machines, the seconds are printed too.

    python benchmarks/candidate_lead.py             # 7 rounds
    python benchmarks/candidate_lead.py --queries 2000 --rounds 15

Never asserted in tests: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
from scipy import sparse

from harmonize.mapping.rerank import candidates


def inputs(n_queries: int, k: int, n_targets: int, dim: int = 384, seed: int = 0):
    """A random (frame, pair, src, tgt) of the reranker's shape: ``k`` candidates a query."""
    rng = np.random.default_rng(seed)

    def unit(n: int) -> np.ndarray:
        v = rng.standard_normal((n, dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def lexical(n: int) -> sparse.csr_matrix:
        return sparse.random(n, 4096, density=0.01, format="csr", random_state=seed)

    pair = SimpleNamespace(
        source_vectors=unit(n_queries), target_vectors=unit(n_targets),
        source_lexical=lexical(n_queries), target_lexical=lexical(n_targets),
    )  # fmt: skip
    src = np.repeat(np.arange(n_queries), k)
    tgt = rng.integers(0, n_targets, size=n_queries * k)
    return pd.DataFrame({"pos": src}), pair, src, tgt


def timed(frame: pd.DataFrame, pair, src, tgt, lead: bool) -> float:
    """Seconds of one ``add_similarity_columns`` call, with or without the lead."""
    real = candidates.lead_over_others
    if not lead:
        candidates.lead_over_others = lambda f, best: np.zeros(len(f))
    try:
        work = frame.copy()
        start = time.perf_counter()
        candidates.add_similarity_columns(work, pair, src, tgt)
        return time.perf_counter() - start
    finally:
        candidates.lead_over_others = real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=34_122)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--targets", type=int, default=14_567)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    data = inputs(args.queries, args.k, args.targets)
    timed(*data, lead=True)  # warm-up: first-call allocations
    with_lead, without = [], []
    for _ in range(args.rounds):
        with_lead.append(timed(*data, lead=True))
        without.append(timed(*data, lead=False))
    ratios = [a / b for a, b in zip(with_lead, without, strict=True)]
    print(f"{args.queries:,} queries x {args.k} candidates, {args.rounds} rounds")
    print(f"with the lead     {statistics.median(with_lead):.3f} s (median)")
    print(f"without the lead  {statistics.median(without):.3f} s (median)")
    print(f"ratio with / without: median {statistics.median(ratios):.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
