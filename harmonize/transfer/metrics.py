"""How well a transferred model separates the target's test patients: AUROC with a bootstrap
interval, AUPRC and accuracy (the mapping's own metrics are in :mod:`harmonize.mapping.metrics`).
"""

from __future__ import annotations

import numpy as np


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
    if n_boot > 0:
        rng = np.random.default_rng(random_state)
        scores = []
        for _ in range(n_boot):
            idx = rng.integers(0, len(y), len(y))
            if y[idx].min() != y[idx].max():  # a resample with one class has no AUROC
                scores.append(roc_auc_score(y[idx], p[idx]))
        if scores:
            out["auroc_low"], out["auroc_high"] = (
                float(v) for v in np.percentile(scores, [2.5, 97.5])
            )
    return out
