"""``map``'s search and choose stages: the nearest-neighbour search (plain, or with the
zero-shot levers of :mod:`harmonize.mapping.zeroshot`), then one target per concept by a
strategy or by the known-pairs reranker of :mod:`harmonize.mapping.rerank`, then the
vocabulary's 'Maps to' edges. :mod:`harmonize.mapping.pipeline` runs them in order."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from harmonize.core.errors import InputError
from harmonize.core.workspace import Workspace
from harmonize.index.faiss_index import vectors_of
from harmonize.mapping.choose import choose_best, choose_mutual, choose_one_to_one
from harmonize.mapping.gate import choose_weight, fuse
from harmonize.mapping.inputs import MapSettings, SitePair
from harmonize.mapping.learn import first_prior, rechoose_without_rejected, without_rejected
from harmonize.mapping.queue import decided_probe_prefix
from harmonize.mapping.rerank.pipeline import (
    KnownInputs,
    KnownMapping,
    RerankSettings,
    map_with_known,
)
from harmonize.mapping.retrieve import ConceptHits, concept_search
from harmonize.mapping.vocabulary import follow_maps_to, match_rows
from harmonize.mapping.zeroshot import ZeroShotSearch, self_trained, zero_shot_search

if TYPE_CHECKING:
    import faiss


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
    """Whether the zero-shot levers run: asked for (strategy best, one model, no known-pairs
    file) and both sites plain, one text per concept (synonyms and 'Maps to' are searched by
    :func:`search_pair`). With decisions learned from, :func:`gated` weighs the learned
    reranker against the zero-shot ranking."""
    plain = all(t is None or t.plain for t in pair.texts or ())
    return bool(settings.levers) and plain


def zero_shot_found(ws: Workspace, pair: SitePair, settings: MapSettings) -> Found:
    """The zero-shot search (:func:`~harmonize.mapping.zeroshot.zero_shot_search`) as a
    :class:`Found` (its vectors stand for the index's); it finds as many more candidates as
    the most targets rejected for one concept, as :func:`search_pair` does."""
    reranks = "self-training" in settings.levers or pair.known is not None
    depth = settings.depth(reranks) + pair.most_rejected
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
    """One target per source concept: by the known-pairs reranker (learned from people's
    decisions alone, as far as :func:`gated` trusts it), or by the strategy (also when the
    reranker cannot learn from the decisions: too few of their targets among the
    candidates)."""
    if pair.known is None:
        return choose_by_strategy(pair, settings, found)
    # With decisions, the zero-shot choice and the decided probes serve the first
    # candidate's prior, the gate, and the fallback when the reranker cannot learn.
    learning = settings.known is None and pair.learned is not None
    zero = choose_by_strategy(pair, settings, found) if learning else None
    probes = decided_probes(pair, zero) if learning else None
    try:
        # Decisions alone rerank the zero-shot search's candidates (a --known file turns
        # the levers off): they hold the right target more often (top-10 0.77 against
        # 0.50 on the GEMs), so more decisions teach and more concepts can be fixed.
        chosen = choose_reranked(pair, settings, found, probes)
    except InputError as err:
        if not learning:
            raise
        pair.known, pair.learned.active = None, False
        pair.learned.skipped = f"not learned from ({err.render({'known': 'decisions'})})"
        return zero
    return gated(pair, settings, found, chosen, zero, probes) if learning else chosen


def decided_probes(pair: SitePair, zero: Chosen) -> list[int]:
    """The decided lead of the pair's probe order
    (:func:`~harmonize.mapping.queue.decided_probe_prefix`) among the concepts with a
    zero-shot mapping (``zero``; review lists only them): a random sample of them."""
    decided = set(pair.known.rows) | set(pair.rejected_rows)
    eligible = {row[0] for row in zero.rows}
    return decided_probe_prefix(pair.source_codes.tolist(), decided, eligible)


def gated(
    pair: SitePair,
    settings: MapSettings,
    found: Found,
    learned: Chosen,
    zero: Chosen,
    probes: list[int],
) -> Chosen:
    """The reranker learned from the decisions (``learned``), the search's own choice
    (``zero``), or both fused, as :func:`~harmonize.mapping.gate.choose_weight` decides out of
    fold (on the decided ``probes`` when there are enough); what it decided goes to the
    summary."""
    reranked = learned.reranked
    known = pair.known.rows
    scores = without_rejected(found.scores, found.ids, pair.rejected_rows)[0][:, : settings.k]
    margins = scores[:, 0] - np.nanmax(np.nan_to_num(scores[:, 1:], nan=-np.inf), axis=1,
                                       initial=-np.inf)  # fmt: skip
    margins = np.where(np.isfinite(margins), margins, 1.0)  # one candidate: sure of it
    decision = choose_weight(zero.candidates, reranked.out_of_fold, known, margins, probes=probes)
    pair.learned.gate = decision.note
    if decision.weight == 0.0:
        return zero
    if decision.weight == 1.0:
        return replace(learned, zero_shot=zero.zero_shot)
    return _fused(zero, learned, decision.weight, settings)


def _fused(zero: Chosen, learned: Chosen, weight: float, settings: MapSettings) -> Chosen:
    """Both rankings fused with ``weight`` on the learned one; a candidate's score is its
    cosine (the search's where it found it), a mapping's confidence the reranker's where the
    reranker chose the same target."""
    reranked = learned.reranked.candidates
    fused = fuse(zero.candidates, reranked, weight, settings.k)
    cosine = pd.concat([zero.candidates, reranked]).drop_duplicates(["source", "target"])
    fused = fused.merge(cosine[["source", "target", "score"]], on=["source", "target"])
    fused = fused.sort_values(["source", "rank"], kind="stable", ignore_index=True)
    chosen = learned.reranked.chosen.set_index(["source", "target"])["confidence"]
    top = fused[(fused["rank"] == 1) & (fused["score"] >= settings.floor)]
    keys = zip(top["source"].tolist(), top["target"].tolist(), strict=True)
    confidence = np.array([chosen.get(key, np.nan) for key in keys], dtype=np.float64)
    rows = top[["source", "target", "score"]].to_numpy(dtype=object).tolist()
    return Chosen(rows, fused, confidence, learned.reranked, zero_shot=zero.zero_shot)


def choose_by_strategy(pair: SitePair, settings: MapSettings, found: Found) -> Chosen:
    """One target per source concept by the strategy over the search's candidates (the
    zero-shot search's, self-trained when asked and it pays)."""
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


def choose_reranked(
    pair: SitePair, settings: MapSettings, found: Found, probes: list[int] | None = None
) -> Chosen:
    """The reranker's top candidate of each concept at or above ``min_score``. With the
    decided ``probes`` (decisions, not a known-pairs file, which is no sample picked as the
    least sure), the classifier's prior on the search's first candidate comes from them
    (:func:`~harmonize.mapping.learn.first_prior`) and the summary says so."""
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
    prior = None if probes is None else first_prior(probes, pair.known.rows, found.ids)
    if probes is not None:
        pair.learned.prior = "" if prior is None else prior.note
    wider = RerankSettings(
        settings.k + pair.most_rejected, train_max=settings.train_max,
        first_prior=None if prior is None else prior.share,
    )  # fmt: skip
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
