"""Training many concept CNNs at once: the grid's models share their texts, so they are stacked.

Every model of a study grid reads the same few dozen concept-state texts. Training them one at a
time pays torch's per-step overhead once per model and step; here ``M`` models take their SGD
steps together, their parameters stacked on a leading axis, each with its own data, seed,
learning rate, validation hold-out, dropout masks and best epoch, so a model's result does not
depend on which others share its batch.

The first layer runs on the distinct texts, never per patient, and in the texts' own coordinates:
``n`` text vectors span at most ``n`` dimensions, so with ``V = C B`` (``B`` orthonormal rows)
the convolution ``V W^T`` equals ``C (B W^T)``. SGD with weight decay on ``W`` moves its in-span
part ``B W^T`` exactly as SGD on the reduced weight does, and the rest never reaches an output,
so training in ``r <= n`` dimensions instead of the embedding's (3,072 for text-embedding-3-large)
gives the same model on these texts.

>>> import numpy as np
>>> vectors = np.eye(4, dtype="float32"); ids = np.array([[0, 1], [2, 3]] * 10)
>>> jobs = [FitJob(ids, np.array([1, 0] * 10), random_state=s) for s in (0, 1)]
>>> [len(r.history) for r in train_many(vectors, jobs, TrainSettings(epochs=2, steps_per_epoch=3))]
[2, 2]
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from harmonize.transfer.cnn_pooling import POOLINGS, pool
from harmonize.transfer.metrics import auroc

TRAIN_PARTS = ("all", "head")


@dataclass
class TrainSettings:
    """What every stacked model shares: the architecture and the SGD schedule."""

    filters: int = 100
    dropout: float = 0.5
    pooling: str = "max"
    momentum: float = 0.9
    weight_decay: float = 1e-3
    batch_size: int = 32
    epochs: int = 20
    steps_per_epoch: int = 50
    val_fraction: float = 0.2
    device: str = "cpu"


@dataclass
class FitJob:
    """One model to train: its patients, seed, learning rate and (to fine-tune) its start."""

    ids: np.ndarray | tuple[np.ndarray, ...]  # a tuple: its arrays' patients in turn
    y: np.ndarray
    random_state: int = 0
    lr: float = 1e-3
    init: torch.nn.Module | None = None  # a ConceptCNN to start from (a copy is tuned)
    train: str = "all"


@dataclass
class Trained:
    """A trained model: its best epoch's module (full-dimensional, on the CPU) and its record."""

    module: torch.nn.Module
    best_epoch: int
    best_val_score: float
    history: list[float] = field(default_factory=list)


def text_basis(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(coordinates C, orthonormal rows B) with ``vectors == C @ B``; B is None when the vectors
    need every dimension they have (no saving).

    >>> C, B = text_basis(np.array([[1.0, 1.0, 0.0], [2.0, 2.0, 0.0]]))
    >>> C.shape, B.shape, bool(np.allclose(C @ B, [[1, 1, 0], [2, 2, 0]]))
    ((2, 1), (1, 3), True)
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    u, s, vt = np.linalg.svd(vectors, full_matrices=False)
    rank = int((s > s.max(initial=0.0) * 1e-6).sum()) if s.size else 0
    if rank >= vectors.shape[1]:
        return vectors.astype(np.float32), None
    rank = max(rank, 1)
    return (u[:, :rank] * s[:rank]).astype(np.float32), vt[:rank].astype(np.float32)


def holdout(y: np.ndarray, fraction: float, rng: np.random.Generator):
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
    """Training indices in shuffled passes: a fresh permutation each pass, batches in turn (the
    last batch of a pass may be short)."""

    def __init__(self, indices: np.ndarray, size: int, rng: np.random.Generator):
        self.indices, self.size, self.rng = indices, size, rng
        self.order, self.cursor = rng.permutation(indices), 0

    def next(self) -> np.ndarray:
        if self.cursor >= len(self.order):
            self.order, self.cursor = self.rng.permutation(self.indices), 0
        batch = self.order[self.cursor : self.cursor + self.size]
        self.cursor += self.size
        return batch


class _Stack:
    """M models' parameters stacked on a leading axis, the first layer in reduced coordinates."""

    def __init__(self, modules: list, basis: np.ndarray | None, device: str):
        def stacked(tensors) -> torch.Tensor:
            return torch.stack([t.detach().float() for t in tensors]).to(device)

        conv = [m.conv.weight.detach()[:, :, 0] for m in modules]  # (F, D) each
        if basis is not None:
            b = torch.as_tensor(basis)
            conv = [w @ b.T for w in conv]  # the in-span part, (F, r)
        self.w1 = stacked([w.T for w in conv]).requires_grad_()  # (M, r, F)
        self.b1 = stacked([m.conv.bias[None, :] for m in modules]).requires_grad_()  # (M, 1, F)
        self.w2 = stacked([m.fc.weight.T for m in modules]).requires_grad_()  # (M, F, 2)
        self.b2 = stacked([m.fc.bias[None, :] for m in modules]).requires_grad_()  # (M, 1, 2)
        self.att = None
        if modules[0].attention is not None:
            self.att = stacked([m.attention.weight.T for m in modules]).requires_grad_()
        self.params = [p for p in (self.w1, self.b1, self.w2, self.b2, self.att) if p is not None]
        self.momentum = [torch.zeros_like(p) for p in self.params]
        self.steps = 0

    def project(self, coords: torch.Tensor) -> torch.Tensor:
        """ReLU of the first layer on every text, per model: (M, n_texts, filters)."""
        return torch.relu(torch.matmul(coords, self.w1) + self.b1)

    def head(self, pooled: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """(M, B, 2) logits from pooled features (M, B, F), dropout ``masks`` when training."""
        if masks is not None:
            pooled = pooled * masks
        return torch.matmul(pooled, self.w2) + self.b2

    def sgd_step(self, lr: torch.Tensor, conv_mask: torch.Tensor, s: TrainSettings) -> None:
        """torch.optim.SGD(nesterov=True)'s update, per model: ``lr`` (M,), and the first layer
        (and attention) frozen where ``conv_mask`` is 0 (no update, no weight decay)."""
        with torch.no_grad():
            for p, buf in zip(self.params, self.momentum, strict=True):
                if p.grad is None:  # a frozen first layer that no step reached
                    continue
                g = p.grad + s.weight_decay * p
                if self.steps == 0:
                    buf.copy_(g)
                else:
                    buf.mul_(s.momentum).add_(g)
                update = g + s.momentum * buf
                scale = lr.view(-1, 1, 1)
                if p is self.w1 or p is self.b1 or p is self.att:
                    scale = scale * conv_mask.view(-1, 1, 1)
                p.sub_(scale * update)
                p.grad = None
        self.steps += 1

    def state(self, m: int) -> list[torch.Tensor]:
        return [p[m].detach().clone() for p in self.params]

    def load(self, m: int, state: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for p, value in zip(self.params, state, strict=True):
                p[m].copy_(value)


@dataclass
class _Job:
    """A job's per-model training state: its hold-out, batch stream and dropout generator."""

    job: FitJob
    train_idx: np.ndarray
    val_idx: np.ndarray
    batches: _Batches
    dropout_rng: np.random.Generator
    best: list[torch.Tensor] | None = None
    best_score: float = -np.inf
    best_epoch: int = 0
    history: list[float] = field(default_factory=list)


def train_many(vectors: np.ndarray, jobs: list[FitJob], settings: TrainSettings) -> list[Trained]:
    """Trains every job's CNN on ``vectors`` together; the best epoch of each on its own
    validation hold-out is kept. Results are each job's alone (seeded per job)."""
    from harmonize.transfer.models import ConceptCNN

    if settings.pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {settings.pooling!r}")
    for job in jobs:
        if job.train not in TRAIN_PARTS:
            raise ValueError(f"train must be one of {TRAIN_PARTS}, got {job.train!r}")
        if job.init is not None and job.init.pooling != settings.pooling:
            raise ValueError(
                f"cannot tune a {job.init.pooling}-pooling CNN with {settings.pooling}"
            )
    dim = vectors.shape[1]
    coords_np, basis = text_basis(vectors)
    coords = torch.as_tensor(coords_np, device=settings.device)
    modules, states = [], []
    for job in jobs:
        torch.manual_seed(job.random_state)
        module = (
            copy.deepcopy(job.init)
            if job.init is not None
            else ConceptCNN(dim, settings.filters, settings.dropout, settings.pooling)
        )
        modules.append(module.cpu())
        rng = np.random.default_rng(job.random_state)
        y = np.asarray(job.y, dtype=np.int64)
        train_idx, val_idx = holdout(y, settings.val_fraction, rng)
        batches = _Batches(train_idx, settings.batch_size, rng)
        states.append(
            _Job(job, train_idx, val_idx, batches, np.random.default_rng([job.random_state, 1]))
        )
    stack = _Stack(modules, basis, settings.device)
    lr = torch.tensor([j.lr for j in jobs], dtype=torch.float32, device=settings.device)
    conv_mask = torch.tensor(
        [j.train == "all" for j in jobs], dtype=torch.float32, device=settings.device
    )
    data = _Data(jobs, settings.device)
    if not conv_mask.any():  # every first layer frozen: each patient's pooled features are fixed
        data.features = _frozen_features(stack, data, coords, settings.pooling)
    for epoch in range(1, settings.epochs + 1):
        _epoch(stack, states, data, coords, lr, conv_mask, settings)
        _validate(stack, states, data, coords, settings.pooling, epoch)
    return [
        _trained(modules[m], stack, st, basis, settings.device, m) for m, st in enumerate(states)
    ]


class _Data:
    """Every job's patients in one bank. A job's ``ids`` may be a tuple of arrays (a pooled
    job: source patients, then target patients); an array shared by several jobs is stored
    once. ``id_row[offsets[m] + i]`` is the bank row of job m's patient i; ids are widened to
    one width (repeats change no pooling)."""

    def __init__(self, jobs: list[FitJob], device: str):
        pieces = [j.ids if isinstance(j.ids, tuple) else (j.ids,) for j in jobs]
        width = max(a.shape[1] for parts in pieces for a in parts)
        stored: dict[int, int] = {}  # id(array) -> its first bank row
        bank, id_rows, total = [], [], 0
        for parts in pieces:
            for a in parts:
                if id(a) not in stored:
                    stored[id(a)] = total
                    bank.append(_widen(a, width))
                    total += len(a)
                id_rows.append(stored[id(a)] + np.arange(len(a)))
        self.y_np = [np.asarray(j.y, dtype=np.int64) for j in jobs]
        self.offsets = np.cumsum([0, *(len(y) for y in self.y_np)])[:-1]
        self.ids = torch.as_tensor(np.concatenate(bank), device=device)
        self.id_row = torch.as_tensor(np.concatenate(id_rows), device=device)
        self.y = torch.as_tensor(np.concatenate(self.y_np), device=device)
        self.width, self.device = width, device
        self.features: torch.Tensor | None = None  # pooled patients, when no first layer trains

    def patients(self, rows) -> torch.Tensor:
        """The ids of job rows ``rows`` (any shape), (..., width)."""
        return self.ids[self.id_row[torch.as_tensor(rows, device=self.device)]]


def _widen(ids: np.ndarray, width: int) -> np.ndarray:
    """``ids`` padded to ``width`` columns by repeating each row's first id."""
    if ids.shape[1] == width:
        return np.asarray(ids, dtype=np.int64)
    pad = np.repeat(ids[:, :1], width - ids.shape[1], axis=1)
    return np.concatenate([ids, pad], axis=1).astype(np.int64)


def _epoch_plan(states, data, s: TrainSettings):
    """Every step's batches for one epoch, drawn per job: (bank rows (steps, M, B), weights
    (steps, M, B), dropout masks (steps, M, B, F)). A short batch is padded with weight-0
    rows, so each model's loss is the mean over its own batch."""
    m_count, size, steps = len(states), s.batch_size, s.steps_per_epoch
    rows = np.empty((steps, m_count, size), dtype=np.int64)
    weight = np.zeros((steps, m_count, size), dtype=np.float32)
    masks = np.empty((steps, m_count, size, s.filters), dtype=bool)
    keep = 1.0 - s.dropout
    for m, st in enumerate(states):
        for step in range(steps):
            batch = st.batches.next()
            n = len(batch)
            rows[step, m, :n] = data.offsets[m] + batch
            rows[step, m, n:] = data.offsets[m] + batch[0]
            weight[step, m, :n] = 1.0 / n
        masks[:, m] = st.dropout_rng.random((steps, size, s.filters)) < keep
    return rows, weight, masks


def _epoch(stack, states, data, coords, lr, conv_mask, s: TrainSettings) -> None:
    """``steps_per_epoch`` SGD steps of cross-entropy, every model on its own batch."""
    rows, weight, masks = (
        torch.as_tensor(a, device=data.device) for a in _epoch_plan(states, data, s)
    )
    for step in range(s.steps_per_epoch):
        if data.features is not None:
            pooled = data.features[rows[step]]
        else:
            att = stack.att
            pooled = pool(stack.project(coords), data.patients(rows[step]), s.pooling, att)
        logits = stack.head(pooled, masks[step] / (1.0 - s.dropout))
        y = data.y[rows[step]].reshape(-1)
        losses = F.cross_entropy(logits.reshape(-1, 2), y, reduction="none")
        (losses * weight[step].reshape(-1)).sum().backward()
        stack.sgd_step(lr, conv_mask, s)


def _validate(stack, states, data, coords, pooling: str, epoch: int) -> None:
    """Each model's validation AUROC (minus the log-loss with one class); keeps the best."""
    with torch.no_grad():
        projected = stack.project(coords) if data.features is None else None
        for m, st in enumerate(states):
            rows = data.offsets[m] + st.val_idx
            if data.features is not None:
                pooled = data.features[torch.as_tensor(rows, device=data.device)]
            else:
                pooled = _pooled_one(stack, projected, m, data.patients(rows), pooling)
            logits = pooled @ stack.w2[m] + stack.b2[m]
            y = data.y_np[m][st.val_idx]
            if len(np.unique(y)) == 2:
                score = auroc(y, (logits[:, 1] - logits[:, 0]).cpu().numpy())
            else:
                target = torch.as_tensor(y, device=logits.device)
                score = -float(F.cross_entropy(logits, target))
            st.history.append(score)
            if score > st.best_score:
                st.best, st.best_score, st.best_epoch = stack.state(m), score, epoch


def _pooled_one(stack: _Stack, projected, m: int, ids: torch.Tensor, pooling: str):
    """Model ``m``'s pooled features (B, F) for patients ``ids`` (B, L)."""
    att = None if stack.att is None else stack.att[m : m + 1]
    return pool(projected[m : m + 1], ids[None], pooling, att)[0]


def _frozen_features(stack: _Stack, data: _Data, coords, pooling: str) -> torch.Tensor:
    """(bank patients, F): each patient pooled through its own model's (frozen) first layer."""
    with torch.no_grad():
        projected = stack.project(coords)
        parts = []
        for m, start in enumerate(data.offsets):
            ids = data.patients(start + np.arange(len(data.y_np[m])))
            parts.append(_pooled_one(stack, projected, m, ids, pooling))
        return torch.cat(parts)


def _trained(module, stack: _Stack, st: _Job, basis, device: str, m: int) -> Trained:
    """The job's module with its best epoch's weights, mapped back to the full dimension."""
    stack.load(m, st.best)
    w1 = stack.w1[m].detach().cpu()  # (r, F)
    full = w1.T @ torch.as_tensor(basis) if basis is not None else w1.T  # (F, D)
    with torch.no_grad():
        module.conv.weight.copy_(full[:, :, None])
        module.conv.bias.copy_(stack.b1[m, 0].cpu())
        module.fc.weight.copy_(stack.w2[m].T.cpu())
        module.fc.bias.copy_(stack.b2[m, 0].cpu())
        if module.attention is not None:
            module.attention.weight.copy_(stack.att[m].T.cpu())
    module.eval()
    return Trained(module.to(device), st.best_epoch, float(st.best_score), st.history)
