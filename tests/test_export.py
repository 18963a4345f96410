"""eval-map against a gold file, and every export format read back (fake encoder)."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from harmonize.core.errors import InputError
from harmonize.index.site_index import build_site_index
from harmonize.mapping.export import export_mappings
from harmonize.mapping.export_formats import cardinality
from harmonize.mapping.metrics import evaluate_mapping
from harmonize.mapping.pipeline import map_sites
from harmonize.sites.registry import add_site
from tests.helpers import snapshot


@pytest.fixture
def mapped(mapped_ba):
    return mapped_ba


def test_eval_map_by_hand_and_stored(mapped, tmp_path):
    """Gold: B1->A2 (mapped right), B2->A5 (wrong: mapped to A3), B3->A1 (right), ZZ unknown.
    top1 = 2/3, coverage 1, precision 2/3, recall 2/3; ZZ is reported, not scored."""
    gold = tmp_path / "gold.csv"
    gold.write_text("source_code,target_code\nB1,A2\nB2,A5\nB3,A1\nZZ,A1\n")
    evaluation = evaluate_mapping(mapped, "siteB", "siteA", gold)
    assert (evaluation.n, evaluation.n_unknown, evaluation.k) == (3, 1, 3)
    result = evaluation.to_dict()
    assert result["n"] == 3 and result["n_unknown"] == 1 and result["k"] == 3
    assert result["top1"] == pytest.approx(2 / 3)
    assert result["coverage"] == 1.0
    assert result["precision"] == pytest.approx(2 / 3) and result["recall"] == pytest.approx(2 / 3)
    # A5 ("muscle pain") shares no word with "cough dry": not among B2's 3 candidates either.
    assert result["top10"] == pytest.approx(2 / 3)
    assert evaluation.rows() == [result]
    with mapped.connect(read_only=True) as con:
        stored = con.execute("SELECT n, n_unknown, top1 FROM map_evaluations").fetchall()
    assert stored == [(3, 1, pytest.approx(2 / 3))]


def test_eval_map_errors(mapped, tmp_path):
    gold = tmp_path / "gold.csv"
    gold.write_text("source_code,target_code\nA1,B3\n")
    with pytest.raises(InputError) as err:
        evaluate_mapping(mapped, "siteB", "siteA", gold)
    assert str(err.value) == (
        f"{gold}: none of its 1 source codes is a concept of site 'siteB'; "
        "is the gold file the other way round?"
    )
    with pytest.raises(InputError) as err:
        evaluate_mapping(mapped, "siteA", "siteB", gold)
    assert str(err.value) == (
        "no mapping of 'siteA' onto 'siteB' yet. "
        "Run 'harmonize map --source siteA --target siteB' first."
    )


def test_cardinality():
    assert cardinality(pd.Series(["a", "a", "b"]), pd.Series(["x", "y", "y"])).tolist() == [
        "1:n",
        "n:n",
        "n:1",
    ]


def _sssom(path):
    lines = path.read_text().splitlines()
    meta = [line for line in lines if line.startswith("#")]
    table = pd.read_csv(io.StringIO("\n".join(lines[len(meta) :])), sep="\t", dtype=str)
    return meta, table


def test_sssom_round_trip(mapped, tmp_path):
    out = tmp_path / "m.sssom.tsv"
    written = export_mappings(mapped, "siteB", "siteA", "sssom", out)
    assert written.n == 4 and written.output == out
    assert written.message == f"wrote 4 mappings of 'siteB' onto 'siteA' as sssom to {out}"
    meta, table = _sssom(out)
    assert "# curie_map:" in meta and '#   siteB: "urn:harmonize:siteB:"' in meta
    pairs = dict(zip(table["subject_id"], table["object_id"], strict=True))
    assert pairs == {
        "siteB:B1": "siteA:A2",
        "siteB:B2": "siteA:A3",
        "siteB:B3": "siteA:A1",
        "siteB:B4": "siteA:A4",
    }
    assert set(table["predicate_id"]) == {"skos:closeMatch"}
    assert set(table["mapping_cardinality"]) == {"1:1"}
    assert table["confidence"].astype(float).between(0, 1).all()


def test_fhir_round_trip(mapped, tmp_path):
    out = tmp_path / "m.json"
    export_mappings(mapped, "siteB", "siteA", "fhir", out)
    resource = json.loads(out.read_text())
    assert resource["resourceType"] == "ConceptMap" and resource["status"] == "draft"
    elements = resource["group"][0]["element"]
    got = {e["code"]: (e["target"][0]["code"], e["target"][0]["equivalence"]) for e in elements}
    assert got == {
        "B1": ("A2", "relatedto"),
        "B2": ("A3", "relatedto"),
        "B3": ("A1", "relatedto"),
        "B4": ("A4", "relatedto"),
    }
    assert {e["display"] for e in elements} == {
        "fever reported",
        "cough dry",
        "dyspnea acute",
        "throat sore",
    }


def test_omop_stcm_needs_concept_ids(mapped, workspace, tmp_path, fake_encoder):
    out = tmp_path / "stcm.csv"
    before = snapshot(mapped)
    with pytest.raises(InputError) as err:
        export_mappings(mapped, "siteB", "siteA", "omop-stcm", out)
    assert str(err.value).startswith("fmt omop-stcm needs OMOP concept_ids (integers) as target")
    assert err.value.render({"fmt": "--format"}).startswith("--format omop-stcm needs OMOP")
    assert not out.exists() and snapshot(mapped) == before
    omop = tmp_path / "omop.csv"
    omop.write_text(
        "code,description,system\n312437,dyspnea acute,SNOMED\n437663,fever reported,SNOMED\n"
    )
    add_site(workspace, "omop", omop)
    build_site_index(workspace, "omop", "fake")
    map_sites(workspace, "siteB", "omop", model="fake", k=1)
    export_mappings(workspace, "siteB", "omop", "omop-stcm", out)
    table = pd.read_csv(out, dtype=str, keep_default_na=False)
    rows = dict(zip(table["source_code"], table["target_concept_id"], strict=True))
    assert rows["B1"] == "437663" and rows["B3"] == "312437"
    assert set(table["target_vocabulary_id"]) == {"SNOMED"}
    assert set(table["valid_end_date"]) == {"2099-12-31"}


def test_export_events_meds_round_trip(mapped, tmp_path):
    """siteB's events recoded into siteA codes, written as MEDS and read back by read_meds;
    an event whose code has no mapping is left out and counted."""
    from harmonize.mapping.export import export_events
    from harmonize.sites.meds import read_meds

    events = tmp_path / "ev.csv"
    events.write_text("subject_id,code,value\np1,B1,P\np1,B2,A\np2,B3,P\np2,B4,P\n")
    add_site(mapped, "siteB", _b_vocab(tmp_path), events, replace=True)
    build_site_index(mapped, "siteB", "fake")
    map_sites(mapped, "siteB", "siteA", model="fake", k=1, min_score=0.99)
    out = tmp_path / "meds"
    written = export_events(mapped, "siteB", "siteA", "meds", out)
    assert (written.n_events, written.n_skipped) == (3, 1)
    assert written.message == (
        f"wrote 3 events of 'siteB' in 'siteA' codes as meds to {out} "
        "(1 events without a mapping left out)"
    )
    vocab, back = read_meds(out)  # the original ids, from metadata/subject_ids.parquet
    assert sorted(zip(back["subject_id"], back["code"], back["value"], strict=True)) == [
        ("p1", "A2", "P"),
        ("p1", "A3", "A"),
        ("p2", "A1", "P"),
    ]
    assert set(vocab["description"]) == {"reported fever", "dry cough", "acute dyspnea"}
    with pytest.raises(InputError) as err:
        export_events(mapped, "siteB", "siteA", "meds", out)
    assert str(err.value) == f"{out} exists and is not empty: choose a new folder"


def _b_vocab(tmp_path):
    path = tmp_path / "b_vocab.csv"
    path.write_text(
        "code,description\nB1,fever reported\nB2,cough dry\nB3,dyspnea acute\nB4,ear ache\n"
    )
    return path
