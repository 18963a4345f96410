"""Mapping predicates: parsed from known files and people's decisions, stored, kept through a
re-map, and written by each export in its own terms."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from harmonize.core.errors import InputError
from harmonize.mapping.export import export_mappings
from harmonize.mapping.pipeline import map_sites
from harmonize.mapping.predicates import (
    PREDICATES,
    fhir_equivalence,
    parse_predicate,
    usagi_equivalence,
)
from harmonize.mapping.review import decide
from tests.helpers import N_FAMILIES, run, snapshot


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("exact", "skos:exactMatch"),
        ("Broad", "skos:broadMatch"),
        (" narrow ", "skos:narrowMatch"),
        ("skos:relatedMatch", "skos:relatedMatch"),
        ("", None),
        (None, None),
        (float("nan"), None),
    ],
)
def test_parse_predicate(given, stored):
    assert parse_predicate(given) == stored


def test_unknown_predicates_are_refused_with_the_allowed_ones():
    with pytest.raises(InputError) as err:
        parse_predicate("skos:sameAs")
    assert str(err.value).startswith("unknown mapping predicate 'skos:sameAs': use exact, close")


def test_every_predicate_has_a_fhir_and_usagi_term():
    terms = {p: (fhir_equivalence(p), usagi_equivalence(p)) for p in PREDICATES.values()}
    assert terms == {
        "skos:exactMatch": ("equivalent", "EQUAL"),
        "skos:closeMatch": ("relatedto", "INEXACT"),
        "skos:broadMatch": ("wider", "WIDER"),
        "skos:narrowMatch": ("narrower", "NARROWER"),
        "skos:relatedMatch": ("relatedto", "INEXACT"),
    }
    assert (fhir_equivalence(None), usagi_equivalence(float("nan"))) == ("relatedto", "UNREVIEWED")


@pytest.fixture
def mapped(mapped_ba):
    return mapped_ba


def _stored(ws) -> dict[str, object]:
    with ws.connect(read_only=True) as con:
        rows = con.sql("SELECT source_code, predicate FROM mapped_concepts").fetchall()
    return dict(rows)


def _exports(ws, tmp_path) -> dict[str, dict[str, str]]:
    """Each export's relation term per source code (Usagi needs concept_id targets: its
    terms are checked in tests/test_export_consumers.py)."""
    sssom, fhir = (tmp_path / n for n in ("m.sssom.tsv", "m.json"))
    export_mappings(ws, "siteB", "siteA", "sssom", sssom)
    export_mappings(ws, "siteB", "siteA", "fhir", fhir)
    table = pd.read_csv(sssom, sep="\t", comment="#", dtype=str)
    elements = json.loads(fhir.read_text())["group"][0]["element"]
    subjects = table["subject_id"].str.removeprefix("siteB:")
    return {
        "sssom": dict(zip(subjects, table["predicate_id"], strict=True)),
        "fhir": {e["code"]: e["target"][0]["equivalence"] for e in elements},
    }


def test_decisions_carry_predicates_into_store_exports_and_remaps(mapped, tmp_path):
    assert _stored(mapped) == {"B1": None, "B2": None, "B3": None, "B4": None}
    made = decide(mapped, "siteB", "siteA", "B4", "set", "A5", reviewer="ana", predicate="broad")
    assert made.message == "set siteB:B4 -> siteA:A5 as skos:broadMatch (by ana)"
    assert (made.target_code, made.predicate) == ("A5", "skos:broadMatch")
    decide(mapped, "siteB", "siteA", "B1", "accept", reviewer="ana", predicate="exact")
    decide(mapped, "siteB", "siteA", "B3", "accept", reviewer="ana")  # asserts no predicate
    expected = {"B1": "skos:exactMatch", "B2": None, "B3": None, "B4": "skos:broadMatch"}
    assert _stored(mapped) == expected
    map_sites(mapped, "siteB", "siteA", model="fake", k=3)  # people's predicates survive
    assert _stored(mapped) == expected
    assert _exports(mapped, tmp_path) == {
        "sssom": {
            "B1": "skos:exactMatch",
            "B2": "skos:closeMatch",
            "B3": "skos:closeMatch",
            "B4": "skos:broadMatch",
        },
        "fhir": {"B1": "equivalent", "B2": "relatedto", "B3": "relatedto", "B4": "wider"},
    }


def test_cli_predicate_choices_and_reject_takes_none(runner, mapped):
    before = snapshot(mapped)
    bad = run(runner, mapped, "set", "--source", "siteB", "--target", "siteA", "B4", "A5",
              "--predicate", "same")  # fmt: skip
    assert bad.exit_code == 1 and "Invalid value for '--predicate'" in bad.output
    reject = run(runner, mapped, "reject", "--source", "siteB", "--target", "siteA", "B4",
                 "--predicate", "exact")  # fmt: skip
    assert reject.exit_code == 1 and "Error: No such option '--predicate'." in reject.output
    assert snapshot(mapped) == before
    ok = run(runner, mapped, "accept", "--source", "siteB", "--target", "siteA", "B2",
             "--predicate", "NARROW", "--reviewer", "bo")  # fmt: skip
    assert ok.output == "accepted siteB:B2 -> siteA:A3 as skos:narrowMatch (by bo)\n"
    out = mapped.root.parent / "m.csv"
    remap = run(runner, mapped, "map", "--source", "siteB", "--target", "siteA", "--model", "fake",
                "--output", str(out))  # fmt: skip
    assert remap.exit_code == 0, remap.output
    assert remap.output.splitlines()[0].split()[-1] == "predicate"
    csv = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("source_code")
    assert csv["predicate"].to_dict() == {"B1": "", "B2": "skos:narrowMatch", "B3": "", "B4": ""}


def test_known_files_assert_predicates_and_accept_keeps_them(known_ws, tmp_path):
    """The known-pairs file's predicate column reaches the known concepts' mappings; an accept
    without --predicate keeps it."""
    workspace, paths = known_ws
    known = pd.read_csv(paths["known"])
    known["predicate"] = ["broad" if s.endswith("_0") else "" for s in known["source_code"]]
    with_predicates = tmp_path / "known_p.csv"
    known.to_csv(with_predicates, index=False)
    map_sites(workspace, "local", "standard", model="lexical", k=3, known=with_predicates)
    stored = _stored(workspace)
    assert {c for c, p in stored.items() if p == "skos:broadMatch"} == {
        f"c{f}_0" for f in range(N_FAMILIES)
    }
    assert {p for c, p in stored.items() if not c.endswith("_0")} == {None}
    decide(workspace, "local", "standard", "c0_0", "accept", reviewer="ana")
    assert _stored(workspace)["c0_0"] == "skos:broadMatch"


def test_a_bad_predicate_in_a_known_file_changes_nothing(known_ws, tmp_path):
    workspace, paths = known_ws
    known = pd.read_csv(paths["known"]).assign(predicate="exact")
    known.loc[5, "predicate"] = "equivalent"
    bad = tmp_path / "bad.csv"
    known.to_csv(bad, index=False)
    before = snapshot(workspace)
    with pytest.raises(InputError) as err:
        map_sites(workspace, "local", "standard", model="lexical", known=bad)
    assert str(err.value).startswith(
        f"{bad}: column predicate: unknown mapping predicate 'equivalent': use exact"
    )
    assert snapshot(workspace) == before
