"""The heterogeneous-site benchmark: two sites that share 6 of their 14 findings
(harmonize.datasets.heterogeneous), every model and scenario, the target read natively,
through the MiniLM mapping and through the true mapping. Writes reports/heterogeneous-sites.csv
(+ -boot.npz, -times.json); replication_report.py reports it.

    nice -n 10 python benchmarks/heterogeneous.py            # 8,000 source, 10,000 + 10,000 target
    python benchmarks/heterogeneous.py --quick
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import replication_grid as grid
from paper_replication import CNNS, ROOT, cnn_settings, save_rows

from harmonize.core.workspace import Workspace
from harmonize.datasets.heterogeneous import add_heterogeneous_sites, heterogeneous_world
from harmonize.index.site_index import build_site_index
from harmonize.mapping.pipeline import map_sites
from harmonize.transfer.experiment import _vectors

READINGS = ("native", "mapped", "oracle")


def build(root: Path, args, log) -> tuple[Workspace, pd.DataFrame]:
    """The two sites, their MiniLM indexes and the target -> source mapping; the gold file."""
    world = heterogeneous_world(args.n_source, args.n_target, random_state=0)
    ws = Workspace(root / "ws")
    for message in add_heterogeneous_sites(ws, world, root):
        log(message)
    for site in ("source", "target"):
        log(build_site_index(ws, site, "minilm").message)
    log(map_sites(ws, "target", "source", model="minilm", k=5).summary)
    gold = world.truth.rename(columns={"target_code": "source_code", "source_code": "target_code"})
    return ws, gold[["source_code", "target_code"]]


def run(ws: Workspace, gold: pd.DataFrame, args, log):
    frames, replicates, seconds = [], [], {}
    for reading in READINGS:
        kwargs = {"reading": reading}
        if reading != "native":
            kwargs |= {"via": "source", "gold": gold if reading == "oracle" else None}
        study = grid.load_study(ws, ["source"], "target", **kwargs)
        counts = grid.bootstrap_counts(len(study.test.y), args.bootstrap)
        out = grid.GridRun()
        for embedding in args.embeddings:
            vectors = _vectors(ws, embedding, study.texts, "cpu")
            for model in args.models:
                if model not in CNNS:
                    continue
                before = len(out.rows)
                settings, lr, finetune_lr = cnn_settings(model, args.quick)
                grid.cnn_grid(
                    study, vectors, model, settings, args.sizes, args.seeds, counts, out,
                    lr=lr, finetune_lr=finetune_lr,
                )  # fmt: skip
                frames.append(
                    pd.DataFrame(out.rows[before:]).assign(embedding=embedding, reading=reading)
                )
                log(f"{reading} {model} {embedding}: {len(out.rows) - before} models")
        if "auto" in args.models:
            for embedding in args.embeddings:
                vectors = _vectors(ws, embedding, study.texts, "cpu")
                before = len(out.rows)
                grid.transfer_grid(study, vectors, embedding, args.sizes, args.seeds, counts, out)
                frames.append(
                    pd.DataFrame(out.rows[before:]).assign(embedding=embedding, reading=reading)
                )
                log(f"{reading} transfer families {embedding}: {len(out.rows) - before} models")
        if "logreg" in args.models:
            before = len(out.rows)
            grid.logreg_grid(study, args.sizes, args.seeds, counts, out)
            frames.append(
                pd.DataFrame(out.rows[before:]).assign(embedding="onehot", reading=reading)
            )
            log(f"{reading} logreg: {len(out.rows) - before} models")
        replicates.extend(out.replicates)
        for key, value in out.seconds.items():
            seconds[key] = seconds.get(key, 0.0) + value
    return pd.concat(frames, ignore_index=True), np.stack(replicates), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    parser.add_argument("--models", default="cnn,cnn-sum,logreg")
    parser.add_argument("--embeddings", default="minilm,onehot")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--append",
        action="store_true",
        help="fold these models' rows into the existing files (a rerun replaces its rows)",
    )
    args = parser.parse_args()
    args.models, args.embeddings = args.models.split(","), args.embeddings.split(",")
    args.sizes = [50, 100, 200, 400] if not args.quick else [50, 200]
    args.n_source, args.n_target = (8000, 20000) if not args.quick else (1000, 2000)
    args.bootstrap = 200 if not args.quick else 50
    if args.quick:
        args.seeds = 1
    started, cpu = time.perf_counter(), time.process_time()

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f}s] {text}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        ws, gold = build(Path(tmp), args, log)
        rows, replicates, seconds = run(ws, gold, args, log)
    meta = {
        "wall_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(time.process_time() - cpu, 1),
        "stages_s": {k: round(v, 1) for k, v in seconds.items()},
        "settings": {
            "n_source": args.n_source, "n_target": args.n_target, "sizes": args.sizes,
            "seeds": args.seeds, "embeddings": args.embeddings, "models": args.models,
            "cnns": {m: CNNS[m] for m in args.models if m in CNNS}, "bootstrap": args.bootstrap,
        },
    }  # fmt: skip
    name = "heterogeneous-sites" + ("-quick" if args.quick else "")
    if args.append:  # the same sites and resamples (seeded), so rows of both runs pair up
        old = pd.read_csv(args.out / f"{name}.csv", keep_default_na=False, na_values=[""])
        boot = np.load(args.out / f"{name}-boot.npz")["auroc"].astype(np.float64) / 65535
        first = json.loads((args.out / f"{name}-times.json").read_text())
        first["appended"] = first.get("appended", []) + [meta]
        rows, replicates = grid.replace_rows(old, boot, rows, replicates, key=("reading",))
        meta = first
    save_rows(args.out, name, rows, replicates, meta)
    log(f"wrote {args.out / name}.csv ({len(rows)} models)")
    print(json.dumps(meta["stages_s"]))


if __name__ == "__main__":
    main()
