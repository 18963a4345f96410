"""mapping.rerank.known_pairs: split from harmonize/known.py (docstring to write)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd

from harmonize.mapping.predicates import parse_predicates


def read_known(path, source_codes: np.ndarray, target_codes: np.ndarray) -> dict[int, list[int]]:
    """Known pairs from a CSV with columns source_code,target_code, as {source row: [target
    rows]}; pairs naming a code that is not in the sites are ignored (counted by the caller)."""
    from harmonize.mapping.metrics import read_gold

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
