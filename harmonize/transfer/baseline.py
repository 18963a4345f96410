"""The one-hot logistic baseline: the classical reference for the concept-embedding CNN.

>>> import numpy as np
>>> ids = np.array([[0, 1], [2, 2]] * 5); y = np.array([1, 0] * 5)
>>> OneHotLogistic().fit(np.eye(3), ids, y).predict_proba(np.eye(3), ids[:2]).argmax(1).tolist()
[1, 0]
"""

from __future__ import annotations

import numpy as np


def multi_hot(ids: np.ndarray, n_texts: int) -> np.ndarray:
    """(n_patients, n_texts) 0/1 features: which concept-state texts a patient has."""
    out = np.zeros((len(ids), n_texts), dtype=np.float32)
    out[np.arange(len(ids))[:, None], ids] = 1.0
    return out


class OneHotLogistic:
    """Logistic regression on one-hot concept-state features: the classical reference. It sees
    texts only as identities, so it transfers between sites only through a shared code space."""

    def __init__(self, C: float = 1.0, random_state: int = 0):
        self.C = C
        self.random_state = random_state

    def fit(self, vectors: np.ndarray, ids: np.ndarray, y: np.ndarray) -> OneHotLogistic:
        from sklearn.linear_model import LogisticRegression

        self.n_texts_ = len(vectors)
        self.model_ = LogisticRegression(C=self.C, max_iter=2000, random_state=self.random_state)
        self.model_.fit(multi_hot(ids, self.n_texts_), y)
        return self

    def predict_proba(self, vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(multi_hot(ids, self.n_texts_))
