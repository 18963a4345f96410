"""Copying an OMOP CDM's event rows into the reader's temp tables, and reading them back as
events (subject_id, time, code, value).

With standard codes an event table's rows go to ``omop_events`` (rows without a person_id, or
with a NULL or 0 concept_id, are left out); with source codes they go to
``omop_source_events`` with their trimmed ``<domain>_source_value`` as code (NULL when blank,
counted and dropped by :mod:`harmonize.sites.omop`). The temp tables are made by
``sql/internal/omop_temp_tables.sql``; time and value rules are in :mod:`harmonize.sites.omop`.

>>> import duckdb
>>> from harmonize.core import sql
>>> with duckdb.connect() as con:
...     _ = sql.run_internal(con, "omop_temp_tables")
...     standard_event_rows(con).columns.tolist()
['subject_id', 'time', 'code', 'value']
"""

from __future__ import annotations

from typing import Literal

import duckdb
import pandas as pd

from harmonize.core import sql
from harmonize.core.errors import InputError
from harmonize.core.sql_builder import (
    EventColumns,
    Statement,
    insert_omop_events,
    insert_omop_source_events,
)
from harmonize.sites.omop_tables import (
    EVENT_TABLES,
    PERSON_ID,
    EventTable,
    TableSource,
    first_line,
)
from harmonize.sites.vocab import CODE, SUBJECT_ID, VALUE

SourceState = Literal["read", "blank", "no column"]


def _present(source: TableSource, names: tuple[str, ...]) -> tuple[str, ...]:
    """The columns of ``names`` the table has, as spelled there."""
    return tuple(source.columns[c] for c in names if c in source.columns)


def _event_columns(table: EventTable, source: TableSource, code: str) -> EventColumns:
    cols = source.columns
    return EventColumns(
        relation=source.relation,
        position=EVENT_TABLES.index(table),
        person=cols[PERSON_ID],
        code=cols[code],
        times=_present(source, table.times),
        numbers=_present(source, table.numbers),
        texts=_present(source, table.texts),
        source_concept=cols.get(table.source_concept),
        concept=cols.get(table.concept),
    )


def _copy(
    con: duckdb.DuckDBPyConnection,
    source: TableSource,
    statement: Statement,
    names: tuple[str, ...],
) -> None:
    """Runs the copy; a value that does not cast is an error naming the table's columns."""
    try:
        statement.run(con)
    except duckdb.Error as exc:
        used = ", ".join(_present(source, names))
        raise InputError(f"{source.where}: cannot read columns {used}: {first_line(exc)}") from exc


def insert_standard_events(
    con: duckdb.DuckDBPyConnection, table: EventTable, source: TableSource
) -> None:
    """Copies the table's events into omop_events; a blank table is skipped, one without a
    person_id or concept column is an error."""
    required = (PERSON_ID, table.concept)
    missing = source.missing(required)
    if missing:
        if source.is_blank(con, required):
            return
        raise source.missing_error(required, missing)
    columns = _event_columns(table, source, table.concept)
    names = (*required, *table.times, *table.numbers, *table.texts)
    _copy(con, source, insert_omop_events(columns), names)


def insert_source_events(
    con: duckdb.DuckDBPyConnection, table: EventTable, source: TableSource
) -> SourceState:
    """Copies the table's rows with a person_id into omop_source_events, code NULL where the
    source value is NULL or blank; a table without its source value column is not read."""
    required = (PERSON_ID, table.source_value)
    missing = source.missing(required)
    if missing:
        if source.is_blank(con, required) or source.is_blank(con, (PERSON_ID, table.concept)):
            return "blank"
        if missing == table.source_value:
            return "no column"
        raise source.missing_error(required, missing)
    columns = _event_columns(table, source, table.source_value)
    optional = (table.source_concept, table.concept)
    names = (*required, *optional, *table.times, *table.numbers, *table.texts)
    _copy(con, source, insert_omop_source_events(columns), names)
    return "read"


def standard_event_rows(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The copied events of standard codes (see :func:`_as_events`)."""
    return _as_events(sql.run_internal(con, "omop_standard_event_rows").df())


def source_event_rows(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The copied events of source codes (see :func:`_as_events`)."""
    return _as_events(sql.run_internal(con, "omop_source_event_rows").df())


def _as_events(events: pd.DataFrame) -> pd.DataFrame:
    """Events ordered by person, time (NULL first), table, code, value (as the queries give
    them), missing values as None."""
    for column in (SUBJECT_ID, CODE, VALUE):
        events[column] = events[column].astype(object).where(events[column].notna(), None)
    return events
