"""Commands that measure: transfer evaluation, the demo and the speed harness."""

from __future__ import annotations

import json
from pathlib import Path

import click

from harmonize.cli.base import State, cli, pass_state
from harmonize.cli.options import (
    LazyChoice,
    device_option,
    format_option,
    given,
    gold_option,
    model_option,
    note,
    old_flag,
    seed_option,
    source_option,
    take_old,
    target_option,
)
from harmonize.core.config import DEFAULT_MODEL, DEMO_WORKSPACE
from harmonize.core.errors import HarmonizeError

# The classifier choices: also how an old-style `--model cnn|logreg` is recognised.
CLASSIFIERS = LazyChoice("harmonize.transfer.experiment", "MODELS")


def _sizes(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise HarmonizeError(
            f"--target-sizes must be integers like 50,100,200, got '{text}'"
        ) from exc


def _embedding_and_classifier(
    embedding: str, old_embedding: str | None, classifier: str
) -> tuple[str, str]:
    """(embedding model, classifier) from the new flags and the old ones: ``--embedding`` was
    the embedding model, and ``--model cnn|logreg`` the classifier."""
    ctx = click.get_current_context()
    embedding_given = given(ctx, "embedding")
    if embedding in CLASSIFIERS.choices:
        if given(ctx, "model"):
            raise click.UsageError(
                f"--model {embedding} is the old spelling of --classifier {embedding}: "
                "give only --classifier"
            )
        note(f"--model {embedding} (the classifier) is now --classifier {embedding}")
        classifier, embedding, embedding_given = embedding, DEFAULT_MODEL, False
    embedding = take_old("--embedding", "--model", old_embedding, embedding, embedding_given)
    return embedding, classifier


@cli.command("evaluate")
@source_option("Site whose model is transferred.")
@target_option("Site it is transferred to (test patients here).")
# Python names as the library's EvalConfig calls them, so its errors name the right flags.
@model_option(
    "embedding", help="Any --model spec, or onehot (one dimension per concept-state text)."
)
@old_flag("--embedding", "old_embedding")
@click.option(
    "--reading",
    type=LazyChoice("harmonize.transfer.encounters", "READINGS"),
    default="native",
    show_default=True,
    help="How the target is read: its own texts, through stored mappings, or a gold map.",
)
@gold_option(
    "With --reading oracle: CSV source_code (target site), target_code (source site).",
    required=False,
)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    type=LazyChoice("harmonize.transfer.experiment", "ALL_SCENARIOS"),
    help="Repeatable; default all of the classifier's: cnn and logreg local, direct, "
    "finetune-head, finetune-all (cnn), pooled; auto local, local-cv, direct, prior, stacked, "
    "stacked-nb, nb-local, nb-prior, nb-eb, ensemble.",
)
@click.option("--target-sizes", help="Comma-separated target training sizes (default: all).")
@click.option("--seeds", default=1, show_default=True, type=int, help="Repetitions.")
@click.option(
    "--classifier",
    "model",
    type=CLASSIFIERS,
    default="auto",
    show_default=True,
    help="auto: logistic and naive-Bayes transfer models (source weights as a prior, stacking, "
    "per-concept empirical-Bayes source priors), "
    "each family's setting and the overall best chosen by cross-validation on the target's "
    "training patients only, beside the one-hot logistic local baseline; cnn: the study's CNN; "
    "logreg: one-hot logistic regression (the classical reference). (--model is the embedding.)",
)
@click.option(
    "--tie",
    default=0.5,
    show_default=True,
    type=float,
    help="auto: how much a text's source weight follows its embedding (0 to 1, 0 = one-hot), "
    "so a concept the source never had gets a weight; ignored for --model onehot.",
)
@click.option(
    "--epochs",
    default=20,
    show_default=True,
    type=int,
    help="The study's setting: --epochs 50 --steps-per-epoch 100 --lr 0.001.",
)
@click.option("--steps-per-epoch", default=50, show_default=True, type=int)
@click.option(
    "--lr",
    default=0.01,
    show_default=True,
    type=float,
    help="SGD learning rate from scratch (fine-tuning always uses 0.01, as the study did).",
)
@click.option(
    "--bootstrap",
    default=200,
    show_default=True,
    type=int,
    help="Bootstrap resamples for the AUROC interval.",
)
@device_option()
@click.option(
    "--missing",
    type=LazyChoice("harmonize.transfer.encounters", "MISSING"),
    default="absent",
    show_default=True,
    help="Embed a missing finding as absent (the study) or apart.",
)
@pass_state
def evaluate_cmd(
    state: State,
    embedding: str,
    old_embedding: str | None,
    model: str,
    target_sizes: str | None,
    scenarios: tuple[str, ...],
    **config,
) -> None:
    """Train at SOURCE, transfer to TARGET, and score each scenario by AUROC on TARGET's test
    patients. Results go to table evaluations, a markdown report and a PNG learning curve.

    \b
    Example:
      harmonize evaluate --source source --target target --reading mapped \\
        --target-sizes 25,50,100 --scenario local --scenario finetune-all
    """
    from harmonize.core.render import render
    from harmonize.transfer.experiment import SCENARIOS, EvalConfig, run_evaluation, summarize
    from harmonize.transfer.report import summarize_comparisons

    embedding, model = _embedding_and_classifier(embedding, old_embedding, model)
    evaluation = EvalConfig(
        embedding=embedding,
        model=model,
        scenarios=scenarios or SCENARIOS,
        target_sizes=_sizes(target_sizes),
        **config,
    )
    result = run_evaluation(state.ws, evaluation, progress=not state.quiet)
    click.echo(render(summarize(result.results), "table"), nl=False)
    if len(result.comparisons):
        click.echo("\ntransfer minus the best local model (paired bootstrap on the test patients):")
        click.echo(render(summarize_comparisons(result.comparisons), "table"), nl=False)
        for _, row in result.results[result.results["model"] == "auto"].iterrows():
            click.echo(
                f"auto, n={row['target_train_size']}, seed {row['seed']}: chose {row['scenario']} "
                f"({row['setting'] or 'no setting'}), inner-CV AUROC {row['cv_auroc']:.3f}"
            )
    for remark in result.notes:
        click.echo(f"note: {remark}")
    click.echo(f"run {result.run_id}: {len(result.results)} results stored in table evaluations")
    click.echo(f"report: {result.report}")
    click.echo(f"plot:   {result.plot}")


@cli.command("bench")
@click.option("--quick", is_flag=True, help="Small sizes: about two minutes on 2 CPU cores.")
@device_option(default="cpu")
@format_option()
def bench_cmd(quick: bool, device: str, fmt: str) -> None:
    """Time each stage against its reference in the same run (ratio = ours / reference speed).

    \b
    Example:
      harmonize bench --quick --format json
    """
    from harmonize.benchmarks.speed import run_speed
    from harmonize.benchmarks.tables import speed_frame, speed_text
    from harmonize.core.render import render

    result = run_speed(quick=quick, device=device)
    if fmt == "json":
        click.echo(json.dumps(dict(result), indent=2))
    elif fmt == "table":
        click.echo(speed_text(result), nl=False)
    else:
        click.echo(render(speed_frame(result), fmt), nl=False)


@cli.command("demo")
@click.option(
    "--patients",
    default=1000,
    show_default=True,
    type=click.IntRange(10, 1_000_000),
    help="Patients sampled per site.",
)
@seed_option("Seed of the demo's patients.")
@model_option(
    "models",
    help="Models to compare (repeatable).",
    default=("lexical", "minilm"),
    multiple=True,
)
@click.pass_context
def demo_cmd(ctx: click.Context, patients: int, seed: int, models: tuple[str, ...]) -> None:
    """Build the two-site influenza demo and show what mapping gets right.

    Writes into --workspace when given, else ./demo-workspace.
    """
    from harmonize.core.workspace import Workspace
    from harmonize.datasets.demo import run_demo

    state: State = ctx.obj
    ws = state.ws if state.explicit_workspace else Workspace(Path(DEMO_WORKSPACE))
    result = run_demo(
        ws,
        n_patients=patients,
        models=models,
        random_state=seed,
        echo=click.echo,
        progress=not state.quiet,
    )
    _print_demo(result, ws.root)


def _print_demo(result, root: Path) -> None:
    """The demo's accuracy per model, one recoded patient, and what to try next."""
    from harmonize.core.render import render

    click.echo("\nMapping accuracy, target -> source, against the demo's true mapping:")
    click.echo(render(result.to_frame(), "table"), nl=False)
    recoded = result.recoded
    subject = recoded["subject_id"].iloc[0]
    first = recoded[(recoded["subject_id"] == subject) & (recoded["value"] == "P")]
    click.echo(f"\nTarget patient {subject}'s findings in source codes (query recode_events):")
    click.echo(
        render(first[["code", "mapped_code", "mapped_description", "value", "score"]], "table"),
        nl=False,
    )
    ws_flag = f"--workspace {root}"
    click.echo("\nTry next:")
    click.echo(f"  harmonize {ws_flag} sites")
    click.echo(f'  harmonize {ws_flag} sql "SELECT * FROM mapped_concepts ORDER BY score LIMIT 10"')
    click.echo(f"  harmonize {ws_flag} query unmapped --param source target --param target source")
    click.echo(f"  harmonize {ws_flag} map --source target --target source --strategy mutual")
    click.echo(
        f"  harmonize {ws_flag} evaluate --source source --target target --reading mapped "
        "--target-sizes 50,200"
    )
