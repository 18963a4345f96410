"""mapping.pipeline: split from harmonize/mapping.py (docstring to write)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harmonize import __version__
from harmonize.core import sql
from harmonize.core.config import (
    DEFAULT_K,
    DEFAULT_MODEL,
    KNOWN_DEPTH,
    STRATEGIES,
)
from harmonize.core.errors import InputError
from harmonize.core.timing import Stages
from harmonize.core.workspace import Workspace, atomic_path
from harmonize.embed.registry import get_encoder
from harmonize.index.faiss_index import faiss_device, vectors_of
from harmonize.index.site_index import load_pair_indexes
from harmonize.mapping.calibration import confidence, load_calibration
from harmonize.mapping.choose import choose_best, choose_mutual, choose_one_to_one
from harmonize.mapping.metrics import read_gold
from harmonize.mapping.rerank.cooccurrence import Usage, occurrence_matrix
from harmonize.mapping.rerank.equivalence import equivalence_rows
from harmonize.mapping.rerank.known_pairs import known_predicates, known_rows
from harmonize.mapping.rerank.model import reranker_sample_size
from harmonize.mapping.rerank.pipeline import map_with_known
from harmonize.mapping.retrieve import fused_search
from harmonize.mapping.review import apply_decisions


@dataclass
class MapResult:
    run_id: str
    source: str
    target: str
    model: str
    strategy: str
    k: int
    min_score: float | None
    n_source: int
    n_mapped: int
    n_candidates: int
    seconds: float
    # source_code, source_description, target_code, target_description, score
    mappings: pd.DataFrame
    changes: dict[str, int] | None = None  # against the pair's previous mappings
    n_known: int | None = None  # source concepts with known targets (map --known)
    used_usage: bool = False  # the reranker also compared both sites' usage
    note: str = ""  # what map --known adds to the summary (the equivalence model)

    @property
    def summary(self) -> str:
        floor = "none" if self.min_score is None else f"{self.min_score:g}"
        changed = ""
        if self.changes is not None:
            changed = (
                "; against the previous mapping: {remapped} remapped, {new} new, "
                "{dropped} dropped, {kept} unchanged".format(**self.changes)
            )
        if self.n_known is not None:
            changed += (
                f"; {self.n_known} concepts kept their known targets, the rest were reranked "
                "by a reranker learned from them"
                + (" (with both sites' usage signals)" if self.used_usage else "")
                + self.note
            )
        return (
            f"mapped {self.n_mapped} of {self.n_source} '{self.source}' concepts onto "
            f"'{self.target}' (model {self.model}, strategy {self.strategy}, k={self.k}, "
            f"min-score {floor}) in {self.seconds:.1f}s; run {self.run_id}{changed}"
        )


def compare_mappings(previous: pd.DataFrame, current: pd.DataFrame) -> dict[str, int] | None:
    """How a pair's mapping changed: None when there was none before.

    >>> old = pd.DataFrame({"source_code": ["a", "b"], "target_code": ["x", "y"]})
    >>> new = pd.DataFrame({"source_code": ["a", "c"], "target_code": ["z", "y"]})
    >>> compare_mappings(old, new)
    {'remapped': 1, 'new': 1, 'dropped': 1, 'kept': 0}
    """
    if previous.empty:
        return None
    before = dict(zip(previous["source_code"], previous["target_code"], strict=True))
    after = dict(zip(current["source_code"], current["target_code"], strict=True))
    both = before.keys() & after.keys()
    return {
        "remapped": sum(before[c] != after[c] for c in both),
        "new": len(after.keys() - before.keys()),
        "dropped": len(before.keys() - after.keys()),
        "kept": sum(before[c] == after[c] for c in both),
    }


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def map_sites(
    ws: Workspace,
    source: str,
    target: str,
    model: str = DEFAULT_MODEL,
    k: int = DEFAULT_K,
    min_score: float | None = None,
    strategy: str = "best",
    output: str | Path | None = None,
    device: str = "auto",
    min_confidence: float | None = None,
    known: str | Path | None = None,
    usage: bool = False,
    reranker_concepts: int | None = None,
) -> MapResult:
    """Maps every concept of ``source`` onto ``target`` and stores candidates and mappings.

    Re-running a pair replaces that pair's candidates and mappings in one transaction.
    ``usage`` (with ``known``) adds both sites' usage signals to the reranker when both have
    events (:mod:`harmonize.usage`).
    ``known`` (a CSV of source_code,target_code pairs already mapped) switches on the
    hierarchy votes and the learned reranker of :mod:`harmonize.known`; its calibrated score is
    then each mapping's confidence; the reranker learns from at most ``reranker_concepts``
    known concepts (default KNOWN_TRAIN_MAX; more is better and slower).

    >>> # map_sites(Workspace("."), "siteB", "siteA", k=5).mappings.head()
    """
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy '{strategy}': use one of {', '.join(STRATEGIES)}")
    if k < 1:
        raise InputError(f"--k must be at least 1, got {k}")
    if min_score is not None and not -1.0 <= min_score <= 1.0:
        raise InputError(f"--min-score is a cosine similarity between -1 and 1, got {min_score}")
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
        raise InputError(f"--min-confidence is a probability between 0 and 1, got {min_confidence}")
    if source == target:
        raise InputError(f"source and target are the same site '{source}': pick two sites")
    if usage and known is None:
        raise InputError("--usage compares usage inside the --known reranker: add --known FILE")
    if reranker_concepts is not None and known is None:
        raise InputError(
            "--reranker-concepts sets how the --known reranker learns: add --known FILE"
        )
    reranker_concepts = reranker_sample_size(reranker_concepts)
    if known is not None and strategy != "best":
        raise InputError(
            f"--known reranks each concept's candidates: use --strategy best, not {strategy}"
        )
    if output is not None:
        output = Path(output)
        if output.suffix.lower() != ".csv":
            raise InputError(f"--output must be a .csv file, got {output}")
        if not output.parent.resolve().is_dir():
            raise InputError(f"--output folder does not exist: {output.parent}")
    floor = -np.inf if min_score is None else float(min_score)
    started = time.perf_counter()
    clock = Stages("map", ("read", "search", "choose", "store"))
    # "a+b" fuses the rankings of several models (each needs its own index).
    encoders = [get_encoder(spec) for spec in model.split("+")]
    spec = "+".join(e.spec for e in encoders)
    ws.require()
    dev = faiss_device(device)
    with ws.connect(read_only=True) as con:
        ws.require_site(con, source)
        ws.require_site(con, target)
        pairs = [load_pair_indexes(ws, con, source, target, e) for e in encoders]
        # Descriptions and parents are read only when --known needs them.
        concepts = "site_hierarchy" if known is not None else "site_concepts"
        source_concepts = sql.run_internal(con, concepts, site=source).df()
        target_concepts = sql.run_internal(con, concepts, site=target).df()
        decisions = sql.run_internal(con, "latest_decisions", source=source, target=target).df()
        calibration = load_calibration(con, spec)
        previous = sql.run_internal(con, "pair_mappings", source=source, target=target).df()
        occurrences = (
            [sql.run_internal(con, "site_occurrences", site=s).df() for s in (source, target)]
            if known is not None and usage
            else None
        )
    source_codes = source_concepts["code"].to_numpy(dtype=object)
    target_codes = target_concepts["code"].to_numpy(dtype=object)
    known_pairs, asserted, exact_rows, judged_rows = None, {}, set(), set()
    if known is not None:
        gold = read_gold(known)  # read once: pairs and their predicates
        known_pairs = known_rows(gold, source_codes, target_codes)
        asserted = known_predicates(gold, known)
        exact_rows, judged_rows = equivalence_rows(
            known_pairs, asserted, source_codes, target_codes
        )
    signals = None
    if occurrences is not None:
        for site, occ in zip((source, target), occurrences, strict=True):
            if occ.empty:
                raise InputError(
                    f"--usage needs events at both sites; site '{site}' has none "
                    "(add-site --events, --patients, --omop or --meds)"
                )
        signals = Usage(
            occurrence_matrix(occurrences[0], source_codes),
            occurrence_matrix(occurrences[1], target_codes),
        )
    if known_pairs is not None:
        calibration = None  # the reranker's calibrated score is the confidence
    elif min_confidence is not None and calibration is None:
        raise InputError(
            f"--min-confidence needs a calibration of model {spec}. Run 'harmonize calibrate "
            "--source S --target T --gold FILE' on a mapped pair with known answers first."
        )
    clock.done("read")
    forward = [(vectors_of(s), t) for s, t in pairs]
    scores, ids = fused_search(forward, max(k, KNOWN_DEPTH) if known_pairs is not None else k, dev)
    clock.done("search")
    if known_pairs is not None:
        reranked = map_with_known(
            known_pairs, forward[0][0], vectors_of(pairs[0][1]), ids, source_codes,
            source_concepts["parent_code"].to_numpy(dtype=object),
            source_concepts["description"].tolist(),
            target_concepts["parent_code"].to_numpy(dtype=object),
            target_concepts["description"].tolist(), k, usage=signals,
            train_max=reranker_concepts, exact=exact_rows, judged=judged_rows,
        )  # fmt: skip
        picked = reranked.chosen[reranked.chosen["score"] >= floor]
        chosen = picked[["source", "target", "score"]].to_numpy(dtype=object).tolist()
    elif strategy == "best":
        chosen = choose_best(scores, ids, floor)
    elif strategy == "mutual":
        _, reverse_ids = fused_search([(vectors_of(t), s) for s, t in pairs], 1, dev)
        chosen = choose_mutual(scores, ids, reverse_ids, floor)
    else:
        chosen = choose_one_to_one(scores, ids, floor)

    run_id = new_run_id()
    method = f"{spec}:{strategy}" + ("+known" if known_pairs is not None else "")
    n_source, width = scores.shape
    if known_pairs is not None:
        long = reranked.candidates
    else:
        long = pd.DataFrame(
            {
                "source": np.repeat(np.arange(n_source), width),
                "target": ids.reshape(-1),
                "rank": np.tile(np.arange(1, width + 1), n_source),
                "score": scores.reshape(-1),
            }
        )
    candidates = pd.DataFrame(
        {
            "source_site": source,
            "source_code": source_codes[long["source"].to_numpy(dtype=np.int64)],
            "target_site": target,
            "target_code": target_codes[long["target"].to_numpy(dtype=np.int64)],
            "rank": long["rank"].to_numpy(dtype=np.int32),
            "score": long["score"].to_numpy(dtype=np.float64),
            "method": method,
            "run_id": run_id,
        }
    )
    chosen_arr = np.array(chosen, dtype=object).reshape(-1, 3)
    mappings = pd.DataFrame(
        {
            "source_code": source_codes[chosen_arr[:, 0].astype(int)],
            "target_code": target_codes[chosen_arr[:, 1].astype(int)],
            "score": chosen_arr[:, 2].astype(np.float64),
            "method": method,
        }
    )
    if known_pairs is not None:
        mappings["confidence"] = picked["confidence"].to_numpy(dtype=np.float64)
        if min_confidence is not None:
            mappings = mappings[mappings["confidence"] >= min_confidence]
    elif calibration is not None:
        mappings["confidence"] = confidence(calibration, mappings["score"].to_numpy(float))
        if min_confidence is not None:
            mappings = mappings[mappings["confidence"] >= min_confidence]
    else:
        mappings["confidence"] = np.nan
    pairs_chosen = zip(mappings["source_code"], mappings["target_code"], strict=True)
    mappings["predicate"] = pd.Series([asserted.get(p) for p in pairs_chosen], dtype=object)
    # Site and run columns are the same on every row, people's decisions included.
    mappings = apply_decisions(decisions, mappings, candidates).assign(
        source_site=source, target_site=target, run_id=run_id
    )
    changes = compare_mappings(previous, mappings)
    run = {
        "run_id": run_id,
        "source": source,
        "target": target,
        "model": spec,
        "strategy": strategy,
        "k": k,
        "min_score": min_score,
        "n_source": int(n_source),
        "n_mapped": len(mappings),
    }
    clock.done("choose")
    with ws.transaction() as con:
        sql.run_internal(con, "delete_pair_candidates", source=source, target=target)
        sql.run_internal(con, "delete_pair_mappings", source=source, target=target)
        con.register("new_candidates", candidates)
        sql.run_internal(con, "insert_candidates")
        con.unregister("new_candidates")
        con.register("new_mappings", mappings)
        sql.run_internal(con, "insert_mappings")
        con.unregister("new_mappings")
        sql.run_internal(con, "insert_run", **run, version=__version__)
        preview = sql.run_internal(con, "mapping_preview", source=source, target=target).df()
    if output is not None:
        with atomic_path(output) as tmp:
            preview.assign(method=method, run_id=run_id).to_csv(tmp, index=False)
    clock.done("store")
    return MapResult(
        **run,
        changes=changes,
        n_known=None if known_pairs is None else len(known_pairs),
        used_usage=signals is not None,
        note=reranked.equivalence_note() if known_pairs is not None else "",
        n_candidates=len(candidates),
        seconds=time.perf_counter() - started,
        mappings=preview,
    )
