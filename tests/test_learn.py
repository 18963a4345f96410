"""Learning from review: decisions become known pairs of the reranker; rejected pairs stay out."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from harmonize.cli import cli
from harmonize.core import sql
from harmonize.core.workspace import Workspace
from harmonize.mapping.gate import GATE_ERRORS, choose_weight
from harmonize.mapping.pipeline import map_sites
from harmonize.mapping.review import decide, decide_many
from tests.helpers import N_FAMILIES


def _chosen(result) -> dict[str, str]:
    return dict(zip(result.mappings["source_code"], result.mappings["target_code"], strict=True))


def _review_known_pairs(ws: Workspace, known_path) -> None:
    """A reviewer who records the known file's pairs: accepts the mapping where it is the known
    target, sets the known target where it is not."""
    chosen = _chosen(map_sites(ws, "local", "standard", model="lexical", k=3))
    asked = [
        {"code": code, "decision": "accept"}
        if chosen.get(code) == target
        else {"code": code, "decision": "set", "target_code": target}
        for code, target in pd.read_csv(known_path).itertuples(index=False)
    ]
    made = decide_many(ws, "local", "standard", asked, reviewer="ana")
    assert {m.decision for m in made} == {"accept", "set"}


def test_decisions_become_known_pairs(known_ws, tmp_path):
    """80 recorded decisions teach map what the same 80 pairs as --known teach it: the 20
    undecided concepts (plain retrieval gets none right) get the same targets and confidence."""
    ws, paths = known_ws
    by_file = Workspace(tmp_path / "copy")
    shutil.copytree(ws.root, by_file.root)
    _review_known_pairs(ws, paths["known"])
    learned = map_sites(ws, "local", "standard", model="lexical", k=3)
    assert learned.summary.startswith(
        f"mapped 100 of 100 'local' concepts onto 'standard' (model lexical, strategy best, "
        f"k=3, min-score none, zero-shot: hub-corrected ranking) in {learned.seconds:.1f}s; run "
        f"{learned.run_id}; against the previous mapping: 20 remapped, 0 new, 0 dropped, 80 "
        f"unchanged; learned from 80 decisions (80 accepted or set, 0 rejected); ranked by the "
        f"learned reranker fused with the zero-shot ranking (weight 0.75): out of fold it beat "
        f"the zero-shot ranking (estimated top-1 on the undecided "
    )
    known = map_sites(by_file, "local", "standard", model="lexical", k=3, known=paths["known"])
    undecided = [f"c{f}_4" for f in range(N_FAMILIES)]
    a = learned.mappings.set_index("source_code").loc[undecided]
    b = known.mappings.set_index("source_code").loc[undecided]
    assert a["target_code"].tolist() == [f"T{f}" for f in range(N_FAMILIES)]
    assert a["target_code"].tolist() == b["target_code"].tolist()
    assert a["confidence"].tolist() == b["confidence"].tolist()
    with ws.connect(read_only=True) as con:
        methods = dict(con.execute("SELECT source_code, method FROM mappings").fetchall())
    assert {methods[c] for c in undecided} == {"lexical:best+learned"}
    assert set(methods.values()) - {"lexical:best+learned"} == {"manual:accept", "manual:set"}
    # Without learning (map --no-learn) the same decisions are kept, the rest is plain retrieval.
    args = ["--workspace", str(ws.root), "map", "--source", "local", "--target", "standard"]
    out = CliRunner().invoke(cli, [*args, "--model", "lexical", "--k", "3", "--no-learn"])
    assert out.exit_code == 0 and out.output.splitlines()[-1].endswith("80 unchanged")
    with ws.connect(read_only=True) as con:
        plain = dict(con.execute("SELECT source_code, target_code FROM mappings").fetchall())
    assert {plain[c] for c in undecided} == {f"D{f}" for f in range(N_FAMILIES)}


def test_a_rejected_pair_is_never_proposed_again(known_ws):
    """Rejecting the learned (right) target of c0_4: the next map proposes another target, and
    the rejected one is not even among its candidates; a later set of it stands."""
    ws, paths = known_ws
    _review_known_pairs(ws, paths["known"])
    assert _chosen(map_sites(ws, "local", "standard", model="lexical", k=3))["c0_4"] == "T0"
    decide(ws, "local", "standard", "c0_4", "reject", reviewer="bo")
    for learn in (True, False):
        result = map_sites(ws, "local", "standard", model="lexical", k=3, learn=learn)
        assert _chosen(result)["c0_4"] not in ("T0", None)
        cands = _candidates(ws, "c0_4")
        assert "T0" not in cands and len(cands) == 3
        if learn:
            assert "; learned from 81 decisions (80 accepted or set, 1 rejected); ranked by " in (
                result.summary
            )
    decide(ws, "local", "standard", "c0_4", "set", target_code="T0", reviewer="bo")
    final = map_sites(ws, "local", "standard", model="lexical", k=3, learn=False)
    assert _chosen(final)["c0_4"] == "T0"
    with ws.connect(read_only=True) as con:
        standing = sql.run_internal(con, "pair_rejections", source="local", target="standard")
        assert standing.fetchall() == []


def _candidates(ws: Workspace, code: str) -> list[str]:
    with ws.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT target_code FROM candidates WHERE source_code = ? ORDER BY rank", [code]
        ).fetchall()
    return [t for (t,) in rows]


def _gate_case(
    decided: list[int], right_second: set[int], learned_flips: set[int], probes=None,
    errors: float = GATE_ERRORS,
):  # fmt: skip
    """40 concepts with margins 0.00-0.39 (four bins of 10, in row order), each with two
    candidates 2i, 2i+1 that the zero-shot search ranks in that order. The ``decided`` rows'
    right target is 2i+1 for the rows in ``right_second``, else 2i; the learned reranker (out
    of fold) ranks 2i+1 first for the rows in ``learned_flips``."""
    rows = range(40)
    zero = pd.DataFrame(
        [(i, 2 * i + r, r + 1) for i in rows for r in (0, 1)], columns=["source", "target", "rank"]
    )
    known = {i: [2 * i + (i in right_second)] for i in decided}
    out_of_fold = pd.DataFrame(
        [(i, 2 * i + (1 - r if i in learned_flips else r), r + 1) for i in known for r in (0, 1)],
        columns=["source", "target", "rank"],
    )
    margins = np.arange(40) / 100
    return choose_weight(zero, out_of_fold, known, margins, probes=probes, errors=errors)


EVEN_LOW = list(range(0, 30, 2))  # 5 decided in each of the first three bins


def test_the_gate_trusts_learning_that_clearly_helps():
    """The zero-shot choice is wrong on every decided concept, the learned one right. Bins of
    5 decided concepts each in margin order: rows 0-9, 10-19, 20-39, holding 5, 5 and 15 of the
    25 undecided: weights 0.2/5, 0.2/5, 0.6/5 per decided concept. Zero-shot 0, learned 1; 0.5
    breaks ties to the zero-shot ranking, so 0.75 is the smallest weight that gains, by 1 less
    GATE_ERRORS of its standard error sqrt(10 x 0.04^2 + 5 x 0.12^2)."""
    low = set(range(30))
    decision = _gate_case(EVEN_LOW, right_second=low, learned_flips=low)
    assert decision.weight == 0.75
    assert decision.estimated == {0.0: 0.0, 0.25: 0.0, 0.5: 0.0, 0.75: 1.0, 1.0: 1.0}
    assert decision.decided_top1 == decision.estimated
    assert decision.bound[1.0] == pytest.approx(
        1 - GATE_ERRORS * np.sqrt(10 * 0.04**2 + 5 * 0.12**2)
    )
    assert decision.note == (
        "; ranked by the learned reranker fused with the zero-shot ranking (weight 0.75): out "
        "of fold it beat the zero-shot ranking (estimated top-1 on the undecided 1.000 against "
        "0.000; 15 decided concepts, weighted for the review order)"
    )


def test_once_a_weight_clears_its_error_the_gate_takes_the_best_estimate():
    """40 concepts, three candidates 3i, 3i+1, 3i+2 ranked in that order by the zero-shot
    search; the even rows decided: four bins of 5 decided and 5 undecided, so each decided
    concept weighs 0.05. The learned reranker ranks (3i+1, 3i+2, 3i) on 2 rows whose right
    target is 3i+1 (fused at 0.5 already: 3i+1 scores 1/4 + 1/6 against 1/8 + 1/4), and swaps
    the first two on 9 more (a tie at 0.5, kept by the zero-shot ranking), right on 5 of them
    and wrong on 4; it agrees with the search on the other 9, where 3i is right. Zero-shot
    0.65. 0.5 gains 2 x 0.05 = 0.10, beyond its error sqrt(2) x 0.05 = 0.071; 0.75 gains
    0.15, within its error sqrt(11) x 0.05 = 0.166. Learning is shown to pay, so the gate
    takes the weight estimated best, 0.75 (0.80 against 0.75), not only among those that
    clear their own error."""
    decided = list(range(0, 40, 2))
    flip, swap_right, swap_wrong = decided[:2], decided[2:7], decided[7:11]
    zero = pd.DataFrame([(i, 3 * i + r, r + 1) for i in range(40) for r in range(3)],
                        columns=["source", "target", "rank"])  # fmt: skip
    right = {i: [3 * i + (i in flip or i in swap_right)] for i in decided}
    learned = {i: (1, 2, 0) if i in flip else (1, 0, 2) for i in flip + swap_right + swap_wrong}
    out_of_fold = pd.DataFrame(
        [(i, 3 * i + r, place + 1) for i in decided
         for place, r in enumerate(learned.get(i, (0, 1, 2)))],
        columns=["source", "target", "rank"],
    )  # fmt: skip
    decision = choose_weight(zero, out_of_fold, right, np.arange(40) / 100, errors=1.0)
    assert decision.estimated == pytest.approx(
        {0.0: 0.65, 0.25: 0.65, 0.5: 0.75, 0.75: 0.80, 1.0: 0.80}
    )
    assert decision.bound[0.5] == pytest.approx(0.10 - np.sqrt(2) * 0.05)
    assert decision.bound[0.75] == pytest.approx(0.15 - np.sqrt(11) * 0.05)
    assert decision.bound[0.75] < 0 < decision.bound[0.5]
    assert decision.weight == 0.75


def test_the_gate_keeps_the_zero_shot_ranking_when_learning_clearly_hurts():
    """The zero-shot choice is right on every decided concept and the learned one changes
    every choice."""
    decision = _gate_case(EVEN_LOW, right_second=set(), learned_flips=set(range(40)))
    assert decision.weight == 0.0
    assert decision.estimated == {0.0: 1.0, 0.25: 1.0, 0.5: 1.0, 0.75: 0.0, 1.0: 0.0}
    assert decision.note == (
        "; kept the zero-shot ranking: learning did not beat it out of fold (estimated top-1 "
        "on the undecided 1.000, by the learned reranker 0.000; 15 decided concepts, weighted "
        "for the review order)"
    )


def test_the_gate_corrects_for_hard_first_decisions():
    """Ten hard concepts decided first (rows 0-9, the narrowest margins: zero-shot wrong,
    learning right) and five spread picks (rows 20, 25, 30, 35, 39: zero-shot right, learning
    wrong). Out of fold on the decided learning wins, 10/15 against 5/15. The bins of 5 decided
    (rows 0-4, 5-19, 20-39) hold 0, 10 and 15 of the undecided, so the estimate is
    0.4 x 1 + 0.6 x 0 = 0.4 for learning against 0.4 x 0 + 0.6 x 1 = 0.6 for zero-shot."""
    decided = [*range(10), 20, 25, 30, 35, 39]
    decision = _gate_case(decided, right_second=set(range(10)), learned_flips=set(decided))
    assert decision.decided_top1[1.0] == pytest.approx(10 / 15)
    assert decision.decided_top1[0.0] == pytest.approx(5 / 15)
    assert decision.estimated[1.0] == pytest.approx(0.4)
    assert decision.estimated[0.0] == pytest.approx(0.6)
    assert decision.weight == 0.0


def test_the_gate_judges_on_the_decided_probes_when_there_are_enough():
    """Rows 0-29 decided, learning changing every choice. By the margin bins only rows 25-29
    count (the last bin holds every undecided row, 30-39), and there learning is right: it
    would fuse. The review order's probe picks, the first GATE_MIN_PROBES rows, say the
    zero-shot choice is right and learning wrong; with them the gate keeps the zero-shot
    ranking. With one fewer they are too few and the bins decide again."""
    from harmonize.mapping.gate import GATE_MIN_PROBES

    decided = list(range(30))
    right = set(range(20, 30))
    by_bins = _gate_case(decided, right_second=right, learned_flips=set(decided))
    assert by_bins.weight == 0.75 and not by_bins.probes
    assert by_bins.estimated[1.0] == 1.0 and by_bins.estimated[0.0] == 0.0
    probes = list(range(GATE_MIN_PROBES))
    on_probes = _gate_case(decided, right, set(decided), probes=probes)
    assert on_probes.weight == 0.0 and on_probes.probes
    assert on_probes.n_decided == GATE_MIN_PROBES
    assert on_probes.estimated[0.0] == pytest.approx(1.0)
    assert on_probes.estimated[1.0] == pytest.approx(0.0)
    assert on_probes.note.endswith(
        "(estimated top-1 on the undecided 1.000, by the learned reranker 0.000; "
        f"{GATE_MIN_PROBES} decided concepts that the review order drew at random)"
    )
    too_few = _gate_case(decided, right, set(decided), probes=probes[:-1])
    assert too_few.weight == 0.75 and not too_few.probes


@pytest.mark.parametrize(
    ("fixed", "errors", "learns"),
    [({0, 2}, GATE_ERRORS, True), ({0, 2}, 1.0, False), ({0, 2, 4}, GATE_ERRORS, False)],
)
def test_the_gate_wants_a_gain_beyond_half_its_standard_error(fixed, errors, learns):
    """The learned reranker swaps the two candidates of the first bin's decided concepts 0, 2,
    4 (and 6, 8 when ``fixed`` has three), right on ``fixed``, wrong on the others; each weighs
    0.2/5 = 0.04. Fixed 2, broken 1: a gain of 0.04 against a standard error of sqrt(3) x 0.04
    = 0.069, beyond half of it (the default, GATE_ERRORS), not beyond all of it. Fixed 3,
    broken 2: 0.04 within half of sqrt(5) x 0.04 = 0.089."""
    flips = {0, 2, 4} if len(fixed) == 2 else {0, 2, 4, 6, 8}
    decision = _gate_case(EVEN_LOW, right_second=fixed, learned_flips=flips, errors=errors)
    assert decision.estimated[1.0] - decision.estimated[0.0] == pytest.approx(0.04)
    error = np.sqrt(len(flips)) * 0.04
    assert decision.bound[1.0] == pytest.approx(0.04 - errors * error)
    assert decision.weight == (0.75 if learns else 0.0)
    if not learns:
        assert "gains too small for their standard error;" in decision.note


@pytest.mark.parametrize("head", [True, False])
def test_map_judges_learning_on_the_probe_order_s_decided_lead(known_ws, head):
    """30 concepts decided from their right targets: the first 30 of the probe order (as
    review's probe picks decide them) or the last 30 (with fewer, too few of the targets are
    among the candidates to learn from). Only the first are a random sample the
    gate can find again, and map's summary says which it judged on."""
    from harmonize.mapping.queue import probe_order

    ws, paths = known_ws
    gold = dict(pd.read_csv(paths["known"]).itertuples(index=False))
    gold.update({f"c{f}_4": f"T{f}" for f in range(N_FAMILIES)})  # the undecided's targets
    codes = sorted(pd.read_csv(paths["local"])["code"])
    assert set(codes) == set(gold)
    order = [codes[i] for i in probe_order(codes)]
    picked = order[:30] if head else order[-30:]
    asked = [{"code": c, "decision": "set", "target_code": gold[c]} for c in picked]
    decide_many(ws, "local", "standard", asked, reviewer="ana")
    summary = map_sites(ws, "local", "standard", model="lexical", k=3).summary
    assert "learned from 30 decisions (30 accepted or set, 0 rejected)" in summary
    judged = "30 decided concepts that the review order drew at random)"
    assert (judged in summary) == head
    # The probes also set how far the learned classifier trusts the search's first candidate.
    prior = re.search(r"first candidate from (\d+) decided concepts that the review "
                      r"order drew at random \(right for (\d+)%\)", summary)  # fmt: skip
    assert (prior is not None) == head
    if head:
        assert 10 <= int(prior[1]) <= 30
    assert ("decided concepts, weighted for the review order)" in summary) == (not head)
