"""Where an OMOP CDM's tables are: the files of a folder or the tables of a DuckDB file.

Tables are looked up case-insensitively (``CONDITION_OCCURRENCE.csv``, ``concept.parquet``, a
DuckDB table ``CONCEPT`` in any one schema). A folder's files are registered as views named
after their tables; CSV files are read as text, so that a bad value fails its cast later,
naming its table, instead of the type sniffer guessing from a sample. A DuckDB file is
attached read-only.

>>> import pathlib, tempfile
>>> import duckdb
>>> cdm = pathlib.Path(tempfile.mkdtemp())
>>> _ = (cdm / "CONCEPT.csv").write_text("concept_id,concept_name\\n1,x\\n")
>>> with duckdb.connect() as con:
...     tables = open_tables(con, cdm)
>>> tables["concept"].relation, list(tables["concept"].columns)
(('concept',), ['concept_id', 'concept_name'])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from harmonize.core import sql
from harmonize.core.errors import InputError
from harmonize.core.sql_builder import Relation, attach_read_only, select_rows

CONCEPT = "concept"
PERSON_ID = "person_id"


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
CATALOG = "harmonize_omop_source"


@dataclass(frozen=True)
class TableSource:
    """Where one OMOP table lives: its name on the connection, how messages name it, and
    its columns (lower case -> as spelled in the source)."""

    relation: Relation
    where: str
    columns: dict[str, str]

    def missing(self, required: tuple[str, ...]) -> str | None:
        """The first of ``required`` (lower case) that the table lacks, or None."""
        return next((c for c in required if c not in self.columns), None)

    def missing_error(self, required: tuple[str, ...], missing: str) -> InputError:
        """The error for a table that lacks column ``missing`` of ``required``."""
        found = ", ".join(self.columns.values()) or "none"
        return InputError(
            f"{self.where}: missing required column '{missing}' "
            f"(required: {', '.join(required)}; found: {found})"
        )

    def is_blank(self, con: duckdb.DuckDBPyConnection, required: tuple[str, ...]) -> bool:
        """No rows, or one row that repeats the column names ``required`` (a header-only CSV
        loaded as data, as in the Eunomia DuckDB file)."""
        rows = select_rows(self.relation, 2).run(con).fetchall()
        return not rows or self.header_as_row(con, required)

    def header_as_row(self, con: duckdb.DuckDBPyConnection, required: tuple[str, ...]) -> bool:
        """The table's only row holds the column names ``required`` (lower-cased): column
        names loaded as data, the table's real header lost."""
        rows = select_rows(self.relation, 2).run(con).fetchall()
        if len(rows) != 1:
            return False
        values = {str(v).strip().lower() for v in rows[0] if v is not None}
        return set(required) <= values


def first_line(exc: Exception) -> str:
    """The first line of an exception's message (DuckDB's run on for several)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def open_tables(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, TableSource]:
    """The known OMOP tables at ``path`` (a folder or a DuckDB file), made readable on ``con``,
    by lower-case table name."""
    return _open_folder(con, path) if path.is_dir() else _open_database(con, path)


def _columns(con: duckdb.DuckDBPyConnection, relation: Relation) -> dict[str, str]:
    names = [d[0] for d in select_rows(relation, 0).run(con).description]
    return {name.lower(): name for name in names}


def _table_name(file: Path) -> str | None:
    """The OMOP table a file holds (``CONCEPT.csv`` -> ``concept``), or None."""
    lower = file.name.lower()
    for suffix in _SUFFIXES:
        if lower.endswith(suffix):
            stem = lower[: -len(suffix)]
            return stem if stem in KNOWN_TABLES else None
    return None


def _table_files(folder: Path) -> dict[str, Path]:
    """The non-empty file of each known table in ``folder``; two files for one table is an
    error."""
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
    return files


def _open_folder(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, TableSource]:
    """Registers each known table file of ``folder`` as a view named after its table."""
    tables = {}
    for table, file in _table_files(folder).items():
        parquet = file.name.lower().endswith(".parquet")
        try:
            if parquet:
                relation = con.read_parquet(str(file))
            else:
                relation = con.read_csv(str(file), header=True, all_varchar=True)
            relation.create_view(table)
            columns = _columns(con, (table,))
        except duckdb.Error as exc:
            kind = "Parquet" if parquet else "CSV"
            raise InputError(f"cannot read {kind} file {file}: {first_line(exc)}") from exc
        tables[table] = TableSource((table,), str(file), columns)
    return tables


def _attach(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Attaches the DuckDB file read-only as :data:`CATALOG`, or says why it is not one."""
    with path.open("rb") as file:
        header = file.read(12)
    if header[8:12] != b"DUCK":
        raise InputError(
            f"{path} is not a DuckDB database file; an OMOP source is a DuckDB file or a folder "
            "of CSV/Parquet tables named after OMOP tables (concept.csv, measurement.parquet, ...)"
        )
    try:
        attach_read_only(str(path), CATALOG).run(con)
    except duckdb.Error as exc:
        raise InputError(
            f"cannot open {path} as a DuckDB database ({first_line(exc)}); an OMOP source is "
            "a DuckDB file or a folder of CSV/Parquet tables"
        ) from exc


def _open_database(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, TableSource]:
    """Attaches the DuckDB file read-only and finds the known tables in it."""
    _attach(con, path)
    rows = sql.run_internal(
        con, "omop_database_tables", catalog=CATALOG, known=list(KNOWN_TABLES)
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
        relation = (CATALOG, schema, name)
        where = f"{path}, table {name}" if schema == "main" else f"{path}, table {schema}.{name}"
        tables[table] = TableSource(relation, where, _columns(con, relation))
    return tables
