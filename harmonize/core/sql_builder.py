"""The SQL statements whose text depends on the data: the OMOP and MEDS readers' statements
over tables and columns found in the user's files. Every other statement is a fixed file in
``sql/internal/`` (run with :func:`harmonize.core.sql.run_internal`).

Names found in the user's data (tables, schemas, columns) are quoted by
:func:`quote_identifier` and nowhere else; values are always bound ``$name`` parameters, never
formatted in. A builder returns a :class:`Statement` (text and parameters) to run.

>>> quote_identifier('my "odd" column')
'"my ""odd"" column"'
>>> select_rows(("cdm", "main", "CONCEPT"), 2).text
'SELECT * FROM "cdm"."main"."CONCEPT" LIMIT $limit'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

# A table's name parts: ("concept",) for a view, (catalog, schema, table) for an attached one.
Relation = tuple[str, ...]

# The columns of temp table omop_concepts (sql/internal/omop_temp_tables.sql), in order, and
# the type each is read as.
OMOP_CONCEPT_COLUMNS = {
    "concept_id": "BIGINT",
    "concept_name": "VARCHAR",
    "vocabulary_id": "VARCHAR",
    "domain_id": "VARCHAR",
    "concept_code": "VARCHAR",
}


@dataclass(frozen=True)
class Statement:
    """One statement's text and the values bound to its ``$name`` parameters."""

    text: str
    params: dict[str, Any] = field(default_factory=dict)

    def run(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """Executes the statement on ``con``; returns the connection for fetching."""
        return con.execute(self.text, self.params) if self.params else con.execute(self.text)


@dataclass(frozen=True)
class EventColumns:
    """Where one OMOP event table's events are read from: its relation, its position among the
    event tables (kept for ordering), and its columns as spelled there. ``code`` is the concept
    column (standard codes) or the source value column (source codes); ``times`` and the
    values (``numbers`` then ``texts``) are first-non-NULL lists; ``source_concept`` and
    ``concept`` are None where the table lacks them."""

    relation: Relation
    position: int
    person: str
    code: str
    times: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()
    source_concept: str | None = None
    concept: str | None = None


def quote_identifier(name: str) -> str:
    """A SQL identifier, double-quoted (for names found in the user's data, never values)."""
    return '"' + name.replace('"', '""') + '"'


def relation_sql(relation: Relation) -> str:
    """``("cdm", "main", "CONCEPT")`` -> ``"cdm"."main"."CONCEPT"``."""
    return ".".join(quote_identifier(part) for part in relation)


def attach_read_only(path: str, catalog: str) -> Statement:
    """Attaches the DuckDB file at ``path`` read-only under the name ``catalog``."""
    return Statement(f"ATTACH $path AS {quote_identifier(catalog)} (READ_ONLY)", {"path": path})


def select_rows(relation: Relation, limit: int) -> Statement:
    """The first ``limit`` rows of ``relation``, all columns (0: just its column names)."""
    return Statement(f"SELECT * FROM {relation_sql(relation)} LIMIT $limit", {"limit": limit})


def _cast(column: str, sql_type: str) -> str:
    return f"CAST({quote_identifier(column)} AS {sql_type})"


def _cast_or_null(column: str | None, sql_type: str) -> str:
    return _cast(column, sql_type) if column is not None else f"CAST(NULL AS {sql_type})"


def _trimmed_text(column: str) -> str:
    """The column as text, stripped; NULL when blank."""
    return f"NULLIF(TRIM({_cast(column, 'VARCHAR')}), '')"


def _first_non_null(expressions: Sequence[str], sql_type: str) -> str:
    if not expressions:
        return f"CAST(NULL AS {sql_type})"
    return f"COALESCE({', '.join(expressions)})"


def _time_and_value(columns: EventColumns) -> tuple[str, str]:
    """SQL of an event's time and value: the first non-NULL of the table's columns; numbers
    are stored as text (``"5.0"``), texts stripped."""
    time = _first_non_null([_cast(c, "TIMESTAMP") for c in columns.times], "TIMESTAMP")
    values = [f"CAST({_cast(c, 'DOUBLE')} AS VARCHAR)" for c in columns.numbers]
    values += [_trimmed_text(c) for c in columns.texts]
    return time, _first_non_null(values, "VARCHAR")


def insert_omop_events(columns: EventColumns) -> Statement:
    """Copies an event table's rows with a person_id and a concept_id other than 0 into temp
    table omop_events (standard codes)."""
    time, value = _time_and_value(columns)
    return Statement(
        "INSERT INTO omop_events SELECT * FROM ("
        f"SELECT CAST($tbl AS INTEGER) AS tbl, {_cast(columns.person, 'BIGINT')} AS person, "
        f"{time} AS time, {_cast(columns.code, 'BIGINT')} AS concept, {value} AS value "
        f"FROM {relation_sql(columns.relation)}"
        ") WHERE person IS NOT NULL AND concept IS NOT NULL AND concept <> 0",
        {"tbl": columns.position},
    )


def insert_omop_source_events(columns: EventColumns) -> Statement:
    """Copies an event table's rows with a person_id into temp table omop_source_events
    (source codes), code NULL where the source value is NULL or blank."""
    time, value = _time_and_value(columns)
    return Statement(
        "INSERT INTO omop_source_events SELECT * FROM ("
        f"SELECT CAST($tbl AS INTEGER) AS tbl, {_cast(columns.person, 'BIGINT')} AS person, "
        f"{time} AS time, {_trimmed_text(columns.code)} AS code, "
        f"{_cast_or_null(columns.source_concept, 'BIGINT')} AS source_concept, "
        f"{_cast_or_null(columns.concept, 'BIGINT')} AS concept, {value} AS value "
        f"FROM {relation_sql(columns.relation)}"
        ") WHERE person IS NOT NULL",
        {"tbl": columns.position},
    )


def insert_omop_concepts(relation: Relation, columns: Mapping[str, str | None]) -> Statement:
    """Copies the rows of the concept table ``relation`` whose concept_id is in temp table
    omop_used_concepts into temp table omop_concepts. ``columns`` maps each column of
    :data:`OMOP_CONCEPT_COLUMNS` to its spelling in ``relation`` (None or absent: NULL)."""
    selected = ", ".join(
        f"{_cast_or_null(columns.get(name), sql_type)} AS {name}"
        for name, sql_type in OMOP_CONCEPT_COLUMNS.items()
    )
    return Statement(
        f"INSERT INTO omop_concepts SELECT * FROM (SELECT {selected} "
        f"FROM {relation_sql(relation)}) "
        "WHERE concept_id IN (SELECT concept_id FROM omop_used_concepts)"
    )


def meds_events(
    files: Sequence[str],
    *,
    subject: str,
    time: str,
    code: str,
    numeric: str | None = None,
    text: str | None = None,
    value_as: str = "value",
) -> Statement:
    """All events of the MEDS data ``files`` in one scan: subject as text, time as a
    timestamp, code stripped, and value: ``numeric`` as text (NaN counts as missing), else
    ``text`` stripped, else NULL, as column ``value_as``. The other output columns are named
    like the input ones."""
    values = []
    if numeric is not None:
        values.append(
            f"CASE WHEN isnan({_cast(numeric, 'DOUBLE')}) THEN NULL "
            f"ELSE {_cast(numeric, 'VARCHAR')} END"
        )
    if text is not None:
        values.append(_trimmed_text(text))
    value = _first_non_null(values, "VARCHAR")
    return Statement(
        f"SELECT {_cast(subject, 'VARCHAR')} AS {quote_identifier(subject)}, "
        f"{_cast(time, 'TIMESTAMP')} AS {quote_identifier(time)}, "
        f"TRIM({_cast(code, 'VARCHAR')}) AS {quote_identifier(code)}, "
        f"{value} AS {quote_identifier(value_as)} "
        "FROM read_parquet($files, union_by_name = true)",
        {"files": list(files)},
    )
