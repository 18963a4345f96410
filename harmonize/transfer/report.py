"""What a transfer evaluation writes: the summary over seeds, the markdown report, the
learning-curve plot.

>>> rows = pd.DataFrame({"scenario": ["local", "local"], "target_train_size": [50, 50],
...     "auroc": [0.8, 0.9], "auroc_low": [0.7, 0.8], "auroc_high": [0.9, 1.0],
...     "auprc": [0.5, 0.7], "accuracy": [0.6, 0.8]})
>>> summarize(rows)[["scenario", "auroc"]].round(2).values.tolist()
[['local', 0.85]]
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from harmonize.core.workspace import atomic_path

if TYPE_CHECKING:
    from harmonize.transfer.experiment import EvalConfig


def report_title(config: EvalConfig) -> str:
    """What was transferred where, with which model, embedding and reading."""
    return (
        f"{config.source} -> {config.target}: {config.model}, {config.embedding}, "
        f"reading {config.reading}"
    )


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per scenario and target size (and model, when a run holds several)."""
    cols = ["auroc", "auroc_low", "auroc_high", "auprc", "accuracy"]
    keys = ["scenario", "target_train_size"]
    if "model" in results.columns and results["model"].nunique() > 1:
        keys = ["model", *keys]
        # An auto row's scenario is its choice, which may differ by seed: one row per size.
        auto = results["model"] == "auto"
        results = results.assign(scenario=results["scenario"].where(~auto, "(chosen)"))
    return (
        results.groupby(keys, sort=False)[cols]
        .mean()
        .reset_index()
        .sort_values(["target_train_size", *keys[:-1]], kind="stable")
    )


def summarize_comparisons(comparisons: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of each transfer row's difference from the best local row."""
    keys = ["model", "scenario", "target_train_size"]
    cols = ["difference", "difference_low", "difference_high"]
    auto = comparisons["model"] == "auto"
    comparisons = comparisons.assign(scenario=comparisons["scenario"].where(~auto, "(chosen)"))
    return (
        comparisons.groupby(keys, sort=False)
        .agg(
            versus=("versus", lambda v: v.iloc[0] if v.nunique() == 1 else "best local"),
            **{c: (c, "mean") for c in cols},
        )
        .reset_index()
        .sort_values(["target_train_size", "model", "scenario"], kind="stable")
    )


def chosen_settings(results: pd.DataFrame) -> pd.DataFrame:
    """What inner cross-validation chose per row (auto runs): the setting and its CV AUROC."""
    keep = ["model", "scenario", "target_train_size", "seed", "setting", "cv_auroc"]
    return results.loc[results["setting"].fillna("") != "", keep].reset_index(drop=True)


def render_report(
    results: pd.DataFrame,
    config: EvalConfig,
    notes: list[str],
    plot_name: str,
    comparisons: pd.DataFrame | None = None,
) -> str:
    """The markdown report: the summary table, the plot, and any notes; for auto runs also
    each transfer row minus the best local one and what inner cross-validation chose."""
    summary = summarize(results)
    lines = [
        f"# Transfer evaluation: {report_title(config)}",
        "",
        f"Run `{results['run_id'].iloc[0]}`; {config.seeds} seed(s); test patients: "
        f"{int(results['n_test'].iloc[0])}; AUROC 95 % bootstrap interval "
        f"({config.bootstrap} resamples), mean over seeds.",
        "",
        summary.to_markdown(index=False, floatfmt=".3f"),
        "",
        f"![learning curve]({plot_name})",
    ]
    if comparisons is not None and len(comparisons):
        lines += [
            "",
            "## Transfer minus the best local model",
            "",
            "AUROC difference on the same test patients, 95 % paired-bootstrap interval; the "
            "best local row is the target-only model with the highest test AUROC.",
            "",
            summarize_comparisons(comparisons).to_markdown(index=False, floatfmt=".3f"),
            "",
            "## Chosen by inner cross-validation on the training patients",
            "",
            chosen_settings(results).to_markdown(index=False, floatfmt=".3f"),
        ]
    lines += [""] + [f"- {n}" for n in notes] if notes else []
    return "\n".join(lines) + "\n"


def plot_learning_curve(results: pd.DataFrame, path: Path, title: str) -> None:
    """AUROC against target training size, one line per scenario, with interval bands; direct
    transfer (no target data) is a horizontal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarize(results)
    if "model" in summary.columns:
        summary = summary.assign(scenario=summary["model"] + " " + summary["scenario"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sizes = sorted(s for s in summary["target_train_size"].unique() if s > 0)
    for scenario, rows in summary.groupby("scenario", sort=False):
        if scenario.endswith("direct") or not sizes:
            row = rows.iloc[0]
            ax.axhline(row["auroc"], linestyle="--", color="grey", label=f"{scenario}")
            continue
        rows = rows.sort_values("target_train_size")
        ax.plot(rows["target_train_size"], rows["auroc"], marker="o", label=scenario)
        ax.fill_between(
            rows["target_train_size"], rows["auroc_low"], rows["auroc_high"], alpha=0.15
        )
    if len(sizes) > 1:
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("target training patients")
    ax.set_ylabel("AUROC on target test patients")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
