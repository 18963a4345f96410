"""What is already known: mappings a site has for part of its vocabulary, used to map the rest.

A hospital rarely starts from nothing: some local codes are mapped already (a reviewed subset, a
published crosswalk for part of the vocabulary). Those pairs carry two kinds of knowledge that
plain nearest-neighbour search ignores:

- the hierarchy: a concept's *hierarchy neighbours* (concepts with the same parent, and its
  parent) that are known vote for their targets, each weighted by softmax(cosine / tau) over
  the neighbours, so the most similar sibling counts most. Voted targets join the candidates
  even when the dense search missed them;
- how much to trust each signal: a gradient-boosted ranker (LightGBM LambdaRank) learns, from
  the known pairs themselves, to order a query's candidates by cosine, its rank and gap to the
  best, the neighbours' votes for it and for its parent, how many known concepts already use it,
  character n-gram overlap, whether the candidate's own nearest source concept is the query (a
  target that is the twin of another source concept is rarely the query's), negation,
  specificity and laterality conflicts between the texts (harmonize.qualifiers), and the score
  of a word-difference model learned from the known pairs (harmonize.wordpairs), which learns
  each site's house style: "Sequelae of" in one system is "Late effects of" in the other, and,
  when the known file asserts exact matches (its ``predicate`` column), of an *equivalence
  model*: the same word differences learned from the exact pairs alone, with how many exact
  known pairs already take the candidate. It is cross-fitted: the known concepts it learns from
  are split into folds, and each fold is scored as if unknown (its pairs removed from the votes
  and counts), so the training rows look like the rows it is applied to. (Leave-one-out scoring,
  which hides only the concept itself, trained a worse reranker: ICD-10-CM top-10 0.858 against
  0.971, since unknown concepts are also unknown to each other.) Its score for the chosen
  target, calibrated by isotonic regression on out-of-fold predictions, is the mapping's
  confidence.

Concepts that are themselves known keep their known target (the most similar one when a code
has several), with confidence 1.

>>> votes = hierarchy_votes(
...     np.eye(3, dtype=np.float32), np.array(["a", "b", "c"], dtype=object),
...     np.array(["p", "p", "p"], dtype=object), {1: [7], 2: [8]}, queries=np.array([0]))
>>> {t: round(v, 3) for t, v in votes[0].votes.items()}
{7: 0.5, 8: 0.5}
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harmonize.calibration import Calibration, confidence, fit_isotonic
from harmonize.config import (
    KNOWN_DEPTH,
    KNOWN_FOLDS,
    KNOWN_MIN_PAIRS,
    KNOWN_RANKER_MIN,
    KNOWN_RANKER_TREES,
    KNOWN_TAU,
    KNOWN_TRAIN_MAX,
    RANDOM_STATE,
)
from harmonize.errors import InputError
from harmonize.predicates import parse_predicates
from harmonize.qualifiers import conflicts
from harmonize.usage import Usage
from harmonize.wordpairs import cross_fitted_scores, pair_matrix

# The reranker's features, per (query, candidate). Monotone constraints (probability rising
# with cosine, vote and lexical overlap) were tried and cost 2.6 points of ICD-10-CM top-1.
FEATURES = (
    "cosine",
    "cosine_gap",
    "dense_rank",
    "vote",
    "max_vote",
    "vote_share",
    "known_neighbours",
    "best_neighbour_cosine",
    "target_known_uses",
    "target_parent_vote",
    "lexical",
    "lexical_gap",
    "reverse_rank",
    "reverse_gap",
    "target_hubness",
    "polarity_conflicts",
    "specificity_conflict",
    "laterality_conflict",
)
# Added after FEATURES when both sites have patients (see harmonize.usage); after them come
# the cross-fitted score of the word-difference model (harmonize.wordpairs) and, when the
# known pairs assert exact matches, EQUIVALENCE_FEATURES (see equivalence_columns).
USAGE_FEATURES = ("prevalence_gap", "cooccurrence")
EQUIVALENCE_FEATURES = ("equivalence", "equivalence_gap", "target_exact_uses")


def families(codes: np.ndarray, parents: np.ndarray) -> dict[object, np.ndarray]:
    """Each parent's family (rows): its children, and the parent itself when it is a concept of
    the site. A concept's hierarchy neighbours are its family minus itself.

    >>> {p: f.tolist() for p, f in families(np.array(["A", "A1", "A2"], dtype=object),
    ...                                      np.array([None, "A", "A"], dtype=object)).items()}
    {'A': [0, 1, 2]}
    """
    row_of = {c: i for i, c in enumerate(codes.tolist())}
    children: dict[object, list[int]] = defaultdict(list)
    for i, p in enumerate(parents.tolist()):
        if p is not None and p == p:  # NaN != NaN: a missing parent has no siblings
            children[p].append(i)
    return {
        p: np.array(sorted(kids + ([row_of[p]] if p in row_of else [])), dtype=np.int64)
        for p, kids in children.items()
    }


@dataclass
class Votes:
    """What a query's known hierarchy neighbours say: {target row: vote} (summing to 1, or
    empty), how many of them are known, and the best cosine among those."""

    votes: dict[int, float]
    n_voters: int
    best_cosine: float


def hierarchy_votes(
    vectors: np.ndarray,
    codes: np.ndarray,
    parents: np.ndarray,
    known: dict[int, list[int]],
    queries: np.ndarray,
    tau: float = KNOWN_TAU,
    fams: dict[object, np.ndarray] | None = None,
) -> list[Votes]:
    """For each query row, the votes of its known hierarchy neighbours: softmax of their
    cosine to the query over ``tau``, split evenly over each neighbour's targets. A query
    never votes for itself. Queries are grouped by parent, one matrix product per family.
    ``fams`` is :func:`families` of ``codes`` and ``parents``, for callers that vote often."""
    if fams is None:
        fams = families(codes, parents)
    is_known = np.zeros(len(codes), dtype=bool)
    is_known[list(known)] = True
    out: list[Votes] = [Votes({}, 0, 0.0)] * len(queries)
    groups: dict[object, list[int]] = defaultdict(list)
    for pos, q in enumerate(queries.tolist()):
        p = parents[q]
        if p is not None and p == p:
            groups[p].append(pos)
    for p, positions in groups.items():
        voters_all = fams[p][is_known[fams[p]]]
        if not len(voters_all):
            continue
        sims_all = vectors[queries[positions]] @ vectors[voters_all].T
        for row, pos in enumerate(positions):
            mine = voters_all != queries[pos]
            voters, sims = voters_all[mine], sims_all[row, mine]
            if not len(voters):
                continue
            weights = np.exp((sims - sims.max()) / tau)
            # Neighbours far less similar than the best carry no weight worth a loop (< 1e-6).
            keep = np.flatnonzero(weights >= 1e-6 * weights.sum())
            weights = weights[keep] / weights[keep].sum()
            votes: dict[int, float] = {}
            for w, j in zip(weights.tolist(), voters[keep].tolist(), strict=True):
                share = w / len(known[j])
                for t in known[j]:
                    votes[t] = votes.get(t, 0.0) + share
            out[pos] = Votes(votes, len(voters), float(sims.max()))
    return out


@dataclass
class Candidates:
    """One row per (query, candidate target) with its features, in query order."""

    query: np.ndarray  # position in the query list
    target: np.ndarray  # target row
    features: np.ndarray  # len(query) x (FEATURES, then usage and word-pair columns if added)


@dataclass
class Reverse:
    """The nearest source concepts of some target concepts: ``rows`` (sorted target rows) and,
    per row, the ``ids`` and cosine ``scores`` of its nearest source rows, best first."""

    rows: np.ndarray
    ids: np.ndarray
    scores: np.ndarray

    def features(self, source: np.ndarray, target: np.ndarray, cosine: np.ndarray):
        """Per (source, target) pair: the source's rank among the target's nearest sources
        (``depth`` when it is not among them), how far its cosine is below the target's best
        source, and the target's hubness (mean cosine to its nearest sources)."""
        at = np.searchsorted(self.rows, target)
        if len(target) and not np.array_equal(
            self.rows[np.minimum(at, len(self.rows) - 1)], target
        ):
            raise AssertionError("reverse neighbours missing for some candidate targets")
        ids, scores = self.ids[at], self.scores[at]
        hit = ids == source[:, None]
        rank = np.where(hit.any(axis=1), hit.argmax(axis=1), ids.shape[1]).astype(np.float64)
        return rank, np.maximum(scores[:, 0] - cosine, 0.0), scores.mean(axis=1)


def reverse_neighbours(
    source_vectors: np.ndarray, target_vectors: np.ndarray, rows, depth: int = KNOWN_DEPTH
) -> Reverse:
    """:class:`Reverse` for the target ``rows``, by exact search of the source vectors.

    A target that is some other source concept's twin (its reverse nearest neighbour is not the
    query) is rarely the query's exact match: "umbilical hernia with obstruction" is nearest to
    the source "umbilical hernia with obstruction", not to the query "... without obstruction".

    >>> rev = reverse_neighbours(np.eye(3, dtype=np.float32), np.eye(3, dtype=np.float32),
    ...                          [2, 0], depth=2)
    >>> rev.rows.tolist(), rev.ids[:, 0].tolist()
    ([0, 2], [0, 2])
    """
    from harmonize.index import build_faiss, search

    rows = np.unique(np.asarray(rows, dtype=np.int64))
    scores, ids = search(build_faiss(source_vectors), target_vectors[rows], depth)
    return Reverse(rows, ids, scores.astype(np.float64))


@dataclass
class Pair:
    """What the candidates' features read from the two sites: unit vectors, character n-gram
    vectors and texts of each, the target's parents, and the reverse neighbours of every
    target that can be a candidate."""

    source_vectors: np.ndarray
    target_vectors: np.ndarray
    source_lexical: object  # scipy sparse, rows L2-normalised
    target_lexical: object
    source_texts: list[str]
    target_texts: list[str]
    target_parents: np.ndarray
    reverse: Reverse


def target_uses(known: dict[int, list[int]], n_targets: int) -> np.ndarray:
    """How many of the ``known`` source concepts map to each of ``n_targets`` target rows.

    >>> target_uses({0: [1], 5: [1, 2]}, 4).tolist()
    [0.0, 2.0, 1.0, 0.0]
    """
    uses = np.zeros(n_targets, dtype=np.float64)
    for targets in known.values():
        uses[targets] += 1
    return uses


def build_candidates(
    queries: np.ndarray,
    pair: Pair,
    dense_ids: np.ndarray,
    votes: list[Votes],
    known: dict[int, list[int]],
) -> Candidates:
    """Features of each query's dense candidates and voted targets. ``dense_ids`` and
    ``votes`` hold one entry per query; ``known`` is what the queries may know (for training,
    without the queries' own pairs)."""
    uses = target_uses(known, len(pair.target_vectors))
    depth = dense_ids.shape[1]
    q_pos, t_rows, ranks, vote = [], [], [], []
    for pos in range(len(queries)):
        dense = [int(t) for t in dense_ids[pos] if t >= 0]
        voted = sorted(set(votes[pos].votes) - set(dense))
        targets = dense + voted
        q_pos.append(np.full(len(targets), pos))
        t_rows.append(targets)
        ranks.append(list(range(len(dense))) + [depth] * len(voted))
        vote.append([votes[pos].votes.get(t, 0.0) for t in targets])
    frame = pd.DataFrame(
        {
            "pos": np.concatenate(q_pos).astype(np.int64),
            "target": np.concatenate([np.asarray(t, dtype=np.int64) for t in t_rows]),
            "dense_rank": np.concatenate([np.asarray(r, dtype=np.float64) for r in ranks]),
            "vote": np.concatenate([np.asarray(v, dtype=np.float64) for v in vote]),
        }
    )
    src = queries[frame["pos"].to_numpy()]
    tgt = frame["target"].to_numpy()
    frame["cosine"] = np.einsum("ij,ij->i", pair.source_vectors[src], pair.target_vectors[tgt])
    frame["lexical"] = np.asarray(
        pair.source_lexical[src].multiply(pair.target_lexical[tgt]).sum(axis=1)
    ).ravel()
    by_query = frame.groupby("pos")
    frame["cosine_gap"] = by_query["cosine"].transform("max") - frame["cosine"]
    frame["lexical_gap"] = by_query["lexical"].transform("max") - frame["lexical"]
    frame["max_vote"] = by_query["vote"].transform("max")
    frame["vote_share"] = np.where(frame["max_vote"] > 0, frame["vote"] / frame["max_vote"], 0)
    parents = pair.target_parents[tgt]
    parent = pd.Series(parents, dtype=object).fillna("\0none")
    frame["target_parent_vote"] = frame.groupby([frame["pos"], parent.to_numpy()])[
        "vote"
    ].transform("sum")
    frame.loc[pd.isna(parents), "target_parent_vote"] = 0.0
    n_voters = np.array([v.n_voters for v in votes], dtype=np.float64)
    best = np.array([v.best_cosine for v in votes], dtype=np.float64)
    frame["known_neighbours"] = np.log1p(n_voters[frame["pos"].to_numpy()])
    frame["best_neighbour_cosine"] = best[frame["pos"].to_numpy()]
    frame["target_known_uses"] = np.log1p(uses[tgt])
    reverse = pair.reverse.features(src, tgt, frame["cosine"].to_numpy())
    frame["reverse_rank"], frame["reverse_gap"], frame["target_hubness"] = reverse
    qualifier = np.array(
        [
            conflicts(pair.source_texts[s], pair.target_texts[t])
            for s, t in zip(src, tgt, strict=True)
        ],
        dtype=np.float64,
    ).reshape(-1, 3)
    frame[["polarity_conflicts", "specificity_conflict", "laterality_conflict"]] = qualifier
    return Candidates(
        frame["pos"].to_numpy(),
        tgt,
        frame[list(FEATURES)].to_numpy(dtype=np.float64),
    )


def reranker_kind(n_concepts: int) -> str:
    """Which model learns from ``n_concepts`` known concepts: the LambdaRank "ranker", or with
    fewer than KNOWN_RANKER_MIN the per-row "classifier".

    Held-out ICD-10-CM top-1 with a ranker against a classifier learned from 50 / 200 / 1,000 /
    4,000 known concepts: 0.868 / 0.905 / 0.918 / 0.926 against 0.877 / 0.906 / 0.917 / 0.922
    (three draws each: the classifier ahead at 50, level at 200 and 1,000, the ranker ahead at
    4,000); on the demo's 46 known pairs 72.2 % against 73.5 %.

    >>> reranker_kind(46), reranker_kind(30000)
    ('classifier', 'ranker')
    """
    return "ranker" if n_concepts >= KNOWN_RANKER_MIN else "classifier"


class _RowClassifier:
    """The per-row classifier behind the ranker's interface: ``predict`` gives P(right)."""

    def __init__(self, model):
        self.model = model

    def predict(self, features: np.ndarray) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return self.model.predict_proba(features)[:, 1]


def fit_reranker(parts: list[Candidates], labels: list[np.ndarray], kind: str):
    """A model that scores each query's candidates so that its known targets come first.
    ``parts`` are candidate sets (one per fold, rows of a query together) and ``labels`` their
    rows' "is a known target"; ``kind`` is :func:`reranker_kind`'s choice.

    The "ranker" (LightGBM LambdaRank) learns from each query's candidates together, which is
    the choice map makes; the "classifier" (scikit-learn's gradient-boosted trees) scores each
    row alone, and is better only with few known concepts. On all 34,122 held-out ICD-10-CM
    codes of seed 0 the ranker took top-1 from 92.5 % to 92.9 % and the exact 1:1 pairs from
    94.2 % to 95.0 % (12,000 known concepts)."""
    if kind not in ("ranker", "classifier"):
        raise ValueError(f"unknown reranker kind {kind!r}")
    y = np.concatenate(labels)
    if y.sum() < KNOWN_MIN_PAIRS or (~y).sum() < KNOWN_MIN_PAIRS:
        raise InputError(
            f"--known: only {int(y.sum())} known pairs have their target among the "
            f"candidates; the reranker needs at least {KNOWN_MIN_PAIRS} to learn from"
        )
    features = np.concatenate([c.features for c in parts])
    if kind == "classifier":
        from sklearn.ensemble import HistGradientBoostingClassifier
        from threadpoolctl import threadpool_limits

        classifier = HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, random_state=RANDOM_STATE
        )
        with threadpool_limits(1):  # one thread, as for the ranker below
            return _RowClassifier(classifier.fit(features, y))
    import lightgbm

    # Rows of a query are consecutive within each part (build_candidates): one group each.
    for c in parts:
        if len(c.query) and (np.diff(c.query) < 0).any():
            raise AssertionError("candidate rows are not grouped by query")
    groups = np.concatenate([np.unique(c.query, return_counts=True)[1] for c in parts])
    model = lightgbm.LGBMRanker(
        objective="lambdarank",
        n_estimators=KNOWN_RANKER_TREES,
        learning_rate=0.05,
        num_leaves=31,
        random_state=RANDOM_STATE,
        # One thread: on a busy machine OpenMP threads spin against each other (a 2-core
        # machine with one other job took 290 s to fit what one thread fits in seconds).
        n_jobs=1,
        verbose=-1,
    )
    return model.fit(features, y.astype(int), group=groups)


def rank_candidates(model, cands: Candidates, n_queries: int, k: int) -> pd.DataFrame:
    """The top ``k`` candidates of each query by the reranker's score: query, target, rank
    (1 = best), score (comparable within a query, uncalibrated)."""
    score = model.predict(cands.features)
    # Usage features, when there are any, follow the FEATURES columns.
    features = dict(zip(FEATURES, cands.features.T[: len(FEATURES)], strict=True))
    frame = pd.DataFrame(
        {
            "query": cands.query,
            "target": cands.target,
            "ranker": score,
            "vote": features["vote"],
            "cosine": features["cosine"],
        }
    )
    # Ties (trees give candidates the same score) go to the neighbours' vote, then the cosine
    # (with the earlier classifier, sorting by its probability alone left a right target
    # outside the top 10 for 12 % of held-out ICD-10-CM codes).
    frame = frame.sort_values(
        ["query", "ranker", "vote", "cosine"],
        ascending=[True, False, False, False],
        kind="stable",
    ).drop(columns=["vote", "cosine"])
    frame["rank"] = frame.groupby("query").cumcount() + 1
    frame = frame[frame["rank"] <= k].reset_index(drop=True)
    missing = set(range(n_queries)) - set(frame["query"].tolist())
    if missing:  # every query has at least its dense candidates
        raise AssertionError(f"queries without candidates: {sorted(missing)[:5]}")
    return frame


def reranker_sample_size(value: int | None) -> int:
    """``--reranker-concepts`` checked, or KNOWN_TRAIN_MAX when not given. (map and bench-map
    both check it before they write anything.)

    >>> reranker_sample_size(None) == KNOWN_TRAIN_MAX, reranker_sample_size(50)
    (True, 50)
    """
    if value is None:
        return KNOWN_TRAIN_MAX
    if value < KNOWN_MIN_PAIRS:
        raise InputError(f"--reranker-concepts must be at least {KNOWN_MIN_PAIRS}, got {value}")
    return value


def training_queries(known: dict[int, list[int]], limit: int = KNOWN_TRAIN_MAX) -> np.ndarray:
    """The known concepts the reranker learns from, in a seeded random order (so that
    consecutive folds are random): all of them, or the first ``limit``."""
    rows = np.array(sorted(known), dtype=np.int64)
    return np.random.default_rng(RANDOM_STATE).permutation(rows)[:limit]


def read_known(path, source_codes: np.ndarray, target_codes: np.ndarray) -> dict[int, list[int]]:
    """Known pairs from a CSV with columns source_code,target_code, as {source row: [target
    rows]}; pairs naming a code that is not in the sites are ignored (counted by the caller)."""
    from harmonize.evaluate import read_gold

    return known_rows(read_gold(path), source_codes, target_codes)


def known_rows(
    gold: pd.DataFrame, source_codes: np.ndarray, target_codes: np.ndarray
) -> dict[int, list[int]]:
    """:func:`read_known` on a pairs table already read."""
    src = {c: i for i, c in enumerate(source_codes.tolist())}
    tgt = {c: i for i, c in enumerate(target_codes.tolist())}
    known: dict[int, list[int]] = defaultdict(list)
    for s, t in zip(gold["source_code"].tolist(), gold["target_code"].tolist(), strict=True):
        if s in src and t in tgt and tgt[t] not in known[src[s]]:
            known[src[s]].append(tgt[t])
    return {s: sorted(ts) for s, ts in known.items() if ts}


def known_predicates(gold: pd.DataFrame, where: object) -> dict[tuple[str, str], str]:
    """The mapping predicates of a known-pairs table, {(source_code, target_code): SKOS CURIE},
    from its optional ``predicate`` column (exact, close, broad, narrow, related); empty cells
    assert nothing. Errors name ``where`` (the file).

    >>> pairs = pd.DataFrame({"source_code": ["A", "B"], "target_code": ["X", "Y"],
    ...                       "predicate": ["exact", ""]})
    >>> known_predicates(pairs, "pairs.csv")
    {('A', 'X'): 'skos:exactMatch'}
    """
    if "predicate" not in gold.columns:
        return {}
    parsed = parse_predicates(gold["predicate"], f"{where}: column predicate")
    return {
        (s, t): p
        for s, t, p in zip(gold["source_code"], gold["target_code"], parsed, strict=True)
        if p is not None
    }


def equivalence_rows(
    known: dict[int, list[int]],
    asserted: dict[tuple[str, str], str],
    source_codes: np.ndarray,
    target_codes: np.ndarray,
) -> tuple[set[int], set[int]]:
    """What the equivalence model learns from: the known source rows whose one known target is
    asserted an exact match (skos:exactMatch), and the rows whose every known pair asserts
    some predicate (exact or not). Only the latter are examples: an empty predicate asserts
    nothing, so it is neither an exact pair nor a counterexample.

    >>> equivalence_rows({0: [0], 1: [0, 1], 2: [1]}, {("a", "x"): "skos:exactMatch",
    ...                  ("b", "x"): "skos:exactMatch", ("b", "y"): "skos:closeMatch"},
    ...                  np.array(["a", "b", "c"]), np.array(["x", "y"]))
    ({0}, {0, 1})
    """
    said = {
        s
        for s, targets in known.items()
        if all((source_codes[s], target_codes[t]) in asserted for t in targets)
    }
    exact = {
        s
        for s in said
        if len(known[s]) == 1
        and asserted[(source_codes[s], target_codes[known[s][0]])] == "skos:exactMatch"
    }
    return exact, said


def equivalence_columns(
    query: np.ndarray,
    target: np.ndarray,
    scores: np.ndarray,
    exact_known: dict[int, list[int]],
    n_targets: int,
) -> np.ndarray:
    """EQUIVALENCE_FEATURES of candidate rows (``query``, ``target``) given the equivalence
    model's ``scores``: the score, its gap below the query's best, and how many of the exact
    known pairs in ``exact_known`` already take the target (an equivalent target is rarely
    another concept's equivalent too).

    >>> equivalence_columns(np.array([0, 0, 1]), np.array([0, 1, 1]),
    ...                     np.array([2.0, -1.0, 0.5]), {7: [1]}, 2).tolist()
    [[2.0, 0.0, 0.0], [-1.0, 3.0, 1.0], [0.5, 0.0, 1.0]]
    """
    best = pd.Series(scores).groupby(query).transform("max").to_numpy()
    uses = target_uses(exact_known, n_targets)
    return np.column_stack([scores, best - scores, uses[target]])


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
    from harmonize.embed import lexical_sparse

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
