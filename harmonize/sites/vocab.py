"""Reading and validating a site's vocabulary and events files (CSV, TSV or Parquet).

A vocabulary has columns ``code`` and ``description`` (required) and optionally ``system``,
``parent_code``, ``frequency`` and ``synonyms`` (other names of the concept, separated by
``|``; each is embedded and searched beside the description); any other column is kept in
``extra`` as JSON.
Errors name the file, the row (as a line number for text files) and the column.

>>> import pathlib, tempfile
>>> p = pathlib.Path(tempfile.mkdtemp()) / "v.csv"
>>> _ = p.write_text("code,description\\nC1,dyspnea\\n")
>>> read_vocab(p)[["code", "description"]].values.tolist()
[['C1', 'dyspnea']]
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harmonize.core.errors import InputError

CODE = "code"
DESCRIPTION = "description"
SYSTEM = "system"
PARENT_CODE = "parent_code"
FREQUENCY = "frequency"
SYNONYMS = "synonyms"
SYNONYM_SEPARATOR = "|"
VOCAB_REQUIRED = (CODE, DESCRIPTION)
VOCAB_OPTIONAL = (SYSTEM, PARENT_CODE, FREQUENCY, SYNONYMS)

SUBJECT_ID = "subject_id"
TIME = "time"
VALUE = "value"
EVENTS_REQUIRED = (SUBJECT_ID, CODE)
EVENTS_OPTIONAL = (TIME, VALUE)

_TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": ","}


def _row_ref(path: Path, index: int, frame: pd.DataFrame | None = None) -> str:
    """How a user finds row ``index`` (0-based data row): its physical line in a text file
    (blank lines and quoted line breaks counted), else its 1-based row number."""
    if path.suffix.lower() in _TEXT_SUFFIXES:
        lines = frame.attrs.get("lines") if frame is not None else None
        return f"line {lines[index] if lines else index + 2}"
    return f"row {index + 1}"


class _SharedList(list):
    """pandas deep-copies ``attrs`` on every operation; line numbers never change, so share."""

    def __deepcopy__(self, memo: dict) -> _SharedList:
        return self


def _at(path: Path, index: int, frame: pd.DataFrame) -> str:
    """``FILE, line N`` (or ``row N``) for error messages."""
    return f"{path}, {_row_ref(path, index, frame)}"


def _data_lines(text: str, sep: str, path: Path) -> list[int]:
    """The physical line on which each non-blank data row starts, as pandas will read them.
    A row with more fields than the header is an InputError (pandas would silently take the
    first fields of such a row as an index, shifting every column)."""
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    starts = []
    previous_end = 0
    width = None
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))  # one field may be the whole file
    try:
        for row in reader:
            start = previous_end + 1
            previous_end = reader.line_num
            if not row:  # csv yields [] for a blank line, which pandas skips too
                continue
            starts.append(start)
            if width is None:
                width = len(row)
            elif len(row) > width:
                raise InputError(
                    f"{path}, line {start}: {len(row)} fields, but the header has {width}"
                )
    except csv.Error as exc:
        raise InputError(f"cannot parse {path}: {exc}") from exc
    finally:
        csv.field_size_limit(limit)
    return starts[1:]  # the first is the header


def read_table(path: str | Path) -> pd.DataFrame:
    """Reads a CSV/TSV (UTF-8, all columns as text) or Parquet file, or raises InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"file not found: {path}")
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"cannot read Parquet file {path}: {exc}") from exc
        frame = table.to_pandas()
        # Missing text becomes "" as on the CSV path, so every later check sees strings.
        for column in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[column]):
                frame[column] = frame[column].astype(object).where(frame[column].notna(), "")
        return frame
    if suffix not in _TEXT_SUFFIXES:
        raise InputError(
            f"unsupported file type '{path.suffix}' for {path}: use .csv, .tsv or .parquet"
        )
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path} is not valid UTF-8: byte 0x{raw[exc.start]:02x} on line {line}. "
            "Re-save the file as UTF-8."
        ) from exc
    text = raw.decode("utf-8-sig")
    if not text.strip():
        raise InputError(f"{path} is empty: expected a header line and rows")
    sep = _TEXT_SUFFIXES[suffix]
    lines = _data_lines(text, sep, path)
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputError(f"cannot parse {path}: {exc}") from exc
    if len(lines) == len(frame):
        frame.attrs["lines"] = _SharedList(lines)
    return frame


def _require_columns(frame: pd.DataFrame, path: Path, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns)) or "none"
        raise InputError(
            f"{path}: missing required column '{missing[0]}' "
            f"(required: {', '.join(required)}; found: {found})"
        )


def _text_column(frame: pd.DataFrame, column: str) -> pd.Series:
    series = frame[column]
    return series.map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v))


def _non_empty(frame: pd.DataFrame, path: Path, columns: tuple[str, ...]) -> list[pd.Series]:
    """The stripped text of ``columns``; the first empty cell is an InputError."""
    out = []
    for column in columns:
        nested = frame[column].map(lambda v: isinstance(v, bytes | list | dict | np.ndarray))
        if nested.any():
            i = int(nested.to_numpy().nonzero()[0][0])
            value = frame[column].iloc[i]
            kind = {bytes: "bytes", dict: "a struct"}.get(type(value), "a list")
            raise InputError(
                f"{_at(path, i, frame)}: column '{column}' holds {kind}, not text or a number"
            )
        values = _text_column(frame, column).str.strip()
        empty = values.eq("")
        if empty.any():
            i = int(empty.to_numpy().nonzero()[0][0])
            raise InputError(f"{_at(path, i, frame)}: empty value in column '{column}'")
        out.append(values)
    return out


def read_vocab(path: str | Path) -> pd.DataFrame:
    """A validated vocabulary with columns concept_id, code, description, system,
    parent_code, frequency, extra (JSON of any other columns)."""
    path = Path(path)
    return validate_vocab(read_table(path), path)


def validate_vocab(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Checks and normalises a vocabulary frame read from ``path`` (named in messages; a
    reader of another format, OMOP or MEDS, passes its own source here)."""
    _require_columns(frame, path, VOCAB_REQUIRED)
    if frame.empty:
        raise InputError(f"{path}: no concepts (the file has a header but no rows)")
    codes, descriptions = _non_empty(frame, path, (CODE, DESCRIPTION))
    duplicated = codes.duplicated(keep="first")
    if duplicated.any():
        i = int(duplicated.to_numpy().nonzero()[0][0])
        first = int(codes[codes == codes.iloc[i]].index[0])
        raise InputError(
            f"{_at(path, i, frame)}: duplicate code '{codes.iloc[i]}' in column 'code' "
            f"(first seen on {_row_ref(path, first, frame)})"
        )
    out = pd.DataFrame(
        {
            "concept_id": range(len(frame)),
            CODE: codes.to_numpy(),
            DESCRIPTION: descriptions.to_numpy(),
        }
    )
    for column in (SYSTEM, PARENT_CODE):
        if column in frame.columns:
            values = _text_column(frame, column).str.strip()
            out[column] = values.where(values != "", None).to_numpy()
        else:
            out[column] = None
    out[FREQUENCY] = _frequency(frame, path)
    if SYNONYMS in frame.columns:
        out[SYNONYMS] = _text_column(frame, SYNONYMS).to_numpy()
    extra_columns = [c for c in frame.columns if c not in VOCAB_REQUIRED + VOCAB_OPTIONAL]
    if extra_columns:
        records = frame[extra_columns].astype(str).to_dict(orient="records")
        out["extra"] = [json.dumps(r, ensure_ascii=False) for r in records]
    else:
        out["extra"] = None
    return out


def _frequency(frame: pd.DataFrame, path: Path) -> pd.Series:
    if FREQUENCY not in frame.columns:
        return pd.Series([None] * len(frame), dtype="Int64")
    text = _text_column(frame, FREQUENCY).str.strip()
    numbers = pd.to_numeric(text.where(text != "", None), errors="coerce")
    bad = numbers.isna() & text.ne("")
    bad |= numbers.notna() & ((numbers < 0) | (numbers % 1 != 0) | (numbers >= 2**63))
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(
            f"{_at(path, i, frame)}: column 'frequency' must be a non-negative integer, "
            f"got '{text.iloc[i]}'"
        )
    return numbers.astype("Int64")


def synonym_rows(vocab: pd.DataFrame) -> pd.DataFrame:
    """The ``synonyms`` column as rows (concept_id, position, text): each ``|``-separated
    text once, blanks and repeats of the description (any case) left out.

    >>> vocab = pd.DataFrame({"concept_id": [0, 1], "description": ["fever", "cough"],
    ...                       "synonyms": ["pyrexia | Fever|high temperature", ""]})
    >>> synonym_rows(vocab).values.tolist()
    [[0, 1, 'pyrexia'], [0, 2, 'high temperature']]
    """
    rows: list[tuple[int, int, str]] = []
    if SYNONYMS in vocab.columns:
        for concept_id, description, cell in zip(
            vocab["concept_id"], vocab[DESCRIPTION], vocab[SYNONYMS], strict=True
        ):
            seen = {description.lower()}
            for text in (t.strip() for t in str(cell or "").split(SYNONYM_SEPARATOR)):
                if text and text.lower() not in seen:
                    seen.add(text.lower())
                    rows.append((int(concept_id), len(seen) - 1, text))
    return pd.DataFrame(rows, columns=["concept_id", "position", "text"])


def vocab_sha256(vocab: pd.DataFrame, synonyms: pd.DataFrame | None = None) -> str:
    """Content hash of (code, description) in order, then of the synonyms if any: what an
    index must have been built from."""
    digest = hashlib.sha256()
    for code, description in zip(vocab[CODE], vocab[DESCRIPTION], strict=True):
        digest.update(code.encode("utf-8") + b"\x1f" + description.encode("utf-8") + b"\x1e")
    if synonyms is not None:
        for concept_id, text in zip(synonyms["concept_id"], synonyms["text"], strict=True):
            digest.update(f"{concept_id}\x1d{text}\x1e".encode())
    return digest.hexdigest()


def read_events(path: str | Path, known_codes: set[str]) -> pd.DataFrame:
    """Long-format events (subject_id, code, optional time and value) whose codes are all
    in ``known_codes``."""
    path = Path(path)
    frame = read_table(path)
    _require_columns(frame, path, EVENTS_REQUIRED)
    subjects, codes = _non_empty(frame, path, (SUBJECT_ID, CODE))
    unknown = ~codes.isin(known_codes)
    if unknown.any():
        i = int(unknown.to_numpy().nonzero()[0][0])
        raise InputError(
            f"{_at(path, i, frame)}: code '{codes.iloc[i]}' in column 'code' is not in "
            "the site's vocabulary"
        )
    out = pd.DataFrame({SUBJECT_ID: subjects.to_numpy(), CODE: codes.to_numpy()})
    if TIME in frame.columns:
        text = _text_column(frame, TIME).str.strip()
        # "mixed": each value is parsed on its own (a date beside a date-time is fine).
        times = pd.to_datetime(text.where(text != "", None), errors="coerce", format="mixed")
        bad = times.isna() & text.ne("")
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise InputError(
                f"{_at(path, i, frame)}: column 'time' is not a date/time: '{text.iloc[i]}'"
            )
        out[TIME] = times.to_numpy()
    else:
        out[TIME] = pd.Series([pd.NaT] * len(frame), dtype="datetime64[us]").to_numpy()
    if VALUE in frame.columns:
        values = _text_column(frame, VALUE).str.strip()
        out[VALUE] = values.where(values != "", None).to_numpy()
    else:
        out[VALUE] = None
    return out
