"""Retrieval: each source concept's nearest target concepts, from one model's index or several.

With several models (``--model a+b``) each one's ranking is searched and the rankings are fused
by reciprocal rank, so a mapping can draw on models that are good at different things.

A site whose concepts have several texts (names and synonyms) or 'Maps to' edges has more index
rows than concepts: :func:`concept_search` collapses the text hits onto concepts (the best text
wins) and follows the edges of the non-standard concepts it hits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from harmonize.core.config import (
    FUSION_DEPTH,
    RRF_K,
)
from harmonize.index.faiss_index import search, vectors_of

if TYPE_CHECKING:
    import faiss

SPREAD_MAX = 8  # first search depth per concept wanted, for sites with many synonyms


def fused_search(
    pairs: list[tuple[np.ndarray, faiss.Index]], k: int, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k target rows per query. One model: plain cosine search. Several: each model's top
    ``FUSION_DEPTH`` lists are fused by reciprocal rank (sum of 1 / (60 + rank)), and each
    fused candidate's score is its mean cosine over the models (comparable with one model's).
    """
    if len(pairs) == 1:
        queries, index = pairs[0]
        return search(index, queries, k, device)
    n_targets = pairs[0][1].ntotal
    width = min(k, n_targets)
    lists = [search(index, queries, max(k, FUSION_DEPTH), device)[1] for queries, index in pairs]
    targets = [vectors_of(index) for _, index in pairs]
    n = len(pairs[0][0])
    out_ids = np.zeros((n, width), dtype=np.int64)
    out_scores = np.zeros((n, width), dtype=np.float32)
    for i in range(n):
        fused: dict[int, float] = {}
        for ranked in lists:
            for rank, t in enumerate(ranked[i], start=1):
                fused[int(t)] = fused.get(int(t), 0.0) + 1.0 / (RRF_K + rank)
        top = sorted(fused, key=lambda t: (-fused[t], t))[:width]
        cosines = [
            vecs[top] @ queries[i] for (queries, _), vecs in zip(pairs, targets, strict=True)
        ]
        out_ids[i] = top
        out_scores[i] = np.mean(cosines, axis=0)
    return out_scores, out_ids


@dataclass
class SiteTexts:
    """A site's index rows as concepts: rows ``0..n-1`` hold the ``n`` concepts' names, row
    ``n + j`` synonym ``synonyms[j]`` of concept ``concept_of[n + j]``; ``maps_to`` lists, per
    non-standard concept kept for search, the standard concepts its 'Maps to' edges lead to.

    >>> texts = SiteTexts(np.array([0, 1, 0]), ["pyrexia"])
    >>> texts.n_concepts, texts.plain, texts.texts_per_concept, texts.synonym(2)
    (2, False, 2, 'pyrexia')
    """

    concept_of: np.ndarray
    synonyms: list[str] = field(default_factory=list)
    maps_to: dict[int, list[int]] = field(default_factory=dict)

    @property
    def n_concepts(self) -> int:
        return len(self.concept_of) - len(self.synonyms)

    @property
    def plain(self) -> bool:
        """One text per concept and no 'Maps to' edge: index rows are concepts."""
        return not self.synonyms and not self.maps_to

    @property
    def texts_per_concept(self) -> int:
        if not len(self.concept_of):
            return 1
        return int(np.bincount(self.concept_of).max())

    @property
    def n_outcomes(self) -> int:
        """How many distinct concepts a hit can stand for: those not followed, and the
        followed ones' targets (a target that is itself followed counts once)."""
        targets = {t for ts in self.maps_to.values() for t in ts}
        return self.n_concepts - len(self.maps_to) + len(targets & self.maps_to.keys())

    def synonym(self, row: int) -> str | None:
        """The synonym index row ``row`` holds (None for a name row)."""
        return None if row < self.n_concepts else self.synonyms[row - self.n_concepts]

    def outcomes(self, concept: int) -> tuple[list[int], int]:
        """(the concepts a hit on ``concept`` stands for, the concept followed or -1)."""
        targets = self.maps_to.get(concept)
        return (targets, concept) if targets else ([concept], -1)


@dataclass
class ConceptHits:
    """Per query row, its candidate concepts best first: ``scores``, concept ``ids``, the
    index row of the text that matched (``text_rows``) and, when the hit was on a non-standard
    concept whose 'Maps to' was followed, that concept (``via``, else -1)."""

    scores: np.ndarray
    ids: np.ndarray
    text_rows: np.ndarray
    via: np.ndarray


def concept_search(
    pairs: list[tuple[np.ndarray, faiss.Index]],
    texts: SiteTexts,
    k: int,
    device: str = "cpu",
) -> ConceptHits:
    """Top-k target concepts per query, a hit on any text of a concept being a hit on it (its
    best text wins) and a hit on a non-standard concept standing for its 'Maps to' targets.
    For a plain site (one text per concept, no edges) this is :func:`fused_search`.

    >>> import faiss
    >>> index = faiss.IndexFlatIP(2)
    >>> index.add(np.array([[1, 0], [0, 1], [0.8, 0.6]], dtype=np.float32))
    >>> texts = SiteTexts(np.array([0, 1, 1]), ["b2"])
    >>> hits = concept_search([(np.array([[0.6, 0.8]], np.float32), index)], texts, 2)
    >>> hits.ids.tolist(), hits.text_rows.tolist()
    ([[1, 0]], [[2, 0]])
    """
    if texts.plain:
        scores, ids = fused_search(pairs, k, device)
        return ConceptHits(scores, ids, ids.copy(), np.full(ids.shape, -1, dtype=np.int64))
    width = min(k, texts.n_outcomes)
    # How many text hits per wanted concept to fetch at first; more are fetched where needed.
    spread = min(texts.texts_per_concept, SPREAD_MAX) * (2 if texts.maps_to else 1)
    lists = [_collapsed(q, index, texts, width, spread, device) for q, index in pairs]
    if len(lists) == 1:
        return lists[0]
    return _fuse_hits(lists, [q for q, _ in pairs], [vectors_of(i) for _, i in pairs], width)


def _collapsed(
    queries: np.ndarray, index: faiss.Index, texts: SiteTexts, width: int, spread: int, device: str
) -> ConceptHits:
    """One model's hits collapsed onto concepts, exactly: collapsing text hits in score order
    gives concepts in the order of their best text, so the first ``width`` concepts found are
    the top ``width``. A query whose first ``width * spread`` text hits hold fewer concepts is
    searched again twice as deep, until it has them or the index is exhausted."""
    n = len(queries)
    out = ConceptHits(
        np.zeros((n, width), np.float32),
        np.zeros((n, width), np.int64),
        np.zeros((n, width), np.int64),
        np.full((n, width), -1, np.int64),
    )
    short = list(range(n))
    depth = width * spread
    while short:
        scores, rows = search(index, queries[short], depth, device)
        short = [
            i for j, i in enumerate(short) if not _fill(out, i, scores[j], rows[j], texts, width)
        ]
        if depth >= index.ntotal:
            break
        depth *= 2
    return out


def _fill(
    out: ConceptHits, i: int, scores: np.ndarray, rows: np.ndarray, texts: SiteTexts, width: int
) -> bool:
    """Writes query ``i``'s first ``width`` distinct concepts; False if there are fewer."""
    seen: set[int] = set()
    for score, row in zip(scores.tolist(), rows.tolist(), strict=True):
        if row < 0:
            break
        targets, via = texts.outcomes(int(texts.concept_of[row]))
        for target in targets:
            if target in seen:
                continue
            j = len(seen)
            seen.add(target)
            out.scores[i, j], out.ids[i, j], out.text_rows[i, j], out.via[i, j] = (
                score, target, row, via
            )  # fmt: skip
            if len(seen) == width:
                return True
    return len(seen) == width


def _fuse_hits(
    lists: list[ConceptHits], queries: list[np.ndarray], vectors: list[np.ndarray], width: int
) -> ConceptHits:
    """Several models' concept hits fused by reciprocal rank; a fused concept's score is its
    mean over the models (a model that did not list it gives its name's cosine), its matched
    text and followed concept those of the first model that listed it."""
    n = lists[0].ids.shape[0]
    out = ConceptHits(
        np.zeros((n, width), np.float32),
        np.zeros((n, width), np.int64),
        np.zeros((n, width), np.int64),
        np.full((n, width), -1, np.int64),
    )
    for i in range(n):
        fused: dict[int, float] = {}
        found: list[dict[int, int]] = []
        for hits in lists:
            ranked = {int(t): j for j, t in enumerate(hits.ids[i])}
            found.append(ranked)
            for t, j in ranked.items():
                fused[t] = fused.get(t, 0.0) + 1.0 / (RRF_K + j + 1)
        top = sorted(fused, key=lambda t: (-fused[t], t))[:width]
        for j, t in enumerate(top):
            per_model = [
                hits.scores[i, ranked[t]] if t in ranked else vecs[t] @ q[i]
                for hits, ranked, q, vecs in zip(lists, found, queries, vectors, strict=True)
            ]
            first = next(m for m, ranked in enumerate(found) if t in ranked)
            at = found[first][t]
            out.scores[i, j] = float(np.mean(per_model))
            out.ids[i, j] = t
            out.text_rows[i, j] = lists[first].text_rows[i, at]
            out.via[i, j] = lists[first].via[i, at]
    return out
