"""Shared fixtures: a deterministic fake encoder and small two-site workspaces."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from harmonize.core.workspace import Workspace
from harmonize.embed.base import l2_normalize
from harmonize.embed.registry import register_encoder

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


class FakeEncoder:
    """Bag of words: each lower-cased word is a fixed random vector (seeded by its hash), a text
    is their sum. Texts sharing words are close; no model needed. Counts its calls."""

    spec = "fake"
    slug = "fake"
    cacheable = True
    dim = 32
    fingerprint = "fake-v1"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    @staticmethod
    def word_vector(word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(FakeEncoder.dim)

    def encode(self, texts, batch_size=64, device="cpu"):
        self.calls.append(list(texts))
        rows = [
            sum((self.word_vector(w) for w in t.lower().split()), np.zeros(self.dim)) for t in texts
        ]
        return l2_normalize(np.array(rows).reshape(len(texts), self.dim))


FAKE = FakeEncoder()
register_encoder("fake", lambda: FAKE)


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    FAKE.calls.clear()
    return FAKE


SITE_A = """code,description,system
A1,acute dyspnea,local
A2,reported fever,local
A3,dry cough,local
A4,sore throat,local
A5,muscle pain,local
"""

SITE_B = """code,description,parent_code,frequency,note
B1,fever reported,RESP,10,x
B2,cough dry,RESP,5,y
B3,dyspnea acute,RESP,7,z
B4,throat sore,ENT,1,w
"""


@pytest.fixture
def vocab_files(tmp_path: Path) -> dict[str, Path]:
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    a.write_text(SITE_A, encoding="utf-8")
    b.write_text(SITE_B, encoding="utf-8")
    return {"a": a, "b": b}


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _add_and_index(runner, ws: Workspace, files: dict[str, Path]) -> None:
    from tests.helpers import run

    for site, key in (("siteA", "a"), ("siteB", "b")):
        assert run(runner, ws, "add-site", site, "--vocab", str(files[key])).exit_code == 0
        assert run(runner, ws, "build-index", "--site", site, "--model", "fake").exit_code == 0


@pytest.fixture(scope="session")
def indexed_template(tmp_path_factory) -> tuple[Workspace, list[list[str]]]:
    """``indexed`` built once through the CLI, with the encoder calls it made; each test gets a
    copy (the four commands cost about a second, a copy a few milliseconds)."""
    root = tmp_path_factory.mktemp("indexed")
    files = {"a": root / "a.csv", "b": root / "b.csv"}
    files["a"].write_text(SITE_A, encoding="utf-8")
    files["b"].write_text(SITE_B, encoding="utf-8")
    FAKE.calls.clear()
    ws = Workspace(root / "ws")
    _add_and_index(CliRunner(), ws, files)
    calls = list(FAKE.calls)
    FAKE.calls.clear()
    return ws, calls


@pytest.fixture
def indexed(indexed_template, workspace, vocab_files, fake_encoder) -> Workspace:
    """siteA and siteB added and indexed with the fake encoder, through the CLI (a copy of
    ``indexed_template`` whose sites name this test's vocabulary files, as if run here)."""
    template, calls = indexed_template
    shutil.copytree(template.root, workspace.root)
    with workspace.connect() as con:
        for site, key in (("siteA", "a"), ("siteB", "b")):
            con.execute(
                "UPDATE sites SET vocab_file = $file WHERE site = $site",
                {"file": str(vocab_files[key].resolve()), "site": site},
            )
    fake_encoder.calls[:] = calls
    return workspace


@pytest.fixture
def known_ws(workspace, tmp_path):
    """Sites 'local' (families under parents) and 'standard', lexical indexes, and the files of
    :func:`tests.helpers.known_vocab_files`."""
    from harmonize.index.site_index import build_site_index
    from harmonize.sites.registry import add_site
    from tests.helpers import known_vocab_files

    paths = known_vocab_files(tmp_path)
    add_site(workspace, "local", paths["local"])
    add_site(workspace, "standard", paths["standard"])
    build_site_index(workspace, "local", "lexical")
    build_site_index(workspace, "standard", "lexical")
    return workspace, paths


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> tuple[Workspace, str]:
    """``harmonize demo --patients 100`` (lexical and MiniLM) run once: its workspace and
    output. Tests read the output or work on a copy of the workspace (``shutil.copytree``)."""
    from harmonize.cli import cli

    ws = Workspace(tmp_path_factory.mktemp("demo") / "ws")
    result = CliRunner().invoke(cli, ["--workspace", str(ws.root), "demo", "--patients", "100"])
    assert result.exit_code == 0, result.output
    return ws, result.output


@pytest.fixture
def small_icd(monkeypatch) -> dict:
    """The ICD vocabularies and GEMs cut to the respiratory codes (:data:`tests.helpers.SMALL_ICD`)
    for the test: ``bench-map`` runs in seconds on them."""
    from harmonize.datasets import icd
    from tests.helpers import small_icd_frames

    frames = small_icd_frames()
    monkeypatch.setattr(icd, "_load_vocab", lambda version: frames[version])
    monkeypatch.setattr(icd, "_load_gem", lambda direction: frames[direction])
    return frames


@pytest.fixture
def mapped_ba(indexed):
    """``indexed`` with siteB mapped onto siteA (fake encoder, k=3)."""
    from harmonize.mapping.pipeline import map_sites

    map_sites(indexed, "siteB", "siteA", model="fake", k=3)
    return indexed


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module (``pytestmark = pytest.mark.usefixtures(...)``): tensors
    this small only lose from intra-op threads, badly so on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
