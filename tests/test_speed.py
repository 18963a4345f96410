"""The speed harness's reference implementations are right (speed itself is never asserted)."""

from __future__ import annotations

import numpy as np

from harmonize.embed import l2_normalize
from harmonize.speed import bench_sql, brute_force_topk


def test_brute_force_topk_is_exact_and_ordered():
    rng = np.random.default_rng(1)
    base = l2_normalize(rng.standard_normal((300, 16)))
    queries = l2_normalize(rng.standard_normal((40, 16)))
    got = brute_force_topk(base, queries, k=5, chunk=7)
    expected = np.argsort(-(queries @ base.T), axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(got, expected)


def test_sql_stage_accounts_for_every_event():
    result = bench_sql(n_events=5000, n_codes=50)
    assert result["n_events"] == 5000 and result["ratio"] > 0
