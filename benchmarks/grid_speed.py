"""How much faster the grid's CNNs train stacked: CPU seconds per model, as a ratio.

``before``: each model alone, the study's way: the full-dimensional ConceptCNN (the first layer on
the embedding's own 768-3,072 dimensions), torch.optim.SGD, one model at a time (what
CNNClassifier.fit did before fit_many). ``after``: the same models in one fit_many call (stacked,
the first layer in the texts' own coordinates, the last-layer-only fine-tuning on fixed pooled
features). Same schedule for both; one source, every scenario and target size, one seed: the
grid's per-(embedding, source, seed) slice. The models are the same function (the tests check
the stacked trainer against torch's SGD on the full network), so only the time differs.

    nice -n 10 python benchmarks/grid_speed.py --embeddings bert,openai_large
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import paper_replication as pr
import replication_grid as grid

from harmonize.core.workspace import Workspace
from harmonize.transfer.experiment import _vectors

SOURCE = "ita16"


def jobs_for(study: grid.Study, sizes, lr: float):
    """(phase-1 jobs, a function giving phase-2 jobs from the direct model)."""
    from harmonize.transfer.models import FitJob

    src = study.sources[SOURCE]
    samples = [grid.target_sample(study.pool, n, 0) for n in sizes]
    first = [FitJob(src.ids, src.y, 0, lr)]
    first += [FitJob(s.ids, s.y, 0, lr) for s in samples]
    first += [FitJob((src.ids, s.ids), np.concatenate([src.y, s.y]), 0, lr) for s in samples]

    def second(init):
        return [FitJob(s.ids, s.y, 0, lr, init, part) for part in ("all", "head") for s in samples]

    return first, second


def one_at_a_time(vectors, job, settings) -> object:
    """The pre-fit_many training: full-dimensional network, torch.optim.SGD, dropout."""
    import torch

    from harmonize.transfer.cnn_training import _Batches, auroc, holdout
    from harmonize.transfer.models import ConceptCNN

    torch.manual_seed(job.random_state)
    ids = np.concatenate(job.ids) if isinstance(job.ids, tuple) else job.ids
    module = copy.deepcopy(job.init) if job.init is not None else ConceptCNN(vectors.shape[1])
    rng = np.random.default_rng(job.random_state)
    train_idx, val_idx = holdout(job.y, 0.2, rng)
    batches = _Batches(train_idx, settings.batch_size, rng)
    params = module.parameters() if job.train == "all" else module.fc.parameters()
    opt = torch.optim.SGD(params, lr=job.lr, momentum=0.9, nesterov=True, weight_decay=1e-3)
    v, ids_t, y_t = torch.as_tensor(vectors), torch.as_tensor(ids), torch.as_tensor(job.y)
    best, best_score = None, -np.inf
    for _ in range(settings.epochs):
        module.train()
        for _ in range(settings.steps_per_epoch):
            b = torch.as_tensor(batches.next())
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(v, ids_t[b]), y_t[b]).backward()
            opt.step()
        module.eval()
        with torch.no_grad():
            logits = module(v, ids_t[val_idx])
        score = auroc(job.y[val_idx], (logits[:, 1] - logits[:, 0]).numpy())
        if score > best_score:
            best, best_score = copy.deepcopy(module.state_dict()), score
    module.load_state_dict(best)
    return module.eval()


def measure(study, vectors, sizes, settings, lr) -> dict:
    import torch

    from harmonize.transfer.models import fit_many

    torch.set_num_threads(1)
    first, second = jobs_for(study, sizes, lr)
    cpu = time.process_time()
    direct = one_at_a_time(vectors, first[0], settings)
    for job in [*first[1:], *second(direct)]:
        one_at_a_time(vectors, job, settings)
    before = time.process_time() - cpu
    cpu = time.process_time()
    fitted = fit_many(settings, vectors, first)
    fit_many(settings, vectors, second(fitted[0].module_)[: len(sizes)])
    fit_many(settings, vectors, second(fitted[0].module_)[len(sizes) :])
    after = time.process_time() - cpu
    n = len(first) + 2 * len(sizes)
    return {
        "models": n,
        "before_cpu_s_per_model": round(before / n, 3),
        "after_cpu_s_per_model": round(after / n, 3),
        "speedup": round(before / after, 2),
    }


def main() -> None:
    from harmonize.transfer.models import CNNClassifier

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", default="onehot,bert,openai_large")
    parser.add_argument("--sizes", default="50,100,200,500,1000")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--out", type=Path, default=pr.ROOT / "reports" / "grid-speed.json")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    settings = CNNClassifier(epochs=args.epochs, steps_per_epoch=args.steps)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "inputs").mkdir()
        ws = Workspace(root / "ws")
        pr.build_sites(ws, root / "inputs", [SOURCE])
        study = grid.load_study(ws, [SOURCE])
        for embedding in args.embeddings.split(","):
            vectors = _vectors(ws, pr.embedding_spec(embedding), study.texts, "cpu")
            results[embedding] = measure(study, vectors, sizes, settings, 0.02)
            results[embedding]["dim"] = int(vectors.shape[1])
            print(embedding, results[embedding], flush=True)
    document = {
        "machine": "2 CPU cores, shared with other jobs; torch on one thread; CPU seconds",
        "command": "nice -n 10 python benchmarks/grid_speed.py " + " ".join(sys.argv[1:]),
        "schedule": f"{args.epochs} epochs x {args.steps} steps of 32",
        "results": results,
    }
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
