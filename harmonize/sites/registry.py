"""Storing a site's vocabulary (and events) in the workspace, and listing sites.

>>> import pathlib, tempfile
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> _ = (root / "a.csv").write_text("code,description\\nC1,dyspnea\\n")
>>> add_site(Workspace(root), "siteA", root / "a.csv").n_concepts
1
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from harmonize.core import sql
from harmonize.core.errors import InputError, WorkspaceError
from harmonize.core.timing import Stages
from harmonize.core.workspace import Workspace, check_site_name
from harmonize.sites.patients import (
    LabelSpec,
    default_level_texts,
    read_levels,
    read_long_patients,
    read_wide_patients,
    stratified_split,
)
from harmonize.sites.vocab import (
    read_events,
    read_table,
    read_vocab,
    synonym_rows,
    vocab_sha256,
)

# Every table holding rows of one site (replaced together when the site is re-added).
SITE_TABLES = (
    "sites",
    "concepts",
    "events",
    "labels",
    "site_tasks",
    "level_texts",
    "concept_synonyms",
    "concept_links",
)


@dataclass
class AddSiteResult:
    site: str
    n_concepts: int
    n_events: int
    replaced: bool
    n_train: int = 0
    n_test: int = 0
    task: LabelSpec | None = None
    n_level_texts: int = 0  # level texts made as '<description>: <value>'

    @property
    def message(self) -> str:
        verb = "replaced" if self.replaced else "added"
        events = f" and {self.n_events} events" if self.n_events else ""
        text = f"{verb} site '{self.site}': {self.n_concepts} concepts{events}"
        if self.task is not None:
            text += (
                f"; {self.n_train + self.n_test} patients ({self.n_train} train, {self.n_test} "
                f"test), task {self.task.column}={self.task.positive}"
            )
        if self.n_level_texts:
            text += f"; {self.n_level_texts} level texts made as '<description>: <value>'"
        return text


def add_site(
    ws: Workspace,
    name: str,
    vocab_path: str | Path | None,
    events_path: str | Path | None = None,
    replace: bool = False,
    events: pd.DataFrame | None = None,
    labels: pd.DataFrame | None = None,
    patients: PatientInput | None = None,
    task: LabelSpec | None = None,
    levels: pd.DataFrame | None = None,
    vocab: pd.DataFrame | None = None,
) -> AddSiteResult:
    """Validates the files completely, then stores the site in one transaction.

    ``events``/``labels`` frames (subject_id, time, code, value / subject_id, label, value,
    split) may be passed directly instead of files, as the demo does, with ``task`` naming the
    label and its positive value. ``patients`` reads a prediction task's patient files.

    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "b.csv").write_text("code,description\\nB1,fever\\nB2,cough\\n")
    >>> add_site(Workspace(root), "siteB", root / "b.csv").message
    "added site 'siteB': 2 concepts"
    """
    check_site_name(name)
    clock = Stages("add-site", ("read", "store"))
    data = read_site(vocab_path, events_path, patients, vocab, events, labels, task, levels)
    exists = check_replace(ws, name, replace)
    clock.done("read")
    with ws.transaction() as con:
        store_site(con, name, vocab_path, data)
    clock.done("store")
    return data.result(name, exists)


@dataclass
class SiteData:
    """Everything stored for one site, read and validated: its vocabulary, and optionally
    events, labels (with a ``split`` column), the task and declared level texts."""

    vocab: pd.DataFrame
    events: pd.DataFrame | None = None
    labels: pd.DataFrame | None = None
    task: LabelSpec | None = None
    levels: pd.DataFrame | None = None
    n_level_texts: int = 0

    def result(self, name: str, replaced: bool) -> AddSiteResult:
        labels = self.labels
        n_test = 0 if labels is None else int((labels["split"] == "test").sum())
        n_train = 0 if labels is None else len(labels) - n_test
        return AddSiteResult(
            name,
            len(self.vocab),
            0 if self.events is None else len(self.events),
            replaced,
            n_train,
            n_test,
            self.task if labels is not None else None,
            self.n_level_texts,
        )


def read_site(
    vocab_path: str | Path | None,
    events_path: str | Path | None = None,
    patients: PatientInput | None = None,
    vocab: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    labels: pd.DataFrame | None = None,
    task: LabelSpec | None = None,
    levels: pd.DataFrame | None = None,
) -> SiteData:
    """Reads the vocabulary (the file, or the frame ``vocab``), then the events file or the
    patients, checking each against the vocabulary; the frames given are taken as they are."""
    if (vocab_path is None) == (vocab is None):
        raise InputError("give exactly one vocabulary: vocab_path (a file) or vocab (a frame)")
    vocab = read_vocab(vocab_path) if vocab is None else vocab
    data = SiteData(vocab, events, labels, task, levels)
    if events_path is not None and patients is not None:
        raise InputError(
            "give either {events} or {patients}, not both", params=("events", "patients")
        )
    if events_path is not None:
        data.events = read_events(events_path, set(vocab["code"]))
    if patients is not None:
        declared = read_levels(patients.levels)
        data.events, data.labels = patients.read(set(vocab["code"]), declared)
        made = default_level_texts(data.events, vocab, declared)
        data.levels = pd.concat([declared, made], ignore_index=True) if len(made) else declared
        data.n_level_texts = len(made)
        data.task = patients.label
    if data.labels is not None and "split" not in data.labels.columns:
        data.labels = data.labels.assign(split="train")
    return data


def check_replace(ws: Workspace, name: str, replace: bool, given: str = "--vocab FILE") -> bool:
    """Whether site ``name`` exists already; refused unless ``replace`` (the hint repeats the
    command with ``given``, the input option the user gave)."""
    if not ws.exists():
        return False
    with ws.connect(read_only=True) as con:
        exists = name in ws.site_names(con)
    if exists and not replace:
        raise WorkspaceError(
            f"site '{name}' already exists in {ws.root}. "
            f"Use 'harmonize add-site {name} {given} --replace' to replace it."
        )
    return exists


def store_site(
    con: duckdb.DuckDBPyConnection, name: str, vocab_path: str | Path | None, data: SiteData
) -> None:
    """Replaces everything stored for site ``name`` with ``data`` (inside the caller's
    transaction)."""
    for table in SITE_TABLES:
        sql.run_internal(con, f"delete_site_{table}", site=name)
    synonyms = synonym_rows(data.vocab)
    sql.run_internal(
        con,
        "insert_site",
        site=name,
        vocab_file=str(Path(vocab_path).resolve()) if vocab_path is not None else None,
        vocab_sha256=vocab_sha256(data.vocab, synonyms),
        n_concepts=len(data.vocab),
    )
    _insert(con, "new_concepts", data.vocab, "insert_concepts", name)
    if len(synonyms):
        _insert(con, "new_synonyms", synonyms, "insert_synonyms", name)
    for view, frame, statement in (
        ("new_events", data.events, "insert_events"),
        ("new_labels", data.labels, "insert_labels"),
    ):
        if frame is not None and len(frame):
            _insert(con, view, frame, statement, name)
    if data.task is not None:
        sql.run_internal(
            con, "insert_task", site=name, label=data.task.column, positive=data.task.positive
        )
    if data.levels is not None and len(data.levels):
        _insert(con, "new_levels", data.levels, "insert_level_texts", name)


def _insert(
    con: duckdb.DuckDBPyConnection, view: str, frame: pd.DataFrame, statement: str, site: str
) -> None:
    """Runs ``statement`` with ``frame`` registered as ``view`` for the time it runs."""
    con.register(view, frame)
    sql.run_internal(con, statement, site=site)
    con.unregister(view)


@dataclass
class PatientInput:
    """Where a site's patients come from: a wide table, or long events plus a labels file;
    a test file or a seeded stratified hold-out."""

    patients: Path
    label: LabelSpec
    test_patients: Path | None = None
    labels: Path | None = None
    levels: Path | None = None
    test_fraction: float = 0.2
    random_state: int = 0
    strict_levels: bool = False  # refuse a level the levels file does not declare

    def read(self, codes: set[str], levels: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(events, labels with a split column), fully validated."""
        if self.labels is not None:
            if self.test_patients is not None:
                raise InputError(
                    "{test_patients} works with wide patient tables; for long events put a "
                    "'split' column (train/test) in the labels file instead",
                    params=("test_patients",),
                )
            data = read_long_patients(
                self.patients, self.labels, codes, self.label, levels, self.strict_levels
            )
            return data.events, self._split(data.labels, read_table(self.labels))
        strict = self.strict_levels
        train = read_wide_patients(self.patients, codes, self.label, levels, strict=strict)
        if self.test_patients is None:
            labels = train.labels.assign(
                split=stratified_split(
                    train.labels, self.label.positive, self.test_fraction, self.random_state
                )
            )
            return train.events, labels
        test = read_wide_patients(
            self.test_patients, codes, self.label, levels, "test-", strict=strict
        )
        clash = set(train.labels["subject_id"]) & set(test.labels["subject_id"])
        if clash:
            raise InputError(
                f"{self.test_patients}: subject_id '{sorted(clash)[0]}' is also a training patient"
            )
        labels = pd.concat(
            [train.labels.assign(split="train"), test.labels.assign(split="test")],
            ignore_index=True,
        )
        return pd.concat([train.events, test.events], ignore_index=True), labels

    def _split(self, labels: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
        if "split" in table.columns:
            split = table["split"].astype(str).str.strip().to_numpy()
            bad = sorted(set(split) - {"train", "test"})
            if bad:
                raise InputError(
                    f"{self.labels}: column 'split' must be train or test, got '{bad[0]}'"
                )
            return labels.assign(split=split)
        return labels.assign(
            split=stratified_split(
                labels, self.label.positive, self.test_fraction, self.random_state
            )
        )
