"""The equivalence model's inputs: which known pairs are exact matches, and its feature columns.

When a known-pairs file asserts exact matches (its ``predicate`` column), the reranker also
sees the score of a word-difference model learned from the exact pairs alone
(EQUIVALENCE_FEATURES); this module picks those pairs and builds the columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harmonize.mapping.rerank.candidates import target_uses

EQUIVALENCE_FEATURES = ("equivalence", "equivalence_gap", "target_exact_uses")


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
