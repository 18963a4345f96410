"""What a target vocabulary adds to ``map``: its synonyms, its 'Maps to' edges and its codes.

- Synonyms and edges are read once (:func:`read_site_texts`) and searched by
  :func:`~harmonize.mapping.retrieve.concept_search`.
- A chosen hit on a non-standard concept stands for every standard concept its 'Maps to'
  edges lead to: :func:`follow_maps_to` keeps them all, as several mappings of the source
  concept, with ``+maps-to`` in their method.
- Before that, a source code equal to a target concept's code in a declared vocabulary
  (``map --code-system``, or the source row's ``system``) maps directly
  (:func:`code_lookup`, method ``code-lookup:SYSTEM``).
- :func:`match_rows` records, per candidate, the synonym that matched and the concept
  followed (table ``matches``), which ``review`` shows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from harmonize.core import sql
from harmonize.core.errors import InputError, literal
from harmonize.mapping.retrieve import ConceptHits, SiteTexts

MAPS_TO = "+maps-to"
CODE_LOOKUP = "code-lookup"


def read_site_texts(con: duckdb.DuckDBPyConnection, site: str, n_concepts: int) -> SiteTexts:
    """The site's index rows as concepts (names, then synonyms) and its 'Maps to' edges."""
    synonyms = sql.run_internal(con, "site_synonyms", site=site).df()
    concept_of = np.concatenate(
        [np.arange(n_concepts, dtype=np.int64), synonyms["concept_id"].to_numpy(dtype=np.int64)]
    )
    links = sql.run_internal(con, "site_links", site=site).fetchall()
    maps_to: dict[int, list[int]] = defaultdict(list)
    for row, target in links:
        maps_to[int(row)].append(int(target))
    return SiteTexts(concept_of, synonyms["text"].tolist(), dict(maps_to))


@dataclass
class Direct:
    """Mappings decided before the search: [source row, target row], their method, and the
    concept followed (-1 if none), per mapping."""

    rows: list[tuple[int, int]]
    methods: list[str]
    via: list[int]

    @property
    def sources(self) -> set[int]:
        return {s for s, _ in self.rows}


def code_lookup(
    con: duckdb.DuckDBPyConnection,
    source: str,
    target: str,
    code_system: str | None,
    texts: SiteTexts,
) -> Direct:
    """The source concepts whose code is a target concept's code, each mapped to it (or, for
    a non-standard concept with 'Maps to' edges, to the standard concepts they lead to)."""
    if code_system is not None:
        systems = [r[0] for r in sql.run_internal(con, "site_systems", site=target).fetchall()]
        if code_system not in systems:
            shown = ", ".join(systems[:20]) or "none"
            raise InputError(
                f"{{code_system}} {literal(code_system)}: target '{literal(target)}' has no "
                f"concept of that vocabulary (it has {literal(shown)})",
                params=("code_system",),
            )
    found = sql.run_internal(
        con, "code_lookup", source=source, target=target, code_system=code_system
    ).fetchall()
    rows: list[tuple[int, int]] = []
    methods: list[str] = []
    via: list[int] = []
    for source_row, target_row, system in found:
        targets, followed = texts.outcomes(int(target_row))
        for t in targets:
            if (int(source_row), t) in rows:
                continue
            rows.append((int(source_row), t))
            methods.append(f"{CODE_LOOKUP}:{system}" + (MAPS_TO if followed >= 0 else ""))
            via.append(followed)
    return Direct(rows, methods, via)


@dataclass
class Expanded:
    """The chosen mappings after the vocabulary's rules: [source row, target row, score],
    their methods, and per mapping the concept followed (-1: none)."""

    rows: list[list]
    methods: list[str]
    via: list[int]
    keep: list[int]  # which chosen rows (by position) survive, for their confidence


def follow_maps_to(
    chosen: list[list],
    hits: ConceptHits,
    texts: SiteTexts,
    method: str,
    direct: Direct,
    cosine: Callable[[int, int], float] | None = None,
) -> Expanded:
    """``chosen`` ([source row, target row, score]) with every 'Maps to' target of a followed
    hit added, and the code lookups replacing the search's choice for their sources (scored
    by ``cosine(source row, target row)``, NaN without it)."""
    rows: list[list] = []
    methods: list[str] = []
    via: list[int] = []
    keep: list[int] = []
    for position, (s, t, score) in enumerate(chosen):
        if s in direct.sources:
            continue
        where = np.flatnonzero(hits.ids[s] == t)
        followed = int(hits.via[s, where[0]]) if len(where) else -1
        targets = texts.maps_to.get(followed, [t]) if followed >= 0 else [t]
        for target in targets:
            rows.append([s, target, score])
            methods.append(method + (MAPS_TO if followed >= 0 else ""))
            via.append(followed)
            keep.append(position)
    for (s, t), name, followed in zip(direct.rows, direct.methods, direct.via, strict=True):
        score = cosine(s, t) if cosine is not None else np.nan
        rows.append([s, t, score])
        methods.append(name)
        via.append(followed)
        keep.append(-1)
    return Expanded(rows, methods, via, keep)


def match_rows(
    hits: ConceptHits,
    texts: SiteTexts,
    expanded: Expanded,
    source_codes: np.ndarray,
    target_codes: np.ndarray,
) -> pd.DataFrame:
    """(source_code, target_code, matched_text, via_code) of every candidate that a synonym
    or a followed 'Maps to' produced, and of every mapping whose concept was followed (a code
    lookup's mapping records no matched text)."""
    records: dict[tuple[int, int], tuple[str | None, str | None]] = {}
    n, width = hits.ids.shape
    for i in range(n):
        for j in range(width):
            row, via = int(hits.text_rows[i, j]), int(hits.via[i, j])
            synonym = texts.synonym(row)
            if synonym is not None or via >= 0:
                records.setdefault(
                    (i, int(hits.ids[i, j])), (synonym, target_codes[via] if via >= 0 else None)
                )
    for (s, t, _), via, kept in zip(expanded.rows, expanded.via, expanded.keep, strict=True):
        # a code lookup matched no text; a followed search hit keeps the text it matched
        synonym = records.get((s, t), (None, None))[0] if kept >= 0 else None
        records[(s, t)] = (synonym, target_codes[via] if via >= 0 else None)
    return pd.DataFrame(
        [
            (source_codes[s], target_codes[t], m, v)
            for (s, t), (m, v) in records.items()
            if m is not None or v is not None
        ],
        columns=["source_code", "target_code", "matched_text", "via_code"],
    )
