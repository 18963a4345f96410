"""Naive Bayes over concept-state texts, with the source site's frequencies as a Dirichlet
prior: a generative model in the spirit of the study group's Bayesian-network transfer.

Each patient holds one state text per concept, so a text ``t`` is a Bernoulli feature with
class-conditional frequency ``P(t | class)``. At the target it is estimated as

    (count of t in the class + m * prior(t | class)) / (patients of the class + m)

where ``prior`` is the source's (smoothed) frequency, or 1/2 without a source: ``m`` says how
many target patients the source is worth. A patient's score is the log-likelihood ratio of its
texts plus the log prior odds of the target sample.

>>> ids = np.array([[0], [1]] * 10); y = np.array([1, 0] * 10)
>>> model = NaiveBayes(m=1.0).fit(np.eye(2), ids, y)
>>> (model.decision(np.eye(2), ids[:2]) > 0).tolist()
[True, False]
"""

from __future__ import annotations

import numpy as np

from harmonize.transfer.prior import text_counts

FLOOR = 1e-4  # no frequency is exactly 0 or 1


def class_frequencies(counts: np.ndarray, totals: np.ndarray, smoothing: float = 0.5) -> np.ndarray:
    """(2, n_texts): smoothed frequency of each text among the negatives and the positives,
    from ``counts`` (2, n_texts) patients of each class holding each text and ``totals`` (2,)
    patients of each class (:func:`harmonize.transfer.eb.class_text_counts`).

    >>> class_frequencies(np.array([[0.0, 2.0], [1.0, 1.0]]), np.array([2.0, 1.0])).tolist()
    [[0.16666666666666666, 0.8333333333333334], [0.75, 0.75]]
    """
    return (counts + smoothing) / (totals[:, None] + 2 * smoothing)


class NaiveBayes:
    """Bernoulli naive Bayes over texts (present texts only: every patient has one state text
    per concept), with ``prior`` class frequencies (``(2, n_texts)``, e.g. the source's) worth
    ``m`` patients per class; None is 1/2 everywhere."""

    def __init__(self, m: float = 1.0, prior: np.ndarray | None = None):
        self.m = m
        self.prior = prior

    def fit(self, vectors: np.ndarray, ids: np.ndarray, y: np.ndarray) -> NaiveBayes:
        X = text_counts(ids, len(vectors))
        prior = np.full((2, len(vectors)), 0.5) if self.prior is None else self.prior
        freq = np.zeros((2, len(vectors)))
        for cls in (0, 1):
            rows = X[y == cls]
            counts = np.asarray(rows.sum(axis=0)).ravel()
            freq[cls] = (counts + self.m * prior[cls]) / (rows.shape[0] + self.m)
        freq = np.clip(freq, FLOOR, 1 - FLOOR)
        self.w_ = np.log(freq[1]) - np.log(freq[0])
        n_pos = float(np.sum(y == 1))
        self.b_ = float(np.log((n_pos + 0.5) / (len(y) - n_pos + 0.5)))
        return self

    def decision(self, vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return text_counts(ids, len(vectors)) @ self.w_ + self.b_

    def predict_proba(self, vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision(vectors, ids)))
        return np.column_stack([1.0 - p, p])
