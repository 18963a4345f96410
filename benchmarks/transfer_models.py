"""Does the best transfer model beat the best target-only model on the study group's data?

Runs ``evaluate --classifier auto`` (one-hot texts: the sites share one code space) from each
source setting to the target setting of ../shared/data/influenza-dtl, at target sizes 50, 100
and 200, and prints per source, size and seed: the best local row (the target-only model with
the highest test AUROC) and, for every transfer family and for the row inner CV chose
(``auto``), its AUROC minus the best local one with a 95 % paired-bootstrap interval on the
10,000 test patients (the summary: means over seeds, and how many seeds' intervals lie above
or below 0).

Seeds 0 and 1 were used while choosing the model families and their grids; the summary
reports the other seeds (``--report-from``) apart from them.

    python benchmarks/transfer_models.py                         # same, ita06, ita16; seeds 0-6
    python benchmarks/transfer_models.py --sources ita16 --seeds 3 --sizes 50
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd

from harmonize.core.workspace import Workspace
from harmonize.sites.patients import LabelSpec
from harmonize.sites.registry import PatientInput, add_site
from harmonize.transfer.experiment import EvalConfig, run_evaluation

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARMONIZE_SHARED", ROOT.parent / "shared")) / "data"
DATA = SHARED / "influenza-dtl" / "synthetic_data_v2"
TARGET_TRAIN = DATA / "target_train" / "findings_final_0814_seed2132231585_size10000.csv"
TARGET_TEST = DATA / "target_test" / "findings_final_0814_seed-1494714102_size10000.csv"
SOURCES = {
    "same": "findings_final_0814_seed1591536269_size10000.csv",
    "ita06": "findings_final_0814-portion1ita06round14_seed2016863826_size10000.csv",
    "ita16": "findings_final_0814-portion1ita16round14_seed1948253030_size10000.csv",
    "ita13": "findings_final_0814-portion1ita13round20_seed1708886178_size10000.csv",
    "ita27": "findings_final_0814-portion1ita27round9_seed1940262766_size10000.csv",
    "ita29": "findings_final_0814-portion1ita29round18_seed-1653352491_size10000.csv",
}
LABEL = LabelSpec("diagnosis", "I")
LOCAL = ("local", "local-cv", "nb-local")


def build(ws: Workspace, folder: Path, sources: list[str]) -> None:
    """The sites: one vocabulary (code = description; one-hot reads identities), no levels
    file (the levels get their default texts)."""
    columns = [c for c in pd.read_csv(TARGET_TEST, nrows=0).columns if c != "diagnosis"]
    vocab = folder / "vocab.csv"
    pd.DataFrame({"code": columns, "description": columns}).to_csv(vocab, index=False)
    add_site(ws, "target", vocab, patients=PatientInput(TARGET_TRAIN, LABEL, TARGET_TEST))
    for name in sources:
        patients = PatientInput(DATA / "source_train" / SOURCES[name], LABEL, test_fraction=0.01)
        add_site(ws, name, vocab, patients=patients)


def per_seed(result, source: str) -> pd.DataFrame:
    """Every transfer row's (and auto's) difference from the best local row, per size and
    seed, with the best local row's name and AUROC and the row's own AUROC."""
    rows = result.results
    cmp = result.comparisons.assign(source=source)
    keys = ["model", "scenario", "target_train_size", "seed"]
    auroc = rows.set_index(keys)["auroc"]
    direct = rows[rows["scenario"] == "direct"].set_index("seed")["auroc"]
    cmp["auroc"] = [
        direct[seed]
        if scenario == "direct" and model != "auto"
        else auroc[(model, scenario, size, seed)]
        for model, scenario, size, seed in cmp[keys].itertuples(index=False)
    ]
    cmp["local_auroc"] = cmp["auroc"] - cmp["difference"]
    cmp["row"] = cmp["model"].where(cmp["model"] == "auto", cmp["scenario"])
    return cmp


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", default="same,ita06,ita16")
    parser.add_argument("--sizes", default="50,100,200")
    parser.add_argument("--seeds", type=int, default=7)
    parser.add_argument("--report-from", type=int, default=2, help="first seed reported")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed run")
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--tie", type=float, default=0.0)
    parser.add_argument("--out", type=Path, help="CSV of every size x seed row")
    return parser.parse_args()


def evaluate_source(ws: Workspace, source: str, sizes: tuple[int, ...], args) -> pd.DataFrame:
    """:func:`per_seed` of ``evaluate --classifier auto`` from ``source`` to the target,
    printed with its time."""
    t0 = time.perf_counter()
    config = EvalConfig(
        source,
        "target",
        embedding="onehot",
        model="auto",
        target_sizes=sizes,
        seeds=args.seeds - args.first_seed,
        first_seed=args.first_seed,
        bootstrap=args.bootstrap,
        tie=args.tie,
    )
    frame = per_seed(run_evaluation(ws, config), source)
    print(f"{source}: {time.perf_counter() - t0:.0f}s", flush=True)
    show = ["row", "target_train_size", "seed", "versus", "auroc", "difference"]
    print(
        frame[show + ["difference_low", "difference_high"]].round(4).to_string(index=False),
        flush=True,
    )
    return frame


def summarise(table: pd.DataFrame, report_from: int) -> pd.DataFrame:
    """Per source, size and row, over the seeds from ``report_from``: the mean AUROCs and
    difference, and how many seeds' intervals lie above or below 0."""
    reported = table[table["seed"] >= report_from]
    return (
        reported.groupby(["source", "target_train_size", "row"], sort=False)
        .agg(
            seeds=("seed", "count"),
            best_local=("local_auroc", "mean"),
            auroc=("auroc", "mean"),
            diff=("difference", "mean"),
            low=("difference_low", "mean"),
            high=("difference_high", "mean"),
            ci_above_0=("difference_low", lambda v: int((v > 0).sum())),
            ci_below_0=("difference_high", lambda v: int((v < 0).sum())),
        )
        .reset_index()
    )


def main() -> None:
    args = parse_args()
    sources = args.sources.split(",")
    sizes = tuple(int(s) for s in args.sizes.split(","))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        build(ws, Path(tmp), sources)
        print(f"sites built in {time.perf_counter() - started:.0f}s", flush=True)
        frames = [evaluate_source(ws, source, sizes, args) for source in sources]
    table = pd.concat(frames, ignore_index=True)
    if args.out:
        table.to_csv(args.out, index=False)
    summary = summarise(table, args.report_from)
    print(
        f"\nseeds {args.report_from}..{args.seeds - 1} (not used for tuning); machine: "
        f"{platform.machine()}, {os.cpu_count()} CPU cores (shared); "
        f"{time.perf_counter() - started:.0f}s in all"
    )
    print(summary.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
