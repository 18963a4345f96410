"""Tunes the concept CNN beyond the study (pooling, learning rate, steps) on data the grid's
comparisons do not use: two of the six sources (ita06, ita13), seed 10 (the grid uses 0-2), and
AUROC on 3,000 target *training-pool* patients that no tuning model trains on (never the test
patients). Prints one row per setting and scenario; what it picks is then checked on the grid
(other sources and seeds, the test patients) before it is kept.

    nice -n 10 python benchmarks/cnn_tuning.py --embeddings bert,openai_small
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import paper_replication as pr
import replication_grid as grid

from harmonize.core.workspace import Workspace
from harmonize.transfer.experiment import _vectors, stratified_sample

TUNE_SOURCES = ["ita06", "ita13"]
TUNE_SEED = 10
HELD_OUT = 3000
SETTINGS = {  # name: (pooling, epochs, steps per epoch, lr)
    "max 20x50 lr.01 (grid default)": ("max", 20, 50, 0.01),
    "max 10x50 lr.02": ("max", 10, 50, 0.02),
    "max 10x25 lr.04": ("max", 10, 25, 0.04),
    "sum 20x50 lr.01": ("sum", 20, 50, 0.01),
    "sum 10x50 lr.02": ("sum", 10, 50, 0.02),
    "sum 10x25 lr.04": ("sum", 10, 25, 0.04),
    "sum 20x50 lr.003": ("sum", 20, 50, 0.003),
    "sum 20x50 lr.001": ("sum", 20, 50, 0.001),
    "attention 20x50 lr.01": ("attention", 20, 50, 0.01),
    "attention 20x50 lr.003": ("attention", 20, 50, 0.003),
}


def tune_split(study: grid.Study) -> tuple[grid.Study, object]:
    """(the study with a pool that leaves out HELD_OUT patients, those patients)."""
    rng = np.random.default_rng(TUNE_SEED)
    order = rng.permutation(len(study.pool.y))
    held, rest = np.sort(order[:HELD_OUT]), np.sort(order[HELD_OUT:])
    tuned = grid.Study(study.sources, study.pool.subset(rest), study.test, study.texts)
    return tuned, study.pool.subset(held)


def run_setting(study, held, vectors, name: str, sizes, log) -> list[dict]:
    from harmonize.transfer.models import CNNClassifier, FitJob, fit_many

    pooling, epochs, steps, lr = SETTINGS[name]
    settings = CNNClassifier(epochs=epochs, steps_per_epoch=steps, pooling=pooling)
    rng = np.random.default_rng(TUNE_SEED)
    samples = {n: study.pool.subset(stratified_sample(study.pool.y, n, rng)) for n in sizes}
    cells, jobs = [], []
    for source, src in study.sources.items():
        cells.append(("direct", source, 0))
        jobs.append(FitJob(src.ids, src.y, TUNE_SEED, lr))
    for n, s in samples.items():
        cells.append(("local", "", n))
        jobs.append(FitJob(s.ids, s.y, TUNE_SEED, lr))
    started = time.process_time()
    first = dict(zip(cells, fit_many(settings, vectors, jobs), strict=True))
    tune_cells, tune_jobs = [], []
    for source in study.sources:
        for n, s in samples.items():
            init = first["direct", source, 0].module_
            tune_cells.append(("finetune-all", source, n))
            tune_jobs.append(FitJob(s.ids, s.y, TUNE_SEED, lr, init, "all"))
    tuned = dict(zip(tune_cells, fit_many(settings, vectors, tune_jobs), strict=True))
    cpu = time.process_time() - started
    rows = []
    for (scenario, source, n), clf in {**first, **tuned}.items():
        p = clf.predict_proba(vectors, held.ids)[:, 1]
        auc = grid.weighted_aurocs(held.y, p, np.ones((1, len(p)), dtype=int))[0]
        rows.append(
            {"setting": name, "scenario": scenario, "source": source, "size": n, "auroc": auc}
        )
    log(f"{name}: {len(jobs) + len(tune_jobs)} models, {cpu:.0f} CPU s")
    return [dict(r, cpu_s=cpu) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", default="bert,openai_small")
    parser.add_argument("--settings", help="comma-separated names; default all")
    parser.add_argument("--out", type=Path, default=pr.ROOT / "reports" / "cnn-tuning.csv")
    args = parser.parse_args()
    names = args.settings.split(",") if args.settings else list(SETTINGS)
    started = time.perf_counter()

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f}s] {text}", flush=True)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "inputs").mkdir()
        ws = Workspace(root / "ws")
        pr.build_sites(ws, root / "inputs", TUNE_SOURCES)
        study, held = tune_split(grid.load_study(ws, TUNE_SOURCES))
        for embedding in args.embeddings.split(","):
            vectors = _vectors(ws, pr.embedding_spec(embedding), study.texts, "cpu")
            for name in names:
                for row in run_setting(study, held, vectors, name, (50, 200), log):
                    rows.append(dict(row, embedding=embedding))
    frame = pd.DataFrame(rows)
    frame.to_csv(args.out, index=False, float_format="%.4f")
    table = frame.pivot_table(
        index="setting", columns=["scenario", "size"], values="auroc", aggfunc="mean"
    )
    print(table.round(3).to_string())
    print(frame.groupby("setting")["cpu_s"].mean().round(1).to_string())


if __name__ == "__main__":
    main()
