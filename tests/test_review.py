"""People's decisions: recorded with who and when, applied at once, kept through re-mapping."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

from harmonize.cli import cli
from harmonize.core.errors import InputError
from harmonize.index.site_index import build_site_index
from harmonize.mapping.pipeline import map_sites
from harmonize.mapping.queue import ORDERS, coverage
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
    pair at once. After a re-map: A1 and A5 as decided, A3 on its next candidate (never the
    rejected one), and the rest is the model's."""
    rejected = _mappings(mapped)["A3"][0]
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
    with mapped.connect(read_only=True) as con:
        second = con.execute(
            "SELECT target_code FROM candidates WHERE source_code = 'A3' AND rank = 1"
        ).fetchone()[0]
    assert after["A3"] == (second, after["A3"][1], "fake:best") and second != rejected
    del after["A3"]
    assert {c: v[0] for c, v in after.items()} == {c: v[0] for c, v in before.items()}
    assert after["A2"][2] == "fake:best" and after["A1"][2] == "manual:accept"
    assert result.changes == {"remapped": 0, "new": 1, "dropped": 0, "kept": 4}
    assert result.summary.endswith(
        "; 3 decisions (2 accepted or set, 1 rejected), too few to learn from "
        "(10 accepted or set needed)"
    )
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
    queue = review_queue(mapped, "siteA", "siteB", order="confidence").to_frame()
    assert list(queue["score"]) == sorted(queue["score"])
    decide(mapped, "siteA", "siteB", queue["source_code"].iloc[0], "accept", reviewer="ana")
    after = review_queue(mapped, "siteA", "siteB", order="confidence")
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


@pytest.fixture
def b_onto_a(workspace, vocab_files, fake_encoder):
    """siteB (frequency column 10, 5, 7, 1; no events) mapped onto siteA, k=3."""
    add_site(workspace, "siteA", vocab_files["a"])
    add_site(workspace, "siteB", vocab_files["b"])
    build_site_index(workspace, "siteA", "fake")
    build_site_index(workspace, "siteB", "fake")
    map_sites(workspace, "siteB", "siteA", model="fake", k=3)
    return workspace


def test_review_orders(b_onto_a):
    """frequency: by the vocabulary's frequency; code; confidence: by cosine (no confidence);
    informative: (1 - the margin's rank) * (1 + log1p(n) / log1p(max n)) / 2, recomputed here
    from the stored candidates (margin: the top cosine's lead over the second)."""
    from scipy.stats import rankdata

    ws = b_onto_a
    order = {o: review_queue(ws, "siteB", "siteA", order=o).to_frame() for o in ORDERS}
    assert order["frequency"]["source_code"].tolist() == ["B1", "B3", "B2", "B4"]
    assert order["code"]["source_code"].tolist() == ["B1", "B2", "B3", "B4"]
    assert order["confidence"]["score"].tolist() == sorted(order["confidence"]["score"])
    with ws.connect(read_only=True) as con:
        cands = con.execute(
            "SELECT source_code, rank, score FROM candidates ORDER BY source_code, rank"
        ).fetchall()
    codes = ["B1", "B2", "B3", "B4"]
    top = {c: [sc for s, _, sc in cands if s == c] for c in codes}
    margin = np.array([top[c][0] - top[c][1] for c in codes])
    sure = rankdata(margin) - 1
    n = np.array([10, 5, 7, 1])
    teach = (1 - sure / sure.max()) * (1 + np.log1p(n) / np.log1p(10)) / 2
    expected = [codes[i] for i in np.lexsort((codes, -teach))]
    assert order["informative"]["source_code"].tolist() == expected
    got = order["informative"].set_index("source_code")["priority"]
    assert got.loc[codes].to_numpy() == pytest.approx(teach)
    with pytest.raises(InputError, match="unknown order 'size': use one of informative, freq"):
        review_queue(ws, "siteB", "siteA", order="size")


def test_review_shows_top_candidates_with_descriptions_and_parents(mapped):
    """siteA onto siteB: each queued concept's stored top-3 candidates, with siteB's
    descriptions and parents."""
    queue = review_queue(mapped, "siteA", "siteB", top=3)
    parents = {"B1": "RESP", "B2": "RESP", "B3": "RESP", "B4": "ENT"}
    texts = {"B1": "fever reported", "B2": "cough dry", "B3": "dyspnea acute", "B4": "throat sore"}
    with mapped.connect(read_only=True) as con:
        stored = con.execute(
            "SELECT source_code, rank, target_code, score FROM candidates ORDER BY 1, 2"
        ).fetchall()
    shown = queue.candidates
    assert [tuple(r) for r in shown[["source_code", "rank", "target_code", "score"]].values] == [
        r
        for r in stored
        if r[1] <= 2  # the run kept k=2
    ]
    assert shown["target_parent"].tolist() == [parents[t] for t in shown["target_code"]]
    assert shown["target_description"].tolist() == [texts[t] for t in shown["target_code"]]


def test_a_rejected_concept_comes_back_with_its_new_proposal(mapped):
    decide(mapped, "siteA", "siteB", "A3", "reject", reviewer="ana")
    assert "A3" not in review_queue(mapped, "siteA", "siteB").to_frame()["source_code"].tolist()
    map_sites(mapped, "siteA", "siteB", model="fake", k=2)
    queue = review_queue(mapped, "siteA", "siteB").to_frame().set_index("source_code")
    assert queue.loc["A3", "target_code"] == _mappings(mapped)["A3"][0]


def test_coverage_by_occurrences(b_onto_a, vocab_files):
    """Frequencies 10, 5, 7, 1: B1 accepted, B2 rejected (now unmapped), B3 and B4 undecided.
    Events, where the site has them, count instead (values A and M left out)."""
    ws = b_onto_a
    decide(ws, "siteB", "siteA", "B1", "accept", reviewer="ana")
    decide(ws, "siteB", "siteA", "B2", "reject", reviewer="ana")
    result = coverage(ws, "siteB", "siteA")
    table = result.to_frame().set_index("status")
    assert table["concepts"].to_dict() == {
        "approved": 1,
        "rejected": 1,
        "undecided": 2,
        "unmapped": 0,
    }
    assert table["occurrences"].tolist() == [10, 5, 8, 0]
    assert table["occurrence_share"].tolist() == pytest.approx([10 / 23, 5 / 23, 8 / 23, 0])
    assert result.message == "'siteB' onto 'siteA': 78.3% of occurrences mapped, 43.5% approved"
    events = pd.DataFrame(
        {
            "subject_id": ["p1", "p2", "p3", "p4", "p5", "p1", "p2"],
            "time": pd.NaT,
            "code": ["B1", "B1", "B1", "B1", "B1", "B2", "B3"],
            "value": ["P", "P", None, "A", "M", "P", "M"],
        }
    )
    add_site(ws, "siteE", vocab_files["b"], events=events)
    build_site_index(ws, "siteE", "fake")
    map_sites(ws, "siteE", "siteA", model="fake", k=3)
    queue = review_queue(ws, "siteE", "siteA", order="frequency").to_frame()
    assert queue["occurrences"].tolist()[:2] == [3, 1] and queue["source_code"].tolist()[:2] == [
        "B1",
        "B2",
    ]
    assert coverage(ws, "siteE", "siteA").to_frame()["occurrences"].tolist() == [0, 0, 4, 0]


def test_cli_review_and_coverage(runner, b_onto_a):
    args = ["--workspace", str(b_onto_a.root)]
    pair = ["--source", "siteB", "--target", "siteA"]
    out = runner.invoke(
        cli, [*args, "review", *pair, "--order", "code", "--candidates", "2", "--format", "csv"]
    )
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.output)))
    queue = review_queue(b_onto_a, "siteB", "siteA", order="code", top=2)
    texts = {"A1": "acute dyspnea", "A2": "reported fever", "A3": "dry cough",
             "A4": "sore throat", "A5": "muscle pain"}  # fmt: skip
    expected = [
        " | ".join(f"{c.rank}. {c.target_code} {texts[c.target_code]} ({c.score:.3f})"
                   for c in queue.candidates.itertuples() if c.source_code == code)
        for code in ("B1", "B2", "B3", "B4")
    ]  # fmt: skip
    assert [(r["order"], r["source_code"]) for r in rows] == [
        ("1", "B1"), ("2", "B2"), ("3", "B3"), ("4", "B4"),
    ]  # fmt: skip
    assert [r["candidates"] for r in rows] == expected
    table = runner.invoke(cli, [*args, "review", "--source", "siteB", "--target", "siteA"])
    assert table.output.splitlines()[-2:] == [
        "4 mappings await review (informative order)",
        "'siteB' onto 'siteA': 100.0% of occurrences mapped, 0.0% approved",
    ]
    cov = runner.invoke(cli, [*args, "coverage", "--source", "siteB", "--target", "siteA"])
    assert cov.exit_code == 0 and "undecided" in cov.output
    bad = runner.invoke(cli, [*args, "review", "--source", "siteB", "--target", "siteA",
                              "--order", "size"])  # fmt: skip
    assert bad.exit_code == 1 and "'size' is not one of 'informative', 'freq" in bad.output


def test_decide_many_is_all_or_nothing(mapped):
    from harmonize.mapping.review import decide_many

    before = snapshot(mapped)
    asked = [{"code": "A1", "decision": "accept"}, {"code": "A9", "decision": "accept"}]
    with pytest.raises(InputError, match="site 'siteA' has no concept 'A9'"):
        decide_many(mapped, "siteA", "siteB", asked, reviewer="ana")
    twice = [{"code": "A1", "decision": "accept"}, {"code": "A1", "decision": "reject"}]
    with pytest.raises(InputError, match="two decisions on 'A1' at once"):
        decide_many(mapped, "siteA", "siteB", twice, reviewer="ana")
    assert snapshot(mapped) == before
    made = decide_many(mapped, "siteA", "siteB", asked[:1] + [{"code": "A2", "decision": "reject"}])
    assert [m.decision for m in made] == ["accept", "reject"]
    assert "A2" not in _mappings(mapped) and _mappings(mapped)["A1"][2] == "manual:accept"


def _probe_order(codes):
    """The probe order recomputed independently: by the first 8 bytes of each code's
    BLAKE2b digest as a big-endian integer."""
    import hashlib

    key = {c: int.from_bytes(hashlib.blake2b(c.encode(), digest_size=8).digest(), "big")
           for c in codes}  # fmt: skip
    return sorted(codes, key=key.get)


def test_informative_order_makes_every_second_pick_a_probe():
    """Ten concepts by priority (c0 the highest, c9 the lowest), with the confidence of a
    reranker learned from decisions (ignored: the margin orders them). Their probe order is
    c2, c4, c7, c1, c3, c6, c0, c9, c8, c5: every 2nd pick is the first of it not taken (the
    8th c6, as c1 and c3 are), the others the most informative left."""
    from harmonize.mapping.queue import priority, sort_queue

    table = pd.DataFrame(
        {
            "source_code": [f"c{i}" for i in range(10)],
            "margin": np.arange(10) / 100,  # c0 the narrowest
            "confidence": np.linspace(0.9, 0.0, 10),  # learned: ignored
            "method": "minilm:best+learned",
            "occurrences": np.nan,
        }
    )
    probe = ["c2", "c4", "c7", "c1", "c3", "c6", "c0", "c9", "c8", "c5"]
    assert _probe_order(table["source_code"].tolist()) == probe
    table["priority"] = priority(table)
    ordered = sort_queue(table, "informative")["source_code"].tolist()
    assert ordered == ["c0", "c2", "c1", "c4", "c3", "c7", "c5", "c6", "c8", "c9"]
    known = table.assign(method="minilm:best+known")  # a --known confidence is read
    plain = sort_queue(known.assign(priority=priority(known)), "informative")
    assert plain["source_code"].tolist()[:4] == ["c9", "c2", "c8", "c4"]  # by 1 - confidence


def test_the_decided_lead_of_the_probe_order_is_found_again():
    """Forty concepts reviewed in the informative order, ten at a time, the order recomputed
    after each batch (as a person working through ``review`` does): the decided lead of the
    probe order holds every probe pick, and stops at the first concept nobody decided."""
    from harmonize.mapping.queue import decided_probe_prefix, probe_picks

    codes = [f"x{i:03d}" for i in range(200)]
    undecided = list(codes)  # in priority order: the list's order
    decided, probe_picked = [], []
    for _ in range(4):
        picks = probe_picks(undecided)[:10]
        probe_picked += [undecided[p] for i, p in enumerate(picks) if i % 2 == 1]
        decided += [undecided[p] for p in picks]
        undecided = [c for c in undecided if c not in set(decided)]
    rows = {c: i for i, c in enumerate(codes)}
    lead = decided_probe_prefix(codes, {rows[c] for c in decided}, set(range(200)))
    probe = _probe_order(codes)
    assert [codes[r] for r in lead] == probe[: len(lead)]
    assert set(probe_picked) <= {codes[r] for r in lead}
    assert probe[len(lead)] not in decided
    not_eligible = decided_probe_prefix(codes, set(), set())
    assert not_eligible == []
