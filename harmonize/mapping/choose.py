"""Source concepts to target concepts: top-k candidates, then one chosen mapping each.

Strategies for choosing among the candidates:

- ``best``: each source concept takes its nearest target concept;
- ``mutual``: only pairs that are each other's nearest neighbour (precise, fewer rows);
- ``one-to-one``: a global assignment (Hungarian algorithm) maximising total similarity,
  so no target concept is used twice.

>>> import numpy as np
>>> choose_best(np.array([[0.9, 0.5], [0.4, 0.2]]), np.array([[1, 0], [1, 0]]), 0.5)
[[0, 1, 0.9]]
"""

from __future__ import annotations

import numpy as np

from harmonize.core.config import (
    ONE_TO_ONE_MAX_CELLS,
)
from harmonize.core.errors import HarmonizeError


def choose_best(scores: np.ndarray, ids: np.ndarray, min_score: float) -> list[list]:
    """[source_row, target_row, score] of each source's top candidate at or above min_score."""
    if scores.shape[1] == 0:
        return []
    keep = scores[:, 0] >= min_score
    return [[int(i), int(ids[i, 0]), float(scores[i, 0])] for i in np.flatnonzero(keep)]


def choose_mutual(
    scores: np.ndarray, ids: np.ndarray, reverse_ids: np.ndarray, min_score: float
) -> list[list]:
    """Top candidates whose own nearest source concept is the one that chose them."""
    return [
        row for row in choose_best(scores, ids, min_score) if int(reverse_ids[row[1], 0]) == row[0]
    ]


def choose_one_to_one(scores: np.ndarray, ids: np.ndarray, min_score: float) -> list[list]:
    """A maximum-weight matching over the candidate pairs at or above ``min_score``.

    Weights are ``score + 2`` (positive for every cosine) so the assignment first matches as
    many source concepts as it can, then maximises their total similarity.
    """
    from scipy.optimize import linear_sum_assignment

    allowed = scores >= min_score
    rows = np.flatnonzero(allowed.any(axis=1))
    cols = np.unique(ids[allowed])
    if len(rows) == 0:
        return []
    if len(rows) * len(cols) > ONE_TO_ONE_MAX_CELLS:
        raise HarmonizeError(
            f"one-to-one over {len(rows)} x {len(cols)} candidates is too large; "
            "use {strategy} best or mutual, a smaller {k}, or a higher {min_score}",
            params=("strategy", "k", "min_score"),
        )
    col_pos = {int(c): j for j, c in enumerate(cols)}
    weights = np.zeros((len(rows), len(cols)))
    for r, i in enumerate(rows):
        for j in np.flatnonzero(allowed[i]):
            weights[r, col_pos[int(ids[i, j])]] = scores[i, j] + 2.0
    r_idx, c_idx = linear_sum_assignment(weights, maximize=True)
    out = []
    for r, c in zip(r_idx, c_idx, strict=True):
        if weights[r, c] > 0:
            out.append([int(rows[r]), int(cols[c]), float(weights[r, c] - 2.0)])
    return sorted(out)
