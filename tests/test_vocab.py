"""Reading and validating vocabulary and events files (harmonize/vocab.py)."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harmonize.core.errors import InputError
from harmonize.sites.vocab import read_events, read_vocab, vocab_sha256

SITE_B = """code,description,parent_code,frequency,note
B1,fever reported,RESP,10,x
B2,cough dry,RESP,5,y
B3,dyspnea acute,RESP,7,z
B4,throat sore,ENT,1,w
"""


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def error_of(func, *args):
    with pytest.raises(InputError) as exc:
        func(*args)
    return str(exc.value)


def strict_json(text):
    """json.loads that refuses NaN/Infinity, which are not JSON."""

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


# --- errors, with exact messages -------------------------------------------------------------


def test_missing_required_column(tmp_path):
    """The message names the file, the missing column, what is required and what was found."""
    path = write(tmp_path, "v.csv", "code,desc\nA,a\n")
    assert error_of(read_vocab, path) == (
        f"{path}: missing required column 'description' "
        "(required: code, description; found: code, desc)"
    )


def test_duplicate_code_reports_both_lines(tmp_path):
    """Line numbers count the header as line 1; the first occurrence is named too."""
    path = write(tmp_path, "v.csv", "code,description\nA,a\nB,b\nC,c\n B ,again\n")
    assert error_of(read_vocab, path) == (
        f"{path}, line 5: duplicate code 'B' in column 'code' (first seen on line 3)"
    )


def test_empty_description_in_tsv(tmp_path):
    """A blank (whitespace-only) description is empty; TSV files get line numbers too."""
    path = write(tmp_path, "v.tsv", "code\tdescription\nA\ta\nB\t   \n")
    assert error_of(read_vocab, path) == f"{path}, line 3: empty value in column 'description'"


def test_empty_code(tmp_path):
    """An empty code is reported before anything else about the row."""
    path = write(tmp_path, "v.csv", "code,description\nA,a\n,b\n")
    assert error_of(read_vocab, path) == f"{path}, line 3: empty value in column 'code'"


def test_non_utf8_byte_names_line(tmp_path):
    """A Latin-1 byte is reported with its value and line, with a fix."""
    path = write(tmp_path, "v.csv", b"code,description\nA,a\nB,caf\xe9\n")
    assert error_of(read_vocab, path) == (
        f"{path} is not valid UTF-8: byte 0xe9 on line 3. Re-save the file as UTF-8."
    )


@pytest.mark.parametrize("content", ["", "  \n\n"])
def test_empty_file(tmp_path, content):
    """An empty or blank file says what was expected."""
    path = write(tmp_path, "v.csv", content)
    assert error_of(read_vocab, path) == f"{path} is empty: expected a header line and rows"


def test_header_without_rows(tmp_path):
    """A header alone is not a vocabulary."""
    path = write(tmp_path, "v.csv", "code,description\n")
    assert error_of(read_vocab, path) == (
        f"{path}: no concepts (the file has a header but no rows)"
    )


def test_unsupported_extension_and_missing_file(tmp_path):
    """Only .csv/.tsv/.txt/.parquet are read; a missing path is named."""
    path = write(tmp_path, "v.xlsx", "code,description\nA,a\n")
    assert error_of(read_vocab, path) == (
        f"unsupported file type '.xlsx' for {path}: use .csv, .tsv or .parquet"
    )
    missing = tmp_path / "nope.csv"
    assert error_of(read_vocab, missing) == f"file not found: {missing}"


@pytest.mark.parametrize("value", ["-3", "2.5", "many"])
def test_bad_frequency(tmp_path, value):
    """Frequencies must be non-negative integers; the offending text is quoted."""
    path = write(tmp_path, "v.csv", f"code,description,frequency\nA,a,1\nB,b,{value}\n")
    assert error_of(read_vocab, path) == (
        f"{path}, line 3: column 'frequency' must be a non-negative integer, got '{value}'"
    )


def test_parquet_errors_use_row_numbers(tmp_path):
    """Parquet has no lines: errors count data rows from 1."""
    path = tmp_path / "v.parquet"
    pq.write_table(pa.table({"code": ["A", "B", "A"], "description": ["a", "b", "c"]}), path)
    assert error_of(read_vocab, path) == (
        f"{path}, row 3: duplicate code 'A' in column 'code' (first seen on row 1)"
    )


def test_corrupt_parquet(tmp_path):
    """A file named .parquet that is not Parquet is an InputError, not a crash."""
    path = write(tmp_path, "v.parquet", "code,description\nA,a\n")
    assert error_of(read_vocab, path).startswith(f"cannot read Parquet file {path}: ")


def test_blank_line_does_not_shift_line_numbers(tmp_path):
    """pandas skips blank lines, so the duplicate on physical line 4 must be reported as such."""
    path = write(tmp_path, "v.csv", "code,description\nA,a\n\nA,b\n")
    assert error_of(read_vocab, path) == (
        f"{path}, line 4: duplicate code 'A' in column 'code' (first seen on line 2)"
    )


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_huge_frequency_is_an_input_error(tmp_path):
    """A frequency beyond int64 is a user error."""
    path = write(tmp_path, "v.csv", "code,description,frequency\nA,a,99999999999999999999999\n")
    with pytest.raises(InputError):
        read_vocab(path)


# --- happy paths -------------------------------------------------------------------------------


def test_full_vocabulary_columns(tmp_path):
    """Optional columns are parsed, blanks become missing, other columns go to ``extra``."""
    path = write(tmp_path, "b.csv", SITE_B)
    vocab = read_vocab(path)
    assert list(vocab.columns) == [
        "concept_id",
        "code",
        "description",
        "system",
        "parent_code",
        "frequency",
        "extra",
    ]
    assert vocab["concept_id"].tolist() == [0, 1, 2, 3]
    assert vocab["code"].tolist() == ["B1", "B2", "B3", "B4"]
    assert vocab["parent_code"].tolist() == ["RESP", "RESP", "RESP", "ENT"]
    assert vocab["system"].isna().all()
    assert vocab["frequency"].tolist() == [10, 5, 7, 1]
    assert [strict_json(e) for e in vocab["extra"]] == [
        {"note": "x"},
        {"note": "y"},
        {"note": "z"},
        {"note": "w"},
    ]


def test_values_are_text_and_stripped(tmp_path):
    """Codes keep leading zeros; surrounding spaces go; blank optional cells are missing;
    non-ASCII extras stay readable in the JSON."""
    path = write(
        tmp_path,
        "v.csv",
        "code,description,system,frequency,ward,unit\n"
        "007 , fièvre ,,,Nord,\n"
        "1.0,dry cough,icd, 3 ,Süd,mg\n",
    )
    vocab = read_vocab(path)
    assert vocab["code"].tolist() == ["007", "1.0"]
    assert vocab["description"].tolist() == ["fièvre", "dry cough"]
    assert vocab["system"].isna().tolist() == [True, False]
    assert vocab["system"].iloc[1] == "icd"
    assert vocab["frequency"].tolist()[1] == 3
    assert pd.isna(vocab["frequency"].iloc[0])
    assert vocab["extra"].tolist() == [
        '{"ward": "Nord", "unit": ""}',
        '{"ward": "Süd", "unit": "mg"}',
    ]


def test_no_extra_columns_gives_null_extra(tmp_path):
    """Without other columns, ``extra`` is missing rather than '{}'."""
    vocab = read_vocab(write(tmp_path, "v.csv", "code,description\nA,a\n"))
    assert vocab["extra"].isna().all()
    assert vocab["frequency"].isna().all()


def test_bom_is_ignored(tmp_path):
    """A UTF-8 byte-order mark does not become part of the first column's name."""
    plain = read_vocab(write(tmp_path, "plain.csv", "code,description\nA,a\nB,b\n"))
    bom = read_vocab(write(tmp_path, "bom.csv", b"\xef\xbb\xbfcode,description\nA,a\nB,b\n"))
    pd.testing.assert_frame_equal(plain, bom)


def test_parquet_equals_csv(tmp_path):
    """The same vocabulary as Parquet (text or integer frequency) reads to the same frame and
    the same hash as the CSV."""
    csv_path = write(tmp_path, "b.csv", SITE_B)
    from_csv = read_vocab(csv_path)
    text = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    pq.write_table(pa.Table.from_pandas(text, preserve_index=False), tmp_path / "b.parquet")
    typed = text.assign(frequency=text["frequency"].astype("int64"))
    pq.write_table(pa.Table.from_pandas(typed, preserve_index=False), tmp_path / "t.parquet")
    for name in ("b.parquet", "t.parquet"):
        from_parquet = read_vocab(tmp_path / name)
        pd.testing.assert_frame_equal(from_parquet, from_csv)
        assert vocab_sha256(from_parquet) == vocab_sha256(from_csv)


def test_parquet_null_extra_is_valid_json(tmp_path):
    """A null in an extra Parquet column must still give valid JSON, like an empty CSV cell."""
    path = tmp_path / "v.parquet"
    pq.write_table(
        pa.table({"code": ["A"], "description": ["a"], "note": pa.array([None], pa.string())}),
        path,
    )
    assert strict_json(read_vocab(path)["extra"].iloc[0])["note"] in ("", None)


def test_vocab_sha256_tracks_code_and_description_only(tmp_path):
    """The hash is sha256 over code\\x1fdescription\\x1e rows in order: it changes with a
    description or the row order, not with frequency, system, parent or extra columns."""
    base = read_vocab(write(tmp_path, "a.csv", "code,description\nA,a\nB,b\n"))
    expected = hashlib.sha256(b"A\x1fa\x1eB\x1fb\x1e").hexdigest()
    assert vocab_sha256(base) == expected
    same = read_vocab(
        write(
            tmp_path,
            "b.csv",
            "code,description,frequency,system,parent_code,note\n A ,a ,5,x,P,n1\nB,b,9,y,Q,n2\n",
        )
    )
    assert vocab_sha256(same) == expected
    changed = read_vocab(write(tmp_path, "c.csv", "code,description\nA,a\nB,b!\n"))
    reordered = read_vocab(write(tmp_path, "d.csv", "code,description\nB,b\nA,a\n"))
    assert vocab_sha256(changed) != expected
    assert vocab_sha256(reordered) != expected


# --- events ------------------------------------------------------------------------------------


def test_events_happy_path(tmp_path):
    """Codes and subjects are stripped text, times parsed (blank = NaT), blank values missing."""
    path = write(
        tmp_path,
        "e.csv",
        "subject_id,code,time,value\n"
        "p01, A ,2020-01-02 10:30:00,38.5\n"
        "p01,B,,\n"
        "p02,A,2021-12-31 00:00:00,x\n",
    )
    events = read_events(path, {"A", "B"})
    assert list(events.columns) == ["subject_id", "code", "time", "value"]
    assert events["subject_id"].tolist() == ["p01", "p01", "p02"]
    assert events["code"].tolist() == ["A", "B", "A"]
    assert events["time"].iloc[0] == pd.Timestamp("2020-01-02 10:30:00")
    assert pd.isna(events["time"].iloc[1])
    assert events["time"].iloc[2] == pd.Timestamp("2021-12-31")
    assert events["value"].isna().tolist() == [False, True, False]
    assert events["value"].iloc[[0, 2]].tolist() == ["38.5", "x"]


def test_events_without_optional_columns(tmp_path):
    """Without time and value columns, every time is NaT and every value missing."""
    events = read_events(write(tmp_path, "e.tsv", "subject_id\tcode\n1\tA\n2\tA\n"), {"A"})
    assert events["time"].isna().all()
    assert events["value"].isna().all()
    assert events["subject_id"].tolist() == ["1", "2"]


def test_events_unknown_code(tmp_path):
    """An event code outside the vocabulary is named with its line."""
    path = write(tmp_path, "e.csv", "subject_id,code\n1,A\n2,ZZ\n")
    assert error_of(read_events, path, {"A"}) == (
        f"{path}, line 3: code 'ZZ' in column 'code' is not in the site's vocabulary"
    )


def test_events_bad_time(tmp_path):
    """An unparseable time is quoted with its line."""
    path = write(tmp_path, "e.csv", "subject_id,code,time\n1,A,2020-01-01\n2,A,yesterday\n")
    assert error_of(read_events, path, {"A"}) == (
        f"{path}, line 3: column 'time' is not a date/time: 'yesterday'"
    )


def test_events_missing_column_and_empty_subject(tmp_path):
    """subject_id is required and must not be blank."""
    path = write(tmp_path, "e.csv", "code,time\nA,\n")
    assert error_of(read_events, path, {"A"}) == (
        f"{path}: missing required column 'subject_id' "
        "(required: subject_id, code; found: code, time)"
    )
    path = write(tmp_path, "f.csv", "subject_id,code\n1,A\n ,A\n")
    assert error_of(read_events, path, {"A"}) == (
        f"{path}, line 3: empty value in column 'subject_id'"
    )


def test_events_mixed_iso_times(tmp_path):
    """A date and a date-time in ISO 8601 are both valid times."""
    path = write(tmp_path, "e.csv", "subject_id,code,time\n1,A,2020-01-01\n2,A,2020-01-02 10:00\n")
    events = read_events(path, {"A"})
    assert events["time"].iloc[1] == pd.Timestamp("2020-01-02 10:00")
