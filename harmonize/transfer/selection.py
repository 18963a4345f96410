"""Choosing among models by cross-validation on the target's training patients only.

A candidate is a named way to train on some patients and score others. Each is scored by its
pooled out-of-fold AUROC over repeated stratified folds of the training sample; the test
patients are never passed in, so no choice can depend on them. Hyperparameters (a prior's
strength, a stacking weight, a ridge strength) are candidates of one family; a family's choice
is its best candidate, and ``auto`` is the best of all.

>>> y = np.array([0, 1] * 6)
>>> [sorted(y[f].tolist()) for f in stratified_folds(y, 3, np.random.default_rng(0))]
[[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harmonize.transfer.metrics import auroc

Scorer = Callable[[np.ndarray], np.ndarray]  # ids -> a score per patient (higher: positive)
Trainer = Callable[[np.ndarray, np.ndarray], Scorer]  # (ids, y) -> scorer


@dataclass(frozen=True)
class Candidate:
    """One model to try: its family (``prior``), its setting (``lam=10``) and how to train it.
    ``oof`` (optional) computes out-of-fold scores directly, for candidates such as stacking
    weights that are mixtures of other candidates' out-of-fold scores."""

    family: str
    setting: str
    train: Trainer
    oof: Callable[[list[np.ndarray]], np.ndarray] | None = None

    @property
    def name(self) -> str:
        return f"{self.family} ({self.setting})" if self.setting else self.family


def stratified_folds(y: np.ndarray, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``k`` disjoint held-out index sets covering every patient, each class dealt evenly
    (fewer folds when a class has fewer than ``k`` patients)."""
    k = max(2, min(k, int(min((y == 0).sum(), (y == 1).sum()))))
    folds: list[list[int]] = [[] for _ in range(k)]
    for cls in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == cls))
        offset = int(rng.integers(k))
        for j, i in enumerate(idx):
            folds[(j + offset) % k].append(int(i))
    return [np.sort(np.array(f, dtype=np.int64)) for f in folds]


def out_of_fold(train: Trainer, ids: np.ndarray, y: np.ndarray, folds: list[np.ndarray]):
    """Scores of every patient by a model trained without its fold."""
    scores = np.zeros(len(y))
    for held in folds:
        keep = np.ones(len(y), dtype=bool)
        keep[held] = False
        scores[held] = train(ids[keep], y[keep])(ids[held])
    return scores


@dataclass
class Selection:
    """Every candidate's cross-validated AUROC (mean over repeats), in candidate order, and
    its out-of-fold scores (candidates x repeats x patients) for ensembles built after it."""

    candidates: list[Candidate]
    cv_auroc: np.ndarray
    oof: np.ndarray | None = None
    y: np.ndarray | None = None

    def index(self, candidate: Candidate) -> int:
        return next(i for i, c in enumerate(self.candidates) if c is candidate)

    def best(self, family: str | None = None) -> Candidate:
        """The highest-scoring candidate (of ``family``); ties go to the earlier one."""
        order = [i for i, c in enumerate(self.candidates) if family is None or c.family == family]
        return self.candidates[max(order, key=lambda i: (self.cv_auroc[i], -i))]

    def families(self) -> list[str]:
        return list(dict.fromkeys(c.family for c in self.candidates))


def select(
    candidates: list[Candidate],
    ids: np.ndarray,
    y: np.ndarray,
    k: int = 5,
    repeats: int = 2,
    random_state: int = 0,
) -> Selection:
    """Scores each candidate by cross-validation on ``ids, y`` (training patients only).

    >>> ids = np.array([[0], [1]] * 10); y = np.array([1, 0] * 10)
    >>> good = Candidate("good", "", lambda i, t: lambda j: (j[:, 0] == 0).astype(float))
    >>> bad = Candidate("bad", "", lambda i, t: lambda j: (j[:, 0] == 1).astype(float))
    >>> select([bad, good], ids, y).best().name
    'good'
    """
    rng = np.random.default_rng(random_state)
    splits = [stratified_folds(y, k, rng) for _ in range(repeats)]
    scores = np.zeros((len(candidates), repeats))
    oofs = np.zeros((len(candidates), repeats, len(y)))
    for r, folds in enumerate(splits):
        for c, candidate in enumerate(candidates):
            if candidate.oof is not None:
                oofs[c, r] = candidate.oof(folds)
            else:
                oofs[c, r] = out_of_fold(candidate.train, ids, y, folds)
            scores[c, r] = auroc(y, oofs[c, r])
    return Selection(candidates, scores.mean(axis=1), oofs, y)
