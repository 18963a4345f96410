"""Streaming a full-size Athena download into a site: time and peak memory of ``add-site --athena``.

Generates an Athena-shaped folder with DuckDB (tab-separated, yyyymmdd dates, a quote character
inside some names), then times ``harmonize add-site NAME --athena DIR`` in a child process and
reads its peak RSS (``resource.getrusage(RUSAGE_CHILDREN)``). The shape follows a 2024 Athena
download: CONCEPT ~6 M rows (35 % standard), CONCEPT_SYNONYM ~0.4 rows per concept,
CONCEPT_RELATIONSHIP ~8 rows per concept (a third of them 'Maps to'), CONCEPT_ANCESTOR ~5 rows
per concept.

    nice -n 10 python benchmarks/athena_stream.py --concepts 600000 --folder /tmp/athena_bench

Nothing here is asserted: the figures go to reports/performance.md.
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

import duckdb

VOCABULARIES = ["SNOMED", "LOINC", "RxNorm", "ICD10CM", "ICD9CM", "NDC", "CPT4", "ATC"]
DOMAINS = ["Condition", "Measurement", "Drug", "Procedure", "Observation"]


def generate(folder: Path, n: int) -> dict[str, int]:
    """Writes CONCEPT, CONCEPT_SYNONYM, CONCEPT_RELATIONSHIP, CONCEPT_ANCESTOR and VOCABULARY
    for ``n`` concepts into ``folder``; gives each file's row count."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    vocabs = "[" + ", ".join(f"'{v}'" for v in VOCABULARIES) + "]"
    domains = "[" + ", ".join(f"'{d}'" for d in DOMAINS) + "]"
    options = "(HEADER, DELIMITER '\t', QUOTE '', ESCAPE '')"
    queries = {
        "CONCEPT.csv": f"""
            SELECT i + 1000 AS concept_id,
                   'concept ' || i || CASE WHEN i % 97 = 0 THEN ' "quoted"' ELSE '' END
                       || ' of ' || (i % 5000) AS concept_name,
                   {domains}[1 + i % 5] AS domain_id, {vocabs}[1 + i % 8] AS vocabulary_id,
                   'Class ' || (i % 40) AS concept_class_id,
                   CASE WHEN i % 20 < 7 THEN 'S' WHEN i % 20 = 7 THEN 'C' ELSE '' END
                       AS standard_concept,
                   'C' || i AS concept_code, '19700101' AS valid_start_date,
                   '20991231' AS valid_end_date,
                   CASE WHEN i % 50 = 0 THEN 'D' ELSE '' END AS invalid_reason
            FROM range({n}) t(i)""",
        "CONCEPT_SYNONYM.csv": f"""
            SELECT (i * 5 // 2) % {n} + 1000 AS concept_id, 'synonym ' || i AS concept_synonym_name,
                   4180186 AS language_concept_id
            FROM range({n * 2 // 5}) t(i)""",
        "CONCEPT_RELATIONSHIP.csv": f"""
            SELECT i // 8 + 1000 AS concept_id_1,
                   ((i // 8) - (i // 8) % 20 + (i % 7)) % {n} + 1000 AS concept_id_2,
                   CASE WHEN i % 3 = 0 THEN 'Maps to' WHEN i % 3 = 1 THEN 'Is a'
                        ELSE 'Subsumes' END AS relationship_id,
                   '19700101' AS valid_start_date, '20991231' AS valid_end_date,
                   '' AS invalid_reason
            FROM range({n * 8}) t(i)""",
        "CONCEPT_ANCESTOR.csv": f"""
            SELECT (i // 5 + 1 + i % 5) % {n} + 1000 AS ancestor_concept_id,
                   i // 5 + 1000 AS descendant_concept_id, i % 5 AS min_levels_of_separation,
                   i % 5 AS max_levels_of_separation
            FROM range({n * 5}) t(i)""",
        "VOCABULARY.csv": f"""
            SELECT unnest({vocabs}) AS vocabulary_id, 'name' AS vocabulary_name,
                   'ref' AS vocabulary_reference, 'v5' AS vocabulary_version,
                   0 AS vocabulary_concept_id""",
    }
    counts = {}
    for name, query in queries.items():
        path = folder / name
        if not path.exists():
            con.execute(f"COPY ({query}) TO '{path}' {options}")
        counts[name] = con.execute(
            f"SELECT count(*) FROM read_csv('{path}', delim='\t', quote='', header=true)"
        ).fetchone()[0]
    return counts


def timed_add_site(folder: Path, workspace: Path, extra: list[str]) -> dict[str, float]:
    """Runs ``harmonize add-site`` in a child process; wall seconds and its peak RSS (MB)."""
    cli = "from harmonize.cli import main; main()"
    command = [sys.executable, "-c", cli, "--workspace", str(workspace), "add-site", "big",
               "--athena", str(folder), "--replace", *extra]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_kb / 1024), "output":
            done.stdout.strip().splitlines()[-1]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concepts", type=int, default=6_000_000)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "athena")
    parser.add_argument("--standard-only", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    counts = generate(args.folder, args.concepts)
    generated = time.perf_counter() - started
    extra = [] if args.standard_only else ["--no-standard"]
    with tempfile.TemporaryDirectory() as tmp:
        result = timed_add_site(args.folder, Path(tmp) / "ws", extra)
    sizes = {p.name: round(p.stat().st_size / 2**20) for p in sorted(args.folder.iterdir())}
    print(json.dumps({"rows": counts, "file_mb": sizes, "generate_seconds": round(generated, 1),
                      "flags": extra, **result}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
