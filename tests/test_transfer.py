"""The concept CNN against an explicit per-patient reference, its training (seeded, fine-tuning
only what it should), and the one-hot logistic baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from harmonize.transfer.models import CNNClassifier, ConceptCNN, OneHotLogistic, multi_hot

FAST = {"epochs": 3, "steps_per_epoch": 10, "batch_size": 16}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy(n: int, seed: int, dim: int = 8, width: int = 4):
    """Texts 0 and 1 decide the class (0 in every positive, 1 in every negative); texts 2..dim-1
    are noise. Vectors are random, so the CNN must learn the difference."""
    rng = np.random.default_rng(seed)
    y = np.array([1, 0] * (n // 2))
    ids = rng.integers(2, dim, size=(n, width))
    ids[np.arange(n), rng.integers(0, width, size=n)] = np.where(y == 1, 0, 1)
    vectors = np.random.default_rng(99).standard_normal((dim, 6)).astype(np.float32)
    return vectors, ids, y


def test_forward_equals_a_per_patient_convolution():
    torch.manual_seed(0)
    module = ConceptCNN(dim=6, filters=5).eval()
    rng = np.random.default_rng(1)
    vectors = torch.as_tensor(rng.standard_normal((7, 6)), dtype=torch.float32)
    ids = torch.as_tensor(rng.integers(0, 7, size=(4, 3)))
    conv = torch.nn.Conv1d(6, 5, kernel_size=1)
    conv.load_state_dict(module.conv.state_dict())
    expected = []
    with torch.no_grad():
        for row in ids:
            sequence = vectors[row].T.unsqueeze(0)  # (1, dim, L): the patient's concepts
            pooled = torch.relu(conv(sequence)).squeeze(0).max(dim=1).values
            expected.append(module.fc(pooled))
        got = module(vectors, ids)
    assert got.shape == (4, 2)
    torch.testing.assert_close(got, torch.stack(expected), rtol=1e-5, atol=1e-6)
    # A precomputed projection gives the same logits; repeating a concept changes nothing.
    with torch.no_grad():
        assert torch.equal(module(vectors, ids, module.project(vectors)), got)
        padded = torch.cat([ids, ids[:, :1], ids[:, :1]], dim=1)
        torch.testing.assert_close(module(vectors, padded), got)


def test_dropout_is_active_only_in_training_mode():
    torch.manual_seed(0)
    module = ConceptCNN(dim=4, filters=50, dropout=0.5)
    vectors = torch.eye(4)
    ids = torch.tensor([[0, 1, 2, 3]] * 8)
    module.eval()
    with torch.no_grad():
        a, b = module(vectors, ids), module(vectors, ids)
    assert torch.equal(a, b)
    module.train()
    with torch.no_grad():
        c = module(vectors, ids)
    assert not torch.allclose(c, a)


def test_training_is_seeded():
    vectors, ids, y = toy(40, seed=0)
    first = CNNClassifier(random_state=3, **FAST).fit(vectors, ids, y)
    again = CNNClassifier(random_state=3, **FAST).fit(vectors, ids, y)
    other = CNNClassifier(random_state=4, **FAST).fit(vectors, ids, y)
    p = first.predict_proba(vectors, ids)
    assert np.array_equal(p, again.predict_proba(vectors, ids))
    assert first.history_ == again.history_ and first.best_epoch_ == again.best_epoch_
    assert not np.allclose(p, other.predict_proba(vectors, ids))
    assert len(first.history_) == FAST["epochs"]
    assert first.best_val_score_ == max(first.history_)
    assert first.history_[first.best_epoch_ - 1] == first.best_val_score_


def test_predict_proba_rows_sum_to_one():
    vectors, ids, y = toy(40, seed=0)
    p = CNNClassifier(random_state=0, **FAST).fit(vectors, ids, y).predict_proba(vectors, ids)
    assert p.shape == (40, 2)
    assert ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-6)


def test_learns_a_separable_problem():
    vectors, ids, y = toy(80, seed=0)
    test_vectors, test_ids, test_y = toy(40, seed=1)
    clf = CNNClassifier(lr=0.05, epochs=5, steps_per_epoch=20, random_state=0).fit(vectors, ids, y)
    p = clf.predict_proba(test_vectors, test_ids)[:, 1]
    assert roc_auc_score(test_y, p) == 1.0


def state(module: ConceptCNN) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def base():
    vectors, ids, y = toy(60, seed=0)
    return CNNClassifier(lr=0.05, random_state=0, **FAST).fit(vectors, ids, y)


def test_finetune_head_keeps_the_convolution(base):
    before = state(base.module_)
    vectors, ids, y = toy(30, seed=5)
    tuned = CNNClassifier(lr=0.05, random_state=1, **FAST).fit(
        vectors, ids, 1 - y, init=base.module_, train="head"
    )
    after = state(tuned.module_)
    assert torch.equal(after["conv.weight"], before["conv.weight"])
    assert torch.equal(after["conv.bias"], before["conv.bias"])
    assert not torch.equal(after["fc.weight"], before["fc.weight"])
    assert not torch.equal(after["fc.bias"], before["fc.bias"])
    # The model it started from is a copy: the source model is untouched.
    assert all(torch.equal(v, before[k]) for k, v in state(base.module_).items())


def test_finetune_all_changes_the_convolution(base):
    before = state(base.module_)
    vectors, ids, y = toy(30, seed=5)
    tuned = CNNClassifier(lr=0.05, random_state=1, **FAST).fit(
        vectors, ids, 1 - y, init=base.module_, train="all"
    )
    after = state(tuned.module_)
    assert not torch.equal(after["conv.weight"], before["conv.weight"])
    assert not torch.equal(after["fc.weight"], before["fc.weight"])
    assert all(torch.equal(v, before[k]) for k, v in state(base.module_).items())


def test_train_part_must_be_known():
    vectors, ids, y = toy(10, seed=0)
    with pytest.raises(ValueError, match="train must be one of"):
        CNNClassifier(**FAST).fit(vectors, ids, y, train="conv")


def test_multi_hot_exact():
    ids = np.array([[0, 2, 0], [1, 1, 1], [3, 2, 1]])
    expected = np.array(
        [[1, 0, 1, 0, 0], [0, 1, 0, 0, 0], [0, 1, 1, 1, 0]],
        dtype=np.float32,
    )
    got = multi_hot(ids, 5)
    assert got.dtype == np.float32
    assert np.array_equal(got, expected)


def test_one_hot_logistic_is_logistic_regression_on_multi_hot():
    vectors, ids, y = toy(40, seed=0)
    clf = OneHotLogistic(C=0.5, random_state=0).fit(vectors, ids, y)
    reference = LogisticRegression(C=0.5, max_iter=2000, random_state=0).fit(
        multi_hot(ids, len(vectors)), y
    )
    test_vectors, test_ids, test_y = toy(20, seed=1)
    p = clf.predict_proba(test_vectors, test_ids)
    np.testing.assert_allclose(p, reference.predict_proba(multi_hot(test_ids, 8)))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert ((p[:, 1] > 0.5) == (test_y == 1)).all()
