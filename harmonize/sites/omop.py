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
header, as in the Eunomia DuckDB file). CSV files are read as text and cast, so a bad value is an
error naming its table rather than a silent NULL.

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

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd

from harmonize.core.errors import InputError
from harmonize.sites.vocab import (
    CODE,
    DESCRIPTION,
    FREQUENCY,
    SUBJECT_ID,
    SYSTEM,
    TIME,
    VALUE,
    validate_vocab,
)

CONCEPT = "concept"
PERSON_ID = "person_id"
CONCEPT_REQUIRED = ("concept_id", "concept_name")
CONCEPT_EXTRA = ("domain_id", "concept_code")


@dataclass(frozen=True)
class EventTable:
    """An OMOP event table: its concept column, its time columns (first non-NULL wins) and
    its value columns (first non-NULL wins; numbers are stored as text)."""

    name: str
    concept: str
    times: tuple[str, ...]
    numbers: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()

    @property
    def source_value(self) -> str:
        """``condition_concept_id`` -> ``condition_source_value``."""
        return self.concept.removesuffix("_concept_id") + "_source_value"

    @property
    def source_concept(self) -> str:
        """``condition_concept_id`` -> ``condition_source_concept_id``."""
        return self.concept.removesuffix("_concept_id") + "_source_concept_id"


EVENT_TABLES = (
    EventTable(
        "condition_occurrence",
        "condition_concept_id",
        ("condition_start_datetime", "condition_start_date"),
    ),
    EventTable(
        "drug_exposure",
        "drug_concept_id",
        ("drug_exposure_start_datetime", "drug_exposure_start_date"),
    ),
    EventTable(
        "procedure_occurrence", "procedure_concept_id", ("procedure_datetime", "procedure_date")
    ),
    EventTable(
        "measurement",
        "measurement_concept_id",
        ("measurement_datetime", "measurement_date"),
        ("value_as_number",),
    ),
    EventTable(
        "observation",
        "observation_concept_id",
        ("observation_datetime", "observation_date"),
        ("value_as_number",),
        ("value_as_string",),
    ),
    EventTable(
        "device_exposure",
        "device_concept_id",
        ("device_exposure_start_datetime", "device_exposure_start_date"),
    ),
    EventTable(
        "visit_occurrence", "visit_concept_id", ("visit_start_datetime", "visit_start_date")
    ),
    EventTable(
        "visit_detail",
        "visit_detail_concept_id",
        ("visit_detail_start_datetime", "visit_detail_start_date"),
    ),
    EventTable("specimen", "specimen_concept_id", ("specimen_datetime", "specimen_date")),
)
EVENT_TABLE_NAMES = tuple(t.name for t in EVENT_TABLES)
KNOWN_TABLES = (CONCEPT, *EVENT_TABLE_NAMES)
# Longest first, so that "x.csv.gz" is not taken for a ".gz" file.
_SUFFIXES = (".csv.gz", ".tsv.gz", ".csv", ".tsv", ".parquet")
# The alias under which a DuckDB file is attached (a name its own schemas are unlikely to use).
_CATALOG = "harmonize_omop_source"
CODES = ("standard", "source")
Codes = Literal["standard", "source"]


@dataclass(frozen=True)
class _Source:
    """Where one OMOP table lives: its SQL name on the connection, how messages name it, and
    its columns (lower case -> as spelled in the source)."""

    sql: str
    where: str
    columns: dict[str, str]


@dataclass(frozen=True)
class OmopSite:
    """What :func:`read_omop_site` read: the vocabulary, the events, and how many event rows
    with a person_id were left out for a NULL or blank source value (always 0 for
    ``codes="standard"``)."""

    vocab: pd.DataFrame
    events: pd.DataFrame
    skipped: int


def read_omop(path: str | Path, codes: Codes = "standard") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(vocabulary, events) of the OMOP CDM at ``path``, a DuckDB file or a folder of tables.

    The vocabulary is validated (:func:`harmonize.vocab.validate_vocab`), ready for
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
    harmonize.errors.InputError: codes must be one of standard, source; got 'local'
    """
    if codes not in CODES:
        raise InputError(f"codes must be one of {', '.join(CODES)}; got {codes!r}")
    path = Path(path)
    if not path.exists():
        raise InputError(f"OMOP source not found: {path}")
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # a time with a zone is stored as its UTC time
        tables = _open_folder(con, path) if path.is_dir() else _open_database(con, path)
        return _read(con, path, tables, codes)
    finally:
        con.close()


def _quote(identifier: str) -> str:
    """A SQL identifier, quoted (for names found in the user's database, not values)."""
    return '"' + identifier.replace('"', '""') + '"'


def _columns(con: duckdb.DuckDBPyConnection, sql_name: str) -> dict[str, str]:
    names = [d[0] for d in con.execute(f"SELECT * FROM {sql_name} LIMIT 0").description]
    return {name.lower(): name for name in names}


def _table_name(file: Path) -> str | None:
    """The OMOP table a file holds (``CONCEPT.csv`` -> ``concept``), or None."""
    lower = file.name.lower()
    for suffix in _SUFFIXES:
        if lower.endswith(suffix):
            stem = lower[: -len(suffix)]
            return stem if stem in KNOWN_TABLES else None
    return None


def _open_folder(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, _Source]:
    """Registers each known table file of ``folder`` as a view named after its table."""
    files: dict[str, Path] = {}
    for file in sorted(folder.iterdir()):
        table = _table_name(file)
        if table is None or not file.is_file() or file.stat().st_size == 0:
            continue  # an empty file is an empty table, as good as absent
        if table in files:
            raise InputError(
                f"{folder}: both {files[table].name} and {file.name} hold OMOP table "
                f"'{table}'; keep one"
            )
        files[table] = file
    tables = {}
    for table, file in files.items():
        parquet = file.name.lower().endswith(".parquet")
        try:
            if parquet:
                relation = con.read_parquet(str(file))
            else:
                # As text: a bad value then fails its cast, naming the table, instead of the
                # type sniffer guessing from a sample.
                relation = con.read_csv(str(file), header=True, all_varchar=True)
            relation.create_view(table)
            columns = _columns(con, table)
        except duckdb.Error as exc:
            kind = "Parquet" if parquet else "CSV"
            raise InputError(f"cannot read {kind} file {file}: {_first_line(exc)}") from exc
        tables[table] = _Source(table, str(file), columns)
    return tables


def _open_database(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, _Source]:
    """Attaches the DuckDB file read-only and finds the known tables in it."""
    with path.open("rb") as file:
        header = file.read(12)
    if header[8:12] != b"DUCK":
        raise InputError(
            f"{path} is not a DuckDB database file; an OMOP source is a DuckDB file or a folder "
            "of CSV/Parquet tables named after OMOP tables (concept.csv, measurement.parquet, ...)"
        )
    try:
        con.execute(f"ATTACH $path AS {_CATALOG} (READ_ONLY)", {"path": str(path)})
    except duckdb.Error as exc:
        raise InputError(
            f"cannot open {path} as a DuckDB database ({_first_line(exc)}); an OMOP source is "
            "a DuckDB file or a folder of CSV/Parquet tables"
        ) from exc
    rows = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        f"WHERE table_catalog = '{_CATALOG}' AND list_contains($known, lower(table_name)) "
        "ORDER BY table_schema, table_name",
        {"known": list(KNOWN_TABLES)},
    ).fetchall()
    found: dict[str, list[tuple[str, str]]] = {}
    for schema, name in rows:
        found.setdefault(name.lower(), []).append((schema, name))
    tables = {}
    for table, places in found.items():
        if len(places) > 1:
            schemas = ", ".join(schema for schema, _ in places)
            raise InputError(
                f"{path}: OMOP table '{table}' is in several schemas ({schemas}); "
                "keep one CDM per database file"
            )
        schema, name = places[0]
        sql_name = f"{_CATALOG}.{_quote(schema)}.{_quote(name)}"
        where = f"{path}, table {name}" if schema == "main" else f"{path}, table {schema}.{name}"
        tables[table] = _Source(sql_name, where, _columns(con, sql_name))
    return tables


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _missing(source: _Source, required: tuple[str, ...]) -> str | None:
    return next((c for c in required if c not in source.columns), None)


def _missing_error(source: _Source, required: tuple[str, ...], missing: str) -> InputError:
    found = ", ".join(source.columns.values()) or "none"
    return InputError(
        f"{source.where}: missing required column '{missing}' "
        f"(required: {', '.join(required)}; found: {found})"
    )


def _blank(con: duckdb.DuckDBPyConnection, source: _Source, required: tuple[str, ...]) -> bool:
    """No rows, or one row that repeats the column names (a header-only CSV loaded as data)."""
    rows = con.execute(f"SELECT * FROM {source.sql} LIMIT 2").fetchall()
    if not rows:
        return True
    if len(rows) > 1:
        return False
    values = {str(v).strip().lower() for v in rows[0] if v is not None}
    return set(required) <= values


def _read(
    con: duckdb.DuckDBPyConnection, path: Path, tables: dict[str, _Source], codes: Codes
) -> OmopSite:
    kind = "file" if path.is_dir() else "table"
    if CONCEPT not in tables:
        what = "concept.csv or concept.parquet" if path.is_dir() else "concept"
        raise InputError(f"{path}: no OMOP concept table (expected a {kind} {what})")
    concept = tables[CONCEPT]
    missing = _missing(concept, CONCEPT_REQUIRED)
    if missing:
        raise _missing_error(concept, CONCEPT_REQUIRED, missing)
    present = [t for t in EVENT_TABLES if t.name in tables]
    if not present:
        raise InputError(
            f"{path}: no OMOP event table (expected a {kind} named one of: "
            f"{', '.join(EVENT_TABLE_NAMES)})"
        )
    if codes == "source":
        return _read_source(con, path, concept, [(t, tables[t.name]) for t in present])
    con.execute(
        "CREATE TEMP TABLE omop_events "
        "(tbl INTEGER, person BIGINT, time TIMESTAMP, concept BIGINT, value VARCHAR)"
    )
    for position, table in enumerate(EVENT_TABLES):
        if table.name in tables:
            _insert_events(con, position, table, tables[table.name])
    if not con.execute("SELECT count(*) FROM omop_events").fetchone()[0]:
        names = ", ".join(t.name for t in present)
        raise InputError(
            f"{path}: no events: the OMOP event tables ({names}) have no rows with a person_id "
            "and a concept_id other than 0"
        )
    vocab = _vocab(con, concept)
    events = con.execute(
        f"SELECT CAST(person AS VARCHAR) AS {SUBJECT_ID}, time AS {TIME}, "
        f"CAST(concept AS VARCHAR) AS {CODE}, value AS {VALUE} FROM omop_events "
        "ORDER BY person, time NULLS FIRST, tbl, concept, value NULLS FIRST"
    ).df()
    return OmopSite(validate_vocab(vocab, path), _as_objects(events), 0)


def _as_objects(events: pd.DataFrame) -> pd.DataFrame:
    for column in (SUBJECT_ID, CODE, VALUE):
        events[column] = events[column].astype(object).where(events[column].notna(), None)
    return events


def _time_value(table: EventTable, cols: dict[str, str]) -> tuple[str, str]:
    """SQL of an event's time and value (first non-NULL of the table's columns)."""
    times = [f"CAST({_quote(cols[c])} AS TIMESTAMP)" for c in table.times if c in cols]
    values = [
        f"CAST(CAST({_quote(cols[c])} AS DOUBLE) AS VARCHAR)" for c in table.numbers if c in cols
    ]
    values += [
        f"NULLIF(TRIM(CAST({_quote(cols[c])} AS VARCHAR)), '')" for c in table.texts if c in cols
    ]
    time = f"COALESCE({', '.join(times)})" if times else "CAST(NULL AS TIMESTAMP)"
    value = f"COALESCE({', '.join(values)})" if values else "CAST(NULL AS VARCHAR)"
    return time, value


def _insert_events(
    con: duckdb.DuckDBPyConnection, position: int, table: EventTable, source: _Source
) -> None:
    required = (PERSON_ID, table.concept)
    missing = _missing(source, required)
    if missing:
        if _blank(con, source, required):
            return
        raise _missing_error(source, required, missing)
    cols = source.columns
    time, value = _time_value(table, cols)
    used = [cols[c] for c in (*required, *table.times, *table.numbers, *table.texts) if c in cols]
    try:
        con.execute(
            f"INSERT INTO omop_events SELECT * FROM ("
            f"SELECT {position} AS tbl, CAST({_quote(cols[PERSON_ID])} AS BIGINT) AS person, "
            f"{time} AS time, CAST({_quote(cols[table.concept])} AS BIGINT) AS concept, "
            f"{value} AS value FROM {source.sql}"
            ") WHERE person IS NOT NULL AND concept IS NOT NULL AND concept <> 0"
        )
    except duckdb.Error as exc:
        raise InputError(
            f"{source.where}: cannot read columns {', '.join(used)}: {_first_line(exc)}"
        ) from exc


def _concepts(con: duckdb.DuckDBPyConnection, concept: _Source, used: str) -> list[str]:
    """Copies the rows of ``concept`` whose concept_id is in the SQL query ``used`` into temp
    table omop_concepts (each concept_id once); returns the extra columns it has."""
    cols = concept.columns
    extras = [c for c in CONCEPT_EXTRA if c in cols]
    system = (
        f"CAST({_quote(cols['vocabulary_id'])} AS VARCHAR)" if "vocabulary_id" in cols else "NULL"
    )
    selected = ", ".join(
        [
            f"CAST({_quote(cols['concept_id'])} AS BIGINT) AS concept_id",
            f"CAST({_quote(cols['concept_name'])} AS VARCHAR) AS concept_name",
            f"{system} AS vocabulary_id",
            *(f"CAST({_quote(cols[c])} AS VARCHAR) AS {c}" for c in extras),
        ]
    )
    try:
        con.execute(
            f"CREATE TEMP TABLE omop_concepts AS SELECT * FROM (SELECT {selected} "
            f"FROM {concept.sql}) WHERE concept_id IN ({used})"
        )
    except duckdb.Error as exc:
        raise InputError(
            f"{concept.where}: cannot read columns concept_id, concept_name: {_first_line(exc)}"
        ) from exc
    duplicate = con.execute(
        "SELECT concept_id, count(*) FROM omop_concepts GROUP BY concept_id "
        "HAVING count(*) > 1 ORDER BY concept_id LIMIT 1"
    ).fetchone()
    if duplicate:
        raise InputError(
            f"{concept.where}: concept_id {duplicate[0]} appears {duplicate[1]} times; "
            "each concept_id must appear once"
        )
    return extras


def _vocab(con: duckdb.DuckDBPyConnection, concept: _Source) -> pd.DataFrame:
    """The concepts in use, in concept_id order, with their names from ``concept``."""
    extras = _concepts(con, concept, "SELECT concept FROM omop_events")
    extra_sql = "".join(f", COALESCE(c.{c}, '') AS {c}" for c in extras)
    return con.execute(
        f"SELECT CAST(e.concept AS VARCHAR) AS {CODE}, "
        f"COALESCE(NULLIF(TRIM(c.concept_name), ''), CAST(e.concept AS VARCHAR)) AS {DESCRIPTION}, "
        f"c.vocabulary_id AS {SYSTEM}, e.n AS {FREQUENCY}{extra_sql} "
        "FROM (SELECT concept, count(*) AS n FROM omop_events GROUP BY concept) AS e "
        "LEFT JOIN omop_concepts AS c ON c.concept_id = e.concept ORDER BY e.concept"
    ).df()


def _read_source(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    concept: _Source,
    present: list[tuple[EventTable, _Source]],
) -> OmopSite:
    """The site of ``codes="source"``: the source values in use (see the module docstring)."""
    con.execute(
        "CREATE TEMP TABLE omop_source_events (tbl INTEGER, person BIGINT, time TIMESTAMP, "
        "code VARCHAR, source_concept BIGINT, concept BIGINT, value VARCHAR)"
    )
    states = [_insert_source_events(con, table, source) for table, source in present]
    if "read" not in states and "no column" in states:
        expected = ", ".join(f"{t.name}.{t.source_value}" for t, _ in present)
        raise InputError(
            f"{path}: no OMOP event table has its source value column (expected one of: {expected})"
        )
    skipped = con.execute("SELECT count(*) FROM omop_source_events WHERE code IS NULL").fetchone()
    con.execute("DELETE FROM omop_source_events WHERE code IS NULL")
    if not con.execute("SELECT count(*) FROM omop_source_events").fetchone()[0]:
        names = ", ".join(t.name for t, _ in present)
        raise InputError(
            f"{path}: no events: the OMOP event tables ({names}) have no rows with a person_id "
            "and a source value"
        )
    extras = _concepts(
        con, concept, "SELECT source_concept FROM omop_source_events WHERE source_concept <> 0"
    )
    extra_sql = "".join(f", COALESCE(c.{c}, '') AS {c}" for c in extras)
    table_name = " ".join(f"WHEN {i} THEN '{t.name}'" for i, t in enumerate(EVENT_TABLES))
    vocab = con.execute(
        "WITH freq AS (SELECT code, count(*) AS n FROM omop_source_events GROUP BY code), "
        # the most frequent of each code's source concepts found in `concept`, ties: smallest
        "src AS (SELECT code, id, row_number() OVER (PARTITION BY code ORDER BY n DESC, id) "
        "AS r FROM (SELECT e.code, e.source_concept AS id, count(*) AS n "
        "FROM omop_source_events AS e JOIN omop_concepts AS c ON c.concept_id = e.source_concept "
        "GROUP BY 1, 2)), "
        "std AS (SELECT code, id, row_number() OVER (PARTITION BY code ORDER BY n DESC, id) "
        "AS r FROM (SELECT code, concept AS id, count(*) AS n FROM omop_source_events "
        "WHERE concept <> 0 GROUP BY 1, 2)), "
        "tbl AS (SELECT code, tbl, row_number() OVER (PARTITION BY code ORDER BY n DESC, tbl) "
        "AS r FROM (SELECT code, tbl, count(*) AS n FROM omop_source_events GROUP BY 1, 2)) "
        f"SELECT f.code AS {CODE}, "
        f"COALESCE(NULLIF(TRIM(c.concept_name), ''), f.code) AS {DESCRIPTION}, "
        f"CASE WHEN s.id IS NULL THEN CASE t.tbl {table_name} END ELSE c.vocabulary_id END "
        f"AS {SYSTEM}, f.n AS {FREQUENCY}, "
        f"COALESCE(CAST(s.id AS VARCHAR), '') AS source_concept_id{extra_sql}, "
        "COALESCE(CAST(d.id AS VARCHAR), '') AS standard_concept_id "
        "FROM freq AS f LEFT JOIN src AS s ON s.code = f.code AND s.r = 1 "
        "LEFT JOIN omop_concepts AS c ON c.concept_id = s.id "
        "LEFT JOIN std AS d ON d.code = f.code AND d.r = 1 "
        "JOIN tbl AS t ON t.code = f.code AND t.r = 1 ORDER BY f.code"
    ).df()
    events = con.execute(
        f"SELECT CAST(person AS VARCHAR) AS {SUBJECT_ID}, time AS {TIME}, code AS {CODE}, "
        f"value AS {VALUE} FROM omop_source_events "
        "ORDER BY person, time NULLS FIRST, tbl, code, value NULLS FIRST"
    ).df()
    return OmopSite(validate_vocab(vocab, path), _as_objects(events), skipped[0])


def _insert_source_events(
    con: duckdb.DuckDBPyConnection, table: EventTable, source: _Source
) -> Literal["read", "blank", "no column"]:
    """Copies the table's rows with a person_id into omop_source_events, code NULL where the
    source value is NULL or blank; a table without its source value column is not read."""
    required = (PERSON_ID, table.source_value)
    missing = _missing(source, required)
    if missing:
        if _blank(con, source, required) or _blank(con, source, (PERSON_ID, table.concept)):
            return "blank"
        if missing == table.source_value:
            return "no column"
        raise _missing_error(source, required, missing)
    cols = source.columns
    time, value = _time_value(table, cols)
    optional = (table.source_concept, table.concept)
    source_concept, concept = (
        f"CAST({_quote(cols[c])} AS BIGINT)" if c in cols else "CAST(NULL AS BIGINT)"
        for c in optional
    )
    names = (*required, *optional, *table.times, *table.numbers, *table.texts)
    used = [cols[c] for c in names if c in cols]
    try:
        con.execute(
            f"INSERT INTO omop_source_events SELECT * FROM ("
            f"SELECT {EVENT_TABLES.index(table)} AS tbl, "
            f"CAST({_quote(cols[PERSON_ID])} AS BIGINT) AS person, {time} AS time, "
            f"NULLIF(TRIM(CAST({_quote(cols[table.source_value])} AS VARCHAR)), '') AS code, "
            f"{source_concept} AS source_concept, {concept} AS concept, {value} AS value "
            f"FROM {source.sql}) WHERE person IS NOT NULL"
        )
    except duckdb.Error as exc:
        raise InputError(
            f"{source.where}: cannot read columns {', '.join(used)}: {_first_line(exc)}"
        ) from exc
    return "read"
