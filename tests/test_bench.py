"""bench-map icd: held-out codes only, gold restricted to them, metrics as stored.

By default on the small ICD world (tests/helpers.SMALL_ICD: respiratory codes, seconds); the
full vocabularies (minutes: the known-pairs run learns from 1,000 of 34,000 codes) are ``slow``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harmonize.benchmarks.map_quality import bench_icd
from harmonize.core.errors import InputError
from harmonize.datasets.icd import exact_pairs, gem_gold, split_codes
from tests.helpers import reference_metrics

# The small world, or the whole ICD vocabularies and GEMs (slow).
WORLDS = ["small", pytest.param("full", marks=pytest.mark.slow)]


@pytest.fixture(params=WORLDS)
def world(request) -> str:
    if request.param == "small":
        request.getfixturevalue("small_icd")
    return request.param


def test_bench_icd_scores_held_out_codes_only(workspace, world):
    result = bench_icd(workspace, "10to9", sample=40, model="lexical", k=5, known=False)
    train, _ = split_codes(gem_gold("10to9")["source_code"], test_fraction=0.5)
    with workspace.connect(read_only=True) as con:
        codes = con.execute("SELECT code FROM concepts WHERE site = 'icd10-heldout'").df()["code"]
        cands = con.execute(
            "SELECT source_code, target_code, rank FROM candidates "
            "WHERE source_site = 'icd10-heldout'"
        ).df()
        maps = con.execute(
            "SELECT source_code, target_code FROM mappings WHERE source_site = 'icd10-heldout'"
        ).df()
        stored = con.execute("SELECT count(*) FROM map_evaluations").fetchone()[0]
    assert len(codes) == 40 and set(codes).isdisjoint(train)
    gold = gem_gold("10to9")
    gold = gold[gold["source_code"].isin(set(codes))]
    expected = reference_metrics(cands, gold, maps, ks=(1, 5, 10))
    exact = exact_pairs(gold)
    expected_exact = reference_metrics(cands, exact, maps, ks=(1, 5, 10))
    keys = ("n", "top1", "top5", "top10", "mrr", "coverage", "precision")
    assert {k: result.overall[k] for k in keys} == pytest.approx(
        {k: expected[k] for k in keys}, rel=1e-12
    )
    assert {k: result.exact[k] for k in keys} == pytest.approx(
        {k: expected_exact[k] for k in keys}, rel=1e-12
    )
    assert result.overall["n"] == 40 and 0 < result.exact["n"] < 40 and stored == 2
    assert (result.direction, result.model, result.known) == ("10to9", "lexical", False)
    assert result.n_train_codes == len(train) and result.reliability is None
    rows = result.to_frame()
    assert list(rows.columns) == ["subset", *keys]
    assert rows.to_dict(orient="records") == [
        {"subset": "held-out GEM sources", **{k: result.overall[k] for k in keys}},
        {"subset": "exact 1:1 pairs", **{k: result.exact[k] for k in keys}},
    ]


def test_bench_icd_known_learns_from_training_codes_and_scores_held_out_only(workspace, world):
    """With known pairs the site also holds every training code; those keep their GEM targets,
    and every metric and the reliability table cover held-out codes only."""
    # At full size 1,000 of the ~34,000 known codes train the reranker, to keep the test short.
    concepts = 1000 if world == "full" else None
    result = bench_icd(
        workspace, "10to9", sample=40, model="lexical", k=5, reranker_concepts=concepts
    )
    gold = gem_gold("10to9")
    train, _ = split_codes(gold["source_code"], test_fraction=0.5)
    with workspace.connect(read_only=True) as con:
        maps = con.execute(
            "SELECT source_code, target_code, confidence, method FROM mappings "
            "WHERE source_site = 'icd10-known'"
        ).df()
        cands = con.execute(
            "SELECT source_code, target_code, rank FROM candidates "
            "WHERE source_site = 'icd10-known'"
        ).df()
    training = maps[maps["source_code"].isin(set(train))]
    held = maps[~maps["source_code"].isin(set(train))]
    assert len(held) == 40 and set(training["source_code"]) == set(train)
    assert set(maps["method"]) == {"lexical:best+known"}
    pairs = set(zip(gold["source_code"], gold["target_code"], strict=True))
    kept = zip(training["source_code"], training["target_code"], strict=True)
    assert all(pair in pairs for pair in kept)
    assert (training["confidence"] == 1.0).all()
    held_gold = gold[gold["source_code"].isin(set(held["source_code"]))]
    expected = reference_metrics(cands, held_gold, maps, ks=(1, 5, 10))
    keys = ("n", "top1", "top5", "top10", "mrr", "coverage", "precision", "recall")
    assert {k: result.overall[k] for k in keys} == pytest.approx(
        {k: expected[k] for k in keys}, rel=1e-12
    )
    assert result.overall["n"] == 40 and result.known
    chosen = zip(held["source_code"], held["target_code"], strict=True)
    hit = np.array([pair in pairs for pair in chosen])
    prob = held["confidence"].to_numpy(float)
    assert result.brier == pytest.approx(np.mean((prob - hit) ** 2), rel=1e-12)
    assert result.reliability["n"].sum() == 40
    # The bins split the held-out codes: their totals are the codes' own.
    table = result.reliability
    assert (table["n"] * table["predicted"]).sum() == pytest.approx(prob.sum(), rel=1e-9)
    assert (table["n"] * table["observed"]).sum() == pytest.approx(hit.sum(), rel=1e-9)
    # The known file says what the GEMs say of each training pair, for the equivalence model:
    # exact (flag approximate 0, the code's only target), close (approximate), else nothing.
    written = pd.read_csv(
        workspace.root / "inputs" / "gem_10to9_train.csv", dtype=str, keep_default_na=False
    )
    exact = exact_pairs(gold[gold["source_code"].isin(set(train))])
    said = written[written["predicate"] == "exact"]
    assert set(zip(said["source_code"], said["target_code"], strict=True)) == set(
        zip(exact["source_code"], exact["target_code"], strict=True)
    )
    assert ((written["predicate"] == "close") == (written["approximate"] == "1")).all()
    assert set(written["predicate"]) <= {"exact", "close", ""}
    assert len(written) == len(gold[gold["source_code"].isin(set(train))])
    if world == "full":  # the small world has no combination entry left unflagged
        assert (written["predicate"] == "").sum() > 0 and len(said) > 1000


def test_bench_reranker_concepts_needs_known_pairs(workspace):
    with pytest.raises(InputError, match="^reranker_concepts sets how .* it needs known$"):
        bench_icd(workspace, "10to9", sample=5, known=False, reranker_concepts=100)
    assert not (workspace.root / "inputs").exists()  # refused before writing anything
    with pytest.raises(InputError, match="must be at least 10, got 9"):
        bench_icd(workspace, "10to9", sample=5, reranker_concepts=9)
    assert not (workspace.root / "inputs").exists()
