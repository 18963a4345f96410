"""The replication report's sections on the heterogeneous sites (heterogeneous.py) and the
room they leave for transfer (heterogeneous_headroom.py)."""

from __future__ import annotations

import json

from replication_stats import TRANSFER, Grid, best, fmt_ci


def headroom_section(args) -> list[str]:
    """The room the heterogeneous sites leave for transfer (heterogeneous_headroom.py)."""
    path = args.reports / f"heterogeneous-headroom{args.suffix}.json"
    if not path.exists():
        return []
    h = json.loads(path.read_text(encoding="utf-8"))
    lines = [
        "### How much room these sites leave for transfer",
        "",
        "`benchmarks/heterogeneous_headroom.py`, fresh samples of the same networks "
        f"({h['test']:,} target test patients, {h['seeds']} seeds): naive Bayes on "
        f"{h['pool']:,} target patients reaches {h['ceiling']:.4f}, in effect the ceiling of these "
        "14 findings (the networks are naive Bayes in the 4-class diagnosis). nb-eb given "
        "the source prior through the TRUE mapping (a merged finding: the source's frequency of "
        "either part present, target-only findings flat), the best a perfect mapping could lend, "
        "against naive Bayes on the target sample alone (m = 1), paired, mean +- standard error:",
        "",
        "| n | naive Bayes, target only | nb-eb, true mapping | difference |",
        "| ---: | ---: | ---: | --- |",
    ]
    for r in h["rows"]:
        lines.append(
            f"| {r['n']} | {r['nb_local']:.4f} | {r['nb_eb_true']:.4f} | "
            f"{r['diff']:+.4f} +- {r['diff_se']:.4f} |"
        )
    lines += [
        "",
        "With 100 or more target patients the ita16 source lends these 14 findings nothing the "
        "target sample does not already give, even through a perfect mapping: the benchmark's "
        "n = 100 and 200 ties are the sites, not the mapping or the model.",
        "",
    ]
    return lines


def heterogeneous_section(args) -> list[str]:
    """The heterogeneous sites (heterogeneous.py): best transfer against best target-only,
    ``auto``, and the best model of each scenario by reading."""
    name = f"heterogeneous-sites{args.suffix}"
    if not (args.reports / f"{name}.csv").exists():
        return ["## Heterogeneous sites", "", f"(no {name}.csv yet)", ""]
    h = Grid(args.reports, name, extra_key=("reading",))
    sizes = h.meta["settings"]["sizes"]
    return [
        *heterogeneous_best_lines(h),
        *heterogeneous_auto_lines(h),
        *heterogeneous_reading_lines(h, sizes),
    ]


def heterogeneous_best_lines(h: Grid) -> list[str]:
    """The sites described, then per size the best transfer row minus the best target-only."""
    s = h.meta["settings"]
    lines = [
        "## Heterogeneous sites: 6 of 14 findings shared",
        "",
        "`harmonize.datasets.heterogeneous`: the source records 14 findings, the target 14, of "
        "which 6 are the source's; 3 are renamed, 2 merge two source findings each, 3 are the "
        "target's own, and one source finding is missing at the target. Source patients from the "
        f"ita16 network ({s['n_source']}), target patients from the target network "
        f"({s['n_target'] // 2} training pool, {s['n_target'] // 2} test). `native` embeds the "
        "target's own descriptions; `mapped` recodes the target into source codes through the "
        "MiniLM mapping (`harmonize map`); `oracle` through the true mapping (target-only "
        "findings drop out). Best of each kind, mean of three seeds, 95 % intervals.",
        "",
        "| n | best target-only | best transfer (reading) | transfer - target-only |",
        "| ---: | --- | --- | --- |",
    ]
    for n in s["sizes"]:
        local = h.select(scenario="local", target_train_size=n)
        transfer = h.select(scenario=list(TRANSFER))
        transfer = transfer[transfer["target_train_size"].isin([0, n])]
        i, j = best(transfer), best(local)
        c_i, c_j = h.configs.loc[i], h.configs.loc[j]
        lines.append(
            f"| {n} | {c_j['model']} {c_j['embedding']} ({c_j['reading']}) {c_j['auroc']:.3f} | "
            f"{c_i['model']} {c_i['embedding']} {c_i['scenario']} ({c_i['reading']}) "
            f"{c_i['auroc']:.3f} | {fmt_ci(*h.diff(i, j), sign=True)} |"
        )
    return lines


def heterogeneous_auto_lines(h: Grid) -> list[str]:
    """``auto`` minus the best target-only model, per size, reading and embedding (none
    without ``auto`` rows)."""
    auto = h.select(model="auto")
    if auto.empty:
        return []
    lines = [
        "",
        "`auto` (inner CV on the target sample picks the model, as `evaluate` does) minus the "
        "best target-only model:",
        "",
        "| n | reading | embedding | auto | auto - best target-only |",
        "| ---: | --- | --- | --- | --- |",
    ]
    for i, c in auto.sort_values(["target_train_size", "reading", "embedding"]).iterrows():
        local = h.select(scenario="local", target_train_size=c["target_train_size"])
        lines.append(
            f"| {c['target_train_size']} | {c['reading']} | {c['embedding']} | "
            f"{c['auroc']:.3f} | {fmt_ci(*h.diff(i, best(local)), sign=True)} |"
        )
    return lines


def heterogeneous_reading_lines(h: Grid, sizes: list[int]) -> list[str]:
    """The best model of each scenario and size in each reading, AUROC [95 %]."""
    lines = [
        "",
        "By reading: the best model of each scenario (any model and embedding), AUROC [95 %]:",
        "",
        "| scenario | n | native | mapped | oracle |",
        "| --- | ---: | --- | --- | --- |",
    ]
    for scenario in ("direct", "finetune-all", "finetune-head", "pooled", "transfer", "local"):
        for n in [0] if scenario == "direct" else sizes:
            cells = [
                _best_cell(h, scenario, n, reading) for reading in ("native", "mapped", "oracle")
            ]
            lines.append(f"| {scenario} | {n} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _best_cell(h: Grid, scenario: str, n: int, reading: str) -> str:
    """The best row of one scenario, size and reading: AUROC [95 %], model, embedding; "-"
    where there is none."""
    sub = h.select(scenario=scenario, target_train_size=n, reading=reading)
    if sub.empty:
        return "-"
    i = best(sub)
    c = h.configs.loc[i]
    return f"{fmt_ci(c['auroc'], *h.ci(i))} {c['model']} {c['embedding']}"
