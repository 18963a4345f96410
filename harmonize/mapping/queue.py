"""What to review next, and how much of a site's data the review covers.

:func:`review_queue` lists a pair's mappings nobody has decided on (concepts whose newest
decision is a rejection come back once ``map`` proposes another target), in one of
:data:`ORDERS`:

- ``informative`` (the default): how much a decision would teach, the concepts the mapping is
  least sure of first, weighted by how often the code occurs where counts exist
  (:func:`priority`): ``1 - p``, ``p`` the mapping's confidence (``map --known``, learned
  decisions or a calibration), else :func:`uncertainty`'s stand-in from the cosines; every
  2nd concept a probe pick instead (:func:`probe_picks`), a random sample;
- ``frequency``: the codes that occur most first (as Usagi orders by source frequency);
- ``confidence``: least confident first (by cosine where the pair has no confidence);
- ``code``: by source code.

Occurrences are the source site's events with the code (values A and M, absent and missing,
not counted), else the vocabulary's ``frequency`` column; a site with neither has none.
:func:`coverage` gives the share of occurrences whose code is approved, rejected, mapped but
undecided, or unmapped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harmonize.core import sql
from harmonize.core.config import REVIEW_CANDIDATES
from harmonize.core.errors import InputError
from harmonize.core.results import TableResult
from harmonize.core.workspace import Workspace

ORDERS = ("informative", "frequency", "confidence", "code")
# Every PROBE_EVERY-th concept of the informative order is a probe pick (see probe_picks).
PROBE_EVERY = 2
STATUSES = ("approved", "rejected", "undecided", "unmapped")


@dataclass
class ReviewQueue(TableResult):
    """A pair's mappings nobody has decided on yet, in ``order``: one row per concept
    (source_code, source_description, source_parent, target_code, target_description, score,
    method, confidence, occurrences, priority) and each one's top ``candidates`` (source_code,
    rank, target_code, target_description, target_parent, score)."""

    source: str
    target: str
    table: pd.DataFrame
    candidates: pd.DataFrame | None = None
    order: str = "informative"

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def __len__(self) -> int:
        return len(self.table)


def review_queue(
    ws: Workspace,
    source: str,
    target: str,
    order: str = "informative",
    top: int = REVIEW_CANDIDATES,
) -> ReviewQueue:
    """The mappings of ``source`` onto ``target`` most worth a person's check, in ``order``
    (:data:`ORDERS`), with each concept's ``top`` candidates.

    >>> from harmonize.datasets.tiny import tiny_workspace
    >>> ws = tiny_workspace()  # sites a and b, lexical indexes, b mapped onto a
    >>> queue = review_queue(ws, "b", "a", order="confidence")
    >>> [(row["source_code"], row["target_code"]) for row in queue.rows()]
    [('B1', 'A1'), ('B2', 'A2')]
    >>> queue.candidates[["source_code", "rank", "target_code"]].values.tolist()[:2]
    [['B1', 1, 'A1'], ['B1', 2, 'A2']]
    """
    if order not in ORDERS:
        raise InputError(f"unknown order '{order}': use one of {', '.join(ORDERS)}")
    if top < 0:
        raise InputError(f"{{top}} must be 0 or more, got {top}", params=("top",))
    ws.require()
    with ws.connect(read_only=True) as con:
        ws.require_site(con, source)
        ws.require_site(con, target)
        table = sql.run_internal(con, "review", source=source, target=target).df()
        counts = sql.run_internal(con, "site_code_counts", site=source).df()
        candidates = sql.run_internal(
            con, "review_candidates", source=source, target=target, top=top
        ).df()
    table["occurrences"] = table["source_code"].map(occurrences(counts))
    table["priority"] = priority(table)
    table = sort_queue(table, order).reset_index(drop=True)
    candidates = candidates[candidates["source_code"].isin(set(table["source_code"]))]
    return ReviewQueue(source, target, table, candidates.reset_index(drop=True), order)


def occurrences(counts: pd.DataFrame) -> pd.Series:
    """Occurrences per code (code, events, frequency rows): the events where the site has
    any, else the vocabulary's frequency; all NaN when there is neither.

    >>> counts = pd.DataFrame({"code": ["a", "b"], "events": [0, 0], "frequency": [5, None]})
    >>> occurrences(counts).tolist()
    [5.0, nan]
    """
    if counts["events"].sum() > 0:
        return counts.set_index("code")["events"].astype(float)
    return counts.set_index("code")["frequency"].astype(float)


def uncertainty(table: pd.DataFrame) -> np.ndarray:
    """``1 - p`` per mapping: p its confidence; a rejected concept's new proposal with no
    confidence is as uncertain as can be. Where the pair has no confidence, or only the
    confidence of a reranker learned from the pair's own decisions (method ``+learned``),
    a stand-in from the cosines: the rank (0 to 1, in this queue) of the chosen target's
    margin over the next candidate, so that ambiguous matches come first, and a choice the
    reranker made against the cosines (negative margin) before them.

    The learned confidence is left out because it is calibrated on the decided concepts,
    which this order picked as the least sure: on the demo, learning on, 50 reviews by it
    left 83.7 % of the rest right, by the margin 91.8 %. Without learning, 50 reviews by the
    margin left 89.8 % (91.5 % before the zero-shot levers), by the cosine itself 82.0 %, by
    the mean of both ranks 87.8 %.

    >>> t = pd.DataFrame({"confidence": [np.nan] * 3, "margin": [0.3, 0.2, 0.01]})
    >>> uncertainty(t).round(2).tolist()
    [0.0, 0.5, 1.0]
    >>> t = t.assign(confidence=[0.9, 0.1, 0.5], method="minilm:best+learned")
    >>> uncertainty(t).round(2).tolist()
    [0.0, 0.5, 1.0]
    """
    conf = table["confidence"].to_numpy(dtype=float)
    if "method" in table:
        learned = table["method"].astype(str).str.endswith("+learned").to_numpy()
        conf = np.where(learned, np.nan, conf)
    if not np.isnan(conf).all():
        return 1.0 - np.where(np.isnan(conf), 0.0, conf)
    if len(table) < 2:
        return np.ones(len(table))
    sure = table["margin"].fillna(0.0).rank(method="average").to_numpy() - 1
    return 1.0 - sure / max(sure.max(), 1e-12)


def priority(table: pd.DataFrame) -> np.ndarray:
    """How much a decision on each mapping would teach: its :func:`uncertainty`, weighted by
    how often the code occurs where the site counts occurrences: times ``(1 + f) / 2``, ``f``
    the code's log occurrences over the most frequent code's (so frequency at most halves a
    priority; on the demo a full ``log(2 + n)`` weight left 75.5 % of the rest right after 50
    reviews where this one leaves 83.3 %).

    >>> t = pd.DataFrame({"confidence": [0.2, 0.2], "occurrences": [0.0, 99.0]})
    >>> priority(t).round(2).tolist()
    [0.4, 0.8]
    """
    n = table["occurrences"].fillna(0.0).to_numpy(dtype=float)
    if table["occurrences"].isna().all() or n.max() <= 0:
        return uncertainty(table)
    return uncertainty(table) * (1.0 + np.log1p(n) / np.log1p(n.max())) / 2.0


def probe_order(codes: Sequence[str]) -> list[int]:
    """The rows of ``codes`` in the pair's fixed pseudo-random *probe order*: by the first 8
    bytes of each code's BLAKE2b digest, the same on every run and machine (Python's ``hash``
    is salted); the same code always takes the same place.

    >>> probe_order(["c0", "c1", "c2", "c3", "c4"])
    [2, 4, 1, 3, 0]
    """
    digests = (hashlib.blake2b(str(c).encode(), digest_size=8).digest() for c in codes)
    keys = np.fromiter((int.from_bytes(d, "big") for d in digests), dtype=np.uint64,
                       count=len(codes))  # fmt: skip
    return np.argsort(keys, kind="stable").tolist()


def probe_picks(codes: Sequence[str], every: int = PROBE_EVERY) -> list[int]:
    """The positions 0..n-1 of a priority order (``codes`` in it), reordered so that every
    ``every``-th one is a *probe pick*: the first not yet taken in the probe order
    (:func:`probe_order`), the others the most informative left. The probe picks are a random
    sample of the concepts that ``review`` leaves undecided, fixed by the codes alone, so
    decisions also cover the concepts the mapping is surer of (the reranker learns from
    concepts like the rest), and the gate on learning (:mod:`harmonize.mapping.gate`) can
    find them again without anything recorded: in the probe order, every concept up to the
    first undecided one has been decided, whoever picked it.

    >>> codes = [f"c{i}" for i in range(10)]  # in priority order
    >>> [codes[i] for i in probe_order(codes)][:3]
    ['c2', 'c4', 'c7']
    >>> [codes[i] for i in probe_picks(codes)]  # every 2nd: c2, c4, c7, then c6 (c1, c3 taken)
    ['c0', 'c2', 'c1', 'c4', 'c3', 'c7', 'c5', 'c6', 'c8', 'c9']
    """
    n = len(codes)
    probes = probe_order(codes) if every > 0 else []
    taken = np.zeros(n, dtype=bool)
    picked: list[int] = []
    head = probe = 0
    while len(picked) < n:
        if every > 0 and len(picked) % every == every - 1:
            while taken[probes[probe]]:
                probe += 1
            nxt = probes[probe]
        else:
            while taken[head]:
                head += 1
            nxt = head
        picked.append(nxt)
        taken[nxt] = True
    return picked


def decided_probe_prefix(codes: Sequence[str], decided: set[int], eligible: set[int]) -> list[int]:
    """The rows of ``codes`` that lead the probe order (:func:`probe_order`; only ``eligible``
    rows, those ``review`` can list) up to the first one not in ``decided``: a random sample
    of the eligible concepts, all decided, however the decisions were ordered (a review that
    follows ``review``'s order decides them in this order, by its probe picks or before).

    >>> codes = ["a", "b", "c", "d"]
    >>> order = probe_order(codes)
    >>> decided_probe_prefix(codes, set(order[:2]), set(range(4))) == order[:2]
    True
    >>> decided_probe_prefix(codes, set(order[1:]), set(range(4)))
    []
    """
    prefix = []
    for row in probe_order(codes):
        if row not in eligible:
            continue
        if row not in decided:
            break
        prefix.append(row)
    return prefix


def sort_queue(table: pd.DataFrame, order: str) -> pd.DataFrame:
    """``table`` in ``order``; ties by source code. The informative order by priority, with
    probe picks (:func:`probe_picks`)."""
    if order == "code":
        return table.sort_values("source_code", kind="stable")
    if order == "informative":
        ranked = table.sort_values(["priority", "source_code"], ascending=[False, True],
                                   kind="stable")  # fmt: skip
        return ranked.iloc[probe_picks(ranked["source_code"].tolist())]
    if order == "frequency":
        table = table.assign(_n=table["occurrences"].fillna(0.0), _c=table["confidence"])
        keys, ascending = ["_n", "_c", "score", "source_code"], [False, True, True, True]
    else:
        keys, ascending = ["confidence", "score", "source_code"], [True, True, True]
    ordered = table.sort_values(keys, ascending=ascending, kind="stable", na_position="first")
    return ordered.drop(columns=[c for c in ("_n", "_c") if c in ordered.columns])


@dataclass
class Coverage(TableResult):
    """How much of ``source``'s data its review onto ``target`` covers: per status (approved,
    rejected, undecided: mapped by the model and nobody decided, unmapped) the concepts and the
    occurrences (None where the site counts none) with their shares."""

    source: str
    target: str
    table: pd.DataFrame
    counted: bool  # whether the shares are of occurrences (else of concepts)
    mapped_share: float  # of occurrences (else concepts) whose code has a mapping now

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    @property
    def message(self) -> str:
        what = "occurrences" if self.counted else "concepts (the site counts no occurrences)"
        approved = self.table.set_index("status").loc["approved"]
        share = approved["occurrence_share" if self.counted else "concept_share"]
        return (
            f"'{self.source}' onto '{self.target}': {self.mapped_share:.1%} of {what} mapped, "
            f"{share:.1%} approved"
        )


def coverage(ws: Workspace, source: str, target: str) -> Coverage:
    """The review's coverage of ``source`` onto ``target`` by occurrences (:class:`Coverage`).

    >>> from harmonize.datasets.tiny import tiny_workspace
    >>> from harmonize.mapping.review import decide
    >>> ws = tiny_workspace()
    >>> _ = decide(ws, "b", "a", "B1", "accept", reviewer="ana")
    >>> coverage(ws, "b", "a").message
    "'b' onto 'a': 100.0% of concepts (the site counts no occurrences) mapped, 50.0% approved"
    """
    ws.require()
    with ws.connect(read_only=True) as con:
        ws.require_site(con, source)
        ws.require_site(con, target)
        status = sql.run_internal(con, "review_status", source=source, target=target).df()
        counts = sql.run_internal(con, "site_code_counts", site=source).df()
    status["occurrences"] = status["source_code"].map(occurrences(counts))
    counted = bool(status["occurrences"].notna().any())
    grouped = status.groupby("status").agg(
        concepts=("source_code", "size"), occurrences=("occurrences", "sum")
    )
    table = grouped.reindex(list(STATUSES), fill_value=0).rename_axis("status").reset_index()
    table["concept_share"] = table["concepts"] / max(len(status), 1)
    total = table["occurrences"].sum()
    table["occurrence_share"] = table["occurrences"] / total if total > 0 else np.nan
    weight = status["occurrences"].fillna(0.0) if counted else pd.Series(1.0, status.index)
    mapped = float(weight[status["mapped"]].sum() / weight.sum()) if weight.sum() > 0 else 0.0
    if counted:
        table["occurrences"] = table["occurrences"].round().astype("int64")
    else:
        table["occurrences"] = None
    return Coverage(source, target, table, counted, mapped)
