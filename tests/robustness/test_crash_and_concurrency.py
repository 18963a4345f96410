"""Killed commands and concurrent writers never corrupt or lose a workspace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harmonize.errors import WorkspaceError
from harmonize.sites import add_site, list_sites
from harmonize.workspace import Workspace


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
