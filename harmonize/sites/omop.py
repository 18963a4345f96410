"""A site from an OMOP CDM: a DuckDB database file or a folder of CSV/Parquet tables.

The site's vocabulary is the concepts *in use*: every ``<domain>_concept_id`` of the event
tables below, joined to table ``concept``. A concept is stored with

- ``code``: the concept_id as text (``"40481087"``), so exports to OMOP keep working;
- ``description``: its ``concept_name``; ``system``: its ``vocabulary_id``;
- ``frequency``: how many event rows use it, over all event tables;
- ``extra``: its ``domain_id`` and ``concept_code`` where table ``concept`` has them.

Concept_id 0 ("No matching concept") and NULL are skipped, as are rows without a person_id. A
concept in use that has no row (or an empty name) in ``concept`` gets its concept_id as its
description, so none of its events is lost. Source values (``*_source_value``,
``*_source_concept_id``) are not read: the site speaks in its standard concepts.

With ``codes="source"`` (``add-site --omop-codes source``) the site speaks in its local codes
instead: each event's code is its table's ``<domain>_source_value`` (``condition_source_value``,
``drug_source_value``, ...; trimmed), and the vocabulary is the distinct source values in use:

- ``description``: the ``concept_name`` of the row's ``<domain>_source_concept_id`` when that is
  non-zero and in ``concept``, else the source value itself; ``system``: that concept's
  ``vocabulary_id``, else the event table's name;
- a source value used with several such source concepts takes the most frequent one (ties: the
  smallest concept_id); with none, its most frequent table (ties: the order of the tables below);
- the same text in two tables (a SNOMED code as condition and as observation) is one code, its
  frequency the sum;
- ``extra``: the chosen ``source_concept_id`` (``""`` if none) with its ``domain_id`` and
  ``concept_code``, and ``standard_concept_id``: the most frequent non-zero
  ``<domain>_concept_id`` its events map to (ties: the smallest; ``""`` if none).

Events keep their rows whatever their standard concept (0 included); a row with a NULL or blank
source value is left out and counted (:func:`read_omop_site`). A table without its source value
column is skipped like an absent one; none having one is an error.

Events: ``person_id`` as subject_id; the table's start datetime, else its start date, as time
(a time with a time zone becomes its UTC time); the concept_id as code; ``value_as_number`` as
text (``"5.0"``) for measurement and observation, for observation else ``value_as_string``;
else no value.

Tables are looked up case-insensitively (``CONDITION_OCCURRENCE.csv``, ``concept.parquet``, a
DuckDB table ``CONCEPT`` in any one schema). An event table that is absent is skipped, and so is
one that has no rows, or whose only row repeats its column names (an empty CSV loaded without its
header, as in the Eunomia DuckDB file; that one is named in a warning, :attr:`OmopSite.warnings`).
CSV files are read as text and cast, so a bad value is an error naming its table rather than a
silent NULL.

The jobs: :mod:`harmonize.sites.omop_tables` finds the tables (folder or DuckDB file),
:mod:`harmonize.sites.omop_events` copies their events, :mod:`harmonize.sites.omop_vocab` names
the concepts in use; this module checks the inputs and runs those stages. Their SQL is in
``sql/internal/omop_*.sql`` and, where it depends on the columns found, in
:mod:`harmonize.core.sql_builder`.

>>> import pathlib, tempfile
>>> cdm = pathlib.Path(tempfile.mkdtemp())
>>> _ = (cdm / "CONCEPT.csv").write_text(
...     "concept_id,concept_name,vocabulary_id\\n201826,Type 2 diabetes mellitus,SNOMED\\n")
>>> _ = (cdm / "condition_occurrence.csv").write_text(
...     "person_id,condition_concept_id,condition_start_date\\n7,201826,2020-03-01\\n")
>>> vocab, events = read_omop(cdm)
>>> vocab[["code", "description", "system", "frequency"]].values.tolist()
[['201826', 'Type 2 diabetes mellitus', 'SNOMED', 1]]
>>> events.values.tolist()
[['7', Timestamp('2020-03-01 00:00:00'), '201826', None]]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd

from harmonize.core import sql
from harmonize.core.errors import InputError
from harmonize.sites.omop_events import (
    insert_source_events,
    insert_standard_events,
    source_event_rows,
    standard_event_rows,
)
from harmonize.sites.omop_tables import (
    CONCEPT,
    EVENT_TABLE_NAMES,
    EVENT_TABLES,
    KNOWN_TABLES,
    PERSON_ID,
    EventTable,
    TableSource,
    open_tables,
)
from harmonize.sites.omop_vocab import CONCEPT_REQUIRED, source_vocab, standard_vocab
from harmonize.sites.vocab import validate_vocab

__all__ = ["CODES", "EVENT_TABLES", "KNOWN_TABLES", "OmopSite", "read_omop", "read_omop_site"]

CODES = ("standard", "source")
Codes = Literal["standard", "source"]


@dataclass(frozen=True)
class OmopSite:
    """What :func:`read_omop_site` read: the vocabulary, the events, how many event rows
    with a person_id were left out for a NULL or blank source value (always 0 for
    ``codes="standard"``), and a warning for each table skipped as malformed."""

    vocab: pd.DataFrame
    events: pd.DataFrame
    skipped: int
    warnings: tuple[str, ...] = ()


def read_omop(path: str | Path, codes: Codes = "standard") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(vocabulary, events) of the OMOP CDM at ``path``, a DuckDB file or a folder of tables.

    The vocabulary is validated (:func:`harmonize.sites.vocab.validate_vocab`), ready for
    ``add_site(ws, name, None, vocab=vocab, events=events)``; events have columns subject_id,
    time, code, value. ``codes`` is ``"standard"`` (concept_ids) or ``"source"`` (the
    ``*_source_value`` local codes). See the module docstring for the rules.
    """
    site = read_omop_site(path, codes)
    return site.vocab, site.events


def read_omop_site(path: str | Path, codes: Codes = "standard") -> OmopSite:
    """:func:`read_omop` with the count of events left out for a blank source value.

    >>> read_omop_site("no/such/cdm", "local")
    Traceback (most recent call last):
    harmonize.core.errors.InputError: codes must be one of standard, source; got 'local'
    """
    if codes not in CODES:
        got = repr(codes).replace("{", "{{").replace("}", "}}")  # the message is a template
        raise InputError(
            f"{{codes}} must be one of {', '.join(CODES)}; got {got}", params=("codes",)
        )
    path = Path(path)
    if not path.exists():
        raise InputError(f"OMOP source not found: {path}")
    con = duckdb.connect()
    try:
        sql.run_internal(con, "set_utc")  # a time with a zone is stored as its UTC time
        concept, present = _check_tables(path, open_tables(con, path))
        sql.run_internal(con, "omop_temp_tables")
        read = _read_source if codes == "source" else _read_standard
        site = read(con, path, concept, present)
        return dataclasses.replace(site, warnings=_header_rows(con, present))
    finally:
        con.close()


def _header_rows(
    con: duckdb.DuckDBPyConnection, present: list[tuple[EventTable, TableSource]]
) -> tuple[str, ...]:
    """A warning for each event table skipped because its only row holds its column names."""
    warnings = []
    for _, source in present:
        if PERSON_ID not in source.columns and source.header_as_row(con, (PERSON_ID,)):
            warnings.append(
                f"{source.where}: skipped: its only row holds the column names (a header-only "
                "CSV loaded without its header), so it has no events"
            )
    return tuple(warnings)


def _check_tables(
    path: Path, tables: dict[str, TableSource]
) -> tuple[TableSource, list[tuple[EventTable, TableSource]]]:
    """Table ``concept`` (with its required columns) and the event tables present, in the
    order of :data:`EVENT_TABLES`; either missing is an error."""
    kind = "file" if path.is_dir() else "table"
    if CONCEPT not in tables:
        what = "concept.csv or concept.parquet" if path.is_dir() else "concept"
        raise InputError(f"{path}: no OMOP concept table (expected a {kind} {what})")
    concept = tables[CONCEPT]
    missing = concept.missing(CONCEPT_REQUIRED)
    if missing:
        raise concept.missing_error(CONCEPT_REQUIRED, missing)
    present = [(t, tables[t.name]) for t in EVENT_TABLES if t.name in tables]
    if not present:
        raise InputError(
            f"{path}: no OMOP event table (expected a {kind} named one of: "
            f"{', '.join(EVENT_TABLE_NAMES)})"
        )
    return concept, present


def _count(con: duckdb.DuckDBPyConnection, query: str) -> int:
    return int(sql.run_internal(con, query).fetchone()[0])


def _read_standard(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    concept: TableSource,
    present: list[tuple[EventTable, TableSource]],
) -> OmopSite:
    """The site of ``codes="standard"``: the concept_ids in use (see the module docstring)."""
    for table, source in present:
        insert_standard_events(con, table, source)
    if not _count(con, "omop_count_events"):
        names = ", ".join(t.name for t, _ in present)
        raise InputError(
            f"{path}: no events: the OMOP event tables ({names}) have no rows with a person_id "
            "and a concept_id other than 0"
        )
    vocab = standard_vocab(con, concept)
    return OmopSite(validate_vocab(vocab, path), standard_event_rows(con), 0)


def _read_source(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    concept: TableSource,
    present: list[tuple[EventTable, TableSource]],
) -> OmopSite:
    """The site of ``codes="source"``: the source values in use (see the module docstring)."""
    states = [insert_source_events(con, table, source) for table, source in present]
    if "read" not in states and "no column" in states:
        expected = ", ".join(f"{t.name}.{t.source_value}" for t, _ in present)
        raise InputError(
            f"{path}: no OMOP event table has its source value column (expected one of: {expected})"
        )
    skipped = _count(con, "omop_count_blank_source")
    sql.run_internal(con, "omop_drop_blank_source")
    if not _count(con, "omop_count_source_events"):
        names = ", ".join(t.name for t, _ in present)
        raise InputError(
            f"{path}: no events: the OMOP event tables ({names}) have no rows with a person_id "
            "and a source value"
        )
    vocab = source_vocab(con, concept)
    return OmopSite(validate_vocab(vocab, path), source_event_rows(con), skipped)
