"""Empirical-Bayes naive Bayes (``nb-eb``): the Dirichlet-multinomial evidence, the strength it
picks, its fit against hand computations and plain naive Bayes, and that it never reads the
test labels."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import dirichlet_multinomial

from harmonize.transfer.bayes import NaiveBayes
from harmonize.transfer.eb import (
    EBNaiveBayes,
    Layout,
    class_text_counts,
    concept_groups,
    dm_log_evidence,
    mixture_weights,
)
from harmonize.transfer.encounters import Encounters
from harmonize.transfer.experiment import EvalConfig, Patients
from harmonize.transfer.scoring import train_auto


def _polya_sequence_probability(sequence: list[int], alpha: np.ndarray) -> float:
    """P(these draws in this order) under Dir(alpha), by the Polya urn: draw i of category c
    has probability (alpha_c + earlier draws of c) / (sum alpha + i)."""
    seen = np.zeros(len(alpha))
    p = 1.0
    for i, c in enumerate(sequence):
        p *= (alpha[c] + seen[c]) / (alpha.sum() + i)
        seen[c] += 1
    return p


@pytest.mark.parametrize(
    "counts,alpha",
    [([3, 1, 0], [0.5, 0.5, 0.5]), ([2, 2, 1], [30.0, 1.5, 0.2]), ([0, 4], [4096.0, 2.0])],
)
def test_dm_evidence_matches_the_polya_urn_and_scipy(counts, alpha):
    counts, alpha = np.array(counts, float), np.array(alpha)
    sequence = [c for c, k in enumerate(counts.astype(int)) for _ in range(k)]
    got = float(np.exp(dm_log_evidence(counts, alpha)))
    assert got == pytest.approx(_polya_sequence_probability(sequence, alpha), rel=1e-10)
    # scipy's pmf is of the counts: every order of the draws, the multinomial coefficient.
    orders = len(set(itertools.permutations(sequence)))
    pmf = dirichlet_multinomial.pmf(counts.astype(int), alpha, int(counts.sum()))
    assert got * orders == pytest.approx(pmf, rel=1e-10)


def test_dm_evidence_ignores_absent_categories():
    with_absent = dm_log_evidence(np.array([2.0, 1.0, 0.0]), np.array([1.0, 3.0, 0.0]))
    assert with_absent == pytest.approx(dm_log_evidence(np.array([2.0, 1.0]), np.array([1.0, 3.0])))


def test_counts_in_the_source_proportions_pick_the_largest_strength():
    """Counts exactly in the source's proportions: every finite strength over-disperses, so
    the evidence rises with the strength and the largest wins; counts against the source
    make the flat prior win."""
    p = np.array([0.8, 0.2])
    strengths = np.array([1.0, 4.0, 16.0, 64.0, 256.0, 4096.0])
    agree = dm_log_evidence(np.array([40.0, 10.0]), strengths[:, None] * p)
    assert np.all(np.diff(agree) > 0)
    against = np.array([2.0, 48.0])
    candidates = np.vstack([[0.5, 0.5], strengths[:, None] * p])
    assert int(np.argmax(dm_log_evidence(against, candidates))) == 0


def _binary_site(rng, n, p_pos, p_neg):
    """n patients, concept j present ('cj') or absent ('Not cj'), class 1 for half."""
    y = (np.arange(n) % 2).astype(np.int64)
    present = rng.random((n, len(p_pos))) < np.where(y[:, None] == 1, p_pos, p_neg)
    ids = np.where(present, 2 * np.arange(len(p_pos)), 2 * np.arange(len(p_pos)) + 1)
    return ids, y


TEXTS = [t for j in range(3) for t in (f"c{j}", f"Not c{j}")]


def _eb(source_ids, source_y, **kwargs):
    groups = concept_groups(TEXTS, source_ids)
    counts, totals = class_text_counts(source_ids, source_y, len(TEXTS))
    return EBNaiveBayes(groups, counts, totals, **kwargs)


def test_a_target_like_the_source_puts_the_mixture_on_the_largest_strength():
    """Target counts exactly in the source's proportions, concept by concept and class by
    class: the learnt mixture puts (almost) all weight on the strongest prior, and the fit
    is the source's own distributions."""
    present_pos = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=bool)
    present_neg = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=bool)
    ids_pos = np.where(present_pos, [0, 2, 4], [1, 3, 5])  # c0 3/4, c1 2/4, c2 1/4
    ids_neg = np.where(present_neg, [0, 2, 4], [1, 3, 5])  # c0 1/4, c1 2/4, c2 3/4
    source_ids = np.vstack([np.repeat(ids_pos, 250, 0), np.repeat(ids_neg, 250, 0)])
    source_y = np.r_[np.ones(1000), np.zeros(1000)].astype(np.int64)
    target_ids = np.vstack([np.repeat(ids_pos, 10, 0), np.repeat(ids_neg, 10, 0)])
    target_y = np.r_[np.ones(40), np.zeros(40)].astype(np.int64)
    model = _eb(source_ids, source_y).fit(np.eye(6), target_ids, target_y)
    assert model.weights_[-1] > 0.5
    assert int(np.argmax(model.weights_)) == len(model.weights_) - 1
    # c0: 3/4 vs 1/4 (the source's smoothing, 1/2 in 1000, barely moves it)
    assert model.w_[0] == pytest.approx(np.log(0.75 / 0.25), abs=0.01)
    assert model.w_[1] == pytest.approx(np.log(0.25 / 0.75), abs=0.01)
    assert model.w_[2:4] == pytest.approx([0.0, 0.0], abs=0.01)


def test_a_target_against_the_source_follows_its_own_counts():
    """Every concept flipped at the target: the flat prior takes the mixture and the fit is
    plain naive Bayes on the target (NaiveBayes, m = 1, frequencies (c + 1/2) / (n + 1))."""
    rng = np.random.default_rng(0)
    source_ids, source_y = _binary_site(
        rng, 4000, np.array([0.9, 0.1, 0.9]), np.array([0.1, 0.9, 0.1])
    )
    target_ids, target_y = _binary_site(
        rng, 200, np.array([0.1, 0.9, 0.1]), np.array([0.9, 0.1, 0.9])
    )
    model = _eb(source_ids, source_y).fit(np.eye(6), target_ids, target_y)
    assert model.weights_[0] > 0.99
    plain = NaiveBayes(m=1.0).fit(np.eye(6), target_ids, target_y)
    test_ids, _ = _binary_site(rng, 50, np.full(3, 0.5), np.full(3, 0.5))
    assert model.decision(np.eye(6), test_ids) == pytest.approx(
        plain.decision(np.eye(6), test_ids), abs=1e-3
    )


def test_without_a_source_it_is_naive_bayes_with_m_1():
    rng = np.random.default_rng(1)
    ids, y = _binary_site(rng, 60, np.array([0.7, 0.4, 0.2]), np.array([0.3, 0.5, 0.6]))
    model = EBNaiveBayes(concept_groups(TEXTS, ids), None, None).fit(np.eye(6), ids, y)
    plain = NaiveBayes(m=1.0).fit(np.eye(6), ids, y)
    assert model.decision(np.eye(6), ids) == pytest.approx(plain.decision(np.eye(6), ids))


def test_posterior_mean_by_hand_for_one_concept_and_one_strength():
    """One binary concept, candidates flat (1/2, 1/2) and 10 x source; the mixture weight w
    of the source prior and each class's posterior mean computed by hand."""
    source_ids = np.array([[0]] * 80 + [[1]] * 20 + [[0]] * 30 + [[1]] * 70)
    source_y = np.r_[np.ones(100), np.zeros(100)].astype(np.int64)
    target_ids = np.array([[0]] * 3 + [[1]] * 1 + [[0]] * 1 + [[1]] * 3)
    target_y = np.r_[np.ones(4), np.zeros(4)].astype(np.int64)
    texts = ["c", "Not c"]
    counts, totals = class_text_counts(source_ids, source_y, 2)
    model = EBNaiveBayes(concept_groups(texts, source_ids), counts, totals, strengths=(10.0,))
    model.fit(np.eye(2), target_ids, target_y)
    p = {1: np.array([80.5, 20.5]) / 101, 0: np.array([30.5, 70.5]) / 101}
    n = {1: np.array([3.0, 1.0]), 0: np.array([1.0, 3.0])}

    def evidence(k, alpha):
        return _polya_sequence_probability([0] * int(n[k][0]) + [1] * int(n[k][1]), alpha)

    flat = {k: evidence(k, np.array([0.5, 0.5])) for k in (0, 1)}
    strong = {k: evidence(k, 10 * p[k]) for k in (0, 1)}
    w = 0.5
    for _ in range(500):  # EM over the two rows (classes) for the weight of the source prior
        w = np.mean([w * strong[k] / (w * strong[k] + (1 - w) * flat[k]) for k in (0, 1)])
    assert model.weights_[1] == pytest.approx(w, abs=1e-6)
    theta = {}
    for k in (0, 1):
        r = w * strong[k] / (w * strong[k] + (1 - w) * flat[k])
        theta[k] = (1 - r) * (n[k] + 0.5) / 5 + r * (n[k] + 10 * p[k]) / 14
    assert model.w_ == pytest.approx(np.log(theta[1]) - np.log(theta[0]), abs=1e-6)
    assert model.b_ == pytest.approx(0.0)


def test_a_concept_the_source_never_recorded_gets_the_flat_prior():
    """Concept c2 only at the target: its weights are plain naive Bayes on the target."""
    rng = np.random.default_rng(3)
    source_ids, source_y = _binary_site(
        rng, 500, np.array([0.8, 0.3, 0.5]), np.array([0.2, 0.6, 0.5])
    )
    source_ids = source_ids[:, :2]  # the source records c0 and c1 only
    target_ids, target_y = _binary_site(
        rng, 40, np.array([0.8, 0.3, 0.9]), np.array([0.2, 0.6, 0.1])
    )
    model = _eb(source_ids, source_y).fit(np.eye(6), target_ids, target_y)
    pos, neg = target_ids[target_y == 1], target_ids[target_y == 0]
    for text in (4, 5):
        freq1 = ((pos == text).any(1).sum() + 0.5) / (len(pos) + 1)
        freq0 = ((neg == text).any(1).sum() + 0.5) / (len(neg) + 1)
        assert model.w_[text] == pytest.approx(np.log(freq1) - np.log(freq0))


def test_levels_form_one_concept_and_a_missing_concept_is_its_own_category():
    texts = ["temp: high", "temp: low", "Not temp", "cough", "Not cough"]
    ids = np.array([[0, 3], [1, 4], [2, 3]])
    groups = concept_groups(texts, ids)
    assert [g.tolist() for g in groups] == [[0, 1, 2], [3, 4]]
    layout = Layout.of(groups)
    counts, totals = class_text_counts(np.array([[0, 0], [3, 3]]), np.array([1, 1]), 5)
    # patient 2 holds no temperature text: the "none" column counts it
    assert layout.counts(counts, totals)[1].tolist() == [[1, 0, 0, 1], [1, 0, 0, 1]]


def test_mixture_weights_maximise_the_total_evidence():
    rng = np.random.default_rng(4)
    evidence = rng.normal(0, 2, size=(30, 3))
    w = mixture_weights(evidence, iterations=2000)

    def total(weights):
        return np.log(np.exp(evidence) @ weights).sum()

    for other in rng.dirichlet(np.ones(3), size=50):
        assert total(w) >= total(other) - 1e-9


def _encounters(rng, n, weights, split):
    ids = 2 * np.arange(3) + (rng.random((n, 3)) < 0.5)
    z = weights[ids].sum(axis=1)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)
    return Encounters(ids, TEXTS, np.arange(n).astype(str), y, np.full(n, split, dtype=object))


class _Bar:
    def update(self, _n):
        pass


@pytest.mark.parametrize("scenarios", [("nb-eb",), ("nb-eb", "stacked-nb", "nb-prior", "ensemble")])
def test_nb_eb_never_reads_the_test_labels(scenarios):
    """Poisoned (shuffled and flipped) test labels change every test AUROC but no choice,
    no setting and no inner-CV AUROC."""
    rng = np.random.default_rng(2)
    weights = rng.normal(0, 1.5, size=6)
    source = _encounters(rng, 400, weights + rng.normal(0, 0.5, size=6), "train")
    pool = _encounters(rng, 80, weights, "train")
    test = _encounters(rng, 300, weights, "test")
    poisoned = Encounters(test.ids, TEXTS, test.subjects, 1 - rng.permutation(test.y), test.split)
    config = EvalConfig(
        "s", "t", embedding="onehot", model="auto", bootstrap=0, seeds=2, scenarios=scenarios
    )
    runs = []
    for target_test in (test, poisoned):
        rows, _ = train_auto(
            config, np.eye(6), Patients(source, pool, target_test, TEXTS, []), (40,), _Bar()
        )
        runs.append(rows)
    keys = ["model", "scenario", "target_train_size", "seed", "setting", "cv_auroc"]
    assert [[r[k] for k in keys] for r in runs[0]] == [[r[k] for k in keys] for r in runs[1]]
    assert all(a["auroc"] != b["auroc"] for a, b in zip(*runs, strict=True))
    assert "nb-eb" in {r["scenario"] for r in runs[0]}
    if "ensemble" in scenarios:  # the mean of the chosen stacked-nb and nb-eb models
        settings = {r["setting"] for r in runs[0] if r["scenario"] == "ensemble"}
        assert settings == {"stacked-nb+nb-eb"}


def test_a_concept_the_source_never_recorded_borrows_the_most_alike_concepts_prior():
    """c2 (target only) is embedded like c0 with its states swapped in the text list: its
    source prior is c0's, state matched to state; with one-hot texts nothing is alike."""
    rng = np.random.default_rng(5)
    source_ids, source_y = _binary_site(
        rng, 500, np.array([0.8, 0.3, 0.5]), np.array([0.2, 0.6, 0.5])
    )
    source_ids = source_ids[:, :2]
    target_ids, target_y = _binary_site(
        rng, 40, np.array([0.8, 0.3, 0.8]), np.array([0.2, 0.6, 0.2])
    )
    vectors = np.eye(6)
    vectors[4], vectors[5] = vectors[0] + 0.1 * vectors[2], vectors[1]
    model = _eb(source_ids, source_y, borrow=0.6)
    layout = Layout.of(concept_groups(TEXTS, source_ids))
    layout.has_none[:] = False
    alphas, seen = model.candidate_priors(layout, vectors)
    assert seen.tolist() == [True, True, True]
    assert alphas[:, 2, 1:] == pytest.approx(alphas[:, 0, 1:])
    negatives = source_ids[source_y == 0]
    c0_given_negative = ((negatives[:, 0] == 0).sum() + 0.5) / (len(negatives) + 1)
    assert alphas[0, 2, 1, 0] == pytest.approx(c0_given_negative)  # strength 1 x p
    _, seen_one_hot = model.candidate_priors(layout, np.eye(6))
    assert seen_one_hot.tolist() == [True, True, False]
    fitted = model.fit(vectors, target_ids, target_y)
    assert fitted.weights_[1:].sum() > 0.5  # the borrowed prior fits: the source is trusted
