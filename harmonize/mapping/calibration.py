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

import numpy as np
import pandas as pd

from harmonize.core import sql
from harmonize.core.errors import InputError
from harmonize.core.results import TableResult
from harmonize.core.workspace import Workspace
from harmonize.mapping.metrics import read_gold


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


@dataclass(frozen=True)
class CalibrationReport(TableResult):
    """A calibration fitted and stored for ``model``: ``n`` labelled concepts, the out-of-fold
    Brier score (and the raw cosine's, read as a probability), and the reliability table of
    out-of-fold probabilities (:meth:`to_frame`)."""

    model: str
    n: int
    brier: float
    brier_raw_cosine: float
    reliability: pd.DataFrame
    calibration: Calibration

    @property
    def message(self) -> str:
        return (
            f"calibrated model {self.model} on {self.n} labelled concepts: Brier "
            f"{self.brier:.3f} (raw cosine as a probability: {self.brier_raw_cosine:.3f})"
        )

    def to_frame(self) -> pd.DataFrame:
        return self.reliability.copy()


def calibrate(ws: Workspace, source: str, target: str, gold_path: str | Path) -> CalibrationReport:
    """Fits and stores the calibration of the pair's model on gold-labelled best candidates;
    later maps with that model store it as each mapping's ``confidence``.

    >>> import pathlib, tempfile
    >>> from harmonize.index.site_index import build_site_index
    >>> from harmonize.mapping.pipeline import map_sites
    >>> from harmonize.sites.registry import add_site
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> words = "fever cough rash pain nausea itch chills cramps fatigue swelling".split()
    >>> for site, form in (("a", "{} reported"), ("b", "{}")):
    ...     rows = "".join(f"{site.upper()}{i},{form.format(w)}\\n" for i, w in enumerate(words))
    ...     _ = (root / f"{site}.csv").write_text("code,description\\n" + rows)
    >>> gold = "".join(f"B{i},A{i}\\n" for i in range(10))
    >>> _ = (root / "gold.csv").write_text("source_code,target_code\\n" + gold)
    >>> ws = Workspace(root / "ws")
    >>> for site in ("a", "b"):
    ...     _ = add_site(ws, site, root / f"{site}.csv")
    ...     _ = build_site_index(ws, site, "lexical", device="cpu")
    >>> _ = map_sites(ws, "b", "a", model="lexical", k=1)
    >>> report = calibrate(ws, "b", "a", root / "gold.csv")
    >>> report.model, report.n, list(report.to_frame().columns)
    ('lexical', 10, ['bin', 'n', 'predicted', 'observed'])
    """
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
    raw = float(np.mean((np.clip(scores, 0, 1) - correct) ** 2))
    return CalibrationReport(model, len(scores), brier, raw, reliability_table(prob, correct), cal)


def load_calibration(con, model: str) -> Calibration | None:
    row = sql.run_internal(con, "latest_calibration", model=model).fetchone()
    return None if row is None else Calibration.from_json(row[0])
