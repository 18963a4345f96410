"""Speed of each stage against a reference measured in the same run, as a ratio.

- ``search``: FAISS (flat, HNSW) against numpy brute force on the same vectors, with recall@10;
- ``sql``: recoding events through ``mappings`` against a bare DuckDB group-by of the same rows;
- ``encode``: our encoding path (chunks, cache, normalisation) against plain
  ``SentenceTransformer.encode`` on the same texts and device.

>>> # run_speed(quick=True)["search"]["flat"]["ratio"]
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable

import duckdb
import numpy as np

from harmonize.cache import embed_texts
from harmonize.embed import get_encoder, l2_normalize, resolve_device
from harmonize.index import build_faiss, search


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


def bench_sql(n_events: int, n_codes: int = 2000) -> dict:
    con = duckdb.connect()
    con.execute("SELECT setseed(0.5)")
    con.execute(
        "CREATE TABLE events AS SELECT 'site' AS site, (i % 100000)::VARCHAR AS subject_id, "
        "('C' || (floor(random() * $n))::INT) AS code, 'P' AS value FROM range($rows) t(i)",
        {"n": n_codes, "rows": n_events},
    )
    con.execute(
        "CREATE TABLE mappings AS SELECT 'site' AS source_site, 'C' || i AS source_code, "
        "'other' AS target_site, 'T' || (i % $half) AS target_code FROM range($n) t(i)",
        {"n": n_codes, "half": max(1, n_codes // 2)},
    )
    bare = "SELECT code, count(*) FROM events GROUP BY code"
    recode = (
        "SELECT m.target_code, count(*) FROM events AS e JOIN mappings AS m "
        "ON m.source_site = e.site AND m.source_code = e.code AND m.target_site = 'other' "
        "GROUP BY m.target_code"
    )
    ref, bare_rows = _timed(lambda: con.execute(bare).fetchall())
    ours, recoded = _timed(lambda: con.execute(recode).fetchall())
    con.close()
    # Every code is mapped, so recoding must account for every event, no more, no fewer.
    assert sum(n for _, n in recoded) == sum(n for _, n in bare_rows) == n_events
    return {
        "n_events": n_events,
        "reference_per_s": n_events / ref,
        "ours_per_s": n_events / ours,
        "ratio": ref / ours,
    }


def bench_encode(texts: list[str], device: str = "cpu") -> dict:
    encoder = get_encoder("minilm")
    dev = resolve_device(device)
    encoder.encode(texts[:8], device=dev)  # load the model outside the timing
    model = encoder._load(dev)
    ref, plain = _timed(lambda: model.encode(texts), repeat=1)
    ours, vecs = _timed(lambda: embed_texts(encoder, texts, cache=None, device=dev), repeat=1)
    agreement = float(np.mean(np.sum(l2_normalize(plain) * vecs, axis=1)))
    return {
        "n_texts": len(texts),
        "reference_per_s": len(texts) / ref,
        "ours_per_s": len(texts) / ours,
        "ratio": ref / ours,
        "device": dev,
        "mean_cosine_to_reference": agreement,
    }


def run_speed(quick: bool = True, device: str = "cpu", texts: list[str] | None = None) -> dict:
    """Every stage; ``quick`` keeps the whole run to a couple of minutes on 2 CPU cores."""
    from harmonize.icd import icd_vocab

    if texts is None:
        texts = icd_vocab("icd9")["description"].tolist()[: 1000 if quick else 5000]
    result = {
        "search": bench_search(20_000 if quick else 200_000, 1000),
        "sql": bench_sql(2_000_000 if quick else 20_000_000),
        "encode": bench_encode(texts, device),
    }
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result
