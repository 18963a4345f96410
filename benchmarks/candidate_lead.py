"""What the ``cosine_lead`` feature costs the reranker's feature build, in one run.

``add_similarity_columns`` (cosine, lexical overlap, the gaps and the lead) on a frame of the
full ICD benchmark's shape (34,122 queries x 10 candidates, 384-dimensional unit vectors,
sparse character n-gram rows), timed interleaved with ``lead_over_others`` alone on the same
frame: the lead's share of the call is the figure to compare across machines, the seconds are
printed too.

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


def timed(frame: pd.DataFrame, pair, src, tgt) -> tuple[float, float]:
    """Seconds of one ``add_similarity_columns`` call and of the lead alone on its output."""
    work = frame.copy()
    start = time.perf_counter()
    candidates.add_similarity_columns(work, pair, src, tgt)
    whole = time.perf_counter() - start
    best = work.groupby("pos")["cosine"].transform("max")
    start = time.perf_counter()
    candidates.lead_over_others(work, best)
    return whole, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=34_122)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--targets", type=int, default=14_567)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    data = inputs(args.queries, args.k, args.targets)
    timed(*data)  # warm-up: first-call allocations
    rounds = [timed(*data) for _ in range(args.rounds)]
    whole = statistics.median(w for w, _ in rounds)
    lead = statistics.median(x for _, x in rounds)
    shares = [x / w for w, x in rounds]
    print(f"{args.queries:,} queries x {args.k} candidates, {args.rounds} rounds (medians)")
    print(f"add_similarity_columns  {whole:.3f} s")
    print(f"the lead alone          {lead:.3f} s")
    print(f"the lead's share: median {statistics.median(shares):.1%} "
          f"(min {min(shares):.1%}, max {max(shares):.1%})")  # fmt: skip


if __name__ == "__main__":
    main()
