"""``map`` as named stages: read the two sites, search, choose, tabulate, store.

:func:`map_sites` checks its options (:func:`~harmonize.mapping.inputs.map_settings`), reads
what it needs of both sites once (:func:`~harmonize.mapping.inputs.read_pair`), then passes that
data down: the nearest-neighbour search, the choice of one target per concept (a strategy, or
the known-pairs reranker of :mod:`harmonize.mapping.rerank`), the candidates and mappings
tables with their confidence and people's decisions, and one transaction that stores the run.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from harmonize import __version__
from harmonize.core import sql
from harmonize.core.config import DEFAULT_K, DEFAULT_MODEL, ZERO_SHOT_LEVERS
from harmonize.core.errors import InputError
from harmonize.core.results import TableResult
from harmonize.core.timing import Stages
from harmonize.core.workspace import Workspace, atomic_path
from harmonize.index.faiss_index import vectors_of
from harmonize.mapping.calibration import confidence
from harmonize.mapping.choose import choose_best, choose_mutual, choose_one_to_one
from harmonize.mapping.inputs import MapSettings, SitePair, map_settings, read_pair
from harmonize.mapping.learn import rechoose_without_rejected, without_rejected
from harmonize.mapping.rerank.pipeline import (
    KnownInputs,
    KnownMapping,
    RerankSettings,
    map_with_known,
)
from harmonize.mapping.retrieve import ConceptHits, concept_search
from harmonize.mapping.review import apply_decisions
from harmonize.mapping.vocabulary import MAPS_TO, follow_maps_to, match_rows
from harmonize.mapping.zeroshot import ZeroShotSearch, self_trained, zero_shot_search

if TYPE_CHECKING:
    import faiss


@dataclass
class MapResult(TableResult):
    """What one ``map`` run did; :meth:`to_frame` is its mappings table."""

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
    learned: str = ""  # what the summary says of people's decisions (mapping.learn)
    zero_shot: str = ""  # the zero-shot levers used (mapping.zeroshot), "" for none

    def to_frame(self) -> pd.DataFrame:
        """The mappings: one row per mapped source concept, as stored."""
        return self.mappings.copy()

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
            )
        changed += self.learned + self.note
        return (
            f"mapped {self.n_mapped} of {self.n_source} '{self.source}' concepts onto "
            f"'{self.target}' (model {self.model}, strategy {self.strategy}, k={self.k}, "
            f"min-score {floor}{', ' + self.zero_shot if self.zero_shot else ''}) in "
            f"{self.seconds:.1f}s; run {self.run_id}{changed}"
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
    code_system: str | None = None,
    learn: bool = True,
    zero_shot: tuple[str, ...] = ZERO_SHOT_LEVERS,
) -> MapResult:
    """Maps every concept of ``source`` onto ``target`` and stores candidates and mappings.

    Re-running a pair replaces that pair's candidates and mappings in one transaction.
    ``known`` (a CSV of source_code,target_code pairs already mapped) switches on the
    hierarchy votes and the learned reranker of :mod:`harmonize.mapping.rerank`; its calibrated
    score is then each mapping's confidence; the reranker learns from at most
    ``reranker_concepts`` known concepts (default KNOWN_TRAIN_MAX; more is better and slower).
    ``usage`` (with ``known``) adds both sites' usage signals to the reranker when both have
    events (:mod:`harmonize.mapping.rerank.cooccurrence`). ``code_system`` looks every source
    code up in that target vocabulary before the search (:mod:`harmonize.mapping.vocabulary`).
    ``learn`` (the default) makes the pair's accepted and set decisions known pairs of that
    reranker for the concepts nobody has decided (:mod:`harmonize.mapping.learn`); a rejected
    pair is never proposed again.

    With nothing known (strategy best, one model, one text per concept), the ``zero_shot``
    levers of :mod:`harmonize.mapping.zeroshot` apply (acronyms expanded from both
    vocabularies, hub-corrected search, optionally self-training); () is plain search.

    >>> import tempfile
    >>> from harmonize.index.site_index import build_site_index
    >>> from harmonize.sites.registry import add_site
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.csv").write_text("code,description\\nA1,reported fever\\nA2,dry cough\\n")
    >>> _ = (folder / "b.csv").write_text("code,description\\nB1,fever\\nB2,coughing dry\\n")
    >>> ws = Workspace(folder / "ws")
    >>> for site in ("a", "b"):
    ...     _ = add_site(ws, site, folder / f"{site}.csv")
    ...     _ = build_site_index(ws, site, "lexical", device="cpu")
    >>> result = map_sites(ws, "b", "a", model="lexical", k=2, device="cpu")
    >>> frame = result.to_frame()
    >>> sorted(zip(frame["source_code"], frame["target_code"]))
    [('B1', 'A1'), ('B2', 'A2')]
    """
    settings = map_settings(
        source, target, model=model, k=k, min_score=min_score, strategy=strategy, output=output,
        device=device, min_confidence=min_confidence, known=known, usage=usage,
        reranker_concepts=reranker_concepts, code_system=code_system, learn=learn,
        zero_shot=tuple(zero_shot),
    )  # fmt: skip
    started = time.perf_counter()
    clock = Stages("map", ("read", "search", "choose", "store"))
    pair = read_pair(ws, source, target, settings)
    clock.done("read")
    found = zero_shot_found(ws, pair, settings) if zero_shots(pair, settings) else None
    found = found or search_pair(pair, settings)
    clock.done("search")
    chosen = apply_vocabulary(pair, settings, found, choose_mappings(pair, settings, found))
    tables = run_tables(pair, settings, found, chosen, new_run_id())
    clock.done("choose")
    preview = store_run(ws, pair, tables)
    if settings.output is not None:
        write_output(settings.output, preview, tables)
    clock.done("store")
    return MapResult(
        **tables.run,
        changes=compare_mappings(pair.previous, tables.mappings),
        n_known=None if settings.known is None else len(pair.known.rows),
        used_usage=pair.usage is not None,
        note=chosen.note,
        zero_shot=chosen.zero_shot,
        learned=pair.learned.note if pair.learned is not None else "",
        n_candidates=len(tables.candidates),
        seconds=time.perf_counter() - started,
        mappings=preview,
    )


@dataclass
class Found:
    """The search's result: per source row, the ``scores`` and target ``ids`` of its
    candidates, best first, and the (source vectors, target index) searched per model part."""

    forward: list[tuple[np.ndarray, faiss.Index]]
    scores: np.ndarray
    ids: np.ndarray
    hits: ConceptHits | None = None  # the matched texts and followed concepts
    zero_shot: ZeroShotSearch | None = None  # the zero-shot search, when it ran


def search_pair(pair: SitePair, settings: MapSettings) -> Found:
    """Every source concept's nearest target concepts (fused over the model's parts); the
    source is queried by its names (its index's first rows), a target's synonyms and 'Maps to'
    edges are searched through (:func:`~harmonize.mapping.retrieve.concept_search`). Rejected
    targets are taken out later: the search finds that many more, to keep k candidates."""
    n_source = len(pair.source_concepts)
    forward = [(vectors_of(s)[:n_source], t) for s, t in pair.indexes]
    depth = settings.depth(pair.known is not None) + pair.most_rejected
    hits = concept_search(forward, pair.texts[1], depth, pair.device)
    return Found(forward, hits.scores, hits.ids, hits)


def zero_shots(pair: SitePair, settings: MapSettings) -> bool:
    """Whether the zero-shot levers run: asked for (strategy best, one model), nothing known
    (no file, no decisions learned from) and both sites plain, one text per concept (synonyms
    and 'Maps to' are searched by :func:`search_pair`)."""
    plain = all(t is None or t.plain for t in pair.texts or ())
    return bool(settings.levers) and pair.known is None and plain


def zero_shot_found(ws: Workspace, pair: SitePair, settings: MapSettings) -> Found:
    """The zero-shot search (:func:`~harmonize.mapping.zeroshot.zero_shot_search`) as a
    :class:`Found` (its vectors stand for the index's); it finds as many more candidates as
    the most targets rejected for one concept, as :func:`search_pair` does."""
    depth = settings.depth("self-training" in settings.levers) + pair.most_rejected
    searched = zero_shot_search(ws, pair, depth, settings.levers)
    forward = [(searched.source_vectors, pair.indexes[0][1])]
    ids = searched.ids
    hits = ConceptHits(searched.scores, ids, ids.copy(), np.full(ids.shape, -1, dtype=np.int64))
    return Found(forward, searched.scores, ids, hits, searched)


@dataclass
class Chosen:
    """The chosen mappings as [source row, target row, score], the candidate rows stored with
    them (source, target, rank, score), and, when the reranker chose, its confidence per
    mapping and its result."""

    rows: list[list]
    candidates: pd.DataFrame
    confidence: np.ndarray | None = None
    reranked: KnownMapping | None = None
    methods: list[str] | None = None  # per mapping, when the vocabulary's rules set them
    matches: pd.DataFrame | None = None  # matched synonyms and followed concepts
    note: str = ""  # what the summary says of the reranker
    zero_shot: str = ""  # the zero-shot levers used


def apply_vocabulary(pair: SitePair, settings: MapSettings, found: Found, chosen: Chosen) -> Chosen:
    """The target vocabulary's rules on the chosen mappings: code lookups first, then every
    'Maps to' target of a followed hit (:func:`~harmonize.mapping.vocabulary.follow_maps_to`);
    a code lookup is scored by the cosine of the two names (first model part)."""
    queries, target_index = found.forward[0]

    def cosine(s: int, t: int) -> float:
        return float(queries[s] @ target_index.reconstruct(int(t)))

    method = run_method(pair, settings)
    expanded = follow_maps_to(chosen.rows, found.hits, pair.texts[1], method, pair.direct, cosine)
    confidence = chosen.confidence
    if confidence is not None:
        confidence = np.array([confidence[i] if i >= 0 else np.nan for i in expanded.keep])
    matches = match_rows(found.hits, pair.texts[1], expanded, pair.source_codes, pair.target_codes)
    return replace(
        chosen, rows=expanded.rows, confidence=confidence, methods=expanded.methods,
        matches=matches,
    )  # fmt: skip


def choose_mappings(pair: SitePair, settings: MapSettings, found: Found) -> Chosen:
    """One target per source concept: by the known-pairs reranker, or by the strategy (also
    when the reranker cannot learn from people's decisions alone: too few of their targets
    among the candidates)."""
    if pair.known is not None:
        try:
            return choose_reranked(pair, settings, found)
        except InputError as err:
            if settings.known is not None or pair.learned is None:
                raise
            pair.known, pair.learned.active = None, False
            pair.learned.skipped = f"not learned from ({err.render({'known': 'decisions'})})"
    note = found.zero_shot.note if found.zero_shot is not None else ""
    if found.zero_shot is not None and "self-training" in settings.levers:
        if pair.rejected_rows:
            note += ", not self-trained (the pair has rejected pairs)"
        else:
            trained = self_trained(pair, settings, found.zero_shot)
            note += trained.note()
            if trained.mapping is not None:
                return _chosen_self_trained(trained.mapping, settings, note)
    floor = settings.floor
    scores, ids = without_rejected(found.scores, found.ids, pair.rejected_rows)
    scores, ids = scores[:, : settings.k], ids[:, : settings.k]
    if settings.strategy == "best":
        rows = choose_best(scores, ids, floor)
    elif settings.strategy == "mutual":
        n_target = len(pair.target_concepts)
        reverse = [(vectors_of(t)[:n_target], s) for s, t in pair.indexes]
        reverse_ids = concept_search(reverse, pair.texts[0], 1, pair.device).ids
        rows = choose_mutual(scores, ids, reverse_ids, floor)
    else:
        rows = choose_one_to_one(scores, ids, floor)
    n_source, width = scores.shape
    candidates = pd.DataFrame(
        {
            "source": np.repeat(np.arange(n_source), width),
            "target": ids.reshape(-1),
            "rank": np.tile(np.arange(1, width + 1), n_source),
            "score": scores.reshape(-1),
        }
    )
    candidates = candidates[candidates["target"] >= 0].reset_index(drop=True)
    return Chosen(rows, candidates, zero_shot=note)


def _chosen_self_trained(mapping: KnownMapping, settings: MapSettings, note: str) -> Chosen:
    """The self-trained reranker's top candidates at or above ``min_score`` (a cosine). The
    confidence stays the model's calibration of that cosine: the reranker's own calibration
    was fitted on pseudo-pairs, the easy matches, and would run high on the rest."""
    picked = mapping.chosen[mapping.chosen["score"] >= settings.floor]
    rows = picked[["source", "target", "score"]].to_numpy(dtype=object).tolist()
    candidates = mapping.candidates[["source", "target", "rank", "score"]]
    return Chosen(rows, candidates, reranked=mapping, zero_shot=note)


def choose_reranked(pair: SitePair, settings: MapSettings, found: Found) -> Chosen:
    """The reranker's top candidate of each concept at or above ``min_score``."""
    inputs = KnownInputs(
        known=pair.known,
        source_codes=pair.source_codes,
        source_parents=pair.source_concepts["parent_code"].to_numpy(dtype=object),
        source_texts=pair.source_concepts["description"].tolist(),
        source_vectors=found.forward[0][0],
        target_parents=pair.target_concepts["parent_code"].to_numpy(dtype=object),
        target_texts=pair.target_concepts["description"].tolist(),
        target_vectors=vectors_of(pair.indexes[0][1]),
        dense_ids=found.ids,
        usage=pair.usage,
    )
    wider = RerankSettings(settings.k + pair.most_rejected, train_max=settings.train_max)
    reranked = rechoose_without_rejected(
        map_with_known(inputs, wider), pair.rejected_rows, settings.k
    )
    picked = reranked.chosen[reranked.chosen["score"] >= settings.floor]
    rows = picked[["source", "target", "score"]].to_numpy(dtype=object).tolist()
    confidence = picked["confidence"].to_numpy(dtype=np.float64)
    note = reranked.equivalence_note()
    return Chosen(rows, reranked.candidates, confidence, reranked, note=note)


def run_method(pair: SitePair, settings: MapSettings) -> str:
    """What a run's mappings record as their method: ``model:strategy[+known|+learned]``
    (+learned: the reranker learned from people's decisions alone)."""
    return f"{pair.spec}:{settings.strategy}" + (
        "" if pair.known is None else "+known" if settings.known is not None else "+learned"
    )


@dataclass
class RunTables:
    """What one run stores: its ``run`` row, the ``method`` it records, the candidates and
    the mappings (with people's decisions applied) in the stored tables' columns."""

    run: dict[str, Any]
    method: str
    candidates: pd.DataFrame
    mappings: pd.DataFrame
    matches: pd.DataFrame | None = None


def run_tables(
    pair: SitePair, settings: MapSettings, found: Found, chosen: Chosen, run_id: str
) -> RunTables:
    """The candidates and mappings tables of the run ``run_id``, and its run row."""
    method = run_method(pair, settings)
    long = chosen.candidates
    candidates = pd.DataFrame(
        {
            "source_site": pair.source,
            "source_code": pair.source_codes[long["source"].to_numpy(dtype=np.int64)],
            "target_site": pair.target,
            "target_code": pair.target_codes[long["target"].to_numpy(dtype=np.int64)],
            "rank": long["rank"].to_numpy(dtype=np.int32),
            "score": long["score"].to_numpy(dtype=np.float64),
            "method": method,
            "run_id": run_id,
        }
    )
    mappings = mapping_table(pair, settings, chosen, method)
    # Site and run columns are the same on every row, people's decisions included.
    mappings = apply_decisions(pair.decisions, mappings, candidates).assign(
        source_site=pair.source, target_site=pair.target, run_id=run_id
    )
    run = {
        "run_id": run_id,
        "source": pair.source,
        "target": pair.target,
        "model": pair.spec,
        "strategy": settings.strategy,
        "k": settings.k,
        "min_score": settings.min_score,
        "n_source": int(found.scores.shape[0]),
        "n_mapped": len(mappings),
    }
    matches = None
    if chosen.matches is not None and len(chosen.matches):
        matches = chosen.matches.assign(source_site=pair.source, target_site=pair.target,
                                        run_id=run_id)  # fmt: skip
        via = candidates.merge(matches, on=["source_code", "target_code"], how="left")["via_code"]
        candidates["method"] = np.where(via.notna().to_numpy(), method + MAPS_TO, method)
    return RunTables(run, method, candidates, mappings, matches)


def mapping_table(
    pair: SitePair, settings: MapSettings, chosen: Chosen, method: str
) -> pd.DataFrame:
    """The chosen mappings with their confidence (the reranker's, or the calibration's of the
    score; below ``min_confidence`` left out) and the predicate the known pairs assert."""
    rows = np.array(chosen.rows, dtype=object).reshape(-1, 3)
    mappings = pd.DataFrame(
        {
            "source_code": pair.source_codes[rows[:, 0].astype(int)],
            "target_code": pair.target_codes[rows[:, 1].astype(int)],
            "score": rows[:, 2].astype(np.float64),
            "method": chosen.methods if chosen.methods is not None else method,
        }
    )
    if chosen.confidence is not None:
        mappings["confidence"] = chosen.confidence
    elif pair.calibration is not None:
        mappings["confidence"] = confidence(pair.calibration, mappings["score"].to_numpy(float))
    else:
        mappings["confidence"] = np.nan
    if settings.min_confidence is not None:  # read_pair refused it without a confidence
        mappings = mappings[mappings["confidence"] >= settings.min_confidence]
    asserted = pair.known.asserted if pair.known is not None else {}
    pairs_chosen = zip(mappings["source_code"], mappings["target_code"], strict=True)
    mappings["predicate"] = pd.Series([asserted.get(p) for p in pairs_chosen], dtype=object)
    return mappings


def write_output(path: Path, preview: pd.DataFrame, tables: RunTables) -> None:
    """The stored mappings as a CSV file, with the run's method and id."""
    with atomic_path(path) as tmp:
        preview.assign(method=tables.method, run_id=tables.run["run_id"]).to_csv(tmp, index=False)


def store_run(ws: Workspace, pair: SitePair, tables: RunTables) -> pd.DataFrame:
    """Replaces the pair's candidates and mappings with the run's, in one transaction; gives
    the stored mappings as :data:`MapResult.mappings` shows them."""
    source, target = pair.source, pair.target
    with ws.transaction() as con:
        sql.run_internal(con, "delete_pair_candidates", source=source, target=target)
        sql.run_internal(con, "delete_pair_mappings", source=source, target=target)
        sql.run_internal(con, "delete_pair_matches", source=source, target=target)
        if tables.matches is not None:
            con.register("new_matches", tables.matches)
            sql.run_internal(con, "insert_matches")
            con.unregister("new_matches")
        con.register("new_candidates", tables.candidates)
        sql.run_internal(con, "insert_candidates")
        con.unregister("new_candidates")
        con.register("new_mappings", tables.mappings)
        sql.run_internal(con, "insert_mappings")
        con.unregister("new_mappings")
        sql.run_internal(con, "insert_run", **tables.run, version=__version__)
        return sql.run_internal(con, "mapping_preview", source=source, target=target).df()
