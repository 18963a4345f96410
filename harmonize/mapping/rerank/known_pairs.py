"""Known pairs read for ``map --known``: a file of pairs already mapped, turned into site rows.

A known-pairs file names codes; the reranker works on the two sites' concept rows. This module
reads the file once and gives the pairs as rows, the predicates the file asserts, and which
known concepts the equivalence model learns from (:class:`KnownPairs`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harmonize.mapping.metrics import read_gold
from harmonize.mapping.predicates import parse_predicates
from harmonize.mapping.rerank.equivalence import equivalence_rows


def read_known(path, source_codes: np.ndarray, target_codes: np.ndarray) -> dict[int, list[int]]:
    """Known pairs from a CSV with columns source_code,target_code, as {source row: [target
    rows]}; pairs naming a code that is not in the sites are ignored (counted by the caller)."""
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


@dataclass
class KnownPairs:
    """A known-pairs file as site rows: ``rows`` ({source row: [target rows]}), the predicates
    it ``asserted`` ({(source_code, target_code): SKOS CURIE}), the known source rows asserted
    ``exact`` and those whose every pair asserts some predicate (``judged``)."""

    rows: dict[int, list[int]]
    asserted: dict[tuple[str, str], str] = field(default_factory=dict)
    exact: set[int] = field(default_factory=set)
    judged: set[int] = field(default_factory=set)


def load_known_pairs(
    path: str | Path, source_codes: np.ndarray, target_codes: np.ndarray
) -> KnownPairs:
    """The known-pairs file at ``path`` (read once: pairs and predicates) on the sites' codes.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "k.csv").write_text("source_code,target_code,predicate\\na,x,exact\\n")
    >>> pairs = load_known_pairs(folder / "k.csv", np.array(["a", "b"]), np.array(["x"]))
    >>> pairs.rows, pairs.exact, pairs.judged
    ({0: [0]}, {0}, {0})
    """
    gold = read_gold(path)
    rows = known_rows(gold, source_codes, target_codes)
    asserted = known_predicates(gold, path)
    exact, judged = equivalence_rows(rows, asserted, source_codes, target_codes)
    return KnownPairs(rows, asserted, exact, judged)
