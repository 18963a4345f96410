"""Named SQL files and parameter binding (harmonize/sql.py and sql/)."""

from __future__ import annotations

import hashlib
import re

import pandas as pd
import pytest

from harmonize.core import sql
from harmonize.core.config import SCHEMA_VERSION, SQL_DIR
from harmonize.core.errors import QueryError
from harmonize.core.workspace import Workspace

USER_FILES = sorted(SQL_DIR.glob("*.sql"))
INTERNAL_FILES = sorted((SQL_DIR / "internal").glob("*.sql"))
ALL_FILES = USER_FILES + INTERNAL_FILES

# The relations the insert_* statements copy from, with the columns the library registers.
RELATIONS = {
    "new_concepts": [
        "concept_id",
        "code",
        "description",
        "system",
        "parent_code",
        "frequency",
        "extra",
    ],
    "new_events": ["subject_id", "time", "code", "value"],
    "new_levels": ["code", "value", "text"],
    "new_synonyms": ["concept_id", "position", "text"],
    "new_matches": [
        "source_site",
        "source_code",
        "target_site",
        "target_code",
        "matched_text",
        "via_code",
        "run_id",
    ],
    "new_evaluations": [
        "run_id",
        "source_site",
        "target_site",
        "embedding",
        "reading",
        "model",
        "scenario",
        "target_train_size",
        "seed",
        "auroc",
        "auprc",
        "accuracy",
        "auroc_low",
        "auroc_high",
        "n_test",
    ],
    "new_labels": ["subject_id", "label", "value", "split"],
    "new_candidates": [
        "source_site",
        "source_code",
        "target_site",
        "target_code",
        "rank",
        "score",
        "method",
        "run_id",
    ],
    "new_mappings": [
        "source_site",
        "source_code",
        "target_site",
        "target_code",
        "score",
        "method",
        "run_id",
        "confidence",
        "predicate",
    ],
}
NUMERIC_PARAMS = {
    "k": 5,
    "min_score": 0.5,
    "n_source": 3,
    "n_mapped": 2,
    "n_concepts": 3,
    "n": 3,
    "n_unknown": 0,
    "version": 2,
    "score": 0.5,
    "brier": 0.1,
    **{m: 0.5 for m in ("top1", "top5", "top10", "mrr", "coverage", "precision", "recall")},
}
INJECTION = "x'; DROP TABLE concepts; --"


def ids(paths):
    return [f"{p.parent.name}/{p.name}" for p in paths]


def query_of(path):
    return sql.parse_query(path.stem, path, path.read_text(encoding="utf-8"))


def dummy_params(query):
    return {p: NUMERIC_PARAMS.get(p, "x") for p in query.params}


def used_params(text):
    """``$name`` uses outside ``--`` comments, found independently of sql.py."""
    body = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    return set(re.findall(r"\$(\w+)", body))


def header_lines(text):
    lines = []
    for line in text.splitlines():
        if not line.strip().startswith("--"):
            break
        lines.append(line.strip())
    return lines


# --- headers -----------------------------------------------------------------------------------


def test_sql_folder_has_the_expected_user_queries():
    """The user-facing queries the CLI documents exist (and internal ones are not among them)."""
    names = [q.name for q in sql.list_queries()]
    assert names == ["mapping_summary", "recode_events", "review", "site_concepts", "unmapped"]
    assert len(INTERNAL_FILES) >= 19


@pytest.mark.parametrize(
    "path",
    ALL_FILES,
    ids=ids(ALL_FILES),
)
def test_header_names_the_file_and_declares_params(path):
    """Every file opens with '-- <its name>: description' and declares 'params:'."""
    header = header_lines(path.read_text(encoding="utf-8"))
    assert header, "no header comment"
    assert header[0].startswith(f"-- {path.stem}: ")
    assert any("params:" in line for line in header)


@pytest.mark.parametrize("path", ALL_FILES, ids=ids(ALL_FILES))
def test_declared_params_equal_used_params(path):
    """A query declares exactly the $names its body uses, and has a description."""
    query = query_of(path)
    assert query.description
    assert not query.description.endswith(".")
    assert len(set(query.params)) == len(query.params)
    assert set(query.params) == used_params(query.text)


def test_parse_query_header_forms():
    """Description and params are read from one line or two; 'none' means no parameters."""
    one = sql.parse_query("q", SQL_DIR / "q.sql", "-- q: counts rows. params: a, b\nSELECT 1;")
    assert (one.description, one.params) == ("counts rows", ("a", "b"))
    two = sql.parse_query("q", SQL_DIR / "q.sql", "-- q: all rows.\n-- params: none\nSELECT 1;")
    assert (two.description, two.params) == ("all rows", ())


# --- running against an empty schema ------------------------------------------------------------


def register_empty_relations(con):
    for name, columns in RELATIONS.items():
        con.register(name, pd.DataFrame({c: pd.Series([], dtype=object) for c in columns}))


def statement_kind(path):
    """The first SQL keyword of the body (comments removed): SELECT, INSERT, DELETE, ..."""
    body = "\n".join(line.split("--", 1)[0] for line in path.read_text().splitlines())
    return body.split()[0].upper()


def _schema_objects() -> int:
    text = (SQL_DIR / "internal" / "schema.sql").read_text()
    return len(re.findall(r"^CREATE (?:TABLE|OR REPLACE VIEW) ", text, flags=re.MULTILINE))


# The OMOP/MEDS readers' statements run on their own connection, over temp tables
# (omop_temp_tables.sql) or the user's files, never on a workspace: tested on their own below.
READER_FILES = [p for p in INTERNAL_FILES if p.stem.startswith(("omop_", "meds_"))]
# The Athena reader's statements read the user's files inside add-site's transaction, over
# temp table athena_ids: tested with Athena folders in test_athena.py.
ATHENA_FILES = [p for p in INTERNAL_FILES if p.stem.startswith("athena_")]
READ_ONLY = [
    p
    for p in ALL_FILES
    if statement_kind(p) in ("SELECT", "WITH") and p not in READER_FILES + ATHENA_FILES
]


@pytest.mark.parametrize("path", READ_ONLY, ids=ids(READ_ONLY))
def test_read_only_query_runs_on_empty_schema(tmp_path, path):
    """Every SELECT query (user or internal) runs on a fresh workspace and returns no rows,
    except the schema version, which a new workspace is stamped with."""
    query = query_of(path)
    with Workspace(tmp_path / "ws").connect() as con:
        rows = sql.execute(con, query, dummy_params(query)).fetchall()
    stamped = {
        "schema_version": [(SCHEMA_VERSION,)],
        "site_count": [(0,)],
        "count_unmapped_events": [(0,)],
        # every table and view that schema.sql creates, workspace_info among them
        "workspace_tables": [(_schema_objects(), 1)],
        "bench_seed": [(None,)],
        "site_texts_sha256": [(hashlib.sha256(b"").hexdigest(), 0)],
    }
    assert rows == stamped.get(path.stem, [])


def test_read_only_set_is_complete():
    """The SELECT files are the user queries plus the library's lookups."""
    assert {p.stem for p in READ_ONLY} == {
        "mapping_summary",
        "recode_events",
        "site_concepts",
        "unmapped",
        "mapping_preview",
        "run_candidates",
        "run_mappings",
        "pair_mappings",
        "export_mappings",
        "codes_present",
        "review_concepts",
        "search_concepts",
        "pair_candidates",
        "pair_k",
        "pair_code_map",
        "review",
        "review_candidates",
        "review_status",
        "pair_rejections",
        "site_code_counts",
        "site_count",
        "count_unmapped_events",
        "recode_for_export",
        "recode_counts",
        "latest_calibration",
        "pair_top_candidates",
        "latest_decisions",
        "current_mapping",
        "concept_exists",
        "schema_version",
        "site_task",
        "site_levels",
        "task_events",
        "task_labels",
        "site_hierarchy",
        "site_info",
        "site_list",
        "site_names",
        "workspace_tables",
        "site_occurrences",
        "bench_seed",
        "bench_bare_counts",
        "bench_row_join",
        "bench_naive_join",
        "site_texts",
        "site_texts_sha256",
        "site_synonyms",
        "site_links",
        "code_lookup",
        "site_systems",
        "site_concept_systems",
    }


WRITES = [p for p in INTERNAL_FILES if p.stem.startswith(("insert_", "delete_"))]


@pytest.mark.parametrize("path", WRITES, ids=ids(WRITES))
def test_write_statement_runs_on_empty_schema(tmp_path, path):
    """insert_*/delete_* run on an empty schema; copying from an empty registered relation
    or deleting from an empty table changes no rows."""
    query = query_of(path)
    with Workspace(tmp_path / "ws").connect() as con:
        register_empty_relations(con)
        changed = sql.execute(con, query, dummy_params(query)).fetchall()
    expected = (
        1
        if path.stem
        in (
            "insert_run",
            "insert_site",
            "insert_map_evaluation",
            "insert_task",
            "insert_schema_version",
            "insert_decision",
            "insert_manual_mapping",
            "insert_calibration",
        )
        else 0
    )
    assert changed == [(expected,)]


def test_insert_site_then_lookups_see_it(tmp_path):
    """insert_site stores the bound values; site_info/site_names/site_list read them back."""
    ws = Workspace(tmp_path / "ws")
    with ws.connect() as con:
        sql.run_internal(
            con, "insert_site", site="s1", vocab_file="/v.csv", vocab_sha256="abc", n_concepts=3
        )
        assert sql.run_internal(con, "site_info", site="s1").fetchall() == [("s1", "abc", 3)]
        assert sql.run_internal(con, "site_info", site="s2").fetchall() == []
        assert ws.site_names(con) == ["s1"]
        assert sql.run_internal(con, "site_list").fetchall()[0][:6] == (
            "s1",
            3,
            0,
            0,
            "abc",
            "/v.csv",
        )


# --- binding -----------------------------------------------------------------------------------


def test_bind_missing_parameter():
    """A missing parameter is named, with the flags to add for every missing one."""
    query = sql.load_query("unmapped")
    with pytest.raises(QueryError) as exc:
        sql.bind(query, {})
    assert str(exc.value) == (
        "query 'unmapped' needs parameter 'source'. Add: --param source VALUE --param target VALUE"
    )
    with pytest.raises(QueryError) as exc:
        sql.bind(query, {"source": "a"})
    assert str(exc.value) == "query 'unmapped' needs parameter 'target'. Add: --param target VALUE"


def test_bind_unknown_parameter():
    """An unknown parameter is named along with the ones the query takes (or 'none')."""
    with pytest.raises(QueryError) as exc:
        sql.bind(sql.load_query("site_concepts"), {"site": "a", "sight": "b"})
    assert str(exc.value) == "unknown parameter 'sight' for query 'site_concepts'. It takes: site."
    with pytest.raises(QueryError) as exc:
        sql.bind(sql.load_query("mapping_summary"), {"site": "a"})
    assert str(exc.value) == (
        "unknown parameter 'site' for query 'mapping_summary'. It takes: none."
    )


def test_bind_returns_only_used_params(tmp_path):
    """A declared parameter the body never uses is accepted but not passed to DuckDB."""
    query = sql.parse_query(
        "q", tmp_path / "q.sql", "-- q: rows. params: site, unused\n-- $ghost\nSELECT $site;"
    )
    assert sql.bind(query, {"site": "a", "unused": 1}) == {"site": "a"}
    with Workspace(tmp_path / "ws").connect() as con:
        assert sql.execute(con, query, {"site": "a", "unused": 1}).fetchall() == [("a",)]


def test_load_query_unknown_lists_known():
    """An unknown (or path-like, or internal) name lists the user queries that exist."""
    known = ", ".join(sorted(p.stem for p in USER_FILES))
    for name in ("nope", "../sql/internal/schema", "schema"):
        with pytest.raises(QueryError) as exc:
            sql.load_query(name)
        assert str(exc.value) == (
            f"unknown query '{name}'. Known queries: {known}. See 'harmonize query --list'."
        )


def test_workspace_local_query(tmp_path):
    """A *.sql in the workspace's sql/ folder is listed, loaded, named in errors and runs."""
    ws = Workspace(tmp_path / "ws")
    ws.sql_dir.mkdir(parents=True)
    (ws.sql_dir / "my_counts.sql").write_text(
        "-- my_counts: concepts per site.\n-- params: site\n"
        "SELECT count(*) AS n FROM concepts WHERE site = $site;\n",
        encoding="utf-8",
    )
    (ws.sql_dir / "notes.txt").write_text("not a query", encoding="utf-8")
    names = [q.name for q in sql.list_queries(ws.sql_dir)]
    assert names == [
        "mapping_summary",
        "my_counts",
        "recode_events",
        "review",
        "site_concepts",
        "unmapped",
    ]
    query = sql.load_query("my_counts", ws.sql_dir)
    assert (query.description, query.params) == ("concepts per site", ("site",))
    assert query.path == ws.sql_dir / "my_counts.sql"
    with ws.connect() as con:
        assert sql.execute(con, query, {"site": "a"}).fetchall() == [(0,)]
    with pytest.raises(QueryError, match="Known queries: mapping_summary, my_counts, "):
        sql.load_query("nope", ws.sql_dir)
    with pytest.raises(QueryError):
        sql.load_query("my_counts")  # not without the workspace folder


# --- injection ---------------------------------------------------------------------------------


def test_parameter_values_are_data_not_sql(tmp_path):
    """A site name with quotes and SQL is bound as a value: no table is dropped, it matches
    nothing, and a row stored under that exact name is found."""
    ws = Workspace(tmp_path / "ws")
    with ws.connect() as con:
        assert sql.run_internal(con, "site_concepts", site=INJECTION).fetchall() == []
        assert (
            sql.execute(
                con, sql.load_query("unmapped"), {"source": INJECTION, "target": INJECTION}
            ).fetchall()
            == []
        )
        assert con.execute("SELECT count(*) FROM concepts").fetchall() == [(0,)]
        con.register(
            "new_concepts",
            pd.DataFrame(
                {
                    "concept_id": [0],
                    "code": ["C1"],
                    "description": ["fever"],
                    "system": [None],
                    "parent_code": [None],
                    "frequency": [None],
                    "extra": [None],
                }
            ),
        )
        sql.run_internal(con, "insert_concepts", site=INJECTION)
        assert sql.run_internal(con, "site_concepts", site=INJECTION).fetchall() == [
            (0, "C1", "fever")
        ]
        assert sql.run_internal(con, "site_concepts", site="x").fetchall() == []
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert {"sites", "concepts", "events", "labels", "runs", "candidates", "mappings"} <= tables


def _old_workspace(root, version: int | None):
    """A workspace database as another harmonize left it: stamped with ``version``, or (None)
    from before schema versions, with a mappings table that lacks today's columns."""
    import duckdb

    root.mkdir()
    con = duckdb.connect(str(root / "harmonize.duckdb"))
    con.execute("CREATE TABLE mappings (source_site VARCHAR, source_code VARCHAR, score DOUBLE)")
    if version is not None:
        con.execute("CREATE TABLE workspace_info (schema_version INTEGER)")
        con.execute("INSERT INTO workspace_info VALUES (?)", [version])
    con.close()


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (SCHEMA_VERSION - 1, f"has schema version {SCHEMA_VERSION - 1}, this harmonize needs"),
        (None, "was made by an older harmonize (no schema version)"),
    ],
)
@pytest.mark.parametrize("command", [["sites"], ["add-site", "x", "--vocab", "v.csv"]])
def test_a_workspace_of_another_schema_is_refused_untouched(
    tmp_path, runner, version, message, command
):
    from tests.helpers import run, snapshot

    ws = Workspace(tmp_path / "ws")
    _old_workspace(ws.root, version)
    (tmp_path / "v.csv").write_text("code,description\nA,a\n")
    command = [str(tmp_path / c) if c.endswith(".csv") else c for c in command]
    before = snapshot(ws)
    result = run(runner, ws, *command)
    assert result.exit_code == 1
    assert result.output.startswith("Error: workspace ") and message in result.output
    assert "Re-create it (add-site again) in a new folder." in result.output
    assert snapshot(ws) == before


# --- the readers' statements and the builder -----------------------------------------------------


def test_reader_statements_run_on_their_temp_tables(tmp_path):
    """Every omop_*/meds_* statement runs on a fresh connection once omop_temp_tables has made
    the temp tables: reads give no rows (counts 0) and writes change none."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / "0.parquet"
    pq.write_table(pa.table({"subject_id": [1], "time": [None], "code": ["A"]}), data)
    values = {
        "files": [str(data)],
        "catalog": "nothing_attached",
        "known": ["concept"],
        "tables": ["condition_occurrence"],
    }
    assert {"omop_temp_tables", "omop_source_vocab", "meds_first_empty"} <= {
        p.stem for p in READER_FILES
    }
    with duckdb.connect() as con:
        sql.run_internal(con, "set_utc")
        sql.run_internal(con, "omop_temp_tables")
        for path in READER_FILES:
            if path.stem == "omop_temp_tables":
                continue
            query = query_of(path)
            rows = sql.execute(con, query, {p: values[p] for p in query.params}).fetchall()
            assert rows in ([], [(0,)]), path.stem


def test_builder_quotes_identifiers_and_binds_values():
    """Names from the user's data are quoted (a name with quotes and SQL is just a name); the
    values of a statement are bound, never in its text."""
    import duckdb

    from harmonize.core import sql_builder as b

    odd = 'x"; DROP TABLE t; --'
    assert b.quote_identifier(odd) == '"x""; DROP TABLE t; --"'
    columns = b.EventColumns(
        relation=("main", odd), position=3, person=odd, code="c", times=("t",), texts=("v",)
    )
    statement = b.insert_omop_events(columns)
    assert statement.params == {"tbl": 3} and "$tbl" in statement.text
    with duckdb.connect() as con:
        con.register(
            "frame",
            pd.DataFrame({odd: ["7", None], "c": ["5", "6"], "t": ["2020-01-02", None]}).assign(
                v=[" a ", ""]
            ),
        )
        b.Statement(f"CREATE TABLE {b.quote_identifier(odd)} AS FROM frame").run(con)
        sql.run_internal(con, "omop_temp_tables")
        statement.run(con)
        rows = b.select_rows(("omop_events",), 10).run(con).fetchall()
        assert [r[:2] + r[3:] for r in rows] == [(3, 7, 5, "a")]
        concepts = b.select_rows(("omop_concepts",), 0).run(con).description
    assert [d[0] for d in concepts] == list(b.OMOP_CONCEPT_COLUMNS)


def test_pair_mappings_reads_the_mapped_concepts_view(tmp_path):
    """pair_mappings is the view's rows for one pair (its join is written once, in the view)."""
    body = "\n".join(
        line.split("--", 1)[0]
        for line in (SQL_DIR / "internal" / "pair_mappings.sql").read_text().splitlines()
    )
    assert "FROM mapped_concepts" in body and "JOIN" not in body.upper()
    with Workspace(tmp_path / "ws").connect() as con:
        con.execute(
            "INSERT INTO concepts VALUES ('b', 0, 'B1', 'fever', 'ICD', NULL, 12, NULL), "
            "('a', 0, 'A1', 'pyrexia', 'SNOMED', NULL, 3, NULL)"
        )
        con.execute(
            "INSERT INTO mappings (source_site, source_code, target_site, target_code, score, "
            "method, run_id, created_at) VALUES ('b', 'B1', 'a', 'A1', 0.9, 'm', 'r', "
            "TIMESTAMP '2024-01-01'), ('b', 'B2', 'a', 'A9', 0.5, 'm', 'r', "
            "TIMESTAMP '2024-01-01'), ('a', 'A1', 'b', 'B1', 0.9, 'm', 'r', "
            "TIMESTAMP '2024-01-01')"
        )
        frame = sql.run_internal(con, "pair_mappings", source="b", target="a").df()
    assert frame.columns.tolist()[:7] == [
        "source_code",
        "source_description",
        "source_system",
        "source_frequency",
        "target_code",
        "target_description",
        "target_system",
    ]
    rows = frame.iloc[:, :7].astype(object).where(frame.iloc[:, :7].notna(), None)
    assert rows.values.tolist() == [
        ["B1", "fever", "ICD", 12, "A1", "pyrexia", "SNOMED"],
        ["B2", None, None, None, "A9", None, None],
    ]


# --- no SQL text in Python ----------------------------------------------------------------------

# SQL in a Python string: a statement's shape, not a word in a sentence (keywords upper case).
SQL_TEXT = re.compile(
    r"\bSELECT\b.*\bFROM\b|\bINSERT\s+INTO\b|\bCREATE\s+(?:TEMP\s+|OR\s+REPLACE\s+)?"
    r"(?:TABLE|VIEW|INDEX|MACRO)\b|\bDELETE\s+FROM\b|\bUPDATE\s+\S+\s+SET\b|\bDROP\s+TABLE\b|"
    r"\bATTACH\b\s+\S|\bCOPY\s*\(|\bSET\s+\w+\s*=",
    re.DOTALL,
)
# A `harmonize sql "..."` example printed for the user is a command line, not a statement.
SQL_COMMAND_EXAMPLE = re.compile(r'\bsql "[^"]*"')
BUILDER = "harmonize/core/sql_builder.py"


def _docstrings(tree) -> set[int]:
    import ast

    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def sql_strings(source: str) -> list[tuple[int, str]]:
    """(line, text) of each string literal in ``source`` that holds SQL; an f-string is read
    whole, its placeholders as ``{}``; docstrings (which may explain a statement) are skipped."""
    import ast

    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docstrings:
                continue
            text = node.value
        else:
            continue
        if SQL_TEXT.search(SQL_COMMAND_EXAMPLE.sub("", text)):
            found.append((node.lineno, text))
    return found


def test_sql_strings_finds_sql_and_skips_explanations():
    """A check on the check: statements in literals and f-strings are found, prose and
    docstrings are not."""
    source = (
        '"""Runs SELECT * FROM concepts for you."""\n'
        'def f(t):\n    """INSERT INTO x explained."""\n'
        '    a = f"SELECT {t} FROM {t}"\n'
        '    b = "DELETE FROM events WHERE site = $site"\n'
        "    c = \"SET TimeZone = 'UTC'\"\n"
        '    d = "select the rows from a file"\n'
        "    e = 'try: harmonize sql \"SELECT * FROM mapped_concepts\"'\n"
    )
    assert [line for line, _ in sql_strings(source)] == [4, 5, 6]


def test_no_sql_text_in_python_outside_the_builder():
    """SQL lives in sql/*.sql and sql/internal/*.sql; the only Python that writes SQL text is
    the builder of the statements that depend on the data (harmonize.core.sql_builder)."""
    from harmonize.core.config import SQL_DIR as sql_dir

    package = sql_dir.parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent).as_posix()
        if relative == BUILDER:
            continue
        for line, text in sql_strings(path.read_text(encoding="utf-8")):
            offenders.append(f"{relative}:{line}: {text[:60]!r}")
    assert not offenders, "\n".join(offenders)
    assert sql_strings((package.parent / BUILDER).read_text(encoding="utf-8"))
