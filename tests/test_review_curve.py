"""The review curve's simulated reviewer: it reads the gold only for the concepts it reviews."""

from __future__ import annotations

import pandas as pd
import pytest

from harmonize.benchmarks.review_curve import parse_points, review_curve
from harmonize.core.errors import InputError


def _decided(ws) -> list[str]:
    with ws.connect(read_only=True) as con:
        rows = con.execute("SELECT source_code FROM decisions ORDER BY decided_at, source_code")
        return [code for (code,) in rows.fetchall()]


def test_the_reviewer_reads_gold_only_for_the_concepts_it_reviews(known_ws):
    """Both arms: what the reviewer read is exactly the concepts decided, each once. With the
    gold of every concept it did not read replaced by nonsense, the review arm reviews the same
    concepts in the same order and decides them the same way: nothing else of the gold steered
    it. The scores are of the true gold."""
    ws, paths = known_ws
    gold = pd.concat([pd.read_csv(paths["known"]), pd.read_csv(paths["truth"])])
    curve = review_curve(ws, "local", "standard", gold, [0, 4, 12], model="lexical", k=3)
    for arm in ("review", "random"):
        read = curve.reviewers[arm].read
        assert len(read) == len(set(read)) == 12
    assert sorted(curve.reviewers["random"].read) == sorted(_decided(ws))  # the last arm's
    assert curve.reviewers["random"].read != curve.reviewers["review"].read
    frame = curve.to_frame()
    assert frame[["arm", "reviewed"]].values.tolist() == [
        ["review", 0], ["review", 4], ["review", 12], ["random", 0], ["random", 4], ["random", 12],
    ]  # fmt: skip
    assert frame["n_rest"].tolist() == [100, 96, 88, 100, 96, 88]
    read = curve.reviewers["review"].read
    nonsense = gold.assign(
        target_code=[
            t if s in read else "D0"
            for s, t in zip(gold["source_code"], gold["target_code"], strict=True)
        ]  # fmt: skip
    )
    again = review_curve(
        ws, "local", "standard", nonsense, [0, 4, 12], model="lexical", k=3, arms=("review",)
    )
    assert again.reviewers["review"].read == read
    assert _decided(ws) == sorted(read[:4]) + sorted(read[4:])


def test_parse_points():
    assert parse_points("0,25,50,100,200") == [0, 25, 50, 100, 200]
    for bad in ("", "10,5", "-1,3", "a,b"):
        with pytest.raises(InputError):
            parse_points(bad)


def test_the_random_arm_over_several_seeds(known_ws):
    """random_seeds=2: the random arm runs from no decisions once per seed, and the table
    shows the mean of the two."""
    ws, paths = known_ws
    gold = pd.concat([pd.read_csv(paths["known"]), pd.read_csv(paths["truth"])])
    curve = review_curve(ws, "local", "standard", gold, [0, 6], model="lexical", k=3,
                         arms=("random",), random_seeds=2)  # fmt: skip
    frame = curve.to_frame()
    assert frame[["seed", "reviewed"]].values.tolist() == [[0, 0], [0, 6], [1, 0], [1, 6]]
    assert sorted(curve.reviewers["random"].read) == sorted(_decided(ws))  # seed 1's
    table = curve.table().set_index("reviewed")
    six = frame[frame["reviewed"] == 6]
    assert table.loc[6, "top1_rest_random"] == pytest.approx(six["top1_rest"].mean())
    assert table.loc[6, "top1_all_random"] == pytest.approx(six["top1_all"].mean())
    assert table.loc[6, "top1_rest_random_min"] == six["top1_rest"].min()
    assert table.loc[6, "top1_rest_random_max"] == six["top1_rest"].max()
    assert table.loc[0, "top1_rest_random_min"] == table.loc[0, "top1_rest_random"]
    one = review_curve(ws, "local", "standard", gold, [0, 6], model="lexical", k=3,
                       arms=("random",))  # fmt: skip
    assert "top1_rest_random_min" not in one.table().columns  # one seed: no spread
    with pytest.raises(InputError, match="must be 1 or more"):
        review_curve(ws, "local", "standard", gold, [0], arms=("random",), random_seeds=0)
