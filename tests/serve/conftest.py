"""The review page's fixtures: a demo workspace (lexical model only) with a hostile site, and a
small HTTP client for the running server."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from harmonize.core.workspace import Workspace

# A site whose descriptions are markup: the page must show them as text.
HOSTILE = (
    "code,description,synonyms\n"
    'EVIL1,"<script>window.__pwned = 1</script>fever","<b>pyrexia</b>|hot"\n'
    'EVIL2,"<img src=x onerror=""window.__pwned = 2"">cough",\n'
)


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Workspace:
    """The demo (100 patients a site, lexical model: ~5 s) plus site 'evil' mapped onto
    'source' and 'source' onto it; tests copy it."""
    from harmonize.datasets.demo import run_demo
    from harmonize.index.site_index import build_site_index
    from harmonize.mapping.pipeline import map_sites
    from harmonize.sites.registry import add_site

    root = tmp_path_factory.mktemp("serve-demo")
    ws = Workspace(root / "ws")
    run_demo(ws, n_patients=100, models=("lexical",), echo=lambda _: None)
    vocab = root / "evil.csv"
    vocab.write_text(HOSTILE, encoding="utf-8")
    add_site(ws, "evil", vocab)
    build_site_index(ws, "evil", "lexical", device="cpu")
    map_sites(ws, "evil", "source", model="lexical", k=3)
    map_sites(ws, "source", "evil", model="lexical", k=2)
    return ws


def copy_workspace(template: Workspace, dest: Path) -> Workspace:
    shutil.copytree(template.root, dest / "ws")
    return Workspace(dest / "ws")


@pytest.fixture
def demo_ws(demo_template, tmp_path) -> Workspace:
    return copy_workspace(demo_template, tmp_path)


def decisions(ws: Workspace) -> list[tuple]:
    """Every row of table ``decisions`` read straight from DuckDB, oldest first."""
    with duckdb.connect(str(ws.db_path), read_only=True) as con:
        return con.execute(
            "SELECT source_site, source_code, target_site, target_code, decision, reviewer, "
            "note, predicate FROM decisions ORDER BY decided_at, source_code"
        ).fetchall()


@dataclass
class Answer:
    status: int
    body: object
    headers: dict[str, str]


@dataclass
class Client:
    """Plain urllib calls to a running server; ``token`` goes in the header unless None."""

    url: str
    token: str | None

    def call(self, method: str, path: str, body: object = None, raw: bytes | None = None,
             headers: dict[str, str] | None = None, token: bool = True) -> Answer:  # fmt: skip
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token and self.token is not None:
            sent["X-Harmonize-Token"] = self.token
        request = urllib.request.Request(
            self.url.rstrip("/") + path, data=data, method=method, headers=sent
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, text, got = response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            status, text, got = exc.code, exc.read(), exc.headers
        kind = got.get("content-type", "")
        parsed = json.loads(text) if kind.startswith("application/json") else text.decode()
        return Answer(status, parsed, {k.lower(): v for k, v in got.items()})

    def get(self, path: str, **kw) -> Answer:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: object = None, **kw) -> Answer:
        return self.call("POST", path, body, **kw)
