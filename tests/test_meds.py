"""MEDS sites: tiny datasets written with pyarrow, exact outputs, exact errors, end to end."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harmonize.core.errors import InputError
from harmonize.core.workspace import Workspace
from harmonize.sites.meds import read_meds
from harmonize.sites.registry import add_site

T = pd.Timestamp

CODES = pa.table(
    {
        "code": ["MEDS_BIRTH", "LOINC//8867-4", "ICD10CM//J10.1", "SNOMED//386661006"],
        "description": [None, "Heart rate", "Influenza with respiratory manifestations", " "],
        "parent_codes": pa.array(
            [None, ["LOINC//LP415671-9", "LOINC//x"], [], ["SNOMED//404684003"]],
            pa.list_(pa.string()),
        ),
    }
)

# MEDS v0.3 types: int64 subject_id, timestamp[us] time, float32 numeric_value.
TRAIN = pa.table(
    {
        "subject_id": pa.array([1, 1, 1, 1], pa.int64()),
        "time": pa.array(
            [None, dt.datetime(2020, 1, 1, 8), dt.datetime(2020, 1, 1, 9), dt.datetime(2020, 1, 2)],
            pa.timestamp("us"),
        ),
        "code": ["MEDS_BIRTH", "LOINC//8867-4", "LOINC//8867-4", "ICD10CM//J10.1"],
        "numeric_value": pa.array([None, 72.5, float("nan"), None], pa.float32()),
    }
)
HELD_OUT = pa.table(
    {
        "subject_id": pa.array([2, 2], pa.int64()),
        "time": pa.array([dt.datetime(2021, 5, 1), dt.datetime(2021, 5, 1)], pa.timestamp("us")),
        "code": ["LOCAL//FLU_PCR", "LOINC//8867-4"],
        "numeric_value": pa.array([None, 0.1], pa.float32()),
        "text_value": ["positive", "ignored: numeric_value wins"],
    }
)


def write_meds(
    root: Path, codes: pa.Table | None = CODES, data: dict[str, pa.Table] | None = None
) -> Path:
    """A MEDS folder: metadata/codes.parquet and data/<relative path> for each table."""
    if data is None:
        data = {"train/0.parquet": TRAIN, "held_out/0.parquet": HELD_OUT}
    if codes is not None:
        (root / "metadata").mkdir(parents=True)
        pq.write_table(codes, root / "metadata" / "codes.parquet")
    for relative, table in data.items():
        path = root / "data" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
    root.mkdir(parents=True, exist_ok=True)
    return root


def vocab_rows(vocab: pd.DataFrame) -> list[tuple]:
    columns = ["code", "description", "system", "parent_code", "frequency"]
    return [tuple(None if pd.isna(v) else v for v in row) for row in vocab[columns].values.tolist()]


def test_read_meds_exact(tmp_path: Path) -> None:
    vocab, events = read_meds(write_meds(tmp_path / "meds"))
    assert vocab_rows(vocab) == [
        # codes.parquet in its order; a missing or blank description becomes the code
        ("MEDS_BIRTH", "MEDS_BIRTH", None, None, 1),
        ("LOINC//8867-4", "Heart rate", "LOINC", "LOINC//LP415671-9", 3),
        ("ICD10CM//J10.1", "Influenza with respiratory manifestations", "ICD10CM", None, 1),
        ("SNOMED//386661006", "SNOMED//386661006", "SNOMED", "SNOMED//404684003", 0),
        # used in the data but not in codes.parquet
        ("LOCAL//FLU_PCR", "LOCAL//FLU_PCR", "LOCAL", None, 1),
    ]
    assert vocab["concept_id"].tolist() == [0, 1, 2, 3, 4]
    assert list(events.columns) == ["subject_id", "time", "code", "value"]
    # files in path order: data/held_out/0.parquet, then data/train/0.parquet
    assert events.values.tolist() == [
        ["2", T("2021-05-01"), "LOCAL//FLU_PCR", "positive"],
        ["2", T("2021-05-01"), "LOINC//8867-4", "0.1"],
        ["1", pd.NaT, "MEDS_BIRTH", None],
        ["1", T("2020-01-01 08:00"), "LOINC//8867-4", "72.5"],
        ["1", T("2020-01-01 09:00"), "LOINC//8867-4", None],  # NaN is missing
        ["1", T("2020-01-02"), "ICD10CM//J10.1", None],
    ]


def test_data_without_metadata(tmp_path: Path) -> None:
    vocab, events = read_meds(write_meds(tmp_path / "meds", codes=None))
    assert vocab_rows(vocab) == [
        ("ICD10CM//J10.1", "ICD10CM//J10.1", "ICD10CM", None, 1),
        ("LOCAL//FLU_PCR", "LOCAL//FLU_PCR", "LOCAL", None, 1),
        ("LOINC//8867-4", "LOINC//8867-4", "LOINC", None, 3),
        ("MEDS_BIRTH", "MEDS_BIRTH", None, None, 1),
    ]
    assert len(events) == 6


def test_metadata_without_data(tmp_path: Path) -> None:
    vocab, events = read_meds(write_meds(tmp_path / "meds", data={}))
    assert vocab["code"].tolist() == CODES.column("code").to_pylist()
    assert vocab["frequency"].isna().all()  # unknown, not 0
    assert list(events.columns) == ["subject_id", "time", "code", "value"]
    assert events.empty


def test_minimal_columns(tmp_path: Path) -> None:
    """codes.parquet with only code; data without numeric_value or text_value."""
    root = write_meds(
        tmp_path / "meds",
        codes=pa.table({"code": ["A"]}),
        data={"0.parquet": pa.table({"subject_id": ["s1"], "time": [None], "code": [" A "]})},
    )
    vocab, events = read_meds(root)
    assert vocab_rows(vocab) == [("A", "A", None, None, 1)]
    assert events.values.tolist() == [["s1", pd.NaT, "A", None]]


def error(root: Path) -> str:
    with pytest.raises(InputError) as err:
        read_meds(root)
    return str(err.value)


def test_missing_folder(tmp_path: Path) -> None:
    assert error(tmp_path / "nope") == f"MEDS folder not found: {tmp_path / 'nope'}"


def test_not_a_folder(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    path.write_bytes(b"")
    assert error(path) == (
        f"not a folder: {path} (a MEDS dataset is a folder with metadata/codes.parquet "
        "and data/**/*.parquet)"
    )


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    assert error(tmp_path) == (
        f"{tmp_path} is not a MEDS dataset: it has no metadata/codes.parquet and no "
        "data/**/*.parquet files"
    )


def test_no_codes_at_all(tmp_path: Path) -> None:
    root = write_meds(tmp_path / "meds", codes=CODES.slice(0, 0), data={"0.parquet": TRAIN[:0]})
    assert error(root) == (
        f"{root}: no codes: metadata/codes.parquet has no rows and the data files have no events"
    )


def test_codes_file_without_code_column(tmp_path: Path) -> None:
    root = write_meds(tmp_path / "meds", codes=pa.table({"concept": ["A"], "description": ["a"]}))
    assert error(root) == (
        f"{root / 'metadata' / 'codes.parquet'}: missing required column 'code' "
        "(required: code; found: concept, description)"
    )


def test_data_file_without_time_column(tmp_path: Path) -> None:
    bad = pa.table({"subject_id": [3], "code": ["MEDS_BIRTH"]})
    root = write_meds(tmp_path / "meds", data={"train/0.parquet": TRAIN, "train/1.parquet": bad})
    assert error(root) == (
        f"{root / 'data' / 'train' / '1.parquet'}: missing required column 'time' "
        "(required: subject_id, time, code; found: subject_id, code)"
    )


def test_unreadable_parquet(tmp_path: Path) -> None:
    root = write_meds(tmp_path / "meds")
    bad = root / "data" / "train" / "1.parquet"
    bad.write_bytes(b"not parquet at all")
    assert error(root).startswith(f"cannot read Parquet file {bad}: ")
    codes = root / "metadata" / "codes.parquet"
    codes.write_bytes(b"PAR1")
    assert error(root).startswith(f"cannot read Parquet file {codes}: ")


def test_duplicate_code_in_codes_file(tmp_path: Path) -> None:
    codes = pa.table({"code": ["A", "B", "A"], "description": ["a", "b", "again"]})
    root = write_meds(tmp_path / "meds", codes=codes)
    assert error(root) == (
        f"{root / 'metadata' / 'codes.parquet'}, row 3: duplicate code 'A' in column 'code' "
        "(first seen on row 1)"
    )


def test_empty_code_in_codes_file(tmp_path: Path) -> None:
    root = write_meds(tmp_path / "meds", codes=pa.table({"code": ["A", None]}))
    assert error(root) == (
        f"{root / 'metadata' / 'codes.parquet'}, row 2: empty value in column 'code'"
    )


def test_empty_code_or_subject_in_data(tmp_path: Path) -> None:
    bad = TRAIN.set_column(2, "code", pa.array(["MEDS_BIRTH", "LOINC//8867-4", "  ", "A"]))
    root = write_meds(tmp_path / "meds", data={"train/0.parquet": bad})
    assert error(root) == (
        f"{root / 'data' / 'train' / '0.parquet'}, row 3: empty value in column 'code'"
    )
    nobody = HELD_OUT.set_column(0, "subject_id", pa.array([2, None], pa.int64()))
    root = write_meds(tmp_path / "meds2", data={"a.parquet": HELD_OUT, "b.parquet": nobody})
    assert error(root) == (
        f"{root / 'data' / 'b.parquet'}, row 2: empty value in column 'subject_id'"
    )


def test_meds_site_end_to_end(tmp_path: Path, workspace: Workspace) -> None:
    vocab, events = read_meds(write_meds(tmp_path / "meds"))
    result = add_site(workspace, "meds", None, vocab=vocab, events=events)
    assert result.message == "added site 'meds': 5 concepts and 6 events"
    with workspace.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT e.code, c.description, count(*), count(e.time), count(e.value) "
            "FROM events e JOIN concepts c ON c.site = e.site AND c.code = e.code "
            "WHERE e.site = $site GROUP BY ALL ORDER BY e.code",
            {"site": "meds"},
        ).fetchall()
    assert rows == [
        ("ICD10CM//J10.1", "Influenza with respiratory manifestations", 1, 1, 0),
        ("LOCAL//FLU_PCR", "LOCAL//FLU_PCR", 1, 1, 1),
        ("LOINC//8867-4", "Heart rate", 3, 3, 2),
        ("MEDS_BIRTH", "MEDS_BIRTH", 1, 0, 0),
    ]


def test_time_zones_become_utc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A zoned time is stored as its UTC time, whatever the machine's zone."""
    monkeypatch.setenv("TZ", "America/New_York")
    utc = dt.datetime(2020, 1, 1, 8, tzinfo=dt.timezone.utc)
    zoned = pa.table(
        {
            "subject_id": pa.array([1], pa.int64()),
            "time": pa.array([utc], pa.timestamp("us", tz="UTC")),
            "code": ["A"],
        }
    )
    _, events = read_meds(write_meds(tmp_path / "meds", codes=None, data={"0.parquet": zoned}))
    assert events["time"].tolist() == [T("2020-01-01 08:00")]
