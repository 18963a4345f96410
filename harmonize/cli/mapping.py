"""Commands that map concepts, review the mappings, calibrate and score them."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd

from harmonize.cli.base import State, cli, pass_state
from harmonize.core.config import (
    DEFAULT_DEVICE,
    DEFAULT_K,
    DEFAULT_MODEL,
    DEFAULT_STRATEGY,
    DEVICES,
    FINETUNE_BATCH_SIZE,
    FINETUNE_EPOCHS,
    FINETUNE_HARD_NEGATIVES,
    FINETUNE_HOLDOUT,
    FINETUNE_THREADS,
    KNOWN_TRAIN_MAX,
    PREVIEW_ROWS,
    RANDOM_STATE,
    STRATEGIES,
)
from harmonize.core.render import FORMATS, render, shorten
from harmonize.mapping.predicates import PREDICATES

# Shared by map and bench-map.
reranker_concepts_option = click.option(
    "--reranker-concepts",
    type=int,
    default=None,
    help=f"With --known: how many known concepts (a seeded sample) the reranker learns from "
    f"[default: {KNOWN_TRAIN_MAX}]. "
    "More is better and slower: on 34,122 held-out ICD-10-CM codes 12,000 / 30,000 gave top-1 "
    "0.927 / 0.938, in 2.2 / 3.5 minutes on 2 CPU cores.",
)


@cli.command("map")
@click.option("--source", required=True, help="Site whose concepts are mapped.")
@click.option("--target", required=True, help="Site whose concepts they are mapped onto.")
@click.option("--model", default=DEFAULT_MODEL, show_default=True)
@click.option(
    "--k",
    default=DEFAULT_K,
    show_default=True,
    type=int,
    help="Candidates kept per source concept.",
)
@click.option(
    "--min-score",
    type=float,
    default=None,
    help="Cosine below which a source concept gets no mapping.",
)
@click.option(
    "--strategy", type=click.Choice(STRATEGIES), default=DEFAULT_STRATEGY, show_default=True
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the mappings to this CSV file.",
)
@click.option("--device", type=click.Choice(DEVICES), default=DEFAULT_DEVICE, show_default=True)
@click.option(
    "--limit",
    default=PREVIEW_ROWS,
    show_default=True,
    type=int,
    help="Rows of the mapping to print (0 for all).",
)
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
) -> None:
    """Map every concept of SOURCE onto its nearest concepts of TARGET.

    \b
    Example:
      harmonize map --source siteB --target siteA --k 5 --strategy mutual
      harmonize map --source icd10 --target icd9 --known reviewed_pairs.csv
    """
    from harmonize.mapping.pipeline import map_sites

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
    )
    frame = result.mappings.copy()
    for column in ("confidence", "predicate"):  # no calibration yet; nobody asserted one
        if frame[column].isna().all():
            frame = frame.drop(columns=column)
    for column in ("source_description", "target_description"):
        frame[column] = frame[column].map(shorten)
    shown = frame if limit <= 0 else frame.head(limit)
    click.echo(render(shown, "table"), nl=False)
    if len(frame) > len(shown):
        click.echo(
            f"... {len(frame) - len(shown)} more rows (use --limit 0, --output FILE.csv, "
            "or 'harmonize sql' on mapped_concepts)"
        )
    click.echo(result.summary)
    if output is not None:
        click.echo(f"wrote {output}")


@cli.command("fine-tune")
@click.option("--source", required=True, help="Site whose concepts the known pairs map.")
@click.option("--target", required=True, help="Site they are mapped onto.")
@click.option(
    "--known",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    required=True,
    help="CSV/Parquet of pairs already mapped (source_code,target_code), as for map --known.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="New folder for the fine-tuned sentence-transformers model.",
)
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Model to start from.")
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
@click.option("--device", type=click.Choice(DEVICES), default=DEFAULT_DEVICE, show_default=True)
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
@click.option("--seed", default=RANDOM_STATE, show_default=True, type=int)
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


@cli.command("eval-map")
@click.option("--source", required=True, help="Site whose concepts were mapped.")
@click.option("--target", required=True, help="Site they were mapped onto.")
@click.option(
    "--gold",
    required=True,
    type=click.Path(path_type=Path),
    help="CSV/Parquet with source_code, target_code (many-to-many allowed).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@pass_state
def eval_map_cmd(state: State, source: str, target: str, gold: Path, fmt: str) -> None:
    """Score the stored mapping of SOURCE onto TARGET against a gold standard: top-1/5/10,
    MRR, coverage, precision and recall. The result is stored in table map_evaluations.

    \b
    Example:
      harmonize eval-map --source target --target source --gold truth.csv --format json
    """
    from harmonize.mapping.metrics import evaluate_mapping

    result = evaluate_mapping(state.ws, source, target, gold)
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(render(pd.DataFrame([result]), "table"), nl=False)
    if result["n_unknown"]:
        click.echo(
            f"({result['n_unknown']} gold source codes are not concepts of '{source}' "
            "and were left out)"
        )
    if result["k"] < 10:
        click.echo(f"(candidates were stored with k={result['k']}: top10 counts only those)")


@cli.command("calibrate")
@click.option("--source", required=True)
@click.option("--target", required=True)
@click.option(
    "--gold",
    required=True,
    type=click.Path(path_type=Path),
    help="CSV source_code,target_code: the right answers for some source concepts.",
)
@pass_state
def calibrate_cmd(state: State, source: str, target: str, gold: Path) -> None:
    """Learn P(mapping is right | cosine) for the pair's model from a gold standard (isotonic
    regression); later maps store it as `confidence` and honour --min-confidence.

    \b
    Example:
      harmonize calibrate --source target --target source --gold truth.csv
    """
    from harmonize.mapping.calibration import calibrate

    result = calibrate(state.ws, source, target, gold)
    click.echo(render(result["reliability"], "table"), nl=False)
    click.echo(
        f"calibrated model {result['model']} on {result['n']} labelled concepts: Brier "
        f"{result['brier']:.3f} (raw cosine as a probability: {result['brier_raw_cosine']:.3f})"
    )


@cli.command("bench-map")
@click.argument("benchmark", type=click.Choice(["icd"]))
@click.option(
    "--direction", type=click.Choice(["10to9", "9to10"]), default="10to9", show_default=True
)
@click.option(
    "--sample",
    type=int,
    default=None,
    help="Held-out source codes to map (default: all; ICD-10-CM takes minutes).",
)
@click.option("--model", default=DEFAULT_MODEL, show_default=True)
@click.option("--k", default=10, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--known/--no-known",
    default=True,
    show_default=True,
    help="Use the training half's GEM pairs as known mappings (map --known); "
    "--no-known measures plain retrieval.",
)
@reranker_concepts_option
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@pass_state
def bench_map_cmd(
    state: State,
    benchmark: str,
    direction: str,
    sample: int | None,
    model: str,
    k: int,
    seed: int,
    known: bool,
    reranker_concepts: int | None,
    fmt: str,
) -> None:
    """Map ICD-10-CM onto ICD-9-CM (or back) and score against the CMS GEMs, on held-out codes.

    \b
    Example:
      harmonize --workspace bench bench-map icd --direction 10to9 --sample 1000
    """
    from harmonize.benchmarks.map_quality import bench_icd

    echo = (lambda _: None) if state.quiet or fmt == "json" else click.echo
    result = bench_icd(
        state.ws,
        direction,
        sample=sample,
        model=model,
        k=k,
        random_state=seed,
        progress=not state.quiet,
        echo=echo,
        known=known,
        reranker_concepts=reranker_concepts,
    )
    if fmt == "json":
        extra = {"direction": direction, "model": model, "known": known}
        if result.brier is not None:
            extra["brier"] = result.brier
            extra["reliability"] = result.reliability.to_dict(orient="records")
        click.echo(json.dumps({**result.overall, "exact": result.exact, **extra}, indent=2))
        return
    click.echo(render(result.rows(), "table"), nl=False)
    if result.reliability is not None:
        click.echo(f"confidence on held-out codes: Brier {result.brier:.3f}")
        click.echo(render(result.reliability, "table"), nl=False)
    click.echo(
        f"({result.seconds:.0f}s; {result.n_train_codes} GEM source codes held back "
        "for training learned methods)"
    )


@cli.command("review")
@click.option("--source", required=True)
@click.option("--target", required=True)
@click.option(
    "--limit", default=PREVIEW_ROWS, show_default=True, type=int, help="Rows to show (0 for all)."
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@pass_state
def review_cmd(state: State, source: str, target: str, limit: int, fmt: str) -> None:
    """List the mappings most worth checking: undecided ones, least confident first.

    \b
    Example:
      harmonize review --source siteB --target siteA --limit 10
    """
    from harmonize.mapping.review import review_queue

    queue = review_queue(state.ws, source, target)
    shown = queue if limit <= 0 else queue.head(limit)
    click.echo(render(shown, fmt), nl=False)
    if fmt == "table":
        click.echo(f"{len(queue)} mappings await review")


def _decision_command(decision: str, takes_target: bool):
    """accept / reject / set share their options; only set takes a TARGET_CODE."""

    def command(
        state: State,
        source: str,
        target: str,
        reviewer: str | None,
        note: str | None,
        code: str,
        target_code: str | None = None,
        predicate: str | None = None,
    ) -> None:
        from harmonize.mapping.review import decide

        message = decide(
            state.ws,
            source,
            target,
            code,
            decision,
            target_code=target_code,
            reviewer=reviewer,
            note=note,
            predicate=predicate,
        )
        click.echo(message)

    # Decorators attach parameters last-first, so the later positional argument goes first.
    command = pass_state(command)
    if takes_target:
        command = click.argument("target_code")(command)
    command = click.argument("code")(command)
    if decision != "reject":
        command = click.option(
            "--predicate",
            type=click.Choice(list(PREDICATES), case_sensitive=False),
            default=None,
            help="How the target relates: exact, close, broad (target is broader), narrow "
            "(target is narrower) or related; stored and exported (SSSOM, FHIR, Usagi).",
        )(command)
    command = click.option("--note", help="Why, for the record.")(command)
    command = click.option(
        "--reviewer", help="Who decides (default: $HARMONIZE_REVIEWER or login name)."
    )(command)
    command = click.option("--target", required=True)(command)
    return click.option("--source", required=True)(command)


cli.command(
    "accept",
    help="Accept the stored mapping of source concept CODE.\n\n"
    "Example: harmonize accept --source siteB --target siteA RESP_017",
)(_decision_command("accept", False))
cli.command(
    "reject",
    help="Reject the stored mapping of CODE; re-mapping never picks it again."
    "\n\nExample: harmonize reject --source siteB --target siteA SKIN_002",
)(_decision_command("reject", False))
cli.command(
    "set",
    help="Map CODE to TARGET_CODE by hand; re-mapping keeps it.\n\n"
    "Example: harmonize set --source siteB --target siteA ENT_010 C0027424 --predicate broad",
)(_decision_command("set", True))
