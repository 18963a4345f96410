"""The speed harness's reference implementations are right (speed itself is never asserted)."""

from __future__ import annotations

import numpy as np
import pytest

from harmonize.benchmarks.speed import bench_sql, brute_force_topk
from harmonize.embed.base import l2_normalize


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


def test_sql_stage_times_every_recode_form():
    result = bench_sql(n_events=3000, n_codes=20, rounds=1)
    assert {"row_join_ratio", "naive_join_ratio"} <= set(result)
    assert result["ours_per_s"] > 0 and result["reference_per_s"] > 0


@pytest.mark.model
def test_encode_stage_reports_int8_against_plain_with_agreement():
    import torch

    from harmonize.benchmarks.speed import bench_encode
    from harmonize.datasets.icd import icd_vocab

    threads = torch.get_num_threads()
    texts = icd_vocab("icd9")["description"].tolist()[:40]
    result = bench_encode(texts, rounds=1)
    assert (result["encoder"], result["device"], result["n_texts"]) == ("minilm-int8", "cpu", 40)
    assert result["min_cosine_to_reference"] >= 0.99
    assert result["fp32_path"]["mean_cosine_to_reference"] == pytest.approx(1.0, abs=1e-5)
    assert result["agreement_probe"]["top1_agreement_icd"] >= 0.98
    assert result["single_thread"]["n_texts"] == 40
    assert torch.get_num_threads() == threads  # the one-thread comparison puts it back
