"""Replicates the study's transfer design on the influenza-dtl synthetic data: the full grid.

Sites: one target (10,000 training patients to subsample from, 10,000 test patients) and one
source site per shifted Bayesian network (10,000 patients each). Concept texts are exactly the
texts the paper's released vectors were made from, so ``precomputed:`` reads them. Models: the
study's CNN (max pooling) and the sum-pooling CNN for every embedding, and one-hot logistic
regression as the classical reference; every scenario, source, target size and seed.
Results go to reports/paper-replication.csv (+ -boot.npz, the bootstrap replicates, and
-times.json); the report is written from them by replication_report.py.

    nice -n 10 python benchmarks/paper_replication.py             # the full grid
    python benchmarks/paper_replication.py --quick                 # a smoke run
    python benchmarks/replication_report.py                        # the report, from the files
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import replication_grid as grid

from harmonize.core.workspace import Workspace
from harmonize.sites.patients import LabelSpec
from harmonize.sites.registry import PatientInput, add_site
from harmonize.transfer.experiment import _vectors

ROOT = Path(__file__).resolve().parents[1]
# ../shared from the project's root; from a git worktree one level deeper, ../../shared.
SHARED = next(
    (p / "shared" / "data" for p in ROOT.parents[:2] if (p / "shared" / "data").is_dir()),
    ROOT.parent / "shared" / "data",
)
DATA = SHARED / "influenza-dtl" / "synthetic_data_v2"
PAPER = SHARED / "paper-embeddings"
TARGET_TRAIN = DATA / "target_train" / "findings_final_0814_seed2132231585_size10000.csv"
TARGET_TEST = DATA / "target_test" / "findings_final_0814_seed-1494714102_size10000.csv"
SOURCES = {  # name: (file, one-hot logistic AUROC on the target test set, from shared/README.md)
    "same": ("findings_final_0814_seed1591536269_size10000.csv", 0.975),
    "ita06": ("findings_final_0814-portion1ita06round14_seed2016863826_size10000.csv", 0.954),
    "ita16": ("findings_final_0814-portion1ita16round14_seed1948253030_size10000.csv", 0.839),
    "ita13": ("findings_final_0814-portion1ita13round20_seed1708886178_size10000.csv", 0.789),
    "ita27": ("findings_final_0814-portion1ita27round9_seed1940262766_size10000.csv", 0.722),
    "ita29": ("findings_final_0814-portion1ita29round18_seed-1653352491_size10000.csv", 0.607),
}
PAPER_EMBEDDINGS = [
    "bert",
    "biobert",
    "clinicalbert",
    "negbert",
    "openai_ada002",
    "openai_small",
    "openai_large",
]
LABEL = LabelSpec("diagnosis", "I")


def write_inputs(folder: Path) -> tuple[Path, Path]:
    """The study's vocabulary (the paper's own concept texts) and the level texts."""
    texts = pd.read_parquet(PAPER / "bert.parquet", columns=["code", "state", "text"])
    present = texts[texts["state"] == "present"].set_index("code")["text"]
    columns = pd.read_csv(TARGET_TEST, nrows=0).columns
    findings = [c for c in columns if c not in ("diagnosis", "agegroup", "C0424781")]
    vocab = pd.DataFrame({"code": findings, "description": [present[c] for c in findings]})
    vocab = pd.concat(
        [
            vocab,
            pd.DataFrame(
                {"code": ["C0424781", "agegroup"], "description": ["temperature", "age group"]}
            ),
        ]
    )
    levels = [("C0424781", v, present[f"C0424781_{v}"]) for v in ("P", "A", "I", "M")]
    levels += [("agegroup", v, present[f"agegroup_{v}"]) for v in ("ls5", "ge6ls65", "ge64")]
    vocab_path, levels_path = folder / "vocab.csv", folder / "levels.csv"
    vocab.to_csv(vocab_path, index=False)
    pd.DataFrame(levels, columns=["code", "value", "text"]).to_csv(levels_path, index=False)
    return vocab_path, levels_path


def build_sites(ws: Workspace, folder: Path, sources: list[str]) -> None:
    vocab, levels = write_inputs(folder)
    add_site(
        ws,
        "target",
        vocab,
        replace=True,
        patients=PatientInput(TARGET_TRAIN, LABEL, test_patients=TARGET_TEST, levels=levels),
    )
    for name in sources:
        # Nearly all source patients train; the CNN holds out 20 % of them for validation.
        add_site(
            ws,
            name,
            vocab,
            replace=True,
            patients=PatientInput(
                DATA / "source_train" / SOURCES[name][0], LABEL, levels=levels, test_fraction=0.01
            ),
        )


EMBEDDINGS = ["onehot", "minilm", *PAPER_EMBEDDINGS]
SIZES = [50, 100, 200, 500, 1000]
# The CNNs: pooling and SGD schedule (epochs x steps of 32, learning rate; fine-tuning rate).
# "cnn" is the study's network with the schedule cnn_tuning.py chose (tuned on sources ita06 and
# ita13, seed 10, target pool patients); "cnn-study" keeps the previous one (the check that the
# new schedule pays off the tuning data runs on MiniLM only).
CNNS = {
    "cnn": {"pooling": "max", "epochs": 10, "steps": 50, "lr": 0.02, "finetune_lr": 0.02},
    "cnn-study": {"pooling": "max", "epochs": 20, "steps": 50, "lr": 0.01, "finetune_lr": 0.01},
    "cnn-sum": {"pooling": "sum", "epochs": 20, "steps": 50, "lr": 0.003, "finetune_lr": 0.003},
}
CNN_EMBEDDINGS = {"cnn-study": ("minilm",), "cnn-sum": ("minilm", "openai_large")}  # else all
PRIORITY = [  # the order parts run in (the rest after)
    ("logreg", "onehot"),
    ("cnn", "onehot"),
    ("cnn", "minilm"),
    ("cnn", "openai_large"),
    ("cnn", "bert"),
    ("cnn-study", "minilm"),
    ("cnn-sum", "minilm"),
    ("cnn", "openai_small"),
    ("cnn", "clinicalbert"),
    ("cnn", "biobert"),
    ("cnn", "negbert"),
    ("cnn", "openai_ada002"),
    ("cnn-sum", "openai_large"),
]
N_BOOT = 200


def embedding_spec(name: str) -> str:
    """The encoder name ``_vectors`` takes: the paper's released vectors are precomputed."""
    return name if name in ("onehot", "minilm") else f"precomputed:{PAPER / name}.parquet"


def cnn_settings(model: str, quick: bool = False):
    """(CNNClassifier with the model's pooling and schedule, its lr, its fine-tuning lr)."""
    from harmonize.transfer.models import CNNClassifier

    spec = CNNS[model]
    epochs, steps = (5, 20) if quick else (spec["epochs"], spec["steps"])
    settings = CNNClassifier(epochs=epochs, steps_per_epoch=steps, pooling=spec["pooling"])
    return settings, spec["lr"], spec["finetune_lr"]


_STUDY: dict = {}  # per worker process: the study's patients and bootstrap resamples


def _load(ws_root: str, sources: list[str], n_boot: int):
    """The worker's study, read once per process."""
    if ws_root not in _STUDY:
        started, cpu = time.perf_counter(), time.process_time()
        study = grid.load_study(Workspace(ws_root), sources)
        counts = grid.bootstrap_counts(len(study.test.y), n_boot)
        seconds = {"read patients wall": time.perf_counter() - started}
        seconds["read patients cpu"] = time.process_time() - cpu
        _STUDY[ws_root] = (study, counts, seconds)
        return study, counts, seconds
    study, counts, _ = _STUDY[ws_root]
    return study, counts, {}


def plan(args) -> list[tuple[str, str]]:
    """The grid's parts, (model, embedding), most needed first: a run cut short keeps the
    logistic reference and the study's CNN on the leading embeddings."""
    parts = [("logreg", "onehot")] if "logreg" in args.models else []
    for model in args.models:
        if model in CNNS or model == "auto":
            chosen = CNN_EMBEDDINGS.get(model, args.embeddings)
            parts += [(model, e) for e in args.embeddings if e in chosen]
    rank = {m: i for i, m in enumerate(PRIORITY)}
    return sorted(parts, key=lambda p: rank.get(p, len(rank)))


def run_part(ws_root: str, args: argparse.Namespace, part: tuple[str, str]) -> tuple[str, dict]:
    """One model on one embedding, saved at once under ``--out``/parts: a run cut short keeps
    every finished part. Returns (part name, its stage seconds)."""
    model, embedding = part
    name = f"{model}-{embedding}{args.tag}"
    started, cpu, began = time.perf_counter(), time.process_time(), time.time()

    def log(text: str) -> None:
        print(f"[{name} {time.perf_counter() - started:5.0f}s] {text}", flush=True)

    study, counts, seconds = _load(ws_root, args.sources, args.bootstrap)
    run = grid.GridRun(seconds=dict(seconds))
    if model == "logreg":
        grid.logreg_grid(study, args.sizes, args.seeds, counts, run)
    else:
        t0, c0 = time.perf_counter(), time.process_time()
        vectors = _vectors(Workspace(ws_root), embedding_spec(embedding), study.texts, "cpu")
        run.add_time("embed", t0, c0)
        if model == "auto":
            grid.transfer_grid(
                study, vectors, embedding, args.sizes, args.seeds, counts, run, log=log
            )
        else:
            settings, lr, finetune_lr = cnn_settings(model, args.quick)
            grid.cnn_grid(
                study, vectors, model, settings, args.sizes, args.seeds, counts, run,
                lr=lr, finetune_lr=finetune_lr, log=log,
            )  # fmt: skip
    frame = pd.DataFrame(run.rows).assign(embedding=embedding)
    args.parts.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.parts / f"{name}.csv", index=False)
    np.save(args.parts / f"{name}.npy", np.stack(run.replicates))
    record = {"began": began, "ended": time.time(), "cpu_s": time.process_time() - cpu}
    (args.parts / f"{name}.json").write_text(json.dumps(record | {"stages_s": run.seconds}))
    log(f"done: {len(frame)} models")
    return name, run.seconds


def merge_parts(folder: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Every finished part's rows and replicates (parts of earlier runs with other --tag too)."""
    done = sorted(p.stem for p in folder.glob("*.csv"))
    rows = pd.concat([pd.read_csv(folder / f"{p}.csv") for p in done], ignore_index=True)
    return rows, np.concatenate([np.load(folder / f"{p}.npy") for p in done])


def run_grid(ws_root: Path, args, log) -> dict:
    """Every part on ``args.workers`` processes; returns the summed stage seconds."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    parts = plan(args)
    seconds: dict[str, float] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        futures = [pool.submit(run_part, str(ws_root), args, p) for p in parts]
        for future in futures:
            part, stages = future.result()
            for key, value in stages.items():
                seconds[key] = seconds.get(key, 0.0) + value
            log(f"part {part} finished")
    return seconds


def save_rows(out: Path, name: str, rows: pd.DataFrame, replicates: np.ndarray, meta: dict) -> None:
    """``name``.csv: every model's metrics; ``name``-boot.npz: its bootstrap AUROC replicates
    (row i of the CSV is row i of the array; AUROC x 65535 as uint16); ``name``-times.json:
    the run's settings and where the time went."""
    out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out / f"{name}.csv", index=False, float_format="%.5f")
    scaled = np.round(np.nan_to_num(replicates, nan=0.0) * 65535).astype(np.uint16)
    np.savez_compressed(out / f"{name}-boot.npz", auroc=scaled)
    (out / f"{name}-times.json").write_text(json.dumps(meta, indent=1) + "\n")


def read_rows(folder: Path, name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """What :func:`save_rows` wrote: the rows and their AUROC replicates."""
    rows = pd.read_csv(folder / f"{name}.csv", keep_default_na=False, na_values=[""])
    return rows, np.load(folder / f"{name}-boot.npz")["auroc"].astype(np.float64) / 65535


def parse_args() -> argparse.Namespace:
    """The command line, with the defaults --quick implies filled in."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two sources, sizes 50 and 200")
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    parser.add_argument("--sources", help=f"comma-separated, from {', '.join(SOURCES)}")
    parser.add_argument("--sizes", help="comma-separated target training sizes")
    parser.add_argument("--embeddings", help=f"comma-separated, from {', '.join(EMBEDDINGS)}")
    parser.add_argument("--models", default=",".join([*CNNS, "logreg"]))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--bootstrap", type=int, default=N_BOOT)
    parser.add_argument("--tag", default="", help="a suffix for this run's part files")
    parser.add_argument("--workers", type=int, default=2, help="processes (one per CPU core)")
    parser.add_argument("--keep", type=Path, help="build the sites in this folder and keep it")
    parser.add_argument(
        "--merge-only", action="store_true", help="only merge the finished parts in --out"
    )
    parser.add_argument(
        "--into",
        type=Path,
        help="with --merge-only: fold the parts into this "
        "folder's grid files, replacing the rows they rerun",
    )
    parser.add_argument("--note", action="append", default=[], help="a line for the record")
    args = parser.parse_args()
    quick = args.quick
    args.sources = (
        args.sources.split(",") if args.sources else (["same", "ita16"] if quick else list(SOURCES))
    )
    unknown = [s for s in args.sources if s not in SOURCES]
    if unknown:
        parser.error(f"unknown source '{unknown[0]}': use {', '.join(SOURCES)}")
    args.sizes = (
        [int(s) for s in args.sizes.split(",")] if args.sizes else ([50, 200] if quick else SIZES)
    )
    args.embeddings = (
        args.embeddings.split(",")
        if args.embeddings
        else (["onehot", "minilm"] if quick else EMBEDDINGS)
    )
    args.models = args.models.split(",")
    if quick:
        args.seeds, args.bootstrap = 1, 50
    return args


def main() -> None:
    args = parse_args()
    quick = args.quick
    suffix = "-quick" if quick else ""
    args.parts = args.out / f"parts{suffix}"
    name = f"paper-replication{suffix}"
    if args.merge_only:
        rows, replicates = merge_parts(args.parts)
        meta = parts_meta(args, rows)
        if args.into:  # a rerun of some parts: the grid's record stays, with the notes added
            old, old_boot = read_rows(args.into, name)
            rows, replicates = grid.replace_rows(old, old_boot, rows, replicates)
            meta = json.loads((args.into / f"{name}-times.json").read_text())
            meta |= {"n_models": len(rows), "notes": [*meta.get("notes", []), *args.note]}
            meta["settings"]["models"] = sorted(set(rows["model"]))
        save_rows(args.into or args.out, name, rows, replicates, meta)
        print(f"merged {len(rows)} models into {(args.into or args.out) / name}.csv")
        return
    started, cpu = time.perf_counter(), time.process_time()

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f}s] {text}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        (root / "inputs").mkdir(parents=True, exist_ok=True)
        t0, c0 = time.perf_counter(), time.process_time()
        if not (root / "ws" / "harmonize.duckdb").exists():
            build_sites(Workspace(root / "ws"), root / "inputs", args.sources)
        build = {
            "build sites wall": time.perf_counter() - t0,
            "build sites cpu": time.process_time() - c0,
        }
        log("sites built")
        seconds = run_grid(root / "ws", args, log)
    rows, replicates = merge_parts(args.parts)
    meta = run_meta(args, rows, started, cpu, {**build, **seconds})
    if args.tag:  # an added pass: its own times file; the grid's settings stay the first run's
        (args.out / f"{name}-times{args.tag}.json").write_text(json.dumps(meta, indent=1) + "\n")
        meta = json.loads((args.out / f"{name}-times.json").read_text()) | {"n_models": len(rows)}
    save_rows(args.out, name, rows, replicates, meta)
    log(f"wrote {args.out / name}.csv ({len(rows)} models)")


def run_meta(
    args: argparse.Namespace, rows: pd.DataFrame, started: float, cpu: float, stages: dict
) -> dict:
    """The run's record: machine, load, wall and CPU time, time per stage, settings, command."""
    return {
        "machine": f"{platform.processor() or platform.machine()}, {_cores()} CPU cores, no GPU",
        "workers": args.workers,
        "load_average_at_end": list(np.round(_loadavg(), 2)),
        "wall_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(time.process_time() - cpu + _children_cpu(), 1),
        "stages_s": {k: round(v, 1) for k, v in stages.items()},
        "settings": {
            "sources": args.sources, "sizes": args.sizes, "seeds": args.seeds,
            "embeddings": args.embeddings, "models": args.models, "bootstrap": args.bootstrap,
            "cnns": {m: CNNS[m] for m in args.models if m in CNNS}, "quick": args.quick,
        },
        "command": "nice -n 10 python benchmarks/paper_replication.py " + " ".join(_argv()),
        "n_models": len(rows),
    }  # fmt: skip


def parts_meta(args, rows: pd.DataFrame) -> dict:
    """The run's record from its parts' own (``--merge-only``, e.g. after a run was cut short):
    summed CPU and stage seconds, wall from the first part's start to the last one's end."""
    records = [json.loads(p.read_text()) for p in sorted(args.parts.glob("*.json"))]
    stages: dict[str, float] = {}
    for record in records:
        for key, value in record["stages_s"].items():
            stages[key] = stages.get(key, 0.0) + value
    return {
        "machine": f"{platform.processor() or platform.machine()}, {_cores()} CPU cores, no GPU",
        "workers": args.workers,
        "load_average_at_end": list(np.round(_loadavg(), 2)),
        "wall_s": round(max(r["ended"] for r in records) - min(r["began"] for r in records), 1)
        if records
        else None,
        "cpu_s": round(sum(r["cpu_s"] for r in records), 1),
        "stages_s": {k: round(v, 1) for k, v in stages.items()},
        "settings": {
            "sources": args.sources, "sizes": args.sizes, "seeds": args.seeds,
            "embeddings": sorted(set(rows["embedding"])), "models": sorted(set(rows["model"])),
            "bootstrap": args.bootstrap, "quick": args.quick,
            "cnns": {m: CNNS[m] for m in sorted(set(rows["model"])) if m in CNNS},
        },
        "n_models": len(rows),
        "parts": sorted(p.stem for p in args.parts.glob("*.csv")),
    }  # fmt: skip


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _argv() -> list[str]:
    import sys

    return sys.argv[1:]


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _loadavg() -> tuple[float, float, float]:
    import os

    return os.getloadavg()


if __name__ == "__main__":
    main()
