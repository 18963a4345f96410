"""How much room the heterogeneous sites leave for transfer: the target's ceiling and the best
case of naive-Bayes transfer, both independent of `harmonize map`.

On the sites of harmonize.datasets.heterogeneous (14 target findings, the source from the ita16
network), it measures on fresh target test patients:

- the ceiling: naive Bayes trained on a pool of target patients (``--pool``, 15,000) alone;
- ``nb-local``: naive Bayes on n target patients alone (flat prior, m = 1);
- ``nb-eb, true mapping``: nb-eb (harmonize.transfer.eb) on the same n, its source prior lent
  through the TRUE mapping, a merged target finding given the source's frequency of "either
  part present" (the exact prior a perfect mapping could give), target-only findings flat.

The paired difference of the last two is the most this kind of transfer can add on these
sites, whatever the mapping. Writes reports/heterogeneous-headroom.json; replication_report.py
reports it.

    nice -n 10 python benchmarks/heterogeneous_headroom.py          # about a minute
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from harmonize.datasets import heterogeneous as het
from harmonize.datasets.demo import LABEL, POSITIVE, SOURCE_NETWORK, TARGET_NETWORK
from harmonize.datasets.networks import Network
from harmonize.transfer.eb import EBNaiveBayes
from harmonize.transfer.metrics import auroc

ROOT = Path(__file__).resolve().parents[1]
SIZES = (50, 100, 200, 400)


def source_column(code: str, present: dict[str, np.ndarray]) -> np.ndarray | None:
    """The source patients' "present" column a target finding corresponds to under the true
    mapping (a merged finding: either part present); None for a target-only finding."""
    renamed = {t: s for s, (t, _) in het.RENAMED.items()}
    if code in het.SHARED:
        return present[code]
    if code in renamed:
        return present[renamed[code]]
    if code in het.MERGED:
        return np.logical_or.reduce([present[p] for p in het.MERGED[code][1]])
    return None


def samples(n_source: int, n_target: int, seed: int):
    """(target present matrix, target labels, codes, source counts (2, 2 * codes), totals)."""
    target = Network.from_file(TARGET_NETWORK).sample(n_target, seed)
    source = Network.from_file(SOURCE_NETWORK).sample(n_source, seed + 1)
    columns = het.target_columns(target)
    codes = list(columns)
    X = np.column_stack([columns[c] == "P" for c in codes])
    y = (target[LABEL].to_numpy() == POSITIVE).astype(int)
    present = {c: source[c].to_numpy() == "P" for c in source.columns if c != LABEL}
    ys = (source[LABEL].to_numpy() == POSITIVE).astype(int)
    counts = np.zeros((2, 2 * len(codes)))
    for k, code in enumerate(codes):
        col = source_column(code, present)
        if col is None:
            continue
        for cls in (0, 1):
            counts[cls, 2 * k] = np.sum(col[ys == cls])
            counts[cls, 2 * k + 1] = np.sum(~col[ys == cls])
    totals = np.array([np.sum(ys == 0), np.sum(ys == 1)], dtype=float)
    return X, y, codes, counts, totals


def text_ids(X: np.ndarray) -> np.ndarray:
    """Each patient's state texts: finding k present is text 2k, absent 2k + 1."""
    return 2 * np.arange(X.shape[1])[None, :] + (~X).astype(int)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=15000)
    parser.add_argument("--test", type=int, default=15000)
    parser.add_argument("--n-source", type=int, default=8000)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "reports" / "heterogeneous-headroom.json"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    X, y, codes, counts, totals = samples(args.n_source, args.pool + args.test, 7)
    ids = text_ids(X)
    vectors = np.eye(2 * len(codes))
    groups = [np.array([2 * k, 2 * k + 1]) for k in range(len(codes))]
    pool, test = np.arange(args.pool), np.arange(args.pool, args.pool + args.test)

    def score(model, rows) -> float:
        model.fit(vectors, ids[rows], y[rows])
        return auroc(y[test], model.decision(vectors, ids[test]))

    ceiling = score(EBNaiveBayes(groups, None, None), pool)
    rows = []
    for n in SIZES:
        local, transfer = [], []
        for seed in range(args.seeds):
            sample = np.random.default_rng(seed).choice(pool, n, replace=False)
            local.append(score(EBNaiveBayes(groups, None, None), sample))
            transfer.append(score(EBNaiveBayes(groups, counts, totals), sample))
        diff = np.array(transfer) - np.array(local)
        rows.append(
            {
                "n": n,
                "nb_local": float(np.mean(local)),
                "nb_eb_true": float(np.mean(transfer)),
                "diff": float(diff.mean()),
                "diff_se": float(diff.std(ddof=1) / np.sqrt(len(diff))),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    out = {"ceiling": ceiling, "pool": args.pool, "test": args.test, "n_source": args.n_source,
           "seeds": args.seeds, "rows": rows, "wall_s": time.perf_counter() - started}  # fmt: skip
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"ceiling (naive Bayes on {args.pool} target patients): {ceiling:.4f}")


if __name__ == "__main__":
    main()
