"""Reading a site's patients for a prediction task: wide or long tables, labels, and splits.

Wide (the study's format): one row per encounter, one column per concept code, values ``P``
present, ``A`` absent, ``M`` missing, or levels (``ge65``: embedded as ``<description>: ge65``
unless a levels file gives the text); plus the label column. Long: rows of
``subject_id, code, value`` with a labels file (``subject_id`` and the label column).

>>> import pathlib, tempfile
>>> p = pathlib.Path(tempfile.mkdtemp()) / "pts.csv"
>>> _ = p.write_text("C1,C2,diagnosis\\nP,A,I\\nA,A,R\\n")
>>> data = read_wide_patients(p, {"C1", "C2"}, LabelSpec("diagnosis", "I"))
>>> data.events["value"].tolist(), data.labels["value"].tolist()
(['P', 'A', 'A', 'A'], ['I', 'R'])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harmonize.core.errors import InputError, literal
from harmonize.sites.vocab import read_table

STATES = ("P", "A", "M")
SUBJECT_ID = "subject_id"


@dataclass(frozen=True)
class LabelSpec:
    """The binary task: ``column`` equal to ``positive`` is the positive class."""

    column: str
    positive: str

    @classmethod
    def parse(cls, text: str) -> LabelSpec:
        """``COLUMN=VALUE``, e.g. ``diagnosis=I``."""
        column, sep, positive = text.partition("=")
        if not sep or not column.strip() or not positive.strip():
            raise InputError(
                f"{{label}} must look like COLUMN=VALUE (e.g. diagnosis=I), got '{literal(text)}'",
                params=("label",),
            )
        return cls(column.strip(), positive.strip())


@dataclass
class PatientData:
    """Long events (subject_id, time, code, value) and labels (subject_id, label, value, split)."""

    events: pd.DataFrame
    labels: pd.DataFrame


def read_levels(path: str | Path | None) -> pd.DataFrame:
    """Declared level texts: CSV with ``code, value, text`` (``C0424781,I,normal temperature``)."""
    if path is None:
        return pd.DataFrame(columns=["code", "value", "text"])
    frame = read_table(path)
    for column in ("code", "value", "text"):
        if column not in frame.columns:
            raise InputError(f"{path}: missing required column '{column}' (need code, value, text)")
    return frame[["code", "value", "text"]].astype(str)


def _check_values(
    path: Path, code: str, values: pd.Series, levels: pd.DataFrame, strict: bool = False
) -> None:
    """Refuses a value that is no state: a blank, or P/A/M in lower case (a typo, not a level).
    Any other value is a level; with ``strict`` only a declared one is accepted."""
    declared = set(levels.loc[levels["code"] == code, "value"])
    allowed = set(STATES) | declared
    bad = ~values.isin(allowed)
    if not strict:
        typo = values.str.upper().isin(STATES) | values.eq("")
        bad &= typo
    if bad.any():
        value = values[bad].iloc[0]
        if not strict:
            hint = "write P, A or M (upper case) for present, absent or missing"
        elif declared:
            hint = f"declared levels: {literal(', '.join(sorted(declared)))}"
        else:
            hint = "declare its levels with {levels} FILE (code,value,text)"
        raise InputError(
            f"{literal(path)}: column '{literal(code)}' has value '{literal(value)}', which is "
            f"not P, A or M; {hint}",
            params=("levels",),  # always: the escaped braces are undone by formatting
        )


def default_level_texts(
    events: pd.DataFrame, vocab: pd.DataFrame, declared: pd.DataFrame
) -> pd.DataFrame:
    """``<description>: <value>`` for every (code, value) of ``events`` that is not P/A/M and
    has no declared text, as a person would write it; sorted by code, then value.

    >>> events = pd.DataFrame({"code": ["AG", "AG", "T", "T"], "value": ["ge65", "ls5", "P", "H"]})
    >>> vocab = pd.DataFrame({"code": ["AG", "T"], "description": ["Age group", "temperature"]})
    >>> declared = pd.DataFrame({"code": ["T"], "value": ["H"], "text": ["fever"]})
    >>> default_level_texts(events, vocab, declared)["text"].tolist()
    ['Age group: ge65', 'Age group: ls5']
    """
    pairs = events[["code", "value"]].drop_duplicates()
    pairs = pairs[~pairs["value"].isin(STATES)]
    known = set(zip(declared["code"], declared["value"], strict=True))
    keep = np.array(
        [(c, v) not in known for c, v in zip(pairs["code"], pairs["value"], strict=True)], bool
    )
    pairs = pairs[keep].sort_values(["code", "value"], kind="stable")
    descriptions = dict(zip(vocab["code"], vocab["description"], strict=True))
    texts = [f"{descriptions[c]}: {v}" for c, v in zip(pairs["code"], pairs["value"], strict=True)]
    return pd.DataFrame(
        {"code": pairs["code"].tolist(), "value": pairs["value"].tolist(), "text": texts},
        columns=["code", "value", "text"],
    )


def _labels(path: Path, subjects: pd.Series, values: pd.Series, label: LabelSpec) -> pd.DataFrame:
    values = values.astype(str).str.strip()
    if values.eq("").any():
        raise InputError(f"{path}: empty value in label column '{label.column}'")
    n_pos = int(values.eq(label.positive).sum())
    if n_pos == 0 or n_pos == len(values):
        kind = "no" if n_pos == 0 else "only"
        raise InputError(
            f"{path}: label column '{label.column}' has {kind} '{label.positive}' rows: "
            "a binary task needs both classes"
        )
    return pd.DataFrame({SUBJECT_ID: subjects.to_numpy(), "label": label.column, "value": values})


def _subject_ids(frame: pd.DataFrame, path: Path) -> pd.Series:
    """The subject_id column, stripped; blanks and duplicates are errors."""
    subjects = frame[SUBJECT_ID].astype(str).str.strip()
    if subjects.eq("").any():
        raise InputError(f"{path}: empty value in column 'subject_id'")
    if subjects.duplicated().any():
        raise InputError(
            f"{path}: duplicate subject_id '{subjects[subjects.duplicated()].iloc[0]}'"
        )
    return subjects


def read_wide_patients(
    path: str | Path,
    codes: set[str],
    label: LabelSpec,
    levels: pd.DataFrame | None = None,
    id_prefix: str = "",
    strict: bool = False,
) -> PatientData:
    """One row per encounter; every column except the label (and ``subject_id``) is a code.
    A value other than P/A/M is a level (see :func:`default_level_texts`); ``strict`` accepts
    only the levels declared in ``levels``."""
    path = Path(path)
    frame = read_table(path)
    levels = levels if levels is not None else read_levels(None)
    if label.column not in frame.columns:
        raise InputError(
            f"{path}: label column '{label.column}' not found (columns: "
            f"{', '.join(map(str, frame.columns[:8]))}{', ...' if len(frame.columns) > 8 else ''})"
        )
    if frame.empty:
        raise InputError(f"{path}: no patients (the file has a header but no rows)")
    if SUBJECT_ID in frame.columns:
        subjects = _subject_ids(frame, path)
    else:
        subjects = pd.Series([f"{id_prefix}{i:06d}" for i in range(1, len(frame) + 1)])
    concept_columns = [c for c in frame.columns if c not in (label.column, SUBJECT_ID)]
    unknown = [c for c in concept_columns if c not in codes]
    if unknown:
        raise InputError(
            f"{path}: column '{unknown[0]}' is not a code of the site's vocabulary"
            + (f" ({len(unknown)} such columns)" if len(unknown) > 1 else "")
        )
    for code in concept_columns:
        frame[code] = frame[code].astype(str).str.strip()
        _check_values(path, code, frame[code], levels, strict)
    events = frame[concept_columns].assign(**{SUBJECT_ID: subjects.to_numpy()})
    events = events.melt(id_vars=SUBJECT_ID, var_name="code", value_name="value")
    events.insert(1, "time", pd.Series(pd.NaT, index=events.index, dtype="datetime64[us]"))
    events = events.sort_values([SUBJECT_ID, "code"], kind="stable").reset_index(drop=True)
    return PatientData(events, _labels(path, subjects, frame[label.column], label))


def read_long_patients(
    path: str | Path,
    labels_path: str | Path,
    codes: set[str],
    label: LabelSpec,
    levels: pd.DataFrame | None = None,
    strict: bool = False,
) -> PatientData:
    """Long events (subject_id, code, value[, time]) and a labels file with the label column;
    levels as in :func:`read_wide_patients`."""
    from harmonize.sites.vocab import read_events

    path, labels_path = Path(path), Path(labels_path)
    events = read_events(path, codes)
    if events["value"].isna().any():
        raise InputError(
            f"{path}: column 'value' is required for patient data (P, A, M or a level)"
        )
    levels = levels if levels is not None else read_levels(None)
    for code, values in events.groupby("code")["value"]:
        _check_values(path, code, values.astype(str), levels, strict)
    table = read_table(labels_path)
    for column in (SUBJECT_ID, label.column):
        if column not in table.columns:
            raise InputError(f"{labels_path}: missing required column '{column}'")
    subjects = _subject_ids(table, labels_path)
    missing = set(events[SUBJECT_ID]) - set(subjects)
    if missing:
        raise InputError(f"{path}: subject '{sorted(missing)[0]}' has events but no label")
    return PatientData(events, _labels(labels_path, subjects, table[label.column], label))


def stratified_split(
    labels: pd.DataFrame, positive: str, test_fraction: float, random_state: int = 0
) -> np.ndarray:
    """'train' or 'test' for each row, stratified by the binary label, seeded."""
    if not 0.0 < test_fraction < 1.0:
        raise InputError(
            f"{{test_fraction}} must be between 0 and 1, got {test_fraction}",
            params=("test_fraction",),
        )
    rng = np.random.default_rng(random_state)
    split = np.full(len(labels), "train", dtype=object)
    y = labels["value"].to_numpy() == positive
    for cls in (True, False):
        idx = np.flatnonzero(y == cls)
        n_test = int(round(len(idx) * test_fraction))
        split[rng.permutation(idx)[:n_test]] = "test"
    return split
