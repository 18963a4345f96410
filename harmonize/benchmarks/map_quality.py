"""Mapping quality at vocabulary scale: ICD-10-CM <-> ICD-9-CM against the CMS GEMs.

The GEM-covered source codes are split in half (seeded); anything learned from GEM pairs may use
the training half only, and every figure here is measured on the held-out half. ``sample``
draws that many held-out codes so a run fits in minutes on a CPU.

With ``known`` (the default) the training half plays the part of a site's already-mapped codes:
the source site holds the held-out codes and all training codes, the training pairs are passed
to ``map --known`` (hierarchy votes and a reranker learned from them), and only the held-out
codes are scored. The mapping confidence is then the ranker's calibrated
score, and its reliability is measured on the held-out codes.

>>> overall, exact = {"n": 40, "top1": 0.5}, {"n": 9, "top1": 0.9}
>>> result = BenchResult("10to9", "lexical", 100, overall, exact, seconds=2.0)
>>> result.rows()[1]["subset"], result.rows()[1]["top1"], result.rows()[1]["mrr"]
('exact 1:1 pairs', 0.9, None)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harmonize.core.errors import InputError
from harmonize.core.results import TableResult
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
class BenchResult(TableResult):
    """One ``bench-map`` run: the held-out codes' metrics against all their GEM pairs
    (``overall``) and against the exact 1:1 pairs (``exact``); with ``known``, how well the
    confidence predicts being right on the held-out codes."""

    direction: str
    model: str
    n_train_codes: int
    overall: dict
    exact: dict
    seconds: float
    known: bool = False
    reliability: pd.DataFrame | None = None  # held-out confidence against being right
    brier: float | None = None
    by_encounter: dict | None = None  # ICD-10-CM sources: metrics per 7th-character kind

    def to_frame(self) -> pd.DataFrame:
        """One row per subset (held-out GEM sources, exact 1:1 pairs) with its metrics."""
        keys = ("n", "top1", "top5", "top10", "mrr", "coverage", "precision")
        return pd.DataFrame(
            [
                {"subset": "held-out GEM sources", **{k: self.overall.get(k) for k in keys}},
                {"subset": "exact 1:1 pairs", **{k: self.exact.get(k) for k in keys}},
            ]
        )


@dataclass
class BenchFiles:
    """The inputs one run writes under ``inputs/``: the source site's vocabulary, the known
    pairs (with ``known``), and the held-out gold (all pairs, and the exact 1:1 ones)."""

    source_site: str
    source_path: Path
    known_path: Path | None
    gold_path: Path
    exact_path: Path
    gold_test: pd.DataFrame


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
    zero_shot: tuple[str, ...] | None = None,
) -> BenchResult:
    """Builds the two ICD sites in ``ws``, maps the held-out source codes onto the full target
    vocabulary and scores them against the GEMs (all held-out pairs, and exact 1:1 pairs).
    ``zero_shot``: the zero-shot levers without ``known`` (default: map's; () plain search).

    >>> import tempfile
    >>> bench_icd(Workspace(tempfile.mkdtemp()), "10to8")
    Traceback (most recent call last):
    harmonize.core.errors.InputError: unknown direction '10to8': use 10to9 or 9to10
    """
    _check_bench(direction, known, reranker_concepts)
    started = time.perf_counter()
    source, target = DIRECTIONS[direction]
    paths = write_icd_inputs(ws.root / "inputs")
    gold = gem_gold(direction)
    train, held_out = held_out_codes(gold, sample, random_state)
    files = write_bench_inputs(ws.root / "inputs", direction, gold, train, held_out, known)
    echo(f"{len(train)} training and {len(held_out)} held-out {source} codes; target {target}")
    add_site(ws, target, paths[target], replace=True)
    add_site(ws, files.source_site, files.source_path, replace=True)
    for site in (target, files.source_site):
        for part in model.split("+"):  # a fused model needs each part's index
            echo(build_site_index(ws, site, part, progress=progress).message)
    mapped = map_sites(
        ws, files.source_site, target, model=model, k=k, known=files.known_path,
        reranker_concepts=reranker_concepts,
        **({} if zero_shot is None else {"zero_shot": zero_shot}),
    )  # fmt: skip
    echo(mapped.summary)
    overall = evaluate_mapping(ws, files.source_site, target, files.gold_path).to_dict()
    exact = evaluate_mapping(ws, files.source_site, target, files.exact_path).to_dict()
    result = BenchResult(
        direction, model, len(train), overall, exact, time.perf_counter() - started, known
    )
    if known:
        result.reliability, result.brier = held_out_confidence(
            mapped.mappings, files.gold_test, held_out
        )
    if source == "icd10":
        result.by_encounter = encounter_breakdown(ws, files, target)
    return result


ENCOUNTERS = ("initial", "subsequent", "sequela", "other")


def encounter_kind(description: str) -> str:
    """What an ICD-10-CM description says of the encounter: "initial", "subsequent",
    "sequela" (its 7th character's definition), or "other" (no such ending).

    >>> [encounter_kind(d) for d in ("Burn of chin, initial encounter", "Gout, sequela",
    ...  "Fracture of hip, subsequent encounter for fracture with nonunion", "Cough")]
    ['initial', 'sequela', 'subsequent', 'other']
    """
    text = description.lower()
    if "initial encounter" in text:
        return "initial"
    if "subsequent encounter" in text:
        return "subsequent"
    return "sequela" if text.endswith("sequela") else "other"


def encounter_breakdown(ws: Workspace, files: BenchFiles, target: str) -> dict:
    """n, top-1 and top-10 of the held-out codes by :func:`encounter_kind` of their
    description, from the stored candidates of the run just made."""
    from harmonize.core import sql
    from harmonize.mapping.metrics import mapping_metrics

    with ws.connect(read_only=True) as con:
        candidates = sql.run_internal(
            con, "pair_candidates", source=files.source_site, target=target
        ).df()
    vocab = pd.read_csv(files.source_path, dtype=str, keep_default_na=False)
    kinds = dict(zip(vocab["code"], map(encounter_kind, vocab["description"]), strict=True))
    gold = files.gold_test.assign(kind=files.gold_test["source_code"].map(kinds))
    out = {}
    for kind in ENCOUNTERS:
        part = gold[gold["kind"] == kind]
        if len(part):
            metrics = mapping_metrics(candidates, part, ks=(1, 10))
            out[kind] = {key: metrics[key] for key in ("n", "top1", "top10")}
    return out


def _check_bench(direction: str, known: bool, reranker_concepts: int | None) -> None:
    """Refuses options that do not go together, before anything is written."""
    if reranker_concepts is not None and not known:
        raise InputError(
            "{reranker_concepts} sets how the known-pairs reranker learns: it needs {known}",
            params=("reranker_concepts", "known"),
        )
    reranker_sample_size(reranker_concepts)
    if direction not in DIRECTIONS:
        raise InputError(f"unknown direction '{direction}': use {' or '.join(DIRECTIONS)}")


def held_out_codes(
    gold: pd.DataFrame, sample: int | None, random_state: int
) -> tuple[list[str], set[str]]:
    """(training codes, held-out codes): the GEM sources split in half, seeded; ``sample``
    draws that many of the held-out half."""
    train, test = split_codes(gold["source_code"], test_fraction=0.5, random_state=random_state)
    if sample is not None:
        if not 1 <= sample <= len(test):
            raise InputError(
                f"{{sample}} must be between 1 and {len(test)}, got {sample}", params=("sample",)
            )
        rng = np.random.default_rng(random_state)
        test = sorted(rng.choice(np.array(test, dtype=object), sample, replace=False).tolist())
    return train, set(test)


def write_bench_inputs(
    inputs: Path,
    direction: str,
    gold: pd.DataFrame,
    train: list[str],
    held_out: set[str],
    known: bool,
) -> BenchFiles:
    """Writes the source site's vocabulary, the known pairs and the held-out gold files."""
    source = DIRECTIONS[direction][0]
    in_site = held_out
    known_path = None
    if known:
        # The site holds every training code, as a hospital's site holds its whole
        # vocabulary: besides the held-out codes' siblings (who vote), that includes the
        # codes whose known targets compete with a held-out code's (the reverse-neighbour
        # features see them). Held-out codes outside the sample are left out to save time.
        in_site = held_out | set(train)
        known_path = inputs / f"gem_{direction}_train.csv"
        known_pairs(gold, train).to_csv(known_path, index=False)
    source_site = f"{source}-{'known' if known else 'heldout'}"
    source_path = inputs / f"{source_site}.csv"
    vocab = icd_vocab(source)
    vocab[vocab["code"].isin(in_site)].to_csv(source_path, index=False)
    gold_test = gold[gold["source_code"].isin(held_out)]
    gold_path = inputs / f"gem_{direction}_heldout.csv"
    exact_path = inputs / f"gem_{direction}_heldout_exact.csv"
    gold_test.to_csv(gold_path, index=False)
    exact_pairs(gold_test).to_csv(exact_path, index=False)
    return BenchFiles(source_site, source_path, known_path, gold_path, exact_path, gold_test)


def known_pairs(gold: pd.DataFrame, train: list[str]) -> pd.DataFrame:
    """The training codes' GEM pairs with what the GEMs say of each, as a site would say of
    the pairs it knows: the exact 1:1 pairs are equivalences, approximate ones close matches;
    the rest (combination entries not flagged approximate) assert nothing. map --known learns
    its equivalence model from these."""
    train_gold = gold[gold["source_code"].isin(set(train))].copy()
    exact = exact_pairs(train_gold)
    exact_keys = set(zip(exact["source_code"], exact["target_code"], strict=True))
    keys = zip(train_gold["source_code"], train_gold["target_code"], strict=True)
    train_gold["predicate"] = [
        "exact" if key in exact_keys else "close" if approximate else ""
        for key, approximate in zip(keys, train_gold["approximate"] == 1, strict=True)
    ]
    return train_gold


def held_out_confidence(
    mappings: pd.DataFrame, gold_test: pd.DataFrame, held_out: set[str]
) -> tuple[pd.DataFrame, float]:
    """(reliability table, Brier score) of the held-out codes' mapping confidence against
    whether the chosen target is a GEM pair."""
    chosen = mappings[mappings["source_code"].isin(held_out)]
    right = set(zip(gold_test["source_code"], gold_test["target_code"], strict=True))
    pairs = zip(chosen["source_code"], chosen["target_code"], strict=True)
    hit = np.array([pair in right for pair in pairs])
    prob = chosen["confidence"].to_numpy(float)
    return reliability_table(prob, hit), float(np.mean((prob - hit) ** 2))
