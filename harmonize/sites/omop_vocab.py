"""The vocabulary of an OMOP site: the concepts (or source values) its copied events use,
named from table ``concept``.

Only the concept rows the events use are copied (into temp table ``omop_concepts``), each
concept_id at most once; ``domain_id`` and ``concept_code`` become extra columns where table
``concept`` has them. The rules for descriptions, systems and frequencies are in
:mod:`harmonize.sites.omop`; the queries in ``sql/internal/omop_*_vocab.sql``.

>>> import pathlib, tempfile
>>> import duckdb
>>> from harmonize.core import sql
>>> from harmonize.sites.omop_events import insert_standard_events
>>> from harmonize.sites.omop_tables import EVENT_TABLES, open_tables
>>> cdm = pathlib.Path(tempfile.mkdtemp())
>>> _ = (cdm / "concept.csv").write_text("concept_id,concept_name\\n201826,T2DM\\n")
>>> _ = (cdm / "condition_occurrence.csv").write_text(
...     "person_id,condition_concept_id\\n7,201826\\n")
>>> with duckdb.connect() as con:
...     tables = open_tables(con, cdm)
...     _ = sql.run_internal(con, "omop_temp_tables")
...     insert_standard_events(con, EVENT_TABLES[0], tables["condition_occurrence"])
...     standard_vocab(con, tables["concept"]).values.tolist()
[['201826', 'T2DM', None, 1]]
"""

from __future__ import annotations

import duckdb
import pandas as pd

from harmonize.core import sql
from harmonize.core.errors import InputError
from harmonize.core.sql_builder import OMOP_CONCEPT_COLUMNS, insert_omop_concepts
from harmonize.sites.omop_tables import EVENT_TABLE_NAMES, TableSource, first_line

CONCEPT_REQUIRED = ("concept_id", "concept_name")
CONCEPT_EXTRA = ("domain_id", "concept_code")


def _copy_concepts(con: duckdb.DuckDBPyConnection, concept: TableSource, used: str) -> None:
    """Copies the rows of ``concept`` whose concept_id the statement ``used`` records (in
    omop_used_concepts) into omop_concepts; a concept_id found twice is an error."""
    sql.run_internal(con, used)
    columns = {name: concept.columns.get(name) for name in OMOP_CONCEPT_COLUMNS}
    try:
        insert_omop_concepts(concept.relation, columns).run(con)
    except duckdb.Error as exc:
        raise InputError(
            f"{concept.where}: cannot read columns concept_id, concept_name: {first_line(exc)}"
        ) from exc
    duplicate = sql.run_internal(con, "omop_duplicate_concept").fetchone()
    if duplicate:
        raise InputError(
            f"{concept.where}: concept_id {duplicate[0]} appears {duplicate[1]} times; "
            "each concept_id must appear once"
        )


def _without_absent_extras(vocab: pd.DataFrame, concept: TableSource) -> pd.DataFrame:
    """Drops the extra columns that table ``concept`` does not have (the queries give '')."""
    return vocab.drop(columns=[c for c in CONCEPT_EXTRA if c not in concept.columns])


def standard_vocab(con: duckdb.DuckDBPyConnection, concept: TableSource) -> pd.DataFrame:
    """The concepts in use (omop_events), in concept_id order, with their names."""
    _copy_concepts(con, concept, "omop_used_standard")
    vocab = sql.run_internal(con, "omop_standard_vocab").df()
    return _without_absent_extras(vocab, concept)


def source_vocab(con: duckdb.DuckDBPyConnection, concept: TableSource) -> pd.DataFrame:
    """The source values in use (omop_source_events), sorted, each named from its most
    frequent source concept."""
    _copy_concepts(con, concept, "omop_used_source")
    vocab = sql.run_internal(con, "omop_source_vocab", tables=list(EVENT_TABLE_NAMES)).df()
    return _without_absent_extras(vocab, concept)
