"""Commands that measure: transfer evaluation, the demo and the speed harness."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import pandas as pd

from harmonize.cli.base import State, cli, pass_state
from harmonize.core.config import DEFAULT_MODEL, DEMO_WORKSPACE, DEVICES
from harmonize.core.errors import HarmonizeError
from harmonize.core.render import render
from harmonize.core.workspace import Workspace
from harmonize.transfer.encounters import READINGS
from harmonize.transfer.experiment import MODELS, SCENARIOS


def _sizes(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise HarmonizeError(
            f"--target-sizes must be integers like 50,100,200, got '{text}'"
        ) from exc


@cli.command("evaluate")
@click.option("--source", required=True, help="Site whose model is transferred.")
@click.option("--target", required=True, help="Site it is transferred to (test patients here).")
@click.option(
    "--embedding",
    default=DEFAULT_MODEL,
    show_default=True,
    help="Any --model spec, or onehot (one dimension per concept-state text).",
)
@click.option(
    "--reading",
    type=click.Choice(READINGS),
    default="native",
    show_default=True,
    help="How the target is read: its own texts, through stored mappings, or a gold map.",
)
@click.option(
    "--gold",
    type=click.Path(path_type=Path),
    help="With --reading oracle: CSV source_code (target site), target_code (source site).",
)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    type=click.Choice(SCENARIOS),
    help="Repeatable; default all five.",
)
@click.option("--target-sizes", help="Comma-separated target training sizes (default: all).")
@click.option("--seeds", default=1, show_default=True, type=int, help="Repetitions.")
@click.option("--model", "model", type=click.Choice(MODELS), default="cnn", show_default=True)
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
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option(
    "--missing",
    type=click.Choice(["absent", "separate"]),
    default="absent",
    show_default=True,
    help="Embed a missing finding as absent (the study) or apart.",
)
@pass_state
def evaluate_cmd(
    state: State,
    source: str,
    target: str,
    embedding: str,
    reading: str,
    gold: Path | None,
    scenarios: tuple[str, ...],
    target_sizes: str | None,
    seeds: int,
    model: str,
    epochs: int,
    steps_per_epoch: int,
    lr: float,
    bootstrap: int,
    device: str,
    missing: str,
) -> None:
    """Train at SOURCE, transfer to TARGET, and score each scenario by AUROC on TARGET's test
    patients. Results go to table evaluations, a markdown report and a PNG learning curve.

    \b
    Example:
      harmonize evaluate --source source --target target --reading mapped \\
        --target-sizes 25,50,100 --scenario local --scenario finetune-all
    """
    from harmonize.transfer.experiment import EvalConfig, run_evaluation, summarize

    config = EvalConfig(
        source=source,
        target=target,
        embedding=embedding,
        reading=reading,
        scenarios=scenarios or SCENARIOS,
        target_sizes=_sizes(target_sizes),
        seeds=seeds,
        model=model,
        gold=gold,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        lr=lr,
        bootstrap=bootstrap,
        device=device,
        missing=missing,
    )
    result = run_evaluation(state.ws, config, progress=not state.quiet)
    click.echo(render(summarize(result.results), "table"), nl=False)
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo(f"run {result.run_id}: {len(result.results)} results stored in table evaluations")
    click.echo(f"report: {result.report}")
    click.echo(f"plot:   {result.plot}")


@cli.command("bench")
@click.option("--quick", is_flag=True, help="Small sizes: about two minutes on 2 CPU cores.")
@click.option("--device", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def bench_cmd(quick: bool, device: str, fmt: str) -> None:
    """Time each stage against its reference in the same run (ratio = ours / reference speed).

    \b
    Example:
      harmonize bench --quick --format json
    """
    from harmonize.benchmarks.speed import run_speed

    result = run_speed(quick=quick, device=device)
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
        return
    search = result["search"]
    rows = [
        {
            "stage": f"search {kind}",
            "ours_per_s": search[kind]["ours_per_s"],
            "reference_per_s": search["reference_per_s"],
            "ratio": search[kind]["ratio"],
            "note": f"recall@10 {search[kind]['recall_at_10']:.3f} vs numpy brute force",
        }
        for kind in ("flat", "hnsw")
    ]
    rows.append(
        {
            "stage": "sql recode",
            **{k: result["sql"][k] for k in ("ours_per_s", "reference_per_s", "ratio")},
            "note": f"{result['sql']['n_events']:,} events, recode_counts.sql vs bare group-by; "
            f"per-event join {result['sql']['row_join_ratio']:.2f}, naive "
            f"{result['sql']['naive_join_ratio']:.2f}",
        }
    )
    enc = result["encode"]
    probe = enc.get("agreement_probe")
    agree = (
        f"; probe: min cos {probe['min_cosine']:.3f}, top-1 agreement ICD "
        f"{probe['top1_agreement_icd']:.3f}, demo {probe['top1_agreement_demo']:.3f} (at build)"
        if probe
        else ""
    )
    rows.append(
        {
            "stage": f"encode {enc['encoder']}",
            **{k: enc[k] for k in ("ours_per_s", "reference_per_s", "ratio")},
            "note": f"{enc['n_texts']} texts on {enc['device']} vs plain encode(); min cos "
            f"{enc['min_cosine_to_reference']:.3f}{agree}",
        }
    )
    single = enc.get("single_thread")
    if single:
        rows.append(
            {
                "stage": f"encode {enc['encoder']}, 1 thread",
                **{k: single[k] for k in ("ours_per_s", "reference_per_s", "ratio")},
                "note": f"{single['n_texts']} texts; plain encode() with torch on 1 thread",
            }
        )
    fp32 = enc["fp32_path"]
    rows.append(
        {
            "stage": "encode minilm (fp32)",
            "ours_per_s": fp32["ours_per_s"],
            "reference_per_s": enc["reference_per_s"],
            "ratio": fp32["ratio"],
            "note": "our fp32 path (chunks, cache look-ups), same vectors",
        }
    )
    click.echo(render(pd.DataFrame(rows), "table", floatfmt=".2f"), nl=False)
    click.echo(
        f"peak RSS {result['peak_rss_mb']:.0f} MB; load average at the encode stage "
        f"{enc['load_average_1min']:.1f} on {os.cpu_count()} cores (ratios are same-run)"
    )


@cli.command("demo")
@click.option(
    "--patients",
    default=1000,
    show_default=True,
    type=click.IntRange(10, 1_000_000),
    help="Patients sampled per site.",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--model",
    "models",
    multiple=True,
    default=("lexical", "minilm"),
    show_default=True,
    help="Models to compare (repeatable).",
)
@click.pass_context
def demo_cmd(ctx: click.Context, patients: int, seed: int, models: tuple[str, ...]) -> None:
    """Build the two-site influenza demo and show what mapping gets right.

    Writes into --workspace when given, else ./demo-workspace.
    """
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
    rows = [
        {"model": m, "n": int(v["n"]), "top1": v["top1"], "top5": v["top5"], "mrr": v["mrr"]}
        for m, v in result.metrics.items()
    ]
    click.echo("\nMapping accuracy, target -> source, against the demo's true mapping:")
    click.echo(render(pd.DataFrame(rows), "table"), nl=False)
    recoded = result.recoded
    first = recoded[
        (recoded["subject_id"] == recoded["subject_id"].iloc[0]) & (recoded["value"] == "P")
    ]
    click.echo(
        f"\nTarget patient {recoded['subject_id'].iloc[0]}'s findings in source codes "
        "(query recode_events):"
    )
    click.echo(
        render(first[["code", "mapped_code", "mapped_description", "value", "score"]], "table"),
        nl=False,
    )
    ws_flag = f"--workspace {ws.root}"
    click.echo("\nTry next:")
    click.echo(f"  harmonize {ws_flag} sites")
    click.echo(f'  harmonize {ws_flag} sql "SELECT * FROM mapped_concepts ORDER BY score LIMIT 10"')
    click.echo(f"  harmonize {ws_flag} query unmapped --param source target --param target source")
    click.echo(f"  harmonize {ws_flag} map --source target --target source --strategy mutual")
    click.echo(
        f"  harmonize {ws_flag} evaluate --source source --target target --reading mapped "
        "--target-sizes 50,200"
    )
