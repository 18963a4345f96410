"""The word-difference model learned from known pairs (harmonize.wordpairs)."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from harmonize.core.config import KNOWN_WORDPAIR_C
from harmonize.mapping.rerank.word_differences import (
    cross_fitted_scores,
    difference_tokens,
    fit_word_pairs,
    pair_matrix,
)


def test_difference_tokens_exact():
    assert difference_tokens("Dyspnea", "dyspnea") == ["same"]
    assert difference_tokens("Open wounds of fingers", "Open wound of finger, left") == ["c:left"]
    # Single letters drop out, single digits stay.
    assert difference_tokens("Hodgkin's disease, type 1", "Hodgkin disease, type 2") == [
        "q:1",
        "c:2",
        "x:1|2",
    ]
    # Function words count too: "of" is part of the target's house style.
    assert difference_tokens("Twins, both liveborn", "Delivery of twins") == [
        "q:both",
        "q:liveborn",
        "c:delivery",
        "c:of",
        "x:both|delivery",
        "x:both|of",
        "x:liveborn|delivery",
        "x:liveborn|of",
    ]


def _house_style(n: int):
    """Source site says "Sequelae of D", the target "Late effects of D"; each disease D also has
    a distractor target "D, acute" that shares the disease word with the source."""
    diseases = [f"disease{i}" for i in range(n)]
    source = [f"Sequelae of {d}" for d in diseases]
    target = [t for d in diseases for t in (f"Late effects of {d}", f"{d}, acute")]
    return source, target


def test_the_model_learns_a_house_style_and_applies_it_to_unseen_concepts():
    source, target = _house_style(40)
    train, test = range(30), range(30, 40)
    rows = [(i, 2 * i + j) for i in train for j in (0, 1)]
    labels = np.array([t % 2 == 0 for _, t in rows])
    matrix = pair_matrix(source, target, [s for s, _ in rows], [t for _, t in rows])
    model = fit_word_pairs(matrix, labels)
    right = model.decision_function(pair_matrix(source, target, list(test), [2 * i for i in test]))
    wrong = model.decision_function(
        pair_matrix(source, target, list(test), [2 * i + 1 for i in test])
    )
    # Unseen diseases: the right target wins every time, by the learned sequelae -> late
    # effects difference, although the distractor shares as many words with the query.
    assert (right > wrong).all()


def test_cross_fitted_scores_match_models_fitted_by_hand():
    rng = np.random.default_rng(0)
    folds = [sp.csr_matrix(rng.random((30, 8)) < 0.3, dtype=np.float64) for _ in range(3)]
    labels = [rng.random(30) < 0.4 for _ in range(3)]
    apply_to = sp.csr_matrix(rng.random((5, 8)) < 0.3, dtype=np.float64)
    scores, applied = cross_fitted_scores(folds, labels, apply_to)
    for i in range(3):
        others = [j for j in range(3) if j != i]
        model = LogisticRegression(C=KNOWN_WORDPAIR_C, solver="newton-cg", max_iter=2000).fit(
            sp.vstack([folds[j] for j in others]), np.concatenate([labels[j] for j in others])
        )
        assert scores[i] == pytest.approx(model.decision_function(folds[i]), abs=1e-8)
    full = LogisticRegression(C=KNOWN_WORDPAIR_C, solver="newton-cg", max_iter=2000).fit(
        sp.vstack(folds), np.concatenate(labels)
    )
    assert applied == pytest.approx(full.decision_function(apply_to), abs=1e-8)
    assert cross_fitted_scores(folds, labels, None)[1] is None


def test_one_class_of_labels_scores_zero():
    folds = [sp.csr_matrix(np.eye(3)), sp.csr_matrix(np.eye(3))]
    scores, applied = cross_fitted_scores(
        folds, [np.zeros(3, bool), np.zeros(3, bool)], sp.csr_matrix(np.eye(3))
    )
    assert [s.tolist() for s in scores] == [[0.0] * 3, [0.0] * 3]
    assert applied.tolist() == [0.0] * 3


def test_fit_rows_limit_what_the_models_learn_from_but_every_row_is_scored():
    rng = np.random.default_rng(1)
    folds = [sp.csr_matrix(rng.random((30, 8)) < 0.3, dtype=np.float64) for _ in range(3)]
    labels = [rng.random(30) < 0.4 for _ in range(3)]
    masks = [rng.random(30) < 0.6 for _ in range(3)]
    apply_to = sp.csr_matrix(rng.random((5, 8)) < 0.3, dtype=np.float64)
    scores, applied = cross_fitted_scores(folds, labels, apply_to, fit_rows=masks)

    def by_hand(parts):
        return LogisticRegression(C=KNOWN_WORDPAIR_C, solver="newton-cg", max_iter=2000).fit(
            sp.vstack([folds[j][masks[j]] for j in parts]),
            np.concatenate([labels[j][masks[j]] for j in parts]),
        )

    for i in range(3):
        model = by_hand([j for j in range(3) if j != i])
        assert len(scores[i]) == 30
        assert scores[i] == pytest.approx(model.decision_function(folds[i]), abs=1e-8)
    assert applied == pytest.approx(by_hand([0, 1, 2]).decision_function(apply_to), abs=1e-8)
    # The masks change the fits (else this test could not fail).
    assert not np.allclose(scores[0], cross_fitted_scores(folds, labels, None)[0][0])
