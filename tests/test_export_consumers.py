"""Every export read by the software that consumes it: sssom-py (parse and convert), FHIR R4
ConceptMap through ``fhir.resources``, the OMOP CDM 5.4 DDL in DuckDB, Usagi's reader rules
(tests/usagi_rules.py, re-stated from Usagi's Java) and the ``meds`` schemas."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from harmonize import __version__
from harmonize.core.errors import InputError
from harmonize.core.workspace import Workspace
from harmonize.index.site_index import build_site_index
from harmonize.mapping.export import export_events, export_mappings
from harmonize.mapping.pipeline import map_sites
from harmonize.mapping.review import decide
from harmonize.sites.registry import add_site
from tests import usagi_rules
from tests.helpers import snapshot

DDL = Path(__file__).parent / "data" / "omop_cdm_5.4" / "OMOPCDM_duckdb_5.4_ddl.sql"

# Source descriptions with everything a line-based CSV reader trips on.
LOCAL = (
    "code,description,frequency\n"
    'L1,"fever, reported",12\n'
    'L2,"cough ""dry""",5\n'
    'L3,"dyspnea\nacute",7\n'
    'L4,"pain back\\lower",1\n'
)
OMOP = (
    "code,description,system,domain_id\n"
    "437663,fever reported,SNOMED,Condition\n"
    "254761,cough dry,SNOMED,Condition\n"
    "312437,dyspnea acute,SNOMED,Condition\n"
    "4329041,pain back,SNOMED,Observation\n"
)


def local_omop_workspace(root: Path) -> Workspace:
    """Sites local (tricky descriptions, events) and omop (concept_ids) in ``root/ws``,
    indexed with the fake encoder, local mapped onto omop (k=2); no decisions."""
    root.mkdir(parents=True, exist_ok=True)
    workspace = Workspace(root / "ws")
    (root / "local.csv").write_text(LOCAL)
    (root / "omop.csv").write_text(OMOP)
    events = root / "events.csv"
    events.write_text(
        "subject_id,time,code,value\n"
        "p2,2021-03-01 10:00:00,L1,38.5\n"
        "p1,2021-03-02 09:00:00,L2,P\n"
        "p1,,L3,\n"
        "p1,2021-03-01 08:00:00,L1,37.9\n"
    )
    add_site(workspace, "local", root / "local.csv", events)
    add_site(workspace, "omop", root / "omop.csv")
    for site in ("local", "omop"):
        build_site_index(workspace, site, "fake")
    map_sites(workspace, "local", "omop", model="fake", k=2)
    return workspace


def decide_some(workspace: Workspace) -> Workspace:
    """L1 accepted with no predicate by ana, L2 set by bob as broad (onto a concept the model
    did not choose), L3 and L4 left to the model."""
    decide(workspace, "local", "omop", "L1", "accept", reviewer="ana")
    decide(workspace, "local", "omop", "L2", "set", "4329041", reviewer="bob", predicate="broad")
    return workspace


@pytest.fixture
def omop_ws(tmp_path, fake_encoder):
    return decide_some(local_omop_workspace(tmp_path))


def _decision_ms(ws) -> dict[str, int]:
    with ws.connect(read_only=True) as con:
        rows = con.sql("SELECT source_code, epoch_us(decided_at) // 1000 FROM decisions")
        rows = rows.fetchall()
    return dict(rows)


# --- Usagi --------------------------------------------------------------------------------


def test_usagi_export_reads_by_usagis_rules(omop_ws, tmp_path):
    out = tmp_path / "m.usagi.csv"
    export_mappings(omop_ws, "local", "omop", "usagi", out)
    text = out.read_text()
    lines = usagi_rules.read_lines(text)
    assert len(lines) == 5  # header + one line per mapping: no field holds a line break
    assert usagi_rules.line_to_columns(lines[0]) == usagi_rules.WRITER_COLUMNS
    mappings = {m.source_code: m for m in usagi_rules.read_code_mappings(text)}
    assert list(mappings) == ["L1", "L2", "L3", "L4"]
    # Usagi's writer turns a line feed into the two characters \n; its reader keeps them.
    assert [m.source_name for m in mappings.values()] == [
        "fever, reported",
        'cough "dry"',
        "dyspnea\\nacute",
        "pain back\\lower",
    ]
    assert [m.source_frequency for m in mappings.values()] == [12, 5, 7, 1]
    ms = _decision_ms(omop_ws)
    l1, l2 = mappings["L1"], mappings["L2"]
    assert (l1.status, l1.equivalence, l1.status_set_by, l1.status_set_on) == (
        "APPROVED",
        "EQUAL",  # accepted without a predicate: Usagi's default equivalence
        "ana",
        ms["L1"],
    )
    assert (l2.status, l2.equivalence, l2.status_set_by, l2.status_set_on) == (
        "APPROVED",
        "WIDER",
        "bob",
        ms["L2"],
    )
    assert l2.targets == [(4329041, "MAPS_TO", "bob", ms["L2"])]
    for code in ("L3", "L4"):
        m = mappings[code]
        assert (m.status, m.equivalence, m.status_set_by, m.status_set_on) == (
            "UNCHECKED",
            "UNREVIEWED",
            "",
            0,
        )
        assert len(m.targets) == 1 and m.targets[0][2] == f"harmonize {__version__}"
    assert all(0 <= m.match_score <= 1 for m in mappings.values())
    table = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("sourceCode")
    assert table.loc["L2", "domainId"] == "Observation"


def test_usagi_keeps_several_targets_per_source(omop_ws, tmp_path):
    """A source with two mappings (as OMOP "Maps to" gives) is one Usagi code mapping with two
    target concepts, status and equivalence from its first row."""
    with omop_ws.transaction() as con:
        con.execute(
            "INSERT INTO mappings SELECT source_site, source_code, target_site, '254761', "
            "score, method, run_id, created_at, confidence, predicate FROM mappings "
            "WHERE source_code = 'L2'"
        )
        con.execute(
            "INSERT INTO decisions SELECT source_site, source_code, target_site, '254761', "
            "decision, reviewer, note, decided_at, predicate FROM decisions "
            "WHERE source_code = 'L2'"
        )
    out = tmp_path / "m.csv"
    assert export_mappings(omop_ws, "local", "omop", "usagi", out).n == 5
    mappings = {m.source_code: m for m in usagi_rules.read_code_mappings(out.read_text())}
    assert [t[0] for t in mappings["L2"].targets] == [254761, 4329041]  # ordered by code
    assert (mappings["L2"].status, mappings["L2"].equivalence) == ("APPROVED", "WIDER")


def test_usagi_refuses_targets_that_are_not_concept_ids(mapped_ba, tmp_path):
    out = tmp_path / "m.csv"
    before = snapshot(mapped_ba)
    with pytest.raises(InputError) as err:
        export_mappings(mapped_ba, "siteB", "siteA", "usagi", out)
    assert err.value.render({"fmt": "--format"}) == (
        "--format usagi needs OMOP concept_ids (integers) as target codes, but site 'siteA' "
        "has code 'A2'. Map onto a site built from OMOP concepts (add-site --omop or --athena)."
    )
    assert not out.exists() and snapshot(mapped_ba) == before


# --- SSSOM --------------------------------------------------------------------------------


def _sssom_cli(*args: str):
    from click.testing import CliRunner
    from sssom.cli import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _sssom_export(ws: Workspace, tmp_path: Path) -> Path:
    with ws.transaction() as con:  # cosines outside [0, 1] happen: clip them
        con.execute("UPDATE mappings SET score = -0.25 WHERE source_code = 'L3'")
        con.execute("UPDATE mappings SET score = 1.0000004 WHERE source_code = 'L4'")
    out = tmp_path / "m.sssom.tsv"
    export_mappings(ws, "local", "omop", "sssom", out)
    return out


def _check_sssom(parsed: Path, document: dict) -> None:
    """What sssom-py read: scores in [0, 1], none (and no measure) for the mapping a person
    set by hand, the person's predicate, name and justification."""
    assert document["mapping_set_id"] == "urn:harmonize:mappings:local:omop"
    rows = {m["subject_id"]: m for m in document["mappings"]}
    back = pd.read_csv(parsed, sep="\t", comment="#").set_index("subject_id")
    assert back["similarity_score"].fillna(-1).to_dict() == {
        "local:L1": pytest.approx(rows["local:L1"]["similarity_score"]),
        "local:L2": -1,  # set by hand onto a target the model did not choose: no score
        "local:L3": 0.0,
        "local:L4": 1.0,
    }
    assert 0 < rows["local:L1"]["similarity_score"] < 1
    assert {k: v.get("similarity_measure") for k, v in rows.items()} == {
        "local:L1": "cosine",
        "local:L2": None,
        "local:L3": "cosine",
        "local:L4": "cosine",
    }
    assert rows["local:L2"]["predicate_id"] == "skos:broadMatch"
    assert rows["local:L2"]["author_label"] == ["bob"]
    assert rows["local:L2"]["mapping_justification"] == "semapv:ManualMappingCuration"
    assert rows["local:L3"]["mapping_justification"] == (
        "semapv:SemanticSimilarityThresholdMatching"
    )


def test_sssom_py_parses_converts_and_validates_the_export(omop_ws, tmp_path):
    """sssom-py's parser with the strict prefix check that ``sssom parse`` makes (every prefix
    used, in the metadata too, must be declared), its TSV and JSON writers (what ``sssom
    convert`` calls) and its validators. The commands themselves: the slow test below."""
    from sssom.constants import SchemaValidationType
    from sssom.parsers import parse_sssom_table
    from sssom.validators import validate
    from sssom.writers import to_json, write_table

    out = _sssom_export(omop_ws, tmp_path)
    msdf = parse_sssom_table(out)
    msdf.clean_prefix_map(strict=True)
    parsed = tmp_path / "parsed.sssom.tsv"
    with parsed.open("w") as handle:
        write_table(msdf, handle)
    _check_sssom(parsed, to_json(msdf))
    kinds = [SchemaValidationType.JsonSchema, SchemaValidationType.PrefixMapCompleteness]
    reports = validate(msdf, kinds, fail_on_error=False)
    assert {kind: report.results for kind, report in reports.items()} == {k: [] for k in kinds}


@pytest.mark.slow
def test_sssom_commands_parse_and_convert_accept_the_export(omop_ws, tmp_path):
    """``sssom parse`` and ``sssom convert -O json`` (sssom-py's CLI, in process) accept the
    export. Slow: the commands build sssom-py's default prefix map first (~27 s of CPU)."""
    out = _sssom_export(omop_ws, tmp_path)
    parsed, converted = tmp_path / "parsed.sssom.tsv", tmp_path / "m.json"
    result = _sssom_cli("parse", str(out), "-o", str(parsed))
    assert result.exit_code == 0, result.output
    result = _sssom_cli("convert", str(out), "-O", "json", "-o", str(converted))
    assert result.exit_code == 0, result.output
    _check_sssom(parsed, json.loads(converted.read_text()))


# --- FHIR ---------------------------------------------------------------------------------

# R4 ConceptMap.group.element.target.equivalence (ConceptMapEquivalence value set).
R4_EQUIVALENCE = {
    "relatedto", "equivalent", "equal", "wider", "subsumes", "narrower", "specializes",
    "inexact", "unmatched", "disjoint",
}  # fmt: skip


def test_fhir_concept_map_is_valid_r4(omop_ws, tmp_path):
    """fhir.resources (R4B, whose ConceptMap is R4's) reads it; the R4 invariant cmd-0 on the
    name and the equivalence value set, which it does not check, are checked here."""
    from fhir.resources.R4B.conceptmap import ConceptMap

    out = tmp_path / "m.json"
    export_mappings(omop_ws, "local", "omop", "fhir", out)
    resource = ConceptMap.model_validate_json(out.read_text())
    assert re.fullmatch(r"[A-Z]([A-Za-z0-9_]){0,254}", resource.name)
    targets = {e.code: e.target for e in resource.group[0].element}
    assert {t.equivalence for ts in targets.values() for t in ts} <= R4_EQUIVALENCE
    assert targets["L2"][0].equivalence == "wider"
    comments = [t.comment for ts in targets.values() for t in ts]
    assert not any("nan" in c for c in comments)
    assert targets["L2"][0].comment == "manual:set by bob; no similarity score"


def test_fhir_name_and_id_of_long_and_odd_site_names(workspace, tmp_path, fake_encoder):
    from fhir.resources.R4B.conceptmap import ConceptMap

    long_a, long_b = "a" + "-x.y" * 15, "9b" + "_z" * 20
    for site in (long_a, long_b):
        path = tmp_path / f"{site}.csv"
        path.write_text("code,description\nC1,fever\n")
        add_site(workspace, site, path)
        build_site_index(workspace, site, "fake")
    map_sites(workspace, long_a, long_b, model="fake", k=1)
    out = tmp_path / "m.json"
    export_mappings(workspace, long_a, long_b, "fhir", out)
    resource = ConceptMap.model_validate_json(out.read_text())
    assert re.fullmatch(r"[A-Z]([A-Za-z0-9_]){0,254}", resource.name)
    assert re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", resource.id)


# --- OMOP source_to_concept_map -----------------------------------------------------------


def _cdm_table(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, int]:
    """Creates ``table`` from the vendored CDM 5.4 DDL; returns its varchar lengths (DuckDB
    does not enforce them, so the test checks them)."""
    ddl = DDL.read_text().replace("@cdmDatabaseSchema.", "cdm.")
    statement = re.search(rf"CREATE TABLE cdm\.{table} \(.*?\);", ddl, re.S).group(0)
    con.execute("CREATE SCHEMA cdm")
    con.execute(statement)
    return {name: int(n) for name, n in re.findall(r"(\w+) varchar\((\d+)\)", statement)}


def test_omop_stcm_loads_into_the_cdm_54_ddl(omop_ws, tmp_path):
    out = tmp_path / "stcm.csv"
    export_mappings(omop_ws, "local", "omop", "omop-stcm", out)
    with duckdb.connect() as con:
        lengths = _cdm_table(con, "source_to_concept_map")
        con.execute(
            "INSERT INTO cdm.source_to_concept_map SELECT * FROM "
            "read_csv(?, header = true, all_varchar = true)",
            [str(out)],
        )
        rows = con.sql(
            "SELECT source_code, target_concept_id, source_vocabulary_id, valid_end_date "
            "FROM cdm.source_to_concept_map ORDER BY source_code"
        ).fetchall()
        for column, limit in lengths.items():
            longest = con.execute(
                f"SELECT max(length({column})) FROM cdm.source_to_concept_map"
            ).fetchone()[0]
            assert longest is None or longest <= limit, column
    assert [r[:3] for r in rows] == [
        ("L1", rows[0][1], "local"),
        ("L2", 4329041, "local"),
        ("L3", rows[2][1], "local"),
        ("L4", rows[3][1], "local"),
    ]
    assert str(rows[0][3]) == "2099-12-31"


def test_omop_stcm_refuses_what_the_cdm_cannot_hold(workspace, tmp_path, fake_encoder):
    long_system = "ICD10CM-local-extension"  # 23 characters: source_vocabulary_id is 20
    (tmp_path / "s.csv").write_text(
        f"code,description,system\nC1,fever,{long_system}\n{'X' * 51},cough,ICD\n"
    )
    (tmp_path / "t.csv").write_text("code,description\n437663,fever\n254761,cough\n")
    add_site(workspace, "s", tmp_path / "s.csv")
    add_site(workspace, "t", tmp_path / "t.csv")
    for site in ("s", "t"):
        build_site_index(workspace, site, "fake")
    map_sites(workspace, "s", "t", model="fake", k=1)
    out = tmp_path / "stcm.csv"
    with pytest.raises(InputError) as err:
        export_mappings(workspace, "s", "t", "omop-stcm", out)
    assert str(err.value) == (
        f"omop-stcm: source_code '{'X' * 51}' has 51 characters; the OMOP CDM 5.4 "
        "source_to_concept_map allows 50 (1 rows too long). Recode them before exporting."
    )
    add_site(workspace, "s", tmp_path / "s.csv", replace=True)
    (tmp_path / "s.csv").write_text(f"code,description,system\nC1,fever,{long_system}\n")
    add_site(workspace, "s", tmp_path / "s.csv", replace=True)
    build_site_index(workspace, "s", "fake")
    map_sites(workspace, "s", "t", model="fake", k=1)
    with pytest.raises(InputError) as err:
        export_mappings(workspace, "s", "t", "omop-stcm", out)
    assert str(err.value).startswith(
        f"omop-stcm: source_vocabulary_id '{long_system}' has 23 characters; the OMOP CDM 5.4 "
        "source_to_concept_map allows 20 (1 rows too long)."
    )
    assert not out.exists()


# --- files honour the umask ---------------------------------------------------------------


def test_exports_honour_the_umask(omop_ws, tmp_path):
    old = os.umask(0o022)
    try:
        for fmt in ("sssom", "fhir", "omop-stcm", "usagi"):
            out = tmp_path / f"m.{fmt}"
            export_mappings(omop_ws, "local", "omop", fmt, out)
            assert out.stat().st_mode & 0o777 == 0o644, fmt
        export_events(omop_ws, "local", "omop", "parquet", tmp_path / "e.parquet")
        assert (tmp_path / "e.parquet").stat().st_mode & 0o777 == 0o644
        export_events(omop_ws, "local", "omop", "meds", tmp_path / "meds")
        assert (tmp_path / "meds").stat().st_mode & 0o777 == 0o755
        assert (tmp_path / "meds" / "data" / "0.parquet").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        export_mappings(omop_ws, "local", "omop", "sssom", tmp_path / "private.tsv")
        assert (tmp_path / "private.tsv").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


# --- MEDS ---------------------------------------------------------------------------------


def test_export_events_meds_is_valid_meds(omop_ws, tmp_path):
    """meds' DataSchema, CodeMetadataSchema and DatasetMetadataSchema accept the folder; text
    subject ids get the documented SHA-256 numbers, listed in metadata/subject_ids.parquet."""
    import hashlib

    import pyarrow.parquet as pq
    from meds import CodeMetadataSchema, DataSchema, DatasetMetadataSchema

    out = tmp_path / "meds"
    written = export_events(omop_ws, "local", "omop", "meds", out)
    assert (written.n_events, written.n_skipped) == (4, 0)
    data = pq.read_table(out / "data" / "0.parquet")
    DataSchema.validate(data)
    CodeMetadataSchema.validate(pq.read_table(out / "metadata" / "codes.parquet"))
    DatasetMetadataSchema.validate(json.loads((out / "metadata" / "dataset.json").read_text()))

    def number(subject: str) -> int:  # the rule, restated
        return int.from_bytes(hashlib.sha256(subject.encode()).digest()[:8], "big") >> 1

    ids = pq.read_table(out / "metadata" / "subject_ids.parquet").to_pylist()
    assert sorted((r["source_subject_id"], r["subject_id"]) for r in ids) == [
        ("p1", number("p1")),
        ("p2", number("p2")),
    ]
    rows = data.to_pylist()
    by_subject = [r["subject_id"] for r in rows]
    assert by_subject == sorted(by_subject)  # each subject's rows together
    p1 = [
        (r["time"], r["numeric_value"], r["text_value"])
        for r in rows
        if r["subject_id"] == number("p1")
    ]
    assert [t for t, _, _ in p1] == [
        None,
        pd.Timestamp("2021-03-01 08:00"),
        pd.Timestamp("2021-03-02 09:00"),
    ]
    assert [v for _, v, _ in p1][1] == pytest.approx(37.9) and p1[2][2] == "P"
    assert data.schema.field("text_value").type == "large_string"
    # add-site --meds reads the original ids back through metadata/subject_ids.parquet
    from harmonize.sites.meds import read_meds

    _, back = read_meds(out)
    assert sorted(set(back["subject_id"])) == ["p1", "p2"]


def test_export_events_meds_keeps_integer_subject_ids(omop_ws, tmp_path):
    import pyarrow.parquet as pq
    from meds import DataSchema

    events = tmp_path / "int_events.csv"
    events.write_text("subject_id,code,value\n17,L1,P\n4,L2,\n")
    add_site(omop_ws, "local", tmp_path / "local.csv", events, replace=True)
    build_site_index(omop_ws, "local", "fake")
    map_sites(omop_ws, "local", "omop", model="fake", k=2)
    out = tmp_path / "meds"
    export_events(omop_ws, "local", "omop", "meds", out)
    data = pq.read_table(out / "data" / "0.parquet")
    DataSchema.validate(data)
    assert data.column("subject_id").to_pylist() == [4, 17]
    assert not (out / "metadata" / "subject_ids.parquet").exists()


def test_a_subject_ids_file_without_its_columns_is_named(omop_ws, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from harmonize.sites.meds import read_meds

    out = tmp_path / "meds"
    export_events(omop_ws, "local", "omop", "meds", out)
    ids = out / "metadata" / "subject_ids.parquet"
    pq.write_table(pa.table({"subject_id": pa.array([1], pa.int64())}), ids)
    with pytest.raises(InputError) as err:
        read_meds(out)
    assert str(err.value) == (
        f"{ids}: missing required column 'source_subject_id' "
        "(required: subject_id, source_subject_id; found: subject_id)"
    )
