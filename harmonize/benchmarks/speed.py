"""Speed of each stage against a reference measured in the same run, as a ratio.

- ``search``: FAISS (flat, HNSW) against numpy brute force on the same vectors, with recall@10;
- ``sql``: recoding events through ``mappings`` against a bare DuckDB group-by of the same rows;
- ``encode``: our encoding path against plain ``SentenceTransformer.encode`` on the same texts
  and device: on the CPU the int8 ``minilm-int8`` (with its cosine and top-1 agreement with
  fp32), and our fp32 path (chunks, cache, normalisation).

>>> bench_search(n_base=500, n_queries=20, dim=8)["flat"]["recall_at_10"]
1.0
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np

from harmonize.core.results import TableResult
from harmonize.embed.base import l2_normalize, resolve_device
from harmonize.embed.cache import embed_texts
from harmonize.embed.registry import get_encoder
from harmonize.index.faiss_index import build_faiss, search

if TYPE_CHECKING:
    import pandas as pd


def _timed(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    """Best wall time of ``repeat`` runs (the least disturbed one) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return best, out


def brute_force_topk(base: np.ndarray, queries: np.ndarray, k: int, chunk: int = 256):
    """Exact top-k by inner product with numpy, in query chunks to bound memory."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        sims = queries[start : start + chunk] @ base.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
        out[start : start + chunk] = np.take_along_axis(part, order, axis=1)
    return out


def bench_search(n_base: int, n_queries: int, dim: int = 384, k: int = 10) -> dict:
    rng = np.random.default_rng(0)
    base = l2_normalize(rng.standard_normal((n_base, dim)))
    queries = l2_normalize(
        base[rng.integers(0, n_base, n_queries)] + 0.3 * rng.standard_normal((n_queries, dim))
    )
    ref_time, exact = _timed(lambda: brute_force_topk(base, queries, k), repeat=1)
    out = {
        "n_base": n_base,
        "n_queries": n_queries,
        "dim": dim,
        "reference_per_s": n_queries / ref_time,
    }
    for kind in ("flat", "hnsw"):
        build_time, index = _timed(lambda kind=kind: build_faiss(base, kind), repeat=1)
        t, (_, ids) = _timed(lambda index=index: search(index, queries, k))
        recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, exact, strict=True)]))
        out[kind] = {
            "ours_per_s": n_queries / t,
            "ratio": ref_time / t,
            "recall_at_10": recall,
            "build_s": build_time,
        }
    return out


def bench_sql(n_events: int, n_codes: int = 2000, rounds: int = 3) -> dict:
    """Recoding ``n_events`` events of one site through ``mappings`` with the library's own
    ``recode_counts.sql`` against a bare group-by of the same rows; also the per-event join
    (``recode_for_export``'s form: pair's mappings first, joined on the code alone) and the
    naive join keyed on (site, code). Interleaved, best of ``rounds``.

    >>> bench_sql(n_events=1000, n_codes=10, rounds=1)["n_events"]
    1000
    """
    con = duckdb.connect()
    try:
        _recode_tables(con, n_events, n_codes)
        best, rows = _time_interleaved(_recode_queries(con), rounds)
    finally:
        con.close()
    _check_recoded(rows, n_events)
    ref = best["bare"]
    return {
        "n_events": n_events,
        "reference_per_s": n_events / ref,
        "ours_per_s": n_events / best["ours"],
        "ratio": ref / best["ours"],
        "row_join_ratio": ref / best["row_join"],
        "naive_join_ratio": ref / best["naive_join"],
    }


def _recode_tables(con: duckdb.DuckDBPyConnection, n_events: int, n_codes: int) -> None:
    """Seeded random events over ``n_codes`` codes, every code mapped both ways."""
    from harmonize.core import sql

    sql.run_internal(con, "bench_seed")
    sql.run_internal(con, "bench_events", n=n_codes, rows=n_events)
    sql.run_internal(con, "bench_mappings", n=n_codes, half=max(1, n_codes // 2))


def _recode_queries(con: duckdb.DuckDBPyConnection) -> dict[str, Callable[[], list]]:
    """The reference group-by, the library's recode query and the two join forms."""
    from harmonize.core import sql

    pair = {"source": "site", "target": "other"}
    counts = sql.internal("recode_counts")
    return {
        "bare": lambda: sql.run_internal(con, "bench_bare_counts").fetchall(),
        "ours": lambda: sql.execute(con, counts, pair).fetchall(),
        "row_join": lambda: sql.run_internal(con, "bench_row_join", **pair).fetchall(),
        "naive_join": lambda: sql.run_internal(con, "bench_naive_join").fetchall(),
    }


def _time_interleaved(
    queries: dict[str, Callable[[], list]], rounds: int
) -> tuple[dict[str, float], dict[str, list]]:
    """(best seconds, last rows) of each query, run in turn ``rounds`` times."""
    best = dict.fromkeys(queries, float("inf"))
    rows: dict[str, list] = {}
    for _ in range(rounds):
        for name, fn in queries.items():
            seconds, rows[name] = _timed(fn, repeat=1)
            best[name] = min(best[name], seconds)
    return best, rows


def _check_recoded(rows: dict[str, list], n_events: int) -> None:
    """Every code is mapped, so recoding must account for every event, no more, no fewer, and
    every form must give the same count per target code."""
    assert sum(n for _, n in rows["bare"]) == n_events
    recoded = {code: n for code, n in rows["ours"]}
    assert sum(recoded.values()) == n_events and None not in recoded
    assert all(dict(rows[k]) == recoded for k in ("row_join", "naive_join"))


def bench_encode(texts: list[str], device: str = "cpu", rounds: int = 2) -> dict:
    """Our encoding paths against plain ``SentenceTransformer.encode`` (default settings, same
    model, texts and device), interleaved ``rounds`` times, best time each. On the CPU the
    primary path is ``minilm-int8`` (:mod:`harmonize.quantized`), with its agreement with
    fp32 on these texts; ``fp32_path`` is our fp32 path (chunks, cache look-ups)."""
    import os

    encoder = get_encoder("minilm")
    dev = resolve_device(device)
    encoder.encode(texts[:8], device=dev)  # load the model outside the timing
    model = encoder._load(dev)
    int8 = get_encoder("minilm-int8") if dev == "cpu" else None
    if int8 is not None:
        int8.encode(texts[:8])  # build or load the int8 model outside the timing
    primary = int8 if int8 is not None else encoder
    times: dict[str, float] = {"plain": float("inf"), "fp32": float("inf"), "ours": float("inf")}
    out: dict[str, np.ndarray] = {}
    runs = {
        "plain": lambda: model.encode(texts),
        "fp32": lambda: embed_texts(encoder, texts, cache=None, device=dev),
        "ours": lambda: embed_texts(primary, texts, cache=None, device=dev),
    }
    load = os.getloadavg()[0]
    for _ in range(rounds):
        for name, fn in runs.items():
            seconds, out[name] = _timed(fn, repeat=1)
            times[name] = min(times[name], seconds)
    plain = l2_normalize(out["plain"])
    cos = np.sum(plain * out["ours"], axis=1)
    result = {
        "n_texts": len(texts),
        "encoder": primary.spec,
        "reference_per_s": len(texts) / times["plain"],
        "ours_per_s": len(texts) / times["ours"],
        "ratio": times["plain"] / times["ours"],
        "device": dev,
        "min_cosine_to_reference": float(cos.min()),
        "mean_cosine_to_reference": float(cos.mean()),
        "fp32_path": {
            "ours_per_s": len(texts) / times["fp32"],
            "ratio": times["plain"] / times["fp32"],
            "mean_cosine_to_reference": float(np.mean(np.sum(plain * out["fp32"], axis=1))),
        },
        "load_average_1min": load,
    }
    if int8 is not None:
        result["agreement_probe"] = int8.agreement  # measured when the model was built
        result["single_thread"] = _single_thread(model, int8, texts[:500], rounds)
    return result


def _single_thread(model, int8, texts: list[str], rounds: int) -> dict:
    """Plain encode with torch on one thread against minilm-int8 on one worker: the work each
    does, which a busy machine distorts less than the two-thread race (torch's OpenMP threads
    suffer most when another process takes a core)."""
    import torch

    threads = torch.get_num_threads()
    best = {"plain": float("inf"), "ours": float("inf")}
    try:
        for _ in range(rounds):
            torch.set_num_threads(1)
            best["plain"] = min(best["plain"], _timed(lambda: model.encode(texts), 1)[0])
            torch.set_num_threads(threads)
            int8.workers = 1
            best["ours"] = min(best["ours"], _timed(lambda: int8.encode(texts), 1)[0])
    finally:
        torch.set_num_threads(threads)
        int8.workers = None
    return {
        "n_texts": len(texts),
        "reference_per_s": len(texts) / best["plain"],
        "ours_per_s": len(texts) / best["ours"],
        "ratio": best["plain"] / best["ours"],
    }


SPEED_PARTS = ("search", "sql", "encode", "peak_rss_mb")


@dataclass(eq=False)
class SpeedResult(TableResult, Mapping[str, Any]):
    """What ``bench`` measured: each stage's figures, and the run's peak memory. It reads as
    the JSON document ``bench --format json`` prints (``result["sql"]["ratio"]``,
    ``dict(result)``); :meth:`to_frame` is the stage table.

    >>> result = SpeedResult(search={}, sql={"ratio": 2.0}, encode={}, peak_rss_mb=900.0)
    >>> result["sql"]["ratio"], list(result)
    (2.0, ['search', 'sql', 'encode', 'peak_rss_mb'])
    """

    search: dict
    sql: dict
    encode: dict
    peak_rss_mb: float

    def __getitem__(self, key: str) -> Any:
        if key not in SPEED_PARTS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(SPEED_PARTS)

    def __len__(self) -> int:
        return len(SPEED_PARTS)

    def to_frame(self) -> pd.DataFrame:
        """One row per stage: ours and the reference per second, their ratio, a note."""
        from harmonize.benchmarks.tables import speed_frame

        return speed_frame(self)


def run_speed(
    quick: bool = True, device: str = "cpu", texts: list[str] | None = None
) -> SpeedResult:
    """Every stage; ``quick`` keeps the whole run to a couple of minutes on 2 CPU cores."""
    from harmonize.datasets.icd import icd_vocab

    if texts is None:
        texts = icd_vocab("icd9")["description"].tolist()[: 1000 if quick else 5000]
    search = bench_search(20_000 if quick else 200_000, 1000)
    sql = bench_sql(2_000_000 if quick else 20_000_000)
    encode = bench_encode(texts, device)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return SpeedResult(search, sql, encode, peak)
