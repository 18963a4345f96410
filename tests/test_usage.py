"""Usage signals: occurrence matrices, prevalence gaps and co-occurrence correlations checked
against numpy by hand, and map --known --usage wired through the CLI."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from harmonize.mapping.rerank.cooccurrence import Usage, occurrence_matrix
from tests.helpers import run, snapshot


def test_absent_and_missing_values_are_not_occurrences(workspace, tmp_path, runner):
    from harmonize.core import sql

    vocab = tmp_path / "v.csv"
    vocab.write_text("code,description\nX,x\nY,y\n")
    events = tmp_path / "e.csv"
    events.write_text("subject_id,code,value\np1,X,P\np1,Y,A\np2,Y,M\np2,X,\np3,Y,7.5\n")
    added = run(runner, workspace, "add-site", "s", "--vocab", str(vocab), "--events", str(events))
    assert added.exit_code == 0, added.output
    with workspace.connect(read_only=True) as con:
        occ = sql.run_internal(con, "site_occurrences", site="s").df()
    assert sorted(zip(occ["subject_id"], occ["code"], strict=True)) == [
        ("p1", "X"),
        ("p2", "X"),
        ("p3", "Y"),
    ]


def test_features_match_a_hand_computation():
    # 5 subjects at each site. Source codes a0..a3, target codes b0..b3; known pairs
    # a0->b0, a1->b1, a2->b2 are the anchors; query a3 is compared with every target.
    src = np.array(
        [[1, 0, 1, 1], [1, 1, 0, 1], [0, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 1]], dtype=float
    )
    tgt = np.array(
        [[1, 1, 0, 0], [1, 0, 1, 1], [0, 1, 1, 1], [1, 1, 1, 0], [0, 0, 1, 0]], dtype=float
    )
    usage = Usage(sp.csr_matrix(src), sp.csr_matrix(tgt))
    known = {0: [0], 1: [1], 2: [2]}
    got = usage.features(np.array([3, 3, 3, 3]), np.array([0, 1, 2, 3]), known)
    p_s = src[:, 3].mean()
    for t in range(4):
        p_t = tgt[:, t].mean()
        assert got[t, 0] == pytest.approx(abs(math.log(p_s) - math.log(p_t)))
        prof_s = [src[src[:, 3] == 1, a].mean() for a in range(3)]
        prof_t = [tgt[tgt[:, t] == 1, a].mean() for a in range(3)]
        assert got[t, 1] == pytest.approx(np.corrcoef(prof_s, prof_t)[0, 1])


def test_codes_that_never_occur_have_no_usage_features():
    usage = Usage(sp.csr_matrix(np.array([[1, 0], [1, 1]])), sp.csr_matrix(np.eye(2)))
    got = usage.features(np.array([0, 1]), np.array([0, 0]), {0: [0], 1: [1]})
    assert got[0, 0] == pytest.approx(abs(math.log(1.0) - math.log(0.5)))
    # Source code a1 never occurs: no prevalence gap; one anchor is too few for a correlation.
    empty = Usage(sp.csr_matrix(np.array([[1, 0]])), sp.csr_matrix(np.array([[1, 0]])))
    assert np.isnan(empty.features(np.array([1]), np.array([0]), {0: [0]})).all()


def test_occurrences_ignore_repeats_and_unknown_codes():
    events = pd.DataFrame({"subject_id": ["p", "p", "q", "q"], "code": ["a", "a", "zz", "b"]})
    matrix = occurrence_matrix(events, np.array(["a", "b"], dtype=object))
    assert matrix.toarray().tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_usage_needs_known_pairs_and_events(runner, indexed, tmp_path):
    known = tmp_path / "k.csv"
    known.write_text("source_code,target_code\nB1,A2\n")
    before = snapshot(indexed)
    args = ["map", "--source", "siteB", "--target", "siteA", "--model", "fake", "--usage"]
    no_known = run(runner, indexed, *args)
    assert no_known.exit_code == 1
    assert no_known.output == (
        "Error: --usage compares usage inside the --known reranker: add --known FILE\n"
    )
    no_events = run(runner, indexed, *args, "--known", str(known))
    assert no_events.exit_code == 1
    assert no_events.output.startswith(
        "Error: --usage needs events at both sites; site 'siteB' has none"
    )
    assert snapshot(indexed) == before


@pytest.mark.model
def test_map_known_with_usage_on_the_demo(tmp_path, runner, demo_run):
    """The demo's sites both have patients: --usage reaches the reranker and says so."""
    import shutil

    from harmonize.core.workspace import Workspace
    from harmonize.datasets.demo import TARGET_TRUTH

    ws = Workspace(tmp_path / "ws")  # a copy of the session's demo (100 patients a site)
    shutil.copytree(demo_run[0].root, ws.root)
    truth = pd.read_csv(TARGET_TRUTH, dtype=str).iloc[::2]
    known = tmp_path / "known.csv"
    truth.rename(columns={"target_code": "source_code", "source_code": "target_code"})[
        ["source_code", "target_code"]
    ].to_csv(known, index=False)
    args = ["map", "--source", "target", "--target", "source", "--known", str(known)]
    result = run(runner, ws, *args, "--usage")
    assert result.exit_code == 0, result.output
    assert "the rest were reranked by a reranker learned from them (with both sites' usage" in (
        result.output
    )
    plain = run(runner, ws, *args)
    assert "usage" not in plain.output.splitlines()[-1]
