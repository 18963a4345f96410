"""fine-tune: the pairs it trains on, what it measures (recomputed by brute force), its output
folder working as --model, and its refusals leaving everything as it was."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from harmonize.core.errors import InputError
from harmonize.core.workspace import Workspace
from harmonize.embed.registry import minilm_path
from harmonize.index.faiss_index import build_faiss
from harmonize.mapping.finetune import PROVENANCE_FILE, fine_tune
from harmonize.mapping.finetune_pairs import (
    DistinctTextBatches,
    mine_hard_negatives,
    split_holdout,
    training_pairs,
)
from tests.helpers import run, snapshot

SOURCE = [
    ("S1", "shortness of breath"),
    ("S2", "high temperature"),
    ("S3", "runny nose"),
    ("S4", "aching muscles"),
    ("S5", "throat pain"),
    ("S6", "feeling tired"),
    ("S7", "head pain"),
    ("S8", "coughing up blood"),
    ("S9", "loss of smell"),
    ("S10", "chills and shivering"),
    ("S11", "throwing up"),
    ("S12", "loose stools"),
]
TARGET = [
    ("T1", "dyspnea"),
    ("T2", "pyrexia"),
    ("T3", "rhinorrhea"),
    ("T4", "myalgia"),
    ("T5", "pharyngitis"),
    ("T6", "fatigue"),
    ("T7", "cephalgia"),
    ("T8", "hemoptysis"),
    ("T9", "anosmia"),
    ("T10", "rigors"),
    ("T11", "emesis"),
    ("T12", "diarrhea"),
]


def test_training_pairs_skip_repeats_and_unlisted_rows():
    known = {0: [0, 1], 1: [1], 2: [0]}
    pairs = training_pairs(known, ["a", "a", "c"], ["x", "y"], rows=[0, 1])
    assert pairs == [("a", "x"), ("a", "y")]  # row 1 repeats ("a", "y"); row 2 is not listed


def test_hard_negatives_are_the_nearest_targets_not_known_for_the_source():
    # Source "a" knows targets x and y (its two nearest); source "b" knows z, which is not
    # among its nearest, so its nearest target of all is its hard negative.
    targets = ["x", "y", "z", "w"]
    tv = np.array([[1.0, 0.0], [0.98, 0.2], [0.0, 1.0], [0.8, 0.6]], dtype=np.float32)
    sv = np.array([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    pairs = [("a", "x"), ("a", "y"), ("b", "z")]
    assert mine_hard_negatives(pairs, sv, build_faiss(tv), targets) == ["w", "w", "w"]
    pairs = [("a", "x"), ("a", "w"), ("b", "w")]
    assert mine_hard_negatives(pairs, sv, build_faiss(tv), targets) == ["y", "y", "z"]


def test_batches_never_repeat_a_text_and_use_every_example():
    """Ten pairs share one target: no batch can hold two of them, and none is lost (the
    library's NoDuplicatesDataLoader spins forever here)."""
    examples = [(f"s{i}", "same target") for i in range(10)] + [("a", "b"), ("c", "d")]
    batches = DistinctTextBatches(examples, 4, seed=1).batches()
    assert sorted(e for batch in batches for e in batch) == sorted(examples)
    for batch in batches:
        texts = [t for e in batch for t in e]
        assert len(set(texts)) == len(texts) and len(batch) <= 4
    assert len(batches) == 10


def test_split_holdout_is_seeded_and_disjoint():
    train, held = split_holdout(range(20), 0.25, random_state=3)
    assert len(held) == 5 and sorted(train + held) == list(range(20))
    assert (train, held) == split_holdout(range(20), 0.25, random_state=3)
    assert split_holdout(range(20), 0.0) == (list(range(20)), [])


@pytest.fixture
def sites(tmp_path, runner: CliRunner):
    ws = Workspace(tmp_path / "ws")
    for name, rows in (("src", SOURCE), ("tgt", TARGET)):
        path = tmp_path / f"{name}.csv"
        path.write_text("code,description\n" + "".join(f"{c},{d}\n" for c, d in rows))
        assert run(runner, ws, "add-site", name, "--vocab", str(path)).exit_code == 0
    known = tmp_path / "known.csv"
    known.write_text("source_code,target_code\n" + "".join(f"S{i},T{i}\n" for i in range(1, 13)))
    return ws, known


def _fine_tune(runner, ws, known, out, *args):
    common = ["--source", "src", "--target", "tgt", "--known", str(known), "-o", str(out)]
    return run(runner, ws, "fine-tune", *common, *args)


def _encode(path, texts):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    return model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)


def _brute_top1(path, rows):
    queries = _encode(path, [SOURCE[r][1] for r in rows])
    targets = _encode(path, [d for _, d in TARGET])
    best = np.argmax(queries @ targets.T, axis=1)
    return float(np.mean([b == r for b, r in zip(best, rows, strict=True)]))


@pytest.mark.model
def test_fine_tune_reports_held_out_top1_as_brute_force_recomputes_it(sites, runner, tmp_path):
    ws, known = sites
    out = tmp_path / "ft"
    result = _fine_tune(runner, ws, known, out, "--holdout", "0.5", "--epochs", "2")
    assert result.exit_code == 0, result.output
    assert "fine-tuned minilm on 6 known pairs" in result.output
    assert f"use it with: --model {out}" in result.output
    meta = json.loads((out / PROVENANCE_FILE).read_text())
    assert (meta["pairs"], meta["held_out_concepts"], meta["epochs"]) == (6, 6, 2)
    assert meta["hard_negatives"] is True and "with hard negatives" in result.output
    _, held = split_holdout(range(12), 0.5)  # source rows = known rows, in file order
    assert meta["held_out_top1_base"] == pytest.approx(_brute_top1(minilm_path(), held))
    assert meta["held_out_top1_fine_tuned"] == pytest.approx(_brute_top1(out, held))
    assert f"{meta['held_out_top1_base']:.1%} with minilm" in result.output
    # The folder is an ordinary --model: index both sites with it and map.
    for site in ("src", "tgt"):
        assert run(runner, ws, "build-index", "--site", site, "--model", str(out)).exit_code == 0
    mapped = run(runner, ws, "map", "--source", "src", "--target", "tgt", "--model", str(out))
    assert mapped.exit_code == 0, mapped.output
    assert "mapped 12 of 12" in mapped.output
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ft")] == []


@pytest.mark.model
def test_training_pulls_the_known_pairs_together(sites, runner, tmp_path):
    """After training on all 12 pairs, each pair's cosine margin over the other targets grows."""
    ws, known = sites
    out = tmp_path / "ft"
    result = _fine_tune(
        runner, ws, known, out, "--holdout", "0", "--epochs", "3", "--no-hard-negatives"
    )
    assert result.exit_code == 0, result.output
    assert "held-out top-1" not in result.output  # nothing held out, nothing to report
    assert "hard negatives" not in result.output

    def margin(path):
        sims = _encode(path, [d for _, d in SOURCE]) @ _encode(path, [d for _, d in TARGET]).T
        off = sims[~np.eye(12, dtype=bool)].reshape(12, 11)
        return float(np.mean(np.diag(sims) - off.mean(axis=1)))

    assert margin(out) > margin(minilm_path()) + 0.01


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "0"], "Error: --epochs must be at least 1, got 0"),
        (["--batch-size", "1"], "Error: --batch-size must be at least 2, got 1"),
        (["--holdout", "0.7"], "Error: --holdout must be between 0 and 0.5, got 0.7"),
        (["--max-pairs", "0"], "Error: --max-pairs must be at least 1, got 0"),
        (["--threads", "0"], "Error: --threads must be at least 1, got 0"),
        (["--model", "lexical"], "Error: fine-tune trains a sentence-transformers model"),
        (["--source", "nosuch"], "Error: unknown site 'nosuch'"),
    ],
)
def test_bad_settings_fail_cleanly(sites, runner, tmp_path, args, message):
    ws, known = sites
    before = snapshot(ws)
    base = ["--source", "src", "--target", "tgt", "--known", str(known), "-o", str(tmp_path / "o")]
    result = run(runner, ws, "fine-tune", *base, *args)
    assert result.exit_code == 1
    assert message in result.output
    assert snapshot(ws) == before and not (tmp_path / "o").exists()


def test_library_errors_name_the_parameters_not_the_flags(sites, tmp_path):
    ws, known = sites
    with pytest.raises(InputError) as err:
        fine_tune(ws, "src", "tgt", known, tmp_path / "o", batch_size=1)
    assert str(err.value) == "batch_size must be at least 2, got 1"
    assert err.value.params == ("batch_size",)
    few = tmp_path / "few.csv"
    few.write_text("source_code,target_code\nS1,T1\n")
    with pytest.raises(InputError) as err:
        fine_tune(ws, "src", "tgt", few, tmp_path / "o")
    assert str(err.value).startswith(f"known: only 1 source concepts of {few} are in site 'src'")
    assert not (tmp_path / "o").exists()


def test_existing_output_and_too_few_pairs_are_refused(sites, runner, tmp_path):
    ws, known = sites
    before = snapshot(ws)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    common = ["--source", "src", "--target", "tgt"]
    result = run(runner, ws, "fine-tune", *common, "--known", str(known), "-o", str(taken))
    assert result.exit_code == 1 and "already exists" in result.output
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    few = tmp_path / "few.csv"
    few.write_text("source_code,target_code\nS1,T1\nS2,T2\nS3,NOPE\n")
    result = run(runner, ws, "fine-tune", *common, "--known", str(few), "-o", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert "only 2 source concepts" in result.output and "at least 10 are needed" in result.output
    assert snapshot(ws) == before and not (tmp_path / "o").exists()


def test_a_failure_while_training_leaves_no_folder(sites, runner, tmp_path, monkeypatch):
    import harmonize.mapping.finetune as ft

    def broken(base, pairs, folder, *args):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("out of memory")

    monkeypatch.setattr(ft, "_train", broken)
    ws, known = sites
    out = tmp_path / "ft"
    result = _fine_tune(runner, ws, known, out)
    assert isinstance(result.exception, RuntimeError)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
