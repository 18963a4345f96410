"""Recoded events as a MEDS dataset (Medical Event Data Standard, schema of ``meds`` 0.4.1):
``data/0.parquet``, ``metadata/codes.parquet``, ``metadata/dataset.json`` and, where subject
ids are not integers, ``metadata/subject_ids.parquet``.

MEDS needs ``subject_id`` as int64. Ids that are all decimal integers (as written, no leading
zeros) are kept as numbers; otherwise every id is replaced by a stable number: the first 8
bytes of the SHA-256 of its UTF-8 text, as a big-endian integer shifted right by one bit (so
0 <= id < 2**63). The same subject gets the same number in every export, whatever else is
exported with it; ``metadata/subject_ids.parquet`` (subject_id, source_subject_id) lists the
pairs, and two ids with the same number (odds about n**2 / 2**64) are an error.

>>> subject_numbers(pd.Series(["17", "4"])).tolist()
[17, 4]
>>> subject_numbers(pd.Series(["p1"])).tolist()
[8872840026551499793]
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from harmonize import __version__
from harmonize.core.errors import InputError

MEDS_VERSION = "0.4.1"  # the meds package whose schemas the tests validate these files with


def _integer_ids(ids: pd.Series) -> pd.Series | None:
    """``ids`` as int64 when every one is a decimal integer written canonically, else None."""
    numbers = pd.to_numeric(ids, errors="coerce")
    if numbers.isna().any() or (numbers % 1 != 0).any() or (numbers.abs() > 2**53).any():
        return None
    numbers = numbers.astype("int64")
    return numbers if (numbers.astype(str) == ids.astype(str)).all() else None


def _hashed(subject: str) -> int:
    return int.from_bytes(hashlib.sha256(subject.encode("utf-8")).digest()[:8], "big") >> 1


def subject_numbers(ids: pd.Series) -> pd.Series:
    """The int64 MEDS subject_id of each id (the rule in this module's docstring)."""
    numbers = _integer_ids(ids)
    if numbers is not None:
        return numbers
    unique = pd.Series(ids.unique())
    hashed = unique.map(_hashed)
    if hashed.duplicated().any():
        clash = unique[hashed.duplicated(keep=False)].tolist()
        raise InputError(f"subject ids {clash} hash to the same MEDS subject_id; rename one")
    return ids.map(dict(zip(unique, hashed, strict=True))).astype("int64")


def data_table(table: pd.DataFrame):
    """The recoded events (subject_id as text, time, code, numeric_value, text_value) as a
    MEDS data table: MEDS types, sorted by subject then time (static rows first)."""
    import pyarrow as pa

    frame = table.assign(subject_id=subject_numbers(table["subject_id"].astype(str)))
    frame = frame.sort_values(["subject_id", "time", "code"], na_position="first", kind="stable")
    schema = pa.schema(
        [
            pa.field("subject_id", pa.int64(), nullable=False),
            pa.field("time", pa.timestamp("us")),
            pa.field("code", pa.string(), nullable=False),
            pa.field("numeric_value", pa.float32()),
            pa.field("text_value", pa.large_string()),
        ]
    )
    frame = frame.assign(time=pd.to_datetime(frame["time"]).astype("datetime64[us]"))
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def codes_table(codes: pd.DataFrame, used: set[str]):
    """``metadata/codes.parquet`` rows for the codes ``used``: description and the target
    concept's parent (a one-item list, or empty)."""
    import pyarrow as pa

    rows = codes[codes["code"].isin(used)]
    parents = [[p] if isinstance(p, str) and p else [] for p in rows["parent_code"]]
    return pa.table(
        {
            "code": pa.array(rows["code"].tolist(), pa.string()),
            "description": pa.array(rows["description"].tolist(), pa.string()),
            "parent_codes": pa.array(parents, pa.list_(pa.string())),
        }
    )


def dataset_metadata(source: str, target: str) -> dict:
    """``metadata/dataset.json`` (MEDS DatasetMetadataSchema)."""
    return {
        "dataset_name": f"{source} in {target} codes",
        "etl_name": "harmonize export-events",
        "etl_version": __version__,
        "meds_version": MEDS_VERSION,
        "created_at": datetime.now(timezone.utc).replace(tzinfo=None).isoformat(),
    }


def _subject_ids_table(table: pd.DataFrame):
    """(subject_id, source_subject_id) pairs, or None when the ids were already integers."""
    import pyarrow as pa

    if _integer_ids(table["subject_id"].astype(str)) is not None:
        return None
    original = pd.Series(table["subject_id"].astype(str).unique())
    return pa.table(
        {
            "subject_id": pa.array(subject_numbers(original).tolist(), pa.int64()),
            "source_subject_id": pa.array(original.tolist(), pa.string()),
        }
    ).sort_by("subject_id")


def write_meds(
    table: pd.DataFrame, codes: pd.DataFrame, output: Path, source: str, target: str
) -> None:
    """A MEDS folder, built beside ``output`` and renamed into place in one step (folders
    and files get the modes the umask gives)."""
    import pyarrow.parquet as pq

    data = data_table(table)
    subjects = _subject_ids_table(table)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.parent / f".{output.name}.{secrets.token_hex(6)}.tmp"
    os.mkdir(staging)
    try:
        (staging / "data").mkdir()
        (staging / "metadata").mkdir()
        pq.write_table(data, staging / "data" / "0.parquet")
        used = set(data.column("code").to_pylist())
        pq.write_table(codes_table(codes, used), staging / "metadata" / "codes.parquet")
        if subjects is not None:
            pq.write_table(subjects, staging / "metadata" / "subject_ids.parquet")
        metadata = json.dumps(dataset_metadata(source, target), indent=2) + "\n"
        (staging / "metadata" / "dataset.json").write_text(metadata)
        if output.exists():
            output.rmdir()
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
