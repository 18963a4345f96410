"""The learned reranker of ``map --known``: which model, fitted how, ranking which candidates.

A LambdaRank ranker (or, with few known concepts, a per-row classifier) learns from the known
concepts' candidate rows to put their known targets first; :func:`rank_candidates` orders the
other concepts' candidates by its score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harmonize.core.config import (
    KNOWN_MIN_PAIRS,
    KNOWN_RANKER_MIN,
    KNOWN_RANKER_TREES,
    KNOWN_TRAIN_MAX,
    RANDOM_STATE,
)
from harmonize.core.errors import InputError
from harmonize.mapping.rerank.candidates import CANDIDATE_FEATURES, Candidates


def reranker_kind(n_concepts: int) -> str:
    """Which model learns from ``n_concepts`` known concepts: the LambdaRank "ranker", or with
    fewer than KNOWN_RANKER_MIN the per-row "classifier".

    Held-out ICD-10-CM top-1 with a ranker against a classifier learned from 50 / 200 / 1,000 /
    4,000 known concepts: 0.868 / 0.905 / 0.918 / 0.926 against 0.877 / 0.906 / 0.917 / 0.922
    (three draws each: the classifier ahead at 50, level at 200 and 1,000, the ranker ahead at
    4,000); on the demo's 46 known pairs 72.2 % against 73.5 %.

    >>> reranker_kind(46), reranker_kind(30000)
    ('classifier', 'ranker')
    """
    return "ranker" if n_concepts >= KNOWN_RANKER_MIN else "classifier"


class _RowClassifier:
    """The per-row classifier behind the ranker's interface: ``predict`` gives P(right)."""

    def __init__(self, model):
        self.model = model

    def predict(self, features: np.ndarray) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return self.model.predict_proba(features)[:, 1]


def fit_reranker(parts: list[Candidates], labels: list[np.ndarray], kind: str):
    """A model that scores each query's candidates so that its known targets come first.
    ``parts`` are candidate sets (one per fold, rows of a query together) and ``labels`` their
    rows' "is a known target"; ``kind`` is :func:`reranker_kind`'s choice.

    The "ranker" (LightGBM LambdaRank) learns from each query's candidates together, which is
    the choice map makes; the "classifier" (scikit-learn's gradient-boosted trees) scores each
    row alone, and is better only with few known concepts. On all 34,122 held-out ICD-10-CM
    codes of seed 0 the ranker took top-1 from 92.5 % to 92.9 % and the exact 1:1 pairs from
    94.2 % to 95.0 % (12,000 known concepts)."""
    if kind not in ("ranker", "classifier"):
        raise ValueError(f"unknown reranker kind {kind!r}")
    y = np.concatenate(labels)
    if y.sum() < KNOWN_MIN_PAIRS or (~y).sum() < KNOWN_MIN_PAIRS:
        raise InputError(
            f"{{known}}: only {int(y.sum())} known pairs have their target among the "
            f"candidates; the reranker needs at least {KNOWN_MIN_PAIRS} to learn from",
            params=("known",),
        )
    features = np.concatenate([c.features for c in parts])
    if kind == "classifier":
        from sklearn.ensemble import HistGradientBoostingClassifier
        from threadpoolctl import threadpool_limits

        classifier = HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, random_state=RANDOM_STATE
        )
        with threadpool_limits(1):  # one thread, as for the ranker below
            return _RowClassifier(classifier.fit(features, y))
    import lightgbm

    # Rows of a query are consecutive within each part (build_candidates): one group each.
    for c in parts:
        if len(c.query) and (np.diff(c.query) < 0).any():
            raise AssertionError("candidate rows are not grouped by query")
    groups = np.concatenate([np.unique(c.query, return_counts=True)[1] for c in parts])
    model = lightgbm.LGBMRanker(
        objective="lambdarank",
        n_estimators=KNOWN_RANKER_TREES,
        learning_rate=0.05,
        num_leaves=31,
        random_state=RANDOM_STATE,
        # One thread: on a busy machine OpenMP threads spin against each other (a 2-core
        # machine with one other job took 290 s to fit what one thread fits in seconds).
        n_jobs=1,
        verbose=-1,
    )
    return model.fit(features, y.astype(int), group=groups)


def rank_candidates(model, cands: Candidates, n_queries: int, k: int) -> pd.DataFrame:
    """The top ``k`` candidates of each query by the reranker's score: query, target, rank
    (1 = best), score (comparable within a query, uncalibrated)."""
    score = model.predict(cands.features)
    # Usage features, when there are any, follow the CANDIDATE_FEATURES columns.
    n_columns = len(CANDIDATE_FEATURES)
    features = dict(zip(CANDIDATE_FEATURES, cands.features.T[:n_columns], strict=True))
    frame = pd.DataFrame(
        {
            "query": cands.query,
            "target": cands.target,
            "ranker": score,
            "vote": features["vote"],
            "cosine": features["cosine"],
        }
    )
    # Ties (trees give candidates the same score) go to the neighbours' vote, then the cosine
    # (with the earlier classifier, sorting by its probability alone left a right target
    # outside the top 10 for 12 % of held-out ICD-10-CM codes).
    frame = frame.sort_values(
        ["query", "ranker", "vote", "cosine"],
        ascending=[True, False, False, False],
        kind="stable",
    ).drop(columns=["vote", "cosine"])
    frame["rank"] = frame.groupby("query").cumcount() + 1
    frame = frame[frame["rank"] <= k].reset_index(drop=True)
    missing = set(range(n_queries)) - set(frame["query"].tolist())
    if missing:  # every query has at least its dense candidates
        raise AssertionError(f"queries without candidates: {sorted(missing)[:5]}")
    return frame


def reranker_sample_size(value: int | None) -> int:
    """``reranker_concepts`` checked, or KNOWN_TRAIN_MAX when not given. (map and bench-map
    both check it before they write anything.)

    >>> reranker_sample_size(None) == KNOWN_TRAIN_MAX, reranker_sample_size(50)
    (True, 50)
    """
    if value is None:
        return KNOWN_TRAIN_MAX
    if value < KNOWN_MIN_PAIRS:
        raise InputError(
            f"{{reranker_concepts}} must be at least {KNOWN_MIN_PAIRS}, got {value}",
            params=("reranker_concepts",),
        )
    return value


def training_queries(known: dict[int, list[int]], limit: int = KNOWN_TRAIN_MAX) -> np.ndarray:
    """The known concepts the reranker learns from, in a seeded random order (so that
    consecutive folds are random): all of them, or the first ``limit``."""
    rows = np.array(sorted(known), dtype=np.int64)
    return np.random.default_rng(RANDOM_STATE).permutation(rows)[:limit]
