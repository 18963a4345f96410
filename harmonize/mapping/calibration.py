"""Calibrated confidence: the probability that a mapping is right, learned from labelled pairs.

A model's cosine is not a probability. ``fit_isotonic`` learns a monotone map from the cosine of
a source concept's best candidate to how often that candidate is right (isotonic regression on
pairs scored against a gold standard); ``map --min-confidence`` then leaves a concept unmapped
when its mapping is unlikely to be right, an honest "no mapping".

>>> import numpy as np
>>> cal = fit_isotonic(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1]))
>>> confidence(cal, np.array([0.15, 0.85])).tolist()
[0.0, 1.0]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from harmonize.core import sql
from harmonize.core.errors import InputError
from harmonize.core.workspace import Workspace
from harmonize.mapping.metrics import read_gold

if TYPE_CHECKING:
    pass


@dataclass
class Calibration:
    """Isotonic steps: cosine ``x`` -> probability ``y`` (interpolated, clipped at the ends)."""

    x: np.ndarray
    y: np.ndarray

    def to_json(self) -> str:
        return json.dumps({"x": self.x.tolist(), "y": self.y.tolist()})

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        points = json.loads(text)
        return cls(np.asarray(points["x"], float), np.asarray(points["y"], float))


def fit_isotonic(scores: np.ndarray, correct: np.ndarray) -> Calibration:
    """P(right | cosine), non-decreasing in the cosine."""
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    model.fit(np.asarray(scores, float), np.asarray(correct, float))
    return Calibration(model.X_thresholds_, model.y_thresholds_)


def out_of_fold(scores: np.ndarray, correct: np.ndarray, folds: int = 5) -> np.ndarray:
    """Each concept's probability from a calibration fitted without it (seeded k-fold)."""
    from sklearn.model_selection import KFold

    prob = np.empty(len(scores))
    for train, test in KFold(folds, shuffle=True, random_state=0).split(scores):
        prob[test] = confidence(fit_isotonic(scores[train], correct[train]), scores[test])
    return prob


def confidence(cal: Calibration, scores: np.ndarray) -> np.ndarray:
    return np.interp(np.asarray(scores, float), cal.x, cal.y)


def reliability_table(prob: np.ndarray, correct: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Predicted against observed frequency of being right, in equal-width probability bins."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            rows.append(
                {
                    "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                    "n": int(mask.sum()),
                    "predicted": float(prob[mask].mean()),
                    "observed": float(correct[mask].mean()),
                }
            )
    return pd.DataFrame(rows)


def _labelled_top_candidates(ws: Workspace, source: str, target: str, gold_path: Path):
    gold = read_gold(gold_path)
    top = ws.read_pair(source, target, "pair_top_candidates", missing="candidates")
    pairs = set(zip(gold["source_code"], gold["target_code"], strict=True))
    top = top[top["source_code"].isin(set(gold["source_code"]))]
    if len(top) < 10:
        raise InputError(
            f"{gold_path}: only {len(top)} of its source codes have candidates; calibration "
            "needs at least 10 labelled concepts"
        )
    correct = np.array(
        [(s, t) in pairs for s, t in zip(top["source_code"], top["target_code"], strict=True)],
        dtype=float,
    )
    model = top["method"].iloc[0].rsplit(":", 1)[0]
    return top["score"].to_numpy(float), correct, model


def calibrate(ws: Workspace, source: str, target: str, gold_path: str | Path) -> dict:
    """Fits and stores the calibration of the pair's model on gold-labelled best candidates;
    returns n, the out-of-fold Brier score (and the raw cosine's) and the reliability table
    of out-of-fold probabilities."""
    gold_path = Path(gold_path)
    scores, correct, model = _labelled_top_candidates(ws, source, target, gold_path)
    cal = fit_isotonic(scores, correct)
    # Judge it out of sample: an isotonic fit scored on its own data is calibrated by design.
    prob = out_of_fold(scores, correct)
    brier = float(np.mean((prob - correct) ** 2))
    with ws.transaction() as con:
        sql.run_internal(
            con,
            "insert_calibration",
            model=model,
            source=source,
            target=target,
            gold_file=str(gold_path.resolve()),
            n=len(scores),
            brier=brier,
            points=cal.to_json(),
        )
    return {
        "model": model,
        "n": len(scores),
        "brier": brier,
        "brier_raw_cosine": float(np.mean((np.clip(scores, 0, 1) - correct) ** 2)),
        "reliability": reliability_table(prob, correct),
    }


def load_calibration(con, model: str) -> Calibration | None:
    row = sql.run_internal(con, "latest_calibration", model=model).fetchone()
    return None if row is None else Calibration.from_json(row[0])
