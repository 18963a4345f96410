"""Running the review page: bind the address (refused clearly when taken), serve with uvicorn,
in the foreground (``harmonize serve``) or on a background thread (tests, notebooks).

>>> from harmonize.datasets.tiny import tiny_workspace
>>> import json, urllib.request
>>> with serve_in_thread(tiny_workspace(), reviewer="ana") as running:
...     request = urllib.request.Request(running.url + "api/pairs",
...                                      headers={"X-Harmonize-Token": running.token})
...     json.loads(urllib.request.urlopen(request).read())["pairs"][0]["source"]
'b'
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from harmonize.core.errors import HarmonizeError, InputError
from harmonize.core.workspace import Workspace
from harmonize.serve.security import check_host, is_loopback, new_token

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


@dataclass
class Running:
    """A server that is listening: where, and the token its API calls need."""

    host: str
    port: int
    token: str
    server: object  # uvicorn.Server

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def page_url(self) -> str:
        """The page's address with the token: the one to open."""
        return f"{self.url}?token={self.token}"


def bind(host: str, port: int, allow_remote: bool = False) -> socket.socket:
    """A listening socket on ``host:port`` (0: any free port), or a clear error."""
    check_host(host, allow_remote)
    if not 0 <= port <= 65535:
        raise InputError(f"{{port}} must be 0 to 65535, got {port}", params=("port",))
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"cannot resolve {{host}} '{host}': {exc}", params=("host",)) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise InputError(
                f"port {port} on {host} is in use: pass another {{port}}", params=("port",)
            ) from None
        raise HarmonizeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def make_server(ws: Workspace, sock: socket.socket, token: str, reviewer: str | None,
                local_only: bool) -> Running:  # fmt: skip
    """A uvicorn server for ``ws`` on the bound ``sock`` (not started yet)."""
    import uvicorn

    from harmonize.serve.app import create_app

    app = create_app(ws, token, reviewer, local_only=local_only)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    host, port = sock.getsockname()[:2]
    return Running(host, port, token, uvicorn.Server(config))


@contextlib.contextmanager
def serve_in_thread(
    ws: Workspace,
    host: str = DEFAULT_HOST,
    port: int = 0,
    reviewer: str | None = None,
    token: str | None = None,
) -> Iterator[Running]:
    """Serves ``ws`` on a background thread for the ``with`` block (port 0: a free one)."""
    ws.require()
    sock = bind(host, port, allow_remote=False)
    running = make_server(ws, sock, token or new_token(), reviewer, is_loopback(host))
    server = running.server
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        if not server.started:
            raise HarmonizeError(f"the review server on {running.url} did not start")
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
