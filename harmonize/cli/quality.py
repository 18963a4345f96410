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
@click.argument("benchmark", type=click.Choice(["icd", "demo"]))
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
    help="With --no-known: map's zero-shot levers (acronyms, hub correction, ICD-10-CM "
    "7th characters, notes and cross-references); --no-zero-shot measures plain nearest "
    "neighbour.",
)
@click.option(
    "--levers",
    default=None,
    metavar="LIST",
    help="With --no-known and --zero-shot: exactly these zero-shot levers, comma-separated "
    "(acronyms, hubs, contrast, self-training, icd-inclusion, icd-seventh, icd-notes, "
    "icd-crossref), to measure each alone or together; default: map's.",
)
@click.option(
    "--review-curve",
    "review_curve",
    default=None,
    metavar="COUNTS",
    help="Simulate review instead (e.g. 0,25,50,100,200): starting with no known pairs, a "
    "reviewer answers from the gold standard for the concepts `review` puts first, map re-runs "
    "after each batch (learning from the decisions); top-1 on the concepts not yet reviewed, "
    "against as many reviewed at random. The only mode of 'demo'.",
)
@click.option(
    "--random-seeds",
    type=int,
    default=1,
    show_default=True,
    help="With --review-curve: run the random arm this many times (seeds SEED, SEED+1, ...) "
    "and show its mean (with more than one, also its lowest and highest rest top-1).",
)
@click.option(
    "--learn/--no-learn",
    default=True,
    show_default=True,
    help="With --review-curve: map learns from the decisions (--no-learn: as map --no-learn).",
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
    levers: str | None,
    review_curve: str | None,
    random_seeds: int,
    learn: bool,
    fmt: str,
) -> None:
    """Map ICD-10-CM onto ICD-9-CM (or back) and score against the CMS GEMs, on held-out codes;
    or (--review-curve) measure how mapping improves as a person reviews, on the GEMs or on the
    demo's two sites.

    \b
    Example:
      harmonize --workspace bench bench-map icd --direction 10to9 --sample 1000
      harmonize --workspace bench bench-map icd --sample 2000 --review-curve 0,25,50,100,200
      harmonize --workspace curve bench-map demo --review-curve 0,10,25,50
    """
    if review_curve is not None or benchmark == "demo":
        options = {"random_seeds": random_seeds, "learn": learn}
        _review_curve(state, benchmark, review_curve, direction, sample, model, k, seed, fmt,
                      options)  # fmt: skip
        return
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
        zero_shot=_bench_levers(zero_shot, levers),
    )
    if fmt == "json":
        click.echo(json.dumps(map_quality_document(result), indent=2))
        return
    if fmt == "table":
        click.echo(map_quality_text(result), nl=False)
    else:
        click.echo(render(result.to_frame(), fmt), nl=False)


def _bench_levers(zero_shot: bool, levers: str | None) -> tuple[str, ...] | None:
    """bench-map's zero-shot levers: map's (None), none (--no-zero-shot), or --levers'."""
    from harmonize.core.errors import InputError

    if levers is None:
        return None if zero_shot else ()
    if not zero_shot:
        raise InputError(
            "{levers} chooses the zero-shot levers: it cannot go with --no-zero-shot",
            params=("levers",),
        )
    return tuple(part.strip() for part in levers.split(",") if part.strip())


def _review_curve(
    state: State,
    benchmark: str,
    review_curve: str | None,
    direction: str,
    sample: int | None,
    model: str,
    k: int,
    seed: int,
    fmt: str,
    options: dict,
) -> None:
    """bench-map --review-curve: the simulated review's learning curve, both arms
    (``options``: random_seeds, learn)."""
    from harmonize.benchmarks import review_curve as curves
    from harmonize.core.errors import InputError
    from harmonize.core.render import render

    if review_curve is None:
        raise InputError(
            "bench-map demo measures the review curve: add {review_curve} COUNTS (e.g. 0,10,25,50)",
            params=("review_curve",),
        )
    points = curves.parse_points(review_curve)
    echo = (lambda _: None) if state.quiet or fmt != "table" else click.echo
    common = {"model": model, "k": k, "random_state": seed, "echo": echo,
              "progress": not state.quiet, **options}  # fmt: skip
    if benchmark == "demo":
        curve = curves.demo_review_curve(state.ws, points, **common)
    else:
        curve = curves.icd_review_curve(state.ws, points, direction, sample, **common)
    if fmt == "table":
        click.echo(render(curve.table(), fmt), nl=False)
        click.echo(
            f"top-1 of '{curve.source}' onto '{curve.target}' (model {model}) after each number "
            f"of simulated reviews: on the concepts not reviewed (rest) and on all; review "
            f"order against random (mean of {options['random_seeds']} seeds"
            f"{', and the lowest and highest rest' if options['random_seeds'] > 1 else ''})"
            f"{'' if options['learn'] else ', map --no-learn'}; {curve.seconds:.0f}s"
        )
    else:
        click.echo(render(curve.to_frame(), fmt), nl=False)
