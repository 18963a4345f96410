"""The wheel carries the whole package: every module, every SQL file the code loads, the data,
and it runs from where it is installed (not from this checkout)."""

from __future__ import annotations

import ast
import fnmatch
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "harmonize"
SQL = PACKAGE / "sql"

# Functions that load a SQL file by name, and the position of that name among their arguments.
LOADERS = {"run_internal": 1, "internal": 0, "load_query": 0, "read_pair": 2}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built offline from a clean copy of the sources: building in the checkout would
    reuse its build/ folder, whose stale files can end up in the wheel."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    shutil.copytree(PACKAGE, src / "harmonize", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    out = work / "dist"
    command = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps"]
    command += ["--no-build-isolation", "--no-index", "-q", "-w", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=work, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deprecated" not in done.stderr.lower(), done.stderr
    (path,) = out.glob("harmonize-*.whl")
    return path


@pytest.fixture(scope="module")
def wheel_files(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def _argument(call: ast.Call, position: int) -> ast.expr | None:
    if len(call.args) > position:
        return call.args[position]
    for keyword in call.keywords:
        if keyword.arg in ("name", "query"):
            return keyword.value
    return None


def _constants(node: ast.AST) -> list[str]:
    return [
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def _own_nodes(scope: ast.AST):
    """The nodes of a module or function, without those of the functions defined inside it."""
    for child in ast.iter_child_nodes(scope):
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield child
            yield from _own_nodes(child)


def _assignments(nodes) -> dict[str, list[str]]:
    """Each name assigned in ``nodes`` with the string constants of its values."""
    assigned: dict[str, list[str]] = {}
    for node in nodes:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).extend(_constants(node.value))
    return assigned


def _loaded_names(tree: ast.Module) -> tuple[set[str], set[str], list[str]]:
    """Names (and f-string patterns) passed to the SQL loaders; a variable (or an item of a
    dict or tuple held in one) is resolved through the string constants assigned to it in the
    same function or at module level. Returns (names, patterns, unresolved call sites); the
    loaders' own pass-through parameters are not call sites."""
    names: set[str] = set()
    patterns: set[str] = set()
    unresolved: list[str] = []
    functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
    module_level = _assignments(_own_nodes(tree))
    for scope in [tree, *(n for n in ast.walk(tree) if isinstance(n, functions))]:
        args = scope.args if isinstance(scope, functions) else None
        params = {a.arg for a in (args.args + args.kwonlyargs)} if args else set()
        nodes = list(_own_nodes(scope))
        assigned = {**module_level, **_assignments(nodes)}
        for node in nodes:
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called not in LOADERS or (arg := _argument(node, LOADERS[called])) is None:
                continue
            held = arg.value if isinstance(arg, ast.Subscript) else arg
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(arg.value)
            elif isinstance(arg, ast.JoinedStr):
                patterns.add(
                    "".join(v.value if isinstance(v, ast.Constant) else "*" for v in arg.values)
                )
            elif isinstance(held, ast.Name) and assigned.get(held.id):
                names.update(assigned[held.id])
            elif not (isinstance(arg, ast.Name) and arg.id in params):
                unresolved.append(f"line {node.lineno}: {ast.unparse(node)}")
    return names, patterns, unresolved


def loaded_sql() -> tuple[set[str], set[str]]:
    """Every SQL name and name pattern the package's source passes to a loader."""
    names: set[str] = set()
    patterns: set[str] = set()
    unresolved: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found, globs, missing = _loaded_names(ast.parse(path.read_text(encoding="utf-8")))
        names |= found
        patterns |= globs
        unresolved += [f"{path.relative_to(ROOT)} {m}" for m in missing]
    assert not unresolved, unresolved  # a loader call this test cannot follow: teach it
    return names, patterns


def sql_path(name: str) -> str:
    """Where ``sql.internal(name)`` reads ``name`` from (internal/ first), as a wheel path."""
    if (SQL / "internal" / f"{name}.sql").is_file():
        return f"harmonize/sql/internal/{name}.sql"
    return f"harmonize/sql/{name}.sql"


def test_the_source_loads_sql_files_that_exist():
    """The collector finds the loaders' names (a check on the check), each one a real file."""
    names, patterns = loaded_sql()
    assert {"schema", "site_concepts", "recode_counts", "pair_mappings"} <= names
    assert "delete_site_*" in patterns
    missing = sorted(n for n in names if not (ROOT / sql_path(n)).is_file())
    assert not missing


def test_wheel_holds_every_sql_file_the_code_loads(wheel_files):
    names, patterns = loaded_sql()
    for name in sorted(names):
        assert sql_path(name) in wheel_files, name
    shipped_sql = sorted(f for f in wheel_files if f.endswith(".sql"))
    for pattern in sorted(patterns):
        assert fnmatch.filter(shipped_sql, f"harmonize/sql/*{pattern}.sql"), pattern
    on_disk = {p.relative_to(ROOT).as_posix() for p in SQL.rglob("*.sql")}
    assert {p for p in on_disk if p.startswith("harmonize/sql/internal/")}
    assert on_disk == set(shipped_sql)


def test_wheel_holds_every_module_and_data_file(wheel_files):
    modules = {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py")}
    assert modules - wheel_files == set()
    packages = {p.parent.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("__init__.py")}
    assert {"harmonize/mapping/rerank", "harmonize/cli", "harmonize/core"} <= packages
    data = {
        p.relative_to(ROOT).as_posix()
        for p in (PACKAGE / "data").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert data and data - wheel_files == set()
    static = {p.relative_to(ROOT).as_posix() for p in (PACKAGE / "serve" / "static").iterdir()}
    assert {"harmonize/serve/static/app.js", "harmonize/serve/static/index.html"} <= static
    assert static - wheel_files == set()  # the review page's files
    assert not [f for f in wheel_files if f.startswith(("tests/", "benchmarks/", "examples/"))]


def test_installed_wheel_runs_from_its_own_folder(wheel, tmp_path):
    """Unzipped elsewhere and put first on the path, with the checkout out of reach: the
    package imported is the wheel's, it loads its SQL and runs the declared console script."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
        (info,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        entry_points = archive.read(info).decode()
    assert "harmonize = harmonize.cli:main" in entry_points
    work = tmp_path / "run"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONSAFEPATH": "1"}

    def python(code: str, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True, text=True, cwd=work, env=env, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    where = python(
        "import harmonize; from harmonize.core import sql; q = sql.internal('schema'); "
        "print(harmonize.__file__); print(q.path)"
    ).splitlines()
    assert [Path(p).resolve().is_relative_to(site.resolve()) for p in where] == [True, True]
    cli = "import sys; from harmonize.cli import main; sys.argv[0] = 'harmonize'; main()"
    assert "Usage: harmonize" in python(cli, "--help")
    vocab = ROOT / "examples" / "siteA.csv"
    ws = str(work / "ws")
    added = python(cli, "--workspace", ws, "add-site", "siteA", "--vocab", str(vocab))
    assert "added site 'siteA'" in added
    assert "unmapped" in python(cli, "--workspace", ws, "query", "--list")
