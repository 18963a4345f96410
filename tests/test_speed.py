"""The speed harness: its reference implementations are right, every stage reports the same
shape, and its own checks (every event recoded once, the same counts from every form) are live.
Speed itself is never asserted. The encode stage, which loads MiniLM, runs through the `bench`
command in tests/test_cli_commands.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harmonize.benchmarks.speed import bench_search, bench_sql, brute_force_topk
from harmonize.embed.base import l2_normalize


def test_brute_force_topk_is_exact_and_ordered():
    rng = np.random.default_rng(1)
    base = l2_normalize(rng.standard_normal((300, 16)))
    queries = l2_normalize(rng.standard_normal((40, 16)))
    got = brute_force_topk(base, queries, k=5, chunk=7)
    expected = np.argsort(-(queries @ base.T), axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(got, expected)


def test_search_stage_flat_finds_what_brute_force_finds():
    """Flat FAISS is exact inner product: recall 1 against numpy; HNSW is approximate."""
    result = bench_search(n_base=2000, n_queries=100, dim=16)
    assert set(result) == {"n_base", "n_queries", "dim", "reference_per_s", "flat", "hnsw"}
    assert (result["n_base"], result["n_queries"], result["dim"]) == (2000, 100, 16)
    for kind in ("flat", "hnsw"):
        stage = result[kind]
        assert set(stage) == {"ours_per_s", "ratio", "recall_at_10", "build_s"}
        assert stage["ratio"] == pytest.approx(stage["ours_per_s"] / result["reference_per_s"])
    assert result["flat"]["recall_at_10"] == 1.0
    assert 0.9 <= result["hnsw"]["recall_at_10"] <= 1.0


def test_sql_stage_reports_every_form_consistently():
    result = bench_sql(n_events=5000, n_codes=50, rounds=1)
    assert set(result) == {
        "n_events",
        "reference_per_s",
        "ours_per_s",
        "ratio",
        "row_join_ratio",
        "naive_join_ratio",
    }
    assert result["n_events"] == 5000
    assert result["ratio"] == pytest.approx(result["ours_per_s"] / result["reference_per_s"])
    assert all(math.isfinite(v) and v > 0 for v in result.values())


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        # Events of one code go missing: fewer events than were written.
        ("FROM c\nLEFT JOIN m", "FROM (SELECT * FROM c WHERE code <> 'C0') AS c\nLEFT JOIN m"),
        # Events land on codes that are no target: the total is right, the counts per target
        # code are not the other forms'.
        ("SELECT m.target_code AS mapped_code", "SELECT 'X' || m.target_code AS mapped_code"),
    ],
    ids=["drops-events", "wrong-targets"],
)
def test_sql_stage_refuses_a_recode_that_miscounts(monkeypatch, broken, why):
    """The stage checks what it times: a recode query that loses events, or puts them on the
    wrong target codes, fails the run instead of reporting a speed."""
    from harmonize.core import sql

    real = sql.internal("recode_counts")
    assert broken in real.text
    wrong = sql.parse_query(real.name, real.path, real.text.replace(broken, why))
    original = sql.internal
    monkeypatch.setattr(
        sql, "internal", lambda name: wrong if name == "recode_counts" else original(name)
    )
    with pytest.raises(AssertionError):
        bench_sql(n_events=3000, n_codes=20, rounds=1)
