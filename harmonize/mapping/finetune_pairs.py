"""What fine-tuning trains on and measures with: the known pairs' descriptions read from the
workspace, hard negatives, the held-out split, the held-out top-1, and batches in which no
text repeats (:mod:`harmonize.mapping.finetune` runs the training).

>>> pairs = training_pairs({0: [1], 1: [0, 1]}, ["a", "b"], ["x", "y"], rows=[0, 1])
>>> pairs
[('a', 'y'), ('b', 'x'), ('b', 'y')]
>>> sample_pairs(pairs, 2, random_state=0)
[('a', 'y'), ('b', 'y')]
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harmonize.core import sql
from harmonize.core.config import KNOWN_MIN_PAIRS, RANDOM_STATE
from harmonize.core.errors import InputError, literal
from harmonize.core.workspace import Workspace
from harmonize.index.faiss_index import search
from harmonize.mapping.rerank.known_pairs import read_known

if TYPE_CHECKING:
    import faiss


def training_pairs(
    known: dict[int, list[int]],
    source_texts: Sequence[str],
    target_texts: Sequence[str],
    rows: Sequence[int],
) -> list[tuple[str, str]]:
    """The (source description, target description) pairs of the known source ``rows``, one per
    known target, without repeats, in row order."""
    pairs = dict.fromkeys(
        (source_texts[s], target_texts[t]) for s in rows for t in known.get(s, [])
    )
    return list(pairs)


def sample_pairs(
    pairs: list[tuple[str, str]], max_pairs: int | None, random_state: int = RANDOM_STATE
) -> list[tuple[str, str]]:
    """A seeded sample of at most ``max_pairs`` of ``pairs``, in their order (all if None)."""
    if max_pairs is None or len(pairs) <= max_pairs:
        return pairs
    keep = np.sort(np.random.default_rng(random_state).permutation(len(pairs))[:max_pairs])
    return [pairs[i] for i in keep.tolist()]


def mine_hard_negatives(
    pairs: list[tuple[str, str]],
    source_vectors: np.ndarray,
    target_index: faiss.Index,
    target_texts: Sequence[str],
    depth: int = 10,
) -> list[str]:
    """For each pair, the target description nearest its source description (by the base
    model, one row of ``source_vectors`` per pair) that is none of that source's known targets:
    the near miss the model must learn to tell apart ("unspecified" against "other").

    >>> from harmonize.index.faiss_index import build_faiss
    >>> v = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], dtype=np.float32)
    >>> mine_hard_negatives([("a", "x")], v[:1], build_faiss(v), ["x", "y", "z"])
    ['y']
    """
    right: dict[str, set[str]] = {}
    for s, t in pairs:
        right.setdefault(s, set()).add(t)
    depth += max(len(r) for r in right.values())
    _, ids = search(target_index, source_vectors, depth)
    negatives = []
    for (source, _), order in zip(pairs, ids.tolist(), strict=True):
        wrong = [target_texts[j] for j in order if target_texts[j] not in right[source]]
        negatives.append(wrong[0] if wrong else target_texts[order[-1]])
    return negatives


def split_holdout(
    rows: Sequence[int], fraction: float, random_state: int = RANDOM_STATE
) -> tuple[list[int], list[int]]:
    """Known source rows for training and for the held-out report (seeded).

    >>> split_holdout(range(10), 0.2)
    ([0, 1, 2, 3, 5, 7, 8, 9], [4, 6])
    """
    rows = sorted(rows)
    n_out = int(round(len(rows) * fraction))
    out = set(np.random.default_rng(random_state).permutation(rows)[:n_out].tolist())
    return [r for r in rows if r not in out], sorted(out)


def top1_hits(
    target_index: faiss.Index, query_vectors: np.ndarray, right: Sequence[Sequence[int]]
) -> float:
    """Share of queries whose nearest target row (inner product) is one of its right rows.

    >>> from harmonize.index.faiss_index import build_faiss
    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> top1_hits(build_faiss(np.eye(2, dtype=np.float32)), q, [[0], [0]])
    0.5
    """
    _, ids = search(target_index, query_vectors, 1)
    return float(np.mean([b in r for b, r in zip(ids[:, 0].tolist(), right, strict=True)]))


@dataclass
class TrainingSet:
    """Both sites' descriptions, the known pairs as rows ({source row: [target rows]}), the
    known source rows trained on and held out, and the description pairs trained on."""

    source: str
    target: str
    known_path: Path
    source_texts: list[str]
    target_texts: list[str]
    known: dict[int, list[int]]
    train_rows: list[int]
    held_rows: list[int]
    pairs: list[tuple[str, str]]


def read_training_set(
    ws: Workspace,
    source: str,
    target: str,
    known_path: str | Path,
    holdout: float,
    max_pairs: int | None = None,
    random_state: int = RANDOM_STATE,
) -> TrainingSet:
    """Reads both sites and the known pairs, keeps a seeded ``holdout`` share of the known
    source concepts out and samples at most ``max_pairs`` pairs; refuses too few to train on."""
    with ws.connect(read_only=True) as con:
        for site in (source, target):
            ws.require_site(con, site)
        src = sql.run_internal(con, "site_concepts", site=source).df()
        tgt = sql.run_internal(con, "site_concepts", site=target).df()
    source_codes = src["code"].to_numpy(dtype=object)
    known = read_known(known_path, source_codes, tgt["code"].to_numpy(dtype=object))
    if len(known) < KNOWN_MIN_PAIRS:
        raise InputError(
            f"{{known}}: only {len(known)} source concepts of {literal(known_path)} are in "
            f"site '{source}' with a target in site '{target}'; at least {KNOWN_MIN_PAIRS} are "
            "needed",
            params=("known",),
        )
    source_texts = src["description"].tolist()
    target_texts = tgt["description"].tolist()
    train_rows, held_rows = split_holdout(list(known), holdout, random_state)
    pairs = training_pairs(known, source_texts, target_texts, train_rows)
    pairs = sample_pairs(pairs, max_pairs, random_state)
    if len(pairs) < 2:
        raise InputError(
            "{known}: fewer than 2 distinct description pairs to train on", params=("known",)
        )
    return TrainingSet(
        source, target, Path(known_path), source_texts, target_texts, known, train_rows,
        held_rows, pairs,
    )  # fmt: skip


class DistinctTextBatches:
    """Batches in which no text appears twice, reshuffled each epoch, for the in-batch
    negatives loss (a text repeated in a batch would be its own false negative). Each example
    goes into the first open batch it does not clash with; examples that clash with every open
    batch start a new one, so batches may come out smaller but every example is used.
    (sentence-transformers' NoDuplicatesDataLoader loops forever when a batch cannot be filled,
    for instance when most known pairs share one target.)

    >>> batches = DistinctTextBatches([("a", "x"), ("b", "x"), ("c", "y")], 2, seed=0)
    >>> sorted(sorted(b) for b in batches.batches())
    [[('a', 'x')], [('b', 'x'), ('c', 'y')]]
    """

    def __init__(self, examples: Sequence, batch_size: int, seed: int = RANDOM_STATE):
        self.examples = list(examples)
        self.batch_size = batch_size
        self.rng = random.Random(seed)
        self.collate_fn: Callable | None = None  # set by sentence-transformers' old_fit
        self._len = len(self.batches())

    @staticmethod
    def _texts(example) -> set[str]:
        texts = example.texts if hasattr(example, "texts") else example
        return {str(t).strip().lower() for t in texts}

    def batches(self) -> list[list]:
        order = self.examples[:]
        self.rng.shuffle(order)
        full: list[list] = []
        open_: list[tuple[list, set[str]]] = []
        for example in order:
            texts = self._texts(example)
            for i, (batch, seen) in enumerate(open_):
                if seen.isdisjoint(texts):
                    batch.append(example)
                    seen.update(texts)
                    if len(batch) == self.batch_size:
                        full.append(batch)
                        del open_[i]
                    break
            else:
                if self.batch_size == 1:
                    full.append([example])
                else:
                    open_.append(([example], texts))
        return full + [batch for batch, _ in open_]

    def __len__(self) -> int:
        return self._len

    def __iter__(self):
        for batch in self.batches():
            yield self.collate_fn(batch) if self.collate_fn is not None else batch
