"""The demo world: vocabularies, truth and sampled events agree with each other, and the demo
reports metrics that match the stored mappings."""

from __future__ import annotations

import pandas as pd
import pytest

from harmonize.datasets.demo import SOURCE_VOCAB, TARGET_VOCAB, demo_world, run_demo
from harmonize.sites.vocab import read_vocab
from tests.helpers import reference_metrics


def test_truth_refers_to_both_vocabularies():
    source = set(read_vocab(SOURCE_VOCAB)["code"])
    target = set(read_vocab(TARGET_VOCAB)["code"])
    truth = demo_world(n_patients=10)["truth"]
    assert set(truth["source_code"]) == source  # every source concept has a counterpart
    assert set(truth["target_code"]) <= target
    assert target - set(truth["target_code"]) == {"SX-137", "EX-218", "SX-138", "EX-219"}
    per_target = truth.groupby("target_code").size()
    per_source = truth.groupby("source_code").size()
    assert sorted(per_target[per_target > 1].index) == ["LAB-310", "SX-116"]  # merged
    assert sorted(per_source[per_source > 1].index) == ["C0000737", "C0015672"]  # split


def test_events_use_each_sites_codes_and_keep_the_findings():
    """Target events are source findings translated: a merged target code is present exactly
    when either of its source concepts is; the sample is seeded."""
    world = demo_world(n_patients=300, random_state=7)
    assert world["source_events"].equals(
        demo_world(n_patients=300, random_state=7)["source_events"]
    )
    assert set(world["source_events"]["code"]) <= set(read_vocab(SOURCE_VOCAB)["code"])
    assert set(world["target_events"]["code"]) <= set(read_vocab(TARGET_VOCAB)["code"])
    for frame in (world["source_events"], world["target_events"]):
        assert frame.groupby("subject_id").size().nunique() == 1  # one row per finding each
    labels = world["target_labels"]
    assert set(labels["value"]) == {"I", "R", "P", "M"} and len(labels) == 300


def test_run_demo_metrics_match_the_store(workspace):
    messages: list[str] = []
    result = run_demo(workspace, n_patients=50, models=("lexical",), echo=messages.append)
    assert messages[0] == f"Workspace: {workspace.root}"
    truth = demo_world(n_patients=10)["truth"]
    gold = pd.DataFrame({"source_code": truth["target_code"], "target_code": truth["source_code"]})
    with workspace.connect(read_only=True) as con:
        cands = con.execute("SELECT source_code, target_code, rank FROM candidates").df()
        maps = con.execute("SELECT source_code, target_code FROM mappings").df()
        n_events = con.execute("SELECT count(*) FROM events WHERE site = 'target'").fetchone()[0]
    # Recomputed with plain loops, not with the mapping_metrics the demo itself uses.
    want = reference_metrics(cands, gold, maps, ks=(1, 5))
    assert result.metrics["lexical"] == pytest.approx(want, rel=1e-12)
    assert result.metrics["lexical"]["n"] == 92
    assert len(result.recoded) == n_events  # recoding drops no event
    assert result.recoded["mapped_code"].notna().all()


@pytest.mark.model
def test_demo_command_end_to_end(demo_run):
    _, output = demo_run  # harmonize demo --patients 100, run once per session (conftest)
    lines = output.splitlines()
    table = lines[
        lines.index("Mapping accuracy, target -> source, against the demo's true mapping:") + 3 :
    ][:2]
    scores = {line.split()[0]: [float(x) for x in line.split()[2:]] for line in table}
    assert set(scores) == {"lexical", "minilm"}
    assert scores["minilm"][1] >= 0.9  # top-5
    assert scores["minilm"][0] > scores["lexical"][0]  # top-1: embeddings beat spelling
    assert "Try next:" in lines
