"""What ``map`` learns from people's decisions: accepted and set pairs become known pairs,
rejected pairs are never proposed again.

Every ``map`` reads the pair's decisions (:mod:`harmonize.mapping.review`). The newest decision
of each concept decides it: an accepted or set target is kept as it is, and with at least
KNOWN_MIN_PAIRS such concepts they are also the known pairs of the reranker of
:mod:`harmonize.mapping.rerank`, which ranks every concept nobody has decided (as ``map --known``
does, its small-data classifier when there are few). A rejected pair is a negative: it is taken
out of its concept's candidates, so that concept gets its next-best candidate (a rejection
names no right target, so it gives the reranker nothing to rank against).

>>> import numpy as np
>>> decisions = pd.DataFrame({"source_code": ["a", "b"], "target_code": ["x", "y"],
...                           "decision": ["set", "reject"], "predicate": ["exact", None]})
>>> rejected = pd.DataFrame({"source_code": ["b"], "target_code": ["y"]})
>>> codes = np.array(["a", "b"]), np.array(["x", "y"])
>>> learned = learn_from_decisions(decisions, rejected, *codes)
>>> learned.known.rows, learned.rejected, learned.active
({0: [0]}, {1: {1}}, False)
>>> learned.note
'; 2 decisions (1 accepted or set, 1 rejected), too few to learn from (10 accepted or set needed)'

"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harmonize.core.config import KNOWN_MIN_PAIRS
from harmonize.mapping.gate import GATE_MIN_PROBES
from harmonize.mapping.rerank.equivalence import equivalence_rows
from harmonize.mapping.rerank.known_pairs import KnownPairs
from harmonize.mapping.rerank.pipeline import KnownMapping


@dataclass
class Learned:
    """The decisions as site rows: ``known`` (accepted and set pairs, with the predicates they
    assert), ``rejected`` ({source row: target rows never to propose}), how many decisions of
    each kind were read, and whether the reranker runs on them (``active``)."""

    known: KnownPairs
    rejected: dict[int, set[int]] = field(default_factory=dict)
    n_positive: int = 0  # decided concepts (accept or set) whose pair is in the sites
    n_rejected: int = 0  # rejected pairs still standing
    active: bool = False
    skipped: str = ""  # why the reranker does not run on them, when there are decisions
    gate: str = ""  # what the gate (mapping.gate) decided, when the reranker ran
    prior: str = ""  # the first candidates' prior from the decided probes, when there is one

    @property
    def n_decisions(self) -> int:
        return self.n_positive + self.n_rejected

    @property
    def note(self) -> str:
        """What ``map``'s summary says of the decisions ("" when there are none)."""
        if not self.n_decisions:
            return ""
        counts = f"{self.n_positive} accepted or set, {self.n_rejected} rejected"
        if self.active:
            return f"; learned from {self.n_decisions} decisions ({counts}){self.prior}{self.gate}"
        return f"; {self.n_decisions} decisions ({counts}), {self.skipped}"


def learn_from_decisions(
    decisions: pd.DataFrame,
    rejected: pd.DataFrame,
    source_codes: np.ndarray,
    target_codes: np.ndarray,
) -> Learned:
    """``decisions`` (the newest per concept: source_code, target_code, decision, predicate)
    and the standing ``rejected`` pairs (source_code, target_code) on the sites' rows; pairs
    naming a code the sites no longer have are left out."""
    src = {c: i for i, c in enumerate(source_codes.tolist())}
    tgt = {c: i for i, c in enumerate(target_codes.tolist())}
    rows: dict[int, list[int]] = {}
    asserted: dict[tuple[str, str], str] = {}
    for d in decisions.itertuples(index=False):
        if d.decision not in ("accept", "set") or d.source_code not in src:
            continue
        if d.target_code not in tgt:
            continue
        targets = rows.setdefault(src[d.source_code], [])  # several: an imported code's
        if tgt[d.target_code] not in targets:
            targets.append(tgt[d.target_code])
        if isinstance(d.predicate, str):
            asserted[(d.source_code, d.target_code)] = d.predicate
    decided = set(decisions.loc[decisions["decision"] != "reject", "source_code"])
    negatives = rejected_rows(
        rejected[~rejected["source_code"].isin(decided)], source_codes, target_codes
    )
    rows = {s: sorted(t) for s, t in rows.items()}
    exact, judged = equivalence_rows(rows, asserted, source_codes, target_codes)
    learned = Learned(
        KnownPairs(rows, asserted, exact, judged),
        negatives,
        n_positive=len(rows),
        n_rejected=sum(len(v) for v in negatives.values()),
    )
    learned.active = len(rows) >= KNOWN_MIN_PAIRS
    if not learned.active:
        learned.skipped = f"too few to learn from ({KNOWN_MIN_PAIRS} accepted or set needed)"
    return learned


def rejected_rows(
    rejected: pd.DataFrame, source_codes: np.ndarray, target_codes: np.ndarray
) -> dict[int, set[int]]:
    """Rejected pairs (source_code, target_code) as {source row: {target rows}}."""
    src = {c: i for i, c in enumerate(source_codes.tolist())}
    tgt = {c: i for i, c in enumerate(target_codes.tolist())}
    rows: dict[int, set[int]] = {}
    for s, t in zip(rejected["source_code"], rejected["target_code"], strict=True):
        if s in src and t in tgt:
            rows.setdefault(src[s], set()).add(tgt[t])
    return rows


def merge_known(file_pairs: KnownPairs | None, learned: Learned) -> KnownPairs:
    """The known pairs the reranker reads: a ``map --known`` file's, with every decided
    concept's target in place of the file's and rejected pairs taken out."""
    if file_pairs is None:
        return learned.known
    rows = {s: list(t) for s, t in file_pairs.rows.items()}
    for s, bad in learned.rejected.items():
        if s in rows:
            rows[s] = [t for t in rows[s] if t not in bad]
    rows.update(learned.known.rows)
    rows = {s: t for s, t in rows.items() if t}
    asserted = {**file_pairs.asserted, **learned.known.asserted}
    exact = (file_pairs.exact - learned.known.rows.keys()) | learned.known.exact
    judged = (file_pairs.judged - learned.known.rows.keys()) | learned.known.judged
    return KnownPairs(rows, asserted, exact & rows.keys(), judged & rows.keys())


def drop_rejected(candidates: pd.DataFrame, rejected: dict[int, set[int]]) -> pd.DataFrame:
    """``candidates`` (source, target, rank, ... rows) without the rejected pairs, each
    concept's ranks renumbered from 1.

    >>> cands = pd.DataFrame({"source": [0, 0, 1], "target": [5, 6, 5], "rank": [1, 2, 1]})
    >>> drop_rejected(cands, {0: {5}}).values.tolist()
    [[0, 6, 1], [1, 5, 1]]
    """
    if not rejected:
        return candidates
    pairs = zip(candidates["source"].tolist(), candidates["target"].tolist(), strict=True)
    keep = np.array([t not in rejected.get(s, ()) for s, t in pairs], dtype=bool)
    kept = candidates[keep].sort_values(["source", "rank"], kind="stable").copy()
    kept["rank"] = (kept.groupby("source").cumcount() + 1).astype(candidates["rank"].dtype)
    return kept.reset_index(drop=True)


def without_rejected(
    scores: np.ndarray, ids: np.ndarray, rejected: dict[int, set[int]]
) -> tuple[np.ndarray, np.ndarray]:
    """The search's candidates with each concept's rejected targets moved out (id -1, score
    NaN, after the others: no score passes a floor), so that no strategy proposes a rejected
    pair again.

    >>> s, i = without_rejected(np.array([[0.9, 0.5]]), np.array([[4, 7]]), {0: {4}})
    >>> s.tolist(), i.tolist()
    ([[0.5, nan]], [[7, -1]])
    """
    if not rejected:
        return scores, ids
    scores, ids = scores.copy(), ids.copy()
    for row, bad in rejected.items():
        hit = np.isin(ids[row], list(bad))
        if hit.any():
            keep = ~hit
            n = int(keep.sum())
            ids[row] = np.concatenate([ids[row][keep], np.full(len(hit) - n, -1)])
            scores[row] = np.concatenate([scores[row][keep], np.full(len(hit) - n, np.nan)])
    return scores, ids


def rechoose_without_rejected(
    reranked: KnownMapping, rejected: dict[int, set[int]], k: int
) -> KnownMapping:
    """The reranker's result with the rejected pairs taken out of the candidates, ``k`` left
    per concept: a concept whose chosen target was rejected takes its next candidate (with no
    confidence: the calibration is of the top candidate's score)."""
    if not rejected:
        return reranked
    candidates = drop_rejected(reranked.candidates, rejected)
    candidates = candidates[candidates["rank"] <= k].reset_index(drop=True)
    chosen = reranked.chosen.set_index(["source", "target"])["confidence"]
    top = candidates[candidates["rank"] == 1].drop(columns="rank").reset_index(drop=True)
    keys = list(zip(top["source"].tolist(), top["target"].tolist(), strict=True))
    top["confidence"] = [chosen.get(key, np.nan) for key in keys]
    reranked.candidates, reranked.chosen = candidates, top
    return reranked


@dataclass
class FirstPrior:
    """How often the search's first candidate is right on the decided probes (``share``, of
    ``n`` probes whose right target is among the search's candidates)."""

    share: float
    n: int

    @property
    def note(self) -> str:
        return (
            f"; prior on the search's first candidate from {self.n} decided concepts that the "
            f"review order drew at random (right for {self.share:.0%})"
        )


def first_prior(
    probes: list[int], known: dict[int, list[int]], ids: np.ndarray
) -> FirstPrior | None:
    """The share of the decided ``probes`` (the decided lead of the probe order,
    :func:`~harmonize.mapping.queue.decided_probe_prefix`) whose search's first candidate
    (``ids``: per source row, the search's candidates, best first) is right, among those whose
    right target (``known``) is a candidate: the prior of the classifier learned from the
    decisions (:func:`~harmonize.mapping.rerank.model.first_shift`). None with fewer than
    GATE_MIN_PROBES such probes.

    >>> ids = np.tile(np.arange(3), (30, 1))  # every concept's candidates: 0, 1, 2
    >>> known = {i: [0 if i % 4 else 1] for i in range(30)}  # first candidate right for 3 in 4
    >>> prior = first_prior(list(range(30)), known, ids)
    >>> prior.n, round(prior.share, 3)
    (30, 0.733)
    >>> first_prior(list(range(5)), known, ids) is None  # too few probes
    True
    """
    answered = [s for s in probes if s in known and set(known[s]) & set(ids[s].tolist())]
    if len(answered) < GATE_MIN_PROBES:
        return None
    share = float(np.mean([int(ids[s, 0]) in known[s] for s in answered]))
    return FirstPrior(share, len(answered))
