"""The server and a command-line writer deciding at the same time: DuckDB lets one process
write at a time, the server holds the file only per request and both wait briefly for the
other, so no decision is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed")

from harmonize.mapping.review import review_queue  # noqa: E402
from harmonize.serve.server import serve_in_thread  # noqa: E402
from tests.serve.conftest import Client, decisions  # noqa: E402

N = 8  # decisions per writer

CLI_WRITER = """
import sys
from harmonize.cli import cli
import harmonize.mapping.review  # imported before the start, so both writers start together
ws, codes = sys.argv[1], sys.argv[2:]
print("ready", flush=True)
sys.stdin.readline()
for code in codes:
    cli.main(["--workspace", ws, "-q", "accept", "--source", "target", "--target", "source",
              code, "--reviewer", "cli"], prog_name="harmonize", standalone_mode=False)
    print("done", code, flush=True)
"""


def test_server_and_cli_writing_at_once_lose_nothing(demo_ws, monkeypatch):
    # waits long enough for a loaded machine: this test is about losing nothing, not timing
    monkeypatch.setenv("HARMONIZE_LOCK_WAIT", "30")
    codes = list(review_queue(demo_ws, "target", "source").to_frame()["source_code"])
    by_cli, by_web = codes[0 : 2 * N : 2], codes[1 : 2 * N : 2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = subprocess.Popen(
        [sys.executable, "-c", CLI_WRITER, str(demo_ws.root), *by_cli],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env,
    )  # fmt: skip
    answers: list[int] = []
    with serve_in_thread(demo_ws, reviewer="web") as running:
        client = Client(running.url, running.token)
        assert writer.stdout.readline().strip() == "ready"

        def web() -> None:
            for code in by_web:
                body = {"source": "target", "target": "source", "code": code, "action": "accept"}
                answers.append(client.post("/api/decisions", body).status)

        thread = threading.Thread(target=web)
        writer.stdin.write("go\n")
        writer.stdin.flush()
        thread.start()
        out, err = writer.communicate(timeout=300)
        thread.join(timeout=300)
    assert writer.returncode == 0, err
    assert [line for line in out.splitlines() if line.startswith("done")] == [
        f"done {code}" for code in by_cli
    ]
    assert answers == [201] * N
    made = sorted((d[1], d[4], d[5]) for d in decisions(demo_ws))
    expected = [(c, "accept", "cli") for c in by_cli] + [(c, "accept", "web") for c in by_web]
    assert made == sorted(expected)
    # they really wrote at the same time: the two writers' decisions interleave
    order = [d[5] for d in decisions(demo_ws)]
    assert order.index("web") < len(order) - 1 - order[::-1].index("cli")
    assert order.index("cli") < len(order) - 1 - order[::-1].index("web")
