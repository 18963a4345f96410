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
  specificity and laterality conflicts between the texts (:mod:`.qualifiers`), and the score
  of a word-difference model learned from the known pairs (:mod:`.word_differences`), which learns
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

from harmonize.core.config import (
    KNOWN_DEPTH,
    KNOWN_TAU,
)
from harmonize.mapping.rerank.qualifiers import conflicts

# The reranker's features, per (query, candidate). Monotone constraints (probability rising
# with cosine, vote and lexical overlap) were tried and cost 2.6 points of ICD-10-CM top-1.
CANDIDATE_FEATURES = (
    "cosine",
    "cosine_gap",
    "cosine_lead",
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


# Added after CANDIDATE_FEATURES when both sites have patients (see
# harmonize.mapping.rerank.cooccurrence); after them come the cross-fitted score of the
# word-difference model (harmonize.mapping.rerank.word_differences) and, when the known pairs
# assert exact matches, EQUIVALENCE_FEATURES (see harmonize.mapping.rerank.equivalence).
USAGE_FEATURES = ("prevalence_gap", "cooccurrence")


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
    # len(query) x (CANDIDATE_FEATURES, then usage and word-pair columns if added)
    features: np.ndarray


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
    from harmonize.index.faiss_index import build_faiss, search

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
    frame = candidate_rows(dense_ids, votes)
    src = queries[frame["pos"].to_numpy()]
    tgt = frame["target"].to_numpy()
    add_similarity_columns(frame, pair, src, tgt)
    add_vote_columns(frame, pair, votes, tgt)
    frame["target_known_uses"] = np.log1p(target_uses(known, len(pair.target_vectors))[tgt])
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
        frame[list(CANDIDATE_FEATURES)].to_numpy(dtype=np.float64),
    )


def candidate_rows(dense_ids: np.ndarray, votes: list[Votes]) -> pd.DataFrame:
    """One row per (query position, candidate target): the query's dense candidates in their
    order (``dense_rank`` 0, 1, ...), then its voted targets the search missed (``dense_rank``
    the search depth), with each one's ``vote``.

    >>> candidate_rows(np.array([[4, -1]]), [Votes({4: 0.25, 2: 0.75}, 2, 0.9)]).values.tolist()
    [[0.0, 4.0, 0.0, 0.25], [0.0, 2.0, 2.0, 0.75]]
    """
    depth = dense_ids.shape[1]
    q_pos, t_rows, ranks, vote = [], [], [], []
    for pos in range(len(dense_ids)):
        dense = [int(t) for t in dense_ids[pos] if t >= 0]
        voted = sorted(set(votes[pos].votes) - set(dense))
        targets = dense + voted
        q_pos.append(np.full(len(targets), pos))
        t_rows.append(targets)
        ranks.append(list(range(len(dense))) + [depth] * len(voted))
        vote.append([votes[pos].votes.get(t, 0.0) for t in targets])
    return pd.DataFrame(
        {
            "pos": np.concatenate(q_pos).astype(np.int64),
            "target": np.concatenate([np.asarray(t, dtype=np.int64) for t in t_rows]),
            "dense_rank": np.concatenate([np.asarray(r, dtype=np.float64) for r in ranks]),
            "vote": np.concatenate([np.asarray(v, dtype=np.float64) for v in vote]),
        }
    )


def add_similarity_columns(
    frame: pd.DataFrame, pair: Pair, src: np.ndarray, tgt: np.ndarray
) -> None:
    """Adds cosine and character n-gram overlap (``lexical``) of each (``src``, ``tgt``) row,
    and how far each is below the query's best."""
    frame["cosine"] = np.einsum("ij,ij->i", pair.source_vectors[src], pair.target_vectors[tgt])
    frame["lexical"] = np.asarray(
        pair.source_lexical[src].multiply(pair.target_lexical[tgt]).sum(axis=1)
    ).ravel()
    by_query = frame.groupby("pos")
    best = by_query["cosine"].transform("max")
    frame["cosine_gap"] = best - frame["cosine"]
    # The lead over the best other candidate (the margin on the query's first row): lets the
    # model trust a first candidate by how far ahead it is, as the review order picks by it.
    frame["cosine_lead"] = lead_over_others(frame, best)
    frame["lexical_gap"] = by_query["lexical"].transform("max") - frame["lexical"]


def lead_over_others(frame: pd.DataFrame, best: pd.Series) -> np.ndarray:
    """Each row's ``cosine`` minus the best cosine of the other candidates of its query
    (``pos``; ``best`` is the query's best per row): the margin on the first row, the
    (negative) gap below the best on the others, 0 for a query's only candidate.

    >>> frame = pd.DataFrame({"pos": [0, 0, 0, 1], "cosine": [0.9, 0.7, 0.6, 0.5]})
    >>> best = frame.groupby("pos")["cosine"].transform("max")
    >>> lead_over_others(frame, best).round(2).tolist()
    [0.2, -0.2, -0.3, 0.0]
    """
    # Two group maxima instead of a sort (on the full ICD benchmark's frame 0.009 s against
    # 0.077 s; benchmarks/candidate_lead.py): a query's best other candidate is the best
    # again where two or more tie at the top, else the best of the rest.
    cosine = frame["cosine"].to_numpy()
    top_cosine = np.asarray(best, dtype=cosine.dtype)  # float32 stays float32: bit for bit the sort
    query = frame["pos"].to_numpy()
    top = cosine >= top_cosine
    n_top = pd.Series(top).groupby(query).transform("sum").to_numpy()
    rest = pd.Series(np.where(top, np.nan, cosine)).groupby(query).transform("max").to_numpy()
    second = np.where(n_top >= 2, top_cosine, rest)
    second = np.where(np.isnan(second), top_cosine, second)  # one candidate: no lead
    return cosine - np.where(top, second, top_cosine)


def add_vote_columns(frame: pd.DataFrame, pair: Pair, votes: list[Votes], tgt: np.ndarray) -> None:
    """Adds what the query's known hierarchy neighbours say of each candidate: the best vote
    and this one's share of it, the votes for the candidate's parent, how many neighbours are
    known and the best cosine among them."""
    by_query = frame.groupby("pos")
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
