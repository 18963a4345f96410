"""The study's concept-embedding CNN, scikit-learn style (the one-hot logistic baseline is in
:mod:`harmonize.transfer.baseline`).

The CNN: Conv1d(embedding dim -> 100 filters, kernel 1), ReLU, max over the patient's concepts,
dropout 0.5, Linear(100 -> 2). With kernel 1 the convolution is one shared projection of each
concept vector, so it is applied once to the distinct texts and gathered per patient: the same
function as running it over every patient's sequence, at a fraction of the cost.

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
from sklearn.metrics import roc_auc_score
from torch import nn

# The one-hot baseline needs no torch; it lives in .baseline and is re-exported here.
from harmonize.transfer.baseline import OneHotLogistic, multi_hot

__all__ = ["TRAIN_PARTS", "CNNClassifier", "ConceptCNN", "OneHotLogistic", "multi_hot"]

TRAIN_PARTS = ("all", "head")


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
    """Conv1d(kernel 1) + ReLU + max-pool over concepts + dropout + Linear(filters -> 2)."""

    def __init__(self, dim: int, filters: int = 100, dropout: float = 0.5):
        super().__init__()
        self.conv = nn.Conv1d(dim, filters, kernel_size=1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(filters, 2)

    def project(self, vectors: torch.Tensor) -> torch.Tensor:
        """ReLU(conv) of each distinct text vector: (n_texts, dim) -> (n_texts, filters)."""
        return torch.relu(self.conv(vectors.T.unsqueeze(0))).squeeze(0).T

    def forward(
        self, vectors: torch.Tensor, ids: torch.Tensor, projected: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits for the patients ``ids``; ``projected`` reuses a precomputed projection
        (valid while the convolution is frozen)."""
        if projected is None:
            projected = self.project(vectors)
        return self.fc(self.dropout(projected[ids].max(dim=1).values))


def _stratified_holdout(y: np.ndarray, fraction: float, rng: np.random.Generator):
    """(train, validation) indices, stratified; all data in both when a class is too small."""
    val = []
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        n_val = int(round(len(idx) * fraction))
        if n_val < 1 or n_val >= len(idx):
            everything = np.arange(len(y))
            return everything, everything
        val.append(rng.permutation(idx)[:n_val])
    val_idx = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(len(y)), val_idx), val_idx


class _Batches:
    """Training indices in shuffled passes: a fresh permutation each pass, batches in turn."""

    def __init__(self, indices: np.ndarray, size: int, rng: np.random.Generator):
        self.indices, self.size, self.rng = indices, size, rng
        self.order, self.cursor = rng.permutation(indices), 0

    def next(self) -> np.ndarray:
        if self.cursor >= len(self.order):
            self.order, self.cursor = self.rng.permutation(self.indices), 0
        batch = self.order[self.cursor : self.cursor + self.size]
        self.cursor += self.size
        return batch


class CNNClassifier:
    """Trains :class:`ConceptCNN` with SGD (Nesterov momentum, weight decay), keeping the epoch
    with the best validation AUROC on a stratified hold-out of the training data.

    ``fit(..., init=other.module_, train="head")`` fine-tunes a copy of another model with only
    the last layer trainable; ``train="all"`` tunes everything.
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

    def fit(
        self,
        vectors: np.ndarray,
        ids: np.ndarray,
        y: np.ndarray,
        init: ConceptCNN | None = None,
        train: str = "all",
    ) -> CNNClassifier:
        with single_thread():
            return self._fit(vectors, ids, y, init, train)

    def _fit(self, vectors, ids, y, init, train) -> CNNClassifier:
        if train not in TRAIN_PARTS:
            raise ValueError(f"train must be one of {TRAIN_PARTS}, got {train!r}")
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        y = np.asarray(y, dtype=np.int64)
        train_idx, val_idx = _stratified_holdout(y, self.val_fraction, rng)
        module = self._module(vectors.shape[1], init, train)
        optimizer = torch.optim.SGD(
            [p for p in module.parameters() if p.requires_grad],
            lr=self.lr,
            momentum=self.momentum,
            nesterov=True,
            weight_decay=self.weight_decay,
        )
        v = torch.as_tensor(vectors, dtype=torch.float32, device=self.device)
        ids_t = torch.as_tensor(ids, dtype=torch.long, device=self.device)
        y_t = torch.as_tensor(y, device=self.device)
        best_state, best_score, best_epoch = copy.deepcopy(module.state_dict()), -np.inf, 0
        history = []
        batches = _Batches(train_idx, self.batch_size, rng)
        # A frozen convolution projects the texts the same way every step: do it once.
        frozen = None
        if train == "head":
            with torch.no_grad():
                frozen = module.project(v)
        for epoch in range(1, self.epochs + 1):
            self._epoch(module, optimizer, batches, v, ids_t, y_t, frozen)
            score = self._validation_score(module, v, ids_t[val_idx], y[val_idx])
            history.append(score)
            if score > best_score:
                best_state, best_score, best_epoch = (
                    copy.deepcopy(module.state_dict()),
                    score,
                    epoch,
                )
        module.load_state_dict(best_state)
        module.eval()
        self.module_ = module
        self.best_epoch_ = best_epoch
        self.best_val_score_ = float(best_score)
        self.history_ = history
        return self

    def _module(self, dim: int, init: ConceptCNN | None, train: str) -> ConceptCNN:
        """A new CNN, or a copy of ``init``; with ``train="head"`` its convolution is frozen."""
        module = (
            copy.deepcopy(init) if init is not None else ConceptCNN(dim, self.filters, self.dropout)
        ).to(self.device)
        for param in module.conv.parameters():
            param.requires_grad_(train == "all")
        return module

    def _epoch(self, module, optimizer, batches, v, ids_t, y_t, frozen) -> None:
        """``steps_per_epoch`` SGD steps of cross-entropy on batches of the training patients."""
        loss_fn = nn.CrossEntropyLoss()
        module.train()
        for _ in range(self.steps_per_epoch):
            batch = torch.as_tensor(batches.next(), device=self.device)
            optimizer.zero_grad()
            loss = loss_fn(module(v, ids_t[batch], frozen), y_t[batch])
            loss.backward()
            optimizer.step()

    @staticmethod
    def _validation_score(module, v, ids, y) -> float:
        """Validation AUROC; minus the log-loss when the validation set has one class."""
        module.eval()
        with torch.no_grad():
            logits = module(v, ids)
        if len(np.unique(y)) == 2:
            return float(roc_auc_score(y, torch.softmax(logits, 1)[:, 1].cpu().numpy()))
        target = torch.as_tensor(y, device=logits.device)
        return -float(nn.functional.cross_entropy(logits, target))

    def predict_proba(self, vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
        v = torch.as_tensor(vectors, dtype=torch.float32, device=self.device)
        self.module_.eval()
        with torch.no_grad(), single_thread():
            logits = self.module_(v, torch.as_tensor(ids, dtype=torch.long, device=self.device))
        return torch.softmax(logits, 1).cpu().numpy()
