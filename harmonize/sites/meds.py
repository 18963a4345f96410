"""A site from a MEDS dataset (Medical Event Data Standard): a folder with
``metadata/codes.parquet`` (code, description, parent_codes) and ``data/**/*.parquet``
(subject_id, time, code, numeric_value, optionally text_value).

The vocabulary is every code of ``codes.parquet``, in its order, then every code the data use
that it lacks, sorted. A code with no description (absent from ``codes.parquet``, or a NULL or
blank description there) gets **its code as description**, so it can still be embedded and
mapped. ``parent_code`` is the first of ``parent_codes``; ``system`` is the part of the code
before its first ``//`` (``LOINC//8867-4`` -> ``LOINC``), else empty; ``frequency`` is the number
of events with the code (0 for a code never used; empty when there are no data files).

Events, in file order (files sorted by path): subject_id as text (where the folder has
``metadata/subject_ids.parquet``, as ``harmonize export-events`` writes for ids that were not
integers, the original id it lists), time (NULL for static
events; a time with a time zone becomes its UTC time), code, and value: ``numeric_value`` as
text (``"1.5"``; NaN counts as missing), else ``text_value``, else None.

>>> import pathlib, tempfile
>>> import pyarrow as pa, pyarrow.parquet as pq
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "data").mkdir()
>>> pq.write_table(pa.table({"subject_id": [1], "time": [None], "code": ["LOINC//8867-4"],
...     "numeric_value": pa.array([72.0], pa.float32())}), root / "data" / "0.parquet")
>>> vocab, events = read_meds(root)
>>> vocab[["code", "description", "system", "frequency"]].values.tolist()
[['LOINC//8867-4', 'LOINC//8867-4', 'LOINC', 1]]
>>> events.values.tolist()
[['1', NaT, 'LOINC//8867-4', '72.0']]
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harmonize.core import sql
from harmonize.core.errors import InputError
from harmonize.core.sql_builder import meds_events
from harmonize.sites.vocab import (
    CODE,
    DESCRIPTION,
    FREQUENCY,
    PARENT_CODE,
    SUBJECT_ID,
    SYSTEM,
    TIME,
    VALUE,
    validate_vocab,
)

CODES_FILE = Path("metadata") / "codes.parquet"
SUBJECT_IDS_FILE = Path("metadata") / "subject_ids.parquet"
DATA_DIR = "data"
CODES_REQUIRED = (CODE,)
DATA_REQUIRED = (SUBJECT_ID, TIME, CODE)
NUMERIC_VALUE = "numeric_value"
TEXT_VALUE = "text_value"


def read_meds(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(vocabulary, events) of the MEDS dataset in ``folder``.

    The vocabulary is validated (:func:`harmonize.vocab.validate_vocab`), ready for
    ``add_site(ws, name, None, vocab=vocab, events=events)``; events have columns subject_id,
    time, code, value. See the module docstring for the rules.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"MEDS folder not found: {folder}")
    if not folder.is_dir():
        raise InputError(
            f"not a folder: {folder} (a MEDS dataset is a folder with {CODES_FILE.as_posix()} "
            f"and {DATA_DIR}/**/*.parquet)"
        )
    codes_path = folder / CODES_FILE
    data_dir = folder / DATA_DIR
    files = (
        sorted(p for p in data_dir.rglob("*.parquet") if p.is_file()) if data_dir.is_dir() else []
    )
    if not codes_path.is_file() and not files:
        raise InputError(
            f"{folder} is not a MEDS dataset: it has no {CODES_FILE.as_posix()} and no "
            f"{DATA_DIR}/**/*.parquet files"
        )
    codes = _read_codes(codes_path) if codes_path.is_file() else _empty_codes()
    events = _read_data(data_dir, files) if files else None
    if events is not None and (folder / SUBJECT_IDS_FILE).is_file():
        events[SUBJECT_ID] = _source_subject_ids(folder / SUBJECT_IDS_FILE, events[SUBJECT_ID])
    known = set(codes[CODE])
    used = [] if events is None else sorted(set(events[CODE]) - known)
    vocab = pd.concat(
        [codes, pd.DataFrame({CODE: used, DESCRIPTION: used, PARENT_CODE: None})],
        ignore_index=True,
    )
    if vocab.empty:
        raise InputError(
            f"{folder}: no codes: {CODES_FILE.as_posix()} has no rows and the data files "
            "have no events"
        )
    vocab[SYSTEM] = [c.split("//", 1)[0] if "//" in c else None for c in vocab[CODE]]
    if events is None:
        vocab[FREQUENCY] = None
    else:
        counts = events[CODE].value_counts()
        vocab[FREQUENCY] = [int(counts.get(c, 0)) for c in vocab[CODE]]
    vocab = vocab[[CODE, DESCRIPTION, SYSTEM, PARENT_CODE, FREQUENCY]]
    if events is None:
        events = pd.DataFrame(
            {
                SUBJECT_ID: pd.Series([], dtype=object),
                TIME: pd.Series([], dtype="datetime64[us]"),
                CODE: pd.Series([], dtype=object),
                VALUE: pd.Series([], dtype=object),
            }
        )
    return validate_vocab(vocab, folder), events


def _source_subject_ids(path: Path, subjects: pd.Series) -> pd.Series:
    """``subjects`` (MEDS ids as text) as the original ids ``path`` lists for them (columns
    subject_id, source_subject_id); an id it does not list stays as it is."""
    schema = _schema(path)
    _require(path, schema, ("subject_id", "source_subject_id"))
    pairs = pq.read_table(path, columns=["subject_id", "source_subject_id"]).to_pandas()
    original = dict(zip(pairs["subject_id"].astype(str), pairs["source_subject_id"], strict=True))
    return subjects.map(lambda s: original.get(s, s))


def _schema(path: Path) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read Parquet file {path}: {exc}") from exc


def _require(path: Path, schema: pa.Schema, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in schema.names]
    if missing:
        found = ", ".join(schema.names) or "none"
        raise InputError(
            f"{path}: missing required column '{missing[0]}' "
            f"(required: {', '.join(required)}; found: {found})"
        )


def _empty_codes() -> pd.DataFrame:
    return pd.DataFrame({CODE: [], DESCRIPTION: [], PARENT_CODE: []}, dtype=object)


def _text(value: object) -> str | None:
    """Stripped text, or None for NULL or blank."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _first_parent(value: object) -> str | None:
    """The first of ``parent_codes`` (a list; a plain string is taken as it is)."""
    if isinstance(value, (list, tuple)):
        value = next((v for v in value if _text(v) is not None), None)
    return _text(value)


def _read_codes(path: Path) -> pd.DataFrame:
    """codes.parquet as (code, description, parent_code), each code present once."""
    schema = _schema(path)
    _require(path, schema, CODES_REQUIRED)
    columns = [c for c in (CODE, DESCRIPTION, "parent_codes") if c in schema.names]
    try:
        table = pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read Parquet file {path}: {exc}") from exc
    codes = [_text(v) for v in table.column(CODE).to_pylist()]
    seen: dict[str, int] = {}
    for i, code in enumerate(codes):
        if code is None:
            raise InputError(f"{path}, row {i + 1}: empty value in column 'code'")
        if code in seen:
            raise InputError(
                f"{path}, row {i + 1}: duplicate code '{code}' in column 'code' "
                f"(first seen on row {seen[code] + 1})"
            )
        seen[code] = i
    if DESCRIPTION in columns:
        descriptions = [_text(v) for v in table.column(DESCRIPTION).to_pylist()]
    else:
        descriptions = [None] * len(codes)
    if "parent_codes" in columns:
        parents = [_first_parent(v) for v in table.column("parent_codes").to_pylist()]
    else:
        parents = [None] * len(codes)
    return pd.DataFrame(
        {
            CODE: codes,
            DESCRIPTION: [
                d if d is not None else c for c, d in zip(codes, descriptions, strict=True)
            ],
            PARENT_CODE: parents,
        },
        dtype=object,
    )


def _read_data(data_dir: Path, files: list[Path]) -> pd.DataFrame:
    """All events of the data files, through one DuckDB scan."""
    names: set[str] = set()
    for file in files:
        schema = _schema(file)
        _require(file, schema, DATA_REQUIRED)
        names.update(schema.names)
    paths = [str(f) for f in files]
    scan = meds_events(
        paths,
        subject=SUBJECT_ID,
        time=TIME,
        code=CODE,
        numeric=NUMERIC_VALUE if NUMERIC_VALUE in names else None,
        text=TEXT_VALUE if TEXT_VALUE in names else None,
        value_as=VALUE,
    )
    con = duckdb.connect()
    try:
        sql.run_internal(con, "set_utc")  # a time with a zone is stored as its UTC time
        events = scan.run(con).df()
        bad = events[SUBJECT_ID].isna() | events[CODE].isna() | events[CODE].eq("")
        if bad.any():
            file, row, column = sql.run_internal(con, "meds_first_empty", files=paths).fetchone()
            raise InputError(f"{file}, row {row + 1}: empty value in column '{column}'")
    except duckdb.Error as exc:
        message = str(exc).strip().splitlines()[0]
        raise InputError(f"cannot read the MEDS data files under {data_dir}: {message}") from exc
    finally:
        con.close()
    for column in (SUBJECT_ID, CODE, VALUE):
        events[column] = events[column].astype(object).where(events[column].notna(), None)
    return events
