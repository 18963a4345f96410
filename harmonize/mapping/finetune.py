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
target site's concepts, with the base model and with the fine-tuned one. What it trains on and
measures with is :mod:`harmonize.mapping.finetune_pairs`; this module runs the training.

>>> FineTuneSettings("minilm", epochs=0).check()
Traceback (most recent call last):
    ...
harmonize.core.errors.InputError: epochs must be at least 1, got 0
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harmonize.core.config import (
    FINETUNE_BATCH_SIZE,
    FINETUNE_EPOCHS,
    FINETUNE_HARD_NEGATIVES,
    FINETUNE_HOLDOUT,
    FINETUNE_LR,
    FINETUNE_THREADS,
    RANDOM_STATE,
)
from harmonize.core.errors import InputError, ModelError
from harmonize.core.workspace import Workspace
from harmonize.embed.base import quiet_transformers, resolve_device
from harmonize.embed.cache import EmbeddingCache, embed_texts
from harmonize.embed.encoders import SentenceTransformerEncoder
from harmonize.embed.registry import get_encoder
from harmonize.index.faiss_index import build_faiss
from harmonize.mapping.finetune_pairs import (
    DistinctTextBatches,
    TrainingSet,
    mine_hard_negatives,
    read_training_set,
    top1_hits,
)

if TYPE_CHECKING:
    import faiss

PROVENANCE_FILE = "harmonize_fine_tune.json"


def _literal(value: object) -> str:
    """``value`` as text inside an error template (whose ``{name}`` marks parameters)."""
    return str(value).replace("{", "{{").replace("}", "}}")


@dataclass
class FineTuneResult:
    """The fine-tuned model's folder and what training measured (top-1: None if none held out)."""

    output: Path
    base: str
    n_pairs: int  # description pairs trained on
    n_holdout: int  # known source concepts kept out of training, for the report
    n_targets: int
    seconds: float
    base_top1: float | None
    tuned_top1: float | None
    spec: str | None = None  # the --model spec that names the model, when not its folder

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
        return text + f"\nuse it with: --model {self.spec or self.output}"


@dataclass(frozen=True)
class FineTuneSettings:
    """How to train: ``model`` is the base model's spec; :meth:`check` refuses bad values."""

    model: str
    epochs: int = FINETUNE_EPOCHS
    batch_size: int = FINETUNE_BATCH_SIZE
    max_pairs: int | None = None
    holdout: float = FINETUNE_HOLDOUT
    threads: int = FINETUNE_THREADS
    random_state: int = RANDOM_STATE
    hard_negatives: bool = FINETUNE_HARD_NEGATIVES
    progress: bool = False

    def check(self) -> FineTuneSettings:
        if self.epochs < 1:
            raise InputError(
                f"{{epochs}} must be at least 1, got {self.epochs}", params=("epochs",)
            )
        if self.batch_size < 2:
            # The loss contrasts each pair with the other targets of its batch.
            raise InputError(
                f"{{batch_size}} must be at least 2, got {self.batch_size}", params=("batch_size",)
            )
        if self.max_pairs is not None and self.max_pairs < 1:
            raise InputError(
                f"{{max_pairs}} must be at least 1, got {self.max_pairs}", params=("max_pairs",)
            )
        if not 0.0 <= self.holdout <= 0.5:
            raise InputError(
                f"{{holdout}} must be between 0 and 0.5, got {self.holdout}", params=("holdout",)
            )
        if self.threads < 1:
            raise InputError(
                f"{{threads}} must be at least 1, got {self.threads}", params=("threads",)
            )
        return self


def _check_output(output: Path) -> Path:
    output = Path(output).expanduser()
    if output.exists():
        raise InputError(
            f"{{output}} {_literal(output)} already exists; fine-tune writes a new folder "
            "(choose another path or delete it)",
            params=("output",),
        )
    if not output.parent.is_dir():
        raise InputError(
            f"{{output}} {_literal(output)}: folder {_literal(output.parent)} does not exist",
            params=("output",),
        )
    return output.resolve()


def _base_encoder(model: str) -> SentenceTransformerEncoder:
    encoder = get_encoder(model)
    if not isinstance(encoder, SentenceTransformerEncoder):
        raise ModelError(
            f"fine-tune trains a sentence-transformers model (minilm, or a sentence-transformers "
            f"folder); '{model}' is not one"
        )
    return encoder


@dataclass
class BaseModel:
    """The model training starts from, where it runs, and the target site's index by it (for
    mining hard negatives and the held-out report; None when neither is asked for)."""

    encoder: SentenceTransformerEncoder
    device: str
    cache: EmbeddingCache  # read, never saved: the workspace is only read
    target_index: faiss.Index | None = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return embed_texts(self.encoder, texts, self.cache, self.device, save=False)


def load_base(
    ws: Workspace,
    encoder: SentenceTransformerEncoder,
    data: TrainingSet,
    settings: FineTuneSettings,
    device: str,
) -> BaseModel:
    """The base model on its device, with the target site indexed when training needs it."""
    base = BaseModel(encoder, resolve_device(device), EmbeddingCache(ws.cache_dir, encoder))
    if settings.hard_negatives or data.held_rows:
        base.target_index = build_faiss(
            embed_texts(encoder, data.target_texts, base.cache, base.device,
                        progress=settings.progress,
                        desc=f"embedding {data.target} ({settings.model})", save=False)
        )  # fmt: skip
    return base


def training_examples(
    data: TrainingSet, base: BaseModel, settings: FineTuneSettings, echo: Callable[[str], None]
) -> list[tuple[str, ...]]:
    """The pairs trained on, each with its hard negative when ``settings`` asks for them."""
    if not settings.hard_negatives:
        return list(data.pairs)
    echo(
        f"mining hard negatives among {len(data.target_texts)} '{data.target}' concepts "
        f"with {settings.model}"
    )
    sources = base.embed([s for s, _ in data.pairs])
    negatives = mine_hard_negatives(data.pairs, sources, base.target_index, data.target_texts)
    return [(s, t, n) for (s, t), n in zip(data.pairs, negatives, strict=True)]


def _train(
    base: SentenceTransformerEncoder,
    examples: list[tuple[str, ...]],
    folder: Path,
    settings: FineTuneSettings,
    device: str,
) -> None:
    import torch
    from sentence_transformers import InputExample, SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    quiet_transformers()
    previous = torch.get_num_threads()
    # One thread by default: on a shared 2-core machine two torch threads spinning against
    # another job ran several times slower than one.
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.random_state)
    try:
        model = SentenceTransformer(str(base.path), device=device, local_files_only=True)
        inputs = [InputExample(texts=list(texts)) for texts in examples]
        loader = DistinctTextBatches(
            inputs, min(settings.batch_size, len(inputs)), settings.random_state
        )
        loss = MultipleNegativesRankingLoss(model)
        model.old_fit(
            [(loader, loss)],
            epochs=settings.epochs,
            warmup_steps=max(1, len(loader) * settings.epochs // 10),
            optimizer_params={"lr": FINETUNE_LR},
            show_progress_bar=settings.progress and sys.stderr.isatty(),  # as tqdm(disable=None)
        )
        model.save(str(folder))
    finally:
        torch.set_num_threads(previous)


def held_out_top1(
    data: TrainingSet, base: BaseModel, tuned_folder: Path, output: Path, progress: bool
) -> tuple[float | None, float | None]:
    """Top-1 of the held-out known concepts among all target concepts, with the base model and
    with the fine-tuned one in ``tuned_folder``; (None, None) when nothing was held out."""
    if not data.held_rows:
        return None, None
    right = [data.known[r] for r in data.held_rows]
    queries = [data.source_texts[r] for r in data.held_rows]
    base_top1 = top1_hits(base.target_index, base.embed(queries), right)
    tuned = SentenceTransformerEncoder(str(output), tuned_folder)
    tuned_index = build_faiss(
        embed_texts(tuned, data.target_texts, None, base.device, progress=progress,
                    desc=f"embedding {data.target} (fine-tuned)")
    )  # fmt: skip
    tuned_top1 = top1_hits(tuned_index, embed_texts(tuned, queries, None, base.device), right)
    return base_top1, tuned_top1


def provenance(
    data: TrainingSet, settings: FineTuneSettings, top1: tuple[float | None, float | None],
    seconds: float,
) -> dict:  # fmt: skip
    """What the model folder records of how it was made (:data:`PROVENANCE_FILE`)."""
    return {
        "base_model": settings.model,
        "source": data.source,
        "target": data.target,
        "known_file": str(data.known_path.resolve()),
        "pairs": len(data.pairs),
        "held_out_concepts": len(data.held_rows),
        "epochs": settings.epochs,
        "batch_size": settings.batch_size,
        "learning_rate": FINETUNE_LR,
        "loss": "MultipleNegativesRankingLoss",
        "hard_negatives": settings.hard_negatives,
        "random_state": settings.random_state,
        "held_out_top1_base": top1[0],
        "held_out_top1_fine_tuned": top1[1],
        "seconds": round(seconds, 1),
    }


def train_and_measure(
    data: TrainingSet,
    base: BaseModel,
    examples: list[tuple[str, ...]],
    settings: FineTuneSettings,
    output: Path,
    echo: Callable[[str], None],
) -> FineTuneResult:
    """Trains in a staging folder beside ``output``, measures, and renames it into place (all
    or nothing: the folder appears complete or not at all)."""
    started = time.perf_counter()
    staging = output.parent / f".{output.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _train(base.encoder, examples, staging, settings, base.device)
        if data.held_rows:
            echo(
                f"measuring held-out top-1 among {len(data.target_texts)} '{data.target}' concepts"
            )
        top1 = held_out_top1(data, base, staging, output, settings.progress)
        seconds = time.perf_counter() - started
        record = provenance(data, settings, top1, seconds)
        (staging / PROVENANCE_FILE).write_text(json.dumps(record, indent=2) + "\n")
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    n_targets = len(data.target_texts)
    return FineTuneResult(
        output, settings.model, len(data.pairs), len(data.held_rows), n_targets, seconds, *top1
    )


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

    The lexical encoder has no weights to train, so it is refused before anything is read:

    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> fine_tune(Workspace(root), "b", "a", root / "k.csv", root / "ft", model="lexical")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    harmonize.core.errors.ModelError: fine-tune trains a sentence-transformers model ...

    A real run loads and trains MiniLM, which takes far longer than a doctest may (skipped
    here; tests/test_finetune.py runs it). With sites ``b`` and ``a`` and at least 10 known
    pairs b -> a in ``known.csv``:

    >>> result = fine_tune(Workspace("ws"), "b", "a", "known.csv", "ft-b-a")  # doctest: +SKIP
    >>> result.output.name, result.base  # doctest: +SKIP
    ('ft-b-a', 'minilm')
    """
    settings = FineTuneSettings(
        model, epochs, batch_size, max_pairs, holdout, threads, random_state, hard_negatives,
        progress,
    ).check()  # fmt: skip
    output = _check_output(Path(output))
    encoder = _base_encoder(model)
    data = read_training_set(ws, source, target, known_path, holdout, max_pairs, random_state)
    base = load_base(ws, encoder, data, settings, device)
    examples = training_examples(data, base, settings, echo)
    echo(
        f"fine-tuning {model} on {len(data.pairs)} pairs from {len(data.train_rows)} known "
        f"'{source}' concepts ({len(data.held_rows)} kept out for the report), {epochs} "
        f"epoch(s), batch {batch_size}{', with hard negatives' if hard_negatives else ''}, "
        f"on {base.device}"
    )
    return train_and_measure(data, base, examples, settings, output, echo)
