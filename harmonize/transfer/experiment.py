"""Transfer evaluation: a model trained at the source site, read at the target site.

Scenarios: ``local`` (target training data only), ``direct`` (the source model unchanged),
``finetune-head`` (only the last layer tuned on target data), ``finetune-all`` (everything
tuned), ``pooled`` (source and target training data together). Each is scored on the target's
test patients (AUROC and AUPRC with a bootstrap interval, accuracy), stored in table
``evaluations`` and summarised in a markdown report and a learning-curve plot. Model ``auto``
trains the logistic transfer families and picks among them by inner cross-validation on the
target's training patients (:mod:`harmonize.transfer.scoring`).

>>> stratified_sample(np.array([0, 0, 0, 1, 1, 1]), 4, np.random.default_rng(0)).size
4
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from harmonize.core import sql
from harmonize.core.errors import InputError
from harmonize.core.results import TableResult
from harmonize.core.workspace import Workspace, atomic_write_text
from harmonize.embed.base import resolve_device
from harmonize.embed.cache import EmbeddingCache, embed_texts
from harmonize.embed.registry import get_encoder
from harmonize.mapping.metrics import read_gold
from harmonize.mapping.pipeline import new_run_id
from harmonize.transfer.auto import FAMILIES
from harmonize.transfer.encounters import READINGS, Encounters, load_encounters
from harmonize.transfer.metrics import binary_metrics
from harmonize.transfer.report import plot_learning_curve, render_report, report_title, summarize

SCENARIOS = ("local", "direct", "finetune-head", "finetune-all", "pooled")
MODELS = ("cnn", "logreg", "auto")
AUTO_SCENARIOS = ("local", *FAMILIES)  # the one-hot logistic baseline, then every family
ALL_SCENARIOS = tuple(dict.fromkeys(SCENARIOS + AUTO_SCENARIOS))  # what --scenario accepts
DEFAULT_TIE = 0.5  # auto: how much a text's source weight follows its embedding
FINETUNE_LR = 0.01  # the study tuned with a 10x larger learning rate


@dataclass
class EvalConfig:
    """What to evaluate. ``target_sizes`` None means all the target's training patients.

    >>> EvalConfig("siteA", "siteB", scenarios=("local", "direct")).scenarios
    ('local', 'direct')
    >>> EvalConfig("siteA", "siteB", seeds=0).check()
    Traceback (most recent call last):
    harmonize.core.errors.InputError: seeds, epochs and steps_per_epoch must be at least 1
    """

    source: str
    target: str
    embedding: str = "minilm"
    reading: str = "native"
    scenarios: tuple[str, ...] = SCENARIOS
    target_sizes: tuple[int, ...] | None = None
    seeds: int = 1
    first_seed: int = 0  # seeds first_seed .. first_seed + seeds - 1
    model: str = "cnn"
    gold: str | Path | None = None
    # 1,000 SGD steps at lr 0.01: on this task as good as the study's 5,000 at 0.001
    # (--epochs 50 --steps-per-epoch 100 --lr 0.001), five times faster on a CPU.
    epochs: int = 20
    steps_per_epoch: int = 50
    lr: float = 0.01
    bootstrap: int = 200
    device: str = "auto"
    missing: str = "absent"
    tie: float = DEFAULT_TIE  # auto, with an embedding: 0 reads texts as one-hot identities
    inner_folds: int = 5
    inner_repeats: int = 4

    @property
    def tie_used(self) -> float:
        """The embedding tie in effect: none for one-hot vectors."""
        return 0.0 if self.embedding == "onehot" else self.tie

    def check(self) -> None:
        if self.model not in MODELS:
            raise InputError(
                f"unknown model '{self.model}': use {', '.join(MODELS[:-1])} or {MODELS[-1]}"
            )
        known = AUTO_SCENARIOS if self.model == "auto" else SCENARIOS
        if self.model == "auto" and tuple(self.scenarios) == SCENARIOS:
            self.scenarios = AUTO_SCENARIOS  # the default: every family
        bad = [s for s in self.scenarios if s not in known]
        if bad:
            raise InputError(
                f"unknown scenario '{bad[0]}' for {{model}} {self.model}: use {', '.join(known)}",
                params=("model",),
            )
        if not 0.0 <= self.tie < 1.0:
            raise InputError(f"{{tie}} must be in [0, 1), got {self.tie}", params=("tie",))
        if self.inner_folds < 2 or self.inner_repeats < 1:
            raise InputError(
                "{inner_folds} must be at least 2 and {inner_repeats} at least 1",
                params=("inner_folds", "inner_repeats"),
            )
        if self.reading not in READINGS:
            raise InputError(f"unknown reading '{self.reading}': use {', '.join(READINGS)}")
        if self.model == "logreg" and {"finetune-head", "finetune-all"} & set(self.scenarios):
            raise InputError(
                "logreg has no layers to fine-tune: use {model} cnn for finetune-*",
                params=("model",),
            )
        if self.seeds < 1 or self.epochs < 1 or self.steps_per_epoch < 1:
            raise InputError(
                "{seeds}, {epochs} and {steps_per_epoch} must be at least 1",
                params=("seeds", "epochs", "steps_per_epoch"),
            )
        if self.target_sizes is not None and min(self.target_sizes) < 2:
            raise InputError(
                "{target_sizes} must be at least 2 (both classes are needed)",
                params=("target_sizes",),
            )


@dataclass
class EvalResult(TableResult):
    """One evaluation run: a row per scenario, target size and seed (as stored in table
    ``evaluations``), the markdown report and the learning-curve plot."""

    run_id: str
    results: pd.DataFrame
    report: Path
    plot: Path
    notes: list[str] = field(default_factory=list)
    comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_frame(self) -> pd.DataFrame:
        """Every trained model's scores, as stored."""
        return self.results.copy()

    def summary(self) -> pd.DataFrame:
        """Mean over seeds per scenario and target size (the report's table)."""
        return summarize(self.results)


def stratified_sample(y: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` indices keeping the class balance of ``y``, at least one of each class."""
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    n_pos = int(round(size * len(pos) / len(y)))
    n_pos = min(max(n_pos, 1), len(pos), size - 1)
    return np.sort(
        np.concatenate([rng.permutation(pos)[:n_pos], rng.permutation(neg)[: size - n_pos]])
    )


def _vectors(ws: Workspace, embedding: str, texts: list[str], device: str) -> np.ndarray:
    """One row per text: identity rows for one-hot, else the encoder's (cached) vectors; the
    empty text (a patient with no usable finding) is the zero vector."""
    if embedding == "onehot":
        return np.eye(len(texts), dtype=np.float32)
    encoder = get_encoder(embedding)
    real = [t for t in texts if t]
    cache = EmbeddingCache(ws.cache_dir, encoder) if encoder.cacheable else None
    dev = resolve_device(device) if encoder.cacheable else "cpu"
    vecs = embed_texts(encoder, real, cache=cache, device=dev) if real else None
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    if vecs is not None:
        out[[i for i, t in enumerate(texts) if t]] = vecs
    return out


def _shared(source: Encounters, target: Encounters) -> tuple[Encounters, Encounters, list[str]]:
    vocabulary = {t: i for i, t in enumerate(dict.fromkeys([*source.texts, *target.texts]))}
    return source.reindex(vocabulary), target.reindex(vocabulary), list(vocabulary)


@dataclass
class Patients:
    """The evaluation's patients, their texts in one shared list: the source's training
    patients, the target's training pool and the target's test patients."""

    source: Encounters
    pool: Encounters
    test: Encounters
    texts: list[str]
    notes: list[str]


def run_evaluation(
    ws: Workspace,
    config: EvalConfig,
    progress: bool = False,
    echo: Callable[[str], None] = lambda _: None,
) -> EvalResult:
    """Trains and scores every scenario x target size x seed; stores and reports the results.

    >>> import pathlib, tempfile
    >>> from harmonize.sites.patients import LabelSpec
    >>> from harmonize.sites.registry import PatientInput, add_site
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "vocab.csv").write_text("code,description\\nC1,fever\\nC2,cough\\n")
    >>> rows = [f"{'PA'[i % 2]},{'AP'[i % 3 == 0]},{'IR'[i % 2]}" for i in range(40)]
    >>> _ = (root / "patients.csv").write_text("\\n".join(["C1,C2,diagnosis", *rows]))
    >>> task = PatientInput(root / "patients.csv", LabelSpec("diagnosis", "I"))
    >>> for site in ("siteA", "siteB"):
    ...     _ = add_site(Workspace(root), site, root / "vocab.csv", patients=task)
    >>> config = EvalConfig("siteA", "siteB", embedding="onehot", model="logreg",
    ...                     scenarios=("local", "direct"), bootstrap=0)
    >>> result = run_evaluation(Workspace(root), config)
    >>> result.summary()[["scenario", "auroc"]].values.tolist()
    [['direct', 1.0], ['local', 1.0]]
    """
    config.check()
    ws.require()
    patients = read_patients(ws, config)
    sizes = _target_sizes(config, patients.pool)
    # Embedding (which fills the cache) only after every check has passed.
    vectors = _vectors(ws, config.embedding, patients.texts, config.device)
    comparisons = pd.DataFrame()
    if config.model == "auto":
        from harmonize.transfer.scoring import train_auto

        with _bar(config.seeds * len(sizes), progress) as bar:
            rows, comparisons = train_auto(config, vectors, patients, sizes, bar)
    else:
        rows = train_and_score(config, vectors, patients, sizes, progress)
    run_id = new_run_id()
    results = pd.DataFrame(rows)
    if "model" not in results.columns:
        results["model"] = config.model
    results = results.assign(
        run_id=run_id,
        source_site=config.source,
        target_site=config.target,
        embedding=config.embedding,
        reading=config.reading,
        n_test=len(patients.test.y),
    )
    with ws.transaction() as con:
        con.register("new_evaluations", results)
        sql.run_internal(con, "insert_evaluations")
        con.unregister("new_evaluations")
    report, plot = write_report(ws, results, config, patients.notes, comparisons)
    return EvalResult(run_id, results, report, plot, patients.notes, comparisons)


def _bar(total: int, progress: bool):
    return tqdm(total=total, desc="training", unit="size", disable=None if progress else True)


def read_patients(ws: Workspace, config: EvalConfig) -> Patients:
    """Both sites' patients, the target read as ``config.reading`` says, checked for what
    training needs (texts one-hot features can transfer, test patients of both classes)."""
    gold = read_gold(config.gold) if config.gold is not None else None
    source = load_encounters(ws, config.source, "native", missing=config.missing)
    target = load_encounters(
        ws, config.target, config.reading, via=config.source, gold=gold, missing=config.missing
    )
    notes = []
    if target.n_dropped_events:
        notes.append(
            f"{target.n_dropped_events} target events had codes with no mapping and were left out"
        )
    _check_one_hot(config, source, target)
    source, target, texts = _shared(source, target)
    test = target.subset(target.split == "test")
    if len(np.unique(test.y)) < 2:
        raise InputError(f"site '{config.target}' has test patients of one class only")
    return Patients(
        source.subset(source.split == "train"),
        target.subset(target.split == "train"),
        test,
        texts,
        notes,
    )


def _target_sizes(config: EvalConfig, pool: Encounters) -> tuple[int, ...]:
    """The target training sizes to try; none may exceed the training pool."""
    sizes = config.target_sizes or (len(pool.y),)
    too_big = [s for s in sizes if s > len(pool.y)]
    if too_big:
        raise InputError(
            f"{{target_sizes}} {too_big[0]} is more than the {len(pool.y)} training patients of "
            f"site '{config.target}'",
            params=("target_sizes",),
        )
    return sizes


def train_and_score(
    config: EvalConfig,
    vectors: np.ndarray,
    patients: Patients,
    sizes: tuple[int, ...],
    progress: bool = False,
) -> list[dict]:
    """One row of test metrics per seed x scenario x target size. Each seed trains its direct
    (source-only) model once; the fine-tuned scenarios start from it."""
    src, pool, test = patients.source, patients.pool, patients.test
    tasks = _tasks(config.scenarios, sizes)
    rows = []
    bar = tqdm(
        total=config.seeds * len(tasks),
        desc="training",
        unit="model",
        disable=None if progress else True,
    )
    for seed in range(config.first_seed, config.first_seed + config.seeds):
        direct_model = None
        for scenario, size in tasks:
            rng = np.random.default_rng(seed * 1000 + size)
            sample = pool.subset(stratified_sample(pool.y, size, rng)) if size else None
            if scenario in ("direct", "finetune-head", "finetune-all") and direct_model is None:
                direct_model = _model(config, seed).fit(vectors, src.ids, src.y)
            model = _train(config, scenario, seed, vectors, src, sample, direct_model)
            p = model.predict_proba(vectors, test.ids)[:, 1]
            metrics = binary_metrics(test.y, p, config.bootstrap, random_state=seed)
            rows.append({"scenario": scenario, "target_train_size": size, "seed": seed, **metrics})
            bar.update(1)
    bar.close()
    return rows


def write_report(
    ws: Workspace,
    results: pd.DataFrame,
    config: EvalConfig,
    notes: list[str],
    comparisons: pd.DataFrame | None = None,
) -> tuple[Path, Path]:
    """(report, plot): ``reports/evaluation-<run>.md`` and its learning-curve PNG."""
    run_id = results["run_id"].iloc[0]
    report_dir = ws.root / "reports"
    plot = report_dir / f"evaluation-{run_id}.png"
    report = report_dir / f"evaluation-{run_id}.md"
    plot_learning_curve(results, plot, title=report_title(config))
    atomic_write_text(report, render_report(results, config, notes, plot.name, comparisons))
    return report, plot


def _check_one_hot(config: EvalConfig, source: Encounters, target: Encounters) -> None:
    """One-hot features transfer only where the target's texts are the source's: say so
    instead of training a model that cannot read the target."""
    one_hot = (
        config.embedding == "onehot"
        or config.model == "logreg"
        or (config.model == "auto" and config.tie_used == 0)
    )
    if not one_hot or not set(config.scenarios) - {"local", "local-cv", "nb-local"}:
        return
    shared = set(target.texts) & set(source.texts)
    if len(shared) < 0.5 * len(set(target.texts)):
        raise InputError(
            f"one-hot features cannot transfer here: only {len(shared)} of the target's "
            f"{len(set(target.texts))} concept-state texts occur at the source (reading "
            f"'{config.reading}'). Use {{reading}} mapped (or oracle {{gold}} FILE), an "
            "embedding, or only {scenarios} local.",
            params=("reading", "gold", "scenarios"),
        )


def _tasks(scenarios: tuple[str, ...], sizes: tuple[int, ...]) -> list[tuple[str, int]]:
    """(scenario, size) of every model one seed trains; direct needs no target data (size 0)."""
    return [(s, n) for s in scenarios for n in ((0,) if s == "direct" else sizes)]


def _model(config: EvalConfig, seed: int, lr: float | None = None):
    if config.model == "logreg":
        from harmonize.transfer.baseline import OneHotLogistic

        return OneHotLogistic(random_state=seed)
    from harmonize.transfer.models import CNNClassifier  # torch: loaded only for the CNN

    return CNNClassifier(
        lr=config.lr if lr is None else lr,
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch,
        random_state=seed,
        device=resolve_device(config.device),
    )


def _train(config, scenario, seed, vectors, src, sample, direct_model):
    if scenario == "direct":
        return direct_model
    if scenario == "local":
        return _model(config, seed).fit(vectors, sample.ids, sample.y)
    if scenario == "pooled":
        ids = np.concatenate([_pad(src.ids, sample.ids), _pad(sample.ids, src.ids)])
        return _model(config, seed).fit(vectors, ids, np.concatenate([src.y, sample.y]))
    part = "head" if scenario == "finetune-head" else "all"
    return _model(config, seed, lr=FINETUNE_LR).fit(
        vectors, sample.ids, sample.y, init=direct_model.module_, train=part
    )


def _pad(ids: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Widen ``ids`` to ``other``'s width by repeating each row's first id (max unchanged)."""
    width = max(ids.shape[1], other.shape[1])
    if ids.shape[1] == width:
        return ids
    return np.concatenate([ids, np.repeat(ids[:, :1], width - ids.shape[1], axis=1)], axis=1)
