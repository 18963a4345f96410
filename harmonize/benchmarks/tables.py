"""The benchmarks' results as tables and text, the way ``bench`` and ``bench-map`` print them.

>>> result = {"sql": {"ours_per_s": 2e6, "reference_per_s": 1e6, "ratio": 2.0,
...     "n_events": 1000, "row_join_ratio": 1.5, "naive_join_ratio": 3.0}}
>>> sql_row(result)["note"]
'1,000 events, recode_counts.sql vs bare group-by; per-event join 1.50, naive 3.00'
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from harmonize.core.render import render

if TYPE_CHECKING:
    import pandas as pd

    from harmonize.benchmarks.map_quality import BenchResult

RATES = ("ours_per_s", "reference_per_s", "ratio")


def search_rows(result: dict) -> list[dict[str, Any]]:
    """One row per index kind: queries per second against numpy brute force."""
    search = result["search"]
    return [
        {
            "stage": f"search {kind}",
            "ours_per_s": search[kind]["ours_per_s"],
            "reference_per_s": search["reference_per_s"],
            "ratio": search[kind]["ratio"],
            "note": f"recall@10 {search[kind]['recall_at_10']:.3f} vs numpy brute force",
        }
        for kind in ("flat", "hnsw")
    ]


def sql_row(result: dict) -> dict[str, Any]:
    """The recode query against a bare group-by."""
    sql = result["sql"]
    return {
        "stage": "sql recode",
        **{k: sql[k] for k in RATES},
        "note": f"{sql['n_events']:,} events, recode_counts.sql vs bare group-by; "
        f"per-event join {sql['row_join_ratio']:.2f}, naive {sql['naive_join_ratio']:.2f}",
    }


def encode_rows(result: dict) -> list[dict[str, Any]]:
    """Our encoding paths against plain ``encode()``: the primary one, one thread, fp32."""
    enc = result["encode"]
    probe = enc.get("agreement_probe")
    agree = (
        f"; probe: min cos {probe['min_cosine']:.3f}, top-1 agreement ICD "
        f"{probe['top1_agreement_icd']:.3f}, demo {probe['top1_agreement_demo']:.3f} (at build)"
        if probe
        else ""
    )
    rows = [
        {
            "stage": f"encode {enc['encoder']}",
            **{k: enc[k] for k in RATES},
            "note": f"{enc['n_texts']} texts on {enc['device']} vs plain encode(); min cos "
            f"{enc['min_cosine_to_reference']:.3f}{agree}",
        }
    ]
    single = enc.get("single_thread")
    if single:
        rows.append(
            {
                "stage": f"encode {enc['encoder']}, 1 thread",
                **{k: single[k] for k in RATES},
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
    return rows


def speed_frame(result: dict) -> pd.DataFrame:
    """:func:`harmonize.benchmarks.speed.run_speed`'s result, one row per stage."""
    import pandas as pd

    return pd.DataFrame([*search_rows(result), sql_row(result), *encode_rows(result)])


def speed_text(result: dict) -> str:
    """The stage table and the conditions it was measured in, as ``bench`` prints them."""
    enc = result["encode"]
    return (
        render(speed_frame(result), "table", floatfmt=".2f")
        + f"peak RSS {result['peak_rss_mb']:.0f} MB; load average at the encode stage "
        f"{enc['load_average_1min']:.1f} on {os.cpu_count()} cores (ratios are same-run)\n"
    )


def map_quality_document(result: BenchResult) -> dict[str, Any]:
    """``bench-map``'s JSON: the held-out metrics, the exact 1:1 pairs', and the confidence."""
    extra: dict[str, Any] = {
        "direction": result.direction,
        "model": result.model,
        "known": result.known,
    }
    if result.brier is not None:
        extra["brier"] = result.brier
        extra["reliability"] = result.reliability.to_dict(orient="records")
    if result.by_encounter is not None:
        extra["by_encounter"] = result.by_encounter
    return {**result.overall, "exact": result.exact, **extra}


def map_quality_text(result: BenchResult) -> str:
    """``bench-map``'s table, the confidence's reliability and how long it took."""
    text = render(result.to_frame(), "table")
    if result.reliability is not None:
        text += f"confidence on held-out codes: Brier {result.brier:.3f}\n"
        text += render(result.reliability, "table")
    return text + (
        f"({result.seconds:.0f}s; {result.n_train_codes} GEM source codes held back "
        "for training learned methods)\n"
    )
