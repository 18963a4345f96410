"""``map --known`` as named stages: the known pairs' candidates, their features, the reranker.

Known concepts keep their known targets; every other concept's candidates (its dense ones and
its neighbours' voted ones) are reranked by a reranker learned from the known ones, cross-fitted
over folds of them (see :mod:`harmonize.mapping.rerank.candidates`). The stages read the two
sites as data (:class:`KnownInputs`, made by the mapping pipeline): no site name, no workspace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harmonize.core.config import (
    KNOWN_FOLDS,
    KNOWN_MIN_PAIRS,
    KNOWN_TAU,
    KNOWN_TRAIN_MAX,
)
from harmonize.core.errors import InputError
from harmonize.mapping.calibration import Calibration, confidence, fit_isotonic
from harmonize.mapping.rerank.candidates import (
    Candidates,
    Pair,
    build_candidates,
    families,
    hierarchy_votes,
    reverse_neighbours,
)
from harmonize.mapping.rerank.cooccurrence import Usage
from harmonize.mapping.rerank.equivalence import equivalence_columns
from harmonize.mapping.rerank.known_pairs import KnownPairs
from harmonize.mapping.rerank.model import (
    fit_reranker,
    rank_candidates,
    reranker_kind,
    training_queries,
)
from harmonize.mapping.rerank.word_differences import cross_fitted_scores, pair_matrix


@dataclass
class KnownInputs:
    """The two sites as the reranker reads them: each one's concept rows (codes, parents,
    texts, unit vectors, in site order), the dense search's candidate target rows per source
    row (``dense_ids``, -1 for none), the known pairs, and both sites' usage when asked."""

    known: KnownPairs
    source_codes: np.ndarray
    source_parents: np.ndarray
    source_texts: list[str]
    source_vectors: np.ndarray
    target_parents: np.ndarray
    target_texts: list[str]
    target_vectors: np.ndarray
    dense_ids: np.ndarray
    usage: Usage | None = None  # with it the reranker also sees USAGE_FEATURES


@dataclass(frozen=True)
class RerankSettings:
    """How the reranker runs: ``k`` candidates kept per concept, the votes' softmax
    temperature ``tau``, and at most ``train_max`` known concepts (a seeded sample) to learn
    from."""

    k: int
    tau: float = KNOWN_TAU
    train_max: int = KNOWN_TRAIN_MAX
    # The share of a random sample of concepts whose search's first candidate is right, for
    # the classifier's prior (rerank.model.first_shift); None: as the known concepts have it.
    first_prior: float | None = None


@dataclass
class KnownMapping:
    """Result of :func:`map_with_known`: candidate rows (source, target, rank, cosine) and one
    chosen row per source concept (source, target, cosine, confidence)."""

    candidates: pd.DataFrame
    chosen: pd.DataFrame
    # Right candidates the equivalence model learned from (0: it did not run), and the known
    # concepts marked exact.
    n_equivalence: int = 0
    n_exact: int = 0
    # The known concepts' candidates (source, target, rank) ranked out of fold: each by the
    # reranker fitted without its fold (what the calibration is fitted on).
    out_of_fold: pd.DataFrame | None = None

    def equivalence_note(self) -> str:
        """What the summary says of the equivalence model ("" when no pair is marked exact)."""
        if not self.n_exact:
            return ""
        if self.n_equivalence:
            return f"; an equivalence model learned from {self.n_equivalence} pairs marked exact"
        return (
            f"; {self.n_exact} pairs marked exact are too few for the equivalence model "
            f"(it needs {KNOWN_MIN_PAIRS} among the reranker's training concepts)"
        )


@dataclass
class Queries:
    """The source rows the reranker sees: the known ones it learns from (``train``, in
    ``folds``) and the ``unknown`` ones it ranks."""

    train: np.ndarray
    folds: list[np.ndarray]
    unknown: np.ndarray


@dataclass
class CandidateSets:
    """Each fold's candidates (scored as if unknown) with their labels, the unknown concepts'
    candidates, and the columns the word-difference and equivalence models add to each."""

    queries: Queries
    folds: list[Candidates]
    labels: list[np.ndarray]
    unknown: Candidates | None
    fold_extra: list[list[np.ndarray]] = field(default_factory=list)
    unknown_extra: list[np.ndarray] = field(default_factory=list)


def map_with_known(inputs: KnownInputs, settings: RerankSettings) -> KnownMapping:
    """Known concepts keep their known targets; every other concept's candidates (its dense
    ones and its neighbours' voted ones) are reranked by a reranker fitted on the known ones.
    With ``inputs.usage`` (both sites' occurrences) the reranker also sees USAGE_FEATURES."""
    require_enough_known(inputs.known.rows)
    queries = split_queries(inputs.known.rows, len(inputs.source_codes), settings.train_max)
    sets = candidate_sets(inputs, feature_pair(inputs, queries), queries, settings.tau)
    words = word_matrices(inputs, sets)
    add_word_difference_scores(sets, words)
    n_equivalence = add_equivalence_scores(inputs, sets, words)
    model, calibration, out_of_fold = fit_calibrated_reranker(
        inputs.known.rows, sets, settings.k, settings.first_prior
    )
    frames = [known_target_rows(inputs, settings.k)]
    if sets.unknown is not None:
        frames.insert(0, rank_unknown(model, calibration, sets, settings.k))
    candidates, chosen = candidate_table(inputs, frames)
    return KnownMapping(candidates, chosen, n_equivalence, len(inputs.known.exact), out_of_fold)


def require_enough_known(known: dict[int, list[int]]) -> None:
    """Refuses fewer than KNOWN_MIN_PAIRS known source concepts in the sites."""
    if len(known) < KNOWN_MIN_PAIRS:
        raise InputError(
            f"{{known}}: only {len(known)} source concepts of the file are in the source site "
            f"with a target in the target site; at least {KNOWN_MIN_PAIRS} are needed",
            params=("known",),
        )


def split_queries(known: dict[int, list[int]], n_source: int, train_max: int) -> Queries:
    """The training sample in KNOWN_FOLDS folds, and the source rows nobody knows."""
    train = training_queries(known, train_max)
    unknown = np.array([i for i in range(n_source) if i not in known], dtype=np.int64)
    folds = [f for f in np.array_split(train, KNOWN_FOLDS) if len(f)]
    return Queries(train, folds, unknown)


def feature_pair(inputs: KnownInputs, queries: Queries) -> Pair:
    """What the candidates' features read: character n-grams of the texts (of the source
    rows that are ever queries) and the reverse neighbours of every possible candidate."""
    from harmonize.embed.encoders import lexical_sparse

    known = inputs.known.rows
    needed = set(queries.train.tolist()) | set(queries.unknown.tolist())
    source_lex = lexical_sparse(
        [t if i in needed else "" for i, t in enumerate(inputs.source_texts)], n_features=2**18
    )
    target_lex = lexical_sparse(inputs.target_texts, n_features=2**18)
    # Every candidate is a dense neighbour of a query or some known concept's target.
    voted = {t for targets in known.values() for t in targets}
    dense = inputs.dense_ids[np.sort(np.array(list(needed), dtype=np.int64))].ravel()
    reverse = reverse_neighbours(
        inputs.source_vectors,
        inputs.target_vectors,
        np.union1d(dense[dense >= 0], np.array(sorted(voted), dtype=np.int64)),
    )
    return Pair(
        inputs.source_vectors, inputs.target_vectors, source_lex, target_lex,
        inputs.source_texts, inputs.target_texts, inputs.target_parents, reverse,
    )  # fmt: skip


def candidate_sets(inputs: KnownInputs, pair: Pair, queries: Queries, tau: float) -> CandidateSets:
    """Each fold's candidates as if its concepts were unknown (their pairs hidden from the
    votes and counts), labelled by the known pairs, and the unknown concepts' candidates."""
    known = inputs.known.rows
    fams = families(inputs.source_codes, inputs.source_parents)  # the same for every fold

    def candidates_of(rows: np.ndarray, knowing: dict[int, list[int]]) -> Candidates:
        votes = hierarchy_votes(
            inputs.source_vectors, inputs.source_codes, inputs.source_parents, knowing, rows,
            tau, fams,
        )  # fmt: skip
        cands = build_candidates(rows, pair, inputs.dense_ids[rows], votes, knowing)
        if inputs.usage is not None:
            extra = inputs.usage.features(rows[cands.query], cands.target, knowing)
            cands.features = np.hstack([cands.features, extra])
        return cands

    fold_cands, labels = [], []
    for fold in queries.folds:
        hidden = set(fold.tolist())
        cands = candidates_of(fold, {s: t for s, t in known.items() if s not in hidden})
        fold_cands.append(cands)
        pairs = zip(fold[cands.query].tolist(), cands.target.tolist(), strict=True)
        labels.append(np.array([t in known[q] for q, t in pairs], dtype=bool))
    unknown = candidates_of(queries.unknown, known) if len(queries.unknown) else None
    return CandidateSets(queries, fold_cands, labels, unknown, [[] for _ in fold_cands])


@dataclass
class WordMatrices:
    """Hashed word differences of each fold's candidate rows and of the unknown ones."""

    folds: list
    unknown: object | None


def word_matrices(inputs: KnownInputs, sets: CandidateSets) -> WordMatrices:
    """:func:`pair_matrix` of every candidate row, fold by fold."""

    def words_of(rows: np.ndarray, cands: Candidates):
        return pair_matrix(
            inputs.source_texts, inputs.target_texts, rows[cands.query], cands.target
        )

    folds = sets.queries.folds
    fold_words = [words_of(fold, c) for fold, c in zip(folds, sets.folds, strict=True)]
    unknown = words_of(sets.queries.unknown, sets.unknown) if sets.unknown is not None else None
    return WordMatrices(fold_words, unknown)


def add_word_difference_scores(sets: CandidateSets, words: WordMatrices) -> None:
    """Adds the word-difference score, cross-fitted over the same folds. (The calibration
    refits the reranker without each fold, on scores whose models saw that fold's labels: a
    second-hand leak that nested fitting would remove at 20 more fits; left as is. The same
    holds for the equivalence model's scores.)"""
    fold_scores, unknown_scores = cross_fitted_scores(words.folds, sets.labels, words.unknown)
    for extra, scores in zip(sets.fold_extra, fold_scores, strict=True):
        extra.append(scores)
    if sets.unknown is not None:
        sets.unknown_extra.append(unknown_scores)


def add_equivalence_scores(inputs: KnownInputs, sets: CandidateSets, words: WordMatrices) -> int:
    """Adds EQUIVALENCE_FEATURES when enough training candidates are exact pairs; gives how
    many the equivalence model learned from (0: it did not run).

    The equivalence model: the same word differences, learned from the concepts whose pairs
    assert a predicate (``judged``), with only the exact pairs right. Approximate pairs teach
    that "X, unspecified" often goes to "Other X"; an exact pair never does, and that is what
    an equivalent concept needs (all held-out ICD-10-CM codes, exact 1:1 pairs: +22 of 1,764
    and +5 of 1,675 on two splits)."""
    known, exact = inputs.known.rows, inputs.known.exact
    folds = sets.queries.folds
    exact_rows = np.array(sorted(exact), dtype=np.int64)
    judged_rows = np.array(sorted(inputs.known.judged | set(exact)), dtype=np.int64)
    exact_labels = [
        lab & np.isin(fold[c.query], exact_rows)
        for fold, c, lab in zip(folds, sets.folds, sets.labels, strict=True)
    ]
    n_equivalence = sum(int(e.sum()) for e in exact_labels)
    if n_equivalence < KNOWN_MIN_PAIRS:
        return 0
    n_targets = len(inputs.target_texts)
    fit_rows = [
        np.isin(fold[c.query], judged_rows) for fold, c in zip(folds, sets.folds, strict=True)
    ]
    fold_eq, unknown_eq = cross_fitted_scores(
        words.folds, exact_labels, words.unknown, fit_rows=fit_rows
    )
    for fold, cands, scores, extra in zip(folds, sets.folds, fold_eq, sets.fold_extra, strict=True):
        hidden = set(fold.tolist())
        others = {s: known[s] for s in exact if s not in hidden}  # as for target_known_uses
        extra.append(equivalence_columns(cands.query, cands.target, scores, others, n_targets))
    if sets.unknown is not None:
        every = {s: known[s] for s in exact}
        sets.unknown_extra.append(
            equivalence_columns(
                sets.unknown.query, sets.unknown.target, unknown_eq, every, n_targets
            )
        )
    return n_equivalence


def fit_calibrated_reranker(
    known: dict[int, list[int]],
    sets: CandidateSets,
    k: int = 1,
    first_prior: float | None = None,
):
    """The reranker fitted on every fold, the calibration of its top candidate's score, and
    the known concepts' top ``k`` candidates ranked out of fold (source, target, rank). The
    kind is chosen once from all training concepts, so the calibration's fold models are the
    same kind as the model it calibrates (and have the same ``first_prior``)."""
    for cands, extra in zip(sets.folds, sets.fold_extra, strict=True):
        cands.features = np.column_stack([cands.features, *extra])
    kind = reranker_kind(len(sets.queries.train))
    model = fit_reranker(sets.folds, sets.labels, kind, first_prior)
    calibration, out_of_fold = _top1_calibration(
        sets.queries.folds, sets.folds, sets.labels, known, kind, k, first_prior
    )
    return model, calibration, out_of_fold


def _top1_calibration(
    folds: list[np.ndarray],
    fold_cands: list[Candidates],
    labels: list[np.ndarray],
    known: dict[int, list[int]],
    kind: str,
    k: int = 1,
    first_prior: float | None = None,
) -> tuple[Calibration, pd.DataFrame]:
    """Isotonic P(top candidate is right | its reranker score), fitted on out-of-fold
    predictions: each fold ranked by a reranker fitted on the other folds. (A ranker's score
    is no probability; with the earlier classifier, its own probability also ran low for the
    top candidate: 0.36 predicted where 0.43 of held-out ICD-10-CM codes were right.)

    The map is then applied to the scores of the model fitted on all folds. Ranker scores have
    no fixed scale, so the fold models' scales can differ a little from it (a classifier's are
    probabilities); on all held-out ICD-10-CM codes the confidence stayed well calibrated
    (Brier 0.036-0.037 on three splits)."""
    probs, hits, ranks = [], [], []
    for i, (fold, cands) in enumerate(zip(folds, fold_cands, strict=True)):
        others = [j for j in range(len(folds)) if j != i]
        if not others:
            raise InputError(
                "{known}: too few known pairs to calibrate the reranker", params=("known",)
            )
        parts, part_labels = [fold_cands[j] for j in others], [labels[j] for j in others]
        model = fit_reranker(parts, part_labels, kind, first_prior)
        ranked = rank_candidates(model, cands, len(fold), max(k, 1))
        ranks.append(ranked.assign(source=fold[ranked["query"].to_numpy()]))
        ranked = ranked[ranked["rank"] == 1]
        targets = ranked["target"].tolist()
        probs.append(ranked["ranker"].to_numpy())
        queries = fold[ranked["query"].to_numpy()].tolist()
        hits.append([t in known[q] for q, t in zip(queries, targets, strict=True)])
    calibration = fit_isotonic(np.concatenate(probs), np.concatenate(hits).astype(float))
    out_of_fold = pd.concat(ranks, ignore_index=True)[["source", "target", "rank"]]
    return calibration, out_of_fold


def rank_unknown(model, calibration: Calibration, sets: CandidateSets, k: int) -> pd.DataFrame:
    """The unknown concepts' top ``k`` candidates by the reranker (source, target, rank,
    probability); only each one's chosen target gets a probability, its calibrated score."""
    cands, unknown = sets.unknown, sets.queries.unknown
    cands.features = np.column_stack([cands.features, *sets.unknown_extra])
    ranked = rank_candidates(model, cands, len(unknown), k)
    ranked["source"] = unknown[ranked["query"].to_numpy()]
    top = ranked["rank"] == 1
    ranked["probability"] = np.nan  # only the chosen target gets a confidence
    ranked.loc[top, "probability"] = confidence(calibration, ranked.loc[top, "ranker"].to_numpy())
    return ranked.drop(columns="ranker")


def known_target_rows(inputs: KnownInputs, k: int) -> pd.DataFrame:
    """The known concepts' candidates: their known targets, most similar first, probability 1."""
    rows = []
    for s, targets in sorted(inputs.known.rows.items()):
        cos = inputs.target_vectors[targets] @ inputs.source_vectors[s]
        for r, j in enumerate(np.argsort(-cos, kind="stable")[:k].tolist(), start=1):
            rows.append((s, targets[j], r, 1.0))
    return pd.DataFrame(rows, columns=["source", "target", "rank", "probability"])


def candidate_table(
    inputs: KnownInputs, frames: list[pd.DataFrame]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every concept's candidate rows (source, target, rank, cosine score) and its chosen row
    (source, target, score, confidence)."""
    cands = pd.concat(frames, ignore_index=True).sort_values(["source", "rank"], kind="stable")
    cands["score"] = np.einsum(
        "ij,ij->i",
        inputs.source_vectors[cands["source"].to_numpy()],
        inputs.target_vectors[cands["target"].to_numpy()],
    ).astype(np.float64)
    cands = cands[["source", "target", "rank", "score", "probability"]].reset_index(drop=True)
    chosen = cands[cands["rank"] == 1].rename(columns={"probability": "confidence"})
    return cands.drop(columns="probability"), chosen.drop(columns="rank").reset_index(drop=True)
