"""Opening a workspace: its folder, DuckDB connection, schema, sites and atomic file writes.

A workspace is ``DIR/harmonize.duckdb`` plus ``DIR/indexes/<site>/<model>/``.

>>> import tempfile
>>> ws = Workspace(tempfile.mkdtemp())
>>> with ws.connect() as con:
...     ws.site_names(con)
[]
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from harmonize.core import sql
from harmonize.core.config import (
    CACHE_DIRNAME,
    DB_FILENAME,
    DEFAULT_LOCK_WAIT,
    INDEX_DIRNAME,
    LOCK_WAIT_ENV,
    SCHEMA_VERSION,
    SITE_NAME_PATTERN,
)
from harmonize.core.errors import (
    InputError,
    UnknownSiteError,
    WorkspaceBusyError,
    WorkspaceError,
)

_SITE_RE = re.compile(SITE_NAME_PATTERN)


def check_site_name(name: str) -> str:
    """Site names become folder names, so they are restricted to a safe alphabet."""
    if not _SITE_RE.fullmatch(name) or name in (".", ".."):  # fullmatch: no trailing \n
        raise WorkspaceError(
            f"invalid site name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return name


class Workspace:
    """A folder holding ``harmonize.duckdb`` and ``indexes/``; nothing is written until a
    command stores something there.

    >>> import tempfile
    >>> ws = Workspace(tempfile.mkdtemp())
    >>> ws.exists(), ws.index_root.name
    (False, 'indexes')
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().resolve()

    @property
    def db_path(self) -> Path:
        return self.root / DB_FILENAME

    @property
    def index_root(self) -> Path:
        return self.root / INDEX_DIRNAME

    @property
    def cache_dir(self) -> Path:
        return self.root / CACHE_DIRNAME

    @property
    def sql_dir(self) -> Path:
        """A workspace's own named queries (``harmonize query`` looks here after ``sql/``)."""
        return self.root / "sql"

    def exists(self) -> bool:
        return self.db_path.is_file()

    def require(self) -> Workspace:
        """Fails clearly when there is no workspace database yet."""
        if not self.exists():
            raise WorkspaceError(
                f"no harmonize workspace at {self.root} (no {DB_FILENAME}). "
                "Run 'harmonize add-site NAME --vocab FILE' there first, or pass --workspace DIR."
            )
        return self

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A DuckDB connection with the schema in place; closed on exit."""
        if read_only:
            self.require()
        else:
            self.root.mkdir(parents=True, exist_ok=True)
        con = self._open(read_only)
        try:
            _check_schema_version(con, self.root, create=not read_only)
            yield con
        finally:
            con.close()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """Opens the file, waiting up to ``$HARMONIZE_LOCK_WAIT`` seconds (default
        DEFAULT_LOCK_WAIT) while another process holds it: DuckDB allows one writer process."""
        deadline = time.monotonic() + _lock_wait()
        pause = 0.02
        while True:
            try:
                return duckdb.connect(str(self.db_path), read_only=read_only)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise WorkspaceError(f"cannot open {self.db_path}: {exc}") from exc
                if time.monotonic() + pause > deadline:
                    raise WorkspaceBusyError(
                        f"workspace {self.root} is in use by another harmonize process; "
                        "wait for it to finish and try again"
                    ) from exc
            except duckdb.Error as exc:
                raise WorkspaceError(f"cannot open {self.db_path}: {exc}") from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.25)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One DuckDB transaction: everything in the block lands, or nothing does."""
        with self.connect() as con:
            con.begin()
            try:
                yield con
            except BaseException:
                con.rollback()
                raise
            con.commit()

    def site_names(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        return [row[0] for row in sql.run_internal(con, "site_names").fetchall()]

    def require_site(self, con: duckdb.DuckDBPyConnection, site: str) -> dict[str, Any]:
        """The stored row of ``site`` or an UnknownSiteError listing the known ones."""
        row = sql.run_internal(con, "site_info", site=site).fetchone()
        if row is None:
            check_site_name(site)  # a name no site can have: say so, not "add it first"
            raise UnknownSiteError(site, self.site_names(con))
        return {"site": row[0], "vocab_sha256": row[1], "n_concepts": row[2]}

    def read_pair(self, source: str, target: str, query: str, missing: str | None = None):
        """Runs ``sql/internal/QUERY.sql`` for a (source, target) pair after checking both
        sites; with ``missing`` (e.g. "mappings"), an empty result says how to get one."""
        self.require()
        with self.connect(read_only=True) as con:
            self.require_site(con, source)
            self.require_site(con, target)
            frame = sql.run_internal(con, query, source=source, target=target).df()
        if missing is not None and frame.empty:
            raise InputError(
                f"no {missing} of '{source}' onto '{target}'. "
                f"Run 'harmonize map --source {source} --target {target}' first."
            )
        return frame

    def index_dir(self, site: str, model_slug: str) -> Path:
        return self.index_root / check_site_name(site) / model_slug


def _lock_wait() -> float:
    """Seconds to wait for a locked workspace: ``$HARMONIZE_LOCK_WAIT``, else the default."""
    text = os.environ.get(LOCK_WAIT_ENV, "").strip()
    try:
        return max(0.0, float(text)) if text else DEFAULT_LOCK_WAIT
    except ValueError:
        raise WorkspaceError(f"{LOCK_WAIT_ENV} must be a number of seconds, got {text!r}") from None


def _check_schema_version(con: duckdb.DuckDBPyConnection, root: Path, create: bool) -> None:
    """Refuses a workspace made by another schema version before anything touches it; with
    ``create``, puts the schema in place (a new database gets the current version)."""
    n_tables, has_version = sql.run_internal(con, "workspace_tables").fetchone()
    if n_tables and not has_version:
        # Tables but no version: made before schema versions existed, so its tables may lack
        # columns this harmonize needs. Running the schema script would half-upgrade it.
        raise WorkspaceError(
            f"workspace {root} was made by an older harmonize (no schema version), this "
            f"harmonize needs schema version {SCHEMA_VERSION}. Re-create it (add-site again) "
            "in a new folder."
        )
    if create:
        con.execute(sql.internal("schema").text)
    rows = sql.run_internal(con, "schema_version").fetchall() if has_version or create else []
    if not rows:
        if create:
            sql.run_internal(con, "insert_schema_version", version=SCHEMA_VERSION)
        return
    if rows[0][0] != SCHEMA_VERSION:
        raise WorkspaceError(
            f"workspace {root} has schema version {rows[0][0]}, this harmonize needs "
            f"{SCHEMA_VERSION}. Re-create it (add-site again) in a new folder."
        )


def _create_beside(path: Path) -> tuple[int, str]:
    """A new, empty temporary file beside ``path``, opened for writing. Unlike
    :func:`tempfile.mkstemp` (always mode 600) it is created with mode 666 less the umask, so
    that the renamed file has the permissions any other new file would have."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes ``data`` to a temporary file beside ``path`` and renames it over ``path``."""
    fd, tmp = _create_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; renamed over ``path`` only if the block succeeds."""
    fd, tmp = _create_beside(path)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
