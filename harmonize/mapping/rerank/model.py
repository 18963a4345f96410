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
    4,000); on the demo's 46 known pairs 72.2 % against 73.5 % (72.7 % since the classifier
    learns only from queries with a right candidate).

    >>> reranker_kind(46), reranker_kind(30000)
    ('classifier', 'ranker')
    """
    return "ranker" if n_concepts >= KNOWN_RANKER_MIN else "classifier"


# The column of the search's rank (0: its first candidate) among the features.
DENSE_RANK = CANDIDATE_FEATURES.index("dense_rank")


class _RowClassifier:
    """The per-row classifier behind the ranker's interface: ``predict`` gives P(right), the
    search's first candidates' log-odds moved by ``first_shift`` (:func:`first_shift`)."""

    def __init__(self, model, first_shift: float = 0.0):
        self.model = model
        self.first_shift = first_shift

    def predict(self, features: np.ndarray) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            p = self.model.predict_proba(features)[:, 1]
        if not self.first_shift:
            return p
        p = np.clip(p, 1e-9, 1 - 1e-9)
        z = np.log(p / (1 - p)) + self.first_shift * (features[:, DENSE_RANK] == 0)
        return 1.0 / (1.0 + np.exp(-z))


def first_shift(first: np.ndarray, first_prior: float | None) -> float:
    """The log-odds shift of the search's first candidates that takes their share of right
    answers in the training queries (``first``: per answered query, whether its first
    candidate is right) to ``first_prior``, the share in a random sample of the concepts (a
    prior-shift correction; both clipped to 0.02-0.98). 0 without a prior.

    Decisions in ``review``'s order are the concepts the search is least sure of, where its
    first candidate is right less often than elsewhere (on ICD, 100 reviews: 45 % of those
    learned from against 68 % of the probes); a classifier fitted on them overrode right first
    candidates of the rest.

    >>> round(first_shift(np.array([True, False, False, False]), 0.5), 3)  # logit .5 - logit .25
    1.099
    >>> first_shift(np.array([True, False]), None)
    0.0
    """
    if first_prior is None or not len(first):
        return 0.0
    p_train, p_prior = (float(np.clip(p, 0.02, 0.98)) for p in (first.mean(), first_prior))
    return float(np.log(p_prior / (1 - p_prior)) - np.log(p_train / (1 - p_train)))


def fit_reranker(
    parts: list[Candidates],
    labels: list[np.ndarray],
    kind: str,
    first_prior: float | None = None,
):
    """A model that scores each query's candidates so that its known targets come first.
    ``parts`` are candidate sets (one per fold, rows of a query together) and ``labels`` their
    rows' "is a known target"; ``kind`` is :func:`reranker_kind`'s choice. With
    ``first_prior`` the classifier trusts the search's first candidates as often as they are
    right in a random sample (:func:`first_shift`; the ranker learns no prior to correct).

    The "ranker" (LightGBM LambdaRank) learns from each query's candidates together, which is
    the choice map makes; the "classifier" (scikit-learn's gradient-boosted trees) scores each
    row alone, and is better only with few known concepts. On all 34,122 held-out ICD-10-CM
    codes of seed 0 the ranker took top-1 from 92.5 % to 92.9 % and the exact 1:1 pairs from
    94.2 % to 95.0 % (12,000 known concepts)."""
    if kind not in ("ranker", "classifier"):
        raise ValueError(f"unknown reranker kind {kind!r}")
    y = np.concatenate(labels)
    features = np.concatenate([c.features for c in parts])
    if kind == "classifier":
        # Only queries with a right candidate, as LambdaRank learns: the others say nothing
        # of which candidate goes first, and their rows, all wrong, taught the classifier to
        # distrust a first candidate (on ICD, review order: decided concepts whose target the
        # search missed).
        pairs = zip(parts, labels, strict=True)
        keep = np.concatenate([_answered(c.query, lab) for c, lab in pairs])
        features, y = features[keep], y[keep]
    if y.sum() < KNOWN_MIN_PAIRS or (~y).sum() < KNOWN_MIN_PAIRS:
        raise InputError(
            f"{{known}}: only {int(y.sum())} known pairs have their target among the "
            f"candidates; the reranker needs at least {KNOWN_MIN_PAIRS} to learn from",
            params=("known",),
        )
    if kind == "classifier":
        return _fit_classifier(features, y, first_prior)
    return _fit_ranker(parts, features, y)


def _fit_classifier(features: np.ndarray, y: np.ndarray, first_prior: float | None):
    """scikit-learn's gradient-boosted trees on the rows, with the prior shift of
    :func:`first_shift` when there is a ``first_prior``."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    classifier = HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.05, random_state=RANDOM_STATE
    )
    with threadpool_limits(1):  # one thread, as for the ranker
        classifier.fit(features, y)
    if first_prior is None:
        return _RowClassifier(classifier)
    first = y[features[:, DENSE_RANK] == 0]  # the answered queries' first candidates
    return _RowClassifier(classifier, first_shift(first, first_prior))


def _fit_ranker(parts: list[Candidates], features: np.ndarray, y: np.ndarray):
    """LightGBM LambdaRank over each query's candidates together."""
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


def _answered(query: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row, whether its query has a right candidate among its rows.

    >>> _answered(np.array([0, 0, 1, 1]), np.array([False, True, False, False])).tolist()
    [True, True, False, False]
    """
    if not len(query):
        return np.zeros(0, dtype=bool)
    right = np.bincount(query, weights=labels.astype(float), minlength=int(query.max()) + 1)
    return right[query] > 0


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
