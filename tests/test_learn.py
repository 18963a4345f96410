"""Learning from review: decisions become known pairs of the reranker; rejected pairs stay out."""

from __future__ import annotations

import shutil

import pandas as pd
from click.testing import CliRunner

from harmonize.cli import cli
from harmonize.core import sql
from harmonize.core.workspace import Workspace
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
    assert learned.summary == (
        f"mapped 100 of 100 'local' concepts onto 'standard' (model lexical, strategy best, "
        f"k=3, min-score none) in {learned.seconds:.1f}s; run {learned.run_id}; against the "
        f"previous mapping: 20 remapped, 0 new, 0 dropped, 80 unchanged; learned from 80 "
        f"decisions (80 accepted or set, 0 rejected)"
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
            assert result.summary.endswith(
                "; learned from 81 decisions (80 accepted or set, 1 rejected)"
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
