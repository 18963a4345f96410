"""The study's grid as a few stacked trainings: every model of one embedding trained together.

For one embedding and all seeds: phase 1 trains every direct (source only), local (target only)
and pooled model at once; phase 2 fine-tunes every direct model on every target sample (the
whole network at once, then the last layer alone, which needs no first layer per step). Each
model is scored on the target's test patients with the same bootstrap resamples, so any two
models' AUROC replicates differ pairwise (a paired bootstrap of their difference).

Used by paper_replication.py (the study's sites) and heterogeneous.py (two sites whose findings
differ).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harmonize.transfer.encounters import Encounters
from harmonize.transfer.experiment import FINETUNE_LR, stratified_sample

CNN_SCENARIOS = ("local", "direct", "finetune-head", "finetune-all", "pooled")
LOGREG_SCENARIOS = ("local", "direct", "pooled")


@dataclass
class Study:
    """The grid's patients: source sites' training patients, the target's training pool and
    test patients, all indexing one list of texts."""

    sources: dict[str, Encounters]
    pool: Encounters
    test: Encounters
    texts: list[str]


@dataclass
class Cell:
    """One trained model's place in the grid."""

    model: str
    scenario: str
    source: str  # "" for local models
    size: int  # target training patients; 0 for direct
    seed: int


@dataclass
class GridRun:
    """Rows of metrics, each row's bootstrap AUROC replicates, and where the time went."""

    rows: list[dict] = field(default_factory=list)
    replicates: list[np.ndarray] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def add_time(self, stage: str, started: float, cpu_started: float) -> None:
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        self.seconds[f"{stage} wall"] = self.seconds.get(f"{stage} wall", 0.0) + wall
        self.seconds[f"{stage} cpu"] = self.seconds.get(f"{stage} cpu", 0.0) + cpu


def target_sample(pool: Encounters, size: int, seed: int) -> Encounters:
    """The target patients a model with ``size`` patients and ``seed`` trains on: the draw
    ``harmonize evaluate`` makes, so every model of one size and seed sees the same patients."""
    return pool.subset(stratified_sample(pool.y, size, np.random.default_rng(seed * 1000 + size)))


def bootstrap_counts(n: int, n_boot: int, random_state: int = 0) -> np.ndarray:
    """(n_boot, n) how often each test patient is drawn in each resample."""
    rng = np.random.default_rng(random_state)
    draws = rng.integers(0, n, size=(n_boot, n)) + (np.arange(n_boot) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n)


def weighted_aurocs(y: np.ndarray, p: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The AUROC of ``p`` in each resample (rows of ``counts``), ties counted half.

    >>> y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9])
    >>> weighted_aurocs(y, p, np.ones((1, 4), dtype=int)).tolist()
    [0.75]
    """
    order = np.argsort(p, kind="stable")
    p_sorted, y_sorted = p[order], y[order] == 1
    starts = np.flatnonzero(np.r_[True, p_sorted[1:] != p_sorted[:-1]])
    w = counts[:, order].astype(np.float64)
    pos = np.add.reduceat(np.where(y_sorted, w, 0.0), starts, axis=1)
    neg = np.add.reduceat(np.where(y_sorted, 0.0, w), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos * (below + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg)


def score(run: GridRun, cell: Cell, test: Encounters, p: np.ndarray, counts: np.ndarray) -> None:
    """Adds the cell's test metrics (AUROC with its 95 % bootstrap interval, AUPRC, accuracy)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    replicates = weighted_aurocs(test.y, p, counts)
    low, high = np.nanpercentile(replicates, [2.5, 97.5])
    run.rows.append(
        {
            "model": cell.model,
            "scenario": cell.scenario,
            "source_site": cell.source,
            "target_train_size": cell.size,
            "seed": cell.seed,
            "auroc": float(roc_auc_score(test.y, p)),
            "auprc": float(average_precision_score(test.y, p)),
            "accuracy": float(np.mean((p >= 0.5) == (test.y == 1))),
            "auroc_low": float(low),
            "auroc_high": float(high),
        }
    )
    run.replicates.append(replicates.astype(np.float32))


def _pooled_ids(source: Encounters, sample: Encounters) -> np.ndarray:
    width = max(source.ids.shape[1], sample.ids.shape[1])

    def widen(ids):
        pad = np.repeat(ids[:, :1], width - ids.shape[1], axis=1)
        return np.concatenate([ids, pad], axis=1)

    return np.concatenate([widen(source.ids), widen(sample.ids)])


def cnn_grid(
    study: Study,
    vectors: np.ndarray,
    model: str,
    settings,
    sizes: Iterable[int],
    seeds: int,
    counts: np.ndarray,
    run: GridRun,
    lr: float = 0.01,
    finetune_lr: float = FINETUNE_LR,
    log: Callable[[str], None] = lambda _: None,
) -> None:
    """Every CNN scenario x source x size x seed for one embedding, in three stacked trainings.
    ``settings`` is a CNNClassifier holding the shared hyperparameters."""
    from harmonize.transfer.models import FitJob, fit_many

    sizes = list(sizes)
    samples = {(n, s): target_sample(study.pool, n, s) for n in sizes for s in range(seeds)}
    cells, jobs = [], []
    for seed in range(seeds):
        for name, src in study.sources.items():
            cells.append(Cell(model, "direct", name, 0, seed))
            jobs.append(FitJob(src.ids, src.y, seed, lr))
        for n in sizes:
            sample = samples[n, seed]
            cells.append(Cell(model, "local", "", n, seed))
            jobs.append(FitJob(sample.ids, sample.y, seed, lr))
            for name, src in study.sources.items():
                cells.append(Cell(model, "pooled", name, n, seed))
                y = np.concatenate([src.y, sample.y])
                jobs.append(FitJob((src.ids, sample.ids), y, seed, lr))
    started, cpu = time.perf_counter(), time.process_time()
    fitted = fit_many(settings, vectors, jobs)
    run.add_time("train direct/local/pooled", started, cpu)
    log(
        f"  {model}: {len(jobs)} direct/local/pooled models in {time.perf_counter() - started:.0f}s"
    )
    direct = {
        (c.source, c.seed): f for c, f in zip(cells, fitted, strict=True) if c.scenario == "direct"
    }
    _predict(study, vectors, cells, fitted, counts, run)
    for part, scenario in (("all", "finetune-all"), ("head", "finetune-head")):
        cells, jobs = [], []
        for seed in range(seeds):
            for n in sizes:
                sample = samples[n, seed]
                for name in study.sources:
                    init = direct[name, seed].module_
                    cells.append(Cell(model, scenario, name, n, seed))
                    jobs.append(FitJob(sample.ids, sample.y, seed, finetune_lr, init, part))
        started, cpu = time.perf_counter(), time.process_time()
        fitted = fit_many(settings, vectors, jobs)
        run.add_time(f"train {scenario}", started, cpu)
        log(f"  {model}: {len(jobs)} {scenario} models in {time.perf_counter() - started:.0f}s")
        _predict(study, vectors, cells, fitted, counts, run)


def _predict(study: Study, vectors, cells: list[Cell], fitted: list, counts, run: GridRun) -> None:
    """Scores each fitted model on the target's test patients."""
    started, cpu = time.perf_counter(), time.process_time()
    for cell, clf in zip(cells, fitted, strict=True):
        p = clf.predict_proba(vectors, study.test.ids)[:, 1]
        score(run, cell, study.test, p, counts)
    run.add_time("predict + score", started, cpu)


def logreg_grid(
    study: Study, sizes: Iterable[int], seeds: int, counts: np.ndarray, run: GridRun
) -> None:
    """One-hot logistic regression: local, direct and pooled (the sites share one code space)."""
    from harmonize.transfer.baseline import OneHotLogistic

    eye = np.eye(len(study.texts), dtype=np.float32)
    started, cpu = time.perf_counter(), time.process_time()
    direct = {}
    for name, src in study.sources.items():
        direct[name] = OneHotLogistic().fit(eye, src.ids, src.y)
    for seed in range(seeds):
        for name, clf in direct.items():
            p = clf.predict_proba(eye, study.test.ids)[:, 1]
            score(run, Cell("logreg", "direct", name, 0, seed), study.test, p, counts)
        for n in sizes:
            sample = target_sample(study.pool, n, seed)
            clf = OneHotLogistic(random_state=seed).fit(eye, sample.ids, sample.y)
            p = clf.predict_proba(eye, study.test.ids)[:, 1]
            score(run, Cell("logreg", "local", "", n, seed), study.test, p, counts)
            for name, src in study.sources.items():
                y = np.concatenate([src.y, sample.y])
                clf = OneHotLogistic(random_state=seed).fit(eye, _pooled_ids(src, sample), y)
                p = clf.predict_proba(eye, study.test.ids)[:, 1]
                score(run, Cell("logreg", "pooled", name, n, seed), study.test, p, counts)
    run.add_time("logreg", started, cpu)


def load_study(ws, sources: Iterable[str], target: str = "target", **reading) -> Study:
    """The sites' patients from the workspace, in one shared text list; ``reading`` (reading,
    via, gold) says how the target is read, as for ``load_encounters``."""
    from harmonize.transfer.encounters import load_encounters

    tgt = load_encounters(ws, target, **reading)
    srcs = {name: load_encounters(ws, name, "native") for name in sources}
    texts = [t for e in (*srcs.values(), tgt) for t in e.texts]
    vocabulary = {t: i for i, t in enumerate(dict.fromkeys(texts))}
    tgt = tgt.reindex(vocabulary)
    return Study(
        {name: e.reindex(vocabulary).subset(e.split == "train") for name, e in srcs.items()},
        tgt.subset(tgt.split == "train"),
        tgt.subset(tgt.split == "test"),
        list(vocabulary),
    )


def transfer_grid(
    study: Study,
    vectors: np.ndarray,
    embedding: str,
    sizes: Iterable[int],
    seeds: int,
    counts: np.ndarray,
    run: GridRun,
    log: Callable[[str], None] = lambda _: None,
) -> None:
    """The logistic transfer families of harmonize.transfer.auto (L2-SP prior, embedding-tied
    source weights, stacking, naive Bayes with a source prior; each family's setting by inner CV
    on the target sample alone) and ``auto``, the best of them by inner CV. Rows: model = the
    family, scenario = local (never sees the source), direct, transfer, or auto."""
    from harmonize.transfer.auto import LOCAL_FAMILIES, choose_and_fit, fit_source
    from harmonize.transfer.experiment import DEFAULT_TIE, EvalConfig

    defaults = EvalConfig("source", "target")  # evaluate --classifier auto's inner CV
    tie = 0.0 if embedding == "onehot" else DEFAULT_TIE
    started, cpu = time.perf_counter(), time.process_time()
    for name, src in study.sources.items():
        source = fit_source(vectors, src.ids, src.y, tie, study.texts)
        direct = _sigmoid(source.model.decision(vectors, study.test.ids))
        for seed in range(seeds):
            score(run, Cell("direct-tied", "direct", name, 0, seed), study.test, direct, counts)
            for n in sizes:
                sample = target_sample(study.pool, n, seed)
                choice = choose_and_fit(
                    vectors, source, sample.ids, sample.y, study.test.ids,
                    folds=defaults.inner_folds, repeats=defaults.inner_repeats, random_state=seed,
                )  # fmt: skip
                for family, scores in choice.test_scores.items():
                    if family == "direct":
                        continue
                    scenario = (
                        "auto"
                        if family == "auto"
                        else ("local" if family in LOCAL_FAMILIES else "transfer")
                    )
                    if scenario == "local" and name != next(iter(study.sources)):
                        continue  # a local family does not depend on the source: once
                    cell = Cell(family, scenario, "" if scenario == "local" else name, n, seed)
                    score(run, cell, study.test, _sigmoid(scores), counts)
        log(f"  transfer families from {name}: {time.perf_counter() - started:.0f}s")
    run.add_time("transfer families", started, cpu)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


ROW_KEY = ["model", "embedding", "scenario", "source_site", "target_train_size", "seed"]


def replace_rows(
    old: pd.DataFrame,
    old_replicates: np.ndarray,
    new: pd.DataFrame,
    new_replicates: np.ndarray,
    key: tuple[str, ...] = (),
) -> tuple[pd.DataFrame, np.ndarray]:
    """``old``'s rows (and replicates, row for row) with every row that ``new`` has again
    (same model, embedding, scenario, source, size and seed) replaced by ``new``'s, and
    ``new``'s other rows added: a rerun of some parts folded into a finished grid (``key``:
    more columns that tell rows apart, such as the reading)."""

    def keys(frame: pd.DataFrame) -> pd.Series:
        return frame[[*key, *ROW_KEY]].fillna("").astype(str).agg("|".join, axis=1)

    keep = ~keys(old).isin(set(keys(new))).to_numpy()
    rows = pd.concat([old[keep], new], ignore_index=True)
    return rows, np.concatenate([old_replicates[keep], new_replicates])
