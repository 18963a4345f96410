"""Retrieval: each source concept's nearest target concepts, from one model's index or several.

With several models (``--model a+b``) each one's ranking is searched and the rankings are fused
by reciprocal rank, so a mapping can draw on models that are good at different things.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from harmonize.core.config import (
    FUSION_DEPTH,
    RRF_K,
)
from harmonize.index.faiss_index import search, vectors_of

if TYPE_CHECKING:
    import faiss


def fused_search(
    pairs: list[tuple[np.ndarray, faiss.Index]], k: int, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k target rows per query. One model: plain cosine search. Several: each model's top
    ``FUSION_DEPTH`` lists are fused by reciprocal rank (sum of 1 / (60 + rank)), and each
    fused candidate's score is its mean cosine over the models (comparable with one model's).
    """
    if len(pairs) == 1:
        queries, index = pairs[0]
        return search(index, queries, k, device)
    n_targets = pairs[0][1].ntotal
    width = min(k, n_targets)
    lists = [search(index, queries, max(k, FUSION_DEPTH), device)[1] for queries, index in pairs]
    targets = [vectors_of(index) for _, index in pairs]
    n = len(pairs[0][0])
    out_ids = np.zeros((n, width), dtype=np.int64)
    out_scores = np.zeros((n, width), dtype=np.float32)
    for i in range(n):
        fused: dict[int, float] = {}
        for ranked in lists:
            for rank, t in enumerate(ranked[i], start=1):
                fused[int(t)] = fused.get(int(t), 0.0) + 1.0 / (RRF_K + rank)
        top = sorted(fused, key=lambda t: (-fused[t], t))[:width]
        cosines = [
            vecs[top] @ queries[i] for (queries, _), vecs in zip(pairs, targets, strict=True)
        ]
        out_ids[i] = top
        out_scores[i] = np.mean(cosines, axis=0)
    return out_scores, out_ids
