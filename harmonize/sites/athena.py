"""An OMOP standard vocabulary downloaded from Athena, stored as a site, streamed by DuckDB.

Athena's files (``CONCEPT.csv``, ``VOCABULARY.csv``, and optionally ``CONCEPT_SYNONYM.csv``,
``CONCEPT_RELATIONSHIP.csv``, ``CONCEPT_ANCESTOR.csv``) are tab-separated, with a header, dates
as ``yyyymmdd`` and quotes that are ordinary characters (a name may hold ``"``). DuckDB reads
them with quoting switched off and writes the kept rows straight into the workspace, in one
transaction: nothing of a full download (millions of rows) passes through Python.

The site's codes are ``concept_id`` s; ``concept_code``, ``vocabulary_id``, ``domain_id``,
``concept_class_id``, ``standard_concept`` and ``invalid_reason`` are kept in ``extra``,
``vocabulary_id`` is also the ``system`` (so ``map --code-system`` looks codes up in it),
``parent_code`` is the parent one level up in CONCEPT_ANCESTOR (the smallest concept_id if
several), synonyms go to ``concept_synonyms`` and ``Maps to`` edges to ``concept_links``. The
queries are ``sql/internal/athena_*.sql``.

>>> import tempfile
>>> from harmonize.core.workspace import Workspace
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "VOCABULARY.csv").write_text(
...     "vocabulary_id\\tvocabulary_name\\tvocabulary_reference\\tvocabulary_version\\t"
...     "vocabulary_concept_id\\nSNOMED\\tSNOMED CT\\t-\\tv1\\t44819097\\n")
>>> _ = (folder / "CONCEPT.csv").write_text("\\t".join(CONCEPT_COLUMNS) + "\\n"
...     "201826\\tType 2 diabetes mellitus\\tCondition\\tSNOMED\\tClinical Finding\\tS\\t"
...     "44054006\\t20020131\\t20991231\\t\\n")
>>> add_athena_site(Workspace(folder / "ws"), "snomed", folder).message
"added site 'snomed': 1 concepts (0 synonyms, 0 'Maps to' edges)"
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from harmonize.core import sql
from harmonize.core.errors import InputError, literal
from harmonize.core.timing import Stages
from harmonize.core.workspace import Workspace, check_site_name
from harmonize.sites.registry import check_replace

CONCEPT_COLUMNS = (
    "concept_id",
    "concept_name",
    "domain_id",
    "vocabulary_id",
    "concept_class_id",
    "standard_concept",
    "concept_code",
    "valid_start_date",
    "valid_end_date",
    "invalid_reason",
)
# file -> the columns harmonize reads from it (others may follow; all are read as text)
FILES = {
    "CONCEPT.csv": CONCEPT_COLUMNS,
    "VOCABULARY.csv": ("vocabulary_id",),
    "CONCEPT_SYNONYM.csv": ("concept_id", "concept_synonym_name"),
    "CONCEPT_RELATIONSHIP.csv": (
        "concept_id_1",
        "concept_id_2",
        "relationship_id",
        "invalid_reason",
    ),
    "CONCEPT_ANCESTOR.csv": (
        "ancestor_concept_id",
        "descendant_concept_id",
        "min_levels_of_separation",
    ),
}
REQUIRED_FILES = ("CONCEPT.csv", "VOCABULARY.csv")


@dataclass(frozen=True)
class AthenaFilters:
    """Which concepts a site keeps. Empty tuples keep every vocabulary, domain or class.
    ``standard`` (the default) keeps standard concepts only (standard_concept 'S'), as a
    mapping target wants; without it non-standard and classification concepts are kept too,
    searched by their names and synonyms, and a hit on one follows its 'Maps to' edges.
    ``include_invalid`` keeps concepts (and edges) with an invalid_reason."""

    vocabularies: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    concept_classes: tuple[str, ...] = ()
    standard: bool = True
    include_invalid: bool = False

    def params(self) -> dict[str, object]:
        """The filters as the query's parameters (None: no filter)."""
        return {
            "vocabularies": list(self.vocabularies) or None,
            "domains": list(self.domains) or None,
            "classes": list(self.concept_classes) or None,
            "standard": self.standard,
            "include_invalid": self.include_invalid,
        }

    def describe(self) -> str:
        """The filters in words, for the message when nothing passes them.

        >>> AthenaFilters(vocabularies=("SNOMED",)).describe()
        'vocabulary SNOMED, standard concepts only, valid concepts only'
        """
        parts = [
            f"{label} {', '.join(values)}"
            for label, values in (
                ("vocabulary", self.vocabularies),
                ("domain", self.domains),
                ("concept class", self.concept_classes),
            )
            if values
        ]
        if self.standard:
            parts.append("standard concepts only")
        if not self.include_invalid:
            parts.append("valid concepts only")
        return ", ".join(parts) or "no filter"


@dataclass(frozen=True)
class AthenaFile:
    """One Athena file and its header (the ``columns`` read_csv is given, all as text)."""

    path: Path
    header: tuple[str, ...]

    @property
    def columns(self) -> dict[str, str]:
        return {name: "VARCHAR" for name in self.header}

    def params(self) -> dict[str, object]:
        return {"path": str(self.path), "columns": self.columns}


def athena_files(folder: str | Path) -> dict[str, AthenaFile]:
    """The Athena files in ``folder`` (names matched case-insensitively), headers checked;
    CONCEPT.csv and VOCABULARY.csv are required."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(
            f"{{athena}} must be a folder of Athena files, got {literal(folder)}",
            params=("athena",),
        )
    present = {p.name.upper(): p for p in folder.iterdir() if p.is_file()}
    out: dict[str, AthenaFile] = {}
    for name, needed in FILES.items():
        path = present.get(name.upper())
        if path is None:
            if name in REQUIRED_FILES:
                raise InputError(f"{folder}: no {name} (an Athena download has it)")
            continue
        out[name] = AthenaFile(path, _header(path, needed))
    return out


def _header(path: Path, needed: tuple[str, ...]) -> tuple[str, ...]:
    """The tab-separated header of ``path`` in lower case, refused without ``needed``."""
    with path.open("rb") as handle:
        first = handle.readline()
    try:
        text = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: the header is not UTF-8") from exc
    header = tuple(name.strip().lower() for name in text.split("\t"))
    missing = [name for name in needed if name not in header]
    if missing:
        shown = ", ".join(header) if text else "nothing"
        raise InputError(
            f"{path}: no column '{missing[0]}' in the tab-separated header (found {shown})"
        )
    return header


@dataclass(frozen=True)
class AthenaAdded:
    """What :func:`add_athena_site` stored."""

    site: str
    n_concepts: int
    n_synonyms: int
    n_links: int
    replaced: bool

    @property
    def message(self) -> str:
        verb = "replaced" if self.replaced else "added"
        return (
            f"{verb} site '{self.site}': {self.n_concepts} concepts ({self.n_synonyms} "
            f"synonyms, {self.n_links} 'Maps to' edges)"
        )


def add_athena_site(
    ws: Workspace,
    name: str,
    folder: str | Path,
    filters: AthenaFilters | None = None,
    replace: bool = False,
) -> AthenaAdded:
    """Stores the concepts of the Athena download ``folder`` that pass ``filters`` as site
    ``name``, with their synonyms, parents and 'Maps to' edges, in one transaction."""
    check_site_name(name)
    filters = filters or AthenaFilters()
    files = athena_files(folder)
    clock = Stages("add-site", ("check", "store"))
    _check_vocabularies(files["VOCABULARY.csv"], filters)
    exists = check_replace(ws, name, replace, "--athena DIR")
    clock.done("check")
    with ws.transaction() as con:
        added = _store(con, name, Path(folder), files, filters)
    clock.done("store")
    return AthenaAdded(name, *added, replaced=exists)


def _check_vocabularies(vocabulary: AthenaFile, filters: AthenaFilters) -> None:
    """Refuses a ``--vocabulary`` that VOCABULARY.csv does not list."""
    if not filters.vocabularies:
        return
    with duckdb.connect() as con:
        known = [
            row[0]
            for row in _run(
                con, vocabulary, "athena_vocabularies", **vocabulary.params()
            ).fetchall()
        ]
    for wanted in filters.vocabularies:
        if wanted not in known:
            raise InputError(
                f"unknown vocabulary '{wanted}': {vocabulary.path} lists "
                f"{', '.join(known[:20]) or 'none'}{' ...' if len(known) > 20 else ''}"
            )


def _store(
    con: duckdb.DuckDBPyConnection,
    name: str,
    folder: Path,
    files: dict[str, AthenaFile],
    filters: AthenaFilters,
) -> tuple[int, int, int]:
    """Replaces site ``name`` with the kept concepts; (concepts, synonyms, edges) stored."""
    from harmonize.sites.registry import SITE_TABLES

    sql.run_internal(con, "athena_quiet")  # the CLI's output stays the message
    for table in SITE_TABLES:
        sql.run_internal(con, f"delete_site_{table}", site=name)
    concept = files["CONCEPT.csv"]
    _run(con, concept, "athena_kept", **concept.params(), **filters.params())
    duplicate = sql.run_internal(con, "athena_duplicate_concept").fetchone()
    if duplicate:
        raise InputError(f"{concept.path}: concept_id {duplicate[0]} appears {duplicate[1]} times")
    n_concepts = sql.run_internal(con, "athena_count_ids").fetchone()[0]
    if n_concepts == 0:
        raise InputError(f"{concept.path}: no concept passes the filters ({filters.describe()})")
    sql.run_internal(con, "athena_parents_empty")
    ancestor = files.get("CONCEPT_ANCESTOR.csv")
    if ancestor is not None:
        _run(con, ancestor, "athena_parents", **ancestor.params())
    sql.run_internal(con, "athena_insert_concepts", site=name)
    counts = {"athena_synonyms": 0, "athena_maps_to": 0}
    steps: list[tuple[str, str, dict[str, object]]] = [
        ("CONCEPT_SYNONYM.csv", "athena_synonyms", {})
    ]
    if not filters.standard:  # standard concepts only: no non-standard concept to follow
        extra = {"include_invalid": filters.include_invalid}
        steps.append(("CONCEPT_RELATIONSHIP.csv", "athena_maps_to", extra))
    for file_name, statement, extra in steps:
        source = files.get(file_name)
        if source is not None:
            changed = _run(con, source, statement, site=name, **source.params(), **extra)
            counts[statement] = int(changed.fetchone()[0])
    digest, _ = sql.run_internal(con, "site_texts_sha256", site=name).fetchone()
    sql.run_internal(
        con,
        "insert_site",
        site=name,
        vocab_file=str(folder.resolve()),
        vocab_sha256=digest,
        n_concepts=int(n_concepts),
    )
    sql.run_internal(con, "athena_drop_temp")
    return int(n_concepts), counts["athena_synonyms"], counts["athena_maps_to"]


def _run(con: duckdb.DuckDBPyConnection, source: AthenaFile, statement: str, **params: object):
    """Runs ``statement`` over ``source``; a malformed file is an InputError naming it."""
    try:
        return sql.run_internal(con, statement, **params)
    except (duckdb.ConversionException, duckdb.InvalidInputException, duckdb.IOException) as exc:
        reason = str(exc).strip().splitlines()[0]
        raise InputError(f"cannot read {source.path}: {reason}") from exc
