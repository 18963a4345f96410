"""Self-training for ``map`` with nothing known: the pair's own unambiguous matches teach the
reranker that ``map --known`` learns from known pairs.

A pair of sites that share nothing known still has matches that nobody needs to check:

- *identical* descriptions once normalised (case, punctuation, word order);
- *shared codes* whose descriptions are each other's nearest neighbour;
- *mutual nearest neighbours with a wide margin*: the source's best target is clearly ahead of
  its second, and that target's own best source is the query, clearly ahead of its second.

Those become pseudo-known pairs for the known-pairs reranker (hierarchy votes, word
differences, reverse neighbours; :mod:`harmonize.mapping.rerank.pipeline`). It is cross-fitted
so that no concept teaches itself: the pseudo-pairs are split in two seeded halves, the reranker
learns from one half and ranks every concept outside it, and the concepts of that half are
ranked by the reranker learned from the other one.

>>> pseudo = pseudo_pairs(
...     ["fever", "Dry  cough", "rash"], ["cough, dry", "fever", "ear pain"],
...     np.array(["a", "b", "c"], dtype=object), np.array(["x", "y", "z"], dtype=object),
...     np.array([[0.9, 0.1], [0.8, 0.2], [0.5, 0.45]]), np.array([[1, 0], [0, 1], [2, 0]]),
...     np.array([[0.9, 0.1], [0.8, 0.2], [0.5, 0.1]]), np.array([[1, 0], [0, 2], [2, 0]]))
>>> pseudo.rows, pseudo.reasons
({0: [1], 1: [0]}, {'identical': 2, 'shared code': 0, 'mutual': 0})
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harmonize.core.config import RANDOM_STATE, SELF_TRAIN_MARGIN, SELF_TRAIN_MIN_PAIRS
from harmonize.mapping.rerank.known_pairs import KnownPairs
from harmonize.mapping.rerank.pipeline import KnownMapping

_WORD = re.compile(r"[a-z0-9]+")


def normalised(text: str) -> str:
    """A description reduced to its sorted lower-case words (punctuation and order dropped).

    >>> normalised("Cough, dry (NOS)") == normalised("dry cough nos")
    True
    """
    return " ".join(sorted(_WORD.findall(str(text).lower())))


@dataclass
class PseudoPairs:
    """The pair's unambiguous matches as {source row: [target row]}, and how many each rule
    found (a pair found by several rules counts under the first)."""

    rows: dict[int, list[int]]
    reasons: dict[str, int] = field(default_factory=dict)

    def note(self) -> str:
        """What the map summary says of them."""
        found = ", ".join(f"{n} {why}" for why, n in self.reasons.items() if n)
        return f"self-trained on {len(self.rows)} pseudo-pairs ({found or 'none'})"


def pseudo_pairs(
    source_texts: list[str],
    target_texts: list[str],
    source_codes: np.ndarray,
    target_codes: np.ndarray,
    scores: np.ndarray,
    ids: np.ndarray,
    reverse_scores: np.ndarray,
    reverse_ids: np.ndarray,
    margin: float = SELF_TRAIN_MARGIN,
) -> PseudoPairs:
    """The pair's unambiguous matches. ``scores``/``ids``: each source row's nearest targets
    (best first, at least two columns); ``reverse_scores``/``reverse_ids``: each target row's
    nearest source rows. Identical normalised descriptions count only when the text names one
    concept at each site."""
    rows: dict[int, list[int]] = {}
    reasons = {"identical": 0, "shared code": 0, "mutual": 0}
    by_text = _unique_texts(target_texts)
    source_by_text = _unique_texts(source_texts)
    for s, text in enumerate(source_texts):
        key = normalised(text)
        if key and source_by_text.get(key) == s and key in by_text:
            rows[s] = [by_text[key]]
            reasons["identical"] += 1
    target_of_code = {c: t for t, c in enumerate(target_codes.tolist())}
    for s in range(len(source_texts)):
        if s in rows or ids.shape[1] == 0 or ids[s, 0] < 0:
            continue
        t = int(ids[s, 0])
        mutual = int(reverse_ids[t, 0]) == s
        if mutual and target_of_code.get(source_codes[s]) == t:
            rows[s] = [t]
            reasons["shared code"] += 1
        elif mutual and _gap(scores[s]) >= margin and _gap(reverse_scores[t]) >= margin:
            rows[s] = [t]
            reasons["mutual"] += 1
    return PseudoPairs(dict(sorted(rows.items())), reasons)


def _unique_texts(texts: list[str]) -> dict[str, int]:
    """{normalised text: row} for the texts that occur once."""
    seen: dict[str, int] = {}
    twice: set[str] = set()
    for i, text in enumerate(texts):
        key = normalised(text)
        if key in seen:
            twice.add(key)
        seen[key] = i
    return {k: i for k, i in seen.items() if k not in twice}


def _gap(row: np.ndarray) -> float:
    """The best score's lead over the second (infinite with one candidate)."""
    return float(row[0] - row[1]) if len(row) > 1 else np.inf


def halves(rows: dict[int, list[int]]) -> tuple[set[int], set[int]]:
    """The pseudo-labelled source rows in two seeded halves.

    >>> a, b = halves({i: [0] for i in range(6)})
    >>> len(a), len(b), a & b
    (3, 3, set())
    """
    order = np.random.default_rng(RANDOM_STATE).permutation(np.array(sorted(rows), dtype=np.int64))
    half = len(order) // 2
    return set(order[:half].tolist()), set(order[half:].tolist())


def enough(pseudo: PseudoPairs) -> bool:
    """Whether each half has enough pseudo-pairs for the reranker to learn from."""
    return len(pseudo.rows) >= 2 * SELF_TRAIN_MIN_PAIRS


def cross_fitted(pseudo: PseudoPairs, rerank: Callable[[KnownPairs], KnownMapping]) -> KnownMapping:
    """Every concept ranked by a reranker that never learned from it: ``rerank`` learns from
    the pseudo-pairs it is given and ranks every other concept; it runs once per half, and each
    concept takes the ranking of the run whose pseudo-pairs do not include it."""
    first, second = halves(pseudo.rows)
    runs = []
    for teach in (first, second):
        runs.append(rerank(KnownPairs({s: pseudo.rows[s] for s in sorted(teach)})))
    # Run 0 learned from ``first``: it ranks everything outside ``first``; run 1 ranks ``first``.
    pick = [~runs[0].candidates["source"].isin(first), runs[1].candidates["source"].isin(first)]
    candidates = pd.concat(
        [run.candidates[keep] for run, keep in zip(runs, pick, strict=True)], ignore_index=True
    ).sort_values(["source", "rank"], kind="stable", ignore_index=True)
    chosen_keep = [~runs[0].chosen["source"].isin(first), runs[1].chosen["source"].isin(first)]
    chosen = pd.concat(
        [run.chosen[keep] for run, keep in zip(runs, chosen_keep, strict=True)],
        ignore_index=True,
    ).sort_values("source", kind="stable", ignore_index=True)
    return KnownMapping(candidates, chosen)
