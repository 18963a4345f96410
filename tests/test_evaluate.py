"""Mapping metrics against a gold standard (harmonize/mapping/metrics.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harmonize.core.errors import InputError
from harmonize.mapping.metrics import mapping_metrics, read_gold
from tests.helpers import reference_metrics


def frame(rows, columns):
    return pd.DataFrame(rows, columns=columns)


# s1 has two gold targets (t1, t2); s2's candidates never hit; s3 is mapped wrongly;
# s4 is right at rank 1; s9 is not in the gold and must be ignored everywhere.
GOLD = frame(
    [("s1", "t1"), ("s1", "t2"), ("s2", "t3"), ("s3", "t4"), ("s4", "t5")],
    ["source_code", "target_code"],
)
CANDIDATES = frame(
    [
        ("s1", "tX", 1),
        ("s1", "t2", 2),
        ("s1", "t1", 3),
        ("s2", "t9", 1),
        ("s2", "t8", 2),
        ("s3", "t6", 1),
        ("s3", "t7", 2),
        ("s3", "t4", 3),
        ("s4", "t5", 1),
        ("s4", "t6", 2),
        ("s9", "t1", 1),
    ],
    ["source_code", "target_code", "rank"],
)
MAPPINGS = frame(
    [("s1", "t2"), ("s3", "t6"), ("s4", "t5"), ("s9", "t1")], ["source_code", "target_code"]
)
EXPECTED = {
    "n": 4,
    "top1": 1 / 4,  # s4
    "top2": 2 / 4,  # s1 (t2 at rank 2), s4
    "top3": 3 / 4,  # + s3 (t4 at rank 3)
    "top10": 3 / 4,
    "mrr": (1 / 2 + 0 + 1 / 3 + 1) / 4,  # 11/24
    "coverage": 3 / 4,  # s1, s3, s4 mapped (s9 not in gold)
    "precision": 2 / 3,  # s1->t2 and s4->t5 right, s3->t6 wrong
    "recall": 2 / 4,
}


def test_hand_computed_many_to_many_metrics():
    """Top-k, MRR, coverage, precision and recall on a small many-to-many case."""
    got = mapping_metrics(CANDIDATES, GOLD, MAPPINGS, ks=(1, 2, 3, 10))
    assert got.keys() == EXPECTED.keys()
    assert got == pytest.approx(EXPECTED)


def test_metrics_ignore_row_order_and_duplicate_gold_rows():
    """Shuffled candidates and a repeated gold row change nothing: rank, not position, counts."""
    shuffled = CANDIDATES.sample(frac=1.0, random_state=0).reset_index(drop=True)
    gold = pd.concat([GOLD, GOLD.iloc[[0]]], ignore_index=True)
    got = mapping_metrics(shuffled, gold, MAPPINGS, ks=(1, 2, 3, 10))
    assert got == pytest.approx(EXPECTED)


def test_without_mappings_only_ranking_metrics():
    """Without chosen mappings there is no coverage, precision or recall."""
    got = mapping_metrics(CANDIDATES, GOLD, ks=(1,))
    assert got == pytest.approx({"n": 4, "top1": 0.25, "mrr": 11 / 24})


def test_no_chosen_mappings_gives_zero_precision():
    """An empty mapping set has coverage, precision and recall 0 (not a division error)."""
    empty = frame([], ["source_code", "target_code"])
    got = mapping_metrics(CANDIDATES, GOLD, empty, ks=(1,))
    assert (got["coverage"], got["precision"], got["recall"]) == (0.0, 0.0, 0.0)


def test_empty_gold_is_an_input_error():
    """Metrics over no gold sources are undefined."""
    with pytest.raises(InputError, match="^the gold standard has no rows$"):
        mapping_metrics(CANDIDATES, GOLD.iloc[:0])


@pytest.mark.parametrize("seed", range(8))
def test_matches_brute_force_on_random_cases(seed):
    """Random gold (1-3 targets per source), ranked candidates and at most one chosen target
    per source (as every mapping strategy produces): equal to the plain loops of
    tests.helpers.reference_metrics."""
    rng = np.random.default_rng(seed)
    targets = [f"t{i}" for i in range(15)]
    sources = [f"s{i}" for i in range(40)]
    gold_rows, cand_rows, map_rows = [], [], []
    for s in sources:
        if rng.random() < 0.8:  # the rest are candidates-only sources, outside the gold
            for t in rng.choice(targets, size=rng.integers(1, 4), replace=False):
                gold_rows.append((s, t))
        width = int(rng.integers(0, 8))
        for rank, t in enumerate(rng.choice(targets, size=width, replace=False), start=1):
            cand_rows.append((s, t, rank))
        if rng.random() < 0.7:
            map_rows.append((s, rng.choice(targets)))
    gold = frame(gold_rows, ["source_code", "target_code"])
    candidates = frame(cand_rows, ["source_code", "target_code", "rank"])
    candidates = candidates.sample(frac=1.0, random_state=seed)
    mappings = frame(map_rows, ["source_code", "target_code"])
    ks = (1, 3, 5)
    got = mapping_metrics(candidates, gold, mappings, ks=ks)
    want = reference_metrics(candidates, gold, mappings, ks)
    assert got.keys() == want.keys()
    assert got == pytest.approx(want)


def test_recall_at_most_one_when_a_source_maps_to_two_gold_targets():
    """A source mapped to both of its gold targets is one recalled source, not two."""
    gold = frame([("a", "x"), ("a", "y")], ["source_code", "target_code"])
    cands = frame([("a", "x", 1)], ["source_code", "target_code", "rank"])
    mappings = frame([("a", "x"), ("a", "y")], ["source_code", "target_code"])
    assert mapping_metrics(cands, gold, mappings, ks=(1,))["recall"] == 1.0


def test_empty_candidates_score_zero():
    """No candidates at all: every top-k and MRR is 0."""
    got = mapping_metrics(CANDIDATES.iloc[:0], GOLD, ks=(1,))
    assert got == pytest.approx({"n": 4, "top1": 0.0, "mrr": 0.0})


def test_read_gold_csv(tmp_path):
    """A gold CSV is read as text with its extra columns kept."""
    path = tmp_path / "gold.csv"
    path.write_text("source_code,target_code,note\n01,007,a\nB,C,\n", encoding="utf-8")
    gold = read_gold(path)
    assert gold.to_dict(orient="list") == {
        "source_code": ["01", "B"],
        "target_code": ["007", "C"],
        "note": ["a", ""],
    }


@pytest.mark.parametrize("missing", ["source_code", "target_code"])
def test_read_gold_missing_column(tmp_path, missing):
    """A gold file without source_code or target_code names the file and column."""
    other = "target_code" if missing == "source_code" else "source_code"
    path = tmp_path / "gold.csv"
    path.write_text(f"{other},x\nA,B\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_gold(path)
    assert str(exc.value) == f"{path}: missing required column '{missing}'"
