"""Fine-tuning the encoder on pairs a site already knows, so that its nearest neighbours follow
the site's own idea of "the same concept".

A pretrained sentence encoder places "Diabetes mellitus without complication" and "Type 2
diabetes mellitus without complications" close, but it has never seen how two coding systems
split the world. Known pairs (source_code,target_code, the same file ``map --known`` reads)
teach it: each pair's two descriptions are pulled together and pushed away from the other
targets in the batch (sentence-transformers' multiple-negatives ranking loss, a contrastive
loss with in-batch negatives). The result is an ordinary sentence-transformers folder, used as
``--model FOLDER`` by build-index, map and bench-map, and it stacks with ``map --known``.

A share of the known source concepts (``holdout``) is kept out of training and used to report
what fine-tuning did: the top-1 accuracy of plain nearest-neighbour search among all of the
target site's concepts, with the base model and with the fine-tuned one.

>>> pairs = training_pairs({0: [1], 1: [0, 1]}, ["a", "b"], ["x", "y"], rows=[0, 1])
>>> pairs
[('a', 'y'), ('b', 'x'), ('b', 'y')]
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harmonize.core import sql
from harmonize.core.config import (
    FINETUNE_BATCH_SIZE,
    FINETUNE_EPOCHS,
    FINETUNE_HARD_NEGATIVES,
    FINETUNE_HOLDOUT,
    FINETUNE_LR,
    FINETUNE_THREADS,
    KNOWN_MIN_PAIRS,
    RANDOM_STATE,
)
from harmonize.core.errors import InputError, ModelError
from harmonize.core.workspace import Workspace
from harmonize.embed.base import quiet_transformers, resolve_device
from harmonize.embed.cache import EmbeddingCache, embed_texts
from harmonize.embed.encoders import SentenceTransformerEncoder
from harmonize.embed.registry import get_encoder
from harmonize.index.faiss_index import build_faiss, search
from harmonize.mapping.rerank.known_pairs import read_known

if TYPE_CHECKING:
    import faiss

PROVENANCE_FILE = "harmonize_fine_tune.json"


@dataclass
class FineTuneResult:
    output: Path
    base: str
    n_pairs: int  # description pairs trained on
    n_holdout: int  # known source concepts kept out of training, for the report
    n_targets: int
    seconds: float
    base_top1: float | None
    tuned_top1: float | None

    @property
    def message(self) -> str:
        text = (
            f"fine-tuned {self.base} on {self.n_pairs} known pairs in {self.seconds:.0f}s; "
            f"wrote {self.output}"
        )
        if self.base_top1 is not None:
            text += (
                f"\nheld-out top-1 among {self.n_targets} target concepts "
                f"({self.n_holdout} known source concepts kept out of training): "
                f"{self.base_top1:.1%} with {self.base}, {self.tuned_top1:.1%} fine-tuned"
            )
        return text + f"\nuse it with: --model {self.output}"


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

    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> top1_hits(build_faiss(np.eye(2, dtype=np.float32)), q, [[0], [0]])
    0.5
    """
    _, ids = search(target_index, query_vectors, 1)
    return float(np.mean([b in r for b, r in zip(ids[:, 0].tolist(), right, strict=True)]))


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


def _check_output(output: Path) -> Path:
    output = Path(output).expanduser()
    if output.exists():
        raise InputError(
            f"-o {output} already exists; fine-tune writes a new folder (choose another path "
            "or delete it)"
        )
    if not output.parent.is_dir():
        raise InputError(f"-o {output}: folder {output.parent} does not exist")
    return output.resolve()


def _check_settings(
    epochs: int, batch_size: int, max_pairs: int | None, holdout: float, threads: int
) -> None:
    if epochs < 1:
        raise InputError(f"--epochs must be at least 1, got {epochs}")
    if batch_size < 2:
        # The loss contrasts each pair with the other targets of its batch.
        raise InputError(f"--batch-size must be at least 2, got {batch_size}")
    if max_pairs is not None and max_pairs < 1:
        raise InputError(f"--max-pairs must be at least 1, got {max_pairs}")
    if not 0.0 <= holdout <= 0.5:
        raise InputError(f"--holdout must be between 0 and 0.5, got {holdout}")
    if threads < 1:
        raise InputError(f"--threads must be at least 1, got {threads}")


def _train(
    base: SentenceTransformerEncoder,
    pairs: list[tuple[str, ...]],
    folder: Path,
    epochs: int,
    batch_size: int,
    device: str,
    threads: int,
    random_state: int,
    progress: bool,
):
    import torch
    from sentence_transformers import InputExample, SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    quiet_transformers()
    previous = torch.get_num_threads()
    # One thread by default: on a shared 2-core machine two torch threads spinning against
    # another job ran several times slower than one.
    torch.set_num_threads(threads)
    torch.manual_seed(random_state)
    try:
        model = SentenceTransformer(str(base.path), device=device, local_files_only=True)
        examples = [InputExample(texts=list(texts)) for texts in pairs]
        loader = DistinctTextBatches(examples, min(batch_size, len(examples)), random_state)
        loss = MultipleNegativesRankingLoss(model)
        model.old_fit(
            [(loader, loss)],
            epochs=epochs,
            warmup_steps=max(1, len(loader) * epochs // 10),
            optimizer_params={"lr": FINETUNE_LR},
            show_progress_bar=progress and sys.stderr.isatty(),  # as tqdm(disable=None)
        )
        model.save(str(folder))
    finally:
        torch.set_num_threads(previous)


def fine_tune(
    ws: Workspace,
    source: str,
    target: str,
    known_path: str | Path,
    output: str | Path,
    model: str = "minilm",
    epochs: int = FINETUNE_EPOCHS,
    batch_size: int = FINETUNE_BATCH_SIZE,
    max_pairs: int | None = None,
    holdout: float = FINETUNE_HOLDOUT,
    device: str = "auto",
    threads: int = FINETUNE_THREADS,
    random_state: int = RANDOM_STATE,
    progress: bool = False,
    echo: Callable[[str], None] = lambda _: None,
    hard_negatives: bool = FINETUNE_HARD_NEGATIVES,
) -> FineTuneResult:
    """Fine-tunes ``model`` on the known pairs between two sites and writes a
    sentence-transformers folder at ``output`` (all or nothing). The workspace is only read.

    >>> # fine_tune(Workspace("ws"), "icd10", "icd9", "pairs.csv", "ft-icd").message
    """
    _check_settings(epochs, batch_size, max_pairs, holdout, threads)
    output = _check_output(Path(output))
    encoder = get_encoder(model)
    if not isinstance(encoder, SentenceTransformerEncoder):
        raise ModelError(
            f"fine-tune trains a sentence-transformers model (minilm, or a sentence-transformers "
            f"folder); '{model}' is not one"
        )
    with ws.connect(read_only=True) as con:
        for site in (source, target):
            ws.require_site(con, site)
        src = sql.run_internal(con, "site_concepts", site=source).df()
        tgt = sql.run_internal(con, "site_concepts", site=target).df()
    source_codes = src["code"].to_numpy(dtype=object)
    known = read_known(known_path, source_codes, tgt["code"].to_numpy(dtype=object))
    if len(known) < KNOWN_MIN_PAIRS:
        raise InputError(
            f"--known: only {len(known)} source concepts of {known_path} are in site '{source}' "
            f"with a target in site '{target}'; at least {KNOWN_MIN_PAIRS} are needed"
        )
    source_texts = src["description"].tolist()
    target_texts = tgt["description"].tolist()
    train_rows, held_rows = split_holdout(list(known), holdout, random_state)
    pairs = training_pairs(known, source_texts, target_texts, train_rows)
    if max_pairs is not None and len(pairs) > max_pairs:
        keep = np.sort(np.random.default_rng(random_state).permutation(len(pairs))[:max_pairs])
        pairs = [pairs[i] for i in keep.tolist()]
    if len(pairs) < 2:
        raise InputError("--known: fewer than 2 distinct description pairs to train on")
    torch_device = resolve_device(device)
    cache = EmbeddingCache(ws.cache_dir, encoder)  # read, never saved: ws is read-only
    base_index = None  # the target site by the base model: for mining and the report
    if hard_negatives or held_rows:
        base_index = build_faiss(
            embed_texts(encoder, target_texts, cache, torch_device, progress=progress,
                        desc=f"embedding {target} ({model})", save=False)
        )  # fmt: skip
    examples: list[tuple[str, ...]] = list(pairs)
    if hard_negatives:
        echo(f"mining hard negatives among {len(target_texts)} '{target}' concepts with {model}")
        negatives = mine_hard_negatives(
            pairs,
            embed_texts(encoder, [s for s, _ in pairs], cache, torch_device, save=False),
            base_index,
            target_texts,
        )
        examples = [(s, t, n) for (s, t), n in zip(pairs, negatives, strict=True)]
    echo(
        f"fine-tuning {model} on {len(pairs)} pairs from {len(train_rows)} known '{source}' "
        f"concepts ({len(held_rows)} kept out for the report), {epochs} epoch(s), batch "
        f"{batch_size}{', with hard negatives' if hard_negatives else ''}, on {torch_device}"
    )
    started = time.perf_counter()
    staging = output.parent / f".{output.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _train(
            encoder,
            examples,
            staging,
            epochs,
            batch_size,
            torch_device,
            threads,
            random_state,
            progress,
        )
        base_top1 = tuned_top1 = None
        if held_rows:
            echo(f"measuring held-out top-1 among {len(target_texts)} '{target}' concepts")
            right = [known[r] for r in held_rows]
            queries = [source_texts[r] for r in held_rows]
            base_top1 = top1_hits(
                base_index, embed_texts(encoder, queries, cache, torch_device, save=False), right
            )
            tuned = SentenceTransformerEncoder(str(output), staging)
            tuned_index = build_faiss(
                embed_texts(tuned, target_texts, None, torch_device, progress=progress,
                            desc=f"embedding {target} (fine-tuned)")
            )  # fmt: skip
            tuned_top1 = top1_hits(
                tuned_index, embed_texts(tuned, queries, None, torch_device), right
            )
        seconds = time.perf_counter() - started
        provenance = {
            "base_model": model,
            "source": source,
            "target": target,
            "known_file": str(Path(known_path).resolve()),
            "pairs": len(pairs),
            "held_out_concepts": len(held_rows),
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": FINETUNE_LR,
            "loss": "MultipleNegativesRankingLoss",
            "hard_negatives": hard_negatives,
            "random_state": random_state,
            "held_out_top1_base": base_top1,
            "held_out_top1_fine_tuned": tuned_top1,
            "seconds": round(seconds, 1),
        }
        (staging / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
        os.replace(staging, output)  # all or nothing: the folder appears complete
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return FineTuneResult(
        output,
        model,
        len(pairs),
        len(held_rows),
        len(target_texts),
        seconds,
        base_top1,
        tuned_top1,
    )
