"""Mapping quality at vocabulary scale: ICD-10-CM <-> ICD-9-CM against the CMS GEMs.

The GEM-covered source codes are split in half (seeded); anything learned from GEM pairs may use
the training half only, and every figure here is measured on the held-out half. ``sample``
draws that many held-out codes so a run fits in minutes on a CPU.

With ``known`` (the default) the training half plays the part of a site's already-mapped codes:
the source site holds the held-out codes and all training codes, the training pairs are passed
to ``map --known`` (hierarchy votes and a reranker learned from them), and only the held-out
codes are scored. The mapping confidence is then the ranker's calibrated
score, and its reliability is measured on the held-out codes.

>>> # bench_icd(Workspace("bench"), "10to9", sample=1000).overall["top1"]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harmonize.core.errors import InputError
from harmonize.core.workspace import Workspace
from harmonize.datasets.icd import exact_pairs, gem_gold, icd_vocab, split_codes, write_icd_inputs
from harmonize.index.site_index import build_site_index
from harmonize.mapping.calibration import reliability_table
from harmonize.mapping.metrics import evaluate_mapping
from harmonize.mapping.pipeline import map_sites
from harmonize.mapping.rerank.model import reranker_sample_size
from harmonize.sites.registry import add_site

DIRECTIONS = {"10to9": ("icd10", "icd9"), "9to10": ("icd9", "icd10")}


@dataclass
class BenchResult:
    direction: str
    model: str
    n_train_codes: int
    overall: dict
    exact: dict
    seconds: float
    known: bool = False
    reliability: pd.DataFrame | None = None  # held-out confidence against being right
    brier: float | None = None

    def rows(self) -> pd.DataFrame:
        keys = ("n", "top1", "top5", "top10", "mrr", "coverage", "precision")
        return pd.DataFrame(
            [
                {"subset": "held-out GEM sources", **{k: self.overall.get(k) for k in keys}},
                {"subset": "exact 1:1 pairs", **{k: self.exact.get(k) for k in keys}},
            ]
        )


def bench_icd(
    ws: Workspace,
    direction: str = "10to9",
    sample: int | None = None,
    model: str = "minilm",
    k: int = 10,
    random_state: int = 0,
    progress: bool = False,
    echo: Callable[[str], None] = lambda _: None,
    known: bool = True,
    reranker_concepts: int | None = None,
) -> BenchResult:
    """Builds the two ICD sites in ``ws``, maps the held-out source codes onto the full target
    vocabulary and scores them against the GEMs (all held-out pairs, and exact 1:1 pairs)."""
    if reranker_concepts is not None and not known:
        raise InputError(
            "--reranker-concepts sets how the known-pairs reranker learns: drop --no-known"
        )
    reranker_sample_size(reranker_concepts)  # refused before anything is written
    if direction not in DIRECTIONS:
        raise InputError(f"unknown direction '{direction}': use {' or '.join(DIRECTIONS)}")
    started = time.perf_counter()
    source, target = DIRECTIONS[direction]
    inputs = ws.root / "inputs"
    paths = write_icd_inputs(inputs)
    gold = gem_gold(direction)
    train, test = split_codes(gold["source_code"], test_fraction=0.5, random_state=random_state)
    if sample is not None:
        if not 1 <= sample <= len(test):
            raise InputError(f"--sample must be between 1 and {len(test)}, got {sample}")
        rng = np.random.default_rng(random_state)
        test = sorted(rng.choice(np.array(test, dtype=object), sample, replace=False).tolist())
    held_out = set(test)
    vocab = icd_vocab(source)
    in_site = held_out
    known_path = None
    if known:
        # The site holds every training code, as a hospital's site holds its whole
        # vocabulary: besides the held-out codes' siblings (who vote), that includes the
        # codes whose known targets compete with a held-out code's (the reverse-neighbour
        # features see them). Held-out codes outside the sample are left out to save time.
        in_site = held_out | set(train)
        known_path = inputs / f"gem_{direction}_train.csv"
        train_gold = gold[gold["source_code"].isin(set(train))].copy()
        # What the GEMs say of each pair, as a site would say of the pairs it knows: the exact
        # 1:1 pairs are equivalences, approximate ones close matches; the rest (combination
        # entries not flagged approximate) assert nothing. map --known learns its
        # equivalence model from these.
        exact = exact_pairs(train_gold)
        exact_keys = set(zip(exact["source_code"], exact["target_code"], strict=True))
        keys = zip(train_gold["source_code"], train_gold["target_code"], strict=True)
        train_gold["predicate"] = [
            "exact" if key in exact_keys else "close" if approximate else ""
            for key, approximate in zip(keys, train_gold["approximate"] == 1, strict=True)
        ]
        train_gold.to_csv(known_path, index=False)
    source_site = f"{source}-{'known' if known else 'heldout'}"
    source_path = inputs / f"{source_site}.csv"
    vocab[vocab["code"].isin(in_site)].to_csv(source_path, index=False)
    gold_test = gold[gold["source_code"].isin(held_out)]
    gold_path = inputs / f"gem_{direction}_heldout.csv"
    exact_path = inputs / f"gem_{direction}_heldout_exact.csv"
    gold_test.to_csv(gold_path, index=False)
    exact_pairs(gold_test).to_csv(exact_path, index=False)
    echo(f"{len(train)} training and {len(held_out)} held-out {source} codes; target {target}")
    add_site(ws, target, paths[target], replace=True)
    add_site(ws, source_site, source_path, replace=True)
    for site in (target, source_site):
        for part in model.split("+"):  # a fused model needs each part's index
            echo(build_site_index(ws, site, part, progress=progress).message)
    mapped = map_sites(
        ws, source_site, target, model=model, k=k, known=known_path,
        reranker_concepts=reranker_concepts,
    )  # fmt: skip
    echo(mapped.summary)
    overall = evaluate_mapping(ws, source_site, target, gold_path)
    exact = evaluate_mapping(ws, source_site, target, exact_path)
    result = BenchResult(
        direction, model, len(train), overall, exact, time.perf_counter() - started, known
    )
    if known:
        chosen = mapped.mappings[mapped.mappings["source_code"].isin(held_out)]
        right = set(zip(gold_test["source_code"], gold_test["target_code"], strict=True))
        hit = np.array(
            [
                (s, t) in right
                for s, t in zip(chosen["source_code"], chosen["target_code"], strict=True)
            ]
        )
        prob = chosen["confidence"].to_numpy(float)
        result.reliability = reliability_table(prob, hit)
        result.brier = float(np.mean((prob - hit) ** 2))
    return result
