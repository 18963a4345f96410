"""Killed commands and concurrent writers never corrupt or lose a workspace."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harmonize.core.errors import WorkspaceError
from harmonize.core.workspace import Workspace
from harmonize.sites.listing import list_sites
from harmonize.sites.registry import add_site


def _vocab(path: Path, n: int, word: str) -> Path:
    pd.DataFrame(
        {
            "code": [f"{word}{i}" for i in range(n)],
            "description": [f"{word} finding {i}" for i in range(n)],
        }
    ).to_csv(path, index=False)
    return path


def test_second_writer_gets_a_clear_error(tmp_path):
    """While another process holds the workspace for writing, a command fails with a message
    that says so, and the workspace is intact afterwards."""
    ws = Workspace(tmp_path / "ws")
    add_site(ws, "a", _vocab(tmp_path / "a.csv", 3, "a"))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
            "time.sleep(30)",
            str(ws.db_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(WorkspaceError) as err:
            add_site(ws, "b", _vocab(tmp_path / "b.csv", 3, "b"))
        assert str(err.value) == (
            f"workspace {ws.root} is in use by another harmonize process; "
            "wait for it to finish and try again"
        )
    finally:
        holder.kill()
        holder.wait()
    assert [s.site for s in list_sites(ws)] == ["a"]


@pytest.mark.parametrize("delay", [0.5, 1.5, 3.0])
def test_sigkill_during_add_site_and_build_index_keeps_the_previous_state(tmp_path, delay):
    """SIGKILL at some point of a replace and an index build: the workspace opens, holds either
    the old or the new site (never a mix), and an index is either usable or refused cleanly."""
    ws = Workspace(tmp_path / "ws")
    add_site(ws, "a", _vocab(tmp_path / "a.csv", 5, "old"))
    big = _vocab(tmp_path / "big.csv", 30_000, "new")
    script = (
        "from harmonize.cli import main; import sys; "
        f"sys.argv = ['harmonize', '--workspace', {str(ws.root)!r}, '--quiet', 'add-site', 'a', "
        f"'--vocab', {str(big)!r}, '--replace']; "
        "import contextlib\n"
        "with contextlib.suppress(SystemExit): main()\n"
        f"sys.argv = ['harmonize', '--workspace', {str(ws.root)!r}, '--quiet', 'build-index', "
        "'--site', 'a', '--model', 'lexical']\n"
        "main()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ})
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sites = list_sites(ws)
    assert [s.site for s in sites] == ["a"]
    assert sites[0].n_concepts in (5, 30_000)
    with ws.connect(read_only=True) as con:
        codes = con.execute("SELECT code FROM concepts WHERE site = 'a'").df()["code"]
    assert len(codes) == sites[0].n_concepts
    assert {c.rstrip("0123456789") for c in codes} in ({"old"}, {"new"})
    for status in sites[0].indexes:
        assert status.state in ("fresh", "stale", "missing")
    leftovers = [p for p in ws.root.rglob("*.tmp")]
    # A killed atomic write may leave its temporary file, never a half-written real one.
    assert all(p.name.startswith(".") for p in leftovers)


@pytest.fixture(scope="module")
def mapped_big(tmp_path_factory) -> Path:
    """Two sites of 10,000 concepts with precomputed 16-dim vectors, b mapped onto a (best,
    k=1), and three people's decisions: big enough that a map takes a while to store."""
    import numpy as np

    from harmonize.index.site_index import build_site_index
    from harmonize.mapping.pipeline import map_sites
    from harmonize.mapping.review import decide

    root = tmp_path_factory.mktemp("big")
    n = 10_000
    texts = [f"{w} finding {i}" for w in ("a", "b") for i in range(n)]
    vectors = np.random.default_rng(0).standard_normal((len(texts), 16)).astype("float32")
    pd.DataFrame({"text": texts, "embedding": list(vectors)}).to_parquet(root / "vec.parquet")
    ws = Workspace(root / "ws")
    model = f"precomputed:{root / 'vec.parquet'}"
    for site in ("a", "b"):
        add_site(ws, site, _vocab(root / f"{site}.csv", n, site))
        build_site_index(ws, site, model)
    map_sites(ws, "b", "a", model=model, k=1)
    decide(ws, "b", "a", "b0", "accept", reviewer="ana")
    decide(ws, "b", "a", "b1", "reject", reviewer="ana")
    decide(ws, "b", "a", "b2", "set", target_code="a7", reviewer="ana", note="by hand")
    return root


def _tables(ws: Workspace) -> dict[str, pd.DataFrame]:
    with ws.connect(read_only=True) as con:
        return {
            table: con.execute(f"SELECT * FROM {table} ORDER BY ALL").df()
            for table in ("sites", "concepts", "decisions", "runs", "mappings", "candidates")
        }


def test_sigkill_during_map_keeps_the_previous_mapping_and_decisions(mapped_big, tmp_path):
    """SIGKILL as soon as map logs its "choose" stage (--verbose), so while it stores: the
    workspace opens, the decisions are untouched, and the pair holds either its previous
    mapping exactly or the new run complete, never a mix."""
    shutil.copytree(mapped_big / "ws", tmp_path / "ws")
    ws = Workspace(tmp_path / "ws")
    before = _tables(ws)
    model = f"precomputed:{mapped_big / 'vec.parquet'}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from harmonize.cli import main; main()",
            "--workspace",
            str(ws.root),
            "--verbose",
            "map",
            "--source",
            "b",
            "--target",
            "a",
            "--model",
            model,
            "--k",
            "5",
            "--strategy",
            "mutual",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("[harmonize] choose "):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, lines  # killed while map was still running
    after_kill = _tables(ws)
    for table in ("sites", "concepts", "decisions"):
        pd.testing.assert_frame_equal(after_kill[table], before[table])
    runs = after_kill["runs"]
    mappings, candidates = after_kill["mappings"], after_kill["candidates"]
    if len(runs) == len(before["runs"]):  # the kill came first: everything as it was
        pd.testing.assert_frame_equal(mappings, before["mappings"])
        pd.testing.assert_frame_equal(candidates, before["candidates"])
    else:  # the new run landed whole
        new = runs[~runs["run_id"].isin(before["runs"]["run_id"])]
        assert len(new) == 1 and new["strategy"].item() == "mutual"
        assert set(mappings["run_id"]) == set(candidates["run_id"]) == {new["run_id"].item()}
        assert len(mappings) == new["n_mapped"].item() and len(candidates) == 5 * 10_000
    # People's decisions still hold in the pair's mapping, whichever it is.
    chosen = dict(zip(mappings["source_code"], mappings["target_code"], strict=True))
    decided = before["decisions"].set_index("source_code")
    assert chosen["b0"] == decided.loc["b0", "target_code"]  # accepted
    assert chosen.get("b1") != decided.loc["b1", "target_code"]  # rejected
    assert chosen["b2"] == "a7"  # set by hand
