"""How time and memory grow with vocabulary size and event count (issue 6).

Each row runs in its own process, so its peak RSS is its own:

- ``concepts``: two sites of generated concepts (perturbed ICD-10-CM descriptions, different
  seeds, :func:`harmonize.scale.perturbed_vocab`): add-site, build-index (streamed, chunked),
  map (best, k=5), and top-1 accuracy against the kept truth (same ICD-10-CM source code);
- ``events``: demo-network events written to Parquet in chunks
  (:func:`harmonize.scale.write_events`), loaded into a workspace with mappings from the
  demo's true target->source mapping, then recoded: ``recode_counts.sql`` and the per-event
  ``recode_for_export.sql`` written to Parquet, against a bare DuckDB group-by of the rows.

    python benchmarks/scale.py                     # the default grid, a markdown table
    python benchmarks/scale.py --concepts 10000:10000:lexical --events 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_CONCEPTS = ["10000:10000:lexical", "10000:10000:minilm-int8", "10000:100000:lexical"]
DEFAULT_EVENTS = [1_000_000, 10_000_000]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_concepts(n_source: int, n_target: int, model: str) -> dict:
    from harmonize.core.workspace import Workspace
    from harmonize.datasets.synthetic import perturbed_vocab
    from harmonize.index.site_index import build_site_index
    from harmonize.mapping.pipeline import map_sites
    from harmonize.sites.registry import add_site

    out: dict = {"kind": "concepts", "n_source": n_source, "n_target": n_target, "model": model}
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        started = time.perf_counter()
        truths = {}
        for site, n, seed in (("src", n_source, 1), ("tgt", n_target, 2)):
            vocab, truth = perturbed_vocab(n, random_state=seed)
            path = Path(tmp) / f"{site}.csv"
            vocab.to_csv(path, index=False)
            truths[site] = truth.set_index("code")["source_code"]
        out["generate_s"] = time.perf_counter() - started
        started = time.perf_counter()
        for site in ("src", "tgt"):
            add_site(ws, site, Path(tmp) / f"{site}.csv")
        out["add_site_s"] = time.perf_counter() - started
        started = time.perf_counter()
        for site in ("src", "tgt"):
            build_site_index(ws, site, model, device="cpu")
        out["build_index_s"] = time.perf_counter() - started
        out["rss_after_build_mb"] = _rss_mb()
        started = time.perf_counter()
        result = map_sites(ws, "src", "tgt", model=model, k=5, device="cpu")
        out["map_s"] = time.perf_counter() - started
        with ws.connect(read_only=True) as con:
            pairs = con.execute(
                "SELECT source_code, target_code FROM mappings WHERE source_site = 'src'"
            ).fetchall()
        hits = [truths["src"][s] == truths["tgt"][t] for s, t in pairs]
        # Only sources whose ICD code is among the target's can be right.
        reachable = truths["src"].isin(set(truths["tgt"])).sum()
        out["top1_of_reachable"] = sum(hits) / max(1, reachable)
        out["n_mapped"] = result.n_mapped
    out["peak_rss_mb"] = _rss_mb()
    return out


def run_events(n_events: int) -> dict:
    import duckdb
    import pandas as pd

    from harmonize.core.workspace import Workspace
    from harmonize.datasets.demo import TARGET_TRUTH
    from harmonize.datasets.synthetic import write_events

    out: dict = {"kind": "events", "n_events": n_events}
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events.parquet"
        started = time.perf_counter()
        write_events(events, n_events, site="target", random_state=3)
        out["generate_s"] = time.perf_counter() - started
        out["rss_after_generate_mb"] = _rss_mb()
        ws = Workspace(Path(tmp) / "ws")
        truth = pd.read_csv(TARGET_TRUTH, dtype=str).drop_duplicates("target_code")
        export = Path(tmp) / "recoded.parquet"
        with ws.connect() as con:
            out["load_s"] = _load_events(con, events, truth)
            timings = _recode_timings(con, export)
        for name, seconds in timings.items():
            out[f"{name}_s"] = seconds
        out["counts_ratio"] = timings["bare"] / timings["counts"]
        out["export_ratio"] = timings["bare"] / timings["export"]
        out["n_exported"] = duckdb.sql(f"SELECT count(*) FROM '{export}'").fetchall()[0][0]
    out["peak_rss_mb"] = _rss_mb()
    return out


def _load_events(con, events: Path, truth) -> float:
    """Loads the ``events`` Parquet file into the workspace (its seconds, all that is timed),
    then the ``truth`` frame's target->source pairs as mappings."""
    started = time.perf_counter()
    con.execute(
        "INSERT INTO events SELECT 'target', subject_id, time, code, value "
        "FROM read_parquet($path)",
        {"path": str(events)},
    )
    seconds = time.perf_counter() - started
    con.register("truth_df", truth)
    con.execute(
        # Columns named: the table has grown columns (predicate) since this was written.
        "INSERT INTO mappings (source_site, source_code, target_site, target_code, score, "
        "method, run_id, created_at) "
        "SELECT 'target', target_code, 'source', source_code, 1.0, 'truth', 'bench', now() "
        "FROM truth_df"
    )
    return seconds


def _recode_timings(con, export: Path) -> dict[str, float]:
    """Best of two runs, in seconds: a bare group-by of the events (``bare``),
    ``recode_counts.sql`` (``counts``) and ``recode_for_export.sql`` written to ``export``
    (``export``)."""
    from harmonize.core import sql

    pair = {"source": "target", "target": "source"}
    export_sql = sql.internal("recode_for_export").text.rstrip().rstrip(";")
    queries = {
        "bare": lambda: con.execute(
            "SELECT code, count(*) FROM events WHERE site = 'target' GROUP BY code"
        ).fetchall(),
        "counts": lambda: sql.execute(con, sql.internal("recode_counts"), pair).fetchall(),
        "export": lambda: con.execute(f"COPY ({export_sql}) TO '{export}' (FORMAT parquet)", pair),
    }
    timings = dict.fromkeys(queries, float("inf"))
    for _ in range(2):
        for name, fn in queries.items():
            started = time.perf_counter()
            fn()
            timings[name] = min(timings[name], time.perf_counter() - started)
    return timings


def _child(args: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--one", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:], "args": args}
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    lines = [
        "| concepts (source -> target) | model | generate s | add-site s | build-index s "
        "| map s | top-1 | peak RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if r.get("kind") == "concepts":
            lines.append(
                f"| {r['n_source']:,} -> {r['n_target']:,} | {r['model']} | "
                f"{r['generate_s']:.1f} | {r['add_site_s']:.1f} | {r['build_index_s']:.1f} | "
                f"{r['map_s']:.1f} | {r['top1_of_reachable']:.3f} | {r['peak_rss_mb']:.0f} |"
            )
    lines += [
        "",
        "| events | generate s | load s | bare group-by s | recode_counts s (ratio) "
        "| recode_for_export to Parquet s (ratio) | peak RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if r.get("kind") == "events":
            lines.append(
                f"| {r['n_events']:,} | {r['generate_s']:.1f} | {r['load_s']:.1f} | "
                f"{r['bare_s']:.2f} | {r['counts_s']:.2f} ({r['counts_ratio']:.2f}) | "
                f"{r['export_s']:.2f} ({r['export_ratio']:.2f}) | {r['peak_rss_mb']:.0f} |"
            )
    errors = [r for r in rows if "error" in r]
    lines += [f"\nfailed: {e['args']}: {e['error']}" for e in errors]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concepts", nargs="*", default=DEFAULT_CONCEPTS,
                        help="N_SOURCE:N_TARGET:MODEL rows")  # fmt: skip
    parser.add_argument("--events", nargs="*", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--json", type=Path, help="also write the raw rows here")
    parser.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        if args.one[0] == "events":
            print(json.dumps(run_events(int(args.one[1]))))
        else:
            n_source, n_target, model = args.one[1].split(":")
            print(json.dumps(run_concepts(int(n_source), int(n_target), model)))
        return
    rows = []
    for spec in args.concepts:
        rows.append(_child(["concepts", spec]))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    for n in args.events:
        rows.append(_child(["events", str(n)]))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(table(rows), end="")


if __name__ == "__main__":
    main()
