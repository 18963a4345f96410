"""Loading ``sql/*.sql`` by name and running them with bound named parameters.

Each file starts with comment lines: ``-- name: what it returns`` and ``-- params: a, b``
(or ``none``). Values are always bound as DuckDB ``$name`` parameters, never formatted in.

>>> q = load_query("unmapped")
>>> q.params
('source', 'target')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from harmonize.core.config import SQL_DIR
from harmonize.core.errors import QueryError

_PARAM_USE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_NAME = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class Query:
    """A named SQL file: its text, one-line description and declared parameters."""

    name: str
    path: Path
    text: str
    description: str
    params: tuple[str, ...]


def parse_query(name: str, path: Path, text: str) -> Query:
    """Reads the header comment of one SQL file into a :class:`Query`."""
    header = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("--"):
            break
        header.append(stripped[2:].strip())
    description = ""
    params: tuple[str, ...] = ()
    for line in header:
        before, sep, after = line.partition("params:")
        if sep:
            names = after.strip()
            params = () if names in ("", "none") else tuple(p.strip() for p in names.split(","))
            line = before.strip()
        if line and not description:
            description = line.split(":", 1)[1].strip() if ":" in line else line
            description = description.rstrip(". ")
    return Query(name=name, path=path, text=text, description=description, params=params)


def _query_dirs(extra: Path | None = None) -> list[Path]:
    dirs = [SQL_DIR]
    if extra is not None:
        dirs.append(extra)
    return dirs


@cache
def _load_internal(name: str) -> Query:
    path = SQL_DIR / "internal" / f"{name}.sql"
    if not path.is_file():
        path = SQL_DIR / f"{name}.sql"  # user-facing queries serve the library too
    return parse_query(name, path, path.read_text(encoding="utf-8"))


def internal(name: str) -> Query:
    """A statement the library runs itself: ``sql/internal/NAME.sql``, else ``sql/NAME.sql``."""
    return _load_internal(name)


def list_queries(extra_dir: Path | None = None) -> list[Query]:
    """Every user-facing query: ``sql/*.sql``, then ``*.sql`` in ``extra_dir`` (a workspace's)."""
    found: dict[str, Query] = {}
    for folder in _query_dirs(extra_dir):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.sql")):
            found.setdefault(
                path.stem, parse_query(path.stem, path, path.read_text(encoding="utf-8"))
            )
    return sorted(found.values(), key=lambda q: q.name)


def load_query(name: str, extra_dir: Path | None = None) -> Query:
    """The user-facing query called ``name``, or a QueryError listing those that exist."""
    if _NAME.match(name):
        for folder in _query_dirs(extra_dir):
            path = folder / f"{name}.sql"
            if path.is_file():
                return parse_query(name, path, path.read_text(encoding="utf-8"))
    known = ", ".join(q.name for q in list_queries(extra_dir))
    raise QueryError(
        f"unknown query '{name}'. Known queries: {known}. See 'harmonize query --list'."
    )


def bind(query: Query, params: dict[str, Any]) -> dict[str, Any]:
    """Checks ``params`` against what the query declares; returns only the ones it uses."""
    missing = [p for p in query.params if p not in params]
    unknown = [p for p in params if p not in query.params]
    if unknown:
        expected = ", ".join(query.params) if query.params else "none"
        raise QueryError(
            f"unknown parameter '{unknown[0]}' for query '{query.name}'. It takes: {expected}."
        )
    if missing:
        flags = " ".join(f"--param {p} VALUE" for p in missing)
        raise QueryError(f"query '{query.name}' needs parameter '{missing[0]}'. Add: {flags}")
    used = set(_PARAM_USE.findall(_strip_comments(query.text)))
    return {k: v for k, v in params.items() if k in used}


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())


def execute(
    con: duckdb.DuckDBPyConnection, query: Query, params: dict[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Runs ``query`` with bound parameters; returns the connection for fetching."""
    values = bind(query, params or {})
    return con.execute(query.text, values) if values else con.execute(query.text)


def run_internal(con: duckdb.DuckDBPyConnection, name: str, **params: Any):
    """Runs ``sql/internal/NAME.sql`` with keyword parameters."""
    return execute(con, internal(name), params)
