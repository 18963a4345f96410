"""People's decisions: recorded with who and when, applied at once, kept through re-mapping."""

from __future__ import annotations

import pytest

from harmonize.cli import cli
from harmonize.core.errors import InputError
from harmonize.index.site_index import build_site_index
from harmonize.mapping.pipeline import map_sites
from harmonize.mapping.review import decide, review_queue
from harmonize.sites.registry import add_site
from tests.helpers import snapshot


@pytest.fixture
def mapped(workspace, vocab_files, fake_encoder):
    add_site(workspace, "siteA", vocab_files["a"])
    add_site(workspace, "siteB", vocab_files["b"])
    build_site_index(workspace, "siteA", "fake")
    build_site_index(workspace, "siteB", "fake")
    map_sites(workspace, "siteA", "siteB", model="fake", k=2)
    return workspace


def _mappings(ws):
    with ws.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT source_code, target_code, score, method FROM mappings "
            "WHERE source_site = 'siteA' ORDER BY source_code"
        ).fetchall()
    return {code: (target, score, method) for code, target, score, method in rows}


def test_decisions_survive_a_remap(mapped):
    """accept keeps A1; set moves A5 (muscle pain, no counterpart) to B4; reject drops A3's
    pair. After a re-map: the same three outcomes, and the rest is the model's."""
    made = decide(mapped, "siteA", "siteB", "A1", "accept", reviewer="ana")
    assert made.message == "accepted siteA:A1 -> siteB:B3 (by ana)"
    assert (made.decision, made.target_code, made.reviewer) == ("accept", "B3", "ana")
    decide(mapped, "siteA", "siteB", "A5", "set", target_code="B4", reviewer="bo", note="x")
    decide(mapped, "siteA", "siteB", "A3", "reject", reviewer="ana")
    before = _mappings(mapped)
    assert before["A1"][0] == "B3" and before["A1"][2] == "manual:accept"
    assert before["A5"][0] == "B4" and before["A5"][2] == "manual:set"
    assert "A3" not in before
    result = map_sites(mapped, "siteA", "siteB", model="fake", k=2)
    after = _mappings(mapped)
    assert {c: v[0] for c, v in after.items()} == {c: v[0] for c, v in before.items()}
    assert after["A2"][2] == "fake:best" and after["A1"][2] == "manual:accept"
    assert result.changes == {"remapped": 0, "new": 0, "dropped": 0, "kept": 4}
    with mapped.connect(read_only=True) as con:
        who = con.execute("SELECT source_code, reviewer, note FROM decisions ORDER BY 1").fetchall()
    assert who == [("A1", "ana", None), ("A3", "ana", None), ("A5", "bo", "x")]


def test_set_outside_the_candidates_has_no_score(mapped):
    """A target the model never ranked gets score NULL, not an invented one."""
    decide(mapped, "siteA", "siteB", "A2", "set", target_code="B4", reviewer="ana")
    map_sites(mapped, "siteA", "siteB", model="fake", k=1)
    target, score, method = _mappings(mapped)["A2"]
    assert target == "B4" and score is None and method == "manual:set"


def test_review_queue_least_confident_first_and_undecided_only(mapped):
    queue = review_queue(mapped, "siteA", "siteB").to_frame()
    assert list(queue["score"]) == sorted(queue["score"])
    decide(mapped, "siteA", "siteB", queue["source_code"].iloc[0], "accept", reviewer="ana")
    after = review_queue(mapped, "siteA", "siteB")
    assert len(after) == len(queue) - 1
    assert [row["source_code"] for row in after.rows()] == queue["source_code"].tolist()[1:]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("A9", "accept"), "site 'siteA' has no concept 'A9'"),
        (("A1", "set"), "'set' needs a target code; 'accept' and 'reject' take none"),
        (("A1", "maybe"), "unknown decision 'maybe': use accept, reject, set"),
    ],
)
def test_bad_decisions(mapped, args, message):
    before = snapshot(mapped)
    with pytest.raises(InputError) as err:
        decide(mapped, "siteA", "siteB", *args)
    assert str(err.value) == message
    assert snapshot(mapped) == before


def test_reject_with_a_predicate_names_the_parameter(mapped):
    with pytest.raises(InputError) as err:
        decide(mapped, "siteA", "siteB", "A1", "reject", predicate="exact")
    assert str(err.value) == "'reject' takes no predicate: a rejected mapping relates nothing"
    assert err.value.render({"predicate": "--predicate"}).startswith("'reject' takes no --pred")


def test_cli_set_takes_code_then_target(runner, mapped):
    result = runner.invoke(
        cli,
        [
            "--workspace",
            str(mapped.root),
            "set",
            "--source",
            "siteA",
            "--target",
            "siteB",
            "A5",
            "B1",
            "--reviewer",
            "ana",
        ],
    )
    assert result.output == "set siteA:A5 -> siteB:B1 (by ana)\n"
    bad = runner.invoke(
        cli,
        [
            "--workspace",
            str(mapped.root),
            "set",
            "--source",
            "siteA",
            "--target",
            "siteB",
            "A5",
            "NOPE",
        ],
    )
    assert bad.exit_code == 1 and bad.output == "Error: site 'siteB' has no concept 'NOPE'\n"


def test_a_decision_survives_when_the_model_maps_nothing():
    """With no model mapping left (all filtered out), a person's set decision still yields a
    complete row: it must not borrow its columns from a model row that is not there."""
    import pandas as pd

    from harmonize.mapping.review import apply_decisions

    columns = ["source_code", "target_code", "score", "method", "confidence", "predicate"]
    decisions = pd.DataFrame(
        {
            "source_code": ["A5"],
            "target_code": ["B4"],
            "decision": ["set"],
            "reviewer": ["ana"],
            "predicate": ["skos:broadMatch"],
        }
    )
    candidates = pd.DataFrame({"source_code": ["A5"], "target_code": ["B4"], "score": [0.3]})
    out = apply_decisions(decisions, pd.DataFrame(columns=columns), candidates)
    assert list(out.columns) == columns
    assert out.iloc[0][["source_code", "target_code", "score", "method", "predicate"]].tolist() == [
        "A5",
        "B4",
        0.3,
        "manual:set",
        "skos:broadMatch",
    ]
