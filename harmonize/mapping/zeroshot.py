"""``map`` with nothing known: the zero-shot levers, on by default (``map --no-zero-shot``
gives plain nearest-neighbour search).

- acronyms expanded from the pair's own vocabularies (:mod:`harmonize.mapping.acronyms`); the
  changed descriptions are embedded (through the workspace's cache) in place of the stored ones;
- hub correction: each candidate's cosine less HUB_WEIGHT times the candidate's mean cosine to
  its HUB_NEIGHBOURS nearest source concepts, so a target near everything (a "hub") no longer
  wins every query it is near (CSLS, Conneau et al. 2018); the stored score stays the cosine;
- self-training (:mod:`harmonize.mapping.rerank.self_training`), when it pays: the pair's own
  unambiguous matches teach the known-pairs reranker, cross-fitted so that no concept teaches
  itself;
- the ICD-10-CM levers of :mod:`harmonize.mapping.icd_levers` ("icd-inclusion", "icd-seventh",
  "icd-notes", "icd-crossref"), for source concepts whose system is ICD10CM: texts read from
  the ICD-10-CM tabular list that the concept is searched by (its best text wins).

Their gains, and the levers tried and not kept, are in reports/mapping-quality.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from harmonize.core.config import (
    HUB_DEPTH,
    HUB_MIN_CONCEPTS,
    HUB_NEIGHBOURS,
    HUB_WEIGHT,
    ZERO_SHOT_LEVERS,
)
from harmonize.index.faiss_index import build_faiss, search, vectors_of
from harmonize.mapping.acronyms import (
    acronym_expansions,
    contrast_words,
    expand_text,
    strip_words,
)
from harmonize.mapping.icd_search import icd_queries, pooled_search
from harmonize.mapping.rerank.known_pairs import KnownPairs
from harmonize.mapping.rerank.pipeline import (
    KnownInputs,
    KnownMapping,
    RerankSettings,
    map_with_known,
)
from harmonize.mapping.rerank.self_training import (
    PseudoPairs,
    cross_fitted,
    enough,
    pseudo_pairs,
)

if TYPE_CHECKING:
    from harmonize.core.workspace import Workspace
    from harmonize.mapping.inputs import MapSettings, SitePair


@dataclass
class ZeroShotSearch:
    """Both sites' vectors (acronyms expanded), each source row's candidates (cosine
    ``scores`` and target ``ids``, in hub-corrected order), each target row's nearest source
    rows (``reverse_scores``, ``reverse_ids``), and what the summary says of it."""

    source_vectors: np.ndarray
    target_vectors: np.ndarray
    scores: np.ndarray
    ids: np.ndarray
    reverse_scores: np.ndarray
    reverse_ids: np.ndarray
    note: str = ""


def zero_shot_search(
    ws: Workspace, pair: SitePair, depth: int, levers: tuple[str, ...] = ZERO_SHOT_LEVERS
) -> ZeroShotSearch:
    """The first ``depth`` candidates of every source concept, with the ``levers``
    "acronyms" (expanded) and "hubs" (corrected) that are asked for (the pair's single
    model)."""
    from harmonize.embed.registry import get_encoder

    encoder = get_encoder(pair.spec.split("+")[0])
    source = vectors_of(pair.indexes[0][0]).copy()
    target = vectors_of(pair.indexes[0][1]).copy()
    texts = [pair.source_concepts["description"].tolist(), pair.target_concepts["description"]]
    texts[1] = texts[1].tolist()
    expansions = acronym_expansions(texts[0], texts[1]) if "acronyms" in levers else {}
    contrast = (
        [contrast_words(texts[0], texts[1]), contrast_words(texts[1], texts[0])]
        if "contrast" in levers
        else [set(), set()]
    )
    changed = sum(
        _rewrite(ws, encoder, vectors, site_texts, expansions, words)
        for vectors, site_texts, words in zip((source, target), texts, contrast, strict=True)
    )
    reverse_scores, reverse_ids = search(build_faiss(source), target, max(2, HUB_NEIGHBOURS))
    large = min(len(source), len(target)) >= HUB_MIN_CONCEPTS
    weight = HUB_WEIGHT if "hubs" in levers and large else 0.0
    hub = reverse_scores[:, :HUB_NEIGHBOURS].mean(axis=1)
    queries = icd_queries(ws, encoder, pair, source, levers)
    cosines, ids = pooled_search(target, queries, max(depth, HUB_DEPTH), weight * hub)
    cosines, ids = cosines[:, :depth], ids[:, :depth]
    used = [f"{len(expansions)} acronyms expanded"] if expansions else []
    if contrast[0] or contrast[1]:
        used.append(
            f"{len(contrast[0]) + len(contrast[1])} words the other site never uses dropped"
        )
    if changed:
        used[-1] += f" ({changed} descriptions rewritten)"
    if weight:
        used.append("hub-corrected ranking")
    if queries.note:
        used.append(queries.note)
    note = "zero-shot: " + ", ".join(used) if used else ""
    return ZeroShotSearch(
        source, target, cosines, ids, reverse_scores, reverse_ids, note
    )  # fmt: skip


def _rewrite(
    ws: Workspace,
    encoder,
    vectors: np.ndarray,
    texts: list[str],
    expansions: dict[str, str],
    words: set[str],
) -> int:
    """Replaces the vectors of the ``texts`` that change (acronyms expanded, ``words`` the
    other site never uses dropped) by the new texts' (embedded through the workspace's
    cache); gives how many changed."""
    from harmonize.embed.cache import EmbeddingCache, embed_texts

    expanded = [strip_words(expand_text(t, expansions), words) for t in texts]
    rows = [i for i, (a, b) in enumerate(zip(texts, expanded, strict=True)) if a != b]
    if rows:
        cache = EmbeddingCache(ws.cache_dir, encoder) if encoder.cacheable else None
        vectors[rows] = embed_texts(encoder, [expanded[i] for i in rows], cache=cache)
    return len(rows)


@dataclass
class SelfTrained:
    """What self-training found (``pseudo``) and, when there were enough pseudo-pairs, the
    cross-fitted reranker's mapping (``mapping``; None: plain search was kept)."""

    pseudo: PseudoPairs
    mapping: KnownMapping | None

    def note(self) -> str:
        """What the map summary says: the pseudo-pairs, or why self-training did not run."""
        if self.mapping is not None:
            return ", " + self.pseudo.note()
        return f", not self-trained (only {len(self.pseudo.rows)} pseudo-pairs)"


def self_trained(pair: SitePair, settings: MapSettings, found: ZeroShotSearch) -> SelfTrained:
    """The pair's pseudo-pairs and, with enough of them, every concept reranked by the
    cross-fitted reranker they teach, over the zero-shot search's candidates."""
    source_texts = pair.source_concepts["description"].tolist()
    target_texts = pair.target_concepts["description"].tolist()
    ids = found.ids
    pseudo = pseudo_pairs(
        source_texts, target_texts, pair.source_codes, pair.target_codes,
        found.scores, ids, found.reverse_scores, found.reverse_ids,
    )  # fmt: skip
    if not enough(pseudo):
        return SelfTrained(pseudo, None)
    source_vectors, target_vectors = found.source_vectors, found.target_vectors

    def rerank(known: KnownPairs) -> KnownMapping:
        inputs = KnownInputs(
            known=known,
            source_codes=pair.source_codes,
            source_parents=pair.source_concepts["parent_code"].to_numpy(dtype=object),
            source_texts=source_texts,
            source_vectors=source_vectors,
            target_parents=pair.target_concepts["parent_code"].to_numpy(dtype=object),
            target_texts=target_texts,
            target_vectors=target_vectors,
            dense_ids=ids,
        )
        return map_with_known(inputs, RerankSettings(settings.k, train_max=settings.train_max))

    return SelfTrained(pseudo, cross_fitted(pseudo, rerank))
