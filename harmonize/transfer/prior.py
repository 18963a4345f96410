"""Logistic regression over concept-state texts with a Gaussian prior on the text weights.

A patient's score is ``b + sum of w[t]`` over its distinct texts ``t``. The weights have the
prior ``N(mean, K / lam)``, so the fit minimises the exact objective

    sum_i log(1 + exp(z_i)) - y_i z_i  +  lam / 2 (w - mean)' K^-1 (w - mean)

(the intercept ``b`` is free), by Newton's method on the exact gradient and Hessian. Two uses:

- the **source model** (``mean = 0``): with ``K = alpha C + (1 - alpha) I``, ``C`` the cosine
  similarity of the (centred) text embeddings, a weight is partly a linear function of its
  text's embedding. A text no source patient has (a concept only the target site records) gets
  the weight its embedding predicts, ``K[t, S] K[S, S]^-1 w[S]``, before any target patient is
  seen; ``alpha = 0`` is one-hot ridge regression;
- the **prior (L2-SP) model** at the target: ``mean`` = the source weights, ``lam`` chosen by
  cross-validation on the target's training patients (:mod:`harmonize.transfer.selection`).

>>> ids = np.array([[0, 1], [2, 2]] * 10); y = np.array([1, 0] * 10)
>>> model = PriorLogistic(lam=1.0).fit(np.eye(3), ids, y)
>>> model.predict_proba(np.eye(3), ids[:2]).argmax(1).tolist()
[1, 0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def text_counts(ids: np.ndarray, n_texts: int):
    """(n_patients, n_texts) sparse 0/1 matrix: which texts each patient has (padding repeats
    collapse to one)."""
    from scipy import sparse

    rows = np.repeat(np.arange(len(ids)), ids.shape[1])
    matrix = sparse.csr_matrix((np.ones(rows.size), (rows, ids.ravel())), shape=(len(ids), n_texts))
    matrix.data[:] = 1.0  # duplicates were summed
    return matrix


def negation_vectors(vectors: np.ndarray, texts: list[str] | None) -> np.ndarray:
    """The vectors the prior compares: an absent state ``Not X`` whose present state ``X`` is
    also a text gets ``-vector(X)``, so the prior expects opposite weights for the two states
    of one concept (an encoder puts ``X`` and ``Not X`` close together).

    >>> negation_vectors(np.array([[1.0, 2.0], [1.0, 1.9]]), ["fever", "Not fever"]).tolist()
    [[1.0, 2.0], [-1.0, -2.0]]
    """
    from harmonize.transfer.encounters import parse_state_text  # encounters imports pandas

    if texts is None:
        return vectors
    out = np.array(vectors, dtype=np.float64)
    index = {t: i for i, t in enumerate(texts)}
    for i, text in enumerate(texts):
        present, value = parse_state_text(text)
        if value == "A" and present in index:
            out[i] = -out[index[present]]
    return out


def prior_precision(
    vectors: np.ndarray, alpha: float, texts: list[str] | None = None, power: int = 1
) -> np.ndarray:
    """``K^-1`` for ``K = alpha C + (1 - alpha) I``: ``C`` is the cosine similarity of the text
    vectors (after :func:`negation_vectors` with ``texts``, and centring on their mean), raised
    elementwise to the odd ``power`` (a Hadamard power keeps ``C`` positive semi-definite and its
    signs, and keeps only close texts' weights alike). The empty text (a zero vector) stays
    independent of the others.

    >>> prior_precision(np.eye(3), 0.0).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    n = len(vectors)
    if alpha <= 0.0:
        return np.eye(n)
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"alpha must be in [0, 1), got {alpha}")
    vectors = negation_vectors(vectors, texts)
    real = np.abs(vectors).sum(axis=1) > 0
    centred = np.zeros((n, vectors.shape[1]))
    centred[real] = vectors[real] - vectors[real].mean(axis=0)
    norms = np.linalg.norm(centred, axis=1)
    centred[norms > 0] /= norms[norms > 0, None]
    kernel = alpha * (centred @ centred.T) ** power
    kernel[np.diag_indices(n)] = np.where(norms > 0, alpha, 0.0) + (1.0 - alpha)
    return np.linalg.inv(kernel)


@dataclass
class Fit:
    """Weights per text and the intercept."""

    w: np.ndarray
    b: float


def fit_map(
    X,
    y: np.ndarray,
    lam: float,
    precision: np.ndarray | None = None,
    mean: np.ndarray | None = None,
    start: Fit | None = None,
    tol: float = 1e-9,
) -> Fit:
    """The exact minimiser of the module's objective (``precision`` None is the identity,
    ``mean`` None is zero), by Newton's method with a backtracking line search from ``start``
    (default: the prior mean). The objective is strictly convex (``lam`` > 0), so it stops at
    the one optimum, when no gradient component exceeds ``tol`` times the patient count."""
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X, dtype=np.float64)
    n, n_texts = X.shape
    mean = np.zeros(n_texts) if mean is None else np.asarray(mean, dtype=np.float64)
    prec = np.eye(n_texts) if precision is None else precision
    y = np.asarray(y, dtype=np.float64)
    design = np.column_stack([X, np.ones(n)])
    penalty = np.zeros((n_texts + 1, n_texts + 1))
    penalty[:n_texts, :n_texts] = lam * prec
    centre = np.append(mean, 0.0)

    def value(theta: np.ndarray) -> float:
        z = design @ theta
        diff = theta - centre
        return float((np.logaddexp(0.0, z) - y * z).sum() + 0.5 * diff @ penalty @ diff)

    theta = np.append(mean, 0.0) if start is None else np.append(start.w, start.b)
    current = value(theta)
    for _ in range(200):
        p = _sigmoid(design @ theta)
        grad = design.T @ (p - y) + penalty @ (theta - centre)
        if np.abs(grad).max() <= tol * max(n, 1):
            break
        hessian = (design * (p * (1.0 - p))[:, None]).T @ design + penalty
        hessian[-1, -1] += 1e-12  # the intercept is free: keep the system solvable
        step = np.linalg.solve(hessian, grad)
        size = 1.0
        while size > 1e-10:
            trial = theta - size * step
            trial_value = value(trial)
            if trial_value <= current - 1e-4 * size * grad @ step:
                break
            size *= 0.5
        theta, current = trial, trial_value
    return Fit(theta[:-1].copy(), float(theta[-1]))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


class PriorLogistic:
    """Logistic regression on concept-state texts with the prior ``N(mean, K / lam)``.

    ``alpha`` ties weights to the text embeddings (0: independent texts); ``prior`` is a fitted
    model whose weights (and intercept, as the starting point) are the prior mean, None for a
    zero mean. Text lists must be the same (one shared list, as the evaluation builds it).
    """

    def __init__(
        self,
        lam: float = 1.0,
        alpha: float = 0.0,
        prior: PriorLogistic | None = None,
        precision: np.ndarray | None = None,
    ):
        self.lam = lam
        self.alpha = alpha
        self.prior = prior
        self.precision = precision

    def fit(self, vectors: np.ndarray, ids: np.ndarray, y: np.ndarray) -> PriorLogistic:
        X = text_counts(ids, len(vectors))
        if self.precision is None:
            self.precision = prior_precision(vectors, self.alpha) if self.alpha > 0 else None
        start = self.prior.fit_ if self.prior is not None else None
        mean = start.w if start is not None else None
        self.fit_ = fit_map(X, y, self.lam, self.precision, mean, start)
        return self

    def decision(self, vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The score ``b + sum w[t]`` (a log-odds) of each patient."""
        return text_counts(ids, len(vectors)) @ self.fit_.w + self.fit_.b

    def predict_proba(self, vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
        p = _sigmoid(self.decision(vectors, ids))
        return np.column_stack([1.0 - p, p])
