"""mapping.rerank.pipeline: split from harmonize/known.py (docstring to write)."""

from __future__ import annotations

from dataclasses import dataclass

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
from harmonize.mapping.rerank.model import (
    fit_reranker,
    rank_candidates,
    reranker_kind,
    training_queries,
)
from harmonize.mapping.rerank.word_differences import cross_fitted_scores, pair_matrix


def _top1_calibration(
    folds: list[np.ndarray],
    fold_cands: list[Candidates],
    labels: list[np.ndarray],
    known: dict[int, list[int]],
    kind: str,
) -> Calibration:
    """Isotonic P(top candidate is right | its reranker score), fitted on out-of-fold
    predictions: each fold ranked by a reranker fitted on the other folds. (A ranker's score
    is no probability; with the earlier classifier, its own probability also ran low for the
    top candidate: 0.36 predicted where 0.43 of held-out ICD-10-CM codes were right.)

    The map is then applied to the scores of the model fitted on all folds. Ranker scores have
    no fixed scale, so the fold models' scales can differ a little from it (a classifier's are
    probabilities); on all held-out ICD-10-CM codes the confidence stayed well calibrated
    (Brier 0.036-0.037 on three splits)."""
    probs, hits = [], []
    for i, (fold, cands) in enumerate(zip(folds, fold_cands, strict=True)):
        others = [j for j in range(len(folds)) if j != i]
        if not others:
            raise InputError("--known: too few known pairs to calibrate the reranker")
        model = fit_reranker([fold_cands[j] for j in others], [labels[j] for j in others], kind)
        ranked = rank_candidates(model, cands, len(fold), 1)
        targets = ranked["target"].tolist()
        probs.append(ranked["ranker"].to_numpy())
        queries = fold[ranked["query"].to_numpy()].tolist()
        hits.append([t in known[q] for q, t in zip(queries, targets, strict=True)])
    return fit_isotonic(np.concatenate(probs), np.concatenate(hits).astype(float))


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


def map_with_known(
    known: dict[int, list[int]],
    source_vectors: np.ndarray,
    target_vectors: np.ndarray,
    dense_ids: np.ndarray,
    source_codes: np.ndarray,
    source_parents: np.ndarray,
    source_texts: list[str],
    target_parents: np.ndarray,
    target_texts: list[str],
    k: int,
    tau: float = KNOWN_TAU,
    usage: Usage | None = None,
    train_max: int = KNOWN_TRAIN_MAX,
    exact: set[int] | frozenset[int] = frozenset(),
    judged: set[int] | frozenset[int] = frozenset(),
) -> KnownMapping:
    """Known concepts keep their known targets; every other concept's candidates (its dense
    ones and its neighbours' voted ones) are reranked by a reranker fitted on the known ones.
    With ``usage`` (both sites' occurrences) the reranker also sees USAGE_FEATURES. The
    reranker learns from at most ``train_max`` known concepts (a seeded sample)."""
    if len(known) < KNOWN_MIN_PAIRS:
        raise InputError(
            f"--known: only {len(known)} source concepts of the file are in the source site "
            f"with a target in the target site; at least {KNOWN_MIN_PAIRS} are needed"
        )
    from harmonize.embed.encoders import lexical_sparse

    train = training_queries(known, train_max)
    unknown = np.array([i for i in range(len(source_codes)) if i not in known], dtype=np.int64)
    needed = set(train.tolist()) | set(unknown.tolist())  # only these are ever queries
    source_lex = lexical_sparse(
        [t if i in needed else "" for i, t in enumerate(source_texts)], n_features=2**18
    )
    target_lex = lexical_sparse(target_texts, n_features=2**18)
    fams = families(source_codes, source_parents)  # the same for every fold
    # Every candidate is a dense neighbour of a query or some known concept's target.
    voted = {t for targets in known.values() for t in targets}
    dense = dense_ids[np.sort(np.array(list(needed), dtype=np.int64))].ravel()
    reverse = reverse_neighbours(
        source_vectors,
        target_vectors,
        np.union1d(dense[dense >= 0], np.array(sorted(voted), dtype=np.int64)),
    )
    pair = Pair(
        source_vectors, target_vectors, source_lex, target_lex, source_texts, target_texts,
        target_parents, reverse,
    )  # fmt: skip

    def candidates_of(rows: np.ndarray, knowing: dict[int, list[int]]) -> Candidates:
        votes = hierarchy_votes(
            source_vectors, source_codes, source_parents, knowing, rows, tau, fams
        )
        cands = build_candidates(rows, pair, dense_ids[rows], votes, knowing)
        if usage is not None:
            extra = usage.features(rows[cands.query], cands.target, knowing)
            cands.features = np.hstack([cands.features, extra])
        return cands

    folds = [f for f in np.array_split(train, KNOWN_FOLDS) if len(f)]
    fold_cands, labels = [], []
    for fold in folds:
        hidden = set(fold.tolist())
        cands = candidates_of(fold, {s: t for s, t in known.items() if s not in hidden})
        fold_cands.append(cands)
        pairs = zip(fold[cands.query].tolist(), cands.target.tolist(), strict=True)
        labels.append(np.array([t in known[q] for q, t in pairs], dtype=bool))
    unknown_cands = candidates_of(unknown, known) if len(unknown) else None

    def words_of(rows: np.ndarray, cands: Candidates):
        return pair_matrix(source_texts, target_texts, rows[cands.query], cands.target)

    fold_words = [words_of(fold, c) for fold, c in zip(folds, fold_cands, strict=True)]
    unknown_words = words_of(unknown, unknown_cands) if unknown_cands is not None else None
    # The word-difference score, cross-fitted over the same folds. (The calibration below
    # refits the reranker without each fold, on scores whose models saw that fold's labels:
    # a second-hand leak that nested fitting would remove at 20 more fits; left as is. The
    # same holds for the equivalence model's scores.)
    fold_scores, unknown_scores = cross_fitted_scores(fold_words, labels, unknown_words)
    fold_extra = [[s] for s in fold_scores]
    unknown_extra = [unknown_scores] if unknown_cands is not None else []
    # The equivalence model: the same word differences, learned from the concepts whose pairs
    # assert a predicate (``judged``), with only the exact pairs right. Approximate pairs teach
    # that "X, unspecified" often goes to "Other X"; an exact pair never does, and that is what
    # an equivalent concept needs (all held-out ICD-10-CM codes, exact 1:1 pairs: +22 of
    # 1,764 and +5 of 1,675 on two splits).
    exact_rows = np.array(sorted(exact), dtype=np.int64)
    judged_rows = np.array(sorted(judged | set(exact)), dtype=np.int64)
    exact_labels = [
        lab & np.isin(fold[c.query], exact_rows)
        for fold, c, lab in zip(folds, fold_cands, labels, strict=True)
    ]
    n_equivalence = sum(int(e.sum()) for e in exact_labels)
    if n_equivalence < KNOWN_MIN_PAIRS:
        n_equivalence = 0
    else:
        n_targets = len(target_texts)
        fold_eq, unknown_eq = cross_fitted_scores(
            fold_words,
            exact_labels,
            unknown_words,
            fit_rows=[
                np.isin(fold[c.query], judged_rows)
                for fold, c in zip(folds, fold_cands, strict=True)
            ],
        )
        for fold, cands, scores, extra in zip(folds, fold_cands, fold_eq, fold_extra, strict=True):
            hidden = set(fold.tolist())
            others = {s: known[s] for s in exact if s not in hidden}  # as for target_known_uses
            extra.append(equivalence_columns(cands.query, cands.target, scores, others, n_targets))
        if unknown_cands is not None:
            unknown_extra.append(
                equivalence_columns(
                    unknown_cands.query,
                    unknown_cands.target,
                    unknown_eq,
                    {s: known[s] for s in exact},
                    n_targets,
                )
            )
    for cands, extra in zip(fold_cands, fold_extra, strict=True):
        cands.features = np.column_stack([cands.features, *extra])
    # Chosen once from all training concepts, so the calibration's fold models are the same
    # kind as the model it calibrates.
    kind = reranker_kind(len(train))
    model = fit_reranker(fold_cands, labels, kind)
    calibration = _top1_calibration(folds, fold_cands, labels, known, kind)
    frames = []
    if unknown_cands is not None:
        cands = unknown_cands
        cands.features = np.column_stack([cands.features, *unknown_extra])
        ranked = rank_candidates(model, cands, len(unknown), k)
        ranked["source"] = unknown[ranked["query"].to_numpy()]
        top = ranked["rank"] == 1
        ranked["probability"] = np.nan  # only the chosen target gets a confidence
        ranked.loc[top, "probability"] = confidence(
            calibration, ranked.loc[top, "ranker"].to_numpy()
        )
        ranked = ranked.drop(columns="ranker")
        frames.append(ranked)
    rows = []  # known concepts: their known targets, most similar first
    for s, targets in sorted(known.items()):
        cos = target_vectors[targets] @ source_vectors[s]
        for r, j in enumerate(np.argsort(-cos, kind="stable")[:k].tolist(), start=1):
            rows.append((s, targets[j], r, 1.0))
    frames.append(pd.DataFrame(rows, columns=["source", "target", "rank", "probability"]))
    cands = pd.concat(frames, ignore_index=True).sort_values(["source", "rank"], kind="stable")
    cands["score"] = np.einsum(
        "ij,ij->i",
        source_vectors[cands["source"].to_numpy()],
        target_vectors[cands["target"].to_numpy()],
    ).astype(np.float64)
    cands = cands[["source", "target", "rank", "score", "probability"]].reset_index(drop=True)
    chosen = cands[cands["rank"] == 1].rename(columns={"probability": "confidence"})
    return KnownMapping(
        cands.drop(columns="probability"),
        chosen.drop(columns="rank").reset_index(drop=True),
        n_equivalence,
        len(exact),
    )
