"""Transfer evaluation: the metrics, the sampling, the configuration checks, and a full run on a
tiny two-site world (stored rows, report, plot, CLI)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from harmonize.core.errors import InputError
from harmonize.core.render import render
from harmonize.core.workspace import Workspace
from harmonize.index.site_index import build_site_index
from harmonize.mapping.pipeline import map_sites
from harmonize.sites.patients import LabelSpec, stratified_split
from harmonize.sites.registry import add_site
from harmonize.transfer.experiment import (
    SCENARIOS,
    EvalConfig,
    run_evaluation,
    stratified_sample,
    summarize,
)
from harmonize.transfer.metrics import binary_metrics
from tests.helpers import run, snapshot

FAST = {"epochs": 2, "steps_per_epoch": 5, "bootstrap": 20}
# conftest's two vocabularies (importing conftest again would re-register the fake encoder),
# siteB with a concept siteA lacks.
SITE_A = (
    "code,description\nA1,acute dyspnea\nA2,reported fever\nA3,dry cough\nA4,sore throat\n"
    "A5,muscle pain\n"
)
SITE_B = (
    "code,description\nB1,fever reported\nB2,cough dry\nB3,dyspnea acute\nB4,throat sore\n"
    "B5,skin rash\n"
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- binary_metrics ------------------------------------------------------------------------


def test_binary_metrics_hand_computed():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    m = binary_metrics(y, p, n_boot=0)
    # AUROC: 3 of the 4 (positive, negative) pairs are ordered right.
    assert m["auroc"] == 0.75
    # AUPRC (average precision): recall 0.5 at precision 1 (0.9), recall 1 at 2/3 (0.4).
    assert m["auprc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # Threshold 0.5: 0.1 -> 0 right, 0.6 -> 1 wrong, 0.4 -> 0 wrong, 0.9 -> 1 right.
    assert m["accuracy"] == 0.5
    assert np.isnan(m["auroc_low"]) and np.isnan(m["auroc_high"])


def test_binary_metrics_threshold_is_inclusive():
    m = binary_metrics(np.array([0, 1, 1]), np.array([0.2, 0.5, 0.7]), n_boot=0)
    assert m["accuracy"] == 1.0 and m["auroc"] == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.random(200) * 0.7, 0, 1)
    m = binary_metrics(y, p, n_boot=0)
    assert m["auroc"] == roc_auc_score(y, p)
    assert m["auprc"] == average_precision_score(y, p)
    assert m["accuracy"] == np.mean((p >= 0.5).astype(int) == y)


def test_bootstrap_interval_is_seeded_and_contains_the_estimate():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 120)
    p = np.clip(0.25 * y + rng.random(120) * 0.75, 0, 1)
    m = binary_metrics(y, p, n_boot=100, random_state=7)
    assert m["auroc_low"] < m["auroc"] < m["auroc_high"]
    assert m["auroc_low"] > 0.5 and m["auroc_high"] < 1.0
    assert binary_metrics(y, p, n_boot=100, random_state=7) == m
    other = binary_metrics(y, p, n_boot=100, random_state=8)
    assert (other["auroc_low"], other["auroc_high"]) != (m["auroc_low"], m["auroc_high"])
    assert other["auroc"] == m["auroc"]


def test_bootstrap_of_a_perfect_ranking_is_one():
    y = np.array([0, 1] * 10)
    m = binary_metrics(y, y * 0.8 + 0.1, n_boot=50)
    assert (m["auroc_low"], m["auroc"], m["auroc_high"]) == (1.0, 1.0, 1.0)


# --- stratified_sample ---------------------------------------------------------------------


def test_stratified_sample_keeps_the_class_balance():
    y = np.array([1] * 30 + [0] * 70)
    idx = stratified_sample(y, 10, np.random.default_rng(0))
    assert len(idx) == len(set(idx)) == 10
    assert list(idx) == sorted(idx)
    assert (y[idx] == 1).sum() == 3


@pytest.mark.parametrize(
    ("n_pos", "n_neg", "size"), [(1, 99, 5), (99, 1, 5), (1, 1, 2), (50, 50, 2)]
)
def test_stratified_sample_keeps_both_classes(n_pos, n_neg, size):
    y = np.array([1] * n_pos + [0] * n_neg)
    idx = stratified_sample(y, size, np.random.default_rng(3))
    assert len(idx) == len(set(idx)) == size
    assert set(y[idx]) == {0, 1}


def test_stratified_sample_is_seeded():
    y = np.array([1, 0, 0] * 20)
    a = stratified_sample(y, 12, np.random.default_rng(5))
    assert np.array_equal(a, stratified_sample(y, 12, np.random.default_rng(5)))
    assert not np.array_equal(a, stratified_sample(y, 12, np.random.default_rng(6)))


# --- EvalConfig.check ----------------------------------------------------------------------

ONE_HOT_NATIVE = (
    "one-hot features cannot transfer here: only 0 of the target's 10 concept-state texts "
    "occur at the source (reading 'native'). Use --reading mapped (or oracle --gold FILE), an "
    "embedding, or only --scenario local."
)
# The library names the parameters; the CLI renders them as its flags (above).
ONE_HOT_NATIVE_LIBRARY = (
    ONE_HOT_NATIVE.replace("--reading", "reading")
    .replace("--gold", "gold")
    .replace("--scenario", "scenarios")
)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"scenarios": ("local", "transfer")},
            "unknown scenario 'transfer' for model cnn: use local, direct, finetune-head, "
            "finetune-all, pooled",
        ),
        (
            {"model": "auto", "scenarios": ("prior", "finetune-all")},
            "unknown scenario 'finetune-all' for model auto: use local, local-cv, direct, prior, "
            "stacked, stacked-nb, nb-local, nb-prior, nb-eb, ensemble",
        ),
        ({"model": "auto", "tie": 1.0}, "tie must be in [0, 1), got 1.0"),
        (
            {"model": "auto", "inner_folds": 1},
            "inner_folds must be at least 2 and inner_repeats at least 1",
        ),
        ({"reading": "raw"}, "unknown reading 'raw': use native, mapped, oracle"),
        ({"model": "svm"}, "unknown model 'svm': use cnn, logreg or auto"),
        (
            {"model": "logreg", "reading": "mapped", "scenarios": ("local", "finetune-head")},
            "logreg has no layers to fine-tune: use model cnn for finetune-*",
        ),
        (
            {"model": "logreg", "scenarios": ("finetune-all",)},
            "logreg has no layers to fine-tune: use model cnn for finetune-*",
        ),
        ({"seeds": 0}, "seeds, epochs and steps_per_epoch must be at least 1"),
        ({"epochs": 0}, "seeds, epochs and steps_per_epoch must be at least 1"),
        ({"steps_per_epoch": 0}, "seeds, epochs and steps_per_epoch must be at least 1"),
        (
            {"target_sizes": (10, 1)},
            "target_sizes must be at least 2 (both classes are needed)",
        ),
    ],
)
def test_config_check_errors(kwargs, message):
    with pytest.raises(InputError) as info:
        EvalConfig("s", "t", **kwargs).check()
    assert str(info.value) == message


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"embedding": "onehot", "scenarios": ("local",)},
        {"model": "logreg", "scenarios": ("local",)},
        {"model": "logreg", "reading": "mapped", "scenarios": ("local", "direct", "pooled")},
        {"embedding": "onehot", "reading": "oracle", "scenarios": SCENARIOS},
    ],
)
def test_config_check_accepts(kwargs):
    EvalConfig("s", "t", **kwargs).check()


# --- a tiny two-site world -----------------------------------------------------------------


def sample_site(codes: list[str], n: int, prefix: str, seed: int):
    """Patients whose first two codes (fever, cough) are likelier present with influenza."""
    rng = np.random.default_rng(seed)
    y = np.array([1, 0] * (n // 2))
    subjects = [f"{prefix}{i:03d}" for i in range(n)]
    rows = []
    for subject, positive in zip(subjects, y, strict=True):
        for j, code in enumerate(codes):
            p_present = (0.85 if positive else 0.15) if j < 2 else 0.5
            rows.append((subject, code, "P" if rng.random() < p_present else "A"))
    events = pd.DataFrame(rows, columns=["subject_id", "code", "value"])
    events.insert(1, "time", pd.Series(pd.NaT, index=events.index, dtype="datetime64[us]"))
    labels = pd.DataFrame(
        {"subject_id": subjects, "label": "diagnosis", "value": np.where(y == 1, "I", "R")}
    )
    return events, labels


def build_world(root) -> Workspace:
    """siteA (source, 40 patients, 30 train) and siteB (target, 40 patients, 20 train)."""
    ws = Workspace(root / "ws")
    root.mkdir(parents=True, exist_ok=True)
    for site, text, codes, fraction, seed in (
        ("siteA", SITE_A, ["A2", "A3", "A1", "A4", "A5"], 0.25, 0),
        ("siteB", SITE_B, ["B1", "B2", "B3", "B4", "B5"], 0.5, 1),
    ):
        vocab = root / f"{site}.csv"
        vocab.write_text(text, encoding="utf-8")
        events, labels = sample_site(codes, 40, site[-1], seed)
        labels = labels.assign(split=stratified_split(labels, "I", fraction, seed))
        add_site(ws, site, vocab, events=events, labels=labels, task=LabelSpec("diagnosis", "I"))
    return ws


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def evaluated(world):
    config = EvalConfig("siteA", "siteB", embedding="fake", target_sizes=(6, 12), **FAST)
    return config, run_evaluation(world, config)


def test_run_covers_every_scenario_and_size(evaluated):
    _, result = evaluated
    got = sorted(zip(result.results["scenario"], result.results["target_train_size"], strict=True))
    assert got == sorted(
        [("direct", 0)] + [(s, n) for s in SCENARIOS if s != "direct" for n in (6, 12)]
    )
    assert set(result.results["seed"]) == {0}
    assert set(result.results["n_test"]) == {20}
    assert set(result.results["embedding"]) == {"fake"}
    assert set(result.results["reading"]) == {"native"}
    assert result.notes == []
    assert ((result.results["auroc"] >= 0) & (result.results["auroc"] <= 1)).all()


def test_evaluations_table_holds_the_results(world, evaluated):
    _, result = evaluated
    columns = [
        "run_id",
        "source_site",
        "target_site",
        "embedding",
        "reading",
        "model",
        "scenario",
        "target_train_size",
        "seed",
        "auroc",
        "auprc",
        "accuracy",
        "auroc_low",
        "auroc_high",
        "n_test",
    ]
    with world.connect(read_only=True) as con:
        stored = con.execute(
            f"SELECT {', '.join(columns)} FROM evaluations WHERE run_id = $r "
            "ORDER BY scenario, target_train_size",
            {"r": result.run_id},
        ).df()
    expected = (
        result.results[columns]
        .sort_values(["scenario", "target_train_size"])
        .reset_index(drop=True)
    )
    assert len(stored) == 9
    assert stored.astype(object).values.tolist() == expected.astype(object).values.tolist()


def test_report_and_plot(evaluated):
    config, result = evaluated
    assert result.report == result.plot.with_suffix(".md")
    assert result.report.name == f"evaluation-{result.run_id}.md"
    assert result.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = result.report.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# Transfer evaluation: siteA -> siteB: cnn, fake, reading native"
    assert lines[2] == (
        f"Run `{result.run_id}`; 1 seed(s); test patients: 20; AUROC 95 % bootstrap interval "
        "(20 resamples), mean over seeds."
    )
    assert lines[-1] == f"![learning curve]({result.plot.name})"
    table = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert len(table) == 9
    summary = summarize(result.results)
    for line, row in zip(table, summary.itertuples(), strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells == [
            row.scenario,
            str(row.target_train_size),
            f"{row.auroc:.3f}",
            f"{row.auroc_low:.3f}",
            f"{row.auroc_high:.3f}",
            f"{row.auprc:.3f}",
            f"{row.accuracy:.3f}",
        ]
    # Sorted by size, then scenario; direct (no target data) first.
    assert [c.split("|")[1].strip() for c in table[:2]] == ["direct", "finetune-all"]


def test_direct_transfer_uses_no_target_training_data(world, evaluated):
    """Direct transfer is size 0, and its score does not depend on which target sizes run."""
    _, result = evaluated
    direct = result.results[result.results["scenario"] == "direct"]
    assert direct["target_train_size"].tolist() == [0]
    alone = run_evaluation(
        world,
        EvalConfig("siteA", "siteB", embedding="fake", scenarios=("direct",), **FAST),
    ).results
    metrics = ["auroc", "auprc", "accuracy", "auroc_low", "auroc_high"]
    assert alone[metrics].values.tolist() == direct[metrics].values.tolist()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"embedding": "onehot", "scenarios": ("local", "direct")},
        {"model": "logreg", "scenarios": ("pooled",)},
    ],
)
def test_one_hot_cannot_transfer_between_disjoint_texts(world, kwargs):
    """Read natively, siteB's texts ("fever reported") are none of siteA's ("reported fever"):
    one-hot features would give the source model nothing to read at the target."""
    config = EvalConfig("siteA", "siteB", **{"embedding": "fake", **kwargs, **FAST})
    with pytest.raises(InputError) as info:
        run_evaluation(world, config)
    assert str(info.value) == ONE_HOT_NATIVE_LIBRARY


def test_sizes_bigger_than_the_pool(world):
    config = EvalConfig(
        "siteA", "siteB", embedding="fake", target_sizes=(6, 21, 30), scenarios=("local",), **FAST
    )
    with pytest.raises(InputError) as info:
        run_evaluation(world, config)
    assert str(info.value) == (
        "target_sizes 21 is more than the 20 training patients of site 'siteB'"
    )


def test_test_patients_of_one_class(tmp_path):
    world = build_world(tmp_path)
    events, labels = sample_site(["B1", "B2"], 40, "B", 1)
    # Every positive is a training patient: the target's test set has one class.
    labels = labels.assign(split=np.where(labels["value"] == "I", "train", "test"))
    add_site(
        world,
        "siteB",
        tmp_path / "siteB.csv",
        replace=True,
        events=events,
        labels=labels,
        task=LabelSpec("diagnosis", "I"),
    )
    before = snapshot(world)
    config = EvalConfig("siteA", "siteB", embedding="fake", scenarios=("local",), **FAST)
    with pytest.raises(InputError) as info:
        run_evaluation(world, config)
    assert str(info.value) == "site 'siteB' has test patients of one class only"
    assert snapshot(world) == before  # a refused run leaves the workspace as it was


def test_mapped_reading_with_logreg_notes_dropped_events(world, fake_encoder):
    for site in ("siteA", "siteB"):
        build_site_index(world, site, "fake")
    map_sites(world, "siteB", "siteA", model="fake", k=2, min_score=0.9)  # skin rash unmapped
    config = EvalConfig(
        "siteA",
        "siteB",
        embedding="onehot",
        reading="mapped",
        model="logreg",
        scenarios=("local", "direct", "pooled"),
        target_sizes=(8,),
        **FAST,
    )
    result = run_evaluation(world, config)
    note = "40 target events had codes with no mapping and were left out"
    assert result.notes == [note]
    assert result.report.read_text(encoding="utf-8").endswith(f"\n- {note}\n")
    assert result.results["scenario"].tolist() == ["local", "direct", "pooled"]
    assert set(result.results["model"]) == {"logreg"}


# --- the CLI -------------------------------------------------------------------------------


def test_cli_evaluate_prints_the_summary(runner, world):
    result = run(
        runner,
        world,
        "--quiet",
        "evaluate",
        "--source",
        "siteA",
        "--target",
        "siteB",
        "--model",
        "fake",
        "--classifier",
        "cnn",
        "--scenario",
        "local",
        "--scenario",
        "direct",
        "--target-sizes",
        "6,12",
        "--epochs",
        "2",
        "--steps-per-epoch",
        "5",
        "--bootstrap",
        "20",
    )
    assert result.exit_code == 0, result.output
    run_id = re.search(r"^run (\S+): 3 results stored in table evaluations$", result.output, re.M)
    assert run_id is not None, result.output
    with world.connect(read_only=True) as con:
        stored = con.execute("SELECT * FROM evaluations WHERE run_id = $r", {"r": run_id[1]}).df()
    report = world.root / "reports" / f"evaluation-{run_id[1]}.md"
    assert result.output == (
        render(summarize(stored), "table")
        + f"run {run_id[1]}: 3 results stored in table evaluations\n"
        + f"report: {report}\n"
        + f"plot:   {report.with_suffix('.png')}\n"
    )
    assert result.output.splitlines()[0].split() == [
        "scenario",
        "target_train_size",
        "auroc",
        "auroc_low",
        "auroc_high",
        "auprc",
        "accuracy",
    ]
    assert report.is_file() and report.with_suffix(".png").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--target-sizes", "6,25"],
            "--target-sizes 25 is more than the 20 training patients of site 'siteB'",
        ),
        (["--target-sizes", "6,x"], "--target-sizes must be integers like 50,100,200, got '6,x'"),
        (
            ["--classifier", "logreg"],
            "logreg has no layers to fine-tune: use --classifier cnn for finetune-*",
        ),
        (["--classifier", "logreg", "--scenario", "direct"], ONE_HOT_NATIVE),
        (["--model", "onehot", "--classifier", "cnn", "--scenario", "pooled"], ONE_HOT_NATIVE),
        (["--model", "onehot", "--scenario", "prior"], ONE_HOT_NATIVE),
        (["--tie", "0", "--scenario", "stacked"], ONE_HOT_NATIVE),
        (
            ["--reading", "mapped"],
            "no mappings of 'siteB' onto 'siteA' to read it through. "
            "Run 'harmonize map --source siteB --target siteA' first.",
        ),
    ],
)
def test_cli_evaluate_errors_leave_the_workspace_unchanged(runner, tmp_path, args, message):
    world = build_world(tmp_path)
    before = snapshot(world)
    result = run(
        runner,
        world,
        "evaluate",
        "--source",
        "siteA",
        "--target",
        "siteB",
        "--model",
        "fake",
        "--epochs",
        "2",
        "--steps-per-epoch",
        "5",
        *args,
    )
    assert (result.exit_code, result.output) == (1, f"Error: {message}\n")
    assert snapshot(world) == before
