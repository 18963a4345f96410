"""The stacked CNN trainer against independent references: torch's own SGD on the
full-dimensional network, each model trained alone, and pooling written out per patient."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from harmonize.transfer.cnn_pooling import pool
from harmonize.transfer.cnn_training import _Batches, holdout, text_basis
from harmonize.transfer.metrics import auroc
from harmonize.transfer.models import CNNClassifier, ConceptCNN, FitJob, fit_many

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def world(n: int, seed: int, n_texts: int = 10, dim: int = 24, width: int = 4):
    """Texts 0/1 mark the class; vectors live in a 6-dimensional subspace of ``dim`` (so the
    trainer's reduced coordinates differ from the embedding's)."""
    rng = np.random.default_rng(seed)
    y = np.array([1, 0] * (n // 2))
    ids = rng.integers(2, n_texts, size=(n, width))
    ids[np.arange(n), 0] = np.where(y == 1, 0, 1)
    basis = np.random.default_rng(7).standard_normal((6, dim))
    vectors = (np.random.default_rng(8).standard_normal((n_texts, 6)) @ basis).astype(np.float32)
    return vectors, ids, y


def reference_fit(vectors, ids, y, seed, lr, epochs, steps, batch_size=8, init=None, head=False):
    """The study's training written plainly: full-dimensional ConceptCNN, torch.optim.SGD,
    dropout off (so no random masks to match), the best validation epoch kept."""
    torch.manual_seed(seed)
    module = copy.deepcopy(init) if init is not None else ConceptCNN(vectors.shape[1], 5, 0.0)
    rng = np.random.default_rng(seed)
    train_idx, val_idx = holdout(y, 0.2, rng)
    batches = _Batches(train_idx, batch_size, rng)
    params = list(module.fc.parameters()) if head else list(module.parameters())
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-3)
    v, ids_t, y_t = torch.as_tensor(vectors), torch.as_tensor(ids), torch.as_tensor(y)
    best, best_score = None, -np.inf
    for _ in range(epochs):
        module.train()
        for _ in range(steps):
            b = torch.as_tensor(batches.next())
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(v, ids_t[b]), y_t[b]).backward()
            opt.step()
        module.eval()
        with torch.no_grad():
            logits = module(v, ids_t[val_idx])
        score = roc_auc_score(y[val_idx], (logits[:, 1] - logits[:, 0]).numpy())
        if score > best_score:
            best, best_score = copy.deepcopy(module.state_dict()), score
    module.load_state_dict(best)
    with torch.no_grad():
        return torch.softmax(module.eval()(v, ids_t), 1).numpy()


SETTINGS = {"filters": 5, "dropout": 0.0, "epochs": 3, "steps_per_epoch": 7, "batch_size": 8}


def test_matches_torch_sgd_on_the_full_dimensional_network():
    vectors, ids, y = world(30, seed=0)  # 24 training patients: batches of 8, 8, 8
    clf = CNNClassifier(lr=0.05, random_state=2, **SETTINGS).fit(vectors, ids, y)
    expected = reference_fit(vectors, ids, y, seed=2, lr=0.05, epochs=3, steps=7)
    np.testing.assert_allclose(clf.predict_proba(vectors, ids), expected, atol=2e-5)
    # Fine-tuning (everything, or the last layer alone) from that model, on other patients.
    v2, ids2, y2 = world(26, seed=1)  # 21 training patients: batches of 8, 8, 5 (a short one)
    for head in (False, True):
        tuned = CNNClassifier(lr=0.02, random_state=3, **SETTINGS).fit(
            v2, ids2, 1 - y2, init=clf.module_, train="head" if head else "all"
        )
        expected = reference_fit(
            v2, ids2, 1 - y2, seed=3, lr=0.02, epochs=3, steps=7, init=clf.module_, head=head
        )
        np.testing.assert_allclose(tuned.predict_proba(v2, ids2), expected, atol=2e-5)


@pytest.mark.parametrize("pooling", ["max", "sum", "attention"])
def test_stacked_models_equal_each_model_trained_alone(pooling):
    vectors, ids, y = world(40, seed=0)
    settings = CNNClassifier(filters=6, epochs=2, steps_per_epoch=6, pooling=pooling)
    base = CNNClassifier(filters=6, epochs=2, steps_per_epoch=6, pooling=pooling, lr=0.05)
    base = base.fit(vectors, ids, y)
    other_ids, other_y = ids[:22], 1 - y[:22]
    jobs = [
        FitJob(ids, y, 0, 0.05),
        FitJob((ids, other_ids), np.concatenate([y, other_y]), 1, 0.02),
        FitJob(other_ids, other_y, 2, 0.01, base.module_, "all"),
        FitJob(other_ids, other_y, 3, 0.03, base.module_, "head"),
    ]
    together = fit_many(settings, vectors, jobs)
    for job, clf in zip(jobs, together, strict=True):
        ids_job = np.concatenate(job.ids) if isinstance(job.ids, tuple) else job.ids
        alone = copy.copy(settings)
        alone.random_state, alone.lr = job.random_state, job.lr
        alone = alone.fit(vectors, ids_job, job.y, init=job.init, train=job.train)
        assert clf.best_epoch_ == alone.best_epoch_
        np.testing.assert_allclose(
            clf.predict_proba(vectors, ids), alone.predict_proba(vectors, ids), atol=1e-5
        )


def test_pooling_written_out_per_patient():
    rng = np.random.default_rng(0)
    projected = torch.relu(torch.as_tensor(rng.standard_normal((2, 7, 3)), dtype=torch.float32))
    ids = torch.as_tensor(rng.integers(0, 7, size=(2, 4, 5)))
    attention = torch.as_tensor(rng.standard_normal((2, 3, 1)), dtype=torch.float32)
    got = {p: pool(projected, ids, p, attention) for p in ("max", "sum", "attention")}
    for m in range(2):
        for b in range(4):
            texts = sorted(set(ids[m, b].tolist()))  # a patient is the set of its texts
            rows = projected[m, texts]
            torch.testing.assert_close(got["max"][m, b], rows.max(0).values)
            torch.testing.assert_close(got["sum"][m, b], rows.sum(0))
            weights = torch.softmax((rows @ attention[m])[:, 0], 0)
            torch.testing.assert_close(got["attention"][m, b], weights @ rows)


def test_text_basis_and_auroc():
    vectors, _, _ = world(4, seed=0)
    coords, basis = text_basis(vectors)
    assert coords.shape == (10, 6) and basis.shape == (6, 24)
    np.testing.assert_allclose(coords @ basis, vectors, atol=1e-4)
    np.testing.assert_allclose(basis @ basis.T, np.eye(6), atol=1e-5)
    assert text_basis(np.eye(3))[1] is None  # full rank: nothing to reduce
    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 2, 300), rng.integers(0, 5, 300) / 4  # many ties
    assert auroc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
