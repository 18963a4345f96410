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
for i, code in enumerate(codes):
    if i in (0, len(codes) // 2):  # waits to be told to go: first, and again halfway
        sys.stdin.readline()
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

        def web(codes: list[str]) -> None:
            for code in codes:
                body = {"source": "target", "target": "source", "code": code, "action": "accept"}
                answers.append(client.post("/api/decisions", body).status)

        # Each writer's first half in turn, then both second halves at once: the decisions
        # interleave whatever the machine's load, and the second halves race for the file.
        writer.stdin.write("go\n")
        writer.stdin.flush()
        firsts: list[str] = []
        while sum(line.startswith("done") for line in firsts) < N // 2:
            line = writer.stdout.readline()
            if not line:  # the writer died: its stderr says why below
                break
            firsts.append(line.strip())
        web(by_web[: N // 2])
        thread = threading.Thread(target=web, args=(by_web[N // 2 :],))
        writer.stdin.write("go\n")
        writer.stdin.flush()
        thread.start()
        out, err = writer.communicate(timeout=300)
        thread.join(timeout=300)
    out = "\n".join([*firsts, out])
    assert writer.returncode == 0, err
    assert [line for line in out.splitlines() if line.startswith("done")] == [
        f"done {code}" for code in by_cli
    ]
    assert answers == [201] * N
    made = sorted((d[1], d[4], d[5]) for d in decisions(demo_ws))
    expected = [(c, "accept", "cli") for c in by_cli] + [(c, "accept", "web") for c in by_web]
    assert made == sorted(expected)
    # both wrote while the other was writing: the two writers' decisions interleave
    order = [d[5] for d in decisions(demo_ws)]
    assert order.index("web") < len(order) - 1 - order[::-1].index("cli")
    assert order.index("cli") < len(order) - 1 - order[::-1].index("web")
