"""Concept-state texts and patients as rows of text ids, read natively, through stored mappings,
or through a gold map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harmonize.core.errors import InputError, UnknownSiteError
from harmonize.index.site_index import build_site_index
from harmonize.mapping.pipeline import map_sites
from harmonize.sites.patients import LabelSpec
from harmonize.sites.registry import add_site
from harmonize.transfer.encounters import Encounters, load_encounters, state_text

TASK = LabelSpec("diagnosis", "I")


@pytest.mark.parametrize(
    ("description", "value", "level_text", "expected"),
    [
        ("dyspnea", "P", None, "dyspnea"),
        ("dyspnea", "A", None, "Not dyspnea"),
        ("dyspnea", "M", None, "Not dyspnea"),  # missing counts as absent
        ("temperature", "H", None, "temperature: H"),
        ("temperature", "H", "high temperature", "high temperature"),
        ("dyspnea", "P", "declared", "declared"),
        ("dyspnea", "A", "declared", "declared"),
    ],
)
def test_state_text(description, value, level_text, expected):
    assert state_text(description, value, level_text) == expected


def events_frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["subject_id", "code", "value"])
    frame.insert(1, "time", pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us]"))
    return frame


def labels_frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["subject_id", "value", "split"])
    frame.insert(1, "label", "diagnosis")
    return frame


# siteA: p4 has no events; A5 has one level with a declared text (H) and one without (L).
A_EVENTS = [
    ("p1", "A3", "M"),
    ("p1", "A1", "P"),
    ("p1", "A2", "A"),
    ("p2", "A5", "L"),
    ("p2", "A1", "A"),
    ("p3", "A5", "H"),
    ("p3", "A2", "P"),
]
A_LABELS = [("p2", "R", "train"), ("p1", "I", "train"), ("p3", "I", "test"), ("p4", "R", "test")]
# siteB: B5 (skin rash) has no counterpart at siteA; q5's only event is B5.
B_EVENTS = [
    ("q1", "B1", "P"),
    ("q1", "B3", "A"),
    ("q2", "B2", "P"),
    ("q2", "B4", "P"),
    ("q3", "B3", "P"),
    ("q4", "B4", "A"),
    ("q5", "B5", "P"),
]
B_LABELS = [
    ("q1", "I", "train"),
    ("q2", "R", "test"),
    ("q3", "I", "test"),
    ("q4", "R", "train"),
    ("q5", "R", "train"),
]


@pytest.fixture
def sites(tmp_path, workspace, vocab_files):
    b_vocab = tmp_path / "b5.csv"
    b_vocab.write_text(vocab_files["b"].read_text() + "B5,skin rash,SKIN,2,v\n", encoding="utf-8")
    add_site(
        workspace,
        "siteA",
        vocab_files["a"],
        events=events_frame(A_EVENTS),
        labels=labels_frame(A_LABELS),
        task=TASK,
        levels=pd.DataFrame({"code": ["A5"], "value": ["H"], "text": ["high muscle pain"]}),
    )
    add_site(
        workspace,
        "siteB",
        b_vocab,
        events=events_frame(B_EVENTS),
        labels=labels_frame(B_LABELS),
        task=TASK,
    )
    return workspace


def patient_texts(enc: Encounters) -> dict[str, list[str]]:
    return {s: [enc.texts[i] for i in row] for s, row in zip(enc.subjects, enc.ids, strict=True)}


def test_native_reading(sites):
    enc = load_encounters(sites, "siteA")
    assert enc.ids.dtype == np.int64 and enc.ids.shape == (4, 3)
    assert list(enc.subjects) == ["p1", "p2", "p3", "p4"]
    # Each patient's texts in code order, padded to the widest patient with its first text.
    assert patient_texts(enc) == {
        "p1": ["acute dyspnea", "Not reported fever", "Not dry cough"],
        "p2": ["Not acute dyspnea", "muscle pain: L", "Not acute dyspnea"],
        "p3": ["reported fever", "high muscle pain", "reported fever"],
        "p4": ["", "", ""],
    }
    assert sorted(enc.texts) == sorted(
        [
            "",
            "Not acute dyspnea",
            "Not dry cough",
            "Not reported fever",
            "acute dyspnea",
            "high muscle pain",
            "muscle pain: L",
            "reported fever",
        ]
    )
    assert enc.y.tolist() == [1, 0, 1, 0]
    assert enc.split.tolist() == ["train", "train", "test", "test"]
    assert enc.n_dropped_events == 0


def test_no_empty_text_when_every_patient_has_events(sites):
    enc = load_encounters(sites, "siteB")
    assert "" not in enc.texts
    assert len(enc.texts) == len(set(enc.texts)) == 7
    assert patient_texts(enc)["q3"] == ["dyspnea acute", "dyspnea acute"]
    assert enc.y.tolist() == [1, 0, 1, 0, 0]


@pytest.fixture
def mapped(sites, fake_encoder):
    for site in ("siteA", "siteB"):
        build_site_index(sites, site, "fake")
    # B1-B4 share all their words with an A concept (cosine 1); skin rash has no match.
    result = map_sites(sites, "siteB", "siteA", model="fake", k=3, min_score=0.9)
    pairs = zip(result.mappings["source_code"], result.mappings["target_code"], strict=True)
    assert sorted(pairs) == [
        ("B1", "A2"),
        ("B2", "A3"),
        ("B3", "A1"),
        ("B4", "A4"),
    ]
    return sites


def test_mapped_reading_uses_the_other_sites_descriptions(mapped):
    enc = load_encounters(mapped, "siteB", "mapped", via="siteA")
    assert patient_texts(enc) == {
        "q1": ["reported fever", "Not acute dyspnea"],
        "q2": ["dry cough", "sore throat"],
        "q3": ["acute dyspnea", "acute dyspnea"],
        "q4": ["Not sore throat", "Not sore throat"],
        "q5": ["", ""],  # its only event (skin rash) has no mapping
    }
    assert enc.n_dropped_events == 1
    assert enc.y.tolist() == [1, 0, 1, 0, 0]
    assert enc.split.tolist() == ["train", "test", "test", "train", "train"]


def test_mapped_reading_needs_stored_mappings(mapped):
    with pytest.raises(InputError) as info:
        load_encounters(mapped, "siteA", "mapped", via="siteB")
    assert str(info.value) == (
        "no mappings of 'siteA' onto 'siteB' to read it through. "
        "Run 'harmonize map --source siteA --target siteB' first."
    )


def test_oracle_reading_with_a_gold_frame(sites):
    gold = pd.DataFrame(
        {
            "source_code": ["B1", "B2", "B3", "B1", "B5"],
            "target_code": ["A2", "A3", "A1", "A5", "A5"],  # the first row per code wins
        }
    )
    enc = load_encounters(sites, "siteB", "oracle", via="siteA", gold=gold)
    assert patient_texts(enc) == {
        "q1": ["reported fever", "Not acute dyspnea"],
        "q2": ["dry cough", "dry cough"],
        "q3": ["acute dyspnea", "acute dyspnea"],
        "q4": ["", ""],  # B4 is not in the gold map
        "q5": ["muscle pain", "muscle pain"],
    }
    assert enc.n_dropped_events == 2


def test_oracle_reading_takes_level_texts_from_the_via_site(sites):
    """A level is read in the via site's words: siteA's own text for (A5, H) does not apply
    to siteB's B3, which declares no levels."""
    gold = pd.DataFrame({"source_code": ["A1", "A2", "A3", "A5"], "target_code": ["B3"] * 4})
    enc = load_encounters(sites, "siteA", "oracle", via="siteB", gold=gold)
    texts = patient_texts(enc)
    assert texts["p2"] == ["Not dyspnea acute", "dyspnea acute: L", "Not dyspnea acute"]
    assert texts["p3"] == ["dyspnea acute", "dyspnea acute: H", "dyspnea acute"]


def test_mapped_reading_after_the_via_site_lost_a_mapped_code(mapped, tmp_path):
    """siteA replaced by a vocabulary without A4 leaves the stored B4 -> A4 mapping behind:
    reading through it is the user's problem to fix (re-map), not a crash."""
    smaller = tmp_path / "a4less.csv"
    smaller.write_text(
        "code,description\nA1,acute dyspnea\nA2,reported fever\nA3,dry cough\n", encoding="utf-8"
    )
    add_site(mapped, "siteA", smaller, replace=True)
    with pytest.raises(InputError, match="A4"):
        load_encounters(mapped, "siteB", "mapped", via="siteA")


def test_oracle_gold_naming_an_unknown_code_is_an_input_error(sites):
    """A gold target code that is not a concept of the via site is the user's mistake."""
    gold = pd.DataFrame({"source_code": ["B1", "B2"], "target_code": ["A2", "A9"]})
    with pytest.raises(InputError, match="A9"):
        load_encounters(sites, "siteB", "oracle", via="siteA", gold=gold)


@pytest.mark.parametrize(
    ("site", "kwargs", "message"),
    [
        (
            "siteC",
            {},
            "site 'siteC' has no patients with labels. Add them with 'harmonize add-site siteC "
            "--vocab FILE --patients FILE --label COLUMN=VALUE --replace'.",
        ),
        (
            "siteA",
            {"reading": "oracle", "via": "siteB"},
            "reading 'oracle' needs gold FILE (source_code,target_code)",
        ),
        (
            "siteA",
            {"reading": "mapped", "via": "siteB"},
            "no mappings of 'siteA' onto 'siteB' to read it through. "
            "Run 'harmonize map --source siteA --target siteB' first.",
        ),
        (
            "siteA",
            {"reading": "mapped"},
            "reading 'mapped' needs the site to read siteA through",
        ),
        (
            "siteA",
            {"reading": "recoded", "via": "siteB"},
            "unknown reading 'recoded': use one of native, mapped, oracle",
        ),
    ],
)
def test_errors(sites, vocab_files, site, kwargs, message):
    add_site(sites, "siteC", vocab_files["a"])
    with pytest.raises(InputError) as info:
        load_encounters(sites, site, **kwargs)
    assert str(info.value) == message


def test_unknown_sites(sites):
    with pytest.raises(UnknownSiteError):
        load_encounters(sites, "nosuch")
    with pytest.raises(UnknownSiteError):
        load_encounters(sites, "siteA", "mapped", via="nosuch")


def test_subset_and_reindex(sites):
    enc = load_encounters(sites, "siteA")
    test = enc.subset(enc.split == "test")
    assert list(test.subjects) == ["p3", "p4"]
    assert test.y.tolist() == [1, 0]
    assert test.texts is enc.texts
    vocabulary = {t: i for i, t in enumerate(["zzz", *sorted(enc.texts)])}
    shared = enc.reindex(vocabulary)
    assert shared.texts == list(vocabulary)
    assert patient_texts(shared) == patient_texts(enc)
    assert shared.ids.min() >= 1  # "zzz" is nobody's


def test_missing_policy():
    """Missing is absent by default (the study); 'separate' gives it its own text, and a
    declared level text for M still wins."""
    from harmonize.transfer.encounters import state_text as st

    assert st("cough", "M") == "Not cough"
    assert st("cough", "M", missing="separate") == "cough: missing"
    assert st("cough", "M", "cough not documented", missing="separate") == "cough not documented"
    assert st("cough", "A", missing="separate") == "Not cough"


def test_declared_level_text_wins_over_presence():
    """Temperature's P/A/I are grades: a declared text for (code, P) replaces the description."""
    from harmonize.transfer.encounters import state_text as st

    assert st("temperature", "P", "high grade temperature") == "high grade temperature"
    assert st("temperature", "A", "low grade temperature") == "low grade temperature"
    assert st("temperature", "I") == "temperature: I"
