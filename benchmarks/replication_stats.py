"""A grid's result files (rows, bootstrap replicates, settings) averaged over seeds per
configuration, with percentile and paired bootstrap intervals: what the replication report's
sections read (replication_report.py, replication_heterogeneous.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

KEY = ["model", "embedding", "scenario", "source_site", "target_train_size"]
TRANSFER = ("direct", "finetune-head", "finetune-all", "pooled", "transfer")


class Grid:
    """One grid's rows and replicates, averaged over seeds per configuration."""

    def __init__(self, folder: Path, name: str, extra_key: tuple[str, ...] = ()):
        rows = pd.read_csv(folder / f"{name}.csv", keep_default_na=False, na_values=[""])
        rows["source_site"] = rows["source_site"].fillna("").astype(str)
        boot = np.load(folder / f"{name}-boot.npz")["auroc"].astype(np.float64) / 65535
        self.meta = json.loads((folder / f"{name}-times.json").read_text())
        self.key = [*extra_key, *KEY]
        groups = rows.groupby(self.key, sort=False)
        index = list(groups.indices.items())
        self.configs = pd.DataFrame([k for k, _ in index], columns=self.key)
        self.configs["auroc"] = [rows["auroc"].to_numpy()[i].mean() for _, i in index]
        self.configs["seeds"] = [len(i) for _, i in index]
        self.boot = np.stack([boot[i].mean(axis=0) for _, i in index])
        self.rows = rows

    def select(self, **where) -> pd.DataFrame:
        mask = np.ones(len(self.configs), dtype=bool)
        for column, value in where.items():
            values = value if isinstance(value, (list, tuple, set)) else [value]
            mask &= self.configs[column].isin(values).to_numpy()
        return self.configs[mask]

    def ci(self, index) -> tuple[float, float]:
        """Interval of one configuration, or of the mean of several (their replicates' mean)."""
        reps = self.boot[np.atleast_1d(index)].mean(axis=0)
        return tuple(np.percentile(reps, [2.5, 97.5]))

    def diff(self, a, b) -> tuple[float, float, float]:
        """(mean AUROC of a - of b, paired 95 % interval)."""
        ia, ib = np.atleast_1d(a), np.atleast_1d(b)
        d = self.boot[ia].mean(axis=0) - self.boot[ib].mean(axis=0)
        point = (
            self.configs["auroc"].to_numpy()[ia].mean()
            - self.configs["auroc"].to_numpy()[ib].mean()
        )
        low, high = np.percentile(d, [2.5, 97.5])
        return point, low, high


def fmt_ci(point: float, low: float, high: float, sign: bool = False) -> str:
    f = "{:+.3f}" if sign else "{:.3f}"
    return f"{f.format(point)} [{f.format(low)}, {f.format(high)}]"


def best(frame: pd.DataFrame) -> int:
    return int(frame["auroc"].idxmax())


def name_of(g: Grid, i: int) -> str:
    c = g.configs.loc[i]
    return f"{c['model']} {c['embedding']} {c['scenario']}"
