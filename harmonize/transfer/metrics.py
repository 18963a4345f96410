"""How well a transferred model separates the target's test patients: AUROC with a bootstrap
interval, AUPRC and accuracy (the mapping's own metrics are in :mod:`harmonize.mapping.metrics`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def auroc(y: np.ndarray, p: np.ndarray) -> float:
    """The AUROC by the rank-sum (Mann-Whitney) formula, ties counted half: the same number as
    scikit-learn's ``roc_auc_score``, without its per-call checks (bootstraps call it often).

    >>> auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))
    0.75
    """
    from scipy.stats import rankdata

    y = np.asarray(y) == 1
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    ranks = rankdata(p)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_metrics(
    y: np.ndarray, p: np.ndarray, n_boot: int = 200, random_state: int = 0
) -> dict[str, float]:
    """AUROC, AUPRC and accuracy (threshold 0.5) of probabilities ``p`` for labels ``y``, with a
    95 % percentile-bootstrap interval for the AUROC (``n_boot`` resamples of the test set).

    >>> m = binary_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]), n_boot=0)
    >>> m["auroc"], m["accuracy"]
    (0.75, 0.5)
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y)
    p = np.asarray(p)
    out = {
        "auroc": float(roc_auc_score(y, p)),
        "auprc": float(average_precision_score(y, p)),
        "accuracy": float(np.mean((p >= 0.5) == (y == 1))),
        "auroc_low": float("nan"),
        "auroc_high": float("nan"),
    }
    interval = bootstrap_interval(y, lambda idx: auroc(y[idx], p[idx]), n_boot, random_state)
    if interval is not None:
        out["auroc_low"], out["auroc_high"] = interval
    return out


def paired_auroc_difference(
    y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, n_boot: int = 200, random_state: int = 0
) -> dict[str, float]:
    """AUROC(``p_a``) - AUROC(``p_b``) on the same patients, with a 95 % percentile interval
    from a paired bootstrap: each resample of the patients scores both models.

    >>> d = paired_auroc_difference(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]),
    ...                             np.array([0.1, 0.6, 0.4, 0.9]), n_boot=0)
    >>> d["difference"]
    0.25
    """
    y, p_a, p_b = np.asarray(y), np.asarray(p_a), np.asarray(p_b)
    out = {
        "difference": auroc(y, p_a) - auroc(y, p_b),
        "difference_low": float("nan"),
        "difference_high": float("nan"),
    }
    interval = bootstrap_interval(
        y, lambda idx: auroc(y[idx], p_a[idx]) - auroc(y[idx], p_b[idx]), n_boot, random_state
    )
    if interval is not None:
        out["difference_low"], out["difference_high"] = interval
    return out


def bootstrap_interval(
    y: np.ndarray, statistic: Callable[[np.ndarray], float], n_boot: int, random_state: int
) -> tuple[float, float] | None:
    """The 95 % percentile interval of ``statistic(indices)`` over ``n_boot`` resamples of the
    patients (None without any): a resample with one class has no AUROC and is left out.

    >>> y = np.array([0, 0, 1, 1])
    >>> bootstrap_interval(y, lambda idx: float(y[idx].mean()), 0, 0) is None
    True
    """
    rng = np.random.default_rng(random_state)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() != y[idx].max():
            values.append(statistic(idx))
    if not values:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)
