"""The logistic and naive-Bayes transfer models, inner-CV selection and the paired bootstrap,
each against an independent computation."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.optimize import brentq
from sklearn.linear_model import LogisticRegression

from harmonize.transfer.auto import fit_source
from harmonize.transfer.baseline import multi_hot
from harmonize.transfer.bayes import NaiveBayes
from harmonize.transfer.encounters import Encounters
from harmonize.transfer.experiment import EvalConfig, Patients
from harmonize.transfer.metrics import paired_auroc_difference
from harmonize.transfer.prior import Fit, PriorLogistic, fit_map, prior_precision, text_counts
from harmonize.transfer.scoring import train_auto
from harmonize.transfer.selection import stratified_folds
from tests.helpers import run


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _logit(p):
    return np.log(p / (1.0 - p))


def test_prior_fit_matches_a_hand_solved_two_group_optimum():
    """Group A (n=10, 7 positive) has only text 0, group B (n=8, 2 positive) only text 1;
    prior mean (0.5, -0.3), lam = 2. The stationarity conditions give w1 - m1 = -(w0 - m0) = -d
    and, from text 0's, b(d) = logit((kA - lam d) / nA) - m0 - d; text 1's is then a 1-D
    equation in d, solved here by bisection."""
    nA, kA, nB, kB, lam, m = 10, 7, 8, 2, 2.0, np.array([0.5, -0.3])

    def b_of(d):
        return _logit((kA - lam * d) / nA) - m[0] - d

    def text1(d):
        return nB * _sigmoid(m[1] - d + b_of(d)) - kB - lam * d

    d = brentq(text1, (kA - nA) / lam + 1e-9, kA / lam - 1e-9, xtol=1e-14)
    ids = np.array([[0]] * nA + [[1]] * nB)
    y = np.array([1] * kA + [0] * (nA - kA) + [1] * kB + [0] * (nB - kB))
    fit = fit_map(text_counts(ids, 2), y, lam, mean=m)
    assert fit.w == pytest.approx([m[0] + d, m[1] - d], abs=1e-8)
    assert fit.b == pytest.approx(b_of(d), abs=1e-8)


def test_prior_fit_with_a_zero_mean_is_ridge_logistic_regression():
    """With mean 0 and no embedding tie the objective is scikit-learn's with C = 1 / lam."""
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 12, size=(300, 4))
    truth = rng.normal(size=12)
    y = (rng.random(300) < _sigmoid(multi_hot(ids, 12) @ truth - 1.0)).astype(int)
    ours = PriorLogistic(lam=0.5).fit(np.eye(12), ids, y).fit_
    features = multi_hot(ids, 12).astype(np.float64)
    theirs = LogisticRegression(C=2.0, tol=1e-12, max_iter=10_000).fit(features, y)
    assert ours.w == pytest.approx(theirs.coef_[0], abs=1e-4)
    assert ours.b == pytest.approx(theirs.intercept_[0], abs=1e-4)


def test_a_text_the_source_never_had_gets_the_weight_its_embedding_predicts():
    """No patient holds text 3: its MAP weight is the Gaussian conditional mean
    K[3, S] K[S, S]^-1 w[S] under the prior covariance K = precision^-1."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(4, 6))
    vectors[3] = vectors[0] + 0.1 * rng.normal(size=6)  # text 3 reads like text 0
    ids = rng.integers(0, 3, size=(200, 2))
    y = (rng.random(200) < _sigmoid(2.0 * (ids == 0).any(axis=1) - 1.0)).astype(int)
    model = PriorLogistic(lam=1.0, alpha=0.8).fit(vectors, ids, y)
    K = np.linalg.inv(prior_precision(vectors, 0.8))
    w = model.fit_.w
    predicted = K[3, :3] @ np.linalg.solve(K[:3, :3], w[:3])
    assert w[3] == pytest.approx(predicted, abs=1e-8)
    assert w[3] > 0.5 * w[0] > 0  # it follows text 0, the one that predicts the positives


def test_the_target_fit_is_pulled_to_the_source_weights():
    """A strong prior keeps the source weights; a weak one lets the target data decide."""
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 5, size=(40, 2))
    y = rng.integers(0, 2, size=40)
    source = PriorLogistic()
    source.fit_ = Fit(np.array([2.0, -1.0, 0.5, 0.0, 1.0]), -0.2)
    strong = PriorLogistic(lam=1e6, prior=source).fit(np.eye(5), ids, y).fit_
    weak = PriorLogistic(lam=1e-3, prior=source).fit(np.eye(5), ids, y).fit_
    assert strong.w == pytest.approx(source.fit_.w, abs=1e-3)
    assert np.abs(weak.w - source.fit_.w).max() > 0.5


def test_naive_bayes_weights_by_hand():
    """Text 0 in 3 of 4 positives and 1 of 4 negatives, m = 2 with prior frequencies 0.5
    (positives) and 0.25 (negatives): P(t0|+) = (3 + 1) / 6, P(t0|-) = (1 + 0.5) / 6; text 1,
    prior 0.5 in both: P(t1|+) = (1 + 1) / 6, P(t1|-) = (3 + 1) / 6."""
    ids = np.array([[0], [0], [0], [1], [0], [1], [1], [1]])
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    prior = np.array([[0.25, 0.5], [0.5, 0.5]])
    model = NaiveBayes(m=2.0, prior=prior).fit(np.eye(2), ids, y)
    assert model.w_[0] == pytest.approx(np.log(4 / 6) - np.log(1.5 / 6))
    assert model.w_[1] == pytest.approx(np.log(2 / 6) - np.log(4 / 6))
    assert model.b_ == pytest.approx(0.0)


def _auroc_by_pairs(y, p):
    pos, neg = p[y == 1], p[y == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


def test_paired_bootstrap_matches_an_independent_computation():
    """The same resamples (the same seeded draws), AUROC counted pair by pair."""
    rng = np.random.default_rng(5)
    y = np.array([0, 1] * 10)
    p_a = y + rng.normal(0, 0.8, size=20)
    p_b = y + rng.normal(0, 1.2, size=20)
    got = paired_auroc_difference(y, p_a, p_b, n_boot=200, random_state=7)
    draws = np.random.default_rng(7)
    diffs = []
    for _ in range(200):
        idx = draws.integers(0, 20, 20)
        if y[idx].min() != y[idx].max():
            diffs.append(_auroc_by_pairs(y[idx], p_a[idx]) - _auroc_by_pairs(y[idx], p_b[idx]))
    low, high = np.percentile(diffs, [2.5, 97.5])
    assert got["difference"] == pytest.approx(_auroc_by_pairs(y, p_a) - _auroc_by_pairs(y, p_b))
    assert (got["difference_low"], got["difference_high"]) == pytest.approx((low, high))


def test_stratified_folds_partition_the_patients_by_class():
    y = np.array([1] * 7 + [0] * 13)
    folds = stratified_folds(y, 5, np.random.default_rng(0))
    assert sorted(np.concatenate(folds).tolist()) == list(range(20))
    assert all(1 <= y[f].sum() <= 2 and 2 <= (1 - y[f]).sum() <= 3 for f in folds)


def _encounters(rng, n, weights, split):
    ids = rng.integers(0, len(weights), size=(n, 3))
    y = (rng.random(n) < _sigmoid(weights[ids].sum(axis=1))).astype(np.int64)
    texts = [f"t{i}" for i in range(len(weights))]
    return Encounters(ids, texts, np.arange(n).astype(str), y, np.full(n, split, dtype=object))


class _Bar:
    def update(self, _n):
        pass


def test_inner_cv_choice_never_sees_the_test_labels():
    """Poisoned (shuffled and flipped) test labels change every test AUROC but no choice."""
    rng = np.random.default_rng(2)
    weights = rng.normal(0, 1.5, size=10)
    source = _encounters(rng, 400, weights + rng.normal(0, 0.5, size=10), "train")
    pool = _encounters(rng, 80, weights, "train")
    test = _encounters(rng, 300, weights, "test")
    poisoned = Encounters(
        test.ids, test.texts, test.subjects, 1 - rng.permutation(test.y), test.split
    )
    config = EvalConfig("s", "t", embedding="onehot", model="auto", bootstrap=0, seeds=2)
    config.check()
    vectors = np.eye(10)
    runs = []
    for target_test in (test, poisoned):
        patients = Patients(source, pool, target_test, test.texts, [])
        rows, _ = train_auto(config, vectors, patients, (40,), _Bar())
        runs.append(rows)
    keys = ["model", "scenario", "target_train_size", "seed", "setting", "cv_auroc"]
    assert [[r[k] for k in keys] for r in runs[0]] == [[r[k] for k in keys] for r in runs[1]]
    assert all(a["auroc"] != b["auroc"] for a, b in zip(*runs, strict=True))
    assert {r["scenario"] for r in runs[0]} >= {"local", "local-cv", "prior", "stacked"}


def test_source_fit_reads_unseen_texts_as_flat_naive_bayes_frequencies():
    ids = np.array([[0], [1]] * 10)
    fit = fit_source(np.eye(3), ids, np.array([1, 0] * 10), tie=0.0)
    assert fit.frequencies[:, 2].tolist() == [0.5, 0.5]
    assert fit.precision is None


def test_cli_evaluate_auto_shows_the_baseline_the_difference_and_the_choice(runner, tmp_path):
    from tests.test_experiment import build_world

    world = build_world(tmp_path)
    args = ["--quiet", "evaluate", "--source", "siteA", "--target", "siteB", "--model", "fake"]
    result = run(runner, world, *args, "--target-sizes", "12", "--bootstrap", "20")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["model", "scenario", "target_train_size"]
    assert re.search(r"^logreg\s+local\s+12\s", result.output, re.M)
    assert "transfer minus the best local model (paired bootstrap on the test patients):" in lines
    assert re.search(
        r"^auto, n=12, seed 0: chose \S+ \(.*\), inner-CV AUROC \d\.\d{3}$", result.output, re.M
    )
    with world.connect(read_only=True) as con:
        models = con.execute("SELECT DISTINCT model FROM evaluations ORDER BY 1").fetchall()
    assert models == [("auto",), ("logreg",), ("mix",), ("nb",)]


def test_rank_auroc_is_scikit_learns_with_ties():
    from sklearn.metrics import roc_auc_score

    from harmonize.transfer.metrics import auroc

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, size=200)
    p = rng.integers(0, 7, size=200) + 0.5 * y  # many ties
    assert auroc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_the_prior_reads_not_x_as_the_opposite_of_x():
    """An encoder puts 'Not pyrexia' next to 'pyrexia'; the source saw only 'fever' and
    'Not fever'. Read as opposites, the unseen states get the signs of fever's states."""
    rng = np.random.default_rng(6)
    base = rng.normal(size=(3, 8))  # fever, pyrexia (close to fever), cough
    base[1] = base[0] + 0.2 * rng.normal(size=8)
    texts = ["fever", "Not fever", "pyrexia", "Not pyrexia", "cough", "Not cough"]
    vectors = np.stack([base[0], base[0] + 0.1, base[1], base[1] + 0.1, base[2], base[2] + 0.1])
    ids = np.array([[0, 4], [1, 5], [0, 5], [1, 4]] * 30)
    y = np.array([1, 0, 1, 0] * 30)
    w = fit_source(vectors, ids, y, tie=0.9, texts=texts).model.fit_.w
    assert w[0] > 0 > w[1]
    assert w[2] > 0 > w[3]
    unread = fit_source(vectors, ids, y, tie=0.9).model.fit_.w  # without the texts
    assert unread[3] > 0  # 'Not pyrexia' then follows 'pyrexia' and 'fever'
