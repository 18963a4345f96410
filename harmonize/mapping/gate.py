"""The gate on learning from decisions: how much ``map`` trusts the reranker learned from
people's decisions against the ranking it has without them (the zero-shot search).

The two rankings are fused per concept, ``w / (1 + rank_learned) + (1 - w) / (1 + rank_zero)``
(a candidate missing from a ranking adds nothing), and the weight ``w`` (GATE_WEIGHTS: 0 keeps
the zero-shot ranking, 1 is the reranker's alone) is 0 unless some weight's top-1 estimated on
the concepts nobody has decided beats the zero-shot ranking's by more than GATE_ERRORS times
the gain's standard error, and then the weight estimated best (ties go to the smaller
weight), out of fold:

- on the decided concepts, each ranked by the reranker fitted without its fold
  (``KnownMapping.out_of_fold``) and by the zero-shot search, which learns nothing;
- corrected for which concepts were decided: ``review`` puts the least sure first, where the
  zero-shot choice is most often wrong, so a plain out-of-fold top-1 on them favours learning.
  The concepts are ordered by the zero-shot margin (the best cosine's lead over the second,
  what the review order reads) and cut into bins of GATE_PER_BIN decided concepts each (at
  most GATE_MAX_BINS), a bin running up to the next bin's first decided concept; each bin's
  top-1 on its decided concepts is weighted by the bin's share of the undecided ones
  (importance weighting by the selection, the density ratio estimated on bins that follow the
  decisions). Hard-first decisions crowd the narrowest margins into bins that hold few
  undecided concepts, and the review order's probe picks stand for the rest. Fixed bins (four
  quartiles of the margin) were tried first: within the first quartile the decided concepts
  were still far harder than the undecided (on ICD, 100 reviews: zero-shot estimated 0.162 on
  the undecided where it scored 0.45, and a fusion that cost 12 points let through).
  Pooling each bin with pseudo-decisions, the undecided concepts with their zero-shot choice
  taken as right, was tried and not kept: on ICD the zero-shot choice is wrong for most
  confident concepts too (top-1 0.285), and the gate then never let learning run;
- where the decisions hold GATE_MIN_PROBES probe picks of the review order (the decided lead
  of its fixed pseudo-random probe order, :func:`~harmonize.mapping.queue.probe_picks`), on
  those alone (still weighted by the bins): a random sample, which the bins cannot make of
  decisions picked as the least sure. Once learning runs the review order picks by the
  learned mapping's margin, not the zero-shot one the bins follow: on ICD, 100 reviews, the
  bins estimated the zero-shot ranking at 0.259 on the undecided where it scored 0.48, and a
  fusion that cost 13.8 points went through;
- and only where the gain is larger than half its standard error (GATE_ERRORS; each decided
  concept whose hit changes counted as an independent +-1 of its weight): with no such rule,
  on the demo, 47 random decisions estimated a gain of 3 points that was a loss of 9 on the
  rest. A whole standard error (until stop 27) was too timid where the decisions are few: on
  1,000 ICD codes, 100 decisions in review order, the gate judged on about 50 probes and kept
  the zero-shot ranking on 8 of 14 samples, though learning paid on every one of the seven
  replayed with the weight forced (+3.3 to +10.5 points at 100 and 200). With half, the rest
  at 100 rose by 2.5 points in review order and 0.9 at random (14 samples), an arm lost more
  than a point in 4 of 112 (sample, arm, count) cases, and on the demo the rest rose at 75
  reviews in review order (0.840 to 0.880) and at 50 at random (0.743 to 0.757). The
  standard error decides whether to learn, not how much: a larger weight changes more
  concepts, so its error is larger, and the weight whose gain less its error is largest, or
  the best of those whose gain clears it, was 0.5 where a 0.75 estimated better paid more. On
  ICD (1,000 codes) that cost 5.4 points of the rest at 200 reviews (S = 4) and 7.7 at 100
  (S = 6).

>>> zero = pd.DataFrame({"source": [0, 0], "target": [5, 6], "rank": [1, 2]})
>>> learned = pd.DataFrame({"source": [0, 0], "target": [6, 5], "rank": [1, 2]})
>>> [fuse(zero, learned, w, 2)["target"].tolist() for w in (0.0, 0.5, 1.0)]
[[5, 6], [5, 6], [6, 5]]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

GATE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
GATE_PER_BIN = 5
GATE_MAX_BINS = 10
# The decided probe concepts judge learning alone when there are at least this many.
GATE_MIN_PROBES = 10
# Learning runs once some weight's gain exceeds this many of its standard errors.
GATE_ERRORS = 0.5


def long_ranking(ids: np.ndarray) -> pd.DataFrame:
    """Each row's candidate ``ids`` (best first, -1 for none) as (source, target, rank) rows.

    >>> long_ranking(np.array([[3, -1], [4, 2]])).values.tolist()
    [[0, 3, 1], [1, 4, 1], [1, 2, 2]]
    """
    n, width = ids.shape
    frame = pd.DataFrame(
        {
            "source": np.repeat(np.arange(n), width),
            "target": ids.reshape(-1),
            "rank": np.tile(np.arange(1, width + 1), n),
        }
    )
    return frame[frame["target"] >= 0].reset_index(drop=True)


def fuse(zero: pd.DataFrame, learned: pd.DataFrame, weight: float, k: int) -> pd.DataFrame:
    """The two rankings (source, target, rank rows) fused with ``weight`` on ``learned``: the
    top ``k`` (source, target, rank) per source; ties go to the ranking with more weight (at
    0.5, the zero-shot one)."""
    both = zero[["source", "target", "rank"]].merge(
        learned[["source", "target", "rank"]], on=["source", "target"], how="outer",
        suffixes=("_zero", "_learned"),
    )  # fmt: skip
    rz = both["rank_zero"].fillna(np.inf).to_numpy(dtype=float)
    rl = both["rank_learned"].fillna(np.inf).to_numpy(dtype=float)
    both["fused"] = weight / (1.0 + rl) + (1.0 - weight) / (1.0 + rz)
    first, second = ("_rl", "_rz") if weight > 0.5 else ("_rz", "_rl")
    both = both.assign(_rz=rz, _rl=rl).sort_values(
        ["source", "fused", first, second, "target"],
        ascending=[True, False, True, True, True], kind="stable",
    )  # fmt: skip
    both["rank"] = both.groupby("source").cumcount() + 1
    return both.loc[both["rank"] <= k, ["source", "target", "rank"]].reset_index(drop=True)


def top1(ranking: pd.DataFrame) -> dict[int, int]:
    """{source: its rank-1 target}."""
    first = ranking[ranking["rank"] == 1]
    return dict(zip(first["source"].tolist(), first["target"].tolist(), strict=True))


def selection_bins(margins: np.ndarray, decided: list[int]) -> np.ndarray:
    """Each concept's bin: the concepts in margin order (a missing margin counts as 0) cut
    before every GATE_PER_BIN-th decided concept (at most GATE_MAX_BINS bins).

    >>> selection_bins(np.arange(8) / 10, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9][:8]).tolist()
    [0, 0, 0, 0, 0, 0, 0, 0]
    >>> m = np.arange(20) / 100
    >>> selection_bins(m, [0, 1, 2, 3, 4, 10, 12, 14, 16, 18]).tolist()
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    """
    values = np.nan_to_num(np.asarray(margins, dtype=float), nan=0.0)
    order = np.argsort(values, kind="stable")
    position = np.empty(len(values), dtype=np.int64)
    position[order] = np.arange(len(values))
    placed = np.sort(position[np.array(decided, dtype=np.int64)])
    n_bins = max(1, min(GATE_MAX_BINS, len(placed) // GATE_PER_BIN))
    cuts = placed[[len(placed) * j // n_bins for j in range(1, n_bins)]]
    return np.searchsorted(cuts, position, side="right")


SMALL_GAINS = ", gains too small for their standard error"


@dataclass
class GateDecision:
    """The weight chosen; per weight, the estimated top-1 on the undecided concepts, its gain
    over the zero-shot ranking less GATE_ERRORS of the gain's standard errors (``bound``), and
    the plain out-of-fold top-1 on the decided concepts; how many decided concepts it was
    measured on."""

    weight: float
    estimated: dict[float, float] = field(default_factory=dict)
    bound: dict[float, float] = field(default_factory=dict)
    decided_top1: dict[float, float] = field(default_factory=dict)
    n_decided: int = 0
    probes: bool = False  # judged on the decided probe concepts alone

    @property
    def note(self) -> str:
        """What ``map``'s summary says of the gate."""
        zero = self.estimated[0.0]
        on = f"{self.n_decided} decided concepts, weighted for the review order"
        if self.probes:
            on = f"{self.n_decided} decided concepts that the review order drew at random"
        if self.weight == 0.0:
            learned = self.estimated[max(self.estimated)]
            within = any(v > zero for v in self.estimated.values())
            return (
                "; kept the zero-shot ranking: learning did not beat it out of fold "
                f"(estimated top-1 on the undecided {zero:.3f}, by the learned reranker "
                f"{learned:.3f}{SMALL_GAINS if within else ''}; {on})"
            )
        return (
            f"; ranked by the learned reranker fused with the zero-shot ranking (weight "
            f"{self.weight:g}): out of fold it beat the zero-shot ranking (estimated top-1 on "
            f"the undecided {self.estimated[self.weight]:.3f} against {zero:.3f}; {on})"
        )


def choose_weight(
    zero: pd.DataFrame,
    out_of_fold: pd.DataFrame,
    known: dict[int, list[int]],
    margins: np.ndarray,
    weights: tuple[float, ...] = GATE_WEIGHTS,
    probes: list[int] | None = None,
    errors: float = GATE_ERRORS,
) -> GateDecision:
    """The fusion weight with the best corrected out-of-fold top-1 once one of them beats the
    zero-shot ranking's by more than ``errors`` times the gain's standard error (0, the first
    of ``weights``, when none does; module docstring): ``zero`` ranks every source row,
    ``out_of_fold`` the decided rows in ``known`` (each by the reranker fitted without its
    fold); ``margins`` are every row's zero-shot margin. With ``probes`` (the decided lead of
    the probe order, :func:`~harmonize.mapping.queue.decided_probe_prefix`) holding
    GATE_MIN_PROBES of them, only those judge it."""
    decided = sorted(set(out_of_fold["source"].tolist()) & known.keys())
    sample = sorted(set(probes or ()) & set(decided))
    on_probes = len(sample) >= GATE_MIN_PROBES
    decided = sample if on_probes else decided
    estimated, bound, decided_top1 = _estimates(
        zero, out_of_fold, known, margins, decided, weights, errors
    )
    learn = any(round(bound[w], 9) > 0 for w in weights[1:])
    best = max(weights[1:], key=lambda w: (round(estimated[w], 9), -w)) if learn else weights[0]
    return GateDecision(best, estimated, bound, decided_top1, len(decided), on_probes)


def _estimates(
    zero: pd.DataFrame,
    out_of_fold: pd.DataFrame,
    known: dict[int, list[int]],
    margins: np.ndarray,
    decided: list[int],
    weights: tuple[float, ...],
    errors: float,
) -> tuple[dict[float, float], dict[float, float], dict[float, float]]:
    """Per weight, the top-1 on the undecided estimated from ``decided`` (weighted by the
    margin bins), its gain over the first weight's less ``errors`` standard errors of the
    gain, and the plain top-1 on ``decided``."""
    undecided = np.array([s for s in range(len(margins)) if s not in known], dtype=np.int64)
    bins = selection_bins(margins, decided)
    n_bins = int(bins.max()) + 1 if len(bins) else 1
    share = np.bincount(bins[undecided], minlength=n_bins) / max(len(undecided), 1)
    d_bins = bins[np.array(decided, dtype=np.int64)]
    n_b = np.bincount(d_bins, minlength=n_bins).astype(float)
    weight = (share / np.maximum(n_b, 1))[d_bins]  # each decided concept's weight
    zero_d = zero[zero["source"].isin(decided)]
    estimated, decided_top1, bound = {}, {}, {}
    base = np.zeros(len(decided))
    for w in weights:
        picked = top1(fuse(zero_d, out_of_fold, w, 1))
        hits = np.array([picked.get(s, -1) in known[s] for s in decided], dtype=float)
        base = hits if w == weights[0] else base
        estimated[w] = float(weight @ hits)
        decided_top1[w] = float(hits.mean()) if len(hits) else float("nan")
        # The gain over the zero-shot ranking less ``errors`` of its standard errors.
        changed = weight * (hits != base)
        gain = estimated[w] - estimated[weights[0]]
        bound[w] = gain - errors * float(np.sqrt(changed @ changed))
    return estimated, bound, decided_top1
