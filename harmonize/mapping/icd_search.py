"""The zero-shot search by several texts per source concept (the ICD-10-CM levers of
:mod:`harmonize.mapping.icd_levers`): each concept's candidates pooled over its texts, the
best text's score winning, and texts that belong to a kind of target (late effects,
aftercare) searched among the targets of that kind only."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from harmonize.index.faiss_index import build_faiss, search

if TYPE_CHECKING:
    from harmonize.core.workspace import Workspace
    from harmonize.mapping.inputs import SitePair


@dataclass
class Queries:
    """The rows the source concepts are searched by: ``vectors``, each row's concept
    (``concept_of``), each row's kind (``kind_of``: an index into ``kinds``, the target rows
    of that kind, or -1: all targets), and what the summary says of it ("" : no lever ran)."""

    vectors: np.ndarray
    concept_of: np.ndarray
    kind_of: np.ndarray
    kinds: list[np.ndarray] = field(default_factory=list)
    note: str = ""

    @classmethod
    def plain(cls, vectors: np.ndarray, note: str = "") -> Queries:
        n = len(vectors)
        return cls(vectors, np.arange(n), np.full(n, -1), [], note)


def target_kind(descriptions: list[str], kind: tuple[str, ...]) -> np.ndarray:
    """The rows of the ``descriptions`` that have a word starting with each word of ``kind``
    ("effect" matches "effects").

    >>> target_kind(["Late effects of burn", "Late onset", "Effect of late"], ("late", "effect"))
    array([0, 2])
    """
    rows = []
    for row, text in enumerate(descriptions):
        found = re.findall(r"[a-z0-9]+", text.lower())
        if all(any(w.startswith(k) for w in found) for k in kind):
            rows.append(row)
    return np.array(rows, dtype=np.int64)


def kind_rows(targets: list[str], kind: tuple[str, ...]) -> tuple[tuple[str, ...], np.ndarray]:
    """(the words kept, the target rows of the kind): when no target has every word of
    ``kind``, words are dropped from the front until some target has the rest, keeping the
    head noun of the phrase ("routine healing" -> "healing", "encounter aftercare" ->
    "aftercare"); ((), no rows) when no target has even the last.

    >>> kind_rows(["Other aftercare", "Encounter for removal"], ("encounter", "aftercare"))
    (('aftercare',), array([0]))
    """
    for start in range(len(kind)):
        rows = target_kind(targets, kind[start:])
        if len(rows):
            return kind[start:], rows
    return (), np.array([], dtype=np.int64)


def icd_queries(
    ws: Workspace, encoder, pair: SitePair, source: np.ndarray, levers: tuple[str, ...]
) -> Queries:
    """The source concepts' query rows: each concept's vector, except that the concepts the
    ICD-10-CM ``levers`` give texts to are searched by those texts' vectors (embedded through
    the workspace's cache); without the package only a note says why they did not run."""
    from harmonize.core import sql
    from harmonize.mapping import icd_tabular
    from harmonize.mapping.icd_levers import ICD10CM, ICD_LEVERS, concept_texts

    asked = tuple(lever for lever in levers if lever in ICD_LEVERS)
    if not asked:
        return Queries.plain(source)
    with ws.connect(read_only=True) as con:
        systems = sql.run_internal(con, "site_concept_systems", site=pair.source).df()["system"]
    if not (systems == ICD10CM).any():
        return Queries.plain(source)
    if not icd_tabular.available():
        return Queries.plain(source, "ICD-10-CM levers not run: " + icd_tabular.missing_message())
    descriptions = pair.source_concepts["description"].tolist()
    texts = concept_texts(pair.source_codes.tolist(), descriptions, systems.tolist(), asked,
                          icd_tabular.tabular())  # fmt: skip
    return _embedded(ws, encoder, pair, source, texts, asked)


def _embedded(ws, encoder, pair, source, texts, asked) -> Queries:
    """The query rows of :func:`icd_queries`: the unchanged concepts' vectors, then every
    lever text's (embedded through the cache), with their kinds' target rows."""
    from harmonize.embed.cache import EmbeddingCache, embed_texts

    rows = [i for i in range(len(source)) if i not in texts]
    extra = [(i, t) for i in sorted(texts) for t in texts[i]]
    kind_names = sorted({t.kind for _, t in extra if t.kind})
    targets = pair.target_concepts["description"].tolist()
    subsets = [kind_rows(targets, kind)[1] for kind in kind_names]
    # a kind no target has is searched among all targets
    index = {kind: k for k, kind in enumerate(kind_names) if len(subsets[k])}
    kind_of = [-1] * len(rows) + [index.get(t.kind, -1) for _, t in extra]
    vectors = source[rows]
    if extra:
        cache = EmbeddingCache(ws.cache_dir, encoder) if encoder.cacheable else None
        embedded = embed_texts(encoder, [t.text for _, t in extra], cache=cache)
        vectors = np.vstack([vectors, embedded.astype(source.dtype)])
    n_kind = sum(k >= 0 for k in kind_of)
    note = (f"{'+'.join(asked)}: {len(texts)} ICD-10-CM concepts searched by {len(extra)} "
            f"texts" + (f" ({n_kind} of a kind)" if n_kind else ""))  # fmt: skip
    return Queries(
        np.ascontiguousarray(vectors),
        np.array(rows + [i for i, _ in extra], dtype=np.int64),
        np.array(kind_of, dtype=np.int64),
        subsets,
        note,
    )


def pooled_search(
    target: np.ndarray, queries: Queries, width: int, penalty: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(cosines, target ids) of each concept's ``width`` best targets over its query rows,
    ordered by cosine less the target's ``penalty``, a row of a kind searching only that kind's
    targets (a concept whose rows find fewer than ``width`` targets has -1 after them); a
    target's score is its best row's cosine.

    >>> target = np.eye(3, dtype=np.float32)
    >>> vectors = np.array([[.9, .4, .1], [0, .6, .8], [.1, .8, .6]], dtype=np.float32)
    >>> queries = Queries(vectors, np.array([0, 1, 1]), np.array([-1, -1, -1]))
    >>> cosines, ids = pooled_search(target, queries, 2, np.zeros(3))
    >>> ids.tolist(), np.round(cosines.astype(float), 2).tolist()
    ([[0, 1], [2, 1]], [[0.9, 0.4], [0.8, 0.8]])
    >>> queries.kind_of, queries.kinds = np.array([-1, 0, -1]), [np.array([0])]
    >>> pooled_search(target, queries, 2, np.zeros(3))[1].tolist()  # row 1 among target 0
    [[0, 1], [1, 2]]
    """
    width = min(width, len(target))
    n_rows = len(queries.concept_of)
    ids = np.full((n_rows, width), -1, dtype=np.int64)
    cosines = np.zeros((n_rows, width), dtype=np.float32)
    keys = np.full((n_rows, width), -np.inf, dtype=np.float64)
    groups = [(-1, np.arange(len(target)))] + list(enumerate(queries.kinds))
    for kind, subset in groups:
        rows = np.flatnonzero(queries.kind_of == kind)
        if not len(rows) or not len(subset):
            continue
        part = min(width, len(subset))
        found_cos, found = search(build_faiss(target[subset]), queries.vectors[rows], part)
        ids[rows, :part] = subset[found]
        cosines[rows, :part] = found_cos
        keys[rows, :part] = found_cos - penalty[subset[found]]
    return _merged(queries.concept_of, ids, cosines, keys, width)


def _merged(
    concept_of: np.ndarray, ids: np.ndarray, cosines: np.ndarray, keys: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each concept's rows merged: its targets by best key, each target once."""
    n_concepts = int(concept_of.max()) + 1 if len(concept_of) else 0
    if len(concept_of) == n_concepts and (concept_of == np.arange(n_concepts)).all():
        order = np.argsort(-keys, axis=1, kind="stable")
        return np.take_along_axis(cosines, order, 1), np.take_along_axis(ids, order, 1)
    out_cos = np.zeros((n_concepts, width), dtype=cosines.dtype)
    out_ids = np.full((n_concepts, width), -1, dtype=ids.dtype)
    by_concept = np.argsort(concept_of, kind="stable")
    bounds = np.searchsorted(concept_of[by_concept], np.arange(n_concepts + 1))
    for concept in range(n_concepts):
        rows = by_concept[bounds[concept] : bounds[concept + 1]]
        flat_ids, flat_keys = ids[rows].ravel(), keys[rows].ravel()
        order = np.argsort(-flat_keys, kind="stable")
        order = order[flat_ids[order] >= 0]
        _, first = np.unique(flat_ids[order], return_index=True)
        keep = order[np.sort(first)][:width]
        out_cos[concept, : len(keep)] = cosines[rows].ravel()[keep]
        out_ids[concept, : len(keep)] = flat_ids[keep]
    return out_cos, out_ids
