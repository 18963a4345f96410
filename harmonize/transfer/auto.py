"""Logistic transfer models and the choice among them by inner cross-validation.

Families (each a set of candidates in :mod:`harmonize.transfer.selection`):

- ``local-cv``: logistic regression on the target's training sample only, ridge strength by CV;
- ``direct``: the source model, unchanged (a text the source never had gets the weight its
  embedding predicts, with ``tie`` > 0);
- ``prior``: the target model fitted with the penalty ``lam/2 (w - w_src)' K^-1 (w - w_src)``
  towards the source weights (L2-SP), ``lam`` by CV;
- ``stacked``: ``beta * direct + (1 - beta) * local`` on the log-odds scale, ``beta`` by CV,
  the local model logistic (C = 1); ``stacked-nb`` the same with naive Bayes (m = 1);
- ``nb-local`` and ``nb-prior``: naive Bayes on the target sample, with a flat prior or the
  source's frequencies worth ``m`` patients (:mod:`harmonize.transfer.bayes`), ``m`` by CV;
- ``nb-eb``: naive Bayes over concepts whose source prior is trusted concept by concept, the
  strengths by empirical Bayes on the target sample (:mod:`harmonize.transfer.eb`; no CV).

- ``ensemble``: the mean of the chosen ``nb-eb`` and ``stacked-nb`` models' scores, each
  standardised by the mean and spread of its out-of-fold scores (its CV AUROC from the same
  out-of-fold scores). The two are complementary (per-concept source frequencies; the source's
  logistic weights): on the tuning seeds 10-12 of all six influenza-dtl sources, scored on
  target-pool patients outside the sample (never the test patients), their mean had AUROC
  0.9624 over the 18 (source, n <= 200) cells, nb-eb alone 0.9606, stacked-nb 0.9618, the
  earlier mean of the families within 0.01 CV AUROC of the best of prior, stacked, stacked-nb,
  nb-prior and nb-eb 0.9612.

``auto`` is the ensemble whenever it is among the families, else the family with the best
inner-CV AUROC: with 50-200 target patients the CV AUROCs of the candidates are close and
noisy. The earlier rule, the ensemble unless another family's CV AUROC beat it by more than
0.01, overruled it almost only at n = 50 and mostly for the worse (tuning seeds 10-12 as above:
mean AUROC 0.9618 against the ensemble's 0.9624). Beside them, always, the one-hot logistic
local baseline (scikit-learn, C = 1: what ``--classifier logreg --scenario local`` trains).

>>> FAMILIES[-3:]
('nb-prior', 'nb-eb', 'ensemble')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harmonize.transfer.bayes import NaiveBayes, class_frequencies
from harmonize.transfer.eb import EBNaiveBayes, class_text_counts, concept_groups
from harmonize.transfer.prior import PriorLogistic, prior_precision
from harmonize.transfer.selection import Candidate, Selection, out_of_fold, select

FAMILIES = (
    "local-cv",
    "direct",
    "prior",
    "stacked",
    "stacked-nb",
    "nb-local",
    "nb-prior",
    "nb-eb",
    "ensemble",
)
LOCAL_FAMILIES = ("local", "local-cv", "nb-local")  # what never sees the source
ENSEMBLE_MEMBERS = ("stacked-nb", "nb-eb")
NB_LOCAL_M = (0.5, 1.0, 2.0, 4.0, 8.0)
NB_PRIOR_M = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
LOCAL_C = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
PRIOR_LAMBDAS = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
STACK_BETAS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SOURCE_LAMBDA = 1.0  # the source has thousands of patients: scikit-learn's default C = 1


@dataclass
class SourceFit:
    """The source model and the prior precision it was fitted with (None: independent texts)."""

    model: PriorLogistic
    precision: np.ndarray | None
    frequencies: np.ndarray  # (2, n_texts): the source's class frequencies, 1/2 where unseen
    counts: np.ndarray  # (2, n_texts): the source's patients of each class holding each text
    totals: np.ndarray  # (2,): the source's patients of each class
    groups: list[np.ndarray]  # the texts of each concept (harmonize.transfer.eb)


def fit_source(
    vectors: np.ndarray,
    ids: np.ndarray,
    y: np.ndarray,
    tie: float,
    texts: list[str] | None = None,
    power: int = 1,
) -> SourceFit:
    """The source logistic model over all texts (the target-only ones get predicted weights;
    ``texts`` lets the prior read ``Not X`` as the opposite of ``X``)."""
    precision = prior_precision(vectors, tie, texts, power) if tie > 0 else None
    model = PriorLogistic(SOURCE_LAMBDA, precision=precision).fit(vectors, ids, y)
    counts, totals = class_text_counts(ids, y, len(vectors))
    frequencies = class_frequencies(counts, totals)
    frequencies[:, counts.sum(axis=0) == 0] = 0.5  # no source patient holds the text
    names = texts if texts is not None else [str(i) for i in range(len(vectors))]
    groups = concept_groups(names, ids)
    return SourceFit(model, precision, frequencies, counts, totals, groups)


def _local(vectors: np.ndarray, C: float):
    def train(ids: np.ndarray, y: np.ndarray):
        model = PriorLogistic(1.0 / C).fit(vectors, ids, y)
        return lambda test: model.decision(vectors, test)

    return train


def _bayes(vectors: np.ndarray, m: float, prior: np.ndarray | None):
    def train(ids: np.ndarray, y: np.ndarray):
        model = NaiveBayes(m, prior).fit(vectors, ids, y)
        return lambda test: model.decision(vectors, test)

    return train


def _prior(vectors: np.ndarray, source: SourceFit, lam: float):
    def train(ids: np.ndarray, y: np.ndarray):
        model = PriorLogistic(lam, prior=source.model, precision=source.precision)
        model.fit(vectors, ids, y)
        return lambda test: model.decision(vectors, test)

    return train


class _Stacking:
    """``beta * direct + (1 - beta) * local``: the local model's out-of-fold scores are
    computed once per split and shared by every ``beta``."""

    def __init__(
        self, vectors, source: SourceFit, ids: np.ndarray, y: np.ndarray, family: str, local
    ):
        self.vectors, self.source, self.ids, self.y = vectors, source, ids, y
        self.family, self.local = family, local
        self._oof: dict[int, np.ndarray] = {}

    def direct(self, ids: np.ndarray) -> np.ndarray:
        return self.source.model.decision(self.vectors, ids)

    def candidate(self, beta: float) -> Candidate:
        def train(ids: np.ndarray, y: np.ndarray):
            local = self.local(ids, y)
            return lambda test: beta * self.direct(test) + (1 - beta) * local(test)

        def oof(folds: list[np.ndarray]) -> np.ndarray:
            key = id(folds)
            if key not in self._oof:
                self._oof[key] = out_of_fold(self.local, self.ids, self.y, folds)
            return beta * self.direct(self.ids) + (1 - beta) * self._oof[key]

        return Candidate(self.family, f"beta={beta:g}", train, oof)


def candidates(
    vectors: np.ndarray,
    source: SourceFit,
    ids: np.ndarray,
    y: np.ndarray,
    families: tuple[str, ...] = FAMILIES,
) -> list[Candidate]:
    """Every candidate of ``families`` for the training sample ``ids, y``."""
    out: list[Candidate] = []
    if "local-cv" in families:
        out += [Candidate("local-cv", f"C={C:g}", _local(vectors, C)) for C in LOCAL_C]
    if "direct" in families:

        def direct(_ids, _y):
            return lambda test: source.model.decision(vectors, test)

        out.append(Candidate("direct", "", direct))
    if "prior" in families:
        out += [
            Candidate("prior", f"lam={lam:g}", _prior(vectors, source, lam))
            for lam in PRIOR_LAMBDAS
        ]
    for family, local in (
        ("stacked", _local(vectors, 1.0)),
        ("stacked-nb", _bayes(vectors, 1.0, None)),
    ):
        if family in families:
            stacking = _Stacking(vectors, source, ids, y, family, local)
            out += [stacking.candidate(beta) for beta in STACK_BETAS]
    if "nb-local" in families:
        out += [Candidate("nb-local", f"m={m:g}", _bayes(vectors, m, None)) for m in NB_LOCAL_M]
    if "nb-eb" in families:

        def eb(ids, y):
            model = EBNaiveBayes(source.groups, source.counts, source.totals).fit(vectors, ids, y)
            return lambda test: model.decision(vectors, test)

        out.append(Candidate("nb-eb", "", eb))
    if "nb-prior" in families:
        out += [
            Candidate("nb-prior", f"m={m:g}", _bayes(vectors, m, source.frequencies))
            for m in NB_PRIOR_M
        ]
    return out


def _cv(selection: Selection, candidate: Candidate) -> float:
    if candidate.family == "ensemble":
        return candidate.cv
    return float(selection.cv_auroc[selection.index(candidate)])


@dataclass(frozen=True)
class EnsembleCandidate(Candidate):
    """The mean of standardised member scores; ``cv`` its AUROC on the members' out-of-fold
    scores."""

    cv: float = 0.0


def _add_ensemble(selection: Selection, chosen: dict[str, Candidate]) -> None:
    """Adds ``chosen["ensemble"]``: the mean of the chosen ``ENSEMBLE_MEMBERS``."""
    from harmonize.transfer.metrics import auroc

    members = [chosen[f] for f in ENSEMBLE_MEMBERS if f in chosen]
    if not members:
        return
    oof = selection.oof[[selection.index(m) for m in members]]  # members x repeats x patients
    centre = oof.mean(axis=(1, 2))
    spread = oof.std(axis=(1, 2)) + 1e-12
    mixed = ((oof - centre[:, None, None]) / spread[:, None, None]).mean(axis=0)
    cv = float(np.mean([auroc(selection.y, r) for r in mixed]))

    def train(ids: np.ndarray, y: np.ndarray):
        scorers = [m.train(ids, y) for m in members]
        return lambda test: np.mean(
            [(s(test) - c) / d for s, c, d in zip(scorers, centre, spread, strict=True)], axis=0
        )

    setting = "+".join(m.family for m in members)
    chosen["ensemble"] = EnsembleCandidate("ensemble", setting, train, None, cv)


@dataclass
class Choice:
    """What inner CV chose for one training sample: per family and overall (``auto``), with
    test scores of each chosen model refitted on the whole sample."""

    selection: Selection
    chosen: dict[str, Candidate]  # family -> its best candidate; "auto" -> the best of all
    test_scores: dict[str, np.ndarray]  # family -> scores of the test patients


def choose_and_fit(
    vectors: np.ndarray,
    source: SourceFit,
    ids: np.ndarray,
    y: np.ndarray,
    test_ids: np.ndarray,
    families: tuple[str, ...] = FAMILIES,
    folds: int = 5,
    repeats: int = 2,
    random_state: int = 0,
) -> Choice:
    """Inner CV on the training sample ``ids, y`` alone picks each family's setting and the
    overall best; only then are the chosen models refitted on it and scored on ``test_ids``."""
    from threadpoolctl import threadpool_limits

    pool = candidates(vectors, source, ids, y, families)
    # Hundreds of small solves: one BLAS thread is ~50x faster than several competing ones.
    with threadpool_limits(1):
        selection = select(pool, ids, y, folds, repeats, random_state)
        chosen = {family: selection.best(family) for family in selection.families()}
        if "ensemble" in families:
            _add_ensemble(selection, chosen)
        best = chosen.get("ensemble") or max(chosen.values(), key=lambda c: _cv(selection, c))
        test_scores = {f: c.train(ids, y)(test_ids) for f, c in chosen.items()}
    chosen["auto"] = best
    test_scores["auto"] = test_scores[best.family]
    return Choice(selection, chosen, test_scores)
