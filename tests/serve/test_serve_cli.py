"""``harmonize serve``: the safe defaults, clear refusals, and a real server process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed")

from harmonize.core.workspace import Workspace  # noqa: E402
from harmonize.datasets.tiny import tiny_workspace  # noqa: E402
from tests.helpers import run  # noqa: E402
from tests.serve.conftest import Client  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_workspace(tmp_path_factory.mktemp("serve-cli"))


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "::"])
def test_a_host_other_machines_reach_needs_allow_remote(runner, tiny, host):
    result = run(runner, tiny, "serve", "--host", host)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: --host {host} is reachable from other machines: the review page can change "
        "the workspace's decisions. Bind 127.0.0.1, or pass --allow-remote to serve it on the "
        "network anyway (every write still needs the token).\n"
    )


def test_a_port_in_use_is_refused(runner, tiny):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(runner, tiny, "serve", "--port", str(port))
    assert result.exit_code == 1
    assert result.output == f"Error: port {port} on 127.0.0.1 is in use: pass another --port\n"


def test_no_workspace_is_refused(runner, tmp_path):
    result = run(runner, Workspace(tmp_path / "none"), "serve")
    assert result.exit_code == 1 and result.output.startswith("Error: no harmonize workspace at")


def test_serve_prints_the_tokened_address_and_answers_until_interrupted(tiny):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = "import sys; from harmonize.cli import main; sys.argv[0] = 'harmonize'; main()"
    server = subprocess.Popen(
        [sys.executable, "-c", command, "--workspace", str(tiny.root), "serve", "--port", "0",
         "--reviewer", "ana"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert server.stdout.readline() == f"Reviewing workspace {tiny.root}\n"
        opened = server.stdout.readline().strip()
        assert opened.startswith("Open http://127.0.0.1:")
        url, _, token = opened.split()[1].partition("?token=")
        assert server.stdout.readline() == f"API token (header X-Harmonize-Token): {token}\n"
        assert server.stdout.readline() == "Press Ctrl-C to stop.\n"
        pairs = Client(url, token).get("/api/pairs")
        assert pairs.status == 200 and pairs.body["pairs"][0]["source"] == "b"
        assert Client(url, "nope").get("/api/pairs").status == 401
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=20)
    assert (server.returncode, out, err) == (0, "Stopped.\n", "")
