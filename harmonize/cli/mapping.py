"""Commands that map concepts and fine-tune the encoder on known pairs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from harmonize.cli.base import State, cli, pass_state
from harmonize.cli.options import (
    device_option,
    k_option,
    limit_option,
    model_option,
    output_option,
    reranker_concepts_option,
    seed_option,
    source_option,
    target_option,
)
from harmonize.core.config import (
    ADAPT_PAIRS,
    DEFAULT_STRATEGY,
    FINETUNE_BATCH_SIZE,
    FINETUNE_EPOCHS,
    FINETUNE_HARD_NEGATIVES,
    FINETUNE_HOLDOUT,
    FINETUNE_THREADS,
    STRATEGIES,
)

if TYPE_CHECKING:
    import pandas as pd


@cli.command("map")
@source_option()
@target_option()
@model_option()
@k_option()
@click.option(
    "--min-score",
    type=float,
    default=None,
    help="Cosine below which a source concept gets no mapping.",
)
@click.option(
    "--strategy", type=click.Choice(STRATEGIES), default=DEFAULT_STRATEGY, show_default=True
)
@output_option("Also write the mappings to this CSV file.", dir_okay=False)
@device_option()
@limit_option("Rows of the mapping to print (0 for all).")
@click.option(
    "--min-confidence",
    type=float,
    default=None,
    help="Calibrated probability below which a concept gets no mapping "
    "(needs 'harmonize calibrate', or --known).",
)
@click.option(
    "--known",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="CSV/Parquet of pairs already mapped (source_code,target_code[,predicate]): known "
    "concepts keep them (and their predicate: exact, close, broad, narrow, related), the rest "
    "are reranked by their hierarchy neighbours' known targets and a ranker learned from the "
    "known pairs; pairs marked exact also train an equivalence model (strategy best only).",
)
@click.option(
    "--usage/--no-usage",
    default=False,
    show_default=True,
    help="With --known, when both sites have events: also rerank by how often each code occurs "
    "and what it occurs with, compared across the sites (off by default: +1.1 points of top-1 "
    "on the demo, within noise).",
)
@reranker_concepts_option
@click.option(
    "--code-system",
    default=None,
    metavar="VOCABULARY",
    help="Before searching, map each source code that is a concept_code of this target "
    "vocabulary (e.g. ICD10CM; case, blanks and dots ignored) directly, following 'Maps to' to "
    "standard concepts. Without it, source rows whose 'system' is a vocabulary of an Athena "
    "target are looked up the same way.",
)
@click.option(
    "--learn/--no-learn",
    default=True,
    show_default=True,
    help="Learn from the pair's recorded decisions: with 10 or more accepted or set, they are "
    "known pairs for the reranker of every concept not yet decided (as --known). Decided "
    "concepts keep their decisions and a rejected pair is never proposed again either way.",
)
@click.option(
    "--zero-shot/--no-zero-shot",
    default=True,
    show_default=True,
    help="With nothing known (strategy best, one model): expand acronyms from both sites' "
    "descriptions, correct hub targets, and search ICD-10-CM concepts by what the ICD-10-CM "
    "tabular list says of their 7th character; --no-zero-shot is plain nearest neighbour.",
)
@click.option(
    "--self-train/--no-self-train",
    default=False,
    show_default=True,
    help="With --zero-shot: also rerank with a reranker taught by the pair's own unambiguous "
    "matches, cross-fitted (off by default: it did not pay on the ICD GEMs or the demo).",
)
@pass_state
def map_cmd(
    state: State,
    source: str,
    target: str,
    model: str,
    k: int,
    min_score: float | None,
    strategy: str,
    output: Path | None,
    device: str,
    limit: int,
    min_confidence: float | None,
    known: Path | None,
    usage: bool,
    reranker_concepts: int | None,
    code_system: str | None,
    learn: bool,
    zero_shot: bool,
    self_train: bool,
) -> None:
    """Map every concept of SOURCE onto its nearest concepts of TARGET.

    \b
    Example:
      harmonize map --source siteB --target siteA --k 5 --strategy mutual
      harmonize map --source icd10 --target icd9 --known reviewed_pairs.csv
    """
    from harmonize.core.config import ZERO_SHOT_LEVERS
    from harmonize.mapping.pipeline import map_sites

    levers = (ZERO_SHOT_LEVERS + ("self-training",) * self_train) if zero_shot else ()
    result = map_sites(
        state.ws,
        source,
        target,
        model=model,
        k=k,
        min_score=min_score,
        strategy=strategy,
        output=output,
        device=device,
        min_confidence=min_confidence,
        known=known,
        usage=usage,
        reranker_concepts=reranker_concepts,
        code_system=code_system,
        learn=learn,
        zero_shot=levers,
    )
    _print_mappings(_for_terminal(result.mappings), limit)
    click.echo(result.summary)
    if output is not None:
        click.echo(f"wrote {output}")


def _for_terminal(mappings: pd.DataFrame) -> pd.DataFrame:
    """The mappings without columns nobody filled, descriptions shortened."""
    from harmonize.core.render import shorten

    frame = mappings.copy()
    for column in ("confidence", "predicate"):  # no calibration yet; nobody asserted one
        if frame[column].isna().all():
            frame = frame.drop(columns=column)
    for column in ("source_description", "target_description"):
        frame[column] = frame[column].map(shorten)
    return frame


def _print_mappings(frame: pd.DataFrame, limit: int) -> None:
    """The first ``limit`` rows (all for 0) and how to see the rest."""
    from harmonize.core.render import render

    shown = frame if limit <= 0 else frame.head(limit)
    click.echo(render(shown, "table"), nl=False)
    if len(frame) > len(shown):
        click.echo(
            f"... {len(frame) - len(shown)} more rows (use --limit 0, --output FILE.csv, "
            "or 'harmonize sql' on mapped_concepts)"
        )


@cli.command("fine-tune")
@source_option("Site whose concepts the known pairs map.")
@target_option("Site they are mapped onto.")
@click.option(
    "--known",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    required=True,
    help="CSV/Parquet of pairs already mapped (source_code,target_code), as for map --known.",
)
@output_option("New folder for the fine-tuned sentence-transformers model.", required=True)
@model_option(help="Model to start from.")
@click.option("--epochs", default=FINETUNE_EPOCHS, show_default=True, type=int)
@click.option("--batch-size", default=FINETUNE_BATCH_SIZE, show_default=True, type=int)
@click.option(
    "--max-pairs",
    type=int,
    default=None,
    help="Train on a seeded sample of this many pairs (default: all; one busy CPU thread "
    "trained 8,000 ICD pairs in 16 minutes, 19 with hard negatives).",
)
@click.option(
    "--holdout",
    default=FINETUNE_HOLDOUT,
    show_default=True,
    type=float,
    help="Share of known source concepts kept out of training to report held-out top-1 "
    "before and after (0 to train on all and skip the report).",
)
@device_option()
@click.option(
    "--threads",
    default=FINETUNE_THREADS,
    show_default=True,
    type=int,
    help="CPU threads for training (one is fastest on a busy machine).",
)
@click.option(
    "--hard-negatives/--no-hard-negatives",
    default=FINETUNE_HARD_NEGATIVES,
    show_default=True,
    help="Also train each pair against the base model's nearest wrong target (about 1.15x "
    "the time; ICD-10-CM plain top-1 55 % -> 65 %).",
)
@seed_option("Seed of the pair sample and the hold-out.")
@pass_state
def fine_tune_cmd(
    state: State,
    source: str,
    target: str,
    known: Path,
    output: Path,
    model: str,
    epochs: int,
    batch_size: int,
    max_pairs: int | None,
    holdout: float,
    device: str,
    threads: int,
    hard_negatives: bool,
    seed: int,
) -> None:
    """Fine-tune the encoder on known SOURCE -> TARGET pairs; writes a model for --model.

    \b
    Example:
      harmonize fine-tune --source icd10 --target icd9 --known pairs.csv -o ft-icd
      harmonize build-index --site icd10 --model ft-icd
      harmonize map --source icd10 --target icd9 --model ft-icd --known pairs.csv
    """
    from harmonize.mapping.finetune import fine_tune

    result = fine_tune(
        state.ws,
        source,
        target,
        known,
        output,
        model=model,
        epochs=epochs,
        batch_size=batch_size,
        max_pairs=max_pairs,
        holdout=holdout,
        device=device,
        threads=threads,
        random_state=seed,
        progress=not state.quiet,
        echo=state.say,
        hard_negatives=hard_negatives,
    )
    click.echo(result.message)


@cli.command("adapt-encoder")
@click.option(
    "--pairs", default=ADAPT_PAIRS, show_default=True, type=int,
    help="Public synonym pairs to train on, half ICD-10-CM inclusion terms, half ICD-9-CM "
    "short/long titles (8,000: about 8 minutes on 2 CPU cores).",
)  # fmt: skip
@click.option("--threads", default=2, show_default=True, type=int, help="CPU threads.")
@click.option("--rebuild", is_flag=True, help="Build again over an existing build.")
@seed_option("Seed of the pair sample.")
@pass_state
def adapt_encoder_cmd(state: State, pairs: int, threads: int, rebuild: bool, seed: int) -> None:
    """Build --model minilm-adapted once on this machine: MiniLM fine-tuned on public synonym
    pairs (no mapping between coding systems), kept in the model cache.

    \b
    Example:
      harmonize adapt-encoder
      harmonize build-index --site icd10 --model minilm-adapted
      harmonize map --source icd10 --target icd9 --model minilm-adapted
    """
    from harmonize.mapping.adapt import build_adapted

    result = build_adapted(pairs, threads, seed, rebuild, not state.quiet, state.say)
    click.echo(result.message)
