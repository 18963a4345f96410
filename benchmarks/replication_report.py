"""Writes reports/paper-replication.md (+ .png) from the grid's files: the source of truth for
the report. Reads paper-replication.csv / -boot.npz / -times.json (paper_replication.py),
heterogeneous-sites.* (heterogeneous.py) and cnn-tuning.csv (cnn_tuning.py).

Every interval is a 95 % percentile bootstrap over the target's test patients. All models are
scored on the same resamples, so the replicates of two models subtract into a paired bootstrap
of their difference; a mean over seeds (or sources) is the mean of the replicates.

    python benchmarks/replication_report.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from replication_heterogeneous import headroom_section, heterogeneous_section
from replication_stats import TRANSFER, Grid, best, fmt_ci, name_of

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = {  # one-hot logistic regression trained on the source (shared/README.md)
    "same": 0.975,
    "ita06": 0.954,
    "ita16": 0.839,
    "ita13": 0.789,
    "ita27": 0.722,
    "ita29": 0.607,
}
TUNED_ON = ("ita06", "ita13")  # cnn_tuning.py's sources (seed 10, target pool patients)


def timing_section(g: Grid) -> list[str]:
    m = g.meta
    stages = m["stages_s"]
    n = m["n_models"]
    cpu = m.get("cpu_s")
    wall = f"{m['wall_s'] / 60:.1f} min" if m.get("wall_s") else "not recorded"
    lines = [
        "## Where the time goes",
        "",
        f"Machine: {m['machine']}, {m.get('load_note', 'shared with other jobs')} (load "
        f"average {m['load_average_at_end'][0]} at the end; the grid ran at `nice`, on "
        f"{m.get('workers', 1)} worker processes, torch on one thread each). Wall time {wall}; "
        + (
            f"CPU time {cpu / 60:.1f} min for {m.get('n_models_timed', n)} trained and scored "
            f"models, {cpu / m.get('n_models_timed', n):.2f} CPU s per model."
            if cpu
            else f"{n} models."
        ),
        "",
        "| stage (summed over parts) | wall s | CPU s |",
        "| --- | ---: | ---: |",
    ]
    names = dict.fromkeys(k.rsplit(" ", 1)[0] for k in stages)
    for stage in names:
        lines.append(
            f"| {stage} | {stages.get(f'{stage} wall', 0):.0f} "
            f"| {stages.get(f'{stage} cpu', 0):.0f} |"
        )
    lines += ["", *m.get("notes", []), ""]
    return lines


def embedding_section(g: Grid) -> list[str]:
    lines = [
        "## Which embedding transfers best",
        "",
        "Mean over the six sources and three seeds, with the 95 % interval of that mean. Direct: "
        "the source model read at the target, no target data. Fine-tuned: `finetune-all` with 50 "
        "target patients. Local: the same CNN on the 50 target patients alone.",
        "",
    ]
    for model in ("cnn", "cnn-sum"):
        sub = g.select(model=model)
        if sub.empty:
            continue
        table = []
        for emb in sub["embedding"].unique():
            direct = g.select(model=model, embedding=emb, scenario="direct")
            tuned = g.select(
                model=model, embedding=emb, scenario="finetune-all", target_train_size=50
            )
            local = g.select(model=model, embedding=emb, scenario="local", target_train_size=50)
            table.append(
                (
                    emb,
                    direct["auroc"].mean(),
                    fmt_ci(direct["auroc"].mean(), *g.ci(direct.index)),
                    fmt_ci(tuned["auroc"].mean(), *g.ci(tuned.index)) if len(tuned) else "-",
                    fmt_ci(local["auroc"].mean(), *g.ci(local.index)) if len(local) else "-",
                )
            )
        table.sort(key=lambda r: -r[1])
        lines += [
            f"**{model}** ({'max pooling, the study' if model == 'cnn' else 'sum pooling'}):",
            "",
            "| embedding | direct | finetune-all, n=50 | local, n=50 |",
            "| --- | --- | --- | --- |",
            *[f"| {e} | {d} | {t} | {loc} |" for e, _, d, t, loc in table],
            "",
        ]
    direct = g.select(model="cnn", scenario="direct")
    if not direct.empty:
        pivot = direct.pivot_table(index="embedding", columns="source_site", values="auroc")
        pivot = pivot[[s for s in REFERENCE if s in pivot.columns]]
        lines += [
            "Direct transfer of the study's CNN by source (columns from the nearest source to the "
            "most distant):",
            "",
            pivot.to_markdown(floatfmt=".3f"),
            "",
        ]
    return lines


def versus_section(g: Grid, sources: list[str], sizes: list[int]) -> tuple[list[str], pd.DataFrame]:
    """Best transfer vs best target-only per source and size, with paired intervals."""
    out = []
    for source in sources:
        for n in sizes:
            local = g.select(scenario="local", target_train_size=n)
            transfer = g.select(scenario=list(TRANSFER), source_site=source)
            transfer = transfer[transfer["target_train_size"].isin([0, n])]
            if local.empty or transfer.empty:
                continue
            i, j = best(transfer), best(local)
            point, low, high = g.diff(i, j)
            out.append(
                {
                    "source": source,
                    "n": n,
                    "best transfer": f"{name_of(g, i)} {g.configs.loc[i, 'auroc']:.3f}",
                    "best target-only": f"{name_of(g, j)} {g.configs.loc[j, 'auroc']:.3f}",
                    "difference": fmt_ci(point, low, high, sign=True),
                    "point": point,
                    "low": low,
                    "high": high,
                }
            )
    table = pd.DataFrame(out)
    lines = [
        "## Where transfer beats the best target-only model",
        "",
        "Per source (ordered by distance: one-hot logistic regression's direct AUROC, "
        "shared/README.md) and target size: the best transferred model (any CNN or logistic "
        "model, embedding and transfer scenario) against the best model trained on the target "
        "alone (any model and embedding, the one-hot logistic regression included), each the mean "
        "of three seeds; the difference with its paired 95 % interval. Both are picked on the "
        "test patients, so each is optimistic by the same kind of selection.",
        "",
        "| source | n | best transfer | best target-only | transfer - target-only |",
        "| --- | ---: | --- | --- | --- |",
    ]
    for r in out:
        mark = " **wins**" if r["low"] > 0 else (" loses" if r["high"] < 0 else "")
        lines.append(
            f"| {r['source']} | {r['n']} | {r['best transfer']} | {r['best target-only']} | "
            f"{r['difference']}{mark} |"
        )
    lines.append("")
    lines += auto_lines(g, sources, sizes)
    return lines, table


def auto_lines(g: Grid, sources: list[str], sizes: list[int]) -> list[str]:
    """``auto`` (the model inner CV on the target sample picks, as ``evaluate`` does) minus the
    best target-only model: no choice made on the test patients on the transfer side."""
    auto = g.select(model="auto")
    if auto.empty:
        return []
    lines = [
        "The same comparison for `auto`, the model `evaluate --classifier auto` picks by inner "
        "cross-validation on the target's training sample (never the test patients), one-hot "
        "features (the sites share one code space):",
        "",
        "| source | n | auto | best target-only | auto - target-only |",
        "| --- | ---: | --- | --- | --- |",
    ]
    for source in sources:
        for n in sizes:
            a = g.select(model="auto", source_site=source, target_train_size=n)
            local = g.select(scenario="local", target_train_size=n)
            if a.empty or local.empty:
                continue
            i, j = int(a.index[0]), best(local)
            point, low, high = g.diff(i, j)
            mark = " **wins**" if low > 0 else (" loses" if high < 0 else "")
            lines.append(
                f"| {source} | {n} | {g.configs.loc[i, 'auroc']:.3f} | {name_of(g, j)} "
                f"{g.configs.loc[j, 'auroc']:.3f} | {fmt_ci(point, low, high, sign=True)}{mark} |"
            )
    lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=Path, default=ROOT / "reports")
    parser.add_argument("--suffix", default="", help="-quick for the smoke run's files")
    args = parser.parse_args()
    g = Grid(args.reports, f"paper-replication{args.suffix}")
    settings = g.meta["settings"]
    text = write(g, settings, args)
    path = args.reports / f"paper-replication{args.suffix}.md"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def write(g: Grid, settings: dict, args) -> list[str]:
    sources = [s for s in REFERENCE if s in settings["sources"]]
    sizes = settings["sizes"]
    vs_lines, vs = versus_section(g, sources, sizes)
    text = [
        "# Paper replication: the full grid on the influenza-dtl Bayesian-network settings",
        "",
        "Written by `benchmarks/replication_report.py` from the files `benchmarks/"
        "paper_replication.py` and `benchmarks/heterogeneous.py` wrote; do not edit by hand.",
        "",
        f"Grid: sources {', '.join(sources)}; target training sizes "
        f"{', '.join(map(str, sizes))} (stratified draws from the 10,000-patient target "
        f"training set); seeds {settings['seeds']}; embeddings "
        f"{', '.join(settings['embeddings'])}; "
        f"models {', '.join(settings['models'])}; scenarios local, direct, finetune-head, "
        "finetune-all, pooled (logistic regression: local, direct, pooled). AUROC on the 10,000 "
        f"target test patients, {settings['bootstrap']} bootstrap resamples shared by every model.",
        "",
        "CNN settings (`cnn` is the study's network; its schedule and `cnn-sum`'s were tuned by "
        f"`benchmarks/cnn_tuning.py` on sources {' and '.join(TUNED_ON)}, seed 10, and target "
        "training-pool patients, never the test patients):",
        "",
        *[f"- `{m}`: {spec}" for m, spec in settings.get("cnns", {}).items()],
        "",
        *answers(g, vs, sources),
        *timing_section(g),
        *embedding_section(g),
        *vs_lines,
        *tuning_section(g, sources),
        *heterogeneous_section(args),
        *headroom_section(args),
        *full_section(g),
    ]
    return text


def answers(g: Grid, vs: pd.DataFrame, sources: list[str]) -> list[str]:
    lines = ["## Answers", ""]
    direct = g.select(model="cnn", scenario="direct").groupby("embedding")["auroc"].mean()
    if len(direct):
        top = direct.sort_values(ascending=False)
        lines.append(
            "- **Which embedding transfers best:** without target data (mean direct AUROC of the "
            "study's CNN over sources and seeds): "
            + ", ".join(f"{e} {a:.3f}" for e, a in top.items())
            + ". Intervals and the fine-tuned rows below."
        )
    if not vs.empty:
        wins = vs[vs["low"] > 0]
        lines.append(
            f"- **Where transfer beats the best target-only model:** in {len(wins)} of {len(vs)} "
            "(source, size) cells the paired interval of best transfer minus best target-only "
            "lies above 0: "
            + (", ".join(f"{r.source} n={r.n}" for r in wins.itertuples()) or "none")
            + "."
        )
        for source in sources:
            rows = vs[(vs["source"] == source) & (vs["n"] <= 200)]
            if len(rows) and REFERENCE[source] >= 0.8:
                ok = (rows["point"] > 0).all() and (rows[rows["n"] == 50]["low"] > 0).all()
                lines.append(
                    f"  - {source} (one-hot direct {REFERENCE[source]}): best transfer "
                    f"{'beats' if ok else 'does not beat'} the best target-only model at every "
                    f"n <= 200 with the interval above 0 at n = 50 "
                    f"({', '.join(f'n={r.n}: {r.point:+.3f}' for r in rows.itertuples())})."
                )
    lines.append(
        "- **Mapped vs native vs oracle reading:** the study's sites share one code space, so "
        "the readings coincide there; the heterogeneous benchmark below answers it."
    )
    lines.append("")
    return lines


def tuning_section(g: Grid, sources: list[str]) -> list[str]:
    held_out = [s for s in sources if s not in TUNED_ON]
    lines = [
        "## Did the CNN changes pay on data they were not tuned on?",
        "",
        f"Sources {', '.join(held_out)} (not tuned on), seeds 0-2 (tuning used seed 10), the "
        "test patients (tuning never saw them). Mean paired difference over the sources, sizes "
        "and embeddings both models ran, per scenario.",
        "",
        "| comparison | scenario | difference [95 % interval] | configurations |",
        "| --- | --- | --- | ---: |",
    ]
    for new, old in (("cnn", "cnn-study"), ("cnn-sum", "cnn")):
        for scenario in ("direct", "local", "finetune-head", "finetune-all", "pooled"):
            a = g.select(model=new, scenario=scenario)
            b = g.select(model=old, scenario=scenario)
            if scenario != "local":
                a, b = a[a["source_site"].isin(held_out)], b[b["source_site"].isin(held_out)]
            keys = ["embedding", "source_site", "target_train_size"]
            both = a.reset_index().merge(b.reset_index(), on=keys, suffixes=("_a", "_b"))
            if both.empty:
                continue
            point, low, high = g.diff(both["index_a"].to_numpy(), both["index_b"].to_numpy())
            lines.append(
                f"| `{new}` - `{old}` | {scenario} | {fmt_ci(point, low, high, sign=True)} "
                f"| {len(both)} |"
            )
    lines.append("")
    return lines


def full_section(g: Grid) -> list[str]:
    full = g.configs.pivot_table(
        index=["model", "embedding", "scenario", "target_train_size"],
        columns="source_site",
        values="auroc",
    )
    order = [c for c in ["", *REFERENCE] if c in full.columns]
    full = full[order].rename(columns={"": "(local)"})
    return [
        "## Every result (mean AUROC over seeds; columns: source setting)",
        "",
        full.to_markdown(floatfmt=".3f"),
        "",
    ]


if __name__ == "__main__":
    main()
