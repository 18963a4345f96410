"""Commands that score stored mappings against a gold standard: eval-map, calibrate, bench-map."""

from __future__ import annotations

import json
from pathlib import Path

import click

from harmonize.cli.base import State, cli, pass_state
from harmonize.cli.options import (
    format_option,
    gold_option,
    k_option,
    model_option,
    reranker_concepts_option,
    seed_option,
    source_option,
    target_option,
)


@cli.command("eval-map")
@source_option("Site whose concepts were mapped.")
@target_option("Site they were mapped onto.")
@gold_option("CSV/Parquet with source_code, target_code (many-to-many allowed).")
@format_option()
@pass_state
def eval_map_cmd(state: State, source: str, target: str, gold: Path, fmt: str) -> None:
    """Score the stored mapping of SOURCE onto TARGET against a gold standard: top-1/5/10,
    MRR, coverage, precision and recall. The result is stored in table map_evaluations.

    \b
    Example:
      harmonize eval-map --source target --target source --gold truth.csv --format json
    """
    import pandas as pd

    from harmonize.core.render import render
    from harmonize.mapping.metrics import evaluate_mapping

    result = evaluate_mapping(state.ws, source, target, gold).to_dict()
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(render(pd.DataFrame([result]), fmt), nl=False)
    if fmt != "table":
        return
    if result["n_unknown"]:
        click.echo(
            f"({result['n_unknown']} gold source codes are not concepts of '{source}' "
            "and were left out)"
        )
    if result["k"] < 10:
        click.echo(f"(candidates were stored with k={result['k']}: top10 counts only those)")


@cli.command("calibrate")
@source_option("Site whose concepts were mapped.")
@target_option("Site they were mapped onto.")
@gold_option("CSV source_code,target_code: the right answers for some source concepts.")
@pass_state
def calibrate_cmd(state: State, source: str, target: str, gold: Path) -> None:
    """Learn P(mapping is right | cosine) for the pair's model from a gold standard (isotonic
    regression); later maps store it as `confidence` and honour --min-confidence.

    \b
    Example:
      harmonize calibrate --source target --target source --gold truth.csv
    """
    from harmonize.core.render import render
    from harmonize.mapping.calibration import calibrate

    result = calibrate(state.ws, source, target, gold)
    click.echo(render(result.to_frame(), "table"), nl=False)
    click.echo(result.message)


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
@model_option()
@k_option(default=10)
@seed_option("Seed of the train / held-out split and the sample.")
@click.option(
    "--known/--no-known",
    default=True,
    show_default=True,
    help="Use the training half's GEM pairs as known mappings (map --known); "
    "--no-known measures plain retrieval.",
)
@reranker_concepts_option
@click.option(
    "--zero-shot/--no-zero-shot",
    default=True,
    show_default=True,
    help="With --no-known: map's zero-shot levers (acronyms, hub correction); "
    "--no-zero-shot measures plain nearest neighbour.",
)
@format_option()
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
    zero_shot: bool,
    fmt: str,
) -> None:
    """Map ICD-10-CM onto ICD-9-CM (or back) and score against the CMS GEMs, on held-out codes.

    \b
    Example:
      harmonize --workspace bench bench-map icd --direction 10to9 --sample 1000
    """
    from harmonize.benchmarks.map_quality import bench_icd
    from harmonize.benchmarks.tables import map_quality_document, map_quality_text
    from harmonize.core.render import render

    echo = (lambda _: None) if state.quiet or fmt != "table" else click.echo
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
        zero_shot=None if zero_shot else (),
    )
    if fmt == "json":
        click.echo(json.dumps(map_quality_document(result), indent=2))
        return
    if fmt == "table":
        click.echo(map_quality_text(result), nl=False)
    else:
        click.echo(render(result.to_frame(), fmt), nl=False)
