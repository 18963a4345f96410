"""The study's concept-embedding CNN, scikit-learn style (the one-hot logistic baseline is in
:mod:`harmonize.transfer.baseline`).

The CNN: Conv1d(embedding dim -> 100 filters, kernel 1), ReLU, max over the patient's concepts,
dropout 0.5, Linear(100 -> 2). With kernel 1 the convolution is one shared projection of each
concept vector, so it is applied once to the distinct texts and gathered per patient: the same
function as running it over every patient's sequence, at a fraction of the cost. Beyond the
study: sum or attention pooling (``pooling=``), and :func:`fit_many`, which trains a grid's
models together (:mod:`harmonize.transfer.cnn_training`).

>>> import numpy as np
>>> vectors = np.eye(4, dtype="float32"); ids = np.array([[0, 1], [2, 3]] * 10)
>>> y = np.array([1, 0] * 10)
>>> clf = CNNClassifier(epochs=2, steps_per_epoch=5, random_state=0).fit(vectors, ids, y)
>>> clf.predict_proba(vectors, ids).shape
(20, 2)
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import torch
from torch import nn

# The one-hot baseline needs no torch; it lives in .baseline and is re-exported here.
from harmonize.transfer.baseline import OneHotLogistic, multi_hot
from harmonize.transfer.cnn_pooling import POOLINGS, pool
from harmonize.transfer.cnn_training import TRAIN_PARTS, FitJob, Trained, TrainSettings, train_many

__all__ = [
    "POOLINGS",
    "TRAIN_PARTS",
    "CNNClassifier",
    "ConceptCNN",
    "FitJob",
    "OneHotLogistic",
    "fit_many",
    "multi_hot",
]


@contextlib.contextmanager
def single_thread():
    """Runs torch on one CPU thread inside the block. The CNN's tensors are small: a second
    thread gains ~10 % alone but, when another process competes for the cores, oversubscription
    made training tens of times slower (measured on this project's 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ConceptCNN(nn.Module):
    """Conv1d(kernel 1) + ReLU + pooling over concepts + dropout + Linear(filters -> 2).

    ``pooling``: ``max`` (the study's), ``sum``, or ``attention`` (a learned score per projected
    text, softmax-weighted over the patient's texts); see :mod:`harmonize.transfer.cnn_pooling`.
    """

    def __init__(self, dim: int, filters: int = 100, dropout: float = 0.5, pooling: str = "max"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.conv = nn.Conv1d(dim, filters, kernel_size=1)
        self.attention = nn.Linear(filters, 1, bias=False) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(filters, 2)

    def project(self, vectors: torch.Tensor) -> torch.Tensor:
        """ReLU(conv) of each distinct text vector: (n_texts, dim) -> (n_texts, filters)."""
        return torch.relu(vectors @ self.conv.weight[:, :, 0].T + self.conv.bias)

    def forward(
        self, vectors: torch.Tensor, ids: torch.Tensor, projected: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits for the patients ``ids``; ``projected`` reuses a precomputed projection
        (valid while the convolution is frozen)."""
        if projected is None:
            projected = self.project(vectors)
        att = None if self.attention is None else self.attention.weight.T[None]
        pooled = pool(projected[None], ids[None], self.pooling, att)[0]
        return self.fc(self.dropout(pooled))


class CNNClassifier:
    """Trains :class:`ConceptCNN` with SGD (Nesterov momentum, weight decay), keeping the epoch
    with the best validation AUROC on a stratified hold-out of the training data.

    ``fit(..., init=other.module_, train="head")`` fine-tunes a copy of another model with only
    the last layer trainable; ``train="all"`` tunes everything. :func:`fit_many` trains many
    at once (the same models, faster).
    """

    def __init__(
        self,
        filters: int = 100,
        dropout: float = 0.5,
        lr: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 1e-3,
        batch_size: int = 32,
        epochs: int = 20,
        steps_per_epoch: int = 50,
        val_fraction: float = 0.2,
        random_state: int = 0,
        device: str = "cpu",
        pooling: str = "max",
    ):
        self.filters = filters
        self.dropout = dropout
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.val_fraction = val_fraction
        self.random_state = random_state
        self.device = device
        self.pooling = pooling

    def settings(self) -> TrainSettings:
        """The training settings every model fitted with this classifier's parameters shares."""
        return TrainSettings(
            filters=self.filters,
            dropout=self.dropout,
            pooling=self.pooling,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            epochs=self.epochs,
            steps_per_epoch=self.steps_per_epoch,
            val_fraction=self.val_fraction,
            device=self.device,
        )

    def fit(
        self,
        vectors: np.ndarray,
        ids: np.ndarray,
        y: np.ndarray,
        init: ConceptCNN | None = None,
        train: str = "all",
    ) -> CNNClassifier:
        job = FitJob(ids, y, self.random_state, self.lr, init, train)
        return fit_many(self, vectors, [job])[0]

    def _record(self, trained: Trained) -> CNNClassifier:
        self.module_ = trained.module
        self.best_epoch_ = trained.best_epoch
        self.best_val_score_ = trained.best_val_score
        self.history_ = trained.history
        return self

    def predict_proba(self, vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
        v = torch.as_tensor(vectors, dtype=torch.float32, device=self.device)
        self.module_.eval()
        with torch.no_grad(), single_thread():
            logits = self.module_(v, torch.as_tensor(ids, dtype=torch.long, device=self.device))
        return torch.softmax(logits, 1).cpu().numpy()


def fit_many(
    settings: CNNClassifier, vectors: np.ndarray, jobs: list[FitJob]
) -> list[CNNClassifier]:
    """One fitted :class:`CNNClassifier` per job, trained together (each with its own seed and
    learning rate from the job, the rest from ``settings``); see
    :mod:`harmonize.transfer.cnn_training`."""
    with single_thread():
        trained = train_many(np.asarray(vectors, dtype=np.float32), jobs, settings.settings())
    out = []
    for job, result in zip(jobs, trained, strict=True):
        clf = copy.copy(settings)
        clf.random_state, clf.lr = job.random_state, job.lr
        out.append(clf._record(result))
    return out
